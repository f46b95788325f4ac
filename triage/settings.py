"""Settings for the triage desk, configured entirely from the environment.

With nothing set, a fresh clone runs in development mode: SQLite in ./var and
a Celery broker on the filesystem (no server needed). `TRIAGE_ENV=production`
switches to production mode, which refuses to start on insecure settings and
passes `manage.py check --deploy`.
"""

from __future__ import annotations

from pathlib import Path

import dj_database_url
from celery.schedules import crontab

from triage.cache_config import REDIS_CACHE_BACKEND, cache_settings, default_cache_url
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
    "rest_framework",
    "drf_spectacular",
    "api",
    "webhooks",
    "mailgate",
    "composition",  # commands spanning every app; nothing imports it
]

MIDDLEWARE = [
    "triage.csp.ContentSecurityPolicyMiddleware",  # outermost: static files get the header too
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "triage.htmx.HtmxMiddleware",  # request.htmx; full pages for history restores, Vary (triage/htmx.py)
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

# --- Logging ---------------------------------------------------------------------
# Every line carries its time (UTC), level and logger; LOG_FORMAT=json writes one JSON object
# per line for a log collector (triage/logformat.py). Celery's worker and beat log through
# this too instead of replacing the root logger with their own format.
LOG_FORMAT = env_str("LOG_FORMAT", "text")
if LOG_FORMAT not in ("text", "json"):
    raise ConfigError(f"LOG_FORMAT must be text or json, got {LOG_FORMAT!r}")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "text": {"()": "triage.logformat.TextFormatter"},
        "json": {"()": "triage.logformat.JsonFormatter"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        # paramiko logs every connection at INFO; keep its warnings only.
        "paramiko": {"level": "WARNING"},
        # Named so dictConfig drops Django's own handlers (unformatted lines, and printed twice
        # in development): their records reach the root handler and its format instead.
        "django": {"level": "INFO", "propagate": True},
        "django.server": {"level": "INFO", "propagate": True},
    },
}
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# --- end logging -------------------------------------------------------------------

# --- The desk ---------------------------------------------------------------
# A ticket is "SLA at risk" when its next deadline falls within this window (or has passed).
TRIAGE_SLA_AT_RISK_MINUTES = env_int("TRIAGE_SLA_AT_RISK_MINUTES", 60, minimum=1)
TRIAGE_QUEUE_PAGE_SIZE = env_int("TRIAGE_QUEUE_PAGE_SIZE", 50, minimum=5)

# --- Matching -------------------------------------------------------------------
# Every signature regex runs on hyperscan (linear in the evidence); on top of that, matching one
# run (or a curation "Try it" over the newest runs) stops cleanly past this many seconds.
TRIAGE_MATCH_BUDGET_SECONDS = env_int("TRIAGE_MATCH_BUDGET_SECONDS", 5, minimum=0)

# --- SSH collection -----------------------------------------------------------
# Every phase of a connection is bounded; see diagnostics/ssh.py.
TRIAGE_SSH_TIMEOUTS = {
    "connect": env_int("TRIAGE_SSH_CONNECT_TIMEOUT", 5, minimum=1),
    "banner": env_int("TRIAGE_SSH_BANNER_TIMEOUT", 10, minimum=1),
    "handshake": env_int("TRIAGE_SSH_HANDSHAKE_TIMEOUT", 15, minimum=1),
    "auth": env_int("TRIAGE_SSH_AUTH_TIMEOUT", 60, minimum=1),
    # The login shell's start-up files (~/.bashrc) before each command starts; its own timeout runs from then.
    "shell_start": env_int("TRIAGE_SSH_SHELL_START_TIMEOUT", 20, minimum=1),
}
# Channels a run opens on one host at most (each is a login shell there): a probe that waits by design
# (a capture, a sample) gets a channel of its own and the quick probes share one, running one after
# another (diagnostics.ssh_lanes). Six per host made sshd start 300 login shells when 50 hosts were swept.
TRIAGE_SSH_CHANNELS_PER_HOST = env_int("TRIAGE_SSH_CHANNELS_PER_HOST", 3, minimum=1)

