"""``seed``: the documented example release plus a little demo data around it. Idempotent."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from accounts.models import Organization, OrganizationMember, Team, User, UserEmail
from releases.models import (
    Environment,
    Project,
    PullRequest,
    Release,
    ReleaseProjectEnvironment,
    Repository,
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
# Extra demo projects: (slug, name, platform, semver versions of its releases).
DEMO_PROJECTS = [
    ("frontend", "Frontend", "javascript", ["frontend@2.3.0", "frontend@2.4.0-rc.1+45"]),
    ("control", "Control", "python", ["control@1.0.0", "control@1.1.0", "control@1.2.0"]),
]


class Command(BaseCommand):
    help = "Create the documented example (org 'sentry', release control@abc123) and demo data."

    def handle(self, *args: Any, **options: Any) -> None:
        with transaction.atomic():
            self.seed()
        self.stdout.write(self.style.SUCCESS("Seeded organization 'sentry' with demo releases."))

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

        author = Release.objects.get(pk=releases["control@abc123"].pk).last_commit.author
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
        canary = Environment.objects.get(organization=org, name="canary-test-control")
        ReleaseProjectEnvironment.objects.get_or_create(
            release=control,
            project=backend,
            environment=canary,
            defaults={"date_added": at("2024-05-21T11:26:17.597793Z")},
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
                if is_new:
                    deploy_create(
                        release=release,
                        environment="production",
                        name=f"{version} to production",
                        date_started=created + timedelta(minutes=30),
                        date_finished=created + timedelta(minutes=42),
                    )
