"""Tollgate settings, read from environment variables (django-environ).

Modes (``TOLLGATE_ENV``):
- ``development`` (default): embedded SQLite, generated local secrets in ``var/local.env``.
- ``demo``: same as development, used by ``make demo``.
- ``test``: set by ``controlplane.settings_test``.
- ``build``: only for ``collectstatic`` while building the image; no checks.
- ``production``: every required variable must be set and DEBUG must be off.
"""

from __future__ import annotations

import base64
import secrets
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()
TOLLGATE_ENV = env.str("TOLLGATE_ENV", default="development")
if TOLLGATE_ENV not in {"development", "demo", "test", "build", "production"}:
    raise ImproperlyConfigured(
        f"TOLLGATE_ENV={TOLLGATE_ENV!r} is not one of development, demo, test, build, production."
    )
PRODUCTION = TOLLGATE_ENV == "production"
LOCAL_ENV_FILE = VAR_DIR / "local.env"


def _ensure_local_secrets() -> None:
    """Create per-checkout random secrets once, so no secret is hard-coded in the repository."""
    generators = {
        "SECRET_KEY": lambda: secrets.token_urlsafe(50),
        "API_KEY_PEPPER": lambda: secrets.token_urlsafe(48),
        "LEDGER_SIGNING_KEY": lambda: base64.b64encode(secrets.token_bytes(32)).decode(),
        "SIGNING_KEY_ENCRYPTION_KEY": lambda: base64.b64encode(secrets.token_bytes(32)).decode(),
        # Versioned BYOK key-encryption keys: "<version>:<base64 32 bytes>[,...]".
        "BYOK_KEKS": lambda: "1:" + base64.b64encode(secrets.token_bytes(32)).decode(),
    }
    VAR_DIR.mkdir(exist_ok=True)
    existing = (
        LOCAL_ENV_FILE.read_text(encoding="utf-8")
        if LOCAL_ENV_FILE.exists()
        else (
            "# Generated once for this checkout (development/demo only). Never used in production.\n"
        )
    )
    present = {line.split("=", 1)[0] for line in existing.splitlines() if "=" in line}
    missing = [f"{name}={make()}\n" for name, make in generators.items() if name not in present]
    if missing or not LOCAL_ENV_FILE.exists():
        LOCAL_ENV_FILE.write_text(existing + "".join(missing), encoding="utf-8")
        LOCAL_ENV_FILE.chmod(0o600)
    environ.Env.read_env(str(LOCAL_ENV_FILE), overwrite=False)


if TOLLGATE_ENV in {"development", "demo"}:
    _ensure_local_secrets()

REQUIRED_IN_PRODUCTION = (
    "SECRET_KEY",
    "API_KEY_PEPPER",
    "DATABASE_URL",
    "REDIS_URL",
    "ALLOWED_HOSTS",
    "SIGNING_KEY_ENCRYPTION_KEY",
    "BYOK_KEKS",
)
if PRODUCTION:
    _missing = [name for name in REQUIRED_IN_PRODUCTION if not env.str(name, default="")]
    if _missing:
        raise ImproperlyConfigured(
            "Tollgate refuses to start in production: missing required environment variable(s): "
            + ", ".join(_missing)
            + ". See docs/deploy.md."
        )

DEBUG = env.bool("DEBUG", default=False)
if PRODUCTION and DEBUG:
    raise ImproperlyConfigured(
        "Tollgate refuses to start in production with DEBUG on; unset DEBUG."
    )

if TOLLGATE_ENV == "build":
    SECRET_KEY = "build-only-not-a-secret"  # noqa: S105 - collectstatic needs a value, nothing is served
    API_KEY_PEPPER = "build-only-not-a-secret"
else:
    SECRET_KEY = env.str("SECRET_KEY")
    API_KEY_PEPPER = env.str("API_KEY_PEPPER")
    # Ed25519 seed (base64, 32 bytes) signing ledger checkpoints and export manifests.
    LEDGER_SIGNING_KEY = env.str("LEDGER_SIGNING_KEY")
    # AES-256 key (base64, 32 bytes) encrypting approval-token signing keys at rest (AES-GCM).
    SIGNING_KEY_ENCRYPTION_KEY = env.str("SIGNING_KEY_ENCRYPTION_KEY")
    # BYOK key-encryption keys, "<version>:<base64 32 bytes>[,...]"; the highest version wraps
    # new credentials, older versions stay for reading until `manage.py rotate_byok_kek` ran.
    BYOK_KEKS = env.str("BYOK_KEKS")
    if PRODUCTION and len(API_KEY_PEPPER) < 32:
        raise ImproperlyConfigured("API_KEY_PEPPER must be at least 32 characters in production.")

