"""The API's one exception handler: DRF's, plus the domain's errors mapped to status codes,
Django ``ValidationError`` as a 400, and a database that is down or busy as a 503 with
``Retry-After`` (docs/reliability.md)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.serializers import as_serializer_error
from rest_framework.views import exception_handler as drf_exception_handler

from releases.services import DomainError, ReleaseConflict, ReleaseInUse, RepositoryConflict

from .errors import UNAVAILABLE_DETAIL, database_unavailable, retry_after

DOMAIN_STATUS: dict[type[DomainError], int] = {
    ReleaseConflict: status.HTTP_409_CONFLICT,
    RepositoryConflict: status.HTTP_409_CONFLICT,
    ReleaseInUse: status.HTTP_400_BAD_REQUEST,
}


class DomainRefusal(exceptions.APIException):
    """A :class:`DomainError` as DRF answers it: ``{"detail": <message>}``."""

    def __init__(self, exc: DomainError) -> None:
        super().__init__(str(exc))
        self.status_code = DOMAIN_STATUS[type(exc)]


class DatabaseUnavailable(exceptions.APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = UNAVAILABLE_DETAIL
    default_code = "database_unavailable"


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Other exceptions stay unhandled here; ``config.middleware.ApiErrorMiddleware`` answers
    them with a JSON 500 and logs the traceback."""
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(as_serializer_error(exc))
    elif isinstance(exc, DomainError):
        exc = DomainRefusal(exc)
    elif database_unavailable(exc):
        response = drf_exception_handler(DatabaseUnavailable(), context)
        if response is not None:
            response["Retry-After"] = str(retry_after())
        return response
    return drf_exception_handler(exc, context)
