"""Settings for Spaces, read once from the environment.

With nothing set, the site runs on embedded defaults: SQLite, an in-memory
channel layer, a local-memory cache, Celery tasks run in-process and email
printed to the console. `DATABASE_URL` and `REDIS_URL` switch to PostgreSQL
and Redis. Code reads `django.conf.settings`, never `os.environ`.
"""

import ipaddress
import json
import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
import redis.exceptions
from csp.constants import NONE, SELF, UNSAFE_INLINE
from django.core.exceptions import ImproperlyConfigured
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return default if value in (None, "") else int(value)


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if value in (None, ""):
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


def env_networks(name: str) -> list[str]:
    """Comma-separated IP addresses and networks (`10.0.0.5`, `10.0.0.0/8`, `fd00::/8`), checked here:
    a typo stops the site rather than silently trusting no one, or everyone."""
    networks = []
    for item in env_list(name, []):
        try:
            network = ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise ImproperlyConfigured(f"{name}: {item!r} is not an IP address or network (CIDR).") from None
        if network.prefixlen == 0:
            raise ImproperlyConfigured(f"{name}: {item!r} would trust any client to say who it is.")
        networks.append(str(network.network_address if network.num_addresses == 1 else network))
    return networks


DEBUG = env_bool("DEBUG")

SECRET_KEY = os.environ.get("SECRET_KEY", "")
# Django's own bar for a key (`check --deploy`, security.W009): sessions, password resets and
# signed values are only as safe as this.
SECRET_KEY_MIN_LENGTH, SECRET_KEY_MIN_UNIQUE = 50, 5
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
    SECRET_KEY = "insecure-development-key-do-not-use-in-production"
elif not DEBUG and (len(SECRET_KEY) < SECRET_KEY_MIN_LENGTH or len(set(SECRET_KEY)) < SECRET_KEY_MIN_UNIQUE):
    raise ImproperlyConfigured(
        f"SECRET_KEY must be at least {SECRET_KEY_MIN_LENGTH} random characters when DEBUG is off; make one with "
        "python -c 'import secrets; print(secrets.token_urlsafe(64))'."
    )

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
# The proxies (addresses or networks) whose X-Forwarded-For is believed; none by default. The client's
# address, for every limit, is the one the nearest of them saw (spaces_site/client_address.py).
SPACES_TRUSTED_PROXIES = env_networks("SPACES_TRUSTED_PROXIES")

# Where the site is reached, for links in emails.
SITE_URL = os.environ.get("SITE_URL", "http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "django_celery_beat",
    "axes",
    "accounts",
    "rooms",
    "ticketing",
    "scheduling",
    "media",
    "workflows",
]

MIDDLEWARE = [
    # A view that waits on an outside service, answered in the thread under WSGI (spaces_site/outside.py).
    "spaces_site.outside.OutsideCallMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    # Outermost of the rest: a view meeting a database or Redis outage becomes a 503.
    "spaces_site.middleware.OutageMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    *(["spaces_site.request_log.RequestLogMiddleware"] if env_bool("SPACES_REQUEST_LOG", DEBUG) else []),
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Turns a sign-in that django-axes refused into its lockout answer (AXES_LOCKOUT_CALLABLE).
    "axes.middleware.AxesMiddleware",
    # Last: under Django's own ASGI handler too, the chain above runs in one thread (see its docstring).
    "spaces_site.middleware.SyncChainMiddleware",
]

ROOT_URLCONF = "spaces_site.urls"
ASGI_APPLICATION = "spaces_site.asgi.application"

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

