"""Settings for socialgrid, read from the environment.

With no environment at all the platform runs embedded: SQLite, the in-memory channel layer,
an in-process dispatch cache and Celery tasks executed in-process. ``DATABASE_URL`` switches
to PostgreSQL and ``REDIS_URL`` to channels-redis, the Redis dispatch cache and a Celery broker
served by separate worker and beat processes. ``SOCIALGRID_ENV=production`` turns on the
checks that a public deployment needs.
"""

from __future__ import annotations

import os
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from socialgrid import csp
from socialgrid.accounts.providers import socialaccount_settings
from socialgrid.env import (
    envbool,
    envfloat,
    envint,
    envlist,
    envstr,
    parse_database_url,
)

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(envstr("SOCIALGRID_VAR_DIR", str(BASE_DIR / "var")))

ENVIRONMENT = envstr("SOCIALGRID_ENV", "development")
if ENVIRONMENT not in {"development", "production"}:
    raise ImproperlyConfigured(
        f"SOCIALGRID_ENV must be 'development' or 'production', not {ENVIRONMENT!r}"
    )
PRODUCTION = ENVIRONMENT == "production"

DEV_SECRET_KEY = "dev-only-insecure-key-do-not-use-in-production-6f1c0b8e"
SECRET_KEY = envstr("SECRET_KEY", DEV_SECRET_KEY)
DEBUG = envbool("DEBUG", not PRODUCTION)

if PRODUCTION:
    if SECRET_KEY == DEV_SECRET_KEY or len(SECRET_KEY) < 40:
        raise ImproperlyConfigured(
            "SECRET_KEY must be set to a private value of at least 40 characters in production"
        )
    if DEBUG:
        raise ImproperlyConfigured("DEBUG must be off in production (unset DEBUG or set DEBUG=0)")

ALLOWED_HOSTS = envlist(
    "ALLOWED_HOSTS",
    [] if PRODUCTION else ["127.0.0.1", "localhost", "testserver", "[::1]"],
)
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS", [])
SITE_URL = envstr("SITE_URL", "http://127.0.0.1:8000")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "channels",
    "allauth",
    "allauth.account",
    "allauth.socialaccount",
    "compute",
    "compute.api",
    "socialgrid.accounts",
    "socialgrid.feed",
    "socialgrid.invites",
    "socialgrid.friends",
    "socialgrid.teams",
    "socialgrid.leaderboards",
    "socialgrid.plugin",
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
    "socialgrid.csp.ContentSecurityPolicyMiddleware",
    "allauth.account.middleware.AccountMiddleware",
]

# Social sign-in: a provider is offered only when its credentials are in the environment.
SOCIAL_PROVIDER_APPS, SOCIALACCOUNT_PROVIDERS = socialaccount_settings(os.environ)
INSTALLED_APPS += SOCIAL_PROVIDER_APPS
SOCIALACCOUNT_ADAPTER = "socialgrid.accounts.adapter.SocialAccountAdapter"

ROOT_URLCONF = "socialgrid.urls"
WSGI_APPLICATION = "socialgrid.wsgi.application"
ASGI_APPLICATION = "socialgrid.asgi.application"

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
            # {{ value|credit }} everywhere: one rule for credit (compute.credit_display).
            "builtins": ["compute.templatetags.credit"],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
