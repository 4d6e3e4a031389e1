"""``bench_reads``: the health of the 100 releases of project ``bench``, timed, with plans.

Run after ``seed --sessions N`` on PostgreSQL. Times ``reads.health_data`` for every release of
the project at once (what the list with ``health=1`` asks), then ``EXPLAIN ANALYZE``s each of its
queries and prints the execution time PostgreSQL reports and the plan's nodes.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from releases.health import reads
from releases.models import (
    Project,
    ProjectUserSeen,
    SessionDuration,
    SessionRollup,
    SessionUserSeen,
)

QUERY_NAMES = (
    "1 counters per pair",
    "2 project sessions 24 h",
    "3 users per pair",
    "4 project users 24 h",
    "5 duration percentiles",
    "6 the series",
)


class Command(BaseCommand):
    help = "Time reads.health_data for every release of project bench; EXPLAIN ANALYZE it."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--org", default="sentry")
        parser.add_argument("--project", default="bench")
        parser.add_argument("--repeat", type=int, default=7)
        parser.add_argument("--plans", action="store_true", help="print the whole plans")

    def handle(self, *args: Any, **options: Any) -> None:
        project = Project.objects.filter(
            organization__slug=options["org"], slug=options["project"]
        ).first()
        if project is None:
            raise CommandError("Run `manage.py seed --sessions N` first.")
        pairs = [
            (project.pk, release_id) for release_id in project.releases.values_list("pk", flat=True)
        ]
        rows = {
            "rollup": SessionRollup.objects.filter(project=project).count(),
            "user seen": SessionUserSeen.objects.filter(project=project).count(),
            "project user seen": ProjectUserSeen.objects.filter(project=project).count(),
            "duration": SessionDuration.objects.filter(project=project).count(),
        }
        self.stdout.write(
            f"{len(pairs)} releases; rows: "
            + ", ".join(f"{name} {count:,}" for name, count in rows.items())
        )
        query = reads.HealthQuery()
        now = timezone.now()
        reads.health_data(pairs, query, now)  # warm the caches
        timings = []
        for _ in range(options["repeat"]):
            started = time.perf_counter()
            reads.health_data(pairs, query, now)
            timings.append((time.perf_counter() - started) * 1000)
        self.stdout.write(
            f"health_data, {len(pairs)} releases: median {statistics.median(timings):.1f} ms, "
            f"min {min(timings):.1f} ms over {len(timings)} runs"
        )
        if connection.vendor != "postgresql":
            return
        with CaptureQueriesContext(connection) as captured:
            reads.health_data(pairs, query, now)
        for name, executed in zip(QUERY_NAMES, captured.captured_queries, strict=False):
            with connection.cursor() as cursor:
                cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {executed['sql']}")
                plan = [line for (line,) in cursor.fetchall()]
            total = next((line for line in plan if line.startswith("Execution Time")), "")
            self.stdout.write(f"{name}: {total}")
            lines = plan if options["plans"] else [line for line in plan if "->" in line][:4]
            for line in lines:
                self.stdout.write(f"    {line}")