# Database: SQLite unless DATABASE_URL names another (PostgreSQL in production).
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{BASE_DIR / 'var' / 'db.sqlite3'}",
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 0),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The file's folder (var/ by default) is made here: SQLite makes the file, not the folder.
    if DATABASES["default"]["NAME"] not in ("", ":memory:") and "mode=memory" not in DATABASES["default"]["NAME"]:
        Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        # Wait up to this long for the write lock instead of failing when two requests write.
        timeout=env_int("SQLITE_TIMEOUT_S", 20),
        # Take the write lock when a transaction begins: a DEFERRED one that reads first and
        # writes later fails at once with "database is locked" if another writer got in
        # between, whatever the timeout.
        transaction_mode="IMMEDIATE",
        # WAL: readers don't wait for the writer nor it for them (it stays in the file, and is
        # harmless on an in-memory database); NORMAL is the safe fsync level for WAL.
        init_command="PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    )
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and env_bool("DATABASE_PREPARED_STATEMENTS", True):
    # The few hand-written statements of the hottest paths are prepared on each connection the first
    # time they run (spaces_site/prepared.py); the ORM's are not. Their plan is made once, generic:
    # PostgreSQL's default plans a prepared statement again at each of its first five runs on a
    # connection, and a pool's connections rarely get past five. Django leaves prepared statements
    # off for PgBouncer's transaction mode before its 1.21: set DATABASE_PREPARED_STATEMENTS=0 there.
    _options = DATABASES["default"].setdefault("OPTIONS", {})
    _options["prepare_threshold"] = 0
    _options["options"] = f"{_options.get('options', '')} -c plan_cache_mode=force_generic_plan".strip()
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and env_int("DATABASE_POOL_MAX_SIZE", 0) > 0:
    # psycopg's connection pool, one per process: a request (or socket call) borrows a
    # connection for as long as it works with the database and gives it back at its end, so
    # a burst of requests waits in line for one of DATABASE_POOL_MAX_SIZE connections (up to
    # DATABASE_POOL_TIMEOUT_S, then 503) instead of opening one each past PostgreSQL's
    # `max_connections`. Size it so that web processes x max size (plus the Celery workers
    # and media workers) stays below `max_connections`. Off (0) unless set: with it on, the
    # PostgreSQL + Redis test pass stalls where it cancels consumers still reading the channel
    # layer (docs/operations.md, "Database connections"), so it is opt-in until that is understood.
    # A pool replaces persistent connections: DATABASE_CONN_MAX_AGE must stay 0 with it.
    if DATABASES["default"]["CONN_MAX_AGE"] != 0:
        raise ImproperlyConfigured(
            "DATABASE_CONN_MAX_AGE must be 0 with the connection pool (DATABASE_POOL_MAX_SIZE > 0): "
            "set DATABASE_POOL_MAX_SIZE=0 to use persistent connections instead."
        )
    # Django's backend, whose pool fails at once while PostgreSQL is down instead of making
    # each request wait the whole timeout for its 503 (spaces_site/postgresql/base.py).
    DATABASES["default"]["ENGINE"] = "spaces_site.postgresql"
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": env_int("DATABASE_POOL_MIN_SIZE", 2),
        "max_size": env_int("DATABASE_POOL_MAX_SIZE", 0),
        "timeout": env_int("DATABASE_POOL_TIMEOUT_S", 30),
        # A lost server is tried again for this long, then the next request that waits starts
        # a fresh attempt: the pool reconnects within about this long of the server's return.
        "reconnect_timeout": env_int("DATABASE_POOL_RECONNECT_S", 1),
        "name": "default",
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"

# Redis, when present, carries the channel layer, the cache and the Celery broker.
REDIS_URL = os.environ.get("REDIS_URL", "")

# How the site's Redis connections behave (the channel layer's and the cache's; Celery's
# broker has its own). channels-redis blocks on a read for 5 s (`brpop_timeout`), so the
# socket timeout must be well above it or an idle socket's read times out; a connection
# idle longer than the health-check interval is pinged before use, so one left stale by
# a Redis restart is replaced instead of failing the caller; a Redis that is down is
# noticed in `REDIS_CONNECT_TIMEOUT_S`, not after the kernel's TCP timeout. A command that
# finds its pooled connection closed (Redis restarted) reconnects and runs again, twice
# at most (the channel layer's pool is asyncio's, the cache's is not: each its own Retry).
REDIS_POOL_OPTIONS = {
    "socket_timeout": env_int("REDIS_SOCKET_TIMEOUT_S", 30),
    "socket_connect_timeout": env_int("REDIS_CONNECT_TIMEOUT_S", 2),
    "socket_keepalive": True,
    "health_check_interval": env_int("REDIS_HEALTH_CHECK_S", 15),
    "retry_on_error": [redis.exceptions.ConnectionError],
}
REDIS_RETRY = {"backoff": ExponentialBackoff(cap=0.5, base=0.05), "retries": 2}

