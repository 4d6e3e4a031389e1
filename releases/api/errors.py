"""The API's error strings that several endpoints share, as Sentry writes them."""

from __future__ import annotations

from rest_framework.exceptions import NotFound

#: Sentry's answer for anything unknown or hidden from the caller (docs/api.md §6).
NOT_FOUND = "The requested resource does not exist"


class ResourceNotFound(NotFound):
    default_detail = NOT_FOUND
