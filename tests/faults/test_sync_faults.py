"""Fault tests of the sync run: real worker processes, each fault bounded in time, each healed
dossier compared with a clean sync of the same small company (accounts, fiscal years,
balances, ledger lines). See docs/sync-engine.md "Recovery".

The test process plays the cron: it calls the reaper while it waits, and starts a worker
again when the fault ended every worker (as ``make run`` and the systemd units do).
"""
import os
import re
import signal
import sqlite3
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select, text

from app.models import RunStatus, SyncRun, Trigger
from app.redis_connection import EXTENSION_KEY, WEB_EXTENSION_KEY, job_client, web_client
from app.services.queues import fetch_job, sync_job_id
from app.services.syncs import request_sync
from jobs.reaper import reap
from tests.faults.conftest import business_values, hold_row, hold_the_writing
from tests.fixtures_worker import Workers, children_of
from tests.jobs.conftest import line_count, run_row

pytestmark = pytest.mark.slow

COMPANY = "c-1002"  # 2,000 lines: four ledger pages of 500
LEDGER = f"/demo/api/v1/companies/{COMPANY}/ledger-lines"
#: worker settings: beats every second, retries after a second, dead after three silent seconds
FAST = dict(SYNC_HEARTBEAT_SECONDS=1, SYNC_DEAD_AFTER_SECONDS=3, SYNC_RETRY_BACKOFF="1,1,1",
            SYNC_PROGRESS_EVERY_SECONDS=0.2, SYNC_LOCK_SECONDS=5, SYNC_LOCK_RETRY_SECONDS=1,
            SYNC_OUTCOME_RETRY_SECONDS="0.5,1,2")


@pytest.fixture
def fast_reaper(app):
    """The reaper in this process judges with the workers' settings."""
    app.config.update(SYNC_HEARTBEAT_SECONDS=1, SYNC_DEAD_AFTER_SECONDS=3, SYNC_STALE_AFTER_SECONDS=10)


@pytest.fixture
def company(linked_dossier, sandbox):
    """The demo company's connection settings, and a dossier linked to it."""
    settings = dict(config={"base_url": f"{sandbox.url}/demo"}, credentials={"api_key": "demo-key"})

    def _dossier(name="Janssens Architecten"):
        return linked_dossier(package="demo", reference=COMPANY, name=name, **settings)

    _dossier.settings = settings
    return _dossier


def progress_of(run_id):
    """The run's progress as its job publishes it in Redis ({} before the first publication)."""
    try:
        return fetch_job(sync_job_id(run_id)).meta.get("progress") or {}
    except Exception:  # noqa: BLE001 - no job (yet), or Redis away
        return {}


def kill_horse(worker):
    """SIGKILL the worker's work horse only (RQ, alive, sees it die and fails the job); its
    scheduler process lives on."""
    schedulers = {int(pid) for pid in re.findall(r"Scheduler for .* started with PID (\d+)",
                                                 Path(worker.log_path).read_text(errors="replace"))}
    horses = [pid for pid in children_of(worker.pid) if pid not in schedulers]
    assert horses, "the worker has no work horse"
    for pid in horses:
        os.kill(pid, signal.SIGKILL)


def poll(predicate, timeout, what):
    """Poll ``predicate`` until it answers something true (also when no worker is alive)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def heal(db, pool, dossier_id, timeout=45):
    """Play the cron until the dossier's newest run succeeds: the reaper every half second, a
    worker started again when none is alive. Returns that run."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            reap()
        except Exception:  # noqa: BLE001 - Redis may still be coming back
            db.session.rollback()
        if all(proc.poll() is not None for proc in pool.procs):
            pool.start(**FAST)
        db.session.expire_all()
        newest = db.session.scalars(select(SyncRun).where(SyncRun.dossier_id == dossier_id)
                                    .order_by(SyncRun.id.desc()).limit(1)).first()
        if newest is not None and newest.status == RunStatus.SUCCEEDED:
            return newest
        time.sleep(0.5)
    raise AssertionError("the dossier did not heal\n" + pool.logs())


def assert_like_a_clean_sync(db, dossier_id, company, clean_sync_snapshot, sandbox):
    sandbox.reset()
    got = business_values(db, dossier_id)
    expected = clean_sync_snapshot("demo", COMPANY, **company.settings)
    assert len(got["lines"]) == len(expected["lines"]) == 2000
    assert got == expected