if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "spaces_site.redis_layer.ProcessReaderRedisChannelLayer",
            # redis-py raises past its pool size; a thousand sockets closing at once need room.
            "CONFIG": {
                "hosts": [
                    {
                        "address": REDIS_URL,
                        "max_connections": env_int("REDIS_MAX_CONNECTIONS", 1000),
                        **REDIS_POOL_OPTIONS,
                        "retry": AsyncRetry(**REDIS_RETRY),
                    }
                ],
                "prefix": "spaces",
            },
        }
    }
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "spaces",
            "OPTIONS": {**REDIS_POOL_OPTIONS, "retry": Retry(**REDIS_RETRY)},
        }
    }
else:
    # One process's layer whose broadcasts cost O(recipients) (channels' own costs O(N²)).
    CHANNEL_LAYERS = {"default": {"BACKEND": "spaces_site.channel_layer.LocalChannelLayer"}}
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Celery: a real broker when Redis is configured; otherwise tasks run in-process.
# In memory without Redis (tasks run eagerly then); with a host name, as kombu warns without one.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", REDIS_URL or "memory://localhost/")
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", not (REDIS_URL or os.environ.get("CELERY_BROKER_URL")))
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "home"

# Failed sign-ins (the login form and the token API, both through `authenticate`) are counted by
# django-axes, which must come first so it refuses a locked-out username before any password check.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# SPACES_LOGIN_FAILURE_LIMIT failures lock a username out from the address they came from for
# SPACES_LOGIN_LOCKOUT_MIN; each refused try starts the wait again. The pair, not either alone: a
# guesser is stopped, but cannot lock the owner (another address) or other people out.
AXES_FAILURE_LIMIT = env_int("SPACES_LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("SPACES_LOGIN_LOCKOUT_MIN", 30))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
# And SPACES_LOGIN_ADDRESS_FAILURE_LIMIT failures from one address, whatever the usernames, lock that
# address out for every username for as long (one password tried on many accounts: accounts/lockout.py).
SPACES_LOGIN_ADDRESS_FAILURE_LIMIT = env_int("SPACES_LOGIN_ADDRESS_FAILURE_LIMIT", 30)
# axes' database handler, with the address's limit: failures are counted in one place for every web
# process (the default cache is per process without Redis) and staff see and clear them in the admin
# ("Access attempts").
AXES_HANDLER = "accounts.lockout.SignInLockout"
# Only failures are kept, not a row per successful sign-in.
AXES_DISABLE_ACCESS_LOG = True
# Usernames sign in case-insensitively, so they are counted so; addresses are read as the API's
# throttles read them (REMOTE_ADDR: the client's, spaces_site/client_address.py); the answer is a 429
# page or JSON error (accounts/views.py).
AXES_USERNAME_CALLABLE = "accounts.views.login_username"
AXES_CLIENT_IP_CALLABLE = "accounts.views.client_address"
AXES_LOCKOUT_CALLABLE = "accounts.views.login_locked_out"
# Password-reset e-mails per requesting address and per account (each counted on its own).
SPACES_PASSWORD_RESET_RATE = os.environ.get("SPACES_PASSWORD_RESET_RATE", "3/hour")

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "var" / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
# Uploaded files (avatars). Served by the site itself unless a front server does it.
MEDIA_URL = "/uploads/"
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", BASE_DIR / "var" / "uploads"))
SPACES_SERVE_UPLOADS = env_bool("SPACES_SERVE_UPLOADS", True)
SPACES_AVATAR_MAX_BYTES = env_int("SPACES_AVATAR_MAX_BYTES", 2 * 1024 * 1024)
SPACES_AVATAR_MAX_PIXELS = env_int("SPACES_AVATAR_MAX_PIXELS", 4096 * 4096)  # read from the header, before decoding

# Email: printed to the console unless an SMTP host is configured.
EMAIL_HOST = os.environ.get("EMAIL_HOST", "")
EMAIL_BACKEND = os.environ.get(
    "EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend" if EMAIL_HOST else "django.core.mail.backends.console.EmailBackend",
)
EMAIL_PORT = env_int("EMAIL_PORT", 587)
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
# Seconds the SMTP backend waits to connect and for each answer from the server; past it the
# send fails and its task retries or reports it, rather than hanging on a server that is stuck.
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT_S", 10)
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "Spaces <no-reply@spaces.local>")

