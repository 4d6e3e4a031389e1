"""Admin for projects, repositories, commits, deploys and, above all, editing releases."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.contrib import admin, messages
from django.db.models import OuterRef, QuerySet, Subquery
from django.http import HttpRequest
from django.utils.formats import date_format
from django.utils.timezone import localtime

from releases.models import (
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
from releases.services import release_refresh_commits, release_refresh_deploys

ADMIN_CSS = {"all": ("releases/admin.css",)}


def short_date(value: datetime | None) -> str:
    """``2026-11-30 09:12`` in the current time zone (UTC here), or ``-``."""
    return date_format(localtime(value), "Y-m-d H:i") if value else "-"


class ProjectKeyInline(admin.TabularInline):
    model = ProjectKey
    extra = 0
    fields = ("label", "public_key", "dsn", "is_active", "date_added")
    readonly_fields = ("public_key", "dsn", "date_added")


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    # An explicit order: autocomplete pages through these (and Django warns otherwise).
    ordering = ("organization__slug", "slug")
    inlines = (ProjectKeyInline,)
    list_display = ("slug", "name", "organization", "platform", "date_added")
    list_select_related = ("organization",)
    list_filter = ("organization", "platform")
    search_fields = ("slug", "name")
    autocomplete_fields = ("organization", "teams")

    class Media:
        css = ADMIN_CSS


@admin.register(Environment)
class EnvironmentAdmin(admin.ModelAdmin):
    ordering = ("name", "id")
    list_display = ("name", "organization", "date_added")
    list_select_related = ("organization",)
    list_filter = ("organization",)
    search_fields = ("name",)
    autocomplete_fields = ("organization",)


@admin.register(Repository)
class RepositoryAdmin(admin.ModelAdmin):
    ordering = ("name", "id")
    list_display = ("name", "organization", "provider", "status", "url", "date_added")
    list_select_related = ("organization",)
    list_filter = ("organization", "provider", "status")
    search_fields = ("name", "external_slug")
    autocomplete_fields = ("organization",)


@admin.register(CommitAuthor)
class CommitAuthorAdmin(admin.ModelAdmin):
    ordering = ("name", "id")
    list_display = ("name", "email", "organization")
    list_select_related = ("organization",)
    search_fields = ("name", "email")
    autocomplete_fields = ("organization",)


@admin.register(Commit)
class CommitAdmin(admin.ModelAdmin):
    ordering = ("-date_added", "-id")
    list_display = ("key", "repository", "author", "date_added")
    list_select_related = ("repository", "author")
    search_fields = ("key", "message")
    autocomplete_fields = ("organization", "repository", "author")


@admin.register(PullRequest)
class PullRequestAdmin(admin.ModelAdmin):
    ordering = ("-date_added", "-id")
    list_display = ("key", "title", "repository", "status", "merge_commit_sha", "date_added")
    list_select_related = ("repository",)
    list_filter = ("status",)
    search_fields = ("key", "title", "merge_commit_sha")
    autocomplete_fields = ("organization", "repository", "author")


@admin.register(Deploy)
class DeployAdmin(admin.ModelAdmin):
    """Deploys edited one by one; the release's deploy count and last deploy follow."""

    list_display = ("__str__", "release", "environment", "date_started", "date_finished")
    list_select_related = ("release", "environment")
    ordering = ("-date_finished", "-id")
    search_fields = ("name", "release__version", "environment__name")
    autocomplete_fields = ("organization", "release", "environment")

    def save_model(self, request: HttpRequest, obj: Deploy, form: Any, change: bool) -> None:
        before = Deploy.objects.filter(pk=obj.pk).values_list("release_id", flat=True).first()
        super().save_model(request, obj, form, change)
        release_ids = {obj.release_id} if before is None else {obj.release_id, before}
        for release in Release.objects.filter(pk__in=release_ids):
            release_refresh_deploys(release=release)

    def delete_model(self, request: HttpRequest, obj: Deploy) -> None:
        super().delete_model(request, obj)
        release_refresh_deploys(release=obj.release)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Deploy]) -> None:
        release_ids = set(queryset.values_list("release_id", flat=True))
        super().delete_queryset(request, queryset)
        for release in Release.objects.filter(pk__in=release_ids):
            release_refresh_deploys(release=release)


@admin.register(ReleaseProjectEnvironment)
class ReleaseProjectEnvironmentAdmin(admin.ModelAdmin):
    list_display = ("release", "project", "environment", "first_seen", "last_seen", "adopted",
                    "unadopted", "new_issues_count")  # fmt: skip
    list_select_related = ("release", "project__organization", "environment")
    search_fields = ("release__version", "project__slug", "environment__name")
    autocomplete_fields = ("release", "project", "environment")


class ProjectListFilter(admin.RelatedFieldListFilter):
    """The release list's project filter, naming each project (``org/slug``) in one query."""

    def field_choices(self, field: Any, request: HttpRequest, model_admin: Any) -> list:
        projects = Project.objects.select_related("organization")
        return [(p.pk, str(p)) for p in projects.order_by("organization__slug", "slug")]


