"""Bearer-token authentication (``Authorization: Bearer <token>``).

Tokens this process has authenticated are remembered (:data:`known_tokens`): on the PostgreSQL
rate-limit store, a known token is checked again on every request in the one statement that
also reads the address's failed authentications and counts both API rate limits
(:func:`check_known_token`, called by ``config.ratelimit``), so a request with it costs no
token query (docs/performance.md §2.2).
"""

from __future__ import annotations

import copy
import json
import logging
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth.models import AnonymousUser
from django.db import OperationalError, models, transaction
from django.db.models.signals import post_delete, post_save
from django.http import HttpRequest
from django.utils import timezone
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from . import ratelimits
from .models import ApiToken, Organization, User, hash_token
from .throttles import api_limits

logger = logging.getLogger(__name__)

#: Seconds a known token is kept before it is read again whole (user and organization).
KNOWN_TOKEN_TTL = 60.0
#: Known tokens kept at most; past it, all are forgotten and learnt again.
KNOWN_TOKENS_MAX = 10_000
#: ``last_used`` is recorded at most this often per token.
LAST_USED_EVERY = timedelta(seconds=60)


class _KnownTokens:
    """Tokens this process has authenticated, by hash, with their user and organization.

    Whether a known token is still what it was (the row exists, unexpired, with the same owner,
    kind and scopes, its user still active with the same superuser flag) is checked on every
    request, in the statement that counts the rate limits (:func:`check_known_token`), so a
    token revoked, deleted or changed by any process, or a user deactivated, is refused at
    once. Changes in this process forget every token (the signals below); the rest of what is
    kept (the user's and organization's other fields) is read again after
    :data:`KNOWN_TOKEN_TTL` seconds.
    """

    def __init__(self) -> None:
        self.forget()

    def forget(self, **kwargs: Any) -> None:
        self.tokens: dict[str, ApiToken] = {}
        self.since = time.monotonic()

    def get(self, token_hash: str) -> ApiToken | None:
        if time.monotonic() - self.since > KNOWN_TOKEN_TTL:
            self.forget()
        return self.tokens.get(token_hash)

    def add(self, token: ApiToken) -> None:
        if len(self.tokens) >= KNOWN_TOKENS_MAX:
            self.forget()
        self.tokens[token.token_hash] = token


known_tokens = _KnownTokens()
for _model in (ApiToken, User, Organization):
    post_save.connect(known_tokens.forget, sender=_model, dispatch_uid=f"known-tokens-{_model}")
    post_delete.connect(known_tokens.forget, sender=_model, dispatch_uid=f"known-tokens-{_model}")

_TOKEN_TABLE = ApiToken._meta.db_table
_USER_TABLE = User._meta.db_table
# The token row as it was learnt, and its user still active (organization tokens have none).
_STILL_VALID = (
    f"EXISTS (SELECT 1 FROM {_TOKEN_TABLE} t LEFT JOIN {_USER_TABLE} u ON u.id = t.user_id "  # noqa: S608
    "WHERE t.id = %s AND t.token_hash = %s AND t.kind = %s "
    "AND t.user_id IS NOT DISTINCT FROM %s AND t.organization_id IS NOT DISTINCT FROM %s "
    "AND t.scopes = %s::jsonb AND (t.expires_at IS NULL OR t.expires_at > %s) "
    "AND (t.user_id IS NULL OR (u.is_active AND u.is_superuser = %s)))"
)


def _bearer(request: HttpRequest) -> str | None:
    """The well-formed bearer token of the request, else None (``authenticate`` says why)."""
    value = request.META.get("HTTP_AUTHORIZATION", "")
    if not isinstance(value, str):
        return None
    header = value.encode("iso-8859-1", errors="replace").split()
    if len(header) != 2 or header[0].lower() != BearerTokenAuthentication.keyword.lower().encode():
        return None
    try:
        return header[1].decode()
    except UnicodeDecodeError:
        return None


def _per_request(token: ApiToken) -> ApiToken:
    """A copy of a known token, its user and organization, for one request to change freely."""
    mine = copy.copy(token)
    if token.user is not None:
        mine.user = copy.copy(token.user)
    if token.organization is not None:
        mine.organization = copy.copy(token.organization)
    return mine


