"""GET /api/0/organizations/{org}/releases/{version}/: the documented example and its rules."""

from __future__ import annotations

import io
import itertools
import json
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import ApiToken, User
from releases.api.serializers import iso
from releases.models import ReleaseCommit, ReleaseProject, ReleaseStatus
from tests.factories import (
    CommitAuthorFactory,
    CommitFactory,
    DeployFactory,
    EnvironmentFactory,
    MemberFactory,
    OrganizationFactory,
    ProjectFactory,
    PullRequestFactory,
    ReleaseFactory,
    ReleaseProjectEnvironmentFactory,
    RepositoryFactory,
    TeamFactory,
    UserEmailFactory,
    UserFactory,
    create_token,
)

pytestmark = pytest.mark.django_db

# The documented example response of docs/api.md (a copy of Sentry's, kept with the tests).
EXAMPLE_PATH = Path(__file__).resolve().parent / "data/release-details.example.json"
EXAMPLE_URL = "/api/0/organizations/sentry/releases/control@abc123/?health=1&adoptionStages=1"

# Where our answer may differ from the hand-written example, and why.
EXPECTED_DIFFERENCES = {
    ".id",  # database id
    ".versionInfo.description",  # the real parser gives "control@abc123" (docs/api.md §2.2)
    ".versionInfo.buildHash",  # "abc123" is no hash length under the parser: null
    ".lastCommit.pullRequest.repository.url",  # the example shows two urls for one repository
    ".lastDeploy.id",  # a string id (docs/decisions.md)
    ".authors[0].id",  # a string id (docs/decisions.md)
}
VOLATILE = {"id", "avatarUrl", "dateCreated"}


def flatten(value: Any, path: str = "") -> dict[str, Any]:
    """``{path: leaf}`` for every leaf; dict and list shapes become part of the path."""
    if isinstance(value, dict):
        items = {}
        for key, child in value.items():
            items.update(flatten(child, f"{path}.{key}"))
        return items or {path: {}}
    if isinstance(value, list) and path.endswith(".24h"):
        return {path: "stats"}  # bucket layout follows healthStatsPeriod (docs/decisions.md)
    if isinstance(value, list):
        items = {}
        for index, child in enumerate(value):
            items.update(flatten(child, f"{path}[{index}]"))
        return items or {path: []}
    return {path: value}


@pytest.fixture
def seeded_client() -> APIClient:
    call_command("seed", stdout=io.StringIO())
    raj = User.objects.get(username="rajraspberry")
    client = APIClient()
    client.credentials(
        HTTP_AUTHORIZATION=f"Bearer {create_token(user=raj, scopes=['project:read'])}"
    )
    return client


def test_example_response_matches_documented_example_key_for_key(seeded_client: APIClient):
    example = json.loads(EXAMPLE_PATH.read_text())

    response = seeded_client.get(EXAMPLE_URL)

    assert response.status_code == 200, response.content
    ours, theirs = flatten(response.json()), flatten(example)
    missing = sorted(set(theirs) - set(ours))
    assert missing == []
    differing = {
        path
        for path, value in theirs.items()
        if ours[path] != value and path.rsplit(".", 1)[-1] not in VOLATILE
    }
    ids = {p for p in differing if p.endswith(".id") and str(ours[p]) != str(theirs[p])}
    emails = {p for p in differing if "emails[" in p}
    assert differing - ids - emails - EXPECTED_DIFFERENCES == set()


def test_example_response_has_string_ids_and_hourly_stats(seeded_client: APIClient):
    body = seeded_client.get(EXAMPLE_URL).json()

    assert isinstance(body["id"], int)
    assert isinstance(body["lastDeploy"]["id"], str)
    assert isinstance(body["authors"][0]["id"], str)
    assert isinstance(body["lastCommit"]["repository"]["id"], str)
    assert body["projects"][0]["id"] > 0
    stats = body["projects"][0]["healthData"]["stats"]["24h"]
    assert len(stats) == 24
    assert all(b[0] - a[0] == 3600 for a, b in itertools.pairwise(stats))
    assert body["versionInfo"] == {
        "package": "control",
        "version": {"raw": "abc123"},
        "description": "control@abc123",
        "buildHash": None,
    }


