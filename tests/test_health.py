"""healthData, session bounds, adoption stages and health sorts, from ingested sessions."""

from __future__ import annotations

import io
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from releases.api.serializers import serialize_health
from releases.health import reads, sorts
from releases.health.adoption import maybe_refresh_adoption, refresh_adoption
from releases.health.reads import HealthQuery, ReleaseHealth
from releases.models import (
    Environment,
    ErroredSession,
    Project,
    Release,
    ReleaseProject,
    ReleaseProjectEnvironment,
    ReleaseUserLast,
    ReleaseUserSeen,
    SessionDuration,
    SessionDurationDay,
    SessionUpdateKey,
    SessionUser,
    SessionUserLast,
    SessionUserSeen,
)
from tests.envelopes import aggregates, envelope, item, post_envelope, send_sessions, session
from tests.factories import ProjectFactory

pytestmark = pytest.mark.django_db

DID = "d1a7b6c2-5a43-4f0e-9d61-1c3e5f9b7a20"


def details(client: APIClient, version: str, **params: str) -> dict[str, Any]:
    query = "&".join(f"{k}={v}" for k, v in {"health": "1", **params}.items())
    response = client.get(f"/api/0/organizations/acme/releases/{version}/?{query}")
    assert response.status_code == 200, response.content
    return response.json()


def health_of(client: APIClient, version: str, **params: str) -> dict[str, Any]:
    return details(client, version, **params)["projects"][0]["healthData"]


def stats_at(data: dict[str, Any], key: str, moment: datetime) -> int:
    """The stats value of the bucket holding ``moment``."""
    series = data["stats"][key]
    stamp = moment.timestamp()
    return next(v for t, v in reversed(series) if t <= stamp)


def example_vector(client: APIClient, project: Project, now: datetime) -> None:
    """docs/health.md §1.5: all updates started now, environment prod, one did."""
    a, b, c = (f"0000000{i}-0000-4000-8000-000000000000" for i in "abc")
    send_sessions(
        client,
        project,
        session(
            sid=a,
            release="foo@1.0.0",
            environment="prod",
            started=now,
            did=DID,
            status="exited",
            duration=60,
        ),
        session(sid=b, release="foo@1.0.0", environment="prod", started=now, did=DID, status="ok"),
        session(
            sid=b,
            release="foo@1.0.0",
            environment="prod",
            started=now,
            did=DID,
            status="exited",
            init=False,
            seq=1,
            duration=30,
        ),
        session(
            sid=c,
            release="foo@2.0.0",
            environment="prod",
            started=now,
            did=DID,
            status="crashed",
            duration=60,
        ),
    )


def test_example_vector_gives_documented_health_numbers(api_client, project):
    now = timezone.now() - timedelta(seconds=1)
    example_vector(api_client, project, now)

    first = health_of(api_client, "foo@1.0.0", summaryStatsPeriod="24h")
    second = health_of(api_client, "foo@2.0.0", summaryStatsPeriod="24h")

    series = first.pop("stats")["24h"]
    assert len(series) == 24
    assert sum(v for _, v in series) == 2
    assert stats_at({"stats": {"24h": series}}, "24h", now) == 2
    assert first == {
        "durationP50": 45.0,
        "durationP90": 57.0,
        "crashFreeUsers": 100.0,
        "crashFreeSessions": 100.0,
        "sessionsCrashed": 0,
        "sessionsErrored": 0,
        "totalUsers": 1,
        "totalUsers24h": 1,
        "totalProjectUsers24h": 1,
        "totalSessions": 2,
        "totalSessions24h": 2,
        "totalProjectSessions24h": 3,
        "adoption": 100.0,
        "sessionsAdoption": 66.66666666666666,
        "hasHealthData": True,
    }
    assert stats_at(second, "24h", now) == 1
    del second["stats"]
    assert second == {
        "durationP50": None,
        "durationP90": None,
        "crashFreeUsers": 0.0,
        "crashFreeSessions": 0.0,
        "sessionsCrashed": 1,
        "sessionsErrored": 0,
        "totalUsers": 1,
        "totalUsers24h": 1,
        "totalProjectUsers24h": 1,
        "totalSessions": 1,
        "totalSessions24h": 1,
        "totalProjectSessions24h": 3,
        "adoption": 100.0,
        "sessionsAdoption": 33.33333333333333,
        "hasHealthData": True,
    }


