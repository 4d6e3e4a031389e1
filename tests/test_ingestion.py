"""POST /api/{project_id}/envelope/: authentication, decoding, framing, validation, storage."""

from __future__ import annotations

import gzip
import io
import json
import random
import threading
import urllib.error
import urllib.request
import zlib
from datetime import timedelta
from typing import Any

import brotli
import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from releases.models import (
    IngestOutcome,
    IssueGroup,
    ProjectKey,
    Release,
    ReleaseProject,
    ReleaseProjectEnvironment,
    SessionRollup,
)
from tests.envelopes import (
    aggregates,
    auth_header,
    envelope,
    event,
    item,
    post_envelope,
    session,
)
from tests.factories import ProjectFactory

pytestmark = pytest.mark.django_db


def totals() -> tuple[int, int, int]:
    """(sessions, crashed, errored) over every rollup row."""
    rows = SessionRollup.objects.all()
    return (
        sum(r.sessions for r in rows),
        sum(r.crashed for r in rows),
        sum(r.errored for r in rows),
    )


def one_session() -> bytes:
    return envelope(item("session", session(started=timezone.now())))


# -- Authentication --------------------------------------------------------------------------


@pytest.mark.parametrize("form", ["x-sentry-auth", "authorization", "query", "dsn"])
def test_each_authentication_form_is_accepted(client, project, form):
    key = project.keys.get()
    headers: dict[str, str] = {}
    url = f"/api/{project.pk}/envelope/"
    body_headers: dict[str, Any] = {}
    if form == "x-sentry-auth":
        headers["HTTP_X_SENTRY_AUTH"] = auth_header(project)
    elif form == "authorization":
        headers["HTTP_AUTHORIZATION"] = auth_header(project)
    elif form == "query":
        url += f"?sentry_key={key.public_key}&sentry_version=7"
    else:
        body_headers["dsn"] = key.dsn
    body = envelope(item("session", session(started=timezone.now())), headers=body_headers)

    response = client.post(url, data=body, content_type="text/plain", **headers)

    assert response.status_code == 200, response.content
    assert response.json() == {}
    assert totals() == (1, 0, 0)


def test_missing_key_is_401(client, project):
    response = post_envelope(client, project, one_session(), auth=False)

    assert response.status_code == 401
    assert "sentry_key" in response.json()["detail"]


def test_unknown_key_is_401_and_revoked_key_is_403(client, project):
    unknown = post_envelope(
        client,
        project,
        one_session(),
        auth=False,
        HTTP_X_SENTRY_AUTH="Sentry sentry_key=0123456789abcdef0123456789abcdef",
    )
    ProjectKey.objects.update(is_active=False)
    revoked = post_envelope(client, project, one_session())

    assert unknown.status_code == 401
    assert revoked.status_code == 403
    assert revoked.json() == {"detail": "This key has been revoked."}
    assert totals() == (0, 0, 0)


def test_key_of_another_project_is_403(client, project, org):
    other = ProjectFactory(organization=org)

    response = client.post(
        f"/api/{other.pk}/envelope/",
        data=one_session(),
        content_type="text/plain",
        HTTP_X_SENTRY_AUTH=auth_header(project),
    )

    assert response.status_code == 403
    assert totals() == (0, 0, 0)


def test_disagreeing_keys_are_400(client, project):
    response = post_envelope(
        client,
        project,
        one_session(),
        HTTP_AUTHORIZATION="Sentry sentry_key=ffffffffffffffffffffffffffffffff",
    )

    assert response.status_code == 400


def test_project_dsn_command_prints_the_dsn_on_its_last_line(project, org, settings):
    settings.SENTRY_DSN_HOST = "sentry.example.com:9000"
    out = io.StringIO()

    call_command("project_dsn", org=org.slug, project=project.slug, stdout=out)

    key = project.keys.get().public_key
    assert out.getvalue().splitlines()[-1] == f"http://{key}@sentry.example.com:9000/{project.pk}"


# -- Decoding and framing --------------------------------------------------------------------


def _deflate_raw(data: bytes) -> bytes:
    compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


