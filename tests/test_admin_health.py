"""Release health in the admin: the release list's columns, sorts and filters, the release
page's chart and the compare page, with their query counts."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from releases.health.adoption import refresh_adoption
from releases.health.dashboard import main_environments
from releases.models import Release, SessionRollup
from tests.envelopes import send_outcomes
from tests.factories import DeployFactory, ProjectFactory, ReleaseFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


@pytest.fixture
def sdk():
    return APIClient()


def hour_ago(hours: int = 1):
    return timezone.now().replace(minute=5, second=0, microsecond=0) - timedelta(hours=hours)


def changelist(client, **params):
    response = client.get(reverse("admin:releases_release_changelist"), params)
    assert response.status_code == 200
    return response


def row_texts(response) -> list[list[str]]:
    """The release list's rows as the cells' text."""
    html = response.content.decode()
    body = html.split('<table id="result_list">', 1)[1].split("</tbody>", 1)[0]
    rows = re.findall(r"<tr.*?</tr>", body.split("<tbody>", 1)[1], re.S)
    return [
        [
            re.sub(r"<[^>]+>", "", cell).strip()
            for cell in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", r, re.S)
        ]
        for r in rows
    ]


def column(response, name: str) -> int:
    """The ``o`` index of a list column."""
    return response.context["cl"].list_display.index(name)


def test_release_list_shows_health_as_a_person_reads_it(staff_client, sdk, project):
    send_outcomes(sdk, project, release="app@1.0.0", started=hour_ago(), exited=1389,
                  errored=1, crashed=10)  # fmt: skip
    refresh_adoption(now=timezone.now())

    response = changelist(staff_client)

    (row,) = row_texts(response)
    # version, status, project, crash-free sessions and users, sessions, adoption, stage...
    assert row[1:9] == ["app@1.0.0", "open", "backend", "99.2 %", "—", "1.4k", "100 %", "Adopted"]
    assert 'class="stage-badge stage-adopted"' in response.content.decode()


def test_release_list_sorts_by_crash_free_sessions_as_the_api_does(
    staff_client, sdk, api_client, org, project
):
    for version, crashed in [("app@1", 5), ("app@2", 30), ("app@3", 0), ("app@4", 12)]:
        send_outcomes(sdk, project, release=version, started=hour_ago(), exited=100 - crashed,
                      crashed=crashed)  # fmt: skip
    ReleaseFactory(organization=org, version="app@quiet", projects=[project])
    index = column(changelist(staff_client), "crash_free_sessions")

    ascending = changelist(staff_client, o=str(index))
    descending = changelist(staff_client, o=f"-{index}")
    api = api_client.get(
        f"/api/0/organizations/{org.slug}/releases/",
        {"sort": "crash_free_sessions", "flatten": "1", "project": project.pk},
    )

    assert api.status_code == 200, api.content
    by_api = [r["version"] for r in api.json()]
    assert [r[1] for r in row_texts(ascending)] == by_api == [
        "app@2", "app@4", "app@1", "app@3", "app@quiet",
    ]  # fmt: skip
    assert [r[4] for r in row_texts(ascending)] == ["70.0 %", "88.0 %", "95.0 %", "100 %", "—"]
    # Reversed, releases without data stay last.
    assert [r[1] for r in row_texts(descending)] == [
        "app@3", "app@1", "app@4", "app@2", "app@quiet",
    ]  # fmt: skip


def test_release_list_sorts_by_sessions_in_24_hours(staff_client, sdk, project):
    for version, sessions in [("app@1", 5), ("app@2", 50), ("app@3", 20)]:
        send_outcomes(sdk, project, release=version, started=hour_ago(), exited=sessions)
    index = column(changelist(staff_client), "sessions_24h")

    response = changelist(staff_client, o=str(index))

    assert [r[1] for r in row_texts(response)] == ["app@2", "app@3", "app@1"]


def test_release_list_filters_by_environment_and_stage(staff_client, sdk, project):
    send_outcomes(sdk, project, release="app@1", started=hour_ago(), exited=95)
    send_outcomes(sdk, project, release="app@2", started=hour_ago(), exited=5)
    send_outcomes(sdk, project, release="app@3", started=hour_ago(), environment="staging",
                  exited=10, crashed=10)  # fmt: skip
    refresh_adoption(now=timezone.now())
    staging = project.organization.environments.get(name="staging").pk

    in_staging = changelist(staff_client, environment=staging)
    adopted = changelist(staff_client, stage="adopted")
    low = changelist(staff_client, stage="low_adoption")
    adopted_in_staging = changelist(staff_client, stage="adopted", environment=staging)
    bad = staff_client.get(reverse("admin:releases_release_changelist"), {"stage": "nope"})

    # In staging the health columns count staging only: app@3 crashed half its sessions.
    assert [r[1:5] for r in row_texts(in_staging)] == [["app@3", "open", "backend", "50.0 %"]]
    # The main environment is production (it has sessions): app@1 has 95 % of them.
    assert [r[1] for r in row_texts(adopted)] == ["app@1"]
    assert [r[1] for r in row_texts(low)] == ["app@2"]
    assert [r[1] for r in row_texts(adopted_in_staging)] == ["app@3"]
    assert bad.status_code == 302  # the admin's answer to an unknown filter value: ?e=1
    assert "e=1" in bad["Location"]


def count_queries(client, path, **params) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(path, params)
    assert response.status_code == 200
    return len(queries)


def releases_with_sessions(project, sdk, n: int, start: int = 0) -> list[Release]:
    for i in range(start, start + n):
        send_outcomes(sdk, project, release=f"app@{i}", started=hour_ago(), exited=10, crashed=i)
    refresh_adoption(now=timezone.now())
    return list(Release.objects.filter(projects=project))


def test_release_list_with_health_costs_the_same_for_1_and_10_releases(staff_client, sdk, org):
    project = ProjectFactory(organization=org)
    path = reverse("admin:releases_release_changelist")
    releases_with_sessions(project, sdk, 1)
    one = count_queries(staff_client, path, o="4")
    releases_with_sessions(ProjectFactory(organization=org), sdk, 9, start=1)

    assert count_queries(staff_client, path, o="4") == one


def test_release_page_chart_matches_the_sessions_and_marks_the_deploy(staff_client, sdk, project):
    send_outcomes(sdk, project, release="app@1.0.0", started=hour_ago(3), exited=40, errored=3,
                  crashed=5, abnormal=2)  # fmt: skip
    send_outcomes(sdk, project, release="app@1.0.0", started=hour_ago(1), exited=20, crashed=1)
    release = Release.objects.get(version="app@1.0.0")
    DeployFactory(release=release, environment__name="production", name="to production",
                  date_finished=hour_ago(2))  # fmt: skip
    path = reverse("admin:releases_release_change", args=[release.pk])

    response = staff_client.get(path, {"health-period": "24h"})

    html = response.content.decode()
    svg = html.split('<svg id="sessions-chart"', 1)[1].split("</svg>", 1)[0]
    segments = re.findall(r'data-outcome="(\w+)" data-count="(\d+)"', svg)
    totals: dict[str, int] = {}
    for outcome, count in segments:
        totals[outcome] = totals.get(outcome, 0) + int(count)
    rollups = SessionRollup.objects.filter(release=release)
    assert sum(totals.values()) == sum(r.sessions for r in rollups) == 71
    assert totals == {"healthy": 60, "errored": 3, "crashed": 6, "abnormal": 2}
    assert 'role="img"' in svg
    assert '<title id="sessions-chart-title">' in svg
    assert '<desc id="sessions-chart-desc">' in svg
    assert svg.count('class="deploy-marker"') == 1
    assert 'id="sessions-chart-table"' in html  # the text alternative
    assert re.search(r'id="health-crash-free-sessions"><span class="rate rate-bad">91.5 %', html)
    assert "Adoption in backend" in html


def test_release_page_health_choices_and_bad_values(staff_client, sdk, project):
    send_outcomes(sdk, project, release="app@1.0.0", started=hour_ago(30), exited=9, crashed=1)
    send_outcomes(sdk, project, release="app@1.0.0", started=hour_ago(2), exited=4)
    release = Release.objects.get(version="app@1.0.0")
    path = reverse("admin:releases_release_change", args=[release.pk])

    week = staff_client.get(path, {"health-period": "7d"}).content.decode()
    day = staff_client.get(path, {"health-period": "24h"}).content.decode()
    bad = staff_client.get(path, {"health-period": "1y", "health-project": "x"})

    assert week.count('class="bucket"') == 7
    assert re.search(r'data-outcome="crashed" data-count="1"', week)
    assert day.count('class="bucket"') == 24
    assert 'data-outcome="crashed"' not in day  # 30 hours ago: outside the last 24
    assert "no chart" not in day
    assert bad.status_code == 200
    assert "Some choices were not understood" in bad.content.decode()


def test_release_page_without_sessions_shows_a_line_instead_of_a_chart(staff_client, project):
    release = ReleaseFactory(organization=project.organization, projects=[project])

    html = staff_client.get(reverse("admin:releases_release_change", args=[release.pk]))

    assert 'class="release-empty no-sessions"' in html.content.decode()
    assert 'id="sessions-chart"' not in html.content.decode()


def test_compare_page_lists_releases_newest_first_with_sparklines(staff_client, sdk, org, project):
    now = timezone.now()
    # Today (UTC), whatever the hour: the sparklines' last point is today's.
    today = max(hour_ago(), now.replace(hour=0, minute=0, second=0, microsecond=0))
    for age, version, crashed in [(3, "app@1", 1), (2, "app@2", 10), (1, "app@3", 2)]:
        ReleaseFactory(organization=org, version=version, projects=[project],
                       date_added=now - timedelta(days=age))  # fmt: skip
        send_outcomes(sdk, project, release=version, started=today, exited=20 - crashed,
                      crashed=crashed)  # fmt: skip
    path = reverse("admin:releases_project_releases", args=[project.pk])

    html = staff_client.get(path).content.decode()

    versions = re.findall(r'class="compare-row" data-version="([^"]+)"', html)
    assert versions == ["app@3", "app@2", "app@1"]
    # app@2 (50 % crash-free) is worse than app@1 (95 %); app@3 (90 %) better than app@2.
    changes = re.findall(r'class="change change-(\w+)">([^<]+)<', html)
    assert changes == [("better", "▲ 40.0 pts"), ("worse", "▼ 45.0 pts")]
    sparks = re.findall(r'class="sparkline" role="img"[^>]*data-values="([^"]+)"', html)
    assert len(sparks) == 3
    assert [s.split(", ")[-1] for s in sparks] == ["20", "20", "20"]
    assert len(sparks[0].split(", ")) == 14
    project_page = staff_client.get(reverse("admin:releases_project_change", args=[project.pk]))
    assert path in project_page.content.decode()


def test_compare_page_costs_the_same_for_1_and_10_releases(staff_client, sdk, org):
    project = ProjectFactory(organization=org)
    path = reverse("admin:releases_project_releases", args=[project.pk])
    releases_with_sessions(project, sdk, 1)
    one = count_queries(staff_client, path)
    releases_with_sessions(project, sdk, 9, start=1)

    assert count_queries(staff_client, path) == one


def test_compare_page_query_count_is_pinned(staff_client, sdk, org, django_assert_num_queries):
    project = ProjectFactory(organization=org)
    releases_with_sessions(project, sdk, 10)
    path = reverse("admin:releases_project_releases", args=[project.pk])

    # Session, user; the project (with its organization); the count of its releases and the
    # page (one more: the release before the last shown); health_data with the 14-day series
    # (the rollups: counters, project sessions and series in one UNION ALL; users, project
    # users and durations in another: 2); the main environment; the adoption rows.
    with django_assert_num_queries(9):
        response = staff_client.get(path)

    assert response.status_code == 200


def test_compare_page_of_an_unknown_project_is_a_404(staff_client):
    assert staff_client.get("/admin/releases/project/999999/releases/").status_code == 404


def test_main_environment_is_production_else_the_busiest(sdk, org):
    with_production = ProjectFactory(organization=org)
    without = ProjectFactory(organization=org)
    send_outcomes(sdk, with_production, release="a@1", started=hour_ago(), exited=1)
    send_outcomes(sdk, with_production, release="a@1", started=hour_ago(), environment="canary",
                  exited=50)  # fmt: skip
    send_outcomes(sdk, without, release="b@1", started=hour_ago(), environment="canary",
                  exited=5)  # fmt: skip
    send_outcomes(sdk, without, release="b@1", started=hour_ago(), environment="beta", exited=9)

    found = main_environments([with_production.pk, without.pk], timezone.now())

    assert {p: e.name for p, e in found.items()} == {
        with_production.pk: "production",
        without.pk: "beta",
    }
