"""End to end: a run that waits for an API budget parks instead of sleeping, frees the worker,
and resumes exactly where it stopped (docs/sync-engine.md "Parking"). Real worker, sandbox, demo connector."""
import math
import zlib

import pytest
from rq.registry import ScheduledJobRegistry

from app.models import RunResponseStage, RunStatus, Trigger
from app.redis_connection import redis_connection
from app.services.queues import sync_job_id, sync_queue
from app.services.syncs import enqueue_run, request_sync
from connectors.rate_limit import RateLimiter
from connectors.registry import get_connector
from tests.jobs.conftest import bookkeeping_snapshot, finished, run_row

pytestmark = pytest.mark.slow

SMALL = "c-1003"  # 40 lines
OTHER = "c-1001"
API_KEY = "demo-key"
#: the sandbox's demo budget window in these tests (seconds): a park lasts about this long
WINDOW = 2


@pytest.fixture
def demo_file(linked_dossier, sandbox):
    def _make(name, company=SMALL):
        return linked_dossier(package="demo", reference=company, name=name, config={"base_url": f"{sandbox.url}/demo"},
                              credentials={"api_key": API_KEY})
    return _make


def sync(db, workers, dossier_id, what):
    queued = request_sync(dossier_id, Trigger.MANUAL)
    return workers.wait_for(lambda: finished(db, queued.id), timeout=60, what=what)


def demo_calls(sandbox):
    return {path: n for path, n in sandbox.stats()["calls"].items() if path.startswith("/demo/api/")}


def business_values(snapshot):
    """A dossier's bookkeeping without its ids (two dossiers of one company compare equal)."""
    return {"accounts": sorted(r[2:5] for r in snapshot["Account"]),
            "years": sorted(r[2:] for r in snapshot["FiscalYear"]),
            "balances": len(snapshot["PeriodBalance"]),
            "lines": sorted((r[3], r[6], r[7]) for r in snapshot["LedgerLine"])}


def parked_run(db, workers, run_id, after=None):
    """The run once it is deferred (with a resume time later than ``after``) and its job is
    scheduled again (until then the worker still handles the job: enqueueing it would race)."""
    def ready():
        row = run_row(db, run_id)
        if row.status != RunStatus.DEFERRED or (after is not None and row.resume_at <= after):
            return None
        scheduled = ScheduledJobRegistry(queue=sync_queue(row.queue or "sync")).get_job_ids()
        return row if sync_job_id(run_id) in scheduled else None
    return workers.wait_for(ready, timeout=60, what=f"run {run_id} to park")


def stage_rows(db, run_id):
    db.session.expire_all()
    return db.session.query(RunResponseStage).filter_by(run_id=run_id).order_by(RunResponseStage.seq).all()


def assert_no_credentials(rows):
    assert rows, "a parked run keeps what it fetched"
    for row in rows:
        names = {name.lower() for name in row.headers}
        assert not names & {"authorization", "x-api-key", "set-cookie", "cookie"}, row.headers
        body = zlib.decompress(row.body)
        assert API_KEY.encode() not in body and b"access_token" not in body
        assert API_KEY not in row.key_hash and len(row.key_hash) == 64


