"""Hostile envelopes (docs/health.md §6.2, §6.6, §6.9): Relay's caps, text PostgreSQL cannot
hold, deep nesting, and redelivery of the same envelope."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from releases.models import (
    IngestOutcome,
    IssueGroup,
    Release,
    ReleaseProject,
    ReleaseProjectEnvironment,
    SessionRollup,
    SessionUser,
)

from .envelopes import (
    aggregates,
    auth_header,
    envelope,
    event,
    item,
    post_envelope,
    session,
    ts,
)

pytestmark = pytest.mark.django_db


def totals() -> dict[str, int]:
    rows = SessionRollup.objects.all()
    return {
        name: sum(getattr(r, name) for r in rows)
        for name in ("sessions", "crashed", "errored", "updates")
    }


def outcomes() -> dict[tuple[str, str], int]:
    return {
        (category, reason): quantity
        for category, reason, quantity in IngestOutcome.objects.values_list(
            "category", "reason", "quantity"
        )
    }


def deep(levels: int) -> bytes:
    return b'{"a":' * levels + b"1" + b"}" * levels


def with_extra(payload: dict[str, Any], extra: bytes) -> bytes:
    """``payload`` as JSON with ``"extra": <extra>`` spliced in as raw bytes."""
    return json.dumps(payload).encode()[:-1] + b', "extra": ' + extra + b"}"


# -- Caps ------------------------------------------------------------------------------------


def largest_envelope(now: Any, **headers: Any) -> bytes:
    """Every default cap reached: 1,000 items, of which 100 session items (99 updates and one
    aggregate of 10,000 buckets), one event, and 899 items of a type we skip."""
    buckets = [
        {"started": ts(now - timedelta(minutes=n % 7000)), "exited": 1, "crashed": n % 2}
        for n in range(10_000)
    ]
    items = [
        item("session", session(started=now, release=f"app@1.0.{n}", did=f"user-{n}"))
        for n in range(99)
    ]
    items.append(item("sessions", aggregates(buckets)))
    items.append(item("event", event(timestamp=now)))
    items += [item("client_report", {"discarded_events": []})] * 899
    return envelope(*items, headers=headers)


def test_the_largest_allowed_envelope_is_stored(client, project):
    now = timezone.now()
    body = largest_envelope(now)
    assert len(body) < 20 * 1024 * 1024

    response = post_envelope(client, project, body)

    assert response.status_code == 200, response.content
    assert totals() == {
        "sessions": 99 + 10_000 + 5_000,  # 10,000 exited and 5,000 crashed counts
        "crashed": 5_000,
        "errored": 5_000,
        "updates": 99 + 15_000,
    }
    assert Release.objects.count() == 99  # app@1.0.0 to app@1.0.98
    assert SessionUser.objects.count() == 99
    assert IssueGroup.objects.count() == 1
    assert ReleaseProject.objects.get(release__version="app@1.0.0").new_groups == 1


def over_cap(now: Any, cap: str) -> bytes:
    if cap == "items":
        return envelope(*[item("client_report", {})] * 1001)
    if cap == "sessions":
        return envelope(
            *[item("session", session(started=now))] * 50,
            *[item("sessions", aggregates([{"started": ts(now), "exited": 1}]))] * 51,
        )
    if cap == "events":
        return envelope(item("event", event(timestamp=now)), item("event", event(timestamp=now)))
    if cap == "event size":
        return envelope(item("event", event(timestamp=now, message="x" * 1024 * 1024)))
    if cap == "session size":
        return envelope(item("session", session(started=now, extra="x" * 1024 * 1024)))
    assert cap == "buckets"
    half = [{"started": ts(now), "exited": 1}] * 5_000
    return envelope(
        item("sessions", aggregates(half)), item("sessions", aggregates([*half, half[0]]))
    )


@pytest.mark.parametrize(
    ("cap", "detail"),
    [
        ("items", "Envelope has more than 1000 items"),
        ("sessions", "Envelope has more than 100 session and sessions items"),
        ("events", "Envelope has more than 1 event items"),
        ("event size", "Item 1 (event) is larger than 1048576 bytes"),
        ("session size", "Item 1 (session) is larger than 1048576 bytes"),
        ("buckets", "Envelope has more than 10000 aggregate buckets"),
    ],
)
def test_an_envelope_over_a_cap_is_refused_whole_with_413(client, project, cap, detail):
    now = timezone.now()
    body = envelope(item("session", session(started=now)), *over_cap(now, cap).split(b"\n", 1)[1:])

    response = post_envelope(client, project, body)

    assert response.status_code == 413, response.content
    assert response.json() == {"detail": detail.replace("Item 1", "Item 2")}
    assert totals()["sessions"] == 0
    assert not IssueGroup.objects.exists()


def test_caps_come_from_the_settings(client, project, settings):
    settings.ENVELOPE_MAX_EVENTS = 3
    settings.ENVELOPE_MAX_SESSIONS = 1
    now = timezone.now()
    events = [item("event", event(timestamp=now, exc_type=f"E{n}")) for n in range(3)]

    assert post_envelope(client, project, envelope(*events)).status_code == 200
    two_sessions = envelope(*[item("session", session(started=now))] * 2)
    assert post_envelope(client, project, two_sessions).status_code == 413
    assert IssueGroup.objects.count() == 3


@pytest.mark.parametrize("count", [2, 50])
def test_events_cost_the_same_queries_whatever_their_number(
    client, project, settings, django_assert_num_queries, count
):
    settings.ENVELOPE_MAX_EVENTS = 50
    now = timezone.now()
    post_envelope(client, project, envelope(item("event", event(timestamp=now, exc_type="W"))))
    body = envelope(*[item("event", event(timestamp=now, exc_value=f"v{n}")) for n in range(count)])
    header = auth_header(project)

    # The key; SAVEPOINT; environment insert and select, release-project links,
    # release-project-environment rows, their first/last seen, the groups' insert, new issues
    # of the release-project-environment, new groups of the release-project, the change stamp;
    # RELEASE SAVEPOINT.
    with django_assert_num_queries(12):
        response = post_envelope(client, project, body, auth=False, HTTP_X_SENTRY_AUTH=header)
    assert response.status_code == 200

    assert IssueGroup.objects.count() == 1 + count
    assert ReleaseProject.objects.get().new_groups == 1 + count


def test_malformed_framing_is_still_400_not_413(client, project):
    body = b"{}\n" + b'{"type": "event", "length": 5000000}\n{}\n'

    response = post_envelope(client, project, body)

    assert response.status_code == 400
    assert response.json() == {"detail": "Invalid envelope: item 1 is shorter than its length"}


# -- Text PostgreSQL cannot hold ---------------------------------------------------------------

LONE = "a\ud800"  # json.dumps writes it as the escape "a\\ud800"


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(lambda now: ("session", session(started=now, release=LONE)), id="release"),
        pytest.param(
            lambda now: ("session", session(started=now, environment=LONE)), id="environment"
        ),
        pytest.param(lambda now: ("session", session(started=now, did=LONE)), id="did"),
        pytest.param(
            lambda now: ("sessions", aggregates([{"started": ts(now), "exited": 1}], release=LONE)),
            id="aggregate release",
        ),
        pytest.param(lambda now: ("event", event(timestamp=now, release=LONE)), id="event release"),
        pytest.param(
            lambda now: ("event", event(timestamp=now, exception=None, message=LONE)),
            id="event message",
        ),
        pytest.param(
            lambda now: ("event", event(timestamp=now, extra={"k": {LONE: 1}})), id="ignored key"
        ),
    ],
)
def test_a_lone_surrogate_drops_the_item_as_invalid_json(client, project, payload):
    now = timezone.now()
    kind, body = payload(now)
    raw = item(kind, body)
    assert b"\\ud800" in raw

    response = post_envelope(client, project, envelope(raw, item("session", session(started=now))))

    assert response.status_code == 200, response.content
    category = "event" if kind == "event" else "session"
    assert outcomes() == {(category, "invalid_json"): 1}
    assert totals()["sessions"] == 1  # the other item is stored
    assert list(Release.objects.values_list("version", flat=True)) == ["app@1.0.0"]
    assert not IssueGroup.objects.exists()


def test_a_surrogate_pair_is_text_like_any_other(client, project):
    now = timezone.now()
    body = envelope(item("session", session(started=now, did="\U0001f600 user")))

    assert post_envelope(client, project, body).status_code == 200
    assert totals()["sessions"] == 1
    assert SessionUser.objects.count() == 1


def test_a_lone_surrogate_in_a_header_is_a_400(client, project):
    body = b'{"event_id": "a\\ud800"}\n' + item("session", session(started=timezone.now()))

    response = post_envelope(client, project, body)

    assert response.status_code == 400
    assert response.json() == {"detail": "Invalid envelope: the envelope header is not valid JSON"}


@pytest.mark.parametrize("key", ["%00", "abc%00def", "%ED%A0%80"])
def test_a_key_no_column_can_hold_is_unknown(client, project, key):
    body = envelope(item("session", session(started=timezone.now())))

    response = client.post(
        f"/api/{project.pk}/envelope/?sentry_key={key}",
        data=body,
        content_type="application/x-sentry-envelope",
    )

    assert response.status_code == 401
    assert response.json() == {"detail": "Unknown public key."}


def test_a_nul_in_the_auth_header_key_is_unknown(client, project):
    body = envelope(item("session", session(started=timezone.now())))

    response = post_envelope(
        client, project, body, auth=False, HTTP_X_SENTRY_AUTH="Sentry sentry_key=ab\x00cd"
    )

    assert response.status_code == 401


def test_a_dsn_header_with_a_lone_surrogate_is_refused(client, project):
    body = f'{{"dsn": "http://k\\ud800@h/{project.pk}"}}\n'.encode() + item(
        "session", session(started=timezone.now())
    )

    response = post_envelope(client, project, body, auth=False)

    assert response.status_code == 401  # the header is unreadable, so no key was given


@pytest.mark.parametrize("status", [["exited"], {"a": 1}, 1])
def test_a_status_of_another_json_type_is_invalid_status(client, project, status):
    body = envelope(item("session", session(started=timezone.now(), status=status)))

    assert post_envelope(client, project, body).status_code == 200
    assert outcomes() == {("session", "invalid_status"): 1}


# -- Deep nesting ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "payload"),
    [
        pytest.param("session", deep(100_000), id="100,000-deep session"),
        pytest.param("event", deep(100_000), id="100,000-deep event"),
        pytest.param(
            "event", with_extra(event(timestamp=timezone.now()), deep(900)), id="900-deep extra"
        ),
        pytest.param(
            "session", with_extra(session(started=timezone.now()), deep(900)), id="900-deep session"
        ),
        pytest.param(
            "event", with_extra(event(timestamp=timezone.now()), deep(129)), id="129-deep extra"
        ),
    ],
)
def test_nesting_deeper_than_128_drops_the_item(client, project, kind, payload):
    now = timezone.now()
    body = envelope(item(kind, payload), item("session", session(started=now)))

    response = post_envelope(client, project, body)

    assert response.status_code == 200, response.content
    assert outcomes() == {(kind, "invalid_json"): 1}
    assert totals()["sessions"] == 1
    assert not IssueGroup.objects.exists()


def test_nesting_of_128_is_accepted(client, project):
    payload = with_extra(event(timestamp=timezone.now()), deep(127))  # 128 with the event

    assert post_envelope(client, project, envelope(item("event", payload))).status_code == 200
    assert IssueGroup.objects.count() == 1
    assert outcomes() == {}


@pytest.mark.parametrize("levels", [129, 100_000])
def test_a_deep_envelope_header_is_a_400(client, project, levels):
    body = deep(levels) + b"\n" + item("session", session(started=timezone.now()))

    response = post_envelope(client, project, body)

    assert response.status_code == 400
    assert response.json() == {"detail": "Invalid envelope: the envelope header is not valid JSON"}


# -- Redelivery --------------------------------------------------------------------------------


def deliver_twice(client: Any, project: Any, body: bytes) -> None:
    for _ in range(2):
        response = post_envelope(client, project, body)
        assert response.status_code == 200, response.content


def test_a_session_update_without_timestamp_redelivered_counts_once(client, project):
    now = timezone.now()
    payload = session(started=now, status="crashed", did="u1")
    del payload["timestamp"]

    deliver_twice(client, project, envelope(item("session", payload)))

    assert totals() == {"sessions": 1, "crashed": 1, "errored": 1, "updates": 1}


def test_a_session_update_without_sid_or_seq_redelivered_counts_once(client, project):
    now = timezone.now()
    payload = session(started=now, status="crashed")
    del payload["sid"], payload["timestamp"]
    body = envelope(item("session", payload), headers={"sent_at": ts(now)})

    deliver_twice(client, project, body)

    assert totals() == {"sessions": 1, "crashed": 1, "errored": 1, "updates": 1}


def test_sid_less_updates_of_two_envelopes_are_two_sessions(client, project):
    now = timezone.now()
    payload = session(started=now, status="exited")
    del payload["sid"]
    for sent in (now, now + timedelta(seconds=1)):
        body = envelope(item("session", payload), headers={"sent_at": ts(sent)})
        assert post_envelope(client, project, body).status_code == 200

    assert totals()["sessions"] == 2


def test_an_aggregate_redelivered_with_its_envelope_counts_once(client, project):
    now = timezone.now()
    bucket = {"started": ts(now), "exited": 3, "crashed": 1}
    body = envelope(
        item("sessions", aggregates([bucket])),
        item("sessions", aggregates([bucket])),  # a second item: counted, once
        headers={"sent_at": ts(now)},
    )

    deliver_twice(client, project, body)

    assert totals() == {"sessions": 8, "crashed": 2, "errored": 2, "updates": 4}


def test_the_same_aggregate_in_two_flushes_counts_twice(client, project):
    """Two flushes of one minute's bucket with the same counts are two real reports."""
    now = timezone.now()
    bucket = {"started": ts(now.replace(second=0)), "exited": 1}
    for sent in (now, now + timedelta(seconds=60)):
        body = envelope(item("sessions", aggregates([bucket])), headers={"sent_at": ts(sent)})
        assert post_envelope(client, project, body).status_code == 200

    assert totals()["sessions"] == 2