@pytest.mark.parametrize(
    ("encoding", "encode"),
    [
        ("", lambda b: b),
        ("identity", lambda b: b),
        ("gzip", lambda b: gzip.compress(b, 9)),
        ("deflate", zlib.compress),
        ("deflate", _deflate_raw),
        ("br", brotli.compress),
        ("gzip, br", lambda b: brotli.compress(gzip.compress(b))),
    ],
)
def test_compressed_bodies_are_decoded(client, project, encoding, encode):
    body = encode(one_session())

    response = post_envelope(client, project, body, HTTP_CONTENT_ENCODING=encoding)

    assert response.status_code == 200, response.content
    assert totals() == (1, 0, 0)


def test_items_with_and_without_length_and_unknown_types(client, project):
    now = timezone.now()
    body = envelope(
        item("client_report", {"discarded_events": []}),
        item("session", session(started=now), length=False),
        item("attachment", b"line one\nline two"),
        item("session", session(started=now, status="crashed")),
        item("transaction", {"type": "transaction"}, length=False),
    ).rstrip(b"\n")

    response = post_envelope(client, project, body)

    assert response.status_code == 200, response.content
    assert totals() == (2, 1, 1)


SESSION = json.dumps(session(started=timezone.now())).encode()


@pytest.mark.parametrize(
    ("body", "encoding", "detail"),
    [
        (b"", "", "empty body"),
        (b"\n\n", "", "empty body"),
        (b"not json\n", "", "envelope header is not valid JSON"),
        (b"[]\n", "", "envelope header is not a JSON object"),
        (b"{}\n{not json}\n{}", "", "item header 1 is not valid JSON"),
        (b'{}\n{"length": 2}\n{}', "", "item 1 has no type"),
        (b'{}\n{"type": 3}\n{}', "", "item 1 has no type"),
        (b'{}\n{"type": "session", "length": -1}\n{}', "", "bad length"),
        (b'{}\n{"type": "session", "length": "2"}\n{}', "", "bad length"),
        (b'{}\n{"type": "session", "length": true}\n{}', "", "bad length"),
        (b'{}\n{"type": "session", "length": 99}\n{}', "", "shorter than its length"),
        (b'{}\n{"type": "session", "length": 1}\n{}', "", "longer than its length"),
        (
            b"{}\n" + b'{"type":"session","length":%d}\n' % len(SESSION) + SESSION + b"garbage",
            "",
            "longer than its length",
        ),
        (b"\x1f\x8b\x08garbage", "gzip", "Invalid gzip body"),
        (gzip.compress(b"{}\n")[:-12], "gzip", "Invalid gzip body"),
        (b"garbage", "deflate", "Invalid deflate body"),
        (b"garbage", "br", "Invalid br body"),
        (b"{}\n", "compress", "Unsupported Content-Encoding: compress"),
    ],
)
def test_malformed_envelopes_are_400_and_write_nothing(client, project, body, encoding, detail):
    headers = {"HTTP_CONTENT_ENCODING": encoding} if encoding else {}
    release_count = Release.objects.count()

    response = post_envelope(client, project, body, **headers)

    assert response.status_code == 400, response.content
    assert detail in response.json()["detail"]
    assert totals() == (0, 0, 0)
    assert Release.objects.count() == release_count


def test_malformed_tail_rejects_the_whole_envelope(client, project):
    body = envelope(item("session", session(started=timezone.now()))) + b"{broken\n"

    response = post_envelope(client, project, body)

    assert response.status_code == 400
    assert totals() == (0, 0, 0)
    assert not Release.objects.filter(version="app@1.0.0").exists()


def test_oversized_body_is_413(client, project, settings):
    settings.ENVELOPE_MAX_BYTES = 1000
    big = envelope(*(item("session", session(started=timezone.now())) for _ in range(10)))

    plain = post_envelope(client, project, big)
    bomb = post_envelope(
        client, project, gzip.compress(big + b" " * 10_000), HTTP_CONTENT_ENCODING="gzip"
    )
    brotli_bomb = post_envelope(
        client, project, brotli.compress(b"{}\n" + b" " * 100_000), HTTP_CONTENT_ENCODING="br"
    )

    assert (plain.status_code, bomb.status_code, brotli_bomb.status_code) == (413, 413, 413)
    assert totals() == (0, 0, 0)


