"""How delivery keys are stored (docs/health.md §6.6): each under the hour its update started,
as sent, so that the keys inserted together are neighbours in the table's index; keys stored
in their first form, before they began with their hour, still match."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import pytest
from django.db.models import Sum
from django.utils import timezone

from releases.models import SessionRollup, SessionUpdateKey

from .envelopes import aggregates, envelope, item, post_envelope, session, ts
from .test_items import first_digest, first_session_key

pytestmark = pytest.mark.django_db


def hour(moment: datetime) -> int:
    return int(moment.timestamp()) // 3600


def stored_keys(project) -> list[uuid.UUID]:
    return list(
        SessionUpdateKey.objects.filter(project=project)
        .order_by("key")
        .values_list("key", flat=True)
    )


def sessions_counted() -> int:
    return SessionRollup.objects.aggregate(n=Sum("sessions"))["n"] or 0


def test_keys_begin_with_the_hour_their_update_started_and_keep_its_digest(client, project):
    now = timezone.now()
    payloads = [session(started=now - timedelta(hours=h), did=f"u{h}") for h in (0, 26, 3)]

    post_envelope(client, project, envelope(*(item("session", p) for p in payloads)))

    keys = stored_keys(project)
    starts = sorted(now - timedelta(hours=h) for h in (0, 26, 3))
    assert [key.int >> 96 for key in keys] == [hour(moment) for moment in starts]
    # The rest of each key is its digest's (the first formula, tests/test_items.py).
    digests = {first_session_key(p, None).bytes[4:] for p in payloads}
    assert {key.bytes[4:] for key in keys} == digests


def test_an_aggregate_key_begins_with_the_hour_of_sent_at(client, project):
    now = timezone.now()
    sent_at = ts(now - timedelta(hours=2))
    payload = aggregates([{"started": ts(now - timedelta(hours=30)), "exited": 2}])
    body = envelope(item("sessions", payload), headers={"sent_at": sent_at})

    post_envelope(client, project, body)

    (key,) = stored_keys(project)
    digest = first_digest("sessions", 0, sent_at, item("sessions", payload).split(b"\n", 1)[1])
    assert key.int >> 96 == hour(now - timedelta(hours=2))
    assert key.bytes[4:] == digest.bytes[4:]


def test_the_same_update_counts_once_however_much_its_envelopes_clocks_were_corrected(
    client, project
):
    """The hour is the update's as sent: the same bytes replayed later (an offline cache) are
    moved by a larger clock correction, here into another hour, and still count once."""
    now = timezone.now()
    started = now - timedelta(hours=7, minutes=10)  # by the client's clock
    update = session(started=started, did="u1")
    for drift in (timedelta(hours=5), timedelta(hours=7)):  # sent, then replayed hours later
        body = envelope(item("session", update), headers={"sent_at": ts(now - drift)})
        assert post_envelope(client, project, body).status_code == 200

    assert sessions_counted() == 1
    (key,) = stored_keys(project)
    assert key.int >> 96 == hour(started)


def test_an_update_whose_key_is_stored_in_its_first_form_counts_once(client, project):
    """Keys received before keys began with their hour are pruned six days later, like the
    others; until then, they match."""
    now = timezone.now()
    delivered = session(started=now - timedelta(minutes=5), did="u1")
    new = session(started=now - timedelta(minutes=5), did="u2")
    first_form = first_session_key(delivered, None)
    SessionUpdateKey.objects.create(project=project, key=first_form, received=now)

    body = envelope(item("session", delivered), item("session", new))
    for _ in range(2):
        assert post_envelope(client, project, body).status_code == 200

    assert sessions_counted() == 1
    assert set(stored_keys(project)) == {
        first_form,
        uuid.UUID(
            int=hour(now - timedelta(minutes=5)) << 96 | first_session_key(new, None).int % 2**96
        ),
    }
