"""Re-encrypt every vault value under the current primary key.

Each batch is its own transaction, so an interrupted run keeps what it did
and a second run continues: a value that already opens with the primary key
is left alone. Runs as the service role (it crosses clients) and writes one
audit event per client it touched.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from django.apps import apps
from django.db import transaction

from tenants.context import current_alias
from tenants.services import audit_record
from vault import crypto
from vault.fields import EncryptedTextField, Sealed


@dataclass
class RotationReport:
    scanned: int = 0
    reencrypted: int = 0
    current: int = 0
    unreadable: list[str] = field(default_factory=list)
    per_client: Counter = field(default_factory=Counter)
    finished: bool = True


def encrypted_fields() -> Iterator[tuple[type, list[EncryptedTextField]]]:
    for model in apps.get_models():
        fields = [f for f in model._meta.concrete_fields if isinstance(f, EncryptedTextField)]
        if fields:
            yield model, fields


def count_values() -> int:
    return sum(model.objects.count() for model, _ in encrypted_fields())


def rotate(
    *, batch_size: int = 500, max_batches: int | None = None, actor: str, progress: Callable[[int], None] | None = None
) -> RotationReport:
    report = RotationReport()
    batches = 0
    for model, fields in encrypted_fields():
        last_pk = 0
        while True:
            if max_batches is not None and batches >= max_batches:
                report.finished = False
                break
            with transaction.atomic(using=current_alias()):
                rows = list(model.objects.select_for_update().filter(pk__gt=last_pk).order_by("pk")[:batch_size])
                if not rows:
                    break
                for row in rows:
                    changed = {}
                    for f in fields:
                        secret = getattr(row, f.attname)
                        if secret is None:
                            continue
                        aad = f.associated_data(row)
                        try:
                            plaintext, key_index = crypto.decrypt_with_index(secret.sealed, aad=aad)
                        except crypto.DecryptionError:
                            report.unreadable.append(f"{model._meta.label}:{row.pk}.{f.name}")
                            continue
                        if key_index == 0:
                            report.current += 1
                        else:
                            changed[f.attname] = Sealed(crypto.encrypt(plaintext, aad=aad))
                            report.reencrypted += 1
                            report.per_client[row.client_id] += 1
                    if changed:
                        model.objects.filter(pk=row.pk).update(**changed)
                report.scanned += len(rows)
                last_pk = rows[-1].pk
                batches += 1
                if progress:
                    progress(len(rows))
        if not report.finished:
            break
    with transaction.atomic(using=current_alias()):
        for client_id, count in sorted(report.per_client.items()):
            audit_record(
                client_id=client_id, actor=actor, action="vault.keys_rotated", target="vault",
                metadata={"reencrypted": count},
            )
    return report
