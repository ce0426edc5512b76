"""What a dead attempt leaves behind, in-process (docs/sync-engine.md "Recovery"): the API calls
its heartbeat recorded (added to the run once, by the reaper), and its rate-limit slots (freed
when RQ saw its process end, kept while it may only be frozen). The same with real worker
processes and a SIGKILL: tests/faults/test_dead_attempt_accounting.py."""
from datetime import timedelta

from app import locks
from app.models import RunStatus, SyncRun, Trigger
from app.models.base import utcnow
from app.services.queues import fetch_job, sync_job_id
from app.services.syncs import request_sync
from connectors.base import RateBudget
from connectors.rate_limit import RateLimiter
from jobs.progress import Heartbeat, attempt_calls_key, lease_holder
from jobs.reaper import reap
from jobs.sync import run
from tests.jobs.test_nightly_reaper import _running as running  # a run marked running, its RQ job still queued

ONE_AT_A_TIME = RateBudget(per_minute=100, concurrency=1, per="connection")


def fresh(db, run_id):
    db.session.expire_all()
    return db.session.get(SyncRun, run_id)


def process_ended(run_id):
    """As RQ leaves the job of a work horse that was killed."""
    fetch_job(sync_job_id(run_id)).set_status("failed")


def test_the_heartbeat_records_the_attempts_calls_on_the_row_and_in_redis(app, db, linked_dossier, redis_db):
    the_run = running(db, linked_dossier())
    redis_db.set(attempt_calls_key(the_run.id), 41)  # a previous attempt's count
    lock = locks.dossier_lock(the_run.dossier_id)
    assert lock.acquire(blocking=False, token=locks.run_token(the_run.id))
    calls = [0]
    heartbeat = Heartbeat(the_run.id, lock, redis=redis_db, engine=db.engine, interval=3600, calls=lambda: calls[0])
    heartbeat.start()
    try:
        assert int(redis_db.get(attempt_calls_key(the_run.id))) == 0  # this attempt starts from 0
        calls[0] = 7
        heartbeat.beat()
    finally:
        heartbeat.stop()
    assert int(redis_db.get(attempt_calls_key(the_run.id))) == 7
    assert fresh(db, the_run.id).attempt_api_calls == 7


def test_the_reaper_adds_a_dead_attempts_recorded_calls_once(db, linked_dossier, redis_db):
    # 5 calls of an earlier, deferred attempt; the row saw 3 of the dead attempt's calls, Redis 11
    # (SQLite refused the later row writes while the sync held its write lock)
    dead = running(db, linked_dossier(), api_calls=5, attempt_api_calls=3)
    redis_db.set(attempt_calls_key(dead.id), 11)
    process_ended(dead.id)
    result = reap()
    assert result["reaped"] == [dead.id]
    reaped = fresh(db, dead.id)
    assert reaped.status == RunStatus.FAILED and reaped.api_calls == 16 and reaped.attempt_api_calls == 0
    assert redis_db.get(attempt_calls_key(dead.id)) is None
    retry = fresh(db, result["retries"][0])
    assert retry.api_calls == 0  # the retry counts its own calls only
    assert reap()["reaped"] == [] and fresh(db, dead.id).api_calls == 16


def test_a_dead_run_whose_data_was_committed_keeps_the_calls_counted_with_it(db, linked_dossier, redis_db):
    # the data commit added the attempt's 12 calls; its heartbeat had recorded 12 as well
    dead = running(db, linked_dossier(), api_calls=12, attempt_api_calls=12, data_committed_at=utcnow())
    redis_db.set(attempt_calls_key(dead.id), 12)
    process_ended(dead.id)
    assert reap()["succeeded"] == [dead.id]
    done = fresh(db, dead.id)
    assert done.status == RunStatus.SUCCEEDED and done.api_calls == 12


def test_a_finished_run_counts_each_call_once(app, db, linked_dossier, sandbox):
    app.config.update(SYNC_HEARTBEAT_SECONDS=0.02)  # the heartbeat records the calls many times meanwhile
    dossier = linked_dossier(package="demo", reference="c-1003", config={"base_url": f"{sandbox.url}/demo"},
                             credentials={"api_key": "demo-key"})
    queued = request_sync(dossier.id, Trigger.MANUAL)
    run(queued.id)
    done = fresh(db, queued.id)
    assert done.status == RunStatus.SUCCEEDED, done.message
    assert done.api_calls == sandbox.calls("/demo/api/") > 0


def test_the_retry_of_an_attempt_whose_process_ended_is_not_held_by_its_slot(db, linked_dossier, redis_db):
    dead = running(db, linked_dossier())
    dead_attempt = RateLimiter(redis_db, holder=lease_holder(dead.id))
    assert dead_attempt.acquire("twinfield", "org-1", ONE_AT_A_TIME).granted  # killed mid-request: never released
    other_run = RateLimiter(redis_db, holder=lease_holder(dead.id + 1000))
    other_scope = other_run.acquire("twinfield", "org-2", ONE_AT_A_TIME)
    retry_limiter = RateLimiter(redis_db)
    assert retry_limiter.acquire("twinfield", "org-1", ONE_AT_A_TIME).concurrency  # held for 90 s by the lease

    process_ended(dead.id)
    result = reap()
    assert result["reaped"] == [dead.id]
    first_call = retry_limiter.acquire("twinfield", "org-1", ONE_AT_A_TIME)
    assert first_call.granted  # the retry's first call goes at once
    assert retry_limiter.usage("twinfield", "org-1", ONE_AT_A_TIME)["window"] == 2  # the dead call still counts
    assert retry_limiter.usage("twinfield", "org-2", ONE_AT_A_TIME)["in_flight"] == 1  # another run's slot stays
    other_run.release(other_scope)


def test_a_run_only_silent_keeps_its_slot_until_the_lease_ends(db, linked_dossier, redis_db):
    # no word from RQ that the process ended: it may be frozen with a request in flight
    dead = running(db, linked_dossier())
    locks.beat(dead.id, redis_db)
    assert RateLimiter(redis_db, holder=lease_holder(dead.id)).acquire("twinfield", "org-1", ONE_AT_A_TIME).granted
    assert reap(now=utcnow() + timedelta(minutes=5))["reaped"] == [dead.id]
    assert RateLimiter(redis_db).usage("twinfield", "org-1", ONE_AT_A_TIME)["in_flight"] == 1
