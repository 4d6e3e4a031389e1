"""Users by latest hour (docs/health.md §9.3): healthData's users, crashed users and 24 h users
are sums of counts, and must equal the distinct dids of the updates stored, whatever the order,
environments, windows, redeliveries, concurrency, retention and migration. Run on PostgreSQL
and on SQLite (``make test``)."""

from __future__ import annotations

import importlib
import io
import random
import threading
import time
import types
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.apps import apps
from django.core.management import call_command
from django.db import connection, transaction
from django.utils import timezone
from rest_framework.test import APIClient

from releases.health import reads, sorts
from releases.health.periods import DAY, hour_of, period_start
from releases.health.reads import HealthQuery
from releases.health.retention import retention_cutoff
from releases.models import (
    Environment,
    Project,
    Release,
    ReleaseUserLast,
    ReleaseUserSeen,
    SessionUserLast,
    SessionUserSeen,
)
from tests.envelopes import envelope, item, post_envelope, send_sessions, session

PERIODS = ("1h", "24h", "48h", "7d", "14d")
ENVS = ("production", "staging", "canary")


@dataclass(frozen=True)
class Update:
    release: str
    environment: str
    did: str
    started: datetime
    status: str = "exited"

    def payload(self) -> dict[str, Any]:
        return session(
            release=self.release,
            environment=self.environment,
            did=self.did,
            started=self.started,
            status=self.status,
        )


def send(client: APIClient, project: Project, updates: list[Update]) -> None:
    """In envelopes of at most 50 updates (the endpoint takes 100 session items)."""
    for start in range(0, len(updates), 50):
        send_sessions(client, project, *(u.payload() for u in updates[start : start + 50]))


def body(updates: list[Update]) -> bytes:
    return envelope(*(item("session", u.payload()) for u in updates))


def oracle(
    updates: list[Update], release: str, envs: tuple[str, ...] | None, start: datetime
) -> tuple[int, int]:
    """Distinct dids with an update (a crashed one) in an hour since ``start``."""
    mine = [
        u
        for u in updates
        if u.release == release
        and (envs is None or u.environment in envs)
        and hour_of(u.started) >= start
    ]
    return len({u.did for u in mine}), len({u.did for u in mine if u.status == "crashed"})


def env_ids(project: Project, names: tuple[str, ...] | None) -> tuple[int, ...] | None:
    if names is None:
        return None
    org = project.organization
    return tuple(
        Environment.objects.get_or_create(organization=org, name=name)[0].pk for name in names
    )


def expected_numbers(
    updates: list[Update],
    release: str,
    envs: tuple[str, ...] | None,
    period: str,
    now: datetime,
    floor: datetime | None = None,
) -> tuple[int, int, float | None]:
    """(users, 24 h users, crash-free users) as healthData computes them from the oracle;
    ``floor``: retention's cutoff (nothing older is kept)."""
    start, day = period_start(period, now), hour_of(now - DAY)
    if floor is not None:
        start, day = max(start, floor), max(day, floor)
    users, crashed = oracle(updates, release, envs, start)
    users_24h, _ = oracle(updates, release, envs, day)
    return users, users_24h, (100 - crashed / users * 100 if users else None)


def numbers(
    project: Project, release: str, envs: tuple[str, ...] | None, period: str, now: datetime
) -> tuple[int, int, float | None]:
    pair = (project.pk, Release.objects.get(version=release).pk)
    query = HealthQuery(
        summary_period=period, stats_period=None, environment_ids=env_ids(project, envs)
    )
    health = reads.health_data([pair], query, now)[pair]
    return health.total_users or 0, health.total_users_24h or 0, health.crash_free_users


FILTERS: list[tuple[str, ...] | None] = [
    None,
    ("production",),
    ("staging",),
    ("canary",),
    ("production", "staging"),
    ENVS,
]


def assert_every_number_matches(
    project: Project,
    updates: list[Update],
    releases: list[str],
    now: datetime,
    floor: datetime | None = None,
) -> None:
    for release in releases:
        for envs in FILTERS:
            for period in PERIODS:
                assert numbers(project, release, envs, period, now) == expected_numbers(
                    updates, release, envs, period, now, floor
                ), (release, envs, period)


