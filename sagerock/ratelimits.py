"""Per-IP rate limits: named policies, the client address, standard headers.

Counting is django-ratelimit's fixed window on the shared Redis cache (atomic
`add` + `incr`, so several gunicorn workers and machines share exact counts).
Every limited response carries the draft-6 header set that express-rate-limit
sends with `standardHeaders: true`; a blocked request gets 429 in the one
error shape with `Retry-After`. If Redis is down the limits fail open and the
failure is logged; /healthz reports Redis.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
from dataclasses import dataclass

from django.conf import settings
from django.http import JsonResponse
from django_ratelimit.core import get_usage

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Policy:
    name: str
    limit: int
    window_seconds: int

    @property
    def rate(self) -> str:
        return f"{self.limit}/{self.window_seconds}s"


def _policies() -> dict[str, Policy]:
    configured = getattr(settings, "RATE_LIMITS", {})
    return {name: Policy(name, limit, window) for name, (limit, window) in configured.items()}


def policy(name: str) -> Policy:
    try:
        return _policies()[name]
    except KeyError:
        raise LookupError(f"no rate-limit policy named {name!r}; see RATE_LIMITS in settings") from None


def _address(value: str) -> str | None:
    """The canonical text of an IP address (`[v6]:port` and `v4:port` forms
    accepted, IPv4-mapped IPv6 and zone ids reduced), or None if `value` is
    not one."""
    value = value.strip()
    if value.startswith("[") and "]" in value:
        value = value[1 : value.index("]")]
    elif value.count(":") == 1:
        value = value.partition(":")[0]
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        address = ipaddress.IPv6Address(int(address))  # drops a %zone
    return str(address)


def client_ip(request) -> str:
    """REMOTE_ADDR, or the address the outermost trusted proxy appended to
    X-Forwarded-For. Entries left of that are client-supplied and ignored, so
    a forged header cannot make one client look like many."""
    raw_remote = request.META.get("REMOTE_ADDR", "")
    remote = _address(raw_remote) or raw_remote or "0.0.0.0"  # noqa: S104 - a key, not a bind address
    trusted = settings.TRUSTED_PROXY_COUNT
    if trusted <= 0:
        return remote
    hops = [hop.strip() for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()]
    if len(hops) < trusted:
        # The request did not come through every trusted proxy.
        return remote
    # Not an address: the proxy chain is misconfigured; the proxy's own
    # address keeps everyone behind it in one bucket rather than many.
    return _address(hops[-trusted]) or remote


def _ip_key(group, request) -> str:
    """One counter per IPv4 address, and one per IPv6 network of
    RATELIMIT_IPV6_MASK bits (default 64): a single IPv6 subscriber is
    usually given a whole /64 and could otherwise rotate through it."""
    address = client_ip(request)
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address  # a REMOTE_ADDR that is no IP address: one bucket for all of them
    if parsed.version == 4:
        return address
    return str(ipaddress.ip_network((parsed, getattr(settings, "RATELIMIT_IPV6_MASK", 64)), strict=False))


def _usage(request, limit_policy: Policy) -> dict | None:
    try:
        usage = get_usage(request, group=limit_policy.name, key=_ip_key, rate=limit_policy.rate, increment=True)
    except Exception as error:  # noqa: BLE001 - any cache failure means "fail open"
        logger.error(
            "rate limit %s not applied: cache unavailable (%s)", limit_policy.name, error.__class__.__name__
        )
        return None
    if usage is not None and not usage["count"]:
        # A counted request is at least 1. django-ratelimit answers count 0
        # with should_limit (fail closed) when its add-then-incr finds the key
        # gone in between (evicted, expired): a cache failure, so fail open.
        logger.error("rate limit %s not applied: the counter vanished from the cache", limit_policy.name)
        return None
    return usage


def _headers(limit_policy: Policy, usage: dict) -> dict[str, str]:
    reset = max(int(usage["time_left"]), 0)
    remaining = max(limit_policy.limit - int(usage["count"]), 0)
    return {
        "RateLimit-Policy": f"{limit_policy.limit};w={limit_policy.window_seconds}",
        "RateLimit-Limit": str(limit_policy.limit),
        "RateLimit-Remaining": str(remaining),
        "RateLimit-Reset": str(reset),
    }


def too_many_requests(retry_after: int) -> JsonResponse:
    response = JsonResponse(
        {"code": "rate_limited", "detail": "Too many requests; retry later.", "fields": {}}, status=429
    )
    response["Retry-After"] = str(max(retry_after, 1))
    return response


def check(request, name: str) -> tuple[bool, dict[str, str]]:
    """Count this request against policy `name`. Returns (blocked, headers)."""
    limit_policy = policy(name)
    usage = _usage(request, limit_policy)
    if usage is None:
        return False, {}
    return bool(usage["should_limit"]), _headers(limit_policy, usage)


def rate_limited(name: str, methods: tuple[str, ...] | None = None):
    """Decorate a view with the named policy (optionally only some methods)."""

    def decorator(view):
        @functools.wraps(view)
        def wrapper(request, *args, **kwargs):
            if methods is not None and request.method not in methods:
                return view(request, *args, **kwargs)
            blocked, headers = check(request, name)
            if blocked:
                response = too_many_requests(int(headers.get("RateLimit-Reset", "1")))
            else:
                response = view(request, *args, **kwargs)
            for header, value in headers.items():
                response[header] = value
            return response

        return wrapper

    return decorator
