"""Per-IP rate limits (sagerock.ratelimits) through real HTTP and the real Redis.

django-ratelimit counts in fixed windows whose edges are jittered per key
(crc32 of the key). A test that sends a few hundred requests picks a client
address whose current window still has most of a minute to run, so it never
straddles a window edge; nothing here measures time.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import os
import socket
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings as django_settings
from django.core import checks
from django.core.cache.backends.locmem import LocMemCache
from django.db import connections
from django.test import Client as HttpClient
from django.test import RequestFactory, override_settings
from django_ratelimit.core import _get_window

from sagerock.ratelimits import client_ip
from tests.factories import ALL_DATABASES, PASSWORD, make_api_application

WEBHOOK = "/test-only/ratelimit/webhook/"
CONTACT_UPSERT = "/test-only/ratelimit/contact-upsert/"
LIMITED_ENDPOINTS = [pytest.param(WEBHOOK, 200, id="webhook"), pytest.param(CONTACT_UPSERT, 60, id="contact_upsert")]
WINDOW = 60


def addresses_with_time_left(candidates, *, count: int = 1, key=str, seconds_left: int = 40) -> list[str]:
    """The first `count` candidates whose rate-limit window (for the counter
    key `key(candidate)`) has at least `seconds_left` to run."""
    found = [c for c in candidates if _get_window(key(c), WINDOW) - time.time() >= seconds_left][:count]
    assert len(found) == count, "no candidate address has enough of its window left"
    return found


def ipv4_clients(prefix: str, count: int = 1) -> list[str]:
    return addresses_with_time_left((f"{prefix}.{n}" for n in range(1, 255)), count=count)


def assert_limit_headers(response, limit: int) -> None:
    assert response["RateLimit-Policy"] == f"{limit};w={WINDOW}"
    assert response["RateLimit-Limit"] == str(limit)
    assert 0 <= int(response["RateLimit-Reset"]) <= WINDOW


def assert_blocked(response, limit: int) -> None:
    assert response.status_code == 429
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == {"code", "detail", "fields"}
    assert body["code"] == "rate_limited" and body["fields"] == {}
    assert_limit_headers(response, limit)
    assert response["RateLimit-Remaining"] == "0"
    assert int(response["Retry-After"]) == max(int(response["RateLimit-Reset"]), 1)


def use_up(path: str, limit: int, **request) -> list[int]:
    """Send `limit` requests that must all be served; returns RateLimit-Remaining
    of each. `request` values may be callables of the request number."""
    remaining = []
    for n in range(limit):
        extra = {name: value(n) if callable(value) else value for name, value in request.items()}
        response = HttpClient().post(path, **extra)
        assert response.status_code == 200, (n, response.status_code)
        assert_limit_headers(response, limit)
        remaining.append(int(response["RateLimit-Remaining"]))
    return remaining


# --- the client address ---------------------------------------------------------


@pytest.mark.parametrize(
    ("trusted", "remote", "forwarded_for", "expected"),
    [
        (0, "203.0.113.5", "198.51.100.9", "203.0.113.5"),
        (0, "", "198.51.100.9", "0.0.0.0"),
        (0, "2001:DB8::5", "", "2001:db8::5"),
        (0, "::ffff:203.0.113.5", "", "203.0.113.5"),
        (1, "10.0.0.2", "198.51.100.9", "198.51.100.9"),
        (1, "10.0.0.2", "6.6.6.6, 7.7.7.7, 198.51.100.9", "198.51.100.9"),
        (1, "10.0.0.2", "", "10.0.0.2"),
        (1, "10.0.0.2", " , ,", "10.0.0.2"),
        (1, "10.0.0.2", "198.51.100.9, not-an-address", "10.0.0.2"),
        (1, "10.0.0.2", "unix:", "10.0.0.2"),
        (1, "10.0.0.2", "1.2.3.4.5", "10.0.0.2"),
        (1, "10.0.0.2", "x" * 10_000, "10.0.0.2"),
        (1, "10.0.0.2", "198.51.100.9:51234", "198.51.100.9"),
        (1, "10.0.0.2", "2001:DB8:0:0::7", "2001:db8::7"),
        (1, "10.0.0.2", "[2001:db8::7]:443", "2001:db8::7"),
        (1, "10.0.0.2", "fe80::7%eth0", "fe80::7"),
        (1, "10.0.0.2", "::ffff:198.51.100.9", "198.51.100.9"),
        (2, "10.0.0.2", "6.6.6.6, 198.51.100.9, 10.0.0.1", "198.51.100.9"),
        (2, "10.0.0.2", "198.51.100.9", "10.0.0.2"),
    ],
)
def test_client_ip_is_remote_addr_or_the_entry_the_trusted_proxies_appended(
    settings, trusted, remote, forwarded_for, expected
):
    settings.TRUSTED_PROXY_COUNT = trusted
    request = RequestFactory().get("/", REMOTE_ADDR=remote, HTTP_X_FORWARDED_FOR=forwarded_for)
    assert client_ip(request) == expected


# --- counting and headers ---------------------------------------------------------


@pytest.mark.parametrize(("path", "limit"), LIMITED_ENDPOINTS)
def test_the_request_after_the_limit_in_a_minute_from_one_ip_gets_429_with_the_standard_headers(path, limit):
    (ip,) = ipv4_clients("203.0.113")
    assert use_up(path, limit, REMOTE_ADDR=ip) == list(range(limit - 1, -1, -1))
    assert_blocked(HttpClient().post(path, REMOTE_ADDR=ip), limit)
    assert_blocked(HttpClient().get(path, REMOTE_ADDR=ip), limit)


@pytest.mark.parametrize(("path", "limit"), LIMITED_ENDPOINTS)
def test_a_spoofed_x_forwarded_for_does_not_reset_the_count_without_trusted_proxies(settings, path, limit):
    settings.TRUSTED_PROXY_COUNT = 0
    (ip,) = ipv4_clients("203.0.113")
    remaining = use_up(path, limit, REMOTE_ADDR=ip, HTTP_X_FORWARDED_FOR=lambda n: f"198.51.{n // 250}.{n % 250}")
    assert remaining == list(range(limit - 1, -1, -1))
    assert_blocked(HttpClient().post(path, REMOTE_ADDR=ip, HTTP_X_FORWARDED_FOR="192.0.2.77"), limit)


@pytest.mark.parametrize(("path", "limit"), LIMITED_ENDPOINTS)
def test_behind_one_trusted_proxy_client_supplied_forwarded_for_entries_are_ignored(settings, path, limit):
    settings.TRUSTED_PROXY_COUNT = 1
    (client,) = ipv4_clients("198.51.100")
    spoofed = ["192.0.2.{n}", "2001:db8::{n}", "garbage-{n}", "192.0.2.{n}, 192.0.2.{n}", ""]

    def forwarded_for(n: int) -> str:
        left = spoofed[n % len(spoofed)].format(n=n)
        return f"{left}, {client}" if left else client

    remaining = use_up(path, limit, REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR=forwarded_for)
    assert remaining == list(range(limit - 1, -1, -1))
    blocked = HttpClient().post(path, REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR=f"192.0.2.250, {client}")
    assert_blocked(blocked, limit)


@pytest.mark.parametrize(("path", "limit"), LIMITED_ENDPOINTS)
def test_two_clients_behind_one_trusted_proxy_get_separate_counts(settings, path, limit):
    settings.TRUSTED_PROXY_COUNT = 1
    first, second = ipv4_clients("198.51.100", count=2)
    proxy = {"REMOTE_ADDR": "10.0.0.2"}
    use_up(path, limit, HTTP_X_FORWARDED_FOR=first, **proxy)
    assert_blocked(HttpClient().post(path, HTTP_X_FORWARDED_FOR=first, **proxy), limit)

    served = HttpClient().post(path, HTTP_X_FORWARDED_FOR=second, **proxy)
    assert served.status_code == 200
    assert served["RateLimit-Remaining"] == str(limit - 1)


def test_each_policy_counts_separately_for_the_same_ip():
    (ip,) = ipv4_clients("203.0.113")
    use_up(CONTACT_UPSERT, 60, REMOTE_ADDR=ip)
    assert_blocked(HttpClient().post(CONTACT_UPSERT, REMOTE_ADDR=ip), 60)

    webhook = HttpClient().post(WEBHOOK, REMOTE_ADDR=ip)
    assert webhook.status_code == 200 and webhook["RateLimit-Remaining"] == "199"


def test_addresses_of_one_ipv6_64_share_one_count_and_another_64_has_its_own():
    def network(prefix: str) -> str:
        return str(ipaddress.ip_network(f"{prefix}/64"))

    first, second = addresses_with_time_left(
        (f"2001:db8:0:{n:x}::" for n in range(1, 255)), count=2, key=network
    )
    remaining = use_up(CONTACT_UPSERT, 60, REMOTE_ADDR=lambda n: f"{first}{n + 1:x}")
    assert remaining == list(range(59, -1, -1))
    assert_blocked(HttpClient().post(CONTACT_UPSERT, REMOTE_ADDR=f"{first}dead:beef"), 60)

    other = HttpClient().post(CONTACT_UPSERT, REMOTE_ADDR=f"{second}1")
    assert other.status_code == 200 and other["RateLimit-Remaining"] == "59"


# --- the real endpoints with the "auth" policy ----------------------------------


@pytest.mark.django_db(databases=ALL_DATABASES)
@pytest.mark.parametrize(
    ("path", "data"),
    [
        pytest.param(
            "/oauth/token/",
            {"grant_type": "client_credentials", "client_id": "no-such-app", "client_secret": "wrong"},
            id="oauth-token",
        ),
        pytest.param("/accounts/login/", {"username": "nobody@example.test", "password": "wrong"}, id="login"),
    ],
)
def test_token_endpoint_and_login_are_limited_per_ip_by_the_auth_policy(settings, path, data):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "auth": (3, WINDOW)}
    first, second = ipv4_clients("192.0.2", count=2)
    for expected_remaining in ("2", "1", "0"):
        response = HttpClient().post(path, data, REMOTE_ADDR=first)
        assert response.status_code in (200, 400, 401), response.status_code
        assert_limit_headers(response, 3)
        assert response["RateLimit-Remaining"] == expected_remaining

    assert_blocked(HttpClient().post(path, data, REMOTE_ADDR=first), 3)
    other_ip = HttpClient().post(path, data, REMOTE_ADDR=second)
    assert other_ip.status_code != 429 and other_ip["RateLimit-Remaining"] == "2"


@pytest.mark.django_db(databases=ALL_DATABASES)
def test_the_login_page_itself_is_not_limited(settings):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "auth": (1, WINDOW)}
    (ip,) = ipv4_clients("192.0.2")
    for _ in range(2):
        HttpClient().post("/accounts/login/", {"username": "a@example.test", "password": "x"}, REMOTE_ADDR=ip)
    page = HttpClient().get("/accounts/login/", REMOTE_ADDR=ip)
    assert page.status_code == 200 and "RateLimit-Limit" not in page


# --- the cache failing --------------------------------------------------------------


@pytest.fixture
def redis_down(settings, tmp_path):
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"unix://{tmp_path}/no-redis-here.sock",
            "OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2},
        }
    }


@pytest.mark.django_db(databases=["default", "app"])
def test_with_redis_down_limited_endpoints_keep_serving_log_an_error_and_healthz_reports_it(settings, redis_down, caplog):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "webhook": (2, WINDOW)}
    caplog.set_level("ERROR", logger="sagerock.ratelimits")
    for _ in range(4):
        response = HttpClient().post(WEBHOOK, REMOTE_ADDR="203.0.113.40")
        assert response.status_code == 200
        assert response.json() == {"ok": True}
    not_applied = [r for r in caplog.records if r.name == "sagerock.ratelimits" and r.levelname == "ERROR"]
    assert len(not_applied) == 4
    assert all("rate limit webhook not applied" in r.getMessage() for r in not_applied)

    health = HttpClient().get("/healthz")
    assert health.status_code == 503
    assert health.json()["checks"]["redis"] == "failed"


@pytest.mark.django_db(databases=ALL_DATABASES, transaction=True)
def test_with_redis_down_sign_in_the_token_endpoint_and_the_api_keep_working(redis_down, staff_admin, client_a):
    browser = HttpClient()
    signed_in = browser.post("/accounts/login/", {"username": staff_admin.email, "password": PASSWORD})
    assert signed_in.status_code == 302, signed_in.status_code
    assert browser.get("/admin/").status_code == 200

    application, secret = make_api_application(client_a)
    issued = HttpClient().post(
        "/oauth/token/",
        {"grant_type": "client_credentials", "client_id": application.client_id, "client_secret": secret},
    )
    assert issued.status_code == 200, issued.content
    me = HttpClient().get("/api/v1/me/", HTTP_AUTHORIZATION=f"Bearer {issued.json()['access_token']}")
    assert me.status_code == 200 and me.json()["kind"] == "application"


class CounterEvictingCache(LocMemCache):
    """A cache that loses the counter between django-ratelimit's `add` (the
    key is there) and `incr` (it is gone), as Redis does when it evicts or
    expires the key in between; Django's RedisCache.incr then raises
    ValueError."""

    def add(self, key, value, timeout=None, version=None):
        return False

    def incr(self, key, delta=1, version=None):
        raise ValueError(f"Key '{key}' not found.")


def test_a_counter_lost_between_add_and_incr_fails_open_and_is_logged(settings, caplog):
    settings.CACHES = {
        **settings.CACHES,
        "evicting": {"BACKEND": f"{__name__}.CounterEvictingCache"},
    }
    settings.RATELIMIT_USE_CACHE = "evicting"
    caplog.set_level("ERROR", logger="sagerock.ratelimits")
    response = HttpClient().post(WEBHOOK, REMOTE_ADDR="203.0.113.41")
    assert response.status_code == 200
    assert [r.getMessage() for r in caplog.records if r.name == "sagerock.ratelimits"] == [
        "rate limit webhook not applied: the counter vanished from the cache"
    ]


# --- the system check -----------------------------------------------------------------


def rate_limit_cache_errors() -> list[checks.CheckMessage]:
    """What our registered checks report. (Django's own cache checks would
    instantiate every cache, which needs each backend's client library.)"""
    ours = [check for check in checks.registry.registry.get_checks() if check.__module__ == "sagerock.checks"]
    assert ours, "sagerock.checks registers no system check"
    return [message for check in ours for message in check(app_configs=None)]


@override_settings(MULTI_PROCESS=True)
def test_the_configured_redis_cache_passes_the_rate_limit_cache_check():
    assert django_settings.CACHES[django_settings.RATELIMIT_USE_CACHE]["BACKEND"].endswith(".RedisCache")
    assert rate_limit_cache_errors() == []


@pytest.mark.parametrize(
    ("backend", "reason"),
    [
        ("django.core.cache.backends.locmem.LocMemCache", "once per worker"),
        ("django.core.cache.backends.dummy.DummyCache", "no request is ever counted"),
        ("django.core.cache.backends.filebased.FileBasedCache", "no atomic increment"),
        ("django.core.cache.backends.db.DatabaseCache", "no atomic increment"),
        ("sagerock.no_such_module.Cache", "not known to be a shared cache"),
    ],
)
def test_a_cache_that_is_not_shared_fails_the_check_in_a_multi_process_deployment(tmp_path, backend, reason):
    counters = {"BACKEND": backend, "LOCATION": str(tmp_path / "counters")}
    with override_settings(
        CACHES={**django_settings.CACHES, "counters": counters}, RATELIMIT_USE_CACHE="counters", MULTI_PROCESS=True
    ):
        errors = rate_limit_cache_errors()
    assert [(e.id, e.level) for e in errors] == [("sagerock.E002", checks.ERROR)]
    assert backend in errors[0].msg and reason in errors[0].msg
    assert "MULTI_PROCESS=false" in errors[0].hint


@pytest.mark.parametrize(
    "backend",
    [
        "django.core.cache.backends.redis.RedisCache",
        "django.core.cache.backends.memcached.PyMemcacheCache",
        "django.core.cache.backends.memcached.PyLibMCCache",
    ],
)
def test_redis_and_memcached_pass_the_check(backend):
    counters = {"BACKEND": backend, "LOCATION": "127.0.0.1:1"}
    with override_settings(CACHES={**django_settings.CACHES, "counters": counters}, RATELIMIT_USE_CACHE="counters"):
        assert rate_limit_cache_errors() == []


def test_a_single_process_deployment_may_count_in_local_memory():
    counters = {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    with override_settings(
        CACHES={**django_settings.CACHES, "counters": counters}, RATELIMIT_USE_CACHE="counters", MULTI_PROCESS=False
    ):
        assert rate_limit_cache_errors() == []


def test_a_rate_limit_cache_missing_from_caches_fails_the_check():
    with override_settings(RATELIMIT_USE_CACHE="counters", MULTI_PROCESS=True):
        assert [e.id for e in rate_limit_cache_errors()] == ["sagerock.E001"]


# --- several gunicorn workers ------------------------------------------------------------


def _database_url(alias: str) -> str:
    config = connections[alias].settings_dict
    credentials = quote(config["USER"], safe="")
    if config.get("PASSWORD"):
        credentials += ":" + quote(config["PASSWORD"], safe="")
    port = f":{config['PORT']}" if config.get("PORT") else ""
    return f"postgres://{credentials}@{quote(config['HOST'] or '', safe='')}{port}/{quote(config['NAME'], safe='')}"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _request(port: int, path: str, *, source: str = "127.0.0.1", method: str = "GET") -> tuple[int, dict, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30, source_address=(source, 0))
    try:
        connection.request(method, path, headers={"Connection": "close", "Content-Length": "0"})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def _served_by(access_log: Path, path: str) -> Counter:
    """Requests for `path` per worker pid, from the access log."""
    lines = access_log.read_text().splitlines() if access_log.exists() else []
    return Counter(pid for pid, _status, logged_path in (line.split() for line in lines) if logged_path == path)


@pytest.mark.slow
@pytest.mark.django_db(databases=ALL_DATABASES, transaction=True)
def test_counts_are_exact_across_two_gunicorn_workers(tmp_path):
    port = _free_port()
    access_log, error_log = tmp_path / "access.log", tmp_path / "error.log"
    environment = {
        **os.environ,
        "SAGEROCK_TESTING": "1",
        "DEBUG": "0",
        "PRODUCTION": "0",
        "TRUSTED_PROXY_COUNT": "0",
        "DATABASE_URL": _database_url("default"),
        "DATABASE_APP_URL": _database_url("app"),
        "DATABASE_STAFF_URL": _database_url("staff"),
        "DATABASE_SERVICE_URL": _database_url("service"),
    }
    server = subprocess.Popen(
        [
            sys.executable, "-m", "gunicorn", "sagerock.wsgi",
            "--workers", "2", "--bind", f"127.0.0.1:{port}",
            "--access-logfile", str(access_log), "--access-logformat", "%(p)s %(s)s %(U)s",
            "--error-logfile", str(error_log), "--no-control-socket",
        ],
        cwd=django_settings.BASE_DIR, env=environment,
    )
    try:
        with ThreadPoolExecutor(max_workers=8) as pool:
            # Ready when both workers have loaded the application and answered.
            deadline = time.monotonic() + 60
            while len(_served_by(access_log, "/healthz")) < 2:
                assert server.poll() is None, error_log.read_text()
                assert time.monotonic() < deadline, "gunicorn workers did not both answer:\n" + error_log.read_text()
                try:
                    list(pool.map(lambda _: _request(port, "/healthz"), range(8)))
                except OSError:
                    time.sleep(0.2)

            # The client connects from its own loopback address (all of
            # 127.0.0.0/8 is loopback on Linux), so REMOTE_ADDR is real.
            (client,) = addresses_with_time_left(f"127.0.0.{n}" for n in range(2, 255))
            results = list(pool.map(lambda _: _request(port, WEBHOOK, source=client, method="POST"), range(260)))
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()

    statuses = Counter(status for status, _headers, _body in results)
    assert statuses == {200: 200, 429: 60}
    remaining = sorted(int(headers["RateLimit-Remaining"]) for status, headers, _body in results if status == 200)
    assert remaining == list(range(200))
    for status, headers, body in results:
        assert headers["RateLimit-Policy"] == "200;w=60"
        if status == 429:
            assert headers["RateLimit-Remaining"] == "0" and int(headers["Retry-After"]) >= 1
            assert json.loads(body)["code"] == "rate_limited"

    workers = _served_by(access_log, WEBHOOK)
    assert sum(workers.values()) == 260
    assert len(workers) == 2, workers
