"""The project's URLs plus the benchmark's ceiling views (served by ``benchmarks.settings``)."""

from django.db import transaction
from django.urls import path

from config.urls import urlpatterns as project_urlpatterns

from .ceiling import CeilingView, IngestCeilingView

urlpatterns = [
    path("_bench/ceiling/<int:case>/", CeilingView.as_view()),
    path("_bench/ceiling/envelope/", transaction.non_atomic_requests(IngestCeilingView.as_view())),
    *project_urlpatterns,
]
