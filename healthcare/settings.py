"""Settings for healthcare-backend, read from the environment (and `.env`, if present).

Every variable is listed, with its default, in `.env.example` and in the README. A malformed value stops
the process at start (see `healthcare.env`); there is no production secret default.
"""

import copy
import importlib.util
import os
import re
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from dotenv import load_dotenv

from healthcare.env import (
    env_bool,
    env_host,
    env_int,
    env_list,
    env_origins,
    env_rate,
    env_str,
    env_time_zone,
)

BASE_DIR = Path(__file__).resolve().parent.parent
load_dotenv(BASE_DIR / ".env", override=False)

# Local state of `make run` / `make test`: generated secret key, embedded PostgreSQL, file cache.
DATA_DIR = Path(env_str("DATA_DIR") or BASE_DIR / ".data")

DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1"])

# The server (scripts/dev.py, gunicorn.conf.py): `make run` serves on HOST:PORT through nginx, with
# WEB_CONCURRENCY gunicorn workers behind it. Read here so that a malformed value is refused like any other.
HOST = env_host("HOST", "127.0.0.1")
PORT = env_int("PORT", 8000, min_value=1, max_value=65535)
# One worker per core: the requests are CPU-bound Python, and more workers than cores measured slower (fewer
# req/s, longer p99: benchmarks/TUNING.md); the login pool keeps slow logins from holding them.
WEB_CONCURRENCY = env_int("WEB_CONCURRENCY", os.cpu_count() or 1, min_value=1, max_value=256)
# Workers of the login pool (scripts/serving.py): logins and registrations, at a lower CPU priority; 0: none.
LOGIN_CONCURRENCY = env_int("LOGIN_CONCURRENCY", 1, min_value=0, max_value=64)

# Graceful shutdown (gunicorn.conf.py, hospital.draining): after SIGTERM, /api/ready/ answers 503 for this many
# seconds, while every request is still served, so that a load balancer stops sending any; then gunicorn stops.
DRAIN_SECONDS = env_int("DRAIN_SECONDS", 0, min_value=0, max_value=300)

# /metrics (hospital.views.metrics) answers clients on this host only, unless this token is set: then it answers
# whoever sends it as `Authorization: Bearer <token>`, from anywhere, and nobody else.
METRICS_TOKEN = env_str("METRICS_TOKEN")

# Placeholders that appear in this repository and must never sign a production token.
KNOWN_INSECURE_KEYS = {"change-me", "replace-with-a-long-random-string"}


def read_secret_key() -> str:
    key = env_str("SECRET_KEY")
    if not key and (DATA_DIR / "secret_key").is_file():
        key = (DATA_DIR / "secret_key").read_text().strip()
    if not key:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set it in the environment or .env, or use `make run` / `make test`, "
            "which generate one into .data/secret_key."
        )
    if not DEBUG and (
        len(key) < 50 or len(set(key)) < 5 or key.startswith("django-insecure") or key in KNOWN_INSECURE_KEYS
    ):
        raise ImproperlyConfigured(
            "SECRET_KEY is too short or a known placeholder; with DEBUG off it must be at least "
            "50 random characters (python -c 'import secrets; print(secrets.token_urlsafe(50))')."
        )
    return key


SECRET_KEY = read_secret_key()

INSTALLED_APPS = [
    # The admin with this project's site (hospital.admin_site.HospitalAdminSite).
    "hospital.apps.HospitalAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "corsheaders",
    "rest_framework",
    "rest_framework_simplejwt.token_blacklist",
    "axes",
    "django_filters",
    "simple_history",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "hospital",
]
# The migration linter (requirements-dev.txt, `make test`: lintmigrations); not part of a production install.
if importlib.util.find_spec("django_migration_linter"):
    INSTALLED_APPS.append("django_migration_linter")

MIDDLEWARE = [
    # Outermost: it times the whole request and sees the final status.
    "hospital.request_log.RequestLogMiddleware",
    # Prometheus counters of the same (hospital.metrics), served at /metrics.
    "hospital.metrics.MetricsMiddleware",
    # Answers CORS preflights itself (no authentication) and adds the CORS headers to every /api/ answer.
    "corsheaders.middleware.CorsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Sessions, session logins and messages: Django's, for the admin only (the API uses tokens).
    "hospital.middleware.SessionsOutsideApi",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "hospital.middleware.LoginOutsideApi",
    "hospital.middleware.MessagesOutsideApi",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Admin sessions end after ADMIN_SESSION_IDLE_MINUTES idle and ADMIN_SESSION_MAX_HOURS in all.
    "hospital.middleware.AdminSessionLimitsOutsideApi",
    # Lets history records name the user who made each change.
    "simple_history.middleware.HistoryRequestMiddleware",
    # Turns an admin login lockout (django-axes) into its 429 page (axes checks for it by this name).
    "axes.middleware.AxesMiddleware",
    # Innermost, so that its early answers (413) still get every header the others add.
    "hospital.middleware.ApiGuardMiddleware",
]
# `make bench` only: an X-Query-Count header on every response (hospital.query_count). Off by default.
BENCHMARK_QUERY_COUNT = env_bool("BENCHMARK_QUERY_COUNT", False)
if BENCHMARK_QUERY_COUNT:
    MIDDLEWARE = ["hospital.query_count.QueryCountMiddleware", *MIDDLEWARE]

