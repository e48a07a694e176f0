"""Bearer tokens on every API request, and the request's tenant context.

`BearerTenantContextMiddleware` runs for `/api/` paths that carry
`Authorization: Bearer ...`. It asks the database whose token it is through
the narrow lookup (`app.oauth_access_token_owner`, see tenants/auth.py), then
opens that owner's context (the app role with the token's client, or the
staff role for a staff user's token) around the whole view. Inside it, the
token row is read and checked: not expired, user active, client active. The
request is one transaction; a 4xx or 5xx answer rolls it back, so a refused
request never leaves half a write behind.

`BearerTokenAuthentication` (DRF) then only hands DRF what the middleware
found, or refuses with 401 and `WWW-Authenticate: Bearer`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from django.db import transaction
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication

from tenants.auth import context_for, owner_of
from tenants.context import current_alias
from tenants.models import OAuthAccessToken, OAuthApplication

API_PREFIX = "/api/"
MAX_TOKEN_LENGTH = 512


@dataclass
class ApplicationPrincipal:
    """Who a client-credentials token acts as: the client's own server."""

    application: OAuthApplication
    is_authenticated: bool = field(default=True, init=False)
    is_active: bool = field(default=True, init=False)
    is_staff: bool = field(default=False, init=False)
    is_super_admin: bool = field(default=False, init=False)
    role: str = field(default="client_application", init=False)
    pk: None = field(default=None, init=False)

    @property
    def client_id(self) -> int:
        return self.application.tenant_id

    @property
    def client(self):
        return self.application.tenant

    @property
    def email(self) -> str:
        return ""

    def __str__(self) -> str:
        return f"app:{self.application.name or self.application.client_id}"


def bearer_token(request) -> str | None:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return value.strip()


def token_checksum(raw_token: str) -> str:
    return hashlib.sha256(raw_token.encode("utf-8")).hexdigest()


def _load_token(raw_token: str) -> OAuthAccessToken | None:
    token = (
        OAuthAccessToken.objects.select_related("user", "user__client", "application", "application__tenant")
        .filter(token_checksum=token_checksum(raw_token))
        .first()
    )
    if token is None or token.is_expired():
        return None
    if token.user is not None:
        user = token.user
        if not user.is_active or (user.client is not None and not user.client.is_active):
            return None
        return token
    application = token.application
    if application is None or application.tenant is None or not application.tenant.is_active:
        return None
    return token


class BearerTenantContextMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not request.path.startswith(API_PREFIX):
            return self.get_response(request)
        raw = bearer_token(request)
        if raw is None:
            return self.get_response(request)
        owner = owner_of("access_token", token_checksum(raw)) if raw and len(raw) <= MAX_TOKEN_LENGTH else None
        if owner is None:
            request.sagerock_token_error = "invalid_token"
            return self.get_response(request)
        with context_for(client_id=owner.client_id, is_staff=owner.is_staff):
            token = _load_token(raw)
            if token is None:
                request.sagerock_token_error = "invalid_token"
            else:
                request.sagerock_access_token = token
                request.sagerock_principal = token.user or ApplicationPrincipal(token.application)
            response = self.get_response(request)
            if response.status_code >= 400:
                transaction.set_rollback(True, using=current_alias())
            return response


class BearerTokenAuthentication(BaseAuthentication):
    www_authenticate_realm = "api"

    def authenticate(self, request):
        django_request = request._request
        if bearer_token(django_request) is None:
            return None
        principal = getattr(django_request, "sagerock_principal", None)
        if principal is None:
            raise exceptions.AuthenticationFailed(
                "The access token is invalid, expired or revoked.", code="invalid_token"
            )
        return principal, django_request.sagerock_access_token

    def authenticate_header(self, request):
        return f'Bearer realm="{self.www_authenticate_realm}"'
