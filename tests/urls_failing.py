"""Test-only URLs: the real ones plus views that fail in ways no real endpoint should."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.urls import path
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.urls import urlpatterns as real_urlpatterns


class FailingEndpoint(APIView):
    permission_classes: list[type] = []

    def get(self, request: Request) -> Response:
        raise RuntimeError("a bug in a DRF view")


def failing_view(request: HttpRequest) -> HttpResponse:
    raise KeyError("a bug in a plain Django view")


urlpatterns = [
    path("api/0/test-failure/drf/", FailingEndpoint.as_view()),
    path("api/0/test-failure/django/", failing_view),
    path("admin/test-failure/", failing_view),
    *real_urlpatterns,
]