# --- Helpers -----------------------------------------------------------------------------------


def url(org: Any, version: str, **params: str) -> str:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return f"/api/0/organizations/{org.slug}/releases/{version}/" + (f"?{query}" if query else "")


@pytest.fixture
def release(org, project):
    return ReleaseFactory(organization=org, version="app@1.0.0", projects=[project])


# --- Boolean parameters ------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["1", "true", "TRUE", "yes", "on"])
def test_health_true_values_include_health_data(api_client, org, release, value):
    response = api_client.get(url(org, release.version, health=value))

    assert response.status_code == 200, response.content
    assert "healthData" in response.json()["projects"][0]


@pytest.mark.parametrize("value", ["0", "false", "No", "off", ""])
def test_health_false_values_leave_health_data_out(api_client, org, release, value):
    response = api_client.get(url(org, release.version, health=value))

    assert response.status_code == 200, response.content
    assert "healthData" not in response.json()["projects"][0]
    assert response.json()["projects"][0]["hasHealthData"] is False


@pytest.mark.parametrize("name", ["health", "adoptionStages"])
def test_boolean_parameter_with_bad_value_is_400_naming_it(api_client, org, release, name):
    response = api_client.get(url(org, release.version, **{name: "maybe"}))

    assert response.status_code == 400
    assert name in response.json()["detail"]
    assert "'maybe'" in response.json()["detail"]


def test_adoption_stages_key_present_only_when_asked(api_client, org, release):
    without = api_client.get(url(org, release.version)).json()
    with_flag = api_client.get(url(org, release.version, adoptionStages="1")).json()

    assert "adoptionStages" not in without
    assert with_flag["adoptionStages"] is None  # no release-project-environment rows


def test_adoption_stages_per_project_from_newest_first_seen_row(api_client, org, project, release):
    now = timezone.now()
    ReleaseProjectEnvironmentFactory(
        release=release, project=project, environment__name="staging",
        first_seen=now - timedelta(days=2), adopted=now - timedelta(days=2),
    )  # fmt: skip
    ReleaseProjectEnvironmentFactory(
        release=release, project=project, environment__name="production",
        first_seen=now - timedelta(days=1), adopted=now - timedelta(hours=20), unadopted=now,
    )  # fmt: skip

    body = api_client.get(url(org, release.version, adoptionStages="1")).json()

    assert body["adoptionStages"] == {
        "backend": {
            "stage": "replaced",
            "adopted": iso(now - timedelta(hours=20)),
            "unadopted": iso(now),
        }
    }
    assert body["firstEvent"] == iso(now - timedelta(days=2))


# --- Stats periods -----------------------------------------------------------------------------

PERIOD_CHOICES = "'1h', '24h', '1d', '48h', '2d', '7d', '14d', '30d', '90d'"


@pytest.mark.parametrize("name", ["summaryStatsPeriod", "healthStatsPeriod"])
def test_bad_stats_period_is_400_with_sentry_message(api_client, org, release, name):
    response = api_client.get(url(org, release.version, **{name: "3d"}))

    assert response.status_code == 400
    assert response.json() == {"detail": f"Invalid {name}. Valid choices are {PERIOD_CHOICES}"}


def test_bad_stats_period_wins_over_unknown_release(api_client, org):
    response = api_client.get(url(org, "no-such-release", summaryStatsPeriod="5m"))

    assert response.status_code == 400


@pytest.mark.parametrize(
    ("period", "count", "rollup"),
    [("1h", 1, 3600), ("24h", 24, 3600), ("2d", 48, 3600), ("7d", 7, 86400),
     ("14d", 14, 86400), ("90d", 30, 259200)],
)  # fmt: skip
def test_stats_buckets_follow_health_stats_period(api_client, org, release, period, count, rollup):
    response = api_client.get(url(org, release.version, health="1", healthStatsPeriod=period))

    stats = response.json()["projects"][0]["healthData"]["stats"]
    assert list(stats) == [period]
    buckets = [ts for ts, _ in stats[period]]
    assert len(buckets) == count
    assert all(ts % rollup == 0 for ts in buckets)
    assert buckets[-1] <= timezone.now().timestamp() < buckets[-1] + rollup


