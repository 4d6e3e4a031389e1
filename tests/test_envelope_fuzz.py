"""Property-based fuzzing of the envelope endpoint: whatever the framing, the encoding and the
item payloads, the answer is never a 5xx (docs/health.md §6.9). Bounded and derandomized:
the same examples on every run, a few seconds each."""

from __future__ import annotations

import gzip
import json
import zlib
from datetime import UTC, datetime, timedelta
from typing import Any

import brotli
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .envelopes import aggregates, auth_header, event, item, session, ts

pytestmark = pytest.mark.django_db

FUZZ = settings(
    max_examples=100,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
NOW = datetime.now(UTC)

# Text that PostgreSQL or our validation may choke on, next to ordinary text.
HOSTILE_TEXT = st.sampled_from(
    ["", " ", "a\ud800", "\udfff", "\x00", "app@1.0.0", "..", "a/b", "x" * 300, "\U0001f600"]
)
TEXT = st.one_of(HOSTILE_TEXT, st.text(max_size=20))
SCALAR = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    TEXT,
)
JSON = st.recursive(
    SCALAR,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=8,
)
MOMENT = st.one_of(
    st.integers(min_value=-10_000, max_value=10_000).map(
        lambda minutes: (NOW + timedelta(minutes=minutes)).isoformat()
    ),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z", "yesterday", ""]),
    JSON,
)
# Mostly valid where validation would stop early, so that hostile values reach the database.
NEAR_NOW = st.integers(min_value=-600, max_value=0).map(
    lambda minutes: (NOW + timedelta(minutes=minutes)).isoformat()
)
RECENT = st.one_of(NEAR_NOW, NEAR_NOW, MOMENT)
RELEASE = st.one_of(HOSTILE_TEXT, HOSTILE_TEXT, TEXT, JSON)
ATTRS = st.fixed_dictionaries({"release": RELEASE}, optional={"environment": st.one_of(TEXT, JSON)})
SESSION = st.fixed_dictionaries(
    {"started": RECENT, "attrs": st.one_of(ATTRS, ATTRS, JSON)},
    optional={
        "sid": st.one_of(st.uuids().map(str), TEXT, JSON),
        "did": st.one_of(TEXT, JSON),
        "init": JSON,
        "timestamp": RECENT,
        "status": st.one_of(st.sampled_from(["ok", "exited", "crashed", "abnormal"]), JSON),
        "errors": JSON,
        "seq": JSON,
        "duration": JSON,
        "extra": JSON,
    },
)
BUCKET = st.fixed_dictionaries(
    {"started": RECENT},
    optional={
        "did": JSON,
        **{
            name: st.one_of(st.integers(min_value=-1, max_value=2**40), JSON)
            for name in (
                "exited",
                "errored",
                "abnormal",
                "crashed",
            )
        },
    },
)
AGGREGATES = st.fixed_dictionaries(
    {"aggregates": st.one_of(st.lists(BUCKET, max_size=4), JSON), "attrs": ATTRS}
)
EXCEPTION = st.fixed_dictionaries({}, optional={"type": JSON, "value": JSON})
EVENT = st.fixed_dictionaries(
    {"timestamp": RECENT, "release": RELEASE},
    optional={
        "event_id": JSON,
        "environment": st.one_of(TEXT, JSON),
        "exception": st.one_of(
            st.fixed_dictionaries({"values": st.lists(EXCEPTION, max_size=2)}), JSON
        ),
        "message": st.one_of(TEXT, JSON),
        "logentry": JSON,
        "fingerprint": st.one_of(st.lists(st.one_of(TEXT, SCALAR), max_size=3), JSON),
    },
)
PAYLOADS = {"session": SESSION, "sessions": AGGREGATES, "event": EVENT}


def post(client: Any, project: Any, body: bytes, encoding: str | None = None) -> Any:
    extra = {"HTTP_CONTENT_ENCODING": encoding} if encoding else {}
    return client.post(
        f"/api/{project.pk}/envelope/",
        data=body,
        content_type="application/x-sentry-envelope",
        HTTP_X_SENTRY_AUTH=auth_header(project),
        **extra,
    )


def assert_answered(response: Any) -> None:
    assert response.status_code < 500, response.content
    assert response.status_code in (200, 400, 401, 413), response.content
    if response.status_code != 200:
        assert set(response.json()) == {"detail"}


