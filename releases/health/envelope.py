"""``POST /api/{project_id}/envelope/``: the endpoint Sentry's SDKs send sessions and events to.

Thin: authenticate the client key, read and decode the body (``framing``), validate its items
(``items``) and store them (``batching``: alone, or with the envelopes of the same project that
arrive meanwhile). Not atomic per request: :func:`store.store` is one transaction, and the
adoption refresh that may follow runs in its own.
"""

from __future__ import annotations

import logging
import time
from typing import Any
from urllib.parse import urlsplit

from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.utils import timezone
from rest_framework import status
from rest_framework.exceptions import APIException, ParseError, PermissionDenied
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import ratelimits
from accounts.models import Organization

from ..models import Project, ProjectKey
from . import framing, items
from .adoption import maybe_refresh_adoption
from .batching import batcher

logger = logging.getLogger(__name__)


_KEY_TABLE = ProjectKey._meta.db_table
#: Seconds a known key is kept before it is read again whole (project and organization).
KNOWN_KEY_TTL = 60.0


class _KnownKeys:
    """Active client keys this process has authenticated, with their project and organization.

    Whether a known key is still active (and still of its project) is checked on every
    envelope, in the statement that counts its rate limits (``_known_key``), so a key revoked
    or deleted by any process is refused at once. Changes in this process forget every key
    (the signals below); the rest of what is kept (the project and its organization) is read
    again after :data:`KNOWN_KEY_TTL` seconds.
    """

    def __init__(self) -> None:
        self.forget()

    def forget(self, **kwargs: Any) -> None:
        self.keys: dict[str, ProjectKey] = {}
        self.since = time.monotonic()

    def get(self, public_key: str) -> ProjectKey | None:
        if time.monotonic() - self.since > KNOWN_KEY_TTL:
            self.forget()
        return self.keys.get(public_key)

    def add(self, key: ProjectKey) -> None:
        self.keys[key.public_key] = key


known_keys = _KnownKeys()
for _model in (ProjectKey, Project, Organization):
    post_save.connect(known_keys.forget, sender=_model, dispatch_uid=f"known-keys-{_model}")
    post_delete.connect(known_keys.forget, sender=_model, dispatch_uid=f"known-keys-{_model}")


class NotAuthenticated(APIException):
    status_code = status.HTTP_401_UNAUTHORIZED
    default_detail = "Missing authentication: give sentry_key in X-Sentry-Auth."
    default_code = "not_authenticated"


class PayloadTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "Envelope exceeds the size limit."
    default_code = "too_large"


class TooManyRequests(APIException):
    """429 with the headers SDKs honour: ``Retry-After``, and for quotas Relay's
    ``X-Sentry-Rate-Limits: <seconds>::<key|project>`` (no categories: all of them)."""

    status_code = status.HTTP_429_TOO_MANY_REQUESTS
    default_code = "rate_limited"

    def __init__(self, detail: str, wait: int, quota_scope: str | None = None) -> None:
        super().__init__(detail)
        self.headers = {"Retry-After": str(wait)}
        if quota_scope is not None:
            self.headers["X-Sentry-Rate-Limits"] = f"{wait}::{quota_scope}"


def parse_auth_header(value: str) -> dict[str, str]:
    """``Sentry sentry_key=…, sentry_version=7`` → ``{"sentry_key": …, …}``."""
    scheme, _, rest = value.strip().partition(" ")
    if scheme.lower() != "sentry":
        return {}
    pairs = {}
    for part in rest.split(","):
        key, sep, val = part.strip().partition("=")
        if sep:
            pairs[key.strip().lower()] = val.strip()
    return pairs


def key_from_dsn(dsn: Any, project_id: int) -> str | None:
    if not isinstance(dsn, str):
        return None
    try:
        parts = urlsplit(dsn)
    except ValueError:
        return None
    if parts.path.rstrip("/").rsplit("/", 1)[-1] != str(project_id):
        return None
    return parts.username or None


def _storable(text: str) -> bool:
    """Text a PostgreSQL column can hold: no NUL, no lone surrogate."""
    return "\x00" not in text and not any("\ud800" <= ch <= "\udfff" for ch in text)


