"""The API root (``GET /api/0/``): who the caller is, for `sentry-cli info`."""

from __future__ import annotations

from typing import Any

from rest_framework import permissions
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from .models import ApiToken


class ApiRootView(APIView):
    """What sentry-cli's ``info`` reads: the caller and the token's scopes."""

    permission_classes = [permissions.IsAuthenticatedOrReadOnly]

    def get(self, request: Request) -> Response:
        token = request.auth if isinstance(request.auth, ApiToken) else None
        user = request.user if request.user.is_authenticated else None
        body: dict[str, Any] = {"version": "0", "auth": None, "user": None}
        if token is not None:
            body["auth"] = {"scopes": sorted(token.scopes)}
        if user is not None:
            body["user"] = {
                "id": str(user.pk),
                "name": user.get_display_name(),
                "username": user.username,
                "email": user.email,
            }
        return Response(body)
