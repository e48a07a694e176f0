import pytest
from django.db import connections
from django.test import Client as HttpClient

pytestmark = pytest.mark.django_db(databases=["default", "app"])


def test_healthz_answers_200_when_database_and_redis_answer():
    response = HttpClient().get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "redis": "ok"}}
    assert "version" not in response.content.decode().lower()


def test_healthz_answers_503_naming_redis_when_redis_is_down(settings, tmp_path):
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"unix://{tmp_path}/no-redis-here.sock",
            "OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2},
        }
    }
    response = HttpClient().get("/healthz")
    assert response.status_code == 503
    assert response.json()["checks"] == {"database": "ok", "redis": "failed"}


@pytest.mark.django_db(databases=["default", "app"], transaction=True)
def test_healthz_answers_503_naming_the_database_when_it_is_down(tmp_path):
    connection = connections["app"]
    connection.close()
    original = connection.settings_dict["HOST"]
    connection.settings_dict["HOST"] = str(tmp_path)  # no PostgreSQL socket there
    try:
        response = HttpClient().get("/healthz")
    finally:
        connection.close()
        connection.settings_dict["HOST"] = original
    assert response.status_code == 503
    assert response.json()["checks"] == {"database": "failed", "redis": "ok"}
    assert str(tmp_path) not in response.content.decode()


def test_healthz_needs_no_authentication_and_refuses_other_methods():
    assert HttpClient().post("/healthz").status_code == 405
