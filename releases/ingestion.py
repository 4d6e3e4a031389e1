"""The envelope endpoint's work: decode, parse, validate and store sessions and events.

Three layers, each testable on its own:

* :func:`decode_body` and :func:`parse_envelope` turn request bytes into an :class:`Envelope`
  or raise :class:`EnvelopeError` (a 400 for the client);
* :func:`read_items` validates ``session``, ``sessions`` and ``event`` items as Relay does
  (release-health.md §6), dropping bad items with a reason instead of failing the envelope;
* :func:`store` writes one envelope's worth of updates and events in one transaction: rollups
  and sets by additive upserts (``sql.py``), so requests never read raw session updates.
"""

from __future__ import annotations

import hashlib
import json
import math
import uuid
import zlib
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

import brotli
from django.conf import settings
from django.db import transaction
from django.db.models import DateTimeField, F, Value
from django.db.models.functions import Coalesce, Greatest, Least
from django.utils import timezone

from .health import hour_of
from .models import (
    Environment,
    ErroredSession,
    IngestOutcome,
    IssueGroup,
    Project,
    ProjectUserSeen,
    Release,
    ReleaseProject,
    ReleaseProjectEnvironment,
    SessionDuration,
    SessionRollup,
    SessionUpdateKey,
    SessionUser,
    SessionUserSeen,
)
from .services import release_create
from .sql import insert_new, upsert
from .versioning import validate_version

STATUSES = frozenset({"ok", "exited", "crashed", "abnormal", "errored", "unhandled"})
ERROR_STATUSES = frozenset({"errored", "crashed", "abnormal", "unhandled"})
AGGREGATE_STATUSES = ("exited", "errored", "abnormal", "crashed", "unhandled")
MAX_SESSION_AGE = timedelta(seconds=432000)  # Relay's max_session_secs_in_past: 5 days
MAX_FUTURE = timedelta(seconds=60)
MAX_EVENT_AGE = timedelta(days=30)
CLOCK_DRIFT_THRESHOLD = timedelta(minutes=55)
MAX_COUNT = 2**31 - 1
MAX_SEQ = 2**64 - 1
NIL_UUID = uuid.UUID(int=0)
DID_NAMESPACE = uuid.UUID("b7a3b4c5-7f0e-4cd1-9b5d-2a8b3c4d5e6f")


class EnvelopeError(ValueError):
    """The request body is not a readable envelope; the message is the 400's ``detail``."""


class EnvelopeTooLarge(EnvelopeError):
    """The body, compressed or not, exceeds ``ENVELOPE_MAX_BYTES``."""


def max_envelope_bytes() -> int:
    return int(settings.ENVELOPE_MAX_BYTES)


# -- Decoding and framing ------------------------------------------------------------------


def decode_body(body: bytes, content_encoding: str | None) -> bytes:
    """Undo ``Content-Encoding`` (identity, gzip, deflate, br, or a comma-separated chain).

    The output is bounded by ``ENVELOPE_MAX_BYTES`` so that a small compressed bomb cannot
    exhaust memory.
    """
    limit = max_envelope_bytes()
    codings = [c.strip().lower() for c in (content_encoding or "").split(",") if c.strip()]
    for coding in reversed(codings):
        if coding == "identity":
            continue
        if coding in ("gzip", "x-gzip"):
            body = _inflate(body, zlib.MAX_WBITS | 16, limit, coding)
        elif coding == "deflate":
            # RFC 9110 deflate is zlib-wrapped; some clients send raw deflate.
            try:
                body = _inflate(body, zlib.MAX_WBITS, limit, coding)
            except EnvelopeTooLarge:
                raise
            except EnvelopeError:
                body = _inflate(body, -zlib.MAX_WBITS, limit, coding)
        elif coding == "br":
            body = _unbrotli(body, limit)
        else:
            raise EnvelopeError(f"Unsupported Content-Encoding: {coding}")
    return body


