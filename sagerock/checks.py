"""System checks for deployment mistakes that would silently weaken a promise.

Rate limits count in a cache (sagerock.ratelimits). With several processes
(gunicorn workers, machines) that cache must be one store that every process
shares and that increments atomically, or each process counts on its own and
a client gets the limit once per process.
"""

from django.conf import settings
from django.core import checks
from django.core.cache.backends.memcached import BaseMemcachedCache
from django.core.cache.backends.redis import RedisCache
from django.utils.module_loading import import_string

# Backends that are not Django's RedisCache or memcached classes but are
# known to be shared and atomic.
_OTHER_SHARED_BACKENDS = {"django_redis.cache.RedisCache"}

_WHY_NOT_SHARED = {
    "django.core.cache.backends.locmem.LocMemCache": (
        "keeps its counters in each process's memory, so every worker counts separately and a client "
        "gets the limit once per worker"
    ),
    "django.core.cache.backends.dummy.DummyCache": "stores nothing, so no request is ever counted",
    "django.core.cache.backends.filebased.FileBasedCache": (
        "has no atomic increment (concurrent requests overwrite each other's counts) and is local to one machine"
    ),
    "django.core.cache.backends.db.DatabaseCache": "has no atomic increment: concurrent requests overwrite each other's counts",
}


def _is_shared(backend: str) -> bool:
    if backend in _OTHER_SHARED_BACKENDS:
        return True
    try:
        backend_class = import_string(backend)
    except ImportError:
        return False
    return isinstance(backend_class, type) and issubclass(backend_class, RedisCache | BaseMemcachedCache)


@checks.register(checks.Tags.caches)
def rate_limit_cache_is_shared(app_configs, **kwargs) -> list[checks.CheckMessage]:
    if not getattr(settings, "MULTI_PROCESS", True):
        return []
    alias = getattr(settings, "RATELIMIT_USE_CACHE", "default")
    config = settings.CACHES.get(alias)
    if config is None:
        return [
            checks.Error(
                f"RATELIMIT_USE_CACHE names the cache {alias!r}, which is not in CACHES.",
                hint="Point RATELIMIT_USE_CACHE at a Redis or Memcached cache in CACHES.",
                id="sagerock.E001",
            )
        ]
    backend = config.get("BACKEND", "")
    if _is_shared(backend):
        return []
    reason = _WHY_NOT_SHARED.get(backend, "is not known to be a shared cache with an atomic increment")
    return [
        checks.Error(
            f"Rate limits count in the cache {alias!r}, whose backend {backend} {reason}. "
            "MULTI_PROCESS is on, so the per-IP limits would not hold.",
            hint=(
                "Use django.core.cache.backends.redis.RedisCache (or a Memcached backend) for "
                "RATELIMIT_USE_CACHE, or set MULTI_PROCESS=false if exactly one process serves requests."
            ),
            id="sagerock.E002",
        )
    ]
