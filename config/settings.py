"""Settings for the chat, driven by environment variables (see the README)."""

import importlib.util
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP
from servestatic.compress import Compressor

BASE_DIR = Path(__file__).resolve().parent.parent

DEVELOPMENT_SECRET_KEY = "django-insecure-development-key-do-not-use-in-production"  # noqa: S105


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name, "")
    return [item.strip() for item in value.split(",") if item.strip()] or default


DEFAULT_PORTS = {"http": 80, "https": 443}


def parse_origins(value: str, name: str = "CORS_ALLOWED_ORIGINS") -> list[str]:
    """Comma-separated origins, each `scheme://host[:port]`, as a browser sends them in its
    Origin header (lower case, without a default port); anything else stops the start with
    a message that says which entry is wrong."""
    origins = []
    for item in (part.strip() for part in value.split(",")):
        if not item:
            continue
        parts = urlsplit(item.removesuffix("/"))
        try:
            port = parts.port
        except ValueError:
            port = -1
        if (
            parts.scheme.lower() not in DEFAULT_PORTS
            or not parts.hostname
            or port == -1
            or "*" in item
            or parts.username is not None
            or parts.path
            or parts.query
            or parts.fragment
        ):
            raise ImproperlyConfigured(
                f"{name}: {item!r} is not an origin. Write scheme://host[:port], comma-separated, "
                "e.g. https://app.example.com,http://localhost:3000."
            )
        scheme = parts.scheme.lower()
        host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
        origin = f"{scheme}://{host}" + (f":{port}" if port not in (None, DEFAULT_PORTS[scheme]) else "")
        origins.append(origin)
    return list(dict.fromkeys(origins))


# Production unless told otherwise: `make run` and `make test` set DEBUG=true.
DEBUG = env_bool("DEBUG", False)
SECRET_KEY = os.environ.get("SECRET_KEY", DEVELOPMENT_SECRET_KEY)
if not DEBUG and SECRET_KEY == DEVELOPMENT_SECRET_KEY:
    raise ImproperlyConfigured("Set SECRET_KEY: production (DEBUG off) refuses the development key.")
# The same bar as `check --deploy` (security.W009): a short or repetitive key can be guessed.
if not DEBUG and (
    len(SECRET_KEY) < 50 or len(set(SECRET_KEY)) < 5 or SECRET_KEY.startswith("django-insecure-")
):
    raise ImproperlyConfigured(
        "SECRET_KEY is too weak for production (DEBUG off): use 50 or more random characters, "
        'e.g. python -c "import secrets; print(secrets.token_urlsafe(50))".'
    )

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
# Browser clients served from other origins (a single-page app, the HTML example client):
# they may call the API with CORS (credentials allowed), post with the session's CSRF token,
# and open the WebSockets, whose origin check (chat.routing) reads CSRF_TRUSTED_ORIGINS.
CORS_ALLOWED_ORIGINS = parse_origins(os.environ.get("CORS_ALLOWED_ORIGINS", ""))
CSRF_TRUSTED_ORIGINS = list(dict.fromkeys([*env_list("CSRF_TRUSTED_ORIGINS", []), *CORS_ALLOWED_ORIGINS]))
# CORS answers under /api/ only: pages and the admin stay same-origin.
CORS_URLS_REGEX = r"^/api/.*$"
CORS_ALLOW_CREDENTIALS = True
# What a script on another origin may read besides the simple headers.
CORS_EXPOSE_HEADERS = ["Location", "Retry-After", "RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"]

INSTALLED_APPS = [
    # daphne first, so that runserver serves WebSockets too.
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "servestatic",
    "channels",
    "django_htmx",
    "rest_framework",
    "corsheaders",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    # django-tailwind is a development tool (`manage.py tailwind …`); pages link the built
    # CSS, which "theme" holds, with a plain {% static %} tag.
    *(["tailwind"] if importlib.util.find_spec("tailwind") else []),
    "theme",
    "chat",
]

