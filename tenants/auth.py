"""Authentication: the one narrow path that reads users before a client
context exists.

The user table is a tenant table: with no context the app role sees no user
at all, and it never sees staff. To log someone in we therefore ask the
database a narrow question through a SECURITY DEFINER function in schema
`app` (tenants migrations 0002, 0014, 0016):

    app.auth_identity_by_email(email, proof) -> (user_id, client_id, is_staff)

which answers only with the application's proof (an HMAC under
TENANT_CONTEXT_SECRET, bound to this backend and transaction) for that
email, so SQL injected on the app connection cannot ask about emails of its
choosing,

and, for OAuth credentials, whose they are (see `owner_of`):

    app.oauth_access_token_owner(checksum)  -> (client_id, is_staff)
    app.oauth_refresh_token_owner(checksum) -> (client_id, is_staff)
    app.oauth_grant_owner(code)             -> (client_id, is_staff)
    app.oauth_application_owner(client_id)  -> (client_id, is_staff)

They return only who the account or credential belongs to, for one exact
key, and only for active accounts. The full row (password hash included) is
then read under the account's own context: the staff role for staff, the app
role with the client's id for a client_admin. Nothing else in the code base
reads users outside a context.

A signed-in session needs no lookup at all: at sign-in the session records
the account's client and staff flag beside its id (sessions are signed
cookies, so nobody can change them), and each request reads the account in
that context. There is deliberately no lookup by user id: ids are guessable,
and SQL injected on the app connection could have listed every client's
users through it.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from contextvars import ContextVar
from dataclasses import dataclass

from django.contrib.auth.backends import BaseBackend
from django.db import DatabaseError, connections, transaction
from django.db.models import F
from django.http import HttpRequest
from django.utils import timezone

from tenants import context_proof
from tenants.context import APP_ALIAS, STAFF_ALIAS, staff_context, tenant_context
from tenants.models import User


@dataclass(frozen=True)
class Identity:
    user_id: int
    client_id: int | None
    is_staff: bool


PROOF_REFUSED = "42501"  # insufficient_privilege, raised by the lookup


def identity_by_email(email: str) -> Identity | None:
    """The lookup answers only with a proof, made with TENANT_CONTEXT_SECRET,
    that the application asks for this email in this transaction: SQL on the
    app connection cannot ask for emails of its choosing."""
    if not email or len(email) > 254 or "\x00" in email:
        return None
    key = context_proof.secret()
    try:
        with transaction.atomic(using=APP_ALIAS), connections[APP_ALIAS].cursor() as cursor:
            backend_pid, started = context_proof.transaction_binding(cursor)
            lookup_proof = context_proof.proof(key, f"email:{email}", backend_pid, started)
            cursor.execute(
                "SELECT user_id, client_id, is_staff FROM app.auth_identity_by_email(%s, %s)", [email, lookup_proof]
            )
            row = cursor.fetchone()
    except DatabaseError as error:
        if getattr(error.__cause__, "sqlstate", None) == PROOF_REFUSED:
            raise context_proof.refused(key) from None
        raise
    return Identity(*row) if row else None


# The signed-in account's client and staff flag, kept in the (signed) session.
PRINCIPAL_SESSION_KEY = "_sagerock_principal"
_current_request: ContextVar[HttpRequest | None] = ContextVar("sagerock_current_request", default=None)


class CurrentRequestMiddleware:
    """Lets the backend's `get_user(user_id)`, which Django calls without the
    request, read the principal from the request's session."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        token = _current_request.set(request)
        try:
            return self.get_response(request)
        finally:
            _current_request.reset(token)


def identity_from_session(user_id) -> Identity | None:
    request = _current_request.get()
    principal = request.session.get(PRINCIPAL_SESSION_KEY) if request is not None else None
    if not isinstance(principal, list) or len(principal) != 2:
        return None
    client_id, is_staff = principal
    try:
        return Identity(int(user_id), None if client_id is None else int(client_id), bool(is_staff))
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True)
class Owner:
    client_id: int | None
    is_staff: bool


OWNER_LOOKUPS = {
    "access_token": "oauth_access_token_owner",
    "refresh_token": "oauth_refresh_token_owner",
    "grant": "oauth_grant_owner",
    "application": "oauth_application_owner",
}


def owner_of(kind: str, key: str) -> Owner | None:
    """Whose OAuth credential is this? None when unknown (or the owner may
    not be served: a client credential of no client)."""
    if not key or len(key) > 512:
        return None
    with connections[APP_ALIAS].cursor() as cursor:
        cursor.execute(f"SELECT client_id, is_staff FROM app.{OWNER_LOOKUPS[kind]}(%s)", [key])
        row = cursor.fetchone()
    if row is None:
        return None
    owner = Owner(*row)
    if owner.client_id is None and not owner.is_staff:
        return None
    return owner


def context_for(*, client_id: int | None, is_staff: bool) -> AbstractContextManager:
    """The context an account's own requests run in."""
    if is_staff:
        return staff_context()
    if client_id is None:
        raise ValueError("a client account needs a client id")
    return tenant_context(client_id)


def context_for_user(user: User) -> AbstractContextManager:
    return context_for(client_id=user.client_id, is_staff=user.is_staff)


def load_user(identity: Identity) -> User | None:
    """Read the whole account under its own context; None when it may not log
    in (inactive, or its client is suspended)."""
    alias = STAFF_ALIAS if identity.is_staff else APP_ALIAS
    with context_for(client_id=identity.client_id, is_staff=identity.is_staff):
        user = User.objects.using(alias).select_related("client").filter(pk=identity.user_id).first()
    if user is None or not user_can_authenticate(user):
        return None
    return user


def user_can_authenticate(user: User) -> bool:
    if not user.is_active:
        return False
    if user.client is not None and not user.client.is_active:
        return False
    return True


class TenantAwareBackend(BaseBackend):
    """Email + password login over the narrow lookup path."""

    def authenticate(self, request, username=None, password=None, email=None, **kwargs):
        email = email or username
        if not email or password is None:
            return None
        identity = identity_by_email(email)
        user = load_user(identity) if identity else None
        if user is None:
            # Spend the same time as a real check, so response times do not
            # reveal which emails have accounts.
            User().set_password(password)
            return None
        if not user.check_password(password):
            return None
        return user

    def get_user(self, user_id):
        # Django then checks the session hash against the account it loaded.
        identity = identity_from_session(user_id)
        return load_user(identity) if identity else None


def record_sign_in(sender, request, user, **kwargs) -> None:
    if request is not None and hasattr(request, "session"):
        request.session[PRINCIPAL_SESSION_KEY] = [user.client_id, user.is_staff]
    with context_for_user(user):
        User.objects.filter(pk=user.pk).update(last_login=timezone.now())


def end_every_session(sender, user, **kwargs) -> None:
    """On sign-out: sessions are signed cookies, so a copy of one would
    outlive the logout; bumping the epoch changes the account's session hash
    and so ends every session of the account, on every device."""
    if user is None:
        return
    with context_for_user(user):
        User.objects.filter(pk=user.pk).update(session_epoch=F("session_epoch") + 1)
