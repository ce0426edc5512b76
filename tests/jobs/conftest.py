"""Fixtures of the job-pipeline tests: a linked dossier, a scriptable in-process connector."""
import threading
from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from app.models import (Account, Connection, Dossier, DossierLink, FiscalYear, LedgerLine, OpeningBalance, Period,
                        PeriodBalance, Role, RunStatus, SyncRun)
from connectors.auth import ApiKey
from connectors.base import (ACCOUNTING, FIRM, AccountRecord, Connector, ConnectorSpec, FiscalYearRecord,
                             LedgerLineRecord, RateBudget, Stream)
from tests.conftest import make_user


class ScriptedBooks(Connector):
    """An in-process connector whose data and failures each test scripts.

    ``ScriptedBooks.lines`` is the number of ledger lines; ``fail_at`` (stream, index,
    exception) raises inside a stream; ``on_record`` is called with each line index.
    """

    spec = ConnectorSpec(
        key="scripted", display_name="Scripted Books", kind=ACCOUNTING, level=FIRM, auth=ApiKey(),
        config_schema=None, api_version="1", docs_url="https://example.invalid/scripted",
        rate_budget=RateBudget(per_minute=1000, per="tenant"),
    )
    lines = 30
    fail_at = None
    on_record = None
    seen_bookmarks = []

    class FiscalYears(Stream):
        name, record_type = "fiscal_years", FiscalYearRecord

        def records(self, state, window):
            type(self.connector).seen_bookmarks.append((self.name, state.bookmark))
            yield FiscalYearRecord(date(2024, 1, 1), date(2024, 12, 31))

    class Accounts(Stream):
        name, record_type = "accounts", AccountRecord

        def records(self, state, window):
            type(self.connector).seen_bookmarks.append((self.name, state.bookmark))
            for index, (number, name) in enumerate((("400000", "Customers"), ("700000", "Sales"), ("550000", "Bank"))):
                self.connector._maybe_fail(self.name, index)
                yield AccountRecord(number, name)

    class LedgerLines(Stream):
        name, record_type, primary_key, replication_key = "ledger_lines", LedgerLineRecord, "source_id", "cursor"

        def records(self, state, window):
            books = self.connector
            type(books).seen_bookmarks.append((self.name, state.bookmark))
            state.total = books.lines
            for i in range(books.lines):
                books._maybe_fail(self.name, i)
                if type(books).on_record:
                    type(books).on_record(i)
                account = "400000" if i % 2 == 0 else "700000"
                amount = Decimal("100.00") if i % 2 == 0 else Decimal("-100.00")
                yield LedgerLineRecord(source_id=f"L{i}", booking_date=date(2024, 1 + i % 12, 15), account=account,
                                       amount=amount, description=f"Invoice {i // 2}")
            state.advance(f"cursor-{books.lines}")

    streams = (FiscalYears, Accounts, LedgerLines)

    def _maybe_fail(self, stream, index):
        if self.fail_at and self.fail_at[0] == stream and self.fail_at[1] == index:
            raise self.fail_at[2]


@pytest.fixture
def scripted(monkeypatch):
    """Register :class:`ScriptedBooks` (key ``scripted``) for this test and reset its script."""
    import connectors.registry as registry

    real = registry.all_connectors()
    monkeypatch.setattr(registry, "all_connectors", lambda: {**real, "scripted": ScriptedBooks})
    monkeypatch.setattr(ScriptedBooks, "lines", 30)
    monkeypatch.setattr(ScriptedBooks, "fail_at", None)
    monkeypatch.setattr(ScriptedBooks, "on_record", None)
    monkeypatch.setattr(ScriptedBooks, "seen_bookmarks", [])
    return ScriptedBooks


