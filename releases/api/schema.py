"""The API's OpenAPI description (drf-spectacular): components, per-operation annotations and
the views that serve it at ``/api/0/schema/`` and ``/api/docs/`` (docs/api.md, "Schema").

Kept apart from the views: each view gets its description through an ``OpenApiViewExtension``
registered here, and the answers built as dicts (``serializers.py``, ``organizations.py``,
``sessions.py``) are described by the documentation-only serializers below, field for field.
``tests/test_openapi.py`` checks real answers of every route against the result, so a change
of shape that is not mirrored here fails the suite.
"""

from __future__ import annotations

from typing import Any, Literal

from drf_spectacular.extensions import OpenApiAuthenticationExtension, OpenApiViewExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
)
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework import serializers
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.settings import api_settings

from accounts.views import ApiRootView

from ..health.envelope import EnvelopeView
from ..health.periods import STATS_PERIODS
from ..health.series import DIMENSIONS, FIELDS, STATUS
from ..models import Repository
from .commits import (
    PreviousReleaseWithCommitsView,
    ProjectPreviousReleaseWithCommitsView,
    ProjectReleaseCommitsView,
    ReleaseCommitsView,
)
from .deploys import ProjectReleaseDeploysView, ReleaseDeploysView
from .inputs import (
    DeployCreateSerializer,
    ProjectReleaseCreateSerializer,
    ReleaseCreateSerializer,
    ReleaseUpdateSerializer,
    RepositoryCreateSerializer,
)
from .organizations import (
    OrganizationDetailsEndpoint,
    OrganizationIndexEndpoint,
    OrganizationProjectsEndpoint,
    ProjectIndexEndpoint,
)
from .pagination import MAX_PER_PAGE
from .params import DETAILS_SORTS, HEALTH_STATS, LIST_SORTS
from .releases import ProjectReleaseViewSet, ReleaseViewSet
from .repositories import RepositoriesView
from .sessions import MAX_GROUPS, OrganizationSessionsEndpoint

REF = "#/components/schemas/"
STATS_PERIOD_NAMES = list(STATS_PERIODS)


def _text(**kwargs: Any) -> serializers.CharField:
    return serializers.CharField(**kwargs)


def _nullable_text() -> serializers.CharField:
    return serializers.CharField(allow_null=True)


def _moment(**kwargs: Any) -> serializers.DateTimeField:
    return serializers.DateTimeField(**kwargs)


# -- components: the objects we answer with ----------------------------------------------------


class UserEmailSerializer(serializers.Serializer):
    id = _text()
    email = _text()
    is_verified = serializers.BooleanField()


class AvatarSerializer(serializers.Serializer):
    avatarType = _text()
    avatarUuid = _nullable_text()
    avatarUrl = _nullable_text()


class UserSerializer(serializers.Serializer):
    """Sentry's user object (``serialize_user``); ``emails`` only for the user themself and
    for superusers, else empty."""

    id = _text()
    name = _text()
    username = _text()
    email = _text()
    avatarUrl = _text()
    isActive = serializers.BooleanField()
    isSuspended = serializers.BooleanField()
    hasPasswordAuth = serializers.BooleanField()
    isManaged = serializers.BooleanField()
    dateJoined = _moment()
    lastLogin = _moment(allow_null=True)
    has2fa = serializers.BooleanField()
    lastActive = _moment(allow_null=True)
    isSuperuser = serializers.BooleanField()
    isStaff = serializers.BooleanField()
    experiments = serializers.DictField()
    emails = UserEmailSerializer(many=True)
    avatar = AvatarSerializer()


class ProviderSerializer(serializers.Serializer):
    id = _text()
    name = _text()


class RepositorySerializer(serializers.Serializer):
    """A repository (``serialize_repository``)."""

    id = _text()
    name = _text()
    url = _nullable_text()
    provider = ProviderSerializer()
    status = serializers.ChoiceField(choices=Repository.Status.values)
    dateCreated = _moment()
    integrationId = _nullable_text()
    externalSlug = _nullable_text()
    externalId = _nullable_text()


class DeploySerializer(serializers.Serializer):
    """A deploy (``serialize_deploy``)."""

    id = _text()
    environment = _nullable_text()
    dateStarted = _moment(allow_null=True)
    dateFinished = _moment()
    name = _nullable_text()
    url = _nullable_text()


@extend_schema_field({"$ref": f"{REF}CommitAuthor"})
class CommitAuthorField(serializers.JSONField):
    """A member's user object, ``{name, email}`` for anyone else, ``{}`` without an author."""


@extend_schema_field({"$ref": f"{REF}RepositoryOrEmpty"})
class RepositoryOrEmptyField(serializers.JSONField):
    """A repository, or ``{}`` for none."""


class ReleaseSummarySerializer(serializers.Serializer):
    """A release as listed under a commit."""

    version = _text()
    shortVersion = _text()
    ref = _nullable_text()
    url = _nullable_text()
    dateReleased = _moment(allow_null=True)
    dateCreated = _moment()


