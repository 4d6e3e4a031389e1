"""Sentry's offset cursor pagination with its ``Link`` header (release-api.md §5.4)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from django.db.models import QuerySet
from rest_framework.exceptions import ParseError
from rest_framework.pagination import BasePagination
from rest_framework.request import Request
from rest_framework.response import Response

# PostgreSQL's OFFSET is a bigint; further pages could not be asked for anyway.
MAX_OFFSET = 2**62
LINK_ITEM = '<{url}&cursor={cursor}>; rel="{rel}"; results="{results}"; cursor="{cursor}"'


@dataclass(frozen=True)
class Cursor:
    """``"<per_page>:<page>:<is_prev>"``; the row offset is ``page * per_page``."""

    value: int
    page: int
    is_prev: bool
    has_results: bool = False

    def __str__(self) -> str:
        return f"{self.value}:{self.page}:{int(self.is_prev)}"

    @classmethod
    def parse(cls, text: str) -> Cursor:
        bits = text.split(":")
        try:
            if len(bits) != 3:
                raise ValueError(text)
            value, page, is_prev = (int(bit) for bit in bits)
        except ValueError:
            raise ParseError("Invalid cursor parameter.") from None
        if value < 0:
            raise ParseError("Invalid cursor parameter.")
        return cls(value, page, bool(is_prev))


class SentryLinkPagination(BasePagination):
    """Pages of at most ``per_page`` rows (default and maximum 100), Sentry's ``OffsetPaginator``.

    The response body is the plain list; the ``Link`` header carries the previous and next
    cursors with quoted attributes, which sentry-cli requires. The queryset must be ordered.
    """

    default_per_page = 100
    max_per_page = 100

    def paginate_queryset(
        self, queryset: QuerySet[Any] | Sequence[Any], request: Request, view: Any = None
    ) -> list[Any]:
        self.request = request
        self.per_page = self._per_page(request)
        raw = request.query_params.get("cursor") or ""
        cursor = Cursor.parse(raw) if raw else Cursor(0, 0, False)
        offset = cursor.page * (cursor.value or self.per_page)
        if offset < 0:
            raise ParseError("Pagination offset cannot be negative")
        if offset > MAX_OFFSET:
            raise ParseError("Pagination offset too large")
        rows = list(queryset[offset : offset + self.per_page + 1])
        self.next = Cursor(self.per_page, cursor.page + 1, False, len(rows) > self.per_page)
        self.previous = Cursor(self.per_page, cursor.page - 1, True, cursor.page > 0)
        return rows[: self.per_page]

    def _per_page(self, request: Request) -> int:
        raw = request.query_params.get("per_page")
        if raw is None:
            return self.default_per_page
        try:
            per_page = int(raw)
        except ValueError:
            raise ParseError("Invalid per_page parameter.") from None
        if per_page > self.max_per_page:
            raise ParseError(f"Invalid per_page value. Cannot exceed {self.max_per_page}.")
        if per_page < 1:
            raise ParseError("Invalid per_page parameter.")
        return per_page

    def link_header(self) -> str:
        query = self.request.query_params.copy()
        query.pop("cursor", None)
        base = self.request.build_absolute_uri(quote(self.request.path)) + "?" + query.urlencode()
        return ", ".join(
            LINK_ITEM.format(
                url=base,
                cursor=cursor,
                rel=rel,
                results="true" if cursor.has_results else "false",
            )
            for rel, cursor in (("previous", self.previous), ("next", self.next))
        )

    def get_paginated_response(self, data: Any) -> Response:
        return Response(data, headers={"Link": self.link_header()})
