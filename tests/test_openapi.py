"""Our own OpenAPI schema (``/api/0/schema/``): valid OpenAPI 3.1, every route in it, and
real answers of every operation (successes and the main errors) matching it exactly.

Answers are checked with openapi-core against a stricter copy of the schema in which no
object may carry a key that its schema does not name, so an undocumented key fails as surely
as a wrong type, a missing key or an undocumented status code.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from datetime import timedelta
from typing import Any

import pytest
import yaml
from django.contrib.admindocs.views import simplify_regex
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone
from openapi_core import OpenAPI
from openapi_core.contrib.django import DjangoOpenAPIRequest, DjangoOpenAPIResponse
from openapi_spec_validator import validate
from rest_framework.test import APIClient
from rest_framework.viewsets import ViewSetMixin

from releases.api.params import LIST_SORTS
from releases.api.schema import DocsView, SchemaView
from releases.health.periods import STATS_PERIODS
from tests.envelopes import envelope, event, item, post_envelope, session
from tests.factories import (
    EnvironmentFactory,
    MemberFactory,
    ProjectFactory,
    PullRequestFactory,
    ReleaseFactory,
    RepositoryFactory,
    UserEmailFactory,
    UserFactory,
    create_token,
)

pytestmark = pytest.mark.django_db

ORG = "/api/0/organizations/acme"
PROJ = "/api/0/projects/acme/backend"
# Routes that are no part of the API: the admin, its redirect, the JSON 404 of unknown API
# paths, and the schema and docs page themselves.
NOT_API = ("admin/", "", "^api/")


@functools.cache
def schema() -> dict[str, Any]:
    response = Client().get("/api/0/schema/")
    assert response.status_code == 200, response.content
    return json.loads(response.content)


def strict(node: Any) -> Any:
    """The schema with ``additionalProperties: false`` on every object that names its keys."""
    if isinstance(node, list):
        return [strict(child) for child in node]
    if not isinstance(node, dict):
        return node
    result = {key: strict(value) for key, value in node.items()}
    if "properties" in result and "additionalProperties" not in result:
        result["additionalProperties"] = False
    return result


@functools.cache
def strict_openapi() -> OpenAPI:
    return OpenAPI.from_dict(strict(copy.deepcopy(schema())))


class Request(DjangoOpenAPIRequest):
    """The operation is found from the concrete path (our routes are regular expressions,
    which openapi-core's Django adapter cannot turn into templates)."""

    @property
    def path_pattern(self) -> None:
        return None

    @property
    def body(self) -> bytes:
        """Request bodies are not checked here (the envelope view reads its stream)."""
        return b""


def template_of(path: str) -> str:
    """The schema path that a concrete path falls under."""
    for template in schema()["paths"]:
        pattern = "".join(
            "[^/]+" if part.startswith("{") else re.escape(part)
            for part in re.split(r"(\{[^}]+\})", template)
        )
        if re.fullmatch(pattern, path):
            return template
    raise AssertionError(f"{path} is not in the schema")


def check(response: Any, status: int) -> Any:
    """Assert the status, then that the answer is exactly what the schema says."""
    assert response.status_code == status, response.content
    strict_openapi().validate_response(
        Request(response.wsgi_request), DjangoOpenAPIResponse(response)
    )
    return response


# -- the document ----------------------------------------------------------------------------


def test_schema_is_valid_openapi_3_1():
    document = schema()

    validate(document)
    validate(strict(copy.deepcopy(document)))
    assert document["openapi"].startswith("3.1")


def test_schema_is_public_json_by_default_and_yaml_on_request(anon_client):
    as_json = anon_client.get("/api/0/schema/", HTTP_AUTHORIZATION="Bearer wrong")
    as_yaml = anon_client.get("/api/0/schema/", HTTP_ACCEPT="application/vnd.oai.openapi")
    by_format = anon_client.get("/api/0/schema/?format=yaml")

    assert as_json.status_code == 200
    assert as_json["Content-Type"].startswith("application/vnd.oai.openapi+json")
    assert as_yaml["Content-Type"].startswith("application/vnd.oai.openapi")
    assert "json" not in as_yaml["Content-Type"]
    assert yaml.safe_load(as_yaml.content) == json.loads(as_json.content)
    assert yaml.safe_load(by_format.content) == json.loads(as_json.content)


def test_docs_page_loads_swagger_ui_from_our_static_files(anon_client):
    response = anon_client.get("/api/docs/")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    page = response.content.decode()
    scripts = re.findall(r'<script src="([^"]+)"', page)
    assert scripts, page
    assert all(src.startswith("/static/drf_spectacular_sidecar/") for src in scripts)
    assert "/api/0/schema/" in page
    for src in scripts:
        asset = Client().get(src)
        body = b"".join(asset.streaming_content)
        asset.close()
        assert asset.status_code == 200, src
        assert len(body) > 1000, src


def served_routes() -> list[tuple[str, Any]]:
    """``(OpenAPI path, view)`` of every route the URL resolver serves, but NOT_API's."""
    found: list[tuple[str, Any]] = []

    def walk(patterns: list[Any], prefix: str) -> None:
        for entry in patterns:
            text = str(entry.pattern)
            if isinstance(entry, URLResolver):
                if prefix == "" and text in NOT_API:
                    continue
                walk(entry.url_patterns, prefix + text)
            elif isinstance(entry, URLPattern):
                if prefix == "" and text in NOT_API:
                    continue
                view = getattr(entry.callback, "cls", None)
                if view is not None and issubclass(view, SchemaView | DocsView):
                    continue
                path = simplify_regex(prefix + text)
                found.append((re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", path), entry.callback))

    walk(get_resolver().url_patterns, "")
    return found


def methods_of(callback: Any) -> set[str]:
    view = getattr(callback, "cls", None)
    if view is None:  # a plain Django view: /_health/
        return {"get"}
    if issubclass(view, ViewSetMixin):
        # DRF adds ``head`` to a viewset's actions on its first request.
        return set(callback.actions) - {"head"}
    return {m for m in view.http_method_names if hasattr(view, m)} - {"options", "head"}


def test_every_route_we_serve_is_in_the_schema_and_nothing_else():
    paths = schema()["paths"]
    routes = served_routes()

    assert len(routes) > 15
    for path, callback in routes:
        assert path in paths, path
        assert set(paths[path]) == methods_of(callback), path
    assert set(paths) == {path for path, _ in routes}


def test_every_operation_names_its_security_and_errors():
    for path, operations in schema()["paths"].items():
        for method, operation in operations.items():
            assert operation["operationId"], (path, method)
            assert operation["security"], (path, method)
            if path.startswith("/api/0/organizations/{organization_id_or_slug}"):
                assert {"400", "401", "403", "404"} <= set(operation["responses"]), path
                scopes = {s for need in operation["security"] for s in need.get("bearer", ())}
                assert scopes, (path, method)


def test_operations_list_the_scopes_of_their_permission():
    release = schema()["paths"]["/api/0/organizations/{organization_id_or_slug}/releases/"]
    repos = schema()["paths"]["/api/0/organizations/{organization_id_or_slug}/repos/"]

    def scopes(operation: dict[str, Any]) -> set[str]:
        return {s for need in operation["security"] for s in need.get("bearer", ())}

    assert scopes(release["get"]) == {
        "org:ci", "project:admin", "project:read", "project:releases", "project:write"
    }  # fmt: skip
    assert scopes(release["post"]) == {
        "org:ci", "project:admin", "project:releases", "project:write"
    }  # fmt: skip
    assert scopes(repos["post"]) == {"org:admin", "org:integrations", "org:write"}


def test_parameters_carry_their_allowed_values():
    operation = schema()["paths"]["/api/0/organizations/{organization_id_or_slug}/releases/"]
    parameters = {p["name"]: p["schema"] for p in operation["get"]["parameters"]}

    assert sorted(parameters["sort"]["enum"]) == sorted(LIST_SORTS)
    assert sorted(parameters["status"]["enum"]) == ["", "archived", "open"]
    assert sorted(parameters["summaryStatsPeriod"]["enum"]) == sorted(STATS_PERIODS)
    assert parameters["health"]["type"] == "boolean"
    assert parameters["per_page"]["type"] == "integer"


# -- real answers ------------------------------------------------------------------------------


@pytest.fixture
def world(api_client: APIClient, org, project, member, user):
    """A release with commits (a member author, an outside author, none), a pull request, a
    deploy, sessions and an event; a second, older release; a repository."""
    member.role = "owner"
    member.save()
    UserEmailFactory(user=user, email="alice@work.example.com")
    other = UserFactory(username="bob", email="bob@example.com")
    MemberFactory(organization=org, user=other, teams=[])
    EnvironmentFactory(organization=org, name="production")
    repository = RepositoryFactory(organization=org, name="acme/app")
    PullRequestFactory(
        organization=org,
        repository=repository,
        key="7",
        merge_commit_sha="a" * 40,
        author=None,
        merged_at=timezone.now(),
    )
    ReleaseFactory(organization=org, version="backend@0.9.0", projects=[project])
    created = api_client.post(
        f"{ORG}/releases/",
        {
            "version": "backend@1.0.0",
            "projects": [project.slug],
            "owner": "alice",
            "ref": "main",
            "commits": [
                {"id": "c" * 40, "repository": "acme/app"},
                {
                    "id": "b" * 40,
                    "repository": "acme/app",
                    "message": "outside",
                    "author_name": "Xavier",
                    "author_email": "x@elsewhere.example.com",
                },
                {
                    "id": "a" * 40,
                    "repository": "acme/app",
                    "message": "fix: everything",
                    "author_name": "Alice",
                    "author_email": "alice@example.com",
                    "timestamp": "2026-11-30T10:00:00Z",
                    "patch_set": [{"path": "app.py", "type": "M"}],
                },
            ],
        },
        format="json",
    )
    assert created.status_code == 201, created.content
    deployed = api_client.post(
        f"{ORG}/releases/backend@1.0.0/deploys/", {"environment": "production"}, format="json"
    )
    assert deployed.status_code == 201, deployed.content
    now = timezone.now()
    body = envelope(
        item("session", session(release="backend@1.0.0", started=now, did="u1", duration=3.5)),
        item(
            "session",
            session(release="backend@1.0.0", started=now - timedelta(hours=2), status="crashed"),
        ),
    )
    assert post_envelope(api_client, project, body).status_code == 200
    return project


def test_api_root_and_organizations(api_client, anon_client, world, token):
    check(api_client.get("/api/0/"), 200)
    check(anon_client.get("/api/0/"), 200)
    check(anon_client.get("/api/0/", HTTP_AUTHORIZATION="Bearer nope"), 401)
    check(api_client.get("/api/0/organizations/?owner=1&query=ac"), 200)
    check(api_client.get("/api/0/organizations/?owner=maybe"), 400)
    check(anon_client.get("/api/0/organizations/"), 401)
    check(api_client.get(f"{ORG}/"), 200)
    check(api_client.get("/api/0/organizations/nowhere/"), 404)
    check(api_client.get(f"{ORG}/projects/?per_page=1"), 200)
    check(api_client.get(f"{ORG}/projects/?per_page=0"), 400)
    check(api_client.get("/api/0/projects/"), 200)
    check(api_client.get("/api/0/projects/?cursor=bad"), 400)
    releases_only = APIClient()
    releases_only.credentials(HTTP_AUTHORIZATION=f"Bearer {token(['project:releases'])}")
    check(releases_only.get(f"{ORG}/"), 403)


def test_organization_token(org, world):
    client = APIClient()
    client.credentials(
        HTTP_AUTHORIZATION=f"Bearer {create_token(organization=org, scopes=['org:ci'])}"
    )

    check(client.get("/api/0/"), 200)
    check(client.get("/api/0/projects/"), 200)
    check(client.get(f"{ORG}/releases/?health=1"), 200)


def test_sessions(api_client, world):
    base = f"{ORG}/sessions/?statsPeriod=24h&interval=1h"

    check(api_client.get(f"{base}&field=sum(session)&groupBy=session.status"), 200)
    check(
        api_client.get(
            f"{base}&field=sum(session)&field=count_unique(user)&field=crash_free_rate(user)"
            "&field=p50(session.duration)&groupBy=project&groupBy=release&orderBy=-sum(session)"
            "&query=release:backend@*"
        ),
        200,
    )
    check(api_client.get(f"{base}&field=anr_rate()"), 400)
    check(api_client.get(f"{base}"), 400)
    check(api_client.get(f"{base}&field=sum(session)&project=999999"), 403)


def test_release_list(api_client, world):
    check(api_client.get(f"{ORG}/releases/"), 200)
    check(
        api_client.get(
            f"{ORG}/releases/?health=1&adoptionStages=1&environment=production&summaryStatsPeriod=24h"
            "&healthStatsPeriod=7d"
        ),
        200,
    )
    check(api_client.get(f"{ORG}/releases/?flatten=1&sort=crash_free_sessions&health=1"), 200)
    check(api_client.get(f"{ORG}/releases/?query=release.version:>=1.0.0&per_page=1"), 200)
    check(api_client.get(f"{ORG}/releases/?sort=nope"), 400)
    check(api_client.get(f"{ORG}/releases/?query=nokey:1"), 400)
    check(api_client.get(f"{ORG}/releases/?environment=mars"), 404)
    check(api_client.get(f"{ORG}/releases/?project=999999"), 403)
    check(APIClient().get(f"{ORG}/releases/"), 401)


def test_release_details(api_client, world):
    path = f"{ORG}/releases/backend@1.0.0/"

    check(api_client.get(path), 200)
    check(api_client.get(f"{path}?health=1&adoptionStages=1&project={world.slug}"), 200)
    check(api_client.get(f"{path}?project={world.slug}&sort=sessions&health=1"), 200)
    check(api_client.get(f"{path}?health=maybe"), 400)
    check(api_client.get(f"{ORG}/releases/nope/"), 404)
    check(api_client.get(f"{PROJ}/releases/backend@1.0.0/?health=1"), 200)
    check(api_client.get("/api/0/projects/acme/nope/releases/backend@1.0.0/"), 404)


def test_release_writes(api_client, world, token):
    check(
        api_client.post(
            f"{ORG}/releases/", {"version": "backend@1.0.0", "projects": ["backend"]}, format="json"
        ),
        208,
    )
    check(
        api_client.post(
            f"{ORG}/releases/", {"version": "", "projects": ["backend"]}, format="json"
        ),
        400,
    )
    check(api_client.post(f"{ORG}/releases/", {"version": "x@1"}, format="json"), 400)
    check(api_client.post(f"{PROJ}/releases/", {"version": "backend@2.0.0"}, format="json"), 201)
    check(
        api_client.put(
            f"{ORG}/releases/backend@2.0.0/",
            {"dateReleased": "2026-11-30T12:00:00Z", "status": "archived", "url": "https://x.io"},
            format="json",
        ),
        200,
    )
    check(api_client.put(f"{ORG}/releases/backend@2.0.0/", {"status": "gone"}, format="json"), 400)
    check(api_client.put(f"{PROJ}/releases/backend@2.0.0/", {"ref": "v2"}, format="json"), 200)
    readers = APIClient()
    readers.credentials(HTTP_AUTHORIZATION=f"Bearer {token(['project:read'])}")
    check(readers.post(f"{ORG}/releases/", {"version": "y@1", "projects": []}, format="json"), 403)
    check(api_client.delete(f"{ORG}/releases/backend@1.0.0/"), 400)
    check(api_client.delete(f"{PROJ}/releases/backend@2.0.0/"), 204)
    check(api_client.delete(f"{ORG}/releases/backend@2.0.0/"), 404)


def test_commits_deploys_and_previous(api_client, world):
    for base in (f"{ORG}/releases", f"{PROJ}/releases"):
        check(api_client.get(f"{base}/backend@1.0.0/commits/"), 200)
        check(api_client.get(f"{base}/backend@1.0.0/commits/?per_page=500"), 400)
        check(api_client.get(f"{base}/nope/commits/"), 404)
        check(api_client.get(f"{base}/backend@1.0.0/deploys/"), 200)
        check(
            api_client.post(
                f"{base}/backend@1.0.0/deploys/",
                {"environment": "staging", "name": "Staging", "url": "https://staging.example"},
                format="json",
            ),
            201,
        )
        check(
            api_client.post(
                f"{base}/backend@1.0.0/deploys/", {"environment": "a/b"}, format="json"
            ),
            400,
        )
        check(api_client.get(f"{base}/backend@1.0.0/previous-with-commits/"), 200)
        check(api_client.get(f"{base}/backend@0.9.0/previous-with-commits/"), 200)
        check(api_client.get(f"{base}/nope/previous-with-commits/"), 404)


def test_repositories(api_client, world, token):
    admin = APIClient()
    admin.credentials(HTTP_AUTHORIZATION=f"Bearer {token(['org:admin'])}")

    check(api_client.get(f"{ORG}/repos/?status=&query=app"), 200)
    check(api_client.get(f"{ORG}/repos/?status=nope"), 400)
    check(admin.post(f"{ORG}/repos/", {"name": "acme/new", "provider": None}, format="json"), 201)
    check(admin.post(f"{ORG}/repos/", {"name": "acme/new"}, format="json"), 409)
    check(admin.post(f"{ORG}/repos/", {"url": "not a url"}, format="json"), 400)
    check(api_client.post(f"{ORG}/repos/", {"name": "acme/other"}, format="json"), 403)


def test_envelope(anon_client, world):
    now = timezone.now()
    sessions = envelope(item("session", session(release="backend@1.0.0", started=now)))
    events = envelope(item("event", event(release="backend@1.0.0", timestamp=now)))
    elsewhere = ProjectFactory(organization=world.organization)

    check(post_envelope(anon_client, world, sessions), 200)
    check(post_envelope(anon_client, world, events), 200)
    check(post_envelope(anon_client, world, sessions, auth=False), 401)
    check(post_envelope(anon_client, world, b"{not json\n"), 400)
    key = world.keys.get().public_key
    check(
        anon_client.post(
            f"/api/{elsewhere.pk}/envelope/?sentry_key={key}",
            data=sessions,
            content_type="application/x-sentry-envelope",
        ),
        403,
    )


def test_envelope_too_large(anon_client, world, settings):
    settings.ENVELOPE_MAX_BYTES = 10

    check(post_envelope(anon_client, world, b"x" * 100), 413)


def test_health_check(anon_client):
    check(anon_client.get("/_health/"), 200)
    check(anon_client.get("/_health/?full=1"), 200)


def test_an_answer_unlike_its_schema_fails(api_client, world):
    response = api_client.get(f"{ORG}/")
    response.content = json.dumps({**response.json(), "surprise": 1}).encode()

    with pytest.raises(Exception, match=r"surprise|additional"):
        check(response, 200)


@pytest.mark.parametrize(
    "path",
    [f"{ORG}/releases/", f"{ORG}/releases/backend@1.0.0/", f"{ORG}/repos/", f"{ORG}/sessions/",
     f"{PROJ}/releases/backend@1.0.0/deploys/", "/api/0/", "/api/0/projects/"],
)  # fmt: skip
def test_allow_lists_the_schema_methods_plus_head_and_options(api_client, world, path):
    response = api_client.options(path)

    assert response.status_code == 200, response.content
    allowed = {m.strip().lower() for m in response["Allow"].split(",")}
    assert allowed == {*schema()["paths"][template_of(path)], "head", "options"}
