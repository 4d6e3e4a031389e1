"""Envelopes of session updates as sentry-python sends them, for the ingestion benchmarks."""

from __future__ import annotations

import gzip
import json
import uuid
from datetime import UTC, datetime, timedelta
from random import Random
from typing import Any

from django.core.management.base import CommandError


def _ts(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def sdk_envelope(
    rng: Random, release: str, count: int, now: datetime, *, durations: bool = False
) -> bytes:
    """``count`` final session updates as sentry-python sends them, gzip-compressed; with
    ``durations``, exited ones carry a duration of 5 to 900 s (as the seed's do)."""
    lines = [b"{}"]
    for _ in range(count):
        started = now - timedelta(seconds=rng.randint(60, 3600))
        update: dict[str, Any] = {
            "sid": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "did": f"user-{rng.randrange(5000)}",
            "init": True,
            "started": _ts(started),
            "timestamp": _ts(started + timedelta(seconds=30)),
            "status": "crashed" if rng.random() < 0.02 else "exited",
            "attrs": {"release": release, "environment": "production"},
        }
        if durations and update["status"] == "exited":
            update["duration"] = float(rng.randint(5, 900))
        payload = json.dumps(update).encode()
        header = json.dumps({"type": "session", "length": len(payload)}).encode()
        lines += [header, payload]
    return gzip.compress(b"\n".join(lines))


def post_in_process(client: Any, project_id: int, auth: str, body: bytes) -> None:
    """Post one gzip envelope through Django's test client; anything but 200 stops the run."""
    response = client.post(
        f"/api/{project_id}/envelope/",
        data=body,
        content_type="application/x-sentry-envelope",
        HTTP_X_SENTRY_AUTH=auth,
        HTTP_CONTENT_ENCODING="gzip",
    )
    if response.status_code != 200:
        raise CommandError(f"POST failed: {response.status_code} {response.content!r}")
