"""Every registered route, every role, hostile values: no 500, no anonymous page, no firm B.

The routes come from the application (``app.url_map``), so a new route is walked without
editing this file. For each role of :mod:`tests.console_world` the walk requests each route
(GET routes with hostile values in their URL variables and in every query parameter the
views read, list filters included; POST routes with the same values in the form and a valid
CSRF token) and checks:

* no answer is a 500 and none shows a traceback;
* an anonymous visitor never gets a 200 outside the public pages (login, invitation);
* a firm-A user's answers never hold firm B's names or secrets, also when every route is
  asked about a row of firm B, and firm B's rows are unchanged afterwards.

Administrators get every hostile value, also next to a valid id (so the checks behind a
found file are reached); the other roles a smaller set. No request names a firm-A row in a
POST, so nothing is synced or queued (the ``app`` fixture empties Redis after each test).
"""
import re

import pytest
from flask import got_request_exception
from sqlalchemy import inspect as sa_inspect
from sqlalchemy import select

from app.extensions import db
from app.models import AuditEvent, Connection, Dossier, DossierLink, Firm, Group, Membership, SyncRun
from tests.console_world import SECRET_B, build_world, csrf_token, fresh_request_globals, log_in  # noqa: F401

HOSTILE = [
    str(2**63), str(2**31), "-1", "0", "99999999999999999999999", "1E30", "abc", "9999-12-31", "0001-01-15",
    "0001-01-15 to 9999-12-31", "9999-12-31 23:59:59", "' OR 1=1--", "<script>alert(1)</script>", "%00\x00", "9" * 4000,
]
#: the smaller set for the roles other than administrator
FEW = [str(2**63), str(2**31), "-1", "1E30", "0001-01-15", "<script>alert(1)</script>"]

#: query parameters read by the views (grep request.args in app/ and admin_views/) and by
#: Flask-Admin's list, details, edit, lookup and export views; list filters are added per view
QUERY_PARAMETERS = (
    "id", "page", "page_size", "sort", "desc", "search", "next", "url", "modal", "year", "view", "tab",
    "account", "period", "journal", "q", "kind", "package", "connection_id", "name", "query", "offset",
    "limit", "state", "error", "code", "token", "date", "fiscal_year",
)
#: endpoints an anonymous visitor may see
PUBLIC_ENDPOINTS = {"auth.login", "auth.login_code", "auth.invitation"}
#: the API's OpenAPI document and its reference page describe the software, no firm's data (docs/api.md)
PUBLIC_ENDPOINTS |= {"api-docs.openapi_json", "api_reference_page"}
#: the health check says only whether the database and Redis answer (docs/operations.md)
PUBLIC_ENDPOINTS |= {"health.healthz"}
#: endpoints that end or change the walk's session (firm, login): requested last
SESSION_CHANGING = {"auth.switch_firm", "auth.logout"}
ROLES = ("anonymous", "admin", "staff", "creator", "external", "pulse", "support")
#: what a firm-A user must never see (support staff work for every firm)
FIRM_B_MARKS = (SECRET_B, "Beta Boekhouding", "Beta Public Ltd", "Beta Private Ltd", "Beta Grouped Ltd",
                "Beta Demo Books", "Beta spare connection", "admin@beta.test", "staff@beta.test",
                "Beta run", "Beta audit event", "Beta team")
TRACEBACK = re.compile(r"Traceback \(most recent call last\)|File \"[^\"]+\.py\", line \d+")


@pytest.fixture
def world(db):
    return build_world()


@pytest.fixture
def crashes(app):
    """The exceptions raised by requests, answered as real 500 pages (not raised in the test)."""
    app.config["PROPAGATE_EXCEPTIONS"] = False
    seen = []

    def record(sender, exception, **extra):
        seen.append(exception)

    got_request_exception.connect(record, app)
    yield seen
    got_request_exception.disconnect(record, app)


def walked_rules(app):
    """The rules to walk: everything but static files, the ones changing the session last."""
    rules = [rule for rule in app.url_map.iter_rules() if not (
        rule.endpoint == "static" or rule.endpoint.endswith(".static") or rule.rule.startswith("/sandbox"))]
    return sorted(rules, key=lambda rule: (rule.endpoint in SESSION_CHANGING, rule.endpoint == "auth.logout",
                                           rule.rule))


def model_views(app):
    """Flask-Admin model views by endpoint (their list filters and models)."""
    admin = app.extensions["firmsync.admin"]
    return {view.endpoint: view for view in admin._views if hasattr(view, "model")}


def parameters_of(rule, views):
    """The query or form parameters for ``rule``: the common ones plus its view's list filters."""
    view = views.get(rule.endpoint.split(".", 1)[0])
    filters = [f"flt{n}_{key}" for n, key in enumerate(sorted(getattr(view, "_filter_args", None) or {}))]
    return QUERY_PARAMETERS + tuple(filters)


