"""Failures answer in JSON under /api/: a 500 without a traceback, a busy or lost database a 503
with Retry-After (docs/reliability.md). The database cases need PostgreSQL's locks."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from django.db import close_old_connections, connection
from django.test import Client
from django.utils import timezone

from tests.envelopes import auth_header, envelope, item, post_envelope, session
from tests.factories import ReleaseFactory

UNAVAILABLE = {"detail": "The database is unavailable or busy; retry later."}
postgresql_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="locks and backends of PostgreSQL"
)


# ---------------------------------------------------------------- unexpected errors: JSON 500


@pytest.mark.urls("tests.urls_failing")
@pytest.mark.parametrize("debug", [True, False])
@pytest.mark.parametrize("path", ["/api/0/test-failure/drf/", "/api/0/test-failure/django/"])
def test_an_unexpected_error_is_a_json_500_without_traceback(settings, path, debug):
    settings.DEBUG = debug

    response = Client().get(path)

    assert response.status_code == 500
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"detail": "Internal server error"}


@pytest.mark.urls("tests.urls_failing")
def test_an_unexpected_error_outside_the_api_keeps_djangos_handling():
    with pytest.raises(KeyError):
        Client().get("/admin/test-failure/")


# ---------------------------------------------------------------- database busy or lost: 503


@pytest.fixture
def other_connection() -> Iterator[psycopg.Connection]:
    """A second session on the test database, as another worker or a migration would hold."""
    params = connection.settings_dict
    other = psycopg.connect(
        dbname=params["NAME"],
        user=params["USER"] or None,
        password=params["PASSWORD"] or None,
        host=params["HOST"] or None,
        port=params["PORT"] or None,
    )
    yield other
    other.rollback()
    other.close()


def lock(other: psycopg.Connection, table: str) -> None:
    other.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")  # our own table name


def assert_unavailable(response) -> None:
    assert response.status_code == 503, response.content
    assert response["Content-Type"] == "application/json"
    assert response["Retry-After"] == "5"
    assert response.json() == UNAVAILABLE


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_a_read_behind_a_locked_table_is_503_with_retry_after(
    api_client, org, project, other_connection
):
    ReleaseFactory(organization=org, version="a@1", projects=[project])
    api_client.get("/api/0/organizations/acme/releases/")  # records the token's last use
    lock(other_connection, "releases_release")
    with connection.cursor() as cursor:
        cursor.execute("SET lock_timeout = '200ms'")

    response = api_client.get("/api/0/organizations/acme/releases/")

    assert_unavailable(response)


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_a_write_behind_a_locked_table_is_503_and_writes_nothing(
    api_client, org, project, other_connection
):
    api_client.get("/api/0/organizations/acme/releases/")
    lock(other_connection, "releases_release")
    with connection.cursor() as cursor:
        cursor.execute("SET lock_timeout = '200ms'")

    response = api_client.post(
        "/api/0/organizations/acme/releases/",
        {"version": "b@1", "projects": [project.slug]},
        format="json",
    )

    assert_unavailable(response)
    other_connection.rollback()
    assert other_connection.execute("SELECT count(*) FROM releases_release").fetchone() == (0,)


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_an_envelope_behind_a_locked_table_is_503(client, project, other_connection):
    body = envelope(item("session", session(started=timezone.now())))
    headers = {"HTTP_X_SENTRY_AUTH": auth_header(project)}
    lock(other_connection, "releases_projectkey")
    with connection.cursor() as cursor:
        cursor.execute("SET lock_timeout = '200ms'")

    response = post_envelope(client, project, body, auth=False, **headers)

    assert_unavailable(response)


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_a_lost_database_connection_is_503_then_the_next_request_reconnects(
    api_client, org, project, other_connection
):
    ReleaseFactory(organization=org, version="a@1", projects=[project])
    api_client.get("/api/0/organizations/acme/releases/")
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (pid,) = cursor.fetchone()
    other_connection.execute("SELECT pg_terminate_backend(%s)", [pid])

    lost = api_client.get("/api/0/organizations/acme/releases/")
    close_old_connections()  # what Django's handler does after each request (not in tests)
    again = api_client.get("/api/0/organizations/acme/releases/")

    assert_unavailable(lost)
    assert again.status_code == 200, again.content
    assert [r["version"] for r in again.json()] == ["a@1"]
