"""Cached and conditional release answers: ``ETag``, ``304 Not Modified`` and a response cache.

An answer is a function of the organization's data, the caller, the request and the hour
(health windows are hour-aligned). Every write raises the organization's change stamp
(``releases.stamps``), so an answer's tag is a digest of: that stamp, the caller (token, or
signed-in user), the full path with its query, the negotiated media type, and the current
freshness window (``RELEASE_CACHE_SECONDS``, which divides an hour, so that windows turn with
the hour). A matching ``If-None-Match`` is answered ``304`` before any release query; a tag
found in the ``responses`` cache is answered from it. Details and rules: docs/performance.md §5.
"""

from __future__ import annotations

import functools
import hashlib
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.cache import caches
from django.http import HttpResponse, HttpResponseBase, HttpResponseNotModified
from django.utils.http import parse_etags
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.models import ApiToken

from .base import OrganizationEndpoint

#: Query parameters whose meaning moves with the clock by less than an hour: answers that
#: use them are neither cached nor tagged.
_CLOCK_PARAMS = ("statsPeriod",)
_CLOCK_SEARCH_KEYS = ("release.created",)


def _seconds() -> int:
    return int(settings.RELEASE_CACHE_SECONDS)


class CachedAnswers(OrganizationEndpoint):
    """For the release list and details views: :func:`cached_answer` wraps their handlers."""

    _answer_to_store: str | None = None

    def answer_tag(self) -> str | None:
        """The answer's ``ETag``, or None when it is not cacheable."""
        request = self.request
        if _seconds() <= 0 or request.method not in ("GET", "HEAD"):
            return None
        params = request.query_params
        if any(name in params for name in _CLOCK_PARAMS):
            return None
        query = params.get("query", "").lower()
        if any(key in query for key in _CLOCK_SEARCH_KEYS):
            return None
        token = request.auth
        caller = f"token:{token.pk}" if isinstance(token, ApiToken) else f"user:{request.user.pk}"
        stamp = self.organization.change_stamp  # type: ignore[attr-defined]  # find_organization
        parts = (
            str(stamp),
            str(int(time.time()) // _seconds()),
            caller,
            request.get_full_path(),
            str(request.accepted_media_type),
        )
        digest = hashlib.sha256("\n".join(parts).encode()).hexdigest()[:32]
        return f'"{digest}"'

    def answer(self, build: Callable[[], HttpResponseBase]) -> HttpResponseBase:
        """``304`` for a matching ``If-None-Match``, the cached answer, or ``build()``'s."""
        tag = self.answer_tag()
        if tag is None:
            return build()
        if tag in parse_etags(self.request.headers.get("If-None-Match", "")):
            not_modified = HttpResponseNotModified()
            not_modified["ETag"] = tag
            return not_modified
        cached = caches["responses"].get(tag)
        if cached is not None:
            content, headers = cached
            return HttpResponse(content, headers=headers)
        response = build()
        response["ETag"] = tag
        self._answer_to_store = tag
        return response

    def finalize_response(
        self, request: Request, response: Response, *args: Any, **kwargs: Any
    ) -> Response:
        """The superclass's; a fresh 200 answer is rendered and stored under its tag."""
        response = super().finalize_response(request, response, *args, **kwargs)
        tag = self._answer_to_store
        if tag is not None and response.status_code == 200:
            response.render()
            caches["responses"].set(
                tag, (response.content, dict(response.items())), timeout=_seconds()
            )
        return response


Handler = Callable[..., HttpResponseBase]


def cached_answer(handler: Handler) -> Handler:
    """Decorates a list or retrieve handler of a :class:`CachedAnswers` view."""

    @functools.wraps(handler)
    def wrapper(self: CachedAnswers, request: Request, *args: Any, **kwargs: Any) -> Any:
        return self.answer(lambda: handler(self, request, *args, **kwargs))

    return wrapper
