"""A small world of two firms for the console tests (roles, isolation, security).

Firm A ("Alpha") has one user per role, groups, three dossiers (one public, one private,
one granted to a group), two connections (one linked), a link, a run, a fiscal year and
an audit event. Firm B ("Beta") has the same kind of rows, which firm A must never reach.
Passwords use a cheap hash so hundreds of logins stay fast.
"""
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cache

import pytest
from flask import g
from jinja2 import FileSystemBytecodeCache
from werkzeug.security import generate_password_hash

from app.extensions import db
from app.models import (
    AuditEvent, Connection, Dossier, DossierLink, FiscalYear, Firm, Group, Membership, Role, SyncRun, User,
)
from tests.conftest import PASSWORD, csrf_from, login

SECRET_A = "alpha-api-key-5ecret-value"
SECRET_B = "beta-api-key-5ecret-value"

#: role name used in the tests -> e-mail of the user in firm A
EMAILS = {
    "admin": "admin@alpha.test",
    "staff": "staff@alpha.test",
    "creator": "creator@alpha.test",
    "external": "external@alpha.test",
    "pulse": "pulse@alpha.test",
    "support": "support@firmsync.test",
}


_TEMPLATE_CACHE = {}


@pytest.fixture(autouse=True)
def fresh_request_globals(app, tmp_path_factory):
    """Forget the previous request's ``g`` values at the start of each test request.

    The ``app`` fixture keeps one application context for the whole test, so every test
    client request shares its ``g``: Flask-WTF would reuse a CSRF token cached there (the
    session no longer holds it after login clears the session) and Flask-Login a cached
    user. In production each request has its own context; this restores that.
    """
    # each test builds a new app: keep compiled templates across them (speed only)
    if "cache" not in _TEMPLATE_CACHE:
        _TEMPLATE_CACHE["cache"] = FileSystemBytecodeCache(str(tmp_path_factory.mktemp("jinja")))
    app.jinja_env.bytecode_cache = _TEMPLATE_CACHE["cache"]

    @app.before_request
    def _forget_previous_request():
        for key in ("csrf_token", "_login_user"):
            g.pop(key, None)


@cache
def cheap_hash():
    return generate_password_hash(PASSWORD, method="pbkdf2:sha256:1000")


def add_user(email, firm=None, role=Role.STAFF, **flags):
    user = User(email=email, name=email.split("@")[0].title(), password_hash=cheap_hash(),
                is_support=flags.pop("support", False))
    db.session.add(user)
    if firm is not None:
        db.session.add(Membership(user=user, firm=firm, role=role, **flags))
    return user


@dataclass
class World:
    ids: dict = field(default_factory=dict)

    def __getattr__(self, name):
        try:
            return self.ids[name]
        except KeyError:
            raise AttributeError(name) from None


def _firm_rows(firm, prefix, secret, admin):
    connection = Connection(firm=firm, package="demo", kind="accounting", level="firm", name=f"{prefix} Demo Books",
                            config={"base_url": "http://127.0.0.1:9/api"}, credentials={"api_key": secret})
    spare = Connection(firm=firm, package="demo", kind="accounting", level="firm", name=f"{prefix} spare connection",
                       config={"base_url": "http://127.0.0.1:9/api"}, credentials={"api_key": secret + "-spare"})
    public = Dossier(firm=firm, name=f"{prefix} Public Ltd", number=f"{prefix[0]}-001", country="BE")
    private = Dossier(firm=firm, name=f"{prefix} Private Ltd", number=f"{prefix[0]}-002", private=True, country="NL")
    grouped = Dossier(firm=firm, name=f"{prefix} Grouped Ltd", number=f"{prefix[0]}-003", country="BE")
    db.session.add_all([connection, spare, public, private, grouped])
    db.session.flush()
    link = DossierLink(firm_id=firm.id, dossier=public, connection=connection, reference="C1", reference_name="Company 1")
    db.session.add(link)
    db.session.flush()
    run = SyncRun(firm_id=firm.id, dossier_id=public.id, link_id=link.id, status="succeeded",
                  started_at=datetime(2025, 1, 1, 2, 0), finished_at=datetime(2025, 1, 1, 2, 1), message=f"{prefix} run")
    year = FiscalYear(dossier_id=public.id, start=date(2024, 1, 1), end=date(2024, 12, 31), origin="sync")
    event = AuditEvent(firm_id=firm.id, user_id=admin.id, action="create", object_type="Dossier",
                       object_id=str(public.id), summary=f"{prefix} audit event")
    db.session.add_all([run, year, event])
    db.session.flush()
    return dict(connection=connection.id, spare_connection=spare.id, public=public.id, private=private.id,
                grouped=grouped.id, link=link.id, run=run.id, year=year.id, event=event.id), public, grouped


def build_world():
    """Create both firms and commit; answer a :class:`World` of ids."""
    alpha, beta = Firm(name="Alpha Accountants"), Firm(name="Beta Boekhouding")
    db.session.add_all([alpha, beta])
    users = {
        "admin": add_user(EMAILS["admin"], alpha, Role.ADMIN),
        "staff": add_user(EMAILS["staff"], alpha, Role.STAFF, multi_file_access=True),
        "creator": add_user(EMAILS["creator"], alpha, Role.STAFF, can_create_files=True, multi_file_access=True),
        "external": add_user(EMAILS["external"], alpha, Role.EXTERNAL),
        "pulse": add_user(EMAILS["pulse"], alpha, Role.PULSE),
        "support": add_user(EMAILS["support"], support=True),
        "leaver": add_user("leaver@alpha.test", alpha, Role.STAFF),
        "admin_b": add_user("admin@beta.test", beta, Role.ADMIN),
        "staff_b": add_user("staff@beta.test", beta, Role.STAFF),
    }
    db.session.flush()
    a_rows, a_public, a_grouped = _firm_rows(alpha, "Alpha", SECRET_A, users["admin"])
    b_rows, b_public, b_grouped = _firm_rows(beta, "Beta", SECRET_B, users["admin_b"])
    # firm A: the external user is granted the public file directly, the grouped file through a group
    a_public.users.append(users["external"])
    a_public.users.append(users["pulse"])
    externals = Group(firm=alpha, name="Externals", members=[users["external"]])
    team = Group(firm=alpha, name="Team", members=[users["staff"]])
    b_group = Group(firm=beta, name="Beta team", members=[users["staff_b"]])
    db.session.add_all([externals, team, b_group])
    db.session.flush()
    a_grouped.groups.append(externals)
    db.session.commit()

    ids = {"alpha": alpha.id, "beta": beta.id, "externals": externals.id, "team": team.id, "b_group": b_group.id}
    ids.update({f"user_{name}": user.id for name, user in users.items()})
    ids.update({f"membership_{name}": user.memberships[0].id for name, user in users.items() if user.memberships})
    ids.update({f"a_{k}": v for k, v in a_rows.items()})
    ids.update({f"b_{k}": v for k, v in b_rows.items()})
    return World(ids)


def log_in(client, role):
    """Log ``client`` in as the firm-A user of ``role`` (anonymous: stay logged out)."""
    if role != "anonymous":
        response = login(client, EMAILS[role])
        assert response.status_code == 302, response.get_data(as_text=True)[:300]
    return client


def csrf_token(client):
    """A valid CSRF token for the client's current session, whoever is logged in."""
    for url in ("/admin/", "/portal/", "/login"):
        response = client.get(url)
        if response.status_code == 200 and 'name="csrf_token"' in response.get_data(as_text=True):
            return csrf_from(response)
    raise AssertionError("no page rendered a CSRF token")