def assert_counts_are_sane() -> None:
    """No count below zero, and every did counted once per table at its latest hour."""
    for model in (SessionUserLast, ReleaseUserLast):
        assert not model.objects.filter(users__lt=0).exists()
        assert not model.objects.filter(crashed__lt=0).exists()
    for model, seen in ((SessionUserLast, SessionUserSeen), (ReleaseUserLast, ReleaseUserSeen)):
        assert sum(model.objects.values_list("users", flat=True)) == seen.objects.count()
        crashed = seen.objects.filter(last_crashed_hour__isnull=False).count()
        assert sum(model.objects.values_list("crashed", flat=True)) == crashed


def random_updates(rng: random.Random, now: datetime, count: int) -> list[Update]:
    """Updates of two releases over three environments and the last 110 hours (updates older
    than five days are refused), a fifth of them crashed."""
    return [
        Update(
            release=rng.choice(("app@1.0.0", "app@2.0.0")),
            environment=rng.choice(ENVS),
            did=f"user-{rng.randrange(15)}",
            started=now - timedelta(hours=rng.randrange(110), minutes=rng.randrange(60)),
            status=rng.choice(("exited", "exited", "ok", "crashed", "abnormal")),
        )
        for _ in range(count)
    ]


@pytest.mark.django_db
def test_users_equal_distinct_dids_for_every_window_and_environment_filter(api_client, project):
    now = timezone.now() - timedelta(minutes=1)
    rng = random.Random("user counts")  # noqa: S311 - reproducible test data
    updates = random_updates(rng, now, 240)
    # Envelopes in random order: a did's older hours often arrive after its newer ones.
    for start in range(0, len(updates), 20):
        send(api_client, project, updates[start : start + 20])

    assert_every_number_matches(project, updates, ["app@1.0.0", "app@2.0.0"], timezone.now())
    assert_counts_are_sane()
    # One row per hour (and environment), not per user.
    hours = {(u.release, u.environment, hour_of(u.started)) for u in updates}
    assert SessionUserLast.objects.count() <= len(hours)


@pytest.mark.django_db
def test_out_of_order_hours_and_crashes_count_each_did_at_its_latest_hours(api_client, project):
    now = timezone.now() - timedelta(minutes=1)
    recent, old = now - timedelta(hours=1), now - timedelta(hours=30)
    updates = [
        # Seen now, then an older update arrives: still a user of the last 24 h.
        Update("app@1.0.0", "production", "late", recent),
        # Crashed 30 hours ago, fine since: crashed in 14 days, not in 24 h.
        Update("app@1.0.0", "production", "healed", old, "crashed"),
        Update("app@1.0.0", "production", "healed", recent),
        # Fine 30 hours ago, crashed since: crashed in both windows.
        Update("app@1.0.0", "production", "broke", old),
        Update("app@1.0.0", "production", "broke", recent, "crashed"),
    ]
    send(api_client, project, updates)
    late_old = Update("app@1.0.0", "production", "late", old)
    send(api_client, project, [late_old])
    updates.append(late_old)
    # The crash arrives after the recovery it preceded.
    healed_twice = [
        Update("app@1.0.0", "staging", "healed", recent),
        Update("app@1.0.0", "staging", "healed", old, "crashed"),
    ]
    send(api_client, project, healed_twice[:1])
    send(api_client, project, healed_twice[1:])
    updates += healed_twice
    read_at = timezone.now()

    assert numbers(project, "app@1.0.0", None, "24h", read_at) == (3, 3, 100 - 1 / 3 * 100)
    assert numbers(project, "app@1.0.0", None, "14d", read_at) == (3, 3, 100 - 2 / 3 * 100)
    assert numbers(project, "app@1.0.0", ("staging",), "24h", read_at) == (1, 1, 100.0)
    assert numbers(project, "app@1.0.0", ("staging",), "14d", read_at) == (1, 1, 0.0)
    assert_every_number_matches(project, updates, ["app@1.0.0"], read_at)
    assert_counts_are_sane()


@pytest.mark.django_db
def test_a_did_of_two_environments_counts_once_with_or_without_a_filter(api_client, project):
    now = timezone.now() - timedelta(minutes=1)
    updates = [
        Update("app@1.0.0", "production", "both", now - timedelta(hours=2)),
        Update("app@1.0.0", "staging", "both", now - timedelta(hours=40), "crashed"),
        Update("app@1.0.0", "staging", "only-staging", now),
    ]
    send(api_client, project, updates)
    read_at = timezone.now()

    assert numbers(project, "app@1.0.0", None, "14d", read_at) == (2, 2, 50.0)
    assert numbers(project, "app@1.0.0", ("production", "staging"), "14d", read_at) == (
        2,
        2,
        50.0,
    )
    assert numbers(project, "app@1.0.0", ("staging",), "14d", read_at) == (2, 1, 50.0)
    assert numbers(project, "app@1.0.0", ("production",), "14d", read_at) == (1, 1, 100.0)
    assert_every_number_matches(project, updates, ["app@1.0.0"], read_at)


