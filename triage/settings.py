"""Settings for the triage desk, configured entirely from the environment.

With nothing set, a fresh clone runs in development mode: SQLite in ./var and
a Celery broker on the filesystem (no server needed). `TRIAGE_ENV=production`
switches to production mode, which refuses to start on insecure settings and
passes `manage.py check --deploy`.
"""

from __future__ import annotations

from pathlib import Path

import dj_database_url

from triage.env import ConfigError, env_bool, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("TRIAGE_VAR_DIR", str(BASE_DIR / "var")))

PRODUCTION = env_str("TRIAGE_ENV", "development") == "production"

# Development defaults are deliberately recognisable so production can refuse them.
DEV_SECRET_KEY = "dev-insecure-secret-key-do-not-use-in-production-0123456789"  # noqa: S105
# A valid Fernet key, public in this file, hence only for development.
DEV_CREDENTIALS_KEY = "ZGV2LWluc2VjdXJlLWNyZWRlbnRpYWxzLWtleS0wMDA="

SECRET_KEY = env_str("SECRET_KEY", DEV_SECRET_KEY)
DEBUG = env_bool("DEBUG", not PRODUCTION)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", [] if PRODUCTION else ["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

# Fernet keys for credentials at rest: the first encrypts, all decrypt, so a
# key can be rotated by putting the new one first (see `rotate_credentials`).
CREDENTIALS_KEYS = env_list("CREDENTIALS_KEYS", [DEV_CREDENTIALS_KEY])

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django.contrib.postgres",
    "django_htmx",
    "triage",
    "diagnostics",
    "reports",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "triage.urls"
WSGI_APPLICATION = "triage.wsgi.application"

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
                "triage.context.desk",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'triage.sqlite3'}"),
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60 if PRODUCTION else 0, minimum=0),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    # The worker and the web process share the file: wait on locks instead of failing.
    DATABASES["default"]["OPTIONS"] = {"timeout": 20, "transaction_mode": "IMMEDIATE"}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-gb"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
MEDIA_ROOT = VAR_DIR / "media"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    # paramiko logs every connection at INFO; keep its warnings only.
    "loggers": {"paramiko": {"level": "WARNING"}},
}

# --- The desk ---------------------------------------------------------------
# A ticket is "SLA at risk" when its next deadline falls within this window (or has passed).
TRIAGE_SLA_AT_RISK_MINUTES = env_int("TRIAGE_SLA_AT_RISK_MINUTES", 60, minimum=1)
TRIAGE_QUEUE_PAGE_SIZE = env_int("TRIAGE_QUEUE_PAGE_SIZE", 50, minimum=5)

# --- SSH collection -----------------------------------------------------------
# Every phase of a connection is bounded; see diagnostics/ssh.py.
TRIAGE_SSH_TIMEOUTS = {
    "connect": env_int("TRIAGE_SSH_CONNECT_TIMEOUT", 5, minimum=1),
    "banner": env_int("TRIAGE_SSH_BANNER_TIMEOUT", 10, minimum=1),
    "handshake": env_int("TRIAGE_SSH_HANDSHAKE_TIMEOUT", 15, minimum=1),
    "auth": env_int("TRIAGE_SSH_AUTH_TIMEOUT", 60, minimum=1),
}
# Channels run at once over one connection (sshd's MaxSessions defaults to 10).
TRIAGE_SSH_CONCURRENCY = env_int("TRIAGE_SSH_CONCURRENCY", 6, minimum=1)

# --- Celery -----------------------------------------------------------------
# Without a broker URL, use kombu's filesystem transport so `make run` needs no server.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "filesystem://")
if CELERY_BROKER_URL == "filesystem://":
    _broker_dir = VAR_DIR / "broker"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "control_folder": str(_broker_dir / "control"),
        "processed_folder": str(_broker_dir / "processed"),
        "store_processed": False,
    }
    for _folder in ("queue", "control", "processed"):
        (_broker_dir / _folder).mkdir(parents=True, exist_ok=True)
else:
    # Bounded sockets so a dead or hung Redis never blocks a web request for minutes,
    # and a visibility timeout longer than any run so long runs are not re-delivered.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "socket_connect_timeout": 2,
        "socket_timeout": 2,
        "retry_on_timeout": False,
        "max_retries": 1,
        "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 3600, minimum=60),
    }
CELERY_BROKER_CONNECTION_TIMEOUT = 2
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.5}
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_WORKER_MAX_TASKS_PER_CHILD = env_int("CELERY_WORKER_MAX_TASKS_PER_CHILD", 200, minimum=1)
CELERY_WORKER_MAX_MEMORY_PER_CHILD = env_int("CELERY_WORKER_MAX_MEMORY_PER_CHILD", 400_000, minimum=50_000)  # KiB
CELERY_TASK_SOFT_TIME_LIMIT = 300
CELERY_TASK_TIME_LIMIT = 360
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE = {
    "record-worker-heartbeat": {"task": "triage.tasks.record_worker_heartbeat", "schedule": 30.0},
    "flag-sla-breaches": {"task": "triage.tasks.flag_sla_breaches", "schedule": 60.0},
    "sweep-collection-runs": {"task": "diagnostics.tasks.sweep_runs", "schedule": 30.0},
    "refresh-reports": {"task": "reports.tasks.refresh_reports", "schedule": 300.0},
    "rebuild-run-reports": {"task": "reports.tasks.rebuild_run_reports", "schedule": 86400.0},
}

# --- Production hardening ---------------------------------------------------
if PRODUCTION:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31_536_000, minimum=0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_CONTENT_TYPE_NOSNIFF = True
    SECURE_REFERRER_POLICY = "same-origin"
    X_FRAME_OPTIONS = "DENY"
    # Behind the TLS-terminating proxy of docker-compose; only trusted when asked for.
    if env_bool("TRUST_X_FORWARDED_PROTO", False):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]


def refuse_insecure_production_settings() -> None:
    """Raise ConfigError naming every insecure setting, in production mode only."""
    if not PRODUCTION:
        return
    problems = []
    if SECRET_KEY == DEV_SECRET_KEY or len(SECRET_KEY) < 50 or len(set(SECRET_KEY)) < 5:
        problems.append("SECRET_KEY must be set to a random value of at least 50 characters")
    if DEBUG:
        problems.append("DEBUG must be false")
    if not ALLOWED_HOSTS or "*" in ALLOWED_HOSTS:
        problems.append("ALLOWED_HOSTS must list the site's host names (no '*')")
    if DEV_CREDENTIALS_KEY in CREDENTIALS_KEYS:
        problems.append("CREDENTIALS_KEYS must not contain the development key")
    if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
        problems.append("DATABASE_URL must point at PostgreSQL")
    if CELERY_BROKER_URL.startswith("filesystem"):
        problems.append("CELERY_BROKER_URL must point at Redis")
    if problems:
        raise ConfigError("refusing to start in production mode: " + "; ".join(problems))


refuse_insecure_production_settings()
