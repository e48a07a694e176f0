"""The OAuth 2.0 endpoints, run inside the right tenant context.

The authorization endpoint needs a logged-in user, so it runs in that user's
session context (SessionTenantContextMiddleware). The token and revocation
endpoints carry no session: before the toolkit touches a table, the credential
in the request (authorization code, refresh token, client id, token) is
resolved to its owner through the narrow lookup (tenants.auth.owner_of), and
the toolkit then runs in that owner's context. An unknown credential runs with
no client at all, so the toolkit finds nothing and answers `invalid_grant`.

Their errors keep RFC 6749's `error` and `error_description` and also carry
the API's error shape (`code`, `detail`, `fields`), so one parser reads every
SageRock error.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from contextlib import nullcontext
from urllib.parse import unquote_plus

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.http import JsonResponse
from django.utils.decorators import method_decorator
from oauth2_provider import views as oauth_views
from oauth2_provider.oauth2_validators import OAuth2Validator

from sagerock.api.authentication import token_checksum
from sagerock.api.exceptions import error_body
from sagerock.ratelimits import rate_limited
from tenants.auth import Owner, context_for, owner_of, user_can_authenticate
from tenants.models import OAuthApplication


def _basic_auth_client_id(request) -> str | None:
    scheme, _, value = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    client_id, _, _ = decoded.partition(":")
    return unquote_plus(client_id)


def token_request_owner(request) -> Owner | None:
    grant_type = request.POST.get("grant_type", "")
    if grant_type == "authorization_code":
        return owner_of("grant", request.POST.get("code", ""))
    if grant_type == "refresh_token":
        return owner_of("refresh_token", token_checksum(request.POST.get("refresh_token", "")))
    if grant_type == "client_credentials":
        client_id = request.POST.get("client_id") or _basic_auth_client_id(request) or ""
        return owner_of("application", client_id)
    return None


def revocation_owner(request) -> Owner | None:
    checksum = token_checksum(request.POST.get("token", ""))
    kinds = ("refresh_token", "access_token")
    if request.POST.get("token_type_hint") != "refresh_token":
        kinds = ("access_token", "refresh_token")
    for kind in kinds:
        owner = owner_of(kind, checksum)
        if owner is not None:
            return owner
    return None


def _owner_context(owner: Owner | None):
    if owner is None:
        return nullcontext()
    return context_for(client_id=owner.client_id, is_staff=owner.is_staff)


class ActiveClientValidator(OAuth2Validator):
    """Issues no token for a suspended client: not to its applications
    (`invalid_client`), nor to its users through a code or a refresh token
    (`invalid_grant`). The API refuses such tokens too; this keeps them from
    being issued at all."""

    def authenticate_client(self, request, *args, **kwargs):
        if not super().authenticate_client(request, *args, **kwargs):
            return False
        tenant = request.client.tenant
        return tenant is None or tenant.is_active

    def validate_code(self, client_id, code, client, request, *args, **kwargs):
        valid = super().validate_code(client_id, code, client, request, *args, **kwargs)
        return valid and user_can_authenticate(request.user)

    def validate_refresh_token(self, refresh_token, client, request, *args, **kwargs):
        valid = super().validate_refresh_token(refresh_token, client, request, *args, **kwargs)
        return valid and user_can_authenticate(request.user)


# RFC 6749 section 5.2 and RFC 7009 error codes, as sentences.
OAUTH_ERROR_DETAILS = {
    "invalid_request": "The request is missing a parameter or is malformed.",
    "invalid_client": "Client authentication failed.",
    "invalid_grant": "The authorization code or refresh token is invalid, expired or revoked.",
    "unauthorized_client": "This client may not use this grant type.",
    "unsupported_grant_type": "This grant type is not supported.",
    "invalid_scope": "The requested scope is invalid.",
    "unsupported_token_type": "This token type cannot be revoked.",
}


def _with_error_shape(response):
    """Add `code`, `detail` and `fields` to the toolkit's 4xx answer."""
    if not 400 <= response.status_code < 500:
        return response
    try:
        body = json.loads(response.content or b"{}")
    except ValueError:
        body = {}
    error = body.get("error") or "invalid_request"
    detail = body.get("error_description") or OAUTH_ERROR_DETAILS.get(error, "The OAuth request was refused.")
    response.content = json.dumps({**body, "error": error, **error_body(error, detail)})
    response["Content-Type"] = "application/json"
    return response


class OAuthErrorShapeMixin:
    """A wrong method gets the error shape too, not Django's empty HTML 405."""

    def http_method_not_allowed(self, request, *args, **kwargs):
        body = {"error": "invalid_request", **error_body("method_not_allowed", f'Method "{request.method}" not allowed.')}
        response = JsonResponse(body, status=405)
        response["Allow"] = ", ".join(self._allowed_methods())
        return response


# Grants the toolkit knows but SageRock does not offer, refused before the
# toolkit looks at them: the device grant would look a device code up with no
# client context (a 500 on a missing one); the password grant would check a
# user's credentials before checking that the application may use it, which
# tells right passwords from wrong ones without the login page's CSRF check.
UNOFFERED_GRANTS = {"urn:ietf:params:oauth:grant-type:device_code", "password"}


@method_decorator(rate_limited("auth"), name="post")
class TokenView(OAuthErrorShapeMixin, oauth_views.TokenView):
    validator_class = ActiveClientValidator

    def post(self, request, *args, **kwargs):
        if request.POST.get("grant_type") in UNOFFERED_GRANTS:
            return _with_error_shape(JsonResponse({"error": "unsupported_grant_type"}, status=400))
        # No rollback on an error answer: refresh-token reuse detection
        # revokes the token family and then answers invalid_grant.
        with _owner_context(token_request_owner(request)):
            return _with_error_shape(super().post(request, *args, **kwargs))


class RevokeTokenView(OAuthErrorShapeMixin, oauth_views.RevokeTokenView):
    def post(self, request, *args, **kwargs):
        with _owner_context(revocation_owner(request)):
            return _with_error_shape(super().post(request, *args, **kwargs))


@method_decorator(rate_limited("auth", methods=("POST",)), name="dispatch")
class LoginView(auth_views.LoginView):
    """The login step of the authorization flow. There is no sign-up."""

    template_name = "registration/login.html"
    redirect_authenticated_user = False


def first_party_origin_allowed(sender, request, **kwargs) -> bool:
    """django-cors-headers hook: also allow the origins registered on a
    first-party application (`create_oauth_app --allowed-origin`).

    django-cors-headers serves a path that matches CORS_URLS_REGEX *or* that
    this hook allows, so the hook keeps to those paths itself (which also
    spares every other request the query)."""
    origin = request.headers.get("Origin")
    if not origin or not re.match(settings.CORS_URLS_REGEX, request.path_info):
        return False
    origins = OAuthApplication.objects.filter(tenant__isnull=True).values_list("allowed_origins", flat=True)
    return any(origin in (allowed or "").split() for allowed in origins)