# --- rundesk supervision ---------------------------------------------------------
# `manage.py rundesk` restarts a dead child after TRIAGE_DESK_BACKOFF_MS, doubled per restart up to
# TRIAGE_DESK_BACKOFF_MAX seconds; a child restarted TRIAGE_DESK_MAX_RESTARTS times within
# TRIAGE_DESK_RESTART_WINDOW seconds that dies again stops the desk (exit status 1).
TRIAGE_DESK_MAX_RESTARTS = env_int("TRIAGE_DESK_MAX_RESTARTS", 5, minimum=0)
TRIAGE_DESK_RESTART_WINDOW = env_int("TRIAGE_DESK_RESTART_WINDOW", 120, minimum=1)
TRIAGE_DESK_BACKOFF_MS = env_int("TRIAGE_DESK_BACKOFF_MS", 1000, minimum=10)
TRIAGE_DESK_BACKOFF_MAX = env_int("TRIAGE_DESK_BACKOFF_MAX", 30, minimum=1)
# /healthz answers 503, and staff pages show a banner, when the worker's heartbeat (recorded
# by beat every 30 s) is older than this many seconds.
TRIAGE_WORKER_HEARTBEAT_MAX_AGE = env_int("TRIAGE_WORKER_HEARTBEAT_MAX_AGE", 90, minimum=31)
# --- end rundesk supervision -------------------------------------------------------

# --- Celery -----------------------------------------------------------------
# Without a broker URL, the embedded broker: files under var/broker, so `make run` needs no
# server. It is kombu's filesystem transport with atomic writes and claims (triage/broker.py);
# kombu's own read half-written messages under load and killed the worker (kombu#1551).
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "filesystem://")
if CELERY_BROKER_URL == "filesystem://":
    from triage.broker import transport_options as _embedded_broker_options

    CELERY_BROKER_TRANSPORT = "triage.broker:Transport"
    # How often an idle consumer looks for new files; also paces a worker whose slots are full.
    CELERY_BROKER_TRANSPORT_OPTIONS = _embedded_broker_options(
        VAR_DIR / "broker", polling_interval=env_int("TRIAGE_BROKER_POLL_MS", 100, minimum=10) / 1000
    )
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
    # Fleet sweeps scheduled per customer (SweepSchedule); a due time missed while beat was down runs once.
    "start-due-sweeps": {"task": "diagnostics.tasks.start_due_sweeps", "schedule": 60.0},
    "refresh-reports": {"task": "reports.tasks.refresh_reports", "schedule": 300.0},
    "rebuild-run-reports": {"task": "reports.tasks.rebuild_run_reports", "schedule": 86400.0},
}

# --- Cache (rate-limit counters; triage/cache_config.py) ---------------------------
# Shared by every web process, or each gunicorn worker would count failed logins alone.
TRIAGE_CACHE_URL = env_str("TRIAGE_CACHE_URL", default_cache_url(broker_url=CELERY_BROKER_URL, var_dir=VAR_DIR))
CACHES = {"default": cache_settings(TRIAGE_CACHE_URL)}
# --- end cache -------------------------------------------------------------------

# --- Content-Security-Policy (triage/csp.py) ---------------------------------------
# Scripts and styles from the site only: no inline script or style, no eval; plotly draws with
# data: images. TRIAGE_CSP replaces the whole policy (e.g. to add a report-to directive).
CONTENT_SECURITY_POLICY = env_str(
    "TRIAGE_CSP",
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; font-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'",
)
# --- end Content-Security-Policy ---------------------------------------------------