REST_FRAMEWORK = {
    # Token first, so an anonymous request is answered 401 with a WWW-Authenticate header.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticatedOrReadOnly"],
    # drf-spectacular's, documenting the errors any operation can meet (throttled, bad token, body refused).
    "DEFAULT_SCHEMA_CLASS": "spaces_site.api_errors.ApiSchema",
    # DRF's three, with a JSON parser that refuses deep nesting (spaces_site/parsers.py).
    "DEFAULT_PARSER_CLASSES": [
        "spaces_site.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "spaces_site.api_errors.exception_handler",
    # Per address for visitors, per account once signed in; sign-up and token requests per
    # address (`auth`). Counts live in the cache: shared by the web processes on Redis.
    "DEFAULT_THROTTLE_CLASSES": [
        "rest_framework.throttling.AnonRateThrottle",
        "rest_framework.throttling.UserRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": os.environ.get("SPACES_API_ANON_RATE", "120/min"),
        "user": os.environ.get("SPACES_API_USER_RATE", "600/min"),
        "auth": os.environ.get("SPACES_API_AUTH_RATE", "10/min"),
        # Follows per account, the API and the page form together (unfollowing is never limited).
        "follow": os.environ.get("SPACES_API_FOLLOW_RATE", "100/hour"),
        # Clips asked per account, the API and the replay page's form together: a flood of asks is
        # refused before Django after a few (spaces_site/refusals.py); the hourly limit is the service's.
        "clip": os.environ.get("SPACES_API_CLIP_RATE", "20/min"),
    },
    # The client's address is REMOTE_ADDR alone, never X-Forwarded-For as DRF would read it: the one
    # value that spaces_site/client_address.py settles (from SPACES_TRUSTED_PROXIES), as axes and the
    # refusal memory read it.
    "NUM_PROXIES": 0,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Spaces API",
    "DESCRIPTION": "Live audio conversations: profiles, follows, hosting, spaces, tickets and reminders.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
}

# What pages may load and where they may connect: the site itself, images and audio from blobs
# (replays, clips) and data URLs, inline style attributes; no inline scripts, no framing. The
# API's own documentation pages (drf-spectacular) are exempt (spaces_site/urls.py).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF, UNSAFE_INLINE],
        "img-src": [SELF, "data:", "blob:"],
        "media-src": [SELF, "blob:"],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "frame-ancestors": [NONE],
    }
}

if not DEBUG:
    SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", True)
    CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", True)
    # No SECURE_PROXY_SSL_HEADER: Django would believe X-Forwarded-Proto from any client. The scheme,
    # like the client's address, is taken from the trusted proxies only (spaces_site/client_address.py
    # sets the ASGI scope's `scheme`, which `request.is_secure()` reads): behind a TLS proxy, list it in
    # SPACES_TRUSTED_PROXIES, or every request is plain HTTP to the site (and SECURE_SSL_REDIRECT loops).
    # HTTPS remembered by browsers for a year. The TLS proxy usually sends plain HTTP to HTTPS;
    # SECURE_SSL_REDIRECT=1 has the site do it too (README, "Production": `check --deploy` clean),
    # still letting the balancer's and the supervisor's health checks in over plain HTTP.
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
    SECURE_REDIRECT_EXEMPT = [r"^healthz", r"^readyz"]
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 365 * 24 * 3600)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)

# The console at INFO shows what a person running the site needs: requests (daphne's access log),
# spaces going live and ending, workers starting, and what went wrong. Libraries speak up only when
# something is wrong: aioice alone logs each candidate pair it checks (~100 lines per audio join).
LOG_LEVEL = os.environ.get("LOG_LEVEL", "INFO")
LIBRARY_LOG_LEVEL = os.environ.get("LIBRARY_LOG_LEVEL", "WARNING")
LIBRARY_LOGGERS = (
    "aiohttp",
    "aioice",
    "aiortc",
    "asyncio",
    "axes",
    "celery",
    "daphne",
    "faker",
    "kombu",
    "PIL",
    "stripe",
    "urllib3",
)
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {name: {"level": LIBRARY_LOG_LEVEL} for name in LIBRARY_LOGGERS},
}