class PullRequestSerializer(serializers.Serializer):
    id = _text()
    title = _nullable_text()
    message = _nullable_text()
    dateCreated = _moment()
    mergedAt = _moment(allow_null=True)
    status = _nullable_text()
    repository = RepositoryOrEmptyField()
    author = CommitAuthorField()
    externalUrl = _nullable_text()


class CommitSerializer(serializers.Serializer):
    """A commit with the releases that contain it (``serialize_commits``)."""

    id = _text()
    message = _nullable_text()
    dateCreated = _moment()
    pullRequest = PullRequestSerializer(allow_null=True)
    suspectCommitType = _text(allow_blank=True)
    repository = RepositoryOrEmptyField()
    author = CommitAuthorField()
    releases = ReleaseSummarySerializer(many=True)


class VersionPartsSerializer(serializers.Serializer):
    """The parsed parts exist only when the version parses as a semantic version."""

    raw = _text()
    major = serializers.IntegerField(required=False)
    minor = serializers.IntegerField(required=False)
    patch = serializers.IntegerField(required=False)
    pre = serializers.CharField(required=False, allow_null=True)
    buildCode = serializers.CharField(required=False, allow_null=True)
    components = serializers.IntegerField(required=False)


class VersionInfoSerializer(serializers.Serializer):
    package = _nullable_text()
    version = VersionPartsSerializer()
    description = _text()
    buildHash = _nullable_text()


@extend_schema_field(
    {
        "type": "object",
        "description": "One series per stats period (the ``healthStatsPeriod``): "
        "``[bucket start (Unix seconds), count]`` pairs, oldest first; ``{}`` without one.",
        "additionalProperties": {
            "type": "array",
            "items": {
                "type": "array",
                "items": {"type": "integer"},
                "minItems": 2,
                "maxItems": 2,
            },
        },
    }
)
class HealthStatsField(serializers.JSONField):
    pass


class HealthDataSerializer(serializers.Serializer):
    """``healthData`` (docs/health.md): null numbers where there are no sessions."""

    durationP50 = serializers.FloatField(allow_null=True)
    durationP90 = serializers.FloatField(allow_null=True)
    crashFreeUsers = serializers.FloatField(allow_null=True)
    crashFreeSessions = serializers.FloatField(allow_null=True)
    sessionsCrashed = serializers.IntegerField()
    sessionsErrored = serializers.IntegerField()
    totalUsers = serializers.IntegerField(allow_null=True)
    totalUsers24h = serializers.IntegerField(allow_null=True)
    totalProjectUsers24h = serializers.IntegerField(allow_null=True)
    totalSessions = serializers.IntegerField(allow_null=True)
    totalSessions24h = serializers.IntegerField(allow_null=True)
    totalProjectSessions24h = serializers.IntegerField(allow_null=True)
    adoption = serializers.FloatField(allow_null=True)
    sessionsAdoption = serializers.FloatField(allow_null=True)
    stats = HealthStatsField()
    hasHealthData = serializers.BooleanField()


class ReleaseProjectSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    slug = _text()
    name = _text()
    newGroups = serializers.IntegerField(allow_null=True)
    platform = _nullable_text()
    platforms = serializers.ListField(child=_text())
    hasHealthData = serializers.BooleanField()
    healthData = HealthDataSerializer(required=False, help_text="With ``health=1`` only.")


class CurrentProjectMetaSerializer(serializers.Serializer):
    """``{}`` unless the details endpoint is given a ``project``."""

    nextReleaseVersion = serializers.CharField(required=False, allow_null=True)
    prevReleaseVersion = serializers.CharField(required=False, allow_null=True)
    firstReleaseVersion = serializers.CharField(required=False, allow_null=True)
    lastReleaseVersion = serializers.CharField(required=False, allow_null=True)
    sessionsLowerBound = serializers.DateTimeField(required=False, allow_null=True)
    sessionsUpperBound = serializers.DateTimeField(required=False, allow_null=True)


class AdoptionStageSerializer(serializers.Serializer):
    stage = serializers.ChoiceField(choices=["not_adopted", "low_adoption", "adopted", "replaced"])
    adopted = _moment(allow_null=True)
    unadopted = _moment(allow_null=True)


class ReleaseSerializer(serializers.Serializer):
    """Sentry's release object (docs/api.md §2)."""

    id = serializers.IntegerField()
    version = _text()
    status = serializers.ChoiceField(choices=["open", "archived"])
    shortVersion = _text()
    versionInfo = VersionInfoSerializer(allow_null=True)
    ref = _nullable_text()
    url = _nullable_text()
    dateReleased = _moment(allow_null=True)
    dateCreated = _moment()
    # A field named like Serializer.data: the metaclass moves it into _declared_fields.
    data = serializers.DictField()  # type: ignore[assignment]
    newGroups = serializers.IntegerField()
    owner = UserSerializer(allow_null=True)
    commitCount = serializers.IntegerField()
    lastCommit = CommitSerializer(allow_null=True)
    deployCount = serializers.IntegerField()
    lastDeploy = DeploySerializer(allow_null=True)
    authors = serializers.ListField(child=CommitAuthorField())
    projects = ReleaseProjectSerializer(many=True)
    firstEvent = _moment(allow_null=True)
    lastEvent = _moment(allow_null=True)
    currentProjectMeta = CurrentProjectMetaSerializer()
    userAgent = _nullable_text()
    adoptionStages = serializers.DictField(
        child=AdoptionStageSerializer(),
        required=False,
        allow_null=True,
        help_text="With ``adoptionStages=1`` only: per project slug; null when the release "
        "was never seen in an environment.",
    )


