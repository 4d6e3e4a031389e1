"""Failed authentication per client address (docs/reliability.md): an address with too many
401 answers in a window gets 429 for every API call until the window ends.

The envelope endpoint checks the block itself once it has read the body
(``releases.health.envelope``), so that a slow client holds no database connection. On the
database store, a bearer token this process already knows is checked in the same statement as
the block, which also counts both API rate limits (``accounts.authentication.check_known_token``;
DRF's throttle then only decides, in its usual place) and reads the URL's organization for the
view.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from django.http import HttpRequest, HttpResponseBase, JsonResponse

from accounts import ratelimits
from accounts.authentication import check_known_token
from releases.api.base import early_organization

from .errors import database_unavailable, is_api_path, unavailable_response

SCOPE = ratelimits.AUTH_FAILURES
ENVELOPE_PATH = re.compile(r"^/api/\d+/envelope/$")


def too_many(detail: str, wait: int) -> JsonResponse:
    response = JsonResponse({"detail": detail}, status=429)
    response["Retry-After"] = str(wait)
    return response


class RateLimitMiddleware:
    """Counts the API's 401 answers per client address and refuses that address once over."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        if not is_api_path(request.path_info):
            return self.get_response(request)
        rate = ratelimits.rate(SCOPE)
        address = ratelimits.client_address(request)
        if not ENVELOPE_PATH.match(request.path_info):
            try:
                wait = self._blocked(request, address, rate)
            except Exception as exc:
                if database_unavailable(exc):  # the counters' database is down
                    return unavailable_response()
                raise
            if wait is not None:
                return too_many(ratelimits.AUTH_FAILURES_DETAIL, wait)
        response = self.get_response(request)
        if rate is not None and response.status_code == 401:
            try:
                ratelimits.hit(SCOPE, address, rate)
            except Exception as exc:
                if not database_unavailable(exc):
                    raise
        return response

    def _blocked(
        self, request: HttpRequest, address: str, rate: ratelimits.Rate | None
    ) -> int | None:
        """The wait of a blocked address, or None. With a token this process knows (database
        store), in the one statement that also checks the token, counts the API's rate
        limits and reads the URL's organization (``authentication.check_known_token``,
        ``releases.api.base.early_organization``); else a read of its own."""
        path = request.path_info
        guard = check_known_token(
            request, address, rate, also=lambda token: early_organization(path, token)
        )
        if guard is not None:
            return guard.blocked
        return ratelimits.blocked(SCOPE, address, rate) if rate is not None else None