ALLOWED_HOSTS = env.list(
    "ALLOWED_HOSTS", default=[] if PRODUCTION else ["localhost", "127.0.0.1", "[::1]", "testserver"]
)
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "django_prometheus",
    "controlplane.core",
    "controlplane.tenancy",
    "controlplane.audit",
    "controlplane.identity",
    "billing",
    "byok",
    "enforcement",
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "controlplane.core.middleware.RequestIdMiddleware",
    "controlplane.core.middleware.BodySizeLimitMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "controlplane.urls"
WSGI_APPLICATION = "controlplane.wsgi.application"
ASGI_APPLICATION = "controlplane.asgi.application"

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

# --- Database ---------------------------------------------------------------------------------
DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'tollgate.sqlite3'}"),
}
if PRODUCTION and DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
    raise ImproperlyConfigured("Production requires PostgreSQL: DATABASE_URL=postgres://...")
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # IMMEDIATE takes the write lock at BEGIN, so two writers never deadlock on lock upgrade;
    # WAL lets the web process read while the worker writes.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DB_CONN_MAX_AGE", default=60))
DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis + Celery ---------------------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
CELERY_BROKER_DIR = VAR_DIR / "celery"
if REDIS_URL:
    CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL)
    CELERY_BROKER_TRANSPORT_OPTIONS: dict = {}
else:
    # The demo needs no broker server: kombu's filesystem transport passes messages as files.
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(CELERY_BROKER_DIR / "queue"),
        "data_folder_out": str(CELERY_BROKER_DIR / "queue"),
        "processed_folder": str(CELERY_BROKER_DIR / "processed"),
        "control_folder": str(CELERY_BROKER_DIR / "control"),
        "store_processed": False,
    }
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_BEAT_SCHEDULE: dict = {
    "outbox-deliver": {
        "task": "audit.outbox_deliver_task",
        "schedule": env.float("OUTBOX_POLL_SECONDS", default=5.0),
    },
    "reservations-expire": {
        "task": "enforcement.reservations_expire_task",
        "schedule": env.float("RESERVATION_SWEEP_SECONDS", default=15.0),
    },
    "approvals-expire": {
        "task": "enforcement.approvals_expire_task",
        "schedule": env.float("APPROVAL_SWEEP_SECONDS", default=30.0),
    },
    "signing-keys-retire": {
        "task": "enforcement.signing_keys_retire_task",
        "schedule": env.int("SIGNING_KEY_RETIRE_SECONDS", default=3600),
    },
    "byok-credentials-probe": {
        "task": "byok.credentials_probe_task",
        "schedule": env.float("BYOK_LIVENESS_INTERVAL_SECONDS", default=900.0),
    },
    "ledger-checkpoint": {
        "task": "audit.ledger_checkpoint_task",
        "schedule": env.int("LEDGER_CHECKPOINT_SECONDS", default=300),
    },
    "ledger-verify": {
        "task": "audit.ledger_verify_task",
        "schedule": env.int("LEDGER_VERIFY_SECONDS", default=3600),
    },
}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

# --- Auth, i18n, static -----------------------------------------------------------------------
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
STATIC_ROOT = env.str("STATIC_ROOT", default=str(BASE_DIR / "staticfiles"))
STATICFILES_DIRS = [BASE_DIR / "static"]
LOGIN_URL = "/admin/login/"

# --- Request limits + security ----------------------------------------------------------------
MAX_REQUEST_BODY_BYTES = env.int("MAX_REQUEST_BODY_BYTES", default=2 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = MAX_REQUEST_BODY_BYTES
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
if PRODUCTION:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=True)
    CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=True)
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
WEBHOOK_TIMEOUT_SECONDS = env.float("WEBHOOK_TIMEOUT_SECONDS", default=10.0)
API_KEY_LAST_USED_RESOLUTION_SECONDS = 60
# Ledger exports stream in constant memory (a spooled temporary file); this bounds their size.
LEDGER_EXPORT_MAX_ENTRIES = env.int("LEDGER_EXPORT_MAX_ENTRIES", default=1_000_000)
# Policy simulations run in a worker and replay at most this many decisions per job.
SIMULATION_MAX_DECISIONS = env.int("SIMULATION_MAX_DECISIONS", default=50_000)
# PostgreSQL: the gate reads-and-locks and writes through two SQL functions (migration
# enforcement 0004) instead of ~14 ORM statements. Off only to exercise the portable path.
GATE_SQL_FUNCTIONS = env.bool("GATE_SQL_FUNCTIONS", default=True)

