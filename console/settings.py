"""Shieldwall settings: one module, driven by environment variables.

Local defaults need nothing installed: SQLite under var/ and a Celery broker on the
filesystem. Production sets DATABASE_URL (PostgreSQL) and REDIS_URL (broker and cache),
and BROKER_URL for RabbitMQ as the broker instead of Redis.
"""

from __future__ import annotations

import importlib.util
import os
import secrets
import sys
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from console.queues import broker_is_amqp, broker_url_from_env

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("SHIELDWALL_VAR_DIR", BASE_DIR / "var"))
VAR_DIR.mkdir(parents=True, exist_ok=True)


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else default


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG", False)
# Under pytest the test defaults apply (local caches, eager tasks) unless the environment says otherwise.
TESTING = env_bool("SHIELDWALL_TESTING", "pytest" in sys.modules)


def _secret_key() -> str:
    key = os.environ.get("SECRET_KEY", "")
    if key:
        return key
    # A local console keeps one generated key so sessions survive a restart; a checkout
    # that has one can run management commands without DEBUG. Production never generates.
    path = VAR_DIR / "secret_key"
    if not DEBUG and not TESTING:
        if path.exists():
            return path.read_text().strip()
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off")
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_key()
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]" if DEBUG or TESTING else "")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")
PORT = env_int("PORT", 8000)
SITE_URL = os.environ.get("SITE_URL", f"http://127.0.0.1:{PORT}")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "csp",
    "console",
    "alerts",
    "tickets",
    "traffic",
    "mitigations",
    "reports",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "console.middleware.RequestContextMiddleware",
    "console.middleware.PrivateResponseMiddleware",
    "console.middleware.LoginRequiredMiddleware",
    "console.two_factor.TwoFactorMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "console.errors.ServiceErrorMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "console.urls"
WSGI_APPLICATION = "console.wsgi.application"

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
                "console.context_processors.console",
            ],
        },
    },
]

DATABASE_URL = os.environ.get("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'shieldwall.sqlite3'}"
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 60))}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL and a busy timeout let the web process, worker and beat share one file.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0
# A kept connection is checked before a request uses it: after a PostgreSQL restart the
# webhook reconnects at once instead of failing one request per stale connection.
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    # Falls back to process memory while Redis is unreachable (console/cache.py): logins and
    # the API keep working, with throttles counted per process until Redis answers again.
    CACHES = {"default": {"BACKEND": "console.cache.FailSoftRedisCache", "LOCATION": REDIS_URL}}
elif TESTING:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
else:
    # Shared by the web process, the worker and beat without a server.
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
        }
    }

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"
# Login throttling, in LOGIN_FAILURE_WINDOW seconds (console/auth.py): this many failures for one
# user name from one client address pause that pair only, so an attacker elsewhere cannot lock the
# owner out; one address failing on many names, or one name failing from many addresses, is paused
# at the higher limits (the latter except from addresses the user logged in from before).
LOGIN_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5)
LOGIN_ADDRESS_FAILURE_LIMIT = env_int("LOGIN_ADDRESS_FAILURE_LIMIT", 20)
LOGIN_USER_FAILURE_LIMIT = env_int("LOGIN_USER_FAILURE_LIMIT", 50)
# The TLS proxy in front of the console: a request from one of these networks has its client
# address taken from this header (right-most address that is not a proxy); from anywhere else
# the header is ignored (console/http.py client_address).
TRUSTED_PROXY_NETWORKS = env_list("TRUSTED_PROXY_NETWORKS")
TRUSTED_PROXY_HEADER = os.environ.get("TRUSTED_PROXY_HEADER", "X-Forwarded-For")
# How often the SOC dashboard redraws its cards (htmx poll), in seconds.
DASHBOARD_REFRESH_SECONDS = env_int("DASHBOARD_REFRESH_SECONDS", 30)
# How often the triage queue asks for new and changed alerts, in milliseconds.
QUEUE_POLL_MS = env_int("QUEUE_POLL_MS", 3000)
LOGIN_FAILURE_WINDOW = env_int("LOGIN_FAILURE_WINDOW", 300)
# TOTP after the password for the roles that can approve and apply mitigations
# (console/two_factor.py). API tokens are separate credentials and are not asked for a code.
# On in production; off for the local demo console (DEBUG), so `make run` logs straight in.
TWO_FACTOR_REQUIRED = env_bool("TWO_FACTOR_REQUIRED", not DEBUG)
OTP_TOTP_ISSUER = os.environ.get("OTP_TOTP_ISSUER", "Shieldwall")
# An authenticator app is enrolled only through a single-use link an admin issues
# (`manage.py issue_enrolment_link`, the user admin) or from a session that passed a code;
# the link stops working after this many hours.
TWO_FACTOR_ENROLMENT_HOURS = env_int("TWO_FACTOR_ENROLMENT_HOURS", 24)