# --- Collection workers (diagnostics/tasks.py, triage/worker_commands.py) -------
# A collection waits on networks (connect, banner, login, remote commands), so it gets a queue of
# its own, consumed by a worker with a thread pool sized for waiting: unreachable hosts holding
# slots until their bounds never hold up a reachable one. Everything else stays on the prefork
# worker's default queue.
TRIAGE_COLLECT_QUEUE = "collect"
CELERY_TASK_ROUTES = {
    "diagnostics.tasks.collect_run": {"queue": TRIAGE_COLLECT_QUEUE},
    "diagnostics.tasks.collect_runs": {"queue": TRIAGE_COLLECT_QUEUE},
}
# Collections at once per collector worker: threads, each holding one SSH connection while its run
# waits on the network, and no database connection then. Sized so a sweep of a customer's fleet
# starts at once instead of queueing behind slots; database use is bounded apart (below).
TRIAGE_COLLECT_CONCURRENCY = env_int("TRIAGE_COLLECT_CONCURRENCY", 64, minimum=1)
# Database connections a collector process opens at most, shared by all its threads (a pool on
# PostgreSQL, triage/worker_database.py): runs hold one only while they read or store, never while
# they wait on a host, and one heartbeat thread beats every active run in one UPDATE.
TRIAGE_COLLECT_DB_CONNECTIONS = env_int("TRIAGE_COLLECT_DB_CONNECTIONS", 8, minimum=2)
# Processes `run_collector` starts, sharing the threads and the database connections above: one
# Python process runs its threads' Python work (paramiko's packets, the ORM, matching) on one core
# at a time, so a fleet's sweep on one process leaves the other cores idle.
TRIAGE_COLLECT_PROCESSES = env_int("TRIAGE_COLLECT_PROCESSES", 2, minimum=1)
# Prefork processes of the general worker (diagnosis, mail, webhooks, reports: CPU-bound or short);
# each holds at most one database connection.
TRIAGE_WORKER_CONCURRENCY = env_int("TRIAGE_WORKER_CONCURRENCY", 4, minimum=1)
# A run is stopped past this many seconds, whatever the pool (threads have no Celery time limits).
TRIAGE_COLLECT_TIME_LIMIT = env_int("TRIAGE_COLLECT_TIME_LIMIT", 240, minimum=1)
if CELERY_BROKER_URL.startswith("redis://"):
    # kombu's transport, with a crash on Redis dying mid-task turned into a reconnect.
    CELERY_BROKER_TRANSPORT = "triage.redis_transport:Transport"
# --- end collection workers ------------------------------------------------------

# --- Webhooks (webhooks/) ------------------------------------------------------
# Outbound, signed, retried deliveries; every attempt is bounded (see webhooks/transport.py).
TRIAGE_WEBHOOK_CONNECT_TIMEOUT = env_int("TRIAGE_WEBHOOK_CONNECT_TIMEOUT", 5, minimum=1)
TRIAGE_WEBHOOK_READ_TIMEOUT = env_int("TRIAGE_WEBHOOK_READ_TIMEOUT", 10, minimum=1)
TRIAGE_WEBHOOK_TOTAL_TIMEOUT = env_int("TRIAGE_WEBHOOK_TOTAL_TIMEOUT", 30, minimum=2)
TRIAGE_WEBHOOK_MAX_ATTEMPTS = env_int("TRIAGE_WEBHOOK_MAX_ATTEMPTS", 8, minimum=1)
TRIAGE_WEBHOOK_BACKOFF_BASE = env_int("TRIAGE_WEBHOOK_BACKOFF_BASE", 30, minimum=1)  # seconds, doubled per attempt
TRIAGE_WEBHOOK_BACKOFF_MAX = env_int("TRIAGE_WEBHOOK_BACKOFF_MAX", 3600, minimum=1)
TRIAGE_WEBHOOK_RETRY_AFTER_MAX = env_int("TRIAGE_WEBHOOK_RETRY_AFTER_MAX", 3600, minimum=1)  # bound on 429 Retry-After
# Loopback, private, link-local and other non-public targets are refused (SSRF) unless this is true.
TRIAGE_WEBHOOK_ALLOW_PRIVATE = env_bool("TRIAGE_WEBHOOK_ALLOW_PRIVATE", False)
CELERY_BEAT_SCHEDULE["requeue-webhook-deliveries"] = {
    "task": "webhooks.tasks.requeue_due_deliveries",
    "schedule": 60.0,
}
# --- end webhooks ----------------------------------------------------------------