#: What a caller of :func:`check_known_token` may have read in the same statement: for a known
#: token, a key of its own and a query (SQL, parameters), or None.
AlsoRead = Callable[[ApiToken], tuple[Any, str, Sequence[Any]] | None]


def check_known_token(
    request: HttpRequest,
    address: str,
    block_rate: ratelimits.Rate | None,
    also: AlsoRead | None = None,
) -> ratelimits.Guarded | None:
    """For a token this process knows, on the database store: one statement that checks the
    token is still valid, reads the failed authentications of ``address`` (``block_rate``:
    none, never blocked) and counts both API limits (``ratelimits.hit_many_if``).

    ``also`` adds a query of the caller's to the statement (the view's organization: see
    ``config.ratelimit``); when the token is valid, its key and row are the request's
    ``known_token_also``.

    None when it does not apply (no known token, or the cache store): the caller checks the
    block itself. When the token is valid and the address not blocked, the request carries the
    token (``known_token``, read by :class:`BearerTokenAuthentication`) and the limits' waits
    (``api_limit_waits``, read by ``throttles.ApiRateThrottle``). A token no longer valid is
    forgotten, so that authentication reads it again and answers as it does for any token.
    """
    if not ratelimits.in_database():
        return None
    raw = _bearer(request)
    known = known_tokens.get(hash_token(raw)) if raw is not None else None
    if known is None:
        return None
    user = known.user
    extra = also(known) if also is not None else None
    guard = ratelimits.hit_many_if(
        api_limits(f"token:{known.pk}", address),
        condition=(
            _STILL_VALID,
            [
                known.pk,
                known.token_hash,
                known.kind,
                known.user_id,
                known.organization_id,
                json.dumps(known.scopes),
                timezone.now(),
                user.is_superuser if user is not None else False,
            ],
        ),
        unless_blocked=(ratelimits.AUTH_FAILURES, address, block_rate),
        also=extra[1:] if extra is not None else None,
    )
    if guard.blocked is None and not guard.condition:
        known_tokens.forget()  # revoked, deleted or changed by another process
    elif guard.blocked is None:
        request.known_token = _per_request(known)  # type: ignore[attr-defined]
        request.api_limit_waits = guard.waits  # type: ignore[attr-defined]
        if extra is not None:
            request.known_token_also = (extra[0], guard.also)  # type: ignore[attr-defined]
    return guard


def _record_use(token: ApiToken, now: datetime) -> None:
    """Sets ``last_used`` unless it was set less than a minute ago (by any process).

    Best effort, so a busy database (a SQLite writer holding the lock) delays a read at most
    the busy timeout and never fails it. The savepoint keeps a write request's transaction
    usable.
    """
    try:
        with transaction.atomic():
            ApiToken.objects.filter(
                models.Q(last_used__isnull=True) | models.Q(last_used__lte=now - LAST_USED_EVERY),
                pk=token.pk,
            ).update(last_used=now)
    except OperationalError:
        logger.warning("could not record the last use of token %s", token.pk)


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
        token_hash = hash_token(raw)
        token: ApiToken | None = getattr(request._request, "known_token", None)
        if token is not None and token.token_hash == token_hash:
            # Checked by the statement that counted the rate limits (check_known_token).
            known = known_tokens.get(token_hash)
        else:
            token = (
                ApiToken.objects.active()
                .select_related("user", "organization")
                .filter(token_hash=token_hash)
                .first()
            )
            if token is None or (token.user is not None and not token.user.is_active):
                raise exceptions.AuthenticationFailed("Invalid token")
            known = token
            known_tokens.add(known)
            token = _per_request(known)
        now = timezone.now()
        # Recorded at most once a minute per token, so reads stay cheap.
        if token.last_used is None or now - token.last_used > LAST_USED_EVERY:
            _record_use(token, now)
            token.last_used = now
            if known is not None:
                known.last_used = now
        return (token.user or AnonymousUser(), token)

    def authenticate_header(self, request: Request) -> str:
        return self.keyword
