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

env = environ.Env()
# Local state of development and the demo (SQLite file, generated secrets, broker folders, logs).
VAR_DIR = Path(env.str("TOLLGATE_VAR_DIR", default=str(BASE_DIR / "var")))
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
    VAR_DIR.mkdir(parents=True, exist_ok=True)
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
    "controlplane.dashboard",
    "billing",
    "byok",
    "enforcement",
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "controlplane.core.middleware.RequestIdMiddleware",
    # /scim/v2/ only: errors raised before a SCIM view runs leave as SCIM Error bodies.
    "controlplane.identity.api.middleware.ScimErrorBodyMiddleware",
    "controlplane.core.middleware.BodySizeLimitMiddleware",
    "controlplane.core.middleware.InfrastructureErrorMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # lifecycle -> billing -> protection, before any view (docs/billing.md#request-gates).
    "billing.gates.middleware.RequestGatesMiddleware",
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
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    _pg_options = DATABASES["default"].setdefault("OPTIONS", {})
    # Every statement is bounded below the request limit (REQUEST_TIMEOUT_SECONDS, 30 s), so a
    # slow query ends as a clean 503 DATABASE_UNAVAILABLE first. The gate sets its own, tighter
    # bound per decision (SET LOCAL). 0 turns it off.
    _statement_ms = int(env.float("DB_STATEMENT_TIMEOUT_SECONDS", default=25) * 1000)
    if _statement_ms > 0:
        _pg_options.setdefault("options", f"-c statement_timeout={_statement_ms}")
    # Connection budget (docs/deploy.md): a pool per process, at most DB_POOL_MAX_SIZE
    # connections (default: one per gunicorn thread), so workers x pool size is a hard ceiling
    # that can be kept under PostgreSQL's max_connections. A request that finds the pool empty
    # waits DB_POOL_TIMEOUT_SECONDS (3), then gets 503 DATABASE_UNAVAILABLE.
    _pool_max = env.int(
        "DB_POOL_MAX_SIZE",
        default=0 if TOLLGATE_ENV == "test" else env.int("GUNICORN_THREADS", default=4),
    )
    if _pool_max > 0:
        _pg_options["pool"] = {
            "min_size": min(env.int("DB_POOL_MIN_SIZE", default=1), _pool_max),
            "max_size": _pool_max,
            "timeout": env.float("DB_POOL_TIMEOUT_SECONDS", default=3.0),
            # After an outage the pool retries with a growing back-off; giving up a slot after
            # a few seconds lets the next request start a fresh attempt, so the app recovers
            # within seconds of PostgreSQL coming back, without a restart.
            "reconnect_timeout": env.float("DB_POOL_RECONNECT_SECONDS", default=5.0),
        }
        DATABASES["default"]["CONN_MAX_AGE"] = 0  # the pool keeps connections, not Django
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
    # (The host is not used; naming one keeps kombu from warning about it on every connect.)
    CELERY_BROKER_URL = "filesystem://localhost//"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(CELERY_BROKER_DIR / "queue"),
        "data_folder_out": str(CELERY_BROKER_DIR / "queue"),
        "processed_folder": str(CELERY_BROKER_DIR / "processed"),
        "control_folder": str(CELERY_BROKER_DIR / "control"),
        "store_processed": False,
    }
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_TASK_DEFAULT_QUEUE", default="celery")
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
LOGIN_URL = "dashboard:login"
LOGIN_REDIRECT_URL = "dashboard:overview"

