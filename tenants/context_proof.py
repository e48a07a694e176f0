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
from django.db import transaction

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


def proof(key: bytes, subject: int | str, backend_pid: int, transaction_start_us: int) -> str:
    """The HMAC binding `subject` (a client id, or `email:<address>` for the
    sign-in lookup) to one backend and one transaction."""
    message = f"{subject}:{backend_pid}:{transaction_start_us}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def transaction_binding(cursor) -> tuple[int, int]:
    """(backend pid, transaction start in µs): what a proof is bound to."""
    cursor.execute("SELECT pg_backend_pid(), (extract(epoch FROM transaction_timestamp()) * 1000000)::bigint")
    return cursor.fetchone()


class TenantContextRefused(ImproperlyConfigured):
    """The database does not accept this process's TENANT_CONTEXT_SECRET
    (retired, expired or never installed). Raised instead of letting every
    tenant query quietly return no rows."""


class TenantContextKeyError(ImproperlyConfigured):
    """The configured key cannot be installed the way it was asked for: it is
    retired (expired or expiring), or `migrate` found a keyed database
    without it. Only the rotation command installs or reinstates a key."""


def set_transaction_client(connection, client_id: int | None) -> None:
    """Set (or clear) the client of the connection's current transaction,
    with its proof, and make sure the database accepted it. Two round trips:
    the proof needs the transaction's start; the check rides on the second
    (PostgreSQL evaluates the select list left to right, so
    `app.current_client_id()` sees the settings made before it)."""
    with connection.cursor() as cursor:
        if client_id is None:
            cursor.execute("SELECT set_config('app.client_id', '', true), set_config('app.client_proof', '', true)")
            return
        backend_pid, started = transaction_binding(cursor)
        key = secret()
        cursor.execute(
            "SELECT set_config('app.client_id', %s, true), set_config('app.client_proof', %s, true), "
            "app.current_client_id()",
            [str(client_id), proof(key, client_id, backend_pid, started)],
        )
        if cursor.fetchone()[2] != client_id:
            raise refused(key)


def refused(key: bytes) -> TenantContextRefused:
    return TenantContextRefused(
        f"The database refused the tenant-context proof made with TENANT_CONTEXT_SECRET (key "
        f"{fingerprint(key)}): that key is retired, expired or was never installed, so every tenant "
        "query would see nothing. Deploy the current TENANT_CONTEXT_SECRET, or install this one with "
        "`manage.py rotate_tenant_context_secret` (docs/security.md)."
    )


def _key_expiry(cursor, key_fingerprint: str, *, lock: bool = False) -> tuple[bool, object]:
    """(present, expires_at) of one key; expires_at None means valid."""
    cursor.execute(
        "SELECT expires_at FROM app.tenant_context_key WHERE fingerprint = %s" + (" FOR UPDATE" if lock else ""),
        [key_fingerprint],
    )
    row = cursor.fetchone()
    return (row is not None, row[0] if row else None)


def install_initial_key(connection, *, key: bytes) -> bool:
    """What `migrate` does: install `key` into a database that holds no key
    yet (a new database). It never changes an existing key, so a run with an
    old or leaked secret (a rollback deploy) cannot make it valid again, nor
    add a second key beside the current one. True when it installed the key;
    TenantContextKeyError unless the key is installed and valid."""
    key_fingerprint = fingerprint(key)
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO app.tenant_context_key (fingerprint, secret)
            SELECT %s, %s WHERE NOT EXISTS (SELECT 1 FROM app.tenant_context_key)
            ON CONFLICT (fingerprint) DO NOTHING
            RETURNING id
            """,
            [key_fingerprint, key],
        )
        if cursor.fetchone() is not None:
            return True
        present, expires_at = _key_expiry(cursor, key_fingerprint)
    if present and expires_at is None:
        return False
    if present:
        problem = "is retired in the database (expired or expiring after a rotation)"
        remedy = (
            "Set TENANT_CONTEXT_SECRET to the current secret; to go back to this key on purpose, run "
            "`manage.py rotate_tenant_context_secret --reinstate`."
        )
    else:
        problem = "is not installed in the database, which already holds other keys"
        remedy = (
            "Set TENANT_CONTEXT_SECRET to the current secret; to switch to this key, run "
            "`manage.py rotate_tenant_context_secret` first."
        )
    raise TenantContextKeyError(
        f"TENANT_CONTEXT_SECRET (key {key_fingerprint}) {problem}; migrate does not install or revive keys. {remedy}"
    )


def install_key(
    connection, *, key: bytes, retire_others_after_seconds: int | None = None, reinstate: bool = False
) -> dict:
    """Make `key` valid in the database (the rotation command). A key that
    is retired (expired, or expiring after an earlier rotation) is made valid
    again only with `reinstate=True`: going back to an old, perhaps leaked,
    key must be deliberate. With `retire_others_after_seconds`, every other
    key expires after that overlap. Runs as the owner role, the only one that
    can touch the key table."""
    key_fingerprint = fingerprint(key)
    installed = reinstated = False
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        present, expires_at = _key_expiry(cursor, key_fingerprint, lock=True)
        if not present:
            cursor.execute(
                "INSERT INTO app.tenant_context_key (fingerprint, secret) VALUES (%s, %s) "
                "ON CONFLICT (fingerprint) DO NOTHING",
                [key_fingerprint, key],
            )
            installed = cursor.rowcount == 1
        elif expires_at is not None:
            if not reinstate:
                raise TenantContextKeyError(
                    f"TENANT_CONTEXT_SECRET (key {key_fingerprint}) was retired (it expires or expired at "
                    f"{expires_at:%Y-%m-%d %H:%M:%S %Z}). Making a retired key valid again must be deliberate: "
                    "pass --reinstate, or set TENANT_CONTEXT_SECRET to a new secret."
                )
            cursor.execute("UPDATE app.tenant_context_key SET expires_at = NULL WHERE fingerprint = %s", [key_fingerprint])
            reinstated = True
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
    return {
        "fingerprint": key_fingerprint, "installed": installed, "reinstated": reinstated, "retired": retired,
        "keys": keys,
    }
