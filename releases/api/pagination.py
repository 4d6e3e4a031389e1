"""Sentry's offset cursor pagination and its ``Link`` header (docs/api.md §5.4)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from rest_framework.exceptions import ParseError
from rest_framework.pagination import BasePagination
from rest_framework.request import Request
from rest_framework.response import Response

from ..access import is_number

MAX_PER_PAGE = 100
# PostgreSQL's OFFSET is a bigint; no page beyond this could be asked for anyway.
MAX_OFFSET = 2**62


@dataclass(frozen=True)
class Cursor:
    """``"<per_page>:<page>:<is_prev>"``: rows from ``page * per_page``."""

    value: int
    page: int
    is_prev: bool

    def __str__(self) -> str:
        return f"{self.value}:{self.page}:{int(self.is_prev)}"

    @classmethod
    def parse(cls, text: str) -> Cursor:
        try:
            value, page, is_prev = text.split(":")
            if max(len(value), len(page), len(is_prev)) > 18:
                raise ValueError(text)
            cursor = cls(int(value), int(page), bool(int(is_prev)))
        except ValueError:
            raise ParseError("Invalid cursor parameter.") from None
        if not 0 <= cursor.value <= MAX_PER_PAGE:
            raise ParseError("Invalid cursor parameter.")
        if cursor.page < 0:
            raise ParseError("Pagination offset cannot be negative")
        return cursor


class CursorPagination(BasePagination):
    """Pages of ``per_page`` rows (default and maximum 100) with Sentry's ``Link`` header.

    Works on querysets and lists alike; fetches one extra row to know whether a next page
    exists, so a page costs one query whatever its size.
    """

    page_size_query_param = "per_page"

    def get_per_page(self, request: Request) -> int:
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None or raw == "":
            return MAX_PER_PAGE
        if not is_number(raw) or len(raw) > 9:
            raise ParseError("Invalid per_page parameter.")
        per_page = int(raw)
        if per_page > MAX_PER_PAGE:
            raise ParseError(f"Invalid per_page value. Cannot exceed {MAX_PER_PAGE}.")
        if per_page < 1:
            raise ParseError("Invalid per_page parameter.")
        return per_page

    def paginate_queryset(self, queryset: Any, request: Request, view: Any = None) -> list[Any]:
        per_page = self.get_per_page(request)
        raw_cursor = request.query_params.get("cursor")
        cursor = Cursor.parse(raw_cursor) if raw_cursor else Cursor(0, 0, False)
        limit = cursor.value or per_page
        offset = cursor.page * limit
        if offset > MAX_OFFSET:
            raise ParseError("Pagination offset too large")
        rows: Sequence[Any] = list(queryset[offset : offset + limit + 1])
        self.request = request
        self.limit, self.page = limit, cursor.page
        self.has_next = len(rows) > limit
        return list(rows[:limit])

    def get_paginated_response(self, data: Any) -> Response:
        response = Response(data)
        response["Link"] = self.link_header()
        return response

    def link_header(self) -> str:
        previous = Cursor(self.limit, self.page - 1, True)
        following = Cursor(self.limit, self.page + 1, False)
        return ", ".join(
            [
                self._link(previous, "previous", self.page > 0),
                self._link(following, "next", self.has_next),
            ]
        )

    def _link(self, cursor: Cursor, rel: str, results: bool) -> str:
        request = self.request
        params = [(k, v) for k, v in request.query_params.lists() if k != "cursor"]
        query = urlencode([(k, v) for k, values in params for v in values])
        base = request.build_absolute_uri(quote(request.path))
        url = f"{base}?{query}&cursor={cursor}"
        return f'<{url}>; rel="{rel}"; results="{str(results).lower()}"; cursor="{cursor}"'