# Sessions live in the database, never in the cache: a Redis outage must not log anyone out.
SESSION_ENGINE = "django.contrib.sessions.backends.db"
SESSION_COOKIE_AGE = env_int("SESSION_COOKIE_AGE", 12 * 3600)  # one shift
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = False  # htmx reads it from a meta tag instead; kept readable for the API clients
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if not DEBUG and not TESTING:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True

# No inline scripts anywhere: everything the pages run comes from /static/.
# plotly.js writes <style> elements for its charts, hence the style-src allowance.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:", "blob:"],
        "font-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "worker-src": ["'self'", "blob:"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
    }
}

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", VAR_DIR / "staticfiles"))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STATICFILES_DIRS = [
    BASE_DIR / "static",
    # plotly.js from the plotly package's own bundle: no CDN, works on an isolated network.
    # Found, not imported: importing plotly costs every process (every command, every worker) time.
    ("plotly", Path(importlib.util.find_spec("plotly").origin).parent / "package_data"),
]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG or TESTING
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", VAR_DIR / "media"))
MEDIA_URL = "/media/"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Token first: a wrong token then answers 401 with WWW-Authenticate, not 403.
        "console.authentication.ApiTokenAuthentication",
        "console.authentication.VerifiedSessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["console.permissions.IsConsoleUser"],
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_THROTTLE_CLASSES": ["rest_framework.throttling.UserRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"user": os.environ.get("API_RATE", "6000/minute")},
    # Service refusals answer what they are: 403 role, 404 scope, 409 state conflict (console/errors.py).
    "EXCEPTION_HANDLER": "console.errors.api_exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Shieldwall API",
    "DESCRIPTION": "Alerts, attacks, tickets, mitigations, traffic and reports of the Shieldwall console.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # The schema and its Swagger page map every endpoint: for logged-in users (session or API key) only.
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "console.schema.add_error_responses",
    ],
    # Several models have a Status; name each enum after its model so the schema is unambiguous.
    "ENUM_NAME_OVERRIDES": {
        "MitigationStateEnum": "mitigations.models.Mitigation.State",
        "MitigationKindEnum": "mitigations.models.Mitigation.Kind",
        "MitigationActionEnum": "mitigations.models.Mitigation.Action",
        "MitigationListPurposeEnum": "mitigations.models.MitigationList.Purpose",
        "AlertStatusEnum": "alerts.models.Alert.Status",
        "FeedFormatEnum": "alerts.models.Feed.Format",
        "DeliveryStatusEnum": "alerts.models.Delivery.Status",
        "TrafficSampleStatusEnum": "traffic.models.TrafficSample.Status",
        "TicketStatusEnum": "tickets.models.Ticket.Status",
        "TicketPriorityEnum": "tickets.models.Priority",
        "TicketEscalationLevelEnum": "tickets.models.Ticket.EscalationLevel",
        "TimelineKindEnum": "tickets.models.TimelineEntry.Kind",
        "TimelineDeliveryStatusEnum": "tickets.models.TimelineEntry.Delivery",
        "AlertSeverityEnum": "alerts.models.Severity",
        "TrafficSampleKindEnum": "traffic.models.TrafficSample.Kind",
    },
}

# Celery's broker: BROKER_URL (or CELERY_BROKER_URL) names one outright, e.g.
# amqp://user:pass@rabbitmq:5672// for RabbitMQ in production; without it Redis when
# REDIS_URL is set, otherwise a broker on the filesystem so that a real worker and beat
# still run with nothing installed.
BROKER_DIR = VAR_DIR / "broker"
BROKER_URL = broker_url_from_env()
BROKER_IS_AMQP = broker_is_amqp(BROKER_URL)
# The webhook publishes after storing: with the broker down it must give up quickly (the
# delivery is safe in the database and the sweeper enqueues it later) rather than hold
# the sender for the default retry schedule.
_PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.1, "interval_max": 0.1}
if BROKER_IS_AMQP:
    CELERY_BROKER_URL = BROKER_URL
    # Publisher confirms: a publish returns once RabbitMQ has the message (on a quorum
    # queue: on a majority of its nodes), so "enqueued" means it survives a broker restart.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"confirm_publish": True, "connect_timeout": 2}
    CELERY_BROKER_CONNECTION_TIMEOUT = 2
    CELERY_BROKER_HEARTBEAT = 30
    CELERY_TASK_PUBLISH_RETRY_POLICY = _PUBLISH_RETRY_POLICY
