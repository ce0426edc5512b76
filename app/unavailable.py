"""The "Firmsync is briefly unavailable" answer: the web degrades, it never answers 500,
when the database or Redis is away (docs/operations.md, "When the database or Redis is away").

:func:`init_app` registers error handlers for

* a database that cannot be reached or cannot serve in time (:func:`database_unavailable`):
  a refused or lost connection, the pool's own wait, PostgreSQL's lock and statement
  timeouts, an administrator's shutdown, and SQLite's "database is locked" after its busy
  timeout (another process holds the write lock);
* Redis connection errors and timeouts that a page did not handle itself.

The answer is HTTP 503 with ``Retry-After`` (``UNAVAILABLE_RETRY_AFTER_SECONDS``): a plain
page in the visitor's language, or JSON (``{code, status, message}``) under ``/api/``.
Building it touches neither the database nor Redis: the language comes from the session's
choice or the browser (the user's own setting lives in the database), the template is
rendered without the application's context processors (they load the user). Other database
errors (a bug, a constraint) are not hidden behind this page: they propagate as before.
"""
import logging

from flask import current_app, jsonify, request, session
from flask_babel import force_locale, gettext
from sqlalchemy import exc as sa_exc

from app.redis_connection import OUTAGE_ERRORS

log = logging.getLogger("firmsync.web")

TEMPLATE = "errors/unavailable.html"
#: PostgreSQL SQLSTATE classes and codes that mean "not now" rather than "wrong": connection
#: exceptions (08), insufficient resources (53), operator intervention: shutdown, query
#: cancelled by statement_timeout (57), transaction rollback: deadlock, serialization (40),
#: lock_not_available from lock_timeout (55P03)
UNAVAILABLE_SQLSTATE_CLASSES = ("08", "40", "53", "57")
UNAVAILABLE_SQLSTATES = ("55P03",)
#: SQLite messages of a database that is busy or cannot be opened right now
UNAVAILABLE_SQLITE_MESSAGES = ("database is locked", "database table is locked", "unable to open database file",
                               "disk i/o error")


def database_unavailable(error):
    """Is ``error`` (a SQLAlchemy exception) the database being unreachable or too busy,
    rather than a mistake in a query?"""
    if isinstance(error, sa_exc.TimeoutError):  # the pool's wait for a free connection
        return True
    if not isinstance(error, sa_exc.DBAPIError):
        return False
    if error.connection_invalidated:
        return True
    original = error.orig
    sqlstate = getattr(original, "sqlstate", None)
    if sqlstate:
        return sqlstate[:2] in UNAVAILABLE_SQLSTATE_CLASSES or sqlstate in UNAVAILABLE_SQLSTATES
    if type(original).__module__.startswith("psycopg"):
        # no SQLSTATE: the connection itself failed (refused, timed out, closed)
        return isinstance(error, (sa_exc.OperationalError, sa_exc.InterfaceError))
    if type(original).__module__ == "sqlite3":
        return str(original).lower().startswith(UNAVAILABLE_SQLITE_MESSAGES)
    return False


def init_app(app):
    """Answer 503 "briefly unavailable" for database and Redis outages (see the module docstring)."""

    @app.errorhandler(sa_exc.DBAPIError)
    @app.errorhandler(sa_exc.TimeoutError)
    def _database_error(error):
        if not database_unavailable(error):
            raise error
        log.warning("database unavailable for %s %s: %s", request.method, request.path, type(error.orig
                    if isinstance(error, sa_exc.DBAPIError) else error).__name__)
        return unavailable_response()

    for redis_error in OUTAGE_ERRORS:
        @app.errorhandler(redis_error)
        def _redis_error(error):
            log.warning("Redis unavailable for %s %s: %s", request.method, request.path, type(error).__name__)
            return unavailable_response()


def page_language():
    """The visitor's language without the database: their choice kept in the session, else the
    browser's best match among ``LANGUAGES``, else ``BABEL_DEFAULT_LOCALE``."""
    from app.i18n import SESSION_LOCALE_KEY

    allowed = list(current_app.config["LANGUAGES"])
    chosen = session.get(SESSION_LOCALE_KEY)
    if chosen in allowed:
        return chosen
    return request.accept_languages.best_match(allowed) or current_app.config.get("BABEL_DEFAULT_LOCALE", "en")


def not_found_response():
    """A 404 page for an unknown address outside the console and the API, in the visitor's
    language, drawn like the 503 page (it needs neither the database nor Redis)."""
    language = page_language()
    with force_locale(language):
        title = gettext("Page not found")
        text = gettext("This page does not exist or has moved.")
        again = gettext("Go to the dashboard")
    page = current_app.jinja_env.get_template(TEMPLATE).render(
        language=language, title=title, text=text, again=again, again_url="/admin/", page_id="not-found")
    return current_app.response_class(page, status=404, mimetype="text/html")


def unavailable_response():
    """The 503 answer (page or API JSON), in the visitor's language, with ``Retry-After``."""
    retry_after = max(1, int(float(current_app.config["UNAVAILABLE_RETRY_AFTER_SECONDS"])))
    language = page_language()
    with force_locale(language):
        title = gettext("Firmsync is briefly unavailable")
        text = gettext("Firmsync cannot reach its database or its queue right now. Nothing you saved is lost. "
                       "Please try again in a minute.")
        again = gettext("Try again")
    if request.path.startswith("/api/"):
        response = jsonify(code=503, status="Service Unavailable", message=f"{title}. {text}")
    else:
        page = current_app.jinja_env.get_template(TEMPLATE).render(
            language=language, title=title, text=text, again=again,
            again_url="/" + request.full_path.lstrip("/") if request.method == "GET" else "/")  # never off-site
        response = current_app.response_class(page, mimetype="text/html")
    response.status_code = 503
    response.headers["Retry-After"] = str(retry_after)
    return response
