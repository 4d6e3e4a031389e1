"""What the envelope endpoint remembers per process (keys, ids, adoption runs), and when it
stops trusting it: committed transactions only (``transaction=True``), as in production."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.db.models import Sum
from django.utils import timezone

from releases.health import store
from releases.health.envelope import known_keys
from releases.models import (
    Project,
    ProjectKey,
    Release,
    ReleaseProject,
    ReleaseProjectEnvironment,
    ReleaseUserLast,
    ReleaseUserSeen,
    SessionRollup,
    SessionUpdateKey,
    SessionUser,
    SessionUserLast,
    SessionUserSeen,
)
from tests.envelopes import envelope, item, post_envelope, session

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _database_rate_limits(settings):
    """The store PostgreSQL deployments use, where the key is checked with the rate limits."""
    if connection.vendor != "postgresql":
        pytest.skip("the database rate-limit store is PostgreSQL's")
    settings.RATELIMIT_STORE = "database"


def sessions(count: int = 3, release: str = "app@1.0.0") -> bytes:
    now = timezone.now() - timedelta(seconds=1)
    return envelope(
        *(item("session", session(started=now, release=release, did=f"u{n}")) for n in range(count))
    )


def stored(project: Project) -> int:
    total = SessionRollup.objects.filter(project=project).aggregate(n=Sum("updates"))["n"]
    return int(total or 0)


def test_a_known_key_release_and_environment_cost_six_statements(
    client, project, django_assert_num_queries
):
    assert post_envelope(client, project, sessions()).status_code == 200
    header = client_header(project)
    body = sessions(10)

    # 1 the key's validity, the address's failed authentications and both rate limits;
    # 2 BEGIN; 3 delivery keys and errored sessions; 4 rollups, users per hour, users seen
    # per release and environment and per release (each with its counts by latest hour) and
    # per project, durations; 5 the organization's change stamp; 6 COMMIT.
    # (Adoption ran for the first envelope: its throttle is known, not read.)
    with django_assert_num_queries(6):
        response = post_envelope(client, project, body, auth=False, HTTP_X_SENTRY_AUTH=header)

    assert response.status_code == 200, response.content
    assert stored(project) == 13


def test_a_key_revoked_in_this_process_is_refused_at_once(client, project):
    assert post_envelope(client, project, sessions()).status_code == 200
    key = project.keys.get()

    key.is_active = False
    key.save()
    response = post_envelope(client, project, sessions())

    assert response.status_code == 403, response.content
    assert response.json() == {"detail": "This key has been revoked."}
    assert stored(project) == 3


def test_a_key_revoked_by_another_process_is_refused_at_once(client, project):
    assert post_envelope(client, project, sessions()).status_code == 200

    # A queryset update sends no signal: as if another worker had revoked the key.
    ProjectKey.objects.filter(project=project).update(is_active=False)
    response = post_envelope(client, project, sessions())

    assert response.status_code == 403, response.content
    assert stored(project) == 3


def test_a_key_deleted_by_another_process_is_unknown(client, project):
    assert post_envelope(client, project, sessions()).status_code == 200
    header = client_header(project)

    ProjectKey.objects.filter(project=project)._raw_delete(ProjectKey.objects.db)
    response = post_envelope(client, project, sessions(), auth=False, HTTP_X_SENTRY_AUTH=header)

    assert response.status_code == 401, response.content
    assert response.json() == {"detail": "Unknown public key."}


def test_a_deleted_project_is_refused(client, project):
    assert post_envelope(client, project, sessions()).status_code == 200
    header = client_header(project)
    key = ProjectKey.objects.select_related("project__organization").get(project=project)

    Project.objects.filter(pk=project.pk).delete()
    known_keys.add(key)  # forgotten here by the deletion's signal; another process knows it
    response = post_envelope(client, project, sessions(), auth=False, HTTP_X_SENTRY_AUTH=header)

    assert response.status_code == 401, response.content
    assert not SessionRollup.objects.exists()


def test_a_release_deleted_by_another_process_is_created_again(client, project):
    assert post_envelope(client, project, sessions()).status_code == 200
    old = Release.objects.get(version="app@1.0.0")

    # The deletion's signals forget the ids in this process; another process would still
    # have them: put them back, as it would know them.
    known = dict(store._known.releases), set(store._known.links)
    old.delete()
    store._known.releases.update(known[0])
    store._known.links |= known[1]
    response = post_envelope(client, project, sessions(4))

    assert response.status_code == 200, response.content
    new = Release.objects.get(version="app@1.0.0")
    assert new.pk != old.pk
    assert ReleaseProject.objects.filter(release=new, project=project).exists()
    assert ReleaseProjectEnvironment.objects.filter(release=new, project=project).exists()
    assert stored(project) == 4
    # The users' tables have no foreign-key constraint (migration 0013): the rollups' failed
    # the first try, and nothing of it is left under the deleted release.
    for model in (SessionUser, SessionUserSeen, ReleaseUserSeen, SessionUserLast, ReleaseUserLast):
        assert not model.objects.filter(release_id=old.pk).exists(), model
        assert model.objects.filter(release=new).exists(), model


def test_a_redelivered_envelope_counts_once_with_everything_known(client, project):
    body = sessions(5)
    assert post_envelope(client, project, sessions()).status_code == 200

    first = post_envelope(client, project, body)
    again = post_envelope(client, project, body)

    assert (first.status_code, again.status_code) == (200, 200)
    assert stored(project) == 8
    assert SessionUpdateKey.objects.filter(project=project).count() == 8


def client_header(project: Project) -> str:
    key = project.keys.get().public_key
    return f"Sentry sentry_key={key}, sentry_version=7"


def test_a_known_key_is_stored_with_the_envelope_limits_off(client, project, settings):
    assert post_envelope(client, project, sessions()).status_code == 200
    off = {"envelope_key": "off", "envelope_project": "off"}
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, **off}

    response = post_envelope(client, project, sessions(2))

    assert response.status_code == 200, response.content
    assert stored(project) == 5


def test_a_known_key_from_a_blocked_address_is_refused_and_not_counted(client, project, settings):
    assert post_envelope(client, project, sessions()).status_code == 200
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "auth_failure_address": "1/hour"}
    bad = "Sentry sentry_key=0123456789abcdef0123456789abcdef, sentry_version=7"
    unknown = post_envelope(client, project, sessions(), auth=False, HTTP_X_SENTRY_AUTH=bad)
    assert unknown.status_code == 401

    response = post_envelope(client, project, sessions())

    assert response.status_code == 429, response.content
    assert response.json() == {"detail": "Too many failed authentication attempts; retry later."}
    assert stored(project) == 3
