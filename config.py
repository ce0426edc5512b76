"""Configuration classes for Firmsync.

Values come from the class defaults, then from the environment: ``DATABASE_URL``,
``REDIS_URL`` and any ``FIRMSYNC_<NAME>`` variable (``FIRMSYNC_SECRET_KEY`` sets
``SECRET_KEY``, ``FIRMSYNC_ENCRYPTION_KEYS`` sets ``ENCRYPTION_KEYS``...). Nothing here
touches the disk or the network: the application factory does that.
"""
import os


class Config:
    """Settings shared by every environment."""

    SECRET_KEY = None  # development generates one under instance/; production must set it
    SQLALCHEMY_DATABASE_URI = None  # default: sqlite file under instance/
    SQLALCHEMY_TRACK_MODIFICATIONS = False
    SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True}
    REDIS_URL = "redis://127.0.0.1:6379/0"
    #: what a worker started without queue names listens to, in this order (app/services/queues.py)
    RQ_QUEUES = ["people", "sync", "default", "backfill"]
    #: first syncs of one firm released to the backfill queue at a time; the others wait their turn
    SYNC_BACKFILL_JOBS_PER_FIRM = 2
    ENCRYPTION_KEYS = None  # comma-separated Fernet keys, first is current
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SECURE = False
    REMEMBER_COOKIE_HTTPONLY = True
    WTF_CSRF_TIME_LIMIT = 12 * 3600  # a form left open longer than a working day asks to be reloaded
    # Login throttling (docs/security-accounts.md): after this many failures of one account
    # from one address, or of any account from one address, each further attempt from there
    # waits LOGIN_BACKOFF_SECONDS, doubling with every failure up to LOGIN_BACKOFF_MAX_SECONDS
    LOGIN_FREE_FAILURES_PER_ACCOUNT_AND_ADDRESS = 5
    LOGIN_FREE_FAILURES_PER_ADDRESS = 50
    LOGIN_BACKOFF_SECONDS = 30
    LOGIN_BACKOFF_MAX_SECONDS = 15 * 60
    #: failures older than this (since the last one) are forgotten
    LOGIN_FAILURES_KEPT_SECONDS = 24 * 60 * 60
    # Behind a reverse proxy: how many proxies in front of Firmsync set X-Forwarded-For and
    # X-Forwarded-Proto (werkzeug's ProxyFix). 0 trusts no forwarded header: the client
    # address is the connection's. Set 1 behind one TLS-terminating proxy.
    PROXY_FIX_X_FOR = 0
    PROXY_FIX_X_PROTO = 0
    #: how long the link of an invitation to join a firm works
    INVITATION_LIFETIME_HOURS = 7 * 24
    NIGHTLY_DEFAULT_TIME = "02:00"
    #: a file whose last sync succeeded this many hours before its night gets no nightly run
    NIGHTLY_SKIP_RECENT_HOURS = 6
    STALE_AFTER_HOURS = 36
    #: a sync whose API budget asks it to wait longer than this many seconds parks instead of
    #: sleeping: it keeps what it fetched and resumes when the budget allows (docs/sync-engine.md "Parking");
    #: a wait of a second or more costs less parked than slept in a worker (measure 6)
    SYNC_PARK_AFTER_SECONDS = 1
    SANDBOX_URL = "http://127.0.0.1:5050"
    #: let connections call loopback, private and any vendor's hosts (app/services/outbound.py)
    ALLOW_PRIVATE_CONNECTOR_HOSTS = False
    FLASK_ADMIN_SWATCH = "cerulean"
    BABEL_DEFAULT_LOCALE = "en"
    LANGUAGES = ["en", "fr", "nl"]
    # Manual uploads (docs/data-and-scenarios.md, "Upload limits"): a larger request is
    # refused before it is read; a file with more lines or columns, or a workbook that
    # unpacks to more bytes, is refused with a message and nothing is written
    MAX_CONTENT_LENGTH = 16 * 1024 * 1024
    UPLOAD_MAX_ROWS = 100_000
    UPLOAD_MAX_COLUMNS = 50
    UPLOAD_MAX_XLSX_UNCOMPRESSED_BYTES = 64 * 1024 * 1024
    #: the official audit-file schemas (XAF, SAF-T); empty: ../shared/specs/audit-files beside the repository
    AUDIT_FILE_SCHEMA_DIR = ""
    #: the reference charts of accounts (be, fr, nl, uk); empty: ../shared/data/charts beside the repository
    REFERENCE_CHART_DIR = ""
    # Nothing waits forever (docs/operations.md, "Timeouts"). Database sessions opened in a web
    # request get the WEB_ values, every other session (workers, cron, commands) the JOB_ ones;
    # PostgreSQL: lock_timeout and statement_timeout (0 = no limit); SQLite: its busy timeout.
    DATABASE_CONNECT_TIMEOUT_SECONDS = 5
    WEB_DATABASE_LOCK_TIMEOUT_SECONDS = 5
    WEB_DATABASE_STATEMENT_TIMEOUT_SECONDS = 30
    WEB_SQLITE_BUSY_TIMEOUT_SECONDS = 5
    JOB_DATABASE_LOCK_TIMEOUT_SECONDS = 60
    JOB_DATABASE_STATEMENT_TIMEOUT_SECONDS = 30 * 60
    JOB_SQLITE_BUSY_TIMEOUT_SECONDS = 60
    # A sync reads everything into a spool file under instance/sync-spool/ before writing it,
    # so the database's write lock is held only while writing (docs/sync-engine.md, "Staging
    # on SQLite"): "auto" does so on SQLite only; True or False force it either way
    SYNC_STAGE_BEFORE_WRITE = "auto"
    # Redis from a web request: give up after this long (the page degrades instead of hanging)
    WEB_REDIS_TIMEOUT_SECONDS = 1.0
    # Redis from workers and commands: retry with exponential backoff for about this long
    # (a Redis restart or a network blip is ridden out), and check idle connections this often
    JOB_REDIS_OUTAGE_SECONDS = 300
    JOB_REDIS_HEALTH_CHECK_SECONDS = 30
    #: the "briefly unavailable" page asks browsers to come back after this many seconds
    UNAVAILABLE_RETRY_AFTER_SECONDS = 30


