import base64
import uuid

import pytest
from django.test import Client as HttpClient

from tenants.context import dangerously_bypass_rls, tenant_context
from tenants.models import AuditEvent, Client, OAuthAccessToken, OAuthApplication
from tenants.services import audit_record
from tests.factories import (
    ALL_DATABASES,
    PASSWORD,
    bearer,
    issue_token,
    make_api_application,
    make_user,
    make_web_app,
)
from vault.models import IntegrationCredential
from vault.services import credential_set
from vault.tests.conftest import new_key

pytestmark = pytest.mark.django_db(databases=ALL_DATABASES, transaction=True)


def assert_error_shape(response, status: int, code: str | None = None):
    assert response.status_code == status, response.content[:500]
    body = response.json()
    assert set(body) == {"code", "detail", "fields"}, body
    if code:
        assert body["code"] == code, body


def api():
    return HttpClient()


# --- authentication ---------------------------------------------------------------


def test_a_request_without_a_token_gets_401_with_the_bearer_challenge():
    response = api().get("/api/v1/me/")
    assert_error_shape(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("header", ["Bearer", "Bearer not-a-token", "Bearer " + "x" * 5000, "Bearer \x00\x01"])
def test_a_malformed_token_gets_401_invalid_token(header):
    response = api().get("/api/v1/me/", HTTP_AUTHORIZATION=header)
    assert_error_shape(response, 401, "invalid_token")
    assert 'error="invalid_token"' in response["WWW-Authenticate"]


def test_an_expired_token_gets_401(admin_a):
    raw = issue_token(admin_a, expires_in=-1)
    assert_error_shape(api().get("/api/v1/me/", **bearer(raw)), 401, "invalid_token")


def test_a_revoked_token_gets_401(admin_a):
    raw = issue_token(admin_a)
    assert api().get("/api/v1/me/", **bearer(raw)).status_code == 200
    with dangerously_bypass_rls():
        OAuthAccessToken.objects.filter(user=admin_a).delete()
    assert_error_shape(api().get("/api/v1/me/", **bearer(raw)), 401, "invalid_token")


def test_a_token_revoked_through_the_revocation_endpoint_gets_401(admin_a):
    raw = issue_token(admin_a)
    with dangerously_bypass_rls():
        application = OAuthAccessToken.objects.get(user=admin_a).application
    response = api().post("/oauth/revoke_token/", {"token": raw, "client_id": application.client_id})
    assert response.status_code == 200
    assert_error_shape(api().get("/api/v1/me/", **bearer(raw)), 401, "invalid_token")


def test_a_suspended_clients_token_gets_401(admin_a, client_a):
    raw = issue_token(admin_a)
    with dangerously_bypass_rls():
        Client.objects.filter(pk=client_a.pk).update(status=Client.Status.SUSPENDED)
    assert_error_shape(api().get("/api/v1/me/", **bearer(raw)), 401, "invalid_token")


def test_a_deactivated_users_token_gets_401(admin_a):
    raw = issue_token(admin_a)
    with dangerously_bypass_rls():
        type(admin_a).objects.filter(pk=admin_a.pk).update(is_active=False)
    assert_error_shape(api().get("/api/v1/me/", **bearer(raw)), 401, "invalid_token")


def test_session_cookies_do_not_authenticate_the_api(super_admin):
    browser = HttpClient()
    browser.force_login(super_admin)
    assert_error_shape(browser.get("/api/v1/clients/"), 401, "not_authenticated")


# --- me, own client -----------------------------------------------------------------


def test_me_describes_the_user_role_and_client(admin_a, client_a):
    body = api().get("/api/v1/me/", **bearer(issue_token(admin_a))).json()
    assert body["kind"] == "user" and body["role"] == "client_admin"
    assert body["user"]["email"] == admin_a.email and body["user"]["id"] == str(admin_a.public_id)
    assert body["client"]["id"] == str(client_a.public_id)
    assert "pk" not in body["user"] and body["client"]["id"] != str(client_a.pk)


def test_me_for_staff_has_no_client(staff_admin):
    body = api().get("/api/v1/me/", **bearer(issue_token(staff_admin))).json()
    assert body["role"] == "admin" and body["client"] is None


def test_a_client_admin_reads_and_renames_their_own_client(admin_a, client_a):
    token = bearer(issue_token(admin_a))
    assert api().get("/api/v1/client/", **token).json()["name"] == client_a.name
    response = api().patch("/api/v1/client/", {"name": "Alpha Academy"}, content_type="application/json", **token)
    assert response.status_code == 200 and response.json()["name"] == "Alpha Academy"
    with dangerously_bypass_rls():
        assert Client.objects.get(pk=client_a.pk).name == "Alpha Academy"
        assert AuditEvent.objects.filter(client=client_a, action="client.profile_updated").count() == 1


@pytest.mark.parametrize(
    "payload, content_type",
    [({"name": ""}, "application/json"), ({"name": "x" * 201}, "application/json"), ({}, "application/json"),
     ("{not json", "application/json"), ("name=x", "application/x-www-form-urlencoded")],
)
def test_bad_client_profile_input_gets_4xx_and_writes_nothing(admin_a, client_a, payload, content_type):
    response = api().patch("/api/v1/client/", payload, content_type=content_type, **bearer(issue_token(admin_a)))
    assert response.status_code in (400, 415)
    assert_error_shape(response, response.status_code)
    with dangerously_bypass_rls():
        assert Client.objects.get(pk=client_a.pk).name == client_a.name
        assert not AuditEvent.objects.filter(action="client.profile_updated").exists()


def test_a_client_admin_cannot_change_status_or_products_of_their_client(admin_a, client_a):
    response = api().patch(
        "/api/v1/client/", {"name": "Alpha", "status": "suspended", "products": ["schools", "concierge"]},
        content_type="application/json", **bearer(issue_token(admin_a)),
    )
    assert response.status_code == 200
    assert response.json()["status"] == "active" and response.json()["products"] == list(client_a.products)
    with dangerously_bypass_rls():
        stored = Client.objects.get(pk=client_a.pk)
    assert stored.status == Client.Status.ACTIVE and stored.products == list(client_a.products)


def test_staff_have_no_own_client_endpoint(staff_admin):
    assert_error_shape(api().get("/api/v1/client/", **bearer(issue_token(staff_admin))), 403, "permission_denied")


# --- staff: clients -------------------------------------------------------------------


def test_staff_list_every_client_and_filter_by_slug(staff_admin, client_a, client_b):
    token = bearer(issue_token(staff_admin))
    body = api().get("/api/v1/clients/", **token).json()
    assert {c["slug"] for c in body["results"]} == {"alpha", "bravo"}
    filtered = api().get("/api/v1/clients/?slug=bravo", **token).json()
    assert [c["slug"] for c in filtered["results"]] == ["bravo"]


def test_staff_suspend_a_client_through_the_api(staff_admin, client_b):
    response = api().patch(
        f"/api/v1/clients/{client_b.public_id}/", {"status": "suspended"}, content_type="application/json",
        **bearer(issue_token(staff_admin)),
    )
    assert response.status_code == 200 and response.json()["status"] == "suspended"


def test_a_client_admin_cannot_list_clients(admin_a):
    assert_error_shape(api().get("/api/v1/clients/", **bearer(issue_token(admin_a))), 403, "permission_denied")


# --- audit events ---------------------------------------------------------------------


def seed_audit(client, n=1):
    with dangerously_bypass_rls():
        for i in range(n):
            audit_record(client_id=client.pk, actor="test", action=f"test.event{i}")


def test_a_client_admin_reads_only_their_own_audit_log(admin_a, client_a, client_b):
    seed_audit(client_a, 2)
    seed_audit(client_b, 3)
    body = api().get("/api/v1/audit-events/", **bearer(issue_token(admin_a))).json()
    assert len(body["results"]) == 2
    assert {e["client"] for e in body["results"]} == {str(client_a.public_id)}
    other = api().get(f"/api/v1/audit-events/?client={client_b.public_id}", **bearer(issue_token(admin_a))).json()
    assert other["results"] == []


def test_staff_read_every_audit_log_and_filter_by_client(staff_admin, client_a, client_b):
    seed_audit(client_a, 2)
    seed_audit(client_b, 3)
    token = bearer(issue_token(staff_admin))
    events = api().get("/api/v1/audit-events/", **token).json()["results"]
    assert len([e for e in events if e["action"].startswith("test.")]) == 5
    only_b = api().get(f"/api/v1/audit-events/?client={client_b.public_id}", **token).json()["results"]
    assert len(only_b) == 3 and {e["client"] for e in only_b} == {str(client_b.public_id)}


def test_audit_events_page_with_an_opaque_cursor(admin_a, client_a):
    seed_audit(client_a, 7)
    token = bearer(issue_token(admin_a))
    first = api().get("/api/v1/audit-events/?page_size=3", **token).json()
    assert len(first["results"]) == 3 and first["next"] and "cursor=" in first["next"]
    seen = [e["id"] for e in first["results"]]
    page = first
    while page["next"]:
        page = api().get(page["next"], **token).json()
        seen += [e["id"] for e in page["results"]]
    assert len(seen) == len(set(seen)) == 7


def test_an_application_token_cannot_read_the_audit_log(client_a):
    seed_audit(client_a)
    application, secret = make_api_application(client_a)
    token = bearer(client_credentials_token(application.client_id, secret))
    assert_error_shape(api().get("/api/v1/audit-events/", **token), 403, "permission_denied")


def test_a_bad_audit_filter_gets_400_with_fields(admin_a):
    response = api().get("/api/v1/audit-events/?client=not-a-uuid&since=yesterday", **bearer(issue_token(admin_a)))
    assert_error_shape(response, 400, "invalid")
    assert set(response.json()["fields"]) == {"client", "since"}


# --- client credentials applications ---------------------------------------------------


def request_client_credentials_token(client_id: str, secret: str):
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return api().post("/oauth/token/", {"grant_type": "client_credentials"}, HTTP_AUTHORIZATION=f"Basic {basic}")


def client_credentials_token(client_id: str, secret: str) -> str:
    response = request_client_credentials_token(client_id, secret)
    assert response.status_code == 200, response.content
    return response.json()["access_token"]


def make_credential(client, settings):
    settings.VAULT_KEYS = new_key()
    with tenant_context(client.pk):
        return credential_set(
            client_id=client.pk, provider="sendgrid", label="default", secret="SG.fake-key-for-tests.0123456789abcdef",
            settings={}, actor="test", reason="test",
        )


def test_a_client_admin_creates_an_api_application_whose_token_acts_for_their_client(admin_a, client_a):
    created = api().post(
        "/api/v1/api-applications/", {"name": "CRM sync"}, content_type="application/json",
        **bearer(issue_token(admin_a)),
    )
    assert created.status_code == 201
    body = created.json()
    with dangerously_bypass_rls():
        stored = OAuthApplication.objects.get(client_id=body["id"])
    assert stored.tenant_id == client_a.pk and body["client_secret"] not in stored.client_secret
    token = client_credentials_token(body["id"], body["client_secret"])
    me = api().get("/api/v1/me/", **bearer(token)).json()
    assert me["kind"] == "application" and me["client"]["id"] == str(client_a.public_id) and me["user"] is None


def test_a_client_credentials_app_of_a_cannot_read_or_delete_bs_objects_even_knowing_their_ids(
    client_a, client_b, settings
):
    seed_audit(client_b, 2)
    credential_b = make_credential(client_b, settings)
    application_b, _ = make_api_application(client_b)
    application, secret = make_api_application(client_a)
    token = bearer(client_credentials_token(application.client_id, secret))
    assert api().get("/api/v1/client/", **token).json()["id"] == str(client_a.public_id)
    # An application is refused on the role, before any object is looked up.
    for method, url in [
        ("get", f"/api/v1/clients/{client_b.public_id}/"),
        ("get", f"/api/v1/credentials/{credential_b.public_id}/"),
        ("delete", f"/api/v1/credentials/{credential_b.public_id}/"),
        ("delete", f"/api/v1/api-applications/{application_b.client_id}/"),
        ("get", f"/api/v1/audit-events/?client={client_b.public_id}"),
    ]:
        assert_error_shape(getattr(api(), method)(url, **token), 403, "permission_denied")
    with dangerously_bypass_rls():
        assert IntegrationCredential.objects.filter(pk=credential_b.pk).exists()
        assert OAuthApplication.objects.filter(pk=application_b.pk).exists()


def test_a_client_admin_of_a_gets_404_for_bs_objects_by_public_id(admin_a, client_b, settings):
    credential_b = make_credential(client_b, settings)
    seed_audit(client_b, 2)
    token = bearer(issue_token(admin_a))
    url = f"/api/v1/credentials/{credential_b.public_id}/"
    assert_error_shape(api().get(url, **token), 404, "not_found")
    assert_error_shape(api().delete(url, **token), 404, "not_found")
    assert api().get("/api/v1/credentials/", **token).json()["results"] == []
    assert api().get("/api/v1/audit-events/", **token).json()["results"] == []
    with dangerously_bypass_rls():
        assert IntegrationCredential.objects.filter(pk=credential_b.pk).exists()


def test_an_api_application_cannot_manage_applications(client_a):
    application, secret = make_api_application(client_a)
    token = bearer(client_credentials_token(application.client_id, secret))
    response = api().post("/api/v1/api-applications/", {"name": "x"}, content_type="application/json", **token)
    assert_error_shape(response, 403, "permission_denied")


def test_a_client_admin_cannot_see_or_revoke_another_clients_application(admin_a, client_b):
    application, _ = make_api_application(client_b)
    token = bearer(issue_token(admin_a))
    assert api().get("/api/v1/api-applications/", **token).json()["results"] == []
    assert_error_shape(api().delete(f"/api/v1/api-applications/{application.client_id}/", **token), 404, "not_found")
    with dangerously_bypass_rls():
        assert OAuthApplication.objects.filter(pk=application.pk).exists()


def test_revoking_an_api_application_kills_its_tokens(admin_a, client_a):
    application, secret = make_api_application(client_a)
    app_token = bearer(client_credentials_token(application.client_id, secret))
    response = api().delete(f"/api/v1/api-applications/{application.client_id}/", **bearer(issue_token(admin_a)))
    assert response.status_code == 204
    assert_error_shape(api().get("/api/v1/me/", **app_token), 401, "invalid_token")


def test_a_wrong_client_secret_gets_no_token(client_a):
    application, _ = make_api_application(client_a)
    assert_oauth_error(request_client_credentials_token(application.client_id, "wrong"), 401, "invalid_client")


def test_a_suspended_clients_application_gets_no_token(client_a):
    application, secret = make_api_application(client_a)
    with dangerously_bypass_rls():
        Client.objects.filter(pk=client_a.pk).update(status=Client.Status.SUSPENDED)
    assert_oauth_error(request_client_credentials_token(application.client_id, secret), 401, "invalid_client")
    with dangerously_bypass_rls():
        assert not OAuthAccessToken.objects.filter(application=application).exists()


# --- error shape of the OAuth endpoints -------------------------------------------------


def assert_oauth_error(response, status: int, error: str, code: str | None = None):
    """RFC 6749's `error` (and `error_description` when there is one), plus the API's error shape."""
    assert response.status_code == status, response.content[:500]
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) - {"error_description"} == {"error", "code", "detail", "fields"}, body
    assert body["error"] == error and body["code"] == (code or error), body
    assert body["detail"] and body["fields"] == {}
    assert body["detail"] == body.get("error_description", body["detail"])