# --- Request limits + security ----------------------------------------------------------------
MAX_REQUEST_BODY_BYTES = env.int("MAX_REQUEST_BODY_BYTES", default=2 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = MAX_REQUEST_BODY_BYTES
# JSON and YAML bodies nesting deeper than this are 400 BODY_TOO_DEEP before any parse.
MAX_BODY_DEPTH = env.int("MAX_BODY_DEPTH", default=32)
SESSION_COOKIE_HTTPONLY = True
# Database sessions indexed by user, so SCIM deprovisioning ends a person's sessions at once.
SESSION_ENGINE = "controlplane.identity.sessions"
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
# HCP Terraform run tasks: the hosts Tollgate fetches plans from and answers callbacks to (a
# signed request naming another host is refused), and how it retries them.
RUN_TASK_ALLOWED_HOSTS = env.list("RUN_TASK_ALLOWED_HOSTS", default=["app.terraform.io"])
RUN_TASK_RETRY_BACKOFF_S = env.float("RUN_TASK_RETRY_BACKOFF_S", default=2.0)
RUN_TASK_MAX_ATTEMPTS = env.int("RUN_TASK_MAX_ATTEMPTS", default=6)
RUN_TASK_HTTP_TIMEOUT_S = env.float("RUN_TASK_HTTP_TIMEOUT_S", default=30.0)
# Actions: how long a worker's lease lasts, and the retry backoff (doubles per attempt).
ACTION_LEASE_SECONDS = env.int("ACTION_LEASE_SECONDS", default=60)
ACTION_RETRY_BACKOFF_S = env.int("ACTION_RETRY_BACKOFF_S", default=30)
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

# --- Billing, payments, dunning ---------------------------------------------------------------
# Plan of new tenants (a code of billing.catalog.PLANS).
BILLING_DEFAULT_PLAN = env.str("BILLING_DEFAULT_PLAN", default="free")
# Days a past-due subscription keeps working before the billing gate answers 402.
BILLING_GRACE_DAYS = env.int("BILLING_GRACE_DAYS", default=7)
STRIPE_API_KEY = env.str("STRIPE_API_KEY", default="")
STRIPE_WEBHOOK_SECRET = env.str("STRIPE_WEBHOOK_SECRET", default="")
# Only for tests and Stripe-compatible mocks; empty means Stripe's own API.
STRIPE_API_BASE = env.str("STRIPE_API_BASE", default="")
STRIPE_TIMEOUT_SECONDS = env.float("STRIPE_TIMEOUT_SECONDS", default=10.0)
# Secret (whsec_...) of the generic Standard Webhooks receiver.
STANDARD_WEBHOOK_SECRET = env.str("STANDARD_WEBHOOK_SECRET", default="")
DUNNING_SCHEDULE_DAYS = [
    int(d) for d in env.list("DUNNING_SCHEDULE_DAYS", default=["0", "3", "5", "7"])
]
# After the last retry failed, the subscription is suspended; canceled this many days later.
DUNNING_FINAL_WAIT_DAYS = env.int("DUNNING_FINAL_WAIT_DAYS", default=2)
DUNNING_CANCEL_AFTER_DAYS = env.int("DUNNING_CANCEL_AFTER_DAYS", default=14)
DUNNING_TICK_SECONDS = env.float("DUNNING_TICK_SECONDS", default=60.0)
CELERY_BEAT_SCHEDULE["billing-dunning-tick"] = {
    "task": "billing.dunning_tick_task",
    "schedule": DUNNING_TICK_SECONDS,
}

# --- Model price catalog (LLM gateway) ---------------------------------------------------------
# A LiteLLM-format price map (file path or URL); empty: only `manage.py import_prices` loads it.
PRICE_CATALOG_SOURCE = env.str("PRICE_CATALOG_SOURCE", default="")
PRICE_CATALOG_REFRESH_SECONDS = env.float("PRICE_CATALOG_REFRESH_SECONDS", default=6 * 3600.0)
PRICE_CATALOG_TIMEOUT_SECONDS = env.float("PRICE_CATALOG_TIMEOUT_SECONDS", default=20.0)
PRICE_CATALOG_RETRIES = env.int("PRICE_CATALOG_RETRIES", default=2)
PRICE_CATALOG_RETRY_BACKOFF_SECONDS = env.float("PRICE_CATALOG_RETRY_BACKOFF_SECONDS", default=2.0)
# A refresh that would drop more than this share of the models is refused (last good kept).
PRICE_CATALOG_MAX_SHRINK_PERCENT = env.int("PRICE_CATALOG_MAX_SHRINK_PERCENT", default=10)
# How long a process trusts its idea of the current catalog version before asking again.
PRICE_CATALOG_CACHE_SECONDS = env.float("PRICE_CATALOG_CACHE_SECONDS", default=30.0)
CELERY_BEAT_SCHEDULE["billing-price-catalog-refresh"] = {
    "task": "billing.price_catalog_refresh_task",
    "schedule": PRICE_CATALOG_REFRESH_SECONDS,
}

# --- LLM gateway (docs/llm-gateway.md) ----------------------------------------------------------
# Platform keys per provider, used only for tenants that allow them for that provider
# (TenantByokSettings.platform_providers); never a fallback for a broken BYOK credential.
LLM_PLATFORM_KEYS: dict[str, str] = env.dict("LLM_PLATFORM_KEYS", default={})
# Hosts a credential's custom base URL may name even though they resolve to private addresses.
LLM_EGRESS_ALLOWED_HOSTS: list[str] = env.list("LLM_EGRESS_ALLOWED_HOSTS", default=[])
LLM_EGRESS_ALLOW_HTTP = env.bool("LLM_EGRESS_ALLOW_HTTP", default=False)
LLM_PROXY_MAX_BODY_BYTES = env.int("LLM_PROXY_MAX_BODY_BYTES", default=8 * 1024 * 1024)
LLM_UPSTREAM_CONNECT_TIMEOUT_SECONDS = env.float(
    "LLM_UPSTREAM_CONNECT_TIMEOUT_SECONDS", default=5.0
)
LLM_UPSTREAM_READ_TIMEOUT_SECONDS = env.float("LLM_UPSTREAM_READ_TIMEOUT_SECONDS", default=600.0)
LLM_UPSTREAM_MAX_CONNECTIONS = env.int("LLM_UPSTREAM_MAX_CONNECTIONS", default=200)
# A resolved upstream (credential decrypted) is reused this long per tenant and provider.
LLM_UPSTREAM_CACHE_SECONDS = env.float("LLM_UPSTREAM_CACHE_SECONDS", default=5.0)
LLM_RESERVATION_TTL_SECONDS = env.int("LLM_RESERVATION_TTL_SECONDS", default=900)
# A proxy call still pending this long after its reservation (longer than the upstream read
# timeout, shorter than the TTL) lost its proxy: it is committed as estimated, never released.
LLM_ABANDONED_AFTER_SECONDS = env.int("LLM_ABANDONED_AFTER_SECONDS", default=720)
CELERY_BEAT_SCHEDULE["llm-commit-abandoned"] = {
    "task": "enforcement.llm_commit_abandoned_task",
    "schedule": env.float("LLM_ABANDONED_SWEEP_SECONDS", default=60.0),
}
# Per-minute limits (0: none) per API key, per end user and per tenant, in Redis.
LLM_REQUESTS_PER_MINUTE_KEY = env.int("LLM_REQUESTS_PER_MINUTE_KEY", default=0)
LLM_REQUESTS_PER_MINUTE_USER = env.int("LLM_REQUESTS_PER_MINUTE_USER", default=0)
LLM_REQUESTS_PER_MINUTE_TENANT = env.int("LLM_REQUESTS_PER_MINUTE_TENANT", default=0)
LLM_TOKENS_PER_MINUTE_KEY = env.int("LLM_TOKENS_PER_MINUTE_KEY", default=0)
LLM_TOKENS_PER_MINUTE_USER = env.int("LLM_TOKENS_PER_MINUTE_USER", default=0)
LLM_TOKENS_PER_MINUTE_TENANT = env.int("LLM_TOKENS_PER_MINUTE_TENANT", default=0)
# Request-shape caps (0: none); a policy's `llm` section may set tighter ones.
LLM_MAX_PROMPT_BYTES = env.int("LLM_MAX_PROMPT_BYTES", default=4 * 1024 * 1024)
# Denied calls per key or client address per minute that count as an abuse signal (logged).
LLM_ABUSE_DENIALS_PER_MINUTE = env.int("LLM_ABUSE_DENIALS_PER_MINUTE", default=20)

# --- Request gates (lifecycle -> billing -> protection) ---------------------------------------
REQUEST_GATES_ENABLED = env.bool("REQUEST_GATES_ENABLED", default=True)
# Callables(request) -> (tenant_id | None, api_key | None); the first that names a tenant wins.
# Dashboard pages are the signed-in person's tenant's traffic; everything else names its tenant
# with an API key.
REQUEST_GATE_TENANT_RESOLVERS = [
    "controlplane.dashboard.gates.session_tenant",
    "billing.gates.resolvers.api_key_tenant",
]
# Each provider: "database" (this deployment's own tables) or the base URL of a gate state
# service (docs/billing.md#gate-state-service).
LIFECYCLE_PROVIDER = env.str("LIFECYCLE_PROVIDER", default="database")
GATE_STATE_SERVICE_TOKEN = env.str("GATE_STATE_SERVICE_TOKEN", default="")
LIFECYCLE_PROVIDER_TIMEOUT_MS = env.int("LIFECYCLE_PROVIDER_TIMEOUT_MS", default=500)
LIFECYCLE_CACHE_SECONDS = env.float("LIFECYCLE_CACHE_SECONDS", default=10.0)
LIFECYCLE_FAIL_MODE = env.str("LIFECYCLE_FAIL_MODE", default="closed")
BILLING_PROVIDER = env.str("BILLING_PROVIDER", default="database")
BILLING_PROVIDER_TIMEOUT_MS = env.int("BILLING_PROVIDER_TIMEOUT_MS", default=200)
BILLING_PLAN_CACHE_SECONDS = env.float("BILLING_PLAN_CACHE_SECONDS", default=300.0)
BILLING_USAGE_CACHE_SECONDS = env.float("BILLING_USAGE_CACHE_SECONDS", default=60.0)
# Money never fails open: "closed" is the only accepted value. To let requests through while
# the billing provider is down, set BILLING_BYPASS_UNTIL (ISO 8601, at most
# BILLING_BYPASS_MAX_HOURS ahead) and BILLING_BYPASS_REASON; every use is logged and counted.
BILLING_FAIL_MODE = env.str("BILLING_FAIL_MODE", default="closed")
BILLING_BYPASS_UNTIL = env.str("BILLING_BYPASS_UNTIL", default="")
BILLING_BYPASS_REASON = env.str("BILLING_BYPASS_REASON", default="")
BILLING_BYPASS_MAX_HOURS = env.int("BILLING_BYPASS_MAX_HOURS", default=24)
# A provider's last answer is used while it fails, up to this age; then the fail mode answers.
GATE_LAST_KNOWN_MAX_SECONDS = env.float("GATE_LAST_KNOWN_MAX_SECONDS", default=3600.0)
PROTECTION_REDIS_URL = env.str("PROTECTION_REDIS_URL", default="") or REDIS_URL
PROTECTION_PROVIDER_TIMEOUT_MS = env.int("PROTECTION_PROVIDER_TIMEOUT_MS", default=100)
# A refusal is remembered locally this long (at most its Retry-After), so a client hammering
# after a 429 costs no Redis round trip.
PROTECTION_CACHE_SECONDS = env.float("PROTECTION_CACHE_SECONDS", default=1.0)
PROTECTION_FAIL_MODE = env.str("PROTECTION_FAIL_MODE", default="open")
PROTECTION_KEY_PREFIX = env.str("PROTECTION_KEY_PREFIX", default="tollgate:gate:")
# Requests per second and burst, per API key, per tenant and for the whole deployment.
PROTECTION_KEY_RATE = env.float("PROTECTION_KEY_RATE", default=50.0)
PROTECTION_KEY_BURST = env.int("PROTECTION_KEY_BURST", default=100)
PROTECTION_TENANT_RATE = env.float("PROTECTION_TENANT_RATE", default=200.0)
PROTECTION_TENANT_BURST = env.int("PROTECTION_TENANT_BURST", default=400)
PROTECTION_GLOBAL_RATE = env.float("PROTECTION_GLOBAL_RATE", default=2000.0)
PROTECTION_GLOBAL_BURST = env.int("PROTECTION_GLOBAL_BURST", default=4000)
# Circuit breakers of the gate providers (per process): consecutive failures to open, and
# seconds open before one trial call.
GATE_BREAKER_FAILURE_THRESHOLD = env.int("GATE_BREAKER_FAILURE_THRESHOLD", default=5)
GATE_BREAKER_RESET_SECONDS = env.float("GATE_BREAKER_RESET_SECONDS", default=30.0)

# --- Budget alerts ------------------------------------------------------------------------------
BUDGET_ALERT_DEFAULT_THRESHOLDS = [
    int(p) for p in env.list("BUDGET_ALERT_DEFAULT_THRESHOLDS", default=["50", "80", "90", "100"])
]
BUDGET_ALERT_SWEEP_SECONDS = env.float("BUDGET_ALERT_SWEEP_SECONDS", default=60.0)
CELERY_BEAT_SCHEDULE["budget-alerts-sweep"] = {
    "task": "enforcement.budget_alerts_sweep_task",
    "schedule": BUDGET_ALERT_SWEEP_SECONDS,
}

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
        "OutcomeEnum": "enforcement.models.decisions.OUTCOMES",
        "LlmUsageFormatEnum": "enforcement.api.llm.USAGE_FORMATS",
    },
}

# --- Logging (structlog, JSON lines) ----------------------------------------------------------
# The demo keeps the terminal for its banner: warnings and errors only unless asked otherwise.
LOG_LEVEL = env.str("LOG_LEVEL", default="WARNING" if TOLLGATE_ENV == "demo" else "INFO").upper()
LOGGING_CONFIG = "controlplane.core.logging.configure_logging"
LOGGING = {"level": LOG_LEVEL}