def _inflate(data: bytes, wbits: int, limit: int, coding: str) -> bytes:
    decompressor = zlib.decompressobj(wbits)
    try:
        out = decompressor.decompress(data, limit + 1)
    except zlib.error as exc:
        raise EnvelopeError(f"Invalid {coding} body: {exc}") from None
    if len(out) > limit:
        raise EnvelopeTooLarge("Envelope exceeds the size limit once decompressed")
    if not decompressor.eof:
        raise EnvelopeError(f"Invalid {coding} body: truncated stream")
    return out


def _unbrotli(data: bytes, limit: int) -> bytes:
    decompressor = brotli.Decompressor()
    chunks: list[bytes] = []
    size = 0
    try:
        chunk = decompressor.process(data, output_buffer_limit=limit + 1)
        while True:
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                raise EnvelopeTooLarge("Envelope exceeds the size limit once decompressed")
            if decompressor.is_finished() or decompressor.can_accept_more_data():
                break
            chunk = decompressor.process(b"", output_buffer_limit=limit + 1 - size)
    except brotli.error as exc:
        raise EnvelopeError(f"Invalid br body: {exc}") from None
    if not decompressor.is_finished():
        raise EnvelopeError("Invalid br body: truncated stream")
    return b"".join(chunks)


@dataclass(frozen=True)
class Item:
    headers: dict[str, Any]
    payload: bytes

    @property
    def type(self) -> str:
        return str(self.headers["type"])


@dataclass(frozen=True)
class Envelope:
    headers: dict[str, Any]
    items: list[Item]