@pytest.mark.parametrize(
    ("path", "data", "status", "error"),
    [
        ("/oauth/token/", {"grant_type": "client_credentials", "client_id": "nope", "client_secret": "x"}, 401,
         "invalid_client"),
        ("/oauth/token/", {}, 400, "unsupported_grant_type"),
        ("/oauth/token/", {"grant_type": "urn:ietf:params:oauth:grant-type:device_code"}, 400,
         "unsupported_grant_type"),
        ("/oauth/token/", {"grant_type": "urn:ietf:params:oauth:grant-type:device_code", "device_code": "x"}, 400,
         "unsupported_grant_type"),
        ("/oauth/revoke_token/", {}, 400, "invalid_request"),
        ("/oauth/revoke_token/", {"token": "x", "client_id": "nope"}, 401, "invalid_client"),
    ],
)
def test_oauth_errors_keep_the_rfc_6749_fields_and_carry_the_error_shape(path, data, status, error):
    assert_oauth_error(api().post(path, data), status, error)


@pytest.mark.parametrize("path", ["/oauth/token/", "/oauth/revoke_token/"])
def test_a_wrong_method_on_the_oauth_endpoints_gets_405_in_the_error_shape(path):
    response = api().get(path)
    assert_oauth_error(response, 405, "invalid_request", code="method_not_allowed")
    assert "POST" in response["Allow"]


