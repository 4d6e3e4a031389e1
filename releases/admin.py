"""Admin for projects, repositories, commits, deploys and, above all, editing releases."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from .models import (
    Commit,
    CommitAuthor,
    Deploy,
    Environment,
    IngestOutcome,
    Project,
    ProjectKey,
    PullRequest,
    Release,
    ReleaseCommit,
    ReleaseHeadCommit,
    ReleaseProject,
    ReleaseProjectEnvironment,
    ReleaseStatus,
    Repository,
)
from .services import release_refresh_commits, release_refresh_deploys


class ProjectKeyInline(admin.TabularInline):
    model = ProjectKey
    extra = 0
    fields = ("label", "public_key", "dsn", "is_active", "date_added")
    readonly_fields = ("public_key", "dsn", "date_added")


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    inlines = (ProjectKeyInline,)
    list_display = ("slug", "name", "organization", "platform", "date_added")
    list_select_related = ("organization",)
    list_filter = ("organization", "platform")
    search_fields = ("slug", "name")
    autocomplete_fields = ("organization", "teams")


@admin.register(Environment)
class EnvironmentAdmin(admin.ModelAdmin):
    list_display = ("name", "organization", "date_added")
    list_select_related = ("organization",)
    list_filter = ("organization",)
    search_fields = ("name",)
    autocomplete_fields = ("organization",)


@admin.register(Repository)
class RepositoryAdmin(admin.ModelAdmin):
    list_display = ("name", "organization", "provider", "status", "url", "date_added")
    list_select_related = ("organization",)
    list_filter = ("organization", "provider", "status")
    search_fields = ("name", "external_slug")
    autocomplete_fields = ("organization",)


@admin.register(CommitAuthor)
class CommitAuthorAdmin(admin.ModelAdmin):
    list_display = ("name", "email", "organization")
    list_select_related = ("organization",)
    search_fields = ("name", "email")
    autocomplete_fields = ("organization",)


@admin.register(Commit)
class CommitAdmin(admin.ModelAdmin):
    list_display = ("key", "repository", "author", "date_added")
    list_select_related = ("repository", "author")
    search_fields = ("key", "message")
    autocomplete_fields = ("organization", "repository", "author")


@admin.register(PullRequest)
class PullRequestAdmin(admin.ModelAdmin):
    list_display = ("key", "title", "repository", "status", "merge_commit_sha", "date_added")
    list_select_related = ("repository",)
    list_filter = ("status",)
    search_fields = ("key", "title", "merge_commit_sha")
    autocomplete_fields = ("organization", "repository", "author")


@admin.register(Deploy)
class DeployAdmin(admin.ModelAdmin):
    list_display = ("__str__", "release", "environment", "date_started", "date_finished")
    list_select_related = ("release", "environment")
    search_fields = ("name", "release__version", "environment__name")
    autocomplete_fields = ("organization", "release", "environment")


@admin.register(ReleaseProjectEnvironment)
class ReleaseProjectEnvironmentAdmin(admin.ModelAdmin):
    list_display = ("release", "project", "environment", "first_seen", "last_seen", "adopted",
                    "unadopted", "new_issues_count")  # fmt: skip
    list_select_related = ("release", "project__organization", "environment")
    search_fields = ("release__version", "project__slug", "environment__name")
    autocomplete_fields = ("release", "project", "environment")


class ReleaseProjectInline(admin.TabularInline):
    model = ReleaseProject
    extra = 0
    autocomplete_fields = ("project",)


class ReleaseCommitInline(admin.TabularInline):
    model = ReleaseCommit
    extra = 0
    autocomplete_fields = ("commit",)
    ordering = ("order",)


class ReleaseHeadCommitInline(admin.TabularInline):
    model = ReleaseHeadCommit
    extra = 0
    autocomplete_fields = ("repository", "commit")


class DeployInline(admin.TabularInline):
    model = Deploy
    extra = 0
    fields = ("environment", "name", "url", "date_started", "date_finished")
    autocomplete_fields = ("environment",)


@admin.register(Release)
class ReleaseAdmin(admin.ModelAdmin):
    list_display = ("version", "status_display", "organization", "project_list", "commit_count",
                    "total_deploys", "date_added", "date_released")  # fmt: skip
    list_select_related = ("organization",)
    list_filter = ("status", "organization", "projects")
    search_fields = ("version",)
    date_hierarchy = "date_added"
    ordering = ("-date_added", "-id")
    autocomplete_fields = ("organization", "owner", "last_commit", "last_deploy")
    readonly_fields = ("user_agent", "commit_count", "total_deploys", "authors", "package",
                       "major", "minor", "patch", "revision", "prerelease", "build_code",
                       "build_number")  # fmt: skip
    fieldsets = (
        (None, {"fields": ("organization", "version", "status", "ref", "url", "owner", "data")}),
        ("Dates", {"fields": ("date_added", "date_started", "date_released")}),
        ("Commits and deploys", {"fields": ("commit_count", "last_commit", "authors",
                                            "total_deploys", "last_deploy")}),
        ("Parsed version", {"classes": ("collapse",),
                            "fields": ("package", "major", "minor", "patch", "revision",
                                       "prerelease", "build_code", "build_number")}),
        ("Client", {"fields": ("user_agent",)}),
    )  # fmt: skip
    inlines = (ReleaseProjectInline, ReleaseCommitInline, ReleaseHeadCommitInline, DeployInline)
    actions = ("archive", "restore")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Release]:
        return super().get_queryset(request).prefetch_related("projects")

    def get_readonly_fields(self, request: HttpRequest, obj: Release | None = None) -> tuple:
        # The version and organization identify a release; they are set once, on creation.
        base = tuple(self.readonly_fields)
        return (*base, "organization", "version") if obj else base

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        # Deploys added inline belong to the release's organization.
        for instance in formset.save(commit=False):
            if isinstance(instance, Deploy):
                instance.organization_id = form.instance.organization_id
            instance.save()
        for instance in formset.deleted_objects:
            instance.delete()
        formset.save_m2m()

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        # Commits and deploys edited inline: keep the stored counters and pointers in step.
        release_refresh_commits(release=form.instance)
        release_refresh_deploys(release=form.instance)

    @admin.display(description="status", ordering="status")
    def status_display(self, obj: Release) -> str:
        return obj.status_name

    @admin.display(description="projects")
    def project_list(self, obj: Release) -> str:
        return ", ".join(sorted(p.slug for p in obj.projects.all()))

    @admin.action(description="Archive selected releases")
    def archive(self, request: HttpRequest, queryset: QuerySet[Release]) -> None:
        count = queryset.update(status=ReleaseStatus.ARCHIVED)
        self.message_user(request, f"Archived {count} release(s).", messages.SUCCESS)

    @admin.action(description="Restore selected releases")
    def restore(self, request: HttpRequest, queryset: QuerySet[Release]) -> None:
        count = queryset.update(status=ReleaseStatus.OPEN)
        self.message_user(request, f"Restored {count} release(s).", messages.SUCCESS)


@admin.register(ProjectKey)
class ProjectKeyAdmin(admin.ModelAdmin):
    """Client keys: the DSN to give an SDK; untick "active" to revoke a key."""

    list_display = ("public_key", "project", "label", "is_active", "dsn", "date_added")
    list_select_related = ("project__organization",)
    list_filter = ("is_active",)
    search_fields = ("public_key", "project__slug", "label")
    autocomplete_fields = ("project",)
    readonly_fields = ("public_key", "secret_key", "dsn")


@admin.register(IngestOutcome)
class IngestOutcomeAdmin(admin.ModelAdmin):
    """What the envelope endpoint dropped, and why (too old, in the future, bad release...)."""

    list_display = ("day", "project", "category", "reason", "quantity")
    list_select_related = ("project__organization",)
    list_filter = ("category", "reason", "day")
    search_fields = ("project__slug",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
