"""End to end through a REAL worker against the sandbox: administration sync (Companies House)
and two Exact Online failures an administrator must act on."""
import time
from datetime import timedelta

import pytest
import requests

from app.company_profile import pending_changes
from app.models import CompanyProfile, Connection, ConnectionStatus, Dossier, DossierLink, RunStatus, Trigger
from app.redis_connection import redis_connection
from jobs.reaper import reap
from app.services.syncs import request_sync
from tests.connectors.test_exact_online import CLIENT_SECRET, divisions, grant_by_consent, sandbox_config
from tests.jobs.conftest import finished, run_row

pytestmark = pytest.mark.slow

TOKEN_PATH = "/exact-online/api/oauth2/token"


def linked(db, firm, *, package, kind, reference, config, credentials, name):
    connection = Connection(firm_id=firm.id, package=package, kind=kind, name=f"{name} connection",
                            config=config, credentials=credentials)
    dossier = Dossier(firm_id=firm.id, name=name, frequency="month")
    db.session.add_all([connection, dossier])
    db.session.flush()
    db.session.add(DossierLink(firm_id=firm.id, dossier_id=dossier.id, connection_id=connection.id, kind=kind,
                               reference=reference, scenario="replace"))
    db.session.commit()
    return dossier


@pytest.fixture
def companies_house_dossier(db, firm, sandbox):
    def _make(number):
        return linked(db, firm, package="companies_house", kind="administration", reference=number,
                      config={"base_url": f"{sandbox.url}/companies-house"},
                      credentials={"api_key": "companies-house-key"}, name="Northwind Trading")
    return _make


@pytest.fixture
def exact_dossier(db, firm, sandbox):
    def _make(company="c-1001", **credential_changes):
        credentials = grant_by_consent(sandbox) | {"client_secret": CLIENT_SECRET} | credential_changes
        config = {k: v for k, v in sandbox_config(sandbox).items() if k != "client_secret"}
        return linked(db, firm, package="exact_online_be", kind="accounting", reference=divisions(sandbox)[company],
                      config=config, credentials=credentials, name="Bakkerij De Gouden Korst")
    return _make