# --- error shape for routing ----------------------------------------------------------------


def test_unknown_api_paths_and_ids_get_404_in_the_error_shape(admin_a):
    token = bearer(issue_token(admin_a))
    assert_error_shape(api().get("/api/v1/no-such-thing/", **token), 404, "not_found")
    assert_error_shape(api().get(f"/api/v1/clients/{uuid.uuid4()}/", **bearer(issue_token(make_user(role="admin")))), 404)


def test_a_wrong_method_gets_405_in_the_error_shape(admin_a):
    assert_error_shape(api().delete("/api/v1/me/", **bearer(issue_token(admin_a))), 405, "method_not_allowed")


def test_an_oversized_body_gets_4xx_not_500(admin_a, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    response = api().patch(
        "/api/v1/client/", '{"name": "' + "x" * 5000 + '"}', content_type="application/json",
        **bearer(issue_token(admin_a)),
    )
    assert 400 <= response.status_code < 500
    assert_error_shape(response, response.status_code)


def test_a_malformed_public_id_gets_404_not_500(staff_admin):
    token = bearer(issue_token(staff_admin))
    assert_error_shape(api().get("/api/v1/clients/not-a-uuid/", **token), 404, "not_found")
    assert_error_shape(api().get("/api/v1/clients/1/", **token), 404, "not_found")


def test_a_viewset_that_overrides_get_queryset_is_refused_at_class_creation():
    from sagerock.api.views import TenantScopedViewSet

    with pytest.raises(TypeError, match="overrides get_queryset"):

        class Leaky(TenantScopedViewSet):
            def get_queryset(self):
                return AuditEvent.objects.all()

    class EverythingMixin:
        def get_queryset(self):
            return AuditEvent.objects.all()

    with pytest.raises(TypeError, match="overrides get_queryset"):

        class LeakyThroughAMixin(EverythingMixin, TenantScopedViewSet):
            pass


def test_access_tokens_and_client_secrets_are_stored_only_as_checksums_and_hashes(client_a):
    import hashlib

    application, secret = make_api_application(client_a)
    raw = client_credentials_token(application.client_id, secret)
    with dangerously_bypass_rls():
        stored = OAuthAccessToken.objects.get(application=application)
        stored_app = OAuthApplication.objects.get(pk=application.pk)
    assert stored.token == "" and stored.token_checksum == hashlib.sha256(raw.encode()).hexdigest()
    from django.contrib.auth.hashers import check_password, identify_hasher

    assert secret not in stored_app.client_secret
    assert identify_hasher(stored_app.client_secret) and check_password(secret, stored_app.client_secret)


@pytest.mark.parametrize("password", [PASSWORD, "wrong password", "a\x00b"])
def test_the_password_grant_is_refused_before_any_credential_is_checked(admin_a, password):
    """Right and wrong passwords (and bad input) get the same answer: the
    token endpoint is no password oracle."""
    web_app = make_web_app()
    response = api().post(
        "/oauth/token/",
        {"grant_type": "password", "client_id": web_app.client_id, "username": admin_a.email, "password": password},
    )
    assert_oauth_error(response, 400, "unsupported_grant_type")


def test_a_nul_in_the_login_email_is_no_account_not_a_500():
    response = api().post("/accounts/login/", {"username": "a\x00b@example.test", "password": "x"})
    assert response.status_code == 200