def test_health_data_has_documented_no_data_shape(api_client, org, release):
    health = api_client.get(url(org, release.version, health="1")).json()["projects"][0][
        "healthData"
    ]

    assert {k: v for k, v in health.items() if k != "stats"} == {
        "durationP50": None, "durationP90": None, "crashFreeUsers": None,
        "crashFreeSessions": None, "sessionsCrashed": 0, "sessionsErrored": 0,
        "totalUsers": None, "totalUsers24h": None, "totalProjectUsers24h": None,
        "totalSessions": None, "totalSessions24h": None, "totalProjectSessions24h": None,
        "adoption": None, "sessionsAdoption": None, "hasHealthData": False,
    }  # fmt: skip


# --- The project parameter ---------------------------------------------------------------------

META_KEYS = {
    "sessionsLowerBound", "sessionsUpperBound", "prevReleaseVersion", "nextReleaseVersion",
    "firstReleaseVersion", "lastReleaseVersion",
}  # fmt: skip


@pytest.mark.parametrize("param", ["project", "project_id"])
def test_project_by_id_or_slug_adds_current_project_meta(api_client, org, project, release, param):
    by_id = api_client.get(url(org, release.version, **{param: str(project.pk)}))
    by_slug = api_client.get(url(org, release.version, **{param: project.slug}))

    assert by_id.status_code == 200, by_id.content
    assert set(by_id.json()["currentProjectMeta"]) == META_KEYS
    assert by_slug.json()["currentProjectMeta"] == by_id.json()["currentProjectMeta"]


def test_project_wins_over_project_id(api_client, org, project, release):
    response = api_client.get(url(org, release.version, project=project.slug, project_id="nope!"))

    assert response.status_code == 200, response.content


@pytest.mark.parametrize("value", ["-1", "$all", "not a slug", "a/b"])
def test_project_sentinel_or_malformed_is_400(api_client, org, release, value):
    response = api_client.get(url(org, release.version, project=quote(value)))

    assert response.status_code == 400
    assert response.json() == {"detail": "Invalid project"}


def test_project_unknown_is_404(api_client, org, release):
    response = api_client.get(url(org, release.version, project="999999"))

    assert response.status_code == 404
    assert response.json() == {"detail": "The requested resource does not exist"}


def test_project_of_another_organization_is_404(api_client, org, release):
    other = ProjectFactory()

    assert api_client.get(url(org, release.version, project=str(other.pk))).status_code == 404
    assert api_client.get(url(org, release.version, project=other.slug)).status_code == 404


def test_project_not_linked_to_release_is_404(api_client, org, team, release):
    sibling = ProjectFactory(organization=org, teams=[team])

    response = api_client.get(url(org, release.version, project=str(sibling.pk)))

    assert response.status_code == 404


def test_health_with_project_narrows_projects_and_new_groups(api_client, org, team, project):
    other = ProjectFactory(organization=org, teams=[team])
    release = ReleaseFactory(organization=org, projects=[project, other])
    ReleaseProject.objects.filter(release=release, project=project).update(new_groups=3)
    ReleaseProject.objects.filter(release=release, project=other).update(new_groups=4)

    plain = api_client.get(url(org, release.version, project=project.slug)).json()
    narrowed = api_client.get(url(org, release.version, project=project.slug, health="1")).json()

    assert plain["newGroups"] == 7
    assert [p["id"] for p in plain["projects"]] == [project.pk, other.pk]
    assert narrowed["newGroups"] == 3
    assert [p["id"] for p in narrowed["projects"]] == [project.pk]


def test_sort_and_status_are_ignored_without_project(api_client, org, release):
    response = api_client.get(url(org, release.version, sort="bogus", status="bogus"))

    assert response.status_code == 200, response.content
    assert response.json()["currentProjectMeta"] == {}