class OrganizationStatusSerializer(serializers.Serializer):
    id = _text()
    name = _text()


class OrganizationLinksSerializer(serializers.Serializer):
    organizationUrl = _text()
    regionUrl = _text()


class OrganizationSerializer(serializers.Serializer):
    """Sentry's organization summary."""

    id = _text()
    slug = _text()
    status = OrganizationStatusSerializer()
    name = _text()
    dateCreated = _moment()
    isEarlyAdopter = serializers.BooleanField()
    require2FA = serializers.BooleanField()
    avatar = AvatarSerializer()
    links = OrganizationLinksSerializer()
    hasAuthProvider = serializers.BooleanField()
    allowMemberInvite = serializers.BooleanField()
    allowMemberProjectCreation = serializers.BooleanField()
    allowSuperuserAccess = serializers.BooleanField()
    features = serializers.ListField(child=_text())


class OrganizationDetailsSerializer(OrganizationSerializer):
    """The organization with the caller's scopes in it."""

    access = serializers.ListField(child=_text())
    openMembership = serializers.BooleanField()
    onboardingTasks = serializers.ListField(child=serializers.DictField())
    extraOptions = serializers.DictField()


class TeamSummarySerializer(serializers.Serializer):
    id = _text()
    name = _text()
    slug = _text()


class LatestReleaseSerializer(serializers.Serializer):
    version = _text()


_PROJECT_FLAGS = (
    "isBookmarked",
    "isMember",
    "firstTransactionEvent",
    "hasAccess",
    "hasFeedbacks",
    "hasFlags",
    "hasMinifiedStackTrace",
    "hasMonitors",
    "hasNewFeedbacks",
    "hasProfiles",
    "hasReplays",
    "hasSessions",
    "hasInsightsHttp",
    "hasInsightsDb",
    "hasInsightsAssets",
    "hasInsightsAppStart",
    "hasInsightsScreenLoad",
    "hasInsightsVitals",
    "hasInsightsCaches",
    "hasInsightsQueues",
    "hasInsightsAgentMonitoring",
    "hasInsightsMCP",
    "hasLogs",
    "hasTraceMetrics",
    "hasUserReports",
)


class ProjectSummarySerializer(serializers.Serializer):
    """Sentry's project summary (``serialize_project``)."""

    id = _text()
    slug = _text()
    name = _text()
    platform = _nullable_text()
    dateCreated = _moment()
    features = serializers.ListField(child=_text())
    firstEvent = _moment(allow_null=True)
    access = serializers.ListField(child=_text())
    team = TeamSummarySerializer(allow_null=True)
    teams = TeamSummarySerializer(many=True)
    platforms = serializers.ListField(child=_text())
    environments = serializers.ListField(child=_text())
    latestRelease = LatestReleaseSerializer(allow_null=True)
    latestDeploys = serializers.DictField(allow_null=True)

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        fields.update({name: serializers.BooleanField() for name in _PROJECT_FLAGS})
        return fields


class ProjectWithOrganizationSerializer(ProjectSummarySerializer):
    organization = OrganizationSerializer()


@extend_schema_field(
    {
        "type": "object",
        "description": "The groupBy values: ``project`` is the project id; ``release``, "
        "``environment`` and ``session.status`` are names.",
        "additionalProperties": {"type": ["integer", "string"]},
    }
)
class GroupByField(serializers.JSONField):
    pass


_NUMBER = {"type": ["number", "null"]}


@extend_schema_field(
    {
        "type": "object",
        "description": "Each requested field's value over the whole window.",
        "additionalProperties": _NUMBER,
    }
)
class TotalsField(serializers.JSONField):
    pass


@extend_schema_field(
    {
        "type": "object",
        "description": "Each requested field's value per interval, aligned with ``intervals``.",
        "additionalProperties": {"type": "array", "items": _NUMBER},
    }
)
class SeriesField(serializers.JSONField):
    pass


class SessionGroupSerializer(serializers.Serializer):
    by = GroupByField()
    totals = TotalsField()
    series = SeriesField()


class SessionStatsSerializer(serializers.Serializer):
    """Release-health session statistics (docs/sessions.md)."""

    start = _moment()
    end = _moment()
    intervals = serializers.ListField(child=_moment())
    groups = SessionGroupSerializer(many=True)
    query = _text(allow_blank=True)