# -- Validation ------------------------------------------------------------------------------


def outcomes() -> dict[tuple[str, str], int]:
    return {(o.category, o.reason): o.quantity for o in IngestOutcome.objects.all()}


@pytest.mark.parametrize(
    ("offset", "kept"),
    [
        (-timedelta(days=5) + timedelta(minutes=1), True),
        (-timedelta(days=5) - timedelta(minutes=1), False),
        (timedelta(seconds=50), True),
        (timedelta(seconds=70), False),
    ],
)
def test_five_days_in_the_past_and_sixty_seconds_in_the_future(client, project, offset, kept):
    started = timezone.now() + offset

    response = post_envelope(client, project, envelope(item("session", session(started=started))))

    assert response.status_code == 200
    assert totals() == ((1, 0, 0) if kept else (0, 0, 0))
    reason = "too_old" if offset < timedelta(0) else "in_future"
    assert outcomes() == ({} if kept else {("session", reason): 1})


def test_timestamp_too_old_drops_the_update(client, project):
    now = timezone.now()
    payload = session(started=now)
    payload["timestamp"] = (now - timedelta(days=6)).isoformat()
    payload["started"] = (now - timedelta(days=6)).isoformat()

    post_envelope(client, project, envelope(item("session", payload)))

    assert totals() == (0, 0, 0)


def test_clock_drift_is_corrected_with_sent_at(client, project):
    now = timezone.now()
    skew = timedelta(days=10)  # the client's clock is ten days behind
    body = envelope(
        item("session", session(started=now - skew)),
        headers={"sent_at": (now - skew).isoformat()},
    )

    post_envelope(client, project, body)

    assert totals() == (1, 0, 0)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"attrs": {"release": "latest"}}, "invalid_release"),
        ({"attrs": {"release": "a/b"}}, "invalid_release"),
        ({"attrs": {"release": ""}}, "invalid_release"),
        ({"attrs": {"release": "x" * 201}}, "invalid_release"),
        ({"attrs": {}}, "invalid_release"),
        ({"attrs": "app@1"}, "invalid_release"),
        ({"status": "exploded"}, "invalid_status"),
        ({"started": None}, "missing_started"),
        ({"started": "yesterday"}, "invalid_timestamp"),
        ({"errors": -1}, "invalid_payload"),
        ({"errors": "1"}, "invalid_payload"),
        ({"init": "yes"}, "invalid_payload"),
        ({"sid": "not-a-uuid"}, "invalid_payload"),
        ({"seq": 2**64 - 1}, "invalid_payload"),
        ({"duration": -1}, "invalid_payload"),
    ],
)
def test_invalid_sessions_are_dropped_and_counted(client, project, change, reason):
    good = session(started=timezone.now(), release="keep@1")
    bad = session(started=timezone.now()) | change

    response = post_envelope(client, project, envelope(item("session", good), item("session", bad)))

    assert response.status_code == 200
    assert totals() == (1, 0, 0)
    assert outcomes() == {("session", reason): 1}


def test_invalid_json_items_are_dropped(client, project):
    body = envelope(item("session", b"{nope"), item("event", b"[1]"), item("sessions", b"3"))

    response = post_envelope(client, project, body)

    assert response.status_code == 200
    assert outcomes() == {("session", "invalid_json"): 2, ("event", "invalid_json"): 1}


def test_aggregate_buckets_are_validated_one_by_one(client, project):
    now = timezone.now()
    payload = aggregates(
        [
            {"started": now.isoformat(), "exited": 2},
            {"started": (now - timedelta(days=6)).isoformat(), "exited": 7},
            {"started": now.isoformat(), "crashed": -3},
            {"exited": 1},
        ]
    )

    post_envelope(client, project, envelope(item("sessions", payload)))

    assert totals() == (2, 0, 0)
    assert outcomes() == {
        ("session", "too_old"): 1,
        ("session", "invalid_payload"): 1,
        ("session", "missing_started"): 1,
    }