# --- REST API (api/) -----------------------------------------------------------
# Token (hashed keys, api/authentication.py) or session auth; the role rules of triage/access.py.
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "api.authentication.HashedTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_THROTTLE_CLASSES": ["api.throttling.ApiUserThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "api": env_str("TRIAGE_API_RATE", "1200/minute"),
        "token": env_str("TRIAGE_API_TOKEN_RATE", "10/minute"),  # password logins and new tokens, per address
    },
    # Clients are told apart by REMOTE_ADDR unless this many proxies in front are trusted for X-Forwarded-For.
    "NUM_PROXIES": env_int("TRIAGE_TRUSTED_PROXIES", 0, minimum=0),
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["api.parsers.BoundedJSONParser"],
    "EXCEPTION_HANDLER": "api.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Triage desk API",
    "DESCRIPTION": "Tickets, servers, collections, evidence, the knowledge base and monitoring alerts. "
    "Authenticate with `Authorization: Token <key>` (POST /api/v1/auth/token/ for a first key). "
    'A ticket read carries its `version` and the ETag `W/"<version>"`: send it back as If-Match (412 when the '
    "ticket changed since) or as `version` in the body (409) to have a change refused rather than applied over "
    "someone else's; without either the change is applied.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "PATH_CONVERTER_OVERRIDES": {"id": {"type": "integer", "minimum": 0, "maximum": 10**18 - 1}},
    "ENUM_NAME_OVERRIDES": {
        "TicketStatusEnum": "triage.models.Status",
        "PriorityEnum": "triage.models.Priority",
    },
}
# A monitoring alert without a playbook collects with this one.
TRIAGE_ALERT_PLAYBOOK = env_str("TRIAGE_ALERT_PLAYBOOK", "Host health")
# The browser's login form: failed attempts per address and user name, and per address, within the window.
TRIAGE_LOGIN_ATTEMPTS = env_int("TRIAGE_LOGIN_ATTEMPTS", 5, minimum=1)
TRIAGE_LOGIN_ATTEMPTS_PER_ADDRESS = env_int("TRIAGE_LOGIN_ATTEMPTS_PER_ADDRESS", 50, minimum=1)
TRIAGE_LOGIN_WINDOW_SECONDS = env_int("TRIAGE_LOGIN_WINDOW_SECONDS", 300, minimum=1)
# --- end REST API ----------------------------------------------------------------

# --- Mail gateway (mailgate/) -------------------------------------------------------
# Inbound: `manage.py run_mailgate` listens for the desk's addresses (the first is also the From of
# notifications). Outbound: Django's e-mail backend; development writes mail to files under var/outbox.
TRIAGE_MAIL_ADDRESSES = [a.lower() for a in env_list("TRIAGE_MAIL_ADDRESS", ["support@desk.example"])]
if not TRIAGE_MAIL_ADDRESSES:
    raise ConfigError("TRIAGE_MAIL_ADDRESS must name at least one address")