@pytest.mark.django_db
def test_a_redelivered_envelope_counts_once(api_client, project):
    now = timezone.now() - timedelta(minutes=1)
    updates = [
        Update("app@1.0.0", "production", f"user-{n}", now - timedelta(hours=n), status)
        for n in range(6)
        for status in ("exited", "crashed")
    ]
    envelope_body = body(updates)
    for _ in range(3):
        assert post_envelope(api_client, project, envelope_body).status_code == 200

    assert_every_number_matches(project, updates, ["app@1.0.0"], timezone.now())
    assert_counts_are_sane()


@pytest.mark.django_db
def test_health_sorts_by_users_rank_by_the_same_numbers(api_client, project):
    now = timezone.now() - timedelta(minutes=1)
    rng = random.Random("user sorts")  # noqa: S311 - reproducible test data
    updates = random_updates(rng, now, 120)
    send(api_client, project, updates)
    read_at = timezone.now()
    releases = Release.objects.filter(version__in=["app@1.0.0", "app@2.0.0"])

    for envs in FILTERS:
        for sort in ("users", "users_24h", "crash_free_users"):
            value = sorts.health_sort_value(
                sort,
                now=read_at,
                project=project.pk,
                release="pk",
                environment_ids=env_ids(project, envs),
            )
            got = dict(releases.annotate(value=value).values_list("version", "value"))
            start = hour_of(read_at - DAY) if sort == "users_24h" else period_start("14d", read_at)
            want = {}
            for version in got:
                users, crashed = oracle(updates, version, envs, start)
                want[version] = (
                    (crashed / users if users else None)
                    if sort == "crash_free_users"
                    else (float(users) or None)
                )
            assert got == pytest.approx(want), (sort, envs)


@pytest.mark.django_db
def test_retention_keeps_the_counts_exact_for_windows_older_than_the_cutoff(api_client, project):
    now = timezone.now() - timedelta(minutes=1)
    updates = [
        # Seen three days ago only: deleted by a two-day retention.
        Update("app@1.0.0", "production", "gone", now - timedelta(hours=75)),
        # Crashed three days ago, seen since: kept, its old crash forgotten.
        Update("app@1.0.0", "production", "kept", now - timedelta(hours=80), "crashed"),
        Update("app@1.0.0", "production", "kept", now - timedelta(hours=3)),
        Update("app@1.0.0", "staging", "kept", now - timedelta(hours=76), "crashed"),
        Update("app@1.0.0", "staging", "kept", now - timedelta(hours=5)),
        Update("app@1.0.0", "staging", "recent", now - timedelta(hours=1), "crashed"),
    ]
    send(api_client, project, updates)

    call_command("cleanup", "--days", "2", stdout=io.StringIO())
    cutoff = retention_cutoff(now=timezone.now(), days=2)

    # Windows of 7 and 14 days start before the cutoff: they count what is kept, exactly.
    assert_every_number_matches(project, updates, ["app@1.0.0"], timezone.now(), floor=cutoff)
    assert not SessionUserLast.objects.filter(hour__lt=cutoff).exists()
    assert not ReleaseUserLast.objects.filter(hour__lt=cutoff).exists()
    assert_counts_are_sane()

    # A new crash of the kept did moves nothing at the forgotten hour.
    again = [Update("app@1.0.0", "production", "kept", timezone.now(), "crashed")]
    send(api_client, project, again)
    updates += again
    assert_every_number_matches(project, updates, ["app@1.0.0"], timezone.now(), floor=cutoff)
    assert not SessionUserLast.objects.filter(hour__lt=cutoff).exists()
    assert_counts_are_sane()