ROOT_URLCONF = "healthcare.urls"
WSGI_APPLICATION = "healthcare.wsgi.application"

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


def read_database_url() -> str:
    url = env_str("DATABASE_URL")
    if not url and (DATA_DIR / "database_url").is_file():
        url = (DATA_DIR / "database_url").read_text().strip()
    if not url:
        raise ImproperlyConfigured(
            "DATABASE_URL is not set and the embedded PostgreSQL has not been started. "
            "Set DATABASE_URL, or use `make run` / `make test`, which start it."
        )
    return url


# "A day" for appointments is a calendar day in this zone (hospital.scheduling). PostgreSQL needs it too, for
# the daily-limit trigger (migration appointment_daily_limit): every connection declares it.
CLINIC_TIME_ZONE = env_time_zone("CLINIC_TIME_ZONE", "UTC")


def parse_database_url(name: str, url: str) -> dict:
    """A PostgreSQL URL as a DATABASES entry, with the options every connection of the app needs."""
    try:
        database = dj_database_url.parse(
            url,
            conn_max_age=env_int("DB_CONN_MAX_AGE", 60, min_value=0, max_value=86400),
            conn_health_checks=True,
        )
    except ValueError as error:
        raise ImproperlyConfigured(f"{name} is malformed: {error}") from None
    if database["ENGINE"] != "django.db.backends.postgresql":
        raise ImproperlyConfigured(f"{name} must point to PostgreSQL (postgres://...).")
    options = database.setdefault("OPTIONS", {})
    # Fail fast while the database is unreachable, so clients get a 503 instead of a hanging request.
    options["connect_timeout"] = env_int("DB_CONNECT_TIMEOUT", 3, min_value=1, max_value=60)
    options["options"] = " ".join(
        filter(None, [options.get("options"), f"-c hospital.clinic_time_zone={CLINIC_TIME_ZONE.key}"])
    )
    return database


DATABASES = {"default": parse_database_url("DATABASE_URL", read_database_url())}
# A streaming replica of the primary (DATABASE_REPLICA_URL, optional) serves the reads of list and detail views
# (hospital.db_router); a user who has just written reads from the primary for REPLICA_PIN_SECONDS. Without it the
# "replica" alias is the primary itself and nothing reads through it (READ_REPLICA is None); it is there so that
# tests can turn replica reads on over Django's test mirror.
DATABASE_REPLICA_URL = env_str("DATABASE_REPLICA_URL")
READ_REPLICA = "replica" if DATABASE_REPLICA_URL else None
DATABASES["replica"] = {
    **(
        parse_database_url("DATABASE_REPLICA_URL", DATABASE_REPLICA_URL)
        if READ_REPLICA
        else copy.deepcopy(DATABASES["default"])
    ),
    "TEST": {"MIRROR": "default"},
}
DATABASE_ROUTERS = ["hospital.db_router.ReplicaRouter"]
# `manage.py migrate` waits at most this long for a lock (hospital/management/commands/migrate.py), so that a
# migration run while instances serve never blocks them for longer; a PostgreSQL duration: 5s, 500ms, 1min, 0.
MIGRATION_LOCK_TIMEOUT = env_str("MIGRATION_LOCK_TIMEOUT") or "5s"
if not re.fullmatch(r"\d+(ms|s|min)?", MIGRATION_LOCK_TIMEOUT):
    raise ImproperlyConfigured(
        f"MIGRATION_LOCK_TIMEOUT must be a duration such as 5s, 500ms or 1min, not {MIGRATION_LOCK_TIMEOUT!r}."
    )
REPLICA_PIN_SECONDS = env_int("REPLICA_PIN_SECONDS", 5, min_value=0, max_value=3600)

