import pytest

from tests.factories import *  # noqa: F403 - fixtures shared by every app's tests


@pytest.fixture(autouse=True)
def _clear_cache():
    """Rate-limit counters live in Redis; each test starts clean.
    Only this run's keys are removed (settings give each run its own prefix):
    never FLUSHDB on a Redis that others may share."""
    from django.core.cache import cache

    prefix = cache.key_prefix
    try:
        client = cache._cache.get_client(write=True)
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        if keys:
            client.delete(*keys)
    except Exception:  # noqa: BLE001, S110 - tests that take Redis away point the cache elsewhere
        pass
    yield


@pytest.fixture(autouse=True)
def _forget_earlier_tests_connection_use():
    """The end-of-request reset (tenants.context.reset_runtime_connections)
    touches only connections used since the last reset; a connection an
    earlier test used must not count for this test, which may not be allowed
    to query it."""
    from django.db import connections

    for alias in ("app", "staff"):
        connections[alias].sagerock_used = False
    yield


@pytest.fixture(scope="session", autouse=True)
def _close_role_connections_before_teardown(django_db_setup, django_db_blocker):
    """The app/staff/service aliases are mirrors with connections of their
    own; close them so the test database can be dropped at the end."""
    yield
    from django.db import connections

    with django_db_blocker.unblock():
        connections.close_all()
