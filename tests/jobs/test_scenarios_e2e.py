"""Every scenario and the nightly fan-out, end to end: scenario services, a real worker, the
sandbox's Demo Books and the writer."""
from datetime import date, datetime
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from app.access import actor_for
from app.models import (
    AuditEvent, Connection, Dossier, FiscalYear, LedgerLine, OpeningBalance, Period, PeriodBalance, Role, RunStatus,
    Scenario, SyncRun, Trigger,
)
from app.services import setup_preview
from app.services.links import ConfirmationNeeded, revert_to_manual, set_up_sync, switch_sync
from jobs.nightly import fan_out
from app.services.syncs import request_sync
from tests.conftest import make_user, upload_monthly_balances
from tests.jobs.conftest import bookkeeping_snapshot

pytestmark = pytest.mark.slow

NORTHWIND = "c-1003"  # a few dozen lines, calendar years 2023-2024
BAKERY = "c-1001"  # about 500 lines, calendar years 2023-2024


@pytest.fixture
def setting(db, firm, sandbox):
    admin = make_user("admin@alpha.test", firm, Role.ADMIN)
    connection = Connection(firm_id=firm.id, package="demo", kind="accounting", name="Demo Books",
                            config={"base_url": f"{sandbox.url}/demo"}, credentials={"api_key": "demo-key"})
    dossier = Dossier(firm_id=firm.id, name="Northwind Trading", frequency="month", currency="GBP")
    db.session.add_all([connection, dossier])
    db.session.commit()
    return {"actor": actor_for(admin, firm.id), "connection": connection, "dossier": dossier}


def latest_run_done(db, dossier_id):
    db.session.expire_all()
    run = db.session.scalars(select(SyncRun).where(SyncRun.dossier_id == dossier_id).order_by(SyncRun.id.desc())).first()
    return run if run is not None and run.status in RunStatus.FINISHED else None


def lines_per_link_and_year(db, dossier_id):
    rows = db.session.execute(
        select(LedgerLine.link_id, func.extract("year", Period.end), func.count())
        .join(Period, Period.id == LedgerLine.period_id)
        .where(LedgerLine.dossier_id == dossier_id)
        .group_by(LedgerLine.link_id, func.extract("year", Period.end))
    ).all()
    return {(link, int(year)): count for link, year, count in rows}


def balances_per_year(db, dossier_id):
    rows = db.session.execute(
        select(func.extract("year", Period.end), func.count()).select_from(PeriodBalance)
        .join(Period, Period.id == PeriodBalance.period_id)
        .where(PeriodBalance.dossier_id == dossier_id)
        .group_by(func.extract("year", Period.end))
    ).all()
    return {int(year): count for year, count in rows}


def sandbox_line_count(sandbox, company):
    return sum(1 for _ in sandbox.state.books[company].all_lines())


