"""BoCount (Business Central) through real ``flask worker`` processes and the sandbox's emulator:
a first sync, a no-change resync, an incremental night, Entra ID tokens expiring mid-sync, a revoked
credential, 429s (a short one waited out, a long one deferring the run, which then resumes) and a
malformed answer that fails clearly, writes nothing, and heals on the next run."""
import math
from datetime import timedelta

import pytest

from app.models import Connection, ConnectionStatus, DossierLink, RunStatus, Trigger
from app.models.base import utcnow
from app.redis_connection import redis_connection
from app.services.syncs import enqueue_run, request_sync
from connectors.bocount_odata_v4 import BoCount, emulator
from tests.jobs.conftest import bookkeeping_snapshot, finished, line_count, settled

pytestmark = pytest.mark.slow

COMPANY = "c-1003"  # the small book: 20 accounts, about 40 lines
ENTRIES = "/generalLedgerEntries"


@pytest.fixture
def bocount_file(db, sandbox, workers, linked_dossier):
    """``sync(what, entra=False)`` runs one sync of a dossier linked to the small company (basic auth, or
    Entra ID); ``sync.wait(run_id, what, until)`` waits for a run."""
    book = sandbox.state.books[COMPANY]
    workers.start()
    dossiers = {}

    def dossier(entra=False):
        if entra not in dossiers:
            settings = BoCount.spec.sandbox_settings(sandbox.url)
            secret_name = "client_secret" if entra else "web_service_access_key"
            if entra:
                settings |= {"auth_method": "entra", "tenant_id": "contoso", "client_id": "bocount-sandbox-client",
                             "client_secret": "bocount-sandbox-secret",
                             "entra_login_url": f"{sandbox.url}/bocount/entra"}
            config = {k: v for k, v in settings.items() if k != secret_name}
            dossiers[entra] = linked_dossier(package="bocount_odata_v4", reference=emulator.guid(book.spec.id),
                                             config=config, credentials={secret_name: settings[secret_name]},
                                             name="Entra file" if entra else "Northwind Trading")
        return dossiers[entra]

    def sync(what="the BoCount sync", entra=False, trigger=Trigger.MANUAL):
        queued = request_sync(dossier(entra).id, trigger)
        return workers.wait_for(lambda: finished(db, queued.id), timeout=180, what=what)

    def wait(run_id, what, until=finished):
        return workers.wait_for(lambda: until(db, run_id), timeout=180, what=what)

    sync.book, sync.dossier, sync.logs, sync.wait = book, dossier, workers.logs, wait
    return sync


def test_a_first_sync_a_no_change_resync_an_incremental_night_a_429_a_bad_answer_and_a_revocation(
        db, sandbox, bocount_file):
    first = bocount_file("the first sync")
    assert first.status == RunStatus.SUCCEEDED, f"{first.message}\n{bocount_file.logs()}"
    dossier_id = bocount_file.dossier().id
    assert first.lines_inserted == line_count(db, dossier_id) == bocount_file.book.line_count
    before = bookkeeping_snapshot(db, dossier_id)
    assert before["PeriodBalance"] and before["Account"]

    # a no-change night writes nothing and reads one filtered page of G/L entries
    entries = sandbox.calls(ENTRIES)
    again = bocount_file("the no-change resync", trigger=Trigger.NIGHTLY)
    assert again.status == RunStatus.SUCCEEDED, again.message
    assert again.changed is False and again.lines_inserted == again.lines_updated == again.lines_deleted == 0
    assert bookkeeping_snapshot(db, dossier_id) == before
    assert sandbox.calls(ENTRIES) - entries == 1

    # an incremental night stores exactly the new entries, through a short 429 waited out in the run
    added = sandbox.mutate(COMPANY, add=3)["added"]
    sandbox.fault("429", path="/bocount/BC/api/v2.0/companies(", count=1, retry_after=1)
    night = bocount_file("the incremental night", trigger=Trigger.NIGHTLY)
    assert night.status == RunStatus.SUCCEEDED, night.message
    assert night.lines_inserted == len(added) > 0 and night.lines_updated == 0
    assert line_count(db, dossier_id) == bocount_file.book.line_count + len(added)
    assert not [f for f in sandbox.stats()["faults"] if f["count"]]  # the 429 was met
    before = bookkeeping_snapshot(db, dossier_id)

    # a malformed answer fails clearly and writes nothing; the next run heals
    sandbox.fault("malformed", path="/bocount/BC/api/v2.0/companies(", count=2)  # asked again once
    bad = bocount_file("the sync with a malformed answer")
    assert bad.status == RunStatus.FAILED, f"{bad.message}\n{bocount_file.logs()}"
    assert bad.error_category == "data" and "BoCount sent an answer Firmsync could not read." in bad.message
    assert "Traceback" not in bad.message and bookkeeping_snapshot(db, dossier_id) == before
    healed = bocount_file("the re-run")
    assert healed.status == RunStatus.SUCCEEDED, healed.message
    assert bookkeeping_snapshot(db, dossier_id) == before

    # the web service access key was regenerated: reconnect, nothing touched, no key in the message
    sandbox.state.oauth[emulator.PACKAGE].revoke_all()
    refused = bocount_file("the sync after the revocation")
    assert refused.status == RunStatus.NEEDS_RECONNECT, f"{refused.message}\n{bocount_file.logs()}"
    assert "BoCount" in refused.message and "reconnect" in refused.message.lower()
    assert "demo-key" not in refused.message
    link = db.session.query(DossierLink).filter_by(dossier_id=dossier_id).one()
    assert db.session.get(Connection, link.connection_id).status == ConnectionStatus.NEEDS_RECONNECT
    assert bookkeeping_snapshot(db, dossier_id) == before


