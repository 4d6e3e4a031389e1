"""Failed authentication per client address (docs/reliability.md): an address with too many
401 answers in a window gets 429 for every API call until the window ends.

The envelope endpoint checks the block itself once it has read the body
(``releases.health.envelope``), so that a slow client holds no database connection.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from django.http import HttpRequest, HttpResponseBase, JsonResponse

from accounts import ratelimits

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
        rate = ratelimits.rate(SCOPE)
        if rate is None or not is_api_path(request.path_info):
            return self.get_response(request)
        address = ratelimits.client_address(request)
        if not ENVELOPE_PATH.match(request.path_info):
            try:
                wait = ratelimits.blocked(SCOPE, address, rate)
            except Exception as exc:
                if database_unavailable(exc):  # the counters' database is down
                    return unavailable_response()
                raise
            if wait is not None:
                return too_many(ratelimits.AUTH_FAILURES_DETAIL, wait)
        response = self.get_response(request)
        if response.status_code == 401:
            try:
                ratelimits.hit(SCOPE, address, rate)
            except Exception as exc:
                if not database_unavailable(exc):
                    raise
        return response