elif BROKER_URL:
    CELERY_BROKER_URL = BROKER_URL
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600, "socket_connect_timeout": 2}
    CELERY_TASK_PUBLISH_RETRY_POLICY = _PUBLISH_RETRY_POLICY
else:
    for sub in ("queue", "processed", "control"):
        (BROKER_DIR / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT = "console.broker:Transport"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "processed_folder": str(BROKER_DIR / "processed"),
        "store_processed": False,
        "polling_interval": 0.1,
        "control_folder": str(BROKER_DIR / "control"),
    }
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", TESTING)
# Keep the worker's database connection across tasks: a reconnect per task doubled the
# cost of a one-alert delivery (bench/ingest.py).
CELERY_DB_REUSE_MAX = env_int("CELERY_DB_REUSE_MAX", 200)
CELERY_TASK_EAGER_PROPAGATES = TESTING
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE: dict[str, dict] = {
    "healthz-heartbeat": {"task": "console.tasks.heartbeat", "schedule": timedelta(seconds=30)},
    "sweep-pending-deliveries": {
        "task": "alerts.tasks.sweep_pending_deliveries",
        "schedule": timedelta(seconds=env_int("INGEST_SWEEP_SECONDS", 30)),
    },
    "close-quiet-attacks": {"task": "alerts.tasks.close_quiet_attacks", "schedule": timedelta(minutes=1)},
    "auto-resolve-alerts": {"task": "alerts.tasks.auto_resolve_alerts", "schedule": timedelta(minutes=1)},
    "check-silent-feeds": {"task": "alerts.tasks.check_silent_feeds", "schedule": timedelta(minutes=1)},
    "sweep-stuck-samples": {"task": "traffic.tasks.sweep_stuck_samples", "schedule": timedelta(minutes=5)},
    "reconcile-enforcement": {"task": "mitigations.tasks.reconcile_enforcement", "schedule": timedelta(minutes=1)},
    "release-expired-silences": {"task": "alerts.tasks.release_expired_silences", "schedule": timedelta(minutes=1)},
    "poll-feeds": {"task": "alerts.tasks.poll_feeds", "schedule": timedelta(seconds=15)},
    "prune-alerts": {"task": "alerts.tasks.prune", "schedule": timedelta(hours=1)},
    "prune-traffic": {"task": "traffic.tasks.prune", "schedule": timedelta(hours=6)},
    "expire-mitigations": {"task": "mitigations.tasks.expire_mitigations", "schedule": timedelta(seconds=30)},
    "check-mitigation-drift": {"task": "mitigations.tasks.check_drift", "schedule": timedelta(minutes=5)},
    "attach-new-attack-alerts": {
        "task": "tickets.tasks.attach_new_attack_alerts",
        "schedule": timedelta(seconds=30),
    },
    "sla-check": {"task": "tickets.tasks.sla_check", "schedule": timedelta(seconds=30)},
    "poll-inbound-mailbox": {
        "task": "tickets.tasks.poll_inbound_mailbox",
        "schedule": timedelta(seconds=env_int("INBOUND_IMAP_POLL_SECONDS", 60)),
    },
    "refresh-rollups": {"task": "console.tasks.refresh_rollups", "schedule": timedelta(minutes=1)},
    "schedule-reports": {"task": "console.tasks.schedule_reports", "schedule": timedelta(hours=1)},
}
ATTACK_GAP_MINUTES = env_int("ATTACK_GAP_MINUTES", 15)
# A delivery still pending this long after its message was last published lost it (broker
# restarted, worker killed): the sweeper enqueues it again, once per such period. Processing
# is idempotent, so a delivery merely waiting in a long queue and enqueued twice is handled once.
INGEST_STALE_SECONDS = env_int("INGEST_STALE_SECONDS", 60)
# Deepest nesting of arrays and objects a JSON delivery may have: the webhook refuses a deeper
# body (400) before answering 202, and the parser refuses one already stored. Real senders
# nest under 10 levels; recursive code downstream (orjson.dumps, jsonb) breaks at a few hundred.
INGEST_MAX_JSON_DEPTH = env_int("INGEST_MAX_JSON_DEPTH", 64)
# Attempts at processing a delivery (a worker crash, a bug, a time limit) before it becomes
# a rejected dead letter with its last error, instead of being re-queued for ever.
INGEST_MAX_ATTEMPTS = env_int("INGEST_MAX_ATTEMPTS", 3)
# Most stale deliveries the sweeper re-queues in one pass: a backlog drains over several
# passes instead of flooding the broker at once.
INGEST_SWEEP_BATCH = env_int("INGEST_SWEEP_BATCH", 500)
# Micro-batching in the worker: deliveries waiting are written together, in one transaction.
INGEST_BATCH_MAX = env_int("INGEST_BATCH_MAX", 50)
# 0: a worker takes the deliveries already waiting and never lingers for more, so no alert waits
# on others (with 200 ms, eight single senders' p99 rose from 218 to 658 ms on a loaded machine).
INGEST_BATCH_WAIT_MS = env_int("INGEST_BATCH_WAIT_MS", 0)
# Extra sections of /healthz, each a function returning a dict.
HEALTH_EXTRAS = ["alerts.health.ingest_status"]
# Retention, in days: raw deliveries, resolved alerts and parsed traffic files are pruned.
RETENTION_DELIVERY_DAYS = env_int("RETENTION_DELIVERY_DAYS", 30)
RETENTION_RESOLVED_ALERT_DAYS = env_int("RETENTION_RESOLVED_ALERT_DAYS", 180)
RETENTION_TRAFFIC_DAYS = env_int("RETENTION_TRAFFIC_DAYS", 90)
# A classic pcap this big or bigger is analysed in TRAFFIC_PARTS record ranges by separate
# Celery tasks on the "analysis" queue (any worker host), then merged (traffic/parts.py).
TRAFFIC_PARTS = env_int("TRAFFIC_PARTS", 4)
TRAFFIC_PARTS_MIN_BYTES = env_int("TRAFFIC_PARTS_MIN_BYTES", 256 << 20)
# MaxMind GeoLite2 / DB-IP .mmdb files (comma-separated) for country and ASN; empty: the
# embedded geoip2fast data (countries and AS names, no AS numbers).
TRAFFIC_GEOIP_MMDB = env_list("TRAFFIC_GEOIP_MMDB")
# Uploaded logs are read within these bounds (traffic/parsers/bounded.py): a longer line is skipped
# and counted, a compressed upload that expands past the cap and a log past the size cap are refused.
TRAFFIC_MAX_LINE_BYTES = env_int("TRAFFIC_MAX_LINE_BYTES", 1 << 20)
TRAFFIC_MAX_DECOMPRESSED_BYTES = env_int("TRAFFIC_MAX_DECOMPRESSED_BYTES", 1 << 30)
TRAFFIC_MAX_LOG_BYTES = env_int("TRAFFIC_MAX_LOG_BYTES", 256 << 20)
# A sample still "parsing" this long after its attempt started is retried once, then failed
# (traffic.tasks.sweep_stuck_samples); a little past the parse task's hard time limit (3600 s).
TRAFFIC_PARSE_TIME_LIMIT = env_int("TRAFFIC_PARSE_TIME_LIMIT", 3900)
# Outbound requests (pull feeds, webhooks, the Cloudflare API) may reach private and
# loopback addresses only when listed here (no SSRF into the provider's network).
OUTBOUND_ALLOWED_NETWORKS = env_list("OUTBOUND_ALLOWED_NETWORKS")

