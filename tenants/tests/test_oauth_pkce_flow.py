"""The browser front end's OAuth flow, driven by a real OAuth client library
(authlib) against the live test server: authorize, log in, exchange the code
with PKCE, call the API, refresh, and reuse detection."""

import hashlib
import re
from urllib.parse import parse_qs, urlparse

import pytest
import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from tenants.context import dangerously_bypass_rls
from tenants.models import Client, OAuthRefreshToken
from tenants.services import oauth_first_party_app_create
from tests.factories import ALL_DATABASES, PASSWORD

pytestmark = pytest.mark.django_db(databases=ALL_DATABASES, transaction=True)

REDIRECT_URI = "http://127.0.0.1:9/callback"


@pytest.fixture
def web_app():
    with dangerously_bypass_rls():
        return oauth_first_party_app_create(
            name="Web", redirect_uris=[REDIRECT_URI], allowed_origins=["http://127.0.0.1:9"], actor="test"
        )


def oauth_session(live_server, web_app) -> OAuth2Session:
    return OAuth2Session(
        client_id=web_app.client_id,
        redirect_uri=REDIRECT_URI,
        scope="api",
        code_challenge_method="S256",
        token_endpoint_auth_method="none",
    )


def log_in_and_authorize(live_server, authorize_url: str, email: str, password: str = PASSWORD) -> requests.Response:
    """Act as the browser: follow the authorize URL to the login page, sign
    in, and return the authorization server's final redirect."""
    browser = requests.Session()
    login_page = browser.get(authorize_url, allow_redirects=True)
    assert login_page.url.startswith(live_server.url + "/accounts/login/"), login_page.url
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login_page.text).group(1)
    next_url = parse_qs(urlparse(login_page.url).query)["next"][0]
    signed_in = browser.post(
        login_page.url,
        data={"username": email, "password": password, "next": next_url, "csrfmiddlewaretoken": csrf},
        allow_redirects=False,
    )
    assert signed_in.status_code == 302, signed_in.text[:500]
    return browser.get(live_server.url + signed_in.headers["Location"], allow_redirects=False)


def authorize(live_server, web_app, email, **extra):
    session = oauth_session(live_server, web_app)
    verifier = generate_token(48)
    url, state = session.create_authorization_url(
        live_server.url + "/oauth/authorize/", code_verifier=verifier, **extra
    )
    response = log_in_and_authorize(live_server, url, email)
    return session, verifier, response


def test_the_complete_pkce_flow_with_refresh_rotation_and_reuse_detection(live_server, web_app, admin_a, client_a):
    session, verifier, redirect = authorize(live_server, web_app, admin_a.email)
    assert redirect.status_code == 302
    location = redirect.headers["Location"]
    assert location.startswith(REDIRECT_URI) and "code=" in location

    token_url = live_server.url + "/oauth/token/"
    token = session.fetch_token(token_url, authorization_response=location, code_verifier=verifier)
    assert token["token_type"] == "Bearer" and 0 < token["expires_in"] <= 900

    me = requests.get(live_server.url + "/api/v1/me/", headers={"Authorization": f"Bearer {token['access_token']}"})
    assert me.status_code == 200
    assert me.json()["user"]["email"] == admin_a.email
    assert me.json()["client"]["slug"] == client_a.slug

    first_refresh = token["refresh_token"]
    with dangerously_bypass_rls():
        stored = list(OAuthRefreshToken.objects.filter(user=admin_a).values_list("token", "token_checksum"))
    assert stored == [("", hashlib.sha256(first_refresh.encode()).hexdigest())]

    refreshed = session.refresh_token(token_url, refresh_token=first_refresh)
    assert refreshed["refresh_token"] != first_refresh
    assert refreshed["access_token"] != token["access_token"]
    me_again = requests.get(
        live_server.url + "/api/v1/me/", headers={"Authorization": f"Bearer {refreshed['access_token']}"}
    )
    assert me_again.status_code == 200

    # The old refresh token is dead, and replaying it revokes its whole family.
    replay = requests.post(
        token_url, data={"grant_type": "refresh_token", "refresh_token": first_refresh, "client_id": web_app.client_id}
    )
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    revoked = requests.get(
        live_server.url + "/api/v1/me/", headers={"Authorization": f"Bearer {refreshed['access_token']}"}
    )
    assert revoked.status_code == 401
    newest = requests.post(
        token_url,
        data={"grant_type": "refresh_token", "refresh_token": refreshed["refresh_token"], "client_id": web_app.client_id},
    )
    assert newest.status_code == 400


