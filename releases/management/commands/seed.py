"""``seed``: the documented example release plus a little demo data around it. Idempotent."""

from __future__ import annotations

import hashlib
import random
from datetime import datetime, timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction
from django.utils import timezone

from accounts.models import Organization, OrganizationMember, Team, User, UserEmail
from releases.health.adoption import refresh_adoption
from releases.health.demo import demo_events, generate_updates, store_in_batches
from releases.health.items import Items
from releases.health.store import store
from releases.models import (
    CommitAuthor,
    Project,
    PullRequest,
    Release,
    Repository,
    SessionRollup,
)
from releases.services import CommitData, deploy_create, release_create, release_set_commits


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


EXAMPLE_RELEASES = {
    "control@abc123": "2024-05-21T11:26:16.190281Z",
    "backend@abc123": "2024-05-21T11:56:36.790866Z",
    "control@def789": "2024-05-21T12:44:25.923663Z",
    "frontend@ghi012": "2024-05-21T12:46:42.338358Z",
}
EXAMPLE_COMMITS = [
    CommitData(
        id="xyz123",
        repository="raj/raspberries",
        message="feat(raspberries): Made raspberries even more delicious",
        author_name="Raj's Raspberries",
        author_email="raj@raspberries",
        timestamp=at("2024-05-21T11:04:55Z"),
    ),
    CommitData(
        id="uvw456",
        repository="raj/raspberries",
        message="fix(raspberries): Wash the raspberries before serving",
        author_name="Raj's Raspberries",
        author_email="raj@raspberries",
        timestamp=at("2024-05-20T16:12:03Z"),
    ),
]
DEMO_CHANGES = ("feat: faster checkout", "fix: crash on empty cart", "chore: bump dependencies")


def demo_commits(slug: str, version: str, created: datetime) -> list[CommitData]:
    """Three commits of a demo release, newest first, with stable SHAs (the seed is
    idempotent) by the seeded member, so that release pages show commits and authors."""
    return [
        CommitData(
            id=hashlib.sha1(f"{version}:{n}".encode()).hexdigest(),  # noqa: S324 - not security
            repository=f"raj/{slug}",
            message=f"{message} ({version})",
            author_name="Raj's Raspberries",
            author_email="raj@raspberries",
            timestamp=created - timedelta(hours=n + 1),
        )
        for n, message in enumerate(DEMO_CHANGES)
    ]


# Demo releases whose crash rate is not the usual one (older releases crash more): a
# regression, so that the admin's comparison of releases shows one worse than the one before.
DEMO_CRASH_RATES = {"control@1.2.0": 0.09}
# Extra demo projects: (slug, name, platform, semver versions of its releases).
DEMO_PROJECTS = [
    ("frontend", "Frontend", "javascript", ["frontend@2.3.0", "frontend@2.4.0-rc.1+45"]),
    ("control", "Control", "python", ["control@1.0.0", "control@1.1.0", "control@1.2.0"]),
]