# Product rules (PRODUCT.md); each default is a setting.
SPACES_HOST_MIN_FOLLOWERS = env_int("SPACES_HOST_MIN_FOLLOWERS", 600)
# A follower counts toward a threshold once their follow (and so their account) is this old: three
# days outlast a weekend's burst of throwaway sign-ups and give moderators time to ban it first.
SPACES_FOLLOWER_MIN_AGE_H = env_int("SPACES_FOLLOWER_MIN_AGE_H", 72)
SPACES_TICKETED_MIN_FOLLOWERS = env_int("SPACES_TICKETED_MIN_FOLLOWERS", 1000)
SPACES_TICKETED_MIN_HOSTED = env_int("SPACES_TICKETED_MIN_HOSTED", 3)
SPACES_HOST_ABSENCE_END_S = env_int("SPACES_HOST_ABSENCE_END_S", 300)
SPACES_REMINDER_LEAD_MIN = env_int("SPACES_REMINDER_LEAD_MIN", 15)
SPACES_SCHEDULE_GRACE_H = env_int("SPACES_SCHEDULE_GRACE_H", 2)
SPACES_RECORDING_RETENTION_D = env_int("SPACES_RECORDING_RETENTION_D", 30)
SPACES_CLIP_RETENTION_D = env_int("SPACES_CLIP_RETENTION_D", 30)
# Clips (media/recording/clip_limits.py): asked per person and per space in the last hour, and the
# stored clips' bytes per person and per space; past one, 429 with Retry-After. 0: no limit.
SPACES_CLIPS_PER_HOUR = env_int("SPACES_CLIPS_PER_HOUR", 10)
SPACES_CLIPS_PER_SPACE_PER_HOUR = env_int("SPACES_CLIPS_PER_SPACE_PER_HOUR", 100)
SPACES_CLIP_STORAGE_PER_PERSON_MB = env_int("SPACES_CLIP_STORAGE_PER_PERSON_MB", 50)
SPACES_CLIP_STORAGE_PER_SPACE_MB = env_int("SPACES_CLIP_STORAGE_PER_SPACE_MB", 500)
# Clips of replays are cut off the request: by a Celery worker, or with tasks in-process, on one
# thread of this process, one at a time (media/recording/services.py `clip_cut_soon`).
SPACES_CLIP_CUT_THREAD = env_bool("SPACES_CLIP_CUT_THREAD", CELERY_TASK_ALWAYS_EAGER)
# Recordings and clips downloading at once per person (account, or visitor's address) per web
# process; past it, 429 with Retry-After (media/downloads.py). 0: no cap.
SPACES_DOWNLOADS_PER_PERSON = env_int("SPACES_DOWNLOADS_PER_PERSON", 4)
# e.g. "/protected-media/": nginx sends recordings and clips (X-Accel-Redirect) from an internal
# location aliased to MEDIA_ROOT; empty: the web process streams them.
SPACES_MEDIA_ACCEL_REDIRECT = os.environ.get("SPACES_MEDIA_ACCEL_REDIRECT", "")
# Where a media worker writes the recordings it is making (a local disk of the worker's machine);
# finished ones move to the default storage (MEDIA_ROOT, or object storage).
SPACES_RECORDING_SPOOL_DIR = Path(os.environ.get("SPACES_RECORDING_SPOOL_DIR", BASE_DIR / "var" / "recording-spool"))
SPACES_STAGE_MAX = env_int("SPACES_STAGE_MAX", 13)  # host and co-hosts included
SPACES_COHOSTS_MAX = env_int("SPACES_COHOSTS_MAX", 2)
SPACES_RECONNECT_GRACE_S = env_int("SPACES_RECONNECT_GRACE_S", 30)
# Each web process vouches for its open sockets every SPACES_PRESENCE_SWEEP_S and sweeps;
# a socket nobody vouched for in SPACES_PRESENCE_TIMEOUT_S (its process died) is dropped.
SPACES_PRESENCE_SWEEP_S = env_int("SPACES_PRESENCE_SWEEP_S", 5)
SPACES_PRESENCE_TIMEOUT_S = env_int("SPACES_PRESENCE_TIMEOUT_S", 15)
if SPACES_PRESENCE_SWEEP_S <= 0 or SPACES_PRESENCE_TIMEOUT_S < 2 * SPACES_PRESENCE_SWEEP_S:
    raise ImproperlyConfigured("SPACES_PRESENCE_TIMEOUT_S must be at least twice SPACES_PRESENCE_SWEEP_S (> 0).")
