"""ETag, 304 Not Modified and the answer cache of the release list and details
(docs/performance.md §5): every kind of write makes earlier tags and answers stale."""

from __future__ import annotations

import time

import pytest
from django.core.cache import caches
from django.utils import timezone
from rest_framework.test import APIClient

from releases.health.adoption import refresh_adoption
from releases.models import ChangeStamp, ReleaseProjectEnvironment
from tests.envelopes import send_outcomes
from tests.factories import (
    MemberFactory,
    ProjectFactory,
    ReleaseFactory,
    TeamFactory,
    UserFactory,
    create_token,
)

pytestmark = pytest.mark.django_db

DETAILS = "/api/0/organizations/{org}/releases/{version}/?health=1&adoptionStages=1"
LIST = "/api/0/organizations/{org}/releases/?health=1&per_page=10"


@pytest.fixture(autouse=True)
def _answer_cache(settings):
    settings.RELEASE_CACHE_SECONDS = 300
    caches["responses"].clear()


@pytest.fixture
def release(org, project):
    return ReleaseFactory(organization=org, version="app@1.0.0", projects=[project])


def details(org, release) -> str:
    return DETAILS.format(org=org.slug, version=release.version)


def revalidate(client: APIClient, url: str, tag: str):
    return client.get(url, HTTP_IF_NONE_MATCH=tag)


@pytest.mark.parametrize("route", ["details", "list"])
def test_a_matching_if_none_match_is_a_304_without_a_body(
    api_client, org, release, route, django_assert_num_queries
):
    url = details(org, release) if route == "details" else LIST.format(org=org.slug)
    first = api_client.get(url)
    tag = first["ETag"]

    # Token; the organization with its change stamp and the membership. Nothing of the release.
    with django_assert_num_queries(2):
        again = revalidate(api_client, url, tag)

    assert first.status_code == 200
    assert tag[0] == tag[-1] == '"'
    assert again.status_code == 304
    assert again.content == b""
    assert again["ETag"] == tag
    assert revalidate(api_client, url, '"something else"').status_code == 200
    assert revalidate(api_client, url, f'W/"x", {tag}').status_code == 304


def test_a_cached_answer_is_the_same_answer_for_fewer_queries(
    api_client, org, release, django_assert_num_queries
):
    url = details(org, release)
    fresh = api_client.get(url)

    # Token; the organization with its change stamp and the membership.
    with django_assert_num_queries(2):
        cached = api_client.get(url)

    assert cached.status_code == 200
    assert cached.json() == fresh.json()
    assert cached["ETag"] == fresh["ETag"]
    assert cached["Content-Type"] == fresh["Content-Type"]


def test_an_api_write_changes_the_tag_and_the_answer(api_client, org, release):
    url = details(org, release)
    before = api_client.get(url)

    written = api_client.put(
        f"/api/0/organizations/{org.slug}/releases/{release.version}/",
        {"ref": "deadbeef"},
        format="json",
    )
    after = revalidate(api_client, url, before["ETag"])

    assert written.status_code == 200
    assert before.json()["ref"] is None
    assert after.status_code == 200
    assert after.json()["ref"] == "deadbeef"
    assert after["ETag"] != before["ETag"]


def test_a_refused_write_leaves_the_stamp_alone(api_client, org, release):
    before = api_client.get(details(org, release))

    refused = api_client.put(
        f"/api/0/organizations/{org.slug}/releases/{release.version}/",
        {"dateReleased": "not a date"},
        format="json",
    )

    assert refused.status_code == 400
    assert revalidate(api_client, details(org, release), before["ETag"]).status_code == 304


def test_an_ingested_session_changes_the_tag_and_the_health(client, api_client, org, project):
    release = ReleaseFactory(organization=org, version="app@1.0.0", projects=[project])
    url = details(org, release)
    before = api_client.get(url)

    send_outcomes(client, project, release="app@1.0.0", started=timezone.now(), exited=3)
    after = revalidate(api_client, url, before["ETag"])

    assert before.json()["projects"][0]["healthData"]["totalSessions"] is None
    assert after.status_code == 200
    assert after.json()["projects"][0]["healthData"]["totalSessions"] == 3


def test_an_adoption_change_raises_the_stamp(client, org, project):
    send_outcomes(client, project, release="app@1.0.0", started=timezone.now(), exited=3)
    ReleaseProjectEnvironment.objects.update(adopted=None)
    stamp = ChangeStamp.objects.get(organization=org).value

    refresh_adoption(now=timezone.now())
    unchanged = ChangeStamp.objects.get(organization=org).value
    refresh_adoption(now=timezone.now())

    assert unchanged == stamp + 1
    assert ChangeStamp.objects.get(organization=org).value == unchanged  # nothing moved


def test_an_admin_change_changes_the_tag(client, api_client, org, release):
    url = details(org, release)
    before = api_client.get(url)
    admin = APIClient()
    admin.force_login(UserFactory(is_staff=True, is_superuser=True))

    response = admin.post(
        f"/admin/releases/release/{release.pk}/delete/", {"post": "yes"}, follow=False
    )

    assert response.status_code == 302
    assert revalidate(api_client, url, before["ETag"]).status_code == 404


def test_answers_are_cached_per_caller(api_client, org, project, team, member):
    """A member who sees fewer projects never gets another caller's cached answer."""
    other_team = TeamFactory(organization=org)
    member.teams.add(other_team)
    hidden = ProjectFactory(organization=org, teams=[other_team])
    release = ReleaseFactory(organization=org, version="app@1.0.0", projects=[project, hidden])
    outsider = MemberFactory(organization=org, user=UserFactory(), teams=[team])
    narrow = APIClient()
    narrow.credentials(
        HTTP_AUTHORIZATION=f"Bearer {create_token(user=outsider.user, scopes=['project:releases'])}"
    )
    url = details(org, release)

    mine = api_client.get(url)
    theirs = narrow.get(url)

    assert theirs.status_code == 200, theirs.content
    assert [p["slug"] for p in theirs.json()["projects"]] == [project.slug]
    assert len(mine.json()["projects"]) == 2
    assert mine["ETag"] != theirs["ETag"]
    assert revalidate(narrow, url, mine["ETag"]).status_code == 200


def test_clock_relative_filters_are_not_cached(api_client, org, release):
    for query in ("statsPeriod=24h", "query=release.created:-1d"):
        response = api_client.get(f"/api/0/organizations/{org.slug}/releases/?{query}")
        assert response.status_code == 200
        assert "ETag" not in response


def test_tags_turn_with_the_freshness_window(api_client, org, release, settings, monkeypatch):
    url = details(org, release)
    tag = api_client.get(url)["ETag"]

    later = time.time() + settings.RELEASE_CACHE_SECONDS
    monkeypatch.setattr(time, "time", lambda: later)

    assert revalidate(api_client, url, tag).status_code == 200
