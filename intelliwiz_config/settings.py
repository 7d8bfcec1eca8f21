"""The one settings module. Every knob is an environment variable, documented in docs/operations.md
(Settings).

With no variables set this is the embedded default: SQLite, Celery's filesystem broker and
mail written to files, all under var/. Setting INTELLIWIZ_ENV=production turns the start-up
checks on: a missing or unsafe production setting raises ImproperlyConfigured naming it.
"""

from __future__ import annotations

import importlib.util
import socket
from datetime import timedelta
from pathlib import Path
from typing import Any

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.functional import SimpleLazyObject

from intelliwiz_config.env import (
    env_bool,
    env_float,
    env_int,
    env_json_object,
    env_list,
    env_str,
    env_url,
)

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("INTELLIWIZ_VAR_DIR") or BASE_DIR / "var").resolve()

INTELLIWIZ_ENV = env_str("INTELLIWIZ_ENV", "development")
if INTELLIWIZ_ENV not in {"development", "production"}:
    raise ImproperlyConfigured(
        f"INTELLIWIZ_ENV must be 'development' or 'production', got {INTELLIWIZ_ENV!r}"
    )
PRODUCTION = INTELLIWIZ_ENV == "production"

_DEV_SECRET_KEY = "dev-only-insecure-key-do-not-use-in-production"  # noqa: S105
SECRET_KEY = env_str("DJANGO_SECRET_KEY", _DEV_SECRET_KEY)
DEBUG = env_bool("DJANGO_DEBUG", default=not PRODUCTION)
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")
# Where ./dev up serves (Procfile.dev); the default SITE_URL points there.
WEB_HOST = env_str("WEB_HOST", "127.0.0.1")
WEB_PORT = env_int("WEB_PORT", 8000, minimum=1)
# A server listening on every address is reached on loopback from the same machine.
_ALL_ADDRESSES = {"0.0.0.0": "127.0.0.1", "::": "[::1]", "": "127.0.0.1"}  # noqa: S104
_WEB_LINK_HOST = _ALL_ADDRESSES.get(WEB_HOST, WEB_HOST)
if ":" in _WEB_LINK_HOST and not _WEB_LINK_HOST.startswith("["):
    _WEB_LINK_HOST = f"[{_WEB_LINK_HOST}]"
# Absolute base URL used in links that leave the system (e-mails, approval links).
SITE_URL = env_url(
    "SITE_URL", schemes={"http", "https"}, default=f"http://{_WEB_LINK_HOST}:{WEB_PORT}"
)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "axes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.humanize",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_celery_beat",
    "django_celery_results",
    "apps.core",
    "apps.onboarding",
    "apps.peoples",
    "apps.activity",
    "apps.y_helpdesk",
    "apps.work_order_management",
    "apps.attendance",
    "apps.reports",
    "apps.integrations",
    "apps.mobile",
    "apps.demo",
    "background_tasks",
]

MIDDLEWARE = [
    # A span per request when OTEL_EXPORTER_OTLP_ENDPOINT is set; left out otherwise.
    "apps.core.observability.TracingMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # Pages and the admin show times in the signed-in person's site time zone, as mails do.
    "apps.peoples.middleware.SiteTimeZoneMiddleware",
    # Signed-in pages: no-store; a form sent after the session ended is kept for after sign-in.
    "apps.peoples.middleware.SignedInPagesMiddleware",
    # An error answered with an empty body (405, 401, 410...) gets the product's page.
    "apps.core.error_pages.ProductErrorPagesMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Sign-in throttling (django-axes): last, as its documentation asks.
    "axes.middleware.AxesMiddleware",
]

# Django's form renderer, select boxes written in Python (a select of a client's people is not a
# template include per person).
FORM_RENDERER = "apps.core.form_rendering.FormRenderer"
ROOT_URLCONF = "intelliwiz_config.urls"
WSGI_APPLICATION = "intelliwiz_config.wsgi.application"
AUTH_USER_MODEL = "peoples.People"
# Everyone signs in on the product's own page and lands where their work is (apps.peoples).
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        # The project's own overrides of libraries' templates (the admin's header).
        "DIRS": [BASE_DIR / "intelliwiz_config" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "apps.peoples.context_processors.signed_in",
            ],
        },
    },
]

