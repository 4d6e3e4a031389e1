"""Duration buckets (releases/health/sketch.py): the 1 % bound, and percentiles read through
the health reads stay within 1 % of the exact ones (docs/health.md §9.2)."""

from __future__ import annotations

import importlib
import math
import random
from datetime import timedelta
from fractions import Fraction

import pytest
from django.apps import apps
from django.utils import timezone
from hypothesis import given, settings
from hypothesis import strategies as st

from releases.health import reads
from releases.health.reads import HealthQuery
from releases.health.sketch import EXACT_BELOW_MS, RELATIVE_ACCURACY, representative
from releases.models import Release, SessionDuration
from tests.envelopes import send_sessions, session
from tests.factories import EnvironmentFactory, ReleaseFactory

PROPERTY = settings(max_examples=2000, derandomize=True, database=None, deadline=None)
# Durations the envelope endpoint accepts: 0 <= duration < 10^9 s.
DURATIONS_MS = st.integers(min_value=0, max_value=10**12 - 1)


@PROPERTY
@given(DURATIONS_MS)
def test_representative_is_within_one_percent(duration_ms):
    value = representative(duration_ms)

    assert abs(value - duration_ms) <= RELATIVE_ACCURACY * duration_ms


@PROPERTY
@given(DURATIONS_MS, DURATIONS_MS)
def test_representative_keeps_order_and_is_a_fixed_point(a, b):
    low, high = sorted((a, b))

    assert representative(low) <= representative(high)
    assert representative(representative(a)) == representative(a)


def test_every_duration_up_to_a_million_ms_is_within_the_bound():
    # Exhaustive over the first four decades of buckets (0 to 16 minutes).
    worst = max(abs(representative(d) - d) / d for d in range(1, 1_000_000))

    assert worst <= RELATIVE_ACCURACY


@pytest.mark.parametrize(
    ("duration_ms", "stored"),
    [
        (0, 0),
        (99, 99),  # below EXACT_BELOW_MS: exact
        (101, 100),  # 100, 102, … in steps of 2 ms; halfway goes down
        (104, 104),
        (105, 104),
        (106, 106),
        (30_000, 30_000),  # two significant digits: exact
        (57_000, 57_000),
        (3_500, 3_500),
        (12_345, 12_400),  # mantissa 1.2345: steps of 0.02
        (33_333, 33_500),  # 2.5 to 5: steps of 0.05
        (77_777, 78_000),  # 5 to 10: steps of 0.1
        (99_999, 100_000),
        (86_400_000, 86_000_000),
    ],
)
def test_representative_values(duration_ms, stored):
    assert representative(duration_ms) == stored


def test_a_decade_has_175_values_at_most():
    values = {representative(d) for d in range(10_000, 100_000)}

    assert len(values) == 175 + 1  # and 100,000, the next decade's first
    assert EXACT_BELOW_MS == 100


