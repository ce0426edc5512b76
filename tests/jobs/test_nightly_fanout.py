"""The set-based nightly fan-out and the batched "Resync selected": same guarantees as one by one."""
from datetime import datetime, timedelta

from sqlalchemy import func, select

from app.models import Connection, ConnectionStatus, Dossier, DossierLink, Firm, RunStatus, SyncRun, Trigger
from app.models.base import utcnow
from jobs import nightly
from jobs.nightly import fan_out
from app.services.queues import BACKFILL_QUEUE, PEOPLE_QUEUE, fetch_job, sync_job_id, sync_queue
from app.services.syncs import request_sync, request_syncs
from tests.jobs.conftest import synced_before

# Brussels is UTC+1 in January: 01:30 UTC is 02:30 local, after the default 02:00.
AFTER_NIGHTLY = datetime(2025, 1, 15, 1, 30)


def all_runs(db):
    db.session.expire_all()
    return db.session.scalars(select(SyncRun).order_by(SyncRun.id)).all()


def test_fan_out_commits_runs_marks_dossiers_and_enqueues_one_job_per_run(db, linked_dossier):
    dossiers = [linked_dossier(name=f"Client {i}", reference=f"C{i}") for i in range(4)]
    history = synced_before(db, *dossiers)
    created = fan_out(now=AFTER_NIGHTLY)
    runs = [r for r in all_runs(db) if r.id not in history]
    assert sorted(created) == [r.id for r in runs] and len(runs) == 4
    assert {r.dossier_id for r in runs} == {d.id for d in dossiers}
    assert all(r.status == RunStatus.QUEUED and r.trigger == Trigger.NIGHTLY and r.firm_id == dossiers[0].firm_id
               and r.attempt == 1 and r.queued_at is not None and r.triggered_by_id is None for r in runs)
    assert {r.nightly_key for r in runs} == {f"{r.link_id}:2025-01-15" for r in runs}
    assert all(db.session.get(Dossier, d.id).sync_status == RunStatus.QUEUED for d in dossiers)
    assert sorted(sync_queue().get_job_ids()) == sorted(sync_job_id(run_id) for run_id in created)
    job = fetch_job(sync_job_id(created[0]))
    assert job.func_name == "jobs.sync.run" and job.args == [created[0]]
    # the cron fires again a minute later: nothing new in the database or on the queue
    assert fan_out(now=AFTER_NIGHTLY + timedelta(minutes=1)) == []
    assert len(all_runs(db)) == 4 + len(history) and sync_queue().count == 4


def test_every_active_link_gets_a_run_but_not_ended_links_or_inactive_connections(db, firm, linked_dossier):
    both = linked_dossier(name="Books and payroll")
    second = Connection(firm_id=firm.id, package="scripted", kind="administration", name="Second",
                        config={}, credentials={"api_key": "sk-other"})
    db.session.add(second)
    db.session.flush()
    db.session.add(DossierLink(firm_id=firm.id, dossier_id=both.id, connection_id=second.id, reference="A1",
                               scenario="replace", kind="administration"))
    ended = linked_dossier(name="Former client", reference="OLD")
    ended.links[0].ended_at = utcnow()
    disabled = linked_dossier(name="Disabled", reference="DIS")
    disabled.links[0].connection.status = ConnectionStatus.DISABLED
    db.session.commit()
    fan_out(now=AFTER_NIGHTLY)
    runs = all_runs(db)
    assert [r.dossier_id for r in runs] == [both.id, both.id]
    assert {r.link_id for r in runs} == {link.id for link in both.links}
    assert db.session.get(Dossier, ended.id).sync_status is None
    assert db.session.get(Dossier, disabled.id).sync_status is None