def test_example_vector_with_second_user_changes_adoption(api_client, project):
    now = timezone.now() - timedelta(seconds=1)
    example_vector(api_client, project, now)

    send_sessions(
        api_client,
        project,
        session(
            release="foo@2.0.0", environment="prod", started=now, did="user-2", status="crashed"
        ),
    )

    first = health_of(api_client, "foo@1.0.0", summaryStatsPeriod="24h")
    second = health_of(api_client, "foo@2.0.0", summaryStatsPeriod="24h")
    assert (first["adoption"], first["sessionsAdoption"]) == (50.0, 50.0)
    assert (first["totalProjectUsers24h"], first["totalProjectSessions24h"]) == (2, 4)
    assert (second["totalUsers24h"], second["adoption"]) == (2, 100.0)
    assert (second["totalSessions24h"], second["sessionsAdoption"]) == (2, 50.0)


def test_errored_sessions_count_each_sid_once_and_exclude_fatal(api_client, project):
    now = timezone.now() - timedelta(seconds=1)
    sid = "11111111-1111-4111-8111-111111111111"

    send_sessions(
        api_client,
        project,
        session(sid=sid, started=now, status="ok", errors=1),
        session(sid=sid, started=now, status="exited", errors=2, init=False, seq=2),
        session(started=now, status="abnormal"),
        session(started=now, status="crashed", errors=1),
    )

    data = health_of(api_client, "app@1.0.0")
    assert data["totalSessions"] == 3
    assert data["sessionsErrored"] == 1
    assert data["sessionsCrashed"] == 1
    assert data["crashFreeSessions"] == 100 - 1 / 3 * 100
    assert data["totalUsers"] is None
    assert data["crashFreeUsers"] is None


def test_aggregates_count_sessions_without_users_or_durations(api_client, project):
    now = timezone.now() - timedelta(seconds=1)
    body = envelope(
        item(
            "sessions",
            aggregates(
                [
                    {
                        "started": now.isoformat(),
                        "exited": 5,
                        "errored": 2,
                        "crashed": 1,
                        "abnormal": 1,
                    }
                ]
            ),
        )
    )

    response = post_envelope(api_client, project, body)

    assert response.status_code == 200, response.content
    data = health_of(api_client, "app@1.0.0")
    assert (data["totalSessions"], data["sessionsCrashed"], data["sessionsErrored"]) == (9, 1, 2)
    assert data["crashFreeSessions"] == 100 - 1 / 9 * 100
    assert (data["totalUsers"], data["durationP50"]) == (None, None)


def test_release_without_recent_data_has_zero_24h_counts_and_older_fallback(api_client, project):
    old = timezone.now() - timedelta(days=4)
    send_sessions(api_client, project, session(started=old, did="u1"))

    data = health_of(api_client, "app@1.0.0", summaryStatsPeriod="24h")

    assert data["hasHealthData"] is True  # the 90-day fallback
    assert (data["totalSessions"], data["totalUsers"]) == (None, None)
    assert (data["crashFreeSessions"], data["sessionsCrashed"]) == (None, 0)
    assert data["totalSessions24h"] == 0
    assert data["totalUsers24h"] == 0
    assert data["totalProjectSessions24h"] == 0
    assert (data["adoption"], data["sessionsAdoption"]) == (None, None)
    assert health_of(api_client, "app@1.0.0")["totalSessions"] == 1  # default 14d


def test_release_without_sessions_has_the_no_data_shape(api_client, project, org):
    Release.objects.create(organization=org, version="plain@1").projects.add(project)

    data = health_of(api_client, "plain@1")

    assert data == serialize_health(ReleaseHealth(series=[]), "24h") | {"stats": data["stats"]}
    assert [v for _, v in data["stats"]["24h"]] == [0] * 24


