"""AdminPulse end to end: real ``flask worker`` processes and the sandbox's AdminPulse emulator. The first
sync offers the company data, an unchanged source gives no banner, a renamed board member gives a banner
naming them, an unknown relation is refused when linking, a revoked key needs a reconnect and a malformed
answer fails clearly and writes nothing."""
import pytest

from app.company_profile import adopt, display, pending_changes
from app.access import actor_for
from app.models import CompanyProfile, Connection, ConnectionStatus, Dossier, DossierLink, RunStatus, Trigger
from admin_views.dossier_sync import _chosen_reference as chosen_reference
from app.services.connections import refresh_references
from app.services.links import SetupError
from app.services.syncs import request_sync
from connectors.adminpulse import AdminPulse, emulator
from tests.conftest import make_user
from tests.jobs.conftest import finished

pytestmark = pytest.mark.slow

COMPANY = "c-1001"


@pytest.fixture
def adminpulse(db, firm, sandbox, workers):
    """``sync(what)`` runs one sync of a file linked to the AdminPulse relation of c-1001 and answers the run."""
    connection = Connection(firm_id=firm.id, package="adminpulse", kind="administration", name="AdminPulse",
                            config={"base_url": f"{sandbox.url}/adminpulse"},
                            credentials={"api_key": AdminPulse.spec.sandbox_settings(sandbox.url)["api_key"]})
    dossier = Dossier(firm_id=firm.id, name="Bakkerij De Gouden Korst", frequency="month", company_number="0456789012")
    db.session.add_all([connection, dossier])
    db.session.flush()
    relation = emulator.identifier(sandbox.state.books[COMPANY])
    db.session.add(DossierLink(firm_id=firm.id, dossier_id=dossier.id, connection_id=connection.id,
                               kind="administration", reference=relation, scenario="replace"))
    db.session.commit()

    started = []

    def sync(what="the AdminPulse sync"):
        run = request_sync(dossier.id, Trigger.MANUAL)
        if not started:  # one worker per test, kept for its later syncs (stopped by the fixture)
            started.append(workers.start())
        return workers.wait_for(lambda: finished(db, run.id), timeout=120, what=what)

    def profiles():
        db.session.expire_all()
        return db.session.query(CompanyProfile).filter_by(dossier_id=dossier.id).order_by(CompanyProfile.version).all()

    sync.dossier, sync.connection, sync.profiles, sync.logs = dossier, connection, profiles, workers.logs
    return sync


def test_first_sync_then_no_banner_when_unchanged_then_a_banner_naming_a_renamed_officer(db, firm, sandbox,
                                                                                         adminpulse):
    first = adminpulse("the first sync")
    assert first.status == RunStatus.SUCCEEDED, f"{first.message}\n{adminpulse.logs()}"
    [profile] = adminpulse.profiles()
    assert profile.data["name"] == "Bakkerij De Gouden Korst BV" and profile.data["vat_number"] == "BE0456789012"
    assert profile.data["registration_number"] == "0456.789.012"
    assert profile.data["capital"] == {"amount": "18550.00", "currency": "EUR"}
    assert len(profile.data["officers"]) == 3 and profile.data["shareholders"][0]["shares"] == 60
    dossier = db.session.get(Dossier, adminpulse.dossier.id)
    changes = {c.field: c for c in pending_changes(dossier)}
    # the file's own number written without dots is the same number: not offered
    assert "registration_number" not in changes
    assert {"name", "vat_number", "fiscal_year_end", "agm_date", "capital", "officers", "shareholders"} <= set(changes)
    adopt(actor_for(make_user("admin@alpha.test", firm)), dossier)
    db.session.commit()
    assert pending_changes(dossier) == []

    again = adminpulse("the unchanged resync")
    assert again.status == RunStatus.SUCCEEDED and again.changed is False
    assert len(adminpulse.profiles()) == 1 and pending_changes(db.session.get(Dossier, dossier.id)) == []

    old = profile.data["officers"][2]["name"]  # a board member who holds no shares
    sandbox.state.oauth[emulator.PACKAGE].rename_officer(COMPANY, old, "Marie Dubois")
    changed = adminpulse("the sync after a board change")
    assert changed.status == RunStatus.SUCCEEDED and changed.changed is True
    assert [p.version for p in adminpulse.profiles()] == [1, 2]
    [officers] = pending_changes(db.session.get(Dossier, dossier.id))
    assert officers.field == "officers" and "Marie Dubois" in display("officers", officers.source_value)
    assert old in display("officers", officers.adopted_value)


def test_an_unknown_relation_is_refused_when_linking(db, sandbox, adminpulse):
    count, error = refresh_references(adminpulse.connection)
    db.session.commit()
    assert error is None and count == len(sandbox.state.books)  # companies only, the persons are skipped
    known = emulator.identifier(sandbox.state.books["c-1002"])
    assert chosen_reference(adminpulse.connection, known) == (known, None)
    with pytest.raises(SetupError, match="That company is not in the list of AdminPulse"):
        chosen_reference(adminpulse.connection, "00000000-0000-0000-0000-000000000000")


def test_a_revoked_key_needs_a_reconnect(db, sandbox, adminpulse):
    sandbox.fault("revoke", path="/adminpulse")
    done = adminpulse("the sync with a revoked key")
    assert done.status == RunStatus.NEEDS_RECONNECT, f"{done.message}\n{adminpulse.logs()}"
    assert "enter a current key" in done.message and "adminpulse-key" not in done.message
    db.session.expire_all()
    assert db.session.get(Connection, adminpulse.connection.id).status == ConnectionStatus.NEEDS_RECONNECT
    assert adminpulse.profiles() == []


def test_a_malformed_answer_fails_clearly_and_writes_nothing(db, sandbox, adminpulse):
    sandbox.fault("malformed", path="/adminpulse/companies", count=2)  # asked again once
    done = adminpulse("the sync with a malformed answer")
    assert done.status == RunStatus.FAILED, done.message
    assert "AdminPulse" in done.message and "Traceback" not in done.message
    assert adminpulse.profiles() == []
    healed = adminpulse("the next sync")
    assert healed.status == RunStatus.SUCCEEDED and len(adminpulse.profiles()) == 1


def test_a_company_without_fiscal_year_meeting_or_capital_offers_none_of_them(db, sandbox, adminpulse):
    sandbox.modes(adminpulse=["no_fiscal_year"])
    done = adminpulse("the sync of a company without a fiscal year")
    assert done.status == RunStatus.SUCCEEDED, done.message
    [profile] = adminpulse.profiles()
    assert profile.data["fiscal_year_end"] is None and "capital" not in profile.data and "agm_date" not in profile.data
    offered = {c.field for c in pending_changes(db.session.get(Dossier, adminpulse.dossier.id))}
    assert not offered & {"fiscal_year_end", "capital", "agm_date"} and "officers" in offered