def test_firms_are_queued_by_their_own_local_night(db, firm, other_firm, linked_dossier):
    linked_dossier(name="Brussels client")
    other_firm.timezone, other_firm.nightly_time = "Asia/Tokyo", "03:00"
    late = Firm(name="Late firm", country="BE", timezone="Europe/Brussels", nightly_time="04:00")
    db.session.add(late)
    db.session.flush()
    for owner, name in ((other_firm, "Tokyo client"), (late, "Late client")):
        connection = Connection(firm_id=owner.id, package="scripted", kind="accounting", name="Books",
                                config={}, credentials={"api_key": "sk-test"})
        dossier = Dossier(firm_id=owner.id, name=name)
        db.session.add_all([connection, dossier])
        db.session.flush()
        db.session.add(DossierLink(firm_id=owner.id, dossier_id=dossier.id, connection_id=connection.id,
                                   reference=name, scenario="replace"))
    db.session.commit()
    # 01:30 UTC: 02:30 in Brussels (due), 10:30 in Tokyo (due, its night of the 15th), 02:30 < 04:00 for the late firm
    fan_out(now=AFTER_NIGHTLY)
    by_firm = {r.firm_id: r.nightly_key.split(":")[1] for r in all_runs(db)}
    assert by_firm == {firm.id: "2025-01-15", other_firm.id: "2025-01-15"}
    fan_out(now=datetime(2025, 1, 15, 3, 5))  # 04:05 in Brussels: the late firm's turn
    assert len(all_runs(db)) == 3 and {r.firm_id for r in all_runs(db)} == {firm.id, other_firm.id, late.id}
    # 16:00 UTC is 01:00 on the 16th in Tokyo: before its 03:00, so nothing yet
    for run in all_runs(db):
        run.status = RunStatus.SUCCEEDED  # a run still queued would cover the next night too
    db.session.commit()
    assert fan_out(now=datetime(2025, 1, 15, 16, 0)) == []
    assert len(fan_out(now=datetime(2025, 1, 15, 18, 30))) == 1  # 03:30 on the 16th in Tokyo


def test_a_run_that_covered_tonight_keeps_covering_it_after_it_finished(db, linked_dossier):
    dossier = linked_dossier()
    clicked = request_sync(dossier.id, Trigger.MANUAL)
    assert fan_out(now=AFTER_NIGHTLY) == []
    clicked = db.session.get(SyncRun, clicked.id)
    assert clicked.nightly_key == f"{clicked.link_id}:2025-01-15"
    clicked.status = RunStatus.SUCCEEDED
    db.session.commit()
    assert fan_out(now=AFTER_NIGHTLY + timedelta(hours=1)) == []
    assert [r.id for r in all_runs(db)] == [clicked.id]


def test_a_file_synced_after_tonights_nightly_moment_gets_no_nightly_run_until_the_next_night(db, linked_dossier):
    """A set-up run at 15:00 needs no "nightly" run a minute later: it covers tonight; tomorrow night runs."""
    fresh, stale = linked_dossier(name="Set up this afternoon"), linked_dossier(name="Synced yesterday")
    for dossier, finished_at in ((fresh, datetime(2025, 1, 15, 14, 0)), (stale, datetime(2025, 1, 14, 12, 0))):
        link = db.session.scalars(select(DossierLink).where(DossierLink.dossier_id == dossier.id)).one()
        db.session.add(SyncRun(firm_id=dossier.firm_id, dossier_id=dossier.id, link_id=link.id, trigger=Trigger.SETUP,
                               status=RunStatus.SUCCEEDED, finished_at=finished_at))
    db.session.commit()
    afternoon = datetime(2025, 1, 15, 14, 1)  # 15:01 in Brussels, long after tonight's 02:00
    created = fan_out(now=afternoon)
    assert [db.session.get(SyncRun, run_id).dossier_id for run_id in created] == [stale.id]
    setup = db.session.scalars(select(SyncRun).where(SyncRun.dossier_id == fresh.id)).one()
    assert setup.nightly_key.endswith(":2025-01-15") and setup.trigger == Trigger.SETUP
    assert fan_out(now=afternoon + timedelta(hours=3)) == []
    nightly = db.session.get(SyncRun, created[0])
    nightly.status, nightly.finished_at = RunStatus.SUCCEEDED, afternoon + timedelta(minutes=5)
    db.session.commit()
    next_night = fan_out(now=afternoon + timedelta(hours=12))  # 03:01 on the 16th, local
    assert {db.session.get(SyncRun, run_id).dossier_id for run_id in next_night} == {fresh.id, stale.id}


def test_a_file_synced_in_the_hours_before_its_night_gets_no_nightly_run(db, app, linked_dossier):
    """01:00 Brussels (00:00 UTC) is an hour before the 02:00 night: that sync covers tonight."""
    recent, earlier = linked_dossier(name="Synced at one"), linked_dossier(name="Synced at lunch")
    for dossier, finished_at in ((recent, datetime(2025, 1, 15, 0, 0)), (earlier, datetime(2025, 1, 14, 11, 0))):
        db.session.add(SyncRun(firm_id=dossier.firm_id, dossier_id=dossier.id, link_id=dossier.links[0].id,
                               trigger=Trigger.SETUP, status=RunStatus.SUCCEEDED, finished_at=finished_at))
    db.session.commit()
    assert app.config["NIGHTLY_SKIP_RECENT_HOURS"] == 6
    created = fan_out(now=AFTER_NIGHTLY)
    assert [db.session.get(SyncRun, run_id).dossier_id for run_id in created] == [earlier.id]