@pytest.fixture
def linked_dossier(db, firm):
    """``linked_dossier(package="scripted", reference="C1", config=..., credentials=...)`` -> Dossier."""
    def _make(package="scripted", reference="C1", config=None, credentials=None, name="Bakery Janssens", **dossier):
        connection = Connection(firm_id=firm.id, package=package, kind="accounting", name=f"{package} connection",
                                config=config or {"base_url": "http://books.invalid"},
                                credentials=credentials or {"api_key": "sk-test-very-secret-key"})
        d = Dossier(firm_id=firm.id, name=name, frequency="month", **dossier)
        db.session.add_all([connection, d])
        db.session.flush()
        db.session.add(DossierLink(firm_id=firm.id, dossier_id=d.id, connection_id=connection.id,
                                   reference=reference, scenario="replace"))
        db.session.commit()
        return d

    return _make


def synced_before(db, *dossiers):
    """Give the link of each dossier a set-up run that succeeded long ago, so its next runs are no
    first syncs (they go to the nightly queue, not the backfill one); the ids of those runs."""
    from datetime import datetime

    history = [SyncRun(firm_id=d.firm_id, dossier_id=d.id, link_id=d.links[0].id, trigger="setup",
                       status=RunStatus.SUCCEEDED, queued_at=datetime(2024, 1, 1), finished_at=datetime(2024, 1, 1))
               for d in dossiers]
    db.session.add_all(history)
    db.session.commit()
    return {run.id for run in history}


@pytest.fixture
def users(firm, other_firm):
    """One user per role (plus staff without access to private dossiers, and an outsider)."""
    return {
        "admin": make_user("admin@alpha.test", firm, Role.ADMIN),
        "staff": make_user("staff@alpha.test", firm, Role.STAFF),
        "staff_no_access": make_user("limited@alpha.test", firm, Role.STAFF, multi_file_access=False),
        "external": make_user("external@alpha.test", firm, Role.EXTERNAL),
        "pulse": make_user("pulse@alpha.test", firm, Role.PULSE),
        "outsider": make_user("admin@beta.test", other_firm, Role.ADMIN),
        "support": make_user("support@firmsync.test", None, support=True),
    }


BOOKKEEPING = (Account, FiscalYear, Period, PeriodBalance, LedgerLine, OpeningBalance)


def bookkeeping_snapshot(db, dossier_id):
    """Every bookkeeping row of a dossier as sorted tuples (compare two snapshots with ==)."""
    db.session.expire_all()
    rows = {}
    for model in BOOKKEEPING:
        table = model.__table__
        result = db.session.execute(select(*table.columns).where(table.c.dossier_id == dossier_id))
        rows[model.__name__] = sorted(tuple(str(v) for v in row) for row in result)
    return rows


def line_count(db, dossier_id):
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(LedgerLine).where(LedgerLine.dossier_id == dossier_id))


def at_once(app, db, calls, timeout=30):
    """Run each of ``calls`` in its own thread (own app context and session), all released at
    the same moment by a barrier; the answers in order, after re-raising the first error."""
    barrier, answers, errors = threading.Barrier(len(calls)), [None] * len(calls), []

    def call(index):
        with app.app_context():
            try:
                barrier.wait(timeout)
                answers[index] = calls[index]()
            except Exception as exc:  # noqa: BLE001 - re-raised below
                errors.append(exc)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=call, args=(index,)) for index in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    if errors:
        raise errors[0]
    return answers


def run_row(db, run_id):
    """The sync run ``run_id`` as the database holds it now (the session's cache expired)."""
    db.session.expire_all()
    return db.session.get(SyncRun, run_id)


def finished(db, run_id):
    """The run once it has finished (succeeded, failed, needs a reconnect, cancelled), else None."""
    row = run_row(db, run_id)
    return row if row.status in RunStatus.FINISHED else None


def settled(db, run_id):
    """The run once it is finished or deferred (waiting for its next try), else None."""
    row = run_row(db, run_id)
    return row if row.status in RunStatus.FINISHED or row.status == RunStatus.DEFERRED else None
