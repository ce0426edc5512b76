"""The role-by-view matrix of the console.

The expected answers are written out here, independently of the views' permission tables:
for every role and every screen, each operation is either allowed (the page answers
200, a write redirects with 302 and its effect is visible in the database) or forbidden
(403 and nothing changed). Anonymous visitors are sent to the login page (302).
"""
from datetime import date
from types import SimpleNamespace

import pytest

from app.extensions import db
from app.models import Connection, Dossier, FiscalYear, Firm, Group, Membership, SyncRun
from app.models.firm import Invitation
from connectors.base import CheckResult, CompanyRef
from tests.console_world import build_world, csrf_token, fresh_request_globals, log_in  # noqa: F401 (fixture)
from tests.test_connection_tasks import queued_job_ids, run_queued_jobs

ROLES = ("admin", "staff", "creator", "external", "pulse", "support", "anonymous")
CONSOLE = "admin staff creator external support"

#: screen -> operation -> roles allowed (space separated); anything not listed is forbidden
EXPECTED = {
    "index": {"list": CONSOLE},
    "dossiers": {
        "list": CONSOLE, "create": "admin creator", "edit": "admin staff creator", "delete": "admin",
        "export": "admin staff creator", "action:resync": "admin staff creator",
    },
    "links": {"list": CONSOLE},
    "runs": {"list": CONSOLE, "export": "admin staff creator"},
    "fiscal-years": {
        "list": CONSOLE, "create": "support", "edit": "support", "delete": "support",
        "action:lock": "support", "action:unlock": "support",
    },
    "connections": {
        "list": "admin support", "create": "admin", "edit": "admin", "delete": "admin",
        "action:check": "admin", "action:refresh_references": "admin",
    },
    "users": {"list": "admin", "create": "admin", "edit": "admin", "delete": "admin"},
    "groups": {"list": "admin", "create": "admin", "edit": "admin", "delete": "admin"},
    "firms": {"list": "admin support", "edit": "admin"},
    "audit": {"list": "admin support", "export": "admin"},
}


def expected_allowed(screen, operation, role):
    key = {"details": "list", "create_form": "create", "edit_form": "edit"}.get(operation, operation)
    return role in EXPECTED[screen].get(key, "").split()


# -- what each screen needs: target rows, valid form data, and the effect of each write ------------

def _get(model, id):
    db.session.expire_all()
    return db.session.get(model, id)


def _count(model, **where):
    db.session.expire_all()
    return db.session.query(model).filter_by(**where).count()


class Screen:
    """Per screen: the in-scope row ids and how to observe each write."""

    def __init__(self, w):
        self.w = w

    def target(self, operation):
        raise NotImplementedError


class Dossiers(Screen):
    def target(self, op):
        return self.w.a_public

    def create_data(self):
        return {"name": "Brand new file", "country": "BE", "currency": "EUR", "frequency": "month"}

    def created(self):
        return _count(Dossier, name="Brand new file") == 1

    def edit_data(self):
        return {"name": "Renamed file", "country": "BE", "currency": "EUR", "frequency": "quarter"}

    def edited(self):
        return _get(Dossier, self.w.a_public).name == "Renamed file"

    def deleted(self):
        return _get(Dossier, self.w.a_public) is None

    def acted(self, name, fakes):
        return fakes.requested == [self.w.a_public]


class Links(Screen):
    def target(self, op):
        return self.w.a_link


class Runs(Screen):
    def target(self, op):
        return self.w.a_run


class FiscalYears(Screen):
    def target(self, op):
        return self.w.a_year

    def create_data(self):
        return {"dossier": str(self.w.a_public), "start": "2025-01-01", "end": "2025-12-31"}

    def created(self):
        return _count(FiscalYear, dossier_id=self.w.a_public, start=date(2025, 1, 1), origin="support") == 1

    def edit_data(self):
        return {"dossier": str(self.w.a_public), "start": "2024-01-01", "end": "2024-12-30"}

    def edited(self):
        year = _get(FiscalYear, self.w.a_year)
        return year.end == date(2024, 12, 30) and year.origin == "support"

    def deleted(self):
        return _get(FiscalYear, self.w.a_year) is None

    def acted(self, name, fakes):
        locked = _get(FiscalYear, self.w.a_year).locked
        return locked if name == "lock" else not locked

    def prepare(self, name):
        if name == "unlock":
            year = db.session.get(FiscalYear, self.w.a_year)
            year.locked = True
            db.session.commit()


