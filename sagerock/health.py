"""Liveness of the two services the platform cannot work without.

No authentication, and nothing in the answer that helps an attacker: no
versions, hosts or error texts, only which dependency failed.
"""

import logging

from django.core.cache import cache
from django.db import DatabaseError, connections
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from tenants.context import APP_ALIAS

logger = logging.getLogger(__name__)


def _database_ok() -> bool:
    try:
        with connections[APP_ALIAS].cursor() as cursor:
            cursor.execute("SELECT 1")
            return cursor.fetchone() == (1,)
    except DatabaseError as error:
        logger.warning("health: database check failed: %s", error.__class__.__name__)
        return False


def _redis_ok() -> bool:
    try:
        client = cache._cache.get_client(write=True)
        return bool(client.ping())
    except Exception as error:  # noqa: BLE001 - any failure means "not healthy"
        logger.warning("health: redis check failed: %s", error.__class__.__name__)
        return False


@never_cache
@require_GET
def healthz(request):
    checks = {"database": _database_ok(), "redis": _redis_ok()}
    healthy = all(checks.values())
    body = {
        "status": "ok" if healthy else "unavailable",
        "checks": {name: "ok" if ok else "failed" for name, ok in checks.items()},
    }
    return JsonResponse(body, status=200 if healthy else 503)
