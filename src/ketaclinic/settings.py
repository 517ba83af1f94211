"""Django settings, read from the environment by the strict helpers in ``ketaclinic.config``.

Operators set ``KETACLINIC_*`` variables (see docs/operations.md); nothing here is edited per deployment.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from ketaclinic import config

BASE_DIR = Path(__file__).resolve().parent
VAR_DIR = config.var_dir()

SECRET_KEY = config.secret_key(VAR_DIR)
DEBUG = config.env_bool("KETACLINIC_DEBUG", False)
ALLOWED_HOSTS = config.env_list("KETACLINIC_ALLOWED_HOSTS", ["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = config.env_list("KETACLINIC_CSRF_TRUSTED_ORIGINS", [])

DATABASES = {
    "default": config.database_from_url(
        config.env_str("KETACLINIC_DATABASE_URL", f"sqlite:///{VAR_DIR / 'ketaclinic.sqlite3'}"), VAR_DIR
    )
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# The request owns the transaction (design.md): a use case and its audit rows commit or roll back together.
ATOMIC_REQUESTS = True
DATABASES["default"]["ATOMIC_REQUESTS"] = True

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "axes",
    "ketaclinic.core",
    "ketaclinic.accounts",
    "ketaclinic.audit",
    "ketaclinic.patients",
    "ketaclinic.measures",
    "ketaclinic.assessment",
    "ketaclinic.treatment",
    "ketaclinic.monitoring",
    "ketaclinic.consent",
    "ketaclinic.chairside",
    "ketaclinic.ledger",
    "ketaclinic.interop.fhir",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "ketaclinic.core.middleware.SecurityHeadersMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "ketaclinic.core.middleware.SessionTimeoutMiddleware",
    "ketaclinic.core.middleware.SiteTimeZoneMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "ketaclinic.core.middleware.AccessControlMiddleware",
    "ketaclinic.core.middleware.TextInputMiddleware",
    "axes.middleware.AxesMiddleware",
    "ketaclinic.core.middleware.DomainErrorMiddleware",  # last: its process_exception runs first
]

ROOT_URLCONF = "ketaclinic.urls"
ASGI_APPLICATION = "ketaclinic.asgi.application"
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
                "ketaclinic.core.context_processors.clinic",
            ],
            # ``{{ code|label:"gate_status" }}`` in every template: the words staff read for a stored code.
            "builtins": ["ketaclinic.core.templatetags.labels"],
        },
    }
]

AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# Argon2id at the OWASP parameters (security.md §3.2): m=19 MiB, t=2, p=1. PHC strings, re-hashed on login.
PASSWORD_HASHERS = [
    "ketaclinic.accounts.hashers.OwaspArgon2idPasswordHasher",
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
# ASVS 4 V2: length ≥12, no composition rules, check against common passwords.
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
]
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "core:home"

# Sessions (security.md §3.1): server-side, rotated at sign-in, idle and absolute limits.
KETACLINIC_IDLE_TIMEOUT = timedelta(
    minutes=config.env_int("KETACLINIC_IDLE_TIMEOUT_MIN", 15, minimum=1, maximum=30)
)
KETACLINIC_ABSOLUTE_TIMEOUT = timedelta(
    hours=config.env_int("KETACLINIC_ABSOLUTE_TIMEOUT_H", 12, minimum=1, maximum=12)
)
SESSION_ENGINE = "django.contrib.sessions.backends.db"
SESSION_COOKIE_AGE = int(KETACLINIC_ABSOLUTE_TIMEOUT.total_seconds())
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
# Secure cookies with the __Host- prefix (ASVS 5: 3.3.1–3.3.4). Browsers accept Secure cookies from
# http://127.0.0.1 and http://localhost, so the demo works without TLS; anything else must be served over TLS.
SECURE_COOKIES = config.env_bool("KETACLINIC_SECURE_COOKIES", True)
SESSION_COOKIE_SECURE = SECURE_COOKIES
CSRF_COOKIE_SECURE = SECURE_COOKIES
SESSION_COOKIE_NAME = "__Host-ketaclinic-session" if SECURE_COOKIES else "ketaclinic-session"
CSRF_COOKIE_NAME = "__Host-ketaclinic-csrf" if SECURE_COOKIES else "ketaclinic-csrf"
CSRF_COOKIE_HTTPONLY = False
CSRF_COOKIE_SAMESITE = "Strict"

# Headers (security.md §3.3).
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SECURE_HSTS_SECONDS = config.env_int("KETACLINIC_HSTS_SECONDS", 31536000, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_SSL_REDIRECT = config.env_bool("KETACLINIC_SSL_REDIRECT", False)
if config.env_bool("KETACLINIC_BEHIND_TLS_PROXY", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# `ketaclinic serve` (issue 15, serving): this many uvicorn worker processes share the port, so one slow or
# stuck request (a large page, a PDF, a chart) holds up one process, not the clinic. About two per CPU core;
# each process holds its own copy of the application (~150 MB). The background sweeps run once, in the
# supervising process (docs/operations.md "Serving").
KETACLINIC_WEB_WORKERS = config.env_int("KETACLINIC_WEB_WORKERS", 4, minimum=1, maximum=64)

# Client addresses (issue 15 M3; docs/operations.md "Behind a proxy"). The address of the connection is the
# client's, unless it is one of these trusted proxies (addresses or networks, comma-separated; default:
# none): then X-Forwarded-For is read from the right, skipping trusted proxies, and the first other address
# is the client's. Sign-in lockouts, self-report limits and the audit log's source address all use it
# (``core.client_address``); django-axes through its own AXES_CLIENT_IP_CALLABLE.
KETACLINIC_TRUSTED_PROXIES = config.env_networks("KETACLINIC_TRUSTED_PROXIES")
AXES_CLIENT_IP_CALLABLE = "ketaclinic.core.client_address.client_address"

# Lockout (ASVS 4 2.2.1, ≤100 failures/hour): after 5 failures for one username from one address the
# account is locked for that address for a cool-off period; attackers elsewhere cannot lock a user out.
AXES_FAILURE_LIMIT = config.env_int("KETACLINIC_LOGIN_FAILURE_LIMIT", 5, minimum=3, maximum=100)
AXES_COOLOFF_TIME = timedelta(minutes=config.env_int("KETACLINIC_LOGIN_COOLOFF_MIN", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "accounts/locked_out.html"
AXES_VERBOSE = False
AXES_ENABLE_ACCESS_FAILURE_LOG = True
AXES_USERNAME_FORM_FIELD = "username"
# Beside it, a per-account limit across all addresses (accounts/signin_limits.py): after this many wrong
# passwords for one username within an hour, each further attempt waits 2, 4, 8 … seconds (at most
# KETACLINIC_LOGIN_ACCOUNT_MAX_DELAY_S) after the last failure, and the account holder and the
# organization's administrators are told. Attempts during the wait are refused without checking the password.
# The bounds keep the worst case under ASVS 4 2.2.1's 100 attempts an hour per account (30 + 3600/60 = 90).
KETACLINIC_LOGIN_ACCOUNT_FREE_FAILURES = config.env_int(
    "KETACLINIC_LOGIN_ACCOUNT_FREE_FAILURES", 10, minimum=3, maximum=30
)
KETACLINIC_LOGIN_ACCOUNT_MAX_DELAY_S = config.env_int(
    "KETACLINIC_LOGIN_ACCOUNT_MAX_DELAY_S", 120, minimum=60, maximum=3600
)

# Break-glass access (HIPAA 164.312(a)(2)(ii)): off by default.
KETACLINIC_BREAK_GLASS_ENABLED = config.env_bool("KETACLINIC_BREAK_GLASS", False)
KETACLINIC_BREAK_GLASS_MINUTES = config.env_int("KETACLINIC_BREAK_GLASS_MINUTES", 60, minimum=5, maximum=480)

# Audit anchor: an HMAC over the chain head kept outside the database (security.md §5.3).
KETACLINIC_AUDIT_ANCHOR_PATH = Path(
    config.env_str("KETACLINIC_AUDIT_ANCHOR_PATH", str(VAR_DIR / "audit-anchor.json"))
)
# The key that signs the anchors is kept apart from the data (issue 15 H3; audit/anchor_keys.py): a file
# outside the var directory (mode 0600/0400), an environment secret, or a KMS-style provider.
KETACLINIC_ANCHOR_KEY_PROVIDER = config.env_str("KETACLINIC_ANCHOR_KEY_PROVIDER", "")
KETACLINIC_ANCHOR_KEY_FILE = config.env_str("KETACLINIC_ANCHOR_KEY_FILE", "")
KETACLINIC_ANCHOR_KEY_VARIABLE = (
    "KETACLINIC_ANCHOR_KEY" if "KETACLINIC_ANCHOR_KEY" in os.environ else "KETACLINIC_AUDIT_ANCHOR_KEY"
)
KETACLINIC_ANCHOR_KEY = config.env_str(KETACLINIC_ANCHOR_KEY_VARIABLE, "")
# Anchors are also published off the host (audit/publish.py): RFC 5424 syslog to a collector,
# udp://host:514, tcp://host:601 or tls://host:6514 (KETACLINIC_ANCHOR_SYSLOG_CA: the collector's CA file).
KETACLINIC_ANCHOR_SYSLOG = config.env_str("KETACLINIC_ANCHOR_SYSLOG", "")
KETACLINIC_ANCHOR_SYSLOG_CA = config.env_str("KETACLINIC_ANCHOR_SYSLOG_CA", "")
if KETACLINIC_ANCHOR_SYSLOG:
    config.syslog_url("KETACLINIC_ANCHOR_SYSLOG", KETACLINIC_ANCHOR_SYSLOG)  # fails start-up when malformed
# The collector's received records (or an export of them), which `audit verify` and `check` compare with.
KETACLINIC_ANCHOR_PUBLISHED_FILE = config.env_str("KETACLINIC_ANCHOR_PUBLISHED_FILE", "")

# The ages this clinic treats (clinical/age_range.py): a registration outside them needs a reason. The
# default, 18 and over, is a clinic default, unconfirmed; 0 as the maximum means no upper limit.
KETACLINIC_PATIENT_MIN_AGE = config.env_int("KETACLINIC_PATIENT_MIN_AGE", 18, minimum=0, maximum=120)
KETACLINIC_PATIENT_MAX_AGE = config.env_int("KETACLINIC_PATIENT_MAX_AGE", 0, minimum=0, maximum=130) or None
if KETACLINIC_PATIENT_MAX_AGE is not None and KETACLINIC_PATIENT_MAX_AGE < KETACLINIC_PATIENT_MIN_AGE:
    raise ImproperlyConfigured(
        f"KETACLINIC_PATIENT_MAX_AGE={KETACLINIC_PATIENT_MAX_AGE} is below "
        f"KETACLINIC_PATIENT_MIN_AGE={KETACLINIC_PATIENT_MIN_AGE}."
    )

# Patient self-report links (issue: rating scales): lifetime and failed opens allowed per address per hour.
KETACLINIC_SELF_REPORT_HOURS = config.env_int("KETACLINIC_SELF_REPORT_HOURS", 72, minimum=1, maximum=24 * 14)
KETACLINIC_PRE_SESSION_SCALES = config.env_list("KETACLINIC_PRE_SESSION_SCALES", ["phq9", "gad7"])
KETACLINIC_SELF_REPORT_MAX_FAILURES = config.env_int("KETACLINIC_SELF_REPORT_MAX_FAILURES", 20, minimum=3)
# A suicidality or mania alert still unacknowledged after this many hours goes to every clinician of the
# patient's site as well (measures.services.escalate_safety_alerts). The reference asks for the same day
# (issue: rating scales) but gives no interval: a clinic default, unconfirmed.
KETACLINIC_SAFETY_ALERT_ESCALATE_HOURS = config.env_int(
    "KETACLINIC_SAFETY_ALERT_ESCALATE_HOURS", 2, minimum=1, maximum=24
)
# A booked course session can be opened from this many minutes before its booked time until the end of its
# booked day (clinical/schedule_rules.py): the reference gives no window, so a clinic default, unconfirmed.
KETACLINIC_COURSE_OPEN_BEFORE_MIN = config.env_int(
    "KETACLINIC_COURSE_OPEN_BEFORE_MIN", 120, minimum=0, maximum=12 * 60
)

# Pre-dose gate (issue 14). A pregnancy test counts when taken within KETACLINIC_PREGNANCY_TEST_DAYS before the
# first session of the course ("course") or before each session ("session"); clinical.md §11 gives no interval
# (default: within 7 days before the first session of a course, a clinic default, unconfirmed), shown on the
# gate as a clinic default.
KETACLINIC_PREGNANCY_TEST_DAYS = config.env_int("KETACLINIC_PREGNANCY_TEST_DAYS", 7, minimum=0, maximum=30)
KETACLINIC_PREGNANCY_TEST_BEFORE = config.env_choice(
    "KETACLINIC_PREGNANCY_TEST_BEFORE", "course", ("course", "session")
)

# Informed consent (consent app). How long a signed consent lasts: the reference gives no period, so this is
# clinic policy (default 365 days, shown to staff as a clinic default, unconfirmed).
KETACLINIC_CONSENT_VALID_DAYS = config.env_int("KETACLINIC_CONSENT_VALID_DAYS", 365, minimum=30, maximum=730)
# Uploads (signed consent scans, at most 10 MB, sent as a form or as base64 in the JSON API): kept in memory,
# never spooled to a shared temporary directory; larger bodies are refused before they are read.
FILE_UPLOAD_MAX_MEMORY_SIZE = 12 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 15 * 1024 * 1024
FILE_UPLOAD_TEMP_DIR = str(VAR_DIR / "upload-tmp")
(VAR_DIR / "upload-tmp").mkdir(mode=0o700, exist_ok=True)
FILE_UPLOAD_PERMISSIONS = 0o600

# Plausible times (issue 15 H2; core/moments.py, docs/operations.md "Bounds on what is recorded"): every time a
# person or a device records (readings, doses, scores, session bookings) lies on or after 1 January of
# this year, at most this many minutes after the server's clock (a device's clock running ahead), and a
# booked session at most this many days ahead. Operational bounds, not clinical values.
KETACLINIC_EARLIEST_YEAR = config.env_int("KETACLINIC_EARLIEST_YEAR", 2000, minimum=1900, maximum=2100)
KETACLINIC_CLOCK_SKEW_MIN = config.env_int("KETACLINIC_CLOCK_SKEW_MIN", 5, minimum=0, maximum=1440)
KETACLINIC_BOOKING_HORIZON_DAYS = config.env_int(
    "KETACLINIC_BOOKING_HORIZON_DAYS", 732, minimum=30, maximum=3660
)

# The monitor feed (`ketaclinic mllp`, issue 15 H4/M2; docs/operations.md "Monitor feed limits"):
# interface limits, not clinical values. A message over a limit is answered AE and nothing of it is stored.
KETACLINIC_HL7_MAX_MESSAGE_BYTES = config.env_int(
    "KETACLINIC_HL7_MAX_MESSAGE_BYTES", 256 * 1024, minimum=4096, maximum=1024 * 1024
)
KETACLINIC_HL7_MAX_OBX = config.env_int("KETACLINIC_HL7_MAX_OBX", 500, minimum=10, maximum=10000)
KETACLINIC_HL7_MAX_READINGS = config.env_int("KETACLINIC_HL7_MAX_READINGS", 200, minimum=5, maximum=5000)
# Times in a message: not before 1 January of this year, not more than this many minutes after receipt.
KETACLINIC_HL7_EARLIEST_YEAR = config.env_int(
    "KETACLINIC_HL7_EARLIEST_YEAR", 2000, minimum=1900, maximum=2100
)
KETACLINIC_HL7_CLOCK_SKEW_MIN = config.env_int("KETACLINIC_HL7_CLOCK_SKEW_MIN", 5, minimum=0, maximum=1440)
# A connection that delivers no complete message for this long is closed (the monitor reconnects).
KETACLINIC_HL7_IDLE_TIMEOUT_S = config.env_int(
    "KETACLINIC_HL7_IDLE_TIMEOUT_S", 600, minimum=10, maximum=86400
)
KETACLINIC_HL7_MAX_CONNECTIONS_PER_ADDRESS = config.env_int(
    "KETACLINIC_HL7_MAX_CONNECTIONS_PER_ADDRESS", 64, minimum=1, maximum=100000
)
# Messages from unknown monitors or addresses waiting for review; past this many, such messages are refused AR.
KETACLINIC_HL7_REVIEW_QUEUE_MAX = config.env_int(
    "KETACLINIC_HL7_REVIEW_QUEUE_MAX", 10000, minimum=100, maximum=1000000
)
# MLLP over TLS with client certificates (IHE ATNA node authentication): on when a certificate is set.
KETACLINIC_HL7_TLS_CERT = config.env_str("KETACLINIC_HL7_TLS_CERT", "")
KETACLINIC_HL7_TLS_KEY = config.env_str("KETACLINIC_HL7_TLS_KEY", "")
KETACLINIC_HL7_TLS_CA = config.env_str("KETACLINIC_HL7_TLS_CA", "")

# Outgoing email (self-report links, staff invitations and password resets). Default: written as files under
# var/outbox for the operator to inspect;
# set KETACLINIC_EMAIL_BACKEND=django.core.mail.backends.smtp.EmailBackend and the KETACLINIC_SMTP_* values.
EMAIL_BACKEND = config.env_str("KETACLINIC_EMAIL_BACKEND", "django.core.mail.backends.filebased.EmailBackend")
EMAIL_FILE_PATH = VAR_DIR / "outbox"
EMAIL_HOST = config.env_str("KETACLINIC_SMTP_HOST", "localhost")
EMAIL_PORT = config.env_int("KETACLINIC_SMTP_PORT", 587, minimum=1, maximum=65535)
EMAIL_HOST_USER = config.env_str("KETACLINIC_SMTP_USER", "")
EMAIL_HOST_PASSWORD = config.env_str("KETACLINIC_SMTP_PASSWORD", "")
EMAIL_USE_TLS = config.env_bool("KETACLINIC_SMTP_TLS", True)
DEFAULT_FROM_EMAIL = config.env_str("KETACLINIC_EMAIL_FROM", "clinic@localhost")
# Staff invitations and password resets (accounts/invitations.py): a one-time link e-mailed to the person,
# valid this many hours (clinic defaults). The links start with KETACLINIC_PUBLIC_URL.
KETACLINIC_INVITATION_HOURS = config.env_int("KETACLINIC_INVITATION_HOURS", 72, minimum=1, maximum=24 * 7)
KETACLINIC_PASSWORD_RESET_HOURS = config.env_int("KETACLINIC_PASSWORD_RESET_HOURS", 24, minimum=1, maximum=72)
KETACLINIC_PUBLIC_URL = config.env_str("KETACLINIC_PUBLIC_URL", "http://127.0.0.1:8000").rstrip("/")

OTP_TOTP_ISSUER = config.env_str("KETACLINIC_TOTP_ISSUER", "ketaclinic")
OTP_TOTP_THROTTLE_FACTOR = 1

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)
STATICFILES_DIRS = [BASE_DIR / "static"]
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    # No PHI in logs: request paths carry only opaque ids, and 4xx bodies are never logged.
    "loggers": {
        "django.request": {"handlers": ["console"], "level": "ERROR", "propagate": False},
        "ketaclinic": {"handlers": ["console"], "level": "INFO"},
        "axes": {"handlers": ["console"], "level": "WARNING"},
    },
}
