"""Request-wide middleware: JSON errors under ``/api/``, API write bodies read before any
database work, and one transaction per write request.

See docs/reliability.md.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import ExitStack

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import connections, transaction
from django.http import HttpRequest, HttpResponseBase, JsonResponse
from django.urls import Resolver404, get_urlconf, resolve
from django.utils.log import log_response

from releases import stamps

from .errors import (
    UNAVAILABLE,
    database_unavailable,
    is_api_path,
    server_error_response,
    unavailable_response,
)

logger = logging.getLogger("django.request")

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
#: The release API (the envelope endpoint, ``/api/<project>/envelope/``, reads its own body).
API_PREFIX = "/api/0/"


class ApiErrorMiddleware:
    """Under ``/api/``, an exception is a JSON answer, never an HTML page or a traceback,
    whatever ``DEBUG`` says: 503 with ``Retry-After`` when the database is down or busy, else
    500 ``{"detail": "Internal server error"}``. The traceback goes to the log.

    Place it first: ``process_exception`` answers for the views, and ``__call__`` replaces any
    non-JSON 5xx that a middleware below produced (Django's technical page under ``DEBUG``, or
    ``handler500``'s HTML) with the JSON 500.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = self.get_response(request)
        if (
            response.status_code >= 500
            and is_api_path(request.path_info)
            and not response.get("Content-Type", "").startswith("application/json")
        ):
            return server_error_response()
        return response

    def process_exception(
        self, request: HttpRequest, exception: Exception
    ) -> HttpResponseBase | None:
        if not is_api_path(request.path_info):
            return None
        if database_unavailable(exception):
            response = unavailable_response()
            log_response(
                "Database unavailable: %s",
                request.path,
                response=response,
                request=request,
                level="warning",
                exception=exception,
            )
        else:
            response = server_error_response()
            log_response(
                "Internal Server Error: %s",
                request.path,
                response=response,
                request=request,
                exception=exception,
            )
        return response


def _is_admin(request: HttpRequest) -> bool:
    match = getattr(request, "resolver_match", None)
    return match is not None and "admin" in match.app_names


class WriteTransactionMiddleware:
    """Runs each request with an unsafe method (POST, PUT, PATCH, DELETE) in one transaction,
    rolled back when the answer is an error (status 400 or more), as ``ATOMIC_REQUESTS`` plus
    DRF's ``set_rollback`` did. A successful admin write raises every organization's change
    stamp in that transaction (``releases.stamps``). Reads run in autocommit: they open no
    transaction, so on SQLite (WAL) they never take the write lock and never wait behind a
    writer.

    Views marked with ``transaction.non_atomic_requests`` (the envelope endpoint) manage their
    own transactions and are left alone.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        if request.method in SAFE_METHODS:
            return self.get_response(request)
        aliases = self._atomic_aliases(request)
        if not aliases:
            return self.get_response(request)
        try:
            with ExitStack() as stack:
                for alias in aliases:
                    # On SQLite this is BEGIN IMMEDIATE: it waits for the write lock at most
                    # SQLITE_BUSY_TIMEOUT seconds, then fails with "database is locked".
                    stack.enter_context(transaction.atomic(using=alias))
                response = self.get_response(request)
                if response.status_code >= 400:
                    for alias in aliases:
                        transaction.set_rollback(True, using=alias)
                elif _is_admin(request):
                    # An admin change may touch any organization's releases.
                    stamps.bump_all()
        except UNAVAILABLE:
            # BEGIN or COMMIT failed: nothing was written.
            if not is_api_path(request.path_info):
                raise
            return unavailable_response()
        return response

    def _atomic_aliases(self, request: HttpRequest) -> list[str]:
        urlconf = getattr(request, "urlconf", None) or get_urlconf()
        try:
            match = resolve(request.path_info, urlconf)
        except Resolver404:
            return []
        non_atomic: set[str] = getattr(match.func, "_non_atomic_requests", set())
        return [alias for alias in connections if alias not in non_atomic]


class ReadBodyFirstMiddleware:
    """Reads the whole body of a write request under ``/api/0/`` before anything touches the
    database (authentication, rate limits, the request's transaction): a client that trickles
    its body in holds a greenlet, never a database connection or an open transaction.

    The body is bounded by ``DATA_UPLOAD_MAX_MEMORY_SIZE``: a larger declared or sent body is a
    JSON 413. Place it right after :class:`ApiErrorMiddleware`.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        if request.method not in SAFE_METHODS and request.path_info.startswith(API_PREFIX):
            try:
                request.body  # noqa: B018 - reads and keeps the body
            except RequestDataTooBig:
                limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
                return JsonResponse(
                    {"detail": f"Request body too large: the limit is {limit} bytes."},
                    status=413,
                )
        return self.get_response(request)