class Connections(Screen):
    def target(self, op):
        return self.w.a_spare_connection if op == "delete" else self.w.a_connection

    create_query = "?package=demo"

    def create_data(self):
        return {"name": "Second books", "base_url": "http://127.0.0.1:9/v2", "api_key": "new-key-value-123"}

    def created(self):
        connection = db.session.query(Connection).filter_by(name="Second books").one_or_none()
        return connection is not None and connection.credentials == {"api_key": "new-key-value-123"}

    def edit_data(self):
        return {"name": "Renamed books", "base_url": "http://127.0.0.1:9/v3", "api_key": ""}

    def edited(self):
        connection = _get(Connection, self.w.a_connection)
        return (connection.name == "Renamed books" and connection.config["base_url"] == "http://127.0.0.1:9/v3"
                and connection.credentials["api_key"].startswith("alpha-api-key"))

    def deleted(self):
        return _get(Connection, self.w.a_spare_connection) is None

    def acted(self, name, fakes):
        """The action only queued a job (no connector in the request); the job, run like a worker
        runs it, stores the outcome on the connection."""
        job_id = f"connection-{'check' if name == 'check' else 'references'}-{self.w.a_connection}"
        if job_id not in queued_job_ids():
            return False
        assert fakes.built == 0, "the web request built a connector"
        jobs = len(queued_job_ids())  # this action's job, and the check an earlier edit queued on save
        run_queued_jobs()
        assert fakes.built == jobs  # one per job, by the job
        fakes.built = 0
        connection = _get(Connection, self.w.a_connection)
        if name == "check":
            return connection.last_check_ok is True and connection.last_check_message == "All good"
        return connection.references == [{"reference": "R1", "name": "Company One"}]


class Users(Screen):
    def target(self, op):
        return self.w.membership_leaver if op == "delete" else self.w.membership_staff

    def create_data(self):
        return {"email": "newcomer@alpha.test", "role": "staff"}

    def created(self):
        return _count(Invitation, firm_id=self.w.alpha, email="newcomer@alpha.test") == 1  # they accept it later

    def edit_data(self):
        return {"name": "Staff Renamed", "role": "external", "multi_file_access": "y"}

    def edited(self):
        return _get(Membership, self.w.membership_staff).role == "external"

    def deleted(self):
        return _get(Membership, self.w.membership_leaver) is None


class Groups(Screen):
    def target(self, op):
        return self.w.team

    def create_data(self):
        return {"name": "Audit team", "members": [str(self.w.user_staff), str(self.w.user_creator)]}

    def created(self):
        group = db.session.query(Group).filter_by(name="Audit team").one_or_none()
        return group is not None and {u.id for u in group.members} == {self.w.user_staff, self.w.user_creator}

    def edit_data(self):
        return {"name": "Team renamed", "members": [str(self.w.user_staff)]}

    def edited(self):
        return _get(Group, self.w.team).name == "Team renamed"

    def deleted(self):
        return _get(Group, self.w.team) is None


class Firms(Screen):
    def target(self, op):
        return self.w.alpha

    def edit_data(self):
        return {"name": "Alpha & Co", "country": "BE", "timezone": "Europe/Brussels", "nightly_time": "03:30",
                "default_locale": "nl"}

    def edited(self):
        firm = _get(Firm, self.w.alpha)
        return firm.name == "Alpha & Co" and firm.nightly_time == "03:30"


class Audit(Screen):
    def target(self, op):
        return self.w.a_event


SCREENS = {
    "dossiers": Dossiers, "links": Links, "runs": Runs, "fiscal-years": FiscalYears, "connections": Connections,
    "users": Users, "groups": Groups, "firms": Firms, "audit": Audit,
}
ACTIONS = {"dossiers": ("resync",), "fiscal-years": ("lock", "unlock"), "connections": ("check", "refresh_references")}


#: operations in the order they run inside one test (writes last, delete at the very end)
def operations(screen):
    actions = tuple(f"action:{a}" for a in ACTIONS.get(screen, ()))
    return ("list", "details", "create_form", "edit_form", "export", "create", "edit") + actions + ("delete",)


