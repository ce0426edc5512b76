"""Nightly fan-out (once per firm-local night), the reaper, and the ``flask sync`` commands."""
from datetime import datetime, timedelta

from sqlalchemy import func, select

from app.models import ConnectionStatus, DossierLink, RunStatus, SyncRun, Trigger
from app.models.base import utcnow
from app import locks
from jobs.nightly import fan_out
from app.services.queues import BACKFILL_QUEUE, PEOPLE_QUEUE, sync_job_id, sync_queue
from jobs.reaper import INTERRUPTED, reap
from jobs.sync import run
from app.services.syncs import request_sync
from tests.jobs.conftest import at_once, synced_before


def runs(db):
    db.session.expire_all()
    return db.session.scalars(select(SyncRun).order_by(SyncRun.id)).all()


# Brussels is UTC+1 in January: 01:30 UTC is 02:30 local, after the default 02:00.
AFTER_NIGHTLY = datetime(2025, 1, 15, 1, 30)
BEFORE_NIGHTLY = datetime(2025, 1, 15, 0, 30)


def test_nightly_fan_out_twice_creates_runs_once(db, linked_dossier):
    linked_dossier(name="A"), linked_dossier(name="B", reference="C2")
    first = fan_out(now=AFTER_NIGHTLY)
    assert len(first) == 2
    keys = sorted(r.nightly_key for r in runs(db))
    links = sorted(db.session.scalars(select(DossierLink.id)))
    assert keys == sorted(f"{link_id}:2025-01-15" for link_id in links)
    assert all(r.trigger == Trigger.NIGHTLY for r in runs(db))
    assert fan_out(now=AFTER_NIGHTLY + timedelta(minutes=5)) == []
    # even after tonight's runs finished, tonight is done
    for r in runs(db):
        r.status = RunStatus.SUCCEEDED
    db.session.commit()
    assert fan_out(now=AFTER_NIGHTLY + timedelta(hours=1)) == []
    assert len(runs(db)) == 2
    # the next night queues again
    assert len(fan_out(now=AFTER_NIGHTLY + timedelta(days=1))) == 2


def test_nightly_waits_for_the_firms_local_time(db, firm, linked_dossier):
    linked_dossier()
    assert fan_out(now=BEFORE_NIGHTLY) == []
    firm.timezone, firm.nightly_time = "America/New_York", "23:00"
    db.session.commit()
    assert fan_out(now=AFTER_NIGHTLY) == []  # 20:30 the previous evening in New York
    assert len(fan_out(now=datetime(2025, 1, 15, 4, 5))) == 1  # 23:05 in New York
    assert runs(db)[0].nightly_key.endswith(":2025-01-14")


def test_nightly_skips_connections_that_need_reconnecting(db, linked_dossier):
    dossier = linked_dossier()
    dossier.links[0].connection.status = ConnectionStatus.NEEDS_RECONNECT
    db.session.commit()
    assert fan_out(now=AFTER_NIGHTLY) == []


def test_nightly_does_not_double_a_dossier_already_syncing(db, linked_dossier):
    dossier = linked_dossier()
    manual = request_sync(dossier.id, Trigger.MANUAL)
    assert fan_out(now=AFTER_NIGHTLY) == []
    assert [r.id for r in runs(db)] == [manual.id]
    assert fan_out(now=AFTER_NIGHTLY) == []


def test_reaper_fails_a_silent_run_releases_its_lock_and_queues_a_retry(db, scripted, linked_dossier):
    dossier = linked_dossier()
    dead = request_sync(dossier.id, Trigger.MANUAL)
    dead.status, dead.started_at, dead.heartbeat_at = RunStatus.RUNNING, utcnow(), utcnow()
    db.session.commit()
    lock = locks.dossier_lock(dossier.id)
    assert lock.acquire(blocking=False, token=locks.run_token(dead.id))
    locks.beat(dead.id)

    assert reap()["reaped"] == []  # alive a moment ago: left alone
    later = utcnow() + timedelta(minutes=10)
    result = reap(now=later)
    assert result["reaped"] == [dead.id] and len(result["retries"]) == 1
    reaped = db.session.get(SyncRun, dead.id)
    db.session.refresh(reaped)
    assert reaped.status == RunStatus.FAILED and reaped.message == INTERRUPTED
    assert locks.dossier_lock_holder(dossier.id) is None
    retry = db.session.get(SyncRun, result["retries"][0])
    assert retry.trigger == Trigger.RETRY and retry.status == RunStatus.QUEUED
    # the link never synced: the retry is a first sync, in the backfill queue (its firm's turn is free)
    assert sync_job_id(retry.id) in sync_queue(BACKFILL_QUEUE).job_ids
    run(retry.id)
    db.session.expire_all()
    assert db.session.get(SyncRun, retry.id).status == RunStatus.SUCCEEDED
    assert reap(now=later)["reaped"] == []


