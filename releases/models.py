"""Projects, repositories, commits, releases, deploys and their links."""

from __future__ import annotations

import secrets
from typing import ClassVar

from django.conf import settings
from django.db import models
from django.utils import timezone

from accounts.models import Organization, Team


class Project(models.Model):
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="projects"
    )
    slug = models.SlugField(max_length=100)
    name = models.CharField(max_length=200)
    platform = models.CharField(max_length=64, null=True, blank=True)
    # Platforms observed in the project's events (Sentry's ProjectPlatform rows), sorted.
    platforms = models.JSONField(default=list, blank=True)
    teams = models.ManyToManyField(Team, blank=True, related_name="projects")
    date_added = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint(fields=["organization", "slug"], name="unique_project_slug"),
        ]

    def __str__(self) -> str:
        return f"{self.organization.slug}/{self.slug}"


class Environment(models.Model):
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="environments"
    )
    name = models.CharField(max_length=64, blank=True)
    date_added = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint(fields=["organization", "name"], name="unique_environment"),
        ]

    def __str__(self) -> str:
        return self.name


class Repository(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active"
        DISABLED = "disabled"
        HIDDEN = "hidden"
        PENDING_DELETION = "pending_deletion"
        DELETION_IN_PROGRESS = "deletion_in_progress"

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="repositories"
    )
    name = models.CharField(max_length=200)
    url = models.URLField(max_length=200, null=True, blank=True)
    # ``integrations:github`` and friends; null for repositories created from commit data.
    provider = models.CharField(max_length=64, null=True, blank=True)
    status = models.CharField(max_length=32, choices=Status.choices, default=Status.ACTIVE)
    integration_id = models.CharField(max_length=64, null=True, blank=True)
    external_slug = models.CharField(max_length=200, null=True, blank=True)
    external_id = models.CharField(max_length=64, null=True, blank=True)
    date_added = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "repositories"
        constraints: ClassVar = [
            models.UniqueConstraint(fields=["organization", "name"], name="unique_repository"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def provider_info(self) -> dict[str, str]:
        """``{"id", "name"}`` as Sentry shows it; repositories from commit data have none."""
        if not self.provider:
            return {"id": "unknown", "name": "Unknown Provider"}
        return {"id": self.provider, "name": PROVIDER_NAMES.get(self.provider, self.provider)}

    def pull_request_url(self, key: str) -> str | None:
        """The provider's web page of pull request ``key``, for providers we know."""
        if not self.url or self.provider not in PULL_REQUEST_PATHS:
            return None
        return f"{self.url.rstrip('/')}/{PULL_REQUEST_PATHS[self.provider]}/{key}"


PROVIDER_NAMES = {
    "integrations:github": "GitHub",
    "integrations:github_enterprise": "GitHub Enterprise",
    "integrations:gitlab": "GitLab",
    "integrations:bitbucket": "Bitbucket",
    "integrations:bitbucket_server": "Bitbucket Server",
    "integrations:vsts": "Azure DevOps",
}
PULL_REQUEST_PATHS = {
    "integrations:github": "pull",
    "integrations:github_enterprise": "pull",
    "integrations:gitlab": "merge_requests",
    "integrations:bitbucket": "pull-requests",
}


class CommitAuthor(models.Model):
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="commit_authors"
    )
    name = models.CharField(max_length=128, blank=True)
    email = models.CharField(max_length=200)
    # ``github:username`` style identity from a provider, when known.
    external_id = models.CharField(max_length=164, null=True, blank=True)

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint(fields=["organization", "email"], name="unique_commit_author"),
        ]

    def __str__(self) -> str:
        return f"{self.name} <{self.email}>"


class Commit(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    repository = models.ForeignKey(Repository, on_delete=models.CASCADE, related_name="commits")
    key = models.CharField(max_length=64)
    message = models.TextField(null=True, blank=True)
    author = models.ForeignKey(
        CommitAuthor, on_delete=models.SET_NULL, null=True, blank=True, related_name="commits"
    )
    date_added = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint(fields=["repository", "key"], name="unique_commit"),
        ]

    def __str__(self) -> str:
        return self.key[:12]