@pytest.mark.parametrize(("period", "rollup", "count"), [("7d", 86400, 7), ("90d", 259200, 30)])
def test_stats_follow_health_stats_period(api_client, project, period, rollup, count):
    started = timezone.now() - timedelta(days=2)
    send_sessions(api_client, project, session(started=started), session(started=started))

    data = health_of(api_client, "app@1.0.0", healthStatsPeriod=period)

    series = data["stats"][period]
    assert len(series) == count
    assert all(t % rollup == 0 for t, _ in series)
    assert stats_at(data, period, started) == 2
    assert sum(v for _, v in series) == 2


def test_project_entry_and_session_bounds(api_client, project):
    now = timezone.now() - timedelta(seconds=1)
    earlier = now - timedelta(hours=3)
    send_sessions(api_client, project, session(started=earlier), session(started=now))

    body = details(api_client, "app@1.0.0", project=str(project.pk))

    hour = "%Y-%m-%dT%H:00:00Z"
    assert body["projects"][0]["hasHealthData"] is True
    assert body["currentProjectMeta"]["sessionsLowerBound"] == earlier.strftime(hour)
    assert body["currentProjectMeta"]["sessionsUpperBound"] == now.strftime(hour)


def test_health_data_costs_the_same_queries_for_one_or_many_pairs(api_client, project):
    now = timezone.now() - timedelta(seconds=1)
    for index in range(10):
        send_sessions(
            api_client,
            project,
            *(session(release=f"app@1.{index}", started=now, did=f"u{n}") for n in range(3)),
        )
    query = HealthQuery(summary_period="14d", stats_period="24h")
    ids = Release.objects.filter(version__startswith="app@1.").values_list("pk", flat=True)
    pairs = [(project.pk, release_id) for release_id in ids]

    with CaptureQueriesContext(connection) as one:
        reads.health_data(pairs[:1], query, timezone.now())
    with CaptureQueriesContext(connection) as many:
        result = reads.health_data(pairs, query, timezone.now())

    # 1 the rollups (counters per pair, project sessions and the series: one UNION ALL),
    # 2 users per pair, project users and durations (one UNION ALL).
    assert len(pairs) == 10
    assert len(one) == len(many) == 2
    assert {health.total_sessions for health in result.values()} == {3}


def test_details_with_health_costs_the_same_queries_whatever_the_sessions(api_client, project):
    now = timezone.now() - timedelta(seconds=1)
    send_sessions(api_client, project, session(started=now, did="u0"))
    url = f"/api/0/organizations/acme/releases/app@1.0.0/?health=1&project={project.pk}"

    with CaptureQueriesContext(connection) as few:
        assert api_client.get(url).status_code == 200
    for batch in range(5):
        send_sessions(
            api_client,
            project,
            *(
                session(started=now - timedelta(hours=n), did=f"u{batch}-{n}", duration=n)
                for n in range(20)
            ),
        )
    with CaptureQueriesContext(connection) as many:
        assert api_client.get(url).status_code == 200

    assert len(few) == len(many)


# -- Adoption stages -------------------------------------------------------------------------


def stages(client: APIClient, version: str) -> dict[str, Any]:
    response = client.get(f"/api/0/organizations/acme/releases/{version}/?adoptionStages=1")
    assert response.status_code == 200, response.content
    return response.json()["adoptionStages"]


def test_adoption_stage_moves_from_adopted_to_replaced(api_client, project):
    now = timezone.now() - timedelta(seconds=1)
    send_sessions(api_client, project, *(session(release="app@1", started=now) for _ in range(5)))
    refresh_adoption(now=now)
    assert stages(api_client, "app@1")["backend"]["stage"] == "adopted"
    adopted_at = stages(api_client, "app@1")["backend"]["adopted"]

    send_sessions(api_client, project, *(session(release="app@2", started=now) for _ in range(95)))
    later = now + timedelta(minutes=5)
    refresh_adoption(now=later)

    assert stages(api_client, "app@2")["backend"]["stage"] == "adopted"
    old = stages(api_client, "app@1")["backend"]
    assert old["stage"] == "replaced"
    assert old["adopted"] == adopted_at
    assert old["unadopted"] is not None


