"""Flask extensions, created unbound here and bound to the app in ``create_app``."""
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect
from sqlalchemy import MetaData

# Named constraints so Alembic migrations are stable on SQLite and PostgreSQL alike.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

db = SQLAlchemy(metadata=MetaData(naming_convention=NAMING_CONVENTION))
migrate = Migrate()
login_manager = LoginManager()
csrf = CSRFProtect()


#: the two kinds of database session (docs/operations.md, "Timeouts")
WEB, JOB = "web", "job"


#: set in the WSGI environ of every request the application serves (:func:`mark_web_requests`)
WEB_REQUEST_MARK = "firmsync.web_request"


def mark_web_requests(wsgi_app):
    """Wrap ``wsgi_app`` so each request it serves is known as a web request (:func:`in_web_request`)."""
    def marked(environ, start_response):
        environ[WEB_REQUEST_MARK] = True
        return wsgi_app(environ, start_response)

    return marked


def in_web_request():
    """Is this code answering a web request (rather than running in a worker, a command, or a
    request context pushed by hand, as tests and jobs do)?"""
    from flask import has_request_context, request

    return has_request_context() and bool(request.environ.get(WEB_REQUEST_MARK))


def session_kind():
    """``WEB`` while answering a web request, else ``JOB`` (workers, cron, commands, the shell)."""
    return WEB if in_web_request() else JOB


def engine_options(config):
    """``SQLALCHEMY_ENGINE_OPTIONS`` for ``config``'s database, starting from the configured ones.

    PostgreSQL: pooled connections are checked before use (``pool_pre_ping``: a database
    restart costs no request) and a connection attempt gives up after
    ``DATABASE_CONNECT_TIMEOUT_SECONDS``. SQLite needs neither (a file)."""
    options = dict(config.get("SQLALCHEMY_ENGINE_OPTIONS") or {})
    if str(config["SQLALCHEMY_DATABASE_URI"]).startswith("sqlite"):
        options.pop("pool_pre_ping", None)
        return options
    options.setdefault("pool_pre_ping", True)
    connect_args = dict(options.get("connect_args") or {})
    connect_args.setdefault("connect_timeout", max(1, int(float(config["DATABASE_CONNECT_TIMEOUT_SECONDS"]))))
    options["connect_args"] = connect_args
    return options


def session_timeouts(config, kind):
    """``{"lock_ms", "statement_ms", "busy_ms"}`` of a ``kind`` (``WEB`` or ``JOB``) session."""
    prefix = "WEB_" if kind == WEB else "JOB_"

    def milliseconds(name):
        return max(0, int(float(config[prefix + name]) * 1000))

    return {"lock_ms": milliseconds("DATABASE_LOCK_TIMEOUT_SECONDS"),
            "statement_ms": milliseconds("DATABASE_STATEMENT_TIMEOUT_SECONDS"),
            "busy_ms": milliseconds("SQLITE_BUSY_TIMEOUT_SECONDS")}


def configure_engine(engine, config):
    """Make ``engine``'s sessions never wait forever, and SQLite usable beside a long sync.

    * SQLite, on every new connection: foreign keys on (cascades), WAL (readers never wait
      for the writer, the writer never waits for readers).
    * Every checkout sets the timeouts of the session kind (:func:`session_kind`) when the
      connection last served the other kind (so usually only once per connection):
      PostgreSQL ``lock_timeout`` and ``statement_timeout``, SQLite ``busy_timeout`` (how long
      a write waits for another process's write transaction before "database is locked").
      A transaction may still tighten its own (``SET LOCAL``, e.g. the reaper's).
    """
    from sqlalchemy import event

    timeouts = {WEB: session_timeouts(config, WEB), JOB: session_timeouts(config, JOB)}
    dialect = engine.dialect.name

    if dialect == "sqlite":
        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection, _record):
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys = ON")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.close()

    @event.listens_for(engine, "checkout")
    def _timeouts(dbapi_connection, record, _proxy):
        kind = session_kind()
        if record.info.get("firmsync_session_kind") == kind:
            return
        apply_session_timeouts(dbapi_connection, dialect, timeouts[kind])
        record.info["firmsync_session_kind"] = kind


def apply_session_timeouts(dbapi_connection, dialect, timeouts):
    """Set ``timeouts`` (see :func:`session_timeouts`) on a raw DB-API connection (outside a transaction)."""
    if dialect == "sqlite":
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(timeouts['busy_ms'])}")
        cursor.close()
    elif dialect == "postgresql":
        autocommit = dbapi_connection.autocommit
        dbapi_connection.autocommit = True  # a SET for the whole session, not one transaction
        try:
            cursor = dbapi_connection.cursor()
            cursor.execute(f"SELECT set_config('lock_timeout', '{int(timeouts['lock_ms'])}', false), "
                           f"set_config('statement_timeout', '{int(timeouts['statement_ms'])}', false)")
            cursor.close()
        finally:
            dbapi_connection.autocommit = autocommit
