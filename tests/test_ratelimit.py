"""Rate limits: API calls per token and per address, failed authentication per address,
envelopes per DSN key and per project, admin logins per username and address
(docs/reliability.md)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from accounts import ratelimits as ratelimit
from accounts.authentication import known_tokens
from accounts.models import ApiToken, RateLimitWindow, User
from releases.models import IssueGroup
from tests.envelopes import envelope, event, item, post_envelope
from tests.factories import OrganizationFactory, UserFactory, create_token
from tests.test_sdk import run_sdk

pytestmark = pytest.mark.django_db

RELEASES = "/api/0/organizations/acme/releases/"


@pytest.fixture
def limits(settings):
    """``limits(scope="1/hour", ...)``: lowers the given rate limits for this test. Windows of
    an hour: the limits are fixed windows, and one that ends between a test's requests (a
    minute's would, once in a thousand runs) starts the count again."""

    def lower(**rates: str) -> None:
        settings.RATE_LIMITS = {**settings.RATE_LIMITS, **rates}

    return lower


def assert_too_many(response, detail: str | None = None) -> int:
    assert response.status_code == 429, response.content
    assert response["Content-Type"] == "application/json"
    wait = int(response["Retry-After"])
    assert 0 < wait <= 86400
    if detail is not None:
        assert response.json() == {"detail": detail}
    return wait


def test_a_token_over_its_rate_is_429_with_retry_after(api_client, org, limits):
    limits(api_token="2/hour")

    answers = [api_client.get(RELEASES) for _ in range(3)]

    assert [a.status_code for a in answers[:2]] == [200, 200]
    assert_too_many(answers[2])
    assert answers[2].json()["detail"].startswith("Request was throttled.")


def test_the_token_limit_is_per_token(api_client, org, token, limits):
    limits(api_token="1/hour")
    api_client.get(RELEASES)
    other = APIClient()
    other.credentials(HTTP_AUTHORIZATION=f"Bearer {token()}")

    response = other.get(RELEASES)

    assert response.status_code == 200, response.content


def test_an_address_over_its_rate_is_429_whatever_the_token(api_client, org, token, limits):
    limits(api_address="2/hour")
    api_client.get(RELEASES)
    api_client.get(RELEASES)
    other = APIClient()
    other.credentials(HTTP_AUTHORIZATION=f"Bearer {token()}")

    response = other.get(RELEASES)

    assert_too_many(response)


def test_many_bad_tokens_from_one_address_are_refused_then_even_a_good_one(api_client, org, limits):
    limits(auth_failure_address="3/hour")
    bad = APIClient()
    failures = []
    for n in range(3):
        bad.credentials(HTTP_AUTHORIZATION=f"Bearer guess-{n}")
        failures.append(bad.get(RELEASES).status_code)

    refused = bad.get(RELEASES)
    good = api_client.get(RELEASES)

    assert failures == [401, 401, 401]
    detail = "Too many failed authentication attempts; retry later."
    assert_too_many(refused, detail)
    assert_too_many(good, detail)


def test_the_database_store_counts_in_one_row_per_window(api_client, org, settings, limits):
    settings.RATELIMIT_STORE = "database"  # what PostgreSQL deployments use
    limits(api_token="1/hour")

    first, second = api_client.get(RELEASES), api_client.get(RELEASES)

    assert first.status_code == 200, first.content
    assert_too_many(second)
    token_rows = RateLimitWindow.objects.filter(key__startswith="api_token:")
    assert list(token_rows.values_list("count", flat=True)) == [2]


def test_the_database_store_counts_token_and_address_in_one_statement(api_client, org, settings):
    settings.RATELIMIT_STORE = "database"

    with CaptureQueriesContext(connection) as queries:
        response = api_client.get(RELEASES)

    assert response.status_code == 200, response.content
    upserts = [
        q["sql"] for q in queries if q["sql"].startswith('INSERT INTO "accounts_ratelimitwindow"')
    ]
    assert len(upserts) == 1
    counts = dict(RateLimitWindow.objects.values_list("key", "count"))
    assert sorted(key.split(":")[0] for key in counts) == ["api_address", "api_token"]
    assert set(counts.values()) == {1}


# ------------------------------------------- known tokens on the database store


@pytest.fixture
def database_store(settings):
    if connection.vendor != "postgresql":
        pytest.skip("the database rate-limit store is PostgreSQL's")
    settings.RATELIMIT_STORE = "database"


