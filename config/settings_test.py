"""Test settings: the real settings plus a fast hasher and a fixed key."""

import os

os.environ.setdefault("SECRET_KEY", "test-secret-key")

from .settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
SECRET_KEY = "test-secret-key"

# The rate limits count in process memory, cleared before each test (tests/conftest.py), and
# are out of reach unless a test lowers them.
CACHES["ratelimit"] = {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "rl"}  # noqa: F405
RATE_LIMITS = dict.fromkeys(RATE_LIMITS, "1000000/min")  # noqa: F405