def test_replace_then_switch_then_re_establish_then_manual(db, workers, setting, sandbox):
    actor, connection, dossier = setting["actor"], setting["connection"], setting["dossier"]
    northwind_lines = sandbox_line_count(sandbox, NORTHWIND)
    workers.start()

    # (B) replace: the whole history comes from Northwind, fiscal years included
    first = set_up_sync(actor, dossier, connection, NORTHWIND, Scenario.REPLACE)
    run = workers.wait_for(lambda: latest_run_done(db, dossier.id), what="the set-up sync")
    assert run.status == RunStatus.SUCCEEDED and run.trigger == Trigger.SETUP, run.message
    years = db.session.scalars(select(FiscalYear.start).where(FiscalYear.dossier_id == dossier.id)).all()
    assert date(2023, 1, 1) in years and date(2024, 1, 1) in years
    counts = lines_per_link_and_year(db, dossier.id)
    assert {link for link, _ in counts} == {first.id} and sum(counts.values()) == northwind_lines
    # every fiscal year the file shows has figures: 2023 lies before the window (1 January two years
    # back) yet came with the package's unbounded line feed, so its balances are the sums of its lines
    per_year = balances_per_year(db, dossier.id)
    assert set(per_year) == {2023, 2024} and all(count > 0 for count in per_year.values()), per_year

    # (1) switch to the bakery's books from 2024: 2023 keeps Northwind's lines, 2024 is the bakery's
    second = switch_sync(actor, dossier, Scenario.SWITCH, connection, BAKERY, transfer_date=date(2024, 1, 1))
    run = workers.wait_for(lambda: (r := latest_run_done(db, dossier.id)) and r.link_id == second.id and r,
                           what="the switch sync")
    assert run.status == RunStatus.SUCCEEDED, run.message
    counts = lines_per_link_and_year(db, dossier.id)
    assert counts.get((first.id, 2023), 0) > 0 and (first.id, 2024) not in counts
    assert counts.get((second.id, 2024), 0) > 0 and (second.id, 2023) not in counts
    openings = db.session.scalars(select(OpeningBalance).where(OpeningBalance.dossier_id == dossier.id)).all()
    assert openings and {o.date for o in openings} == {date(2024, 1, 1)}
    assert {o.origin_link_id for o in openings} == {second.id}
    assert sum((o.amount for o in openings), Decimal(0)) == 0  # the bakery's books balance
    opening_rows = sorted((o.account_id, o.amount) for o in openings)

    # a resync leaves the opening balance as it was taken at set-up
    again = request_sync(dossier.id, Trigger.MANUAL)
    done = workers.wait_for(lambda: (r := latest_run_done(db, dossier.id)) and r.id == again.id and r)
    assert done.status == RunStatus.SUCCEEDED and done.changed is False
    assert sorted((o.account_id, o.amount) for o in db.session.scalars(
        select(OpeningBalance).where(OpeningBalance.dossier_id == dossier.id))) == opening_rows

    # (3) re-establish with Northwind: everything is Northwind's again, no transfer date
    third = switch_sync(actor, dossier, Scenario.RE_ESTABLISH, connection, NORTHWIND)
    run = workers.wait_for(lambda: (r := latest_run_done(db, dossier.id)) and r.link_id == third.id and r)
    assert run.status == RunStatus.SUCCEEDED, run.message
    counts = lines_per_link_and_year(db, dossier.id)
    assert {link for link, _ in counts} == {third.id} and sum(counts.values()) == northwind_lines

    # (2) revert to manual: the sync stops, nothing is deleted, sync now has nothing to run
    before = bookkeeping_snapshot(db, dossier.id)
    revert_to_manual(actor, dossier)
    assert request_sync(dossier.id, Trigger.MANUAL) is None
    assert bookkeeping_snapshot(db, dossier.id) == before


def test_keep_existing_data_and_sync_from_a_transfer_date(db, workers, setting):
    actor, connection, dossier = setting["actor"], setting["connection"], setting["dossier"]
    for year in (2023, 2024):
        db.session.add(FiscalYear(dossier_id=dossier.id, start=date(year, 1, 1), end=date(year, 12, 31), origin="manual"))
    db.session.commit()

    link = set_up_sync(actor, dossier, connection, BAKERY, Scenario.KEEP, transfer_date=date(2024, 1, 1))
    workers.start()
    run = workers.wait_for(lambda: latest_run_done(db, dossier.id), what="the set-up sync")
    assert run.status == RunStatus.SUCCEEDED, run.message
    counts = lines_per_link_and_year(db, dossier.id)
    assert set(counts) == {(link.id, 2024)}  # nothing written before the transfer date
    years = db.session.execute(select(FiscalYear.start, FiscalYear.origin).where(FiscalYear.dossier_id == dossier.id)).all()
    assert (date(2023, 1, 1), "manual") in years