def exact_percentile(values: list[int], q: Fraction) -> float:
    """docs/health.md §1.3: linear interpolation at (n - 1)·q, in seconds."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    k = math.floor(position)
    low = ordered[k]
    high = ordered[k + 1] if k + 1 < len(ordered) else low
    return float((low + (high - low) * (position - k)) / 1000)


def _heavy_tail(rng: random.Random, n: int) -> list[int]:
    return [round(rng.lognormvariate(math.log(30_000), 2.0)) for _ in range(n)]


def _pareto(rng: random.Random, n: int) -> list[int]:
    return [min(round(rng.paretovariate(1.1) * 800), 10**11) for _ in range(n)]


def _mixed(rng: random.Random, n: int) -> list[int]:
    return [rng.choice([rng.randrange(0, 150), rng.randrange(100, 10**7)]) for _ in range(n)]


DISTRIBUTIONS = {
    "lognormal heavy tail": lambda rng: _heavy_tail(rng, 400),
    "pareto": lambda rng: _pareto(rng, 400),
    "all equal": lambda rng: [12_345] * 57,
    "one": lambda rng: [rng.randrange(100, 10**8)],
    "two": lambda rng: [rng.randrange(100, 10**8) for _ in range(2)],
    "three": lambda rng: [rng.randrange(100, 10**8) for _ in range(3)],
    "small and large": lambda rng: _mixed(rng, 300),
    "uniform, one hour": lambda rng: [rng.randrange(0, 3_600_000) for _ in range(500)],
}


def send_durations(client, project, durations_ms: list[int], started) -> None:
    for start in range(0, len(durations_ms), 100):
        send_sessions(
            client,
            project,
            *(
                session(started=started, did=f"u{i}", duration=ms / 1000)
                for i, ms in enumerate(durations_ms[start : start + 100], start)
            ),
        )


@pytest.mark.django_db
@pytest.mark.parametrize("name", sorted(DISTRIBUTIONS))
def test_health_percentiles_are_within_one_percent_of_exact(api_client, project, name):
    rng = random.Random(name)  # noqa: S311 - reproducible test data, not secrets
    durations_ms = DISTRIBUTIONS[name](rng)
    now = timezone.now() - timedelta(seconds=1)
    send_durations(api_client, project, durations_ms, now)
    release = Release.objects.get(version="app@1.0.0")

    health = reads.health_data([(project.pk, release.pk)], HealthQuery(), timezone.now())[
        project.pk, release.pk
    ]

    for q, found in ((Fraction(1, 2), health.duration_p50), (Fraction(9, 10), health.duration_p90)):
        exact = exact_percentile(durations_ms, q)
        assert found is not None
        assert abs(found - exact) <= RELATIVE_ACCURACY * exact + 1e-9, (q, found, exact)


@pytest.mark.django_db
def test_durations_keep_one_row_per_bucket_whatever_the_sessions(api_client, project):
    now = timezone.now() - timedelta(seconds=1)
    durations_ms = list(range(10_000, 11_000))  # 1,000 sessions, 1,000 distinct durations

    send_durations(api_client, project, durations_ms, now)

    rows = SessionDuration.objects.filter(project=project).order_by("duration_ms")
    # 10.0 s to 11.0 s in steps of 0.2 s.
    assert [(r.duration_ms, r.count) for r in rows] == [
        (10_000, 101),  # 10,100 is halfway: it goes down
        (10_200, 200),
        (10_400, 200),
        (10_600, 200),
        (10_800, 200),
        (11_000, 99),
    ]


@pytest.mark.django_db
def test_migration_merges_stored_durations_into_their_buckets(project):
    migration = importlib.import_module("releases.migrations.0008_session_duration_buckets")
    release = ReleaseFactory(organization=project.organization)
    env = EnvironmentFactory(organization=project.organization)
    hour = timezone.now().replace(minute=0, second=0, microsecond=0)
    common = {"project": project, "release": release, "environment": env, "hour": hour}
    for duration_ms, count in ((50, 1), (10_000, 2), (10_050, 3), (10_101, 4), (10_300, 5)):
        SessionDuration.objects.create(**common, duration_ms=duration_ms, count=count)

    migration.rebucket(apps, None)

    rows = SessionDuration.objects.filter(release=release).order_by("duration_ms")
    assert [(r.duration_ms, r.count) for r in rows] == [(50, 1), (10_000, 5), (10_200, 9)]


@pytest.mark.django_db
def test_sessions_endpoint_duration_fields_are_within_one_percent(api_client, project):
    rng = random.Random("sessions endpoint")  # noqa: S311 - reproducible test data
    durations_ms = _heavy_tail(rng, 300)
    send_durations(api_client, project, durations_ms, timezone.now() - timedelta(seconds=1))
    quantiles = {"p50": Fraction(1, 2), "p75": Fraction(3, 4), "p90": Fraction(9, 10)}
    quantiles |= {"p95": Fraction(19, 20), "p99": Fraction(99, 100)}
    exact = {
        f"{name}(session.duration)": exact_percentile(durations_ms, q)
        for name, q in quantiles.items()
    }
    exact["avg(session.duration)"] = sum(durations_ms) / len(durations_ms) / 1000
    exact["max(session.duration)"] = max(durations_ms) / 1000

    response = api_client.get(
        "/api/0/organizations/acme/sessions/?statsPeriod=24h&"
        + "&".join(f"field={f}" for f in exact)
    )

    assert response.status_code == 200, response.content
    totals = response.json()["groups"][0]["totals"]
    for field, value in exact.items():
        assert abs(totals[field] - value) <= RELATIVE_ACCURACY * value + 1e-9, (
            field,
            totals[field],
        )