class ViewOnlyRowsMixin:
    """Saved rows are shown read-only (and can be deleted); new rows are edited as usual.

    A read-only row renders no autocomplete widget, each of which would cost a query: the
    release page stays at a fixed number of queries however many rows it has.
    """

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ReleaseProjectInline(ViewOnlyRowsMixin, admin.TabularInline):
    model = ReleaseProject
    extra = 0
    fields = ("project", "new_groups")
    autocomplete_fields = ("project",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[ReleaseProject]:
        # ``release`` too: the inline shows each row's ``str()``, which names the release.
        return super().get_queryset(request).select_related("release", "project__organization")


class ReleaseCommitInline(admin.TabularInline):
    """The release's commits as a readable list, newest first (order 0); rows can be removed.

    Rendered by its own template: short SHA, first line of the message, author, repository
    and the pull request merged as that commit. New commits go in ``ReleaseCommitAddInline``.
    """

    model = ReleaseCommit
    extra = 0
    fields = ("order",)
    readonly_fields = ("order",)
    ordering = ("order", "pk")
    template = "admin/releases/release/commit_list.html"
    verbose_name_plural = "commits"

    def get_queryset(self, request: HttpRequest) -> QuerySet[ReleaseCommit]:
        pull_requests = PullRequest.objects.filter(
            repository_id=OuterRef("commit__repository_id"),
            merge_commit_sha=OuterRef("commit__key"),
        ).order_by("-pk")
        return (
            super()
            .get_queryset(request)
            .select_related("commit__author", "commit__repository")
            .annotate(
                pull_request_id=Subquery(pull_requests.values("pk")[:1]),
                pull_request_key=Subquery(pull_requests.values("key")[:1]),
                pull_request_title=Subquery(pull_requests.values("title")[:1]),
            )
        )

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ReleaseCommitAddInline(admin.TabularInline):
    """Adds commits to the release (the list above shows the saved ones)."""

    model = ReleaseCommit
    extra = 0
    fields = ("commit", "order")
    autocomplete_fields = ("commit",)
    verbose_name = "commit"
    verbose_name_plural = "add commits"

    def get_queryset(self, request: HttpRequest) -> QuerySet[ReleaseCommit]:
        return super().get_queryset(request).none()

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ReleaseHeadCommitInline(ViewOnlyRowsMixin, admin.TabularInline):
    model = ReleaseHeadCommit
    extra = 0
    fields = ("repository", "commit", "previous_commit")
    autocomplete_fields = ("repository", "commit", "previous_commit")

    def get_queryset(self, request: HttpRequest) -> QuerySet[ReleaseHeadCommit]:
        return (
            super()
            .get_queryset(request)
            .select_related("release", "repository", "commit", "previous_commit")
        )


class DeployTimelineInline(admin.TabularInline):
    """The release's deploys, newest first, as a timeline; each links to its own page."""

    model = Deploy
    extra = 0
    fields = ("name",)
    readonly_fields = ("name",)
    ordering = ("-date_finished", "-pk")
    template = "admin/releases/release/deploy_timeline.html"
    verbose_name_plural = "deploys"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Deploy]:
        return super().get_queryset(request).select_related("environment")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class DeployAddInline(admin.StackedInline):
    """Records a deploy of the release (stacked: two date-time pickers do not fit a row)."""

    model = Deploy
    extra = 0
    fields = ("environment", "name", "url", "date_started", "date_finished")
    autocomplete_fields = ("environment",)
    verbose_name = "deploy"
    verbose_name_plural = "add deploys"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Deploy]:
        return super().get_queryset(request).none()

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Release)
class ReleaseAdmin(admin.ModelAdmin):
    # Short headers and dates: the columns fit a 1,280 px window beside the filters.
    list_display = ("version", "status_display", "organization", "project_list", "commits",
                    "deploys", "added", "released")  # fmt: skip
    list_select_related = ("organization",)
    list_filter = ("status", "organization", ("projects", ProjectListFilter))
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
        # The lists below show the commits and deploys; these are the stored counters.
        ("Commit and deploy counters", {"classes": ("collapse",),
                                        "fields": ("commit_count", "last_commit", "authors",
                                                   "total_deploys", "last_deploy")}),
        ("Parsed version and client", {"classes": ("collapse",),
                                       "fields": ("package", "major", "minor", "patch",
                                                  "revision", "prerelease", "build_code",
                                                  "build_number", "user_agent")}),
    )  # fmt: skip
    inlines = (ReleaseProjectInline, ReleaseCommitInline, ReleaseCommitAddInline,
               ReleaseHeadCommitInline, DeployTimelineInline, DeployAddInline)  # fmt: skip
    actions = ("archive", "restore")
    # The change page has a ``release_health`` block, empty for now (docs/admin.md).
    change_form_template = "admin/releases/release/change_form.html"

    class Media:
        css = ADMIN_CSS

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

    @admin.display(description="commits", ordering="commit_count")
    def commits(self, obj: Release) -> int | None:
        return obj.commit_count

    @admin.display(description="deploys", ordering="total_deploys")
    def deploys(self, obj: Release) -> int | None:
        return obj.total_deploys

    @admin.display(description="added", ordering="date_added")
    def added(self, obj: Release) -> str:
        return short_date(obj.date_added)

    @admin.display(description="released", ordering="date_released")
    def released(self, obj: Release) -> str:
        return short_date(obj.date_released)

    def formfield_for_dbfield(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        field = super().formfield_for_dbfield(db_field, request, **kwargs)
        if db_field.name == "data" and field is not None:
            field.widget.attrs["rows"] = 3  # usually {}: no need for ten lines
        return field

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