def test_reaper_reenqueues_a_queued_run_whose_job_was_lost(db, linked_dossier, redis_url):
    queued = request_sync(linked_dossier().id, Trigger.MANUAL)
    sync_queue(PEOPLE_QUEUE).empty()
    assert reap(now=utcnow() + timedelta(minutes=10))["requeued"] == [queued.id]
    assert sync_job_id(queued.id) in sync_queue(PEOPLE_QUEUE).job_ids  # back to its own queue


def test_cli_sync_now_nightly_reap_and_cron(app, db, linked_dossier):
    dossier = linked_dossier()
    from importlib.metadata import entry_points

    # `flask sync` is found through the package's flask.commands entry point, as the flask command finds it
    sync = next(point for point in entry_points(group="flask.commands") if point.name == "sync").load()
    runner = app.test_cli_runner()

    def invoke(*args):
        return runner.invoke(sync, args=list(args))

    out = invoke("now", "--dossier", str(dossier.id))
    assert out.exit_code == 0 and "is queued" in out.output
    assert invoke("now", "--dossier", "999999").exit_code != 0
    out = invoke("reap")
    assert out.exit_code == 0 and "0 interrupted run(s) reaped" in out.output
    out = invoke("cron", "--rounds", "1", "--interval", "1")
    assert out.exit_code == 0 and "cron stopped" in out.output
    out = invoke("nightly")
    assert out.exit_code == 0 and "nightly run(s) queued" in out.output
    db.session.expire_all()
    assert db.session.scalar(select(func.count()).select_from(SyncRun)) == 1  # all merged into the queued run


def test_rq_cron_config_registers_the_nightly_and_reaper_jobs(app, redis_url):
    from pathlib import Path

    from rq.cron import CronScheduler

    from app.redis_connection import redis_connection

    scheduler = CronScheduler(connection=redis_connection())
    scheduler.load_config_from_file(str(Path(__file__).resolve().parents[2] / "jobs" / "cron.py"))
    jobs = {(job.func_name, job.queue_name, job.interval) for job in scheduler.get_jobs()}
    assert jobs == {("jobs.nightly.nightly_job", "default", 60), ("jobs.reaper.reap_job", "default", 60)}


def test_the_cron_job_wrappers_run_fan_out_and_reap(db, linked_dossier):
    from jobs.nightly import nightly_job
    from jobs.reaper import reap_job

    linked_dossier()
    created = nightly_job()  # 0 or 1 depending on the hour in Brussels now
    assert created == len([r for r in runs(db) if r.trigger == Trigger.NIGHTLY])
    assert nightly_job() == 0  # never twice the same night
    assert reap_job() == 0


def test_the_fan_out_enqueues_every_new_run_and_reuses_a_queued_one(db, linked_dossier):
    busy = linked_dossier(name="Busy")
    quiet = [linked_dossier(name=f"Quiet {i}", reference=f"Q{i}") for i in range(5)]
    history = synced_before(db, *quiet)
    clicked = request_sync(busy.id, Trigger.MANUAL)  # already queued when the night starts
    created = fan_out(now=AFTER_NIGHTLY)
    assert len(created) == len(quiet)
    assert {sync_job_id(run_id) for run_id in created} == set(sync_queue().get_job_ids())
    assert sync_queue(PEOPLE_QUEUE).get_job_ids() == [sync_job_id(clicked.id)]
    db.session.expire_all()
    covered = db.session.get(SyncRun, clicked.id)
    assert covered.trigger == Trigger.MANUAL and covered.nightly_key.endswith(":2025-01-15")
    assert fan_out(now=AFTER_NIGHTLY) == []  # the busy link's night is covered by the click
    assert db.session.scalar(select(func.count()).select_from(SyncRun)) == len(quiet) + 1 + len(history)


# --------------------------------------------------------------------------------------
# Recovery: nothing waits for a person (docs/sync-engine.md "Recovery")
# --------------------------------------------------------------------------------------

def _running(db, dossier, **fields):
    the_run = request_sync(dossier.id, Trigger.MANUAL)
    the_run.status, the_run.started_at, the_run.heartbeat_at = RunStatus.RUNNING, utcnow(), utcnow()
    for name, value in fields.items():
        setattr(the_run, name, value)
    db.session.commit()
    return the_run


def test_reaper_requeues_a_queued_run_whose_job_failed_at_start(db, linked_dossier):
    from app.services.queues import fetch_job

    queued = request_sync(linked_dossier().id, Trigger.MANUAL)
    job = fetch_job(sync_job_id(queued.id))
    sync_queue(PEOPLE_QUEUE).remove(job.id)
    job.set_status("failed")  # as RQ leaves a job whose function raised: kept 7 days, never run again
    assert reap()["requeued"] == [queued.id]  # at once: a failed job is not a job on its way
    assert sync_job_id(queued.id) in sync_queue(PEOPLE_QUEUE).job_ids
    assert fetch_job(sync_job_id(queued.id)).get_status() == "queued"
    assert reap()["requeued"] == []


