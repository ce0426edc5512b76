"""Triggers: one run per dossier at a time, race-safe, and only for actors allowed to sync."""

import pytest
from sqlalchemy import func, select
from werkzeug.exceptions import Forbidden

from app.access import actor_for
from app.models import RunStatus, SyncRun, Trigger
from app.services.queues import PEOPLE_QUEUE, SYNC_QUEUES, fetch_job, sync_job_id, sync_queue
from app.services.syncs import cancel_run, request_sync, request_syncs
from tests.jobs.conftest import at_once


def run_count(db):
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(SyncRun))


def test_sync_now_commits_a_run_and_enqueues_its_job(db, linked_dossier, users, firm, redis_url):
    dossier = linked_dossier()
    actor = actor_for(users["admin"], firm.id)
    run = request_sync(dossier.id, Trigger.MANUAL, actor)
    assert run.status == RunStatus.QUEUED and run.triggered_by_id == users["admin"].id
    db.session.expire_all()
    assert db.session.get(SyncRun, run.id) is not None  # committed, not just flushed
    assert sync_job_id(run.id) in sync_queue(PEOPLE_QUEUE).job_ids  # a person asked: the people queue
    job = fetch_job(sync_job_id(run.id))
    assert job.func_name == "jobs.sync.run" and job.args == [run.id]
    assert dossier.sync_status == RunStatus.QUEUED


def test_two_clicks_give_one_run(db, linked_dossier, users, firm):
    dossier = linked_dossier()
    actor = actor_for(users["staff"], firm.id)
    first = request_sync(dossier.id, Trigger.MANUAL, actor)
    second = request_sync(dossier.id, Trigger.MANUAL, actor)
    assert first.id == second.id
    assert run_count(db) == 1
    assert sync_queue(PEOPLE_QUEUE).count == 1


def test_second_trigger_while_running_returns_the_running_run(db, linked_dossier):
    dossier = linked_dossier()
    run = request_sync(dossier.id, Trigger.NIGHTLY)
    run.status = RunStatus.RUNNING
    db.session.commit()
    again = request_sync(dossier.id, Trigger.MANUAL)
    assert again.id == run.id and again.status == RunStatus.RUNNING
    assert run_count(db) == 1


def test_a_finished_run_does_not_block_a_new_one(db, linked_dossier):
    dossier = linked_dossier()
    run = request_sync(dossier.id, Trigger.MANUAL)
    run.status = RunStatus.SUCCEEDED
    db.session.commit()
    assert request_sync(dossier.id, Trigger.MANUAL).id != run.id


def test_two_concurrent_threads_give_one_run(app, db, linked_dossier):
    dossier_id = linked_dossier().id
    results = at_once(app, db, [lambda: request_sync(dossier_id, Trigger.MANUAL).id] * 4)
    assert len(set(results)) == 1 and len(results) == 4
    assert run_count(db) == 1


def test_the_console_the_api_and_the_nightly_fan_out_at_once_give_one_run_per_file(app, db, linked_dossier):
    """The console's press (request_sync), "Resync selected" and the API (request_syncs, as
    POST /api/v1/syncs calls it) and the cron's fan-out, all at the same moment, twice each."""
    from datetime import datetime

    from jobs.nightly import fan_out

    ids = [linked_dossier(name=f"Client {n}", reference=f"C{n}").id for n in range(3)]
    callers = [lambda: request_sync(ids[0], Trigger.MANUAL), lambda: request_syncs(ids, Trigger.BULK),
               lambda: request_syncs(ids[1:], Trigger.BULK), lambda: fan_out(now=datetime(2025, 1, 15, 1, 30))] * 2
    at_once(app, db, callers)
    db.session.expire_all()
    runs = db.session.scalars(select(SyncRun)).all()
    assert sorted(run.dossier_id for run in runs) == sorted(ids)  # one run per file, whoever came first
    # each run's job is in its own queue; a first sync beyond its firm's turn waits in the database
    queued = [job_id for name in SYNC_QUEUES for job_id in sync_queue(name).get_job_ids()]
    assert sorted(queued) == sorted(sync_job_id(run.id) for run in runs if run.queue is not None)
    assert all(sync_job_id(run.id) in sync_queue(run.queue).job_ids for run in runs if run.queue is not None)


def test_dossier_without_a_link_gives_none(db, firm):
    from app.models import Dossier

    dossier = Dossier(firm_id=firm.id, name="Manual file")
    db.session.add(dossier)
    db.session.commit()
    assert request_sync(dossier.id, Trigger.MANUAL) is None
    assert run_count(db) == 0


@pytest.mark.parametrize("who", ["staff_no_access", "external", "pulse", "outsider", "support"])
def test_roles_without_sync_now_are_refused(db, linked_dossier, users, firm, other_firm, who):
    dossier = linked_dossier(private=True)
    user = users[who]
    actor = actor_for(user, other_firm.id if who == "outsider" else firm.id)
    with pytest.raises(Forbidden):
        request_sync(dossier.id, Trigger.MANUAL, actor)
    with pytest.raises(Forbidden):
        request_syncs([dossier.id], Trigger.BULK, actor)
    assert run_count(db) == 0


def test_external_with_a_grant_still_may_not_sync(db, linked_dossier, users, firm):
    dossier = linked_dossier()
    dossier.users.append(users["external"])
    db.session.commit()
    with pytest.raises(Forbidden):
        request_sync(dossier.id, Trigger.MANUAL, actor_for(users["external"], firm.id))


def test_staff_with_access_may_sync(db, linked_dossier, users, firm):
    dossier = linked_dossier()
    assert request_sync(dossier.id, Trigger.MANUAL, actor_for(users["staff"], firm.id)) is not None


def test_bulk_queues_linked_dossiers_and_skips_the_others(db, linked_dossier, users, firm):
    from app.models import Dossier

    a, b = linked_dossier(name="A"), linked_dossier(name="B", reference="C2")
    manual = Dossier(firm_id=firm.id, name="Manual")
    db.session.add(manual)
    db.session.commit()
    runs, skipped = request_syncs([a.id, b.id, manual.id], Trigger.BULK, actor_for(users["admin"], firm.id))
    assert sorted(r.dossier_id for r in runs) == sorted([a.id, b.id])
    assert skipped == [manual.id]
    assert all(r.trigger == Trigger.BULK for r in runs)


def test_cancelling_a_queued_run_removes_its_job(db, linked_dossier, users, firm):
    dossier = linked_dossier()
    run = request_sync(dossier.id, Trigger.MANUAL)
    cancelled = cancel_run(run.id, actor_for(users["admin"], firm.id))
    assert cancelled.status == RunStatus.CANCELLED
    assert sync_job_id(run.id) not in sync_queue(PEOPLE_QUEUE).job_ids
    # a new click afterwards starts a fresh run
    assert request_sync(dossier.id, Trigger.MANUAL).id != run.id


def test_cancel_is_refused_without_sync_right(db, linked_dossier, users, firm):
    run = request_sync(linked_dossier().id, Trigger.MANUAL)
    with pytest.raises(Forbidden):
        cancel_run(run.id, actor_for(users["pulse"], firm.id))
    db.session.expire_all()
    assert db.session.get(SyncRun, run.id).status == RunStatus.QUEUED