class PullRequest(models.Model):
    class Status(models.TextChoices):
        OPEN = "open"
        DRAFT = "draft"
        MERGED = "merged"
        CLOSED = "closed"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    repository = models.ForeignKey(
        Repository, on_delete=models.CASCADE, related_name="pull_requests"
    )
    key = models.CharField(max_length=64, help_text="The pull request's number.")
    title = models.TextField(null=True, blank=True)
    message = models.TextField(null=True, blank=True)
    author = models.ForeignKey(
        CommitAuthor, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    merge_commit_sha = models.CharField(max_length=64, null=True, blank=True, db_index=True)
    status = models.CharField(max_length=16, choices=Status.choices, null=True, blank=True)
    merged_at = models.DateTimeField(null=True, blank=True)
    date_added = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint(fields=["repository", "key"], name="unique_pull_request"),
        ]

    def __str__(self) -> str:
        return f"{self.repository.name}#{self.key}"


class ReleaseStatus(models.IntegerChoices):
    OPEN = 0, "open"
    ARCHIVED = 1, "archived"


# Legacy rows may have a NULL status, which Sentry reads as open.
OPEN_STATUS = models.Q(status=ReleaseStatus.OPEN) | models.Q(status__isnull=True)

# The foreign keys the release serializer follows (select them with the release).
SERIALIZER_RELATIONS = (
    "owner",
    "last_deploy__environment",
    "last_commit__repository",
    "last_commit__author",
)


class ReleaseQuerySet(models.QuerySet["Release"]):
    def for_org(self, organization: Organization) -> ReleaseQuerySet:
        return self.filter(organization=organization)

    def open(self) -> ReleaseQuerySet:
        return self.filter(OPEN_STATUS)

    def archived(self) -> ReleaseQuerySet:
        return self.filter(status=ReleaseStatus.ARCHIVED)

    def with_serializer_relations(self) -> ReleaseQuerySet:
        """Everything the release serializer reads through foreign keys and prefetches."""
        return self.select_related(*SERIALIZER_RELATIONS).prefetch_related("owner__emails")


class Release(models.Model):
    """A version, organization-wide, linked to any number of the organization's projects."""

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="releases"
    )
    version = models.CharField(max_length=250)
    status = models.PositiveSmallIntegerField(
        choices=ReleaseStatus.choices, null=True, blank=True, default=ReleaseStatus.OPEN
    )
    ref = models.CharField(max_length=250, null=True, blank=True)
    url = models.URLField(max_length=200, null=True, blank=True)
    date_added = models.DateTimeField(default=timezone.now)
    date_started = models.DateTimeField(null=True, blank=True)
    date_released = models.DateTimeField(null=True, blank=True)
    data = models.JSONField(default=dict, blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    user_agent = models.CharField(max_length=256, null=True, blank=True)
    projects = models.ManyToManyField(Project, through="ReleaseProject", related_name="releases")

    # Semver columns, filled from the version when the release is created (versioning.py).
    package = models.TextField(null=True, blank=True)
    major = models.BigIntegerField(null=True, blank=True)
    minor = models.BigIntegerField(null=True, blank=True)
    patch = models.BigIntegerField(null=True, blank=True)
    revision = models.BigIntegerField(null=True, blank=True)
    prerelease = models.TextField(null=True, blank=True)
    build_code = models.TextField(null=True, blank=True)
    build_number = models.BigIntegerField(null=True, blank=True)

    # Counters and pointers kept current by services.py so serializing is cheap.
    commit_count = models.PositiveIntegerField(null=True, blank=True, default=0)
    last_commit = models.ForeignKey(
        Commit, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    authors = models.JSONField(default=list, blank=True, help_text="Commit author ids.")
    total_deploys = models.PositiveIntegerField(null=True, blank=True, default=0)
    last_deploy = models.ForeignKey(
        "Deploy", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    objects = ReleaseQuerySet.as_manager()

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint(fields=["organization", "version"], name="unique_release"),
        ]
        indexes: ClassVar = [
            models.Index(fields=["organization", "date_added", "id"], name="release_org_date"),
            models.Index(
                fields=["organization", "major", "minor", "patch", "revision"],
                name="release_org_semver",
            ),
            models.Index(fields=["organization", "build_number"], name="release_org_build"),
            models.Index(fields=["organization", "package"], name="release_org_package"),
        ]

    def __str__(self) -> str:
        return self.version

    @property
    def status_name(self) -> str:
        return "archived" if self.status == ReleaseStatus.ARCHIVED else "open"

    @property
    def is_semver(self) -> bool:
        return self.major is not None


class ReleaseProject(models.Model):
    release = models.ForeignKey(Release, on_delete=models.CASCADE, related_name="release_projects")
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="release_projects")
    new_groups = models.PositiveIntegerField(null=True, blank=True, default=0)

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint(fields=["release", "project"], name="unique_release_project"),
        ]

    def __str__(self) -> str:
        return f"{self.release} on {self.project}"


