"""End to end per package: consent through the console, then real worker syncs against the sandbox."""
import re

import pytest
from sqlalchemy import func, select

from app.models import Account, Connection, Dossier, LedgerLine, PeriodBalance, Role, RunStatus, SyncRun, Trigger
from app.services.syncs import request_sync
from tests.conftest import csrf_from, logged_in, make_user
from tests.console_world import fresh_request_globals  # noqa: F401 - autouse: a fresh `g` per request
from tests.test_oauth_flow import add_firm_connection, consent, new_client, token

pytestmark = pytest.mark.slow

#: package -> (expects ledger lines, expects balances)
PACKAGES = {"xero": (True, False), "xero_tb": (False, True), "quickbooks": (True, True), "economic": (True, True),
            "exact_online_be": (True, True)}


@pytest.fixture(autouse=True)
def sandbox_apps(app, sandbox):
    app.config["SANDBOX_URL"] = sandbox.url


def set_up(client, db, sandbox, package):
    """Connect a new client file to ``package`` through the console; answer its dossier id."""
    if package == "exact_online_be":
        client.get(consent(add_firm_connection(client, sandbox, package).location))
        connection = db.session.scalars(select(Connection).where(Connection.package == package)).one()
        data = {"name": f"Client {package}", "country": "BE", "currency": "EUR", "frequency": "month",
                "source": "direct", "package": f"connection:{connection.id}", "csrf_token": token(client)}
        data["reference"] = connection.references[0]["reference"]
        client.post("/admin/new-client/reference/", data=data)
    else:
        back = client.get(consent(new_client(client, package, name=f"Client {package}").location))
        if back.location.endswith("/oauth/choose"):
            page = client.get("/oauth/choose")
            choice = re.findall(r'name="reference" value="([^"]+)"', page.get_data(as_text=True))[0]
            client.post("/oauth/choose", data={"reference": choice, "csrf_token": csrf_from(page)})
    return db.session.scalars(select(Dossier).where(Dossier.name == f"Client {package}")).one().id


def finished(db, run_id):
    db.session.expire_all()
    run = db.session.get(SyncRun, run_id)
    return run if run.status in RunStatus.FINISHED else None


def rows(db, model, dossier_id):
    return db.session.scalar(select(func.count()).select_from(model).where(model.dossier_id == dossier_id))


def test_every_package_syncs_through_a_real_worker(client, db, firm, sandbox, workers):
    logged_in(client, make_user("admin@alpha.test", firm, Role.ADMIN))
    dossiers = {package: set_up(client, db, sandbox, package) for package in PACKAGES}
    runs = {package: db.session.scalars(select(SyncRun).where(SyncRun.dossier_id == d)).one() for package, d in dossiers.items()}
    assert all(run.trigger == Trigger.SETUP for run in runs.values())
    workers.start()
    for package, run in runs.items():
        done = workers.wait_for(lambda: finished(db, run.id), timeout=180, what=f"the {package} sync")
        assert done.status == RunStatus.SUCCEEDED, f"{package}: {done.message}\n{workers.logs()}"
        lines, balances = PACKAGES[package]
        dossier_id = dossiers[package]
        assert done.accounts_count > 0 and rows(db, Account, dossier_id) > 0, package
        if lines:
            assert done.lines_inserted > 0 and rows(db, LedgerLine, dossier_id) > 0, package
        if balances:
            assert rows(db, PeriodBalance, dossier_id) > 0, package

    for package, dossier_id in dossiers.items():
        again = request_sync(dossier_id, Trigger.MANUAL)
        second = workers.wait_for(lambda: finished(db, again.id), timeout=180, what=f"the second {package} sync")
        assert second.status == RunStatus.SUCCEEDED and second.changed is False, f"{package}: {second.message}"
