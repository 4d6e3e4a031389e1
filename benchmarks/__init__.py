"""Benchmarks of the request and ingestion paths, as management commands (not part of the tests)."""