@pytest.mark.parametrize("moment", ["fetch", "write"])
def test_sigkill_of_the_work_horse_heals_to_a_clean_sync(db, workers, company, sandbox, clean_sync_snapshot,
                                                         fast_reaper, moment):
    dossier = company()
    if moment == "fetch":  # the first ledger page takes long: nothing of it has arrived yet
        sandbox.fault("slow", path=LEDGER, count=1, delay=5.0)
    else:  # pages keep coming slowly: some are written in the open transaction
        sandbox.fault("slow", path=LEDGER, count=4, delay=1.0)
    run = request_sync(dossier.id, Trigger.MANUAL)
    run_id = run.id
    worker = workers.start(**FAST)
    if moment == "fetch":
        workers.wait_for(lambda: progress_of(run_id).get("stream") == "ledger_lines", what="the ledger stream")
    else:
        workers.wait_for(lambda: (progress_of(run_id).get("records") or 0) >= 1200, what="lines being written")
    kill_horse(worker)
    assert line_count(db, dossier.id) == 0  # the open transaction died with the horse
    healed = heal(db, workers, dossier.id)
    interrupted = run_row(db, run_id)
    assert interrupted.status == RunStatus.FAILED and "worker stopped" in interrupted.message
    assert healed.trigger == Trigger.RETRY
    assert_like_a_clean_sync(db, dossier.id, company, clean_sync_snapshot, sandbox)


def test_a_killed_whole_worker_is_noticed_within_seconds_and_healed(db, workers, company, sandbox,
                                                                     clean_sync_snapshot, fast_reaper):
    dossier = company()
    sandbox.fault("slow", path=LEDGER, count=4, delay=1.0)
    run_id = request_sync(dossier.id, Trigger.MANUAL).id
    worker = workers.start(**FAST)
    workers.wait_for(lambda: (progress_of(run_id).get("records") or 0) >= 600, what="lines being written")
    workers.kill(worker)  # worker and horse: RQ never hears of it, the job stays "started"
    killed_at = time.monotonic()
    poll(lambda: reap()["reaped"] == [run_id], timeout=20, what="the reaper to notice the dead worker")
    assert time.monotonic() - killed_at < 20  # not the 120 s stale limit
    heal(db, workers, dossier.id)
    assert_like_a_clean_sync(db, dossier.id, company, clean_sync_snapshot, sandbox)


@pytest.mark.parametrize("keep_data", [True, False], ids=["with-its-data", "without-its-data"])
def test_redis_stopped_and_restarted_mid_sync_loses_no_sync(app, db, company, sandbox, clean_sync_snapshot,
                                                            fast_reaper, private_redis, _schema, tmp_path,
                                                            keep_data):
    config = {**app.config, "REDIS_URL": private_redis.url}
    shared = {key: app.extensions[key] for key in (EXTENSION_KEY, WEB_EXTENSION_KEY)}
    app.extensions.update({EXTENSION_KEY: job_client(config), WEB_EXTENSION_KEY: web_client(config)})
    pool = Workers({**_schema, "redis_url": private_redis.url}, tmp_path)
    try:
        dossier = company()
        sandbox.fault("slow", path=LEDGER, count=4, delay=1.0)
        run_id = request_sync(dossier.id, Trigger.MANUAL).id
        pool.start(**FAST)
        pool.wait_for(lambda: (progress_of(run_id).get("records") or 0) >= 500, what="the sync to be writing")
        private_redis.stop(keep_data=keep_data)
        time.sleep(2.0)  # the outage itself (not a synchronisation)
        private_redis.start()
        healed = heal(db, pool, dossier.id)
        assert healed.status == RunStatus.SUCCEEDED
        assert_like_a_clean_sync(db, dossier.id, company, clean_sync_snapshot, sandbox)
        for other in db.session.scalars(select(SyncRun).where(SyncRun.dossier_id == dossier.id)):
            assert other.status in RunStatus.FINISHED, "no run is left queued, running or deferred"
    finally:
        pool.stop_all()
        app.extensions.update(shared)  # before the private server goes (the app's teardown flushes Redis)


