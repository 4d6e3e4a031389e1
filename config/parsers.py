"""The API's JSON parser: DRF's, with a bound on nesting (docs/reliability.md).

A body nested deeper than Python's recursion limit makes ``json`` raise ``RecursionError``,
and one nested a few hundred levels deep, even under a key no endpoint reads, exhausts the
stack later (validation, the NUL check). No request of the API nests more than a handful of
levels, so anything deeper than :data:`MAX_JSON_DEPTH` is a 400 naming the problem.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

MAX_JSON_DEPTH = 32


def too_deep(value: Any, limit: int) -> bool:
    """Whether ``value`` nests lists and objects more than ``limit`` levels deep (iterative:
    no recursion to exhaust)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


class BoundedJSONParser(JSONParser):
    """DRF's JSON parser, refusing nesting deeper than ``settings.MAX_JSON_DEPTH``."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        limit = int(getattr(settings, "MAX_JSON_DEPTH", MAX_JSON_DEPTH))
        detail = f"JSON parse error - nested more than {limit} levels deep"
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError(detail) from None
        if too_deep(data, limit):
            raise ParseError(detail)
        return data
