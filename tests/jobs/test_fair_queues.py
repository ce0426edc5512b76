"""Fair queues (issue #21, docs/sync-engine.md "Queues and fairness"): people first, then the
night's runs, then the first syncs (backfills), a few per firm at a time."""
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from app.models import RunStatus, SyncRun, Trigger
from app.models.base import utcnow
from app.services.queues import BACKFILL_QUEUE, NIGHTLY_QUEUE, PEOPLE_QUEUE, fetch_job, sync_job_id, sync_queue
from app.services.syncs import (backfills_ahead, cancel_run, initial_queues, is_backfill, release_next_backfills,
                                request_sync)
from jobs.nightly import fan_out, jobs_in_turn
from jobs.reaper import reap
from tests.jobs.conftest import finished, run_row, synced_before

# Brussels is UTC+1 in January: 01:30 UTC is 02:30 local, after the default 02:00
BRUSSELS_NIGHT = datetime(2025, 1, 15, 1, 30)
SMALL = "c-1003"  # the sandbox's demo company with 40 lines


def in_firm(db, dossier, firm):
    """Move ``dossier`` (made in the first firm by ``linked_dossier``) to ``firm``, link and connection too."""
    for row in (dossier, dossier.links[0], dossier.links[0].connection):
        row.firm_id = firm.id
    db.session.commit()
    return dossier


def job_ids(name):
    return sync_queue(name).get_job_ids()


def first_syncs(db, linked_dossier, count, prefix="A"):
    """``count`` new files of the first firm, each with its set-up run; the runs in order."""
    return [request_sync(linked_dossier(name=f"{prefix} {n}", reference=f"{prefix}{n}").id, Trigger.SETUP)
            for n in range(count)]


# --------------------------------------------------------------------------------------
# Which runs are backfills
# --------------------------------------------------------------------------------------

def test_a_first_sync_is_a_set_up_run_or_a_run_of_a_link_that_never_synced(db, linked_dossier):
    never = linked_dossier(name="Never synced", reference="N1").links[0].id
    synced_file = linked_dossier(name="Synced", reference="S1")
    synced_before(db, synced_file)
    synced = synced_file.links[0].id
    assert is_backfill(Trigger.SETUP, never) and is_backfill(Trigger.SETUP, synced)  # set up again: a backfill
    assert is_backfill(Trigger.NIGHTLY, never) and is_backfill(Trigger.RETRY, never)
    assert not is_backfill(Trigger.NIGHTLY, synced) and not is_backfill(Trigger.RETRY, synced)
    # a person asked: never a backfill, whatever the link's past
    for trigger in (Trigger.MANUAL, Trigger.BULK):
        assert not is_backfill(trigger, never) and not is_backfill(trigger, synced)
    assert initial_queues(Trigger.NIGHTLY, [never, synced]) == {never: None, synced: NIGHTLY_QUEUE}
    assert initial_queues(Trigger.BULK, [never, synced]) == {never: PEOPLE_QUEUE, synced: PEOPLE_QUEUE}


def test_a_failed_first_sync_leaves_the_link_never_synced_a_succeeded_one_does_not(db, linked_dossier):
    dossier = linked_dossier()
    link_id = dossier.links[0].id
    failed = SyncRun(firm_id=dossier.firm_id, dossier_id=dossier.id, link_id=link_id, trigger=Trigger.SETUP,
                     status=RunStatus.FAILED)
    db.session.add(failed)
    db.session.commit()
    assert is_backfill(Trigger.NIGHTLY, link_id)
    failed.status = RunStatus.SUCCEEDED
    db.session.commit()
    assert not is_backfill(Trigger.NIGHTLY, link_id)


# --------------------------------------------------------------------------------------
# The quota, the reaper, "sync now" (in this process, real Redis)
# --------------------------------------------------------------------------------------

def test_a_firm_has_at_most_its_quota_of_first_syncs_in_the_backfill_queue(db, linked_dossier):
    runs = first_syncs(db, linked_dossier, 5)
    db.session.expire_all()
    rows = [run_row(db, run.id) for run in runs]
    assert [row.queue for row in rows] == [BACKFILL_QUEUE, BACKFILL_QUEUE, None, None, None]
    assert job_ids(BACKFILL_QUEUE) == [sync_job_id(run.id) for run in runs[:2]]
    assert [backfills_ahead(row) for row in rows] == [None, None, 2, 3, 4]
    # one ends (a worker took its job): the oldest waiting one takes its turn, and only that one
    sync_queue(BACKFILL_QUEUE).remove(sync_job_id(runs[0].id))
    rows[0].status = RunStatus.SUCCEEDED
    db.session.commit()
    assert release_next_backfills(runs[0].id) == [runs[2].id]
    assert job_ids(BACKFILL_QUEUE) == [sync_job_id(run.id) for run in (runs[1], runs[2])]
    assert release_next_backfills(runs[0].id) == []  # the quota is full again
    # a deferred first sync gives its turn back until it runs again
    sync_queue(BACKFILL_QUEUE).remove(sync_job_id(runs[1].id))
    row = run_row(db, runs[1].id)
    row.status = RunStatus.DEFERRED
    db.session.commit()
    assert release_next_backfills(runs[1].id) == [runs[3].id]
    # cancelling a released first sync frees its turn too
    assert cancel_run(runs[2].id).status == RunStatus.CANCELLED
    assert run_row(db, runs[4].id).queue == BACKFILL_QUEUE and sync_job_id(runs[4].id) in job_ids(BACKFILL_QUEUE)


