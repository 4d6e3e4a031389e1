"""The bulk writes of ``releases/sql.py``: run on PostgreSQL by ``make test``, and on SQLite."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

import pytest

from releases.health.sql import insert_new, upsert
from releases.models import IngestOutcome, ProjectUserSeen, SessionUpdateKey
from tests.factories import EnvironmentFactory, ProjectFactory

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


def test_upsert_latest_keeps_the_greater_value():
    project = ProjectFactory()
    env = EnvironmentFactory(organization=project.organization)
    early, late = uuid.uuid4(), uuid.uuid4()
    columns = ("project_id", "environment_id", "did", "last_hour")
    upsert(
        ProjectUserSeen,
        columns,
        [(project.pk, env.pk, early, ONE), (project.pk, env.pk, late, NOON)],
        keys=3,
        latest=["last_hour"],
    )

    upsert(
        ProjectUserSeen,
        columns,
        [(project.pk, env.pk, early, NOON), (project.pk, env.pk, late, ONE)],
        keys=3,
        latest=["last_hour"],
    )

    assert dict(ProjectUserSeen.objects.values_list("did", "last_hour")) == {early: ONE, late: ONE}


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
