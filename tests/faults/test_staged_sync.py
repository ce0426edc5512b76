"""Staging on SQLite with real workers (docs/sync-engine.md, "Staging on SQLite"): the console
stays usable while a sync fetches, and a work horse killed while fetching or while writing
leaves the data as it was, its spool swept by the retry that heals the dossier.

The sync is held where the test wants it by a gate in front of the sandbox (which runs in
this process): the gated ledger page is answered only when the test opens the gate, so
what the test does meanwhile happens while the sync is still fetching, by construction.
"""
import os
import sqlite3

import pytest
from sqlalchemy import create_engine, text

from app.models import Dossier, RunStatus, SyncRun, Trigger
from app.services.syncs import request_sync
from jobs import progress as progress_module
from jobs import staging
from tests.conftest import make_user
from tests.faults.conftest import hold_the_writing
from tests.console_world import csrf_token, fresh_request_globals  # noqa: F401 - fresh g per test request
from tests.faults.test_sync_faults import (FAST, LEDGER, assert_like_a_clean_sync, company, fast_reaper,  # noqa: F401
                                           heal, kill_horse, progress_of)
from tests.jobs.conftest import finished, line_count, run_row

pytestmark = pytest.mark.slow


def spools_of(app, dossier_id):
    folder = os.path.join(app.instance_path, staging.SPOOL_FOLDER)
    names = os.listdir(folder) if os.path.isdir(folder) else []
    return [name for name in names if name.startswith(f"dossier-{dossier_id}-run-")]


def test_the_console_works_while_a_sync_fetches(app, db, workers, company, sandbox, linked_dossier, gate, as_user,
                                                firm):
    dossier = company()
    other = linked_dossier(package="demo", reference="c-1003", name="Northwind Trading", **company.settings)
    client = as_user(make_user("admin@alpha.test", firm).email)
    held = gate(LEDGER)
    run_id = request_sync(dossier.id, Trigger.MANUAL).id
    workers.start(**FAST)
    workers.wait_for(held.reached.is_set, what="the sync to fetch the second ledger page")

    sync_now = client.post("/admin/dossier/sync", data={"id": other.id, "csrf_token": csrf_token(client)})
    edit = client.post(f"/admin/dossiers/edit/?id={dossier.id}", data={
        "name": "Janssens Architecten BV", "country": dossier.country, "currency": dossier.currency,
        "frequency": dossier.frequency, "csrf_token": csrf_token(client)})

    fetching = run_row(db, run_id)  # the gate is still closed: the sync cannot have gone on
    assert fetching.status == RunStatus.RUNNING and fetching.data_committed_at is None
    assert progress_of(run_id).get("stream") == "ledger_lines"
    assert sync_now.status_code == 302 and edit.status_code == 302, edit.get_data(as_text=True)[:500]
    assert db.session.get(Dossier, dossier.id).name == "Janssens Architecten BV"
    queued = db.session.query(SyncRun).filter_by(dossier_id=other.id).one()
    assert queued.status == RunStatus.QUEUED and queued.trigger == Trigger.MANUAL

    held.open()
    done = workers.wait_for(lambda: finished(db, run_id), what="the gated sync")
    assert done.status == RunStatus.SUCCEEDED and line_count(db, dossier.id) == 2000, done.message
    assert workers.wait_for(lambda: finished(db, queued.id), what="the other file's sync").status == RunStatus.SUCCEEDED
    assert db.session.get(Dossier, dossier.id).name == "Janssens Architecten BV"
    assert spools_of(app, dossier.id) == [] and spools_of(app, other.id) == []


@pytest.mark.parametrize("phase", ["fetch", "write"])
def test_a_staged_sync_killed_while_fetching_or_writing_heals_and_its_spool_is_swept(
        app, db, workers, company, sandbox, clean_sync_snapshot, fast_reaper, gate, phase):
    dossier = company()
    held = gate(LEDGER)
    run_id = request_sync(dossier.id, Trigger.MANUAL).id
    worker = workers.start(**FAST, SYNC_STAGE_BEFORE_WRITE="true")  # "auto" stages on SQLite only
    workers.wait_for(held.reached.is_set, what="the sync to fetch the second ledger page")
    release = lambda: None  # noqa: E731
    try:
        if phase == "write":
            release = hold_the_writing(db, dossier.links[0].id)
            held.open()
            workers.wait_for(lambda: progress_of(run_id).get("stream") == progress_module.WRITING,
                             what="the sync to start writing")
        kill_horse(worker)
    finally:
        release()
        held.open()
    assert line_count(db, dossier.id) == 0
    assert len(spools_of(app, dossier.id)) == 1  # the killed run's spool, left behind
    healed = heal(db, workers, dossier.id)
    assert run_row(db, run_id).status == RunStatus.FAILED and healed.trigger == Trigger.RETRY
    assert spools_of(app, dossier.id) == []  # swept by the retry, which removed its own
    assert_like_a_clean_sync(db, dossier.id, company, clean_sync_snapshot, sandbox)