def test_a_known_token_costs_one_statement_in_all_for_a_cached_answer(
    api_client, org, database_store, settings, django_assert_num_queries
):
    settings.RELEASE_CACHE_SECONDS = 300
    assert api_client.get(RELEASES).status_code == 200  # learns the token, caches the answer

    # One statement: the token still valid (row, expiry, owner, scopes, user active), the
    # address's failed authentications, both rate limits (token, address) counted, and the
    # URL's organization with its change stamp and the caller's membership. The answer is
    # the cached one; last_used was recorded by the first request, less than a minute ago.
    with django_assert_num_queries(1):
        response = api_client.get(RELEASES)

    assert response.status_code == 200, response.content
    counts = dict(RateLimitWindow.objects.values_list("key", "count"))
    assert sorted(counts.values()) == [2, 2]
    assert sorted(key.split(":")[0] for key in counts) == ["api_address", "api_token"]


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/api/0/organizations/acme/releases/", 200),
        ("/api/0/organizations/{id}/releases/", 200),  # by numeric id
        ("/api/0/organizations/nowhere/releases/", 404),
        ("/api/0/organizations/0123/releases/", 404),  # read as id 123
        ("/api/0/organizations/12345678901234567890/releases/", 404),  # no id, no slug
        ("/api/0/organizations/other/releases/", 403),  # exists; the caller is no member
        ("/api/0/projects/acme/backend/releases/", 200),
    ],
)
def test_the_organization_read_with_a_known_token_answers_as_its_own_query_does(
    api_client, org, project, database_store, path, status
):
    OrganizationFactory(slug="other")
    path = path.format(id=org.pk)
    assert api_client.get(RELEASES).status_code == 200  # learns the token

    with CaptureQueriesContext(connection) as queries:
        response = api_client.get(path)

    assert response.status_code == status, response.content
    # The organization was read in the token's statement (none for a path that can name no
    # organization), not by a query of its own.
    can_name_one = "12345678901234567890" not in path
    assert ('"accounts_organization" o' in queries[0]["sql"]) == can_name_one
    assert not any('"accounts_organization" o' in q["sql"] for q in queries[1:])


def test_an_organization_token_reads_its_organization_with_its_check(org, database_store):
    client = APIClient()
    client.credentials(
        HTTP_AUTHORIZATION=f"Bearer {create_token(organization=org, scopes=['org:ci'])}"
    )
    OrganizationFactory(slug="other")
    assert client.get(RELEASES).status_code == 200  # learns the token

    with CaptureQueriesContext(connection) as queries:
        assert client.get(RELEASES).status_code == 200
    statements = [q["sql"] for q in queries]  # before the next request clears the log
    response = client.get("/api/0/organizations/other/releases/")

    assert '"accounts_organization" o' in statements[0]
    assert not any('"accounts_organization" o' in sql for sql in statements[1:])
    assert response.status_code == 403, response.content
    assert response.json() == {"detail": "This organization token belongs to another organization."}


def test_a_token_revoked_by_another_process_is_refused_at_once(api_client, org, database_store):
    assert api_client.get(RELEASES).status_code == 200

    # A queryset update sends no signal: as if another worker had expired the token.
    ApiToken.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    response = api_client.get(RELEASES)

    assert response.status_code == 401, response.content
    assert response.json() == {"detail": "Invalid token"}
    failures = RateLimitWindow.objects.filter(key__startswith=f"{ratelimit.AUTH_FAILURES}:")
    assert list(failures.values_list("count", flat=True)) == [1]


def test_a_token_deleted_by_another_process_is_refused_at_once(api_client, org, database_store):
    assert api_client.get(RELEASES).status_code == 200

    ApiToken.objects.all()._raw_delete(ApiToken.objects.db)
    response = api_client.get(RELEASES)

    assert response.status_code == 401, response.content
    assert response.json() == {"detail": "Invalid token"}


def test_a_user_deactivated_by_another_process_is_refused_at_once(
    api_client, org, user, database_store
):
    assert api_client.get(RELEASES).status_code == 200

    User.objects.filter(pk=user.pk).update(is_active=False)
    response = api_client.get(RELEASES)

    assert response.status_code == 401, response.content
    assert response.json() == {"detail": "Invalid token"}


def test_scopes_changed_by_another_process_apply_at_once(api_client, org, database_store):
    assert api_client.get(RELEASES).status_code == 200

    ApiToken.objects.update(scopes=["project:write"])
    response = api_client.get(RELEASES)

    assert response.status_code == 403, response.content


def test_a_known_token_from_a_blocked_address_is_429(api_client, org, database_store, limits):
    limits(auth_failure_address="2/hour")
    assert api_client.get(RELEASES).status_code == 200
    bad = APIClient()
    bad.credentials(HTTP_AUTHORIZATION="Bearer guess")
    assert [bad.get(RELEASES).status_code for _ in range(2)] == [401, 401]

    response = api_client.get(RELEASES)

    assert_too_many(response, "Too many failed authentication attempts; retry later.")


