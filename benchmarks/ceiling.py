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

from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView


@functools.cache
def _bodies() -> list[Any]:
    with open(os.environ["BENCH_CEILING_FILE"], encoding="utf-8") as handle:
        return list(json.load(handle))


class CeilingView(APIView):
    authentication_classes: list[Any] = []
    permission_classes: list[Any] = []
    throttle_classes: list[Any] = []
    renderer_classes = [JSONRenderer]

    def get(self, request: Request, case: int) -> Response:
        return Response(_bodies()[case])
