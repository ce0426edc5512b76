"""The demo seed with the sandbox (``flask seed demo`` during ``make run``): connections to the
sandbox, linked files, files already synced (and one failing with a readable message), the
dashboard filled; idempotent; and the plain seed when the sandbox does not answer."""
import pytest
from sqlalchemy import func, select

from app.demo_seed import LINKS, sandbox_summary, seed_demo
from app.extensions import db
from app.models import (
    Account, Connection, ConnectionStatus, Dossier, DossierLink, PeriodBalance, RunStatus, SyncRun, Trigger,
)
from app.portal import key_figures
from tests.conftest import free_port


@pytest.fixture
def sandbox_app(app, sandbox, redis_db):
    app.config["SANDBOX_URL"] = sandbox.url
    return app


def counts():
    db.session.expire_all()
    return {model.__name__: db.session.scalar(select(func.count()).select_from(model))
            for model in (Connection, DossierLink, SyncRun, Account, PeriodBalance, Dossier)}


def test_the_demo_is_connected_synced_and_idempotent(sandbox_app, sandbox):
    first = seed_demo(db)
    outcome = first["sandbox"]
    assert outcome.note is None
    dossiers = first["dossiers"]

    connections = {c.package: c for c in db.session.scalars(select(Connection))}
    ready = ("twinfield", "yuki", "sage_bca", "octopus", "afas", "bocount_odata_v4", "odoo", "adminpulse", "horus",
             "fid_manager")
    assert set(connections) == {"exact_online_be", "companies_house", "demo", "xero", "winbooks_on_web", "wings_online",
                                "virk_cvr", "cegid_loop", "corporify", *ready}
    assert connections["corporify"].status == ConnectionStatus.ACTIVE  # enterprise numbers are typed when linking
    assert connections["cegid_loop"].status == ConnectionStatus.ACTIVE  # dossier codes are typed when linking
    assert connections["virk_cvr"].status == ConnectionStatus.ACTIVE  # CVR numbers are typed when linking
    assert connections["winbooks_on_web"].status == ConnectionStatus.ACTIVE  # folder codes are typed when linking
    assert connections["wings_online"].status == ConnectionStatus.ACTIVE  # dossier codes are typed when linking
    for package in (*ready, "demo"):  # ready for a demo administrator to link a file to
        assert connections[package].status == ConnectionStatus.ACTIVE and len(connections[package].references) >= 3
    exact = connections["exact_online_be"]
    assert exact.status == ConnectionStatus.ACTIVE and len(exact.references) >= 3  # several divisions
    assert exact.credentials["access_token"] and exact.credentials["client_secret"] == "exact-sandbox-secret"
    assert "client_secret" not in exact.config
    assert connections["xero"].level == "dossier" and connections["xero"].owner_dossier_id == dossiers["UK002"].id
    assert db.session.scalar(select(func.count(DossierLink.id))) == len(LINKS)

    setup = {(number, status) for number, trigger, status in outcome.runs if trigger == Trigger.SETUP}
    for number in ("BE001", "BE002", "NL001", "UK001", "UK002"):
        assert (number, RunStatus.SUCCEEDED) in setup, outcome.runs
        assert db.session.get(Dossier, dossiers[number].id).last_synced_at is not None
    assert ("FR001", RunStatus.FAILED) in setup
    failure = db.session.scalars(select(SyncRun).where(SyncRun.dossier_id == dossiers["FR001"].id)).first()
    assert "could not find this company" in failure.message
    nightly = [status for _, trigger, status in outcome.runs if trigger == Trigger.NIGHTLY]
    assert len(nightly) == len(LINKS) and set(nightly) <= {RunStatus.SUCCEEDED, RunStatus.DEFERRED, RunStatus.FAILED}

    figures = key_figures(dossiers["BE001"].id)  # what the pulse user's portal shows
    assert figures is not None and figures["revenue"] > 0
    assert "ran 14 sync(s)" in sandbox_summary(outcome)

    before = counts()
    second = seed_demo(db)
    assert second["sandbox"].runs == [] and counts() == before
    assert all(count == 0 for count in second["created"].values())
    assert db.session.get(Connection, exact.id).status == ConnectionStatus.ACTIVE  # fresh grant, same row


def test_the_dashboard_shows_the_demo_right_after_seeding(sandbox_app, sandbox, client):
    from tests.conftest import csrf_from

    seed_demo(db)
    page = client.get("/login")
    client.post("/login", data={"email": "admin@demo.firmsync.test", "password": "demo-admin-2024",
                                "csrf_token": csrf_from(page)})
    dashboard = client.get("/admin/").get_data(as_text=True)
    assert "Atelier Lumière SAS" in dashboard and "could not find this company" in dashboard
    assert 'id="nightly"' in dashboard


def test_without_the_sandbox_the_seed_still_works_and_says_why(app):
    app.config["SANDBOX_URL"] = f"http://127.0.0.1:{free_port()}"
    result = seed_demo(db)
    assert result["sandbox"].note and "does not answer" in result["sandbox"].note
    assert "Note:" in sandbox_summary(result["sandbox"])
    assert counts()["Dossier"] == 6 and counts()["Connection"] == 0 and counts()["SyncRun"] == 0
