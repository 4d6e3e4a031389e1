"""Settings of the benchmark's server (``benchmarks/run.py``): the project's, plus the ceiling.

Everything is ``config.settings`` (so the project is served exactly as in production); only the
root URLs add ``/_bench/ceiling/<case>/`` and ``/_bench/ceiling/envelope/`` (``benchmarks.urls``).
"""

from config.settings import *  # noqa: F403

ROOT_URLCONF = "benchmarks.urls"
