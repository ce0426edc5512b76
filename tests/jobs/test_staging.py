"""Staging on SQLite (jobs.staging): the spool, its sweeping, and staged syncs run in-process
against streamed ones (same data, no write lock while fetching, no spool left behind).

The syncs that kill workers and use the console while a sync fetches are in
tests/faults/test_staged_sync.py."""
import os
import sqlite3
import stat
import time
from datetime import date, datetime
from decimal import Decimal
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from app import locks
from app.models import Account, FiscalYear, LedgerLine, OpeningBalance, Period, PeriodBalance, RunStatus, SyncRun, Trigger
from app.services.syncs import request_sync
from connectors.base import (AccountRecord, BalanceRecord, CompanyProfileRecord, DataError, DeletedRecord,
                             FiscalYearRecord, LedgerLineRecord, OpeningBalanceRecord)
from jobs import progress as progress_module
from jobs import staging
from jobs.sync import run
from tests.jobs.conftest import line_count

RECORDS = [
    FiscalYearRecord(date(2024, 1, 1), date(2024, 12, 31)),
    AccountRecord("400000", "Customers", "asset", source_id="a-1"),
    BalanceRecord("400000", date(2024, 1, 31), Decimal("12.30"), "ytd", date(2024, 1, 1)),
    LedgerLineRecord("L1", date(2024, 1, 15), "400000", Decimal("-100.05"), date(2024, 1, 31), "Invoice 1", "R1",
                     "VRK", {"cost_centre": "Gent"}, datetime(2024, 2, 1, 8, 30)),
    DeletedRecord("VRK:2024001:", entry=True),
    OpeningBalanceRecord("400000", date(2024, 1, 1), Decimal("7")),
    CompanyProfileRecord("Bakkerij Janssens BV", "0456.789.012", address={"city": "Gent"},
                         incorporation_date=date(2001, 5, 4), officers=({"name": "An", "role": "Director"},),
                         capital={"amount": "18550.00", "currency": "EUR"}),
    ("not a canonical record", 42),
]


def test_a_spool_gives_back_every_record_in_order_and_leaves_no_file(tmp_path):
    with staging.Spool(tmp_path, dossier_id=7, run_id=12, chunk_records=3) as spool:
        for record in RECORDS:
            spool.add(record)
        assert spool.path.name.startswith("dossier-7-run-12-") and spool.path.exists()
        assert stat.S_IMODE(os.stat(spool.path).st_mode) == 0o600  # client books: owner only
        assert spool.count == len(RECORDS)
        assert list(spool.replay()) == RECORDS
    assert list(tmp_path.iterdir()) == []


def test_a_spool_is_removed_when_the_block_fails(tmp_path):
    with pytest.raises(DataError):
        with staging.Spool(tmp_path, dossier_id=7, run_id=12) as spool:
            spool.add(RECORDS[0])
            raise DataError("the package sent nonsense")
    assert list(tmp_path.iterdir()) == []


