"""The ceiling of each benchmark case: a DRF view returning, as a static Python object, the
exact JSON the project answered for that case.

No authentication, permission or throttle, and DRF's standard ``JSONRenderer`` whatever the
project renders with: what no work on queries can beat behind the same gunicorn. The bodies
come from the JSON list in the file named by ``BENCH_CEILING_FILE``, written by
``benchmarks/run.py`` before the first ceiling request (read once per worker).
"""

from __future__ import annotations

import functools
import json
import os
from typing import Any

from django.db import connection, transaction
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from releases.health import framing


@functools.cache
def _bodies() -> list[Any]:
    with open(os.environ["BENCH_CEILING_FILE"], encoding="utf-8") as handle:
        return list(json.load(handle))


class _BareView(APIView):
    """DRF with nothing of the project's: no authentication, permission or throttle, DRF's
    standard renderer."""

    authentication_classes: list[Any] = []
    permission_classes: list[Any] = []
    throttle_classes: list[Any] = []
    renderer_classes = [JSONRenderer]


class CeilingView(_BareView):
    def get(self, request: Request, case: int) -> Response:
        return Response(_bodies()[case])


class IngestCeilingView(_BareView):
    """The ceiling of ingestion: what an envelope's durable acknowledgement costs at the least.

    It reads and decompresses the body (as the envelope endpoint does) and commits it whole as
    one row of ``bench_envelope`` before answering: no authentication, no validation, no
    health numbers. Behind the same gunicorn and PostgreSQL, what ingestion cannot beat while
    each acknowledged envelope is on disk before its answer.
    """

    parser_classes: list[Any] = []

    def post(self, request: Request) -> Response:
        body = framing.decode_body(request._request.read(), request.headers.get("Content-Encoding"))
        _envelope_table()
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("INSERT INTO bench_envelope (body) VALUES (%s)", [body])
        return Response({})


@functools.cache
def _envelope_table() -> None:
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE IF NOT EXISTS bench_envelope (id bigserial, body bytea)")
