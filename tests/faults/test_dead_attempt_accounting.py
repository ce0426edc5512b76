"""A SIGKILLed work horse, with real worker processes: the reaped run reports the API calls its
attempt made (as far as its heartbeat recorded them), its rate-limit slots are freed before
the retry starts, and the retry counts exactly the calls the package saw (docs/sync-engine.md
"Recovery"). The in-process cases are in tests/jobs/test_dead_attempts.py."""
import pytest
from redis import Redis

from app.models import RunStatus, Trigger
from app.services.syncs import request_sync
from jobs.progress import attempt_calls_key, lease_holder
from jobs.reaper import reap
from tests.faults.test_sync_faults import FAST, kill_horse, poll, progress_of
from tests.jobs.conftest import run_row

pytestmark = pytest.mark.slow

COMPANY = "c-1003"  # the small book: one ledger page
LEDGER = f"/demo/api/v1/companies/{COMPANY}/ledger-lines"


def leases_of(redis, run_id):
    """The concurrency leases run ``run_id``'s attempts still hold, in any budget."""
    prefix = lease_holder(run_id) + "/"
    return [lease for key in redis.scan_iter(match="firmsync:rate:*:slots")
            for lease in redis.zrange(key, 0, -1) if lease.decode().startswith(prefix)]


def test_a_killed_attempt_reports_its_calls_and_its_retry_is_not_held_by_its_slots(
        db, workers, linked_dossier, sandbox, redis_url):
    redis = Redis.from_url(redis_url)
    dossier = linked_dossier(package="demo", reference=COMPANY, name="Janssens Architecten",
                             config={"base_url": f"{sandbox.url}/demo"}, credentials={"api_key": "demo-key"})
    sandbox.fault("slow", path=LEDGER, count=1, delay=8.0)  # the ledger page is in flight when the horse dies
    run_id = request_sync(dossier.id, Trigger.MANUAL).id
    worker = workers.start(**FAST)
    workers.wait_for(lambda: progress_of(run_id).get("stream") == "ledger_lines" and sandbox.calls(LEDGER) == 1
                     and leases_of(redis, run_id) and int(redis.get(attempt_calls_key(run_id)) or 0) > 0,
                     what="the ledger request in flight, after a heartbeat recorded the calls before it")
    kill_horse(worker)
    seen_by_the_package = sandbox.calls("/demo/api/")

    poll(lambda: reap()["reaped"] == [run_id], timeout=20, what="the reaper to notice the killed horse")
    reaped = run_row(db, run_id)
    assert reaped.status == RunStatus.FAILED and "worker stopped" in reaped.message
    assert 0 < reaped.api_calls <= seen_by_the_package
    assert leases_of(redis, run_id) == []  # freed before the retry was queued, not after their 90 s

    retry = workers.wait_for(lambda: _succeeded_retry(db, dossier.id), timeout=30, what="the retry")
    assert retry.api_calls == sandbox.calls("/demo/api/") - seen_by_the_package > 0


def _succeeded_retry(db, dossier_id):
    from sqlalchemy import select

    from app.models import SyncRun

    db.session.expire_all()
    return db.session.scalars(select(SyncRun).where(SyncRun.dossier_id == dossier_id, SyncRun.trigger == Trigger.RETRY,
                                                    SyncRun.status == RunStatus.SUCCEEDED)).first()
