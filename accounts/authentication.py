"""Bearer-token authentication (``Authorization: Bearer <token>``)."""

from __future__ import annotations

import logging
from typing import Any

from django.contrib.auth.models import AnonymousUser
from django.db import OperationalError, transaction
from django.utils import timezone
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from .models import ApiToken, hash_token

logger = logging.getLogger(__name__)


class BearerTokenAuthentication(authentication.BaseAuthentication):
    """Authenticates user and organization tokens.

    ``request.auth`` is the :class:`ApiToken`. ``request.user`` is the token's user, or an
    anonymous user for organization tokens (their access comes from ``request.auth``).
    """

    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[Any, ApiToken] | None:
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Invalid token header.")
        try:
            raw = header[1].decode()
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("Invalid token") from None
        token = (
            ApiToken.objects.active()
            .select_related("user", "organization")
            .filter(token_hash=hash_token(raw))
            .first()
        )
        if token is None or (token.user is not None and not token.user.is_active):
            raise exceptions.AuthenticationFailed("Invalid token")
        now = timezone.now()
        # Recorded at most once a minute per token, so reads stay cheap; best effort, so a busy
        # database (a SQLite writer holding the lock) delays a read at most the busy timeout and
        # never fails it. The savepoint keeps a write request's transaction usable.
        if token.last_used is None or (now - token.last_used).total_seconds() > 60:
            try:
                with transaction.atomic():
                    ApiToken.objects.filter(pk=token.pk).update(last_used=now)
            except OperationalError:
                logger.warning("could not record the last use of token %s", token.pk)
        return (token.user or AnonymousUser(), token)

    def authenticate_header(self, request: Request) -> str:
        return self.keyword
