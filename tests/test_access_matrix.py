"""The access matrix: every API route and method, callers and targets in and out of reach.

Routes come from the URL resolver, so a new route fails :func:`test_every_route_is_in_the_matrix`
until it is given a body here. Each test builds one small world and loops over the routes:

- acme (closed membership): team ``core`` owns ``backend``; team ``vault`` owns
  ``zz-hidden`` (name ``Zz Hidden Name``); team ``empty`` owns nothing.
- releases: ``shared@1.0`` on both projects (hidden side: 7,777 new groups, 13 sessions, a
  first event on 2001-02-03), ``hidden@9.9.9`` on ``zz-hidden`` only (it shares the last commit
  of ``shared@1.0``), ``mine@1.0`` on ``backend`` only.
- globex: another organization, with its own member and organization token.

Nothing of ``zz-hidden`` (slug, name, id, health numbers, its release) may appear in any body
a caller without access to it receives, and a refused write changes nothing in the database.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import ApiToken, OrganizationMember
from accounts.scopes import ALL_SCOPES, ROLE_SCOPES
from releases.models import (
    Commit,
    Deploy,
    Environment,
    Project,
    Release,
    ReleaseCommit,
    ReleaseProject,
    ReleaseProjectEnvironment,
    Repository,
)
from releases.services import release_refresh_deploys
from tests.envelopes import send_sessions, session
from tests.factories import (
    CommitFactory,
    DeployFactory,
    MemberFactory,
    OrganizationFactory,
    ProjectFactory,
    ReleaseFactory,
    RepositoryFactory,
    TeamFactory,
    UserFactory,
    create_token,
)

pytestmark = pytest.mark.django_db

HIDDEN_SLUG = "zz-hidden"
HIDDEN_NAME = "Zz Hidden Name"
HIDDEN_VERSION = "hidden@9.9.9"
HIDDEN_NEW_GROUPS = 7777
HIDDEN_FIRST_EVENT = datetime(2001, 2, 3, 4, 5, tzinfo=UTC)

# -- routes ------------------------------------------------------------------------------------

ORG = "{org}"
PROJ = "{project}"
VER = "{version}"

#: Every route under /api/0/ and its methods, with the body each write sends. ``None`` is a
#: route whose writes are not tested here (none today).
ROUTES: dict[str, dict[str, dict[str, Any] | None]] = {
    "/api/0/": {"GET": None},
    "/api/0/organizations/": {"GET": None},
    "/api/0/organizations/{org}/": {"GET": None},
    "/api/0/organizations/{org}/projects/": {"GET": None},
    "/api/0/organizations/{org}/sessions/": {"GET": None},
    "/api/0/projects/": {"GET": None},
    "/api/0/organizations/{org}/releases/": {
        "GET": None,
        "POST": {"version": "new@1.0", "projects": ["backend"]},
    },
    "/api/0/organizations/{org}/releases/{version}/": {
        "GET": None,
        "PUT": {"ref": "changed"},
        "DELETE": None,
    },
    "/api/0/organizations/{org}/releases/{version}/commits/": {"GET": None},
    "/api/0/organizations/{org}/releases/{version}/deploys/": {
        "GET": None,
        "POST": {"environment": "staging"},
    },
    "/api/0/organizations/{org}/releases/{version}/previous-with-commits/": {"GET": None},
    "/api/0/organizations/{org}/repos/": {"GET": None, "POST": {"name": "acme/new-repo"}},
    "/api/0/projects/{org}/{project}/releases/": {"GET": None, "POST": {"version": "new@1.0"}},
    "/api/0/projects/{org}/{project}/releases/{version}/": {
        "GET": None,
        "PUT": {"ref": "changed"},
        "DELETE": None,
    },
    "/api/0/projects/{org}/{project}/releases/{version}/commits/": {"GET": None},
    "/api/0/projects/{org}/{project}/releases/{version}/deploys/": {
        "GET": None,
        "POST": {"environment": "staging"},
    },
    "/api/0/projects/{org}/{project}/releases/{version}/previous-with-commits/": {"GET": None},
}

#: Routes about no one organization: they list what the caller may see, for anyone signed in.
INDEX_ROUTES = ("/api/0/", "/api/0/organizations/", "/api/0/projects/")

#: Query strings added to reads, so that health, adoption and navigation are computed too.
READ_QUERY = {
    "/api/0/organizations/{org}/releases/": "?health=1&adoptionStages=1&project=-1",
    "/api/0/organizations/{org}/releases/{version}/": "?health=1&adoptionStages=1",
    "/api/0/organizations/{org}/sessions/": "?field=sum(session)&groupBy=project&project=-1",
}

_GROUP = re.compile(r"\(\?P<(\w+)>[^)]*\)")
_PLACEHOLDER = {"organization_id_or_slug": ORG, "project_id_or_slug": PROJ, "version": VER}


def _walk(patterns: list[Any], prefix: str) -> Iterator[tuple[str, Any]]:
    for entry in patterns:
        if isinstance(entry, URLResolver):
            yield from _walk(entry.url_patterns, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            yield prefix + str(entry.pattern), entry.callback


def _methods(callback: Any) -> set[str]:
    actions = getattr(callback, "actions", None)
    if actions:
        # DRF adds "head" to a viewset's actions once it has answered a GET: HEAD mirrors GET.
        return {m.upper() for m in actions if m != "head"}
    view = getattr(callback, "view_class", None) or getattr(callback, "cls", None)
    names = {"get", "post", "put", "patch", "delete"}
    return {m.upper() for m in names if view is not None and hasattr(view, m)}


def resolved_routes() -> dict[str, set[str]]:
    """Every ``/api/0/`` route of the URL resolver as a template, with its methods."""
    routes: dict[str, set[str]] = {}
    for raw, callback in _walk(get_resolver().url_patterns, "/"):
        # The schema is public and holds no data (tests/test_openapi.py checks it).
        if not raw.startswith("/api/0/") or raw.startswith("/api/0/schema/"):
            continue
        template = _GROUP.sub(lambda m: _PLACEHOLDER[m[1]], raw).replace("^", "").rstrip("$")
        routes[template] = _methods(callback)
    return routes


def test_every_route_is_in_the_matrix():
    assert {t: set(m) for t, m in ROUTES.items()} == resolved_routes()


def required_scopes(template: str, method: str) -> frozenset[str] | None:
    """The scopes of the route's permission class for ``method`` (docs/api.md §6.1)."""
    match = get_resolver().resolve(fill(template, "acme", "backend", "mine@1.0"))
    view = getattr(match.func, "view_class", None) or match.func.cls  # type: ignore[attr-defined]
    for permission in view.permission_classes:
        scope_map = getattr(permission, "scope_map", None)
        if scope_map is not None:
            return frozenset(scope_map[method])
    return None


