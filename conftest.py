import pytest

from tests.factories import *  # noqa: F403 - fixtures shared by every app's tests


@pytest.fixture(autouse=True)
def _clear_cache():
    """Rate-limit counters and sessions live in Redis; each test starts clean."""
    from django.core.cache import cache

    cache.clear()
    yield


@pytest.fixture(scope="session", autouse=True)
def _close_role_connections_before_teardown(django_db_setup, django_db_blocker):
    """The app/staff/service aliases are mirrors with connections of their
    own; close them so the test database can be dropped at the end."""
    yield
    from django.db import connections

    with django_db_blocker.unblock():
        connections.close_all()
