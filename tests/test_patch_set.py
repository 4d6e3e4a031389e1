"""``patch_set`` of commits: malformed items are a 400 naming the problem; file changes are
stored (Sentry's CommitFileChange)."""

from __future__ import annotations

from typing import Any

import pytest

from releases.models import Commit, CommitFileChange
from tests.factories import ReleaseFactory

pytestmark = pytest.mark.django_db

SHA = "a" * 40
ITEM_ERROR = "Each patch_set item must be an object with a path and a type (A, D or M)."


@pytest.fixture
def release(org, project):
    return ReleaseFactory(organization=org, version="1.0", projects=[project])


def put_commits(client, patch_set: Any):
    return client.put(
        "/api/0/organizations/acme/releases/1.0/",
        {"commits": [{"id": SHA, "repository": "acme/app", "patch_set": patch_set}]},
        format="json",
    )


def test_patch_set_is_stored_as_file_changes(api_client, release):
    response = put_commits(
        api_client,
        [{"path": "src/a.py", "type": "M"}, {"path": "README", "type": "A"},
         {"path": "old.txt", "type": "D"}],
    )  # fmt: skip

    assert response.status_code == 200, response.content
    commit = Commit.objects.get(key=SHA)
    assert sorted(
        CommitFileChange.objects.filter(commit=commit).values_list("filename", "type")
    ) == [("README", "A"), ("old.txt", "D"), ("src/a.py", "M")]
    assert {c.organization_id for c in CommitFileChange.objects.all()} == {release.organization_id}


def test_patch_set_sent_again_keeps_one_row_per_file(api_client, release):
    for _ in range(2):
        assert put_commits(api_client, [{"path": "a.py", "type": "M"}]).status_code == 200

    assert CommitFileChange.objects.count() == 1


@pytest.mark.parametrize(
    ("patch_set", "errors"),
    [
        ([None], [ITEM_ERROR]),
        (["a.py"], {"non_field_errors": [ITEM_ERROR]}),
        ([{"type": "M"}], {"path": ["This field is required."]}),
        ([{"path": "a.py"}], {"type": ["This field is required."]}),
        ([{"path": "a.py", "type": "X"}], {"type": ["Commit patch_set type X is not supported."]}),
        ([{"path": "", "type": "M"}], {"path": ["This field may not be blank."]}),
    ],
)
def test_malformed_patch_set_item_is_400_naming_the_problem(api_client, release, patch_set, errors):
    response = put_commits(api_client, patch_set)

    assert response.status_code == 400
    assert response.json() == {"commits": {"0": {"patch_set": {"0": errors}}}}
    assert not Commit.objects.exists()
    assert not CommitFileChange.objects.exists()


def test_patch_set_that_is_not_a_list_is_400(api_client, release):
    response = put_commits(api_client, {"path": "a.py", "type": "M"})

    assert response.status_code == 400
    assert response.json() == {
        "commits": {"0": {"patch_set": ['Expected a list of items but got type "dict".']}}
    }
