"""Admin for projects, repositories, commits, deploys and, above all, editing releases."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Exists, F, OrderBy, OuterRef, Prefetch, Q, QuerySet, Subquery
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html
from django.utils.timezone import localtime

from releases.health.dashboard import (
    AdoptionRow,
    adoption_rows,
    main_environments,
    outcome_buckets,
)
from releases.health.reads import HealthQuery, ReleaseHealth, health_data
from releases.health.sorts import STAGES, adoption_sort_value, health_sort_value, stage_filter
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
from releases.templatetags.release_health import compact, percent, rate, stage_badge

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
    # Adds a "Compare releases" link to the project's page.
    change_form_template = "admin/releases/project/change_form.html"
    releases_per_page = 25

    class Media:
        css = ADMIN_CSS

    def get_urls(self) -> list:
        # Before the default URLs: their ``<path:object_id>/`` would take ``5/releases/``.
        view = self.admin_site.admin_view(self.releases_view)
        return [
            path("<int:object_id>/releases/", view, name="releases_project_releases"),
            *super().get_urls(),
        ]

    def releases_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        """The project's releases, newest first, with their health, a sparkline of sessions
        per day and the change in crash-free sessions from the release before (docs/admin.md).

        A fixed number of queries per page: the page (with one release more, the one before
        the last shown), then the health of the whole page at once.
        """
        project = get_object_or_404(Project.objects.select_related("organization"), pk=object_id)
        if not self.has_view_permission(request, project):
            raise PermissionDenied
        now = timezone.now()
        releases = Release.objects.filter(release_projects__project=project).order_by(
            "-date_added", "-id"
        )
        page = Paginator(releases, self.releases_per_page).get_page(request.GET.get("page"))
        offset = (page.number - 1) * self.releases_per_page
        fetched = list(releases[offset : offset + self.releases_per_page + 1])
        pairs = [(project.pk, release.pk) for release in fetched]
        health = health_data(
            pairs, HealthQuery(summary_period=SUMMARY_PERIOD, stats_period="14d"), now
        )
        main = main_environments([project.pk], now).get(project.pk)
        adoption = adoption_rows(pairs)
        rows = []
        for index, release in enumerate(fetched[: self.releases_per_page]):
            mine = health[(project.pk, release.pk)]
            before = fetched[index + 1] if index + 1 < len(fetched) else None
            previous = health[(project.pk, before.pk)] if before else None
            change = None
            if (
                previous
                and mine.crash_free_sessions is not None
                and previous.crash_free_sessions is not None
            ):
                change = mine.crash_free_sessions - previous.crash_free_sessions
            rows.append(
                {
                    "release": release,
                    "health": mine,
                    "stage": stage_in(adoption.get((project.pk, release.pk), []), main),
                    "sessions": [value for _, value in mine.series],
                    "change": change,
                    "before": before,
                }
            )
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": f"Releases of {project.organization.slug}/{project.slug}",
            "project": project,
            "main_environment": main,
            "rows": rows,
            "page": page,
            "summary_period": SUMMARY_PERIOD,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/releases/project/releases.html", context)


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


#: The health numbers' window on the release list and the compare page (the API's default).
SUMMARY_PERIOD = "14d"
#: The release list's project filter (``projects`` as a related-field filter).
PROJECT_PARAM = "projects__id__exact"
ENVIRONMENT_PARAM = "environment"
HEALTH_PERIODS = ("24h", "7d", "14d", "30d", "90d")


def selected_id(request: HttpRequest, name: str) -> int | None:
    """A filter's id from the query string; None when absent or not a number."""
    value = request.GET.get(name, "")
    return int(value) if value.isdigit() else None


def stage_in(rows: list[AdoptionRow], environment: Any) -> str | None:
    """The stage in ``environment`` (a MainEnvironment or an Environment), if it has a row."""
    if environment is None:
        return None
    return next((row.stage for row in rows if row.environment_id == environment.id), None)


@dataclass
class HealthRow:
    """What the release list shows of one release: the health of one of its projects."""

    project: Project | None
    others: list[Project]
    health: ReleaseHealth | None
    stage: str | None


