"""Scenarios and transfer dates (ARCHITECTURE section 7) through app.services.links."""
from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import func, select
from werkzeug.exceptions import Forbidden

from app.access import actor_for
from app.models import (
    Account, AuditEvent, Connection, Dossier, DossierLink, FiscalYear, LedgerLine, Period, Role,
    Scenario, SyncRun,
)
from app.services.links import SetupError, revert_to_manual, set_up_sync, switch_sync, valid_transfer_dates
from tests.conftest import make_user


@pytest.fixture
def world(db, firm, other_firm):
    admin = make_user("admin@alpha.test", firm, Role.ADMIN)
    external = make_user("ext@alpha.test", firm, Role.EXTERNAL)
    dossier = Dossier(firm=firm, name="Bakkerij Janssens", frequency="year")
    db.session.add(dossier)
    db.session.flush()
    for year in (2023, 2024, 2025):
        fy = FiscalYear(dossier_id=dossier.id, start=date(year, 1, 1), end=date(year, 12, 31), origin="manual")
        db.session.add(fy)
        db.session.flush()
        db.session.add(Period(dossier_id=dossier.id, fiscal_year_id=fy.id, start=fy.start, end=fy.end))
    account = Account(dossier_id=dossier.id, number="700000", name="Sales", kind="income")
    db.session.add(account)
    db.session.flush()
    for period in db.session.scalars(select(Period).where(Period.dossier_id == dossier.id)):
        db.session.add(LedgerLine(dossier_id=dossier.id, link_id=None, source_id=f"manual-{period.end.year}",
                                  account_id=account.id, period_id=period.id, booking_date=period.end,
                                  amount=Decimal("-100.00")))
    books = Connection(firm=firm, package="demo", kind="accounting", name="Demo Books",
                       config={"base_url": "http://127.0.0.1:9"}, credentials={"api_key": "k"},
                       references=[{"reference": "1", "name": "Bakkerij Janssens BV"}])
    other = Connection(firm=other_firm, package="demo", kind="accounting", name="Other firm's books",
                       config={}, credentials={})
    db.session.add_all([books, other])
    db.session.commit()
    return {"admin": actor_for(admin, firm.id), "external": actor_for(external, firm.id),
            "dossier": dossier, "books": books, "other": other}


def lines_by_year(db, dossier):
    rows = db.session.execute(
        select(Period.end, LedgerLine.link_id).join(Period, Period.id == LedgerLine.period_id)
        .where(LedgerLine.dossier_id == dossier.id).order_by(Period.end)
    ).all()
    return {end.year: link_id for end, link_id in rows}


def test_valid_transfer_dates_are_fiscal_year_starts(world):
    assert valid_transfer_dates(world["dossier"]) == [date(2023, 1, 1), date(2024, 1, 1), date(2025, 1, 1)]


def test_keep_refuses_a_mid_year_transfer_date_and_names_the_valid_dates(db, world):
    with pytest.raises(SetupError) as error:
        set_up_sync(world["admin"], world["dossier"], world["books"], "1", Scenario.KEEP, date(2024, 7, 1), queue=False)
    assert "2024-07-01 is not the first day" in str(error.value)
    assert "2023-01-01, 2024-01-01, 2025-01-01" in str(error.value)
    assert db.session.scalar(select(func.count()).select_from(DossierLink)) == 0


def test_keep_keeps_data_before_the_transfer_date_and_queues_the_setup_run(db, world):
    link = set_up_sync(world["admin"], world["dossier"], world["books"], "1", Scenario.KEEP, date(2024, 1, 1))
    assert link.valid_from == date(2024, 1, 1) and link.reference_name == "Bakkerij Janssens BV"
    assert lines_by_year(db, world["dossier"]) == {2023: None}  # 2024 and 2025 will come from the sync
    run = db.session.scalar(select(SyncRun).where(SyncRun.link_id == link.id))
    assert run.trigger == "setup" and run.status == "queued"
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "sync.setup"))
    assert event.changes["deleted"]["ledger_lines"] == 2


def test_replace_deletes_all_bookkeeping_data(db, world):
    set_up_sync(world["admin"], world["dossier"], world["books"], "1", Scenario.REPLACE, queue=False)
    assert lines_by_year(db, world["dossier"]) == {}
    assert db.session.scalar(select(func.count()).select_from(FiscalYear)) == 0
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "sync.setup"))
    assert event.changes["deleted"]["ledger_lines"] == 3


