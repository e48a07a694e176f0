"""Authentication: the one narrow path that reads users before a client
context exists.

The user table is a tenant table: with no context the app role sees no user
at all, and it never sees staff. To log someone in we therefore ask the
database a narrow question through SECURITY DEFINER functions in schema `app`
(see the `add_auth_lookup` migration):

    app.auth_identity_by_email(email) -> (user_id, client_id, is_staff)
    app.auth_identity_by_id(user_id)  -> (user_id, client_id, is_staff)

and, for OAuth credentials, whose they are (see `owner_of`):

    app.oauth_access_token_owner(checksum)  -> (client_id, is_staff)
    app.oauth_refresh_token_owner(checksum) -> (client_id, is_staff)
    app.oauth_grant_owner(code)             -> (client_id, is_staff)
    app.oauth_application_owner(client_id)  -> (client_id, is_staff)

They return only who the account or credential belongs to, for one exact
key, and only for active accounts. The two account lookups run on the
service connection, the only role allowed to call them: an email or a user id
is guessable, so SQL injected on the app connection must not be able to ask
(it could list every client's users). The OAuth lookups stay on the app
connection; their keys are the credentials themselves. The full row (password hash included) is then read under the
account's own context: the staff role for staff, the app role with the
client's id for a client_admin. Nothing else in the code base reads users
outside a context.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass

from django.contrib.auth.backends import BaseBackend
from django.db import connections
from django.db.models import F
from django.utils import timezone

from tenants.context import APP_ALIAS, SERVICE_ALIAS, STAFF_ALIAS, staff_context, tenant_context
from tenants.models import User


@dataclass(frozen=True)
class Identity:
    user_id: int
    client_id: int | None
    is_staff: bool


def _identity(function: str, argument) -> Identity | None:
    with connections[SERVICE_ALIAS].cursor() as cursor:
        cursor.execute(f"SELECT user_id, client_id, is_staff FROM app.{function}(%s)", [argument])
        row = cursor.fetchone()
    return Identity(*row) if row else None


def identity_by_email(email: str) -> Identity | None:
    if not email or len(email) > 254:
        return None
    return _identity("auth_identity_by_email", email)


def identity_by_id(user_id: int) -> Identity | None:
    return _identity("auth_identity_by_id", int(user_id))


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
        try:
            identity = identity_by_id(int(user_id))
        except (TypeError, ValueError):
            return None
        return load_user(identity) if identity else None


def record_last_login(sender, user, **kwargs) -> None:
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
