"""Retention (``cleanup``): old session data goes in batches, recent data and health stay."""

from __future__ import annotations

import io
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db.models import Sum
from django.utils import timezone

from releases.health.items import Items, SessionUpdate
from releases.health.reads import HealthQuery, health_data
from releases.health.retention import cleanup, retention_cutoff
from releases.health.store import store
from releases.models import (
    Environment,
    ErroredSession,
    IngestOutcome,
    ProjectUserSeen,
    Release,
    ReleaseUserLast,
    ReleaseUserSeen,
    SessionDuration,
    SessionDurationDay,
    SessionRollup,
    SessionUpdateKey,
    SessionUser,
    SessionUserLast,
    SessionUserSeen,
)
from tests.envelopes import send_sessions, session
from tests.factories import ReleaseFactory

pytestmark = pytest.mark.django_db

OLD = timedelta(days=100)
RECENT = timedelta(days=1)


def add_rows(project: Any, release: Release, environment: Environment, age: timedelta) -> None:
    """One row of every session table, ``age`` before the current hour."""
    add_rows_at(project, release, environment, retention_cutoff(now=timezone.now(), days=0) - age)


def add_rows_at(project: Any, release: Release, environment: Environment, hour: Any) -> None:
    """One row of every session table at ``hour``."""
    did = uuid.uuid4()
    common = {"project": project, "release": release, "environment": environment, "hour": hour}
    SessionRollup.objects.create(**common, updates=4, sessions=4, crashed=1, errored=1)
    SessionUser.objects.create(**common, did=did)
    SessionDuration.objects.create(**common, duration_ms=1000, count=2)
    SessionUserSeen.objects.create(
        project=project, release=release, environment=environment, did=did, last_hour=hour
    )
    ProjectUserSeen.objects.create(
        project=project, environment=environment, did=did, last_hour=hour
    )
    ReleaseUserSeen.objects.create(project=project, release=release, did=did, last_hour=hour)
    SessionUserLast.objects.create(**common, users=1)
    ReleaseUserLast.objects.create(project=project, release=release, hour=hour, users=1)
    ErroredSession.objects.create(project=project, release=release, sid=uuid.uuid4(), hour=hour)
    SessionUpdateKey.objects.create(project=project, key=uuid.uuid4(), received=hour)
    IngestOutcome.objects.create(
        project=project, day=hour.date(), category="session", reason=f"at_{hour:%H}", quantity=3
    )


def counts() -> dict[str, int]:
    return {
        model.__name__: model.objects.count()
        for model in (
            SessionRollup,
            SessionUser,
            SessionUserSeen,
            ProjectUserSeen,
            ReleaseUserSeen,
            SessionUserLast,
            ReleaseUserLast,
            SessionDuration,
            ErroredSession,
            SessionUpdateKey,
            IngestOutcome,
        )
    }


@pytest.fixture
def release(org, project) -> Release:
    return ReleaseFactory(organization=org, version="app@1.0.0", projects=[project])


@pytest.fixture
def environment(org) -> Environment:
    return Environment.objects.create(organization=org, name="production")


def test_cleanup_deletes_old_rows_of_every_session_table_and_keeps_recent_ones(
    project, release, environment
):
    add_rows(project, release, environment, OLD)
    add_rows(project, release, environment, RECENT)
    out = io.StringIO()

    call_command("cleanup", stdout=out)

    assert counts() == {
        "SessionRollup": 1,
        "SessionUser": 1,
        "SessionUserSeen": 1,
        "ProjectUserSeen": 1,
        "ReleaseUserSeen": 1,
        "SessionUserLast": 1,
        "ReleaseUserLast": 1,
        "SessionDuration": 1,
        "ErroredSession": 1,
        "SessionUpdateKey": 1,
        "IngestOutcome": 1,
    }
    assert SessionRollup.objects.get().hour > timezone.now() - OLD
    assert IngestOutcome.objects.get().day > (timezone.now() - OLD).date()
    assert Release.objects.filter(pk=release.pk).exists()
    lines = out.getvalue().splitlines()
    assert "Deleted 1 session rollups" in lines
    assert "Deleted 1 ingest outcomes" in lines
    assert "Deleted 1 users by latest hour, all environments" in lines
    assert "Deleted 0 old crashed hours of release users seen" in lines
    assert lines[-1].startswith("Deleted 11 rows older than ")
    assert lines[-1].endswith(" (90 days).")


def test_cleanup_dry_run_counts_and_deletes_nothing(project, release, environment):
    add_rows(project, release, environment, OLD)
    before = counts()
    out = io.StringIO()

    call_command("cleanup", "--dry-run", stdout=out)

    assert counts() == before
    assert "Would delete 1 release users seen" in out.getvalue().splitlines()
    assert out.getvalue().splitlines()[-1].startswith("Would delete 11 rows older than ")


def test_cleanup_days_option_and_small_batches(project, release, environment):
    for days in (3, 4, 5, 6, 7):
        add_rows(project, release, environment, timedelta(days=days))

    call_command("cleanup", "--days", "2", "--batch-size", "2", stdout=io.StringIO())

    assert set(counts().values()) == {0}