def test_locked_years_survive_replace(db, world):
    year = db.session.scalar(select(FiscalYear).where(FiscalYear.start == date(2023, 1, 1)))
    year.locked = True
    db.session.commit()
    set_up_sync(world["admin"], world["dossier"], world["books"], "1", Scenario.REPLACE, queue=False)
    assert lines_by_year(db, world["dossier"]) == {2023: None}
    assert [y.start for y in db.session.scalars(select(FiscalYear))] == [date(2023, 1, 1)]


def test_a_second_setup_is_refused_and_switch_ends_the_old_link(db, world):
    first = set_up_sync(world["admin"], world["dossier"], world["books"], "1", Scenario.KEEP, date(2023, 1, 1), queue=False)
    with pytest.raises(SetupError, match="already has a sync"):
        set_up_sync(world["admin"], world["dossier"], world["books"], "1", Scenario.REPLACE, queue=False)
    with pytest.raises(SetupError, match="not the first day"):
        switch_sync(world["admin"], world["dossier"], Scenario.SWITCH, world["books"], "2", date(2025, 3, 1), queue=False)
    second = switch_sync(world["admin"], world["dossier"], Scenario.SWITCH, world["books"], "2", date(2025, 1, 1), queue=False)
    db.session.refresh(first)
    assert first.ended_at is not None and first.valid_to == date(2024, 12, 31)
    assert second.valid_from == date(2025, 1, 1) and second.active
    assert world["dossier"].active_link("accounting").id == second.id


def test_revert_to_manual_deletes_nothing(db, world):
    set_up_sync(world["admin"], world["dossier"], world["books"], "1", Scenario.KEEP, date(2025, 1, 1), queue=False)
    before = lines_by_year(db, world["dossier"])
    ended = revert_to_manual(world["admin"], world["dossier"])
    assert ended.ended_at is not None
    assert world["dossier"].active_link("accounting") is None
    assert lines_by_year(db, world["dossier"]) == before
    assert db.session.scalar(select(AuditEvent).where(AuditEvent.action == "sync.manual")) is not None


def test_re_establish_replaces_synced_and_manual_data(db, world):
    set_up_sync(world["admin"], world["dossier"], world["books"], "1", Scenario.KEEP, date(2025, 1, 1), queue=False)
    link = switch_sync(world["admin"], world["dossier"], Scenario.RE_ESTABLISH, world["books"], "1", queue=False)
    assert link.valid_from is None and link.scenario == Scenario.RE_ESTABLISH
    assert lines_by_year(db, world["dossier"]) == {}


def test_roles_and_firms_are_checked(db, world):
    with pytest.raises(Forbidden):
        set_up_sync(world["external"], world["dossier"], world["books"], "1", Scenario.REPLACE, queue=False)
    with pytest.raises(SetupError, match="your firm's connections"):
        set_up_sync(world["admin"], world["dossier"], world["other"], "1", Scenario.REPLACE, queue=False)
    world["books"].status = "needs_reconnect"
    db.session.commit()
    with pytest.raises(SetupError, match="reconnected"):
        set_up_sync(world["admin"], world["dossier"], world["books"], "1", Scenario.REPLACE, queue=False)
    assert lines_by_year(db, world["dossier"]) == {2023: None, 2024: None, 2025: None}


def test_switch_keeps_the_history_choice_and_audits_what_it_replaced(db, world):
    from app.models.dossier import History
    from app.services.links import ConfirmationNeeded

    with pytest.raises(ConfirmationNeeded, match="Replaces 2 uploaded periods"):  # the manual lines of 2024 and 2025
        set_up_sync(world["admin"], world["dossier"], world["books"], "1", Scenario.KEEP, date(2024, 1, 1),
                    queue=False, confirmed=False)
    db.session.rollback()
    assert lines_by_year(db, world["dossier"]) == {2023: None, 2024: None, 2025: None}
    first = set_up_sync(world["admin"], world["dossier"], world["books"], "1", Scenario.KEEP, date(2023, 1, 1),
                        queue=False, confirmed=True)
    assert first.history == History.PREVIOUS_YEAR
    second = switch_sync(world["admin"], world["dossier"], Scenario.SWITCH, world["books"], "2", date(2025, 1, 1),
                         queue=False, history=History.TRANSFER_DATE, confirmed=False)  # nothing uploaded is left
    assert second.history == History.TRANSFER_DATE
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "sync.switch"))
    assert event.changes["history"] == "transfer_date" and event.changes["preview"]["periods_replaced"] == 0
