"""The tenant context: which database role a piece of code runs as, and for
which client.

A context variable holds the alias (`app`, `staff`, `service`) and, for `app`,
the client id. The DB router reads the alias; `tenant_context` writes the
client id into the transaction (never the session), so a pooled or persistent
connection cannot carry one request's client into the next.

No context means alias `app` with no client: every tenant query returns nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from django.db import DatabaseError, connections, transaction

OWNER_ALIAS = "default"
APP_ALIAS = "app"
STAFF_ALIAS = "staff"
SERVICE_ALIAS = "service"


@dataclass(frozen=True)
class TenantState:
    alias: str = APP_ALIAS
    client_id: int | None = None


_state: ContextVar[TenantState] = ContextVar("sagerock_tenant_state", default=TenantState())  # noqa: B039 - frozen


def current_alias() -> str:
    return _state.get().alias


def current_client_id() -> int | None:
    return _state.get().client_id


def _validated_client_id(client_id: object) -> int:
    # bool is an int subclass; a stray True must not become client 1.
    if isinstance(client_id, bool) or not isinstance(client_id, int) or client_id <= 0:
        raise TypeError(f"client_id must be a positive integer, not {client_id!r}")
    return client_id


def apply_client_setting(connection, client_id: int | None) -> None:
    """Set (or clear, with None) the client of the connection's current
    transaction. Callers must already be inside a transaction."""
    from tenants import context_proof

    if client_id is not None:
        client_id = _validated_client_id(client_id)
    context_proof.set_transaction_client(connection, client_id)


@contextmanager
def tenant_context(client_id: int) -> Iterator[None]:
    """Run the block as `sagerock_app` for one client, inside a transaction.

    Nested use for another client restores the outer client on exit; on an
    exception the savepoint rollback restores it by itself.
    """
    client_id = _validated_client_id(client_id)
    outer = _state.get()
    connection = connections[APP_ALIAS]
    nested = connection.in_atomic_block
    token = _state.set(TenantState(APP_ALIAS, client_id))
    try:
        with transaction.atomic(using=APP_ALIAS):
            apply_client_setting(connection, client_id)
            yield
            outer_client = outer.client_id if outer.alias == APP_ALIAS else None
            if nested and outer_client != client_id and not connection.needs_rollback:
                apply_client_setting(connection, outer_client)
    finally:
        _state.reset(token)


@contextmanager
def staff_context() -> Iterator[None]:
    """Run the block as `sagerock_staff` (all clients), inside a transaction.
    Only for staff users: Django admin and the staff API."""
    token = _state.set(TenantState(STAFF_ALIAS, None))
    try:
        with transaction.atomic(using=STAFF_ALIAS):
            yield
    finally:
        _state.reset(token)


@contextmanager
def dangerously_bypass_rls(*, atomic: bool = True) -> Iterator[None]:
    """Run the block as `sagerock_service`, which bypasses Row Level Security.

    Only for operator commands that must cross clients (provisioning, key
    rotation, check_rls); never reachable from a web request. With
    `atomic=False` the block manages its own transactions (long resumable
    jobs that commit batch by batch).
    """
    token = _state.set(TenantState(SERVICE_ALIAS, None))
    try:
        if atomic:
            with transaction.atomic(using=SERVICE_ALIAS):
                yield
        else:
            yield
    finally:
        _state.reset(token)


@contextmanager
def owner_context() -> Iterator[None]:
    """Route ORM queries to `default` (the owner role) for schema work: the
    `migrate` command runs inside it, so data migrations that do not pass
    `using=` reach the connection that holds the migration's locks."""
    token = _state.set(TenantState(OWNER_ALIAS, None))
    try:
        yield
    finally:
        _state.reset(token)


def mark_used(execute, sql, params, many, context):
    """Execute wrapper on the app and staff connections (installed when each
    connection opens, tenants.apps): notes that the session ran SQL since the
    last reset."""
    context["connection"].sagerock_used = True
    return execute(sql, params, many, context)


def reset_runtime_connections(**kwargs) -> None:
    """`DISCARD ALL` on the app and staff connections that ran SQL, when a
    request or a task ends.

    Connections are reused (CONN_MAX_AGE), and the client context is set per
    transaction, but SQL injected in one client's request could still leave
    session state behind for the next request on the connection, another
    client's: `SET SESSION search_path` or `default_transaction_read_only`,
    advisory locks, LISTEN, cursors WITH HOLD, custom settings. DISCARD ALL
    drops all of it; Django's time zone is then set again. Runs after the
    response has gone out.
    """
    for alias in (APP_ALIAS, STAFF_ALIAS):
        connection = connections[alias]
        if not getattr(connection, "sagerock_used", False) or connection.connection is None:
            continue
        if connection.in_atomic_block:
            continue
        try:
            with connection.cursor() as cursor:
                cursor.execute("DISCARD ALL")
            connection.ensure_timezone()
            connection.sagerock_used = False
        except DatabaseError:
            # A broken connection is not reused.
            connection.close()


def watch_runtime_connection(sender, connection, **kwargs) -> None:
    if connection.alias in (APP_ALIAS, STAFF_ALIAS) and mark_used not in connection.execute_wrappers:
        connection.execute_wrappers.append(mark_used)
