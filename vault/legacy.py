"""Values from SageRock's previous Node.js API.

It stored credentials as base64(iv):base64(ciphertext):base64(tag) with
Node's `aes-256-gcm` and no associated data. We open them with the legacy key
and store them again through credential_set, which binds them to their row.

Its IV length is not documented, and Node code often uses
`crypto.randomBytes(16)` for GCM, which Node accepts: legacy values may carry
a 12- or a 16-byte IV. Values we write always have 12.
"""

from __future__ import annotations

import base64
import binascii
import csv
import json
from dataclasses import dataclass

from django.core.exceptions import ValidationError

from tenants.models import Client
from vault import crypto
from vault.keyring import Keyring
from vault.models import Provider
from vault.services import SECRET_FIELDS, normalize_secret

COLUMNS = ("client_slug", "provider", "label", "value")
LEGACY_IV_LENGTHS = (crypto.IV_BYTES, 16)


class LegacyImportError(Exception):
    pass


@dataclass(frozen=True)
class LegacyRow:
    line: int
    client: Client
    provider: str
    label: str
    secret: dict


def parse_legacy_key(value: str, *, variable: str) -> bytes:
    """64 hex characters or standard base64 of 32 bytes."""
    value = (value or "").strip()
    if not value:
        raise LegacyImportError(f"{variable} is not set.")
    try:
        key = bytes.fromhex(value) if len(value) == 64 else base64.b64decode(value, validate=True)
    except (ValueError, binascii.Error):
        raise LegacyImportError(f"{variable} is neither 64 hex characters nor standard base64.") from None
    if len(key) != 32:
        raise LegacyImportError(f"{variable} must hold a 32-byte key (aes-256-gcm).")
    return key


def read_rows(handle, *, key: bytes) -> list[LegacyRow]:
    """Parse and decrypt every row, or raise naming the first bad line."""
    reader = csv.DictReader(handle)
    if tuple(reader.fieldnames or ()) != COLUMNS:
        raise LegacyImportError(f"line 1: expected the header {','.join(COLUMNS)}")
    ring = Keyring((key,))
    clients = {client.slug: client for client in Client.objects.all()}
    rows, seen = [], set()
    for record in reader:
        line = reader.line_num
        slug, provider, label = (record[c].strip() for c in COLUMNS[:3])
        client = clients.get(slug)
        if client is None:
            raise LegacyImportError(f"line {line}: no client with slug {slug!r}")
        if provider not in Provider.values:
            raise LegacyImportError(f"line {line}: unknown provider {provider!r}")
        label = label or "default"
        if (slug, provider, label) in seen:
            raise LegacyImportError(f"line {line}: {slug}/{provider}/{label} appears twice")
        seen.add((slug, provider, label))
        try:
            plaintext = crypto.decrypt(record["value"].strip(), aad=None, ring=ring, iv_lengths=LEGACY_IV_LENGTHS).decode("utf-8")
        except (crypto.DecryptionError, UnicodeDecodeError):
            raise LegacyImportError(f"line {line}: the value does not open with the legacy key") from None
        secret = plaintext
        if SECRET_FIELDS[Provider(provider)] != ("api_key",):
            try:
                secret = json.loads(plaintext)
            except ValueError:
                raise LegacyImportError(f"line {line}: a {provider} value must decrypt to a JSON object") from None
        try:
            secret = normalize_secret(Provider(provider), secret)
        except ValidationError as error:
            raise LegacyImportError(f"line {line}: {' '.join(error.messages)}") from None
        rows.append(LegacyRow(line, client, provider, label, secret))
    return rows
