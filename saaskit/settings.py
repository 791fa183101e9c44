"""saaskit settings: everything comes from the environment, with development defaults from the embedded services.

SAASKIT_ENV selects the mode: ``development`` (default), ``test`` or ``production``. In production every
secret must be given; a missing one fails fast with ImproperlyConfigured naming it.
"""

from __future__ import annotations

import os
import secrets
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from saaskit import embedded

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = embedded.DATA_DIR
SAASKIT_ENV = os.environ.get("SAASKIT_ENV", "development")
if SAASKIT_ENV not in {"development", "test", "production"}:
    raise ImproperlyConfigured(f"SAASKIT_ENV must be development, test or production, not {SAASKIT_ENV!r}")
PRODUCTION = SAASKIT_ENV == "production"


def env_required(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise ImproperlyConfigured(f"{name} must be set when SAASKIT_ENV=production")
    return value


def env_bool(name: str, default: bool) -> bool:
    return os.environ.get(name, str(default)).strip().lower() in {"1", "true", "yes", "on"}


def _development_secret_key() -> str:
    path = DATA_DIR / "secret_key"
    if not path.exists():
        DATA_DIR.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = env_required("SECRET_KEY") if PRODUCTION else os.environ.get("SECRET_KEY") or _development_secret_key()
DEBUG = env_bool("DEBUG", SAASKIT_ENV == "development")
if PRODUCTION and DEBUG:
    raise ImproperlyConfigured("DEBUG must be off when SAASKIT_ENV=production (it shows settings and tracebacks)")
ALLOWED_HOSTS = [h for h in os.environ.get("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver").split(",") if h]

# --- PostgreSQL -------------------------------------------------------------------------------
DATABASE_URL = env_required("DATABASE_URL") if PRODUCTION else os.environ.get("DATABASE_URL") or embedded.postgres_url()
# Health checks: a kept connection that PostgreSQL cut (restart, failover, pg_terminate_backend) is replaced at the
# next request or task instead of failing it (found by make chaos; tests/saaskit/test_database.py).
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=int(os.environ.get("DB_CONN_MAX_AGE", "60")),
                                              conn_health_checks=True)}
DATABASES["default"]["TEST"] = {"NAME": os.environ.get("SAASKIT_TEST_DB_NAME", "test_saaskit")}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# ============================================================================================
# Redis databases, Celery and the event bus (owner: events). Keep this block together.
# ============================================================================================
# --- Redis: two databases -------------------------------------------------------------------
# REDIS_URL's database holds what must never be evicted or flushed: the Celery broker's queues (and unacked
# messages) and the authz change feed (a stream under ``saaskit:authz:``). Run that Redis with
# ``maxmemory-policy noeviction`` (or ``volatile-lru``: only keys with a TTL go, and nothing there has one).
# The cache lives in a database of its own (REDIS_CACHE_URL), so ``cache.clear()`` (FLUSHDB) or evicting it loses
# no message; every cache key has a TTL. There is no result backend. With Sentinel, give kombu's
# ``sentinel://`` URL to CELERY_BROKER_URL and a Sentinel-aware client to the cache (see README).
REDIS_DB = int(os.environ.get("SAASKIT_REDIS_DB", "0"))
REDIS_URL = env_required("REDIS_URL") if PRODUCTION else os.environ.get("REDIS_URL") or embedded.redis_url(REDIS_DB)