@st.composite
def items(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["session", "sessions", "event", "attachment", ""]))
    if kind in PAYLOADS and draw(st.booleans()):
        payload = json.dumps(draw(PAYLOADS[kind])).encode()
    else:
        payload = draw(
            st.one_of(st.binary(max_size=40), JSON.map(lambda v: json.dumps(v).encode()))
        )
    headers: dict[str, Any] = {"type": kind}
    length = draw(
        st.one_of(
            st.just(len(payload)),
            st.none(),
            st.integers(min_value=-2, max_value=len(payload) + 2),
            JSON,
        )
    )
    if length is not None:
        headers["length"] = length
    header = draw(st.one_of(st.just(json.dumps(headers).encode()), st.binary(max_size=20)))
    return header + b"\n" + payload


@st.composite
def envelopes(draw: st.DrawFn) -> bytes:
    header = draw(
        st.one_of(
            st.fixed_dictionaries(
                {}, optional={"sent_at": MOMENT, "event_id": JSON, "dsn": JSON}
            ).map(lambda h: json.dumps(h).encode()),
            st.binary(max_size=20),
        )
    )
    parts = draw(st.lists(items(), max_size=4))
    tail = draw(st.sampled_from([b"", b"\n", b"\n\n", b"\r\n"]))
    return b"\n".join([header, *parts]) + tail


@FUZZ
@given(body=envelopes())
def test_fuzzed_framing_and_items_never_give_a_5xx(client, project, body):
    assert_answered(post(client, project, body))


@FUZZ
@given(kind=st.sampled_from(sorted(PAYLOADS)), data=st.data())
def test_fuzzed_item_payloads_never_give_a_5xx(client, project, kind, data):
    payload = json.dumps(data.draw(PAYLOADS[kind])).encode()
    body = b"{}\n" + json.dumps({"type": kind, "length": len(payload)}).encode() + b"\n" + payload

    response = post(client, project, body)

    assert_answered(response)
    assert response.status_code == 200  # a bad item is dropped, the envelope accepted


def valid_payloads() -> dict[str, dict[str, Any]]:
    return {
        "session": session(started=NOW, did="u1", errors=1, duration=1.5, seq=3),
        "sessions": aggregates([{"started": ts(NOW), "exited": 2, "did": "u2"}]),
        "event": event(timestamp=NOW, message="m", fingerprint=["{{ default }}", "x"]),
    }


# Where a mutation lands: a path of keys (and list indexes) into a valid payload.
PATHS = {
    "session": [
        ("sid",),
        ("did",),
        ("seq",),
        ("init",),
        ("status",),
        ("errors",),
        ("started",),
        ("timestamp",),
        ("duration",),
        ("attrs", "release"),
        ("attrs", "environment"),
        ("attrs",),
        ("extra",),
    ],
    "sessions": [
        ("aggregates", 0, "started"),
        ("aggregates", 0, "did"),
        ("aggregates", 0, "exited"),
        ("aggregates", 0, "crashed"),
        ("aggregates", 0),
        ("aggregates",),
        ("attrs", "release"),
        ("attrs", "environment"),
    ],
    "event": [
        ("event_id",),
        ("timestamp",),
        ("release",),
        ("environment",),
        ("message",),
        ("logentry",),
        ("fingerprint",),
        ("fingerprint", 1),
        ("exception",),
        ("exception", "values", 0, "type"),
        ("exception", "values", 0, "value"),
        ("extra",),
    ],
}


@FUZZ
@given(kind=st.sampled_from(sorted(PATHS)), data=st.data())
def test_hostile_values_in_valid_payloads_never_give_a_5xx(client, project, kind, data):
    """One to three fields of a valid item replaced by hostile values: most reach storage."""
    payload = valid_payloads()[kind]
    paths = data.draw(st.lists(st.sampled_from(PATHS[kind]), min_size=1, max_size=3))
    for path in sorted(set(paths), key=len, reverse=True):  # inner fields before their parents
        node = payload
        for step in path[:-1]:
            node = node[step]
        node[path[-1]] = data.draw(st.one_of(HOSTILE_TEXT, MOMENT, JSON))
    body = b"{}\n" + item(kind, payload)

    response = post(client, project, body)

    assert_answered(response)
    assert response.status_code == 200


ENCODERS = {
    "gzip": gzip.compress,
    "deflate": zlib.compress,
    "br": brotli.compress,
    "identity": lambda data: data,
}


@FUZZ
@given(
    body=envelopes(),
    encoding=st.one_of(st.sampled_from(sorted(ENCODERS)), TEXT.filter(lambda t: t.isascii())),
    encode_as=st.sampled_from([*sorted(ENCODERS), "truncated gzip"]),
)
def test_fuzzed_content_encodings_never_give_a_5xx(client, project, body, encoding, encode_as):
    data = gzip.compress(body)[:-5] if encode_as == "truncated gzip" else ENCODERS[encode_as](body)

    assert_answered(post(client, project, data, encoding.replace("\x00", "") or None))