def test_unknown_version_creates_an_open_release_linked_to_the_project(client, project):
    post_envelope(client, project, one_session())

    release = Release.objects.get(version="app@1.0.0")
    assert release.status_name == "open"
    assert list(release.projects.all()) == [project]
    assert (release.major, release.minor, release.patch) == (1, 0, 0)


# -- Events ----------------------------------------------------------------------------------


def test_events_set_first_and_last_seen_and_new_groups(client, project, settings):
    settings.ENVELOPE_MAX_EVENTS = 10  # Relay takes one; an operator may allow more
    now = timezone.now()
    first, second = now - timedelta(hours=2), now - timedelta(hours=1)
    body = envelope(
        item("event", event(timestamp=second)),
        item("event", event(timestamp=first)),
        item("event", event(timestamp=first, exc_type="KeyError")),
        item("event", event(timestamp=first, fingerprint=["custom"], exc_type="KeyError")),
        headers={"event_id": "abc"},
    )

    response = post_envelope(client, project, body)

    assert response.status_code == 200
    assert response.json() == {"id": "abc"}
    row = ReleaseProjectEnvironment.objects.get(environment__name="production")
    assert (row.first_seen, row.last_seen, row.new_issues_count) == (first, second, 3)
    assert ReleaseProject.objects.get(release__version="app@1.0.0").new_groups == 3


def test_a_group_is_new_only_in_the_release_that_first_saw_it(client, project, settings):
    settings.ENVELOPE_MAX_EVENTS = 10
    now = timezone.now()
    post_envelope(client, project, envelope(item("event", event(timestamp=now))))
    post_envelope(
        client,
        project,
        envelope(
            item("event", event(release="app@2.0.0", timestamp=now)),
            item("event", event(release="app@2.0.0", timestamp=now, message="x", exception=None)),
        ),
    )

    new_groups = dict(ReleaseProject.objects.values_list("release__version", "new_groups"))
    assert new_groups == {"app@1.0.0": 1, "app@2.0.0": 1}
    assert IssueGroup.objects.count() == 2


def test_event_without_release_only_records_its_group(client, project):
    post_envelope(
        client, project, envelope(item("event", event(release=None, timestamp=timezone.now())))
    )

    assert Release.objects.count() == 0
    assert IssueGroup.objects.get().first_release is None


# -- Duplicates and concurrency ----------------------------------------------------------------