def test_entra_tokens_expiring_mid_sync_are_renewed_and_the_sync_completes(db, sandbox, bocount_file):
    sandbox.modes(bocount_odata_v4=["token_expires_mid_sync"])  # every token refused after 5 calls
    done = bocount_file("the Entra sync", entra=True)
    assert done.status == RunStatus.SUCCEEDED, f"{done.message}\n{bocount_file.logs()}"
    assert line_count(db, bocount_file.dossier(entra=True).id) == bocount_file.book.line_count
    grants = sandbox.stats()["token_grants"][emulator.PACKAGE]
    accepted = sandbox.calls("/bocount/BC/") - (grants - 1)  # each renewal follows one refused call
    assert grants >= 3 and grants == math.ceil(accepted / emulator.CALLS_PER_TOKEN)
    link = db.session.query(DossierLink).filter_by(dossier_id=bocount_file.dossier(entra=True).id).one()
    assert db.session.get(Connection, link.connection_id).status == ConnectionStatus.ACTIVE


def test_a_spent_five_minute_budget_defers_the_run_which_then_resumes(db, sandbox, bocount_file):
    sandbox.budgets(bocount_odata_v4={"per_minute": 6, "window_seconds": 300})
    started = utcnow()
    queued = request_sync(bocount_file.dossier().id, Trigger.NIGHTLY)
    deferred = bocount_file.wait(queued.id, "the sync to stop", until=settled)
    assert deferred.status == RunStatus.DEFERRED, f"{deferred.message}\n{bocount_file.logs()}"
    assert deferred.error_category == "rate_limited" and deferred.finished_at is None
    # Retry-After: until the oldest call leaves Business Central's five-minute window
    assert started + timedelta(seconds=200) <= deferred.resume_at <= started + timedelta(seconds=400)
    assert sandbox.stats()["rejected"][emulator.PACKAGE] >= 1
    assert not any(bookkeeping_snapshot(db, bocount_file.dossier().id).values())  # nothing written

    # five minutes later: the window has room again, the kit's block has run out, the run resumes
    sandbox.budgets(bocount_odata_v4=emulator.DEFAULT_BUDGET)
    redis_connection().delete(*redis_connection().scan_iter("firmsync:rate:bocount_odata_v4:*"))
    enqueue_run(deferred.id)
    done = bocount_file.wait(deferred.id, "the resumed sync")
    assert done.status == RunStatus.SUCCEEDED, f"{done.message}\n{bocount_file.logs()}"
    assert line_count(db, bocount_file.dossier().id) == bocount_file.book.line_count
