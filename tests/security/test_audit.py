"""Every change through a console form is audited with what changed, on every screen that edits
rows (files, groups, fiscal years), including changes of who may see a file."""
from html.parser import HTMLParser

from werkzeug.datastructures import MultiDict

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import AuditEvent, Dossier, FiscalYear, Group, User
from tests.console_world import EMAILS, build_world, fresh_request_globals, log_in  # noqa: F401


@pytest.fixture
def world(db):
    return build_world()


class FormFields(HTMLParser):
    """The values an edit form would post as it is: inputs, checked boxes and selected options."""

    def __init__(self):
        super().__init__()
        self.values, self._select = [], None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        name = attrs.get("name")
        if tag == "input" and name and attrs.get("type") not in ("submit", "button"):
            if attrs.get("type") != "checkbox" or "checked" in attrs:
                self.values.append((name, attrs.get("value", "y" if attrs.get("type") == "checkbox" else "")))
        elif tag == "select":
            self._select = name
        elif tag == "option" and self._select and "selected" in attrs:
            self.values.append((self._select, attrs.get("value", "")))

    def handle_endtag(self, tag):
        if tag == "select":
            self._select = None


def edit(client, screen, row_id, change):
    """Post the edit form of ``screen`` row ``row_id`` with ``change(values)`` applied."""
    url = f"/admin/{screen}/edit/?id={row_id}"
    parser = FormFields()
    parser.feed(client.get(url).get_data(as_text=True))
    values = change([(k, v) for k, v in parser.values])
    response = client.post(url, data=MultiDict(values))
    assert response.status_code == 302, response.get_data(as_text=True)[:500]


def replace(values, name, new):
    return [(k, v) for k, v in values if k != name] + [(name, v) for v in (new if isinstance(new, list) else [new])]


def latest_event(object_type, object_id):
    db.session.expire_all()
    return db.session.scalars(select(AuditEvent).where(AuditEvent.object_type == object_type,
                                                       AuditEvent.object_id == str(object_id))
                              .order_by(AuditEvent.id.desc())).first()


def test_renaming_a_file_is_audited(client, world):
    log_in(client, "admin")
    edit(client, "dossiers", world.a_public, lambda v: replace(v, "name", "Alpha Renamed Ltd"))
    event = latest_event("Dossier", world.a_public)
    assert event is not None and event.changes["name"] == ["Alpha Public Ltd", "Alpha Renamed Ltd"]


def test_making_a_file_private_is_audited(client, world):
    log_in(client, "admin")
    edit(client, "dossiers", world.a_public, lambda v: v + [("private", "y")])
    assert latest_event("Dossier", world.a_public).changes["private"] == [False, True]


def test_granting_a_person_access_to_a_file_is_audited(client, world):
    log_in(client, "admin")
    staff = db.session.scalar(select(User).where(User.email == EMAILS["staff"]))
    edit(client, "dossiers", world.a_public, lambda v: v + [("users", str(staff.id))])
    old, new = latest_event("Dossier", world.a_public).changes["users"]
    assert str(staff) in new and str(staff) not in old


def test_changing_a_groups_members_is_audited(client, world):
    log_in(client, "admin")
    external = db.session.scalar(select(User).where(User.email == EMAILS["external"]))
    edit(client, "groups", world.team, lambda v: v + [("members", str(external.id))])
    event = latest_event("Group", world.team)
    assert event is not None
    old, new = event.changes["members"]
    assert str(external) in new and str(external) not in old
    assert db.session.get(Group, world.team).members and external in db.session.get(Group, world.team).members


def test_locking_a_fiscal_year_through_its_form_is_audited(client, world):
    log_in(client, "support")
    edit(client, "fiscal-years", world.a_year, lambda v: v + [("locked", "y")])
    assert db.session.get(FiscalYear, world.a_year).locked
    assert latest_event("FiscalYear", world.a_year).changes["locked"] == [False, True]


def test_an_unchanged_form_writes_no_event(client, world):
    log_in(client, "admin")
    before = db.session.query(AuditEvent).count()
    edit(client, "dossiers", world.a_public, lambda v: v)
    assert db.session.query(AuditEvent).count() == before
    assert db.session.get(Dossier, world.a_public).name == "Alpha Public Ltd"
