"""Delivery keys (docs/health.md §6.6) keep their bytes: keys already stored must go on
matching. Each key is compared with the formula it was first computed with, over generated
updates (None, floats, unicode, nesting, huge integers); no database."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from releases.health.framing import Item
from releases.health.items import SessionUpdate, aggregates_key, session_key

EXAMPLES = settings(max_examples=300, derandomize=True, database=None, deadline=None)
DID_NAMESPACE = uuid.UUID("b7a3b4c5-7f0e-4cd1-9b5d-2a8b3c4d5e6f")


def first_digest(*parts: Any) -> uuid.UUID:
    """The delivery-key digest as first written (``json.dumps`` per part)."""
    digest = hashlib.sha256()
    for part in parts:
        data = part if isinstance(part, bytes) else json.dumps(part, sort_keys=True).encode()
        digest.update(len(data).to_bytes(8, "big") + data)
    return uuid.UUID(bytes=digest.digest()[:16])


def first_session_key(payload: dict[str, Any], sent_at: Any) -> uuid.UUID:
    attrs = payload["attrs"]
    names = ("sid", "did", "seq", "init", "status", "errors", "started", "timestamp")
    parts = [payload.get(name) for name in names]
    parts += [payload.get("duration"), attrs.get("release"), attrs.get("environment")]
    if payload.get("sid") is None:
        parts.append(sent_at)
    return first_digest("session", parts)


texts = st.text(st.characters(codec=None, exclude_categories=()), max_size=12)
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=2**63, max_value=2**80)
    | st.floats()
    | texts
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=8,
)
fields = st.sampled_from(
    ["sid", "did", "seq", "init", "status", "errors", "started", "timestamp", "duration", "x"]
)
payloads = st.builds(
    lambda body, attrs: {**body, "attrs": attrs},
    st.dictionaries(fields, values, max_size=10),
    st.dictionaries(st.sampled_from(["release", "environment", "y"]), values, max_size=3),
)


@EXAMPLES
@given(payloads, values)
def test_session_key_is_the_first_formula(payload, sent_at):
    assert session_key(payload, sent_at) == first_session_key(payload, sent_at).bytes


@EXAMPLES
@given(st.binary(max_size=64), st.integers(min_value=0, max_value=10_000), values)
def test_aggregates_key_is_the_first_formula(data, index, sent_at):
    key = aggregates_key(Item({"type": "sessions"}, data), index, sent_at)

    expected = None if sent_at is None else first_digest("sessions", index, sent_at, data).bytes
    assert key == expected


def first_dedup_key(update: SessionUpdate) -> uuid.UUID:
    parts = [
        update.sid,
        update.did,
        update.seq,
        update.init,
        update.status,
        update.errors,
        update.started.isoformat(),
        update.timestamp.isoformat() if update.timestamp else None,
        update.duration,
        update.release,
        update.environment,
    ]
    return uuid.uuid5(DID_NAMESPACE, json.dumps(parts, default=str))


# Hypothesis takes naive bounds and adds the zone.
moments = st.datetimes(timezones=st.just(UTC), min_value=datetime(2000, 1, 1))  # noqa: DTZ001
updates = st.builds(
    SessionUpdate,
    release=texts,
    environment=texts,
    started=moments,
    status=st.sampled_from(["ok", "exited", "crashed", "errored"]),
    init=st.booleans(),
    errors=st.integers(min_value=0, max_value=2**31 - 1),
    sid=st.none() | st.uuids(),
    did=st.none() | texts,
    duration=st.none() | st.floats(),
    timestamp=st.none() | moments,
    seq=st.none() | st.integers(min_value=0, max_value=2**64 - 1),
)


@EXAMPLES
@given(updates)
def test_dedup_key_is_the_first_formula(update):
    assert update.dedup_key() == first_dedup_key(update)