def fill(template: str, org: str, project: str, version: str) -> str:
    return template.replace(ORG, org).replace(PROJ, project).replace(VER, version)


# -- the world ---------------------------------------------------------------------------------


@dataclass
class World:
    acme_hidden: Project
    tokens: dict[str, str]
    hidden_id: int


@pytest.fixture
def world(client) -> World:
    acme = OrganizationFactory(slug="acme", open_membership=False)
    core = TeamFactory(organization=acme, slug="core")
    vault = TeamFactory(organization=acme, slug="vault")
    empty = TeamFactory(organization=acme, slug="empty")
    backend = ProjectFactory(organization=acme, slug="backend", name="Backend", teams=[core])
    hidden = ProjectFactory(organization=acme, slug=HIDDEN_SLUG, name=HIDDEN_NAME, teams=[vault])
    globex = OrganizationFactory(slug="globex")
    gteam = TeamFactory(organization=globex, slug="g")
    ProjectFactory(organization=globex, slug="globex-app", teams=[gteam])

    repo = RepositoryFactory(organization=acme, name="acme/app")
    commit = CommitFactory(organization=acme, repository=repo, key="c" * 40)
    shared = ReleaseFactory(organization=acme, version="shared@1.0", projects=[backend, hidden])
    secret = ReleaseFactory(organization=acme, version=HIDDEN_VERSION, projects=[hidden])
    ReleaseFactory(organization=acme, version="mine@1.0", projects=[backend])
    for release in (shared, secret):
        ReleaseCommit.objects.create(release=release, commit=commit, order=0)
        Release.objects.filter(pk=release.pk).update(last_commit=commit, commit_count=1)
    ReleaseProject.objects.filter(release=shared, project=hidden).update(
        new_groups=HIDDEN_NEW_GROUPS
    )
    ReleaseProject.objects.filter(release=shared, project=backend).update(new_groups=5)
    production = Environment.objects.create(organization=acme, name="production")
    ReleaseProjectEnvironment.objects.create(
        release=shared,
        project=hidden,
        environment=production,
        first_seen=HIDDEN_FIRST_EVENT,
        last_seen=HIDDEN_FIRST_EVENT,
        new_issues_count=HIDDEN_NEW_GROUPS,
    )
    DeployFactory(release=shared, environment=production)
    release_refresh_deploys(release=shared)

    now = timezone.now() - timedelta(minutes=5)
    envelopes = APIClient()
    send_sessions(
        envelopes,
        hidden,
        *(session(release="shared@1.0", started=now, status="exited") for _ in range(13)),
    )

    def member(role: str, *teams: Any) -> Any:
        user = UserFactory()
        MemberFactory(organization=acme, user=user, role=role, teams=list(teams))
        return user

    alice = member("member", core)
    bob = member("admin", core)
    carol = member("member", empty)
    dave = UserFactory()
    MemberFactory(organization=globex, user=dave, role="owner", teams=[gteam])

    tokens = {
        "member": create_token(user=alice, scopes=sorted(ROLE_SCOPES["member"])),
        "admin": create_token(user=bob, scopes=sorted(ROLE_SCOPES["admin"])),
        "teamless": create_token(user=carol, scopes=sorted(ROLE_SCOPES["member"])),
        "other-user": create_token(user=dave, scopes=sorted(ROLE_SCOPES["owner"])),
        "other-org": create_token(organization=globex, scopes=["org:ci"]),
        "acme-org": create_token(organization=acme, scopes=["org:ci"]),
    }
    expired = create_token(user=alice, scopes=sorted(ROLE_SCOPES["member"]))
    ApiToken.objects.filter(pk=ApiToken.objects.filter(user=alice).latest("pk").pk).update(
        expires_at=timezone.now() - timedelta(days=1)
    )
    tokens["expired"] = expired
    tokens["bad"] = "0" * 64
    for scope in sorted(ALL_SCOPES):
        tokens[f"scope:{scope}"] = create_token(user=bob, scopes=[scope])
    return World(acme_hidden=hidden, tokens=tokens, hidden_id=hidden.pk)