def poll(predicate, what, timeout=20):
    """Wait for ``predicate`` while no worker runs (``workers.wait_for`` stops when all are dead)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def companies_house_numbers(sandbox):
    return {row["company"]: (row["number"], row["name"]) for row in
            requests.get(f"{sandbox.url}/_sandbox/companies-house/companies", timeout=10).json()}


def test_companies_house_link_stores_a_snapshot_shows_the_banner_and_a_resync_stores_nothing(
        db, workers, sandbox, companies_house_dossier):
    number, name = companies_house_numbers(sandbox)["c-1003"]
    dossier = companies_house_dossier(number)
    run = request_sync(dossier.id, Trigger.MANUAL)
    workers.start()
    done = workers.wait_for(lambda: finished(db, run.id), what="the administration sync")
    assert done.status == RunStatus.SUCCEEDED, done.message
    assert done.changed is True and done.api_calls >= 3  # profile, officers, persons with significant control

    profiles = db.session.query(CompanyProfile).filter_by(dossier_id=dossier.id).all()
    assert [p.version for p in profiles] == [1]
    assert profiles[0].data["name"] == name.upper() and profiles[0].data["registration_number"] == number
    assert len(profiles[0].data["officers"]) >= 3
    changes = {c.field: c for c in pending_changes(db.session.get(Dossier, dossier.id))}
    assert changes["name"].adopted_value == "Northwind Trading" and changes["name"].source_value == name.upper()
    assert {"registration_number", "fiscal_year_end", "officers", "shareholders"} <= set(changes)

    again = request_sync(dossier.id, Trigger.MANUAL)
    second = workers.wait_for(lambda: finished(db, again.id), what="the second sync")
    assert second.status == RunStatus.SUCCEEDED and second.changed is False
    db.session.expire_all()
    assert db.session.query(CompanyProfile).filter_by(dossier_id=dossier.id).count() == 1


def test_an_unknown_company_number_fails_the_run_with_a_readable_message(db, workers, sandbox, companies_house_dossier):
    known = {number for number, _ in companies_house_numbers(sandbox).values()}
    missing = next(n for n in ("00000001", "00000002", "00000003") if n not in known)
    dossier = companies_house_dossier(missing)
    run = request_sync(dossier.id, Trigger.MANUAL)
    workers.start()
    done = workers.wait_for(lambda: finished(db, run.id), what="the sync")
    assert done.status == RunStatus.FAILED
    assert done.message == f"Companies House has no company with number {missing}."
    assert db.session.query(CompanyProfile).filter_by(dossier_id=dossier.id).count() == 0


def test_exact_division_removed_from_the_grant_fails_with_instructions(db, workers, sandbox, exact_dossier):
    dossier = exact_dossier()
    division = divisions(sandbox)["c-1001"]
    requests.post(f"{sandbox.url}/_sandbox/exact-online/divisions/{division}/remove", timeout=10).raise_for_status()
    run = request_sync(dossier.id, Trigger.MANUAL)
    workers.start()
    done = workers.wait_for(lambda: finished(db, run.id), what="the sync")
    assert done.status == RunStatus.FAILED and done.error_category == "not_found"
    assert f"division {division}" in done.message and "access list" in done.message
    assert "Traceback" not in done.message
    link = db.session.get(DossierLink, done.link_id)
    assert db.session.get(Connection, link.connection_id).status == ConnectionStatus.ACTIVE  # a division problem only


def test_exact_rotated_refresh_token_lost_when_the_worker_dies_mid_refresh_needs_reconnect(
        db, workers, sandbox, exact_dossier):
    """The access token has expired; the worker asks for a new one, Exact (the sandbox) rotates
    the refresh token, but the worker is killed before the answer arrives: the new refresh
    token is lost. Exact has no grace period for the old one, so the retry ends
    ``needs_reconnect`` with a message for the administrator (no silent retry loop)."""
    dossier = exact_dossier(expires_at=1)  # expired long ago: the first call refreshes
    link = dossier.links[0]
    stored_refresh = link.connection.credentials["refresh_token"]
    token_calls = sandbox.calls(TOKEN_PATH)  # the consent flow's code exchange
    sandbox.fault("slow", path=TOKEN_PATH, count=1, delay=3)
    run = request_sync(dossier.id, Trigger.MANUAL)
    worker = workers.start()
    workers.wait_for(lambda: sandbox.calls(TOKEN_PATH) > token_calls, what="the token refresh to start")
    workers.kill(worker)  # the answer to the refresh never reaches Firmsync
    poll(lambda: sandbox.stats()["token_refreshes"].get("exact_online") == 1, "the sandbox to rotate the token")
    db.session.expire_all()
    connection = db.session.get(Connection, link.connection_id)
    assert connection.credentials["refresh_token"] == stored_refresh  # the rotated one is lost

    result = reap(now=run_row(db, run.id).started_at + timedelta(minutes=30))
    assert result["reaped"] == [run.id]
    retry_id = result["retries"][0]
    # the killed worker's connection lock expires after its 30 s TTL; spare the test the wait
    for key in redis_connection().scan_iter(f"*connection-lock:{connection.id}"):
        redis_connection().delete(key)
    workers.start()
    done = workers.wait_for(lambda: finished(db, retry_id), timeout=90, what="the retry")
    assert done.status == RunStatus.NEEDS_RECONNECT
    assert "reconnect" in done.message and stored_refresh not in done.message
    db.session.expire_all()
    assert db.session.get(Connection, connection.id).status == ConnectionStatus.NEEDS_RECONNECT
    assert sandbox.stats()["token_refreshes"]["exact_online"] == 2  # one lost answer, one refused reuse

    # later syncs stop at once, without calling Exact, until an administrator reconnects
    calls_before = sandbox.stats()["total_calls"]
    later = request_sync(dossier.id, Trigger.MANUAL)
    refused = workers.wait_for(lambda: finished(db, later.id), what="the refused run")
    assert refused.status == RunStatus.NEEDS_RECONNECT and "must be reconnected" in refused.message
    assert sandbox.stats()["total_calls"] == calls_before


def test_a_failed_administration_sync_leaves_the_bookkeeping_status_intact(db, firm, workers, sandbox, client,
                                                                           companies_house_dossier):
    """Issue #18 item 5: an unknown register number fails the company-data sync only."""
    from app.company_profile import sync_statuses
    from app.models import SyncRun

    known = {number for number, _ in companies_house_numbers(sandbox).values()}
    missing = next(n for n in ("00000001", "00000002", "00000003") if n not in known)
    dossier = companies_house_dossier(missing)
    books = Connection(firm_id=firm.id, package="demo", kind="accounting", name="Demo office",
                       config={"base_url": f"{sandbox.url}/demo"}, credentials={"api_key": "demo-key"})
    db.session.add(books)
    db.session.flush()
    accounting = DossierLink(firm_id=firm.id, dossier_id=dossier.id, connection_id=books.id, kind="accounting",
                             reference="c-1001", scenario="replace")
    db.session.add(accounting)
    db.session.flush()
    db.session.add(SyncRun(firm_id=firm.id, dossier_id=dossier.id, link_id=accounting.id,
                           status=RunStatus.SUCCEEDED))  # the bookkeeping synced fine before
    dossier.sync_status = RunStatus.SUCCEEDED
    db.session.commit()
    assert sync_statuses([dossier.id])[dossier.id] == {"bookkeeping": RunStatus.SUCCEEDED, "company_data": None}

    administration = db.session.scalar(db.select(DossierLink).where(DossierLink.dossier_id == dossier.id,
                                                                    DossierLink.kind == "administration"))
    run = request_sync(dossier.id, Trigger.MANUAL, link_id=administration.id)
    workers.start()
    done = workers.wait_for(lambda: finished(db, run.id), what="the administration sync")
    assert done.status == RunStatus.FAILED and done.link_id == administration.id
    db.session.expire_all()
    assert sync_statuses([dossier.id])[dossier.id] == {"bookkeeping": RunStatus.SUCCEEDED,
                                                       "company_data": RunStatus.FAILED}
    assert db.session.get(Dossier, dossier.id).sync_status == RunStatus.SUCCEEDED  # the file's own status
    from tests.conftest import login, make_user
    make_user("books-admin@alpha.test", firm)
    assert login(client, "books-admin@alpha.test").status_code == 302
    page = client.get(f"/admin/dossier/?id={dossier.id}").get_data(as_text=True)
    assert 'id="company-data-status"' in page and 'data-status="failed"' in page.split('id="company-data-status"')[1]
    assert 'data-status="succeeded"' in page.split('id="dossier-status"')[1].split("</span>")[0]
    files = client.get("/admin/dossiers/").get_data(as_text=True)
    assert 'fs-company-data">Company data: <span class="badge badge-danger fs-status" data-status="failed"' in files