def test_the_workers_database_connection_terminated_mid_write_is_retried(db, workers, company, sandbox,
                                                                         clean_sync_snapshot, fast_reaper):
    if db.engine.dialect.name != "postgresql":
        pytest.skip("needs PostgreSQL's pg_terminate_backend")
    dossier = company()
    run_id = request_sync(dossier.id, Trigger.MANUAL).id
    # the link's row is locked: the sync writes its 2,000 lines, then waits at its bookmarks
    release = hold_the_writing(db, dossier.links[0].id)
    try:
        workers.start(**FAST)

        def terminate_the_waiting_sync():  # a transaction per look: PostgreSQL's activity view is a snapshot
            with db.engine.connect() as conn:
                return conn.execute(text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND pid <> pg_backend_pid() AND wait_event_type = 'Lock' AND backend_xid IS NOT NULL")).all()

        workers.wait_for(terminate_the_waiting_sync, what="the sync waiting before its commit, its lines written")
    finally:
        release()
    deferred = workers.wait_for(
        lambda: (r := run_row(db, run_id)).error_category == "infrastructure" and r, what="an infrastructure retry")
    assert "Firmsync's own services" in (deferred.message or "")
    healed = heal(db, workers, dossier.id)
    assert healed.id == run_id and healed.attempt >= 2  # the same run, retried: never "internal"
    assert_like_a_clean_sync(db, dossier.id, company, clean_sync_snapshot, sandbox)


def test_a_sqlite_write_lock_held_by_another_process_only_delays_the_sync(db, workers, company, sandbox,
                                                                          clean_sync_snapshot, fast_reaper):
    if db.engine.dialect.name != "sqlite":
        pytest.skip("a SQLite database-wide write lock")
    dossier = company()
    run_id = request_sync(dossier.id, Trigger.MANUAL).id
    other = sqlite3.connect(db.engine.url.database, timeout=1)
    other.execute("BEGIN IMMEDIATE")  # another process's writer, longer than the 5 s busy timeout
    try:
        workers.start(**{**FAST, "SYNC_OUTCOME_RETRY_SECONDS": "0.5"})
        workers.wait_for(lambda: fetch_job(sync_job_id(run_id)).get_status() == "started", what="the job to start")
        time.sleep(7.0)  # the fault: the lock outlives the worker's busy timeout (not a synchronisation)
    finally:
        other.rollback()
        other.close()
    healed = heal(db, workers, dossier.id)
    assert healed.id == run_id and healed.trigger == Trigger.MANUAL  # the same run, only delayed
    # RQ marks the job finished just after the run's outcome is committed
    workers.wait_for(lambda: fetch_job(sync_job_id(run_id)).get_status() == "finished", what="RQ to finish the job")
    assert_like_a_clean_sync(db, dossier.id, company, clean_sync_snapshot, sandbox)


def _hold_the_run_row(db, run_id):
    """Another process's lock on what the job writes first (the run's row; SQLite: the whole
    database). Returns a function releasing it."""
    return hold_row(db, "sync_run", run_id)


def test_a_run_whose_job_failed_at_start_is_requeued_by_the_reaper(db, workers, company, sandbox,
                                                                   clean_sync_snapshot, fast_reaper):
    dossier = company()
    run_id = request_sync(dossier.id, Trigger.MANUAL).id
    release = _hold_the_run_row(db, run_id)
    try:
        worker = workers.start(**FAST)
        workers.wait_for(lambda: fetch_job(sync_job_id(run_id)).get_status() == "started", what="the job to start")
        kill_horse(worker)  # while it waits to mark the run running
        workers.wait_for(lambda: fetch_job(sync_job_id(run_id)).get_status() == "failed", what="RQ to fail the job")
    finally:
        release()
    assert run_row(db, run_id).status == RunStatus.QUEUED
    assert reap()["requeued"] == [run_id]
    healed = heal(db, workers, dossier.id)
    assert healed.id == run_id
    assert_like_a_clean_sync(db, dossier.id, company, clean_sync_snapshot, sandbox)


def test_a_kill_at_the_commit_leaves_nothing_and_heals(db, workers, company, sandbox, clean_sync_snapshot,
                                                       fast_reaper):
    if db.engine.dialect.name != "postgresql":
        pytest.skip("needs PostgreSQL's row locks to hold the sync at its commit")
    dossier = company()
    link_id = dossier.links[0].id
    run_id = request_sync(dossier.id, Trigger.MANUAL).id
    engine = create_engine(db.engine.url)
    conn = engine.connect()
    # the sync writes its bookmarks in its data transaction, just before the commit: it waits there
    conn.execute(text("SELECT id FROM dossier_link WHERE id = :id FOR NO KEY UPDATE"), {"id": link_id})
    try:
        worker = workers.start(**FAST)
        workers.wait_for(lambda: (progress_of(run_id).get("records") or 0) >= 2000 and _waits_on_a_lock(db),
                         what="the sync to wait at its commit")
        kill_horse(worker)
    finally:
        conn.rollback()
        conn.close()
        engine.dispose()
    assert line_count(db, dossier.id) == 0
    heal(db, workers, dossier.id)
    assert_like_a_clean_sync(db, dossier.id, company, clean_sync_snapshot, sandbox)


def _waits_on_a_lock(db):
    with db.engine.connect() as conn:
        return bool(conn.execute(text(
            "SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'")).first())
