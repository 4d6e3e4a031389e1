"""The Django admin: every page loads, releases are edited, archived and restored."""

from __future__ import annotations

import re

import pytest
from django.contrib import admin
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.models import ApiToken, hash_token
from releases.models import Release, ReleaseStatus
from tests.factories import (
    CommitFactory,
    DeployFactory,
    EnvironmentFactory,
    OrganizationFactory,
    ProjectFactory,
    ReleaseFactory,
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
            "deploys-TOTAL_FORMS": 1,
            "deploys-0-environment": staging.pk,
            "deploys-0-name": "to staging",
            "deploys-0-date_finished_0": "2030-01-01",
            "deploys-0-date_finished_1": "12:00:00",
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
            "release_commits-TOTAL_FORMS": 1,
            "release_commits-0-commit": commit.pk,
            "release_commits-0-order": 0,
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
        {"kind": "user", "user": user.pk, "name": "ci", "scopes": '["project:read"]'},
        follow=True,
    )

    messages = [str(m) for m in response.context["messages"]]
    secret = re.search(r"sntryu_[0-9a-f]{64}", " ".join(messages)).group(0)
    token = ApiToken.objects.get()
    assert token.token_hash == hash_token(secret)
    assert secret not in str(ApiToken.objects.values().get())
    again = staff_client.get(reverse("admin:accounts_apitoken_change", args=[token.pk]))
    assert secret not in again.content.decode()


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"kind": "user", "scopes": '"project:read"'}, "Give a list of scope names."),
        ({"kind": "user", "scopes": '["fly:away"]'}, "Unknown scope(s): fly:away."),
        ({"kind": "org", "scopes": '["project:admin"]'}, "Organization tokens carry org:ci only."),
    ],
)
def test_token_scopes_are_checked_in_the_admin(staff_client, user, org, fields, error):
    owner = {"user": user.pk} if fields["kind"] == "user" else {"organization": org.pk}

    response = staff_client.post(reverse("admin:accounts_apitoken_add"), {**fields, **owner})

    assert response.status_code == 200
    assert error in response.content.decode().replace("&#x27;", "'")
    assert ApiToken.objects.count() == 0