def snapshot() -> dict[str, list[tuple[Any, ...]]]:
    """The rows a write could change."""
    models = [
        Release,
        ReleaseProject,
        ReleaseProjectEnvironment,
        Deploy,
        Environment,
        Repository,
        Commit,
        ReleaseCommit,
        Project,
        OrganizationMember,
    ]
    return {
        m.__name__: sorted(  # type: ignore[attr-defined]
            (tuple(sorted(r.items())) for r in m.objects.values()), key=repr
        )
        for m in models
    }


def call(
    token: str | None, template: str, method: str, org: str, project: str, version: str
) -> tuple[int, str]:
    client = APIClient()
    if token is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    url = fill(template, org, project, version)
    if method == "GET":
        url += READ_QUERY.get(template, "")
    body = ROUTES[template][method]
    response = getattr(client, method.lower())(url, body, format="json")
    return response.status_code, response.content.decode()


def leaks(world: World, text: str) -> list[str]:
    """What of the hidden project shows in ``text``."""
    found = [s for s in (HIDDEN_SLUG, HIDDEN_NAME, HIDDEN_VERSION, "2001-02-03") if s in text]
    try:
        data = json.loads(text) if text else None
    except ValueError:
        return [*found, "not JSON"]

    def walk(value: Any) -> Iterator[Any]:
        yield value
        if isinstance(value, dict):
            for item in value.values():
                yield from walk(item)
        elif isinstance(value, list):
            for item in value:
                yield from walk(item)

    for value in walk(data):
        # As a number, not as text: "7777" may be part of a timestamp's microseconds.
        if type(value) is int and value in (HIDDEN_NEW_GROUPS, 5 + HIDDEN_NEW_GROUPS):
            found.append("hidden new groups")
        if isinstance(value, dict):
            if value.get("id") in (world.hidden_id, str(world.hidden_id)) and "platform" in value:
                found.append("hidden project id")
            if value.get("totalSessions") == 13:
                found.append("hidden sessions")
    return found


TARGETS = [
    ("acme", "backend", "mine@1.0"),
    ("acme", "backend", "shared@1.0"),
    ("acme", "backend", HIDDEN_VERSION),
    ("acme", HIDDEN_SLUG, "shared@1.0"),
    ("globex", "globex-app", "mine@1.0"),
]


def cases(methods: set[str]) -> Iterator[tuple[str, str]]:
    """Routes and methods, reads first and deletes last (a successful delete must not hide
    later routes' targets)."""
    order = {"GET": 0, "POST": 1, "PUT": 2, "DELETE": 3}
    pairs = [(t, m) for t, ms in ROUTES.items() for m in ms if m in methods]
    yield from sorted(pairs, key=lambda pair: order[pair[1]])


