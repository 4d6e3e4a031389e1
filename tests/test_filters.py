"""The release search syntax on a fixed dataset, through the list endpoint.

`make test` runs this module on PostgreSQL with the whole suite, and once more on SQLite:
both databases must give the same answers.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from releases.models import ReleaseStatus
from tests.factories import (
    EnvironmentFactory,
    ProjectFactory,
    ReleaseFactory,
    ReleaseProjectEnvironmentFactory,
    TeamFactory,
)

pytestmark = pytest.mark.django_db

BASE = datetime(2024, 1, 1, tzinfo=UTC)
VERSIONS = {
    1: "backend@1.0.0",
    2: "backend@1.2.0-rc.1",
    3: "backend@1.2.0",
    4: "backend@2.0.0+456",
    5: "frontend@1.2.3+build.5",
    6: "frontend@10.0.0.1",
    7: "foobar",
    8: "abcdef123456",
    9: "com.foo.BarApp@1.0+1234",
    10: "backend@3.0.0",  # archived
    11: "hidden@1.0.0",  # in a project of another team
}
OPEN = set(range(1, 10))


@pytest.fixture
def dataset(org, team, project):
    """Release i is added at BASE + i hours. See VERSIONS for who is where."""
    frontend = ProjectFactory(organization=org, slug="frontend", teams=[team])
    hidden = ProjectFactory(organization=org, slug="hidden", teams=[TeamFactory(organization=org)])
    homes = {1: [project], 2: [project], 3: [project], 4: [project], 5: [frontend],
             6: [frontend], 7: [project, frontend], 8: [frontend], 9: [frontend],
             10: [project], 11: [hidden]}  # fmt: skip
    releases = {
        i: ReleaseFactory(
            organization=org, version=version, projects=homes[i],
            date_added=BASE + timedelta(hours=i),
            date_released=BASE + timedelta(hours=i, minutes=5) if i in (1, 3) else None,
            status=ReleaseStatus.ARCHIVED if i == 10 else ReleaseStatus.OPEN,
        )
        for i, version in VERSIONS.items()
    }  # fmt: skip
    prod = EnvironmentFactory(organization=org, name="prod")
    staging = EnvironmentFactory(organization=org, name="staging")
    adopted = BASE + timedelta(days=1)
    for i, proj, env, stage in [
        (1, project, prod, (adopted, None)),
        (2, project, staging, (None, None)),
        (3, project, prod, (adopted, adopted + timedelta(hours=5))),
        (7, frontend, prod, (None, None)),
        (11, hidden, prod, (adopted, None)),
    ]:
        ReleaseProjectEnvironmentFactory(
            release=releases[i], project=proj, environment=env,
            first_seen=BASE, adopted=stage[0], unadopted=stage[1],
        )  # fmt: skip
    return releases


def search(client, query: str, **params: str):
    path = "/api/0/organizations/acme/releases/?" + urlencode({"query": query, **params})
    return client.get(path)


def found(client, query: str, **params: str) -> set[int]:
    response = search(client, query, **params)
    assert response.status_code == 200, response.content
    numbers = {version: i for i, version in VERSIONS.items()}
    return {numbers[r["version"]] for r in response.json()}


CASES = [
    ("", OPEN),
    # free text: case-insensitive substring, the X (Y) rule, one token per run of words
    ("foobar", {7}),
    ("FOOBAR", {7}),
    ("backend", {1, 2, 3, 4}),
    ("1.0 (1234)", {9}),
    ("1.0+1234", {9}),
    ('"backend@1.2"', {2, 3}),
    ("backend 1.2", set()),
    ("backend release.version:1.*", {1, 2, 3}),
    # release
    ("release:foobar", {7}),
    ("release:Foobar", set()),
    ("!release:foobar", OPEN - {7}),
    ("release:!=foobar", OPEN - {7}),
    ("release:backend@*", {1, 2, 3, 4}),
    ("!release:backend@*", OPEN - {1, 2, 3, 4}),
    ("release:*@1.2.0", {3}),
    ("release:*1.2*", {2, 3, 5}),
    ("release:back*1.0.0", {1}),
    (r"release:backend@1.2.0\*", set()),
    ("release:[foobar,backend@1.0.0]", {1, 7}),
    ("!release:[foobar,backend@1.0.0]", OPEN - {1, 7}),
    ("release:[foobar,backend@1*]", {1, 2, 3, 7}),
    ('release:"foobar"', {7}),
    ("release:nothing", set()),
    ("release:latest", {4, 6}),
    ("!release:latest", OPEN - {4, 6}),
    # release.version
    ("release.version:1.2.0", {3}),
    ("release.version:>1.2.0", {4, 5, 6}),
    ("release.version:>=1.2.0", {3, 4, 5, 6}),
    ("release.version:<1.2.0", {1, 2, 9}),
    ("release.version:<=1.0.0", {1, 9}),
    ("!release.version:>1.2.0", {1, 2, 3, 9}),
    ("!release.version:1.2.0", OPEN - {3}),
    ("release.version:!=1.2.0", OPEN - {3}),
    ("release.version:1.*", {1, 2, 3, 5, 9}),
    ("release.version:1.2.X", {2, 3, 5}),
    ("!release.version:1.*", OPEN - {1, 2, 3, 5, 9}),
    ("release.version:backend@1.*", {1, 2, 3}),
    ("release.version:*", OPEN - {7, 8}),
    ("!release.version:*", {7, 8}),
    ("release.version:>frontend@1.0.0", {5, 6}),
    ("release.version:1.2.0-rc.1", {2}),
    ("release.version:<1.2.0-rc.2", {1, 2, 9}),
    ("release.version:>1.2.0-rc.1", {3, 4, 5, 6}),
    ("release.version:10.0.0.1", {6}),
    # release.package
    ("release.package:backend", {1, 2, 3, 4}),
    ("!release.package:backend", OPEN - {1, 2, 3, 4}),
    ("release.package:[backend,frontend]", {1, 2, 3, 4, 5, 6}),
    ("!release.package:[backend,frontend]", {7, 8, 9}),
    ("release.package:com.foo.BarApp", {9}),
    ("release.package:Backend", set()),
    # release.build
    ("release.build:456", {4}),
    ("release.build:>400", {4, 9}),
    ("release.build:<1000", {4}),
    ("release.build:>=1234", {9}),
    ("!release.build:>400", set()),
    ("release.build:build*", {5}),
    ("release.build:*.5", {5}),
    ("release.build:build.5", {5}),
    ("!release.build:456", OPEN - {4}),
    ("!release.build:build*", OPEN - {5}),
    # finalized
    ("finalized:true", {1, 3}),
    ("finalized:false", OPEN - {1, 3}),
    ("!finalized:true", OPEN - {1, 3}),
    ("finalized:1", {1, 3}),
    # release.created
    ("release.created:>2024-01-01T05:00:00", {6, 7, 8, 9}),
    ("release.created:>=2024-01-01T05:00:00Z", {5, 6, 7, 8, 9}),
    ("release.created:<=2024-01-01T02:00:00", {1, 2}),
    ("release.created:<2024-01-01T02:00:00+00:00", {1}),
    ("!release.created:>2024-01-01T05:00:00", {1, 2, 3, 4, 5}),
    ("release.created:2024-01-01T03:00:00", {3}),
    ("!release.created:2024-01-01T03:00:00", OPEN - {3}),
    ("release.created:2024-01-01", OPEN),
    ("release.created:>2024-01-01", set()),
    ("release.created:<=2024-01-01", OPEN),
    ("release.created:<2024-01-02", OPEN),
    ("release.created:-3d", set()),
    ("release.created:+3d", OPEN),
    # AND, OR, parentheses, precedence
    ("release.package:backend AND finalized:true", {1, 3}),
    ("release.package:backend and finalized:true", {1, 3}),
    ("release.package:backend finalized:true", {1, 3}),
    ("release.package:backend OR release.package:frontend", {1, 2, 3, 4, 5, 6}),
    ("(release:foobar OR release.build:456) AND !finalized:true", {4, 7}),
    ("release:foobar OR release.package:backend finalized:true", {1, 3, 7}),
    ("(release:foobar OR release.package:backend) finalized:true", {1, 3}),
    ("release:foobar OR (release.package:backend AND (finalized:true OR release.build:456))",
     {1, 3, 4, 7}),
    ("foobar OR abcdef", {7, 8}),
    ("((release:foobar))", {7}),
]  # fmt: skip


@pytest.mark.parametrize(("query", "expected"), CASES)
def test_search_finds_expected_releases(api_client, dataset, query, expected):
    assert found(api_client, query) == expected


STAGE_CASES = [
    ("release.stage:adopted", {1}),
    ("release.stage:replaced", {3}),
    ("release.stage:low_adoption", {7}),
    ("release.stage:[adopted,replaced]", {1, 3}),
    ("!release.stage:adopted", {3, 7}),
    ("!release.stage:[adopted,low_adoption]", {3}),
    ("release.stage:adopted OR release:foobar", {1, 7}),
]


@pytest.mark.parametrize(("query", "expected"), STAGE_CASES)
def test_release_stage_in_one_environment(api_client, dataset, query, expected):
    assert found(api_client, query, environment="prod") == expected


def test_environment_keeps_releases_seen_there(api_client, dataset):
    assert found(api_client, "", environment="staging") == {2}
    assert found(api_client, "release:latest", environment="prod") == {3, 7}


def test_all_projects_under_open_membership_include_other_teams(api_client, org, dataset):
    closed = found(api_client, "release.version:1.0.0", project="-1")
    org.open_membership = True
    org.save()

    assert closed == {1, 9}
    assert found(api_client, "release.version:1.0.0") == {1, 9}  # default: member projects
    assert found(api_client, "release.version:1.0.0", project="-1") == {1, 9, 11}


def test_status_archived_and_both(api_client, dataset):
    assert found(api_client, "release.package:backend", status="archived") == {10}
    assert found(api_client, "release.package:backend", status="") == {1, 2, 3, 4, 10}


ERRORS = [
    ("(transaction:foo AND release:abc) OR (transaction:[bar,baz] AND release:def)",
     "Invalid key for this search: transaction"),
    ("release:foo has:release", "Invalid key for this search: has"),
    ("is:unresolved", "Invalid key for this search: is"),
    # Syntax errors anywhere come before unknown keys (Sentry parses, then validates keys).
    ("user.email:x release:", "Empty string after 'release:'"),
    ("a:b AND c:d AND", "Condition is missing on the right side of 'AND' operator"),
    ("a:b OR OR c:d", "Missing condition in between two condition operators: 'OR OR'"),
    ("a:b release:[x, ]", "Lists should not have empty values"),
    ("a:b (release:x", "Parse error at 'a:b (relea' (column 5). This is commonly caused by "
                       "unmatched parentheses. Enclose any text in double quotes."),
    ("release:x AND (a:b OR c:d)", "Invalid key for this search: a"),
    ("release:", "Empty string after 'release:'"),
    ("release:[a, ]", "Lists should not have empty values"),
    ("(release:a", "Parse error at '(relea' (column 1). This is commonly caused by unmatched "
                   "parentheses. Enclose any text in double quotes."),
    ("release:a AND", "Condition is missing on the right side of 'AND' operator"),
    ("OR release:a", "Condition is missing on the left side of 'OR' operator"),
    ("release:a OR AND release:b", "Missing condition in between two condition operators: "
                                   "'OR AND'"),
    ("release.version:abc", 'Invalid format of semantic version. For searching non-semver '
                            'releases, use "release:" instead.'),
    ("release.version:1.x", 'Invalid format of semantic version. For searching non-semver '
                            'releases, use "release:" instead.'),
    ("release.version:[1.2.3,2.0.0]", "Invalid operation 'IN' for semantic version filter."),
    ("release.build:[1,2]", "Invalid operation 'IN' for semantic version filter."),
    ("release.stage:adopted", "Choose a single environment to filter by release stage."),
    ("finalized:maybe", "finalized: Invalid boolean: maybe. Expected true, 1, false, or 0."),
    ("release.created:yesterday", "release.created: Invalid date: yesterday. Expected "
     "+/-duration (e.g. +1h) or ISO 8601-like (e.g. 2024-05-01T12:34:56.78)."),
]  # fmt: skip


@pytest.mark.parametrize(("query", "detail"), ERRORS)
def test_malformed_query_is_400_with_detail(api_client, dataset, query, detail):
    response = search(api_client, query)

    assert response.status_code == 400
    assert response.json() == {"detail": detail}


@pytest.mark.parametrize("environments", [["prod", "staging"], ["prod"]])
def test_release_stage_needs_one_environment_and_a_known_stage(api_client, dataset,
                                                               environments):  # fmt: skip
    path = "/api/0/organizations/acme/releases/?" + urlencode(
        {"query": "release.stage:bogus", "environment": environments}, doseq=True
    )

    response = api_client.get(path)

    assert response.status_code == 400
    assert response.json()["detail"] == (
        "Unsupported release.stage value."
        if len(environments) == 1
        else "Choose a single environment to filter by release stage."
    )


def test_latest_without_releases_is_empty(api_client, org, project):
    assert found(api_client, "release:latest") == set()


def test_random_queries_never_give_a_server_error(api_client, dataset):
    rng = random.Random(7)  # noqa: S311 - reproducible fuzzing
    pieces = ["release", "release.version", "release.build", "release.package", "finalized",
              "release.stage", "release.created", "has", ":", "!", ">", "<=", "=", "(", ")",
              "[", "]", ",", '"', "\\", "*", " ", "AND", "OR", "1.2", "-3d", "2024-01-01",
              "latest", "true", "x", "é", "\t"]  # fmt: skip
    statuses = set()

    for _ in range(300):
        query = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 12)))
        response = search(api_client, query, environment="prod")
        assert response.status_code in (200, 400), (query, response.content)
        if response.status_code == 400:
            assert response.json()["detail"]
        statuses.add(response.status_code)

    assert statuses == {200, 400}


def test_latest_costs_the_same_queries_for_one_or_many_projects(api_client, org, team, project):
    def count() -> int:
        search(api_client, "release:latest", project="-1")
        with CaptureQueriesContext(connection) as queries:
            assert search(api_client, "release:latest", project="-1").status_code == 200
        return len(queries)

    ReleaseFactory(organization=org, version="one@1.0.0", projects=[project])
    one = count()
    for index in range(4):
        other = ProjectFactory(organization=org, teams=[team])
        ReleaseFactory(organization=org, version=f"p{index}@1.0.0", projects=[other])
        ReleaseFactory(organization=org, version=f"plain-{index}", projects=[other])

    assert count() == one
    listed = search(api_client, "release:latest", project="-1").json()
    # Two releases, the newest not semver: that project does not follow semver
    # (docs/search.md §3.3).
    assert {r["version"] for r in listed} == {"one@1.0.0", *(f"plain-{i}" for i in range(4))}
