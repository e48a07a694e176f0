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
from django.db import IntegrityError, transaction

from tenants.context import current_alias
from tenants.models import STAFF_ROLES, AuditEvent, Client, Product, Role, User


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


def client_create(*, name: str, slug: str, products: Iterable[str] = (), actor: User | str | None) -> Client:
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": "A client needs a name."})
    try:
        validate_slug(slug)
    except ValidationError:
        raise ValidationError({"slug": "A slug has only letters, digits, hyphens and underscores."}) from None
    products = _validate_products(products)
    with transaction.atomic(using=current_alias()):
        if Client.objects.filter(slug=slug).exists():
            raise ValidationError({"slug": f"A client with slug {slug!r} already exists."})
        client = Client.objects.create(name=name, slug=slug, products=products)
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


def _ensure_a_super_admin_remains(user: User) -> None:
    if user.role != Role.SUPER_ADMIN:
        return
    others = User.objects.filter(role=Role.SUPER_ADMIN, is_active=True).exclude(pk=user.pk)
    if not others.exists():
        raise ValidationError({"role": "This is the last active super_admin; appoint another one first."})


def user_set_role(*, user: User, role: str, client: Client | None = None, actor: User | str | None) -> User:
    _validate_role_and_client(role, client)
    with transaction.atomic(using=current_alias()):
        user = User.objects.select_for_update().get(pk=user.pk)
        if user.role == role and user.client_id == (client.pk if client else None):
            return user
        if role != Role.SUPER_ADMIN:
            _ensure_a_super_admin_remains(user)
        previous = {"role": user.role, "client_id": user.client_id}
        user.role = role
        user.client = client
        user.save(update_fields=["role", "client"])
        audit_record(
            client_id=user.client_id or previous["client_id"], actor=actor, action="user.role_changed",
            target=f"user:{user.email}", metadata={"from": previous["role"], "to": role},
        )
    return user


def user_deactivate(*, user: User, actor: User | str | None) -> User:
    with transaction.atomic(using=current_alias()):
        user = User.objects.select_for_update().get(pk=user.pk)
        if not user.is_active:
            return user
        _ensure_a_super_admin_remains(user)
        user.is_active = False
        user.save(update_fields=["is_active"])
        audit_record(client_id=user.client_id, actor=actor, action="user.deactivated", target=f"user:{user.email}")
    return user