def test_a_known_token_over_its_rate_is_429_with_retry_after(
    api_client, org, database_store, limits
):
    limits(api_token="2/hour")
    assert [api_client.get(RELEASES).status_code for _ in range(2)] == [200, 200]

    over = api_client.get(RELEASES)

    assert_too_many(over)
    assert over.json()["detail"].startswith("Request was throttled.")


def test_last_used_is_recorded_again_once_a_minute_has_passed(api_client, org, database_store):
    assert api_client.get(RELEASES).status_code == 200
    first = ApiToken.objects.get().last_used
    assert first is not None
    # As if a minute had passed since: in this process's memory and in the row.
    earlier = first - timedelta(seconds=61)
    ApiToken.objects.update(last_used=earlier)
    for known in known_tokens.tokens.values():
        known.last_used = earlier

    with CaptureQueriesContext(connection) as queries:
        response = api_client.get(RELEASES)
    statements = [q["sql"] for q in queries]  # before any other request clears the log

    assert response.status_code == 200, response.content
    assert ApiToken.objects.get().last_used > first
    assert sum(sql.startswith('UPDATE "accounts_apitoken"') for sql in statements) == 1
    assert not any(sql.startswith('SELECT "accounts_apitoken"') for sql in statements)


# ---------------------------------------------------------------- envelopes


def send_error(client, project):
    return post_envelope(client, project, envelope(item("event", event(timestamp=timezone.now()))))


@pytest.mark.parametrize(
    ("scope", "limited"), [("envelope_key", "key"), ("envelope_project", "project")]
)
def test_an_envelope_over_its_rate_gets_relays_rate_limit_headers(
    client, project, limits, scope, limited
):
    limits(**{scope: "1/hour"})

    first, second = send_error(client, project), send_error(client, project)

    assert first.status_code == 200, first.content
    wait = assert_too_many(second, f"Rate limit exceeded for this {limited}.")
    assert re.fullmatch(rf"{wait}::{limited}", second["X-Sentry-Rate-Limits"])


def test_the_key_limit_counts_each_key_apart(client, project, limits):
    limits(envelope_key="1/hour")
    send_error(client, project)
    other = project.keys.create(label="second")

    response = post_envelope(
        client,
        project,
        envelope(item("event", event(timestamp=timezone.now()))),
        auth=False,
        HTTP_X_SENTRY_AUTH=f"Sentry sentry_key={other.public_key}, sentry_version=7",
    )

    assert response.status_code == 200, response.content


@pytest.mark.django_db(transaction=True)
def test_the_real_sdk_stops_sending_once_rate_limited(live_server, project, limits):
    limits(envelope_key="1/day")
    key = project.keys.get().public_key

    run_sdk(live_server, project, "app@1.0.0", "flood")

    # One envelope stored, one refused with X-Sentry-Rate-Limits, and the SDK dropped the
    # other three without sending them.
    rate = ratelimit.rate("envelope_key")
    assert rate is not None
    assert ratelimit.count("envelope_key", key, rate) == 2
    assert IssueGroup.objects.filter(project=project).count() == 1


# ---------------------------------------------------------------- admin login


def log_in(client, password: str):
    return client.post(
        "/admin/login/?next=/admin/",
        {"username": "root", "password": password},
        REMOTE_ADDR="192.0.2.7",
    )


def test_admin_login_is_refused_after_too_many_wrong_passwords(client):
    UserFactory(username="root", password="right-one", is_staff=True, is_superuser=True)

    wrong = [log_in(client, f"wrong-{n}").status_code for n in range(settings.AXES_FAILURE_LIMIT)]
    refused = log_in(client, "right-one")

    assert wrong[:-1] == [200] * (settings.AXES_FAILURE_LIMIT - 1)  # the form again, with an error
    assert wrong[-1] == 429
    assert refused.status_code == 429
    assert b"locked" in refused.content.lower()
    assert "_auth_user_id" not in client.session


def test_admin_login_works_again_once_the_cool_off_has_passed(client):
    UserFactory(username="root", password="right-one", is_staff=True, is_superuser=True)
    for n in range(settings.AXES_FAILURE_LIMIT):
        log_in(client, f"wrong-{n}")
    AccessAttempt.objects.update(
        attempt_time=timezone.now() - settings.AXES_COOLOFF_TIME - timedelta(seconds=1)
    )

    response = log_in(client, "right-one")

    assert response.status_code == 302, response.content
    assert client.session["_auth_user_id"]
