"""Builders for Sentry envelopes as the SDKs write them, and a helper to post them."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from rest_framework.test import APIClient

from releases.models import Project


def ts(moment: datetime) -> str:
    """The Python SDK's timestamp format."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def item(kind: str, payload: Any, *, length: bool = True) -> bytes:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    headers: dict[str, Any] = {"type": kind}
    if length:
        headers["length"] = len(body)
    return json.dumps(headers).encode() + b"\n" + body


def envelope(*items: bytes, headers: dict[str, Any] | None = None) -> bytes:
    return b"\n".join([json.dumps(headers or {}).encode(), *items]) + b"\n"


def session(
    *,
    started: datetime,
    release: str = "app@1.0.0",
    environment: str | None = "production",
    status: str = "exited",
    init: bool = True,
    sid: str | None = None,
    did: str | None = None,
    errors: int = 0,
    duration: float | None = None,
    timestamp: datetime | None = None,
    **extra: Any,
) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "sid": sid or str(uuid.uuid4()),
        "init": init,
        "started": ts(started),
        "timestamp": ts(timestamp or started),
        "status": status,
        "attrs": {"release": release},
    }
    if environment is not None:
        payload["attrs"]["environment"] = environment
    if did is not None:
        payload["did"] = did
    if errors:
        payload["errors"] = errors
    if duration is not None:
        payload["duration"] = duration
    payload.update(extra)
    return payload


def aggregates(
    buckets: list[dict[str, Any]], *, release: str = "app@1.0.0", environment: str = "production"
) -> dict[str, Any]:
    return {"aggregates": buckets, "attrs": {"release": release, "environment": environment}}


def event(
    *,
    release: str | None = "app@1.0.0",
    environment: str = "production",
    timestamp: datetime,
    exc_type: str = "ValueError",
    exc_value: str = "boom",
    **extra: Any,
) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "event_id": uuid.uuid4().hex,
        "timestamp": ts(timestamp),
        "environment": environment,
        "exception": {"values": [{"type": exc_type, "value": exc_value}]},
        "platform": "python",
    }
    if release is not None:
        payload["release"] = release
    payload.update(extra)
    return payload


def auth_header(project: Project) -> str:
    key = project.keys.get().public_key
    return f"Sentry sentry_key={key}, sentry_version=7, sentry_client=sentry.python/2.0.0"


def post_envelope(
    client: APIClient, project: Project, body: bytes, *, auth: bool = True, **headers: str
) -> Any:
    extra = {"HTTP_X_SENTRY_AUTH": auth_header(project)} if auth else {}
    extra.update(headers)
    return client.post(
        f"/api/{project.pk}/envelope/",
        data=body,
        content_type="application/x-sentry-envelope",
        **extra,
    )


def send_sessions(client: APIClient, project: Project, *payloads: dict[str, Any]) -> None:
    body = envelope(*(item("session", p) for p in payloads))
    response = post_envelope(client, project, body)
    assert response.status_code == 200, response.content


def send_outcomes(
    client: APIClient,
    project: Project,
    *,
    release: str,
    started: datetime,
    environment: str = "production",
    **counts: int,
) -> None:
    """Sessions of one release started at ``started``, as an SDK's aggregates: ``exited=…,
    errored=…, crashed=…, abnormal=…`` (each a number of sessions)."""
    bucket: dict[str, Any] = {"started": ts(started), **counts}
    payload = aggregates([bucket], release=release, environment=environment)
    response = post_envelope(client, project, envelope(item("sessions", payload)))
    assert response.status_code == 200, response.content