def test_a_first_sync_over_three_budget_windows_parks_frees_the_worker_and_resumes_where_it_stopped(
        db, workers, sandbox, demo_file):
    workers.start(SYNC_PARK_AFTER_SECONDS=0.5)  # one worker
    clean = sync(db, workers, demo_file("Clean copy").id, "the clean sync")
    assert clean.status == RunStatus.SUCCEEDED, clean.message
    clean_calls = demo_calls(sandbox)
    per_window = math.ceil(sum(clean_calls.values()) / 3)  # the sync needs three windows

    sandbox.reset()
    # the first park lasts a minute (the package's Retry-After), after two pages
    sandbox.fault("429", path=f"/demo/api/v1/companies/{SMALL}/balances", count=1, retry_after=60)
    dossier = demo_file("Parked file")
    queued = request_sync(dossier.id, Trigger.MANUAL)
    parked = parked_run(db, workers, queued.id)
    assert parked.error_category == "rate_limited" and parked.finished_at is None
    package = get_connector("demo").spec.display_name
    assert parked.message.startswith(f"Waiting for {package}'s API budget; resumes at ")
    assert parked.resume_at.strftime("%H:%M UTC") in parked.message
    assert_no_credentials(stage_rows(db, queued.id))

    # the worker is free while the run waits: another file's sync runs to success meanwhile
    other = sync(db, workers, demo_file("Other file", OTHER).id, "the other file's sync")
    assert other.status == RunStatus.SUCCEEDED, other.message
    assert run_row(db, queued.id).status == RunStatus.DEFERRED

    # the budget's time has come (its windows are short from now on: the run parks once more)
    sandbox.budgets(demo={"per_minute": per_window, "window_seconds": WINDOW})
    redis = redis_connection()
    redis.delete(*redis.scan_iter(f"firmsync:rate:demo:tenant-{SMALL}:*"))
    enqueue_run(parked.id)
    done = workers.wait_for(lambda: finished(db, queued.id), timeout=60, what="the resumed sync")
    assert done.status == RunStatus.SUCCEEDED, f"{done.message}\n{workers.logs()}"
    assert done.deferrals == 0  # every park moved forward: none counts against the cap
    assert business_values(bookkeeping_snapshot(db, dossier.id)) == \
        business_values(bookkeeping_snapshot(db, clean.dossier_id))

    # each page was asked once, plus the one refused call of each park
    parks = 1 + sandbox.stats()["rejected"]["demo"]  # the Retry-After, then the budget's refusals
    calls = {path: n for path, n in demo_calls(sandbox).items() if f"/{OTHER}" not in path}
    assert parks >= 2
    assert sum(calls.values()) == sum(clean_calls.values()) + parks
    assert all(calls.get(path, 0) <= n + parks for path, n in clean_calls.items())
    assert stage_rows(db, queued.id) == []  # the kept answers end with the run


def test_a_resume_after_the_daily_budget_replays_what_was_fetched(db, workers, sandbox, demo_file):
    workers.start(SYNC_PARK_AFTER_SECONDS=0.5)
    clean = sync(db, workers, demo_file("Clean copy").id, "the clean sync")
    clean_total = sum(demo_calls(sandbox).values())

    sandbox.reset()
    sandbox.budgets(demo={"per_minute": math.ceil(clean_total / 2), "window_seconds": 60})
    dossier = demo_file("Parked file")
    queued = request_sync(dossier.id, Trigger.MANUAL)
    parked = parked_run(db, workers, queued.id)
    first_resume = parked.resume_at
    kept = len(stage_rows(db, queued.id))
    assert kept > 0

    # the day's budget runs out: the resume is answered from the kept answers, then defers to tomorrow
    redis = redis_connection()
    for key in redis.scan_iter("firmsync:rate:demo:*"):
        redis.delete(key)
    limiter = RateLimiter(redis)
    redis.set(limiter._day_key("demo", f"tenant-{SMALL}"), 100_000)
    sandbox.budgets(demo={})
    enqueue_run(parked.id)
    daily = parked_run(db, workers, queued.id, after=first_resume)
    assert daily.error_category == "rate_limited" and "daily" in daily.message
    assert len(stage_rows(db, queued.id)) == kept  # nothing new fetched: the kept answers stay as they were
    assert daily.deferrals == 1  # a fruitless deferral counts

    # tomorrow: the day's count is back; the resume replays and finishes the sync
    redis.delete(limiter._day_key("demo", f"tenant-{SMALL}"))
    enqueue_run(daily.id)
    done = workers.wait_for(lambda: finished(db, queued.id), timeout=60, what="the resume the next day")
    assert done.status == RunStatus.SUCCEEDED, f"{done.message}\n{workers.logs()}"
    assert business_values(bookkeeping_snapshot(db, dossier.id)) == \
        business_values(bookkeeping_snapshot(db, clean.dossier_id))
    parks = sandbox.stats()["rejected"].get("demo", 0)
    assert sum(demo_calls(sandbox).values()) == clean_total + parks  # no page was asked twice
    assert stage_rows(db, queued.id) == []
