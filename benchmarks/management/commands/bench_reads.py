"""``bench_reads``: the health of the 100 releases of project ``bench``, timed, with plans.

Run after ``seed --sessions N`` on PostgreSQL. Times ``reads.health_data`` for every release of
the project at once (what the list with ``health=1`` asks), then ``EXPLAIN ANALYZE``s each of its
queries and prints the execution time PostgreSQL reports and, for each arm of the query's
``UNION ALL``, its time and the rows its scans read per table (rows returned plus rows removed
by a filter, over all loops).
"""

from __future__ import annotations

import json
import statistics
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection
from django.db.models import Count, Q
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from releases.health import reads
from releases.health.periods import period_start
from releases.models import (
    Project,
    ProjectUserSeen,
    SessionDuration,
    SessionDurationDay,
    SessionRollup,
    SessionUserSeen,
)

# health_data's queries, and the arms of each one's UNION ALL, in order (reads._rollups,
# reads._people; the default HealthQuery has a sessions series).
QUERY_NAMES = (
    ("1 rollups", ("counters per pair", "project sessions 24 h", "sessions series")),
    ("2 people", ("users per pair", "project users 24 h", "duration percentiles")),
)


def _nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", ()):
        yield from _nodes(child)


def _rows_read(plan: dict[str, Any]) -> Counter[str]:
    """Rows each table's scans under ``plan`` read: returned plus filtered out, all loops."""
    rows: Counter[str] = Counter()
    for node in _nodes(plan):
        if "Relation Name" in node:
            loops = node.get("Actual Loops", 1)
            kept = node.get("Actual Rows", 0) + node.get("Rows Removed by Filter", 0)
            rows[node["Relation Name"]] += round(kept * loops)
    return rows


def _durations_arm(
    pairs: list[tuple[int, int]], query: reads.HealthQuery, now: datetime
) -> tuple[str, Sequence[Any]]:
    """The SQL of health_data's duration percentiles (all environments)."""
    projects = {project for project, _ in pairs}
    releases = {release for _, release in pairs}
    start = period_start(query.summary_period, now)
    return reads._percentile_sql(reads._duration_rows(Q(), projects, releases, start))


def _arms(plan: dict[str, Any]) -> list[dict[str, Any]]:
    """The arms of the outermost ``UNION ALL`` (an Append node), else the plan itself."""
    for node in _nodes(plan):
        if node["Node Type"] == "Append":
            return list(node["Plans"])
    return [plan]


