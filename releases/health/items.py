"""Validation of ``session``, ``sessions`` and ``event`` items, as Relay does (docs/health.md §6).

Bad items are dropped with a reason instead of failing the envelope."""

from __future__ import annotations

import hashlib
import json
import math
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, TypeVar

from django.conf import settings

from ..versioning import validate_version
from .framing import Envelope, EnvelopeTooLarge, Item, loads

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
T = TypeVar("T")
#: The hours a stored delivery key can start with (:meth:`SessionUpdate.stored_key`): a stored
#: key outside this range (a digest's first four bytes, 99.98 % of them) is of the first form.
KEY_HOURS = range(262_968, 1_139_568)  # 2000-01-01 to 2100-01-01, UTC


def hours_since_1970(moment: datetime) -> int:
    """Whole hours from 1970-01-01 UTC to ``moment``, within what four bytes hold."""
    return min(max(int(moment.timestamp()) // 3600, 0), 2**32 - 1)


@dataclass(slots=True)
class SessionUpdate:
    """One validated session update, or one status count of an aggregate bucket.

    Not changed once built, but not ``frozen``: a frozen dataclass sets each field through
    ``object.__setattr__``, which triples the cost of building an envelope's hundred updates
    (docs/performance.md §6.8)."""

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
    #: Delivery key (docs/health.md §6.6), the 16 bytes of a digest: a redelivery of the same
    #: update, or of the same ``sessions`` item of the same envelope, has the same key. None:
    #: not deduplicated (aggregates of an envelope without ``sent_at``), or :meth:`dedup_key`
    #: for updates built without an envelope. Bytes rather than a ``UUID``, whose
    #: constructor is Python code (docs/performance.md §6.9).
    key: bytes | None = field(default=None, compare=False)
    #: The hour the key is stored under (:meth:`stored_key`), from the item as sent. None:
    #: the hour of ``started``.
    key_hour: int | None = field(default=None, compare=False)

    @property
    def aggregate(self) -> bool:
        return self.sid is None

    @property
    def errored(self) -> bool:
        return self.errors > 0 or self.status in ERROR_STATUSES

    def stored_key(self) -> str | None:
        """The delivery key as the keys' table holds it (docs/health.md §6.6), in hex: its
        first four bytes replaced by its hour, so that the keys of the updates arriving
        together, which started in the last hours, are neighbours in the table's index. None:
        not deduplicated."""
        key = self._key_bytes()
        if key is None:
            return None
        hour = self.key_hour if self.key_hour is not None else hours_since_1970(self.started)
        return (hour.to_bytes(4, "big") + key[4:]).hex()

    def first_form_key(self) -> uuid.UUID | None:
        """The delivery key as keys were stored before :meth:`stored_key` (docs/health.md
        §6.6)."""
        key = self._key_bytes()
        return uuid.UUID(bytes=key) if key is not None else None

    def _key_bytes(self) -> bytes | None:
        """:attr:`key`, or :meth:`dedup_key`'s bytes for an update built without an envelope;
        None: not deduplicated."""
        if self.key is not None:
            return self.key
        return None if self.aggregate else self.dedup_key().bytes

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
    buckets: int = 0  # aggregate buckets read so far


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
    if isinstance(value, str) and _valid_version(value):
        return value
    return None


def _remembered(size: int) -> Callable[[Callable[[str], T]], Callable[[str], T]]:
    """A check of text that remembers its last ``size`` answers for texts of at most 256
    characters (longer ones, rare and hostile, are checked each time: the memory stays
    bounded). Envelopes name the same few releases and environments, and users again and
    again."""

    def decorate(check: Callable[[str], T]) -> Callable[[str], T]:
        cached = lru_cache(maxsize=size)(check)

        def call(value: str) -> T:
            return cached(value) if len(value) <= 256 else check(value)

        return call

    return decorate


@_remembered(4096)
def _valid_version(value: str) -> bool:
    # NUL passes Sentry's version check but no PostgreSQL text column can hold it.
    return "\x00" not in value and validate_version(value) is None


def corrected(value: Any, drift: timedelta) -> datetime:
    """A client timestamp moved by its envelope's clock drift (docs/health.md §6: ``sent_at``)."""
    if not drift:
        return parse_timestamp(value)
    try:
        return parse_timestamp(value) + drift
    except OverflowError:
        raise Drop("invalid_timestamp") from None


def clean_environment(value: Any) -> str:
    """Relay removes an invalid environment rather than the item; we store it as ``""``."""
    if not isinstance(value, str):
        return ""
    return _clean_environment(value)


@_remembered(4096)
def _clean_environment(value: str) -> str:
    if len(value) > 64 or value in (".", ".."):
        return ""
    if any(ch in value for ch in "/\\\n\r\t\f\x00") or value.strip() != value:
        return ""
    return value


def clean_did(value: Any) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        return None
    return _clean_did(value)


@_remembered(65536)
def _clean_did(value: str) -> str | None:
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
        value = loads(item.payload)
    except ValueError:
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


#: ``json.dumps(value, sort_keys=True)`` is this encoder's ``encode(value)`` (json.dumps builds
#: the same encoder on every call): the same text, without building it a hundred times an
#: envelope. The keys' bytes must not change, or stored keys stop matching.
_KEY_JSON = json.JSONEncoder(sort_keys=True)


def _float_json(value: float) -> str:
    """A float as json's encoder writes it (``allow_nan``)."""
    if value != value:
        return "NaN"
    if value in (math.inf, -math.inf):
        return "Infinity" if value > 0 else "-Infinity"
    return float.__repr__(value)


#: How json's encoder writes each scalar type (``encode_basestring_ascii`` is its own C
#: function for ``ensure_ascii``); any other value (lists, objects) is left to the encoder.
_SCALAR_JSON: dict[type, Callable[[Any], str]] = {
    type(None): lambda _: "null",
    bool: lambda value: "true" if value else "false",
    int: int.__repr__,
    float: _float_json,
    str: json.encoder.encode_basestring_ascii,
}


def _json_list(parts: list[Any]) -> str:
    """``_KEY_JSON.encode(parts)``, the same text in half the time for the scalars a session
    item sends: one call per part instead of the encoder's setup (``tests/test_items.py``
    compares both over generated parts)."""
    encode = _KEY_JSON.encode
    return "[" + ", ".join([_SCALAR_JSON.get(type(p), encode)(p) for p in parts]) + "]"


def _framed(data: bytes) -> bytes:
    return len(data).to_bytes(8, "big") + data


def _digest(*parts: Any) -> bytes:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(_framed(part if isinstance(part, bytes) else _KEY_JSON.encode(part).encode()))
    return digest.digest()[:16]


#: The fields of a ``session`` item that make an update: its delivery key covers them as sent.
_UPDATE_FIELDS = ("sid", "did", "seq", "init", "status", "errors", "started", "timestamp")


def session_key(payload: dict[str, Any], sent_at: Any) -> bytes:
    """The delivery key of a ``session`` item (docs/health.md §6.6).

    Made of the fields as sent, not of the defaults filled in at receipt (``timestamp``, ``seq``
    and a missing ``sid`` would differ on each delivery): the same update sent again counts
    once, whichever envelope carries it. An update without ``sid`` has no identity of its own,
    so the envelope's ``sent_at`` joins its key.
    """
    attrs = payload["attrs"]
    get = payload.get
    parts = [get(name) for name in _UPDATE_FIELDS]
    parts += [get("duration"), attrs.get("release"), attrs.get("environment")]
    if parts[0] is None:  # sid
        parts.append(sent_at)
    digest = hashlib.sha256(_SESSION_PREFIX)
    digest.update(_framed(_json_list(parts).encode()))
    return digest.digest()[:16]


#: What ``_digest("session", parts)`` hashes first: the same for every ``session`` item.
_SESSION_PREFIX = _framed(_KEY_JSON.encode("session").encode())


def sent_at_hour(sent_at: Any) -> int:
    """The hour the keys of an envelope's ``sessions`` items are stored under: its ``sent_at``,
    which their keys cover (the first of :data:`KEY_HOURS` when it does not read as a time)."""
    try:
        return hours_since_1970(parse_timestamp(sent_at))
    except Drop:
        return KEY_HOURS.start


def aggregates_key(item: Item, index: int, sent_at: Any) -> bytes | None:
    """The delivery key of a ``sessions`` item: its bytes, its place in the envelope and the
    envelope's ``sent_at``. None (not deduplicated) without ``sent_at``: two flushes of the
    same counts are then indistinguishable from one flush delivered twice."""
    if sent_at is None:
        return None
    return _digest("sessions", index, sent_at, item.payload)


def read_session(
    item: Item, received: datetime, drift: timedelta, sent_at: Any = None
) -> SessionUpdate:
    """A ``session`` item (docs/health.md §6.3) or :class:`Drop`."""
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
    if not isinstance(status, str) or status not in STATUSES:
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
    seq = payload.get("seq")
    # Relay's default is the time received, in ms: computed only when it is needed.
    seq = int(received.timestamp() * 1000) if seq is None else _count(seq, 0, MAX_SEQ - 1)
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
        key=session_key(payload, sent_at),
        # As sent, before the drift correction: the same bytes delivered later (a replayed
        # offline cache) are corrected by more, and must keep their hour.
        key_hour=hours_since_1970(started - drift),
    )


def read_aggregates(
    item: Item,
    received: datetime,
    drift: timedelta,
    result: Items,
    key: bytes | None = None,
    key_hour: int | None = None,
) -> list[SessionUpdate]:
    """A ``sessions`` item (docs/health.md §6.4): one update per non-zero status count of
    each bucket. More than ``ENVELOPE_MAX_AGGREGATES`` buckets in the envelope is an
    :class:`EnvelopeTooLarge`."""
    dropped = result.dropped
    payload = _payload(item)
    release, environment = _release_attrs(payload)
    buckets = payload.get("aggregates")
    if not isinstance(buckets, list):
        raise Drop("invalid_payload")
    result.buckets += len(buckets)
    limit = int(settings.ENVELOPE_MAX_AGGREGATES)
    if result.buckets > limit:
        raise EnvelopeTooLarge(f"Envelope has more than {limit} aggregate buckets")
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
                key=key,
                key_hour=key_hour,
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
    """The group of an event (docs/decisions.md): ``fingerprint``, else exception, else message."""
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
    sent_at = envelope.headers.get("sent_at")
    sent_hour = sent_at_hour(sent_at) if sent_at is not None else None
    for index, item in enumerate(envelope.items):
        try:
            if item.type == "session":
                result.sessions.append(read_session(item, received, drift, sent_at))
            elif item.type == "sessions":
                key = aggregates_key(item, index, sent_at)
                result.sessions.extend(
                    read_aggregates(item, received, drift, result, key, sent_hour)
                )
            elif item.type == "event":
                result.events.append(read_event(item, received, drift))
        except Drop as drop:
            category = "event" if item.type == "event" else "session"
            result.dropped[category, drop.reason] += 1
    return result
