"""tokentill settings, read from the environment (12-factor).

A `.env` file beside `manage.py`, when present, supplies defaults (the demo writes one);
real environment variables always win. With nothing set, tokentill runs on an embedded
SQLite database and runs Celery tasks eagerly in-process, so it needs no server.
"""

import re
from decimal import Decimal, InvalidOperation
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured
from kombu import Queue

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
if (BASE_DIR / ".env").exists():
    environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set it in the environment (or set DEBUG=true for local use)."
        )
    SECRET_KEY = "django-insecure-local-development-key-never-use-in-production"  # noqa: S105

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
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
    "djmoney",
    "common",
    "webhooks",
    "contracts",
    "metering",
    "wallets",
    "billing",
    "portal",
    "demo",
]

MIDDLEWARE = [
    # First, so it times what every other middleware does too (docs/operations/metrics.md).
    "common.metrics.RequestMetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "common.audit.AuditActorMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

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

# --- Database -------------------------------------------------------------------------
# DATABASE_URL is the runtime role's, which the web and worker processes use. With
# DATABASE_OWNER_URL set (the same database as the role that owns the tables), `migrate`
# and `db_roles` connect as the owner instead (docs/operations/deploy.md#database-roles).
DATABASE_URL = env.str("DATABASE_URL", default="") or f"sqlite:///{BASE_DIR / 'tokentill.sqlite3'}"
DATABASES = {"default": env.db_url_config(DATABASE_URL)}
DATABASE_OWNER_URL = env.str("DATABASE_OWNER_URL", default="")
DATABASE_OWNER = env.db_url_config(DATABASE_OWNER_URL) if DATABASE_OWNER_URL else None
if DATABASE_OWNER is not None:
    _where = ("ENGINE", "HOST", "PORT", "NAME")
    if [DATABASE_OWNER.get(k) for k in _where] != [DATABASES["default"].get(k) for k in _where]:
        raise ImproperlyConfigured(
            "DATABASE_OWNER_URL names another database than DATABASE_URL: they differ in "
            "role (and password) only."
        )
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets readers run beside the writer; IMMEDIATE takes the write lock when a
    # transaction starts, so two writers queue instead of failing half-way through.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    # Django's backend, whose health check skips a connection that answered in the last
    # second (common/postgresql/base.py): no SELECT 1 on every request under load.
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        DATABASES["default"]["ENGINE"] = "common.postgresql"
    # Behind PgBouncer in transaction mode: a cursor held across transactions (what
    # .iterator() opens outside one) would not survive (docs/operations/scaling.md).
    DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = env.bool(
        "DISABLE_SERVER_SIDE_CURSORS", default=False
    )
    # No JIT: tokentill's queries are short, and a row estimate gone stale (a queue just
    # drained) can make PostgreSQL spend 400 ms compiling a query that runs in 3 ms.
    options = DATABASES["default"].setdefault("OPTIONS", {})
    options["options"] = f"{options.get('options', '')} -c jit=off".strip()
    # The hottest statements (`server_bound_cursor`'s: the ingest insert, the draw-down's
    # writes) are prepared once run five times on a connection; Django's own cursors never
    # prepare. Off by default where DISABLE_SERVER_SIDE_CURSORS says a pooler in
    # transaction mode is in the way, which may not keep prepared statements.
    prepared = env.bool(
        "DATABASE_PREPARED_STATEMENTS",
        default=not DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"],
    )
    options["prepare_threshold"] = 5 if prepared else None  # 5: psycopg's own default
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

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
STATIC_ROOT = env.path("STATIC_ROOT", default=BASE_DIR / "staticfiles")
# The web process serves the admin's and API docs' static files itself (after
# `collectstatic`), so a deployment needs no separate file server.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# --- Security (production values when DEBUG is off; `manage.py check --deploy` is clean) --
if not DEBUG:
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
    SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
# The scraper reaches each web process directly (docs/operations/metrics.md): a redirect
# to HTTPS would come after its token was sent in clear anyway.
SECURE_REDIRECT_EXEMPT = [r"^metrics$"]
if env.bool("BEHIND_TLS_PROXY", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# --- REST API ---------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["contracts.authentication.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["contracts.permissions.ApiKeyPermission"],
    "DEFAULT_RENDERER_CLASSES": ["config.renderers.ORJSONRenderer"],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "config.renderers.JsonFirstNegotiation",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_THROTTLE_CLASSES": ["common.throttling.ApiBudgetThrottle"],
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "tokentill API",
    "DESCRIPTION": (
        "Usage events in, balances and cost estimates out. Every call takes an API key as "
        "`Authorization: Bearer <key>`: an operator key calls everything; a customer's "
        "read-only key reads only that customer's usage, wallet and invoices."
    ),
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "common.api.rate_limited_answers",
    ],
    "ENUM_NAME_OVERRIDES": {
        "CustomerStatusEnum": "contracts.models.Customer.Status",
        "PriceKindEnum": "contracts.models.Price.Kind",
        "IngestStatusEnum": ["accepted", "duplicate", "rejected"],
        "GrantSourceEnum": "wallets.api.serializers.SOURCES",
        "GrantRequestSourceEnum": "wallets.api.serializers.GRANT_SOURCES",
        "HoldStatusEnum": "wallets.api.serializers.HOLD_STATUSES",
        "WebhookEventTypeEnum": "webhooks.events.EVENT_TYPE_NAMES",
        "TokenizerKindEnum": "metering.models.TokenizerRule.Kind",
        "ChatFormatEnum": "metering.models.TokenizerRule.ChatFormat",
    },
}