@pytest.mark.parametrize(
    ("params", "detail"),
    [
        ({"sort": "invalid_sort"}, "invalid sort"),
        ({"status": "bogus"}, "invalid value for status"),
        ({"status": ""}, "invalid value for status"),
    ],
)
def test_bad_sort_or_status_with_project_is_400(api_client, org, project, release, params, detail):
    response = api_client.get(url(org, release.version, project=project.slug, **params))

    assert response.status_code == 400
    assert response.json() == {"detail": detail}


@pytest.mark.parametrize("sort", ["date", "sessions", "users", "crash_free_sessions",
                                  "crash_free_users"])  # fmt: skip
def test_every_documented_sort_is_accepted(api_client, org, project, release, sort):
    response = api_client.get(url(org, release.version, project=project.slug, sort=sort))

    assert response.status_code == 200, response.content


def test_unknown_environment_with_project_is_404(api_client, org, project, release):
    response = api_client.get(url(org, release.version, project=project.slug, environment="nope"))

    assert response.status_code == 404


# --- currentProjectMeta navigation (docs/api.md §7, cases 7-10) -----------------------------


@pytest.fixture
def three_releases(org, project):
    now = timezone.now()
    return [
        ReleaseFactory(organization=org, version=f"foobar@{v}", projects=[project],
                       date_added=now - timedelta(hours=10 - i))
        for i, v in enumerate(["1.0.0", "2.0.0", "3.0.0"])
    ]  # fmt: skip


def meta(client, org, project, version, **params) -> dict[str, Any]:
    response = client.get(url(org, version, project=str(project.pk), **params))
    assert response.status_code == 200, response.content
    return response.json()["currentProjectMeta"]


def test_prev_next_follow_date_added(api_client, org, project, three_releases):
    middle = meta(api_client, org, project, "foobar@2.0.0")
    newest = meta(api_client, org, project, "foobar@3.0.0")
    oldest = meta(api_client, org, project, "foobar@1.0.0")

    assert (middle["prevReleaseVersion"], middle["nextReleaseVersion"]) == (
        "foobar@1.0.0", "foobar@3.0.0",
    )  # fmt: skip
    assert (newest["prevReleaseVersion"], newest["nextReleaseVersion"]) == ("foobar@2.0.0", None)
    assert (oldest["prevReleaseVersion"], oldest["nextReleaseVersion"]) == (None, "foobar@2.0.0")
    assert (middle["firstReleaseVersion"], middle["lastReleaseVersion"]) == (
        "foobar@1.0.0", "foobar@3.0.0",
    )  # fmt: skip
    assert middle["sessionsLowerBound"] is None
    assert middle["sessionsUpperBound"] is None


def test_equal_dates_fall_back_to_id(api_client, org, project):
    moment = timezone.now()
    ReleaseFactory(organization=org, version="x@1.0.0", projects=[project], date_added=moment)
    ReleaseFactory(organization=org, version="x@2.0.0", projects=[project], date_added=moment)

    first = meta(api_client, org, project, "x@1.0.0")
    second = meta(api_client, org, project, "x@2.0.0")

    assert (first["prevReleaseVersion"], first["nextReleaseVersion"]) == (None, "x@2.0.0")
    assert (second["prevReleaseVersion"], second["nextReleaseVersion"]) == ("x@1.0.0", None)


def test_environment_filter_narrows_navigation(api_client, org, project, three_releases):
    for release in (three_releases[0], three_releases[2]):
        ReleaseProjectEnvironmentFactory(release=release, project=project, environment__name="prod")

    result = meta(api_client, org, project, "foobar@3.0.0", environment="prod")

    assert (result["prevReleaseVersion"], result["nextReleaseVersion"]) == ("foobar@1.0.0", None)
    assert (result["firstReleaseVersion"], result["lastReleaseVersion"]) == (
        "foobar@1.0.0", "foobar@3.0.0",
    )  # fmt: skip


def test_environment_without_releases_gives_null_first_and_last(api_client, org, project,
                                                                three_releases):  # fmt: skip
    EnvironmentFactory(organization=org, name="test")

    result = meta(api_client, org, project, "foobar@2.0.0", environment="test")

    assert result["firstReleaseVersion"] is None
    assert result["lastReleaseVersion"] is None