def redis_url_with_db(url: str, db: int) -> str:
    """``url`` pointing at database ``db`` of the same server (``redis://host:port/N`` or ``unix://path?db=N``)."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        query = [(k, v) for k, v in parse_qsl(parts.query) if k != "db"] + [("db", str(db))]
        return f"unix://{parts.netloc}{parts.path}?{urlencode(query)}"
    return urlunsplit(parts._replace(path=f"/{db}"))


def _cache_db() -> int:
    if "SAASKIT_REDIS_CACHE_DB" in os.environ:
        return int(os.environ["SAASKIT_REDIS_CACHE_DB"])
    if os.environ.get("REDIS_URL"):  # a stock Redis has 16 databases
        current = urlsplit(REDIS_URL)
        db = int(dict(parse_qsl(current.query)).get("db", 0)) if current.scheme == "unix" else int(
            current.path.strip("/") or 0)
        return (db + 1) % 16
    return (REDIS_DB + 16) % 32  # the embedded Redis has 32: out of the way of other runs' REDIS_DB (0-15)


REDIS_CACHE_URL = os.environ.get("REDIS_CACHE_URL") or redis_url_with_db(REDIS_URL, _cache_db())
# Every Redis call (cache, publishing a message) gives up after this many seconds instead of hanging on a Redis that
# is paused or partitioned away; the relay then leaves its messages to the sweep (events.relay).
REDIS_SOCKET_TIMEOUT = float(os.environ.get("REDIS_SOCKET_TIMEOUT", "1"))


def redis_url_for_kombu(url: str) -> str:
    """kombu spells a unix-socket Redis ``redis+socket:///path?virtual_host=N``; redis-py spells it ``unix://``."""
    if url.startswith("unix://"):
        path, _, query = url[len("unix://"):].partition("?")
        params = dict(p.split("=", 1) for p in query.split("&") if "=" in p)
        return f"redis+socket://{path}?virtual_host={params.get('db', '0')}"
    return url


CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_CACHE_URL,
        "KEY_PREFIX": os.environ.get("SAASKIT_CACHE_PREFIX", "saaskit"),
        # on the request path: a Redis that is down or unresponsive fails a call in a second, never hangs it
        "OPTIONS": {"socket_timeout": REDIS_SOCKET_TIMEOUT, "socket_connect_timeout": REDIS_SOCKET_TIMEOUT},
    }
}

# --- Celery (over Redis, at-least-once) -------------------------------------------------------
CELERY_BROKER_URL = redis_url_for_kombu(os.environ.get("CELERY_BROKER_URL") or REDIS_URL)
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A message not acked within this many seconds is handed to another worker: longer than any task runs.
CELERY_VISIBILITY_TIMEOUT = int(os.environ.get("CELERY_VISIBILITY_TIMEOUT", "300"))
# kombu scans for unacked messages past the visibility timeout every interval*throttle seconds (default 10*10):
# make it every CELERY_UNACKED_RESTORE_INTERVAL seconds so a message held by a dead worker comes back promptly.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": CELERY_VISIBILITY_TIMEOUT,
    "socket_timeout": REDIS_SOCKET_TIMEOUT,  # kombu: without it a publish waits forever on a dead connection
    "socket_connect_timeout": REDIS_SOCKET_TIMEOUT,
    "unacked_restore_interval": int(os.environ.get("CELERY_UNACKED_RESTORE_INTERVAL", "10")),
    "unacked_restore_throttle": 1,
}
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_TASK_ALWAYS_EAGER = False