def test_adoption_ignores_the_empty_environment_and_small_releases(api_client, project):
    now = timezone.now() - timedelta(seconds=1)
    send_sessions(
        api_client,
        project,
        session(release="quiet@1", environment=None, started=now),
        session(release="tiny@1", started=now),
        *(session(release="big@1", started=now) for _ in range(10)),
    )

    refresh_adoption(now=now)

    assert stages(api_client, "quiet@1")["backend"]["stage"] == "low_adoption"
    assert stages(api_client, "tiny@1")["backend"]["stage"] == "low_adoption"
    assert stages(api_client, "big@1")["backend"]["stage"] == "adopted"


def test_adoption_refreshes_on_ingest_at_most_once_a_minute(api_client, project, org):
    now = timezone.now()

    send_sessions(api_client, project, session(release="app@1", started=now))

    assert stages(api_client, "app@1")["backend"]["stage"] == "adopted"
    assert maybe_refresh_adoption(organization_id=org.pk, now=timezone.now()) is False
    later = timezone.now() + timedelta(seconds=61)
    assert maybe_refresh_adoption(organization_id=org.pk, now=later) is True


def test_monitor_adoption_command_refreshes_every_organization(api_client, project):
    now = timezone.now()
    send_sessions(api_client, project, session(release="app@1", started=now))
    ReleaseProjectEnvironment.objects.update(adopted=None)

    call_command("monitor_adoption", stdout=io.StringIO())

    assert stages(api_client, "app@1")["backend"]["stage"] == "adopted"


def test_monitor_adoption_prunes_keys_no_update_can_match(api_client, project):
    now = timezone.now()
    send_sessions(api_client, project, session(release="app@1", started=now))
    kept = SessionUpdateKey.objects.get()
    SessionUpdateKey.objects.create(
        project=project, key=uuid.uuid4(), received=now - timedelta(days=7)
    )

    call_command("monitor_adoption", stdout=io.StringIO())

    assert list(SessionUpdateKey.objects.all()) == [kept]


def test_deleting_a_project_deletes_its_delivery_keys(api_client, project):
    """The keys' project has no foreign-key constraint (migration 0012): Django's cascade
    deletes them."""
    other = ProjectFactory(organization=project.organization)
    now = timezone.now()
    send_sessions(api_client, project, session(release="app@1", started=now))
    send_sessions(api_client, other, session(release="app@1", started=now))

    project.delete()

    assert list(SessionUpdateKey.objects.values_list("project_id", flat=True)) == [other.pk]


def test_deleting_a_release_deletes_its_health_rows(api_client, project):
    """The per-row tables have no foreign-key constraints (migration 0013): Django's cascade
    deletes them, and the other release's rows stay."""
    now = timezone.now()
    send_sessions(
        api_client,
        project,
        session(release="app@1", started=now, status="crashed", did="u1"),
        session(release="app@1", started=now, status="exited", did="u2", duration=5.0),
        session(release="app@2", started=now, did="u1"),
    )
    per_row = (
        SessionUser,
        SessionUserSeen,
        ReleaseUserSeen,
        SessionUserLast,
        ReleaseUserLast,
        SessionDuration,
        SessionDurationDay,
        ErroredSession,
    )
    doomed = Release.objects.get(version="app@1")
    assert [m.__name__ for m in per_row if not m.objects.filter(release=doomed).exists()] == []

    doomed.delete()

    assert [m.__name__ for m in per_row if m.objects.filter(release_id=doomed.pk).exists()] == []
    assert SessionUserSeen.objects.filter(release__version="app@2").exists()


def test_stage_filter_selects_releases_by_stage(api_client, project):
    now = timezone.now() - timedelta(seconds=1)
    send_sessions(
        api_client,
        project,
        *(session(release="app@1", started=now) for _ in range(9)),
        session(release="app@2", started=now - timedelta(days=1)),
    )
    refresh_adoption(now=now)
    env = Environment.objects.get(name="production")

    def matching(*wanted: str) -> set[str]:
        q = sorts.stage_filter(wanted, environment_id=env.pk, project_ids=[project.pk])
        return set(Release.objects.filter(q).values_list("version", flat=True))

    assert matching("adopted") == {"app@1"}
    assert matching("low_adoption") == {"app@2"}
    assert matching("replaced") == set()
    with pytest.raises(ValueError, match=r"Unsupported release.stage value\."):
        matching("bogus")


