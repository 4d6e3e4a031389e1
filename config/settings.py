"""Settings, driven entirely by environment variables (see README, "Configuration")."""

from __future__ import annotations

from datetime import timedelta
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
# Per-envelope caps (docs/health.md §6.2; larger: 413, as Relay answers). Relay's own limits:
# 100 session and sessions items (max_session_count), one event item of at most 1 MiB
# (max_event_size). Ours: items of any type, aggregate buckets, and the size of every item read.
ENVELOPE_MAX_ITEMS = env.int("ENVELOPE_MAX_ITEMS", default=1000)
ENVELOPE_MAX_ITEM_BYTES = env.int("ENVELOPE_MAX_ITEM_BYTES", default=1024 * 1024)
ENVELOPE_MAX_SESSIONS = env.int("ENVELOPE_MAX_SESSIONS", default=100)
ENVELOPE_MAX_AGGREGATES = env.int("ENVELOPE_MAX_AGGREGATES", default=10_000)
ENVELOPE_MAX_EVENTS = env.int("ENVELOPE_MAX_EVENTS", default=1)
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
    "drf_spectacular",
    # Swagger UI's files for the docs page at /api/docs/, served with the other static files.
    "drf_spectacular_sidecar",
    "axes",
    "accounts",
    "releases",
    "benchmarks",
]

MIDDLEWARE = [
    # First, so that nothing below can answer an API call with an HTML error page.
    "config.middleware.ApiErrorMiddleware",
    # Then the body of an API write, read whole before any database work (docs/reliability.md).
    "config.middleware.ReadBodyFirstMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Static files (the admin's) served by the app itself, compressed and cacheable.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Envelopes per DSN key and project; addresses with too many failed authentications.
    "config.ratelimit.RateLimitMiddleware",
    # Admin login throttling (django-axes).
    "axes.middleware.AxesMiddleware",
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
# Persistent connections (seconds; 0 closes after each request), checked before reuse.
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DB_POOL_MAX_SIZE = env.int("DB_POOL_MAX_SIZE", default=0)
if DB_POOL_MAX_SIZE and DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # A psycopg pool per process instead: what gevent workers need, since each greenlet would
    # otherwise keep a connection of its own. It bounds the process's connections too.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": 1,
        "max_size": DB_POOL_MAX_SIZE,
        "timeout": env.float("DB_POOL_TIMEOUT", default=10.0),
    }
# PostgreSQL: a statement a connection has run this many times becomes a prepared statement,
# so that the server stops parsing and planning it on every request (docs/performance.md §2.2).
# 0 turns it off, as a connection pooler in transaction mode (PgBouncer) needs.
DB_PREPARE_THRESHOLD = env.int("DB_PREPARE_THRESHOLD", default=5)
if DB_PREPARE_THRESHOLD and DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        server_side_binding=True, prepare_threshold=DB_PREPARE_THRESHOLD
    )