class NullsLast(OrderBy):
    """A list column's ordering that keeps rows without data last both ways: the admin
    reverses an ``OrderBy`` for the second click, which would put them first."""

    def __init__(self, name: str, *, descending: bool) -> None:
        super().__init__(F(name), descending=descending, nulls_last=True)

    def reverse_ordering(self) -> NullsLast:
        self.descending = not self.descending
        return self


class EnvironmentListFilter(admin.SimpleListFilter):
    """Releases seen in an environment; the health columns then count that environment only."""

    title = "environment"
    parameter_name = ENVIRONMENT_PARAM

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        environments = list(
            Environment.objects.select_related("organization").order_by("name", "id")
        )
        organizations = {e.organization_id for e in environments}
        return [
            (str(e.pk), e.name if len(organizations) == 1 else f"{e.name} ({e.organization.slug})")
            for e in environments
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Release]) -> QuerySet[Release]:
        if self.value() is None:
            return queryset
        if not str(self.value()).isdigit():
            raise admin.options.IncorrectLookupParameters(self.value())
        seen = ReleaseProjectEnvironment.objects.filter(
            release_id=OuterRef("pk"), environment_id=int(str(self.value()))
        )
        return queryset.filter(Exists(seen))


class StageListFilter(admin.SimpleListFilter):
    """Releases in an adoption stage: in the chosen environment, else in the main environment
    of each of their projects (docs/admin.md)."""

    title = "adoption stage"
    parameter_name = "stage"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("adopted", "Adopted"), ("low_adoption", "Low adoption"), ("replaced", "Replaced")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Release]) -> QuerySet[Release]:
        stage = self.value()
        if stage is None:
            return queryset
        if stage not in STAGES:
            raise admin.options.IncorrectLookupParameters(stage)
        project = selected_id(request, PROJECT_PARAM)
        project_ids = [project] if project else list(Project.objects.values_list("pk", flat=True))
        environment = selected_id(request, ENVIRONMENT_PARAM)
        if environment is not None:
            by_environment = {environment: project_ids}
        else:
            by_environment = {}
            for project_id, main in main_environments(project_ids, timezone.now()).items():
                by_environment.setdefault(main.id, []).append(project_id)
        matches = Q(pk__in=[])
        for environment_id, projects in by_environment.items():
            matches |= Q(stage_filter([stage], environment_id=environment_id, project_ids=projects))
        return queryset.filter(matches)


class ReleaseChangeList(ChangeList):
    """The release list; the health of the whole page is read at once, after paginating."""

    def get_results(self, request: HttpRequest) -> None:
        super().get_results(request)
        release_admin: Any = self.model_admin
        release_admin.attach_health(request, self.result_list)


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


class HealthForm(forms.Form):
    """The release page's health section: which project, environment and period."""

    project = forms.TypedChoiceField(coerce=int, required=False, empty_value=None)
    environment = forms.TypedChoiceField(coerce=int, required=False, empty_value=None)
    period = forms.ChoiceField(
        choices=[(p, p) for p in HEALTH_PERIODS], initial="7d", required=False
    )
    prefix = "health"

    def __init__(self, *args: Any, projects: list[Project], environments: list[Environment],
                 **kwargs: Any) -> None:  # fmt: skip
        super().__init__(*args, **kwargs)
        project_field: Any = self.fields["project"]
        environment_field: Any = self.fields["environment"]
        project_field.choices = [(p.pk, p.slug) for p in projects]
        environment_field.choices = [("", "all environments")] + [
            (e.pk, e.name or "(no name)") for e in environments
        ]


