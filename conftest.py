import pytest

from tests.factories import *  # noqa: F403 - fixtures shared by every app's tests


@pytest.fixture(autouse=True)
def _clear_cache():
    """Rate-limit counters and sessions live in Redis; each test starts clean."""
    from django.core.cache import cache

    cache.clear()
    yield
