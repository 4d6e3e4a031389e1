"""The benchmarks app: management commands only, no models."""

from django.apps import AppConfig


class BenchmarksConfig(AppConfig):
    name = "benchmarks"
