"""Generated sessions and events for the demo and for benchmarks, stored by ``store.store``.

Deterministic for a given random generator. Updates are built the way SDKs send them (an
``init`` update, then a final one) and bypass only the envelope framing.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from functools import partial

from ..models import Project
from .items import EventData, Items, SessionUpdate
from .store import store

FINAL_STATUSES = ("exited", "crashed", "abnormal")


def generate_updates(
    rng: random.Random,
    *,
    release: str,
    environment: str,
    start: datetime,
    end: datetime,
    sessions: int,
    crash_rate: float,
    users: int,
) -> Iterator[SessionUpdate]:
    """About two updates per session: ``init`` with status ok, then the final status."""
    span = max(1.0, (end - start).total_seconds())
    for _ in range(sessions):
        started = start + timedelta(seconds=rng.random() * span)
        sid = uuid.UUID(int=rng.getrandbits(128), version=4)
        did = f"user-{rng.randrange(users)}"
        roll = rng.random()
        final = (
            "crashed"
            if roll < crash_rate
            else "abnormal"
            if roll < crash_rate * 1.2
            else ("exited")
        )
        errors = 1 if final != "exited" or rng.random() < 0.05 else 0
        common = partial(
            SessionUpdate,
            release=release,
            environment=environment,
            started=started,
            sid=sid,
            did=did,
        )
        yield common(status="ok", init=True, errors=0, seq=0, timestamp=started)
        yield common(
            status=final,
            init=False,
            errors=errors,
            seq=1,
            duration=float(rng.randint(5, 900)) if final == "exited" else None,
            timestamp=started + timedelta(seconds=30),
        )


def store_in_batches(
    project: Project,
    updates: Iterator[SessionUpdate],
    *,
    received: datetime,
    batch_size: int = 20000,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Store generated updates through the ingestion code, a transaction per batch."""
    total = 0
    batch: list[SessionUpdate] = []
    for update in updates:
        batch.append(update)
        if len(batch) >= batch_size:
            store(project, Items(sessions=batch), received=received, dedup=False)
            total += len(batch)
            batch = []
            if progress:
                progress(total)
    if batch:
        store(project, Items(sessions=batch), received=received, dedup=False)
        total += len(batch)
        if progress:
            progress(total)
    return total


def demo_events(
    rng: random.Random, *, release: str, environment: str, start: datetime, end: datetime
) -> list[EventData]:
    """A handful of errors: a group or two of the release's own and a shared one."""
    span = (end - start).total_seconds()
    kinds = [("KeyError", "'basket'"), (f"ValueError in {release}", "bad input")]
    events = []
    for index in range(rng.randint(3, 8)):
        exc_type, value = kinds[index % 2] if index < 4 else ("TimeoutError", "upstream")
        fingerprint = uuid.uuid5(uuid.NAMESPACE_URL, f"{exc_type}:{value}").hex[:40]
        events.append(
            EventData(
                event_id=uuid.UUID(int=rng.getrandbits(128), version=4).hex,
                release=release,
                environment=environment,
                timestamp=start + timedelta(seconds=rng.random() * span),
                fingerprint=fingerprint,
                title=f"{exc_type}: {value}",
            )
        )
    return events