# --- Cache and rate limits ----------------------------------------------------------------
# The rate limits' counters live in the cache, which every web process must share in
# production: CACHE_URL=redis://HOST:6379/2. Without it each process counts alone in its
# own memory (the demo, tests).
CACHES = {"default": env.cache_url_config(env.str("CACHE_URL", default="locmemcache://"))}
if CACHES["default"]["BACKEND"] == "django.core.cache.backends.redis.RedisCache":
    # A Redis that does not answer must not hold a request: the limit is skipped instead.
    CACHES["default"].setdefault("OPTIONS", {})
    CACHES["default"]["OPTIONS"].setdefault("socket_connect_timeout", 0.5)
    CACHES["default"]["OPTIONS"].setdefault("socket_timeout", 0.5)
CACHES["default"].setdefault("KEY_PREFIX", "tokentill")
# Seconds a process keeps an active API key's row rather than reading it on every call;
# a key revoked elsewhere is refused by every process within this (0: read on every call).
TOKENTILL_API_KEY_CACHE_SECONDS = env.float("TOKENTILL_API_KEY_CACHE_SECONDS", default=1.0)
# Budgets per API key (and per portal user for exports), "N/second|minute|hour|day";
# failed API keys per client address. docs/guide/api.md#rate-limits says why these.
TOKENTILL_THROTTLE_INGEST = env.str("TOKENTILL_THROTTLE_INGEST", default="12000/minute")
TOKENTILL_THROTTLE_READS = env.str("TOKENTILL_THROTTLE_READS", default="600/minute")
TOKENTILL_THROTTLE_WRITES = env.str("TOKENTILL_THROTTLE_WRITES", default="300/minute")
TOKENTILL_THROTTLE_EXPORTS = env.str("TOKENTILL_THROTTLE_EXPORTS", default="30/minute")
TOKENTILL_THROTTLE_AUTH_FAILURES = env.str("TOKENTILL_THROTTLE_AUTH_FAILURES", default="30/minute")
_RATE = re.compile(r"[1-9][0-9]*/(s|sec|second|m|min|minute|h|hour|d|day)")
for _name, _rate in {
    "TOKENTILL_THROTTLE_INGEST": TOKENTILL_THROTTLE_INGEST,
    "TOKENTILL_THROTTLE_READS": TOKENTILL_THROTTLE_READS,
    "TOKENTILL_THROTTLE_WRITES": TOKENTILL_THROTTLE_WRITES,
    "TOKENTILL_THROTTLE_EXPORTS": TOKENTILL_THROTTLE_EXPORTS,
    "TOKENTILL_THROTTLE_AUTH_FAILURES": TOKENTILL_THROTTLE_AUTH_FAILURES,
}.items():
    if not _RATE.fullmatch(_rate):
        raise ImproperlyConfigured(
            f"{_name} is a number of requests per period, e.g. 600/minute "
            f"(second, minute, hour or day), not {_rate!r}."
        )
# Proxies in front of tokentill that append the client's address to X-Forwarded-For; 0:
# the header is ignored (anyone can write it) and the address is the connection's.
TOKENTILL_TRUSTED_PROXY_HOPS = env.int("TOKENTILL_TRUSTED_PROXY_HOPS", default=0)

