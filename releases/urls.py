"""URLs of the releases app."""

from rest_framework.routers import SimpleRouter

from .views import ReleaseViewSet

router = SimpleRouter()
router.register(
    r"organizations/(?P<organization_id_or_slug>[^/]+)/releases", ReleaseViewSet, "release"
)

urlpatterns = router.urls
