"""GET /api/0/organizations/{org}/releases/ and GET /api/0/projects/{org}/{project}/releases/."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from releases.models import ReleaseProject, Repository
from releases.services import CommitData, deploy_create, release_set_commits
from tests.factories import (
    MemberFactory,
    ProjectFactory,
    PullRequestFactory,
    ReleaseFactory,
    ReleaseProjectEnvironmentFactory,
    TeamFactory,
    create_token,
)

pytestmark = pytest.mark.django_db

LIST = "/api/0/organizations/acme/releases/"
LINK_RE = re.compile(r'<([^>]+)>; rel="(previous|next)"; results="(true|false)"; cursor="([^"]+)"')


def get(client, **params):
    return client.get(LIST + ("?" + urlencode(params, doseq=True) if params else ""))


def versions(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [r["version"] for r in response.json()]


@pytest.fixture
def releases(org, project):
    now = timezone.now()
    return [
        ReleaseFactory(organization=org, version=v, projects=[project],
                       date_added=now - timedelta(hours=20 - i))
        for i, v in enumerate(["test@2.2", "test@10.0+122", "test@2.2-alpha", "test@2.2.3",
                               "test@2.20.3", "test@2.20.3.3", "test@10.0+123",
                               "test@some_thing", "random_junk"])
    ]  # fmt: skip


def test_default_sort_is_newest_first(api_client, releases):
    assert versions(get(api_client)) == [r.version for r in reversed(releases)]


def test_date_sort_ignores_date_released(api_client, org, project):
    now = timezone.now()
    for i, released in enumerate([20, 18, 16]):
        ReleaseFactory(organization=org, version=f"r{i}", projects=[project],
                       date_added=now - timedelta(days=10 - 2 * i),
                       date_released=now - timedelta(days=10 - released))  # fmt: skip

    assert versions(get(api_client, sort="date")) == ["r2", "r1", "r0"]


def test_semver_sort_matches_sentry(api_client, releases):
    assert versions(get(api_client, sort="semver")) == [
        "test@10.0+123", "test@10.0+122", "test@2.20.3.3", "test@2.20.3", "test@2.2.3",
        "test@2.2", "test@2.2-alpha", "random_junk", "test@some_thing",
    ]  # fmt: skip


def test_build_sort_keeps_numbered_builds_only(api_client, releases):
    assert versions(get(api_client, sort="build")) == ["test@10.0+123", "test@10.0+122"]


def test_adoption_sort_puts_adopted_first(api_client, org, project, releases):
    now = timezone.now()
    ReleaseProjectEnvironmentFactory(release=releases[0], project=project,
                                     adopted=now - timedelta(hours=1))  # fmt: skip
    ReleaseProjectEnvironmentFactory(release=releases[3], project=project,
                                     adopted=now - timedelta(hours=2))  # fmt: skip

    listed = versions(get(api_client, sort="adoption"))

    assert listed[:2] == ["test@2.2", "test@2.2.3"]
    assert listed[2:] == [
        r.version for r in reversed(releases) if r not in (releases[0], releases[3])
    ]


def test_flatten_gives_one_row_per_release_and_project(api_client, org, team, project):
    other = ProjectFactory(organization=org, teams=[team])
    ReleaseFactory(organization=org, version="both@1", projects=[project, other])

    body = get(api_client, flatten="1").json()

    assert [(r["version"], [p["id"] for p in r["projects"]]) for r in body] == [
        ("both@1", [project.pk]), ("both@1", [other.pk]),
    ]  # fmt: skip


def walk(client, **params) -> list[str]:
    """Follow rel="next" cursors to the end, as sentry-cli does."""
    seen: list[str] = []
    response = get(client, **params)
    for _ in range(100):
        seen += [
            f"{r['version']}/{r['projects'][0]['id']}" if params.get("flatten") else r["version"]
            for r in response.json()
        ]
        links = {rel: (url, results) for url, rel, results, _ in
                 LINK_RE.findall(response["Link"])}  # fmt: skip
        url, results = links["next"]
        if results != "true":
            return seen
        response = client.get(url)
        assert response.status_code == 200, response.content
    raise AssertionError("pagination did not end")


@pytest.mark.parametrize("per_page", [1, 2, 3])
@pytest.mark.parametrize("sort", ["date", "build", "semver", "adoption"])
def test_cursor_walk_visits_every_release_once(api_client, releases, project, sort, per_page):
    ReleaseProjectEnvironmentFactory(release=releases[4], project=project,
                                     adopted=timezone.now())  # fmt: skip
    everything = versions(get(api_client, sort=sort))

    walked = walk(api_client, sort=sort, per_page=str(per_page))

    assert walked == everything
    assert len(set(walked)) == len(walked)


@pytest.mark.parametrize("per_page", [1, 3])
@pytest.mark.parametrize("sort", ["sessions", "users", "crash_free_sessions", "crash_free_users",
                                  "sessions_24h", "users_24h"])  # fmt: skip
def test_cursor_walk_with_session_sorts(api_client, org, team, project, releases, sort,
                                        per_page):  # fmt: skip
    other = ProjectFactory(organization=org, teams=[team])
    ReleaseProject.objects.create(release=releases[2], project=other)

    walked = walk(api_client, sort=sort, per_page=str(per_page), flatten="1")

    assert len(walked) == len(releases) + 1
    assert len(set(walked)) == len(walked)


def test_link_header_has_sentry_format(api_client, releases):
    response = get(api_client, per_page="2", query="test")

    link = response["Link"]
    assert link.startswith("<http://testserver/api/0/organizations/acme/releases/?")
    (_, _, prev_results, prev_cursor), (next_url, _, next_results, next_cursor) = LINK_RE.findall(
        link
    )
    assert (prev_results, prev_cursor) == ("false", "2:-1:1")
    assert (next_results, next_cursor) == ("true", "2:1:0")
    assert dict(parse_qsl(urlsplit(next_url).query)) == {
        "per_page": "2", "query": "test", "cursor": "2:1:0",
    }  # fmt: skip
    assert ", <" in link


def test_link_header_without_parameters_keeps_question_ampersand(api_client, releases):
    link = get(api_client)["Link"]

    assert "/releases/?&cursor=100:-1:1>" in link
    assert 'rel="next"; results="false"; cursor="100:1:0"' in link


@pytest.mark.parametrize(
    ("params", "detail"),
    [
        ({"per_page": "abc"}, "Invalid per_page parameter."),
        ({"per_page": "101"}, "Invalid per_page value. Cannot exceed 100."),
        ({"per_page": "0"}, "Invalid per_page parameter."),
        ({"cursor": "nope"}, "Invalid cursor parameter."),
        ({"cursor": "1:2"}, "Invalid cursor parameter."),
        ({"cursor": "1:-1:0"}, "Pagination offset cannot be negative"),
        ({"sort": "bogus"}, "invalid sort"),
        ({"sort": "sessions"}, "sorting by crash statistics requires flattening (flatten=1)"),
        ({"status": "bogus"}, "invalid value for status"),
        ({"healthStat": "bogus"}, "invalid healthStat"),
        ({"health": "maybe"}, "Invalid value for health: 'maybe'. Use 1, true, yes or on; "
                              "0, false, no or off."),
        ({"flatten": "2"}, "Invalid value for flatten: '2'. Use 1, true, yes or on; 0, false, "
                           "no or off."),
        ({"summaryStatsPeriod": "5d"}, "Invalid summaryStatsPeriod. Valid choices are '1h', "
         "'24h', '1d', '48h', '2d', '7d', '14d', '30d', '90d'"),
        ({"start": "null", "end": "null"}, "Invalid date range: Invalid isoformat string: "
                                           "'null'"),
        ({"start": "2024-01-01T00:00:00"}, "Invalid date range: start and end are both "
                                           "required"),
        ({"statsPeriod": "soon"}, "Invalid date range: soon"),
        ({"project": "not a slug"}, "Invalid project parameter. Values must be numbers or "
                                    "slugs."),
    ],
)  # fmt: skip
def test_bad_parameters_are_400(api_client, releases, params, detail):
    response = get(api_client, **params)

    assert response.status_code == 400
    assert response.json() == {"detail": detail}


def test_stats_period_keeps_recent_releases(api_client, org, project):
    ReleaseFactory(organization=org, version="old", projects=[project],
                   date_added=timezone.now() - timedelta(days=3))  # fmt: skip
    ReleaseFactory(organization=org, version="new", projects=[project])

    assert versions(get(api_client, statsPeriod="24h")) == ["new"]
    assert versions(get(api_client, statsPeriod="7d")) == ["new", "old"]


def test_unknown_environment_is_404(api_client, releases):
    assert get(api_client, environment="nope").status_code == 404


def test_no_projects_gives_empty_list(anon_client, org):
    lonely = MemberFactory(organization=org)
    anon_client.credentials(
        HTTP_AUTHORIZATION=f"Bearer {create_token(user=lonely.user, scopes=['project:read'])}"
    )

    response = get(anon_client)

    assert response.status_code == 200
    assert response.json() == []


def test_explicit_inaccessible_project_is_403(api_client, org):
    hidden = ProjectFactory(organization=org, teams=[TeamFactory(organization=org)])

    assert get(api_client, project=str(hidden.pk)).status_code == 403
    assert get(api_client, project=hidden.slug).status_code == 403


def test_project_of_another_organization_is_403(api_client, releases):
    assert get(api_client, project=str(ProjectFactory().pk)).status_code == 403


def test_projects_by_id_and_slug(api_client, org, team, project, releases):
    other = ProjectFactory(organization=org, slug="other", teams=[team])
    ReleaseFactory(organization=org, version="other@1", projects=[other])

    assert versions(get(api_client, project=str(other.pk))) == ["other@1"]
    assert versions(get(api_client, project="other")) == ["other@1"]
    assert len(versions(get(api_client, project=[str(project.pk), "other"]))) == 10


def test_releases_of_other_organizations_never_show(api_client, releases):
    ReleaseFactory(version="foreign@1", projects=[ProjectFactory()])

    assert "foreign@1" not in versions(get(api_client, project="-1"))


def test_health_and_adoption_stages_on_the_list(api_client, releases):
    body = get(api_client, health="1", adoptionStages="1", healthStatsPeriod="7d").json()

    assert all(len(r["projects"][0]["healthData"]["stats"]["7d"]) == 7 for r in body)
    assert all("adoptionStages" in r for r in body)


def count_page_queries(client, **params) -> int:
    get(client, **params)  # the first use of a token records last_used
    with CaptureQueriesContext(connection) as queries:
        assert get(client, **params).status_code == 200
    return len(queries)


@pytest.mark.parametrize("flatten", ["0", "1"])
def test_page_query_count_is_constant(api_client, org, team, project, flatten):
    params = {"health": "1", "adoptionStages": "1", "flatten": flatten}
    owner = MemberFactory(organization=org).user

    def release_with_everything(projects) -> None:
        # Commits with authors and a pull request, an owner and deploys: every relation.
        release = ReleaseFactory(organization=org, projects=projects, owner=owner)
        commits = [
            CommitData(id=uuid.uuid4().hex, repository="acme/app", message="m",
                       author_email=f"{uuid.uuid4().hex}@example.com", timestamp=timezone.now())
            for _ in range(3)
        ]  # fmt: skip
        release_set_commits(release=release, commits=commits)
        PullRequestFactory(repository=Repository.objects.get(name="acme/app"),
                           merge_commit_sha=commits[0].id)  # fmt: skip
        deploy_create(release=release, environment="production")

    release_with_everything([project])
    one = count_page_queries(api_client, **params)
    others = ProjectFactory.create_batch(3, organization=org, teams=[team])
    for _ in range(9):
        release_with_everything([project, *others])

    assert count_page_queries(api_client, **params) == one


def test_page_query_count_is_pinned(api_client, org, project, releases,
                                    django_assert_num_queries):  # fmt: skip
    get(api_client)

    # 1 token, 2 organization with the caller's membership, 3 member projects, 4 page of
    # releases (+owner, deploy, commit), 5 release projects and environment rows (one UNION
    # ALL). A read opens no transaction.
    with django_assert_num_queries(5):
        get(api_client)


# --- the project's release list ----------------------------------------------------------------


def test_project_list_is_newest_first_with_substring_query(api_client, releases):
    path = "/api/0/projects/acme/backend/releases/"

    everything = versions(api_client.get(path))
    matching = versions(api_client.get(path + "?query=2.2"))

    assert everything == [r.version for r in reversed(releases)]
    assert matching == ["test@2.20.3.3", "test@2.20.3", "test@2.2.3", "test@2.2-alpha",
                        "test@2.2"]  # fmt: skip


def test_project_list_paginates_with_link(api_client, releases):
    response = api_client.get("/api/0/projects/acme/backend/releases/?per_page=4")

    assert len(response.json()) == 4
    assert 'rel="next"; results="true"; cursor="4:1:0"' in response["Link"]


def test_project_list_of_hidden_or_unknown_project_is_404(api_client, org):
    ProjectFactory(organization=org, slug="hidden", teams=[TeamFactory(organization=org)])

    assert api_client.get("/api/0/projects/acme/hidden/releases/").status_code == 404
    assert api_client.get("/api/0/projects/acme/nope/releases/").status_code == 404


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/api/0/organizations/²/releases/", 404),
        ("/api/0/organizations/acme/releases/?project=²", 400),
        ("/api/0/organizations/acme/releases/?query=release.version:².*", 400),
        ("/api/0/organizations/acme/releases/?query=release.build:²", 200),
        ("/api/0/organizations/acme/releases/test@2.2/?project=²", 400),
        ("/api/0/projects/acme/²/releases/", 404),
    ],
)
def test_non_ascii_digits_are_not_numbers(api_client, releases, path, expected):
    assert api_client.get(path).status_code == expected


def test_non_ascii_digit_project_in_create_is_400(api_client, releases):
    response = api_client.post(LIST, {"version": "x@1", "projects": ["²"]}, format="json")

    assert response.status_code == 400
    assert response.json() == {"projects": ["Invalid project ids or slugs"]}