# --- Metrics ----------------------------------------------------------------------------
# GET /metrics (Prometheus) answers a scraper that sends `Authorization: Bearer <this>`;
# empty: the endpoint does not exist (404). PROMETHEUS_MULTIPROC_DIR, read by
# prometheus_client itself, sums gunicorn's workers (docs/operations/metrics.md).
TOKENTILL_METRICS_TOKEN = env.str("TOKENTILL_METRICS_TOKEN", default="")

# --- Ingestion --------------------------------------------------------------------------
TOKENTILL_INGEST_MAX_BATCH = env.int("TOKENTILL_INGEST_MAX_BATCH", default=1000)
TOKENTILL_INGEST_MAX_BODY_BYTES = env.int("TOKENTILL_INGEST_MAX_BODY_BYTES", default=16 * 2**20)
TOKENTILL_LATENESS_WINDOW_DAYS = env.int("TOKENTILL_LATENESS_WINDOW_DAYS", default=35)
TOKENTILL_FUTURE_TOLERANCE_SECONDS = env.int("TOKENTILL_FUTURE_TOLERANCE_SECONDS", default=300)
# PostgreSQL's monthly partitions of the event log: how many months past the current one
# the daily task keeps created, and how many months back the log keeps before
# `archive_events` may move a month to Parquet (docs/operations/event-log.md).
TOKENTILL_PARTITIONS_AHEAD_MONTHS = env.int("TOKENTILL_PARTITIONS_AHEAD_MONTHS", default=3)
TOKENTILL_EVENT_RETENTION_MONTHS = env.int("TOKENTILL_EVENT_RETENTION_MONTHS", default=13)
DATA_UPLOAD_MAX_MEMORY_SIZE = TOKENTILL_INGEST_MAX_BODY_BYTES
# Sealing: the most often a process asks the sealer to run after storing events, and the
# signed checkpoint of the chain's head kept outside the database (a file appended to;
# the line is logged too). Its key defaults to SECRET_KEY; keep it away from the database.
TOKENTILL_SEAL_NUDGE_SECONDS = env.float("TOKENTILL_SEAL_NUDGE_SECONDS", default=0.5)
TOKENTILL_SEAL_CHECKPOINT_FILE = env.str("TOKENTILL_SEAL_CHECKPOINT_FILE", default="")
TOKENTILL_SEAL_CHECKPOINT_KEY = env.str("TOKENTILL_SEAL_CHECKPOINT_KEY", default="") or SECRET_KEY

# --- OpenTelemetry GenAI spans (POST /v1/traces) ------------------------------------------
# Where a span's customer and feature are read (the span's attribute, else its
# resource's), which attributes become properties, the providers whose spans report
# input without its cached tokens, and the operations whose usage sums their children's
# (docs/guide/opentelemetry.md).
TOKENTILL_OTLP_CUSTOMER_ATTRIBUTE = env.str(
    "TOKENTILL_OTLP_CUSTOMER_ATTRIBUTE", default="tokentill.customer_id"
)
TOKENTILL_OTLP_FEATURE_ATTRIBUTE = env.str(
    "TOKENTILL_OTLP_FEATURE_ATTRIBUTE", default="tokentill.feature"
)
TOKENTILL_OTLP_PROPERTY_ATTRIBUTES = env.list("TOKENTILL_OTLP_PROPERTY_ATTRIBUTES", default=[])
TOKENTILL_OTLP_UNCACHED_INPUT_PROVIDERS = env.list(
    "TOKENTILL_OTLP_UNCACHED_INPUT_PROVIDERS", default=[]
)
TOKENTILL_OTLP_IGNORED_OPERATIONS = env.list(
    "TOKENTILL_OTLP_IGNORED_OPERATIONS", default=["invoke_agent", "invoke_workflow"]
)
if not TOKENTILL_OTLP_CUSTOMER_ATTRIBUTE.strip():
    raise ImproperlyConfigured("TOKENTILL_OTLP_CUSTOMER_ATTRIBUTE must name an attribute")

# --- Tokenization -----------------------------------------------------------------------
TIKTOKEN_CACHE_DIR = env.str("TIKTOKEN_CACHE_DIR", default="")
# The fallback: counts the text of models no tokenizer rule matches (Claude, Gemini…), as
# estimates.
TOKENTILL_DEFAULT_ENCODING = env.str("TOKENTILL_DEFAULT_ENCODING", default="o200k_base")
# An authorization's worst case raises an estimated prompt count by this factor (>= 1).
try:
    TOKENTILL_ESTIMATE_SAFETY_FACTOR = Decimal(env.str("TOKENTILL_ESTIMATE_SAFETY_FACTOR", "1.25"))
