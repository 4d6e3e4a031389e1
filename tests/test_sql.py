"""The bulk writes of ``releases/sql.py``: run on PostgreSQL by ``make test``, and on SQLite."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, date, datetime, timedelta

import pytest
from django.db import connection

from releases.health.sql import BATCH, insert_new, upsert
from releases.health.store import USERS_BY_RELEASE
from releases.models import (
    IngestOutcome,
    ProjectUserSeen,
    ReleaseUserLast,
    ReleaseUserSeen,
    SessionUpdateKey,
)
from tests.factories import EnvironmentFactory, ProjectFactory, ReleaseFactory

pytestmark = pytest.mark.django_db

NOON = datetime(2024, 5, 21, 12, tzinfo=UTC)
ONE = datetime(2024, 5, 21, 13, tzinfo=UTC)


def test_upsert_adds_to_stored_counters_and_inserts_new_keys():
    project = ProjectFactory()
    columns = ("project_id", "day", "category", "reason", "quantity")
    day = date(2024, 5, 21)
    upsert(
        IngestOutcome,
        columns,
        [(project.pk, day, "session", 'a "quoted", {odd}', 2)],
        keys=4,
        add=["quantity"],
    )

    upsert(
        IngestOutcome,
        columns,
        [
            (project.pk, day, "session", 'a "quoted", {odd}', 3),
            (project.pk, day, "event", "x\\y", 1),
        ],
        keys=4,
        add=["quantity"],
    )

    assert set(IngestOutcome.objects.values_list("reason", "quantity")) == {
        ('a "quoted", {odd}', 5),
        ("x\\y", 1),
    }


def upsert_latest_hours(project, env, hours):
    """Upsert one ``ProjectUserSeen`` row per did of ``hours`` (did -> hour), keeping the later
    hour of each."""
    upsert(
        ProjectUserSeen,
        ("project_id", "environment_id", "did", "last_hour"),
        [(project.pk, env.pk, did, hour) for did, hour in hours.items()],
        keys=3,
        latest=["last_hour"],
    )


def test_upsert_latest_keeps_the_greater_value():
    project = ProjectFactory()
    env = EnvironmentFactory(organization=project.organization)
    early, late = uuid.uuid4(), uuid.uuid4()
    upsert_latest_hours(project, env, {early: ONE, late: NOON})

    upsert_latest_hours(project, env, {early: NOON, late: ONE})

    assert dict(ProjectUserSeen.objects.values_list("did", "last_hour")) == {early: ONE, late: ONE}


@pytest.mark.postgresql
def test_upsert_latest_leaves_rows_already_current_as_they_are():
    """``ON CONFLICT DO UPDATE … WHERE`` locks every conflicting row, changed or not (a lock sets
    the row's ``xmax``); rows that are already as late are left out before the insert."""
    project = ProjectFactory()
    env = EnvironmentFactory(organization=project.organization)
    current, behind = uuid.uuid4(), uuid.uuid4()
    upsert_latest_hours(project, env, {current: ONE, behind: NOON})

    upsert_latest_hours(project, env, {current: NOON, behind: ONE})

    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT did, last_hour, xmax::text FROM {ProjectUserSeen._meta.db_table}"  # noqa: S608
        )
        stored = {did: (hour, xmax) for did, hour, xmax in cursor.fetchall()}
    assert stored[current] == (ONE, "0")  # neither rewritten nor locked
    assert stored[behind][0] == ONE


def test_insert_new_returns_only_keys_not_stored_yet():
    project = ProjectFactory()
    old, new = uuid.uuid4(), uuid.uuid4()
    columns = ("project_id", "key", "received")
    insert_new(SessionUpdateKey, columns, [(project.pk, old, NOON)], keys=2, returning="key")

    fresh = insert_new(
        SessionUpdateKey,
        columns,
        [(project.pk, old, ONE), (project.pk, new, ONE)],
        keys=2,
        returning="key",
    )

    assert fresh == {new}
    assert SessionUpdateKey.objects.get(key=old).received == NOON


def test_upsert_stores_text_as_given_with_or_without_characters_to_escape():
    project = ProjectFactory()
    columns = ("project_id", "day", "category", "reason", "quantity")
    day = date(2024, 5, 21)
    plain = ["NULL", "", " spaced ", "{a,b}", "comma,", "é ☃", "null"]
    odd = [*plain, 'a"b', "c\\d"]

    upsert(IngestOutcome, columns, [(project.pk, day, "p", r, 1) for r in plain], keys=4)
    upsert(IngestOutcome, columns, [(project.pk, day, "o", r, 1) for r in odd], keys=4)

    stored = set(IngestOutcome.objects.values_list("category", "reason"))
    assert stored == {("p", r) for r in plain} | {("o", r) for r in odd}


def test_upsert_takes_uuids_as_text_or_objects():
    project = ProjectFactory()
    env = EnvironmentFactory(organization=project.organization)
    first, second = uuid.uuid4(), uuid.uuid4()
    columns = ("project_id", "environment_id", "did", "last_hour")

    upsert(ProjectUserSeen, columns, [(project.pk, env.pk, str(first), NOON)], keys=3)
    upsert(ProjectUserSeen, columns, [(project.pk, env.pk, second, NOON)], keys=3)

    assert set(ProjectUserSeen.objects.values_list("did", flat=True)) == {first, second}


def test_a_tallied_upsert_counts_rows_per_value_of_its_latest_columns():
    project = ProjectFactory()
    release = ReleaseFactory(organization=project.organization)
    columns = ("project_id", "release_id", "did", "last_hour", "last_crashed_hour")
    hours = [NOON + timedelta(hours=n) for n in range(4)]
    dids = [uuid.uuid4() for _ in range(BATCH["sqlite"] + 500)]  # two statements on SQLite
    stored: dict[uuid.UUID, list[datetime | None]] = {}

    def write(rows: list[tuple[uuid.UUID, datetime, datetime | None]]) -> None:
        upsert(
            ReleaseUserSeen,
            columns,
            [(project.pk, release.pk, *row) for row in rows],
            keys=3,
            latest=("last_hour", "last_crashed_hour"),
            tally=USERS_BY_RELEASE,
        )
        for did, hour, crashed in rows:
            latest = stored.setdefault(did, [hour, crashed])
            latest[0] = max(latest[0], hour)  # type: ignore[type-var]
            if crashed is not None and (latest[1] is None or crashed > latest[1]):
                latest[1] = crashed

    write([(did, hours[n % 2], hours[0] if n % 3 == 0 else None) for n, did in enumerate(dids)])
    # Later, earlier and equal hours; new crashes, older crashes, none.
    write(
        [
            (did, hours[n % 4], hours[n % 4] if n % 5 == 0 else None)
            for n, did in enumerate(dids[::2])
        ]
    )

    users = Counter(latest[0] for latest in stored.values())
    crashed = Counter(latest[1] for latest in stored.values() if latest[1] is not None)
    counted = {
        hour: (u, c)
        for hour, u, c in ReleaseUserLast.objects.values_list("hour", "users", "crashed")
    }
    assert {h: v for h, v in counted.items() if v != (0, 0)} == {
        hour: (users[hour], crashed[hour]) for hour in set(users) | set(crashed)
    }
