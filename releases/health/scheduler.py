"""Background jobs inside the web workers: adoption refresh and retention, no extra process.

Each gunicorn worker starts one scheduler thread (config/gunicorn.conf.py). Every few seconds
it tries to claim each due job with one conditional ``UPDATE`` of the job's :class:`JobRun`
row: the database lets a single worker win (a row lock on PostgreSQL, the write lock on
SQLite), so N workers on N machines run each job once per interval. A claim is a lease: if
its worker dies mid-job, another worker takes the job over once the lease expires. Intervals
come from ``ADOPTION_INTERVAL`` and ``CLEANUP_INTERVAL`` (seconds; 0 disables a job). See
docs/operations.md, "Background jobs".
"""

from __future__ import annotations

import logging
import os
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import close_old_connections, connections
from django.db.models import Q
from django.utils import timezone

from ..models import JobRun

logger = logging.getLogger(__name__)

# How long a claim holds a job against other workers when its worker never reports back.
LEASE = timedelta(minutes=15)
# Longest sleep between two looks at the job table.
MAX_POLL_SECONDS = 30.0


@dataclass(frozen=True)
class Job:
    name: str
    interval: Callable[[], int]
    run: Callable[[datetime, Callable[[], bool]], str]


def run_adoption(now: datetime, should_stop: Callable[[], bool]) -> str:
    """Adoption stages for every organization (what ``monitor_adoption`` does)."""
    from .adoption import refresh_adoption

    return f"{refresh_adoption(now=now)} adopted rows"


def run_cleanup(now: datetime, should_stop: Callable[[], bool]) -> str:
    """Retention: session data older than ``RETENTION_DAYS`` (what ``cleanup`` does)."""
    from .retention import cleanup

    counts = cleanup(now=now, days=settings.RETENTION_DAYS, should_stop=should_stop)
    return ", ".join(f"{n} {name}" for name, n in counts.items())


JOBS = (
    Job("adoption", lambda: settings.ADOPTION_INTERVAL, run_adoption),
    Job("cleanup", lambda: settings.CLEANUP_INTERVAL, run_cleanup),
)


def claim(name: str, *, interval: int, now: datetime) -> bool:
    """Take the job if it is due and nobody holds it: True for exactly one caller."""
    JobRun.objects.bulk_create([JobRun(name=name)], ignore_conflicts=True)
    due = Q(last_run__isnull=True) | Q(last_run__lte=now - timedelta(seconds=interval))
    free = Q(locked_until__isnull=True) | Q(locked_until__lte=now)
    return bool(
        JobRun.objects.filter(due & free, name=name).update(last_run=now, locked_until=now + LEASE)
    )


def run_due_jobs(
    *, now: datetime | None = None, should_stop: Callable[[], bool] = lambda: False
) -> list[str]:
    """Run every job this process can claim now; returns the names of those it ran."""
    ran = []
    for job in JOBS:
        interval = job.interval()
        if interval <= 0 or should_stop():
            continue
        moment = now or timezone.now()
        if not claim(job.name, interval=interval, now=moment):
            continue
        try:
            result = job.run(moment, should_stop)
        except Exception as exc:
            logger.exception("Background job %s failed", job.name)
            result = f"failed: {exc}"
        JobRun.objects.filter(name=job.name).update(
            last_finished=timezone.now(), locked_until=None, last_result=result[:500]
        )
        logger.info("Background job %s: %s", job.name, result)
        ran.append(job.name)
    return ran


class Scheduler(threading.Thread):
    """The per-process thread that runs :func:`run_due_jobs` until stopped."""

    def __init__(self) -> None:
        super().__init__(name="releases-scheduler", daemon=True)
        self.stopping = threading.Event()

    def poll_seconds(self) -> float:
        intervals = [i for i in (job.interval() for job in JOBS) if i > 0]
        return min([MAX_POLL_SECONDS, *(i / 2 for i in intervals)])

    def run(self) -> None:
        # Spread the workers' first looks so that they do not all queue on the same row.
        self.stopping.wait(random.uniform(0, min(1.0, self.poll_seconds())))  # noqa: S311
        while not self.stopping.is_set():
            try:
                close_old_connections()
                run_due_jobs(should_stop=self.stopping.is_set)
            except Exception:
                # The database may be down for a while: try again at the next poll.
                logger.exception("Background jobs could not run")
            finally:
                connections.close_all()
            self.stopping.wait(self.poll_seconds())


_scheduler: Scheduler | None = None
_scheduler_pid: int | None = None
_lock = threading.Lock()


def start() -> Scheduler:
    """Start this process's scheduler (once per process, also after a fork)."""
    global _scheduler, _scheduler_pid
    with _lock:
        if _scheduler is None or _scheduler_pid != os.getpid() or not _scheduler.is_alive():
            _scheduler, _scheduler_pid = Scheduler(), os.getpid()
            _scheduler.start()
        return _scheduler


def stop(timeout: float = 10.0) -> None:
    """Ask the scheduler to stop after its current batch, and wait a little for it."""
    with _lock:
        scheduler = _scheduler if _scheduler_pid == os.getpid() else None
    if scheduler is not None:
        scheduler.stopping.set()
        scheduler.join(timeout)
