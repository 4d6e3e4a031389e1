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


def api_limits(caller: str | None, address: str) -> list[tuple[str, str, ratelimits.Rate]]:
    """The configured limits of an API call by ``caller`` (``TokenRateThrottle.ident``; None:
    not counted) from ``address``, as ``ratelimits.hit_many`` takes them."""
    limits = []
    for scope, ident in ((TokenRateThrottle.scope, caller), (AddressRateThrottle.scope, address)):
        rate = ratelimits.rate(scope)
        if rate is not None and ident is not None:
            limits.append((scope, ident, rate))
    return limits


class ApiRateThrottle(BaseThrottle):
    """Both limits of an API call, per token (or signed-in user) and per client address,
    counted in one statement (``ratelimits.hit_many``); the wait is the longer one.

    A token this process already knew was counted by the statement that checked it is still
    valid (``authentication.check_known_token``, from the rate-limit middleware): its waits are
    on the request, and only the decision is taken here, where DRF takes it (after the
    permissions), so the order of the answers stays the same.
    """

    def __init__(self) -> None:
        self.wait_seconds: int | None = None

    def allow_request(self, request: Request, view: Any) -> bool:
        counted = getattr(request._request, "api_limit_waits", None)
        if counted is not None and request.auth is getattr(request._request, "known_token", None):
            self.wait_seconds = max((w for w in counted.values() if w is not None), default=None)
            return self.wait_seconds is None
        caller = TokenRateThrottle().ident(request)
        limits = api_limits(caller, AddressRateThrottle().get_ident(request))
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
