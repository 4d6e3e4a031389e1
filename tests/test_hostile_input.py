"""No 500 from input (outside the envelope endpoint): issue reproducers, and a bounded
property-based fuzz of every API route's query parameters and JSON bodies."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework.test import APIClient

from releases.models import Commit, Release, Repository
from tests.factories import ReleaseFactory
from tests.test_access_matrix import ROUTES, fill

pytestmark = pytest.mark.django_db

TOO_BIG = "9223372036854775808"  # 2**63
RELEASES = "/api/0/organizations/acme/releases/"
DEPLOYS = "/api/0/organizations/acme/releases/1.0/deploys/"


def test_a_hundred_thousand_deep_json_body_is_a_400(api_client: APIClient, project):
    body = "[" * 100_000 + "]" * 100_000

    response = api_client.post(
        "/api/0/organizations/acme/releases/", body, content_type="application/json"
    )

    assert response.status_code == 400
    assert response.json() == {"detail": "JSON parse error - nested more than 32 levels deep"}


def test_a_deep_dict_under_an_ignored_key_is_a_400(api_client: APIClient, project):
    deep: Any = {}
    for _ in range(900):
        deep = {"a": deep}
    body = json.dumps({"version": "1.0", "projects": ["backend"], "ignored": deep})

    response = api_client.post(
        "/api/0/organizations/acme/releases/", body, content_type="application/json"
    )

    assert response.status_code == 400
    assert "nested more than 32 levels" in response.json()["detail"]
    assert not Release.objects.exists()


def test_ordinary_nesting_is_accepted(api_client: APIClient, project):
    body = {
        "version": "1.0",
        "projects": ["backend"],
        "commits": [{"id": "a" * 40, "patch_set": [{"path": "x", "type": "A"}]}],
    }

    response = api_client.post("/api/0/organizations/acme/releases/", body, format="json")

    assert response.status_code == 201, response.content


@pytest.mark.parametrize(
    "url",
    [
        f"/api/0/organizations/acme/releases/?project={TOO_BIG}",
        f"/api/0/organizations/acme/releases/1.0/?project={TOO_BIG}",
        f"/api/0/organizations/acme/sessions/?field=sum(session)&project={TOO_BIG}",
        f"/api/0/organizations/{TOO_BIG}/releases/",
        f"/api/0/projects/acme/{TOO_BIG}/releases/",
        "/api/0/organizations/acme/releases/?per_page=" + "9" * 5000,
        "/api/0/organizations/acme/releases/?cursor=" + "9" * 5000 + ":0:0",
        "/api/0/organizations/acme/sessions/?field=sum(session)&statsPeriod=" + "9" * 5000,
    ],
)
def test_ids_and_numbers_beyond_64_bits_are_4xx(api_client: APIClient, project, url):
    ReleaseFactory(organization=project.organization, version="1.0", projects=[project])

    response = api_client.get(url)

    assert 400 <= response.status_code < 500, response.content
    assert response.json()


def test_a_semver_component_beyond_64_bits_matches_nothing(api_client: APIClient, project):
    ReleaseFactory(organization=project.organization, version="1.0.0", projects=[project])

    response = api_client.get(
        f"/api/0/organizations/acme/releases/?query=release.version:{TOO_BIG}.*"
    )

    assert response.status_code == 200
    assert response.json() == []


@pytest.mark.parametrize(
    ("url", "body"),
    [
        ("/api/0/organizations/acme/releases/", {"version": "2.0", "projects": [TOO_BIG]}),
        ("/api/0/organizations/acme/releases/", {"version": "2.0", "projects": [2**63]}),
        (DEPLOYS, {"environment": "p", "projects": [TOO_BIG]}),
        (RELEASES, {"version": "2.0", "projects": ["backend"], "owner": TOO_BIG}),
    ],
)  # fmt: skip
def test_project_ids_beyond_64_bits_in_bodies_are_400(api_client: APIClient, project, url, body):
    ReleaseFactory(organization=project.organization, version="1.0", projects=[project])

    response = api_client.post(url, body, format="json")

    assert response.status_code == 400, response.content
    assert not Release.objects.filter(version="2.0").exists()


def test_commits_over_2000_repositories_are_stored(api_client: APIClient, project):
    commits = [{"id": f"{n:040x}", "repository": f"acme/repo-{n}"} for n in range(2100)]

    response = api_client.post(
        "/api/0/organizations/acme/releases/",
        {"version": "1.0", "projects": ["backend"], "commits": commits},
        format="json",
    )

    assert response.status_code == 201, response.content[:300]
    assert Repository.objects.count() == 2100
    assert Commit.objects.count() == 2100


def test_a_body_above_the_upload_limit_is_a_json_413(api_client: APIClient, project, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000

    response = api_client.post(
        "/api/0/organizations/acme/releases/",
        {"version": "1.0", "projects": ["backend"], "ref": "x" * 2000},
        format="json",
    )

    assert response.status_code == 413
    assert response.json() == {"detail": "Request body too large: the limit is 1000 bytes."}
    assert not Release.objects.exists()


# -- fuzz --------------------------------------------------------------------------------------

PARAMS = [
    "project", "environment", "query", "sort", "status", "per_page", "cursor", "health",
    "adoptionStages", "flatten", "summaryStatsPeriod", "healthStatsPeriod", "statsPeriod",
    "start", "end", "field", "groupBy", "orderBy", "interval", "includeSeries", "includeTotals",
    "project_id",
]  # fmt: skip
BODY_KEYS = [
    "version", "projects", "ref", "url", "dateReleased", "status", "owner", "commits", "refs",
    "headCommits", "environment", "name", "dateStarted", "dateFinished", "provider", "id",
    "repository", "patch_set", "commit", "previousCommit",
]  # fmt: skip

texts = st.one_of(
    st.text(max_size=30),
    st.sampled_from(
        ["-1", "$all", "0", TOO_BIG, "1" * 30, "backend", "1d", "24h", "date", "sessions",
         "sum(session)", "release.version:1.*", "2026-01-01T00:00:00", "\ud800", "a\x00", ""]
    ),
)  # fmt: skip
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70), texts
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.sampled_from(BODY_KEYS), inner, max_size=4),
    ),
    max_leaves=12,
)
WRITES = [(t, m) for t, methods in ROUTES.items() for m in methods if m != "GET"]
READS = [t for t, methods in ROUTES.items() if "GET" in methods]
FUZZ = settings(
    max_examples=60,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _client(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


@pytest.fixture
def fuzz_world(token, project):
    ReleaseFactory(organization=project.organization, version="1.0", projects=[project])
    return _client(token(["org:read", "project:read", "project:write", "project:releases"]))


@FUZZ
@given(
    template=st.sampled_from(READS),
    version=st.sampled_from(["1.0", "nope", TOO_BIG]),
    params=st.lists(st.tuples(st.sampled_from(PARAMS), texts), max_size=5),
)
def test_fuzzed_query_parameters_never_give_a_5xx(fuzz_world, template, version, params):
    url = fill(template, "acme", "backend", version)
    response = fuzz_world.get(url, [(k, v) for k, v in params if "\ud800" not in v])

    assert response.status_code < 500, (url, params, response.content[:500])


@FUZZ
@given(
    route=st.sampled_from(WRITES),
    body=st.one_of(
        json_values, st.dictionaries(st.sampled_from(BODY_KEYS), json_values, max_size=6)
    ),
)
def test_fuzzed_json_bodies_never_give_a_5xx(fuzz_world, route, body):
    template, method = route
    url = fill(template, "acme", "backend", "1.0")
    text = json.dumps(body)

    response = getattr(fuzz_world, method.lower())(url, text, content_type="application/json")

    assert response.status_code < 500, (method, url, text, response.content[:500])


# -- slow bodies -------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_trickling_body_holds_no_database_transaction(tmp_path, token, project):
    """While a client sends 10 bytes of a declared 1,000-byte POST body, the server holds no
    transaction (nothing "idle in transaction" in pg_stat_activity); the request then
    completes normally once the body arrives."""
    from django.db import connection

    from tests.gunicorn_server import get, serve, wait_for

    secret = token()
    body = json.dumps({"version": "slow@1.0", "projects": ["backend"]}).encode()
    body = body + b" " * (1000 - len(body))
    head = (
        "POST /api/0/organizations/acme/releases/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {secret}\r\nContent-Type: application/json\r\n"
        "Content-Length: 1000\r\nConnection: close\r\n\r\n"
    ).encode()

    def in_transaction() -> int:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND pid <> pg_backend_pid() AND state LIKE 'idle in transaction%%'"
            )
            return int(cursor.fetchone()[0])

    with serve(tmp_path / "gunicorn.log") as url:
        port = int(url.rsplit(":", 1)[1])
        import socket

        with socket.create_connection(("127.0.0.1", port), timeout=30) as slow:
            slow.sendall(head + body[:10])
            # Another request goes through meanwhile, so the server has read the slow one's
            # headers and is waiting for its body.
            status, _, _ = get(f"{url}/api/0/organizations/acme/", Authorization=f"Bearer {secret}")
            assert status == 200
            samples = [in_transaction() for _ in range(10)]
            slow.sendall(body[10:])
            answer = b""
            while chunk := slow.recv(65536):
                answer += chunk
        wait_for(lambda: Release.objects.filter(version="slow@1.0").exists(), what="release")

    assert samples == [0] * 10
    assert answer.startswith(b"HTTP/1.1 201"), answer[:200]
