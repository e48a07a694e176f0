"""Transport security: production settings, `check --deploy`, and CORS.

Settings are read once per process, so production settings are loaded in a
subprocess with the production environment, never by changing this one.
"""

from __future__ import annotations

import io
import json
import os
import secrets
import subprocess
import sys
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command
from django.db import connections
from django.test import Client as HttpClient
from django.test import RequestFactory, override_settings
from django.test.utils import CaptureQueriesContext

from tenants.oauth import first_party_origin_allowed
from tests.factories import ALL_DATABASES

SETTINGS_AS_JSON = """
import json

import django

django.setup()
from django.conf import settings

print(json.dumps({
    "sslmode": {alias: config["OPTIONS"].get("sslmode") for alias, config in settings.DATABASES.items()},
    "proxy_ssl_header": settings.SECURE_PROXY_SSL_HEADER,
    "hsts_seconds": settings.SECURE_HSTS_SECONDS,
    "ssl_redirect": settings.SECURE_SSL_REDIRECT,
    "session_cookie_secure": settings.SESSION_COOKIE_SECURE,
    "csrf_cookie_secure": settings.CSRF_COOKIE_SECURE,
}))
"""

# Variables whose defaults are what these tests check; the test process's
# own environment must not decide them.
_DECIDED_BY_THE_TEST = (
    "SAGEROCK_TESTING", "PRODUCTION", "DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_PRELOAD", "SECURE_SSL_REDIRECT", "DATABASE_APP_URL", "DATABASE_STAFF_URL", "DATABASE_SERVICE_URL",
)


def production_environment(**overrides: str) -> dict[str, str]:
    environment = {name: value for name, value in os.environ.items() if name not in _DECIDED_BY_THE_TEST}
    environment.update(
        DJANGO_SETTINGS_MODULE="sagerock.settings",
        PRODUCTION="1",
        DEBUG="0",
        SECRET_KEY=secrets.token_urlsafe(48),  # 64 characters
        ALLOWED_HOSTS="api.example.com",
    )
    environment.update(overrides)
    return environment


def run(args: list[str], environment: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], cwd=django_settings.BASE_DIR, env=environment,
        capture_output=True, text=True, timeout=120,
    )


def settings_under(environment: dict[str, str]) -> dict:
    completed = run(["-c", SETTINGS_AS_JSON], environment)
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads(completed.stdout.strip().splitlines()[-1])


def database_url(*, sslmode: str | None = None, user: str | None = None) -> str:
    """The test process's DATABASE_URL with another sslmode or login role."""
    parts = urlsplit(os.environ["DATABASE_URL"])
    query = dict(parse_qsl(parts.query))
    if sslmode is not None:
        query["sslmode"] = sslmode
    netloc = parts.netloc if user is None else f"{user}@{parts.netloc.rpartition('@')[2]}"
    return urlunsplit(parts._replace(netloc=netloc, query=urlencode(query)))


@pytest.mark.slow
def test_check_deploy_is_clean_under_production_settings():
    completed = run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], production_environment())
    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, output
    assert "System check identified no issues" in output
    assert "WARNING" not in output