except InvalidOperation:
    TOKENTILL_ESTIMATE_SAFETY_FACTOR = Decimal("NaN")
if not TOKENTILL_ESTIMATE_SAFETY_FACTOR.is_finite() or TOKENTILL_ESTIMATE_SAFETY_FACTOR < 1:
    raise ImproperlyConfigured("TOKENTILL_ESTIMATE_SAFETY_FACTOR must be a number of at least 1.")
# Rating: events per transaction, and the most often a process asks the rater to run.
TOKENTILL_RATING_BATCH = env.int("TOKENTILL_RATING_BATCH", default=1000)
TOKENTILL_RATING_NUDGE_SECONDS = env.float("TOKENTILL_RATING_NUDGE_SECONDS", default=0.2)
# While a rater has work, it draws credits for what it rated at least this often.
TOKENTILL_DRAW_DOWN_SECONDS = env.float("TOKENTILL_DRAW_DOWN_SECONDS", default=0.5)

# --- Credits and email ----------------------------------------------------------------------
# Customers are warned this many days before what is left of a grant expires.
TOKENTILL_EXPIRY_WARNING_DAYS = env.int("TOKENTILL_EXPIRY_WARNING_DAYS", default=7)
# Invoices: a period closes this long after its end (late events still land in it), and
# the prefixes of the gapless invoice and credit-note numbers.
TOKENTILL_PERIOD_GRACE_HOURS = env.int("TOKENTILL_PERIOD_GRACE_HOURS", default=24)
TOKENTILL_INVOICE_PREFIX = env.str("TOKENTILL_INVOICE_PREFIX", default="INV-")
TOKENTILL_CREDIT_NOTE_PREFIX = env.str("TOKENTILL_CREDIT_NOTE_PREFIX", default="CN-")
# Days from an invoice's issue to its due date (0: due on receipt); a contract may set its own.
TOKENTILL_PAYMENT_TERMS_DAYS = env.int("TOKENTILL_PAYMENT_TERMS_DAYS", default=30)
if not 0 <= TOKENTILL_PAYMENT_TERMS_DAYS <= 365:
    raise ImproperlyConfigured("TOKENTILL_PAYMENT_TERMS_DAYS is a number of days from 0 to 365.")
# Who issues the invoices, until the admin's Seller details are saved. The address takes
# "\n" for a line break.
TOKENTILL_SELLER_NAME = env.str("TOKENTILL_SELLER_NAME", default="")
TOKENTILL_SELLER_ADDRESS = env.str("TOKENTILL_SELLER_ADDRESS", default="").replace("\\n", "\n")
TOKENTILL_SELLER_TAX_ID = env.str("TOKENTILL_SELLER_TAX_ID", default="")
TOKENTILL_SELLER_EMAIL = env.str("TOKENTILL_SELLER_EMAIL", default="")
# The TrueType fonts the invoice PDFs embed; empty: found where Debian's packages put them
# (fonts-dejavu-core, fonts-droid-fallback). billing/invoicing/pdf/fonts.py.
TOKENTILL_PDF_FONT = env.str("TOKENTILL_PDF_FONT", default="")
TOKENTILL_PDF_FONT_BOLD = env.str("TOKENTILL_PDF_FONT_BOLD", default="")
TOKENTILL_PDF_FONT_CJK = env.str("TOKENTILL_PDF_FONT_CJK", default="")
# How long an Idempotency-Key and its answer are kept (24 hours at least).
TOKENTILL_IDEMPOTENCY_HOURS = env.int("TOKENTILL_IDEMPOTENCY_HOURS", default=24)
# How long an authorization's hold reserves credits when no usage settles it.
TOKENTILL_HOLD_SECONDS = env.int("TOKENTILL_HOLD_SECONDS", default=300)
# EMAIL_URL, e.g. smtp+tls://user:password@smtp.example.com:587; without it, email is printed.
vars().update(env.email_url("EMAIL_URL", default="consolemail://"))
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="billing@tokentill.localhost")
# Seconds an SMTP server or a webhook receiver may take before the attempt is retried.
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=30)
TOKENTILL_WEBHOOK_TIMEOUT_SECONDS = env.float("TOKENTILL_WEBHOOK_TIMEOUT_SECONDS", default=5)
# Where customers reach the usage portal, for links in emails sent outside a request.
TOKENTILL_PORTAL_URL = env.str("TOKENTILL_PORTAL_URL", default="http://localhost:8000")

