"""Settings, driven entirely by environment variables (see README, "Configuration")."""

from __future__ import annotations

from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()

DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env.str("SECRET_KEY", default="") or (
    "insecure-development-key-only-used-with-debug" if DEBUG else ""
)
if not SECRET_KEY:
    raise environ.ImproperlyConfigured("Set SECRET_KEY (or DEBUG=1 for a local development run).")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]", "testserver"])

# Host used in client keys' DSNs (``http://<key>@<SENTRY_DSN_HOST>/<project_id>``).
SENTRY_DSN_HOST = env.str("SENTRY_DSN_HOST", default="127.0.0.1:8000")
# Largest envelope body accepted, before and after decompression (larger: 413).
ENVELOPE_MAX_BYTES = env.int("ENVELOPE_MAX_BYTES", default=20 * 1024 * 1024)
GRAVATAR_BASE_URL = env.str("GRAVATAR_BASE_URL", default="https://gravatar.com")
AVATAR_BASE_URL = env.str("AVATAR_BASE_URL", default="https://sentry.io/avatar")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "accounts",
    "releases",
]

MIDDLEWARE = [
    # First, so that nothing below can answer an API call with an HTML error page.
    "config.middleware.ApiErrorMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, so that the transaction of a write request holds the view and nothing else.
    "config.middleware.WriteTransactionMiddleware",
]

# The API never answers with a redirect (sentry-cli does not follow them); every API route
# is declared with its trailing slash.
APPEND_SLASH = False

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# Writes are atomic per request (config.middleware.WriteTransactionMiddleware: unsafe methods
# run in one transaction); reads run in autocommit and open no transaction. Not
# ATOMIC_REQUESTS, which would make every GET a transaction (docs/reliability.md).
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
SQLITE = DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3"
# Seconds a SQLite write waits for the write lock before the request answers 503.
SQLITE_BUSY_TIMEOUT = env.float("SQLITE_BUSY_TIMEOUT", default=5.0)
if SQLITE:
    # Write transactions take the write lock up front (BEGIN IMMEDIATE), waiting at most the
    # busy timeout; WAL lets readers, which open no transaction, go on meanwhile.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        timeout=SQLITE_BUSY_TIMEOUT,
        transaction_mode="IMMEDIATE",
        init_command="PRAGMA journal_mode=WAL;",
    )
# Retry-After (seconds) of the 503 answered while the database is down or busy.
DATABASE_RETRY_AFTER = env.int("DATABASE_RETRY_AFTER", default=5)

AUTH_USER_MODEL = "accounts.User"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # Sentry's API speaks JSON only, whatever Accept or ?format= say.
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "config.negotiation.JSONOnly",
    "URL_FORMAT_OVERRIDE": None,
    # OPTIONS describes nothing: it answers 405 like any other unsupported method.
    "DEFAULT_METADATA_CLASS": None,
    "EXCEPTION_HANDLER": "config.exceptions.exception_handler",
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="WARNING")},
}
