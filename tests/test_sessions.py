"""``GET /organizations/{org}/sessions/``: session statistics from the same rollups as
``healthData``; parameters, Sentry's interval rules and error strings, query counts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from releases.api.sessions import constrained_window
from releases.models import Project
from tests.envelopes import aggregates, envelope, item, post_envelope, send_sessions, session
from tests.factories import ProjectFactory

pytestmark = pytest.mark.django_db

URL = "/api/0/organizations/acme/sessions/"
DID = "d1a7b6c2-5a43-4f0e-9d61-1c3e5f9b7a20"
OTHER_DID = "5b1c1a3e-7b6f-4b71-8d8e-2f0c3c2b9a11"


def sessions(client: APIClient, **params: Any) -> dict[str, Any]:
    response = client.get(URL + "?" + urlencode(params, doseq=True))
    assert response.status_code == 200, response.content
    return response.json()


def error_of(client: APIClient, **params: Any) -> tuple[int, Any]:
    response = client.get(URL + "?" + urlencode(params, doseq=True))
    return response.status_code, response.json()


def health_of(client: APIClient, project: Project, version: str) -> dict[str, Any]:
    response = client.get(
        f"/api/0/organizations/acme/releases/{version}/?health=1&project={project.pk}"
        "&summaryStatsPeriod=24h"
    )
    assert response.status_code == 200, response.content
    return response.json()["projects"][0]["healthData"]


def example(client: APIClient, project: Project, now: datetime) -> None:
    """Two releases: 1.0 (two exited sessions of one user, 60 s and 30 s; one errored in
    staging), 2.0 (one crash of another user, 60 s)."""
    send_sessions(
        client,
        project,
        session(release="app@1.0", started=now, did=DID, duration=60),
        session(release="app@1.0", started=now, did=DID, duration=30),
        session(release="app@1.0", started=now, environment="staging", errors=1, status="ok"),
        session(release="app@2.0", started=now, did=OTHER_DID, status="crashed", duration=60),
    )


@pytest.fixture
def now() -> datetime:
    return timezone.now() - timedelta(seconds=1)


def test_totals_without_group_by(api_client, project, now):
    example(api_client, project, now)

    body = sessions(
        api_client,
        field=["sum(session)", "count_unique(user)", "crash_free_rate(session)"],
        statsPeriod="24h",
    )

    (group,) = body["groups"]
    assert group["by"] == {}
    assert group["totals"] == {
        "sum(session)": 4,
        "count_unique(user)": 2,
        "crash_free_rate(session)": 0.75,
    }
    assert len(body["intervals"]) == 25
    assert len(group["series"]["sum(session)"]) == 25
    assert group["series"]["sum(session)"][-1] == 4
    assert sum(group["series"]["sum(session)"]) == 4
    assert body["query"] == ""


def test_group_by_release_and_environment(api_client, project, now):
    example(api_client, project, now)

    body = sessions(
        api_client, field="sum(session)", groupBy=["release", "environment"], statsPeriod="1h"
    )

    assert [(g["by"], g["totals"]) for g in body["groups"]] == [
        ({"release": "app@1.0", "environment": "production"}, {"sum(session)": 2}),
        ({"release": "app@1.0", "environment": "staging"}, {"sum(session)": 1}),
        ({"release": "app@2.0", "environment": "production"}, {"sum(session)": 1}),
    ]


def test_group_by_project_gives_integer_ids(api_client, project, now):
    example(api_client, project, now)

    body = sessions(api_client, field="sum(session)", groupBy="project")

    assert [g["by"] for g in body["groups"]] == [{"project": project.pk}]


def test_group_by_session_status_splits_sessions_like_health_data(api_client, project, now):
    example(api_client, project, now)

    body = sessions(api_client, field="sum(session)", groupBy="session.status")

    assert {g["by"]["session.status"]: g["totals"]["sum(session)"] for g in body["groups"]} == {
        "healthy": 2,
        "errored": 1,
        "crashed": 1,
        "abnormal": 0,
        "unhandled": 0,
    }


def test_session_status_of_aggregates(api_client, project, now):
    body = envelope(
        item(
            "sessions",
            aggregates(
                [{"started": now.isoformat(), "exited": 5, "errored": 2, "crashed": 1}],
                release="agg@1",
            ),
        )
    )
    assert post_envelope(api_client, project, body).status_code == 200

    found = sessions(api_client, field="sum(session)", groupBy="session.status")
    health = health_of(api_client, project, "agg@1")

    by_status = {g["by"]["session.status"]: g["totals"]["sum(session)"] for g in found["groups"]}
    assert by_status["crashed"] == health["sessionsCrashed"] == 1
    assert by_status["errored"] == health["sessionsErrored"] == 2
    assert sum(by_status.values()) == health["totalSessions"] == 8


def test_durations_and_user_rates(api_client, project, now):
    example(api_client, project, now)

    body = sessions(
        api_client,
        field=[
            "p50(session.duration)",
            "p90(session.duration)",
            "avg(session.duration)",
            "max(session.duration)",
            "crash_rate(user)",
            "crash_free_rate(user)",
        ],
        query="release:app@1.0",
        statsPeriod="24h",
    )

    totals = body["groups"][0]["totals"]
    assert totals == {
        "p50(session.duration)": 45.0,
        "p90(session.duration)": 57.0,
        "avg(session.duration)": 45.0,
        "max(session.duration)": 60.0,
        "crash_rate(user)": 0.0,
        "crash_free_rate(user)": 1.0,
    }
    assert body["query"] == "release:app@1.0"


def test_totals_match_health_data_for_the_same_window(api_client, project, now):
    example(api_client, project, now)

    for version in ("app@1.0", "app@2.0"):
        health = health_of(api_client, project, version)
        (group,) = sessions(
            api_client,
            field=[
                "sum(session)",
                "count_unique(user)",
                "crash_free_rate(session)",
                "crash_free_rate(user)",
                "p50(session.duration)",
                "p90(session.duration)",
            ],
            project=project.pk,
            query=f"release:{version}",
            statsPeriod="24h",
        )["groups"]
        totals = group["totals"]

        assert totals["sum(session)"] == health["totalSessions"]
        assert totals["count_unique(user)"] == health["totalUsers"]
        assert totals["crash_free_rate(session)"] * 100 == pytest.approx(
            health["crashFreeSessions"]
        )
        assert totals["crash_free_rate(user)"] * 100 == pytest.approx(health["crashFreeUsers"])
        assert totals["p50(session.duration)"] == health["durationP50"]
        assert totals["p90(session.duration)"] == health["durationP90"]


def test_query_environment_and_wildcards(api_client, project, now):
    example(api_client, project, now)

    def total(**params: Any) -> int:
        return sessions(api_client, field="sum(session)", **params)["groups"][0]["totals"][
            "sum(session)"
        ]

    assert total(environment="staging") == 1
    assert total(query="environment:staging") == 1
    assert total(query="!environment:staging") == 3
    assert total(query="release:app@2*") == 1
    assert total(query="release:[app@1.0,app@2.0] environment:production") == 3
    assert total(query="release:app@2.0 OR environment:staging") == 2
    assert total(environment="nowhere") == 0


def test_orderby_and_per_page_limit_groups(api_client, project, now):
    example(api_client, project, now)

    body = sessions(
        api_client, field="sum(session)", groupBy="release", orderBy="-sum(session)", per_page=1
    )

    assert [g["by"] for g in body["groups"]] == [{"release": "app@1.0"}]


def test_projects_the_caller_cannot_access_are_403(api_client, org, project):
    hidden = ProjectFactory(organization=org, slug="hidden")

    status, body = error_of(api_client, field="sum(session)", project=hidden.pk)

    assert status == 403
    assert body == {"detail": "You do not have access to one of the requested projects."}


def test_other_projects_sessions_are_not_counted(api_client, org, project, now):
    hidden = ProjectFactory(organization=org, slug="hidden")
    send_sessions(api_client, hidden, session(release="x@1", started=now))

    body = sessions(api_client, field="sum(session)", project="-1")

    assert body["groups"][0]["totals"] == {"sum(session)": 0}


ERRORS = [
    ({}, 'Request is missing a "field"'),
    ({"field": "sum(sessions)"}, 'Invalid field: "sum(sessions)"'),
    ({"field": "anr_rate()"}, 'Unsupported field: "anr_rate()". ANR rates need ANR data, '
                              "which this server does not store."),
    ({"field": "sum(session)", "groupBy": "user"}, 'Invalid groupBy: "user"'),
    ({"field": "count_unique(user)", "groupBy": "session.status"},
     "Cannot group field count_unique(user) by session.status"),
    ({"field": "sum(session)", "orderBy": "count_unique(user)"},
     '"orderBy" must be one of the provided "fields"'),
    ({"field": "sum(session)", "groupBy": "session.status", "orderBy": "sum(session)"},
     'Cannot use "orderBy" when grouping by "session.status"'),
    ({"field": "sum(session)", "interval": "30m"},
     "The interval has to be a multiple of the minimum interval of one hour."),
    ({"field": "sum(session)", "interval": "2d", "statsPeriod": "4d"},
     "The interval has to be less than one day."),
    ({"field": "sum(session)", "interval": "5h"},
     "The interval should divide one day without a remainder."),
    ({"field": "sum(session)", "interval": "1h", "statsPeriod": "90d"},
     "Your interval and date range would create too many results. Use a larger interval, "
     "or a smaller date range."),
    ({"field": "sum(session)", "interval": "soon"}, "Invalid interval: 'soon'"),
    ({"field": "sum(session)", "statsPeriod": "24x"}, "Invalid statsPeriod: '24x'"),
    ({"field": "sum(session)", "start": "2026-01-01T00:00:00"}, "start and end are both required"),
    ({"field": "sum(session)", "query": "release:a AND"},
     "Condition is missing on the right side of 'AND' operator"),
    ({"field": "sum(session)", "query": "transaction:a"},
     "Invalid key for this search: transaction"),
    ({"field": "sum(session)", "query": "1.0"},
     "Free text is not supported in this search: '1.0'. Use release: or environment:."),
    ({"field": "sum(session)", "per_page": "0"},
     "Invalid per_page: expected a number from 1 to 100."),
]  # fmt: skip


@pytest.mark.parametrize(("params", "detail"), ERRORS)
def test_malformed_parameters_are_400_with_detail(api_client, project, params, detail):
    assert error_of(api_client, **params) == (400, {"detail": detail})


@pytest.mark.parametrize(
    ("now", "params", "first", "count"),
    [
        # Sentry's example: a day in 12 h buckets, every bucket overlapping the window.
        (datetime(2020, 12, 18, 11, 14, 17, tzinfo=UTC), {"statsPeriod": "1d", "interval": "12h"},
         datetime(2020, 12, 17, tzinfo=UTC), 3),
        (datetime(2020, 12, 18, 11, 14, 17, tzinfo=UTC), {"statsPeriod": "24h"},
         datetime(2020, 12, 17, 11, tzinfo=UTC), 25),
        (datetime(2020, 12, 18, 11, 0, tzinfo=UTC), {"start": "2020-12-01T00:00:00Z",
                                                     "end": "2020-12-02T00:00:00Z"},
         datetime(2020, 12, 1, tzinfo=UTC), 24),
        (datetime(2020, 12, 18, 11, 0, tzinfo=UTC), {"statsPeriod": "41d", "interval": "1d"},
         datetime(2020, 11, 7, tzinfo=UTC), 42),
    ],
)  # fmt: skip
def test_window_is_aligned_to_the_interval(now, params, first, count):
    start, end, interval = constrained_window(params, now)

    assert start == first
    assert (end - start).total_seconds() / interval == count


def test_sessions_cost_the_same_queries_whatever_the_data(api_client, project, now):
    fields = {
        "field": [
            "sum(session)",
            "count_unique(user)",
            "crash_rate(user)",
            "p50(session.duration)",
        ],
        "groupBy": ["release", "environment"],
    }

    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            sessions(api_client, **fields)
        return len(queries)

    send_sessions(api_client, project, session(release="a@1", started=now, did=DID, duration=5))
    sessions(api_client, **fields)  # records the token's last use, once a minute
    one = count()
    send_sessions(
        api_client,
        project,
        *(
            session(release=f"a@{i}", started=now - timedelta(hours=i), did=DID, duration=i)
            for i in range(2, 12)
        ),
    )
    assert count() == one


def test_sessions_query_count(api_client, project, now, django_assert_num_queries):
    params = "?field=sum(session)&field=count_unique(user)&field=crash_rate(user)" + (
        "&field=p50(session.duration)&environment=production"
    )
    api_client.get(URL + params)  # records the token's last use, once a minute
    # token, organization with the caller's membership, accessible projects, session rollups
    # (environment subquery inline), users per hour, users seen, durations
    with django_assert_num_queries(7):
        assert api_client.get(URL + params).status_code == 200


def test_user_crash_rate_counts_each_user_once_across_releases(api_client, project, now):
    example(api_client, project, now)

    body = sessions(api_client, field=["crash_rate(user)", "count_unique(user)"])

    assert body["groups"][0]["totals"] == {"crash_rate(user)": 0.5, "count_unique(user)": 2}
    assert set(body["groups"][0]["series"]["crash_rate(user)"]) == {None}