# -- callers from outside ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("caller", "status"),
    [(None, 401), ("bad", 401), ("expired", 401), ("other-user", 403), ("other-org", 403)],
)
def test_callers_from_outside_reach_nothing_of_acme(world: World, caller: str | None, status):
    before = snapshot()
    token = world.tokens[caller] if caller else None
    for template, method in cases({"GET", "POST", "PUT", "DELETE"}):
        for org, project, version in TARGETS[:4]:
            code, text = call(token, template, method, org, project, version)
            where = f"{caller} {method} {fill(template, org, project, version)}"
            if template in INDEX_ROUTES:
                # Not about one organization: 200 (the root answers anyone) or 401.
                assert code in (200, 401), where
                assert code == 200 or status == 401, where
                assert "acme" not in text, where
                assert "backend" not in text, where
            else:
                assert code == status, (where, code, text)
                assert json.loads(text)["detail"], where
            assert not leaks(world, text), where
    assert snapshot() == before


# -- single scopes -----------------------------------------------------------------------------


@pytest.mark.parametrize("scope", sorted(ALL_SCOPES))
def test_each_single_scope_gets_exactly_what_it_grants(world: World, scope: str):
    """An admin's token with one scope, on targets within the admin's reach: 403 unless the
    scope (within the admin role) is one the route wants for the method."""
    token = world.tokens[f"scope:{scope}"]
    before = snapshot()
    for template, method in cases({"GET", "POST", "PUT", "DELETE"}):
        code, text = call(token, template, method, "acme", "backend", "mine@1.0")
        where = f"{scope} {method} {template}"
        wanted = required_scopes(template, method)
        if wanted is None:
            assert code != 403, (where, code, text)
            continue
        granted = wanted & {scope}
        if template not in INDEX_ROUTES:  # the admin role bounds what an organization sees
            granted &= ROLE_SCOPES["admin"]
        if granted:
            assert code not in (401, 403), (where, code, text)
            assert code < 500, (where, code, text)
        else:
            assert code == 403, (where, code, text)
        assert not leaks(world, text), where
    if not any(
        required_scopes(t, m) and scope in (required_scopes(t, m) or ()) & ROLE_SCOPES["admin"]
        for t, m in cases({"POST", "PUT", "DELETE"})
    ):
        assert snapshot() == before


# -- members inside the organization -----------------------------------------------------------


def expected_member_status(caller: str, template: str, method: str, target: tuple) -> set[int]:
    """What a member of ``core`` (member or admin role) or of the empty team gets."""
    org, project, version = target
    if template in INDEX_ROUTES:
        return {200}
    if org == "globex":
        return {403}
    if template == "/api/0/organizations/{org}/repos/":
        return {200} if method == "GET" else ({201} if caller == "admin" else {403})
    if "{project}" in template and (project == HIDDEN_SLUG or caller == "teamless"):
        return {404}
    if "{version}" not in template:
        if template == "/api/0/organizations/{org}/releases/" and method == "POST":
            return {400} if caller == "teamless" else {201, 208}
        if template == "/api/0/projects/{org}/{project}/releases/" and method == "POST":
            return {201, 208}
        return {200}
    visible = caller != "teamless" and version != HIDDEN_VERSION
    if not visible:
        return {404}
    if method in ("PUT", "DELETE"):
        # Changing a release takes every one of its projects (docs/api.md §6.4).
        return {404} if version == "shared@1.0" else {200, 204}
    if method == "POST":
        return {201}
    return {200}


@pytest.mark.parametrize("caller", ["member", "admin", "teamless"])
@pytest.mark.parametrize("target", TARGETS, ids=lambda t: "/".join(t))
def test_members_see_and_change_only_their_projects(world: World, caller: str, target):
    token = world.tokens[caller]
    deleted = False
    for template, method in cases({"GET", "POST", "PUT", "DELETE"}):
        before = snapshot()
        code, text = call(token, template, method, *target)
        where = f"{caller} {method} {fill(template, *target)}"
        expected = expected_member_status(caller, template, method, target)
        if deleted and "{version}" in template:
            expected = {404}  # the organization route deleted it before the project route
        assert code in expected, (where, code, text)
        deleted = deleted or (method == "DELETE" and code == 204)
        assert not leaks(world, text), (where, leaks(world, text), text)
        if code >= 400:
            assert snapshot() == before, where


def test_organization_token_sees_every_project(world: World):
    """The positive control: the leak check finds the hidden project when it may be shown."""
    code, text = call(
        world.tokens["acme-org"],
        "/api/0/organizations/{org}/releases/{version}/",
        "GET",
        "acme",
        "backend",
        "shared@1.0",
    )
    assert code == 200
    data = json.loads(text)
    assert [p["slug"] for p in data["projects"]] == ["backend", HIDDEN_SLUG]
    assert data["newGroups"] == 5 + HIDDEN_NEW_GROUPS
    assert set(leaks(world, text)) >= {HIDDEN_SLUG, "hidden project id", "hidden sessions"}