# --- Event bus (events app): outbox relay, per-consumer deliveries, sweeps ---------------------
EVENTS_RELAY_ON_COMMIT = env_bool("EVENTS_RELAY_ON_COMMIT", True)  # off: only the sweep relays (tests)
# After a failed send the relay of this process leaves messages to the sweep for this long (a broker outage
# never stalls requests: their outbox rows are committed, the sweep sends them later).
EVENTS_RELAY_PAUSE_SECONDS = float(os.environ.get("EVENTS_RELAY_PAUSE_SECONDS", "5"))
EVENTS_MAX_ATTEMPTS = int(os.environ.get("EVENTS_MAX_ATTEMPTS", "8"))  # then the delivery is dead-lettered
EVENTS_RETRY_BASE_SECONDS = float(os.environ.get("EVENTS_RETRY_BASE_SECONDS", "2"))
EVENTS_RETRY_MAX_SECONDS = float(os.environ.get("EVENTS_RETRY_MAX_SECONDS", "600"))
EVENTS_TASK_SOFT_TIME_LIMIT = int(os.environ.get("EVENTS_TASK_SOFT_TIME_LIMIT", "60"))
# A delivery not done this long after its last send is sent again (a message lost by Redis or stuck unacked).
# Longer than any consumer runs; shorter than the broker's visibility timeout.
EVENTS_REDELIVER_AFTER_SECONDS = float(os.environ.get("EVENTS_REDELIVER_AFTER_SECONDS", "120"))
EVENTS_SWEEP_INTERVAL_SECONDS = float(os.environ.get("EVENTS_SWEEP_INTERVAL_SECONDS", "10"))
# Each completed delivery wakes at most this many of the deliveries parked for it (longest parked first); the sweep
# wakes the rest when they have been parked a while.
EVENTS_WAKE_BATCH = int(os.environ.get("EVENTS_WAKE_BATCH", "50"))
# A delivery parked (NotReady) this long is dead-lettered: "prerequisite never arrived".
EVENTS_PARK_MAX_SECONDS = float(os.environ.get("EVENTS_PARK_MAX_SECONDS", "600"))
# Consumers' per-process cache of event instances (events.consumers.event_instance): how long another process's
# deletion of an instance may go unseen (writes for it fail on their foreign keys meanwhile); 0 turns it off.
EVENTS_INSTANCE_CACHE_SECONDS = float(os.environ.get("EVENTS_INSTANCE_CACHE_SECONDS", "5"))
EVENTS_RETENTION_DAYS = float(os.environ.get("EVENTS_RETENTION_DAYS", "30"))
EVENTS_PURGE_INTERVAL_SECONDS = float(os.environ.get("EVENTS_PURGE_INTERVAL_SECONDS", "3600"))
EVENTS_EXTRA_CONSUMER_MODULES = [m for m in os.environ.get("EVENTS_EXTRA_CONSUMER_MODULES", "").split(",") if m]
CELERY_TASK_ROUTES = {"events.sweep": {"queue": "events"}, "events.purge": {"queue": "events"}}
# Celery's Django fixup closes the DB connections before and after EVERY task unless this is set: a new
# PostgreSQL connection per delivery (~10 ms, most of a delivery's cost). Keep them (closed every 2*N tasks);
# events.tasks closes unusable or obsolete ones after each task, as Django does after each request.
CELERY_DB_REUSE_MAX = int(os.environ.get("CELERY_DB_REUSE_MAX", "1000"))
CELERY_BEAT_SCHEDULE = {
    "events-sweep": {"task": "events.sweep", "schedule": EVENTS_SWEEP_INTERVAL_SECONDS, "options": {"queue": "events"}},
    "events-purge": {"task": "events.purge", "schedule": EVENTS_PURGE_INTERVAL_SECONDS, "options": {"queue": "events"}},
}

# --- Metrics (GET /metrics, events.api.metrics) and `manage.py events health` ----------------------
# Scrapers show a bearer token, or come from an allowed address (loopback by default outside production). With
# several granian / Celery processes per host set PROMETHEUS_MULTIPROC_DIR (prometheus-client's multiprocess mode).
METRICS_BEARER_TOKEN = os.environ.get("METRICS_BEARER_TOKEN", "")
METRICS_ALLOWED_ADDRESSES = [a for a in os.environ.get(
    "METRICS_ALLOWED_ADDRESSES", "" if PRODUCTION else "127.0.0.1,::1").split(",") if a]
# `events health` fails (exit 1) when a delivery has been pending longer than this, or any is dead-lettered.
EVENTS_HEALTH_MAX_PENDING_SECONDS = float(os.environ.get("EVENTS_HEALTH_MAX_PENDING_SECONDS", "300"))

# ============================================================================================
# end of the Redis / Celery / event bus block
# ============================================================================================

# --- Django -----------------------------------------------------------------------------------
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "guardian",
    "saaskit",
    "accounts",
    "authz",
    "authzen",
    "events",
    "inventory",
    "payments",
    "orders",
]

MIDDLEWARE = [
    "saaskit.middleware.RequestBodyLimitMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "saaskit.urls"
WSGI_APPLICATION = "saaskit.wsgi.application"
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
            ]
        },
    }
]

AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
GUARDIAN_RAISE_403 = False
ANONYMOUS_USER_NAME = None  # guardian: no anonymous user row

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"

# Proxies we run in front of the app: the client address is the TRUSTED_PROXY_COUNT-th entry of
# X-Forwarded-For from the right (saaskit.client_address); 0 = the app faces clients, REMOTE_ADDR is it.
TRUSTED_PROXY_COUNT = int(os.environ.get("TRUSTED_PROXY_COUNT", "0"))
if TRUSTED_PROXY_COUNT < 0:
    raise ImproperlyConfigured("TRUSTED_PROXY_COUNT must be 0 or more")

