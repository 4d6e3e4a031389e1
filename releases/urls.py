"""URLs of the releases app."""

from rest_framework.routers import SimpleRouter

from .views import ProjectReleaseViewSet, ReleaseViewSet, RepositoryViewSet

ORG = r"(?P<organization_id_or_slug>[^/]+)"
PROJECT = r"(?P<project_id_or_slug>[^/]+)"

router = SimpleRouter()
router.register(rf"organizations/{ORG}/releases", ReleaseViewSet, "release")
router.register(rf"organizations/{ORG}/repos", RepositoryViewSet, "repository")
router.register(rf"projects/{ORG}/{PROJECT}/releases", ProjectReleaseViewSet, "project-release")

urlpatterns = router.urls