@pytest.mark.slow
@pytest.mark.parametrize(
    ("urls", "expected"),
    [
        pytest.param({}, dict.fromkeys(ALL_DATABASES, "require"), id="no-sslmode-given"),
        pytest.param(
            {"DATABASE_URL": database_url(sslmode="disable")}, dict.fromkeys(ALL_DATABASES, "require"),
            id="disable-is-overridden",
        ),
        pytest.param(
            {"DATABASE_URL": database_url(sslmode="verify-full")}, dict.fromkeys(ALL_DATABASES, "verify-full"),
            id="stricter-is-kept",
        ),
        pytest.param(
            {
                "DATABASE_APP_URL": database_url(sslmode="prefer", user="sagerock_app"),
                "DATABASE_STAFF_URL": database_url(sslmode="verify-ca", user="sagerock_staff"),
                "DATABASE_SERVICE_URL": database_url(sslmode="allow", user="sagerock_service"),
            },
            {"default": "require", "app": "require", "staff": "verify-ca", "service": "require"},
            id="each-role-url",
        ),
    ],
)
def test_production_settings_use_tls_to_every_database_and_secure_transport(urls, expected):
    production = settings_under(production_environment(**urls))
    assert production["sslmode"] == expected
    assert production["proxy_ssl_header"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert production["hsts_seconds"] > 0
    assert production["ssl_redirect"] is True
    assert production["session_cookie_secure"] is True
    assert production["csrf_cookie_secure"] is True


@pytest.mark.slow
def test_production_settings_refuse_to_load_in_test_mode():
    completed = run(["-c", SETTINGS_AS_JSON], production_environment(SAGEROCK_TESTING="1"))
    assert completed.returncode != 0
    assert "ImproperlyConfigured: SAGEROCK_TESTING must be off when PRODUCTION is on." in completed.stderr


@pytest.mark.slow
def test_without_production_the_database_connection_is_left_as_configured():
    development = settings_under(production_environment(PRODUCTION="0"))
    assert development["sslmode"] == dict.fromkeys(ALL_DATABASES, None)
    assert development["proxy_ssl_header"] is None
    assert development["session_cookie_secure"] is False


ALLOWED_ORIGIN = "https://app.example.com"


def preflight(origin: str, path: str = "/api/v1/me/"):
    return HttpClient().options(
        path, HTTP_ORIGIN=origin, HTTP_ACCESS_CONTROL_REQUEST_METHOD="GET",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="authorization",
    )


@pytest.mark.django_db(databases=ALL_DATABASES)
@override_settings(CORS_ALLOWED_ORIGINS=[ALLOWED_ORIGIN])
def test_a_preflight_from_a_configured_origin_is_allowed():
    response = preflight(ALLOWED_ORIGIN)
    assert response["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN
    assert "authorization" in response["Access-Control-Allow-Headers"]
    assert "Access-Control-Allow-Credentials" not in response


@pytest.mark.django_db(databases=ALL_DATABASES)
@override_settings(CORS_ALLOWED_ORIGINS=[ALLOWED_ORIGIN])
@pytest.mark.parametrize(
    "origin", ["https://evil.example.net", "http://app.example.com", "https://app.example.com.evil.net", "null"]
)
def test_a_preflight_from_any_other_origin_gets_no_cors_headers(origin):
    response = preflight(origin)
    assert "Access-Control-Allow-Origin" not in response
    assert "Access-Control-Allow-Headers" not in response


@pytest.mark.django_db(databases=ALL_DATABASES)
@override_settings(CORS_ALLOWED_ORIGINS=[ALLOWED_ORIGIN])
def test_cors_covers_only_the_api_and_oauth_paths():
    assert "Access-Control-Allow-Origin" not in preflight(ALLOWED_ORIGIN, "/healthz")
    assert preflight(ALLOWED_ORIGIN, "/oauth/token/")["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN


@pytest.mark.django_db(databases=ALL_DATABASES)
@override_settings(CORS_ALLOWED_ORIGINS=[ALLOWED_ORIGIN])
def test_a_browser_on_a_configured_origin_may_read_the_rate_limit_headers():
    response = HttpClient().get("/api/v1/me/", HTTP_ORIGIN=ALLOWED_ORIGIN)
    assert response.status_code == 401
    assert response["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN
    exposed = {name.strip().lower() for name in response["Access-Control-Expose-Headers"].split(",")}
    assert {"ratelimit-policy", "ratelimit-limit", "ratelimit-remaining", "ratelimit-reset", "retry-after"} <= exposed


FRONT_END_ORIGIN = "https://front.example.test"


@pytest.mark.django_db(databases=ALL_DATABASES, transaction=True)
def test_a_first_party_apps_allowed_origin_gets_cors_on_the_api_and_nowhere_else():
    call_command(
        "create_oauth_app", "--name", "Web", "--redirect-uri", f"{FRONT_END_ORIGIN}/callback",
        "--allowed-origin", FRONT_END_ORIGIN, stdout=io.StringIO(),
    )
    for path in ("/api/v1/me/", "/oauth/token/"):
        assert HttpClient().get(path, HTTP_ORIGIN=FRONT_END_ORIGIN)["Access-Control-Allow-Origin"] == FRONT_END_ORIGIN
    for path in ("/admin/login/", "/accounts/login/", "/healthz"):
        assert "Access-Control-Allow-Origin" not in HttpClient().get(path, HTTP_ORIGIN=FRONT_END_ORIGIN), path

    # Outside /api and /oauth the hook answers without asking the database.
    request = RequestFactory().get("/admin/login/", HTTP_ORIGIN=FRONT_END_ORIGIN)
    with CaptureQueriesContext(connections["app"]) as queries:
        assert first_party_origin_allowed(sender=None, request=request) is False
    assert len(queries) == 0
