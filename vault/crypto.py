"""AES-256-GCM as the vault stores it.

Stored form, exactly: base64(iv):base64(ciphertext):base64(tag) in standard
base64, a fresh random 12-byte IV per encryption and a 16-byte tag. The
associated data binds a value to its table, column, client and row, so a
ciphertext copied anywhere else fails to decrypt instead of yielding another
row's secret.
"""

from __future__ import annotations

import base64
import binascii
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from vault.keyring import Keyring, keyring

IV_BYTES = 12
TAG_BYTES = 16


class DecryptionError(Exception):
    """A stored value could not be decrypted: wrong key, tampered, moved, or
    not in the vault's format. The message never contains key, ciphertext or
    plaintext."""


def associated_data(*, table: str, column: str, client_id: int, row_id: str) -> bytes:
    return f"sagerock-vault:v1|{table}|{column}|{client_id}|{row_id}".encode()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def encrypt(plaintext: bytes, *, aad: bytes | None, key: bytes | None = None) -> str:
    cipher = AESGCM(key) if key is not None else keyring().ciphers[0]
    iv = os.urandom(IV_BYTES)
    sealed = cipher.encrypt(iv, plaintext, aad)
    return f"{_b64(iv)}:{_b64(sealed[:-TAG_BYTES])}:{_b64(sealed[-TAG_BYTES:])}"


def split(stored: str, *, iv_lengths: tuple[int, ...] = (IV_BYTES,)) -> tuple[bytes, bytes, bytes]:
    parts = stored.split(":") if isinstance(stored, str) else []
    if len(parts) != 3:
        raise DecryptionError("not a vault value (expected iv:ciphertext:tag)")
    try:
        iv, ciphertext, tag = (base64.b64decode(part, validate=True) for part in parts)
    except (binascii.Error, ValueError):
        raise DecryptionError("not a vault value (a part is not standard base64)") from None
    # Base64 ignores the unused low bits of a part's last character, so two
    # stored strings could open to the same value; only the canonical spelling
    # is accepted, which makes every changed character of the stored string fail.
    if [_b64(iv), _b64(ciphertext), _b64(tag)] != parts:
        raise DecryptionError("not a vault value (a part is not canonical standard base64)")
    if len(iv) not in iv_lengths or len(tag) != TAG_BYTES:
        ivs = " or ".join(str(n) for n in iv_lengths)
        raise DecryptionError(f"not a vault value (IV must be {ivs} bytes and tag {TAG_BYTES})")
    return iv, ciphertext, tag


def decrypt(
    stored: str, *, aad: bytes | None, ring: Keyring | None = None, iv_lengths: tuple[int, ...] = (IV_BYTES,)
) -> bytes:
    return decrypt_with_index(stored, aad=aad, ring=ring, iv_lengths=iv_lengths)[0]


def decrypt_with_index(
    stored: str, *, aad: bytes | None, ring: Keyring | None = None, iv_lengths: tuple[int, ...] = (IV_BYTES,)
) -> tuple[bytes, int]:
    """Plaintext and the position of the key that opened it (0 = primary).
    `iv_lengths` widens the accepted IV sizes for foreign values only (the
    legacy import); the vault's own values are always 12 bytes."""
    iv, ciphertext, tag = split(stored, iv_lengths=iv_lengths)
    ring = ring or keyring()
    for index, cipher in enumerate(ring.ciphers):
        try:
            return cipher.decrypt(iv, ciphertext + tag, aad), index
        except InvalidTag:
            continue
    raise DecryptionError("no configured key opens this value for this row (wrong key, tampered or moved)")