MIDDLEWARE = [
    "chat.access_log.AccessLogMiddleware",
    # Before anything that may answer: a preflight gets its CORS headers (and only under /api/).
    "corsheaders.middleware.CorsMiddleware",
    # The figures of the rates an API request counted against, as RateLimit-* headers.
    "chat.api.middleware.rate_limit_headers",
    "django.middleware.security.SecurityMiddleware",
    # Static files (servestatic): compressed, with far-future caching of hashed names.
    "config.middleware.StaticFilesMiddleware",
    # After the static files: only pages get a policy (and a nonce), not every asset.
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "config.middleware.permissions_policy",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # After the session and before CommonMiddleware, as Django's docs place it: the language
    # comes from the switcher's cookie, else from Accept-Language (no prefixes in URLs).
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "config.urls"

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
                # {{ csp_nonce }}: the per-request nonce of SECURE_CSP.
                "django.template.context_processors.csp",
            ],
        },
    },
]

ASGI_APPLICATION = "config.asgi.application"
WSGI_APPLICATION = None

# Django's connections are per thread, and under an ASGI server a request's synchronous code
# may run in a thread of its own: a connection kept after its request (CONN_MAX_AGE above 0)
# lingered until the garbage collector found it, and sixteen clients exhausted PostgreSQL's
# hundred connections within seconds. So Django closes a connection when its request ends
# (on PostgreSQL, closing hands it back to psycopg's pool). The threads that live as long as
# the process (the sockets' frames thread, daphne's HTTP threads) keep theirs instead
# (chat/connections.py).
DATABASES = {
    "default": dj_database_url.config(
        default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
        conn_max_age=0,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    from psycopg_pool import ConnectionPool

    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": int(os.environ.get("DB_POOL_MIN", 2)),
        # The most connections one process holds; processes x this stays under max_connections.
        "max_size": int(os.environ.get("DB_POOL_SIZE", 10)),
        # A request that finds the pool exhausted waits this long, then fails (rather than hanging).
        "timeout": float(os.environ.get("DB_POOL_TIMEOUT", 10)),
        # A connection the database dropped (restart, terminated backend) is replaced.
        "check": ConnectionPool.check_connection,
    }
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets readers go on while one writer commits; the timeout waits out a busy writer.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {
                # redis-py 8 would drop idle subscribers after 5 s without socket_timeout=None.
                "hosts": [{"address": REDIS_URL, "socket_timeout": None}],
            },
        }
    }
    CACHES: dict[str, dict[str, Any]] = {
        "default": {
            # Django's RedisCache, with one client per process (config/cache.py).
            "BACKEND": "config.cache.SharedRedisCache",
            "LOCATION": REDIS_URL,
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
# Each shown message's HTML (chat.fragments), in each process's memory: a fragment's key says
# everything it shows, so processes need not share them, and the least recently used go first.
CACHES["fragments"] = {
    "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
    "LOCATION": "fragments",
    "TIMEOUT": None,
    "OPTIONS": {"MAX_ENTRIES": 10_000},
}

# How far a socket may fall behind (bytes queued for it) before it is closed to reconnect.
CHAT_SEND_BUFFER_BYTES = int(os.environ.get("CHAT_SEND_BUFFER_BYTES", 1024 * 1024))

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "chat:list"
LOGOUT_REDIRECT_URL = "login"

# The interface speaks English and Russian: chosen by the browser's Accept-Language, or by
# the switcher in the header (Django's set_language view), which remembers it in a cookie.
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("ru", "Русский")]
LOCALE_PATHS = [BASE_DIR / "locale"]
LANGUAGE_COOKIE_AGE = 365 * 24 * 60 * 60
LANGUAGE_COOKIE_HTTPONLY = True
LANGUAGE_COOKIE_SAMESITE = "Lax"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
# Where collectstatic puts the files that a process with DEBUG off serves.
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT") or BASE_DIR / "staticfiles")
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "servestatic.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
# Files sent with messages (chat/attachments.py) are stored through the "default" storage:
# this folder unless STORAGES says otherwise. They are never served from a public URL (no
# MEDIA_URL): a view checks on every download that the reader may see the chat.
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT") or BASE_DIR / "media")
# The largest file, in bytes; the most files on one message; the most pixels of an image
# (larger ones are refused before they are decoded: a "decompression bomb" is a few
# kilobytes that would decode to gigabytes).
ATTACHMENT_MAX_BYTES = int(os.environ.get("ATTACHMENT_MAX_BYTES", 10 * 1024 * 1024))
ATTACHMENTS_PER_MESSAGE = int(os.environ.get("ATTACHMENTS_PER_MESSAGE", 5))
ATTACHMENT_MAX_PIXELS = int(os.environ.get("ATTACHMENT_MAX_PIXELS", 50_000_000))
# In development static files come straight from the apps; in production from STATIC_ROOT.
SERVESTATIC_USE_FINDERS = DEBUG
SERVESTATIC_AUTOREFRESH = DEBUG
# Source maps (the API docs bundle megabytes of them) are for developers: not worth compressing.
SERVESTATIC_SKIP_COMPRESS_EXTENSIONS = [*Compressor.SKIP_COMPRESS_EXTENSIONS, "map"]
SERVESTATIC_KEEP_ONLY_HASHED_FILES = True

TAILWIND_APP_NAME = "theme"

# Security headers and HTTPS. HTTPS=true says the site is served over HTTPS (by daphne
# itself or by a proxy in front that sets X-Forwarded-Proto): plain HTTP is redirected,
# browsers are told to use HTTPS only for a year (HSTS), and cookies go over HTTPS only.
# SECURE_COOKIES, the older name, still turns on secure cookies alone.
HTTPS = env_bool("HTTPS", False)
if HTTPS:
    SECURE_SSL_REDIRECT = True
    SECURE_HSTS_SECONDS = 365 * 24 * 60 * 60
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    # The proxy in front must set (not pass on) this header; daphne alone never sees it.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Preloading commits the domain and all its subdomains to HTTPS in browsers' own lists,
# which only the domain's owner can decide: left off, and the check that asks for it too.
SILENCED_SYSTEM_CHECKS = ["security.W021"]
# With Redis (one cache for every process), a session is read from the cache and written
# through to the database, where ending someone's sessions finds it: no query for it per
# request or socket connect. Without Redis, the database alone: one process's cache could
# keep a session that another process ended.
SESSION_ENGINE = f"django.contrib.sessions.backends.{'cached_db' if REDIS_URL else 'db'}"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = HTTPS or env_bool("SECURE_COOKIES", False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
LANGUAGE_COOKIE_SECURE = SESSION_COOKIE_SECURE
X_FRAME_OPTIONS = "DENY"
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
SECURE_CONTENT_TYPE_NOSNIFF = True
# Sent by config.middleware.permissions_policy: the chat needs none of these.
PERMISSIONS_POLICY = "camera=(), microphone=(), geolocation=(), payment=(), usb=()"
# Scripts and the chat page's style block run only from this site or with the page's
# nonce: no inline handlers, no eval (htmx is configured without it, see base.html).
# 'self' covers the page's own ws:// and wss:// origin in current browsers.
SECURE_CSP: dict[str, list[str]] = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF, CSP.NONCE],
    "style-src": [CSP.SELF, CSP.NONCE],
    "img-src": [CSP.SELF],
    "connect-src": [CSP.SELF],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
    "form-action": [CSP.SELF],
}
# The API docs (drf-spectacular's Swagger UI, templates/drf_spectacular/) run their scripts
# with the nonce too, and draw their icons as data: images, on their own view only.
API_DOCS_CSP: dict[str, list[str]] = {**SECURE_CSP, "img-src": [CSP.SELF, "data:"]}