TRIAGE_MAIL_HOST = env_str("TRIAGE_MAIL_HOST", "127.0.0.1")
TRIAGE_MAIL_PORT = env_int("TRIAGE_MAIL_PORT", 2525, minimum=1)
TRIAGE_MAIL_HOSTNAME = env_str("TRIAGE_MAIL_HOSTNAME", TRIAGE_MAIL_ADDRESSES[0].rsplit("@", 1)[-1])
TRIAGE_MAIL_MAX_BYTES = env_int("TRIAGE_MAIL_MAX_BYTES", 25 * 1024 * 1024, minimum=1024)
# Files a tech attaches in the browser (reply, note, new ticket): each at most this many bytes, and all of one
# message together at most TRIAGE_MAIL_MAX_BYTES (a reply's files are mailed to the customer with it).
TRIAGE_UPLOAD_MAX_FILE_BYTES = env_int("TRIAGE_UPLOAD_MAX_FILE_BYTES", 10 * 1024 * 1024, minimum=1024)
TRIAGE_MAIL_TIMEOUT = env_int("TRIAGE_MAIL_TIMEOUT", 60, minimum=5)  # idle seconds before a session is dropped
# Mail from unknown senders is held (outcome "unmatched") unless this names a customer to file it under.
TRIAGE_MAIL_UNMATCHED_CUSTOMER = env_str("TRIAGE_MAIL_UNMATCHED_CUSTOMER", "")
TRIAGE_SITE_URL = env_str(
    "TRIAGE_SITE_URL",
    f"https://{ALLOWED_HOSTS[0].lstrip('.')}" if PRODUCTION and ALLOWED_HOSTS else "http://127.0.0.1:8000",
)
EMAIL_BACKEND = env_str(
    "EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend" if PRODUCTION else "django.core.mail.backends.filebased.EmailBackend",
)
EMAIL_FILE_PATH = str(VAR_DIR / "outbox")
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25, minimum=1)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10, minimum=1)
DEFAULT_FROM_EMAIL = TRIAGE_MAIL_ADDRESSES[0]
SERVER_EMAIL = TRIAGE_MAIL_ADDRESSES[0]
CELERY_BEAT_SCHEDULE["mailgate-send-pending"] = {"task": "mailgate.tasks.send_pending", "schedule": 300.0}
# Hosted mailboxes polled over IMAP (the Mailboxes page; mailgate/mailbox_services.py): beat polls every
# enabled one this often; each network step waits at most TRIAGE_IMAP_TIMEOUT seconds; TRIAGE_IMAP_CA_FILE
# adds a CA (PEM) to the system's for servers whose certificate a private CA signed.
TRIAGE_IMAP_POLL_SECONDS = env_int("TRIAGE_IMAP_POLL_SECONDS", 60, minimum=10)
TRIAGE_IMAP_TIMEOUT = env_int("TRIAGE_IMAP_TIMEOUT", 30, minimum=1)
TRIAGE_IMAP_CA_FILE = env_str("TRIAGE_IMAP_CA_FILE", "")
CELERY_BEAT_SCHEDULE["mailgate-poll-mailboxes"] = {
    "task": "mailgate.tasks.poll_mailboxes",
    "schedule": float(TRIAGE_IMAP_POLL_SECONDS),
}
# --- end mail gateway ------------------------------------------------------------

# --- Retention (composition/retention.py, `manage.py prune`) -----------------------------
# Days to keep the bulky bytes of each kind (0 = forever); the rows, matches and timeline stay.
TRIAGE_RETAIN_EVIDENCE_DAYS = env_int("TRIAGE_RETAIN_EVIDENCE_DAYS", 365, minimum=0)
TRIAGE_RETAIN_PCAP_DAYS = env_int("TRIAGE_RETAIN_PCAP_DAYS", 90, minimum=0)
TRIAGE_RETAIN_RAW_MAIL_DAYS = env_int("TRIAGE_RETAIN_RAW_MAIL_DAYS", 90, minimum=0)
TRIAGE_RETAIN_ATTACHMENT_DAYS = env_int("TRIAGE_RETAIN_ATTACHMENT_DAYS", 365, minimum=0)
# Daily, at a quiet hour; each run does bounded batches, so a backlog is caught up over days.
CELERY_BEAT_SCHEDULE["prune-retention"] = {
    "task": "triage.tasks.prune_retention",
    "schedule": crontab(hour=3, minute=17),
}
# --- end retention ------------------------------------------------------------------

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
    if CACHES["default"]["BACKEND"] != REDIS_CACHE_BACKEND:
        # A per-process cache lets each worker count failed logins alone; a file cache's counters are not atomic.
        problems.append("TRIAGE_CACHE_URL must point at Redis")
    if problems:
        raise ConfigError("refusing to start in production mode: " + "; ".join(problems))


refuse_insecure_production_settings()