def release_health_context(request: HttpRequest, release: Release) -> dict[str, Any]:
    """The release page's health section for the project, environment and period chosen in
    the query string (``health-project``, ``health-environment``, ``health-period``).

    Eight queries whatever the data: the environments, ``health_data`` (four, no series),
    the chart's buckets, the adoption rows and the deploys.
    """
    projects = sorted(release.projects.all(), key=lambda p: p.slug)
    if not projects:
        return {"projects": []}
    environments = list(
        Environment.objects.filter(organization_id=release.organization_id).order_by("name")
    )
    form = HealthForm(
        request.GET if any(k.startswith("health-") for k in request.GET) else None,
        projects=projects,
        environments=environments,
    )
    choice = form.cleaned_data if form.is_valid() else {}
    project = next((p for p in projects if p.pk == choice.get("project")), projects[0])
    environment = next((e for e in environments if e.pk == choice.get("environment")), None)
    period = choice.get("period") or "7d"
    environment_ids = (environment.pk,) if environment else None
    now = timezone.now()
    pair = (project.pk, release.pk)
    health = health_data(
        [pair],
        HealthQuery(summary_period=period, stats_period=None, environment_ids=environment_ids),
        now,
    )[pair]
    buckets = outcome_buckets(
        project.pk, release.pk, period=period, now=now, environment_ids=environment_ids
    )
    deploys = Deploy.objects.filter(release=release).select_related("environment")
    if environment is not None:
        deploys = deploys.filter(environment=environment)
    where = f" in {environment.name}" if environment else ""
    unit = "hour" if period == "24h" else "day" if period != "90d" else "3 days"
    return {
        "projects": projects,
        "form": form
        if form.is_bound
        else HealthForm(
            projects=projects, environments=environments, initial={"project": project.pk}
        ),
        "project": project,
        "environment": environment,
        "period": period,
        "health": health,
        "buckets": buckets,
        "has_sessions": any(bucket.sessions for bucket in buckets),
        "hourly": period == "24h",
        "chart_title": f"Sessions of {release.version} in {project.slug}{where}, per {unit}, "
        f"last {period}, by outcome",
        "deploys": list(deploys.order_by("date_finished", "pk")),
        "adoption": adoption_rows([pair]).get(pair, []),
        "compare_url": reverse("admin:releases_project_releases", args=[project.pk]),
    }


