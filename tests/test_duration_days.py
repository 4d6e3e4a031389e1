"""Duration percentiles from day rows plus the window's first, partial day of hourly rows
(docs/health.md §9.4): the same numbers as from the hourly rows alone, on both backends."""

from __future__ import annotations

import importlib
import random
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from fractions import Fraction

import pytest
from django.apps import apps
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from releases.health import reads
from releases.health.items import Items, SessionUpdate
from releases.health.periods import hour_of, period_start
from releases.health.reads import HealthQuery
from releases.health.sketch import representative
from releases.health.store import store
from releases.models import Environment, Project, Release, SessionDuration, SessionDurationDay
from tests.envelopes import envelope, item, post_envelope, session
from tests.factories import EnvironmentFactory, ReleaseFactory

pytestmark = pytest.mark.django_db

RELEASES = ("app@1.0.0", "app@2.0.0")
ENVIRONMENTS = ("production", "staging")
# Reads at these moments: windows of whole days start mid-day (14:00) or at midnight.
MID_DAY = datetime(2026, 3, 20, 14, 30, tzinfo=UTC)
MIDNIGHT = datetime(2026, 3, 20, 0, 20, tzinfo=UTC)
HOUR = timedelta(hours=1)


@dataclass(frozen=True)
class Exited:
    release: str
    environment: str
    started: datetime
    duration_s: float


def midnight_of(moment: datetime) -> datetime:
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def sessions_around(rng: random.Random, start: datetime, now: datetime) -> list[Exited]:
    """Exited sessions from the day before ``start``'s day up to ``now``: long ones before
    ``start`` (outside the window), short ones in the hours from ``start`` to the end of its
    day, and ordinary ones on every day after, today's included."""
    found: list[Exited] = []

    def add(hour: datetime, low: int, high: int, n: int) -> None:
        for _ in range(n):
            started = hour + timedelta(seconds=rng.randrange(3600))
            if started > now:
                continue
            found.append(
                Exited(
                    rng.choice(RELEASES),
                    rng.choice(ENVIRONMENTS),
                    started,
                    rng.randint(low, high) + rng.choice((0, 0.25, 0.5)),
                )
            )

    hour = midnight_of(start) - 4 * HOUR  # the previous day's last hours
    while hour < start:  # before the window: must not count
        add(hour, 2_000, 3_000, 4)
        hour += HOUR
    day_end = midnight_of(start) + timedelta(days=1)
    while hour < day_end:  # the window's first day from start on: must count
        add(hour, 1, 4, 4)
        hour += HOUR
    while hour <= now:  # whole days, a few sessions a day, and today up to now
        if rng.random() < 0.15 or hour == hour_of(now):
            add(hour, 5, 900, 3)
        hour += HOUR
    return found


