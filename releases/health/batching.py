"""Envelopes that arrive together are stored together: one transaction for a batch of them.

Envelopes of one project write the same rows (the rollups of the same releases and hours, the
organization's change stamp), so concurrent ones wait for each other's row locks and commit
one by one. Instead, within a process (a gevent worker serves many envelopes at once), an
envelope of a project that is being stored joins the project's next batch; the batch's first
envelope waits for the running one to finish and then stores the whole batch with one call of
:func:`store.store`, and each envelope of it is answered once that transaction has committed.
An envelope of an idle project is stored at once, alone, so that nothing waits when there is
no load. See docs/performance.md §6.4.

The batch counts exactly what its envelopes would count one by one:

- two envelopes that share a delivery key (a redelivery, docs/health.md §6.6) are never in one
  batch: the later one starts a batch of its own, stored after the first;
- a batch holds the envelopes of one project received on one day (dropped items are counted
  per day);
- if storing a batch fails, each of its envelopes is stored again alone, so that one
  envelope's failure is its own.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime

from ..models import Project
from . import store as storage
from .items import Items

#: Most session updates (and aggregate counts) one batch takes.
MAX_BATCH_SESSIONS = 10_000


@dataclass(eq=False)
class _Batch:
    project: Project
    day: date
    received: datetime
    parts: list[Items] = field(default_factory=list)
    keys: set[bytes] = field(default_factory=set)
    sessions: int = 0
    done: threading.Event = field(default_factory=threading.Event)
    result: storage.StoreResult | None = None

    def admits(self, items: Items, keys: set[bytes], received: datetime) -> bool:
        return (
            received.date() == self.day
            and self.sessions + len(items.sessions) <= MAX_BATCH_SESSIONS
            and self.keys.isdisjoint(keys)
        )

    def add(self, items: Items, keys: set[bytes], received: datetime) -> None:
        self.parts.append(items)
        self.keys |= keys
        self.sessions += len(items.sessions)
        self.received = max(self.received, received)

    def merged(self) -> Items:
        if len(self.parts) == 1:
            return self.parts[0]
        dropped: Counter[tuple[str, str]] = Counter()
        for part in self.parts:
            dropped.update(part.dropped)
        return Items(
            sessions=[update for part in self.parts for update in part.sessions],
            events=[event for part in self.parts for event in part.events],
            dropped=dropped,
        )


class Batcher:
    """This process's open batches and the projects being stored (one batch at a time each)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: dict[int, _Batch] = {}
        self._storing: dict[int, threading.Lock] = {}

    def store(self, project: Project, items: Items, received: datetime) -> storage.StoreResult:
        """Store the envelope's items, alone or with others; returns once they are committed
        (the result is its batch's)."""
        keys = {update.key for update in items.sessions if update.key is not None}
        with self._lock:
            batch = self._open.get(project.pk)
            first = batch is None or not batch.admits(items, keys, received)
            if batch is None or first:
                batch = self._open[project.pk] = _Batch(project, received.date(), received)
            batch.add(items, keys, received)
            storing = self._storing.setdefault(project.pk, threading.Lock())
        if not first:
            batch.done.wait()
            if batch.result is None:  # the batch failed: alone, as if there had been none
                return storage.store(project, items, received=received)
            return batch.result
        with storing:
            with self._lock:  # closed: later envelopes start the next batch
                if self._open.get(project.pk) is batch:
                    del self._open[project.pk]
            try:
                batch.result = storage.store(project, batch.merged(), received=batch.received)
            except Exception:
                if len(batch.parts) == 1:
                    raise
            finally:
                batch.done.set()
        if batch.result is None:
            return storage.store(project, items, received=received)
        return batch.result


batcher = Batcher()
