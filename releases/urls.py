"""URLs of the releases app."""

from rest_framework.routers import SimpleRouter

from .views import ProjectReleaseViewSet, ReleaseViewSet

router = SimpleRouter()
router.register(
    r"organizations/(?P<organization_id_or_slug>[^/]+)/releases", ReleaseViewSet, "release"
)
router.register(
    r"projects/(?P<organization_id_or_slug>[^/]+)/(?P<project_id_or_slug>[^/]+)/releases",
    ProjectReleaseViewSet,
    "project-release",
)

urlpatterns = router.urls
