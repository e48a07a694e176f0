"""Prove each transaction's client to the database.

`app.current_client_id()` (every tenant policy's only input) returns the
client id only when `app.client_proof` holds

    hex(HMAC-SHA256(TENANT_CONTEXT_SECRET, "<client_id>:<backend pid>:<transaction start, µs>"))

The database keeps the verification key in `app.tenant_context_key`, which
only the owner can read, through a SECURITY DEFINER function. SQL running on
the app connection (an injection, a raw query built from input) can still set
`app.client_id`, but it cannot produce the proof for another client, and a
proof it copies is bound to one backend and one transaction.
"""

from __future__ import annotations

import hashlib
import hmac

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

MIN_SECRET_LENGTH = 32


def secret() -> bytes:
    value = getattr(settings, "TENANT_CONTEXT_SECRET", "") or ""
    if len(value) < MIN_SECRET_LENGTH:
        raise ImproperlyConfigured(
            f"TENANT_CONTEXT_SECRET must be set to at least {MIN_SECRET_LENGTH} characters "
            "(for example: python -c 'import secrets; print(secrets.token_urlsafe(48))')."
        )
    return value.encode("utf-8")


def fingerprint(key: bytes) -> str:
    """Names a key in logs and the key table without revealing it."""
    return hashlib.sha256(b"sagerock-tenant-context-key:" + key).hexdigest()[:16]


def proof(key: bytes, client_id: int, backend_pid: int, transaction_start_us: int) -> str:
    message = f"{client_id}:{backend_pid}:{transaction_start_us}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def set_transaction_client(connection, client_id: int | None) -> None:
    """Set (or clear) the client of the connection's current transaction,
    with its proof. Two round trips: the proof needs the transaction's start."""
    with connection.cursor() as cursor:
        if client_id is None:
            cursor.execute("SELECT set_config('app.client_id', '', true), set_config('app.client_proof', '', true)")
            return
        cursor.execute("SELECT pg_backend_pid(), (extract(epoch FROM transaction_timestamp()) * 1000000)::bigint")
        backend_pid, started = cursor.fetchone()
        cursor.execute(
            "SELECT set_config('app.client_id', %s, true), set_config('app.client_proof', %s, true)",
            [str(client_id), proof(secret(), client_id, backend_pid, started)],
        )


def install_key(connection, *, key: bytes, retire_others_after_seconds: int | None = None) -> dict:
    """Make `key` valid in the database (idempotent). With
    `retire_others_after_seconds`, every other key expires after that overlap.
    Runs as the owner role, the only one that can touch the key table."""
    key_fingerprint = fingerprint(key)
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO app.tenant_context_key (fingerprint, secret) VALUES (%s, %s)
            ON CONFLICT (fingerprint) DO UPDATE SET expires_at = NULL
            RETURNING (xmax = 0)
            """,
            [key_fingerprint, key],
        )
        installed = cursor.fetchone()[0]
        retired = 0
        if retire_others_after_seconds is not None:
            cursor.execute(
                """
                UPDATE app.tenant_context_key
                SET expires_at = now() + make_interval(secs => %s)
                WHERE fingerprint <> %s AND (expires_at IS NULL OR expires_at > now() + make_interval(secs => %s))
                """,
                [retire_others_after_seconds, key_fingerprint, retire_others_after_seconds],
            )
            retired = cursor.rowcount
            cursor.execute("DELETE FROM app.tenant_context_key WHERE expires_at < now() - interval '1 day'")
        cursor.execute(
            "SELECT fingerprint, expires_at FROM app.tenant_context_key ORDER BY created_at"
        )
        keys = cursor.fetchall()
    return {"fingerprint": key_fingerprint, "installed": installed, "retired": retired, "keys": keys}
