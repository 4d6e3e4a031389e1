"""Migrations that change tables holding data in place: what they keep and what they make."""

from __future__ import annotations

import importlib
import uuid
from datetime import UTC, datetime

import pytest
from django.db import connection
from django.db.migrations.loader import MigrationLoader

from accounts import ratelimits
from accounts.models import RateLimitWindow
from releases.health.sql import insert_new
from releases.models import SessionUpdateKey
from tests.factories import ProjectFactory

pytestmark = pytest.mark.django_db

NOON = datetime(2024, 5, 21, 12, tzinfo=UTC)
KEYS = importlib.import_module("releases.migrations.0012_session_update_key_primary_key")


@pytest.mark.postgresql
def test_0012_keeps_every_delivery_key_and_makes_it_the_primary_key():
    """On PostgreSQL the table changes in place (SQLite copies it, each time its test database
    is made). The test's transaction undoes it all."""
    project = ProjectFactory()
    before = MigrationLoader(connection).project_state(("releases", "0011_fk_indexes_covered"))
    old = before.apps.get_model("releases", "SessionUpdateKey")
    keys = [uuid.uuid4() for _ in range(3)]
    with connection.schema_editor() as editor:
        editor.delete_model(SessionUpdateKey)
        editor.create_model(old)  # its foreign key and indexes are made on leaving
    old.objects.bulk_create([old(project_id=project.pk, key=k, received=NOON) for k in keys])
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # checked now: none left for ALTER TABLE

    with connection.schema_editor() as editor:
        KEYS.forward(before.apps, editor)

    table = SessionUpdateKey._meta.db_table
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, table)
        description = connection.introspection.get_table_description(cursor, table)
    assert sorted(column.name for column in description) == ["key", "project_id", "received"]
    assert [c["columns"] for c in constraints.values() if c["primary_key"]] == [
        ["project_id", "key"]
    ]
    assert not [name for name, c in constraints.items() if c["foreign_key"]]
    assert [c["type"] for c in constraints.values() if c["columns"] == ["received"]] == ["brin"]
    assert sorted(SessionUpdateKey.objects.values_list("key", flat=True)) == sorted(keys)
    fresh = uuid.uuid4()
    rows = [(project.pk, keys[0], NOON), (project.pk, fresh, NOON)]
    assert insert_new(
        SessionUpdateKey, ("project_id", "key", "received"), rows, keys=2, returning="key"
    ) == {fresh}


@pytest.mark.postgresql
def test_rate_limit_counts_are_unlogged_and_still_counted(settings):
    """Migration 0003 of accounts: the counters' commits write no WAL to wait for."""
    settings.RATELIMIT_STORE = "database"  # what PostgreSQL deployments use
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relpersistence FROM pg_class WHERE oid = %s::regclass",
            [RateLimitWindow._meta.db_table],
        )
        assert cursor.fetchone() == ("u",)

    assert ratelimits.hit("api_token", "42", ratelimits.Rate(1, 3600)) is None
    assert ratelimits.hit("api_token", "42", ratelimits.Rate(1, 3600)) is not None
    assert RateLimitWindow.objects.get(key__endswith=":42").count == 2