def test_the_quota_is_a_setting(app, db, linked_dossier):
    app.config["SYNC_BACKFILL_JOBS_PER_FIRM"] = 1
    runs = first_syncs(db, linked_dossier, 3)
    assert job_ids(BACKFILL_QUEUE) == [sync_job_id(runs[0].id)]
    assert [run_row(db, run.id).queue for run in runs] == [BACKFILL_QUEUE, None, None]


def test_another_firms_first_sync_is_not_behind_the_waiting_ones(db, linked_dossier, other_firm):
    runs = first_syncs(db, linked_dossier, 4)
    other = in_firm(db, linked_dossier(name="Other firm's file", reference="O1"), other_firm)
    theirs = request_sync(other.id, Trigger.SETUP)
    assert job_ids(BACKFILL_QUEUE) == [sync_job_id(run.id) for run in (runs[0], runs[1], theirs)]


def test_the_reaper_leaves_waiting_first_syncs_alone_and_requeues_a_backfill_whose_job_vanished(db, linked_dossier):
    runs = first_syncs(db, linked_dossier, 4)
    later = utcnow() + timedelta(minutes=10)
    result = reap(now=later)
    assert result["requeued"] == [] and result["released"] == []
    assert all(fetch_job_or_none(run.id) is None for run in runs[2:])  # still waiting in the database
    # the job of a released first sync vanished (a flushed Redis): it comes back, to the backfill queue
    sync_queue(BACKFILL_QUEUE).remove(sync_job_id(runs[1].id))
    fetch_job(sync_job_id(runs[1].id)).delete()
    result = reap(now=later)
    assert result["requeued"] == [runs[1].id] and result["released"] == []
    assert job_ids(BACKFILL_QUEUE) == [sync_job_id(runs[0].id), sync_job_id(runs[1].id)]
    assert all(fetch_job_or_none(run.id) is None for run in runs[2:])


def test_the_reaper_releases_first_syncs_whose_turn_came_when_nobody_did(db, linked_dossier):
    runs = first_syncs(db, linked_dossier, 3)
    # the first one ended but its worker died before releasing the next one
    db.session.execute(SyncRun.__table__.update().where(SyncRun.id == runs[0].id).values(status=RunStatus.FAILED))
    db.session.commit()
    assert reap()["released"] == [runs[2].id]
    assert sync_job_id(runs[2].id) in job_ids(BACKFILL_QUEUE)


def test_sync_now_of_a_waiting_first_sync_moves_it_to_the_front_of_the_people_queue(db, linked_dossier, users,
                                                                                       firm):
    from app.access import actor_for

    runs = first_syncs(db, linked_dossier, 4)
    pressed_before = request_sync(linked_dossier(name="Pressed", reference="P1").id, Trigger.MANUAL)
    answer = request_sync(runs[3].dossier_id, Trigger.MANUAL, actor_for(users["admin"], firm.id))
    assert answer.id == runs[3].id and answer.trigger == Trigger.SETUP  # the same run, not a new one
    assert run_row(db, runs[3].id).queue == PEOPLE_QUEUE
    assert job_ids(PEOPLE_QUEUE) == [sync_job_id(runs[3].id), sync_job_id(pressed_before.id)]  # runs next
    assert backfills_ahead(run_row(db, runs[2].id)) == 2  # the one that moved is no longer ahead
    assert job_ids(BACKFILL_QUEUE) == [sync_job_id(run.id) for run in runs[:2]]
    # "sync now" of a first sync already in the backfill queue moves it too, and its turn goes to the next one
    request_sync(runs[1].dossier_id, Trigger.MANUAL)
    assert job_ids(PEOPLE_QUEUE)[0] == sync_job_id(runs[1].id)
    assert job_ids(BACKFILL_QUEUE) == [sync_job_id(run.id) for run in (runs[0], runs[2])]


def test_the_file_page_says_how_many_first_syncs_are_ahead(app, db, linked_dossier):
    from admin_views.dossier_page import run_progress

    runs = first_syncs(db, linked_dossier, 4)
    waiting = run_row(db, runs[3].id)
    with app.test_request_context():
        answer = run_progress(waiting, waiting.dossier)
        assert answer["status"] == RunStatus.QUEUED
        assert answer["message"] == "Waiting for its turn: 3 first syncs of this firm are ahead."
        assert run_progress(run_row(db, runs[0].id), waiting.dossier)["message"] is None


def fetch_job_or_none(run_id):
    from rq.exceptions import NoSuchJobError

    try:
        return fetch_job(sync_job_id(run_id))
    except NoSuchJobError:
        return None


