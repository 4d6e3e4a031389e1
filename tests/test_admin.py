"""The Django admin: every page loads, releases are edited, archived and restored."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from django.contrib import admin
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.models import ApiToken, hash_token
from accounts.scopes import ALL_SCOPES
from releases.models import Release, ReleaseStatus
from releases.services import CommitData, release_set_commits
from tests.factories import (
    CommitAuthorFactory,
    CommitFactory,
    DeployFactory,
    EnvironmentFactory,
    OrganizationFactory,
    ProjectFactory,
    PullRequestFactory,
    ReleaseFactory,
    RepositoryFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


@pytest.fixture
def release(org, project):
    release = ReleaseFactory(organization=org, version="app@2.0.0", projects=[project])
    DeployFactory(release=release)
    return release


@pytest.mark.parametrize("model", list(admin.site._registry), ids=lambda m: m._meta.label_lower)
def test_every_changelist_and_add_page_loads(staff_client, rf, release, model):
    info = (model._meta.app_label, model._meta.model_name)
    request = rf.get("/")
    request.user = UserFactory(is_staff=True, is_superuser=True)
    addable = admin.site._registry[model].has_add_permission(request)

    changelist = staff_client.get(reverse("admin:{}_{}_changelist".format(*info)))
    add = staff_client.get(reverse("admin:{}_{}_add".format(*info)))

    assert changelist.status_code == 200
    assert add.status_code == (200 if addable else 403)


def test_release_change_page_shows_inlines(staff_client, release):
    response = staff_client.get(reverse("admin:releases_release_change", args=[release.pk]))

    assert response.status_code == 200
    content = response.content.decode()
    assert "Release projects" in content
    assert "Deploys" in content
    assert release.version in content


def change_form(client, release) -> tuple[str, dict[str, object]]:
    """The release's change page and the data that saves it unchanged (inline rows left out)."""
    path = reverse("admin:releases_release_change", args=[release.pk])
    page = client.get(path)
    form = page.context["adminform"].form
    data: dict[str, object] = {
        k: v for k, v in form.initial.items() if v is not None and k in form.fields
    }
    data.update(
        owner="",
        last_commit=str(release.last_commit_id or ""),
        last_deploy=str(release.last_deploy_id or ""),
        date_added_0=release.date_added.date().isoformat(),
        date_added_1=release.date_added.strftime("%H:%M:%S"),
        date_released_0="",
        date_released_1="",
        date_started_0="",
        date_started_1="",
        data="{}",
    )
    for formset in page.context["inline_admin_formsets"]:
        prefix = formset.formset.prefix
        data.update({f"{prefix}-TOTAL_FORMS": 0, f"{prefix}-INITIAL_FORMS": 0})
    return path, data


def test_release_edit_saves_ref_url_status_and_data(staff_client, release, project):
    path, data = change_form(staff_client, release)
    data.update(
        ref="main",
        url="https://example.com/r/2",
        status=str(ReleaseStatus.ARCHIVED),
        data='{"note": "hotfix"}',
        date_released_0="2024-05-02",
        date_released_1="11:00:00",
    )

    response = staff_client.post(path, data)

    assert response.status_code == 302, response.context["errors"] if response.context else ""
    release.refresh_from_db()
    assert (release.ref, release.url, release.status) == (
        "main", "https://example.com/r/2", ReleaseStatus.ARCHIVED,
    )  # fmt: skip
    assert release.data == {"note": "hotfix"}
    assert release.date_released.isoformat() == "2024-05-02T11:00:00+00:00"


def test_bulk_archive_and_restore(staff_client, org, project):
    releases = ReleaseFactory.create_batch(3, organization=org, projects=[project])
    changelist = reverse("admin:releases_release_changelist")
    ids = [str(r.pk) for r in releases]

    staff_client.post(changelist, {"action": "archive", "_selected_action": ids})
    archived = Release.objects.filter(status=ReleaseStatus.ARCHIVED).count()
    staff_client.post(changelist, {"action": "restore", "_selected_action": ids[:2]})

    assert archived == 3
    assert Release.objects.filter(status=ReleaseStatus.OPEN).count() == 2


def test_release_changelist_filters_and_searches(staff_client, org, project):
    ReleaseFactory(organization=org, version="needle@1.0", projects=[project])
    ReleaseFactory(organization=org, version="hay@1.0", projects=[project])
    changelist = reverse("admin:releases_release_changelist")

    found = staff_client.get(changelist, {"q": "needle"})
    by_project = staff_client.get(changelist, {"projects__id__exact": project.pk})
    by_status = staff_client.get(changelist, {"status__exact": ReleaseStatus.ARCHIVED})

    assert [r.version for r in found.context["cl"].result_list] == ["needle@1.0"]
    assert len(by_project.context["cl"].result_list) == 2
    assert len(by_status.context["cl"].result_list) == 0


