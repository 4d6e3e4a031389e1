"""Root URLs: the API at ``/api/0/``, the SDK envelope endpoint and the admin at ``/admin/``."""

from django.contrib import admin
from django.urls import include, path

from releases.envelope import envelope_view

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/<int:project_id>/envelope/", envelope_view, name="envelope"),
    path("api/0/", include("accounts.urls")),
    path("api/0/", include("releases.urls")),
]
