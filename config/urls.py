"""Root URLs: the API at ``/api/0/`` and the admin at ``/admin/``."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/0/", include("accounts.urls")),
    path("api/0/", include("releases.urls")),
]