def envelope_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's answer without its ``set_rollback``: this view runs outside a request transaction,
    and nothing is written before an error is raised."""
    if isinstance(exc, APIException):
        headers = exc.headers if isinstance(exc, TooManyRequests) else None
        return Response({"detail": exc.detail}, status=exc.status_code, headers=headers)
    return None


class EnvelopeView(APIView):
    """Stores the sessions and events of an envelope; answers ``{}`` or ``{"id": event_id}``."""

    authentication_classes: list[Any] = []
    permission_classes: list[Any] = []
    # Its own limits, per key and project, once the body is read (_check_rate_limits).
    throttle_classes: list[Any] = []
    renderer_classes = [JSONRenderer]
    parser_classes: list[Any] = []

    def get_exception_handler(self) -> Any:
        return envelope_exception_handler

    def post(self, request: Request, project_id: int) -> Response:
        header_keys = self._header_keys(request)
        body = self._read_body(request)
        try:
            body = framing.decode_body(body, request.headers.get("Content-Encoding"))
        except framing.EnvelopeTooLarge as exc:
            self._check_failed_authentications(request)
            raise PayloadTooLarge(str(exc)) from None
        except framing.EnvelopeError as exc:
            self._check_failed_authentications(request)
            if not header_keys:
                raise NotAuthenticated() from None
            raise ParseError(str(exc)) from None

        public_key: str | None
        if header_keys:
            public_key = header_keys.pop()
        else:
            try:
                headers = framing.parse_headers(body)
            except framing.EnvelopeError:
                headers = {}
            public_key = key_from_dsn(headers.get("dsn"), project_id)
        if public_key is None:
            self._check_failed_authentications(request)
            raise NotAuthenticated()
        key = self._known_key(request, public_key, project_id)
        if key is None:
            self._check_failed_authentications(request)
            key = self._authenticate(public_key, project_id)
            self._check_rate_limits(key)

        received = timezone.now()
        try:
            envelope = framing.parse_envelope(body)
            found = items.read_items(envelope, received)
        except framing.EnvelopeTooLarge as exc:
            raise PayloadTooLarge(str(exc)) from None
        except framing.EnvelopeError as exc:
            raise ParseError(str(exc)) from None
        batcher.store(key.project, found, received)
        if found.dropped:
            logger.info("envelope for project %s dropped %s", project_id, dict(found.dropped))
        if found.sessions:
            maybe_refresh_adoption(organization_id=key.project.organization_id, now=received)
        return Response({"id": found.event_id} if found.event_id else {})

    def _header_keys(self, request: Request) -> set[str]:
        """Public keys from the headers and the query string; they must agree."""
        keys = set()
        for header in ("X-Sentry-Auth", "Authorization"):
            value = request.headers.get(header)
            if value:
                key = parse_auth_header(value).get("sentry_key")
                if key:
                    keys.add(key)
        query_key = request.query_params.get("sentry_key")
        if query_key:
            keys.add(query_key)
        if len(keys) > 1:
            raise ParseError("Multiple authorization payloads with different keys.")
        return keys

    def _read_body(self, request: Request) -> bytes:
        limit = framing.max_envelope_bytes()
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            raise ParseError("Invalid Content-Length.") from None
        if declared > limit:
            raise PayloadTooLarge()
        body = request._request.read(limit + 1)
        if len(body) > limit:
            raise PayloadTooLarge()
        return body

    def _check_failed_authentications(self, request: Request) -> None:
        """An address with too many failed authentications is refused (429) for a while."""
        rate = ratelimits.rate(ratelimits.AUTH_FAILURES)
        if rate is None:
            return
        address = ratelimits.client_address(request)
        wait = ratelimits.blocked(ratelimits.AUTH_FAILURES, address, rate)
        if wait is not None:
            raise TooManyRequests(ratelimits.AUTH_FAILURES_DETAIL, wait)

    def _limits(self, key: ProjectKey) -> list[tuple[str, str, ratelimits.Rate]]:
        """Per DSN key, then per project; checked once the body is read, so that a slow
        client holds no database connection meanwhile."""
        limits = []
        for scope, ident in (
            ("envelope_key", key.public_key),
            ("envelope_project", str(key.project_id)),
        ):
            rate = ratelimits.rate(scope)
            if rate is not None:
                limits.append((scope, ident, rate))
        return limits

    def _raise_over_limit(self, waits: dict[str, int | None]) -> None:
        for scope, quota_scope in (("envelope_key", "key"), ("envelope_project", "project")):
            wait = waits.get(scope)
            if wait is not None:
                raise TooManyRequests(
                    f"Rate limit exceeded for this {quota_scope}.", wait, quota_scope
                )

    def _check_rate_limits(self, key: ProjectKey) -> None:
        self._raise_over_limit(
            {scope: ratelimits.hit(scope, ident, rate) for scope, ident, rate in self._limits(key)}
        )

    def _known_key(self, request: Request, public_key: str, project_id: int) -> ProjectKey | None:
        """A key this process knows, still active (checked in the statement that counts the
        rate limits and reads the address's failed authentications: one statement for all
        three), or None: then the caller authenticates from scratch."""
        key = known_keys.get(public_key)
        if key is None or key.project_id != project_id or not ratelimits.in_database():
            return None
        guard = ratelimits.hit_many_if(
            self._limits(key),
            condition=(
                f"EXISTS (SELECT 1 FROM {_KEY_TABLE} WHERE id = %s AND public_key = %s "  # noqa: S608
                "AND project_id = %s AND is_active)",
                [key.pk, key.public_key, key.project_id],
            ),
            unless_blocked=(
                ratelimits.AUTH_FAILURES,
                ratelimits.client_address(request),
                ratelimits.rate(ratelimits.AUTH_FAILURES),
            ),
        )
        if guard.blocked is not None:
            raise TooManyRequests(ratelimits.AUTH_FAILURES_DETAIL, guard.blocked)
        if not guard.condition:
            known_keys.forget()  # revoked or deleted by another process
            return None
        self._raise_over_limit(guard.waits)
        return key

    def _authenticate(self, public_key: str, project_id: int) -> ProjectKey:
        if not _storable(public_key):
            # PostgreSQL cannot even compare such text: no key has it.
            raise NotAuthenticated("Unknown public key.")
        key = (
            ProjectKey.objects.select_related("project__organization")
            .filter(public_key=public_key[:64])
            .first()
        )
        if key is None:
            raise NotAuthenticated("Unknown public key.")
        if not key.is_active:
            raise PermissionDenied("This key has been revoked.")
        if key.project_id != project_id:
            raise PermissionDenied("This key does not belong to the project.")
        known_keys.add(key)
        return key


envelope_view = transaction.non_atomic_requests(EnvelopeView.as_view())