def test_status_filter_narrows_navigation(api_client, org, project, three_releases):
    three_releases[2].status = ReleaseStatus.ARCHIVED
    three_releases[2].save()

    archived = meta(api_client, org, project, "foobar@3.0.0", status="archived")
    default = meta(api_client, org, project, "foobar@2.0.0")

    assert (archived["prevReleaseVersion"], archived["nextReleaseVersion"]) == (None, None)
    assert default["nextReleaseVersion"] is None  # archived releases are not open


def test_query_filter_narrows_navigation(api_client, org, project, three_releases):
    ReleaseFactory(organization=org, version="foobar@1.0.5", projects=[project])

    result = meta(api_client, org, project, "foobar@1.0.5", query="foobar@1")

    assert (result["prevReleaseVersion"], result["nextReleaseVersion"]) == ("foobar@1.0.0", None)


def test_summary_period_does_not_filter_navigation(api_client, org, project, three_releases):
    three_releases[2].date_added = timezone.now() - timedelta(days=8)
    three_releases[2].save()

    result = meta(api_client, org, project, "foobar@1.0.0", summaryStatsPeriod="24h")

    assert (result["prevReleaseVersion"], result["nextReleaseVersion"]) == (
        "foobar@3.0.0", "foobar@2.0.0",
    )  # fmt: skip


# --- Authentication and access (docs/api.md §6) ---------------------------------------------


def test_no_credentials_is_401(anon_client, org, release):
    response = anon_client.get(url(org, release.version))

    assert response.status_code == 401
    assert response.json() == {"detail": "Authentication credentials were not provided."}


@pytest.mark.parametrize("header", ["Bearer nope", "Bearer sntryu_" + "0" * 64])
def test_bad_token_is_401(anon_client, org, release, header):
    anon_client.credentials(HTTP_AUTHORIZATION=header)

    response = anon_client.get(url(org, release.version))

    assert response.status_code == 401
    assert response.json() == {"detail": "Invalid token"}


def test_expired_token_is_401(anon_client, org, release, member):
    secret = create_token(user=member.user, scopes=["project:read"])
    ApiToken.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    anon_client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")

    assert anon_client.get(url(org, release.version)).status_code == 401


@pytest.mark.parametrize("scope", ["project:admin", "project:read", "project:releases",
                                   "project:write"])  # fmt: skip
def test_each_read_scope_is_enough_for_an_owner_token(anon_client, org, team, release, scope):
    owner = MemberFactory(organization=org, role="owner", teams=[team])
    anon_client.credentials(
        HTTP_AUTHORIZATION=f"Bearer {create_token(user=owner.user, scopes=[scope])}"
    )

    assert anon_client.get(url(org, release.version)).status_code == 200


def test_token_scopes_are_limited_by_the_member_role(anon_client, org, release, member):
    # A plain member has no project:admin, so a project:admin-only token keeps no read scope.
    anon_client.credentials(
        HTTP_AUTHORIZATION=f"Bearer {create_token(user=member.user, scopes=['project:admin'])}"
    )

    assert anon_client.get(url(org, release.version)).status_code == 403


def test_token_without_suitable_scope_is_403(anon_client, org, release, member):
    anon_client.credentials(
        HTTP_AUTHORIZATION=f"Bearer {create_token(user=member.user, scopes=['org:read'])}"
    )

    response = anon_client.get(url(org, release.version))

    assert response.status_code == 403
    # The detail names what is missing (docs/decisions.md §5.3).
    assert response.json() == {
        "detail": "This request needs one of the scopes org:ci, project:admin, project:read, "
        "project:releases, project:write; the caller has org:read."
    }


def test_billing_member_is_403(anon_client, org, release, team):
    billing = MemberFactory(organization=org, role="billing", teams=[team])
    anon_client.credentials(
        HTTP_AUTHORIZATION=f"Bearer {create_token(user=billing.user, scopes=['project:read'])}"
    )

    assert anon_client.get(url(org, release.version)).status_code == 403


