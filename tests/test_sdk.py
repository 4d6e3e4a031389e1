"""The real sentry-sdk, in its own process, sends sessions and events to a live server."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from rest_framework.test import APIClient

from releases.models import Project

pytestmark = pytest.mark.django_db(transaction=True)

CLIENT = Path(__file__).with_name("sdk_client.py")


def run_sdk(live_server: Any, project: Project, release: str, mode: str) -> None:
    port = live_server.thread.port
    dsn = f"http://{project.keys.get().public_key}@127.0.0.1:{port}/{project.pk}"
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.upper().startswith("SENTRY_") and "PROXY" not in k.upper()
    }
    result = subprocess.run(  # noqa: S603 - our own script, fixed arguments
        [sys.executable, str(CLIENT), dsn, release, mode],
        env=env,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode()


def release_details(client: APIClient, project: Project, version: str) -> dict[str, Any]:
    response = client.get(
        f"/api/0/organizations/acme/releases/{version}/?health=1&project={project.pk}"
    )
    assert response.status_code == 200, response.content
    return response.json()


def test_application_mode_sessions_and_events(live_server, api_client, project):
    run_sdk(live_server, project, "app@3.1.0", "application")

    body = release_details(api_client, project, "app@3.1.0")

    data = body["projects"][0]["healthData"]
    del data["stats"]
    assert data == {
        "durationP50": None,  # the Python SDK sends no durations
        "durationP90": None,
        "crashFreeUsers": 100 - 1 / 3 * 100,
        "crashFreeSessions": 100 - 1 / 3 * 100,
        "sessionsCrashed": 1,
        "sessionsErrored": 1,
        "totalUsers": 3,
        "totalUsers24h": 3,
        "totalProjectUsers24h": 3,
        "totalSessions": 3,
        "totalSessions24h": 3,
        "totalProjectSessions24h": 3,
        "adoption": 100.0,
        "sessionsAdoption": 100.0,
        "hasHealthData": True,
    }
    assert body["newGroups"] == 2
    assert body["projects"][0]["newGroups"] == 2
    first, last = (
        datetime.fromisoformat(body[k].replace("Z", "+00:00")) for k in ("firstEvent", "lastEvent")
    )
    assert first < last
    assert body["currentProjectMeta"]["sessionsLowerBound"] is not None


def test_request_mode_sessions_through_the_wsgi_middleware(live_server, api_client, project):
    run_sdk(live_server, project, "web@1.0.0", "request")

    body = release_details(api_client, project, "web@1.0.0")

    data = body["projects"][0]["healthData"]
    assert sum(v for _, v in data.pop("stats")["24h"]) == 4
    assert data == {
        "durationP50": None,
        "durationP90": None,
        "crashFreeUsers": None,  # request mode sends no distinct ids
        "crashFreeSessions": 75.0,
        "sessionsCrashed": 1,
        "sessionsErrored": 0,
        "totalUsers": None,
        "totalUsers24h": 0,
        "totalProjectUsers24h": 0,
        "totalSessions": 4,
        "totalSessions24h": 4,
        "totalProjectSessions24h": 4,
        "adoption": None,
        "sessionsAdoption": 100.0,
        "hasHealthData": True,
    }
    assert body["newGroups"] == 1
    assert body["firstEvent"] is not None
    assert body["firstEvent"] == body["lastEvent"]


def test_sessions_endpoint_totals_match_health_data_for_sdk_sessions(
    live_server, api_client, project
):
    run_sdk(live_server, project, "app@4.0.0", "application")

    data = release_details(api_client, project, "app@4.0.0")["projects"][0]["healthData"]
    response = api_client.get(
        "/api/0/organizations/acme/sessions/?field=sum(session)&field=count_unique(user)"
        "&field=crash_free_rate(session)&field=crash_free_rate(user)&statsPeriod=14d"
        f"&project={project.pk}&query=release:app@4.0.0"
    )
    by_status = api_client.get(
        "/api/0/organizations/acme/sessions/?field=sum(session)&groupBy=session.status"
        f"&statsPeriod=14d&project={project.pk}&query=release:app@4.0.0"
    )

    assert response.status_code == 200, response.content
    totals = response.json()["groups"][0]["totals"]
    assert totals["sum(session)"] == data["totalSessions"] == 3
    assert totals["count_unique(user)"] == data["totalUsers"] == 3
    assert totals["crash_free_rate(session)"] * 100 == data["crashFreeSessions"]
    assert totals["crash_free_rate(user)"] * 100 == data["crashFreeUsers"]
    statuses = {
        g["by"]["session.status"]: g["totals"]["sum(session)"] for g in by_status.json()["groups"]
    }
    assert statuses == {"healthy": 1, "errored": 1, "crashed": 1, "abnormal": 0, "unhandled": 0}
