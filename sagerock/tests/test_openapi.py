import re
import uuid

import pytest
import yaml
from django.test import Client as HttpClient

pytestmark = pytest.mark.django_db(databases=["default", "app", "staff", "service"], transaction=True)


@pytest.fixture
def schema():
    response = HttpClient().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi")
    assert response.status_code == 200
    return yaml.safe_load(response.content)


def operations(schema):
    for path, item in schema["paths"].items():
        for method in item:
            if method in {"get", "post", "put", "patch", "delete"}:
                yield path, method, item[method]


def test_the_schema_lists_every_endpoint_with_oauth_security_and_the_error_shape(schema):
    paths = set(schema["paths"])
    assert {"/api/v1/me/", "/api/v1/client/", "/api/v1/clients/", "/api/v1/clients/{public_id}/",
            "/api/v1/audit-events/", "/api/v1/api-applications/"} <= paths
    flows = schema["components"]["securitySchemes"]["oauth2"]["flows"]
    assert flows["authorizationCode"]["tokenUrl"] == "/oauth/token/"
    assert "clientCredentials" in flows
    assert schema["components"]["schemas"]["Error"]["required"] == ["code", "detail", "fields"]
    for path, method, operation in operations(schema):
        assert operation.get("security"), (path, method)
        assert operation["responses"]["401"]["content"]["application/json"]["schema"]["$ref"] == "#/components/schemas/Error"


def sample_url(path: str, operation: dict) -> str:
    """Fill path parameters with well-formed values of their declared type."""
    kinds = {p["name"]: p.get("schema", {}) for p in operation.get("parameters", []) if p["in"] == "path"}

    def value(match):
        declared = kinds.get(match.group(1), {})
        return str(uuid.uuid4()) if declared.get("format") == "uuid" else "A1b2C3d4e5"

    return re.sub(r"\{([^}]+)\}", value, path)


def test_every_endpoint_in_the_schema_answers_an_unauthenticated_request_with_401(schema):
    checked = 0
    for path, method, operation in operations(schema):
        url = sample_url(path, operation)
        if method in {"get", "delete"}:
            response = getattr(HttpClient(), method)(url)
        else:
            response = getattr(HttpClient(), method)(url, data="{}", content_type="application/json")
        assert response.status_code == 401, (method, url, response.status_code)
        body = response.json()
        assert set(body) == {"code", "detail", "fields"} and body["code"] == "not_authenticated"
        assert response["WWW-Authenticate"].startswith("Bearer")
        checked += 1
    assert checked >= 8


def test_interactive_docs_are_served_with_local_assets():
    page = HttpClient().get("/api/docs/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "swagger-ui" in html
    assert "cdn.jsdelivr.net" not in html and "unpkg.com" not in html


@pytest.mark.parametrize("path", ["/api/schema/", "/api/docs/"])
def test_a_wrong_method_on_the_schema_and_the_docs_gets_405_as_json_in_the_error_shape(path):
    response = HttpClient().post(path)
    assert response.status_code == 405
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"code": "method_not_allowed", "detail": 'Method "POST" not allowed.', "fields": {}}