class ReleaseCommit(models.Model):
    release = models.ForeignKey(Release, on_delete=models.CASCADE, related_name="release_commits")
    commit = models.ForeignKey(Commit, on_delete=models.CASCADE, related_name="release_commits")
    # 0 is the newest commit of the release.
    order = models.PositiveIntegerField()

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint(fields=["release", "commit"], name="unique_release_commit"),
        ]

    def __str__(self) -> str:
        return f"{self.release} ← {self.commit}"


class ReleaseHeadCommit(models.Model):
    """The newest commit of a release in one repository (from ``refs``)."""

    release = models.ForeignKey(Release, on_delete=models.CASCADE, related_name="head_commits")
    repository = models.ForeignKey(Repository, on_delete=models.CASCADE, related_name="+")
    commit = models.ForeignKey(Commit, on_delete=models.CASCADE, related_name="+")
    # The ``previousCommit`` of the ref, kept so that the range can be computed later.
    previous_commit = models.ForeignKey(
        Commit, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint(
                fields=["release", "repository"], name="unique_release_head_commit"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.release} @ {self.repository}: {self.commit}"


class Deploy(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    release = models.ForeignKey(Release, on_delete=models.CASCADE, related_name="deploys")
    environment = models.ForeignKey(Environment, on_delete=models.CASCADE, related_name="deploys")
    name = models.CharField(max_length=64, null=True, blank=True)
    url = models.URLField(max_length=200, null=True, blank=True)
    date_started = models.DateTimeField(null=True, blank=True)
    date_finished = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.name or f"{self.release} to {self.environment}"


class ReleaseProjectEnvironment(models.Model):
    """Per release, project and environment: events seen, new issues and adoption."""

    release = models.ForeignKey(Release, on_delete=models.CASCADE, related_name="+")
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    environment = models.ForeignKey(Environment, on_delete=models.CASCADE, related_name="+")
    # First and last event received; null until the first event.
    first_seen = models.DateTimeField(null=True, blank=True)
    last_seen = models.DateTimeField(null=True, blank=True)
    new_issues_count = models.PositiveIntegerField(default=0)
    adopted = models.DateTimeField(null=True, blank=True)
    unadopted = models.DateTimeField(null=True, blank=True)
    date_added = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint(
                fields=["release", "project", "environment"], name="unique_release_project_env"
            ),
        ]
        indexes: ClassVar = [
            models.Index(fields=["project", "environment", "adopted"], name="rpe_adoption"),
        ]

    def __str__(self) -> str:
        return f"{self.release} on {self.project} in {self.environment}"

    @property
    def stage(self) -> str:
        if self.adopted is not None and self.unadopted is None:
            return "adopted"
        if self.adopted is not None:
            return "replaced"
        return "low_adoption"


def _new_key() -> str:
    return secrets.token_hex(16)


class ProjectKeyQuerySet(models.QuerySet["ProjectKey"]):
    def active(self) -> ProjectKeyQuerySet:
        return self.filter(is_active=True)


class ProjectKey(models.Model):
    """A client key (DSN) of a project: SDKs authenticate envelopes with its public key."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="keys")
    label = models.CharField(max_length=64, blank=True, default="Default")
    public_key = models.CharField(max_length=32, unique=True, default=_new_key)
    secret_key = models.CharField(max_length=32, default=_new_key)
    # A revoked key is kept so that its envelopes get 403 instead of "unknown key".
    is_active = models.BooleanField(default=True)
    date_added = models.DateTimeField(default=timezone.now)

    objects = ProjectKeyQuerySet.as_manager()

    def __str__(self) -> str:
        return f"{self.project}: {self.public_key}"

    @property
    def dsn(self) -> str:
        """``http://<public_key>@<SENTRY_DSN_HOST>/<project_id>`` (the host may carry a scheme)."""
        scheme, _, host = settings.SENTRY_DSN_HOST.rpartition("://")
        return f"{scheme or 'http'}://{self.public_key}@{host.rstrip('/')}/{self.project_id}"


class SessionRollup(models.Model):
    """Session counters per project, release, environment and hour of the sessions' start.

    Maintained at ingest (``ingestion.py``) with additive upserts; every health number except
    distinct users and durations is a sum over these rows.
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    release = models.ForeignKey(Release, on_delete=models.CASCADE, related_name="+")
    environment = models.ForeignKey(Environment, on_delete=models.CASCADE, related_name="+")
    hour = models.DateTimeField()
    # Session updates received (rows, any status): "has health data".
    updates = models.BigIntegerField(default=0)
    # Started sessions: ``init`` updates plus aggregate totals.
    sessions = models.BigIntegerField(default=0)
    crashed = models.BigIntegerField(default=0)
    abnormal = models.BigIntegerField(default=0)
    unhandled = models.BigIntegerField(default=0)
    # Distinct errored sids (individual updates) plus aggregate errored/abnormal/crashed.
    errored = models.BigIntegerField(default=0)

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint(
                fields=["project", "release", "environment", "hour"], name="unique_session_rollup"
            ),
        ]
        indexes: ClassVar = [
            # Covers the project-wide 24 h sessions (adoption) with an index-only scan.
            models.Index(
                fields=["project", "hour"],
                include=["environment", "sessions"],
                name="session_rollup_project_hour",
            ),
            models.Index(fields=["release", "project", "hour"], name="session_rollup_release"),
        ]

    def __str__(self) -> str:
        return f"{self.release_id}/{self.project_id}/{self.environment_id} @ {self.hour}"


class SessionUser(models.Model):
    """A distinct id seen per project, release, environment and hour: users per stats bucket.

    Window totals (users since a moment) read :class:`SessionUserSeen` instead.
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    release = models.ForeignKey(Release, on_delete=models.CASCADE, related_name="+")
    environment = models.ForeignKey(Environment, on_delete=models.CASCADE, related_name="+")
    hour = models.DateTimeField()
    # The SDK's ``did`` as a UUID (UUIDv5 of the text when it is not one): no PII stored.
    did = models.UUIDField()

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint(
                fields=["project", "release", "environment", "hour", "did"],
                name="unique_session_user",
            ),
        ]
        indexes: ClassVar = [
            models.Index(fields=["project", "hour"], name="session_user_project_hour"),
            models.Index(fields=["release", "project", "hour"], name="session_user_release"),
        ]

    def __str__(self) -> str:
        return str(self.did)


