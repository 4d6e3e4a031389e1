"""URL of the release-health ingestion endpoint (mounted at ``/api/``)."""

from django.urls import path

from .envelope import envelope_view

urlpatterns = [
    path("<int:project_id>/envelope/", envelope_view, name="envelope"),
]