def test_a_wrong_code_verifier_is_refused(live_server, web_app, admin_a):
    session, _verifier, redirect = authorize(live_server, web_app, admin_a.email)
    code = parse_qs(urlparse(redirect.headers["Location"]).query)["code"][0]
    response = requests.post(
        live_server.url + "/oauth/token/",
        data={
            "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI,
            "client_id": web_app.client_id, "code_verifier": generate_token(48),
        },
    )
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"


def test_an_authorization_request_without_a_code_challenge_is_refused(live_server, web_app, admin_a):
    session = OAuth2Session(client_id=web_app.client_id, redirect_uri=REDIRECT_URI, scope="api")
    url, _state = session.create_authorization_url(live_server.url + "/oauth/authorize/")
    redirect = log_in_and_authorize(live_server, url, admin_a.email)
    query = parse_qs(urlparse(redirect.headers.get("Location", "")).query)
    assert "code" not in query
    assert query.get("error") == ["invalid_request"]


def test_the_plain_code_challenge_method_is_refused(live_server, web_app, admin_a):
    verifier = generate_token(48)
    session = OAuth2Session(client_id=web_app.client_id, redirect_uri=REDIRECT_URI, scope="api")
    url, _state = session.create_authorization_url(
        live_server.url + "/oauth/authorize/", code_challenge=verifier, code_challenge_method="plain"
    )
    redirect = log_in_and_authorize(live_server, url, admin_a.email)
    query = parse_qs(urlparse(redirect.headers["Location"]).query)
    assert "code" not in query
    assert query["error"] == ["invalid_request"]
    assert "S256" in query["error_description"][0]


def suspend(client):
    with dangerously_bypass_rls():
        Client.objects.filter(pk=client.pk).update(status=Client.Status.SUSPENDED)


def assert_invalid_grant(response):
    assert response.status_code == 400, response.text[:500]
    body = response.json()
    assert body["error"] == body["code"] == "invalid_grant" and body["detail"] and body["fields"] == {}


def test_a_code_is_not_exchanged_once_the_users_client_is_suspended(live_server, web_app, admin_a, client_a):
    _session, verifier, redirect = authorize(live_server, web_app, admin_a.email)
    code = parse_qs(urlparse(redirect.headers["Location"]).query)["code"][0]
    suspend(client_a)
    response = requests.post(
        live_server.url + "/oauth/token/",
        data={
            "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI,
            "client_id": web_app.client_id, "code_verifier": verifier,
        },
    )
    assert_invalid_grant(response)


def test_a_refresh_token_is_not_exchanged_once_the_users_client_is_suspended(live_server, web_app, admin_a, client_a):
    session, verifier, redirect = authorize(live_server, web_app, admin_a.email)
    token_url = live_server.url + "/oauth/token/"
    token = session.fetch_token(token_url, authorization_response=redirect.headers["Location"], code_verifier=verifier)
    suspend(client_a)
    response = requests.post(
        token_url,
        data={"grant_type": "refresh_token", "refresh_token": token["refresh_token"], "client_id": web_app.client_id},
    )
    assert_invalid_grant(response)


def test_a_code_is_single_use(live_server, web_app, admin_a):
    session, verifier, redirect = authorize(live_server, web_app, admin_a.email)
    location = redirect.headers["Location"]
    session.fetch_token(live_server.url + "/oauth/token/", authorization_response=location, code_verifier=verifier)
    code = parse_qs(urlparse(location).query)["code"][0]
    again = requests.post(
        live_server.url + "/oauth/token/",
        data={
            "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI,
            "client_id": web_app.client_id, "code_verifier": verifier,
        },
    )
    assert again.status_code == 400


def test_s256_challenge_matches_what_the_library_sends(web_app):
    # Guards the assumption the flow tests rest on: authlib really sends S256.
    verifier = generate_token(48)
    session = OAuth2Session(client_id=web_app.client_id, redirect_uri=REDIRECT_URI, code_challenge_method="S256")
    url, _ = session.create_authorization_url("https://as.example/authorize", code_verifier=verifier)
    query = parse_qs(urlparse(url).query)
    assert query["code_challenge_method"] == ["S256"]
    assert query["code_challenge"] == [create_s256_code_challenge(verifier)]
