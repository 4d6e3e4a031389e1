"""Root URLs: the API at ``/api/0/``, the SDK envelope endpoint and the admin at ``/admin/``."""

from django.contrib import admin
from django.http import HttpRequest, JsonResponse
from django.urls import include, path, re_path
from django.views.decorators.csrf import csrf_exempt

from releases.api.errors import NOT_FOUND


@csrf_exempt
def api_not_found(request: HttpRequest) -> JsonResponse:
    """Unknown API paths answer in the API's JSON shape, never with an HTML page."""
    return JsonResponse({"detail": NOT_FOUND}, status=404)


urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include("releases.health.urls")),
    path("api/0/", include("accounts.urls")),
    path("api/0/", include("releases.api.urls")),
    re_path(r"^api/", api_not_found),
]
