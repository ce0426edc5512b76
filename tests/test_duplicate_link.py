"""Issue #18 item 9: linking a file to a company another active file of the firm already uses
warns first ("Company 1 (C1) is already linked to file 'Alpha Public Ltd'"); the user may go on,
and the audit log records it. The browser journey is in tests/browser/test_console_paths.py."""
import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import AuditEvent, Connection, Dossier, DossierLink
from app.models.base import utcnow
from app.services.links import companies_already_linked
from tests.console_world import build_world, csrf_token, fresh_request_globals, log_in  # noqa: F401 (fixture)

WARNING = "Company 1 (C1) is already linked to file ‘Alpha Public Ltd’."


@pytest.fixture
def world(app):
    world = build_world()
    spare = db.session.get(Connection, world.a_spare_connection)  # same package (demo) as Alpha Public's link
    spare.references = [{"reference": "C1", "name": "Company 1"}, {"reference": "C2", "name": "Company 2"}]
    db.session.commit()
    return world


def set_up(client, world, **extra):
    return client.post("/admin/dossier-sync/setup", follow_redirects=True, data={
        "csrf_token": csrf_token(client), "id": world.a_grouped, "scenario": "replace",
        "connection_id": world.a_spare_connection, "reference": "C1", **extra})


def links_of(dossier_id):
    db.session.expire_all()
    return db.session.scalars(select(DossierLink).where(DossierLink.dossier_id == dossier_id,
                                                        DossierLink.ended_at.is_(None))).all()


def test_the_files_already_linked_to_a_company(world):
    grouped, spare = db.session.get(Dossier, world.a_grouped), db.session.get(Connection, world.a_spare_connection)
    assert [d.id for d in companies_already_linked(grouped, spare, "C1")] == [world.a_public]
    assert companies_already_linked(grouped, spare, "C2") == []
    # the same file's own link and another firm's file with the same reference do not count
    public = db.session.get(Dossier, world.a_public)
    assert companies_already_linked(public, spare, "C1") == []
    assert db.session.get(DossierLink, world.b_link).reference == "C1"
    # an ended link does not count either
    db.session.get(DossierLink, world.a_link).ended_at = utcnow()
    db.session.commit()
    assert companies_already_linked(grouped, spare, "C1") == []


def test_linking_warns_first_and_links_after_confirmation_with_an_audit_event(client, world):
    log_in(client, "admin")
    page = set_up(client, world).get_data(as_text=True)
    assert 'id="duplicate-warning"' in page and WARNING in page
    assert 'name="duplicate_confirmed" value="1"' in page and 'name="reference" value="C1"' in page
    assert links_of(world.a_grouped) == []  # nothing linked yet
    done = set_up(client, world, duplicate_confirmed="1").get_data(as_text=True)
    assert "is set up; its first sync is queued" in done
    [link] = links_of(world.a_grouped)
    assert link.reference == "C1"
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "sync.duplicate_company_confirmed"))
    assert event.dossier_id == world.a_grouped and event.object_id == str(link.id)
    assert event.changes["other_files"] == [world.a_public] and "Alpha Public Ltd" in event.summary


def test_a_company_no_other_file_uses_links_without_a_warning(client, world):
    log_in(client, "staff")
    page = set_up(client, world, reference="C2").get_data(as_text=True)
    assert 'id="duplicate-warning"' not in page and "is set up; its first sync is queued" in page
    assert [link.reference for link in links_of(world.a_grouped)] == ["C2"]
    assert db.session.scalar(select(AuditEvent).where(AuditEvent.action == "sync.duplicate_company_confirmed")) is None


def test_a_private_file_the_user_cannot_see_is_counted_not_named(client, world):
    public_link = db.session.get(DossierLink, world.a_link)
    public_link.ended_at = utcnow()
    db.session.add(DossierLink(firm_id=world.alpha, dossier_id=world.a_private, connection_id=world.a_connection,
                               kind="accounting", reference="C1", reference_name="Company 1"))
    db.session.commit()
    log_in(client, "staff")  # sees every non-private file, not the private one
    page = set_up(client, world).get_data(as_text=True)
    assert "Company 1 (C1) is already linked to 1 file you do not have access to." in page
    assert "Alpha Private Ltd" not in page
    assert links_of(world.a_grouped) == []
