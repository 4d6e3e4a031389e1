"""``bench_list``: time release list and details requests over a large generated dataset."""

from __future__ import annotations

import statistics
import time
from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import ApiToken, Organization, OrganizationMember, Team, User
from releases.models import Project, Release, ReleaseProject
from releases.versioning import semver_columns

ORG = "bench"


class Command(BaseCommand):
    help = "Create N releases in organization 'bench' (once) and time list/details requests."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--releases", type=int, default=10_000)
        parser.add_argument("--projects", type=int, default=10)
        parser.add_argument(
            "--requests", type=int, default=30, help="per case; 0 only builds the dataset"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        user = self.dataset(options["releases"], options["projects"])
        if not options["requests"]:
            return
        token = ApiToken(user=user, scopes=["project:read"], name="bench")
        secret = token.set_new_token()
        token.save()
        try:
            self.measure(Client(HTTP_AUTHORIZATION=f"Bearer {secret}"), options["requests"])
        finally:
            token.delete()  # the benchmark's token never outlives it

    def measure(self, client: Client, requests: int) -> None:
        project = Project.objects.filter(organization__slug=ORG).order_by("pk")[0]
        newest = Release.objects.filter(projects=project).latest("date_added", "id")
        base = f"/api/0/organizations/{ORG}/releases/"
        cases = {
            "list, 100 per page, newest first": base + "?per_page=100",
            "list, 100 per page, page 50": base + "?per_page=100&cursor=100:50:0",
            "list, semver sort": base + "?per_page=100&sort=semver",
            "list, health + adoption": base + "?per_page=100&health=1&adoptionStages=1",
            "list, query": base + "?per_page=100&query=release.version:>1.5.0 OR app-3",
            "details, example parameters": (
                f"{base}{newest.version}/?health=1&adoptionStages=1&project={project.pk}"
            ),
        }
        self.stdout.write(
            f"{Release.objects.filter(organization__slug=ORG).count()} releases, "
            f"{requests} requests per case ({connection.vendor})"
        )
        for label, path in cases.items():
            timings = []
            for _ in range(requests):
                with CaptureQueriesContext(connection) as queries:
                    started = time.perf_counter()
                    response = client.get(path)
                    timings.append(time.perf_counter() - started)
                assert response.status_code == 200, response.content  # noqa: S101
            median = statistics.median(timings)
            self.stdout.write(
                f"{label:38} median {median * 1000:7.1f} ms  p90 "
                f"{sorted(timings)[int(len(timings) * 0.9)] * 1000:7.1f} ms  "
                f"{1 / median:6.1f} req/s  {len(queries)} queries"
            )

    @transaction.atomic
    def dataset(self, count: int, project_count: int) -> User:
        """Organization ``bench`` with ``count`` releases over ``project_count`` projects."""
        org, _ = Organization.objects.get_or_create(slug=ORG, defaults={"name": "Bench"})
        team, _ = Team.objects.get_or_create(organization=org, slug="bench", defaults={"name": "B"})
        user, _ = User.objects.get_or_create(username="bench", defaults={"email": "b@bench"})
        member, _ = OrganizationMember.objects.get_or_create(organization=org, user=user)
        member.teams.add(team)
        projects = []
        for i in range(project_count):
            project, _ = Project.objects.get_or_create(
                organization=org, slug=f"app-{i}", defaults={"name": f"App {i}"}
            )
            project.teams.add(team)
            projects.append(project)
        existing = Release.objects.filter(organization=org).count()
        if existing < count:
            self.stdout.write(f"creating {count - existing} releases…")
            now = timezone.now()
            batch = []
            for i in range(existing, count):
                version = f"app-{i % project_count}@{i // 1000}.{i // 100 % 10}.{i % 100}"
                batch.append(
                    Release(
                        organization=org, version=version,
                        date_added=now - timedelta(minutes=count - i),
                        **semver_columns(version),
                    )
                )  # fmt: skip
            created = Release.objects.bulk_create(batch, batch_size=2000)
            ReleaseProject.objects.bulk_create(
                [ReleaseProject(release=r, project=projects[i % project_count])
                 for i, r in enumerate(created, start=existing)],
                batch_size=2000,
            )  # fmt: skip
            if connection.vendor == "postgresql":
                # Fresh bulk rows have no statistics yet; autovacuum would gather them soon.
                with connection.cursor() as cursor:
                    cursor.execute("ANALYZE")
        return user