# -- Sorting by health -----------------------------------------------------------------------


@pytest.fixture
def ranked(api_client, project) -> Project:
    """app@1: 3 sessions, 1 crash; app@2: 5 sessions, none; app@3: 1 crash of 1; app@4: none."""
    now = timezone.now() - timedelta(seconds=1)
    base = datetime(2024, 1, 1, tzinfo=UTC)
    for index in range(1, 5):
        release = Release.objects.create(
            organization=project.organization,
            version=f"app@{index}",
            date_added=base + timedelta(days=index),
        )
        release.projects.add(project)
    send_sessions(
        api_client,
        project,
        *(session(release="app@1", started=now, did=f"a{n}") for n in range(2)),
        session(release="app@1", started=now, status="crashed", did="a9"),
        *(session(release="app@2", started=now, did=f"b{n}") for n in range(5)),
        session(release="app@3", started=now, status="crashed", did="c1"),
    )
    return project


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("sessions", ["app@2", "app@1", "app@3", "app@4"]),
        ("users", ["app@2", "app@1", "app@3", "app@4"]),
        ("sessions_24h", ["app@2", "app@1", "app@3", "app@4"]),
        ("crash_free_sessions", ["app@3", "app@1", "app@2", "app@4"]),
        ("crash_free_users", ["app@3", "app@1", "app@2", "app@4"]),
    ],
)
def test_order_by_health_ranks_flattened_rows_and_puts_no_data_last(ranked, sort, expected):
    rows = ReleaseProject.objects.filter(project=ranked).select_related("release")

    ordered = sorts.order_by_health(rows, sort, now=timezone.now())

    assert [row.release.version for row in ordered] == expected
    pages = [list(ordered[i : i + 3]) for i in range(0, 4, 3)]
    assert [row.release.version for page in pages for row in page] == expected


def test_details_prev_next_follow_the_health_sort(api_client, ranked):
    def meta(version: str, sort: str) -> tuple[str | None, str | None]:
        body = details(api_client, version, project=str(ranked.pk), sort=sort)
        current = body["currentProjectMeta"]
        return current["nextReleaseVersion"], current["prevReleaseVersion"]

    assert meta("app@1", "sessions") == ("app@2", "app@3")
    assert meta("app@2", "sessions") == (None, "app@1")
    assert meta("app@3", "sessions") == ("app@1", "app@4")
    assert meta("app@4", "sessions") == ("app@3", None)
    assert meta("app@1", "crash_free_sessions") == ("app@3", "app@2")
    assert meta("app@1", "date") == ("app@2", None)


def test_other_project_is_unaffected(api_client, project, org):
    other = ProjectFactory(organization=org, slug="other")
    now = timezone.now() - timedelta(seconds=1)
    send_sessions(api_client, other, session(started=now))
    send_sessions(api_client, project, session(started=now), session(started=now))

    release = Release.objects.get(version="app@1.0.0")
    data = reads.health_data(
        [(project.pk, release.pk), (other.pk, release.pk)], HealthQuery(), timezone.now()
    )

    assert data[project.pk, release.pk].total_project_sessions_24h == 2
    assert data[other.pk, release.pk].total_sessions == 1


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("sessions", ["app@2", "app@1", "app@3", "app@4"]),
        ("users_24h", ["app@2", "app@1", "app@3", "app@4"]),
        ("crash_free_sessions", ["app@3", "app@1", "app@2", "app@4"]),
    ],
)
def test_release_list_health_sort_walks_each_row_once(api_client, org, ranked, sort, expected):
    url = f"/api/0/organizations/{org.slug}/releases/?flatten=1&per_page=1&sort={sort}"
    seen = []
    for _ in range(10):
        response = api_client.get(url)
        assert response.status_code == 200, response.content
        seen += [r["version"] for r in response.json()]
        next_link = response["Link"].split(", ")[1]
        if 'results="true"' not in next_link:
            break
        url = next_link[1 : next_link.index(">")]

    assert seen == expected