def count_changelist_queries(client) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(reverse("admin:releases_release_changelist"))
    assert response.status_code == 200
    return len(queries)


def test_release_changelist_query_count_is_constant(staff_client):
    org = OrganizationFactory()
    project = ProjectFactory(organization=org)
    ReleaseFactory(organization=org, projects=[project])
    one = count_changelist_queries(staff_client)
    for release in ReleaseFactory.create_batch(9, organization=org, projects=[project]):
        DeployFactory(release=release)

    assert count_changelist_queries(staff_client) == one


def test_deploy_added_inline_updates_release_counters(staff_client, release):
    staging = EnvironmentFactory(organization=release.organization, name="staging")
    path, data = change_form(staff_client, release)
    data.update(
        {
            "deploys-2-TOTAL_FORMS": 1,
            "deploys-2-0-environment": staging.pk,
            "deploys-2-0-name": "to staging",
            "deploys-2-0-date_finished_0": "2030-01-01",
            "deploys-2-0-date_finished_1": "12:00:00",
        }
    )

    response = staff_client.post(path, data)

    assert response.status_code == 302, response.context["errors"] if response.context else ""
    release.refresh_from_db()
    assert release.total_deploys == 2
    assert release.last_deploy.name == "to staging"
    assert release.last_deploy.organization_id == release.organization_id


def test_commit_added_inline_updates_release_counters(staff_client, release):
    commit = CommitFactory(repository__organization=release.organization)
    path, data = change_form(staff_client, release)
    data.update(
        {
            "release_commits-2-TOTAL_FORMS": 1,
            "release_commits-2-0-commit": commit.pk,
            "release_commits-2-0-order": 0,
        }
    )

    response = staff_client.post(path, data)

    assert response.status_code == 302, response.context["errors"] if response.context else ""
    release.refresh_from_db()
    assert (release.commit_count, release.last_commit, release.authors) == (
        1, commit, [str(commit.author_id)],
    )  # fmt: skip


def test_token_created_in_admin_is_shown_once_and_stored_hashed(staff_client, user):
    response = staff_client.post(
        reverse("admin:accounts_apitoken_add"),
        {"kind": "user", "user": user.pk, "name": "ci", "scopes": ["project:releases", "org:read"]},
        follow=True,
    )

    messages = [str(m) for m in response.context["messages"]]
    secret = re.search(r"sntryu_[0-9a-f]{64}", " ".join(messages)).group(0)
    token = ApiToken.objects.get()
    assert token.token_hash == hash_token(secret)
    assert token.scopes == ["org:read", "project:releases"]
    assert secret not in str(ApiToken.objects.values().get())
    again = staff_client.get(reverse("admin:accounts_apitoken_change", args=[token.pk]))
    assert secret not in again.content.decode()
    listing = staff_client.get(reverse("admin:accounts_apitoken_changelist"))
    assert secret not in listing.content.decode()


def test_token_form_offers_every_scope_as_a_checkbox_with_what_it_allows(staff_client):
    response = staff_client.get(reverse("admin:accounts_apitoken_add"))

    content = response.content.decode()
    boxes = re.findall(r'<input type="checkbox" name="scopes" value="([a-z:]+)"', content)
    assert sorted(boxes) == sorted(ALL_SCOPES)
    assert "everything on releases, deleting them included (sentry-cli&#x27;s scope)" in content
    assert "<textarea" not in content


def test_token_scopes_edited_with_checkboxes(staff_client, user):
    token = ApiToken(user=user, scopes=["project:read"])
    token.set_new_token()
    token.save()
    path = reverse("admin:accounts_apitoken_change", args=[token.pk])

    page = staff_client.get(path).content.decode()
    staff_client.post(
        path, {"kind": "user", "user": user.pk, "scopes": ["project:write", "org:read"]}
    )

    assert re.findall(r'value="([a-z:]+)"[^>]* checked', page) == ["project:read"]
    token.refresh_from_db()
    assert token.scopes == ["org:read", "project:write"]


