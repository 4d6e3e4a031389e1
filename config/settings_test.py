"""Test settings: the real settings plus a fast hasher and a fixed key."""

import os

os.environ.setdefault("SECRET_KEY", "test-secret-key")

from .settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
SECRET_KEY = "test-secret-key"
