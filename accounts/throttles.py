"""The API's DRF throttles: per token (or signed-in user) and per client address.

Rates come from ``RATE_LIMITS`` (read at each request, so tests can override them) and are
counted by :mod:`accounts.ratelimits`.
"""

from __future__ import annotations

from typing import Any

from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from accounts.models import ApiToken

from . import ratelimits


class FixedWindowThrottle(BaseThrottle):
    scope = ""

    def __init__(self) -> None:
        self.wait_seconds: int | None = None

    def ident(self, request: Request) -> str | None:
        raise NotImplementedError

    def allow_request(self, request: Request, view: Any) -> bool:
        rate = ratelimits.rate(self.scope)
        ident = self.ident(request) if rate is not None else None
        if rate is None or ident is None:
            return True
        self.wait_seconds = ratelimits.hit(self.scope, ident, rate)
        return self.wait_seconds is None

    def wait(self) -> float | None:
        return self.wait_seconds


class ApiRateThrottle(BaseThrottle):
    """Both limits of an API call, per token (or signed-in user) and per client address,
    counted in one statement (``ratelimits.hit_many``); the wait is the longer one."""

    def __init__(self) -> None:
        self.wait_seconds: int | None = None

    def allow_request(self, request: Request, view: Any) -> bool:
        limits = []
        for throttle in (TokenRateThrottle(), AddressRateThrottle()):
            rate = ratelimits.rate(throttle.scope)
            ident = throttle.ident(request) if rate is not None else None
            if rate is not None and ident is not None:
                limits.append((throttle.scope, ident, rate))
        self.wait_seconds = ratelimits.hit_many(limits)
        return self.wait_seconds is None

    def wait(self) -> float | None:
        return self.wait_seconds


class TokenRateThrottle(FixedWindowThrottle):
    """Keyed by the API token, else by the signed-in user; anonymous calls are not counted."""

    scope = "api_token"

    def ident(self, request: Request) -> str | None:
        if isinstance(request.auth, ApiToken):
            return f"token:{request.auth.pk}"
        if request.user and request.user.is_authenticated:
            return f"user:{request.user.pk}"
        return None


class AddressRateThrottle(FixedWindowThrottle):
    """Keyed by the client address, whoever calls."""

    scope = "api_address"

    def ident(self, request: Request) -> str | None:
        return self.get_ident(request)
