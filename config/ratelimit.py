"""Fixed-window rate limits counted in a cache that every worker shares (docs/reliability.md).

``hit(scope, ident, rate)`` counts one request and says how long to wait once the window's
limit is passed. Used by the API's DRF throttles (``config.throttles``), and by
:class:`RateLimitMiddleware` for envelopes and failed authentication.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import caches
from django.http import HttpRequest, HttpResponseBase, JsonResponse
from rest_framework.throttling import BaseThrottle

from .errors import database_unavailable, is_api_path, unavailable_response

PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
ENVELOPE_PATH = re.compile(r"^/api/(?P<project_id>\d+)/envelope/$")


@dataclass(frozen=True)
class Rate:
    limit: int
    window: int


def parse_rate(text: str | None) -> Rate | None:
    """``"1200/min"`` → ``Rate(1200, 60)`` (DRF's notation: s, min, hour, day); empty or
    ``off`` → ``None``, no limit."""
    if not text or text.strip().lower() in {"off", "none", "0"}:
        return None
    count, _, period = text.strip().partition("/")
    return Rate(int(count), PERIODS[period.strip()[:1].lower()])


def rate(scope: str) -> Rate | None:
    return parse_rate(settings.RATE_LIMITS.get(scope))


def _window(rate: Rate) -> tuple[int, int]:
    now = int(time.time())
    start = now - now % rate.window
    return start, max(1, start + rate.window - now)


def _key(scope: str, ident: str, start: int) -> str:
    return f"rl:{scope}:{ident}:{start}"


def hit(scope: str, ident: str, rate: Rate) -> int | None:
    """Counts one request; the seconds until the window ends when it is over the limit."""
    cache = caches[settings.RATELIMIT_CACHE]
    start, remaining = _window(rate)
    key = _key(scope, ident, start)
    cache.add(key, 0, timeout=rate.window + 1)
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=rate.window + 1)
        count = 1
    return remaining if count > rate.limit else None


def count(scope: str, ident: str, rate: Rate) -> int:
    """Requests counted in the current window (what :func:`hit` compares with the limit)."""
    start, _ = _window(rate)
    return int(caches[settings.RATELIMIT_CACHE].get(_key(scope, ident, start), 0))


def blocked(scope: str, ident: str, rate: Rate) -> int | None:
    """Like :func:`hit`, without counting."""
    _, remaining = _window(rate)
    return remaining if count(scope, ident, rate) >= rate.limit else None


def client_address(request: HttpRequest) -> str:
    """The client's address as DRF's throttles see it (``NUM_PROXIES`` behind proxies)."""
    return str(BaseThrottle().get_ident(request))  # type: ignore[arg-type]


def sentry_key(request: HttpRequest) -> str | None:
    """The DSN's public key from ``X-Sentry-Auth``, ``Authorization`` or ``?sentry_key=``."""
    for header in ("X-Sentry-Auth", "Authorization"):
        scheme, _, rest = request.headers.get(header, "").strip().partition(" ")
        if scheme.lower() == "sentry":
            for part in rest.split(","):
                name, sep, value = part.strip().partition("=")
                if sep and name.strip().lower() == "sentry_key" and value.strip():
                    return value.strip()[:64]
    return request.GET.get("sentry_key", "")[:64] or None


def too_many(detail: str, wait: int) -> JsonResponse:
    response = JsonResponse({"detail": detail}, status=429)
    response["Retry-After"] = str(wait)
    return response


class RateLimitMiddleware:
    """Envelopes: per DSN key and per project, answered as Relay does (429, ``Retry-After`` and
    ``X-Sentry-Rate-Limits: <seconds>::<key|project>``, which makes SDKs stop sending for that
    long). Other API calls: a client address with too many failed authentications (401) gets
    429 until the window ends.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        if not is_api_path(request.path_info):
            return self.get_response(request)
        try:
            refused = self._refuse(request)
        except Exception as exc:
            if database_unavailable(exc):  # the database cache is down
                return unavailable_response()
            raise
        if refused is not None:
            return refused
        response = self.get_response(request)
        failures = rate("auth_failure_address")
        if response.status_code == 401 and failures is not None:
            try:
                hit("auth_failure_address", client_address(request), failures)
            except Exception as exc:
                if not database_unavailable(exc):
                    raise
        return response

    def _refuse(self, request: HttpRequest) -> HttpResponseBase | None:
        failures = rate("auth_failure_address")
        if failures is not None:
            wait = blocked("auth_failure_address", client_address(request), failures)
            if wait is not None:
                return too_many("Too many failed authentication attempts; retry later.", wait)
        match = ENVELOPE_PATH.match(request.path_info)
        if match is None or request.method != "POST":
            return None
        checks = [("project", "envelope_project", match["project_id"])]
        key = sentry_key(request)
        if key is not None:
            checks.insert(0, ("key", "envelope_key", key))
        for quota_scope, scope, ident in checks:
            limit = rate(scope)
            wait = hit(scope, ident, limit) if limit is not None else None
            if wait is not None:
                response = too_many(f"Rate limit exceeded for this {quota_scope}.", wait)
                # Relay's format: retry_after:categories:scope; no categories means all of them.
                response["X-Sentry-Rate-Limits"] = f"{wait}::{quota_scope}"
                return response
        return None