def test_organization_token_gets_org_ci_when_no_scope_is_ticked(staff_client, org):
    add = reverse("admin:accounts_apitoken_add")

    staff_client.post(add, {"kind": "org", "organization": org.pk})

    assert ApiToken.objects.get().scopes == ["org:ci"]


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        (
            {"kind": "user", "scopes": ["fly:away"]},
            "Select a valid choice. fly:away is not one of the available choices.",
        ),
        ({"kind": "org", "scopes": ["project:admin"]}, "Organization tokens carry org:ci only."),
    ],
)
def test_token_scopes_are_checked_in_the_admin(staff_client, user, org, fields, error):
    owner = {"user": user.pk} if fields["kind"] == "user" else {"organization": org.pk}

    response = staff_client.post(reverse("admin:accounts_apitoken_add"), {**fields, **owner})

    assert response.status_code == 200
    assert error in response.content.decode().replace("&#x27;", "'")
    assert ApiToken.objects.count() == 0


def test_root_redirects_to_the_admin_which_names_the_product(staff_client):
    response = staff_client.get("/", follow=True)

    assert response.redirect_chain == [("/admin/", 302)]
    assert "<title>Releases, deploys, projects and tokens | Sentry-compatible releases</title>" in (
        response.content.decode()
    )


@pytest.fixture
def release_with_history(org, project):
    """A release with three commits (one merged as a pull request) and two deploys."""
    release = ReleaseFactory(organization=org, version="app@3.0.0", projects=[project])
    repo = RepositoryFactory(
        organization=org,
        name="acme/app",
        url="https://github.com/acme/app",
        provider="integrations:github",
    )
    author = CommitAuthorFactory(organization=org, name="Ada Lovelace", email="ada@example.com")
    commits = [
        CommitFactory(
            organization=org,
            repository=repo,
            author=author,
            key=f"{n}" * 40,
            message=f"fix: change number {n}\n\nThe long story of change {n}.",
        )
        for n in range(1, 4)
    ]
    release_set_commits(
        release=release,
        commits=[CommitData(id=c.key, repository=repo.name) for c in commits],
    )
    PullRequestFactory(organization=org, repository=repo, key="77", merge_commit_sha=commits[0].key)
    DeployFactory(release=release, environment__name="staging", name="first deploy",
                  date_finished=datetime(2026, 11, 1, 9, 0, tzinfo=UTC))  # fmt: skip
    DeployFactory(release=release, environment__name="production", name="second deploy",
                  date_finished=datetime(2026, 11, 2, 9, 0, tzinfo=UTC))  # fmt: skip
    return release


