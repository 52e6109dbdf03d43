"""Sieve's settings, all driven by environment variables (see docs/operations/configuration.md)."""
from datetime import timedelta
from pathlib import Path

import dj_database_url

from .env import env_bool, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent.parent

DEBUG = env_bool("DEBUG", False)
# Development, the demo (`make run`) and the test suite run on the built-in secrets below: SIEVE_DEV=1 (or
# DEBUG=true) says so. Anywhere else Sieve refuses to start until each secret is set (config/checks.py).
SIEVE_DEV = env_bool("SIEVE_DEV", False)
DEV_SECRET_KEY = "sieve-insecure-development-key-change-me-in-production"
SECRET_KEY = env_str("SECRET_KEY", DEV_SECRET_KEY)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

# Where everything Sieve keeps on disk lives: raw payloads, Parquet copies, and for the
# embedded default the SQLite database and the broker's message folders.
DATA_DIR = Path(env_str("SIEVE_DATA_DIR", str(BASE_DIR / "var")))

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "collection",
    "validation",
    "labeling",
    "trainingsets",
    "config.apps.PipelineConfig",
    "axes",
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
    # Last: turns a sign-in refused by the login throttle into its 429 page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

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

DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{DATA_DIR / 'sieve.sqlite3'}"),
        conn_max_age=env_int("DB_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    # The web app and the worker write to one SQLite file: wait for the lock instead of failing (timeout, in
    # seconds), let pages read while a batch is written (WAL), and take the write lock when a transaction
    # begins: SQLite fails at once ("database is locked") a transaction that read and then must upgrade.
    DATABASES["default"]["OPTIONS"] = {"timeout": 30, "transaction_mode": "IMMEDIATE",
                                       "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"}
    DATABASES["default"]["CONN_MAX_AGE"] = 0
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
LOGIN_URL = "login"

# --- login throttle (django-axes): the sign-in page, the admin's, Basic auth and /api/v1/token. After
# SIEVE_LOGIN_FAILURE_LIMIT failed sign-ins for one account, or from one address, that account or address is
# refused (429, Retry-After) for SIEVE_LOGIN_LOCKOUT_MINUTES, even with the right password; a success resets.
AUTHENTICATION_BACKENDS = ["config.security.ThrottleBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_FAILURE_LIMIT = env_int("SIEVE_LOGIN_FAILURE_LIMIT", 10)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("SIEVE_LOGIN_LOCKOUT_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "config.security.lockout_response"
AXES_CLIENT_IP_CALLABLE = "config.security.client_ip"
AXES_VERBOSE = False
# Proxies in front of gunicorn that append to X-Forwarded-For (nginx: 1); 0 takes REMOTE_ADDR as the client.
SIEVE_PROXY_COUNT = env_int("SIEVE_PROXY_COUNT", 0)

# --- HTTPS (all off by default, for plain-HTTP development; docker-compose.yml turns them on)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", False)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", False)
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
# The health check is asked over plain HTTP from inside the container: never redirected.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
# Behind a proxy that terminates TLS and sets X-Forwarded-Proto (and strips a client's own): trust it.
if env_bool("SIEVE_TRUST_X_FORWARDED_PROTO", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

REDIS_URL = env_str("REDIS_URL", "")

if REDIS_URL:
    CACHES = {"default": {"BACKEND": "config.cache.RedisCache", "LOCATION": REDIS_URL}}
else:
    # Per-process cache: rate limits are then counted per web process, which is fine for a demo.
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "collection.auth.SourceKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
        "config.security.ThrottledBasicAuthentication",
        # Raters' per-user tokens (`Authorization: Token …`), for the labeling API.
        "labeling.auth.RaterTokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_THROTTLE_CLASSES": ["collection.auth.SourceKeyRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"source_key": env_str("SIEVE_KEY_RATE", "50000/min")},
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.CursorPagination",
    "PAGE_SIZE": 100,
    "EXCEPTION_HANDLER": "config.api_errors.exception_handler",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Sieve API",
    "DESCRIPTION": "Send batches and process feedback to Sieve; read their status.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    # Served from the sidecar package: the docs page loads nothing from the internet.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Several models have a `status`; each choice set gets its own name in the schema.
    "ENUM_NAME_OVERRIDES": {"TrainingSetVersionStatusEnum": "trainingsets.models.TrainingSetVersion.Status"},
}

# --- Celery: Redis when REDIS_URL is set, else kombu's filesystem transport (see docs/operations/deployment.md).
# The filesystem transport has no host; naming one keeps kombu from warning "No hostname was supplied".
CELERY_BROKER_URL = REDIS_URL or "filesystem://localhost//"
if not REDIS_URL:
    _broker_dir = DATA_DIR / "broker"
    for _folder in (_broker_dir / "out", _broker_dir / "processed", _broker_dir / "control", DATA_DIR / "results"):
        # kombu's filesystem transport and Celery's file result backend expect their folders to exist.
        _folder.mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "out"),
        "data_folder_out": str(_broker_dir / "out"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
    CELERY_RESULT_BACKEND = f"file://{DATA_DIR / 'results'}"
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        # A task that dies with its worker comes back after this long (acks_late).
        "visibility_timeout": env_int("SIEVE_VISIBILITY_TIMEOUT", 3600),
        "socket_connect_timeout": 2,
        "socket_timeout": 10,
    }
    CELERY_RESULT_BACKEND = REDIS_URL
# The module that composes the pipeline and owns the sweeper.
CELERY_IMPORTS = ("config.pipeline",)
CELERY_TASK_DEFAULT_QUEUE = env_str("SIEVE_QUEUE", "sieve")
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_EXPIRES = timedelta(days=1)
CELERY_TASK_ACKS_LATE = False  # set per task: only idempotent tasks ack late
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_WORKER_MAX_MEMORY_PER_CHILD = env_int("SIEVE_WORKER_MAX_MEMORY_KB", 1_500_000)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A publish while the broker is down fails fast; the sweeper re-enqueues what it left behind.
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.2}
CELERY_BEAT_SCHEDULE = {
    "sweep-stalled-batches": {
        "task": "config.pipeline.sweep_stalled_batches",
        "schedule": env_int("SIEVE_SWEEP_EVERY", 60),
    },
    "check-silent-sources": {
        "task": "validation.tasks.check_silent_sources",
        "schedule": env_int("SIEVE_SILENCE_CHECK_EVERY", 300),
    },
    # `next` hands back a few expired leases as it goes; this returns the rest of them.
    "reclaim-expired-leases": {
        "task": "labeling.tasks.reclaim_expired_leases",
        "schedule": env_int("SIEVE_LEASE_RECLAIM_EVERY", 60),
    },
    # Open items that every eligible rater has labeled, skipped or holds would wait forever: adjudication.
    "escalate-stuck-items": {
        "task": "labeling.tasks.escalate_stuck_items",
        "schedule": env_int("SIEVE_ESCALATE_STUCK_EVERY", 300),
    },
    "apply-feedback-rules": {
        "task": "labeling.tasks.apply_all_feedback_rules",
        "schedule": env_int("SIEVE_FEEDBACK_RULES_EVERY", 120),
    },
    # Training-set versions whose message was lost, or whose worker stopped beating.
    "sweep-versions": {
        "task": "trainingsets.tasks.sweep_versions",
        "schedule": env_int("SIEVE_VERSION_SWEEP_EVERY", 60),
    },
    # Erasures whose file rewrite message was lost.
    "resend-pending-erasures": {
        "task": "trainingsets.tasks.resend_pending_erasures",
        "schedule": env_int("SIEVE_ERASURE_RESEND_EVERY", 600),
    },
    # Dawid-Skene runs that are due (enough new labels, or the schedule), and runs whose worker died.
    "check-consensus-runs": {
        "task": "labeling.tasks.consensus_check_projects",
        "schedule": env_int("SIEVE_CONSENSUS_CHECK_EVERY", 60),
    },
}
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "celerybeat-schedule")

