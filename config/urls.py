"""Root URLs: the API at ``/api/0/``, the SDK envelope endpoint, ``/_health/`` and ``/admin/``."""

from django.contrib import admin
from django.http import HttpRequest, JsonResponse
from django.urls import include, path, re_path
from django.views.decorators.csrf import csrf_exempt

from config.health import health_view
from releases.envelope import envelope_view


@csrf_exempt
def api_not_found(request: HttpRequest) -> JsonResponse:
    """Unknown API paths answer in the API's JSON shape, never with an HTML page."""
    return JsonResponse({"detail": "The requested resource does not exist"}, status=404)


urlpatterns = [
    path("_health/", health_view, name="health"),
    path("admin/", admin.site.urls),
    path("api/<int:project_id>/envelope/", envelope_view, name="envelope"),
    path("api/0/", include("accounts.urls")),
    path("api/0/", include("releases.urls")),
    re_path(r"^api/", api_not_found),
]