# This web process's name, the same across its restarts and no other's (e.g. host:port): restarted,
# it drops at once the sockets its previous life left. One process with the in-process channel layer
# needs none; without a name, a shared layer's process leaves its dead sockets to the timeout.
SPACES_PROCESS_NAME = os.environ.get("SPACES_PROCESS_NAME", "")[:100]
SPACES_HEARTBEAT_S = env_int("SPACES_HEARTBEAT_S", 20)  # client pings: keep proxies from closing idle sockets
SPACES_SCHEDULE_MIN_AHEAD_MIN = env_int("SPACES_SCHEDULE_MIN_AHEAD_MIN", 15)
SPACES_SCHEDULE_MAX_AHEAD_D = env_int("SPACES_SCHEDULE_MAX_AHEAD_D", 30)
# HTTP requests in Django at once per web process, in each of two lines: reads (GET, HEAD, OPTIONS)
# and writes; the rest wait before it, first come first served (spaces_site/admission.py). 0: no line.
SPACES_WEB_CONCURRENCY = env_int("SPACES_WEB_CONCURRENCY", 4)
SPACES_WS_MAX_FRAME = env_int("SPACES_WS_MAX_FRAME", 64 * 1024)  # an SDP offer for a full stage is ~20 KiB
# Commands per person, websocket and REST together (rooms/limits.py): per second sustained, and burst.
SPACES_COMMAND_RATE = env_int("SPACES_COMMAND_RATE", 10)
SPACES_COMMAND_BURST = env_int("SPACES_COMMAND_BURST", 20)

# Outages of Redis or the database (docs/operations.md). A socket retries the channel layer
# this long before it tells its client `unavailable` and closes with 4503; clients and HTTP
# 503 answers are told to come back after SPACES_RETRY_AFTER_S; each process asks Redis
# whether it restarted every SPACES_LAYER_WATCH_S (0: don't watch).
SPACES_OUTAGE_RETRY_S = env_int("SPACES_OUTAGE_RETRY_S", 10)
SPACES_RETRY_AFTER_S = env_int("SPACES_RETRY_AFTER_S", 2)
SPACES_LAYER_WATCH_S = float(os.environ.get("SPACES_LAYER_WATCH_S") or 1)

# Media: STUN/TURN servers handed to browsers and to the worker, as JSON
# ([{"urls": "turn:turn.example:3478", "username": "u", "credential": "p"}]).
SPACES_ICE_SERVERS = json.loads(os.environ.get("SPACES_ICE_SERVERS", "[]"))
SPACES_MEDIA_WORKERS = env_int("SPACES_MEDIA_WORKERS", 1)
# Run the media worker inside the web process (the one-command default).
SPACES_MEDIA_IN_PROCESS = env_bool("SPACES_MEDIA_IN_PROCESS", True)
# Offer 127.0.0.1 as an ICE candidate (tests and benchmarks on one machine).
SPACES_MEDIA_ICE_LOOPBACK = env_bool("SPACES_MEDIA_ICE_LOOPBACK", False)
# A separate media worker stamps a heartbeat this often; web processes treat it as dead
# (and answer offers `media_unavailable`) once the stamp is older than the TTL.
# Live captions (docs/captions.md): the speech engine each media worker's captions process runs
# (moonshine, pocketsphinx, faster-whisper; "" turns captions off), and for faster-whisper a local
# CTranslate2 model folder and the device to run it on (cpu, cuda).
SPACES_CAPTIONS_ENGINE = os.environ.get("SPACES_CAPTIONS_ENGINE", "moonshine")
SPACES_CAPTIONS_MODEL_DIR = os.environ.get("SPACES_CAPTIONS_MODEL_DIR", "")
SPACES_CAPTIONS_DEVICE = os.environ.get("SPACES_CAPTIONS_DEVICE", "cpu")
SPACES_MEDIA_HEARTBEAT_S = float(os.environ.get("SPACES_MEDIA_HEARTBEAT_S") or 1)
SPACES_MEDIA_HEARTBEAT_TTL_S = env_int("SPACES_MEDIA_HEARTBEAT_TTL_S", 5)
# The cascade (docs/media.md), when workers run apart: how many listeners placement gives one worker
# before the room grows onto another, and the private address each worker binds for the plain RTP
# an origin sends its edges (one UDP socket per worker; port 0: any free port).
SPACES_MEDIA_WORKER_LISTENERS = env_int("SPACES_MEDIA_WORKER_LISTENERS", 1000)
SPACES_MEDIA_RELAY_HOST = os.environ.get("SPACES_MEDIA_RELAY_HOST", "127.0.0.1")
SPACES_MEDIA_RELAY_PORT = env_int("SPACES_MEDIA_RELAY_PORT", 0)
# Prometheus metrics (media/metrics.py, docs/media.md): a separate worker serves its own on this port
# plus its index (0: none), on this address; a web process serves its own at /metrics, to a scraper
# with `Authorization: Bearer <SPACES_METRICS_TOKEN>`, or, with no token set, from this machine only.
SPACES_MEDIA_METRICS_PORT = env_int("SPACES_MEDIA_METRICS_PORT", 0)
SPACES_MEDIA_METRICS_HOST = os.environ.get("SPACES_MEDIA_METRICS_HOST", "127.0.0.1")
SPACES_METRICS_TOKEN = os.environ.get("SPACES_METRICS_TOKEN", "")