def _json_object(line: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(line)
    except (ValueError, RecursionError):
        raise EnvelopeError(f"Invalid envelope: {what} is not valid JSON") from None
    if not isinstance(value, dict):
        raise EnvelopeError(f"Invalid envelope: {what} is not a JSON object")
    return value


def parse_headers(body: bytes) -> dict[str, Any]:
    """The envelope headers alone (for the ``dsn`` form of authentication)."""
    first, _, _ = body.partition(b"\n")
    return _json_object(first, "the envelope header")


def parse_envelope(body: bytes) -> Envelope:
    """Split an envelope into headers and items (develop docs, "Envelopes").

    An item with ``length`` takes exactly that many bytes, then a newline or the end; one
    without it runs to the next newline. Anything else is an :class:`EnvelopeError`.
    """
    if not body.strip():
        raise EnvelopeError("Invalid envelope: empty body")
    newline = body.find(b"\n")
    end = len(body) if newline < 0 else newline
    headers = _json_object(body[:end], "the envelope header")
    pos = end + 1
    items: list[Item] = []
    while pos < len(body):
        if not body[pos:].strip(b"\n"):
            break  # trailing newlines
        newline = body.find(b"\n", pos)
        end = len(body) if newline < 0 else newline
        item_headers = _json_object(body[pos:end], f"item header {len(items) + 1}")
        item_type = item_headers.get("type")
        if not isinstance(item_type, str) or not item_type:
            raise EnvelopeError(f"Invalid envelope: item {len(items) + 1} has no type")
        pos = end + 1
        length = item_headers.get("length")
        if length is not None:
            if isinstance(length, bool) or not isinstance(length, int) or length < 0:
                raise EnvelopeError(f"Invalid envelope: item {len(items) + 1} has a bad length")
            if pos + length > len(body):
                raise EnvelopeError(
                    f"Invalid envelope: item {len(items) + 1} is shorter than its length"
                )
            payload = body[pos : pos + length]
            pos += length
            if pos < len(body):
                if body[pos : pos + 1] != b"\n":
                    raise EnvelopeError(
                        f"Invalid envelope: item {len(items) + 1} is longer than its length"
                    )
                pos += 1
        else:
            newline = body.find(b"\n", pos) if pos <= len(body) else -1
            end = len(body) if newline < 0 else newline
            payload = body[pos:end] if pos <= len(body) else b""
            pos = end + 1
        items.append(Item(item_headers, payload))
    return Envelope(headers, items)


# -- Validation ------------------------------------------------------------------------------


@dataclass(frozen=True)
class SessionUpdate:
    """One validated session update, or one status count of an aggregate bucket."""

    release: str
    environment: str
    started: datetime
    status: str
    init: bool
    errors: int = 0
    sid: uuid.UUID | None = None  # None for aggregate counts
    did: str | None = None
    duration: float | None = None
    timestamp: datetime | None = None
    seq: int | None = None
    quantity: int = 1

    @property
    def aggregate(self) -> bool:
        return self.sid is None

    @property
    def errored(self) -> bool:
        return self.errors > 0 or self.status in ERROR_STATUSES

    def dedup_key(self) -> uuid.UUID:
        """Identifies a delivered update: a re-delivery of the same state has the same key."""
        parts = [
            self.sid,
            self.did,
            self.seq,
            self.init,
            self.status,
            self.errors,
            self.started.isoformat(),
            self.timestamp.isoformat() if self.timestamp else None,
            self.duration,
            self.release,
            self.environment,
        ]
        return uuid.uuid5(DID_NAMESPACE, json.dumps(parts, default=str))


@dataclass(frozen=True)
class EventData:
    """What we keep of an ``event`` item: where and when it happened, and its group."""

    event_id: str | None
    release: str | None
    environment: str
    timestamp: datetime
    fingerprint: str | None
    title: str


@dataclass
class Items:
    """An envelope's usable content plus what was dropped, by (category, reason)."""

    sessions: list[SessionUpdate] = field(default_factory=list)
    events: list[EventData] = field(default_factory=list)
    dropped: Counter[tuple[str, str]] = field(default_factory=Counter)
    event_id: str | None = None


class Drop(Exception):
    """An item (or aggregate bucket) fails validation for ``reason``."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def parse_timestamp(value: Any) -> datetime:
    """RFC 3339 text (``Z`` or offset; no offset means UTC) or unix seconds."""
    try:
        if isinstance(value, bool):
            raise ValueError
        if isinstance(value, int | float):
            if not math.isfinite(value):
                raise ValueError
            return datetime.fromtimestamp(value, tz=UTC)
        if isinstance(value, str):
            parsed = datetime.fromisoformat(value.strip())
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=UTC)
            return parsed.astimezone(UTC)
    except (ValueError, OverflowError, OSError):
        pass
    raise Drop("invalid_timestamp")


def valid_release(value: Any) -> str | None:
    # NUL passes Sentry's version check but no PostgreSQL text column can hold it.
    if isinstance(value, str) and "\x00" not in value and validate_version(value) is None:
        return value
    return None


def corrected(value: Any, drift: timedelta) -> datetime:
    """A client timestamp moved by its envelope's clock drift (§6: ``sent_at``)."""
    try:
        return parse_timestamp(value) + drift
    except OverflowError:
        raise Drop("invalid_timestamp") from None


def clean_environment(value: Any) -> str:
    """Relay removes an invalid environment rather than the item; we store it as ``""``."""
    if not isinstance(value, str) or len(value) > 64 or value in (".", ".."):
        return ""
    if any(ch in value for ch in "/\\\n\r\t\f\x00") or value.strip() != value:
        return ""
    return value


def clean_did(value: Any) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        return None
    value = value.strip()[:256]
    if not value:
        return None
    try:
        if uuid.UUID(value) == NIL_UUID:
            return None
    except ValueError:
        pass
    return value


def did_uuid(did: str) -> uuid.UUID:
    """A did as stored: itself when it is a UUID, else a UUIDv5 of it (as Sentry does)."""
    try:
        return uuid.UUID(did)
    except ValueError:
        return uuid.uuid5(DID_NAMESPACE, did)


def _count(value: Any, default: int = 0, maximum: int = MAX_COUNT) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= maximum:
        raise Drop("invalid_payload")
    return value


def _check_age(moment: datetime, received: datetime, max_age: timedelta) -> None:
    if moment < received - max_age:
        raise Drop("too_old")
    if moment > received + MAX_FUTURE:
        raise Drop("in_future")


def _payload(item: Item) -> dict[str, Any]:
    try:
        value = json.loads(item.payload)
    except (ValueError, RecursionError):
        raise Drop("invalid_json") from None
    if not isinstance(value, dict):
        raise Drop("invalid_json")
    return value


def _release_attrs(payload: dict[str, Any]) -> tuple[str, str]:
    attrs = payload.get("attrs")
    if not isinstance(attrs, dict):
        raise Drop("invalid_release")
    release = valid_release(attrs.get("release"))
    if release is None:
        raise Drop("invalid_release")
    return release, clean_environment(attrs.get("environment"))


def read_session(item: Item, received: datetime, drift: timedelta) -> SessionUpdate:
    """A ``session`` item (§6.3) or :class:`Drop`."""
    payload = _payload(item)
    release, environment = _release_attrs(payload)
    if payload.get("started") is None:
        raise Drop("missing_started")
    started = corrected(payload["started"], drift)
    raw_ts = payload.get("timestamp")
    timestamp = corrected(raw_ts, drift) if raw_ts is not None else received
    timestamp = max(timestamp, started)
    status = payload.get("status", "ok")
    if status is None:
        status = "ok"
    if status not in STATUSES:
        raise Drop("invalid_status")
    init = payload.get("init", False)
    if init is None:
        init = False
    if not isinstance(init, bool):
        raise Drop("invalid_payload")
    raw_sid = payload.get("sid")
    sid: uuid.UUID | None
    if raw_sid is None:
        sid = uuid.uuid4()
    else:
        try:
            sid = uuid.UUID(str(raw_sid)) if isinstance(raw_sid, str) else None
        except ValueError:
            sid = None
        if sid is None:
            raise Drop("invalid_payload")
    seq = _count(payload.get("seq"), int(received.timestamp() * 1000), MAX_SEQ - 1)
    duration = payload.get("duration")
    if duration is not None and (
        isinstance(duration, bool)
        or not isinstance(duration, int | float)
        or not math.isfinite(duration)
        or not 0 <= duration < 10**9
    ):
        raise Drop("invalid_payload")
    errors = _count(payload.get("errors"))
    _check_age(started, received, MAX_SESSION_AGE)
    _check_age(timestamp, received, MAX_SESSION_AGE)
    return SessionUpdate(
        release=release,
        environment=environment,
        started=started,
        status=status,
        init=init,
        errors=errors,
        sid=sid,
        did=clean_did(payload.get("did")),
        duration=float(duration) if duration is not None else None,
        timestamp=timestamp,
        seq=0 if init else seq,
    )


def read_aggregates(
    item: Item, received: datetime, drift: timedelta, dropped: Counter[tuple[str, str]]
) -> list[SessionUpdate]:
    """A ``sessions`` item (§6.4): one update per non-zero status count of each bucket."""
    payload = _payload(item)
    release, environment = _release_attrs(payload)
    buckets = payload.get("aggregates")
    if not isinstance(buckets, list):
        raise Drop("invalid_payload")
    updates: list[SessionUpdate] = []
    for bucket in buckets:
        try:
            if not isinstance(bucket, dict) or bucket.get("started") is None:
                raise Drop("missing_started")
            started = corrected(bucket["started"], drift)
            counts = {status: _count(bucket.get(status)) for status in AGGREGATE_STATUSES}
            _check_age(started, received, MAX_SESSION_AGE)
        except Drop as drop:
            dropped["session", drop.reason] += 1
            continue
        did = clean_did(bucket.get("did"))
        updates.extend(
            SessionUpdate(
                release=release,
                environment=environment,
                started=started,
                status=status,
                init=True,
                errors=0 if status == "exited" else 1,
                did=did,
                quantity=count,
            )
            for status, count in counts.items()
            if count
        )
    return updates


def read_event(item: Item, received: datetime, drift: timedelta) -> EventData:
    """An ``event`` item: release, environment, time and grouping fingerprint."""
    payload = _payload(item)
    raw_ts = payload.get("timestamp")
    timestamp = corrected(raw_ts, drift) if raw_ts is not None else received
    if timestamp < received - MAX_EVENT_AGE:
        raise Drop("too_old")
    timestamp = min(timestamp, received)
    event_id = payload.get("event_id")
    fingerprint, title = _grouping(payload)
    return EventData(
        event_id=event_id if isinstance(event_id, str) else None,
        release=valid_release(payload.get("release")),
        environment=clean_environment(payload.get("environment")),
        timestamp=timestamp,
        fingerprint=fingerprint,
        title=title.replace("\x00", "")[:200],
    )


def _grouping(payload: dict[str, Any]) -> tuple[str | None, str]:
    """The group of an event (DECISIONS.md): ``fingerprint``, else exception, else message."""
    default: list[str] = []
    title = ""
    exception = payload.get("exception")
    values = exception.get("values") if isinstance(exception, dict) else exception
    if isinstance(values, list) and values and isinstance(values[-1], dict):
        last = values[-1]
        default = ["exception", str(last.get("type") or ""), str(last.get("value") or "")]
        title = f"{default[1]}: {default[2]}" if default[2] else default[1]
    else:
        message = payload.get("message")
        logentry = payload.get("logentry")
        if isinstance(message, dict):
            message = message.get("formatted") or message.get("message")
        if not message and isinstance(logentry, dict):
            message = logentry.get("formatted") or logentry.get("message")
        if isinstance(message, str) and message:
            default = ["message", message]
            title = message
    parts = default
    fingerprint = payload.get("fingerprint")
    if (
        isinstance(fingerprint, list)
        and fingerprint
        and all(isinstance(p, str | int | float) for p in fingerprint)
    ):
        parts = []
        for part in fingerprint:
            if part in ("{{ default }}", "{{default}}"):
                parts.extend(default)
            else:
                parts.append(str(part))
        title = title or " ".join(parts)
    if not parts:
        return None, title
    digest = hashlib.sha1(json.dumps(parts).encode(), usedforsecurity=False).hexdigest()
    return digest, title


def clock_drift(headers: dict[str, Any], received: datetime) -> timedelta:
    """``received - sent_at`` when the client's clock is off by more than 55 minutes."""
    sent_at = headers.get("sent_at")
    if sent_at is None:
        return timedelta(0)
    try:
        drift = received - parse_timestamp(sent_at)
    except Drop:
        return timedelta(0)
    return drift if abs(drift) > CLOCK_DRIFT_THRESHOLD else timedelta(0)


def read_items(envelope: Envelope, received: datetime) -> Items:
    """Validate the items we use; other item types are skipped."""
    result = Items()
    event_id = envelope.headers.get("event_id")
    result.event_id = event_id if isinstance(event_id, str) else None
    drift = clock_drift(envelope.headers, received)
    for item in envelope.items:
        try:
            if item.type == "session":
                result.sessions.append(read_session(item, received, drift))
            elif item.type == "sessions":
                result.sessions.extend(read_aggregates(item, received, drift, result.dropped))
            elif item.type == "event":
                result.events.append(read_event(item, received, drift))
        except Drop as drop:
            category = "event" if item.type == "event" else "session"
            result.dropped[category, drop.reason] += 1
    return result


# -- Storage ---------------------------------------------------------------------------------


@dataclass
class StoreResult:
    sessions_stored: int = 0
    duplicates: int = 0
    events_stored: int = 0
    new_groups: int = 0


class _Context:
    """Environments, releases and release-project-environment rows, created on first use."""

    def __init__(self, project: Project):
        self.project = project
        self.environments: dict[str, int] = {}
        self.releases: dict[str, Release] = {}

    def prepare(self, versions: set[str], environments: set[str]) -> None:
        organization = self.project.organization
        missing_envs = environments - set(self.environments)
        if missing_envs:
            Environment.objects.bulk_create(
                [Environment(organization=organization, name=name) for name in missing_envs],
                ignore_conflicts=True,
            )
            for env_id, name in Environment.objects.filter(
                organization=organization, name__in=missing_envs
            ).values_list("id", "name"):
                self.environments[name] = env_id
        missing = versions - set(self.releases)
        if missing:
            for link in ReleaseProject.objects.filter(
                project=self.project, release__version__in=missing
            ).select_related("release"):
                self.releases[link.release.version] = link.release
            for version in sorted(missing - set(self.releases)):
                # DECISIONS.md: an unknown version becomes an open release of the project.
                release, _, _ = release_create(
                    organization=organization, version=version, projects=[self.project]
                )
                self.releases[version] = release

    def link_rows(self, keys: Iterable[tuple[str, str]]) -> None:
        """Release-project-environment rows (adoption stages and environment filters)."""
        ReleaseProjectEnvironment.objects.bulk_create(
            [
                ReleaseProjectEnvironment(
                    release=self.releases[version],
                    project=self.project,
                    environment_id=self.environments[env],
                )
                for version, env in sorted(set(keys))
            ],
            ignore_conflicts=True,
        )


@transaction.atomic
def store(
    project: Project,
    items: Items,
    *,
    received: datetime | None = None,
    dedup: bool = True,
) -> StoreResult:
    """Store an envelope's sessions, events and dropped counts, all or nothing.

    ``dedup`` (on for the endpoint) ignores individual session updates already stored; bulk
    loaders that generate unique updates turn it off.
    """
    received = received or timezone.now()
    result = StoreResult()
    context = _Context(project)
    sessions = items.sessions
    events = list(items.events)
    versions = {s.release for s in sessions} | {e.release for e in events if e.release}
    envs = {s.environment for s in sessions} | {e.environment for e in events if e.release}
    context.prepare(versions, envs)
    context.link_rows(
        [(s.release, s.environment) for s in sessions]
        + [(e.release, e.environment) for e in events if e.release]
    )
    if dedup and sessions:
        sessions, result.duplicates = _drop_duplicates(project, sessions, received)
    if sessions:
        _store_sessions(context, sessions)
        result.sessions_stored = sum(s.quantity for s in sessions if s.init)
    for event in events:
        result.new_groups += _store_event(context, event)
        result.events_stored += 1
    if items.dropped:
        day = received.date()
        upsert(
            IngestOutcome,
            ("project_id", "day", "category", "reason", "quantity"),
            [
                (project.pk, day, category, reason, quantity)
                for (category, reason), quantity in items.dropped.items()
            ],
            keys=4,
            add=("quantity",),
        )
    return result


def _drop_duplicates(
    project: Project, sessions: list[SessionUpdate], received: datetime
) -> tuple[list[SessionUpdate], int]:
    keyed = {s.dedup_key(): s for s in sessions if not s.aggregate}
    new = insert_new(
        SessionUpdateKey,
        ("project_id", "key", "received"),
        [(project.pk, key, received) for key in keyed],
        keys=2,
        returning="key",
    )
    fresh_ids = {id(keyed[key]) for key in new}
    kept = [s for s in sessions if s.aggregate or id(s) in fresh_ids]
    return kept, len(sessions) - len(kept)


@lru_cache(maxsize=65536)
def _did_key(did: str) -> uuid.UUID:
    return did_uuid(did)


def _store_sessions(context: _Context, sessions: Sequence[SessionUpdate]) -> None:
    """Rollups, user sets and durations of a batch: one multi-row statement per table."""
    project_id = context.project.pk
    counters: dict[tuple[int, int, datetime], Counter[str]] = defaultdict(Counter)
    # (release, env, hour, did); (release, env, did) -> [last hour, last crashed hour];
    # (env, did) -> last hour.
    users: set[tuple[int, int, datetime, uuid.UUID]] = set()
    seen: dict[tuple[int, int, uuid.UUID], list[datetime | None]] = {}
    project_seen: dict[tuple[int, uuid.UUID], datetime] = {}
    durations: Counter[tuple[int, int, datetime, int]] = Counter()
    errored_rows: dict[uuid.UUID, tuple[int, int, datetime]] = {}
    release_ids = {version: release.pk for version, release in context.releases.items()}
    hours: dict[datetime, datetime] = {}

    for update in sessions:
        release_id = release_ids[update.release]
        env_id = context.environments[update.environment]
        started = update.started
        hour = hours.get(started)
        if hour is None:
            hour = hours[started] = hour_of(started)
        key = (release_id, env_id, hour)
        counter = counters[key]
        counter["updates"] += 1
        if update.init:
            counter["sessions"] += update.quantity
        status = update.status
        if status in ("crashed", "abnormal", "unhandled"):
            counter[status] += update.quantity
        if update.aggregate:
            if status in ERROR_STATUSES:
                counter["errored"] += update.quantity
        elif update.errored and update.sid is not None:
            errored_rows.setdefault(update.sid, key)
        if update.did:
            did = _did_key(update.did)
            users.add((release_id, env_id, hour, did))
            latest = seen.get((release_id, env_id, did))
            if latest is None:
                latest = seen[release_id, env_id, did] = [hour, None]
            elif hour > latest[0]:  # type: ignore[operator]
                latest[0] = hour
            if status == "crashed" and (latest[1] is None or hour > latest[1]):
                latest[1] = hour
            previous = project_seen.get((env_id, did))
            if previous is None or hour > previous:
                project_seen[env_id, did] = hour
        if status == "exited" and update.duration is not None and not update.aggregate:
            durations[release_id, env_id, hour, round(update.duration * 1000)] += 1

    if errored_rows:
        new_sids = insert_new(
            ErroredSession,
            ("project_id", "release_id", "sid", "hour"),
            [(project_id, key[0], sid, key[2]) for sid, key in errored_rows.items()],
            keys=3,
            returning="sid",
        )
        for sid in new_sids:
            counters[errored_rows[sid]]["errored"] += 1

    fields = ("updates", "sessions", "crashed", "abnormal", "unhandled", "errored")
    upsert(
        SessionRollup,
        ("project_id", "release_id", "environment_id", "hour", *fields),
        [
            (project_id, release_id, env_id, hour, *(counter[name] for name in fields))
            for (release_id, env_id, hour), counter in counters.items()
        ],
        keys=4,
        add=fields,
    )
    upsert(
        SessionUser,
        ("project_id", "release_id", "environment_id", "hour", "did"),
        [(project_id, *row) for row in users],
        keys=5,
    )
    upsert(
        SessionUserSeen,
        ("project_id", "release_id", "environment_id", "did", "last_hour", "last_crashed_hour"),
        [(project_id, *key, *latest) for key, latest in seen.items()],
        keys=4,
        latest=("last_hour", "last_crashed_hour"),
    )
    upsert(
        ProjectUserSeen,
        ("project_id", "environment_id", "did", "last_hour"),
        [(project_id, env_id, did, hour) for (env_id, did), hour in project_seen.items()],
        keys=3,
        latest=("last_hour",),
    )
    upsert(
        SessionDuration,
        ("project_id", "release_id", "environment_id", "hour", "duration_ms", "count"),
        [(project_id, *key, count) for key, count in durations.items()],
        keys=5,
        add=("count",),
    )


def _store_event(context: _Context, event: EventData) -> int:
    """First/last seen per release, project and environment; 1 when it opens a new group."""
    project = context.project
    release = context.releases.get(event.release) if event.release else None
    rpe = None
    if release is not None:
        rpe = ReleaseProjectEnvironment.objects.filter(
            release=release,
            project=project,
            environment_id=context.environments[event.environment],
        )
        moment = Value(event.timestamp, output_field=DateTimeField())
        rpe.update(
            first_seen=Least(Coalesce(F("first_seen"), moment), moment),
            last_seen=Greatest(Coalesce(F("last_seen"), moment), moment),
        )
    if event.fingerprint is None:
        return 0
    # get_or_create resolves a concurrent insert of the same group itself.
    _, created = IssueGroup.objects.get_or_create(
        project=project,
        fingerprint=event.fingerprint,
        defaults={"title": event.title, "first_release": release, "first_seen": event.timestamp},
    )
    if not created or release is None or rpe is None:
        return 0
    ReleaseProject.objects.filter(release=release, project=project).update(
        new_groups=Coalesce(F("new_groups"), 0) + 1
    )
    rpe.update(new_issues_count=F("new_issues_count") + 1)
    return 1


def prune_update_keys(now: datetime) -> int:
    """Forget duplicate-delivery keys that no accepted update can match any more.

    An update is refused when it is older than five days, so a key received more than five
    days (and a day of margin for clock drift) ago is never needed again.
    """
    cutoff = now - MAX_SESSION_AGE - timedelta(days=1)
    deleted, _ = SessionUpdateKey.objects.filter(received__lt=cutoff).delete()
    return deleted
