"""JSON answers for the failures no view chose: an unexpected error, a database down or busy."""

from __future__ import annotations

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import JsonResponse

try:  # psycopg's own errors, for a failure raised outside Django's error wrapper
    import psycopg
except ImportError:  # pragma: no cover - psycopg is a dependency; SQLite-only installs work too
    UNAVAILABLE: tuple[type[BaseException], ...] = (OperationalError, InterfaceError)
else:
    UNAVAILABLE = (
        OperationalError,
        InterfaceError,
        psycopg.OperationalError,
        psycopg.InterfaceError,
    )

SERVER_ERROR_DETAIL = "Internal server error"
UNAVAILABLE_DETAIL = "The database is unavailable or busy; retry later."


def database_unavailable(exc: BaseException) -> bool:
    """True for a database that is down, unreachable, locked or timing out (docs/reliability.md).

    That is Django's ``OperationalError`` and ``InterfaceError`` (connection refused or lost,
    server restart, SQLite "database is locked", PostgreSQL lock or statement timeouts,
    deadlocks) and the same errors straight from psycopg.
    """
    return isinstance(exc, UNAVAILABLE)


def retry_after() -> int:
    return int(settings.DATABASE_RETRY_AFTER)


def unavailable_response() -> JsonResponse:
    response = JsonResponse({"detail": UNAVAILABLE_DETAIL}, status=503)
    response["Retry-After"] = str(retry_after())
    return response


def server_error_response() -> JsonResponse:
    return JsonResponse({"detail": SERVER_ERROR_DETAIL}, status=500)


def is_api_path(path: str) -> bool:
    return path == "/api" or path.startswith("/api/")