def _cases():
    for role in ROLES:
        yield pytest.param("index", role, id=f"index-{role}")
        for screen in SCREENS:
            yield pytest.param(screen, role, id=f"{screen}-{role}")


@pytest.fixture
def fakes(monkeypatch):
    """No network: a fake connector (counting how often one is built) and a recording ``request_syncs``."""
    state = SimpleNamespace(requested=[], built=0)

    class FakeConnector:
        def __init__(self):
            state.built += 1

        def check(self):
            return CheckResult(ok=True, message="All good")

        def list_references(self):
            return [CompanyRef("R1", "Company One")]

    def request_syncs(dossier_ids, trigger, actor=None):
        assert trigger == "bulk"
        state.requested.extend(dossier_ids)
        return [SimpleNamespace(id=i) for i in dossier_ids], []

    monkeypatch.setattr("app.services.connections.open_connector", lambda connection, **kw: FakeConnector())
    monkeypatch.setattr("app.services.syncs.request_syncs", request_syncs)
    return state


@pytest.mark.parametrize(("screen", "role"), list(_cases()))
def test_role_matrix(client, db, fakes, screen, role):
    """Every operation of ``screen`` for ``role``: the answer and the effect match :data:`EXPECTED`."""
    world = build_world()
    log_in(client, role)
    if screen == "index":
        _assert_answer(client.get("/admin/"), role, expected_allowed("index", "list", role), "index list")
        return
    spec = SCREENS[screen](world)
    for operation in operations(screen):
        allowed = expected_allowed(screen, operation, role)
        response, effect = _perform(client, spec, screen, operation, fakes)
        what = f"{role} / {screen} / {operation}"
        _assert_answer(response, role, allowed, what)
        if effect is not None:
            assert effect() is allowed, f"{what}: the effect {'is missing' if allowed else 'happened'}"


def _perform(client, spec, screen, operation, fakes):
    """Send the request of ``operation``; answer (response, effect check or None)."""
    base = f"/admin/{screen}"
    target = spec.target(operation)
    create_query = getattr(spec, "create_query", "")
    if operation == "list":
        return client.get(f"{base}/"), None
    if operation == "details":
        return client.get(f"{base}/details/?id={target}"), None
    if operation == "create_form":
        return client.get(f"{base}/new/{create_query}"), None
    if operation == "edit_form":
        return client.get(f"{base}/edit/?id={target}"), None
    if operation == "export":
        return read_fully(client.get(f"{base}/export/csv/")), None
    token = csrf_token(client)
    if operation == "create":
        data = spec.create_data() if hasattr(spec, "create_data") else {"name": "x"}
        response = client.post(f"{base}/new/{create_query}", data={**data, "csrf_token": token})
        return response, getattr(spec, "created", None)
    if operation == "edit":
        data = spec.edit_data() if hasattr(spec, "edit_data") else {"name": "x"}
        response = client.post(f"{base}/edit/?id={target}", data={**data, "csrf_token": token})
        return response, getattr(spec, "edited", None)
    if operation == "delete":
        response = client.post(f"{base}/delete/", data={"id": str(target), "csrf_token": token})
        return response, getattr(spec, "deleted", None) or (lambda: _row_gone(screen, target))
    name = operation.split(":", 1)[1]
    if hasattr(spec, "prepare"):
        spec.prepare(name)
    response = client.post(f"{base}/action/", data={"action": name, "rowid": str(target), "csrf_token": token})
    return response, lambda: spec.acted(name, fakes)


def read_fully(response):
    """Consume a (streamed) response so its request context closes in order."""
    response.get_data()
    response.close()
    return response


def _row_gone(screen, target):
    model = {"links": None, "runs": SyncRun, "audit": None, "firms": Firm}.get(screen)
    return model is not None and _get(model, target) is None


def _assert_answer(response, role, allowed, what):
    if role == "anonymous":
        assert response.status_code == 302, what
        assert "/login" in response.headers["Location"], what
    elif allowed:
        assert response.status_code in (200, 302), f"{what}: {response.status_code} {response.get_data(as_text=True)[:1500]}"
        if response.status_code == 302:
            assert "/login" not in response.headers["Location"], what
    else:
        assert response.status_code == 403, f"{what}: {response.status_code}"