class ApiRootAuthSerializer(serializers.Serializer):
    scopes = serializers.ListField(child=_text())


class ApiRootUserSerializer(serializers.Serializer):
    id = _text()
    name = _text()
    username = _text()
    email = _text()


class ApiRootSerializer(serializers.Serializer):
    """Who the caller is (``sentry-cli info``); nulls without a token or a user."""

    version = _text()
    auth = ApiRootAuthSerializer(allow_null=True)
    user = ApiRootUserSerializer(allow_null=True)


class ErrorSerializer(serializers.Serializer):
    """Every error that is not about request body fields."""

    detail = _text()


# -- components added as plain JSON Schema (postprocess) -----------------------------------------

EXTRA_COMPONENTS: dict[str, Any] = {
    "Empty": {"type": "object", "maxProperties": 0, "description": "``{}``."},
    "UnresolvedAuthor": {
        "type": "object",
        "description": "A commit author who is no member of the organization.",
        "properties": {"name": {"type": "string"}, "email": {"type": "string"}},
        "required": ["name", "email"],
    },
    "CommitAuthor": {
        "anyOf": [
            {"$ref": f"{REF}User"},
            {"$ref": f"{REF}UnresolvedAuthor"},
            {"$ref": f"{REF}Empty"},
        ]
    },
    "RepositoryOrEmpty": {"anyOf": [{"$ref": f"{REF}Repository"}, {"$ref": f"{REF}Empty"}]},
    "ValidationErrors": {
        "type": "object",
        "description": "Request body errors: each invalid field with its messages (lists of "
        "strings, or nested objects and lists for nested fields).",
        "additionalProperties": True,
    },
    "EnvelopeAccepted": {
        "type": "object",
        "description": "``{}``, or the event's id when the envelope held an event.",
        "properties": {"id": {"type": "string"}},
        "additionalProperties": False,
    },
    "HealthCheck": {
        "type": "object",
        "properties": {
            "ok": {"type": "boolean"},
            "detail": {"type": "string"},
            "problems": {"type": "array", "items": {"type": "string"}},
        },
        "required": ["ok"],
    },
}
SECURITY_SCHEMES: dict[str, Any] = {
    "sentryAuthHeader": {
        "type": "apiKey",
        "in": "header",
        "name": "X-Sentry-Auth",
        "description": "The DSN's public key, as SDKs send it: "
        "``Sentry sentry_key=<public key>, sentry_version=7``.",
    },
    "sentryKeyQuery": {
        "type": "apiKey",
        "in": "query",
        "name": "sentry_key",
        "description": "The DSN's public key in the query string (browser SDKs).",
    },
}


# -- authentication -------------------------------------------------------------------------------


class BearerTokenScheme(OpenApiAuthenticationExtension):
    """``Authorization: Bearer <token>``; each operation lists the scopes that admit it (any
    one of them suffices), from its permission's ``scope_map``."""

    target_class = "accounts.authentication.BearerTokenAuthentication"
    name = "bearer"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A user token (its scopes, limited by the user's role in the "
            "organization) or an organization token (``org:ci``). Any one of an operation's "
            "listed scopes admits it.",
        }

    def get_security_requirement(self, auto_schema: Any) -> Any:
        for permission in auto_schema.view.get_permissions():
            scope_map = getattr(permission, "scope_map", None)
            if scope_map is not None:
                scopes = sorted(scope_map.get(auto_schema.method, ()))
                return [{self.name: [scope]} for scope in scopes] or {self.name: []}
        return {self.name: []}


# -- parameters -----------------------------------------------------------------------------------

Q: Literal["query"] = "query"
PATH: Literal["path"] = "path"


def _query(name: str, kind: Any = str, description: str = "", **kwargs: Any) -> OpenApiParameter:
    return OpenApiParameter(name, kind, Q, description=description, **kwargs)


def _flag(name: str, description: str) -> OpenApiParameter:
    return _query(
        name,
        bool,
        f"{description} Also accepts 1/yes/on and 0/no/off, in any case; anything else is a 400.",
    )


