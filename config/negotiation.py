"""Content negotiation for the API (JSON whatever ``Accept`` says, as Sentry answers), and what
``OPTIONS`` answers."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rest_framework.metadata import BaseMetadata
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request


class JSONOnly(DefaultContentNegotiation):
    """Request bodies are parsed as usual; answers always use the first (JSON) renderer."""

    def select_renderer(
        self, request: Request, renderers: Iterable[BaseRenderer], format_suffix: Any = None
    ) -> tuple[BaseRenderer, str]:
        renderer = next(iter(renderers))
        return renderer, renderer.media_type


class AllowOnlyMetadata(BaseMetadata):
    """``OPTIONS``: 200 with the ``Allow`` header (set by DRF) and no body, as Sentry answers.

    The API is described by its OpenAPI schema (``/api/0/schema/``), not per request.
    """

    def determine_metadata(self, request: Request, view: Any) -> None:
        return None
