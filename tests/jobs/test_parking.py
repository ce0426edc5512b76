"""Parking in the sync job, in-process (docs/sync-engine.md "Parking"): the kept answers, the
frozen window, the deferral count, the cleanup and the console's wording. The end-to-end
checks with a real worker are in test_parking_e2e.py."""
from datetime import timedelta

import pytest

from app.models import RunResponseStage, RunStatus, SyncRun, Trigger
from app.models.base import utcnow
from app.redis_connection import redis_connection
from app.services import response_stages
from app.services.syncs import request_sync
from jobs.reaper import reap
from jobs.sync import run
from tests.conftest import make_user
from tests.jobs.conftest import line_count, run_row

SMALL = "c-1003"
BALANCES = f"/demo/api/v1/companies/{SMALL}/balances"


@pytest.fixture
def demo_file(linked_dossier, sandbox):
    return lambda name="Parked file": linked_dossier(
        package="demo", reference=SMALL, name=name, config={"base_url": f"{sandbox.url}/demo"},
        credentials={"api_key": "demo-key"})


def rows(db, run_id):
    db.session.expire_all()
    return db.session.query(RunResponseStage).filter_by(run_id=run_id).order_by(RunResponseStage.seq).all()


def open_the_budget():
    redis = redis_connection()
    keys = list(redis.scan_iter(f"firmsync:rate:demo:tenant-{SMALL}:*"))
    if keys:
        redis.delete(*keys)


def test_a_park_keeps_the_answers_and_the_resume_is_answered_from_them(db, sandbox, demo_file):
    sandbox.fault("429", path=BALANCES, count=1, retry_after=120)
    dossier = demo_file()
    queued = request_sync(dossier.id, Trigger.MANUAL)
    db.session.get(SyncRun, queued.id).deferrals = 3  # three fruitless deferrals before this one
    db.session.commit()
    run(queued.id)
    parked = run_row(db, queued.id)
    assert parked.status == RunStatus.DEFERRED and parked.error_category == "rate_limited"
    assert parked.deferrals == 0  # it fetched new pages: the count of fruitless ones starts again
    kept = rows(db, queued.id)
    assert [row.seq for row in kept] == [1, 2]  # fiscal years and the chart, before the balances
    assert {row.window_end for row in kept} == {utcnow().date()}
    assert line_count(db, dossier.id) == 0  # nothing written: the attempt rolled back

    open_the_budget()
    run(queued.id)
    done = run_row(db, queued.id)
    assert done.status == RunStatus.SUCCEEDED, done.message
    calls = sandbox.stats()["calls"]
    assert calls[f"/demo/api/v1/companies/{SMALL}/fiscal-years"] == 1  # answered from the kept answers
    assert calls[f"/demo/api/v1/companies/{SMALL}/accounts"] == 1
    assert calls[BALANCES] == 2  # the refused call, then the live one
    assert rows(db, queued.id) == []


def test_a_resume_days_later_asks_for_the_window_of_its_first_park(db, sandbox, demo_file):
    from jobs.sync import _run_window

    sandbox.fault("429", path=BALANCES, count=1, retry_after=120)
    queued = request_sync(demo_file().id, Trigger.MANUAL)
    link = db.session.get(SyncRun, queued.id).link
    assert _run_window(link, queued.id).end == utcnow().date()  # never parked: today
    run(queued.id)
    three_days_ago = utcnow().date() - timedelta(days=3)
    for row in rows(db, queued.id):
        row.window_end = three_days_ago  # as if it had first parked three days ago
    db.session.commit()
    window = _run_window(link, queued.id)
    assert window.end == three_days_ago and window.period_ends[-1] <= three_days_ago


def test_kept_answers_of_ended_runs_are_swept_and_an_active_runs_stay(db, sandbox, demo_file):
    sandbox.fault("429", path=BALANCES, count=1, retry_after=120)
    queued = request_sync(demo_file().id, Trigger.MANUAL)
    run(queued.id)
    assert rows(db, queued.id)
    reap()
    assert rows(db, queued.id), "a parked run keeps its answers"
    db.session.get(SyncRun, queued.id).status = RunStatus.CANCELLED  # cancelled, without its job
    db.session.commit()
    reap()
    assert rows(db, queued.id) == []


def test_the_console_says_what_a_parked_run_waits_for_in_the_viewers_time(db, client, as_user, firm, demo_file):
    dossier = demo_file()
    queued = request_sync(dossier.id, Trigger.MANUAL)
    parked = db.session.get(SyncRun, queued.id)
    parked.status, parked.error_category = RunStatus.DEFERRED, "rate_limited"
    parked.resume_at = utcnow().replace(hour=1, minute=14, second=0, microsecond=0) + timedelta(days=1)
    parked.message = response_stages.waiting_message("Xero", parked.resume_at)
    db.session.commit()
    assert parked.message.endswith("resumes at 01:14 UTC.")
    make_user("admin@alpha.test", firm)
    as_user("admin@alpha.test")
    progress = client.get(f"/admin/dossier/progress?id={dossier.id}").get_json()
    brussels = "02:14 CET"  # the firm's time zone (Europe/Brussels, winter)
    assert progress["message"].startswith("Waiting for Xero's API budget; resumes at ")
    assert progress["message"].endswith(f"{brussels}.")
    page = client.get(f"/admin/dossier/?id={dossier.id}").get_data(as_text=True)
    assert f"{brussels}." in page
    runs = client.get("/admin/runs/").get_data(as_text=True)
    assert "Waiting for Xero&#39;s API budget" in runs and f"{brussels}." in runs