def test_unknown_organization_is_404(api_client):
    response = api_client.get("/api/0/organizations/nope/releases/x/")

    assert response.status_code == 404
    assert response.json() == {"detail": "The requested resource does not exist"}


def test_organization_by_numeric_id(api_client, org, release):
    response = api_client.get(f"/api/0/organizations/{org.pk}/releases/{release.version}/")

    assert response.status_code == 200, response.content


def test_unknown_release_is_404(api_client, org):
    response = api_client.get(url(org, "nope"))

    assert response.status_code == 404
    assert response.json() == {"detail": "The requested resource does not exist"}


def test_member_of_another_organization_is_403(anon_client, release, org):
    stranger = MemberFactory()  # a member of some other organization
    anon_client.credentials(
        HTTP_AUTHORIZATION=f"Bearer {create_token(user=stranger.user, scopes=['project:read'])}"
    )

    assert anon_client.get(url(org, release.version)).status_code == 403


def test_release_of_another_team_is_404(api_client, org):
    other_team = TeamFactory(organization=org)
    hidden = ProjectFactory(organization=org, teams=[other_team])
    release = ReleaseFactory(organization=org, version="12345678", projects=[hidden])

    response = api_client.get(url(org, release.version))

    assert response.status_code == 404
    assert response.json() == {"detail": "The requested resource does not exist"}


def test_open_membership_sees_other_teams_releases(api_client, org):
    org.open_membership = True
    org.save()
    hidden = ProjectFactory(organization=org, teams=[TeamFactory(organization=org)])
    release = ReleaseFactory(organization=org, projects=[hidden])

    assert api_client.get(url(org, release.version)).status_code == 200


def test_release_on_two_projects_visible_through_either(api_client, org, project):
    other = ProjectFactory(organization=org, teams=[TeamFactory(organization=org)])
    release = ReleaseFactory(organization=org, projects=[other, project])

    body = api_client.get(url(org, release.version)).json()

    # visible through the caller's project, which is all it shows (docs/api.md §2.6, §6.5)
    assert [p["slug"] for p in body["projects"]] == [project.slug]


def test_same_version_in_two_organizations_stays_apart(api_client, org, release):
    other_org = OrganizationFactory()
    ReleaseFactory(organization=other_org, version=release.version,
                   projects=[ProjectFactory(organization=other_org)])  # fmt: skip

    mine = api_client.get(url(org, release.version))
    theirs = api_client.get(url(other_org, release.version))

    assert mine.status_code == 200
    assert mine.json()["id"] == release.pk
    assert theirs.status_code == 403


def test_org_token_sees_every_project_of_its_organization(anon_client, org):
    hidden = ProjectFactory(organization=org, teams=[TeamFactory(organization=org)])
    release = ReleaseFactory(organization=org, projects=[hidden])
    anon_client.credentials(
        HTTP_AUTHORIZATION=f"Bearer {create_token(organization=org, scopes=['org:ci'])}"
    )

    assert anon_client.get(url(org, release.version)).status_code == 200


def test_org_token_of_another_organization_is_403(anon_client, org, release):
    foreign = create_token(organization=OrganizationFactory(), scopes=["org:ci"])
    anon_client.credentials(HTTP_AUTHORIZATION=f"Bearer {foreign}")

    assert anon_client.get(url(org, release.version)).status_code == 403


def test_org_token_without_scopes_is_403(anon_client, org, release):
    anon_client.credentials(
        HTTP_AUTHORIZATION=f"Bearer {create_token(organization=org, scopes=[])}"
    )

    assert anon_client.get(url(org, release.version)).status_code == 403


def test_staff_session_login_reads_any_organization(client, org, release):
    client.force_login(UserFactory(is_superuser=True, is_staff=True))

    response = client.get(url(org, release.version), HTTP_ACCEPT="application/json")

    assert response.status_code == 200, response.content


# --- Serialization details ---------------------------------------------------------------------


