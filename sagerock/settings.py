"""SageRock settings: everything configurable comes from the environment.

`make run` / `make test` write `.local/dev.env` for the project-local PostgreSQL
and Redis; it is read here only for variables the real environment does not set,
so `python manage.py ...` works against the same local services.
"""

import os
import sys
import uuid
from pathlib import Path
from urllib.parse import unquote

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
_dev_env_file = BASE_DIR / ".local" / "dev.env"
if _dev_env_file.exists():
    environ.Env.read_env(_dev_env_file, overwrite=False)

DEBUG = env.bool("DEBUG", default=False)
# PRODUCTION turns on the transport-security settings (HSTS, secure cookies,
# TLS to the database). It is separate from DEBUG so a staging box can run with
# DEBUG off but without TLS in front of it.
PRODUCTION = env.bool("PRODUCTION", default=False)
TESTING = env.bool("SAGEROCK_TESTING", default="pytest" in sys.modules)
if PRODUCTION and TESTING:
    # Test mode mounts deliberately injectable probe views and hashes
    # passwords with MD5; a production process must never run with it.
    raise ImproperlyConfigured("SAGEROCK_TESTING must be off when PRODUCTION is on.")

SECRET_KEY = env.str("SECRET_KEY")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])

INSTALLED_APPS = [
    "sagerock.admin_site.SageRockAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "corsheaders",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "oauth2_provider",
    "sagerock",
    # Before django_tasks_db: tenants' db_worker command wraps its own.
    "tenants",
    "django_tasks",
    "django_tasks_db",
    "vault",
    "marketing",
    "schools",
    "concierge",
]
if TESTING:
    # Tenant tables that exist only in the test database (tests/tenancy_probe).
    INSTALLED_APPS.append("tests.tenancy_probe")

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "tenants.auth.CurrentRequestMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "tenants.middleware.SessionTenantContextMiddleware",
    "sagerock.api.authentication.BearerTenantContextMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "sagerock.urls"
WSGI_APPLICATION = "sagerock.wsgi.application"

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

# --- Database -------------------------------------------------------------
# Four login roles (ARCHITECTURE.md, "Database roles"), one alias each. Only
# `default` (the owner) runs migrations; the router picks app/staff/service
# from the tenant context at run time.
DB_ROLE_ALIASES = {
    "default": "sagerock_owner",
    "app": "sagerock_app",
    "staff": "sagerock_staff",
    "service": "sagerock_service",
}


def _database(url_var: str, *, user: str, owner: dict | None = None) -> dict:
    if owner is not None and url_var not in env.ENVIRON:
        # Same server and database as the owner, the role's own user name; a
        # password, when the server wants one, comes with an explicit URL.
        config = {**owner, "USER": user, "PASSWORD": ""}
    else:
        config = env.db_url(url_var)
    # Unix-socket directories arrive percent-encoded in the URL's host part.
    config["HOST"] = unquote(config.get("HOST") or "")
    config["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=60)
    config["CONN_HEALTH_CHECKS"] = True
    options = dict(config.get("OPTIONS") or {})
    options.setdefault("connect_timeout", 5)
    # Parameters travel apart from the SQL text, so pg_stat_activity (where
    # sessions of one role see each other's statements) and server logs show
    # `$1`, never a client's values or a key.
    options.setdefault("server_side_binding", True)
    if PRODUCTION:
        # Refuse a plaintext connection to the database in production.
        if options.get("sslmode") not in {"require", "verify-ca", "verify-full"}:
            options["sslmode"] = "require"
    config["OPTIONS"] = options
    config["TEST"] = {"NAME": env.str("TEST_DATABASE_NAME", default=f"test_{config['NAME']}")}
    return config


_owner_db = _database("DATABASE_URL", user=DB_ROLE_ALIASES["default"])
DATABASES = {"default": _owner_db}
for _alias, _url_var in (("app", "DATABASE_APP_URL"), ("staff", "DATABASE_STAFF_URL"), ("service", "DATABASE_SERVICE_URL")):
    DATABASES[_alias] = _database(_url_var, user=DB_ROLE_ALIASES[_alias], owner=_owner_db)
    # Mirrors share the owner's test database and are never flushed through
    # their own role (runtime roles may not TRUNCATE).
    DATABASES[_alias]["TEST"] = {"MIRROR": "default"}

DATABASE_ROUTERS = ["sagerock.db_router.TenantContextRouter"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache and rate limits -------------------------------------------------
REDIS_URL = env.str("REDIS_URL")
if TESTING and "CACHE_KEY_PREFIX" not in os.environ:
    # One prefix per test run (inherited by the servers tests start), so runs
    # sharing a Redis never clear or count each other's keys.
    os.environ["CACHE_KEY_PREFIX"] = f"sagerock-test-{uuid.uuid4().hex[:12]}"
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", default="sagerock"),
        "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
    },
}
RATELIMIT_USE_CACHE = "default"
# Named per-IP policies (requests, window in seconds); sagerock.ratelimits
# applies them. Redis down must not take the API down: limits fail open.
RATE_LIMITS = {
    "webhook": (200, 60),
    "contact_upsert": (60, 60),
    "auth": (env.int("AUTH_RATE_LIMIT_PER_MINUTE", default=10), 60),
}
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)
# Set when more than one process serves requests (gunicorn workers, several
# machines); the system check then insists the rate-limit cache is shared.
MULTI_PROCESS = env.bool("MULTI_PROCESS", default=True)