class Command(BaseCommand):
    help = "Time reads.health_data for every release of project bench; EXPLAIN ANALYZE it."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--org", default="sentry")
        parser.add_argument("--project", default="bench")
        parser.add_argument("--repeat", type=int, default=7)
        parser.add_argument("--plans", action="store_true", help="print the whole plans")
        parser.add_argument(
            "--compare-hourly",
            action="store_true",
            help="also time the percentile SQL over hourly rows only (before the day rows), "
            "interleaved with the current one, and check that both give the same rows",
        )

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
            "duration day": SessionDurationDay.objects.filter(project=project).count(),
        }
        self.stdout.write(
            f"{len(pairs)} releases; rows: "
            + ", ".join(f"{name} {count:,}" for name, count in rows.items())
        )
        query = reads.HealthQuery()
        now = timezone.now()
        # The list with health=1 (every release at once), then the details request for the
        # release with the most hours of sessions (the one active longest).
        longest = (
            SessionRollup.objects.filter(project=project)
            .values("release_id")
            .annotate(hours=Count("hour", distinct=True))
            .order_by("-hours", "release_id")
            .values_list("release_id", flat=True)[0]
        )
        for label, some in (
            (f"{len(pairs)} releases", pairs),
            ("1 release, the longest active", [(project.pk, longest)]),
        ):
            self._report(label, some, query, now, repeat=options["repeat"], plans=options["plans"])
        if options["compare_hourly"]:
            for period in ("14d", "90d"):
                self._compare(pairs, reads.HealthQuery(summary_period=period), now, repeat=20)

    def _compare(
        self, pairs: list[tuple[int, int]], query: reads.HealthQuery, now: datetime, *, repeat: int
    ) -> None:
        """Both percentile queries, alternately on the same data: the machine's noise hits both."""
        projects = {project for project, _ in pairs}
        releases = {release for _, release in pairs}
        start = period_start(query.summary_period, now)
        every_hour = SessionDuration.objects.filter(
            project_id__in=projects, release_id__in=releases, hour__gte=start
        )
        hourly = reads._percentile_sql([every_hour])
        cases = {"hourly rows": hourly, "day rows": _durations_arm(pairs, query, now)}
        timings: dict[str, list[float]] = {name: [] for name in cases}
        found: dict[str, list[Any]] = {}
        with connection.cursor() as cursor:
            for _ in range(repeat + 1):
                for name, (sql, params) in cases.items():
                    started = time.perf_counter()
                    cursor.execute(sql, params)
                    found[name] = sorted(cursor.fetchall())
                    timings[name].append((time.perf_counter() - started) * 1000)
        same = "same rows" if found["hourly rows"] == found["day rows"] else "DIFFERENT ROWS"
        self.stdout.write(
            f"percentiles, {query.summary_period}, {len(pairs)} releases, {repeat} runs each "
            f"({same}): "
            + "; ".join(
                f"{name} median {statistics.median(t[1:]):.1f} ms, min {min(t[1:]):.1f} ms"
                for name, t in timings.items()
            )
        )

    def _report(
        self,
        label: str,
        pairs: list[tuple[int, int]],
        query: reads.HealthQuery,
        now: datetime,
        *,
        repeat: int,
        plans: bool,
    ) -> None:
        reads.health_data(pairs, query, now)  # warm the caches
        timings = []
        for _ in range(repeat):
            started = time.perf_counter()
            reads.health_data(pairs, query, now)
            timings.append((time.perf_counter() - started) * 1000)
        self.stdout.write(
            f"health_data, {label}: median {statistics.median(timings):.1f} ms, "
            f"min {min(timings):.1f} ms over {len(timings)} runs"
        )
        # The duration percentiles' arm on its own, without EXPLAIN's per-row timing.
        sql, params = _durations_arm(pairs, query, now)
        arm_timings = []
        with connection.cursor() as cursor:
            for _ in range(repeat + 1):
                started = time.perf_counter()
                cursor.execute(sql, params)
                cursor.fetchall()
                arm_timings.append((time.perf_counter() - started) * 1000)
        self.stdout.write(
            f"  duration percentiles alone: median {statistics.median(arm_timings[1:]):.1f} ms, "
            f"min {min(arm_timings[1:]):.1f} ms"
        )
        if connection.vendor != "postgresql":
            return
        with CaptureQueriesContext(connection) as captured:
            reads.health_data(pairs, query, now)
        if len(captured.captured_queries) != len(QUERY_NAMES):
            self.stdout.write(f"({len(captured.captured_queries)} queries, names may not match)")
        for (name, arm_names), executed in zip(
            QUERY_NAMES, captured.captured_queries, strict=False
        ):
            with connection.cursor() as cursor:
                cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {executed['sql']}")
                (document,) = cursor.fetchone()
            explained = json.loads(document) if isinstance(document, str) else document
            root = explained[0]
            self.stdout.write(f"  {name}: Execution Time: {root['Execution Time']:.3f} ms")
            for index, arm in enumerate(_arms(root["Plan"])):
                arm_name = arm_names[index] if index < len(arm_names) else f"arm {index + 1}"
                rows = ", ".join(f"{t} {n:,}" for t, n in sorted(_rows_read(arm).items()))
                self.stdout.write(
                    f"    {arm_name}: {arm['Actual Total Time']:.1f} ms; rows read: {rows or '-'}"
                )
            if plans:
                with connection.cursor() as cursor:
                    cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {executed['sql']}")
                    for (line,) in cursor.fetchall():
                        self.stdout.write(f"    {line}")