def test_users_seen_recently_keep_their_rows_and_forget_older_crashes(
    project, release, environment
):
    hour = retention_cutoff(now=timezone.now(), days=0)
    did = uuid.uuid4()
    seen = SessionUserSeen.objects.create(
        project=project,
        release=release,
        environment=environment,
        did=did,
        last_hour=hour - RECENT,
        last_crashed_hour=hour - OLD,
    )
    ReleaseUserSeen.objects.create(
        project=project, release=release, did=did, last_hour=hour - RECENT, last_crashed_hour=hour
    )
    out = io.StringIO()

    call_command("cleanup", stdout=out)

    assert SessionUserSeen.objects.get() == seen
    assert SessionUserSeen.objects.get().last_crashed_hour is None  # its count is gone
    assert ReleaseUserSeen.objects.get().last_crashed_hour == hour
    assert "Deleted 1 old crashed hours of release users seen" in out.getvalue().splitlines()


def test_update_keys_go_after_six_days_whatever_the_retention(project):
    now = timezone.now()
    SessionUpdateKey.objects.create(project=project, key=uuid.uuid4(), received=now)
    SessionUpdateKey.objects.create(
        project=project, key=uuid.uuid4(), received=now - timedelta(days=7)
    )

    call_command("cleanup", stdout=io.StringIO())

    assert SessionUpdateKey.objects.get().received == now


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--days", "0"], "--days must be at least 1."),
        (["--batch-size", "0"], "--batch-size must be at least 1."),
    ],
)
def test_cleanup_refuses_bad_options(args, message):
    with pytest.raises(CommandError, match=message):
        call_command("cleanup", *args, stdout=io.StringIO())


def health(client: Any, version: str, period: str) -> dict[str, Any]:
    url = f"/api/0/organizations/acme/releases/{version}/?health=1&summaryStatsPeriod={period}"
    response = client.get(url)
    assert response.status_code == 200, response.content
    return response.json()["projects"][0]["healthData"]


def test_cleanup_leaves_health_numbers_of_every_window_unchanged(api_client, project):
    now = timezone.now()
    send_sessions(
        api_client,
        project,
        *(
            session(release="app@2.0.0", started=now - timedelta(hours=n), did=f"user-{n % 3}")
            for n in range(0, 72, 5)
        ),
        session(release="app@2.0.0", started=now, status="crashed", did="user-0"),
    )
    release = Release.objects.get(version="app@2.0.0")
    environment = Environment.objects.get(name="production")
    start_of_90d = retention_cutoff(now=now, days=90)
    # The hour after the 90-day window's first: inside every 90-day window, and kept.
    add_rows_at(project, release, environment, start_of_90d + timedelta(hours=1))
    # Two hours before it: outside every window, deleted.
    add_rows_at(project, release, environment, start_of_90d - timedelta(hours=2))
    periods = ("24h", "14d", "90d")
    before = {period: health(api_client, "app@2.0.0", period) for period in periods}

    call_command("cleanup", stdout=io.StringIO())

    assert {period: health(api_client, "app@2.0.0", period) for period in periods} == before
    assert before["90d"]["totalSessions"] == before["14d"]["totalSessions"] + 4
    assert SessionRollup.objects.filter(hour__lt=start_of_90d).count() == 0


def test_day_rows_go_once_their_whole_day_is_before_the_cutoffs_day(project):
    now = datetime(2026, 3, 20, 14, 30, tzinfo=UTC)
    cutoff = retention_cutoff(now=now, days=14)  # 14:00, 14 days ago: the 14-day window's start
    # (started, seconds): the day before the cutoff's; the cutoff's day before and after it;
    # the next day; today.
    exited = [
        (cutoff - timedelta(days=1), 500.0),
        (cutoff - timedelta(hours=2), 400.0),
        (cutoff + timedelta(hours=1), 30.0),
        (cutoff + timedelta(days=1), 60.0),
        (now - timedelta(hours=1), 90.0),
    ]
    store(
        project,
        Items(
            sessions=[
                SessionUpdate(
                    release="app@1.0.0",
                    environment="production",
                    started=started,
                    status="exited",
                    init=True,
                    sid=uuid.uuid4(),
                    duration=seconds,
                    timestamp=started,
                    seq=0,
                )
                for started, seconds in exited
            ]
        ),
        received=now,
    )
    release = Release.objects.get(version="app@1.0.0")
    pair = (project.pk, release.pk)

    def durations() -> tuple[float | None, float | None]:
        found = health_data([pair], HealthQuery(summary_period="14d"), now)[pair]
        return found.duration_p50, found.duration_p90

    before = durations()
    counts = cleanup(now=now, days=14)

    assert counts["session durations per day"] == 1
    per_day = SessionDurationDay.objects.values("day").annotate(n=Sum("count")).order_by()
    assert {row["day"]: row["n"] for row in per_day} == {
        # The cutoff's day keeps its row, with the hour before the cutoff: a window that starts
        # on that day reads that day from hourly rows, which lost that hour.
        cutoff.date(): 2,
        cutoff.date() + timedelta(days=1): 1,
        now.date(): 1,
    }
    assert not SessionDuration.objects.filter(hour__lt=cutoff).exists()
    # The window's numbers are unchanged, and never counted what lies before its start.
    assert durations() == before == (60.0, 84.0)