class DevelopmentConfig(Config):
    DEBUG = True
    ALLOW_PRIVATE_CONNECTOR_HOSTS = True


class TestingConfig(Config):
    TESTING = True
    SECRET_KEY = "testing-secret-key"
    SQLALCHEMY_DATABASE_URI = "sqlite://"
    REDIS_URL = "redis://127.0.0.1:6379/15"
    # A fixed, throwaway key so encrypted rows are readable inside one test run.
    ENCRYPTION_KEYS = "Pz7v7lH6o0oUuWcT9nW0b3r7bXqkQk5a0lX4c2p9y1E="
    LOGIN_FREE_FAILURES_PER_ACCOUNT_AND_ADDRESS = 3
    LOGIN_FREE_FAILURES_PER_ADDRESS = 6
    ALLOW_PRIVATE_CONNECTOR_HOSTS = True  # requests-mock hosts; tests/security/test_outbound.py turns it off


class ProductionConfig(Config):
    SESSION_COOKIE_SECURE = True
    REMEMBER_COOKIE_SECURE = True


CONFIGS = {
    "development": DevelopmentConfig,
    "testing": TestingConfig,
    "production": ProductionConfig,
}


def environment_overrides(environ=None):
    """Return the settings given by the environment, as a dict ready for ``config.update``."""
    environ = os.environ if environ is None else environ
    values = {}
    for key, value in environ.items():
        if key.startswith("FIRMSYNC_") and key != "FIRMSYNC_ENV":
            values[key[len("FIRMSYNC_"):]] = value
    if environ.get("DATABASE_URL"):
        values["SQLALCHEMY_DATABASE_URI"] = normalise_database_url(environ["DATABASE_URL"])
    if environ.get("REDIS_URL"):
        values["REDIS_URL"] = environ["REDIS_URL"]
    return values


def normalise_database_url(url):
    """Point plain ``postgres://``/``postgresql://`` URLs at the psycopg 3 driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url