def test_commit_author_without_member_falls_back_to_name_and_email(api_client, org, release):
    author = CommitAuthorFactory(organization=org, name="stebe", email="stebe@sentry.io")
    release.authors = [str(author.pk)]
    release.save()

    body = api_client.get(url(org, release.version)).json()

    assert body["authors"] == [{"name": "stebe", "email": "stebe@sentry.io"}]


def test_commit_authors_resolve_to_member_case_insensitively_once(api_client, org, member,
                                                                  release):  # fmt: skip
    UserEmailFactory(user=member.user, email="alice.work@example.com")
    primary = CommitAuthorFactory(organization=org, email="ALICE@example.com")
    secondary = CommitAuthorFactory(organization=org, email="alice.work@example.com")
    release.authors = [str(primary.pk), str(secondary.pk)]
    release.save()

    authors = api_client.get(url(org, release.version)).json()["authors"]

    assert [(a["id"], a["email"], a["username"]) for a in authors] == [
        (str(member.user.pk), "alice@example.com", "alice")
    ]


def test_user_of_another_organization_is_never_an_author(api_client, org, release):
    outsider = UserFactory(email="outsider@example.com")
    MemberFactory(user=outsider)
    author = CommitAuthorFactory(organization=org, name="Out", email="outsider@example.com")
    release.authors = [str(author.pk)]
    release.save()

    authors = api_client.get(url(org, release.version)).json()["authors"]

    assert authors == [{"name": "Out", "email": "outsider@example.com"}]


def test_build_hash_version_info(api_client, org, project):
    sha = "085240e737828d8326719bf97730188e927e49ca"
    ReleaseFactory(organization=org, version=sha, projects=[project])

    info = api_client.get(url(org, sha)).json()["versionInfo"]

    assert info == {"package": None, "version": {"raw": sha}, "description": sha[:12],
                    "buildHash": sha}  # fmt: skip


def test_version_with_dots_and_plus_in_path(api_client, org, project):
    ReleaseFactory(organization=org, version="backend@1.2.3+build.7", projects=[project])

    response = api_client.get(f"/api/0/organizations/{org.slug}/releases/backend@1.2.3%2Bbuild.7/")

    assert response.status_code == 200, response.content
    assert response.json()["versionInfo"]["version"]["buildCode"] == "build.7"


def test_missing_trailing_slash_is_404_not_redirect(api_client, org, release):
    response = api_client.get(f"/api/0/organizations/{org.slug}/releases/{release.version}")

    assert response.status_code == 404


def test_emails_shown_only_to_the_user_themself(api_client, org, team, release, member):
    other = MemberFactory(organization=org, teams=[team]).user
    UserEmailFactory(user=other)
    release.owner = other
    release.save()

    owner = api_client.get(url(org, release.version)).json()["owner"]

    assert owner["id"] == str(other.pk)
    assert owner["emails"] == []


# --- Query counts ------------------------------------------------------------------------------


def populate(org, project, release, size: int) -> None:
    """Give ``release`` ``size`` commits (distinct authors), projects, deploys and sibling
    releases sharing its last commit."""
    repo = RepositoryFactory(organization=org)
    commits = [
        CommitFactory(repository=repo, author=CommitAuthorFactory(organization=org))
        for _ in range(size)
    ]
    ReleaseCommit.objects.bulk_create(
        [ReleaseCommit(release=release, commit=c, order=i) for i, c in enumerate(commits)]
    )
    for _ in range(size):
        sibling = ReleaseFactory(organization=org, projects=[project])
        ReleaseCommit.objects.create(release=sibling, commit=commits[0], order=0)
        ReleaseProject.objects.create(release=release, project=ProjectFactory(organization=org))
        DeployFactory(release=release)
        UserEmailFactory(user=MemberFactory(organization=org).user)
    PullRequestFactory(repository=repo, merge_commit_sha=commits[0].key,
                       author=commits[0].author)  # fmt: skip
    release.commit_count = size
    release.last_commit = commits[0]
    release.authors = [str(c.author_id) for c in commits]
    release.last_deploy = release.deploys.last()
    release.total_deploys = size
    release.save()


