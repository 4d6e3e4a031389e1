"""URLs of the releases app."""

from django.urls import re_path
from rest_framework.routers import SimpleRouter

from .organizations import (
    OrganizationDetailsEndpoint,
    OrganizationIndexEndpoint,
    OrganizationProjectsEndpoint,
    ProjectIndexEndpoint,
)
from .sessions import OrganizationSessionsEndpoint
from .views import ProjectReleaseViewSet, ReleaseViewSet, RepositoryViewSet

# NUL never reaches a lookup: PostgreSQL text cannot hold it, so such paths are simply unknown.
ORG = r"(?P<organization_id_or_slug>[^/\x00]+)"
PROJECT = r"(?P<project_id_or_slug>[^/\x00]+)"

router = SimpleRouter()
router.register(rf"organizations/{ORG}/releases", ReleaseViewSet, "release")
router.register(rf"organizations/{ORG}/repos", RepositoryViewSet, "repository")
router.register(rf"projects/{ORG}/{PROJECT}/releases", ProjectReleaseViewSet, "project-release")

urlpatterns = [
    re_path(r"^organizations/$", OrganizationIndexEndpoint.as_view(), name="organization-index"),
    re_path(rf"^organizations/{ORG}/$", OrganizationDetailsEndpoint.as_view(), name="organization"),
    re_path(
        rf"^organizations/{ORG}/projects/$",
        OrganizationProjectsEndpoint.as_view(),
        name="organization-projects",
    ),
    re_path(
        rf"^organizations/{ORG}/sessions/$",
        OrganizationSessionsEndpoint.as_view(),
        name="organization-sessions",
    ),
    re_path(r"^projects/$", ProjectIndexEndpoint.as_view(), name="project-index"),
    *router.urls,
]