# --- Network timeouts ---------------------------------------------------------------------------
# A connection whose peer went silent (a partition, a hung host, a dropped NAT entry) fails
# within NETWORK_DEAD_PEER_SECONDS instead of hanging a worker past its claims' leases:
# TCP keepalive probes, TCP_USER_TIMEOUT and socket timeouts on PostgreSQL, both Redis
# connections (broker, cache) and the AMQP heartbeat. New connections give up after
# NETWORK_CONNECT_SECONDS.
NETWORK_DEAD_PEER_SECONDS = env_int("NETWORK_DEAD_PEER_SECONDS", 30, minimum=3)
NETWORK_CONNECT_SECONDS = env_int("NETWORK_CONNECT_SECONDS", 5, minimum=1)
_KEEPALIVE_IDLE = max(1, NETWORK_DEAD_PEER_SECONDS // 3)
_KEEPALIVE_INTERVAL = max(1, NETWORK_DEAD_PEER_SECONDS // 6)
_KEEPALIVE_PROBES = 3
_TCP_USER_TIMEOUT_MS = NETWORK_DEAD_PEER_SECONDS * 1000
REDIS_SOCKET_OPTIONS = {
    "socket_timeout": NETWORK_DEAD_PEER_SECONDS,
    "socket_connect_timeout": NETWORK_CONNECT_SECONDS,
    "socket_keepalive": True,
    "socket_keepalive_options": {
        socket.TCP_KEEPIDLE: _KEEPALIVE_IDLE,
        socket.TCP_KEEPINTVL: _KEEPALIVE_INTERVAL,
        socket.TCP_KEEPCNT: _KEEPALIVE_PROBES,
        socket.TCP_USER_TIMEOUT: _TCP_USER_TIMEOUT_MS,
    },
    # A connection idle this long is pinged before use; kombu also drops a consumer's BRPOP
    # connection whose reply is this much overdue, so a healed partition is noticed in seconds.
    "health_check_interval": max(1, NETWORK_DEAD_PEER_SECONDS // 6),
}

# --- Database ---------------------------------------------------------------------------------
DATABASE_URL = env_url(
    "DATABASE_URL", schemes={"sqlite", "postgres", "postgresql", "pgsql", "postgis"}
)
# Seconds a connection is kept for the next request or task (0: one per request or task); a
# kept one is health-checked before reuse, so a database restart costs one reconnect.
DB_CONN_MAX_AGE = env_int("DB_CONN_MAX_AGE", 60, minimum=0)
if DATABASE_URL:
    DATABASES = {
        "default": dj_database_url.parse(
            DATABASE_URL, conn_max_age=DB_CONN_MAX_AGE, conn_health_checks=True
        )
    }
else:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(VAR_DIR / "db.sqlite3"),
            "TEST": {"NAME": str(VAR_DIR / "test-db.sqlite3")},
            "CONN_MAX_AGE": DB_CONN_MAX_AGE,
        }
    }
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "connect_timeout": NETWORK_CONNECT_SECONDS,
            "keepalives": 1,
            "keepalives_idle": _KEEPALIVE_IDLE,
            "keepalives_interval": _KEEPALIVE_INTERVAL,
            "keepalives_count": _KEEPALIVE_PROBES,
            "tcp_user_timeout": _TCP_USER_TIMEOUT_MS,
        }
    )
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web, worker and beat share one file: WAL lets readers run beside the writer, IMMEDIATE
    # takes the write lock at BEGIN so read-modify-write blocks queue on the busy timeout
    # instead of failing with "database is locked".
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache (shared by every process: Redis, or a database table) ------------------------------
CACHE_URL = env_url("CACHE_URL", schemes={"redis", "rediss"})
CACHES = {
    "default": (
        {
            "BACKEND": "apps.core.cache.RedisCache",
            "LOCATION": CACHE_URL,
            "OPTIONS": REDIS_SOCKET_OPTIONS,
        }
        if CACHE_URL
        else {"BACKEND": "apps.core.cache.DatabaseCache", "LOCATION": "django_cache"}
    )
}
CACHES["default"]["KEY_PREFIX"] = env_str("CACHE_KEY_PREFIX", "intelliwiz")