@pytest.mark.django_db
def test_the_migration_counts_stored_users_as_ingestion_does(api_client, project):
    now = timezone.now() - timedelta(minutes=1)
    rng = random.Random("user counts migration")  # noqa: S311 - reproducible test data
    updates = random_updates(rng, now, 200)
    for start in range(0, len(updates), 25):
        send(api_client, project, updates[start : start + 25])

    def stored() -> dict[str, set[tuple[Any, ...]]]:
        """The counts (zeros left out: ingestion may keep them) and the env-less seen rows."""
        last = SessionUserLast.objects.exclude(users=0, crashed=0)
        release_last = ReleaseUserLast.objects.exclude(users=0, crashed=0)
        columns = ("project_id", "release_id", "hour", "users", "crashed")
        return {
            "last": set(last.values_list("environment_id", *columns)),
            "release last": set(release_last.values_list(*columns)),
            "release seen": set(
                ReleaseUserSeen.objects.values_list(
                    "project_id", "release_id", "did", "last_hour", "last_crashed_hour"
                )
            ),
        }

    incremental = stored()
    for model in (SessionUserLast, ReleaseUserLast, ReleaseUserSeen):
        model.objects.all().delete()
    migration = importlib.import_module("releases.migrations.0009_user_counts")
    editor = types.SimpleNamespace(connection=connection, quote_name=connection.ops.quote_name)

    migration.count_users(apps, editor)

    assert stored() == incremental
    assert incremental["last"]
    assert_every_number_matches(project, updates, ["app@1.0.0", "app@2.0.0"], timezone.now())


# -- Concurrency (PostgreSQL) ---------------------------------------------------------------


def wait_for_a_blocked_writer(timeout: float = 10.0) -> None:
    """Until another connection waits for a lock this transaction holds."""
    deadline = time.monotonic() + timeout
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            # Activity is read once per transaction unless its snapshot is dropped.
            cursor.execute("SELECT pg_stat_clear_snapshot()")
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            (waiting,) = cursor.fetchone()
            if waiting:
                return
            time.sleep(0.02)
    raise AssertionError("the second envelope never waited for the first")


def store_overlapping(project: Project, first: list[Update], second: list[Update]) -> None:
    """``first`` is stored in a transaction that stays open until ``second``'s envelope, in
    another connection, waits for its rows; then both commit."""
    stored_first = threading.Event()
    errors: list[BaseException] = []

    def run_first() -> None:
        try:
            with transaction.atomic():
                assert post_envelope(APIClient(), project, body(first)).status_code == 200
                stored_first.set()
                wait_for_a_blocked_writer()
        except BaseException as exc:  # reported by the test's thread
            errors.append(exc)
            stored_first.set()
        finally:
            connection.close()

    def run_second() -> None:
        try:
            assert stored_first.wait(10)
            assert post_envelope(APIClient(), project, body(second)).status_code == 200
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run_first), threading.Thread(target=run_second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors


@pytest.mark.postgresql  # two connections to one database
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("first_age", "second_age", "first_status", "second_status"),
    [
        (2, 2, "exited", "exited"),  # the same new dids, the same hour
        (40, 2, "crashed", "exited"),  # the second moves them later
        (2, 40, "exited", "crashed"),  # the second is older: moves nothing but crashes
        (3, 1, "crashed", "crashed"),
    ],
)
def test_concurrent_envelopes_of_the_same_new_dids_keep_the_counts_exact(
    api_client, project, first_age, second_age, first_status, second_status
):
    now = timezone.now() - timedelta(minutes=1)
    # The release, environments and their links exist: the second envelope's first wait is
    # in the statement of the rollups and users (the one that counts).
    warm_up = [Update("app@1.0.0", env, "warm-up", now - timedelta(hours=100)) for env in ENVS]
    send(api_client, project, warm_up)
    dids = [f"user-{n}" for n in range(30)]
    first = [
        Update("app@1.0.0", ENVS[n % 2], did, now - timedelta(hours=first_age), first_status)
        for n, did in enumerate(dids)
    ]
    # Half the dids again in the same environment, half in the other one, and new dids.
    second = [
        Update(
            "app@1.0.0",
            ENVS[n % 2 if n < 15 else 1 - n % 2],
            did,
            now - timedelta(hours=second_age),
            second_status,
        )
        for n, did in enumerate(dids)
    ] + [Update("app@1.0.0", "production", f"new-{n}", now) for n in range(5)]

    store_overlapping(project, first, second)

    updates = warm_up + first + second
    assert_every_number_matches(project, updates, ["app@1.0.0"], timezone.now())
    assert_counts_are_sane()
