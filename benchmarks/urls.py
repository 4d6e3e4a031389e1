"""The project's URLs plus the benchmark's ceiling views (served by ``benchmarks.settings``)."""

from django.urls import path

from config.urls import urlpatterns as project_urlpatterns

from .ceiling import CeilingView

urlpatterns = [
    path("_bench/ceiling/<int:case>/", CeilingView.as_view()),
    *project_urlpatterns,
]