ORGANIZATION = OpenApiParameter(
    "organization_id_or_slug", str, PATH, description="The organization's slug or numeric id."
)
PROJECT = OpenApiParameter(
    "project_id_or_slug", str, PATH, description="The project's slug or numeric id."
)
VERSION = OpenApiParameter(
    "version",
    str,
    PATH,
    description="The release's version, URL-encoded (it may hold ``@``, ``+`` or dots).",
)
PER_PAGE = _query(
    "per_page",
    int,
    f"Rows per page, 1 to {MAX_PER_PAGE} (the default).",
)
CURSOR = _query(
    "cursor",
    str,
    "A cursor from the ``Link`` header (``<per_page>:<page>:<is_prev>``).",
    pattern=r"^\d+:\d+:[01]$",
)
LINK = OpenApiParameter(
    "Link",
    str,
    "header",
    description='Sentry\'s cursor links: ``<url>; rel="previous"|"next"; '
    'results="true"|"false"; cursor="..."``.',
    response=[200],
)
PAGE = [PER_PAGE, CURSOR, LINK]
SEARCH_QUERY = _query(
    "query", str, "Sentry's release search syntax (docs/search.md); unknown keys are a 400."
)
PROJECTS = _query(
    "project",
    str,
    "Project ids or slugs (repeatable); ``-1`` or ``$all``: every accessible project. "
    "Without it, the caller's member projects. An inaccessible project is a 403.",
    many=True,
)
ENVIRONMENTS = _query(
    "environment", str, "Environment names (repeatable); an unknown one is a 404.", many=True
)
STATS_PERIOD = _query("statsPeriod", str, "A window such as ``24h``, ``14d`` or ``90`` (seconds).")
START = _query("start", OpenApiTypes.DATETIME, "Window start (with ``end``).")
END = _query("end", OpenApiTypes.DATETIME, "Window end (with ``start``).")
HEALTH = [
    _flag("health", "Include ``healthData`` in each project."),
    _flag("adoptionStages", "Include ``adoptionStages``."),
    _query(
        "summaryStatsPeriod",
        str,
        "The window of the health totals (default ``14d``).",
        enum=STATS_PERIOD_NAMES,
    ),
    _query(
        "healthStatsPeriod",
        str,
        "The window of ``healthData.stats`` (default ``24h`` with ``health``).",
        enum=STATS_PERIOD_NAMES,
    ),
]
RELEASE_STATUS = _query(
    "status",
    str,
    "``open`` (the default) or ``archived``; empty: both.",
    enum=["open", "archived", ""],
)

LIST_PARAMETERS = [
    PROJECTS,
    _query("projectSlug", str, "Project slugs (repeatable), as ``project``.", many=True),
    ENVIRONMENTS,
    RELEASE_STATUS,
    STATS_PERIOD,
    START,
    END,
    SEARCH_QUERY,
    *HEALTH,
    _flag("flatten", "One row per release and project."),
    _query("healthStat", str, "What health sorts count.", enum=list(HEALTH_STATS)),
    _query(
        "sort",
        str,
        "Order; the health sorts need ``flatten=1``.",
        enum=list(LIST_SORTS),
    ),
    *PAGE,
]
DETAILS_PARAMETERS = [
    _query(
        "project",
        str,
        "A project id or slug: adds ``currentProjectMeta`` (and narrows ``healthData``).",
    ),
    _query("project_id", str, "Alias of ``project`` (``project`` wins)."),
    *HEALTH,
    _query(
        "sort",
        str,
        "Orders prev/next in ``currentProjectMeta`` (with ``project``).",
        enum=list(DETAILS_SORTS),
    ),
    _query(
        "status",
        str,
        "Narrows prev/next (with ``project``).",
        enum=["open", "archived"],
    ),
    _query("query", str, "Narrows prev/next (with ``project``), in the release search syntax."),
    ENVIRONMENTS,
    STATS_PERIOD,
    START,
    END,
]

# -- responses -------------------------------------------------------------------------------------

ERROR = OpenApiResponse(ErrorSerializer, description='``{"detail": ...}``')


def _errors(*extra: int) -> dict[int, Any]:
    """The errors every authenticated operation may answer, plus ``extra``."""
    codes = {
        400: OpenApiResponse(ErrorSerializer, description="A bad parameter, named in ``detail``."),
        401: OpenApiResponse(ErrorSerializer, description="No token, or a bad one."),
        403: OpenApiResponse(ErrorSerializer, description="A token or role without the scope."),
        404: OpenApiResponse(
            ErrorSerializer, description="An unknown organization, project or release."
        ),
        429: OpenApiResponse(ErrorSerializer, description="Rate limited (``Retry-After``)."),
        503: OpenApiResponse(
            ErrorSerializer, description="The database is down or busy (``Retry-After``)."
        ),
    }
    for code in extra:
        codes[code] = ERROR
    return codes


def _page(serializer: Any, description: str) -> dict[int, Any]:
    return {200: OpenApiResponse(serializer(many=True), description=description), **_errors()}


def _written(code: int, serializer: Any, description: str, *extra: int) -> dict[int, Any]:
    """A write's answers: 400 may also name invalid body fields."""
    return {
        code: OpenApiResponse(serializer, description=description),
        **_errors(*extra),
        400: OpenApiResponse(
            {"anyOf": [{"$ref": f"{REF}Error"}, {"$ref": f"{REF}ValidationErrors"}]},
            description="A bad parameter (``detail``) or invalid body fields.",
        ),
    }


def _op(operation_id: str, tag: str, summary: str, **kwargs: Any) -> Any:
    return extend_schema(operation_id=operation_id, tags=[tag], summary=summary, **kwargs)