AUTH_USER_MODEL = "hospital.User"
# django-axes first: it refuses admin logins of a locked-out account or address before any password check.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# "default": the count cache (hospital.pagination), shared by the workers of a host, without a server.
# "users": each worker's own copy of the users its tokens name (hospital.authentication); a copy is
# checked against the user's stamp in the security store on every request, and reused at most this long.
USER_CACHE_SECONDS = env_int("USER_CACHE_SECONDS", 60, min_value=0, max_value=3600)
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
        "LOCATION": str(DATA_DIR / "cache"),
    },
    "users": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "users"},
    # The security store (hospital.security_store): throttle counters, user stamps and revoked sessions.
    # Its own directory, and a backend that never evicts a live entry, so that no traffic (list orderings
    # filling the count cache, requests from many addresses) can reset a throttle or forget a revocation.
    # MAX_ENTRIES is only the size past which expired files are swept.
    "security": {
        "BACKEND": "hospital.security_store.NonEvictingFileBasedCache",
        "LOCATION": str(DATA_DIR / "security"),
        "OPTIONS": {"MAX_ENTRIES": 10_000},
    },
}
# Several instances share one Redis (REDIS_URL, e.g. redis://127.0.0.1:6379/0) for the count cache and the
# security store, under their own key prefixes, so that throttles, revocations and cached counts are the same on
# every instance. Redis must run with `maxmemory-policy noeviction`: a security entry must never be evicted.
# Unreachable, it is skipped fast (hospital.redis_store): logins and registrations are refused (503), the rest
# is served.
REDIS_URL = env_str("REDIS_URL")
if REDIS_URL:
    if not REDIS_URL.startswith(("redis://", "rediss://", "unix://")):
        raise ImproperlyConfigured("REDIS_URL must start with redis://, rediss:// or unix://.")  # no password echoed
    CACHES["default"] = {
        "BACKEND": "hospital.redis_store.SharedCountCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "count",
    }
    CACHES["security"] = {
        "BACKEND": "hospital.redis_store.SecurityRedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "security",
    }

# Request bodies: the API accepts JSON objects of at most 1 MiB (larger -> 413).
MAX_REQUEST_BODY_BYTES = 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = MAX_REQUEST_BODY_BYTES

# Audit rows of reads are committed without waiting for the disk unless this is true (hospital.audit).
AUDIT_SYNCHRONOUS_READS = env_bool("AUDIT_SYNCHRONOUS_READS", False)
# X-Total-Count of lists over 10,000 rows is reused for this long (hospital.pagination); 0: always counted.
COUNT_CACHE_SECONDS = env_int("COUNT_CACHE_SECONDS", 30, min_value=0, max_value=3600)
# How long a clinician's emergency access to a patient lasts (hospital.access, /api/patients/<id>/emergency-access/).
EMERGENCY_ACCESS_MINUTES = env_int("EMERGENCY_ACCESS_MINUTES", 60, min_value=1, max_value=24 * 60)
PAGE_SIZE = env_int("PAGE_SIZE", 50, min_value=1, max_value=10_000)
MAX_PAGE_SIZE = env_int("MAX_PAGE_SIZE", 500, min_value=1, max_value=10_000)
if PAGE_SIZE > MAX_PAGE_SIZE:
    raise ImproperlyConfigured(f"PAGE_SIZE ({PAGE_SIZE}) must not exceed MAX_PAGE_SIZE ({MAX_PAGE_SIZE}).")

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["hospital.authentication.CachedUserJWTAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["hospital.renderers.FastJSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["hospital.parsers.StrictJSONParser"],
    "DEFAULT_PAGINATION_CLASS": "hospital.pagination.LinkHeaderPagination",
    "DEFAULT_FILTER_BACKENDS": [
        "hospital.filters.QueryFilterBackend",
        "hospital.filters.StrictSearchFilter",
        "hospital.filters.StrictOrderingFilter",
    ],
    "DEFAULT_SCHEMA_CLASS": "hospital.schema.ApiAutoSchema",
    "EXCEPTION_HANDLER": "hospital.exceptions.api_exception_handler",
    # Throttles count per client address (hospital.throttles) in the security store. Anonymous requests
    # (no valid token) to every route but health: ANON_THROTTLE_RATE; login and registration also each
    # have their own AUTH_THROTTLE_RATE.
    "DEFAULT_THROTTLE_CLASSES": ["hospital.throttles.AnonymousRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env_rate("ANON_THROTTLE_RATE", "60/min"),
        "login": env_rate("AUTH_THROTTLE_RATE", "20/min"),
        "register": env_rate("AUTH_THROTTLE_RATE", "20/min"),
    },
    # Client address (hospital.audit.client_ip): REMOTE_ADDR, unless this many trusted proxies set
    # X-Forwarded-For. DRF's default (None) would trust any client-supplied X-Forwarded-For.
    "NUM_PROXIES": env_int("NUM_PROXIES", 0, min_value=0, max_value=10),
    "PAGE_SIZE": PAGE_SIZE,
}

SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env_int("ACCESS_TOKEN_MINUTES", 15, min_value=1, max_value=1440)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env_int("REFRESH_TOKEN_DAYS", 7, min_value=1, max_value=365)),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "UPDATE_LAST_LOGIN": False,
    # Tokens stop working when the user's password changes.
    "CHECK_REVOKE_TOKEN": True,
    "ALGORITHM": "HS256",
    "AUTH_HEADER_TYPES": ("Bearer",),
}

SPECTACULAR_SETTINGS = {
    "TITLE": "healthcare-backend API",
    "DESCRIPTION": (
        "Patients, doctors and the assignment of doctors to patients, behind JWT authentication. "
        "Log in at /api/auth/login/, then use Authorize with the access token."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SWAGGER_UI_SETTINGS": {"persistAuthorization": True},
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {"GenderEnum": "hospital.models.Gender"},
    "PREPROCESSING_HOOKS": ["hospital.schema.exclude_unslashed_routes"],
}

# Security headers; HSTS, HTTPS redirect and secure cookies when served behind TLS (HTTPS=true).
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
HTTPS = env_bool("HTTPS", False)
if HTTPS:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = True
    SECURE_HSTS_SECONDS = 31_536_000
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

# CORS (django-cors-headers): browser front ends on these origins may call the API; none by default. Tokens
# travel in the Authorization header, never in cookies, so credentials are not allowed cross-origin.
CORS_ALLOWED_ORIGINS = env_origins("CORS_ALLOWED_ORIGINS")
CORS_URLS_REGEX = r"^/api/.*$"
CORS_ALLOW_HEADERS = [
    "accept",
    "authorization",
    "content-type",
    "idempotency-key",
    "if-match",
    "if-none-match",
    "x-request-id",
]
CORS_EXPOSE_HEADERS = ["etag", "link", "x-total-count", "x-request-id", "retry-after", "idempotent-replayed"]

# Admin logins (django-axes): after ADMIN_LOGIN_FAILURE_LIMIT failures within ADMIN_LOGIN_COOLOFF_MINUTES, an
# account, and separately a client address, is locked out of the admin for that long (429). Attempts live in
# the database (shared by every worker and host, kept across restarts). The API's login is not axes' business:
# it keeps its own throttle (hospital.admin_security.AdminOnlyAxesHandler ignores it).
AXES_ENABLED = True
AXES_HANDLER = "hospital.admin_security.AdminOnlyAxesHandler"
AXES_ONLY_ADMIN_SITE = True
AXES_FAILURE_LIMIT = env_int("ADMIN_LOGIN_FAILURE_LIMIT", 5, min_value=1, max_value=100)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("ADMIN_LOGIN_COOLOFF_MINUTES", 15, min_value=1, max_value=1440))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
# The same client address as the audit trail and DRF's throttles: X-Forwarded-For only from NUM_PROXIES proxies.
AXES_CLIENT_IP_CALLABLE = "hospital.audit.client_ip"
AXES_USERNAME_CALLABLE = "hospital.admin_security.canonical_login_username"
AXES_LOCKOUT_CALLABLE = "hospital.admin_security.lockout_response"
# No usernames or addresses in log lines: axes names a client by this string (the line carries the request id).
AXES_CLIENT_STR_CALLABLE = "hospital.admin_security.anonymous_client_str"
AXES_VERBOSE = False
# Successful logins are in the audit trail; axes' own log of them (with usernames) is not kept.
AXES_DISABLE_ACCESS_LOG = True
# Masked in what axes stores of a failed login's form (its access attempts page shows it).
AXES_SENSITIVE_PARAMETERS = ["username", "ip_address", "password", "csrfmiddlewaretoken"]

# Admin sessions (HIPAA 164.312(a)(2)(iii), automatic logoff): a session ends after ADMIN_SESSION_IDLE_MINUTES
# without an admin request and ADMIN_SESSION_MAX_HOURS after login, whatever the activity, and when the
# browser closes. The API uses tokens, not sessions.
SESSION_COOKIE_AGE = 60 * env_int("ADMIN_SESSION_IDLE_MINUTES", 30, min_value=1, max_value=30)
ADMIN_SESSION_MAX_AGE = timedelta(hours=env_int("ADMIN_SESSION_MAX_HOURS", 12, min_value=1, max_value=12))
SESSION_EXPIRE_AT_BROWSER_CLOSE = True

# Logs are JSON lines with no patient data, query strings, tokens or bodies (hospital.request_log); the
# app logs each request itself, so gunicorn's access log is off (gunicorn.conf.py).
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "hospital.request_log.JsonFormatter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "json"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO").upper()},
    "loggers": {
        # 4xx responses are the client's business and are answered in JSON; keep the log for faults.
        "django.request": {"level": "ERROR"},
        # Every admin login attempt and lockout is in the audit trail (401, 429); axes' own lines repeat them.
        "axes": {"level": "ERROR"},
    },
}