# How often one person (or one address) may do each action, over every door together
# (chat/limits.py). "<count>/<second|minute|hour|day>"; raise them for benchmarks.
CHAT_RATES = {
    # MESSAGE_RATE's old name, API_MESSAGE_RATE, is still read.
    "message": os.environ.get("MESSAGE_RATE") or os.environ.get("API_MESSAGE_RATE") or "120/minute",
    "edit": os.environ.get("EDIT_RATE", "60/minute"),
    # Reactions added or taken back, per person.
    "reaction": os.environ.get("REACTION_RATE", "60/minute"),
    "room": os.environ.get("ROOM_RATE", "20/hour"),
    # Per account and per address: password hashing costs ~0.7 s of CPU per attempt.
    "login": os.environ.get("LOGIN_RATE", "10/minute"),
    "login_address": os.environ.get("LOGIN_ADDRESS_RATE", "30/minute"),
    "signup_address": os.environ.get("SIGNUP_RATE", "10/hour"),
    # Socket frames of any kind, per socket: a client that keeps flooding is let go.
    "frame": os.environ.get("FRAME_RATE", "20/second"),
    # Bot accounts made through POST /api/bots/, per person.
    "bot": os.environ.get("BOT_RATE", "10/hour"),
}
# BOT_SIGNUP=false switches POST /api/bots/ off; `manage.py create_bot` works either way.
BOT_SIGNUP = env_bool("BOT_SIGNUP", True)
# How many API tokens one account may hold at once (each POST /api/auth/token/ makes one).
API_TOKENS_PER_USER = int(os.environ.get("API_TOKENS_PER_USER", 20))
# How many sockets one user may hold open at once, on one process.
SOCKETS_PER_USER = int(os.environ.get("SOCKETS_PER_USER", 30))
# The largest WebSocket frame a socket takes (daphne's own limit is larger); a message is
# at most 4,000 characters, i.e. at most 16 KB of UTF-8, plus htmx's headers.
FRAME_MAX_BYTES = int(os.environ.get("FRAME_MAX_BYTES", 32 * 1024))
REST_FRAMEWORK = {
    # Token first: an anonymous request then gets 401 with `WWW-Authenticate: Token`.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "chat.api.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": [
        "chat.api.parsers.SafeJSONParser",
        "rest_framework.parsers.FormParser",
    ],
    "EXCEPTION_HANDLER": "chat.api.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Chat API",
    "DESCRIPTION": (
        "Chats and messages for scripts, bots and clients. Authenticate with "
        "`Authorization: Token <key>` (POST /api/auth/token/ gives the key) or the browser session "
        "with its CSRF token. A chat you may not see answers 404 on every route.\n\n"
        "Every error has `detail` (words) and `code` (for programs); a 400 also names each "
        "field's messages, with their codes in `codes`. Creating answers 201 with `Location`; "
        "rated operations send `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset`, "
        "and `Retry-After` with a 429. The WebSockets (the event stream at /ws/events/) are "
        "described in the [AsyncAPI document](/api/asyncapi.yaml)."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    # Request bodies get their own components, without the read-only fields.
    "COMPONENT_SPLIT_REQUEST": True,
    # PATCH /api/messages/<id>/ requires `text`: the edit is the text.
    "COMPONENT_SPLIT_PATCH": False,
    "SCHEMA_PATH_PREFIX": r"/api",
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    # Swagger UI puts each operation's deep link inside the operation's button: a link in a
    # button (hidden from screen readers) and a 19 px target. The docs go without them.
    "SWAGGER_UI_SETTINGS": {"deepLinking": False},
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    # LOG_FORMAT=json: one JSON object per line, for log collectors (chat/access_log.py).
    "formatters": {
        "text": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "chat.access_log.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json" if os.environ.get("LOG_FORMAT", "").lower() == "json" else "text",
        }
    },
    "loggers": {
        "chat": {
            "handlers": ["console"],
            "level": os.environ.get("CHAT_LOG_LEVEL", "INFO"),
            "propagate": False,
        },
        # One line per request and per socket session; ACCESS_LOG_LEVEL=WARNING silences it.
        "chat.access": {
            "level": os.environ.get("ACCESS_LOG_LEVEL") or os.environ.get("CHAT_LOG_LEVEL", "INFO")
        },
    },
}
