"""Root URLs: the API at ``/api/0/`` with its schema, the SDK envelope endpoint, ``/_health/``
and ``/admin/``."""

from django.contrib import admin
from django.http import HttpRequest, JsonResponse
from django.urls import include, path, re_path, reverse_lazy
from django.views.decorators.csrf import csrf_exempt
from django.views.generic import RedirectView

from config.health import health_view
from releases.api.errors import NOT_FOUND
from releases.api.schema import DocsView, SchemaView


@csrf_exempt
def api_not_found(request: HttpRequest) -> JsonResponse:
    """Unknown API paths answer in the API's JSON shape, never with an HTML page."""
    return JsonResponse({"detail": NOT_FOUND}, status=404)


admin.site.site_header = "Sentry-compatible releases"
admin.site.site_title = "Sentry-compatible releases"
admin.site.index_title = "Releases, deploys, projects and tokens"
# "/" is the admin, so the admin's "View site" link would only loop back to it.
admin.site.site_url = None
# Without the left-hand model list, lists and release pages get the whole width of a
# 1,280 px window (the release list beside its filters needs it); Home lists every model.
admin.site.enable_nav_sidebar = False

urlpatterns = [
    # There is no web front end besides the admin (docs/admin.md).
    path("", RedirectView.as_view(url=reverse_lazy("admin:index")), name="home"),
    path("_health/", health_view, name="health"),
    path("admin/", admin.site.urls),
    path("api/", include("releases.health.urls")),
    path("api/0/", include("accounts.urls")),
    path("api/0/", include("releases.api.urls")),
    # The OpenAPI schema and its docs page (docs/api.md); before the catch-all below.
    path("api/0/schema/", SchemaView.as_view(), name="openapi-schema"),
    path("api/docs/", DocsView.as_view(), name="api-docs"),
    re_path(r"^api/", api_not_found),
]
