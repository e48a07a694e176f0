"""Re-encrypt every vault value under the current primary key.

Each batch is its own transaction, so an interrupted run keeps what it did
and a second run continues: a value that already opens with the primary key
is left alone. Runs as the service role (it crosses clients) and writes one
audit event per client whose values it re-encrypted, also when the run stops
on an error, for the batches that were committed before it.
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
class _Counts:
    scanned: int = 0
    reencrypted: int = 0
    current: int = 0
    unreadable: list[str] = field(default_factory=list)
    per_client: Counter = field(default_factory=Counter)


@dataclass
class RotationReport(_Counts):
    finished: bool = True


@dataclass
class _Batch(_Counts):
    last_pk: int = 0


def encrypted_fields() -> Iterator[tuple[type, list[EncryptedTextField]]]:
    """Every model with an encrypted column, each table once: proxies share
    their concrete model's table, and a multi-table child's inherited fields
    belong to its parent's table."""
    for model in apps.get_models():
        if model._meta.proxy:
            continue
        fields = [f for f in model._meta.local_concrete_fields if isinstance(f, EncryptedTextField)]
        if fields:
            yield model, fields


def count_values() -> int:
    return sum(model._base_manager.count() for model, _ in encrypted_fields())


def rotate(
    *, batch_size: int = 500, max_batches: int | None = None, actor: str, progress: Callable[[int], None] | None = None
) -> RotationReport:
    report = RotationReport()
    batches = 0
    try:
        for model, fields in encrypted_fields():
            last_pk = 0
            while True:
                if max_batches is not None and batches >= max_batches:
                    report.finished = False
                    break
                batch = _rotate_batch(model, fields, after_pk=last_pk, size=batch_size)
                if batch is None:
                    break
                # Counted only once the batch has committed.
                report.scanned += batch.scanned
                report.reencrypted += batch.reencrypted
                report.current += batch.current
                report.unreadable += batch.unreadable
                report.per_client.update(batch.per_client)
                last_pk = batch.last_pk
                batches += 1
                if progress:
                    progress(batch.scanned)
            if not report.finished:
                break
    finally:
        with transaction.atomic(using=current_alias()):
            for client_id, count in sorted(report.per_client.items()):
                audit_record(
                    client_id=client_id, actor=actor, action="vault.keys_rotated", target="vault",
                    metadata={"reencrypted": count},
                )
    return report


def _rotate_batch(model, fields: list[EncryptedTextField], *, after_pk: int, size: int) -> _Batch | None:
    """One transaction: lock the next `size` rows, re-encrypt what the
    primary key does not open yet. None when no rows are left."""
    batch = _Batch()
    with transaction.atomic(using=current_alias()):
        # The base manager: a default manager that hides rows (soft deletes)
        # must not leave their values under an old key.
        rows = list(model._base_manager.select_for_update().filter(pk__gt=after_pk).order_by("pk")[:size])
        if not rows:
            return None
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
                    batch.unreadable.append(f"{model._meta.label}:{row.pk}.{f.name}")
                    continue
                if key_index == 0:
                    batch.current += 1
                else:
                    changed[f.attname] = Sealed(crypto.encrypt(plaintext, aad=aad))
                    batch.reencrypted += 1
                    batch.per_client[row.client_id] += 1
            if changed:
                model._base_manager.filter(pk=row.pk).update(**changed)
        batch.scanned = len(rows)
        batch.last_pk = rows[-1].pk
    return batch
