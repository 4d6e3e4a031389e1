"""``bench_ingest``: session updates stored per second by the envelope endpoint, in process.

Run after ``seed --sessions N``. Envelopes of sentry-python's shape (``benchmarks.envelopes``)
go through Django's test client one at a time (middleware, view, parsing, storage and the
database, no web server). Prints the statements of one envelope, then updates/s counted from
the rollups and the time of an envelope spent in the database driver's ``execute`` and commit
(sending, the server's work, the answer) and elsewhere, and with ``--profile N`` the top ``N``
entries of a cProfile of the loop.
"""

from __future__ import annotations

import cProfile
import io
import pstats
import random
import time
from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection
from django.db.models import Sum
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from benchmarks.envelopes import post_in_process, sdk_envelope
from releases.models import Project, SessionRollup


class Command(BaseCommand):
    help = "Benchmark envelope ingestion in process: statements per envelope and updates/s."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--org", default="sentry")
        parser.add_argument("--project", default="bench")
        parser.add_argument("--envelopes", type=int, default=200)
        parser.add_argument("--per-envelope", type=int, default=100)
        parser.add_argument("--releases", type=int, default=5, help="distinct releases sent")
        parser.add_argument("--profile", type=int, default=0, help="print this many entries")
        parser.add_argument(
            "--durations", action="store_true", help="exited updates carry a duration"
        )
        parser.add_argument("--show-queries", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        project = Project.objects.filter(
            organization__slug=options["org"], slug=options["project"]
        ).first()
        if project is None:
            raise CommandError("Run `manage.py seed --sessions N` first.")
        key = project.keys.filter(is_active=True).first()
        if key is None:
            raise CommandError("The project has no active client key.")
        client = Client()
        auth = f"Sentry sentry_key={key.public_key}, sentry_version=7"
        rng = random.Random(2)  # noqa: S311 - benchmark, not security
        # A minute ago, so that every update is within the 60-second rule while the loop runs.
        now = timezone.now() - timedelta(minutes=1)
        per = options["per_envelope"]
        releases = options["releases"]
        count = options["envelopes"]
        bodies = [
            sdk_envelope(
                rng, f"bench@ingest.{n % releases}", per, now, durations=options["durations"]
            )
            for n in range(count + releases + 1)
        ]

        def post(body: bytes) -> None:
            post_in_process(client, project.pk, auth, body)

        for body in bodies[:releases]:  # warm up: the releases exist, caches are filled
            post(body)
        with CaptureQueriesContext(connection) as queries:
            post(bodies[releases])
        self.stdout.write(f"Statements per envelope of {per} updates: {len(queries)}")
        if options["show_queries"]:
            for query in queries.captured_queries:
                self.stdout.write(f"  {query['time']} s  {query['sql'][:160]}")

        def stored() -> int:
            total = SessionRollup.objects.filter(project=project).aggregate(n=Sum("updates"))
            return int(total["n"] or 0)

        in_execute = 0.0

        def timed(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
            nonlocal in_execute
            start = time.perf_counter()
            try:
                return execute(sql, params, many, context)
            finally:
                in_execute += time.perf_counter() - start

        commit = connection._commit  # type: ignore[attr-defined]

        def timed_commit() -> None:  # COMMIT does not go through execute wrappers
            nonlocal in_execute
            start = time.perf_counter()
            try:
                commit()
            finally:
                in_execute += time.perf_counter() - start

        connection._commit = timed_commit  # type: ignore[attr-defined]
        before = stored()
        profiler = cProfile.Profile() if options["profile"] else None
        started = time.perf_counter()
        if profiler is not None:
            profiler.enable()
        with connection.execute_wrapper(timed):
            for body in bodies[releases + 1 :]:
                post(body)
        if profiler is not None:
            profiler.disable()
        elapsed = time.perf_counter() - started
        connection._commit = commit  # type: ignore[attr-defined]
        updates = stored() - before
        if updates != count * per:
            raise CommandError(f"{updates} updates stored, {count * per} sent")
        self.stdout.write(
            self.style.SUCCESS(
                f"Ingestion: {updates / elapsed:,.0f} updates/s stored "
                f"({count / elapsed:.1f} envelopes/s, {elapsed / count * 1000:.1f} ms each, "
                f"{count} gzip envelopes of {per} updates, {releases} releases"
                f"{', under cProfile' if profiler else ''})"
            )
        )
        database = in_execute / count * 1000
        rest = (elapsed - in_execute) / count * 1000
        self.stdout.write(
            f"In the database's execute and commit: {database:.1f} ms an envelope; "
            f"elsewhere (Python, in process): {rest:.1f} ms"
        )
        if profiler is not None:
            out = io.StringIO()
            stats = pstats.Stats(profiler, stream=out)
            stats.sort_stats("cumulative").print_stats(options["profile"])
            stats.sort_stats("tottime").print_stats(options["profile"])
            self.stdout.write(out.getvalue())