def row_of(rule, views, world, last=False):
    """An id the route's view knows: the first row of its model (firm A's, created first) or,
    with ``last``, the last one (firm B's); for other routes firm A's or firm B's public file."""
    view = views.get(rule.endpoint.split(".", 1)[0])
    if view is None:
        return world.b_public if last else world.a_public
    key = sa_inspect(view.model).primary_key[0]
    return db.session.scalar(select(key).order_by(key.desc() if last else key).limit(1))


def hostile_requests(rule, values, views, world, with_valid_id):
    """``(method, url, data, label)``: every parameter set to each hostile value (GET routes,
    with ``with_valid_id``, also next to a valid firm-A id so the checks behind it run)."""
    methods = sorted(rule.methods - {"HEAD", "OPTIONS"})
    names = parameters_of(rule, views)
    known = {"id": row_of(rule, views, world), "connection_id": world.a_connection} if with_valid_id else None
    for value in values:
        path = _path(rule, value)
        label = f"{value[:30]!r}{'…' if len(value) > 30 else ''}"
        for method in methods:
            yield method, path, {name: value for name in names}, label
            if known and method == "GET":
                yield method, path, {**{name: value for name in names}, **known}, f"{label} next to a valid id"


def firm_b_requests(rule, views, world):
    """``(method, url, data, label)``: the route asked about a row of firm B (its ids in the
    URL, ``id``, ``connection_id`` and the selected rows of an action)."""
    foreign = row_of(rule, views, world, last=True)
    params = {"id": foreign, "connection_id": world.b_connection, "rowid": foreign, "dossier": world.b_public}
    for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
        yield method, _path(rule, str(foreign)), params, "a row of firm B"


def _path(rule, value):
    """The rule's path with every URL variable set to ``value`` (``int`` variables: ``value``
    when it is a whole number, else 0, an id no row has)."""
    def fill(match):
        if match.group(1) == "int":
            return value if value.isdigit() else "0"
        return value.replace("/", "_")[:200]

    return re.sub(r"<(?:(\w+)(?:\([^)]*\))?:)?\w+>", fill, rule.rule)


def firm_b_rows():
    """Firm B's rows as they stand (to see that nothing a firm-A user sent changed them)."""
    beta = db.session.scalar(select(Firm.id).where(Firm.name == "Beta Boekhouding"))
    db.session.expire_all()
    return {
        model.__name__: {row.id: [getattr(row, column.key) for column in sa_inspect(model).columns
                                  if column.key not in ("updated_at", "last_login_at")]
                         for row in db.session.scalars(select(model).where(model.firm_id == beta))}
        for model in (Dossier, Connection, DossierLink, Group, Membership, SyncRun, AuditEvent)
    }


def walk(app, client, role, world, crashes):
    """Request every route as ``role``; answer the problems found (an empty list when none)."""
    values = HOSTILE if role == "admin" else FEW
    views = model_views(app)
    token = csrf_token(client) if role != "anonymous" else None
    problems = []
    for rule in walked_rules(app):
        requests = list(hostile_requests(rule, values, views, world, with_valid_id=role == "admin"))
        if role not in ("anonymous", "support"):
            requests += firm_b_requests(rule, views, world)
        for method, path, params, label in requests:
            crashes.clear()
            if method == "GET":
                response = client.get(path, query_string=params)
            else:
                form = {**params, "csrf_token": token} if token else params
                response = client.open(path, method=method, data=form)
            where = f"{role} {method} {path} {label}"
            body = response.get_data(as_text=True)
            if response.status_code >= 500 or crashes:
                problems.append(f"{where}: {response.status_code} {crashes[0]!r:.300}" if crashes
                                else f"{where}: {response.status_code}")
                db.session.rollback()
            if TRACEBACK.search(body):
                problems.append(f"{where}: a traceback in the answer")
            if role == "anonymous" and response.status_code == 200 and rule.endpoint not in PUBLIC_ENDPOINTS:
                problems.append(f"{where}: 200 for an anonymous visitor")
            if role not in ("anonymous", "support"):
                leaked = [mark for mark in FIRM_B_MARKS if mark in body]
                if leaked:
                    problems.append(f"{where}: firm B's {leaked}")
    return problems


@pytest.mark.parametrize("role", ROLES)
def test_every_route_survives_hostile_values(app, client, world, crashes, role):
    before = firm_b_rows()
    log_in(client, role)
    problems = walk(app, client, role, world, crashes)
    assert not problems, f"{len(problems)} problem(s):\n" + "\n".join(problems[:60])
    if role != "support":
        assert firm_b_rows() == before, "a firm-A user changed firm B's rows"


def test_the_walk_covers_every_console_screen(app):
    """The walk reads the routes from the application: every console screen is in it."""
    endpoints = {rule.endpoint for rule in walked_rules(app)}
    admin = app.extensions["firmsync.admin"]
    for view in admin._views:
        assert any(endpoint.startswith(view.endpoint + ".") for endpoint in endpoints), view.endpoint
    assert "portal.index" in endpoints and "auth.login" in endpoints
    assert not any(endpoint == "static" or endpoint.endswith(".static") for endpoint in endpoints)
