"""Moving a user to another client, or between a client and staff, revokes
their OAuth tokens and grants: each carries the client it was issued for, and
the database refuses a token whose client is not its user's."""

import secrets
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.test import Client as HttpClient
from django.utils import timezone
from oauth2_provider.models import set_token_value

from tenants.context import dangerously_bypass_rls
from tenants.models import AuditEvent, OAuthAccessToken, OAuthGrant, OAuthIDToken, OAuthRefreshToken, Role, User
from tests.factories import ALL_DATABASES, make_user, make_web_app

pytestmark = pytest.mark.django_db(databases=ALL_DATABASES, transaction=True)

OAUTH_MODELS = (OAuthAccessToken, OAuthRefreshToken, OAuthGrant, OAuthIDToken)


def give_oauth_credentials(user: User) -> str:
    """One of each: an ID token, an access token, its refresh token and an
    authorization code, as the toolkit stores them. Returns the raw access token."""
    application = make_web_app()
    expires = timezone.now() + timedelta(minutes=15)
    raw = secrets.token_urlsafe(30)
    with dangerously_bypass_rls():
        id_token = OAuthIDToken.objects.create(user=user, application=application, expires=expires)
        access = OAuthAccessToken(user=user, application=application, id_token=id_token, expires=expires, scope="api")
        set_token_value(access, raw)
        access.save()
        refresh = OAuthRefreshToken(user=user, application=application, access_token=access)
        set_token_value(refresh, secrets.token_urlsafe(30))
        refresh.save()
        OAuthGrant.objects.create(
            user=user, application=application, code=secrets.token_urlsafe(30), expires=expires,
            redirect_uri="http://127.0.0.1:9/callback", code_challenge="c" * 43, code_challenge_method="S256",
        )
    return raw


def oauth_rows(user: User) -> int:
    with dangerously_bypass_rls():
        return sum(model.objects.filter(user=user).count() for model in OAUTH_MODELS)


def reload(user: User) -> User:
    with dangerously_bypass_rls():
        return User.objects.get(pk=user.pk)


def role_change_event() -> AuditEvent:
    with dangerously_bypass_rls():
        return AuditEvent.objects.get(action="user.role_changed")


@pytest.mark.parametrize(
    ("start", "move_to"),
    [
        pytest.param("alpha", ["--role", "client_admin", "--client", "bravo"], id="to-another-client"),
        pytest.param("alpha", ["--role", "admin"], id="client-to-staff"),
        pytest.param(None, ["--role", "client_admin", "--client", "bravo"], id="staff-to-client"),
    ],
)
def test_set_role_moving_a_user_revokes_their_oauth_tokens_and_audits_the_count(start, move_to, client_a, client_b):
    clients = {"alpha": client_a, None: None}
    user = make_user(role=Role.CLIENT_ADMIN if start else Role.ADMIN, client=clients[start], email="mover@example.test")
    bystander = make_user(client=client_a)
    raw = give_oauth_credentials(user)
    give_oauth_credentials(bystander)

    call_command("set_role", "--email", user.email, *move_to)

    assert reload(user).role == move_to[1]
    assert oauth_rows(user) == 0
    assert oauth_rows(bystander) == 4
    event = role_change_event()
    assert event.metadata["oauth_revoked"] == 4
    assert raw not in str(event.metadata)


def test_a_role_change_within_staff_keeps_the_oauth_tokens(super_admin):
    user = make_user(role=Role.ADMIN)
    give_oauth_credentials(user)
    call_command("set_role", "--email", user.email, "--role", "super_admin")
    assert oauth_rows(user) == 4
    assert "oauth_revoked" not in role_change_event().metadata


def test_the_admin_change_form_moves_a_user_with_oauth_tokens_to_another_client(super_admin, admin_a, client_b):
    give_oauth_credentials(admin_a)
    browser = HttpClient()
    browser.force_login(super_admin)
    response = browser.post(
        f"/admin/tenants/user/{admin_a.pk}/change/",
        {"email": admin_a.email, "full_name": "", "role": "client_admin", "client": client_b.pk, "is_active": "on"},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert reload(admin_a).client_id == client_b.pk
    assert oauth_rows(admin_a) == 0
    event = role_change_event()
    assert (event.client_id, event.actor_id, event.metadata["oauth_revoked"]) == (client_b.pk, super_admin.pk, 4)