DATABASE_URL = envstr("DATABASE_URL", "")
# Beat's schedule, the statistics export and the embedded database live here.
VAR_DIR.mkdir(parents=True, exist_ok=True)
if DATABASE_URL:
    DATABASES = {"default": parse_database_url(DATABASE_URL)}
    DATABASES["default"].setdefault("CONN_MAX_AGE", envint("DB_CONN_MAX_AGE", 60, minimum=0))
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    # A connection pooler in transaction mode (PgBouncer) cannot keep a server-side cursor
    # open across transactions; the pages and exports that stream rows then fetch them whole.
    DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = envbool(
        "DB_DISABLE_SERVER_SIDE_CURSORS", False
    )
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": VAR_DIR / "socialgrid.sqlite3",
            # The embedded mode runs the web server and the sweeps in one process: WAL lets
            # readers proceed during a write and IMMEDIATE transactions queue writers instead
            # of failing with "database is locked".
            "OPTIONS": {
                "timeout": 30,
                "transaction_mode": "IMMEDIATE",
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
            "TEST": {"NAME": envstr("SOCIALGRID_TEST_SQLITE", "") or None},
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: channel layer, dispatch cache, Celery broker ------------------------------------
REDIS_URL = envstr("REDIS_URL", "")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            # channels_redis with a blocking connection pool (socialgrid/channel_layer.py).
            "BACKEND": "socialgrid.channel_layer.BlockingPoolChannelLayer",
            # redis-py 8 defaults to a 5 s socket timeout while the layer blocks on Redis for
            # 5 s at a time; a larger timeout keeps idle sockets alive.
            "CONFIG": {
                "hosts": [
                    {
                        "address": REDIS_URL,
                        "socket_timeout": 15,
                        "max_connections": envint("CHANNEL_LAYER_CONNECTIONS", 100, minimum=2),
                    }
                ],
                "prefix": "sg:layer",
                "capacity": 1000,
                # Group memberships are added again this often (and after Redis comes back).
                "rejoin_seconds": max(1.0, envfloat("CHANNEL_LAYER_REJOIN_SECONDS", 600.0)),
            },
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# Django's cache (rendered pictures, rate-limit counters): shared through Redis when there is
# one, so every web process sees the same entries; per process otherwise.
# CACHE_URL may name another Redis database: clearing the cache flushes its whole database.
CACHE_URL = envstr("CACHE_URL", REDIS_URL)
if CACHE_URL:
    CACHES = {
        "default": {
            "BACKEND": "socialgrid.cache.RedisCache",
            "LOCATION": CACHE_URL,
            "KEY_PREFIX": "sg:cache",
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Celery ---------------------------------------------------------------------------------
CELERY_BROKER_URL = envstr("CELERY_BROKER_URL", REDIS_URL or "memory://localhost/")
CELERY_TASK_ALWAYS_EAGER = not (REDIS_URL or envstr("CELERY_BROKER_URL", ""))
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
# A task is acknowledged after it ran, and a worker killed mid-task gives it back to the
# broker, so every task must be idempotent (they are: each re-reads and guards its state).
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Threads (each with its own database connection) that run the volunteer sockets' hellos
# in one ASGI process, on PostgreSQL (compute/dbthreads.py); everything else a socket asks of
# the database goes through the process's writer (compute/dispatch/writer.py).
ASGI_DB_THREADS = envint("ASGI_DB_THREADS", 2, minimum=1)
# The dispatch path's statements are prepared once per connection; a connection pooler in
# transaction mode that cannot carry prepared statements needs DB_PREPARED_STATEMENTS=0.
DB_PREPARED_STATEMENTS = envbool("DB_PREPARED_STATEMENTS", True)
DISPATCH = {
    # Ops (results, errors, progress, leases) one flush of the writer takes at most.
    "MAX_BATCH": envint("DISPATCH_MAX_BATCH", 500, minimum=1),
    # How long an idle writer waits for more ops before it flushes the first one.
    "LINGER_SECONDS": envfloat("DISPATCH_LINGER_SECONDS", 0.0),
}
# Keep a worker's database connection across tasks (Celery closes it after every task
# otherwise, and PostgreSQL pays a new backend for each); it is recycled every N tasks.
CELERY_DB_REUSE_MAX = envint("CELERY_DB_REUSE_MAX", 1000, minimum=0)
CELERY_TASK_DEFAULT_QUEUE = envstr("CELERY_QUEUE", "socialgrid")
# A task taken by a worker that died is given to another worker once it has been unacknowledged
# for the visibility timeout; workers look for such tasks every CELERY_RESTORE_SECONDS.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": envint("CELERY_VISIBILITY_TIMEOUT", 600, minimum=1),
    "unacked_restore_interval": envint("CELERY_RESTORE_SECONDS", 10, minimum=1),
    "unacked_restore_throttle": 1,
}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = "UTC"

SWEEP_INTERVALS = {
    "transitioner": envfloat("SWEEP_TRANSITIONER_SECONDS", 10.0),
    "feeder": envfloat("SWEEP_FEEDER_SECONDS", 5.0),
    "validator": envfloat("SWEEP_VALIDATOR_SECONDS", 15.0),
    "assimilator": envfloat("SWEEP_ASSIMILATOR_SECONDS", 30.0),
    "credit_fold": envfloat("SWEEP_CREDIT_FOLD_SECONDS", 30.0),
    "cleanup": envfloat("SWEEP_CLEANUP_SECONDS", 3600.0),
    "decay": envfloat("SWEEP_DECAY_SECONDS", 3600.0),
    "project_stats": envfloat("SWEEP_PROJECT_STATS_SECONDS", 5.0),
    "rac_badges": envfloat("SWEEP_RAC_BADGES_SECONDS", 3600.0),
    "leaderboards": envfloat("SWEEP_LEADERBOARDS_SECONDS", 600.0),
    "demo_work": envfloat("SWEEP_DEMO_WORK_SECONDS", 5.0),
}
CELERY_BEAT_SCHEDULE = {
    "transitioner": {
        "task": "compute.tasks.sweep_transitioner",
        "schedule": SWEEP_INTERVALS["transitioner"],
    },
    "feeder": {"task": "compute.tasks.sweep_feeder", "schedule": SWEEP_INTERVALS["feeder"]},
    "validator": {
        "task": "compute.tasks.sweep_validator",
        "schedule": SWEEP_INTERVALS["validator"],
    },
    "assimilator": {
        "task": "compute.tasks.sweep_assimilator",
        "schedule": SWEEP_INTERVALS["assimilator"],
    },
    "credit-fold": {
        "task": "compute.tasks.sweep_credit_fold",
        "schedule": SWEEP_INTERVALS["credit_fold"],
    },
    "cleanup": {"task": "compute.tasks.sweep_cleanup", "schedule": SWEEP_INTERVALS["cleanup"]},
    "decay": {"task": "compute.tasks.sweep_credit_decay", "schedule": SWEEP_INTERVALS["decay"]},
    "project-stats": {
        "task": "compute.tasks.broadcast_project_stats",
        "schedule": SWEEP_INTERVALS["project_stats"],
    },
    "team-credit": {
        "task": "socialgrid.teams.tasks.sweep_team_credit",
        "schedule": SWEEP_INTERVALS["credit_fold"],
    },
    "team-decay": {
        "task": "socialgrid.teams.tasks.sweep_team_decay",
        "schedule": SWEEP_INTERVALS["decay"],
    },
    "leaderboards-refresh": {
        "task": "socialgrid.leaderboards.tasks.refresh_leaderboards",
        "schedule": SWEEP_INTERVALS["leaderboards"],
    },
    "feed-rac-badges": {
        "task": "socialgrid.feed.tasks.award_rac_badges",
        "schedule": SWEEP_INTERVALS["rac_badges"],
    },
    # Hourly check; the export itself is written once per UTC day.
    "stats-export": {"task": "compute.api.tasks.export_daily_stats", "schedule": 3600.0},
}

# --- The compute engine ---------------------------------------------------------------------
COMPUTE = {
    # The dispatch cache: "redis" when REDIS_URL is set, else an in-process queue.
    "FEEDER_BACKEND": "redis" if REDIS_URL else "local",
    "FEEDER_BATCH": envint("FEEDER_BATCH", 500, minimum=1),
    "FEEDER_LOW_WATER": envint("FEEDER_LOW_WATER", 100, minimum=0),
    "PREFETCH_PER_CORE": envint("PREFETCH_PER_CORE", 2, minimum=1),
    "MAX_OUTPUT_BYTES": envint("MAX_OUTPUT_BYTES", 1024 * 1024, minimum=1024),
    "OUTPUT_RETENTION_DAYS": envfloat("OUTPUT_RETENTION_DAYS", 7.0),
    "PURGE_AFTER_DAYS": envfloat("PURGE_AFTER_DAYS", 30.0),
    "ASSIMILATE_MAX_ATTEMPTS": envint("ASSIMILATE_MAX_ATTEMPTS", 5, minimum=1),
    "SWEEP_BATCH": envint("SWEEP_BATCH", 1000, minimum=1),
    # A validation or assimilation drain that found less than a full batch waits this long
    # before its next pass, so a trickle of results is handled a batch at a time.
    "DRAIN_LINGER_SECONDS": envfloat("DRAIN_LINGER_SECONDS", 0.2),
    "MAX_KERNEL_BYTES": envint("MAX_KERNEL_BYTES", 8 * 1024 * 1024, minimum=1024),
    # Packages whose functions apps created through the API may name (reference, comparator,
    # assimilator): the server imports them, so only code deployed with it qualifies.
    "APP_CODE_PACKAGES": envlist("APP_CODE_PACKAGES", ["compute.examples.", "apps."]),
    "API_WRITES_PER_MINUTE": envint("API_WRITES_PER_MINUTE", 60, minimum=1),
    "API_MAX_BATCH_BYTES": envint("API_MAX_BATCH_BYTES", 64 * 1024 * 1024, minimum=1024),
}
# The demo's endless work (compute/demo_work.py): a demo project whose replicas waiting or
# out fall below LOW_WATER gets the next batch of its series, and its finished batches beyond
# the newest KEEP_BATCHES are purged. On by default only in the embedded mode of `make demo`
# (no DATABASE_URL, no REDIS_URL, not production); DEMO_WORK=1 or 0 turns it on or off.
DEMO_WORK = {
    "ENABLED": envbool("DEMO_WORK", not (DATABASE_URL or REDIS_URL or PRODUCTION)),
    # Two browsers return about ten replicas a second on the demo's first levels: the next
    # batch must be in before the last one is out, or they wait for the next ask.
    "LOW_WATER": envint("DEMO_LOW_WATER", 200, minimum=0),
    "KEEP_BATCHES": envint("DEMO_KEEP_BATCHES", 3, minimum=1),
}
if DEMO_WORK["ENABLED"]:
    CELERY_BEAT_SCHEDULE["demo-work"] = {
        "task": "compute.tasks.replenish_demo_work",
        "schedule": SWEEP_INTERVALS["demo_work"],
    }

# Where the daily statistics export (docs/stats-export.md) is written.
STATS_EXPORT_DIR = Path(envstr("STATS_EXPORT_DIR", str(VAR_DIR / "stats")))

# --- Auth -----------------------------------------------------------------------------------
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
LOGIN_REDIRECT_URL = "/"
ACCOUNT_LOGIN_METHODS = {"email", "username"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "username*", "password1*", "password2*"]
ACCOUNT_EMAIL_VERIFICATION = envstr("ACCOUNT_EMAIL_VERIFICATION", "optional")
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = True
ACCOUNT_EMAIL_SUBJECT_PREFIX = "[socialgrid] "
ACCOUNT_DEFAULT_HTTP_PROTOCOL = "https" if PRODUCTION else "http"
ACCOUNT_RATE_LIMITS = {
    "login": "30/m/ip",
    # Five failures per account in five minutes; per address kept loose for shared networks.
    "login_failed": "20/m/ip,5/5m/key",
    "signup": "20/m/ip,100/h/ip",
    "reset_password": "20/m/ip,5/m/key",
}
ALLAUTH_TRUSTED_PROXY_COUNT = envint("TRUSTED_PROXY_COUNT", 0, minimum=0)
EMAIL_BACKEND = envstr("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = envstr("DEFAULT_FROM_EMAIL", "socialgrid <noreply@localhost>")

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# --- I18n, static ---------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
# Production serves collected files (``manage.py collectstatic``) from STATIC_ROOT; development
# serves them straight from the source folders through WhiteNoise's finders.
STATIC_ROOT = envstr("STATIC_ROOT", str(BASE_DIR / "staticfiles") if PRODUCTION else "") or None
WHITENOISE_USE_FINDERS = not PRODUCTION
WHITENOISE_AUTOREFRESH = DEBUG and not PRODUCTION
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if PRODUCTION
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}

# --- Security -------------------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
# Content-Security-Policy (socialgrid/csp.py): pages, and the Web Workers that run kernels.
CSP_PAGE_POLICY = {
    "default-src": ["'self'"],
    "script-src": ["'self'", "'wasm-unsafe-eval'"],
    "worker-src": ["'self'"],
    "connect-src": ["'self'"],
    "img-src": ["'self'", "data:", "https:"],
    "style-src": ["'self'", "'unsafe-inline'"],
    "font-src": ["'self'", "data:"],
    "object-src": ["'none'"],
    "base-uri": ["'self'"],
    "frame-ancestors": ["'none'"],
}
CSP_WORKER_POLICY = {
    "default-src": ["'none'"],
    "script-src": ["'self'", "blob:", "'wasm-unsafe-eval'"],
    "connect-src": ["'self'"],
}
WHITENOISE_ADD_HEADERS_FUNCTION = csp.add_static_headers
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if PRODUCTION:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = envbool("SECURE_SSL_REDIRECT", True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = envint("SECURE_HSTS_SECONDS", 31536000, minimum=0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    # Consent to the browsers' preload list (the site is HTTPS-only, subdomains included);
    # a deployment that cannot promise that for good sets SECURE_HSTS_PRELOAD=0.
    SECURE_HSTS_PRELOAD = envbool("SECURE_HSTS_PRELOAD", True)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": envstr("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # A line per task that succeeded (several a second from the sweeps) buries what
        # matters; failures are logged at ERROR whatever this says. TASK_LOG_LEVEL=INFO
        # brings the lines back.
        "celery.app.trace": {"level": envstr("TASK_LOG_LEVEL", "WARNING")},
    },
}

# --- The volunteer protocol (docs/protocol.md) ----------------------------------------------
PROTOCOL = {
    "MAX_MESSAGE_BYTES": envint("PROTOCOL_MAX_MESSAGE_BYTES", 1024 * 1024 + 4096, minimum=1024),
    "MESSAGES_PER_SECOND": envfloat("PROTOCOL_MESSAGES_PER_SECOND", 20.0),
    "MAX_VIOLATIONS": envint("PROTOCOL_MAX_VIOLATIONS", 20, minimum=1),
    # Liveness is the WebSocket's own ping, sent by the server every PING_SECONDS (uvicorn's
    # --ws-ping-interval and --ws-ping-timeout in the Procfile; runplatform passes the same)
    # and answered by the peer's WebSocket stack; a peer that does not answer in as long is
    # closed. The protocol's heartbeat is then only the client's sign of life: a client says
    # something at least every HEARTBEAT_SECONDS, and a socket silent for IDLE_SECONDS is
    # closed (4408): a page frozen by its browser answers pings but holds its socket for
    # nothing.
    "PING_SECONDS": envfloat("PROTOCOL_PING_SECONDS", 30.0),
    "IDLE_SECONDS": envfloat("PROTOCOL_IDLE_SECONDS", 900.0),
    "HEARTBEAT_SECONDS": envfloat("PROTOCOL_HEARTBEAT_SECONDS", 300.0),
    "RETRY_AFTER_SECONDS": envfloat("PROTOCOL_RETRY_AFTER_SECONDS", 20.0),
}

# --- The embeddable plugin and the Facebook canvas (socialgrid/plugin/README.md) --------------
# Origins allowed to frame /embed/ pages: "*" (any site, the default), or a comma-separated list.
EMBED_ALLOWED_ORIGINS = envlist("EMBED_ALLOWED_ORIGINS", ["*"])
FACEBOOK_APP_SECRET = envstr("FACEBOOK_APP_SECRET", "") or envstr("FACEBOOK_SECRET", "")
