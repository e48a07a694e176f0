"""Writes to the vault, and the one function that decrypts.

Every set, delete and reveal writes an audit event in the same transaction:
who, which credential (provider, label, fingerprint) and why. Never the value.

The services run in the caller's context: a client's own (`tenant_context`,
the API), staff (admin) or the service role (operator commands). In a
client's context they act only on that client's credentials; RLS would refuse
anything else too, but only after the work was done and with a database error.
"""

from __future__ import annotations

import base64
import binascii
import re
from urllib.parse import urlparse

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from tenants.context import APP_ALIAS, current_alias, current_client_id
from tenants.models import User
from tenants.services import actor_fields, audit_record
from vault.models import IntegrationCredential, Provider

SECRET_FIELDS = {
    Provider.SENDGRID: ("api_key",),
    Provider.ANTHROPIC: ("api_key",),
    Provider.SALESFORCE: ("client_id", "client_secret", "refresh_token"),
}
# The secret field whose last four characters tell keys apart.
FINGERPRINT_FIELD = {
    Provider.SENDGRID: "api_key",
    Provider.ANTHROPIC: "api_key",
    Provider.SALESFORCE: "client_secret",
}
SETTINGS_FIELDS = {
    Provider.SENDGRID: {"sender", "event_webhook_public_key"},
    Provider.ANTHROPIC: {"model"},
    Provider.SALESFORCE: {"instance_url", "login_url"},
}
MAX_SECRET_LENGTH = 4096
# The fingerprint shows the last four characters: on a short value that would
# be most of the secret. Real provider keys are far longer.
MIN_FINGERPRINTED_LENGTH = 16
SALESFORCE_LOGIN_HOSTS = {"login.salesforce.com", "test.salesforce.com"}
# Instance URLs are hosts under salesforce.com: My Domain
# (acme.my.salesforce.com), sandboxes (acme--uat.sandbox.my.salesforce.com)
# and classic instances (na1.salesforce.com). Anything else could receive the
# access token that the Salesforce gateway sends there.
SALESFORCE_INSTANCE_HOST = re.compile(r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+salesforce\.com")


def _validate_provider(provider: str) -> Provider:
    if provider not in Provider.values:
        raise ValidationError({"provider": f"Unknown provider {provider!r}. Choose from {', '.join(Provider.values)}."})
    return Provider(provider)


@sensitive_variables("secret")
def normalize_secret(provider: Provider, secret) -> dict:
    """The provider's secret as a dict: a bare string is the API key."""
    fields = SECRET_FIELDS[provider]
    if isinstance(secret, str) and fields == ("api_key",):
        secret = {"api_key": secret}
    if not isinstance(secret, dict):
        raise ValidationError({"secret": f"{provider.label} needs {', '.join(fields)}."})
    unknown = sorted(set(secret) - set(fields))
    missing = [f for f in fields if not isinstance(secret.get(f), str) or not secret[f].strip()]
    if unknown:
        raise ValidationError({"secret": f"Unknown field(s) for {provider.label}: {', '.join(unknown)}."})
    if missing:
        raise ValidationError({"secret": f"{provider.label} needs a non-empty {', '.join(missing)}."})
    secret = {f: secret[f].strip() for f in fields}
    if any(len(secret[f]) > MAX_SECRET_LENGTH for f in fields):
        raise ValidationError({"secret": f"A secret field is longer than {MAX_SECRET_LENGTH} characters."})
    fingerprinted = FINGERPRINT_FIELD[provider]
    if len(secret[fingerprinted]) < MIN_FINGERPRINTED_LENGTH:
        raise ValidationError(
            {"secret": f"{fingerprinted} is shorter than {MIN_FINGERPRINTED_LENGTH} characters: not a {provider.label} key."}
        )
    return secret


def _https_url(value, name: str, *, hosts: set[str] | None = None) -> str:
    parsed = urlparse(value if isinstance(value, str) else "")
    # User info or a port would let `https://evil.example\@login.salesforce.com`
    # pass for a Salesforce host here and reach another one in an HTTP client.
    if parsed.scheme != "https" or not parsed.hostname or parsed.netloc.lower() != parsed.hostname:
        raise ValidationError({"settings": f"{name} must be an https:// URL."})
    if hosts is not None and parsed.hostname not in hosts:
        raise ValidationError({"settings": f"{name} must be one of: {', '.join(sorted(hosts))}."})
    return value.rstrip("/")


def _salesforce_instance_url(value) -> str:
    """`https://<host>` for a host under salesforce.com, nothing else: no
    user info, port, path, query or fragment that could redirect the token."""
    parsed = urlparse(value.strip() if isinstance(value, str) else "")
    host = (parsed.hostname or "").lower()
    if (
        parsed.scheme != "https"
        or parsed.netloc.lower() != host
        or parsed.path not in ("", "/")
        or parsed.params or parsed.query or parsed.fragment
        or not SALESFORCE_INSTANCE_HOST.fullmatch(host)
    ):
        raise ValidationError(
            {"settings": "instance_url must be your Salesforce instance, https://<domain>.my.salesforce.com."}
        )
    return f"https://{host}"


def normalize_settings(provider: Provider, settings: dict | None) -> dict:
    settings = dict(settings or {})
    unknown = sorted(set(settings) - SETTINGS_FIELDS[provider])
    if unknown:
        raise ValidationError({"settings": f"Unknown setting(s) for {provider.label}: {', '.join(unknown)}."})
    if provider == Provider.SENDGRID:
        if "sender" in settings:
            try:
                validate_email(settings["sender"])
            except (ValidationError, TypeError):
                raise ValidationError({"settings": "sender must be an email address."}) from None
        if "event_webhook_public_key" in settings:
            try:
                key = load_der_public_key(base64.b64decode(settings["event_webhook_public_key"], validate=True))
            except (binascii.Error, ValueError, TypeError):
                raise ValidationError(
                    {"settings": "event_webhook_public_key must be SendGrid's base64 public key."}
                ) from None
            if not isinstance(key, ec.EllipticCurvePublicKey):
                raise ValidationError({"settings": "event_webhook_public_key must be an ECDSA (P-256) key."})
    if provider == Provider.SALESFORCE:
        if "instance_url" in settings:
            settings["instance_url"] = _salesforce_instance_url(settings["instance_url"])
        if "login_url" in settings:
            settings["login_url"] = _https_url(settings["login_url"], "login_url", hosts=SALESFORCE_LOGIN_HOSTS)
    if provider == Provider.ANTHROPIC and "model" in settings:
        if not isinstance(settings["model"], str) or not 0 < len(settings["model"]) <= 100:
            raise ValidationError({"settings": "model must be a model id such as claude-sonnet-4-5."})
    return settings


def _validate_label(label: str) -> str:
    label = (label or "default").strip()
    if not 0 < len(label) <= 100:
        raise ValidationError({"label": "A label has 1 to 100 characters."})
    return label


def _require_own_client(client_id: int) -> None:
    if current_alias() == APP_ALIAS and current_client_id() != client_id:
        raise PermissionDenied("In a client's context only that client's credentials can be changed or read.")


def _describe(credential: IntegrationCredential) -> dict:
    return {"provider": credential.provider, "label": credential.label, "fingerprint": credential.fingerprint}


@sensitive_variables("secret")
def credential_set(
    *, client_id: int, provider: str, label: str = "default", secret: str | dict | None,
    settings: dict | None = None, actor: User | str | None, reason: str, ip: str | None = None,
) -> IntegrationCredential:
    """Create a credential, or replace the secret and settings of the one
    with the same provider and label (a replaced secret sets `rotated_at`).
    `secret=None` keeps an existing credential's secret and changes only its
    settings. A bare string is the API key of SendGrid or Anthropic."""
    _require_own_client(client_id)
    provider = _validate_provider(provider)
    label = _validate_label(label)
    if secret is not None:
        secret = normalize_secret(provider, secret)
    settings = normalize_settings(provider, settings)
    try:
        return _store(client_id, provider, label, secret, settings, actor, reason, ip)
    except IntegrityError:
        # Another request created the same provider and label between our
        # lookup and our insert: the row exists now, so this becomes a replace.
        return _store(client_id, provider, label, secret, settings, actor, reason, ip)


@sensitive_variables("secret")
def _store(client_id, provider, label, secret, settings, actor, reason, ip) -> IntegrationCredential:
    with transaction.atomic(using=current_alias()):
        credential = (
            IntegrationCredential.objects.select_for_update()
            .filter(client_id=client_id, provider=provider, label=label)
            .first()
        )
        replacing = credential is not None
        if credential is None and secret is None:
            raise ValidationError({"secret": "A new credential needs its secret."})
        if credential is None:
            actor_info = actor_fields(actor)
            credential = IntegrationCredential(
                client_id=client_id, provider=provider, label=label,
                created_by_id=actor_info["actor_id"], created_by_label=actor_info["actor_label"],
            )
        elif secret is not None:
            credential.rotated_at = timezone.now()
        if secret is not None:
            credential.secret = secret
            credential.fingerprint = secret[FINGERPRINT_FIELD[provider]][-4:]
        credential.settings = settings
        credential.save()
        if not replacing:
            action = "credential.created"
        else:
            action = "credential.replaced" if secret is not None else "credential.settings_changed"
        audit_record(
            client_id=client_id, actor=actor, action=action,
            target=f"credential:{provider}:{label}", metadata={**_describe(credential), "reason": reason}, ip=ip,
        )
    return credential


def credential_delete(
    *, credential: IntegrationCredential, actor: User | str | None, reason: str, ip: str | None = None
) -> None:
    _require_own_client(credential.client_id)
    with transaction.atomic(using=current_alias()):
        audit_record(
            client_id=credential.client_id, actor=actor, action="credential.deleted",
            target=f"credential:{credential.provider}:{credential.label}",
            metadata={**_describe(credential), "reason": reason}, ip=ip,
        )
        credential.delete()


def credential_reveal(*, credential: IntegrationCredential, actor: User | str | None, purpose: str) -> dict:
    """The plaintext secret, for an integration gateway about to call the
    provider. The only function that decrypts; every call is audited."""
    _require_own_client(credential.client_id)
    if not purpose:
        raise ValueError("credential_reveal needs a purpose for the audit log")
    with transaction.atomic(using=current_alias()):
        audit_record(
            client_id=credential.client_id, actor=actor, action="credential.revealed",
            target=f"credential:{credential.provider}:{credential.label}",
            metadata={**_describe(credential), "purpose": purpose},
        )
        return credential.secret.reveal()
