"""End to end per package, derived from the registry: every accounting package that the
sandbox emulates (its spec declares a ``sandbox_config``) is connected through the
console (a firm connection, or the new-client wizard's consent for dossier-level packages),
then synced twice by a real worker. A new package folder is covered here with no edit.

Administration packages sync company profiles, not figures: tests/jobs/test_admin_sync_e2e.py.
"""
import re

import pytest
from sqlalchemy import func, select

from app.models import (Account, Connection, Dossier, LedgerLine, PeriodBalance, Role, RunStatus, SyncRun,
                        Trigger)
from app.services.connections import refresh_references
from app.services.syncs import request_sync
from connectors.base import ACCOUNTING, DOSSIER, BalanceRecord, LedgerLineRecord
from connectors.registry import all_connectors
from tests.conftest import csrf_from, logged_in, make_user
from tests.console_world import fresh_request_globals  # noqa: F401 - autouse: a fresh `g` per request
from tests.test_oauth_flow import add_firm_connection, consent, new_client, token
from tests.jobs.conftest import finished

pytestmark = pytest.mark.slow


def emulated_accounting_packages():
    """Keys of the accounting packages whose spec points a connection at the sandbox."""
    return [key for key, cls in all_connectors().items()
            if cls.spec.kind == ACCOUNTING and cls.spec.sandbox_config
            and not key.startswith("demo")]  # the demo packages have end-to-end tests of their own


PACKAGES = emulated_accounting_packages()


@pytest.fixture(autouse=True)
def sandbox_apps(app, sandbox):
    app.config["SANDBOX_URL"] = sandbox.url


def firm_connection(client, db, sandbox, spec):
    """An administrator adds the firm connection with the sandbox's settings (and consents)."""
    answer = add_firm_connection(client, sandbox, spec.key, name=f"{spec.display_name} office")
    if spec.auth.consent:
        client.get(consent(answer.location))
    connection = db.session.scalars(select(Connection).where(Connection.package == spec.key)).one()
    if not connection.references:
        refresh_references(connection)
        db.session.commit()
    return connection


def set_up(client, db, sandbox, key):
    """Connect a new client file to package ``key`` through the console; answer its dossier id."""
    spec = all_connectors()[key].spec
    name = f"Client {key}"
    if spec.level == DOSSIER:
        back = client.get(consent(new_client(client, key, name=name).location))
        if back.location.endswith("/oauth/choose"):
            page = client.get("/oauth/choose")
            choice = re.findall(r'name="reference" value="([^"]+)"', page.get_data(as_text=True))[0]
            client.post("/oauth/choose", data={"reference": choice, "csrf_token": csrf_from(page)})
    else:
        connection = firm_connection(client, db, sandbox, spec)
        client.post("/admin/new-client/reference/", data={
            "name": name, "country": "BE", "currency": "EUR", "frequency": "month", "source": "direct",
            "package": f"connection:{connection.id}", "reference": connection.references[0]["reference"],
            "csrf_token": token(client)})
    return db.session.scalars(select(Dossier).where(Dossier.name == name)).one().id


def rows(db, model, dossier_id):
    return db.session.scalar(select(func.count()).select_from(model).where(model.dossier_id == dossier_id))


def test_the_registry_gives_this_test_its_packages():
    assert {"xero", "xero_tb", "quickbooks", "economic", "exact_online_be"} <= set(PACKAGES)


def test_every_package_syncs_through_a_real_worker(client, db, firm, sandbox, workers):
    logged_in(client, make_user("admin@alpha.test", firm, Role.ADMIN))
    dossiers = {key: set_up(client, db, sandbox, key) for key in PACKAGES}
    runs = {key: db.session.scalars(select(SyncRun).where(SyncRun.dossier_id == d)).one() for key, d in dossiers.items()}
    assert all(run.trigger == Trigger.SETUP for run in runs.values())
    workers.start()
    for key, run in runs.items():
        done = workers.wait_for(lambda: finished(db, run.id), timeout=180, what=f"the {key} sync")
        assert done.status == RunStatus.SUCCEEDED, f"{key}: {done.message}\n{workers.logs()}"
        kinds = {stream.record_type for stream in all_connectors()[key].streams}
        dossier_id = dossiers[key]
        assert done.accounts_count > 0 and rows(db, Account, dossier_id) > 0, key
        if LedgerLineRecord in kinds:
            assert done.lines_inserted > 0 and rows(db, LedgerLine, dossier_id) > 0, key
        if BalanceRecord in kinds or LedgerLineRecord in kinds:  # balances come from the lines when not sent
            assert rows(db, PeriodBalance, dossier_id) > 0, key

    for key, dossier_id in dossiers.items():
        again = request_sync(dossier_id, Trigger.MANUAL)
        second = workers.wait_for(lambda: finished(db, again.id), timeout=180, what=f"the second {key} sync")
        assert second.status == RunStatus.SUCCEEDED and second.changed is False, f"{key}: {second.message}"
