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