# -- writes naming a hidden project ------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "template", "version", "body", "status", "detail"),
    [
        (
            "POST",
            "/api/0/organizations/{org}/releases/{version}/deploys/",
            "shared@1.0",
            {"environment": "production", "projects": [HIDDEN_SLUG]},
            400,
            {"projects": ["Invalid project ids or slugs"]},
        ),
        (
            "POST",
            "/api/0/organizations/{org}/releases/{version}/deploys/",
            "shared@1.0",
            {"environment": "production", "projects": ["{hidden_id}"]},
            400,
            {"projects": ["Invalid project ids or slugs"]},
        ),
        (
            "POST",
            "/api/0/projects/{org}/backend/releases/{version}/deploys/",
            "shared@1.0",
            {"environment": "production", "projects": ["backend", HIDDEN_SLUG]},
            400,
            {"projects": ["Invalid project ids or slugs"]},
        ),
        (
            "POST",
            "/api/0/organizations/{org}/releases/",
            "",
            {"version": "new@2.0", "projects": [HIDDEN_SLUG]},
            400,
            {"projects": ["Invalid project ids or slugs"]},
        ),
        (
            "POST",
            "/api/0/organizations/{org}/releases/",
            "",
            {"version": "shared@1.0", "projects": ["backend"], "status": "archived"},
            400,
            {"projects": ["You do not have permission to one of the projects of this release"]},
        ),
        (
            "POST",
            "/api/0/projects/{org}/zz-hidden/releases/",
            "",
            {"version": "new@3.0"},
            404,
            {"detail": "The requested resource does not exist"},
        ),
        (
            "PUT",
            "/api/0/organizations/{org}/releases/{version}/",
            "shared@1.0",
            {"ref": "x"},
            404,
            {"detail": "The requested resource does not exist"},
        ),
        (
            "DELETE",
            "/api/0/organizations/{org}/releases/{version}/",
            HIDDEN_VERSION,
            None,
            404,
            {"detail": "The requested resource does not exist"},
        ),
    ],
)
def test_writes_naming_a_hidden_project_are_refused(
    world: World, method, template, version, body, status, detail
):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {world.tokens['member']}")
    if body and "projects" in body:
        body = {
            **body,
            "projects": [p.replace("{hidden_id}", str(world.hidden_id)) for p in body["projects"]],
        }
    before = snapshot()
    url = template.replace(ORG, "acme").replace(VER, version)
    response = getattr(client, method.lower())(url, body, format="json")

    assert response.status_code == status, response.content
    assert response.json() == detail
    assert snapshot() == before


def test_deploy_without_projects_records_only_visible_projects(world: World):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {world.tokens['member']}")

    response = client.post(
        "/api/0/organizations/acme/releases/shared@1.0/deploys/",
        {"environment": "canary"},
        format="json",
    )

    assert response.status_code == 201, response.content
    rows = ReleaseProjectEnvironment.objects.filter(environment__name="canary")
    assert list(rows.values_list("project__slug", flat=True)) == ["backend"]


def test_details_and_list_show_only_visible_projects_and_their_numbers(world: World):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {world.tokens['member']}")

    details = client.get(
        "/api/0/organizations/acme/releases/shared@1.0/?health=1&adoptionStages=1&project=backend"
    ).json()
    listed = client.get(
        "/api/0/organizations/acme/releases/?health=1&adoptionStages=1&project=-1"
    ).json()
    latest = client.get("/api/0/organizations/acme/releases/mine@1.0/").json()

    assert [p["slug"] for p in details["projects"]] == ["backend"]
    assert details["newGroups"] == 5
    assert details["firstEvent"] is None
    assert details["adoptionStages"] is None
    assert details["lastCommit"]["releases"] == [
        r for r in details["lastCommit"]["releases"] if r["version"] == "shared@1.0"
    ]
    assert details["currentProjectMeta"]["lastReleaseVersion"] in ("mine@1.0", "shared@1.0")
    shared = next(r for r in listed if r["version"] == "shared@1.0")
    assert [p["slug"] for p in shared["projects"]] == ["backend"]
    assert shared["projects"][0]["healthData"]["hasHealthData"] is False
    assert {r["version"] for r in listed} == {"shared@1.0", "mine@1.0"}
    assert latest["projects"][0]["slug"] == "backend"
