"""Writes for clients, users and the audit log.

Services run in whatever context the caller set up (an operator command under
`dangerously_bypass_rls`, the admin under `staff_context`) and write their
audit event in the same transaction, so a change and its record land together
or not at all.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.validators import validate_email, validate_slug
from django.db import IntegrityError, connections, transaction

from tenants.context import current_alias
from tenants.models import (
    STAFF_ROLES,
    AuditEvent,
    Client,
    OAuthAccessToken,
    OAuthDeviceGrant,
    OAuthGrant,
    OAuthIDToken,
    OAuthRefreshToken,
    Product,
    Role,
    User,
)


def actor_fields(actor: User | str | None) -> dict:
    """An actor is a user, a label such as "cli:alice", or nobody (system)."""
    if actor is None:
        return {"actor_id": None, "actor_label": "system"}
    if isinstance(actor, str):
        return {"actor_id": None, "actor_label": actor[:254]}
    return {"actor_id": actor.pk, "actor_label": actor.email}


def audit_record(
    *,
    client_id: int | None,
    actor: User | str | None,
    action: str,
    target: str = "",
    metadata: dict | None = None,
    ip: str | None = None,
) -> AuditEvent:
    return AuditEvent.objects.create(
        client_id=client_id,
        action=action,
        target=target[:200],
        metadata=metadata or {},
        ip=ip,
        **actor_fields(actor),
    )


def _validate_products(products: Iterable[str]) -> list[str]:
    products = list(dict.fromkeys(products))
    unknown = sorted(set(products) - {p.value for p in Product})
    if unknown:
        raise ValidationError(
            {"products": f"Unknown product(s): {', '.join(unknown)}. Choose from {', '.join(p.value for p in Product)}."}
        )
    return products


def _validate_column_text(model, field: str, value: str) -> None:
    """Refuse text the column would refuse, with a message instead of a
    DataError: PostgreSQL stores no NUL character and enforces max_length."""
    if "\x00" in value:
        raise ValidationError({field: "NUL characters are not allowed."})
    max_length = model._meta.get_field(field).max_length
    if len(value) > max_length:
        raise ValidationError({field: f"At most {max_length} characters (this has {len(value)})."})


def client_create(*, name: str, slug: str, products: Iterable[str] = (), actor: User | str | None) -> Client:
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": "A client needs a name."})
    _validate_column_text(Client, "name", name)
    try:
        validate_slug(slug)
    except ValidationError:
        raise ValidationError({"slug": "A slug has only letters, digits, hyphens and underscores."}) from None
    _validate_column_text(Client, "slug", slug)
    # Slugs are unique whatever their case (app.global_key compares them
    # lower-cased), so they are stored lower-case.
    slug = slug.lower()
    products = _validate_products(products)
    taken = ValidationError({"slug": f"A client with slug {slug!r} already exists."})
    with transaction.atomic(using=current_alias()):
        if Client.objects.filter(slug__iexact=slug).exists():
            raise taken
        try:
            with transaction.atomic(using=current_alias()):
                client = Client.objects.create(name=name, slug=slug, products=products)
        except IntegrityError:
            # Lost a race with another creation of the same slug.
            raise taken from None
        audit_record(
            client_id=client.pk, actor=actor, action="client.created", target=f"client:{client.slug}",
            metadata={"products": products},
        )
    return client


def _normalized_email(email: str) -> str:
    email = User.objects.normalize_email((email or "").strip()).lower()
    try:
        validate_email(email)
    except ValidationError:
        raise ValidationError({"email": f"{email!r} is not a valid email address."}) from None
    _validate_column_text(User, "email", email)
    return email


def _validate_role_and_client(role: str, client: Client | None) -> None:
    if role not in Role.values:
        raise ValidationError({"role": f"Unknown role {role!r}. Choose from {', '.join(Role.values)}."})
    if role == Role.CLIENT_ADMIN and client is None:
        raise ValidationError({"client": "A client_admin belongs to a client: pass the client."})
    if role in STAFF_ROLES and client is not None:
        raise ValidationError({"client": f"A {role} is staff and belongs to no client."})


def generate_password() -> str:
    return secrets.token_urlsafe(18)


def user_create(
    *,
    email: str,
    role: str,
    client: Client | None = None,
    password: str | None = None,
    full_name: str = "",
    actor: User | str | None,
) -> User:
    """Create an account. With no password the account cannot log in until
    one is set."""
    email = _normalized_email(email)
    _validate_column_text(User, "full_name", full_name)
    _validate_role_and_client(role, client)
    user = User(email=email, role=role, client=client, full_name=full_name)
    if password is None:
        user.set_unusable_password()
    else:
        validate_password(password, user)
        user.set_password(password)
    with transaction.atomic(using=current_alias()):
        if User.objects.filter(email__iexact=email).exists():
            raise ValidationError({"email": f"An account for {email} already exists."})
        try:
            with transaction.atomic(using=current_alias()):
                user.save()
        except IntegrityError:
            # Lost a race with another creation of the same email.
            raise ValidationError({"email": f"An account for {email} already exists."}) from None
        audit_record(
            client_id=user.client_id, actor=actor, action="user.created", target=f"user:{email}",
            metadata={"role": role},
        )
    return user


# pg_advisory_xact_lock key that serializes the last-super_admin check.
SUPER_ADMIN_GUARD_LOCK = 0x5A6E_0001


def ensure_a_super_admin_remains(user: User) -> None:
    """Refuse to demote or deactivate the last active super_admin: nobody
    could manage staff accounts any more. Call inside the transaction that
    makes the change."""
    if user.role != Role.SUPER_ADMIN or not user.is_active:
        return
    # Held until the transaction ends: two super_admins demoting each other at
    # once would otherwise each still see the other.
    with connections[current_alias()].cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [SUPER_ADMIN_GUARD_LOCK])
    others = User.objects.filter(role=Role.SUPER_ADMIN, is_active=True).exclude(pk=user.pk)
    if not others.exists():
        raise ValidationError("This is the last active super_admin; appoint another one first.")


def _user_oauth_revoke_all(user: User) -> int:
    """Delete every OAuth token and grant issued to the user; returns how many."""
    return sum(
        model.objects.filter(user=user).delete()[0]
        for model in (OAuthRefreshToken, OAuthAccessToken, OAuthIDToken, OAuthGrant, OAuthDeviceGrant)
    )


def user_set_role(
    *, user: User, role: str, client: Client | None = None, actor: User | str | None, ip: str | None = None
) -> User:
    _validate_role_and_client(role, client)
    client_id = client.pk if client else None
    with transaction.atomic(using=current_alias()):
        user = User.objects.select_for_update().get(pk=user.pk)
        if user.role == role and user.client_id == client_id:
            return user
        if role != Role.SUPER_ADMIN:
            ensure_a_super_admin_remains(user)
        previous = {"role": user.role, "client_id": user.client_id}
        metadata = {"from": previous["role"], "to": role}
        if user.client_id != client_id:
            # A token or grant belongs to its user's client (a same-client
            # foreign key, and the client its bearer acts for): a user who
            # changes client signs in again.
            metadata["oauth_revoked"] = _user_oauth_revoke_all(user)
        user.role = role
        user.client = client
        user.save(update_fields=["role", "client"])
        audit_record(
            client_id=user.client_id or previous["client_id"], actor=actor, action="user.role_changed",
            target=f"user:{user.email}", metadata=metadata, ip=ip,
        )
    return user


def user_set_active(*, user: User, is_active: bool, actor: User | str | None, ip: str | None = None) -> User:
    """Deactivate an account (it can no longer log in; its history stays) or
    reactivate it."""
    with transaction.atomic(using=current_alias()):
        user = User.objects.select_for_update().get(pk=user.pk)
        if user.is_active == is_active:
            return user
        if not is_active:
            ensure_a_super_admin_remains(user)
        user.is_active = is_active
        user.save(update_fields=["is_active"])
        audit_record(
            client_id=user.client_id, actor=actor, action="user.reactivated" if is_active else "user.deactivated",
            target=f"user:{user.email}", ip=ip,
        )
    return user


def client_profile_update(*, client: Client, name: str, actor, ip: str | None = None) -> Client:
    """A client_admin renames their own organization."""
    with transaction.atomic(using=current_alias()):
        previous = client.name
        client.name = name.strip()
        client.save(update_fields=["name"])
        audit_record(
            client_id=client.pk, actor=actor, action="client.profile_updated", target=f"client:{client.slug}",
            metadata={"fields": ["name"], "from": previous}, ip=ip,
        )
    return client


def client_update_by_staff(*, client: Client, changes: dict, actor, ip: str | None = None) -> Client:
    allowed = {"name", "status", "products"}
    changes = {key: value for key, value in changes.items() if key in allowed}
    if "products" in changes:
        changes["products"] = _validate_products(changes["products"])
    with transaction.atomic(using=current_alias()):
        for key, value in changes.items():
            setattr(client, key, value)
        if changes:
            client.save(update_fields=sorted(changes))
            audit_record(
                client_id=client.pk, actor=actor, action="client.changed", target=f"client:{client.slug}",
                metadata={"fields": sorted(changes)}, ip=ip,
            )
    return client


def api_application_create(*, client_id: int, name: str, actor, ip: str | None = None):
    """A server-to-server (client credentials) application acting for one
    client. Returns (application, client_secret); the secret is shown once
    and only its hash is stored."""
    from oauth2_provider.generators import generate_client_secret

    from tenants.models import OAuthApplication

    secret = generate_client_secret()
    with transaction.atomic(using=current_alias()):
        application = OAuthApplication.objects.create(
            tenant_id=client_id,
            name=name.strip(),
            client_type=OAuthApplication.CLIENT_CONFIDENTIAL,
            authorization_grant_type=OAuthApplication.GRANT_CLIENT_CREDENTIALS,
            client_secret=secret,
            hash_client_secret=True,
            skip_authorization=True,
        )
        audit_record(
            client_id=client_id, actor=actor, action="api_application.created",
            target=f"api_application:{application.client_id}", metadata={"name": application.name}, ip=ip,
        )
    return application, secret


def api_application_revoke(*, application, actor, ip: str | None = None) -> None:
    """Delete the application; its tokens go with it."""
    with transaction.atomic(using=current_alias()):
        audit_record(
            client_id=application.tenant_id, actor=actor, action="api_application.revoked",
            target=f"api_application:{application.client_id}", metadata={"name": application.name}, ip=ip,
        )
        application.delete()


def oauth_first_party_app_create(*, name: str, redirect_uris: list[str], allowed_origins: list[str], actor):
    """The browser front end: a public client using authorization code + PKCE,
    shared by every client's users."""
    from tenants.models import OAuthApplication

    if not redirect_uris:
        raise ValidationError({"redirect_uris": "Give at least one redirect URI."})
    with transaction.atomic(using=current_alias()):
        application = OAuthApplication(
            tenant=None,
            name=name.strip(),
            client_type=OAuthApplication.CLIENT_PUBLIC,
            authorization_grant_type=OAuthApplication.GRANT_AUTHORIZATION_CODE,
            redirect_uris=" ".join(redirect_uris),
            allowed_origins=" ".join(allowed_origins),
            skip_authorization=True,
            client_secret="",
            hash_client_secret=False,
        )
        application.full_clean(exclude=["client_secret", "user"])
        application.save()
        audit_record(
            client_id=None, actor=actor, action="oauth_app.created", target=f"oauth_app:{application.client_id}",
            metadata={"name": application.name, "redirect_uris": redirect_uris, "allowed_origins": allowed_origins},
        )
    return application