def test_sweep_removes_the_dossiers_leftovers_and_old_spools_only(tmp_path):
    for name in ("dossier-7-run-3-a.spool", "dossier-70-run-4-b.spool", "dossier-8-run-5-c.spool",
                 "dossier-9-run-6-d.spool", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    day_old = time.time() - 25 * 3600
    os.utime(tmp_path / "dossier-8-run-5-c.spool", (day_old, day_old))
    assert staging.sweep(tmp_path, 7) == ["dossier-7-run-3-a.spool", "dossier-8-run-5-c.spool"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dossier-70-run-4-b.spool", "dossier-9-run-6-d.spool",
                                                          "notes.txt"]


@pytest.mark.parametrize("value, dialect, staged", [
    ("auto", "sqlite", True), ("auto", "postgresql", False), (True, "postgresql", True), (False, "sqlite", False),
    ("true", "postgresql", True), ("0", "sqlite", False), ("Off", "sqlite", False),
])
def test_the_setting_decides_where_syncs_stage(app, value, dialect, staged):
    app.config["SYNC_STAGE_BEFORE_WRITE"] = value
    assert staging.stage_before_write(SimpleNamespace(dialect=SimpleNamespace(name=dialect))) is staged


def test_a_mistyped_setting_is_refused_with_its_value(app):
    app.config["SYNC_STAGE_BEFORE_WRITE"] = "sometimes"
    with pytest.raises(ValueError, match="auto, true or false, not 'sometimes'"):
        staging.stage_before_write(SimpleNamespace(dialect=SimpleNamespace(name="sqlite")))


# -- syncs run in-process ----------------------------------------------------------------


def sync_once(db, dossier_id):
    queued = request_sync(dossier_id, Trigger.MANUAL)
    run(queued.id)
    db.session.expire_all()
    return db.session.get(SyncRun, queued.id)


def spools(app):
    folder = os.path.join(app.instance_path, staging.SPOOL_FOLDER)
    return sorted(os.listdir(folder)) if os.path.isdir(folder) else []


def books(db, dossier_id):
    """A dossier's books by natural keys (no ids): accounts, fiscal years, period balances,
    ledger lines, opening balances."""
    db.session.expire_all()
    number = {a.id: a.number for a in db.session.scalars(select(Account).where(Account.dossier_id == dossier_id))}
    period = {p.id: p.end for p in db.session.scalars(select(Period).where(Period.dossier_id == dossier_id))}

    def rows(model, shape):
        return sorted(shape(row) for row in db.session.scalars(select(model).where(model.dossier_id == dossier_id)))

    return {
        "accounts": rows(Account, lambda a: (a.number, a.name, a.kind)),
        "fiscal_years": rows(FiscalYear, lambda y: (y.start, y.end, y.origin, y.locked)),
        "balances": rows(PeriodBalance, lambda b: (number[b.account_id], period[b.period_id], b.amount)),
        "lines": rows(LedgerLine, lambda l: (l.source_id, number[l.account_id], period[l.period_id], l.booking_date,
                                             l.amount, l.description, l.reference, l.journal)),
        "openings": rows(OpeningBalance, lambda o: (number[o.account_id], o.date, o.amount)),
    }


COUNTS = ("accounts_count", "balances_count", "lines_inserted", "lines_updated", "lines_deleted", "changed")


def test_staged_and_streamed_syncs_write_the_same_books(app, db, linked_dossier, sandbox):
    settings = dict(package="demo", reference="c-1001", config={"base_url": f"{sandbox.url}/demo"},
                    credentials={"api_key": "demo-key"})
    dossiers = {True: linked_dossier(name="Staged", **settings).id, False: linked_dossier(name="Streamed", **settings).id}

    def sync_both(what):
        done = {}
        for staged, dossier_id in dossiers.items():
            app.config["SYNC_STAGE_BEFORE_WRITE"] = staged
            done[staged] = sync_once(db, dossier_id)
            assert done[staged].status == RunStatus.SUCCEEDED, (what, staged, done[staged].message)
        assert [getattr(done[True], c) for c in COUNTS] == [getattr(done[False], c) for c in COUNTS], what
        staged_books = books(db, dossiers[True])
        assert staged_books == books(db, dossiers[False]), what
        return done[True], staged_books

    first, written = sync_both("the first sync")
    assert first.lines_inserted == len(written["lines"]) == 500 and written["balances"] and written["fiscal_years"]
    touched = sandbox.mutate("c-1001", add=2, change=1, delete=1)
    night, written = sync_both("the incremental sync")
    added, changed, deleted = (len(touched[key]) for key in ("added", "changed", "deleted"))
    assert (night.lines_inserted, night.lines_updated, night.lines_deleted) == (added, changed, deleted) != (0, 0, 0)
    assert len(written["lines"]) == 500 + added - deleted
    quiet, _ = sync_both("the sync with no changes")
    assert quiet.changed is False and quiet.lines_inserted == quiet.lines_updated == quiet.lines_deleted == 0
    assert spools(app) == []


def _write_lock_free(database):
    """Whether another connection can take SQLite's write lock at once."""
    other = sqlite3.connect(database, timeout=0)
    try:
        other.execute("BEGIN IMMEDIATE")
        other.rollback()
        return True
    except sqlite3.OperationalError:
        return False
    finally:
        other.close()


@pytest.mark.parametrize("staged", [True, False], ids=["staged", "streamed"])
def test_a_staged_sync_holds_no_transaction_and_no_write_lock_while_it_fetches(app, db, scripted, linked_dossier,
                                                                                staged):
    # read in the writer's thread (no read-ahead): by record 2,400 the streamed writer has
    # flushed two batches of lines, whatever the machine's load
    app.config.update(SYNC_STAGE_BEFORE_WRITE=staged, SYNC_READ_AHEAD_CHUNKS=0)
    scripted.lines = 2500
    dossier = linked_dossier()
    session, sqlite = db.session(), db.engine.dialect.name == "sqlite"  # the in-process sync's session
    seen = {}

    def look(index):  # while the sync fetches
        if index == 2400:
            seen.update(in_transaction=session.in_transaction(), spools=spools(app),
                        lock_free=_write_lock_free(db.engine.url.database) if sqlite else None)

    scripted.on_record = look
    done = sync_once(db, dossier.id)
    assert done.status == RunStatus.SUCCEEDED, done.message
    assert seen["in_transaction"] is not staged
    assert seen["lock_free"] is (staged if sqlite else None)
    assert len(seen["spools"]) == (1 if staged else 0)
    assert line_count(db, dossier.id) == 2500 and spools(app) == []


def test_progress_shows_fetching_up_to_90_then_writing(app, db, scripted, linked_dossier, monkeypatch):
    app.config.update(SYNC_STAGE_BEFORE_WRITE=True, SYNC_PROGRESS_EVERY_RECORDS=10, SYNC_PROGRESS_EVERY_SECONDS=3600)
    scripted.lines = 100
    published = []
    real = progress_module.Progress.publish

    def record(self):
        published.append((self.stream, self.records, self.percent))
        return real(self)

    monkeypatch.setattr(progress_module.Progress, "publish", record)
    done = sync_once(db, linked_dossier().id)
    assert done.status == RunStatus.SUCCEEDED, done.message
    fetching = [p for p in published if p[0] == "ledger_lines"]
    writing = [p for p in published if p[0] == progress_module.WRITING]
    assert published.index(writing[0]) > published.index(fetching[-1])  # writing comes after all fetching
    assert [p[2] for p in fetching][1:] == list(range(9, 91, 9))  # every 10 lines of 100: 9 % of the bar
    assert writing[0] == ("writing", 0, 90)
    assert [p[1] for p in writing][1:4] == [10, 20, 30] and 90 < writing[-1][2] <= 99
    assert writing[-1][1] == 104  # a fiscal year, three accounts and 100 lines written


@pytest.mark.parametrize("moment", ["fetch", "write", "failure"])
def test_a_cancelled_or_failed_staged_sync_rolls_back_and_leaves_no_spool(app, db, scripted, linked_dossier,
                                                                          monkeypatch, moment):
    app.config.update(SYNC_STAGE_BEFORE_WRITE=True, SYNC_PROGRESS_EVERY_RECORDS=5)
    dossier = linked_dossier()
    queued = request_sync(dossier.id, Trigger.MANUAL)
    staged = []
    if moment == "fetch":
        scripted.on_record = lambda index: index == 12 and (staged.append(spools(app)), locks.flag_cancel(queued.id))
    elif moment == "write":
        real = progress_module.Progress.start_writing

        def start_writing(self, total):
            real(self, total)
            staged.append(spools(app))
            locks.flag_cancel(queued.id)  # the next publication, five records on, sees it

        monkeypatch.setattr(progress_module.Progress, "start_writing", start_writing)
    else:
        scripted.on_record = lambda index: index == 20 and staged.append(spools(app))
        scripted.fail_at = ("ledger_lines", 25, DataError("Scripted Books sent an amount 'abc'."))
    run(queued.id)
    db.session.expire_all()
    done = db.session.get(SyncRun, queued.id)
    expected = RunStatus.FAILED if moment == "failure" else RunStatus.CANCELLED
    assert done.status == expected, done.message
    assert len(staged) == 1 and len(staged[0]) == 1  # it was staging: one spool while it ran
    assert line_count(db, dossier.id) == 0 and spools(app) == []