def test_only_the_newest_active_run_of_a_link_takes_tonights_key(db, linked_dossier):
    dossier = linked_dossier()
    link_id = dossier.links[0].id
    older, newer = (SyncRun(firm_id=dossier.firm_id, dossier_id=dossier.id, link_id=link_id, trigger=Trigger.MANUAL,
                            status=status) for status in (RunStatus.DEFERRED, RunStatus.QUEUED))
    db.session.add(older)
    db.session.flush()
    db.session.add(newer)
    db.session.commit()
    assert fan_out(now=AFTER_NIGHTLY) == []
    keys = {r.id: r.nightly_key for r in all_runs(db)}
    assert keys == {older.id: None, newer.id: f"{link_id}:2025-01-15"}


def test_a_clash_with_a_concurrent_fan_out_is_retried_without_doubling(db, linked_dossier, monkeypatch):
    first, second = linked_dossier(name="A"), linked_dossier(name="B", reference="C2")
    # another fan-out committed A's run for tonight, but this one decided before seeing it
    taken = SyncRun(firm_id=first.firm_id, dossier_id=first.id, link_id=first.links[0].id, trigger=Trigger.NIGHTLY,
                    nightly_key=f"{first.links[0].id}:2025-01-15", status=RunStatus.SUCCEEDED)
    db.session.add(taken)
    db.session.commit()
    real = nightly._links_without_a_run
    calls = []

    def blind_the_first_time(firm_ids, suffix):
        calls.append(suffix)
        return nightly._active_links(firm_ids) if len(calls) == 1 else real(firm_ids, suffix)

    monkeypatch.setattr(nightly, "_links_without_a_run", blind_the_first_time)
    created = fan_out(now=AFTER_NIGHTLY)
    assert len(calls) == 2  # the clash rolled back the first try
    runs = all_runs(db)
    assert [r.dossier_id for r in runs if r.id in created] == [second.id]
    assert db.session.scalar(select(func.count()).select_from(SyncRun)) == 2
    # B has never synced: its night's run is its first sync, released to the backfill queue
    assert sync_queue(BACKFILL_QUEUE).get_job_ids() == [sync_job_id(created[0])]


def test_bulk_resync_reuses_active_runs_and_queues_the_rest_in_order(db, linked_dossier):
    dossiers = [linked_dossier(name=f"Client {i}", reference=f"C{i}") for i in range(3)]
    busy = request_sync(dossiers[1].id, Trigger.MANUAL)
    ids = [dossiers[2].id, dossiers[1].id, dossiers[0].id, dossiers[2].id]
    runs, skipped = request_syncs(ids, Trigger.BULK)
    assert skipped == []
    assert [r.dossier_id for r in runs] == [dossiers[2].id, dossiers[1].id, dossiers[0].id]
    assert runs[1].id == busy.id and runs[1].trigger == Trigger.MANUAL
    new = [runs[0], runs[2]]
    assert all(r.trigger == Trigger.BULK and r.status == RunStatus.QUEUED for r in new)
    assert set(sync_queue(PEOPLE_QUEUE).get_job_ids()) == {sync_job_id(r.id) for r in (busy, *new)}
    assert all(db.session.get(Dossier, d.id).sync_status == RunStatus.QUEUED for d in dossiers)
    again, _ = request_syncs(ids, Trigger.BULK)
    assert [r.id for r in again] == [r.id for r in runs]
    assert len(all_runs(db)) == 3 and sync_queue(PEOPLE_QUEUE).count == 3


def test_firms_take_turns_on_the_queue_and_a_press_of_sync_now_goes_first(db, other_firm, linked_dossier):
    big = [linked_dossier(name=f"Big {i}", reference=f"B{i}") for i in range(3)]
    small = linked_dossier(name="Small", reference="S1")  # moved to the other firm, with its link
    for row in (small, small.links[0], small.links[0].connection):
        row.firm_id = other_firm.id
    db.session.commit()
    synced_before(db, *big, small)
    created = fan_out(now=AFTER_NIGHTLY)
    runs = {sync_job_id(run_id): db.session.get(SyncRun, run_id) for run_id in created}
    queued = sync_queue().get_job_ids()
    assert sorted(queued) == sorted(runs) and len(queued) == 4
    # the first run of each firm, then the second...: the small firm's only run is not behind the big one's three
    assert {runs[job_id].dossier_id for job_id in queued[:2]} == {big[0].id, small.id}
    pressed = request_sync(linked_dossier(name="Pressed", reference="P1").id, Trigger.MANUAL)
    assert sync_queue(PEOPLE_QUEUE).get_job_ids() == [sync_job_id(pressed.id)]  # before the night's runs