def _release_item_ops(scope: str, noun: str, path: list[Any]) -> dict[str, Any]:
    """retrieve, update and destroy of one release, on the organization or project route."""
    of = noun.removeprefix("A release")
    return {
        "retrieve": _op(
            f"retrieve{scope}Release",
            "Releases",
            noun,
            parameters=[*path, *DETAILS_PARAMETERS],
            responses={200: ReleaseSerializer, **_errors()},
        ),
        "update": _op(
            f"update{scope}Release",
            "Releases",
            f"Update a release{of}",
            parameters=path,
            request=ReleaseUpdateSerializer,
            responses=_written(200, ReleaseSerializer, "The release as written.", 409),
        ),
        "destroy": _op(
            f"delete{scope}Release",
            "Releases",
            f"Delete a release{of}",
            parameters=path,
            responses={
                204: OpenApiResponse(description="Deleted."),
                **_errors(),
                400: OpenApiResponse(ErrorSerializer, description="The release is in use."),
            },
        ),
    }


# -- operations ------------------------------------------------------------------------------------

RELEASE_PATH = [ORGANIZATION, VERSION]
PROJECT_RELEASE_PATH = [ORGANIZATION, PROJECT, VERSION]

OPERATIONS: dict[type, dict[str, Any]] = {
    ApiRootView: {
        "get": _op(
            "retrieveApiRoot",
            "Auth",
            "Who the caller is",
            responses={200: ApiRootSerializer, 429: ERROR, 503: ERROR, 401: ERROR},
        )
    },
    OrganizationIndexEndpoint: {
        "get": _op(
            "listOrganizations",
            "Organizations",
            "The caller's organizations",
            parameters=[
                _flag("owner", "Only organizations the caller owns."),
                _query("query", str, "A substring of the name or slug."),
                *PAGE,
            ],
            responses=_page(OrganizationSerializer, "Newest first."),
        )
    },
    OrganizationDetailsEndpoint: {
        "get": _op(
            "retrieveOrganization",
            "Organizations",
            "An organization",
            parameters=[ORGANIZATION],
            responses={200: OrganizationDetailsSerializer, **_errors()},
        )
    },
    OrganizationProjectsEndpoint: {
        "get": _op(
            "listOrganizationProjects",
            "Projects",
            "The organization's projects the caller can access",
            parameters=[
                ORGANIZATION,
                _query("query", str, "A substring of the name or slug."),
                *PAGE,
            ],
            responses=_page(ProjectSummarySerializer, "By slug."),
        )
    },
    ProjectIndexEndpoint: {
        "get": _op(
            "listProjects",
            "Projects",
            "Every project the caller can access",
            parameters=[_query("query", str, "A substring of the name or slug."), *PAGE],
            responses=_page(ProjectWithOrganizationSerializer, "Newest first."),
        )
    },
    OrganizationSessionsEndpoint: {
        "get": _op(
            "retrieveOrganizationSessions",
            "Sessions",
            "Release-health session statistics",
            parameters=[
                ORGANIZATION,
                _query(
                    "field",
                    str,
                    "What to compute (repeatable, at least one). ``anr_rate()`` and "
                    "``foreground_anr_rate()`` are refused with a 400.",
                    many=True,
                    required=True,
                    enum=list(FIELDS),
                ),
                _query(
                    "groupBy",
                    str,
                    "Group by (repeatable); ``session.status`` only with ``sum(session)``.",
                    many=True,
                    enum=[*DIMENSIONS, STATUS],
                ),
                _query(
                    "project",
                    str,
                    "Project ids or slugs (repeatable); none or ``-1``: every accessible one.",
                    many=True,
                ),
                _query("environment", str, "Environment names (repeatable).", many=True),
                _query("statsPeriod", str, "A window such as ``24h`` or ``14d`` (default)."),
                START,
                END,
                _query(
                    "interval",
                    str,
                    "Bucket size (default ``1h``): whole hours, at most ``1d``, dividing a day.",
                ),
                _query("query", str, "``release:`` and ``environment:`` terms (docs/search.md)."),
                _query("orderBy", str, "One of the fields, ``-`` for descending."),
                _query("per_page", int, f"Groups to return, 1 to {MAX_GROUPS} (the default)."),
            ],
            responses={200: SessionStatsSerializer, **_errors()},
        )
    },
    ReleaseViewSet: {
        "list": _op(
            "listOrganizationReleases",
            "Releases",
            "The organization's releases",
            parameters=[ORGANIZATION, *LIST_PARAMETERS],
            filters=False,
            responses=_page(ReleaseSerializer, "Newest first unless ``sort`` says otherwise."),
        ),
        "create": _op(
            "createOrganizationRelease",
            "Releases",
            "Create a release, or add projects to it",
            parameters=[ORGANIZATION],
            request=ReleaseCreateSerializer,
            responses={
                **_written(201, ReleaseSerializer, "Created, or projects were added.", 409),
                208: OpenApiResponse(ReleaseSerializer, description="Nothing new."),
            },
        ),
        **_release_item_ops("Organization", "A release", RELEASE_PATH),
    },
    ProjectReleaseViewSet: {
        "list": _op(
            "listProjectReleases",
            "Releases",
            "A project's releases",
            parameters=[
                ORGANIZATION,
                PROJECT,
                _query(
                    "environment",
                    str,
                    "Releases seen in one of these environments (repeatable); unknown ones "
                    "match nothing.",
                    many=True,
                ),
                RELEASE_STATUS,
                _query("query", str, "A substring of the version."),
                *PAGE,
            ],
            filters=False,
            responses=_page(ReleaseSerializer, "Newest released (else created) first."),
        ),
        "create": _op(
            "createProjectRelease",
            "Releases",
            "Create a release in a project",
            parameters=[ORGANIZATION, PROJECT],
            request=ProjectReleaseCreateSerializer,
            responses={
                **_written(201, ReleaseSerializer, "Created, or the project was added.", 409),
                208: OpenApiResponse(ReleaseSerializer, description="Nothing new."),
            },
        ),
        **_release_item_ops("Project", "A release of a project", PROJECT_RELEASE_PATH),
    },
    RepositoriesView: {
        "get": _op(
            "listOrganizationRepos",
            "Repositories",
            "The organization's repositories",
            parameters=[
                ORGANIZATION,
                _query(
                    "status",
                    str,
                    "``active`` (the default) or ``deleted``; empty: every status.",
                    enum=["active", "deleted", ""],
                ),
                _query("query", str, "A substring of the name."),
                _query("integration_id", str, "Only the repositories of this integration."),
                *PAGE,
            ],
            responses=_page(RepositorySerializer, "By name."),
        ),
        "post": _op(
            "createOrganizationRepo",
            "Repositories",
            "Add a repository",
            parameters=[ORGANIZATION],
            request=RepositoryCreateSerializer,
            responses=_written(201, RepositorySerializer, "Added.", 409),
        ),
    },
    EnvelopeView: {
        "post": _op(
            "sendEnvelope",
            "Envelope",
            "Send an envelope (sessions, events) from an SDK",
            description=(
                "What Sentry's SDKs post to ``/api/{project_id}/envelope/``: a newline-"
                "separated envelope (docs/health.md), optionally compressed "
                "(``Content-Encoding: gzip``, ``deflate`` or ``br``). The client key comes "
                "from ``X-Sentry-Auth`` (or ``Authorization: Sentry …``), the ``sentry_key`` "
                "query parameter, or the ``dsn`` of the envelope's header; two different "
                "keys are a 400. Items that do not validate are dropped, as Relay does."
            ),
            parameters=[
                OpenApiParameter("project_id", int, PATH, description="The DSN's project id."),
            ],
            request={
                "application/x-sentry-envelope": OpenApiTypes.BINARY,
                "text/plain": OpenApiTypes.BINARY,
                "application/octet-stream": OpenApiTypes.BINARY,
            },
            auth=[
                {"sentryAuthHeader": []},
                {"sentryKeyQuery": []},
                {},
            ],
            responses={
                200: OpenApiResponse(
                    {"$ref": f"{REF}EnvelopeAccepted"}, description="Stored (what validated)."
                ),
                400: OpenApiResponse(
                    ErrorSerializer, description="A malformed envelope or conflicting keys."
                ),
                401: OpenApiResponse(ErrorSerializer, description="No key, or an unknown one."),
                403: OpenApiResponse(
                    ErrorSerializer, description="A revoked key, or another project's."
                ),
                413: OpenApiResponse(
                    ErrorSerializer, description="Larger than ``ENVELOPE_MAX_BYTES``."
                ),
                429: OpenApiResponse(
                    ErrorSerializer,
                    description="Rate limited: ``Retry-After`` and, for quotas, "
                    "``X-Sentry-Rate-Limits: <seconds>::<key|project>``.",
                ),
                503: OpenApiResponse(ErrorSerializer, description="The database is down."),
            },
        )
    },
}