def test_aggregates_of_an_envelope_without_sent_at_are_not_deduplicated(client, project):
    """As Relay: nothing tells one flush delivered twice from two flushes of the same counts."""
    body = envelope(item("sessions", aggregates([{"started": ts(timezone.now()), "exited": 1}])))

    deliver_twice(client, project, body)

    assert totals()["sessions"] == 2


def test_a_mixed_envelope_redelivered_counts_once(client, project, api_client):
    now = timezone.now()
    update = session(started=now, status="exited", did="u1")
    del update["timestamp"]
    body = envelope(
        item("session", update),
        item("sessions", aggregates([{"started": ts(now), "exited": 2, "errored": 1}])),
        item("event", event(timestamp=now)),
        headers={"sent_at": ts(now), "event_id": "e" * 32},
    )

    deliver_twice(client, project, body)

    response = api_client.get(
        f"/api/0/organizations/acme/releases/app@1.0.0/?health=1&project={project.pk}"
    )
    data = response.json()["projects"][0]["healthData"]
    assert data["totalSessions"] == 4
    assert data["sessionsErrored"] == 1
    assert ReleaseProject.objects.get().new_groups == 1
    rpe = ReleaseProjectEnvironment.objects.get()
    assert (rpe.new_issues_count, rpe.first_seen, rpe.last_seen) == (1, now, now)


def test_updates_of_one_session_still_count_as_updates(client, project):
    now = timezone.now()
    sid = "44444444-4444-4444-8444-444444444444"
    first = session(sid=sid, started=now, status="ok")
    final = session(sid=sid, started=now, status="exited", init=False, duration=5)
    for payload in (first, final):
        del payload["timestamp"]
        assert post_envelope(client, project, envelope(item("session", payload))).status_code == 200

    assert totals() == {"sessions": 1, "crashed": 0, "errored": 0, "updates": 2}