def test_release_page_lists_commits_with_short_sha_message_author_and_pull_request(
    staff_client, release_with_history
):
    response = staff_client.get(
        reverse("admin:releases_release_change", args=[release_with_history.pk])
    )

    content = response.content.decode()
    rows = re.findall(r'<tr class="form-row commit-row">(.*?)</tr>', content, re.S)
    text = [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", row)).strip() for row in rows]
    assert text == [
        "1111111 fix: change number 1 Ada Lovelace acme/app #77",
        "2222222 fix: change number 2 Ada Lovelace acme/app —",
        "3333333 fix: change number 3 Ada Lovelace acme/app —",
    ]
    assert "<select" not in "".join(rows)


def test_release_page_shows_deploys_newest_first(staff_client, release_with_history):
    response = staff_client.get(
        reverse("admin:releases_release_change", args=[release_with_history.pk])
    )

    content = response.content.decode()
    items = re.findall(r'<li class="deploy">(.*?)</li>', content, re.S)
    text = [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", item)).strip() for item in items]
    assert text == [
        "2026-11-02 09:00 UTC production second deploy Remove",
        "2026-11-01 09:00 UTC staging first deploy Remove",
    ]


def test_commit_removed_from_the_list_updates_release_counters(staff_client, release_with_history):
    release = release_with_history
    path, data = change_form(staff_client, release)
    page = staff_client.get(path)
    formset = page.context["inline_admin_formsets"][1].formset
    data.update({"release_commits-TOTAL_FORMS": 3, "release_commits-INITIAL_FORMS": 3})
    for index, form in enumerate(formset.initial_forms):
        data[f"release_commits-{index}-id"] = form.instance.pk
        data[f"release_commits-{index}-release"] = release.pk
    data["release_commits-0-DELETE"] = "on"

    response = staff_client.post(path, data)

    assert response.status_code == 302, response.context["errors"] if response.context else ""
    release.refresh_from_db()
    assert release.commit_count == 2
    assert release.last_commit.key == "2" * 40


def test_deploy_edited_on_its_own_page_updates_release_counters(staff_client, release):
    other = ReleaseFactory(organization=release.organization)
    deploy = release.last_deploy
    path = reverse("admin:releases_deploy_change", args=[deploy.pk])
    form = staff_client.get(path).context["adminform"].form
    data = {k: v for k, v in form.initial.items() if v is not None and k in form.fields}
    data.update(
        release=other.pk,
        date_finished_0="2030-01-01",
        date_finished_1="12:00:00",
        date_started_0="",
        date_started_1="",
    )

    response = staff_client.post(path, data)

    assert response.status_code == 302, response.context["errors"] if response.context else ""
    release.refresh_from_db()
    other.refresh_from_db()
    assert (release.total_deploys, release.last_deploy) == (0, None)
    assert (other.total_deploys, other.last_deploy) == (1, deploy)


def count_change_page_queries(client, release) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(reverse("admin:releases_release_change", args=[release.pk]))
    assert response.status_code == 200
    return len(queries)


def grow(release, n: int) -> None:
    """Give the release ``n`` commits (replacing its own), ``n`` more deploys and projects."""
    org = release.organization
    repo = RepositoryFactory(organization=org)
    commits = CommitFactory.create_batch(n, organization=org, repository=repo)
    release_set_commits(
        release=release,
        commits=[CommitData(id=c.key, repository=repo.name) for c in commits],
    )
    for project in ProjectFactory.create_batch(n, organization=org):
        release.projects.add(project)
    DeployFactory.create_batch(n, release=release)


def test_release_change_page_query_count_is_constant(staff_client, org):
    release = ReleaseFactory(organization=org)
    grow(release, 1)
    one = count_change_page_queries(staff_client, release)
    grow(release, 9)
    ReleaseFactory.create_batch(9, organization=org)

    assert count_change_page_queries(staff_client, release) == one


def test_release_change_page_query_count_is_pinned(staff_client, org, django_assert_num_queries):
    release = ReleaseFactory(organization=org)
    grow(release, 10)
    path = reverse("admin:releases_release_change", args=[release.pk])
    staff_client.get(path)  # caches the release's content type, as any running server has

    # In the view (a GET opens no transaction): session, user; the release; its projects
    # (get_queryset's prefetch); the inlines' rows: projects, commits (with authors, repositories
    # and pull requests), head commits, deploys (with environments). Rendering the template: the
    # organization (read-only), the autocomplete fields' chosen values: last commit, last deploy,
    # whose name, when empty, is "<release> to <environment>" (2 more). The health section
    # (6): the organization's environments, health_data without a series (the rollups:
    # counters and project sessions in one UNION ALL; users, project users and durations in
    # another), the chart's buckets, the adoption rows, the deploys for the chart's marks.
    with django_assert_num_queries(19):
        response = staff_client.get(path)

    assert response.status_code == 200


def test_release_changelist_query_count_is_pinned(staff_client, org, django_assert_num_queries):
    projects = ProjectFactory.create_batch(10, organization=org)
    for release in ReleaseFactory.create_batch(10, organization=org, projects=projects):
        DeployFactory(release=release)

    # In the view (a GET opens no transaction): session, user; the organization and project
    # filters' choices (2), the environment filter's (1); the count of the filtered list
    # and of all releases (2); the page (with organizations) and its projects (prefetch,
    # with their organizations); the page's health: health_data without a series (the
    # rollups: counters and project sessions in one UNION ALL; users, project users and
    # durations in another: 2), the projects' main environments, the adoption rows. Rendering:
    # the date hierarchy's bounds and days (2).
    with django_assert_num_queries(15):
        response = staff_client.get(reverse("admin:releases_release_changelist"))

    assert response.status_code == 200


def test_deploys_deleted_from_the_deploy_list_update_release_counters(staff_client, release):
    newer = DeployFactory(release=release, name="newer")
    changelist = reverse("admin:releases_deploy_changelist")

    response = staff_client.post(
        changelist,
        {"action": "delete_selected", "_selected_action": [newer.pk], "post": "yes"},
    )

    assert response.status_code == 302
    release.refresh_from_db()
    assert release.total_deploys == 1
    assert release.last_deploy.name != "newer"


AUTOCOMPLETE_FIELDS = [
    (model_admin.model, field)
    for model_admin in admin.site._registry.values()
    for field in model_admin.autocomplete_fields
] + [
    (inline.model, field)
    for model_admin in admin.site._registry.values()
    for inline in model_admin.inlines
    for field in inline.autocomplete_fields
]


@pytest.mark.parametrize(
    ("model", "field"),
    AUTOCOMPLETE_FIELDS,
    ids=lambda v: v if isinstance(v, str) else v._meta.label_lower,
)
def test_every_autocomplete_answers(staff_client, release, model, field):
    response = staff_client.get(
        reverse("admin:autocomplete"),
        {"app_label": model._meta.app_label, "model_name": model._meta.model_name,
         "field_name": field, "term": ""},
    )  # fmt: skip

    assert response.status_code == 200, response.content
    assert "results" in response.json()
