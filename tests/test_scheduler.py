"""The background scheduler: one claim per job and interval, and jobs running in a real server."""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta

import pytest
from django.db import connections
from django.utils import timezone

from releases.health.scheduler import LEASE, claim, run_due_jobs
from releases.models import (
    Environment,
    JobRun,
    Release,
    ReleaseProjectEnvironment,
    SessionRollup,
    SessionUser,
)
from tests.envelopes import send_sessions, session
from tests.gunicorn_server import serve, wait_for

NOW = timezone.now()


@pytest.mark.django_db
def test_a_job_is_claimed_once_per_interval():
    assert claim("adoption", interval=60, now=NOW) is True
    JobRun.objects.filter(name="adoption").update(locked_until=None)  # the run ended

    assert claim("adoption", interval=60, now=NOW + timedelta(seconds=59)) is False
    assert claim("adoption", interval=60, now=NOW + timedelta(seconds=60)) is True


@pytest.mark.django_db
def test_a_held_job_waits_for_its_lease_to_expire():
    assert claim("cleanup", interval=1, now=NOW) is True

    assert claim("cleanup", interval=1, now=NOW + timedelta(seconds=5)) is False
    assert claim("cleanup", interval=1, now=NOW + LEASE) is True


@pytest.mark.django_db
def test_run_due_jobs_runs_each_job_and_records_it(settings):
    settings.ADOPTION_INTERVAL = 60
    settings.CLEANUP_INTERVAL = 3600

    assert run_due_jobs(now=NOW) == ["adoption", "cleanup"]
    assert run_due_jobs(now=NOW + timedelta(seconds=61)) == ["adoption"]
    assert run_due_jobs(now=NOW + timedelta(seconds=62)) == []

    runs = {run.name: run for run in JobRun.objects.all()}
    assert runs["adoption"].last_run == NOW + timedelta(seconds=61)
    assert runs["adoption"].last_result == "0 adopted rows"
    assert runs["cleanup"].last_result.startswith("0 session rollups, 0 session users")
    assert all(run.locked_until is None and run.last_finished for run in runs.values())


@pytest.mark.django_db
def test_an_interval_of_zero_disables_a_job(settings):
    settings.ADOPTION_INTERVAL = 0

    assert run_due_jobs(now=NOW) == ["cleanup"]


@pytest.mark.postgresql  # an in-memory SQLite database is not shared between threads
@pytest.mark.django_db(transaction=True)
def test_concurrent_workers_claim_a_job_once():
    claim("adoption", interval=1, now=NOW - timedelta(days=1))
    JobRun.objects.update(locked_until=None)
    barrier = threading.Barrier(8)
    wins: list[bool] = []

    def worker() -> None:
        try:
            barrier.wait()
            wins.append(claim("adoption", interval=60, now=timezone.now()))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(wins) == [False] * 7 + [True]


# -- in a running server -----------------------------------------------------------------------


@pytest.mark.postgresql  # the server needs a database it shares with the test
@pytest.mark.django_db(transaction=True)
def test_a_running_server_refreshes_adoption_and_cleans_up_by_itself(tmp_path, api_client, project):
    now = timezone.now()
    send_sessions(api_client, project, *(session(release="app@1", started=now) for _ in range(3)))
    # As if adoption had not been refreshed since those sessions arrived.
    ReleaseProjectEnvironment.objects.update(adopted=None)
    release = Release.objects.get(version="app@1")
    environment = Environment.objects.get(name="production")
    old_hour = (now - timedelta(days=120)).replace(minute=0, second=0, microsecond=0)
    old = SessionRollup.objects.create(
        project=project, release=release, environment=environment, hour=old_hour, sessions=1
    )
    old_user = SessionUser.objects.create(
        project=project, release=release, environment=environment, hour=old_hour, did=uuid.uuid4()
    )
    adopted = ReleaseProjectEnvironment.objects.filter(release=release, adopted__isnull=False)

    with serve(
        tmp_path / "gunicorn.log",
        SCHEDULER="1",
        ADOPTION_INTERVAL="1",
        CLEANUP_INTERVAL="1",
    ):
        wait_for(adopted.exists, what="the adoption job")
        wait_for(
            lambda: not SessionRollup.objects.filter(pk=old.pk).exists(), what="the cleanup job"
        )
        wait_for(lambda: JobRun.objects.filter(last_finished__isnull=False).count() == 2)

    log = (tmp_path / "gunicorn.log").read_text()
    assert "[ERROR]" not in log, log
    assert "Traceback" not in log, log
    assert not SessionUser.objects.filter(pk=old_user.pk).exists()
    assert SessionRollup.objects.filter(release=release).count() == 1
    stages = api_client.get("/api/0/organizations/acme/releases/app@1/?adoptionStages=1")
    assert stages.json()["adoptionStages"]["backend"]["stage"] == "adopted"
    runs = {run.name: run.last_result for run in JobRun.objects.all()}
    assert runs["adoption"] == "1 adopted rows"
    assert "failed" not in runs["cleanup"]