def _release_child(
    operation_id: str, summary: str, path: list[OpenApiParameter], **kwargs: Any
) -> Any:
    return _op(operation_id, kwargs.pop("tag", "Releases"), summary, parameters=path, **kwargs)


for _prefix, _path, _views in (
    (
        "Organization",
        RELEASE_PATH,
        (ReleaseCommitsView, ReleaseDeploysView, PreviousReleaseWithCommitsView),
    ),
    (
        "Project",
        PROJECT_RELEASE_PATH,
        (
            ProjectReleaseCommitsView,
            ProjectReleaseDeploysView,
            ProjectPreviousReleaseWithCommitsView,
        ),
    ),
):
    _commits, _deploys, _previous = _views
    OPERATIONS[_commits] = {
        "get": _release_child(
            f"list{_prefix}ReleaseCommits",
            "A release's commits",
            [*_path, *PAGE],
            tag="Commits",
            responses=_page(CommitSerializer, "In the release's order."),
        )
    }
    OPERATIONS[_deploys] = {
        "get": _release_child(
            f"list{_prefix}ReleaseDeploys",
            "A release's latest deploy per environment",
            [*_path, *PAGE],
            tag="Deploys",
            responses=_page(DeploySerializer, "Newest first."),
        ),
        "post": _release_child(
            f"create{_prefix}ReleaseDeploy",
            "Record a deploy",
            _path,
            tag="Deploys",
            request=DeployCreateSerializer,
            responses=_written(201, DeploySerializer, "Recorded."),
        ),
    }
    OPERATIONS[_previous] = {
        "get": _release_child(
            f"retrieve{_prefix}PreviousReleaseWithCommits",
            "The previous release with commits",
            _path,
            tag="Commits",
            responses={
                200: OpenApiResponse(
                    {"anyOf": [{"$ref": f"{REF}Release"}, {"$ref": f"{REF}Empty"}]},
                    description="The newest release, up to this one's date, of a shared "
                    "project with commits (without event data); ``{}`` when there is none.",
                ),
                **_errors(),
            },
        )
    }