# Ticketing (PRODUCT.md §5): Stripe Checkout with Connect Express destination charges.
# Without STRIPE_SECRET_KEY, buying and onboarding answer 503 ("payments are not set up").
STRIPE_SECRET_KEY = os.environ.get("STRIPE_SECRET_KEY", "")
# One or more webhook signing secrets, comma-separated (the platform endpoint's, and a
# Connect endpoint's when account events come to a separate endpoint).
STRIPE_WEBHOOK_SECRETS = env_list("STRIPE_WEBHOOK_SECRET", [])
STRIPE_API_BASE = os.environ.get("STRIPE_API_BASE", "https://api.stripe.com").rstrip("/")
# Every Stripe call has a deadline (docs/ticketing.md, "When Stripe is slow or down"): each attempt
# STRIPE_TIMEOUT_S, retried STRIPE_MAX_NETWORK_RETRIES times on a network error or a timeout, and a
# request waits at most STRIPE_REQUEST_BUDGET_S on Stripe in all (its call then answers 503).
STRIPE_TIMEOUT_S = env_int("STRIPE_TIMEOUT_S", 4)
STRIPE_MAX_NETWORK_RETRIES = env_int("STRIPE_MAX_NETWORK_RETRIES", 1)
STRIPE_REQUEST_BUDGET_S = env_int("STRIPE_REQUEST_BUDGET_S", 6)
# After STRIPE_BREAKER_FAILURES failed calls in a row (per process), the site stops calling Stripe for
# STRIPE_BREAKER_COOLDOWN_S: payments answer 503 `payments_unavailable` at once, with Retry-After.
STRIPE_BREAKER_FAILURES = env_int("STRIPE_BREAKER_FAILURES", 5)
STRIPE_BREAKER_COOLDOWN_S = env_int("STRIPE_BREAKER_COOLDOWN_S", 30)
STRIPE_CONNECT_COUNTRY = os.environ.get("STRIPE_CONNECT_COUNTRY", "US")
# Demo payments, for trying ticketing with no Stripe account (`make run` turns it on): the project's
# own Stripe stand-in (ticketing/stripe_standin.py, its default test key and signing secret) answers
# on SPACES_DEMO_STRIPE_PORT, the real `stripe` client pointed at it, and every payment page says
# "Demo payments — no real money". Read from the environment only, never from a request; off
# whenever a real STRIPE_SECRET_KEY is set, and refused with DEBUG off.
SPACES_DEMO_PAYMENTS = env_bool("SPACES_DEMO_PAYMENTS", False) and not STRIPE_SECRET_KEY
SPACES_DEMO_STRIPE_PORT = env_int("SPACES_DEMO_STRIPE_PORT", 12111)
if SPACES_DEMO_PAYMENTS:
    if not DEBUG:
        raise ImproperlyConfigured("SPACES_DEMO_PAYMENTS is for trying the site (DEBUG=1), never production.")
    STRIPE_SECRET_KEY = "sk_test_standin"
    STRIPE_WEBHOOK_SECRETS = ["whsec_standin"]
    STRIPE_API_BASE = f"http://127.0.0.1:{SPACES_DEMO_STRIPE_PORT}"
