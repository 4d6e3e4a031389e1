"""The release API's routes (mounted at ``/api/0/``), each naming the view that serves it."""

from typing import Any

from django.urls import re_path

from .commits import (
    PreviousReleaseWithCommitsView,
    ProjectPreviousReleaseWithCommitsView,
    ProjectReleaseCommitsView,
    ReleaseCommitsView,
)
from .deploys import ProjectReleaseDeploysView, ReleaseDeploysView
from .organizations import (
    OrganizationDetailsEndpoint,
    OrganizationIndexEndpoint,
    OrganizationProjectsEndpoint,
    ProjectIndexEndpoint,
)
from .releases import ProjectReleaseViewSet, ReleaseViewSet
from .repositories import RepositoriesView
from .sessions import OrganizationSessionsEndpoint

# NUL never reaches a lookup: PostgreSQL text cannot hold it, so such paths are simply unknown.
ORG = r"organizations/(?P<organization_id_or_slug>[^/\x00]+)"
PROJECT = r"projects/(?P<organization_id_or_slug>[^/\x00]+)/(?P<project_id_or_slug>[^/\x00]+)"
# Versions hold dots (``1.2.0``), which DRF's default lookup pattern refuses.
VERSION = r"releases/(?P<version>[^/\x00]+)"

COLLECTION: dict[str, Any] = {"get": "list", "post": "create"}
ITEM: dict[str, Any] = {"get": "retrieve", "put": "update", "delete": "destroy"}

urlpatterns = [
    re_path(r"^organizations/$", OrganizationIndexEndpoint.as_view(), name="organization-index"),
    re_path(rf"^{ORG}/$", OrganizationDetailsEndpoint.as_view(), name="organization"),
    re_path(rf"^{ORG}/projects/$", OrganizationProjectsEndpoint.as_view()),
    re_path(rf"^{ORG}/sessions/$", OrganizationSessionsEndpoint.as_view()),
    re_path(r"^projects/$", ProjectIndexEndpoint.as_view(), name="project-index"),
    re_path(rf"^{ORG}/releases/$", ReleaseViewSet.as_view(COLLECTION), name="release-list"),
    re_path(rf"^{ORG}/{VERSION}/$", ReleaseViewSet.as_view(ITEM), name="release-detail"),
    re_path(rf"^{ORG}/{VERSION}/commits/$", ReleaseCommitsView.as_view()),
    re_path(rf"^{ORG}/{VERSION}/deploys/$", ReleaseDeploysView.as_view()),
    re_path(rf"^{ORG}/{VERSION}/previous-with-commits/$", PreviousReleaseWithCommitsView.as_view()),
    re_path(rf"^{ORG}/repos/$", RepositoriesView.as_view()),
    # The project-scoped routes of sentry-cli 2.x.
    re_path(rf"^{PROJECT}/releases/$", ProjectReleaseViewSet.as_view(COLLECTION)),
    re_path(rf"^{PROJECT}/{VERSION}/$", ProjectReleaseViewSet.as_view(ITEM)),
    re_path(rf"^{PROJECT}/{VERSION}/commits/$", ProjectReleaseCommitsView.as_view()),
    re_path(rf"^{PROJECT}/{VERSION}/deploys/$", ProjectReleaseDeploysView.as_view()),
    re_path(
        rf"^{PROJECT}/{VERSION}/previous-with-commits/$",
        ProjectPreviousReleaseWithCommitsView.as_view(),
    ),
]
