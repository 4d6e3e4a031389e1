"""Test settings: the real settings plus a fast hasher and a fixed key."""

import os

os.environ.setdefault("SECRET_KEY", "test-secret-key")

from .settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
SECRET_KEY = "test-secret-key"

# The rate limits count in process memory, cleared before each test (tests/conftest.py), and
# are out of reach unless a test lowers them.
RATELIMIT_STORE = "cache"
RATE_LIMITS = dict.fromkeys(RATE_LIMITS, "1000000/min")  # noqa: F405
# Tests render the admin without running collectstatic first: no manifest to look names up in.
STORAGES = {
    **STORAGES,  # noqa: F405
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# WhiteNoise serves the apps' own static folders, as with DEBUG (no STATIC_ROOT needed).
WHITENOISE_AUTOREFRESH = WHITENOISE_USE_FINDERS = True