def percentile(values: list[int], q: Fraction) -> float:
    """docs/health.md §1.3: linear interpolation at (n - 1)·q, in seconds."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    k = int(position)
    low = ordered[k]
    high = ordered[k + 1] if k + 1 < len(ordered) else low
    return float((low + (high - low) * (position - k)) / 1000)


def percentiles(values: list[int]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    return percentile(values, Fraction(1, 2)), percentile(values, Fraction(9, 10))


def expected(
    sessions: list[Exited], release: str, start: datetime, environments: set[str] | None
) -> tuple[float | None, float | None]:
    """The oracle: the stored durations' buckets from ``start``'s hour on."""
    return percentiles(
        [
            representative(round(s.duration_s * 1000))
            for s in sessions
            if s.release == release
            and hour_of(s.started) >= start
            and (environments is None or s.environment in environments)
        ]
    )


def from_hourly_rows(
    release: Release, start: datetime, environment_ids: tuple[int, ...] | None
) -> tuple[float | None, float | None]:
    """What the reads computed before the day rows: every hourly row from ``start`` on."""
    rows = SessionDuration.objects.filter(release=release, hour__gte=start)
    if environment_ids is not None:
        rows = rows.filter(environment_id__in=environment_ids)
    values = [ms for ms, n in rows.values_list("duration_ms", "count") for _ in range(n)]
    return percentiles(values)


def store_exited(project: Project, sessions: list[Exited]) -> None:
    updates = [
        SessionUpdate(
            release=s.release,
            environment=s.environment,
            started=s.started,
            status="exited",
            init=True,
            sid=uuid.uuid4(),
            duration=s.duration_s,
            timestamp=s.started,
            seq=0,
        )
        for s in sessions
    ]
    for first in range(0, len(updates), 100):
        batch = updates[first : first + 100]
        store(project, Items(sessions=batch), received=max(u.started for u in batch))


@pytest.mark.parametrize("period", ["24h", "14d", "90d"])
@pytest.mark.parametrize("now", [MID_DAY, MIDNIGHT], ids=["mid-day", "midnight"])
@pytest.mark.parametrize("environments", [None, {"staging"}], ids=["all", "staging"])
def test_percentiles_from_days_equal_those_of_the_hourly_rows(project, period, now, environments):
    start = period_start(period, now)
    assert (start.hour, start.minute) == ((14, 0) if now is MID_DAY else (0, 0))
    rng = random.Random(f"{period} {now} {environments}")  # noqa: S311 - test data
    sessions = sessions_around(rng, start, now)
    store_exited(project, sessions)
    releases = {r.version: r for r in Release.objects.filter(version__in=RELEASES)}
    environment_ids = (
        None
        if environments is None
        else tuple(Environment.objects.filter(name__in=environments).values_list("pk", flat=True))
    )
    query = HealthQuery(summary_period=period, environment_ids=environment_ids)
    pairs = [(project.pk, release.pk) for release in releases.values()]

    with CaptureQueriesContext(connection) as queries:
        health = reads.health_data(pairs, query, now)

    assert len(queries) == 2
    for version, release in releases.items():
        found = health[project.pk, release.pk]
        oracle = expected(sessions, version, start, environments)
        assert oracle[0] is not None
        assert (found.duration_p50, found.duration_p90) == oracle, version
        assert from_hourly_rows(release, start, environment_ids) == oracle, version
        # The data tells the window's edges apart: the sessions before the window's start and
        # those of its first, partial day both move the percentiles.
        before_start = start - 4 * HOUR if now is MIDNIGHT else midnight_of(start)
        assert expected(sessions, version, before_start, environments) != oracle
        after_first_day = midnight_of(start) + timedelta(days=1)
        if now is MID_DAY:
            assert expected(sessions, version, after_first_day, environments) != oracle


def test_durations_before_the_window_are_not_read(project):
    store_exited(project, [Exited(RELEASES[0], "production", MID_DAY - timedelta(days=20), 30)])
    release = Release.objects.get(version=RELEASES[0])

    health = reads.health_data([(project.pk, release.pk)], HealthQuery(), MID_DAY)
    everything = reads.health_data(
        [(project.pk, release.pk)], HealthQuery(summary_period="90d"), MID_DAY
    )

    assert health[project.pk, release.pk].duration_p50 is None
    assert everything[project.pk, release.pk].duration_p50 == 30.0


def day_rows(project: Project) -> Counter[tuple[date, int]]:
    found: Counter[tuple[date, int]] = Counter()
    for day, duration_ms, count in SessionDurationDay.objects.filter(project=project).values_list(
        "day", "duration_ms", "count"
    ):
        found[day, duration_ms] += count
    return found


def hour_rows(project: Project) -> Counter[tuple[datetime, int]]:
    found: Counter[tuple[datetime, int]] = Counter()
    for hour, duration_ms, count in SessionDuration.objects.filter(project=project).values_list(
        "hour", "duration_ms", "count"
    ):
        found[hour.astimezone(UTC), duration_ms] += count
    return found


def test_ingestion_writes_hourly_and_day_rows_and_redeliveries_count_once(api_client, project):
    now = timezone.now() - timedelta(seconds=5)
    started = [now, now - HOUR, now - 2 * HOUR, now - timedelta(days=1), now - timedelta(days=2)]
    durations = [30.0, 30.2, 61.0, 30.0, 120.5]
    body = envelope(
        *(
            item("session", session(started=moment, did=f"u{n}", duration=duration))
            for n, (moment, duration) in enumerate(zip(started, durations, strict=True))
        ),
        item("session", session(started=now, status="crashed", duration=99.0)),  # not exited
    )

    for _ in range(2):  # the same envelope twice: the second is a redelivery
        assert post_envelope(api_client, project, body).status_code == 200

    buckets = [representative(round(d * 1000)) for d in durations]
    assert hour_rows(project) == Counter(
        (hour_of(moment), value) for moment, value in zip(started, buckets, strict=True)
    )
    assert day_rows(project) == Counter(
        (moment.astimezone(UTC).date(), value)
        for moment, value in zip(started, buckets, strict=True)
    )


def test_backfill_sums_hourly_rows_per_utc_day(project):
    migration = importlib.import_module("releases.migrations.0010_session_duration_day")
    release = ReleaseFactory(organization=project.organization)
    other = ReleaseFactory(organization=project.organization)
    production = EnvironmentFactory(organization=project.organization, name="production")
    staging = EnvironmentFactory(organization=project.organization, name="staging")
    late = datetime(2026, 3, 9, 23, tzinfo=UTC)
    rows = [
        (release, production, late, 30_000, 2),
        (release, production, late + HOUR, 30_000, 3),  # the next day
        (release, production, late + 14 * HOUR, 30_000, 4),
        (release, production, late + 14 * HOUR, 61_000, 1),
        (release, staging, late + 2 * HOUR, 30_000, 5),
        (other, production, late - 20 * HOUR, 30_000, 6),  # the same day as ``late``
    ]
    for rel, env, hour, duration_ms, count in rows:
        SessionDuration.objects.create(
            project=project,
            release=rel,
            environment=env,
            hour=hour,
            duration_ms=duration_ms,
            count=count,
        )

    migration.fill_days(apps, None)

    stored = {
        (row.release_id, row.environment_id, row.day, row.duration_ms): row.count
        for row in SessionDurationDay.objects.all()
    }
    march_9, march_10 = date(2026, 3, 9), date(2026, 3, 10)
    assert stored == {
        (release.pk, production.pk, march_9, 30_000): 2,
        (release.pk, production.pk, march_10, 30_000): 7,
        (release.pk, production.pk, march_10, 61_000): 1,
        (release.pk, staging.pk, march_10, 30_000): 5,
        (other.pk, production.pk, march_9, 30_000): 6,
    }