# --------------------------------------------------------------------------------------
# The night: firms keep taking turns across fan-out rounds
# --------------------------------------------------------------------------------------

def test_jobs_in_turn_puts_a_later_firm_between_the_waiting_jobs():
    firm_of = {"a0": 1, "a1": 1, "a2": 1, "c0": 3, "b0": 2, "b1": 2, "x": None}
    queue = ["a0", "c0", "x", "a1", "a2", "b0", "b1"]
    assert jobs_in_turn(queue, {"b0", "b1"}, firm_of) == ["a0", "c0", "b0", "x", "a1", "b1", "a2"]
    # a firm already in the queue queues its new jobs after its own
    assert jobs_in_turn(["a0", "b0", "a1", "a2"], {"a2"}, firm_of) == ["a0", "b0", "a1", "a2"]
    assert jobs_in_turn(["b0", "b1"], {"b0", "b1"}, firm_of) == ["b0", "b1"]


def test_a_firm_whose_night_comes_later_takes_turns_with_the_runs_still_queued(db, linked_dossier, other_firm):
    big = [linked_dossier(name=f"Big {n}", reference=f"B{n}") for n in range(3)]
    other_firm.timezone = "Europe/London"  # its 02:00 comes half an hour after Brussels' 02:30 local
    db.session.commit()
    late = [in_firm(db, linked_dossier(name=f"Late {n}", reference=f"L{n}"), other_firm) for n in range(2)]
    new_file = in_firm(db, linked_dossier(name="Late new", reference="LN"), other_firm)
    synced_before(db, *big, *late)
    first_round = fan_out(now=BRUSSELS_NIGHT)
    assert len(first_round) == 3 and job_ids(NIGHTLY_QUEUE) == [sync_job_id(run_id) for run_id in first_round]
    second_round = fan_out(now=datetime(2025, 1, 15, 2, 5))
    runs = {run.id: run for run in db.session.scalars(select(SyncRun).where(SyncRun.id.in_(second_round)))}
    nightly = sorted(run_id for run_id, run in runs.items() if run.dossier_id != new_file.id)
    firm_order = [db.session.get(SyncRun, int(job_id.rsplit("-", 1)[1])).firm_id for job_id in job_ids(NIGHTLY_QUEUE)]
    assert len(nightly) == 2 and firm_order == [big[0].firm_id, other_firm.id] * 2 + [big[0].firm_id]
    # the late firm's file that never synced is a first sync, in the backfill queue, not the nightly one
    first = next(run for run in runs.values() if run.dossier_id == new_file.id)
    assert job_ids(BACKFILL_QUEUE) == [sync_job_id(first.id)]


# --------------------------------------------------------------------------------------
# End to end: one real worker
# --------------------------------------------------------------------------------------

@pytest.mark.slow
def test_one_worker_serves_people_then_nights_then_backfills_taking_turns(db, workers, linked_dossier, sandbox,
                                                                          other_firm):
    def demo_file(name, reference):
        return linked_dossier(package="demo", reference=SMALL, name=name, config={"base_url": f"{sandbox.url}/demo"},
                              credentials={"api_key": "demo-key"}, number=reference)

    a_runs = [request_sync(demo_file(f"A {n}", f"A{n}").id, Trigger.SETUP) for n in range(6)]
    b_night = [in_firm(db, demo_file(f"B night {n}", f"BN{n}"), other_firm) for n in range(2)]
    synced_before(db, *b_night)
    b_nightly = [request_sync(d.id, Trigger.NIGHTLY) for d in b_night]
    b_first = request_sync(in_firm(db, demo_file("B new", "BF"), other_firm).id, Trigger.SETUP)
    b_now = request_sync(in_firm(db, demo_file("B pressed", "BP"), other_firm).id, Trigger.MANUAL)
    assert job_ids(BACKFILL_QUEUE) == [sync_job_id(r.id) for r in (a_runs[0], a_runs[1], b_first)]
    assert job_ids(NIGHTLY_QUEUE) == [sync_job_id(r.id) for r in b_nightly]

    workers.start()
    everything = [*a_runs, *b_nightly, b_first, b_now]
    done = workers.wait_for(lambda: all(finished(db, r.id) for r in everything) and
                            {r.id: run_row(db, r.id) for r in everything}, timeout=120, what="every run")
    assert all(row.status == RunStatus.SUCCEEDED for row in done.values()), [row.message for row in done.values()]
    started = {run_id: row.started_at for run_id, row in done.items()}
    assert min(started, key=started.get) == b_now.id  # the person's press first
    assert max(started[r.id] for r in b_nightly) < started[a_runs[2].id]  # the night before A's third backfill
    assert started[b_first.id] < min(started[r.id] for r in a_runs[2:])  # B's first sync before A's last ones
    assert [r.id for r in sorted(a_runs, key=lambda r: started[r.id])] == [r.id for r in a_runs]  # A's in order
    assert all(row.queue == (BACKFILL_QUEUE if row.trigger == Trigger.SETUP else
                             NIGHTLY_QUEUE if row.trigger == Trigger.NIGHTLY else PEOPLE_QUEUE)
               for row in done.values())
