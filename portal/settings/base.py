"""Settings shared by every environment. Configuration comes from environment
variables only; each one is listed in the README's configuration table."""

import os
from pathlib import Path

import dj_database_url
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = Path(os.environ.get("VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


SECRET_KEY = os.environ.get("SECRET_KEY", "insecure-development-key-change-me-0123456789abcdef")
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")
PORT = int(os.environ.get("PORT", "8000"))

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "phonenumber_field",
    "channels",
    "csp",
    "common",
    "accounts",
    "organisations",
    "chats",
    "lessons",
    "bots",
    "miniapps",
    "migration",
    "adoption",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.gzip.GZipMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
]

ROOT_URLCONF = "portal.urls"
ASGI_APPLICATION = "portal.asgi.application"
WSGI_APPLICATION = None

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "adoption.context_processors.navigation",
            ],
        },
    },
]

# --- Database: PostgreSQL from DATABASE_URL, otherwise SQLite in WAL mode.
DATABASE_URL = os.environ.get("DATABASE_URL", "")
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60, conn_health_checks=True)}
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.environ.get("SQLITE_PATH", str(VAR_DIR / "db.sqlite3")),
            "OPTIONS": {
                # WAL lets daphne, the Celery worker and management commands
                # read while one of them writes; IMMEDIATE avoids the
                # deadlock-prone upgrade from a read to a write lock.
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=20000;",
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
            },
            # Kept open between requests and socket frames (each database
            # thread has its own): opening one with its PRAGMAs cost about
            # a tenth of a chat message's CPU (bench/README.md).
            "CONN_MAX_AGE": 600,
            "CONN_HEALTH_CHECKS": True,
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: REDIS_URL, otherwise the embedded server on a unix socket under var/.
REDIS_URL = os.environ.get("REDIS_URL", "")
EMBEDDED_REDIS_SOCKET = os.environ.get("EMBEDDED_REDIS_SOCKET", str(VAR_DIR / "redis.sock"))
if not REDIS_URL:
    REDIS_URL = "unix://" + EMBEDDED_REDIS_SOCKET + "?db=0"
IS_EMBEDDED_REDIS = not os.environ.get("REDIS_URL")

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "parta",
    }
}

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
        # socket_timeout None: redis-py 8 otherwise drops idle connections
        # after 5 s and with them every idle WebSocket (channels_redis #422).
        "CONFIG": {"hosts": [{"address": REDIS_URL, "socket_timeout": None}]},
    }
}

# --- Celery (broker and results on the same Redis).


def celery_broker_url(redis_url: str) -> str:
    """kombu spells a Redis unix socket "redis+socket://PATH"."""
    if redis_url.startswith("unix://"):
        path, _separator, _query = redis_url.removeprefix("unix://").partition("?")
        return "redis+socket://" + path
    return redis_url


CELERY_BROKER_URL = celery_broker_url(REDIS_URL)
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_TIMEZONE = "UTC"
CELERY_IMPORTS = ["chats.tasks_channels"]
CELERY_BEAT_SCHEDULE: dict[str, dict] = {
    "login-codes-purge": {"task": "accounts.tasks.login_codes_purge", "schedule": 3600.0},
    "scheduled-messages-deliver": {"task": "chats.tasks.scheduled_messages_deliver", "schedule": 60.0},
    "chat-attachments-purge": {"task": "chats.tasks.attachments_unbound_purge", "schedule": 3600.0},
    "channel-escalations-run": {"task": "chats.tasks_channels.channel_escalations_run", "schedule": 60.0},
    "meeting-reminders-send": {"task": "lessons.tasks.reminders_send", "schedule": 60.0},
    "homework-reminders-send": {"task": "miniapps.tasks.homework_reminders_send", "schedule": 600.0},
    "legacy-notices-resend": {"task": "migration.tasks.legacy_notices_resend", "schedule": 300.0},
    "bot-webhook-deliveries-sweep": {"task": "bots.tasks.webhook_deliveries_sweep", "schedule": 60.0},
    "bot-updates-purge": {"task": "bots.tasks.updates_purge", "schedule": 3600.0},
    "channel-subscriptions-resync": {
        "task": "chats.tasks_channels.channel_subscriptions_resync",
        "schedule": 86400.0,
    },
    "adoption-weekly-figures-refresh": {"task": "adoption.tasks.weekly_figures_refresh", "schedule": 3600.0},
}

