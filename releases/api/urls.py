"""URLs of the releases app."""

from rest_framework.routers import SimpleRouter

from .views import ProjectReleaseViewSet, ReleaseViewSet, RepositoryViewSet

# NUL never reaches a lookup: PostgreSQL text cannot hold it, so such paths are simply unknown.
ORG = r"(?P<organization_id_or_slug>[^/\x00]+)"
PROJECT = r"(?P<project_id_or_slug>[^/\x00]+)"

router = SimpleRouter()
router.register(rf"organizations/{ORG}/releases", ReleaseViewSet, "release")
router.register(rf"organizations/{ORG}/repos", RepositoryViewSet, "repository")
router.register(rf"projects/{ORG}/{PROJECT}/releases", ProjectReleaseViewSet, "project-release")

urlpatterns = router.urls
