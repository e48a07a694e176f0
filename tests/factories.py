"""Factories for tests: real rows through the real roles, no fixture files."""

from __future__ import annotations

import itertools

import pytest

from tenants.context import dangerously_bypass_rls
from tenants.models import Client, Role, User

_sequence = itertools.count(1)
PASSWORD = "correct horse battery staple"

ALL_DATABASES = ["default", "app", "staff", "service"]


def make_client(*, slug: str | None = None, status: str = Client.Status.ACTIVE, products=("marketing",)) -> Client:
    n = next(_sequence)
    slug = slug or f"client-{n}"
    with dangerously_bypass_rls():
        return Client.objects.create(name=f"Client {slug}", slug=slug, status=status, products=list(products))


def make_user(
    *, role: str = Role.CLIENT_ADMIN, client: Client | None = None, email: str | None = None,
    password: str = PASSWORD, is_active: bool = True,
) -> User:
    n = next(_sequence)
    email = email or f"user{n}@example.test"
    with dangerously_bypass_rls():
        user = User(email=email, role=role, client=client, is_active=is_active)
        user.set_password(password)
        user.save()
    return user


@pytest.fixture
def client_a():
    return make_client(slug="alpha")


@pytest.fixture
def client_b():
    return make_client(slug="bravo")


@pytest.fixture
def super_admin():
    return make_user(role=Role.SUPER_ADMIN, email="root@staff.test")


@pytest.fixture
def staff_admin():
    return make_user(role=Role.ADMIN, email="admin@staff.test")


@pytest.fixture
def admin_a(client_a):
    return make_user(client=client_a, email="admin@alpha.test")


@pytest.fixture
def admin_b(client_b):
    return make_user(client=client_b, email="admin@bravo.test")


def make_web_app():
    """The first-party browser application (public client, PKCE)."""
    from tenants.services import oauth_first_party_app_create

    with dangerously_bypass_rls():
        return oauth_first_party_app_create(
            name=f"Web {next(_sequence)}", redirect_uris=["http://127.0.0.1:9/callback"], allowed_origins=[],
            actor="test",
        )


def make_api_application(client: Client):
    """A client's server-to-server application; returns (application, secret)."""
    from tenants.services import api_application_create

    with dangerously_bypass_rls():
        return api_application_create(client_id=client.pk, name=f"Server {next(_sequence)}", actor="test")


def issue_token(user: User | None = None, *, application=None, expires_in: int = 900) -> str:
    """An access token as the token endpoint would store it (checksum only);
    returns the raw bearer value."""
    import secrets
    from datetime import timedelta

    from django.utils import timezone
    from oauth2_provider.models import set_token_value

    from tenants.models import OAuthAccessToken

    raw = secrets.token_urlsafe(30)
    application = application or make_web_app()
    with dangerously_bypass_rls():
        token = OAuthAccessToken(
            user=user, application=application, scope="api", expires=timezone.now() + timedelta(seconds=expires_in)
        )
        set_token_value(token, raw)
        token.save()
    return raw


def bearer(raw: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}