# --- Auth.
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = ["django.contrib.auth.backends.ModelBackend"]
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "accounts:login"
SESSION_COOKIE_AGE = 60 * 60 * 24 * 30
SESSION_ENGINE = "django.contrib.sessions.backends.db"

# --- Internationalisation: Russian first, English available.
LANGUAGE_CODE = "ru"
LANGUAGES = [("ru", _("Russian")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "Europe/Moscow"
USE_I18N = True
USE_TZ = True
PHONENUMBER_DEFAULT_REGION = "RU"
PHONENUMBER_DB_FORMAT = "E164"

# --- Static and media.
STATIC_URL = "/static/"
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", VAR_DIR / "static"))
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", VAR_DIR / "media"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# WhiteNoise serves what collectstatic put in STATIC_ROOT, with the gzip
# copies CompressedStaticFilesStorage made beside each file (a browser that
# accepts gzip gets them). Reading the source folders instead (finders) would
# serve every file uncompressed; only development (DEBUG) does that, so that
# an edited file shows at once.
DATA_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
IMPORT_MAX_FILE_SIZE = 5 * 1024 * 1024

# --- SMS.
SMS_BACKEND = os.environ.get("SMS_BACKEND", "console")
SMS_OUTBOX = os.environ.get("SMS_OUTBOX", str(VAR_DIR / "sms-outbox.jsonl"))
SMS_GATEWAY_URL = os.environ.get("SMS_GATEWAY_URL", "")
SMS_GATEWAY_LOGIN = os.environ.get("SMS_GATEWAY_LOGIN", "")
SMS_GATEWAY_PASSWORD = os.environ.get("SMS_GATEWAY_PASSWORD", "")
SMS_GATEWAY_SENDER = os.environ.get("SMS_GATEWAY_SENDER", "Parta")
SMS_GATEWAY_TIMEOUT = float(os.environ.get("SMS_GATEWAY_TIMEOUT", "10"))

# --- Sign-in limits (SPEC §3).
LOGIN_CODE_TTL_SECONDS = 300
LOGIN_CODE_MAX_ATTEMPTS = 5
LOGIN_CODE_RESEND_SECONDS = 60
LOGIN_CODE_DAILY_LIMIT = 5
LOGIN_IP_CODE_RATE = os.environ.get("LOGIN_IP_CODE_RATE", "30/hour")
LOGIN_IP_TOKEN_RATE = os.environ.get("LOGIN_IP_TOKEN_RATE", "60/hour")

# --- Chats.
CHAT_SEND_RATE = os.environ.get("CHAT_SEND_RATE", "30/minute")
CHAT_ACTION_RATE = os.environ.get("CHAT_ACTION_RATE", "120/minute")
CHAT_SEARCH_RATE = os.environ.get("CHAT_SEARCH_RATE", "30/minute")
CHAT_ATTACHMENT_MAX_BYTES = int(os.environ.get("CHAT_ATTACHMENT_MAX_BYTES", str(20 * 1024 * 1024)))
CHAT_ATTACHMENT_UPLOAD_RATE = os.environ.get("CHAT_ATTACHMENT_UPLOAD_RATE", "60/hour")

# --- Lessons: wrong guest-link tokens allowed per client IP before every
# token from it is refused for the rest of the window.
LESSON_LINK_GUESS_RATE = os.environ.get("LESSON_LINK_GUESS_RATE", "20/hour")

# --- Bots: the Bot API's limits and webhook deliveries (docs/bots.md).
BOT_API_RATE = os.environ.get("BOT_API_RATE", "120/minute")
BOT_CHAT_SEND_RATE = os.environ.get("BOT_CHAT_SEND_RATE", "20/minute")
BOT_LONG_POLL_MAX_SECONDS = int(os.environ.get("BOT_LONG_POLL_MAX_SECONDS", "25"))
BOT_WEBHOOK_MAX_ATTEMPTS = int(os.environ.get("BOT_WEBHOOK_MAX_ATTEMPTS", "6"))
BOT_WEBHOOK_RETRY_BASE_SECONDS = float(os.environ.get("BOT_WEBHOOK_RETRY_BASE_SECONDS", "10"))
BOT_WEBHOOK_TIMEOUT_SECONDS = float(os.environ.get("BOT_WEBHOOK_TIMEOUT_SECONDS", "10"))
BOT_API_MAX_BODY_BYTES = int(os.environ.get("BOT_API_MAX_BODY_BYTES", str(64 * 1024)))
BOT_UPDATES_KEEP_DAYS = int(os.environ.get("BOT_UPDATES_KEEP_DAYS", "7"))

# --- Migration from the old messenger (SPEC §9.1): its HTTP API for the
# notices, and the address of this portal that notices and SMS invitations link to.
LEGACY_API_URL = os.environ.get("LEGACY_API_URL", "")
LEGACY_API_TOKEN = os.environ.get("LEGACY_API_TOKEN", "")
LEGACY_API_TIMEOUT = float(os.environ.get("LEGACY_API_TIMEOUT", "10"))
PUBLIC_URL = os.environ.get("PUBLIC_URL", "http://localhost:" + str(PORT))

# --- Lessons: the call. Media workers by id: every lesson is placed on one
# of LESSONS_MEDIA_WORKERS (rendezvous hashing, lessons.media.protocol), so
# every web process must list the same ids, and each id must have one worker
# running (`python -m lessons.media --worker-id ID`). A worker process takes
# its own id from LESSONS_MEDIA_WORKER_ID (or --worker-id).
LESSONS_MEDIA_WORKERS = env_list("LESSONS_MEDIA_WORKERS", "main")
LESSONS_MEDIA_WORKER_ID = os.environ.get("LESSONS_MEDIA_WORKER_ID", "")
# Seconds the signalling side waits for a media worker's reply before it
# tells the participant that the media server is unavailable.
LESSONS_MEDIA_COMMAND_TIMEOUT = float(os.environ.get("LESSONS_MEDIA_COMMAND_TIMEOUT", "20"))
# The worker's own limits (lessons.media.worker.settings_from_django).
LESSONS_MEDIA_CONNECT_TIMEOUT = float(os.environ.get("LESSONS_MEDIA_CONNECT_TIMEOUT", "30"))
LESSONS_MEDIA_ANSWER_TIMEOUT = float(os.environ.get("LESSONS_MEDIA_ANSWER_TIMEOUT", "30"))
LESSONS_MEDIA_MAX_PEERS_PER_ROOM = int(os.environ.get("LESSONS_MEDIA_MAX_PEERS_PER_ROOM", "200"))
LESSONS_CALL_CHAT_RATE = os.environ.get("LESSONS_CALL_CHAT_RATE", "20/minute")

# --- TURN / ICE (used by lessons; documented now so deployments can set them).
TURN_URLS = env_list("TURN_URLS", "")
TURN_SHARED_SECRET = os.environ.get("TURN_SHARED_SECRET", "")
TURN_CREDENTIAL_TTL_SECONDS = int(os.environ.get("TURN_CREDENTIAL_TTL_SECONDS", "3600"))
STUN_URLS = env_list("STUN_URLS", "")

# --- REST framework and OpenAPI.
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "common.api.exception_handler",
    "NUM_PROXIES": int(os.environ.get("NUM_PROXIES", "0")),
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Parta API",
    "DESCRIPTION": "Communication portal for schools, kindergartens, colleges and education authorities.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    # Several apps have fields called "kind" and "role" with their own
    # choices: each set gets a stable name of its own.
    "ENUM_NAME_OVERRIDES": {
        "KindEnum": ["text", "poll", "system"],
        "RoleEnum": "chats.models.MemberRole",
        "MeetingKindEnum": "lessons.models.MeetingKind",
        "MeetingParticipantRoleEnum": "lessons.models.ParticipantRole",
        "MeetingNotificationKindEnum": "lessons.models.NotificationKind",
    },
}

# --- Content Security Policy (django-csp 4).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
        "base-uri": ["'self'"],
        "object-src": ["'none'"],
    }
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