def test_keep_over_uploaded_figures_is_confirmed_audited_and_says_the_package_had_none(db, workers, setting,
                                                                                     client):
    """The issue's case: a manual monthly file with uploaded figures for 2025 and for January and
    February 2026, linked with "keep" from 1 January 2026 to a company whose books stop in 2024."""
    actor, connection, dossier = setting["actor"], setting["connection"], setting["dossier"]
    upload_monthly_balances(dossier, until=date(2026, 2, 28), accounts=("1000", "4000"), amount="50")

    with pytest.raises(ConfirmationNeeded, match="Replaces 2 uploaded periods, Jan–Feb 2026"):
        set_up_sync(actor, dossier, connection, NORTHWIND, Scenario.KEEP, transfer_date=date(2026, 1, 1),
                    confirmed=False)
    db.session.rollback()
    assert balances_per_year(db, dossier.id) == {2025: 24, 2026: 4}

    link = set_up_sync(actor, dossier, connection, NORTHWIND, Scenario.KEEP, transfer_date=date(2026, 1, 1),
                       confirmed=True)
    workers.start()
    run = workers.wait_for(lambda: latest_run_done(db, dossier.id), what="the set-up sync")
    assert run.status == RunStatus.SUCCEEDED, run.message
    assert balances_per_year(db, dossier.id) == {2025: 24}  # the package has nothing from 2026: kept 2025 only
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "sync.setup"))
    assert (event.changes["preview"]["periods_kept"], event.changes["preview"]["periods_replaced"],
            event.changes["preview"]["balances_replaced"]) == (12, 2, 4)
    assert [span.end for span in setup_preview.uploads_left_empty(link)] == [date(2026, 1, 31), date(2026, 2, 28)]

    from tests.conftest import login
    assert login(client, "admin@alpha.test").status_code == 302
    tab = client.get(f"/admin/dossier-sync/?id={dossier.id}").get_data(as_text=True)
    assert "The package had no figures for Jan–Feb 2026; the uploaded figures were replaced." in tab


def test_nightly_fan_out_syncs_through_a_real_worker_once_a_night(db, workers, setting, firm):
    actor, connection, dossier = setting["actor"], setting["connection"], setting["dossier"]
    set_up_sync(actor, dossier, connection, NORTHWIND, Scenario.REPLACE, queue=False)
    firm.nightly_time, firm.timezone = "02:00", "Europe/Brussels"
    db.session.commit()

    night = datetime(2026, 3, 10, 2, 30)  # 03:30 in Brussels
    created = fan_out(now=night)
    assert len(created) == 1
    assert fan_out(now=night) == []  # the same night again creates nothing
    workers.start()
    run = workers.wait_for(lambda: latest_run_done(db, dossier.id), what="the nightly sync")
    assert run.id == created[0] and run.trigger == Trigger.NIGHTLY
    assert run.status == RunStatus.SUCCEEDED, run.message
    db.session.refresh(dossier)
    assert dossier.last_synced_at is not None


def test_balances_before_the_window_follow_backdated_lines_like_a_clean_sync(db, sandbox, linked_dossier):
    """The demo company's lines are older than the window (two years back): those periods take
    the sums of the lines, and lines added or changed there later move them, as a clean sync has them."""
    from app.models.bookkeeping import PeriodBalance
    from jobs.sync import run

    def synced(dossier_id):
        queued = request_sync(dossier_id, Trigger.MANUAL)
        run(queued.id)
        db.session.expire_all()
        assert db.session.get(SyncRun, queued.id).status == RunStatus.SUCCEEDED
        return sorted((b.account.number, b.period.end, b.amount)
                      for b in db.session.scalars(select(PeriodBalance).where(PeriodBalance.dossier_id == dossier_id)))

    settings = dict(package="demo", reference="c-1003", config={"base_url": f"{sandbox.url}/demo"},
                    credentials={"api_key": "demo-key"})
    kept = linked_dossier(name="Synced before the change", **settings).id
    before = synced(kept)
    assert before and max(end for _, end, _ in before) < date(2025, 1, 1)  # all before the window
    sandbox.mutate("c-1003", add=7, change=3)
    after = synced(kept)
    clean = synced(linked_dossier(name="Synced after the change", **settings).id)
    assert after == clean and after != before