class SessionUserSeen(models.Model):
    """The latest hour in which a did started a session, per project, release and environment.

    Every window ends now, so the distinct users of a window starting at ``T`` are exactly the
    dids with ``last_hour >= T``, and its crashed users those with ``last_crashed_hour >= T``
    (the latest hour of a crashed session; NULL when none crashed): one index range scan over
    at most one row per user, instead of one row per user and hour.
    """

    # No single-column FK indexes: the unique constraint leads with project, the covering
    # index with release, and environments are not deleted on their own. Each index costs
    # every ingested user a write.
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+", db_index=False)
    release = models.ForeignKey(Release, on_delete=models.CASCADE, related_name="+", db_index=False)
    environment = models.ForeignKey(
        Environment, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    did = models.UUIDField()
    last_hour = models.DateTimeField()
    last_crashed_hour = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint(
                fields=["project", "release", "environment", "did"],
                name="unique_session_user_seen",
            ),
        ]
        indexes: ClassVar = [
            models.Index(
                fields=["release", "project", "last_hour"],
                include=["environment", "did", "last_crashed_hour"],
                name="session_user_seen_release",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.did} @ {self.last_hour}"


class ProjectUserSeen(models.Model):
    """The latest hour in which a did started a session in a project and environment.

    Distinct users of the whole project since ``T`` (adoption's denominator) are the dids
    with ``last_hour >= T``, whatever the releases they used.
    """

    # As above: the unique constraint leads with project; no index for environment.
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+", db_index=False)
    environment = models.ForeignKey(
        Environment, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    did = models.UUIDField()
    last_hour = models.DateTimeField()

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint(
                fields=["project", "environment", "did"], name="unique_project_user_seen"
            ),
        ]
        indexes: ClassVar = [
            models.Index(
                fields=["project", "last_hour"],
                include=["environment", "did"],
                name="project_user_seen_hour",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.did} @ {self.last_hour}"


class SessionDuration(models.Model):
    """How many exited sessions lasted ``duration_ms``, per project, release, env and hour."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    release = models.ForeignKey(Release, on_delete=models.CASCADE, related_name="+")
    environment = models.ForeignKey(Environment, on_delete=models.CASCADE, related_name="+")
    hour = models.DateTimeField()
    duration_ms = models.BigIntegerField()
    count = models.BigIntegerField(default=0)

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint(
                fields=["project", "release", "environment", "hour", "duration_ms"],
                name="unique_session_duration",
            ),
        ]
        indexes: ClassVar = [
            models.Index(
                fields=["release", "project", "hour"],
                include=["environment", "duration_ms", "count"],
                name="session_duration_release",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.duration_ms} ms x {self.count}"


class ErroredSession(models.Model):
    """Sids already counted as errored, so that each errored session counts once."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    release = models.ForeignKey(Release, on_delete=models.CASCADE, related_name="+")
    sid = models.UUIDField()
    hour = models.DateTimeField()

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint(
                fields=["project", "release", "sid"], name="unique_errored_session"
            ),
        ]

    def __str__(self) -> str:
        return str(self.sid)


class SessionUpdateKey(models.Model):
    """Digests of individual session updates already stored: duplicate deliveries count once.

    Updates older than five days are refused anyway, so older keys can be pruned.
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    key = models.UUIDField()
    received = models.DateTimeField(db_index=True)

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint(fields=["project", "key"], name="unique_session_update_key"),
        ]

    def __str__(self) -> str:
        return str(self.key)


class IngestOutcome(models.Model):
    """Items the envelope endpoint dropped, per project, day, category and reason."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    category = models.CharField(max_length=16)
    reason = models.CharField(max_length=32)
    quantity = models.BigIntegerField(default=0)

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint(
                fields=["project", "day", "category", "reason"], name="unique_ingest_outcome"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.category}/{self.reason}: {self.quantity}"


class IssueGroup(models.Model):
    """A fingerprint seen in a project's events; its first release counts it in newGroups."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    fingerprint = models.CharField(max_length=40, help_text="SHA-1 of the grouping values.")
    title = models.CharField(max_length=200, blank=True)
    first_release = models.ForeignKey(
        Release, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    first_seen = models.DateTimeField()

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint(fields=["project", "fingerprint"], name="unique_issue_group"),
        ]

    def __str__(self) -> str:
        return self.title or self.fingerprint


class AdoptionTick(models.Model):
    """When adoption stages were last refreshed for an organization (the throttle)."""

    organization = models.OneToOneField(
        Organization, on_delete=models.CASCADE, related_name="+", primary_key=True
    )
    last_run = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.organization_id} @ {self.last_run}"
