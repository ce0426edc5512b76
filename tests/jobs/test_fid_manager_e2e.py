"""FID-Manager end to end: real ``flask worker`` processes and the sandbox's FID-Manager emulator (the assumed
API). The first sync offers the signalétique, an unchanged source gives no banner, a changed mandatary gives a
banner naming them, an unknown client is refused when linking, a revoked token needs a reconnect, a malformed
answer or an unexpected shape fails clearly, writes nothing and leaves a diagnostic."""
import pytest

from admin_views.dossier_sync import _chosen_reference as chosen_reference
from app.access import actor_for
from app.company_profile import adopt, display, pending_changes
from app.models import CompanyProfile, Connection, ConnectionStatus, Dossier, DossierLink, RunStatus, Trigger
from app.services import diagnostics
from app.services.connections import refresh_references
from app.services.links import SetupError
from app.services.syncs import request_sync
from connectors.fid_manager import FidManager, emulator
from tests.conftest import make_user
from tests.jobs.conftest import finished

pytestmark = pytest.mark.slow

COMPANY = "c-1001"


@pytest.fixture
def fid(db, firm, sandbox, workers):
    """``sync(what)`` runs one sync of a file linked to the FID-Manager client of c-1001 and answers the run."""
    connection = Connection(firm_id=firm.id, package="fid_manager", kind="administration", name="FID-Manager",
                            config={"base_url": f"{sandbox.url}/fid_manager/api"},
                            credentials={"api_key": FidManager.spec.sandbox_settings(sandbox.url)["api_key"]})
    dossier = Dossier(firm_id=firm.id, name="Bakkerij De Gouden Korst", frequency="month", company_number="0456789012")
    db.session.add_all([connection, dossier])
    db.session.flush()
    client = str(emulator.client_id(sandbox.state.books[COMPANY]))
    db.session.add(DossierLink(firm_id=firm.id, dossier_id=dossier.id, connection_id=connection.id,
                               kind="administration", reference=client, scenario="replace"))
    db.session.commit()
    started = []

    def sync(what="the FID-Manager sync"):
        run = request_sync(dossier.id, Trigger.MANUAL)
        if not started:
            started.append(workers.start())
        return workers.wait_for(lambda: finished(db, run.id), timeout=120, what=what)

    def profiles():
        db.session.expire_all()
        return db.session.query(CompanyProfile).filter_by(dossier_id=dossier.id).order_by(CompanyProfile.version).all()

    sync.dossier, sync.connection, sync.profiles, sync.logs = dossier, connection, profiles, workers.logs
    return sync


def test_first_sync_then_no_banner_when_unchanged_then_a_banner_naming_a_changed_mandatary(db, firm, sandbox, fid):
    first = fid("the first sync")
    assert first.status == RunStatus.SUCCEEDED, f"{first.message}\n{fid.logs()}"
    [profile] = fid.profiles()
    assert profile.data["name"] == "Bakkerij De Gouden Korst BV" and profile.data["registration_number"] == "0456.789.012"
    assert "capital" not in profile.data and "agm_date" not in profile.data  # FID-Manager keeps neither
    assert len(profile.data["officers"]) == 3 and profile.data["shareholders"][0]["shares"] == 500
    dossier = db.session.get(Dossier, fid.dossier.id)
    changes = {c.field: c for c in pending_changes(dossier)}
    assert "registration_number" not in changes and not {"capital", "agm_date"} & set(changes)
    assert {"name", "vat_number", "fiscal_year_end", "officers", "shareholders"} <= set(changes)
    adopt(actor_for(make_user("admin@alpha.test", firm)), dossier)
    db.session.commit()
    assert pending_changes(dossier) == []

    again = fid("the unchanged resync")
    assert again.status == RunStatus.SUCCEEDED and again.changed is False
    assert len(fid.profiles()) == 1 and pending_changes(db.session.get(Dossier, dossier.id)) == []

    old = profile.data["officers"][2]["name"]  # a mandatary who holds no shares
    sandbox.state.oauth[emulator.PACKAGE].rename_officer(COMPANY, old, "Marie Dubois")
    changed = fid("the sync after a mandatary change")
    assert changed.status == RunStatus.SUCCEEDED and changed.changed is True
    assert [p.version for p in fid.profiles()] == [1, 2]
    [officers] = pending_changes(db.session.get(Dossier, dossier.id))
    assert officers.field == "officers" and "Marie Dubois" in display("officers", officers.source_value)
    assert old in display("officers", officers.adopted_value)


def test_an_unknown_client_is_refused_when_linking(db, sandbox, fid):
    count, error = refresh_references(fid.connection)
    db.session.commit()
    assert error is None and count == len(sandbox.state.books)  # companies only, the person is skipped
    known = str(emulator.client_id(sandbox.state.books["c-1002"]))
    assert chosen_reference(fid.connection, known) == (known, None)
    with pytest.raises(SetupError, match="That company is not in the list of FID-Manager"):
        chosen_reference(fid.connection, "4242")


def test_a_revoked_token_needs_a_reconnect(db, sandbox, fid):
    sandbox.fault("revoke", path="/fid_manager")
    done = fid("the sync with a revoked token")
    assert done.status == RunStatus.NEEDS_RECONNECT, f"{done.message}\n{fid.logs()}"
    assert "enter a current token" in done.message and "fid-manager-token" not in done.message
    db.session.expire_all()
    assert db.session.get(Connection, fid.connection.id).status == ConnectionStatus.NEEDS_RECONNECT
    assert fid.profiles() == []


def test_a_malformed_answer_fails_clearly_and_writes_nothing(db, sandbox, fid):
    sandbox.fault("malformed", path="/fid_manager/api/v1/clients", count=2)  # asked again once
    done = fid("the sync with a malformed answer")
    assert done.status == RunStatus.FAILED, done.message
    assert "FID-Manager" in done.message and "Traceback" not in done.message
    assert fid.profiles() == []
    healed = fid("the next sync")
    assert healed.status == RunStatus.SUCCEEDED and len(fid.profiles()) == 1


def test_an_unexpected_shape_names_the_field_and_keeps_a_diagnostic(db, sandbox, fid):
    sandbox.modes(fid_manager=["dutch_fields"])
    done = fid("the sync of mandataries in another shape")
    assert done.status == RunStatus.FAILED and "“name”" in done.message, done.message
    assert fid.profiles() == []
    kept = diagnostics.last(fid.connection)
    assert kept["run_id"] == done.id and kept["assumptions"]["mandatary_fields"]["confidence"] == "guess"
    [record] = [r for r in kept["requests"] if r["path"].endswith("/clients/1001")]
    assert record["shape"]["data"]["mandataries"][0]["hoedanigheid"] == "string"
    assert "Grote Markt" not in str(kept) and "fid-manager-token" not in str(kept)