# --- Auth -----------------------------------------------------------------
AUTH_USER_MODEL = "tenants.User"
AUTHENTICATION_BACKENDS = ["tenants.auth.TenantAwareBackend"]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
if TESTING:
    # Hashing cost is not what the tests measure.
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/api/docs/"
# Sessions (admin, the OAuth login step) live in a signed cookie: not in a
# table, where the runtime database roles could read (and so replay) another
# user's session key, and not in Redis, whose outage would stop sign-in
# (Django's cached_db still raises then). A cookie is valid only while the
# account's session hash matches (tenants.models.User): signing out bumps the
# account's session epoch, which ends every copy of every session of the
# account; deactivating it, suspending its client or changing its password
# ends them too (every request re-reads the account).
SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"
SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE", default=8 * 3600)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"

# --- Secrets ------------------------------------------------------------------
# HMAC key that proves each transaction's client to the database
# (tenants/context_proof.py); installed there by `migrate` and rotated with
# `manage.py rotate_tenant_context_secret`.
TENANT_CONTEXT_SECRET = env.str("TENANT_CONTEXT_SECRET")
# Base64 32-byte AES keys, comma-separated; the first encrypts, all decrypt.
# Tests replace them with keys they generate (vault/tests).
VAULT_KEYS = env.str("VAULT_KEYS", default="")

# --- OAuth 2.0 (django-oauth-toolkit) --------------------------------------------
# Every OAuth table is a tenant table, so the models are ours (tenants.oauth).
OAUTH2_PROVIDER_APPLICATION_MODEL = "tenants.OAuthApplication"
OAUTH2_PROVIDER_ACCESS_TOKEN_MODEL = "tenants.OAuthAccessToken"
OAUTH2_PROVIDER_REFRESH_TOKEN_MODEL = "tenants.OAuthRefreshToken"
OAUTH2_PROVIDER_GRANT_MODEL = "tenants.OAuthGrant"
OAUTH2_PROVIDER_ID_TOKEN_MODEL = "tenants.OAuthIDToken"
OAUTH2_PROVIDER_DEVICE_GRANT_MODEL = "tenants.OAuthDeviceGrant"
OAUTH2_PROVIDER = {
    "ACCESS_TOKEN_EXPIRE_SECONDS": env.int("OAUTH_ACCESS_TOKEN_SECONDS", default=15 * 60),
    "REFRESH_TOKEN_EXPIRE_SECONDS": env.int("OAUTH_REFRESH_TOKEN_SECONDS", default=30 * 24 * 3600),
    "AUTHORIZATION_CODE_EXPIRE_SECONDS": 60,
    "ROTATE_REFRESH_TOKEN": True,
    "REFRESH_TOKEN_REUSE_PROTECTION": True,
    "REFRESH_TOKEN_GRACE_PERIOD_SECONDS": 0,
    "PKCE_REQUIRED": True,
    "ALLOWED_REDIRECT_URI_SCHEMES": ["https"] if PRODUCTION else ["http", "https"],
    "ALLOWED_SCHEMES": ["https"] if PRODUCTION else ["http", "https"],
    "SCOPES": {"api": "Use the SageRock API for your organization"},
    "DEFAULT_SCOPES": ["api"],
    "COMPLIANT_BCP_RFC9700_IMPLICIT_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PASSWORD_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PKCE_METHOD": True,
    "COMPLIANT_BCP_RFC9700_ACCESS_TOKEN_TRANSPORT": True,
    "COMPLIANT_BCP_RFC9700_AUTHZ_RESPONSE_ISS": True,
    "COMPLIANT_BCP_RFC9700_TOKEN_STORAGE": True,
    "COMPLIANT_BCP_RFC9700_REFRESH_TOKEN": True,
    "COMPLIANT_BCP_RFC9700_REDIRECT_URI_SCHEME": True,
    "COMPLIANT_BCP_RFC9700_REDIRECT_URI_MATCHING": True,
    "COMPLIANT_BCP_RFC9700_PKCE_REQUIRED": True,
}

# --- REST API -------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["sagerock.api.authentication.BearerTokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["sagerock.api.permissions.IsAuthenticatedPrincipal"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_PAGINATION_CLASS": "sagerock.api.pagination.CreatedCursorPagination",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "sagerock.api.exceptions.error_shape_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "SageRock API",
    "DESCRIPTION": (
        "Multi-tenant API for SageRock clients. Every request carries an OAuth 2.0 Bearer token and acts "
        "for exactly one client organization. Errors always have the shape {code, detail, fields}."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "sagerock.api.schema.add_error_responses",
    ],
}
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=2 * 1024 * 1024)

# --- CORS: only the configured browser origins ----------------------------------------
CORS_ALLOWED_ORIGINS = env.list("CORS_ALLOWED_ORIGINS", default=[])
CORS_URLS_REGEX = r"^/(api|oauth)/.*$"
CORS_ALLOW_CREDENTIALS = False
CORS_EXPOSE_HEADERS = ["RateLimit-Policy", "RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset", "Retry-After"]

# --- Background tasks -------------------------------------------------------
TASKS = {
    "default": {
        "BACKEND": env.str("TASKS_BACKEND", default="django_tasks_db.DatabaseBackend"),
    },
}

# --- Internationalisation, static files -----------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG or TESTING
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
WHITENOISE_USE_FINDERS = DEBUG or TESTING

# --- Security ---------------------------------------------------------------
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
if PRODUCTION:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True

# --- Logging ----------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

SILENCED_SYSTEM_CHECKS = [
    # User.email is unique case-insensitively (a functional unique index),
    # which this check cannot see.
    "auth.W004",
    # HSTS preload commits the whole registrable domain and is decided by its
    # owner at hstspreload.org (apex domains only); SECURE_HSTS_PRELOAD=1 adds
    # the directive once that is decided.
    "security.W021",
]