def count_queries(client, path: str) -> int:
    client.get(path)  # the first use of a token records last_used: keep it out of the count
    with CaptureQueriesContext(connection) as queries:
        response = client.get(path)
    assert response.status_code == 200, response.content
    return len(queries)


def test_query_count_does_not_grow_with_related_rows(api_client, org, project, member):
    small = ReleaseFactory(organization=org, version="small@1", projects=[project])
    large = ReleaseFactory(organization=org, version="large@1", projects=[project])
    populate(org, project, small, 1)
    populate(org, project, large, 10)
    params = {"health": "1", "adoptionStages": "1", "project": project.slug}

    assert count_queries(api_client, url(org, small.version, **params)) == count_queries(
        api_client, url(org, large.version, **params)
    )


def test_query_count_is_pinned(api_client, org, project, release, django_assert_num_queries):
    populate(org, project, release, 3)
    path = url(org, release.version, health="1", project=project.slug)
    api_client.get(path)  # the first use of a token records last_used

    # 1 token, 2 organization with the caller's membership, 3 release (+owner, deploy, commit,
    # whether the caller sees one of its projects), 4 the project (accessible and linked),
    # 5 session bounds, 6 prev/next/first/last (four subqueries of one statement), 7 release
    # projects and environment rows (one UNION ALL), 8 commit releases, 9 pull requests,
    # 10 commit authors, 11 member users with their addresses (one join), 12-13 health (12 the
    # rollups: counters, project sessions and the series in one UNION ALL; 13 users, project
    # users and durations in one UNION ALL). A read opens no transaction: no savepoints.
    with django_assert_num_queries(13):
        api_client.get(path)


def test_unsupported_method_is_405(api_client, org, release):
    response = api_client.patch(url(org, release.version), {"ref": "x"}, format="json")

    assert response.status_code == 405
    assert response.json() == {"detail": 'Method "PATCH" not allowed.'}


def test_unsupported_method_without_credentials_is_401(anon_client, org, release):
    assert anon_client.patch(url(org, release.version)).status_code == 401


def test_superuser_token_does_not_reach_other_organizations(anon_client, org, release):
    admin = UserFactory(is_superuser=True, is_staff=True)
    anon_client.credentials(
        HTTP_AUTHORIZATION=f"Bearer {create_token(user=admin, scopes=['project:read'])}"
    )

    response = anon_client.get(url(org, release.version))

    assert response.status_code == 403
    assert response.json() == {
        "detail": "You are not a member of the organization 'acme': superuser rights come with "
        "a signed-in admin session only, never through an API token."
    }


def test_403_of_a_non_member_names_the_organization(anon_client, org, release):
    outsider = UserFactory()
    anon_client.credentials(
        HTTP_AUTHORIZATION=f"Bearer {create_token(user=outsider, scopes=['project:read'])}"
    )

    response = anon_client.get(url(org, release.version))

    assert response.status_code == 403
    assert response.json() == {"detail": "You are not a member of the organization 'acme'."}


@pytest.mark.parametrize("role", ["owner", "manager"])
def test_owners_and_managers_see_every_team_project(anon_client, org, team, role):
    hidden = ProjectFactory(organization=org, teams=[TeamFactory(organization=org)])
    release = ReleaseFactory(organization=org, projects=[hidden])
    boss = MemberFactory(organization=org, role=role, teams=[team])
    anon_client.credentials(
        HTTP_AUTHORIZATION=f"Bearer {create_token(user=boss.user, scopes=['project:read'])}"
    )

    assert anon_client.get(url(org, release.version)).status_code == 200


def test_admins_see_only_their_teams_projects(anon_client, org, team):
    hidden = ProjectFactory(organization=org, teams=[TeamFactory(organization=org)])
    release = ReleaseFactory(organization=org, projects=[hidden])
    admin = MemberFactory(organization=org, role="admin", teams=[team])
    anon_client.credentials(
        HTTP_AUTHORIZATION=f"Bearer {create_token(user=admin.user, scopes=['project:read'])}"
    )

    assert anon_client.get(url(org, release.version)).status_code == 404