# Bodies above this size get a 413 JSON error before any view parses them.
DATA_UPLOAD_MAX_MEMORY_SIZE = int(os.environ.get("MAX_REQUEST_BODY_BYTES", str(1024 * 1024)))

# --- REST API ---------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["accounts.authentication.AccessTokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_SCHEMA_CLASS": "saaskit.schema.AutoSchema",
    "EXCEPTION_HANDLER": "saaskit.errors.exception_handler",
    "DEFAULT_PAGINATION_CLASS": "saaskit.pagination.Pagination",
    "PAGE_SIZE": 50,
    "DEFAULT_THROTTLE_RATES": {
        # Failed logins and every registration attempt (see accounts.throttling); the rest is unthrottled.
        "login_failures_account": os.environ.get("THROTTLE_LOGIN_FAILURES_ACCOUNT", "5/min"),
        "login_failures_address": os.environ.get("THROTTLE_LOGIN_FAILURES_ADDRESS", "30/min"),
        "register_account": os.environ.get("THROTTLE_REGISTER_ACCOUNT", "5/hour"),
        "register_address": os.environ.get("THROTTLE_REGISTER_ADDRESS", "20/hour"),
    },
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "saaskit API",
    "DESCRIPTION": "Accounts, roles, tokens, authorization and the order saga.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "saaskit.schema.add_error_responses",  # the error shape on every operation, declared once
    ],
}

# --- Tokens -----------------------------------------------------------------------------------
JWT_ISSUER = os.environ.get("JWT_ISSUER", "saaskit")
JWT_AUDIENCE = os.environ.get("JWT_AUDIENCE", "saaskit-api")
ACCESS_TOKEN_LIFETIME = timedelta(seconds=int(os.environ.get("ACCESS_TOKEN_LIFETIME_SECONDS", "300")))
REFRESH_TOKEN_LIFETIME = timedelta(seconds=int(os.environ.get("REFRESH_TOKEN_LIFETIME_SECONDS", str(14 * 24 * 3600))))
# Beat deletes refresh tokens expired longer than this (accounts.tasks.refresh_tokens_flush), this often.
REFRESH_TOKEN_FLUSH_GRACE_SECONDS = float(os.environ.get("REFRESH_TOKEN_FLUSH_GRACE_SECONDS", str(24 * 3600)))
REFRESH_TOKEN_FLUSH_INTERVAL_SECONDS = float(os.environ.get("REFRESH_TOKEN_FLUSH_INTERVAL_SECONDS", "3600"))
CELERY_TASK_ROUTES["accounts.refresh_tokens_flush"] = {"queue": "accounts"}
CELERY_BEAT_SCHEDULE["accounts-refresh-tokens-flush"] = {
    "task": "accounts.refresh_tokens_flush", "schedule": REFRESH_TOKEN_FLUSH_INTERVAL_SECONDS,
    "options": {"queue": "accounts"}}
INVITATION_LIFETIME = timedelta(days=int(os.environ.get("INVITATION_LIFETIME_DAYS", "7")))  # member invitations
# Signing keys: a directory of PEM private keys named <kid>.pem; the newest signs, all verify.
# In development they are generated under .saaskit/jwt-keys; in production JWT_KEYS_DIR is required.
JWT_KEYS_DIR = Path(
    env_required("JWT_KEYS_DIR") if PRODUCTION else os.environ.get("JWT_KEYS_DIR") or DATA_DIR / "jwt-keys"
)
# A retired key keeps verifying for this long after a newer key took over (>= the access token lifetime).
JWT_KEY_RETIREMENT_GRACE = ACCESS_TOKEN_LIFETIME + timedelta(minutes=1)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"pgserver": {"level": "WARNING"}},
}

# --- HTTPS and cookies: on in production, each overridable by its environment variable ----------------
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", PRODUCTION)
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]  # load balancers probe over plain HTTP
SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", str(365 * 24 * 3600 if PRODUCTION else 0)))
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", PRODUCTION)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", PRODUCTION)
# The TLS-terminating proxy must set (overwrite) this header; "" turns it off (the app terminates TLS).
_PROXY_SSL_HEADER = os.environ.get("SECURE_PROXY_SSL_HEADER", "HTTP_X_FORWARDED_PROTO=https" if PRODUCTION else "")
if _PROXY_SSL_HEADER:
    _header, _, _value = _PROXY_SSL_HEADER.partition("=")
    if not _header or not _value:
        raise ImproperlyConfigured("SECURE_PROXY_SSL_HEADER must look like HTTP_X_FORWARDED_PROTO=https, or be empty")
    SECURE_PROXY_SSL_HEADER = (_header.strip(), _value.strip())
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", PRODUCTION)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", PRODUCTION)