@admin.register(Release)
class ReleaseAdmin(admin.ModelAdmin):
    # Short headers and dates: the columns fit a 1,280 px window beside the filters.
    # The organization is a filter rather than a column, commits and release dates are on
    # the release's page: the health columns need the room.
    list_display = ("version", "status_display", "project_list", "crash_free_sessions",
                    "crash_free_users", "sessions_24h", "adoption_24h", "stage", "deploys",
                    "added")  # fmt: skip
    list_select_related = ("organization",)
    list_filter = ("status", "organization", ("projects", ProjectListFilter),
                   EnvironmentListFilter, StageListFilter)  # fmt: skip
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
        # Projects with their organizations: a project's name (``org/slug``) costs no query.
        projects = Prefetch("projects", queryset=Project.objects.select_related("organization"))
        queryset = super().get_queryset(request).prefetch_related(projects)
        # What the health columns sort by: the API's sort values (``sorts.py``), for the
        # project whose health the row shows. Aliases: computed only when ordered by.
        project = selected_id(request, PROJECT_PARAM)
        environment = selected_id(request, ENVIRONMENT_PARAM)
        environments = [environment] if environment is not None else None
        if project is None:
            first_project = ReleaseProject.objects.filter(release_id=OuterRef("pk"))
            queryset = queryset.alias(
                health_project_id=Subquery(
                    first_project.order_by("project_id").values("project_id")[:1]
                )
            )
        now = timezone.now()

        def value(sort: str) -> Subquery:
            return health_sort_value(
                sort,
                now=now,
                summary_period=SUMMARY_PERIOD,
                project=project if project is not None else "health_project_id",
                release="pk",
                environment_ids=environments,
            )

        adopted = (
            adoption_sort_value(project_ids=[project], environment_ids=environments)
            if project is not None
            else adoption_sort_value(project="health_project_id", environment_ids=environments)
        )
        return queryset.alias(
            health_crash_rate=value("crash_free_sessions"),
            health_user_crash_rate=value("crash_free_users"),
            health_sessions_24h=value("sessions_24h"),
            health_adopted=adopted,
        )

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return ReleaseChangeList

    def attach_health(self, request: HttpRequest, releases: Any) -> None:
        """Gives each release of the page its ``health_row``: the health of the filtered
        project, or of its first project (lowest id), in the filtered environment or all of
        them, and its stage in that environment or the project's main one. Six queries
        (``health_data``'s four without a series, main environments, adoption rows)."""
        now = timezone.now()
        project = selected_id(request, PROJECT_PARAM)
        environment = selected_id(request, ENVIRONMENT_PARAM)
        chosen: dict[int, tuple[Project | None, list[Project]]] = {}
        for release in releases:
            projects = sorted(release.projects.all(), key=lambda p: p.pk)
            mine = next((p for p in projects if p.pk == project), projects[0] if projects else None)
            chosen[release.pk] = (mine, sorted((p for p in projects if p is not mine),
                                               key=lambda p: p.slug))  # fmt: skip
        pairs = [(mine.pk, pk) for pk, (mine, _) in chosen.items() if mine is not None]
        health = health_data(
            pairs,
            HealthQuery(
                summary_period=SUMMARY_PERIOD,
                stats_period=None,
                environment_ids=(environment,) if environment is not None else None,
            ),
            now,
        )
        if environment is not None:
            mains: dict[int, Any] = {p: Environment(pk=environment) for p, _ in pairs}
        else:
            mains = dict(main_environments({p for p, _ in pairs}, now))
        adoption = adoption_rows(pairs)
        for release in releases:
            mine, others = chosen[release.pk]
            row = HealthRow(project=mine, others=others, health=None, stage=None)
            if mine is not None:
                pair = (mine.pk, release.pk)
                row.health = health.get(pair)
                row.stage = stage_in(adoption.get(pair, []), mains.get(mine.pk))
            release.health_row = row

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: Release | None = None,
    ) -> HttpResponse:
        if obj is not None and obj.pk:
            context["release_health"] = release_health_context(request, obj)
        return super().render_change_form(request, context, add, change, form_url, obj)

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

    @admin.display(description="project")
    def project_list(self, obj: Release) -> str:
        row: HealthRow = obj.health_row  # type: ignore[attr-defined]
        if row.project is None:
            return "-"
        url = reverse("admin:releases_project_releases", args=[row.project.pk])
        more = (
            format_html(
                ' <span class="more-projects" title="{}">+{}</span>',
                ", ".join(p.slug for p in row.others),
                len(row.others),
            )
            if row.others
            else ""
        )
        return format_html(
            '<a href="{}" title="Compare the releases of {}">{}</a>{}',
            url,
            row.project,
            row.project.slug,
            more,
        )

    @admin.display(
        description="crash-free sessions",
        ordering=NullsLast("health_crash_rate", descending=True),
    )
    def crash_free_sessions(self, obj: Release) -> str:
        health = obj.health_row.health  # type: ignore[attr-defined]
        return rate(health.crash_free_sessions if health else None)

    @admin.display(
        description="crash-free users",
        ordering=NullsLast("health_user_crash_rate", descending=True),
    )
    def crash_free_users(self, obj: Release) -> str:
        health = obj.health_row.health  # type: ignore[attr-defined]
        return rate(health.crash_free_users if health else None)

    @admin.display(
        description="sessions (24 h)",
        ordering=NullsLast("health_sessions_24h", descending=True),
    )
    def sessions_24h(self, obj: Release) -> str:
        health = obj.health_row.health  # type: ignore[attr-defined]
        return compact(health.total_sessions_24h if health else None)

    @admin.display(description="adoption (24 h)")
    def adoption_24h(self, obj: Release) -> str:
        health = obj.health_row.health  # type: ignore[attr-defined]
        return percent(health.sessions_adoption if health else None)

    @admin.display(description="stage", ordering=NullsLast("health_adopted", descending=True))
    def stage(self, obj: Release) -> str:
        return stage_badge(obj.health_row.stage)  # type: ignore[attr-defined]

    @admin.display(description="deploys", ordering="total_deploys")
    def deploys(self, obj: Release) -> int | None:
        return obj.total_deploys

    @admin.display(description="added", ordering="date_added")
    def added(self, obj: Release) -> str:
        return short_date(obj.date_added)

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
