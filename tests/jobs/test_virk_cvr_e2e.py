"""Virk CVR end to end: real ``flask worker`` processes and the sandbox's CVR index (gzip answers, history
periods, mixed time zones). The first sync offers the register's current values, an unchanged register gives no
banner, a renamed board member gives a banner naming them, an unknown or mistyped CVR number is refused when
linking, revoked credentials need a reconnect and a malformed answer fails clearly and writes nothing."""
import pytest
import requests

from admin_views.dossier_sync import _chosen_reference as chosen_reference
from app.access import actor_for
from app.company_profile import adopt, display, pending_changes
from app.models import CompanyProfile, Connection, ConnectionStatus, Dossier, DossierLink, RunStatus, Trigger
from app.services.links import SetupError
from app.services.syncs import request_sync
from connectors.virk_cvr import VirkCvr, emulator
from tests.conftest import make_user
from tests.jobs.conftest import finished

pytestmark = pytest.mark.slow

COMPANY = "c-1002"


def cvr_numbers(sandbox):
    return {row["company"]: row["cvr"] for row in requests.get(f"{sandbox.url}/_sandbox/virk/companies", timeout=10).json()}


@pytest.fixture
def virk(db, firm, sandbox, workers):
    """``sync(what)`` runs one sync of a file linked to the CVR number of c-1002 and answers the run."""
    settings = VirkCvr.spec.sandbox_settings(sandbox.url)
    connection = Connection(firm_id=firm.id, package="virk_cvr", kind="administration", name="CVR",
                            config={"base_url": settings["base_url"], "username": settings["username"]},
                            credentials={"password": settings["password"]})
    dossier = Dossier(firm_id=firm.id, name="Janssens & Co Architecten", frequency="month")
    db.session.add_all([connection, dossier])
    db.session.flush()
    db.session.add(DossierLink(firm_id=firm.id, dossier_id=dossier.id, connection_id=connection.id,
                               kind="administration", reference=cvr_numbers(sandbox)[COMPANY], scenario="replace"))
    db.session.commit()

    started = []

    def sync(what="the CVR sync"):
        run = request_sync(dossier.id, Trigger.MANUAL)
        if not started:  # one worker per test, kept for its later syncs (stopped by the fixture)
            started.append(workers.start())
        return workers.wait_for(lambda: finished(db, run.id), timeout=120, what=what)

    def profiles():
        db.session.expire_all()
        return db.session.query(CompanyProfile).filter_by(dossier_id=dossier.id).order_by(CompanyProfile.version).all()

    sync.dossier, sync.connection, sync.profiles, sync.logs = dossier, connection, profiles, workers.logs
    return sync


def test_first_sync_then_no_banner_when_unchanged_then_a_banner_naming_a_renamed_officer(db, firm, sandbox, virk):
    first = virk("the first sync")
    assert first.status == RunStatus.SUCCEEDED, f"{first.message}\n{virk.logs()}"
    [profile] = virk.profiles()
    data = profile.data
    assert data["name"] == "Janssens & Co Architecten" and data["legal_form"] == "Anpartsselskab"
    assert data["capital"] == {"amount": "80000.00", "currency": "DKK"}  # the current capital, not the former one
    book = sandbox.state.books[COMPANY]
    assert data["fiscal_year_end"] == f"{book.fiscal_years[-1][1]:%m-%d}"  # the company's April-March year
    assert len(data["officers"]) == 3 and all(o["name"] and o["start"] for o in data["officers"])
    assert "Tidligere Medlem" not in display("officers", data["officers"])
    assert [s["percentage"] for s in data["shareholders"]] == ["60", "40"]
    dossier = db.session.get(Dossier, virk.dossier.id)
    # the register's name equals the file's: no banner for it
    assert "name" not in {c.field for c in pending_changes(dossier)}
    adopt(actor_for(make_user("admin@alpha.test", firm)), dossier)
    db.session.commit()
    assert pending_changes(dossier) == []

    again = virk("the unchanged resync")
    assert again.status == RunStatus.SUCCEEDED and again.changed is False
    assert len(virk.profiles()) == 1 and pending_changes(db.session.get(Dossier, dossier.id)) == []

    old = data["officers"][2]["name"]  # a board member who holds no shares
    sandbox.state.oauth[emulator.PACKAGE].rename_officer(COMPANY, old, "Ida Poulsen")
    changed = virk("the sync after a board change")
    assert changed.status == RunStatus.SUCCEEDED and changed.changed is True
    [officers] = pending_changes(db.session.get(Dossier, dossier.id))
    assert officers.field == "officers" and "Ida Poulsen" in display("officers", officers.source_value)
    assert old in display("officers", officers.adopted_value)


def test_an_unknown_or_mistyped_cvr_number_is_refused_when_linking(db, sandbox, virk):
    known = cvr_numbers(sandbox)["c-1001"]
    assert chosen_reference(virk.connection, f"DK {known[:4]} {known[4:]}") == (known, None)  # normalised
    with pytest.raises(SetupError, match="8 digits"):
        chosen_reference(virk.connection, "1234")
    unknown = next(n for n in ("12345678", "23456789", "34567890") if n not in cvr_numbers(sandbox).values())
    with pytest.raises(SetupError, match=f"no company with CVR number {unknown}"):
        chosen_reference(virk.connection, unknown)


def test_revoked_credentials_need_a_reconnect(db, sandbox, virk):
    sandbox.fault("revoke", path="/virk")
    done = virk("the sync with revoked credentials")
    assert done.status == RunStatus.NEEDS_RECONNECT, f"{done.message}\n{virk.logs()}"
    assert "Danish Business Authority" in done.message and "virk-password" not in done.message
    db.session.expire_all()
    assert db.session.get(Connection, virk.connection.id).status == ConnectionStatus.NEEDS_RECONNECT
    assert virk.profiles() == []


def test_a_malformed_answer_fails_clearly_and_writes_nothing(db, sandbox, virk):
    sandbox.fault("malformed", path="/virk/cvr-permanent")
    done = virk("the sync with a malformed answer")
    assert done.status == RunStatus.FAILED, done.message
    assert "Traceback" not in done.message and done.message
    assert virk.profiles() == []
    healed = virk("the next sync")
    assert healed.status == RunStatus.SUCCEEDED and len(virk.profiles()) == 1