# --- Stripe -----------------------------------------------------------------------------
# Without an API key nothing is pushed to Stripe (the demo, a local quickstart); without a
# webhook secret the webhook endpoint refuses every delivery. STRIPE_API_BASE points the
# client elsewhere than api.stripe.com (the tests' fake Stripe).
STRIPE_API_KEY = env.str("STRIPE_API_KEY", default="")
STRIPE_WEBHOOK_SECRET = env.str("STRIPE_WEBHOOK_SECRET", default="")
STRIPE_API_BASE = env.str("STRIPE_API_BASE", default="")
# How Stripe collects an invoice: send_invoice (emailed, due after the days below) or
# charge_automatically (the customer's default payment method).
TOKENTILL_STRIPE_COLLECTION_METHOD = env.str(
    "TOKENTILL_STRIPE_COLLECTION_METHOD", default="send_invoice"
)
if TOKENTILL_STRIPE_COLLECTION_METHOD not in ("send_invoice", "charge_automatically"):
    raise ImproperlyConfigured(
        "TOKENTILL_STRIPE_COLLECTION_METHOD is send_invoice or charge_automatically."
    )
# Top-ups (no contract): by default the payment terms above; an invoice uses its own terms.
TOKENTILL_STRIPE_DAYS_UNTIL_DUE = env.int(
    "TOKENTILL_STRIPE_DAYS_UNTIL_DUE", default=TOKENTILL_PAYMENT_TERMS_DAYS
)
# Retries of a timed-out, 500 or 429 request by the stripe library (same idempotency key),
# and the seconds Stripe may take to answer one request.
TOKENTILL_STRIPE_MAX_NETWORK_RETRIES = env.int("TOKENTILL_STRIPE_MAX_NETWORK_RETRIES", default=2)
TOKENTILL_STRIPE_TIMEOUT_SECONDS = env.float("TOKENTILL_STRIPE_TIMEOUT_SECONDS", default=30)

# --- Celery -----------------------------------------------------------------------------
# No broker: tasks run eagerly in-process. `filesystem://` is kombu's serverless transport
# (used by the demo); production names Redis.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="")
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default="") or None
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# A worker keeps its database connection between tasks and checks it as Django does
# between requests (config/celery.py); Celery's fix-up only recycles it every 1,000 tasks.
# Safe because no task has a soft time limit, whose exception can interrupt a query and
# leave a connection that looks usable but is not.
CELERY_DB_REUSE_MAX = 1000
CELERY_TASK_IGNORE_RESULT = CELERY_RESULT_BACKEND is None
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = "UTC"
# Sealing, rating, closing periods and Stripe each have a queue, so a slow Stripe or a long
# closing never delays rating or sealing; everything else (alerts, expiries, checks) uses
# the default queue. A worker started without -Q consumes all five; scale one out with
# e.g. `-Q rating`.
CELERY_TASK_QUEUES = [Queue(name) for name in ("celery", "sealing", "rating", "periods", "stripe")]
CELERY_TASK_ROUTES = {
    "metering.seal_events": {"queue": "sealing"},
    "billing.rate_pending_usage": {"queue": "rating"},
    "billing.close_due_periods": {"queue": "periods"},
    "billing.push_invoice": {"queue": "stripe"},
    "billing.push_invoices": {"queue": "stripe"},
    "billing.reconcile_stripe": {"queue": "stripe"},
}
if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_folder = env.path("CELERY_FILESYSTEM_FOLDER", default=BASE_DIR / ".tokentill/broker")
    for _sub in ("queue", "processed"):
        (Path(_broker_folder) / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(Path(_broker_folder) / "queue"),
        "data_folder_out": str(Path(_broker_folder) / "queue"),
        "processed_folder": str(Path(_broker_folder) / "processed"),
        "store_processed": False,
        "polling_interval": 0.1,  # seconds: usage shows rated within about that
    }

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django": {"handlers": ["console"], "propagate": False},
        # One line per task run is noise where tasks run in-process (no broker).
        "celery.app.trace": {"level": "WARNING"},
        # The stripe library logs every request at INFO; its failures reach our own logs.
        "stripe": {"level": "WARNING"},
    },
}
