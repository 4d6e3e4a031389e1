"""``bench_health``: requests per second of release details with health, and ingest speed.

Run after ``seed --sessions N``. Requests go through Django's test client in this process
(middleware, view, serializer and database, without a web server in front), one at a time.
"""

from __future__ import annotations

import random
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection
from django.db.models import Sum
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import ApiToken, User
from benchmarks.envelopes import post_in_process, sdk_envelope
from releases.models import Project, SessionRollup, SessionUser


class Command(BaseCommand):
    help = "Benchmark GET release details with health=1, and envelope ingestion."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--org", default="sentry")
        parser.add_argument("--project", default="bench")
        parser.add_argument("--user", default="rajraspberry")
        parser.add_argument("--requests", type=int, default=300)
        parser.add_argument("--envelopes", type=int, default=100)
        parser.add_argument("--per-envelope", type=int, default=100)

    def handle(self, *args: Any, **options: Any) -> None:
        project = Project.objects.filter(
            organization__slug=options["org"], slug=options["project"]
        ).first()
        user = User.objects.filter(username=options["user"]).first()
        if project is None or user is None:
            raise CommandError("Run `manage.py seed --sessions N` first.")
        token = ApiToken(user=user, scopes=["project:read", "org:read"], name="bench_health")
        secret = token.set_new_token()
        token.save()
        try:
            client = Client(HTTP_AUTHORIZATION=f"Bearer {secret}")
            rng = random.Random(1)  # noqa: S311 - benchmark, not security

            totals = SessionRollup.objects.filter(project=project).aggregate(
                updates=Sum("updates"), sessions=Sum("sessions")
            )
            versions = list(project.releases.values_list("version", flat=True))
            self.stdout.write(
                f"Dataset: {totals['updates'] or 0:,} session updates "
                f"({totals['sessions'] or 0:,} sessions), {len(versions)} releases, "
                f"{SessionRollup.objects.filter(project=project).count():,} rollup rows, "
                f"{SessionUser.objects.filter(project=project).count():,} user rows, "
                f"database {connection.vendor}"
            )

            def url(version: str) -> str:
                return (
                    f"/api/0/organizations/{options['org']}/releases/{version}/"
                    f"?health=1&adoptionStages=1&project={project.pk}&summaryStatsPeriod=14d"
                )

            for version in versions[:5]:  # warm up
                client.get(url(version))
            with CaptureQueriesContext(connection) as queries:
                response = client.get(url(versions[0]))
            if response.status_code != 200:
                raise CommandError(f"GET failed: {response.status_code} {response.content[:200]!r}")
            self.stdout.write(f"Queries per details request (health=1, project): {len(queries)}")

            count = options["requests"]
            started = time.perf_counter()
            for _ in range(count):
                client.get(url(rng.choice(versions)))
            elapsed = time.perf_counter() - started
            self.stdout.write(
                self.style.SUCCESS(
                    f"Details with health: {count / elapsed:.1f} requests/s "
                    f"({elapsed / count * 1000:.1f} ms each, {count} requests)"
                )
            )

            list_url = (
                f"/api/0/organizations/{options['org']}/releases/"
                f"?health=1&project={project.pk}&per_page=100"
            )
            client.get(list_url)  # warm up
            response = client.get(list_url)
            pages = 10
            started = time.perf_counter()
            for _ in range(pages):
                client.get(list_url)
            elapsed = time.perf_counter() - started
            self.stdout.write(
                self.style.SUCCESS(
                    f"List with health ({len(response.json())} releases a page): "
                    f"{elapsed / pages * 1000:.1f} ms a page"
                )
            )

            key = project.keys.filter(is_active=True).first()
            if key is None:
                raise CommandError("The project has no active client key.")
            auth = f"Sentry sentry_key={key.public_key}, sentry_version=7"
            now = timezone.now()
            per = options["per_envelope"]
            bodies = [
                sdk_envelope(rng, f"bench@ingest.{n % 5}", per, now)
                for n in range(options["envelopes"])
            ]
            started = time.perf_counter()
            for body in bodies:
                post_in_process(client, project.pk, auth, body)
            elapsed = time.perf_counter() - started
            sessions = len(bodies) * per
            self.stdout.write(
                self.style.SUCCESS(
                    f"Ingestion: {sessions / elapsed:,.0f} sessions/s "
                    f"({len(bodies) / elapsed:.1f} envelopes/s of {per} sessions, gzip)"
                )
            )
        finally:
            token.delete()  # the benchmark's token never outlives it
