"""The vault's keys, from the environment only.

`VAULT_KEYS` holds one or more standard-base64 32-byte keys separated by
commas: the first encrypts, every one decrypts (so a new key can be put first
and `rotate_vault_keys` re-encrypt under it before the old one is removed).
A missing, short or malformed key stops start-up (see vault/checks.py) with a
message that names the variable and the key's position, never its value.
"""

from __future__ import annotations

import base64
import binascii
import threading
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver

KEY_BYTES = 32
ORDINALS = ("first", "second", "third", "fourth", "fifth")


class KeyringError(ImproperlyConfigured):
    pass


@dataclass(frozen=True, repr=False)
class Keyring:
    keys: tuple[bytes, ...]
    # One AESGCM object per key, built once (building one costs more than
    # sealing a short secret).
    ciphers: tuple[AESGCM, ...] = field(init=False, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "ciphers", tuple(AESGCM(key) for key in self.keys))

    @property
    def primary(self) -> bytes:
        return self.keys[0]

    def __repr__(self) -> str:
        return f"Keyring({len(self.keys)} key(s))"


def _ordinal(index: int) -> str:
    return ORDINALS[index] if index < len(ORDINALS) else f"#{index + 1}"


def parse_keyring(value: str) -> Keyring:
    parts = [part.strip() for part in (value or "").split(",")]
    if not any(parts):
        raise KeyringError(
            "VAULT_KEYS is not set: give one or more base64-encoded 32-byte keys, comma-separated "
            "(generate one with: python -c 'import base64, os; print(base64.b64encode(os.urandom(32)).decode())')."
        )
    keys = []
    for index, part in enumerate(parts):
        try:
            key = base64.b64decode(part, validate=True)
        except (binascii.Error, ValueError):
            raise KeyringError(f"VAULT_KEYS: the {_ordinal(index)} key is not valid standard base64.") from None
        if len(key) != KEY_BYTES:
            raise KeyringError(
                f"VAULT_KEYS: the {_ordinal(index)} key decodes to {len(key)} bytes; AES-256 needs exactly {KEY_BYTES}."
            )
        keys.append(key)
    if len(set(keys)) != len(keys):
        raise KeyringError("VAULT_KEYS lists the same key twice.")
    return Keyring(tuple(keys))


_lock = threading.Lock()
_cached: tuple[str, Keyring] | None = None


def keyring() -> Keyring:
    """The configured keyring, parsed once per value of settings.VAULT_KEYS."""
    global _cached
    value = getattr(settings, "VAULT_KEYS", "")
    cached = _cached
    if cached is not None and cached[0] == value:
        return cached[1]
    with _lock:
        parsed = parse_keyring(value)
        _cached = (value, parsed)
    return parsed


@receiver(setting_changed)
def _forget_keyring(setting, **kwargs):
    global _cached
    if setting == "VAULT_KEYS":
        _cached = None