def _register(view: type, methods: dict[str, Any]) -> None:
    """An OpenApiViewExtension giving ``view`` its description (``extend_schema_view``)."""

    def view_replacement(self: OpenApiViewExtension) -> type:
        described = type(view.__name__, (view,), {"__module__": view.__module__})
        return extend_schema_view(**methods)(described)

    type(
        f"{view.__name__}Description",
        (OpenApiViewExtension,),
        {"target_class": view, "view_replacement": view_replacement},
    )


for _view, _methods in OPERATIONS.items():
    _register(_view, _methods)


# -- hooks -----------------------------------------------------------------------------------------


def preprocess(endpoints: list[tuple[Any, ...]], **kwargs: Any) -> list[tuple[Any, ...]]:
    """Every route but the schema's own views."""
    return [e for e in endpoints if not issubclass(e[3].cls, SpectacularAPIView | DocsView)]


HEALTH_PATH = {
    "get": {
        "operationId": "retrieveHealth",
        "tags": ["Health"],
        "summary": "Liveness, or readiness with full=1",
        "description": "No authentication, no database for liveness (docs/operations.md).",
        "parameters": [
            {
                "name": "full",
                "in": "query",
                "schema": {"type": "string"},
                "description": "``1``, ``true``, ``yes`` or ``on``: also check the database "
                "and the migrations.",
            }
        ],
        "security": [{}],
        "responses": {
            "200": {
                "description": 'Serving (``{"ok": true}``).',
                "content": {"application/json": {"schema": {"$ref": f"{REF}HealthCheck"}}},
            },
            "503": {
                "description": "Not ready: ``detail`` and ``problems`` say why.",
                "content": {"application/json": {"schema": {"$ref": f"{REF}HealthCheck"}}},
            },
        },
    }
}


def postprocess(result: dict[str, Any], generator: Any, **kwargs: Any) -> dict[str, Any]:
    """Add what no DRF view declares: the JSON-Schema components, the envelope's key schemes,
    ``/_health/``; and tighten request fields that the input serializers leave loose."""
    components = result.setdefault("components", {})
    components.setdefault("schemas", {}).update(EXTRA_COMPONENTS)
    components.setdefault("securitySchemes", {}).update(SECURITY_SCHEMES)
    result["paths"]["/_health/"] = HEALTH_PATH
    schemas = components["schemas"]
    project_ref = {
        "anyOf": [{"type": "integer"}, {"type": "string"}],
        "description": "A project id or slug.",
    }
    for name in ("ReleaseCreateRequest", "ProjectReleaseCreateRequest"):
        properties = schemas[name]["properties"]
        properties["projects"]["items"] = project_ref
    for name in ("ReleaseCreateRequest", "ProjectReleaseCreateRequest", "ReleaseUpdateRequest"):
        properties = schemas[name]["properties"]
        properties["status"] = {"type": "string", "enum": ["open", "archived"]}
    return result


# -- serving ---------------------------------------------------------------------------------------


class SchemaNegotiation(DefaultContentNegotiation):
    """The one answer that negotiates: JSON unless YAML is asked for, by ``Accept``
    (``application/vnd.oai.openapi`` or ``application/yaml``) or ``?format=yaml``."""

    settings = api_settings

    def select_renderer(self, request: Any, renderers: Any, format_suffix: Any = None) -> Any:
        wanted = request.query_params.get("format")
        if wanted:
            for renderer in renderers:
                if renderer.format == wanted:
                    return renderer, renderer.media_type
        return super().select_renderer(request, renderers, format_suffix)


class SchemaView(SpectacularAPIView):
    """``GET /api/0/schema/``: the OpenAPI 3.1 description, JSON first."""

    content_negotiation_class = SchemaNegotiation

    def get_renderers(self) -> list[Any]:
        renderers = super().get_renderers()
        # JSON first: what a client gets when it accepts anything.
        return sorted(renderers, key=lambda r: "json" not in r.format)


class DocsView(SpectacularSwaggerView):
    """``GET /api/docs/``: Swagger UI on the schema, its files served by us (no CDN)."""

    url_name = "openapi-schema"