# --- Sieve
SIEVE_VERSION = "0.11.0"
# A queued training-set version not picked up after this is sent again; a build that has not reported
# progress for this long is started again, and failed after SIEVE_VERSION_MAX_ATTEMPTS starts.
SIEVE_VERSION_RESEND_AFTER = timedelta(seconds=env_int("SIEVE_VERSION_RESEND_AFTER", 60))
SIEVE_VERSION_STALLED_AFTER = timedelta(seconds=env_int("SIEVE_VERSION_STALLED_AFTER", 900))
SIEVE_VERSION_MAX_ATTEMPTS = env_int("SIEVE_VERSION_MAX_ATTEMPTS", 3)
# How long `next` keeps retrying when every item a rater could take is held by other transactions, before
# answering 503 queue_busy with Retry-After (a 204 means no claimable item at all).
SIEVE_NEXT_CONTENTION_SECONDS = float(env_str("SIEVE_NEXT_CONTENTION_SECONDS", "2"))
# PostgreSQL: a new lease commits with synchronous_commit off (off by default). A server crash can then forget
# the newest leases and their slot counts; labels and everything else stay durable.
SIEVE_LEASE_ASYNC_COMMIT = env_bool("SIEVE_LEASE_ASYNC_COMMIT", False)
SIEVE_MAX_UPLOAD_BYTES = env_int("SIEVE_MAX_UPLOAD_BYTES", 2 * 1024**3)
# A gzip body is limited again once uncompressed (a small gzip can expand to terabytes: 413 past this), and one
# record (an NDJSON or CSV line, whitespace included) may be at most this long (400 naming the line past it).
SIEVE_MAX_UNCOMPRESSED_BYTES = env_int("SIEVE_MAX_UNCOMPRESSED_BYTES", 8 * 1024**3)
SIEVE_MAX_RECORD_BYTES = env_int("SIEVE_MAX_RECORD_BYTES", 1024**2)
# A JSON array must be parsed whole, so it has its own, smaller limit: send NDJSON or CSV beyond it.
SIEVE_MAX_JSON_ARRAY_BYTES = env_int("SIEVE_MAX_JSON_ARRAY_BYTES", 64 * 1024**2)
SIEVE_INGEST_CHUNK_ROWS = env_int("SIEVE_INGEST_CHUNK_ROWS", 50_000)
# A batch of more rows than this is validated in chunks of about this many rows, profiled by
# workers in parallel and merged (the same result as one worker); 0 never splits.
SIEVE_VALIDATE_CHUNK_ROWS = env_int("SIEVE_VALIDATE_CHUNK_ROWS", 1_000_000)
# A batch left in `received` or `ingesting` longer than this is handed to the pipeline again.
SIEVE_STALLED_AFTER = timedelta(seconds=env_int("SIEVE_STALLED_AFTER", 120))
SIEVE_RECEIVED_STALLED_AFTER = timedelta(seconds=env_int("SIEVE_RECEIVED_STALLED_AFTER", 30))
# A pipeline step that fails this many times for a reason that will recur (the data, a bug, a worker lost on
# it) ends the batch `failed` with the error and an alert; faults that pass (database, broker) are not counted.
SIEVE_PIPELINE_MAX_FAILURES = env_int("SIEVE_PIPELINE_MAX_FAILURES", 3)
# Keys actor pseudonyms (HMAC-SHA256): its own secret, never SECRET_KEY, so neither gives the other away.
DEV_PSEUDONYM_SECRET = "sieve-insecure-development-pseudonym-secret"
SIEVE_PSEUDONYM_SECRET = env_str("SIEVE_PSEUDONYM_SECRET", DEV_PSEUDONYM_SECRET)
SIEVE_KEY_LAST_USED_RESOLUTION = timedelta(seconds=60)
# Consensus runs: a Dawid-Skene project with new labels gets a run at least this often (besides the runs
# after `consensus_every` new labels); a run running this long has lost its worker and fails; after a
# failed run the automatic requests wait this long.
SIEVE_CONSENSUS_SCHEDULE_HOURS = float(env_str("SIEVE_CONSENSUS_SCHEDULE_HOURS", "24"))
SIEVE_CONSENSUS_STUCK_MINUTES = env_int("SIEVE_CONSENSUS_STUCK_MINUTES", 30)
SIEVE_CONSENSUS_RETRY_MINUTES = env_int("SIEVE_CONSENSUS_RETRY_MINUTES", 60)
# Most label lines one import request takes (413 beyond); `manage.py labels_import` has no such limit.
SIEVE_LABEL_IMPORT_MAX = env_int("SIEVE_LABEL_IMPORT_MAX", 50_000)

# --- alerts
SIEVE_ALERT_EMAILS = env_list("SIEVE_ALERT_EMAILS", [])
SIEVE_ALERT_WEBHOOK_URL = env_str("SIEVE_ALERT_WEBHOOK_URL", "")
# Signs webhook deliveries; required (outside SIEVE_DEV) when SIEVE_ALERT_WEBHOOK_URL is set.
DEV_ALERT_WEBHOOK_SECRET = "sieve-insecure-development-webhook-secret"
SIEVE_ALERT_WEBHOOK_SECRET = env_str("SIEVE_ALERT_WEBHOOK_SECRET", DEV_ALERT_WEBHOOK_SECRET)
SIEVE_ALERT_RETRIES = env_int("SIEVE_ALERT_RETRIES", 5)
SIEVE_ALERT_BACKOFF = env_int("SIEVE_ALERT_BACKOFF", 10)  # seconds before the first retry; doubles
# A source is silent when nothing came for longer than its expected interval times this.
SIEVE_SILENCE_TOLERANCE = float(env_str("SIEVE_SILENCE_TOLERANCE", "1.5"))
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "sieve@localhost")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}