# --- Approvals + approval tokens --------------------------------------------------------------
# Base URL of this deployment, used for links in gate answers and webhooks ("" = relative links).
TOLLGATE_PUBLIC_URL = env.str("TOLLGATE_PUBLIC_URL", default="").rstrip("/")
APPROVAL_TOKEN_ISSUER = env.str("APPROVAL_TOKEN_ISSUER", default="urn:tollgate")
APPROVAL_TOKEN_AUDIENCE = env.str("APPROVAL_TOKEN_AUDIENCE", default="urn:tollgate:gate")
APPROVAL_TOKEN_TTL_SECONDS = env.int("APPROVAL_TOKEN_TTL_SECONDS", default=24 * 3600)

# --- BYOK -------------------------------------------------------------------------------------
# Per-deployment provider base URLs, e.g. "openai=https://gw.example.com,anthropic=http://...".
BYOK_PROVIDER_BASE_URLS: dict[str, str] = env.dict("BYOK_PROVIDER_BASE_URLS", default={})
BYOK_PROBE_TIMEOUT_SECONDS = env.float("BYOK_PROBE_TIMEOUT_SECONDS", default=5.0)
BYOK_LIVENESS_INTERVAL_SECONDS = env.float("BYOK_LIVENESS_INTERVAL_SECONDS", default=900.0)
BYOK_LIVENESS_CONCURRENCY = env.int("BYOK_LIVENESS_CONCURRENCY", default=8)
BYOK_BREAKER_FAILURE_THRESHOLD = env.int("BYOK_BREAKER_FAILURE_THRESHOLD", default=5)
BYOK_BREAKER_RESET_SECONDS = env.float("BYOK_BREAKER_RESET_SECONDS", default=60.0)
BYOK_BREAKER_KEY_PREFIX = "tollgate:breaker:"
BYOK_LIVENESS_LOCK_KEY = "tollgate:byok:liveness:lock"
BYOK_DAILY_QUOTA_DEFAULT = env.int("BYOK_DAILY_QUOTA_DEFAULT", default=10000)
# Redis holding the daily quota counters and breaker state (defaults to REDIS_URL).
BYOK_REDIS_URL = env.str("BYOK_REDIS_URL", default="") or REDIS_URL
BYOK_REDIS_TIMEOUT_SECONDS = env.float("BYOK_REDIS_TIMEOUT_SECONDS", default=1.0)

# --- DRF + OpenAPI ----------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["controlplane.tenancy.auth.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["controlplane.tenancy.permissions.HasRequiredScopes"],
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "controlplane.core.renderers.ProblemJSONRenderer",
    ],
    "DEFAULT_PARSER_CLASSES": ["controlplane.core.parsers.StrictJSONParser"],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "controlplane.core.negotiation.LenientContentNegotiation",
    "DEFAULT_PAGINATION_CLASS": "controlplane.core.pagination.IdCursorPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "controlplane.core.exceptions.problem_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
    "STRICT_JSON": True,
    "URL_FORMAT_OVERRIDE": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Tollgate API",
    "DESCRIPTION": "Economic enforcement control plane: decide, reserve and record spend.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "SERVE_AUTHENTICATION": [],
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "APPEND_COMPONENTS": {
        "securitySchemes": {
            "ApiKey": {
                "type": "http",
                "scheme": "bearer",
                "bearerFormat": "tg_<prefix>_<secret>",
            }
        }
    },
    "SECURITY": [{"ApiKey": []}],
    "ENUM_NAME_OVERRIDES": {
        "PolicyStateEnum": "enforcement.models.policies.Policy.State",
        "ReservationStateEnum": "enforcement.models.decisions.Reservation.State",
    },
}

# --- Logging (structlog, JSON lines) ----------------------------------------------------------
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO").upper()
LOGGING_CONFIG = "controlplane.core.logging.configure_logging"
LOGGING = {"level": LOG_LEVEL}
