"""``updated_since`` per row: the sync writer stamps what it inserts or really changes, and a
pull after a sync returns those accounts, balances and ledger lines only (docs/api.md)."""
from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select, update

from app.extensions import db
from app.models import Account, LedgerLine, PeriodBalance, RunStatus, SyncRun
from app.models.base import utcnow
from app.services.bookkeeping import write_records
from connectors.base import AccountRecord, BalanceRecord, LedgerLineRecord
from tests.api.api_world import ApiClient, token_for
from tests.console_world import build_world


def line(source_id, day, account, amount, description):
    return LedgerLineRecord(source_id=source_id, booking_date=day, account=account, amount=Decimal(amount),
                            description=description)


#: what last night's sync wrote (through the writer, as a real sync does)
FIRST_SYNC = [
    AccountRecord("550000", "Bank", "asset"), AccountRecord("700000", "Sales", "income"),
    BalanceRecord("550000", date(2024, 1, 31), Decimal("30.30"), "movement"),
    BalanceRecord("700000", date(2024, 1, 31), Decimal("-30.30"), "movement"),
    line("L0", date(2024, 1, 3), "550000", "10.10", "line 0"),
    line("L1", date(2024, 1, 4), "550000", "10.10", "line 1"),
    line("L2", date(2024, 1, 5), "550000", "10.10", "line 2"),
    line("L3", date(2024, 1, 5), "700000", "-30.30", "line 3"),
]


@pytest.fixture
def world(app):
    world = build_world()
    write_records(db.session, world.a_link, FIRST_SYNC)
    night = utcnow() - timedelta(hours=8)  # everything so far was written last night
    for model in (Account, PeriodBalance, LedgerLine):
        db.session.execute(update(model).values(updated_at=night))
    db.session.commit()
    return world


@pytest.fixture
def api(client, world):
    return ApiClient(client, token_for(world.alpha, ("read",), admin_id=world.user_admin))


def source_ids(api, url):
    rows = api.get(url).get_json()["data"]
    return sorted(row.get("source_id") or row.get("number") or row["id"] for row in rows)


def test_a_pull_after_a_sync_returns_only_the_rows_it_inserted_or_changed(world, api):
    d = world.a_public
    as_of = api.get(f"/api/v1/dossiers/{d}/ledger-lines").get_json()["as_of"]
    run = SyncRun(firm_id=world.alpha, dossier_id=d, link_id=world.a_link, status=RunStatus.RUNNING,
                  started_at=utcnow())
    db.session.add(run)
    db.session.commit()
    result = write_records(db.session, world.a_link, [
        AccountRecord("550000", "Bank (renamed)", "asset"),           # changed
        AccountRecord("700000", "Sales", "income"),                   # the same: not stamped
        line("L0", date(2024, 1, 3), "550000", "10.10", "line 0"),    # the same: not stamped
        line("L2", date(2024, 1, 5), "550000", "99.99", "line 2"),    # amount changed
        line("L9", date(2024, 7, 1), "550000", "1.00", "new line"),   # new
    ])
    run.status, run.changed, run.finished_at = RunStatus.SUCCEEDED, result.changed, utcnow()
    db.session.commit()

    assert source_ids(api, f"/api/v1/dossiers/{d}/ledger-lines?updated_since={as_of}") == ["L2", "L9"]
    assert source_ids(api, f"/api/v1/dossiers/{d}/accounts?updated_since={as_of}") == ["550000"]
    # without updated_since: every row, as before
    assert len(api.get(f"/api/v1/dossiers/{d}/ledger-lines").get_json()["data"]) == 5


def test_changed_balances_are_stamped_and_the_same_ones_are_not(world, api):
    d = world.a_public
    as_of = api.get(f"/api/v1/dossiers/{d}/balances").get_json()["as_of"]
    run = SyncRun(firm_id=world.alpha, dossier_id=d, link_id=world.a_link, status=RunStatus.RUNNING,
                  started_at=utcnow())
    db.session.add(run)
    db.session.commit()
    write_records(db.session, world.a_link, [
        BalanceRecord("550000", date(2024, 1, 31), Decimal("30.30"), "movement"),  # the same
        BalanceRecord("700000", date(2024, 1, 31), Decimal("-45.00"), "movement"),  # changed
    ])
    run.status, run.changed, run.finished_at = RunStatus.SUCCEEDED, True, utcnow()
    db.session.commit()
    rows = api.get(f"/api/v1/dossiers/{d}/balances?updated_since={as_of}").get_json()["data"]
    sales = db.session.scalar(select(Account.id).where(Account.dossier_id == d, Account.number == "700000"))
    assert [(row["account_id"], row["amount"]) for row in rows] == [(sales, "-45.00")]
    assert rows[0]["updated_at"].endswith("Z")


def test_rows_written_by_a_run_still_open_at_the_last_pull_are_not_missed(world, api):
    """A run stamps rows while it runs and commits at its end: a pull between the two must not
    lose them (the filter starts at the earlier of updated_since and the run's start)."""
    d = world.a_public
    started = utcnow() - timedelta(minutes=10)
    run = SyncRun(firm_id=world.alpha, dossier_id=d, link_id=world.a_link, status=RunStatus.RUNNING,
                  started_at=started)
    db.session.add(run)
    db.session.commit()
    write_records(db.session, world.a_link, [line("L1", date(2024, 1, 4), "550000", "42.00", "line 1")])
    db.session.execute(update(LedgerLine).where(LedgerLine.source_id == "L1")
                       .values(updated_at=started + timedelta(minutes=5)))  # stamped mid-run
    db.session.commit()
    last_pull = (utcnow() - timedelta(minutes=2)).replace(microsecond=0).isoformat() + "Z"  # before the commit
    run.status, run.changed, run.finished_at = RunStatus.SUCCEEDED, True, utcnow()
    db.session.commit()
    assert source_ids(api, f"/api/v1/dossiers/{d}/ledger-lines?updated_since={last_pull}") == ["L1"]