def test_reaper_reschedules_deferred_runs_whose_next_try_vanished(db, linked_dossier, redis_db):
    from rq.registry import ScheduledJobRegistry

    first, second = linked_dossier(name="A"), linked_dossier(name="B", reference="C2")
    past, future = (request_sync(d.id, Trigger.MANUAL) for d in (first, second))
    now = utcnow()
    past.status, past.resume_at = RunStatus.DEFERRED, now - timedelta(minutes=5)
    future.status, future.resume_at = RunStatus.DEFERRED, now + timedelta(minutes=30)
    db.session.commit()
    redis_db.flushdb()  # Redis restarted without its data
    result = reap()
    assert sorted(result["requeued"]) == sorted([past.id, future.id])
    assert sync_job_id(past.id) in sync_queue(PEOPLE_QUEUE).job_ids  # its time has passed: at once
    scheduled = ScheduledJobRegistry(queue=sync_queue(PEOPLE_QUEUE))
    at = scheduled.get_scheduled_time(sync_job_id(future.id)).replace(tzinfo=None)
    assert abs((at - future.resume_at).total_seconds()) < 2
    assert reap()["requeued"] == []  # both are on their way now


def test_a_worker_whose_heartbeat_is_silent_is_noticed_well_before_the_stale_limit(db, linked_dossier):
    dead = _running(db, linked_dossier())
    locks.beat(dead.id)
    assert reap(now=utcnow() + timedelta(seconds=20))["reaped"] == []
    result = reap(now=utcnow() + timedelta(seconds=45))  # default: dead after 30 s of silence, not 120
    assert result["reaped"] == [dead.id] and len(result["retries"]) == 1
    assert db.session.get(SyncRun, dead.id).message == INTERRUPTED


def test_a_run_whose_data_was_committed_is_reported_succeeded_not_retried(db, linked_dossier):
    from jobs.reaper import COMMITTED

    committed_at = utcnow()
    dead = _running(db, linked_dossier(), data_committed_at=committed_at, lines_inserted=30)
    locks.beat(dead.id)
    result = reap(now=utcnow() + timedelta(minutes=5))
    assert result["succeeded"] == [dead.id] and result["reaped"] == result["retries"] == []
    db.session.expire_all()
    done = db.session.get(SyncRun, dead.id)
    assert done.status == RunStatus.SUCCEEDED and done.lines_inserted == 30 and done.finished_at == committed_at
    assert done.message == COMMITTED  # not "interrupted", not "queued again"
    assert done.dossier.sync_status == RunStatus.SUCCEEDED and done.dossier.last_synced_at == committed_at


def test_a_run_whose_job_ended_without_recording_says_so_not_that_the_worker_stopped(db, linked_dossier):
    from app.services.queues import fetch_job
    from jobs.reaper import UNRECORDED

    dead = _running(db, linked_dossier())
    fetch_job(sync_job_id(dead.id)).set_status("finished")
    result = reap()
    assert result["reaped"] == [dead.id]
    db.session.expire_all()
    assert db.session.get(SyncRun, dead.id).message == UNRECORDED


def test_the_reaper_skips_a_run_it_cannot_lock_and_heals_the_others(db, linked_dossier, monkeypatch):
    import sqlite3

    from sqlalchemy import text
    from sqlalchemy.exc import OperationalError

    import jobs.reaper as reaper

    stuck, other = _running(db, linked_dossier(name="A")), _running(db, linked_dossier(name="B", reference="C2"))
    real = reaper._reap_running
    seen_timeouts = []

    def locked_first(run, *args):
        if db.session.get_bind().dialect.name == "postgresql":
            seen_timeouts.append(db.session.execute(text("SHOW lock_timeout")).scalar())
        if run.id == stuck.id:
            raise OperationalError("UPDATE sync_run", {}, sqlite3.OperationalError("canceling statement due to lock timeout"))
        return real(run, *args)

    monkeypatch.setattr(reaper, "_reap_running", locked_first)
    result = reap(now=utcnow() + timedelta(minutes=5))
    assert result["skipped"] == [stuck.id] and result["reaped"] == [other.id]
    assert set(seen_timeouts) <= {"2s"}  # PostgreSQL: the reaper's transactions wait 2 s at most for a lock
    monkeypatch.setattr(reaper, "_reap_running", real)
    assert reap(now=utcnow() + timedelta(minutes=5))["reaped"] == [stuck.id]  # next round


def test_simultaneous_resync_selected_requests_create_one_run_per_file(app, db, linked_dossier):
    from app.services.syncs import queue_runs

    dossiers = [linked_dossier(name=f"File {n}", reference=f"C{n}") for n in range(3)]
    targets = [(d.id, d.links[0].id) for d in dossiers]
    at_once(app, db, [lambda: queue_runs(targets, Trigger.BULK)] * 5)
    active = [r for r in runs(db) if r.status in RunStatus.ACTIVE]
    assert sorted(r.link_id for r in active) == sorted(link_id for _, link_id in targets)