# PostgreSQL: no JIT compilation (docs/performance.md §6.5). The service's statements take
# milliseconds, but the estimates of a batch's upserts cross JIT's threshold, and compiling
# them costs more than running them. DB_JIT=1 leaves the server's own setting (for a pooler
# that refuses startup options, such as PgBouncer without ignore_startup_parameters).
if not env.bool("DB_JIT", default=False) and (
    DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
):
    _options = DATABASES["default"].setdefault("OPTIONS", {})
    # Added to the DATABASE_URL's own ``?options=``, if it has any.
    _options["options"] = f"{_options.get('options', '')} -c jit=off".strip()
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
AUTHENTICATION_BACKENDS = [
    # Refuses a locked-out username+address before the password is checked.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

# Rate limits (docs/reliability.md), DRF's notation ("1200/min", "30/hour"; "off" disables).
# Generous defaults: a busy CI or SDK fleet never meets them; an abusive client does.
RATE_LIMITS = {
    "api_token": env.str("RATE_LIMIT_API_TOKEN", default="1200/min"),
    "api_address": env.str("RATE_LIMIT_API_ADDRESS", default="3000/min"),
    "auth_failure_address": env.str("RATE_LIMIT_AUTH_FAILURES", default="30/min"),
    "envelope_key": env.str("RATE_LIMIT_ENVELOPE_KEY", default="6000/min"),
    "envelope_project": env.str("RATE_LIMIT_ENVELOPE_PROJECT", default="12000/min"),
}
# Where the counters live (accounts.ratelimits): rows in the database on PostgreSQL, shared by
# every worker and machine; on SQLite, or when RATELIMIT_CACHE_URL names a cache (any
# django-environ cache URL), in that cache: process memory by default, as counting in SQLite
# would make every read take the write lock.
CACHES = {
    "default": env.cache("CACHE_URL", default="locmemcache://"),
    "ratelimit": env.cache("RATELIMIT_CACHE_URL", default="locmemcache://ratelimit"),
}
CACHES["ratelimit"].setdefault("OPTIONS", {}).setdefault("MAX_ENTRIES", 1_000_000)
# Release list and details answers (releases/api/conditional.py, docs/performance.md §5):
# cached per caller under the organization's change stamp for at most RELEASE_CACHE_SECONDS
# (a divisor of 3600; 0 turns caching and ETags off). Process memory by default.
CACHES["responses"] = env.cache("RESPONSE_CACHE_URL", default="locmemcache://responses")
CACHES["responses"].setdefault("OPTIONS", {}).setdefault("MAX_ENTRIES", 2_000)
RELEASE_CACHE_SECONDS = env.int("RELEASE_CACHE_SECONDS", default=300)
if RELEASE_CACHE_SECONDS < 0 or (RELEASE_CACHE_SECONDS and 3600 % RELEASE_CACHE_SECONDS):
    raise environ.ImproperlyConfigured("RELEASE_CACHE_SECONDS must be 0 or divide 3600.")
RATELIMIT_CACHE = "ratelimit"
RATELIMIT_STORE = "cache" if SQLITE or env.str("RATELIMIT_CACHE_URL", "") else "database"

# Admin login: after AXES_FAILURE_LIMIT wrong passwords for one username from one address,
# that pair is refused (429), even with the right password, for AXES_COOLOFF_MINUTES.
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.float("AXES_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_DISABLE_ACCESS_LOG = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = env.path("STATIC_ROOT", default=BASE_DIR / "staticfiles")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # collectstatic writes hashed, compressed copies; WhiteNoise serves them with far-future
    # cache headers. Without DEBUG, run ``collectstatic`` before serving (``make serve`` does).
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# HTTPS: all off by default (loopback, or a proxy that terminates TLS and forwards plain HTTP);
# a deployment behind TLS turns them on (docs/operations.md, "Production settings").
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
# Load balancers probe over plain HTTP: the health check is never redirected.
SECURE_REDIRECT_EXEMPT = [r"^_health/$"]
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = env.bool("SECURE_COOKIES", default=False)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
if env.bool("SECURE_PROXY_SSL_HEADER", default=False):
    # Only behind a proxy that sets (and strips from clients) X-Forwarded-Proto.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# Background jobs run by a scheduler thread in each gunicorn worker (releases/scheduler.py),
# each at most once per interval across workers and machines. Seconds; 0 disables a job.
ADOPTION_INTERVAL = env.int("ADOPTION_INTERVAL", default=300)
CLEANUP_INTERVAL = env.int("CLEANUP_INTERVAL", default=3600)
# Session data older than this many days is deleted (Sentry keeps 90 days).
RETENTION_DAYS = env.int("RETENTION_DAYS", default=90)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # Sentry's API speaks JSON only, whatever Accept or ?format= say.
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # DRF's parsers, with JSON nesting bounded (config/parsers.py).
    "DEFAULT_PARSER_CLASSES": [
        "config.parsers.BoundedJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "config.negotiation.JSONOnly",
    "URL_FORMAT_OVERRIDE": None,
    # OPTIONS answers 200 with the Allow header and no body; the schema at /api/0/schema/
    # describes the API (docs/decisions.md).
    "DEFAULT_METADATA_CLASS": "config.negotiation.AllowOnlyMetadata",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "config.exceptions.exception_handler",
    "DEFAULT_THROTTLE_CLASSES": [
        # The token and address limits, counted in one statement.
        "accounts.throttles.ApiRateThrottle",
    ],
    # Clients behind this many reverse proxies: their address is read from X-Forwarded-For.
    "NUM_PROXIES": env.int("NUM_PROXIES", default=None),
}

# The OpenAPI description of the API (releases/api/schema.py; docs/api.md, "Schema").
SPECTACULAR_SETTINGS = {
    "TITLE": "Sentry-compatible releases",
    "DESCRIPTION": (
        "Sentry's release API (releases, commits, deploys, repositories, organizations, "
        "projects, session statistics) and the SDK envelope endpoint. Errors are "
        '`{"detail": "..."}`. See docs/api.md in the repository.'
    ),
    "VERSION": "0",
    # 3.1: a bearer requirement may list scopes, which is how each operation names its own.
    "OAS_VERSION": "3.1.0",
    # Public, as Sentry's is: a bad or missing token still gets the schema and the docs page.
    "SERVE_AUTHENTICATION": [],
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": r"/api/(0/)?",
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SWAGGER_UI_SETTINGS": {"persistAuthorization": True, "displayOperationId": True},
    "PREPROCESSING_HOOKS": ["releases.api.schema.preprocess"],
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "releases.api.schema.postprocess",
    ],
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="WARNING")},
}
