"""Envelopes of a project that arrive while it is being stored share one transaction
(releases/health/batching.py), and count exactly what they would count one by one.

PostgreSQL only: the envelopes are posted from threads, each with its own connection, while
another connection holds the organization's change stamp, so that the first envelope's
transaction stays open and the others pile up behind it."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.db.models import Sum
from django.utils import timezone
from rest_framework.test import APIClient

from releases.health.batching import _Batch, batcher
from releases.models import ChangeStamp, Project, Release, SessionRollup
from tests.envelopes import aggregates, envelope, item, post_envelope
from tests.test_user_counts import (
    Update,
    assert_counts_are_sane,
    assert_every_number_matches,
    body,
    random_updates,
    send,
    wait_for_a_blocked_writer,
)

pytestmark = [pytest.mark.postgresql, pytest.mark.django_db(transaction=True)]


def stamp(project: Project) -> int:
    return ChangeStamp.objects.get(organization_id=project.organization_id).value


def sessions_stored(project: Project) -> int:
    return SessionRollup.objects.filter(project=project).aggregate(n=Sum("sessions"))["n"] or 0


@contextmanager
def stamp_held(project: Project) -> Iterator[None]:
    """The organization's change stamp locked by another connection until the block ends:
    an envelope stored meanwhile keeps its transaction open at its last statement."""
    locked, release = threading.Event(), threading.Event()

    def hold() -> None:
        try:
            with transaction.atomic():
                ChangeStamp.objects.select_for_update().get(organization_id=project.organization_id)
                locked.set()
                release.wait(30)
        finally:
            connection.close()

    holder = threading.Thread(target=hold)
    holder.start()
    assert locked.wait(10)
    try:
        yield
    finally:
        release.set()
        holder.join(30)


def post_in_threads(project: Project, bodies: list[bytes]) -> Callable[[], list[int]]:
    """Post each body from a thread of its own; the returned call waits for their answers."""
    statuses: dict[int, int] = {}

    def post(n: int, data: bytes) -> None:
        try:
            statuses[n] = post_envelope(APIClient(), project, data).status_code
        finally:
            connection.close()

    threads = [threading.Thread(target=post, args=(n, data)) for n, data in enumerate(bodies)]
    for thread in threads:
        thread.start()

    def answers() -> list[int]:
        for thread in threads:
            thread.join(60)
        return [statuses.get(n, 0) for n in range(len(bodies))]

    return answers


def wait_for_batch(
    project: Project, envelopes: int, *, after: _Batch | None = None, timeout: float = 10.0
) -> _Batch:
    """Until the project's open batch (another than ``after``) holds ``envelopes`` envelopes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        batch = batcher._open.get(project.pk)
        if batch is not None and batch is not after and len(batch.parts) == envelopes:
            return batch
        time.sleep(0.01)
    raise AssertionError(f"no batch of {envelopes} envelopes formed")


def test_envelopes_that_wait_for_their_project_are_stored_in_one_transaction(project):
    now = timezone.now() - timedelta(minutes=1)
    rng = random.Random(3)  # noqa: S311 - reproducible data
    warm_up = [Update("app@1.0.0", "production", "warm-up", now - timedelta(hours=30))]
    send(APIClient(), project, warm_up)
    parts = [random_updates(rng, now, 40) for _ in range(5)]
    before = stamp(project)

    with stamp_held(project):
        first = post_in_threads(project, [body(parts[0])])
        wait_for_a_blocked_writer()  # the first envelope's transaction waits for the stamp
        rest = post_in_threads(project, [body(part) for part in parts[1:]])
        wait_for_batch(project, 4)

    assert first() == [200]
    assert rest() == [200] * 4
    # Two transactions: the first envelope's, then the batch of the four that waited.
    assert stamp(project) == before + 2
    updates = warm_up + [update for part in parts for update in part]
    assert sessions_stored(project) == len(updates)
    releases = sorted({update.release for update in updates})
    assert_every_number_matches(project, updates, releases, timezone.now())
    assert_counts_are_sane()


def test_a_redelivered_envelope_never_shares_a_batch_and_counts_once(project):
    now = timezone.now() - timedelta(minutes=1)
    send(APIClient(), project, [Update("app@1.0.0", "production", "warm-up", now)])
    # The same sessions item twice: its counts share one delivery key (docs/health.md §6.6).
    counts = item("sessions", aggregates([{"started": now.isoformat(), "exited": 7}]))
    redelivered = envelope(counts, headers={"sent_at": now.isoformat()})
    other = envelope(
        item("sessions", aggregates([{"started": now.isoformat(), "crashed": 2}])),
        headers={"sent_at": (now + timedelta(seconds=1)).isoformat()},
    )
    before_sessions, before = sessions_stored(project), stamp(project)

    with stamp_held(project):
        first = post_in_threads(project, [body([Update("app@1.0.0", "production", "u", now)])])
        wait_for_a_blocked_writer()
        batch = post_in_threads(project, [redelivered, other])
        shared = wait_for_batch(project, 2)
        again = post_in_threads(project, [redelivered])
        wait_for_batch(project, 1, after=shared)  # a batch of its own
        assert len(shared.parts) == 2

    assert first() == [200]
    assert batch() == [200, 200]
    assert again() == [200]
    assert sessions_stored(project) == before_sessions + 1 + 7 + 2
    # The first envelope, the batch; the redelivery stored nothing, so it raised no stamp.
    assert stamp(project) == before + 2


@contextmanager
def poisoned() -> Iterator[None]:
    """The database refuses the rollups of release ``app@poison`` (a trigger), as it would refuse
    any write it cannot take: the envelopes of that release fail at their rollups' insert."""
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE FUNCTION test_poison() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "IF EXISTS (SELECT 1 FROM releases_release WHERE id = NEW.release_id "
            "AND version = 'app@poison') THEN RAISE EXCEPTION 'poisoned release'; END IF; "
            "RETURN NEW; END $$"
        )
        cursor.execute(
            "CREATE TRIGGER test_poison BEFORE INSERT ON releases_sessionrollup "
            "FOR EACH ROW EXECUTE FUNCTION test_poison()"
        )
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TRIGGER test_poison ON releases_sessionrollup")
            cursor.execute("DROP FUNCTION test_poison()")


def test_when_a_batch_fails_each_envelope_is_stored_alone_and_only_the_bad_one_fails(project):
    now = timezone.now() - timedelta(minutes=1)
    send(APIClient(), project, [Update("app@1.0.0", "production", "warm-up", now)])
    good = [[Update("app@1.0.0", "production", f"user-{n}", now)] * (n + 1) for n in range(3)]
    bad = [Update("app@poison", "production", "user-x", now)]
    before_sessions, before = sessions_stored(project), stamp(project)

    with poisoned():
        with stamp_held(project):
            first = post_in_threads(project, [body(good[0])])
            wait_for_a_blocked_writer()
            batch = post_in_threads(project, [body(good[1]), body(bad), body(good[2])])
            wait_for_batch(project, 3)
        assert first() == [200]
        good_1, poisoned_answer, good_2 = batch()

    assert (good_1, good_2) == (200, 200)
    assert poisoned_answer == 500
    assert sessions_stored(project) == before_sessions + 1 + 2 + 3
    # The first envelope, then the two good ones alone: the failed batch raised nothing.
    assert stamp(project) == before + 3
    assert not Release.objects.filter(version="app@poison").exists()