# Mitigations: approval gate, lifetimes, enforcement backends.
# The blast-radius gate: the share of the customer's baseline a rule would hit decides who
# approves. Up to LOW: one senior engineer; up to MEDIUM: two; up to CEILING: an admin
# (incident lead); above the ceiling: refused. Unknown collateral (no baseline, or none of
# the traffic the rule reads) counts as high.
MITIGATION_BLAST_RADIUS = {
    "low": float(os.environ.get("MITIGATION_BLAST_LOW", "0.001")),
    "medium": float(os.environ.get("MITIGATION_BLAST_MEDIUM", "0.01")),
    "ceiling": float(os.environ.get("MITIGATION_BLAST_CEILING", "0.05")),
    # A rule that matches this share of the traffic (by its logic, or of the simulated baseline)
    # matches "everything": refused (every packet) or an admin's (every packet of a protocol).
    "all": float(os.environ.get("MITIGATION_BLAST_ALL", "0.99")),
}
MITIGATION_DEFAULT_TTL = env_int("MITIGATION_DEFAULT_TTL", 3600)
MITIGATION_MAX_TTL = env_int("MITIGATION_MAX_TTL", 30 * 86400)
# The enforcement ledger (mitigations/ledger.py): a transient target error is retried this many
# times with exponential backoff; an apply whose ledger has not moved for ENFORCEMENT_STALE_SECONDS
# (its worker died) is undone on its targets and failed by reconciliation (worker start and beat).
ENFORCEMENT_STEP_ATTEMPTS = env_int("ENFORCEMENT_STEP_ATTEMPTS", 3)
ENFORCEMENT_RETRY_BASE_S = float(os.environ.get("ENFORCEMENT_RETRY_BASE_S", "1"))
ENFORCEMENT_RETRY_MAX_S = float(os.environ.get("ENFORCEMENT_RETRY_MAX_S", "30"))
ENFORCEMENT_STALE_SECONDS = env_int("ENFORCEMENT_STALE_SECONDS", 900)
# Addresses no mitigation may block, beyond the GlobalAllowlistEntry rows (CIDRs).
GLOBAL_ALLOWLIST = env_list("GLOBAL_ALLOWLIST")
# The provider's own address ranges (edge, scrubbing, management): no mitigation may match
# traffic to them, whatever customer it belongs to.
PROVIDER_NETWORKS = env_list("PROVIDER_NETWORKS", "173.245.48.0/20,103.21.244.0/22,162.158.0.0/15,104.16.0.0/13")
# Where nftables/iptables act is an EnforcementTarget (a namespace or an operator's command),
# never a setting with "this host" as its default. The demo's namespace target:
DEMO_NETNS = os.environ.get("DEMO_NETNS", "shieldwall-demo")
CLOUDFLARE_API_BASE = os.environ.get("CLOUDFLARE_API_BASE", "https://api.cloudflare.com/client/v4")
CLOUDFLARE_API_TOKEN = os.environ.get("CLOUDFLARE_API_TOKEN", "")
# free | pro | business | enterprise: the plan whose quotas are checked before applying
# (a mitigation's options may name its zone's own with "cloudflare_plan"); "" = not checked.
CLOUDFLARE_PLAN = os.environ.get("CLOUDFLARE_PLAN", "").lower()
CLOUDFLARE_MAX_RETRIES = env_int("CLOUDFLARE_MAX_RETRIES", 5)
CLOUDFLARE_BACKOFF = float(os.environ.get("CLOUDFLARE_BACKOFF", "1.0"))
# Ticket notifications (P1 opened, escalation, SLA warning and breach): Slack-compatible
# webhooks ({"text": ...}), and the SOC mailbox when a ticket has no assignee.
NOTIFICATION_WEBHOOK_URLS = env_list("NOTIFICATION_WEBHOOK_URLS")
SOC_NOTIFICATION_EMAILS = env_list("SOC_NOTIFICATION_EMAILS")
# Two-way customer mail: replies go to <local>+<ticket>.<signature>@<domain>, and the mail
# provider's inbound-parse webhook posts them to /inbound/mail/, signed with this secret.
TICKET_REPLY_DOMAIN = os.environ.get("TICKET_REPLY_DOMAIN", "reply.shieldwall.invalid")
TICKET_REPLY_LOCALPART = os.environ.get("TICKET_REPLY_LOCALPART", "soc")
INBOUND_MAIL_SECRET = os.environ.get("INBOUND_MAIL_SECRET", "")
INBOUND_MAIL_MAX_AGE = env_int("INBOUND_MAIL_MAX_AGE", 900)  # seconds a signed post stays valid
# Or the replies are read from a mailbox: imaps://user:password@host:993/INBOX (imap:// uses
# STARTTLS), polled every INBOUND_IMAP_POLL_SECONDS (CELERY_BEAT_SCHEDULE); "" = no mailbox. The CA file verifies a
# server whose certificate the system's store does not know.
INBOUND_IMAP_URL = os.environ.get("INBOUND_IMAP_URL", "")
INBOUND_IMAP_CA_FILE = os.environ.get("INBOUND_IMAP_CA_FILE", "")

# Customer attack reports: PDF through Debian's Chromium, share links, scheduled delivery.
REPORT_PDF = env_bool("REPORT_PDF", True)
REPORT_CHROMIUM = os.environ.get("REPORT_CHROMIUM", "/usr/bin/chromium")
# The reports worker (-Q reports) starts Chromium when its process starts, not under its first report.
REPORT_PDF_WARM = env_bool("REPORT_PDF_WARM", True)
REPORT_SHARE_DAYS = env_int("REPORT_SHARE_DAYS", 14)
REPORT_SHARE_MAX_DAYS = env_int("REPORT_SHARE_MAX_DAYS", 90)
REPORT_SCHEDULES = env_list("REPORT_SCHEDULES", "weekly,monthly")  # "" turns scheduled reports off

EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "Shieldwall SOC <soc@shieldwall.invalid>")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "WARNING" if TESTING else "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
