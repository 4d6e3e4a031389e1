"""Projects, repositories, commits, releases, deploys and their links."""

from __future__ import annotations

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


class CommitFileChange(models.Model):
    """A file a commit added, deleted or modified (the ``patch_set`` of ``set-commits``), as
    Sentry's ``CommitFileChange``."""

    class Type(models.TextChoices):
        ADDED = "A"
        DELETED = "D"
        MODIFIED = "M"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    commit = models.ForeignKey(Commit, on_delete=models.CASCADE, related_name="file_changes")
    filename = models.TextField()
    type = models.CharField(max_length=1, choices=Type.choices)

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint(fields=["commit", "filename"], name="unique_commit_file"),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.filename}"


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


class ChangeStamp(models.Model):
    """A number that every write to an organization's release data raises (``stamps.py``).

    Release answers are cached and tagged under it (docs/performance.md §5): a new value makes
    every earlier answer of the organization stale.
    """

    organization = models.OneToOneField(
        Organization, on_delete=models.CASCADE, primary_key=True, related_name="+"
    )
    value = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.organization_id}: {self.value}"