# --- Mail ------------------------------------------------------------------------------------
EMAIL_HOST = env_str("EMAIL_HOST")
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "intelliwiz@localhost")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 20, minimum=1)
if EMAIL_HOST:
    # Django's, pipelining each message's envelope where the server offers it (apps.core.smtp).
    EMAIL_BACKEND = "apps.core.smtp.EmailBackend"
    EMAIL_PORT = env_int("EMAIL_PORT", 25, minimum=1)
    EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
    EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
    EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS")
    EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL")
    if EMAIL_USE_TLS and EMAIL_USE_SSL:
        raise ImproperlyConfigured("EMAIL_USE_TLS and EMAIL_USE_SSL cannot both be true")
else:
    EMAIL_BACKEND = "intelliwiz_config.mail_files.EmlFileBackend"  # one .eml file a message
    EMAIL_FILE_PATH = VAR_DIR / "mail"


def _package_folder(name: str) -> Path:
    """Where an installed package lives, found without importing it."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ImproperlyConfigured(f"package {name} is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


# --- Static and media files ----------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
# The product's stylesheet and the vendored front-end files (Pico CSS, GraphiQL): nothing is
# loaded from the internet at run time.
STATICFILES_DIRS = [
    BASE_DIR / "static",
    # GraphiQL's script of graphene-django, which is not an installed app: importing it would
    # import graphene, GraphQL and django.test in every process at start (half a second).
    ("graphene_django", _package_folder("graphene_django") / "static" / "graphene_django"),
]
MEDIA_URL = "media/"
MEDIA_ROOT = Path(env_str("MEDIA_ROOT") or VAR_DIR / "media")
AWS_STORAGE_BUCKET_NAME = env_str("AWS_STORAGE_BUCKET_NAME")


def _s3_client_config() -> Any:
    """Built on first use: botocore is a tenth of a second to import, and most processes never
    touch S3."""
    from botocore.config import Config

    return Config(
        connect_timeout=5, read_timeout=10, retries={"mode": "standard", "total_max_attempts": 2}
    )


# Every S3 storage (default and cloud): one operation waits at most 2 x (5 + 10) s, inside the
# soft time limit of the mail tasks that read attachments (tests/test_time_budgets.py); botocore's
# defaults (60 s + 60 s, five attempts: ten minutes) would outlast most tasks' soft limits.
AWS_S3_CLIENT_CONFIG = SimpleLazyObject(_s3_client_config)
STORAGES = {
    "default": (
        {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": AWS_STORAGE_BUCKET_NAME,
                "endpoint_url": env_url("AWS_S3_ENDPOINT_URL", schemes={"http", "https"}) or None,
                "region_name": env_str("AWS_S3_REGION_NAME") or None,
                "default_acl": None,
                "querystring_auth": True,
                "file_overwrite": False,
            },
        }
        if AWS_STORAGE_BUCKET_NAME
        else {"BACKEND": "django.core.files.storage.FileSystemStorage"}
    ),
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if not DEBUG
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}

# Where move_media_to_cloud_storage moves local media (an S3 bucket; unset: it moves nothing).
MEDIA_CLOUD_BUCKET = env_str("MEDIA_CLOUD_BUCKET")
MEDIA_OFFLOAD_AFTER_DAYS = env_int("MEDIA_OFFLOAD_AFTER_DAYS", 30, minimum=0)
MEDIA_OFFLOAD_CONCURRENCY = env_int("MEDIA_OFFLOAD_CONCURRENCY", 4, minimum=1)
if MEDIA_CLOUD_BUCKET:
    STORAGES["cloud"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": MEDIA_CLOUD_BUCKET,
            "endpoint_url": env_url("MEDIA_CLOUD_ENDPOINT_URL", schemes={"http", "https"}) or None,
            "region_name": env_str("MEDIA_CLOUD_REGION") or None,
            "default_acl": None,
            "querystring_auth": True,
        },
    }

# face_recognition distance at or below which a selfie matches a reference photo.
FACE_MATCH_THRESHOLD = env_float("FACE_MATCH_THRESHOLD", 0.6)

# --- Dashboards -----------------------------------------------------------------------------------
# How long a warmed site dashboard stays in the cache (cache_warming_scheduled runs every 15 min).
DASHBOARD_CACHE_SECONDS = env_int("DASHBOARD_CACHE_SECONDS", 20 * 60, minimum=1)
# How long a generated PDF (generate_pdf_async) is kept before cleanup_expired_pdf_tasks.
PDF_JOB_RETENTION_HOURS = env_int("PDF_JOB_RETENTION_HOURS", 24, minimum=1)
# Addresses, besides DEFAULT_FROM_EMAIL, that may send report files on the fly.
REPORT_SENDERS = env_list("REPORT_SENDERS")

# --- Transcription of audio answers --------------------------------------------------------------
TRANSCRIPTION_ENGINE = env_str("TRANSCRIPTION_ENGINE", "pocketsphinx")
if TRANSCRIPTION_ENGINE not in {"pocketsphinx", "google"}:
    raise ImproperlyConfigured(
        f"TRANSCRIPTION_ENGINE must be 'pocketsphinx' or 'google', got {TRANSCRIPTION_ENGINE!r}"
    )
TRANSCRIPTION_MAX_BYTES = env_int("TRANSCRIPTION_MAX_BYTES", 10 * 1024 * 1024, minimum=1)
TRANSCRIPTION_MAX_SECONDS = env_int("TRANSCRIPTION_MAX_SECONDS", 60, minimum=1)
TRANSCRIPTION_TIMEOUT_SECONDS = env_int("TRANSCRIPTION_TIMEOUT_SECONDS", 60, minimum=1)
# host:port of a local Speech API server without TLS (tests, emulators); unset: Google's own.
GOOGLE_SPEECH_EMULATOR_HOST = env_str("GOOGLE_SPEECH_EMULATOR_HOST")

# --- Internationalisation ----------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Celery (read by intelliwiz_config/celery.py through the CELERY_ namespace) -----------------
CELERY_BROKER_URL = env_url(
    "CELERY_BROKER_URL",
    schemes={"filesystem", "redis", "rediss", "amqp", "amqps", "pyamqp"},
    default="filesystem://",
)
# The broker transport by class path, chosen by the URL's scheme: for filesystem:// and redis://
# the variants of kombu's whose delivered messages are leased to their consumer
# (apps/core/broker.py); kombu's own for AMQP. kombu's alias table stays as it is.
LEASED_BROKER_TRANSPORTS = {
    "filesystem": "apps.core.broker:FilesystemTransport",
    "redis": "apps.core.broker:RedisTransport",
    "rediss": "apps.core.broker:RedisTransport",
}
CELERY_BROKER_TRANSPORT = LEASED_BROKER_TRANSPORTS.get(CELERY_BROKER_URL.partition(":")[0])
BROKER_DIR = VAR_DIR / "broker"
# A delivered message stays with its consumer while the consumer renews its lease (every
# sixth of this); a consumer that dies stops renewing, and its messages are delivered again
# this long after its last renewal. Long tasks and retry countdowns are not bounded by it.
CELERY_VISIBILITY_TIMEOUT = env_int("CELERY_VISIBILITY_TIMEOUT", 180, minimum=6)
_BROKER_LEASES = {
    "visibility_timeout": CELERY_VISIBILITY_TIMEOUT,
    "lease_renewal_interval": CELERY_VISIBILITY_TIMEOUT / 6,
}
if CELERY_BROKER_URL.startswith("filesystem"):
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "inflight_folder": str(BROKER_DIR / "inflight"),
        "control_folder": str(BROKER_DIR / "control"),
        **_BROKER_LEASES,
    }
    for folder in ("queue", "inflight", "control"):
        (BROKER_DIR / folder).mkdir(parents=True, exist_ok=True)
elif CELERY_BROKER_URL.startswith("redis"):
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        **_BROKER_LEASES,
        **REDIS_SOCKET_OPTIONS,
        # kombu's sweep for expired leases: every twelfth of the timeout, a scan each time.
        "unacked_restore_interval": max(1, CELERY_VISIBILITY_TIMEOUT // 12),
        "unacked_restore_throttle": 1,
    }
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {}
# AMQP: heartbeats both ways, so a silent RabbitMQ (or a silent worker) is noticed in seconds.
CELERY_BROKER_HEARTBEAT = max(2, NETWORK_DEAD_PEER_SECONDS // 2)
CELERY_BROKER_CONNECTION_TIMEOUT = NETWORK_CONNECT_SECONDS
CELERY_RESULT_BACKEND = env_str("CELERY_RESULT_BACKEND", "django-db")
# How long a worker keeps trying to record a task's final state or dead letter while the
# database is away, before it puts the message back on the broker to run again later.
RESULT_STORE_PATIENCE_SECONDS = env_int("RESULT_STORE_PATIENCE_SECONDS", 20, minimum=1)
# How long a worker keeps trying to record a side effect it has done (a mail sent) while the
# database is away; left unrecorded, the effect would be repeated once its claim's lease ends.
LEDGER_RECORD_PATIENCE_SECONDS = env_int("LEDGER_RECORD_PATIENCE_SECONDS", 60, minimum=1)
# A task's result is stored only where someone reads it (RESULTS_READ in
# intelliwiz_config/celery.py); a producer that waits for any other task's result asks for it
# per call (apply_async(..., ignore_result=False)). Failures and retries are stored for every
# task, for the results admin and monitors.
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_STORE_ERRORS_EVEN_IF_IGNORED = True
CELERY_RESULT_EXTENDED = True
CELERY_RESULT_EXPIRES = 3 * 24 * 60 * 60
CELERY_CACHE_BACKEND = "django-cache"
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_ENABLE_UTC = True
# No STARTED row per task (a SELECT, an INSERT and a commit): no page or API polls a task's
# state; report and PDF progress pages read their own Report/PdfJob rows.
CELERY_TASK_TRACK_STARTED = False
# Task events cost a message per state change and one per .delay(), and only a monitor reads
# them. Flower turns them on in the workers it watches (it sends enable_events every few
# seconds); before `celery events`, run `celery -A intelliwiz_config control enable_events`.
TASK_EVENTS = env_bool("CELERY_TASK_EVENTS", False)
CELERY_TASK_SEND_SENT_EVENT = TASK_EVENTS
CELERY_WORKER_SEND_TASK_EVENTS = TASK_EVENTS
# Defaults for a task that names no policy; policies in apps/core/tasks/utils.py override them.
CELERY_TASK_SOFT_TIME_LIMIT = 240
CELERY_TASK_TIME_LIMIT = 300
# One reserved message per process: long tasks do not sit behind a busy sibling.
CELERY_WORKER_PREFETCH_MULTIPLIER = env_int("CELERY_WORKER_PREFETCH_MULTIPLIER", 1, minimum=1)
# A pool process is replaced once it holds more memory than this (KB), not after a number of
# tasks (0: never, the default): each replacement stands the process still up to 5 s (Celery
# starts it on its 5-second pool timer; a -c 1 worker stopped 3-5 s every 500 heartbeats).
CELERY_WORKER_MAX_MEMORY_PER_CHILD = env_int("CELERY_WORKER_MAX_MEMORY_PER_CHILD", 512_000)
CELERY_WORKER_MAX_TASKS_PER_CHILD = (
    env_int("CELERY_WORKER_MAX_TASKS_PER_CHILD", 0, minimum=0) or None
)
# A running task is left to finish when the broker connection drops: killing it could cut a side
# effect between the send and its record in the ledger (then done again after the claim's
# lease). Its message comes back after the visibility timeout and finds the effect done.
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = False
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# django-celery-beat's scheduler, led by one beat at a time and sending each entry once per
# period however many beats run (apps/core/beat.py). A standby beat takes over within the lease.
CELERY_BEAT_SCHEDULER = "apps.core.beat:LeaderDatabaseScheduler"
BEAT_LOCK_LEASE_SECONDS = env_int("BEAT_LOCK_LEASE_SECONDS", 30, minimum=5)
BEAT_STANDBY_POLL_SECONDS = 5
# Leases use the database's clock, not a host's; a worker whose clock is off the database's by
# more than this says so in its log, on /healthz (degraded) and in a metric.
CLOCK_SKEW_WARN_SECONDS = env_float("CLOCK_SKEW_WARN_SECONDS", 5.0)
# Multiplies every retry countdown and retry window (apps/core/tasks/utils.py). For tests that
# compress an outage of hours into seconds; 1 in every deployment.
RETRY_TIME_SCALE = env_float("RETRY_TIME_SCALE", 1.0)
if RETRY_TIME_SCALE <= 0:
    raise ImproperlyConfigured(f"RETRY_TIME_SCALE must be positive, got {RETRY_TIME_SCALE}")
CELERY_TASK_ALWAYS_EAGER = False
# During an upgrade from the upstream code: the worker consuming the default queue also moves
# the messages waiting on upstream's queues (`celery`, `django5_queue`) onto ours, by task name.
# Turn it off once upstream's producers are gone and those queues are empty (MIGRATING.md).
DRAIN_UPSTREAM_QUEUES = env_bool("DRAIN_UPSTREAM_QUEUES", True)
# Celery's Django fixup closes the database connection before and after every task unless this
# is set; with it a worker process keeps its connection for this many tasks, and the
# task_prerun/postrun hook in intelliwiz_config/celery.py still drops one that is broken or
# older than DB_CONN_MAX_AGE, as Django does around a request.
CELERY_DB_REUSE_MAX = env_int("CELERY_DB_REUSE_MAX", 1000 if DB_CONN_MAX_AGE else 0, minimum=0)

# --- Operations ---------------------------------------------------------------------------------
# How far ahead create_ppm_job expands schedules.
PPM_HORIZON_DAYS = env_int("PPM_HORIZON_DAYS", 30, minimum=1)
# How often a due reminder mail is tried before it is marked failed.
REMINDER_MAX_ATTEMPTS = env_int("REMINDER_MAX_ATTEMPTS", 5, minimum=1)

# --- Work permits ---------------------------------------------------------------------------
APPROVAL_LINK_MAX_AGE_HOURS = env_int("APPROVAL_LINK_MAX_AGE_HOURS", 72, minimum=1)
# Pending verifiers and approvers are reminded once per this many hours.
WP_REMINDER_INTERVAL_HOURS = env_int("WP_REMINDER_INTERVAL_HOURS", 24, minimum=1)

# --- MQTT -----------------------------------------------------------------------------------------
# mqtt://user:password@host:1883 or mqtts://... (TLS); unset: nothing is published.
MQTT_URL = env_url("MQTT_URL", schemes={"mqtt", "mqtts"})
MQTT_CLIENT_ID_PREFIX = env_str("MQTT_CLIENT_ID_PREFIX", "intelliwiz")
# The bridge's own broker user (manage.py mqtt_bridge); unset: the same as MQTT_URL.
MQTT_BRIDGE_URL = env_url("MQTT_BRIDGE_URL", schemes={"mqtt", "mqtts"}) or MQTT_URL
# True where the broker signs devices in with their own credentials and its ACL keeps each to
# its own topics (deploy/mosquitto.conf, manage.py sync_mqtt_auth): the bridge then trusts the
# device id in the topic, and requests carry no secret.
MQTT_DEVICES_AUTHENTICATED_BY_BROKER = env_bool("MQTT_DEVICES_AUTHENTICATED_BY_BROKER")
MQTT_ALLOWED_TOPIC_PREFIXES = env_list("MQTT_ALLOWED_TOPIC_PREFIXES", ["intelliwiz", "noc"])
MQTT_CHANGES_TOPIC = env_str("MQTT_CHANGES_TOPIC", "noc/changes")
MQTT_NOC_ALERTS_TOPIC = env_str("MQTT_NOC_ALERTS_TOPIC", "noc/alerts")
MQTT_MAX_PAYLOAD_BYTES = env_int("MQTT_MAX_PAYLOAD_BYTES", 1024 * 1024, minimum=1)
MQTT_ACK_TIMEOUT_SECONDS = env_int("MQTT_ACK_TIMEOUT_SECONDS", 10, minimum=1)
# Models whose saves and deletes are published to MQTT_CHANGES_TOPIC after commit.
MQTT_CDC_MODELS = env_list(
    "MQTT_CDC_MODELS",
    [
        "onboarding.BusinessUnit",
        "onboarding.TypeAssist",
        "activity.Asset",
        "activity.QuestionSet",
        "activity.Question",
        "core.Attachment",
        "attendance.AttendanceEvent",
    ],
)

# --- Partner APIs (external_api_call_async) -----------------------------------------------------
# Hosts that may be called: exact names, or "*.example.com" for its subdomains.
PARTNER_API_ALLOWED_HOSTS = env_list("PARTNER_API_ALLOWED_HOSTS")
# Allow-listed hosts that may resolve to private or loopback addresses (an internal partner).
PARTNER_API_PRIVATE_HOSTS = env_list("PARTNER_API_PRIVATE_HOSTS")
# Named credentials: {"acme": {"Authorization": "Bearer ..."}}. A caller names one
# (credentials="acme"); the headers are added on the worker and never travel in a task message.
PARTNER_API_CREDENTIALS = env_json_object("PARTNER_API_CREDENTIALS")
PARTNER_API_MAX_RESPONSE_BYTES = env_int(
    "PARTNER_API_MAX_RESPONSE_BYTES", 2 * 1024 * 1024, minimum=1
)

# --- Mobile -------------------------------------------------------------------------------------
# How long the link to a device's download (process_graphql_download_async) works.
MOBILE_DOWNLOAD_MAX_AGE_SECONDS = env_int("MOBILE_DOWNLOAD_MAX_AGE_SECONDS", 3600, minimum=60)
MOBILE_MAX_UPLOAD_BYTES = env_int("MOBILE_MAX_UPLOAD_BYTES", 5 * 1024 * 1024, minimum=1)
# Where a client's address is (for throttling failed sign-ins, of devices and of people):
# REMOTE_ADDR, or behind a proxy the header it sets with the client's address (HTTP_X_REAL_IP).
MOBILE_CLIENT_ADDRESS_META = env_str("MOBILE_CLIENT_ADDRESS_META", "REMOTE_ADDR")

# The schema's self-description and the in-browser GraphiQL: for developers, off in production.
GRAPHQL_INTROSPECTION = env_bool("GRAPHQL_INTROSPECTION", default=not PRODUCTION)
GRAPHIQL = env_bool("GRAPHIQL", default=not PRODUCTION)


# --- Sign-in (the product's page and the admin's) --------------------------------------------
def _client_address(request) -> str:
    return request.META.get(MOBILE_CLIENT_ADDRESS_META, "")


# django-axes counts failed sign-ins per login id and address, in the cache every web process
# shares; past SIGNIN_FAILURE_LIMIT that pair is refused (429, the right password too) until
# SIGNIN_COOLOFF_MINUTES have passed. The address is MOBILE_CLIENT_ADDRESS_META's.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_HANDLER = "axes.handlers.cache.AxesCacheHandler"
AXES_FAILURE_LIMIT = env_int("SIGNIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("SIGNIN_COOLOFF_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_USERNAME_FORM_FIELD = "username"  # the sign-in form's field: the login id
AXES_RESET_ON_SUCCESS = True
AXES_ENABLE_ADMIN = False  # the cache handler keeps no rows to show
AXES_LOCKOUT_TEMPLATE = "peoples/signin_locked.html"
AXES_CLIENT_IP_CALLABLE = _client_address
# Passwords set through Django's forms (the admin, createsuperuser, password changes).
AUTH_PASSWORD_VALIDATORS = [
    {
        "NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator",
        "OPTIONS": {"user_attributes": ("loginid", "code", "name", "email")},
    },
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 10},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# --- Mail sent on a person's behalf to addresses they type (a report, the dashboard) ----------
OUTSIDE_MAIL_RECIPIENTS_PER_HOUR = env_int("OUTSIDE_MAIL_RECIPIENTS_PER_HOUR", 30, minimum=1)

# --- NOC ------------------------------------------------------------------------------------------
NOC_ALERT_EMAILS = env_list("NOC_ALERT_EMAILS")
# The same mismatch reported again within this window is counted on one alert.
NOC_ALERT_WINDOW_MINUTES = env_int("NOC_ALERT_WINDOW_MINUTES", 60, minimum=1)

# --- Logging ----------------------------------------------------------------------------------
LOG_LEVEL = env_str("LOG_LEVEL", "INFO").upper()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    # Signed-link tokens and e-mail addresses are redacted from every record of every logger, in
    # every process, by apps.core.logging.redact_every_record (installed when the apps are ready).
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # The project's own lines (task_run among them) at LOG_LEVEL in every process: a worker
        # started without -l sets the root logger to Celery's default, WARNING.
        **{name: {"level": LOG_LEVEL} for name in ("intelliwiz", "apps", "background_tasks")},
        **{name: {"level": LOG_LEVEL} for name in ("django.request", "django.server")},
        # fpdf2 subsets the PDFs' fonts through fontTools, which narrates every table at INFO.
        "fontTools": {"level": "WARNING"},
    },
}

# --- Observability (docs/operations.md, Observability) -------------------------------------------
# The bearer token Prometheus sends to /metrics (unset: only signed-in operators may read it).
METRICS_TOKEN = env_str("METRICS_TOKEN")
# The bearer token a monitor sends to /healthz for its details (unset: only signed-in
# operators see them; everyone gets the plain status and its code).
HEALTHZ_TOKEN = env_str("HEALTHZ_TOKEN")
# Errors (and a share of transactions) to Sentry; unset: the SDK is not even imported.
SENTRY_DSN = env_str("SENTRY_DSN")
SENTRY_TRACES_SAMPLE_RATE = env_float("SENTRY_TRACES_SAMPLE_RATE", 0.0)
# OpenTelemetry traces of requests and the tasks they enqueue, sent over OTLP/HTTP; the SDK
# also reads OTEL_SERVICE_NAME and the other OTEL_EXPORTER_OTLP_* variables. Unset: off.
OTEL_EXPORTER_OTLP_ENDPOINT = env_str("OTEL_EXPORTER_OTLP_ENDPOINT")

# --- HTTPS (production: behind a proxy that terminates TLS and sets X-Forwarded-Proto) ----------
if PRODUCTION:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
    # Probes and Prometheus inside the deployment speak plain HTTP.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^metrics$"]
    SECURE_HSTS_SECONDS = env_int("DJANGO_SECURE_HSTS_SECONDS", 365 * 24 * 60 * 60, minimum=0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = env_bool("DJANGO_SECURE_HSTS_PRELOAD", default=True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True

# --- Production start-up checks ----------------------------------------------------------------
if PRODUCTION:
    from intelliwiz_config.production_checks import check_production_settings

    check_production_settings(globals())