def test_duplicate_delivery_counts_once(client, project):
    now = timezone.now()
    sid = "22222222-2222-4222-8222-222222222222"
    body = envelope(
        item("session", session(sid=sid, started=now, status="ok", errors=1, did="u1")),
        item("event", event(timestamp=now)),
    )

    for _ in range(3):
        assert post_envelope(client, project, body).status_code == 200

    assert totals() == (1, 0, 1)
    assert ReleaseProject.objects.get().new_groups == 1
    assert ReleaseProjectEnvironment.objects.get().new_issues_count == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_deliveries_are_all_counted_exactly(live_server, project):
    if connection.vendor == "sqlite":
        pytest.skip("the live server shares one SQLite in-memory connection across threads")
    now = timezone.now()
    url = f"{live_server.url}/api/{project.pk}/envelope/"
    header = auth_header(project)
    shared_sid = "33333333-3333-4333-8333-333333333333"
    bodies = [
        envelope(
            item(
                "session",
                session(started=now, did=f"user-{n}", status="crashed" if n % 4 == 0 else "exited"),
            ),
            item("session", session(sid=shared_sid, started=now, status="ok", errors=1)),
            item("sessions", aggregates([{"started": now.isoformat(), "exited": 2}])),
            item("event", event(timestamp=now)),
        )
        for n in range(16)
    ]
    statuses: list[int] = []

    def deliver(body: bytes) -> None:
        request = urllib.request.Request(  # noqa: S310 - http://127.0.0.1 only
            url,
            data=body,
            method="POST",
            headers={"X-Sentry-Auth": header, "Content-Type": "application/x-sentry-envelope"},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
                statuses.append(response.status)
        except urllib.error.HTTPError as exc:
            statuses.append(exc.code)

    threads = [threading.Thread(target=deliver, args=(body,)) for body in bodies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert statuses == [200] * 16
    # 16 individual sessions + 1 shared (deduplicated) + 16 aggregates of 2
    assert totals() == (16 + 1 + 32, 4, 4 + 1)
    assert ReleaseProject.objects.get().new_groups == 1


# -- Robustness ------------------------------------------------------------------------------


def test_no_input_gives_a_server_error(client, project):
    rng = random.Random(7)  # noqa: S311 - reproducible fuzzing
    now = timezone.now().isoformat()
    weird_values: list[Any] = [
        None,
        True,
        0,
        -1,
        2**70,
        1.5e308,
        float("inf"),
        "",
        "x" * 300,
        [],
        {},
        [1, {}],
        {"a": []},
        "2024-13-45",
        "\x00",
        now,
    ]
    keys = [
        "sid",
        "did",
        "seq",
        "init",
        "started",
        "timestamp",
        "status",
        "errors",
        "duration",
        "attrs",
        "aggregates",
        "release",
        "environment",
        "fingerprint",
        "exception",
        "message",
        "logentry",
        "event_id",
        "sent_at",
        "dsn",
        "length",
        "type",
    ]
    bodies: list[bytes] = [rng.randbytes(rng.randint(0, 200)) for _ in range(40)]
    for _ in range(150):
        kind = rng.choice(["session", "sessions", "event", "attachment"])
        payload = {rng.choice(keys): rng.choice(weird_values) for _ in range(rng.randint(0, 6))}
        if rng.random() < 0.5:
            payload["attrs"] = {
                "release": rng.choice(["app@1", None, 3, "latest"]),
                "environment": rng.choice(weird_values),
            }
        if kind == "sessions" and rng.random() < 0.7:
            payload["aggregates"] = [
                {rng.choice([*keys, "exited", "crashed"]): rng.choice(weird_values)}
                for _ in range(3)
            ]
        raw = json.dumps(payload, allow_nan=True).encode()
        header = {rng.choice(keys): rng.choice(weird_values)}
        bodies.append(envelope(item(kind, raw, length=rng.random() < 0.5), headers=header))
        bodies.append(json.dumps(header).encode() + b"\n" + rng.randbytes(30))

    for body in bodies:
        encoding = rng.choice(["", "gzip", "br", "deflate"])
        response = post_envelope(client, project, body, HTTP_CONTENT_ENCODING=encoding)
        assert response.status_code < 500, (body, response.content)
        auth_less = post_envelope(client, project, body, auth=False)
        assert auth_less.status_code < 500, (body, auth_less.content)


@pytest.mark.parametrize(
    "bad_event",
    [{"message": "nul \x00 here"}, {"exc_type": "Nul\x00Error"}, {"exc_value": "a\x00b"},
     {"release": "nul\x00@1"}],
)  # fmt: skip
def test_null_characters_in_items_do_not_lose_the_envelope(client, project, bad_event):
    now = timezone.now()
    fields = {k: v for k, v in bad_event.items() if k in ("exc_type", "exc_value", "release")}
    payload = event(timestamp=now, **fields)
    if "message" in bad_event:
        payload.pop("exception", None)
        payload["message"] = bad_event["message"]
    body = envelope(
        item("session", session(release="mix@1", started=now)),
        item("session", session(release="nul\x00@1", started=now)),
        item("event", payload),
    )

    response = post_envelope(client, project, body)

    assert response.status_code == 200, response.content
    assert SessionRollup.objects.filter(release__version="mix@1").count() == 1
    assert not Release.objects.filter(version__contains="nul").exists()


@pytest.mark.parametrize("sent_at", ["9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z"])
def test_extreme_sent_at_drops_items_instead_of_failing(client, project, sent_at):
    now = timezone.now()
    body = envelope(item("session", session(started=now)), headers={"sent_at": sent_at})

    response = post_envelope(client, project, body)

    assert response.status_code == 200, response.content