SPACES_TICKETED_HOSTED_WINDOW_D = env_int("SPACES_TICKETED_HOSTED_WINDOW_D", 30)
SPACES_TICKET_PRICE_MIN = env_int("SPACES_TICKET_PRICE_MIN", 100)  # minor units: 1.00
SPACES_TICKET_PRICE_MAX = env_int("SPACES_TICKET_PRICE_MAX", 99900)  # 999.00
SPACES_TICKET_CURRENCIES = env_list("SPACES_TICKET_CURRENCIES", ["usd", "eur", "gbp"])
SPACES_TICKET_CAP_MAX = env_int("SPACES_TICKET_CAP_MAX", 100_000)
# A seat is held while its Checkout Session is open: Stripe's minimum lifetime is 30 minutes.
SPACES_TICKET_HOLD_MIN = env_int("SPACES_TICKET_HOLD_MIN", 30)
# After a session's expiry, how long to wait for Stripe's webhook before the sweep asks Stripe itself.
SPACES_TICKET_HOLD_GRACE_S = env_int("SPACES_TICKET_HOLD_GRACE_S", 300)
# The platform's application fee: 3 % of a creator's lifetime ticket sales up to 50,000.00, 20 % above.
SPACES_TICKET_FEE_LOW_BPS = env_int("SPACES_TICKET_FEE_LOW_BPS", 300)
SPACES_TICKET_FEE_HIGH_BPS = env_int("SPACES_TICKET_FEE_HIGH_BPS", 2000)
SPACES_TICKET_FEE_TIER_MINOR = env_int("SPACES_TICKET_FEE_TIER_MINOR", 5_000_000)
SPACES_REFUND_MAX_RETRIES = env_int("SPACES_REFUND_MAX_RETRIES", 12)
SPACES_REFUND_BACKOFF_MAX_S = env_int("SPACES_REFUND_BACKOFF_MAX_S", 3600)

# Scheduling, reminders and notifications (PRODUCT.md §6; docs/architecture.md, "Scheduling").
SPACES_DUE_WORK_S = env_int("SPACES_DUE_WORK_S", 30)  # Celery beat: how often the due-work task runs
# The in-process ticker runs the same task in the web process when there is no broker (0: off).
SPACES_TICKER_S = env_int("SPACES_TICKER_S", SPACES_DUE_WORK_S if CELERY_TASK_ALWAYS_EAGER else 0)
SPACES_FANOUT_CHUNK = env_int("SPACES_FANOUT_CHUNK", 1000)  # recipients per bulk insert while planning
SPACES_DELIVERY_BATCH = env_int("SPACES_DELIVERY_BATCH", 500)  # deliveries per send task
# A claim this old never reached `sent` (its worker died): the sweep returns it to pending.
SPACES_DELIVERY_CLAIM_STALE_S = env_int("SPACES_DELIVERY_CLAIM_STALE_S", 300)
# A pending delivery queued this long ago lost its task: queue it again.
SPACES_DELIVERY_REQUEUE_S = env_int("SPACES_DELIVERY_REQUEUE_S", 300)
SPACES_DELIVERY_MAX_ATTEMPTS = env_int("SPACES_DELIVERY_MAX_ATTEMPTS", 5)
SPACES_DELIVERY_RETRY_S = env_int("SPACES_DELIVERY_RETRY_S", 60)  # wait after a failed email; doubles each time

# Pages at scale (issue 16)
# How long what the home page shows everyone alike (the live bar, upcoming spaces, people to follow, the
# whole page for anonymous visitors) is kept in the cache. Starts, ends, cancels and
# moves drop the feeds at once (`rooms.feeds`); listener counts and edits show within this.
SPACES_FEEDS_CACHE_S = env_int("SPACES_FEEDS_CACHE_S", 1)
# Space cards (`{% cache %}` in templates/rooms/_space_card.html) are kept a second in each process's
# own memory: no network round trip per card, and nothing to fail when Redis is down.
CACHES["template_fragments"] = {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "fragments"}
