"""Corporify end to end: real ``flask worker`` processes and the sandbox's Corporify emulator (the assumed API).
The first sync offers the register's data, an unchanged source gives no banner, a changed mandate holder gives
a banner naming them, an unknown or malformed enterprise number is refused when linking, a revoked key needs a
reconnect, a malformed answer or an unexpected shape fails clearly, writes nothing and leaves a diagnostic."""
import pytest

from admin_views.dossier_sync import _chosen_reference as chosen_reference
from app.access import actor_for
from app.company_profile import adopt, display, pending_changes
from app.models import CompanyProfile, Connection, ConnectionStatus, Dossier, DossierLink, RunStatus, Trigger
from app.services import diagnostics
from app.services.links import SetupError
from app.services.syncs import request_sync
from connectors.corporify import Corporify, emulator
from tests.conftest import make_user
from tests.jobs.conftest import finished

pytestmark = pytest.mark.slow

COMPANY = "c-1001"


@pytest.fixture
def corporify(db, firm, sandbox, workers):
    """``sync(what)`` runs one sync of a file linked to the Corporify entity of c-1001 and answers the run."""
    connection = Connection(firm_id=firm.id, package="corporify", kind="administration", name="Corporify",
                            config={"base_url": f"{sandbox.url}/corporify"},
                            credentials={"api_key": Corporify.spec.sandbox_settings(sandbox.url)["api_key"]})
    dossier = Dossier(firm_id=firm.id, name="Bakkerij De Gouden Korst", frequency="month", company_number="0456789012")
    db.session.add_all([connection, dossier])
    db.session.flush()
    number = emulator.enterprise_number(sandbox.state.books[COMPANY])
    db.session.add(DossierLink(firm_id=firm.id, dossier_id=dossier.id, connection_id=connection.id,
                               kind="administration", reference=number, scenario="replace"))
    db.session.commit()
    started = []

    def sync(what="the Corporify sync"):
        run = request_sync(dossier.id, Trigger.MANUAL)
        if not started:
            started.append(workers.start())
        return workers.wait_for(lambda: finished(db, run.id), timeout=120, what=what)

    def profiles():
        db.session.expire_all()
        return db.session.query(CompanyProfile).filter_by(dossier_id=dossier.id).order_by(CompanyProfile.version).all()

    sync.dossier, sync.connection, sync.profiles, sync.logs = dossier, connection, profiles, workers.logs
    return sync


def test_first_sync_then_no_banner_when_unchanged_then_a_banner_naming_a_changed_officer(db, firm, sandbox,
                                                                                       corporify):
    first = corporify("the first sync")
    assert first.status == RunStatus.SUCCEEDED, f"{first.message}\n{corporify.logs()}"
    [profile] = corporify.profiles()
    assert profile.data["name"] == "Bakkerij De Gouden Korst BV" and profile.data["registration_number"] == "0456.789.012"
    assert profile.data["capital"] == {"amount": "20000.00", "currency": "EUR"}
    assert profile.data["agm_date"] == "third Thursday of May"
    assert len(profile.data["officers"]) == 3 and profile.data["shareholders"][0]["shares"] == 150
    dossier = db.session.get(Dossier, corporify.dossier.id)
    changes = {c.field: c for c in pending_changes(dossier)}
    assert "registration_number" not in changes  # the file's own number, written without dots
    assert {"name", "vat_number", "fiscal_year_end", "agm_date", "capital", "officers", "shareholders"} <= set(changes)
    adopt(actor_for(make_user("admin@alpha.test", firm)), dossier)
    db.session.commit()
    assert pending_changes(dossier) == []

    again = corporify("the unchanged resync")
    assert again.status == RunStatus.SUCCEEDED and again.changed is False
    assert len(corporify.profiles()) == 1 and pending_changes(db.session.get(Dossier, dossier.id)) == []

    old = profile.data["officers"][2]["name"]  # a director who holds no shares
    sandbox.state.oauth[emulator.PACKAGE].rename_officer(COMPANY, old, "Marie Dubois")
    changed = corporify("the sync after a mandate change")
    assert changed.status == RunStatus.SUCCEEDED and changed.changed is True
    assert [p.version for p in corporify.profiles()] == [1, 2]
    [officers] = pending_changes(db.session.get(Dossier, dossier.id))
    assert officers.field == "officers" and "Marie Dubois" in display("officers", officers.source_value)
    assert old in display("officers", officers.adopted_value)


def test_an_unknown_or_malformed_enterprise_number_is_refused_when_linking(db, corporify):
    assert chosen_reference(corporify.connection, "BE 0567.890.123") == ("0567890123", None)  # normalised
    with pytest.raises(SetupError, match="not an enterprise number"):
        chosen_reference(corporify.connection, "1234")
    with pytest.raises(SetupError, match="no legal entity with enterprise number 0999.999.999"):
        chosen_reference(corporify.connection, "0999999999")


def test_a_revoked_key_needs_a_reconnect(db, sandbox, corporify):
    sandbox.fault("revoke", path="/corporify")
    done = corporify("the sync with a revoked key")
    assert done.status == RunStatus.NEEDS_RECONNECT, f"{done.message}\n{corporify.logs()}"
    assert "enter a current key" in done.message and "corporify-key" not in done.message
    db.session.expire_all()
    assert db.session.get(Connection, corporify.connection.id).status == ConnectionStatus.NEEDS_RECONNECT
    assert corporify.profiles() == []


def test_a_malformed_answer_fails_clearly_and_writes_nothing(db, sandbox, corporify):
    sandbox.fault("malformed", path="/corporify/api/v1/entities", count=2)  # asked again once
    done = corporify("the sync with a malformed answer")
    assert done.status == RunStatus.FAILED, done.message
    assert "Corporify" in done.message and "Traceback" not in done.message
    assert corporify.profiles() == []
    healed = corporify("the next sync")
    assert healed.status == RunStatus.SUCCEEDED and len(corporify.profiles()) == 1


def test_an_unexpected_shape_names_the_field_and_keeps_a_diagnostic(db, sandbox, corporify):
    sandbox.modes(corporify=["french_fields"])
    done = corporify("the sync of mandates in another shape")
    assert done.status == RunStatus.FAILED and "holderName" in done.message, done.message
    assert corporify.profiles() == []
    kept = diagnostics.last(corporify.connection)
    assert kept["run_id"] == done.id and kept["assumptions"]["mandate_fields"]["confidence"] == "guess"
    [mandates] = [r for r in kept["requests"] if r["path"].endswith("/mandates")]
    assert mandates["shape"]["items"][0]["titulaire"] == "string"
    assert "Conseil" not in str(kept) and "corporify-key" not in str(kept)