class Command(BaseCommand):
    help = "Create the documented example (org 'sentry', release control@abc123) and demo data."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--sessions",
            type=int,
            default=0,
            help="also store this many session updates (about two per session) over 100 "
            "releases of project 'bench', spread over the last 14 days: a benchmark dataset",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        with transaction.atomic():
            self.seed()
        self.stdout.write(self.style.SUCCESS("Seeded organization 'sentry' with demo releases."))
        if options["sessions"]:
            self.seed_bench(options["sessions"])

    def seed(self) -> None:
        rng = random.Random(42)  # noqa: S311 - demo data, not security
        org, _ = Organization.objects.update_or_create(
            slug="sentry", defaults={"name": "Sentry", "open_membership": False}
        )
        team, _ = Team.objects.update_or_create(
            organization=org, slug="raspberries", defaults={"name": "Raspberries"}
        )
        raj = self.seed_user()
        member, _ = OrganizationMember.objects.update_or_create(
            organization=org, user=raj, defaults={"role": OrganizationMember.Role.OWNER}
        )
        member.teams.add(team)

        backend, _ = Project.objects.update_or_create(
            organization=org,
            slug="sentry",
            defaults={
                "name": "Backend",
                "platform": "python",
                "platforms": ["native", "other", "python"],
            },
        )
        backend.teams.add(team)
        repo, _ = Repository.objects.update_or_create(
            organization=org,
            name="raj/raspberries",
            defaults={
                "url": "https://github.com/raj/raspberries",
                "provider": "integrations:github",
                "status": Repository.Status.ACTIVE,
                "integration_id": "2933",
                "external_slug": "raj/raspberries",
                "external_id": "873328",
                "date_added": at("2016-10-10T21:36:42.414678Z"),
            },
        )

        releases = {}
        for version, created in EXAMPLE_RELEASES.items():
            release, _, _ = release_create(
                organization=org,
                version=version,
                projects=[backend],
                user_agent="Python-urllib/3.11",
                defaults={"date_added": at(created)},
            )
            release_set_commits(release=release, commits=EXAMPLE_COMMITS)
            releases[version] = release

        author = CommitAuthor.objects.get(organization=org, email="raj@raspberries")
        PullRequest.objects.update_or_create(
            repository=repo,
            key="70214",
            defaults={
                "organization": org,
                "title": "feat(raspberries): Made raspberries even more delicious",
                "message": "Made raspberries even more delicious",
                "author": author,
                "merge_commit_sha": "xyz123",
                "status": PullRequest.Status.MERGED,
                "merged_at": at("2024-05-21T11:04:55Z"),
                "date_added": at("2024-05-03T07:32:28.205043Z"),
            },
        )

        control = releases["control@abc123"]
        if not control.deploys.exists():
            deploy_create(
                release=control,
                environment="canary-test-control",
                name="control@abc123 to canary-test-",
                date_finished=at("2024-05-21T11:26:17.597793Z"),
            )
        self.seed_demo(org, team, rng)

    def seed_user(self) -> User:
        raj, _ = User.objects.update_or_create(
            username="rajraspberry",
            defaults={
                "name": "Raj's Raspberries",
                "email": "raj@raspberries",
                "is_active": True,
                "is_staff": True,
                "is_superuser": True,
                "has_2fa": True,
                "is_managed": False,
                "avatar_type": User.AvatarType.UPLOAD,
                "avatar_ident": "xyz123",
                "date_joined": at("2023-08-07T12:32:09.091427Z"),
                "last_login": at("2024-05-21T05:46:23.824074Z"),
                "last_active": at("2024-05-21T13:59:10.614891Z"),
                "password": "!",  # no password sign-in (hasPasswordAuth: false)
            },
        )
        UserEmail.objects.update_or_create(
            user=raj, email="raj@raspberries", defaults={"is_verified": True}
        )
        return raj

    def seed_demo(self, org: Organization, team: Team, rng: random.Random) -> None:
        """A few more projects with semver releases and deploys, dated relative to today."""
        now = timezone.now().replace(minute=0, second=0, microsecond=0)
        for slug, name, platform, versions in DEMO_PROJECTS:
            project, _ = Project.objects.update_or_create(
                organization=org,
                slug=slug,
                defaults={"name": name, "platform": platform, "platforms": [platform]},
            )
            project.teams.add(team)
            for index, version in enumerate(versions):
                created = now - timedelta(days=3 * (len(versions) - index), hours=rng.randint(0, 9))
                release, is_new, _ = release_create(
                    organization=org,
                    version=version,
                    projects=[project],
                    user_agent="sentry-cli/3.8.2",
                    defaults={"date_added": created, "date_released": created + timedelta(hours=1)},
                )
                self.seed_health(project, release, index, len(versions), now, rng)
                if is_new:
                    release_set_commits(
                        release=release, commits=demo_commits(slug, version, created)
                    )
                    deploy_create(
                        release=release,
                        environment="production",
                        name=f"{version} to production",
                        date_started=created + timedelta(minutes=30),
                        date_finished=created + timedelta(minutes=42),
                    )

    def seed_health(
        self,
        project: Project,
        release: Release,
        index: int,
        count: int,
        now: datetime,
        rng: random.Random,
    ) -> None:
        """Sessions and events through the ingestion code: newer releases take the traffic.

        Each release gets sessions from its creation on; the newest carries most of the
        recent ones (adopted), the older ones fade out (replaced). Runs once per release.
        """
        if SessionRollup.objects.filter(release=release, project=project).exists():
            return
        start = max(release.date_added, now - timedelta(days=4, hours=20))
        newest = index == count - 1
        updates = list(
            generate_updates(
                rng,
                release=release.version,
                environment="production",
                start=start,
                end=now if newest else now - timedelta(hours=8),
                sessions=300 if newest else 120,
                crash_rate=DEMO_CRASH_RATES.get(release.version, 0.02 + 0.03 * (count - 1 - index)),
                users=80,
            )
        )
        if newest:
            updates += generate_updates(
                rng,
                release=release.version,
                environment="staging",
                start=now - timedelta(hours=5),
                end=now,
                sessions=20,
                crash_rate=0.1,
                users=5,
            )
        events = demo_events(
            rng, release=release.version, environment="production", start=start, end=now
        )
        store(project, Items(sessions=updates, events=events), received=now, dedup=False)
        # As the periodic job would have seen it eight hours ago, then now.
        refresh_adoption(now=now - timedelta(hours=8), organization_id=project.organization_id)
        refresh_adoption(now=now, organization_id=project.organization_id)

    def seed_bench(self, total: int) -> None:
        """``total`` session updates over 100 releases of project ``bench``, in bulk."""
        org = Organization.objects.get(slug="sentry")
        team = Team.objects.get(organization=org, slug="raspberries")
        project, _ = Project.objects.update_or_create(
            organization=org, slug="bench", defaults={"name": "Bench", "platform": "python"}
        )
        project.teams.add(team)
        now = timezone.now()
        rng = random.Random(7)  # noqa: S311 - demo data, not security
        releases = [f"bench@1.{n // 10}.{n % 10}" for n in range(100)]
        for n, version in enumerate(releases):
            release_create(
                organization=org,
                version=version,
                projects=[project],
                defaults={"date_added": now - timedelta(days=14) + timedelta(hours=3 * n)},
            )
        per_release = max(1, total // 2 // len(releases))

        def updates() -> Any:
            for n, version in enumerate(releases):
                start = now - timedelta(days=14) + timedelta(hours=3 * n)
                yield from generate_updates(
                    rng,
                    release=version,
                    environment=rng.choice(["production", "staging"]),
                    start=start,
                    end=now,
                    sessions=per_release,
                    crash_rate=rng.random() * 0.05,
                    users=5000,
                )

        width = 40

        def progress(done: int) -> None:
            filled = int(width * min(done, total) / total)
            self.stdout.write(
                f"\r[{'#' * filled}{'.' * (width - filled)}] {done:,}/{total:,} updates",
                ending="",
            )
            self.stdout.flush()

        stored = store_in_batches(project, updates(), received=now, progress=progress)
        refresh_adoption(now=now)
        self.stdout.write("")
        self.stdout.write(self.style.SUCCESS(f"Stored {stored:,} session updates in 'bench'."))