# Swagger UI and the OpenAPI schema at /api/docs/ and /api/schema/ (off in production unless asked for).
API_DOCS_ENABLED = env_bool("API_DOCS_ENABLED", not PRODUCTION)

# --- Console and audit log (issue 10) ------------------------------------------------------------
# The admin site is console.sites.ConsoleAdminSite (the stock admin plus the console's pages); audit is at the
# bottom of the app layers, console on top. RequestContextMiddleware binds the request id and address that
# audit entries record.
INSTALLED_APPS = [("console.apps.ConsoleAdminConfig" if app == "django.contrib.admin" else app)
                  for app in INSTALLED_APPS]
INSTALLED_APPS += ["audit", "console"]
MIDDLEWARE = ["saaskit.middleware.RequestContextMiddleware", "saaskit.middleware.RequestMetricsMiddleware", *MIDDLEWARE]
# --- end of console and audit log -------------------------------------------------------------------

# --- Order saga (orders, inventory, payments) -------------------------------------------------------- saga owner
# An order still pending this long after it was placed is canceled (reason "deadline") by the saga sweep.
ORDER_DEADLINE_SECONDS = float(os.environ.get("ORDER_DEADLINE_SECONDS", "60"))
# How often beat runs the saga sweep (deadline and dead-lettered order events).
ORDER_SWEEP_INTERVAL_SECONDS = float(os.environ.get("ORDER_SWEEP_INTERVAL_SECONDS", "10"))
CELERY_TASK_ROUTES["orders.saga_sweep"] = {"queue": "orders"}
CELERY_BEAT_SCHEDULE["orders-saga-sweep"] = {"task": "orders.saga_sweep", "schedule": ORDER_SWEEP_INTERVAL_SECONDS,
                                             "options": {"queue": "orders"}}
# Idempotency-Key records (POST /orders/, wallet top-up and adjust) are kept this long.
IDEMPOTENCY_KEY_TTL_SECONDS = float(os.environ.get("IDEMPOTENCY_KEY_TTL_SECONDS", str(24 * 3600)))
# Suspicious activity rules (event-suspicious-activity): failed charges of one wallet within a window ...
PAYMENTS_SUSPICIOUS_FAILURES_IN_WINDOW = int(os.environ.get("PAYMENTS_SUSPICIOUS_FAILURES_IN_WINDOW", "10"))
PAYMENTS_SUSPICIOUS_WINDOW_SECONDS = float(os.environ.get("PAYMENTS_SUSPICIOUS_WINDOW_SECONDS", "600"))
PAYMENTS_SUSPICIOUS_FAILURES_IN_A_ROW = int(os.environ.get("PAYMENTS_SUSPICIOUS_FAILURES_IN_A_ROW", "3"))
# ... and an order above FACTOR x the median of the customer's last orders (once they have MIN_HISTORY of them).
ORDERS_SUSPICIOUS_TOTAL_FACTOR = float(os.environ.get("ORDERS_SUSPICIOUS_TOTAL_FACTOR", "5"))
ORDERS_SUSPICIOUS_MIN_HISTORY = int(os.environ.get("ORDERS_SUSPICIOUS_MIN_HISTORY", "3"))
# ... and M failed logins of one account (wrong password) within a window (the login throttle, 5/min per account,
# still applies: M failures take at least M/5 minutes).
ACCOUNTS_SUSPICIOUS_FAILED_LOGINS = int(os.environ.get("ACCOUNTS_SUSPICIOUS_FAILED_LOGINS", "10"))
ACCOUNTS_SUSPICIOUS_FAILED_LOGINS_WINDOW_SECONDS = int(
    os.environ.get("ACCOUNTS_SUSPICIOUS_FAILED_LOGINS_WINDOW_SECONDS", "3600"))
# --- end of the order saga block -----------------------------------------------------------------------------------
