"""Applying canonical records to a dossier: the one writer of synced bookkeeping data.

:class:`SyncWriter` takes the records a connector yields (any order of streams, any
size) and upserts them into the dossier of one link on their natural keys:

================  ===============================
row               natural key
================  ===============================
Account           (dossier, number)
FiscalYear        (dossier, start)
Period            (dossier, end)
PeriodBalance     (dossier, account, period)
LedgerLine        (link, source id)
OpeningBalance    (dossier, account, date)
================  ===============================

Rules it enforces (ARCHITECTURE sections 6 to 8):

* **Idempotent.** Only rows whose values differ are written; a resync with unchanged
  source data executes no INSERT, UPDATE or DELETE and reports ``changed=False``.
* **Bounded memory, bulk SQL.** Ledger lines and deletes are buffered in batches
  (:data:`BATCH_SIZE`); per batch, the existing rows are loaded in ONE query by natural
  key and only the differences are written with Core ``executemany`` statements (no ORM
  object per line); new rows go in through :func:`insert_rows` (``COPY`` on PostgreSQL). Balances and opening balances are small (accounts x periods) and are
  written at :meth:`SyncWriter.finish`.
* **Periods.** A line lands in the dossier period containing its booking period end (its
  booking date when the package has no booking period). Balances with basis ``ytd``
  (within the package's fiscal year) or ``closing`` are converted to period movements;
  several package periods inside one dossier period (a quarterly dossier fed monthly)
  add up.
* **Transfer date** (``link.valid_from``): records for periods before it are not written,
  those periods keep their origin. At the set-up run (``opening_balance_taken_at`` empty)
  the opening balance at the transfer date is computed once per account as the sum of
  everything before it and stored as :class:`~app.models.OpeningBalance` rows; later runs
  never change it.
* **Locked fiscal years** (support) are never changed, nor the data of their periods.
* **One transaction.** The writer never commits; the caller commits once, or rolls back
  and the dossier's data is exactly as before.

Usage (the sync job)::

    writer = SyncWriter(db.session, link_id, run_id)
    for record in records:
        writer.write(record)
    result = writer.finish()
    db.session.commit()
"""
from __future__ import annotations

import json as jsonlib
from bisect import bisect_right
from collections import defaultdict
from dataclasses import dataclass
from datetime import timezone
from decimal import Decimal, InvalidOperation
from operator import itemgetter

from sqlalchemy import (JSON, DateTime, Integer, String, bindparam, cast, delete, func, insert, literal, or_, select,
                        true, update)

from app.services import fiscal_years, sync_windows
from app.models import (
    Account, Dossier, DossierLink, FiscalYear, LedgerLine, OpeningBalance, Period, PeriodBalance,
)
from app.models.base import utcnow
from connectors.base import (
    AccountRecord, BalanceRecord, DataError, DeletedRecord, FiscalYearRecord, LedgerLineRecord,
    OpeningBalanceRecord,
)

#: ledger lines and deletes buffered before one read query and one write per kind
BATCH_SIZE = 1000
CENT = Decimal("0.01")
#: a day not looked up yet (None is a day without a period)
_UNSEEN = object()

_LINE_FIELDS = (
    "account_id", "period_id", "booking_date", "amount", "description", "reference", "journal",
    "dimensions", "modified_at",
)


@dataclass
class WriteResult:
    """What one write touched. ``accounts`` and ``balances`` count rows inserted, changed or
    removed; ``changed`` is False when nothing at all was written."""

    accounts: int = 0
    balances: int = 0
    lines_inserted: int = 0
    lines_updated: int = 0
    lines_deleted: int = 0
    opening_balances: int = 0
    fiscal_years: int = 0
    periods: int = 0
    #: records not written because they fall before the transfer date or in a locked year
    skipped: int = 0
    changed: bool = False


def money(value, what="amount"):
    """``value`` as a Decimal rounded to the cent (DataError when it is not a number)."""
    try:
        amount = value if isinstance(value, Decimal) else Decimal(str(value))
        return amount.quantize(CENT)
    except (InvalidOperation, ValueError, TypeError):
        raise DataError(f"The package sent {what} {value!r}, which is not a number.") from None


def _naive_utc(moment):
    if moment is None or moment.tzinfo is None:
        return moment
    return moment.astimezone(timezone.utc).replace(tzinfo=None)


class SyncWriter:
    """Write canonical records into one dossier; see the module docstring for the rules.

    ``link_id`` is the origin link; ``None`` writes manual data (uploads) into
    ``dossier_id`` with no transfer date. ``run_id`` is kept for logging only.
    """

    def __init__(self, session, link_id, run_id=None, *, dossier_id=None, batch_size=BATCH_SIZE,
                 balances_from_lines=False):
        self.session = session
        #: derive period balances from the link's ledger lines (packages without a balances stream)
        self.balances_from_lines = bool(balances_from_lines and link_id is not None)
        self.run_id = run_id
        self.batch_size = batch_size
        self.link = session.get(DossierLink, link_id) if link_id is not None else None
        if link_id is not None and self.link is None:
            raise ValueError(f"dossier link {link_id} does not exist")
        self.link_id = link_id
        self.dossier = session.get(Dossier, dossier_id if self.link is None else self.link.dossier_id)
        if self.dossier is None:
            raise ValueError("a manual write needs the dossier id")
        self.valid_from = self.link.valid_from if self.link else None
        self.valid_to = self.link.valid_to if self.link else None
        #: the set-up run of a link with a transfer date takes the opening balance once
        self.taking_opening = bool(self.link and self.valid_from and self.link.opening_balance_taken_at is None)
        self.year_origin = "sync" if self.link else "manual"
        #: periods the package sent balances for in this run (never replaced by sums of lines)
        self._package_periods = set()
        #: the first day the run's window asked balances for (periods before it that get lines
        #: and hold no balance take the sums of those lines: :meth:`_balances_before_window`)
        self.window_start = sync_windows.history_start(self.link) if self.link else None
        self.result = WriteResult()

        self._accounts = {
            number: (account_id, name, kind)
            for account_id, number, name, kind in session.execute(
                select(Account.id, Account.number, Account.name, Account.kind).where(Account.dossier_id == self.dossier.id)
            )
        }
        self._pending_accounts = {}
        self._pending_years = []
        self._all_years = []  # every FiscalYearRecord of the package (ytd conversion)
        self._years_settled = False
        self._line_ops = {}
        self._balances = []
        self._openings = {}
        #: movements before the transfer date, for the opening balance: {(account, date): amount}
        self._before_from_lines = defaultdict(Decimal)
        self._before_from_balances = defaultdict(Decimal)
        self._period_rows = []
        self._existing_statement = None
        self._period_starts = []
        self._locked_period_ids = set()
        self._finished = False

    # ----------------------------------------------------------------------------------
    # Public surface
    # ----------------------------------------------------------------------------------
    def write(self, record):
        """Take one canonical record (buffered; written by batch or at :meth:`finish`)."""
        if self._finished:
            raise RuntimeError("this writer has finished")
        if isinstance(record, DeletedRecord) and record.entry:
            self._delete_entry(record.source_id)
        elif isinstance(record, (LedgerLineRecord, DeletedRecord)):
            self._line_ops[record.source_id] = record
            if len(self._line_ops) >= self.batch_size:
                self._flush_lines()
        elif isinstance(record, AccountRecord):
            self._pending_accounts[str(record.number)] = record
            if len(self._pending_accounts) >= self.batch_size:
                self._flush_accounts()
        elif isinstance(record, BalanceRecord):
            self._balances.append(record)
        elif isinstance(record, FiscalYearRecord):
            self._pending_years.append(record)
            self._all_years.append(record)
            self._years_settled = False
        elif isinstance(record, OpeningBalanceRecord):
            self._openings[(str(record.account), record.date)] = money(record.amount, "an opening balance")
        else:
            raise TypeError(f"SyncWriter cannot write {type(record).__name__} records")

    def finish(self) -> WriteResult:
        """Write everything still buffered and return the counts (nothing is committed)."""
        self._settle_years()
        self._flush_accounts()
        self._flush_lines()
        self._write_balances()
        if self.balances_from_lines:
            self._balances_from_lines()
        else:
            self._balances_before_window()
        self._write_openings()
        self._finished = True
        r = self.result
        r.changed = any((r.accounts, r.balances, r.lines_inserted, r.lines_updated, r.lines_deleted,
                         r.opening_balances, r.fiscal_years, r.periods))
        return r

    # ----------------------------------------------------------------------------------
    # Fiscal years and periods
    # ----------------------------------------------------------------------------------
    def _settle_years(self):
        if self._years_settled:
            return
        if self._pending_years:
            self.result.fiscal_years += fiscal_years.apply_fiscal_year_records(
                self.session, self.dossier, self._pending_years, not_before=self.valid_from
            )
            self._pending_years = []
        self.result.periods += fiscal_years.ensure_periods(self.session, self.dossier)
        self._load_periods()
        self._years_settled = True

    def _load_periods(self):
        rows = self.session.execute(
            select(Period.id, Period.start, Period.end, FiscalYear.locked)
            .join(FiscalYear, Period.fiscal_year_id == FiscalYear.id)
            .where(Period.dossier_id == self.dossier.id)
            .order_by(Period.start)
        ).all()
        self._period_rows = rows
        self._period_starts = [row.start for row in rows]
        self._locked_period_ids = {row.id for row in rows if row.locked}

    def _find_period(self, day):
        index = bisect_right(self._period_starts, day) - 1
        if index >= 0 and self._period_rows[index].end >= day:
            return self._period_rows[index]
        return None

    def _period_of(self, day):
        """The period row containing ``day``; derives the fiscal year when none covers it."""
        self._settle_years()
        row = self._find_period(day)
        if row is None:
            before = len(fiscal_years.years_of(self.dossier.id, self.session))
            fiscal_years.ensure_year_for(self.session, self.dossier, day, origin=self.year_origin)
            self.result.fiscal_years += len(fiscal_years.years_of(self.dossier.id, self.session)) - before
            self.result.periods += fiscal_years.ensure_periods(self.session, self.dossier)
            self._load_periods()
            row = self._find_period(day)
        return row

    def _in_scope(self, day):
        """Does data dated ``day`` belong to this link (transfer date, end date)?"""
        if self.valid_from is not None and day < self.valid_from:
            return False
        return self.valid_to is None or day <= self.valid_to

    # ----------------------------------------------------------------------------------
    # Accounts
    # ----------------------------------------------------------------------------------
    def _flush_accounts(self):
        pending, self._pending_accounts = self._pending_accounts, {}
        inserts, updates = [], []
        for number, record in pending.items():
            name, kind = (record.name or "")[:300], record.kind or "other"
            known = self._accounts.get(number)
            if known is None:
                inserts.append({"dossier_id": self.dossier.id, "number": number[:50], "name": name, "kind": kind,
                                "origin_link_id": self.link_id, "updated_at": utcnow()})
            elif (known[1], known[2]) != (name, kind):
                updates.append({"_id": known[0], "name": name, "kind": kind, "updated_at": utcnow()})
                self._accounts[number] = (known[0], name, kind)
        if updates:
            table = Account.__table__
            self.session.execute(
                update(table).where(table.c.id == bindparam("_id"))
                .values(name=bindparam("name"), kind=bindparam("kind"), updated_at=bindparam("updated_at")),
                updates,
            )
        self._insert_accounts(inserts)
        self.result.accounts += len(inserts) + len(updates)

    def _insert_accounts(self, rows):
        if not rows:
            return
        self.session.execute(insert(Account.__table__), rows)
        numbers = [row["number"] for row in rows]
        for account_id, number, name, kind in self.session.execute(
            select(Account.id, Account.number, Account.name, Account.kind)
            .where(Account.dossier_id == self.dossier.id, Account.number.in_(numbers))
        ):
            self._accounts[number] = (account_id, name, kind)

    def _account_ids(self, numbers):
        """``{number: id}`` for ``numbers``, creating the accounts the dossier lacks."""
        missing = {n for n in numbers if n not in self._accounts}
        if missing & self._pending_accounts.keys():  # their AccountRecords are still buffered
            self._flush_accounts()
            missing = {n for n in numbers if n not in self._accounts}
        self._insert_accounts([
            {"dossier_id": self.dossier.id, "number": n[:50], "name": "", "kind": "other", "origin_link_id": self.link_id,
             "updated_at": utcnow()}
            for n in sorted(missing)
        ])
        self.result.accounts += len(missing)
        return {n: self._accounts[n][0] for n in numbers}

    # ----------------------------------------------------------------------------------
    # Ledger lines and deletes
    # ----------------------------------------------------------------------------------
    def _flush_lines(self):
        if not self._line_ops:
            return
        self._settle_years()
        if self._pending_accounts:
            self._flush_accounts()
        ops, self._line_ops = self._line_ops, {}
        table = LedgerLine.__table__
        stamp = utcnow()  # updated_at of every line this flush inserts or really changes (the API's updated_since)
        existing = {row.source_id: row for row in self._existing_lines(list(ops)) if row.dossier_id == self.dossier.id}
        lines = [r for r in ops.values() if isinstance(r, LedgerLineRecord)]
        account_ids = self._account_ids({str(r.account) for r in lines}) if lines else {}

        inserts, updates, delete_ids = [], [], []
        locked, skipped, dossier_id = self._locked_period_ids, 0, self.dossier.id
        period_ids = {}  # {day: its period's id or None}: a flush's lines share few days
        modified_at = naive_modified_at = None  # likewise the moment (one per entry)
        for source_id, record in ops.items():
            row = existing.get(source_id)
            if type(record) is DeletedRecord:
                if row is not None:
                    if row.period_id in locked:
                        skipped += 1
                    else:
                        delete_ids.append(row.id)
                continue
            try:  # a Decimal, as the parsers make them (the message is only built for a bad one)
                amount = record.amount.quantize(CENT)
            except (AttributeError, InvalidOperation):
                amount = money(record.amount, f"an amount for line {source_id}")
            bucket = record.booking_period_end or record.booking_date
            if self.taking_opening and bucket < self.valid_from:
                self._before_from_lines[(str(record.account), bucket)] += amount
            if not self._in_scope(bucket):
                skipped += 1
                continue
            period_id = period_ids.get(bucket, _UNSEEN)
            if period_id is _UNSEEN:
                period = self._period_of(bucket)
                period_id = period_ids[bucket] = period.id if period is not None else None
                locked = self._locked_period_ids  # a new year reloads the periods
            if period_id is None or period_id in locked or (row is not None and row.period_id in locked):
                skipped += 1
                continue
            if record.modified_at is not modified_at:
                modified_at, naive_modified_at = record.modified_at, _naive_utc(record.modified_at)
            values = {
                "account_id": account_ids[str(record.account)],
                "period_id": period_id,
                "booking_date": record.booking_date,
                "amount": amount,
                "description": (record.description or "")[:500],
                "reference": (record.reference or "")[:120],
                "journal": (record.journal or "")[:60],
                "dimensions": dict(record.dimensions or {}),
                "modified_at": naive_modified_at,
            }
            if row is None:
                values.update(dossier_id=dossier_id, link_id=self.link_id, source_id=source_id[:120],
                              updated_at=stamp)
                inserts.append(values)
            elif any(getattr(row, name) != values[name] for name in _LINE_FIELDS):
                updates.append({"_id": row.id, **values, "updated_at": stamp})
        self.result.skipped += skipped

        if inserts:
            insert_rows(self.session, table, inserts)
        if updates:
            self.session.execute(
                update(table).where(table.c.id == bindparam("_id"))
                .values({name: bindparam(name) for name in _LINE_FIELDS + ("updated_at",)}),
                updates,
            )
        if delete_ids:
            self.session.execute(delete(table).where(table.c.id.in_(delete_ids)))
        self.result.lines_inserted += len(inserts)
        self.result.lines_updated += len(updates)
        self.result.lines_deleted += len(delete_ids)

    def _delete_entry(self, prefix):
        """Delete every line of the link whose source id starts with ``prefix`` (a deleted entry),
        after the buffered line operations, so a line read before the deletion is deleted too."""
        if not prefix:
            raise DataError("The package reported a deleted entry without saying which.")
        self._flush_lines()
        self._settle_years()
        table = LedgerLine.__table__
        link_condition = table.c.link_id == self.link_id if self.link_id is not None else table.c.link_id.is_(None)
        rows = self.session.execute(
            select(table.c.id, table.c.period_id)
            .where(link_condition, table.c.dossier_id == self.dossier.id,
                   table.c.source_id.startswith(prefix[:120], autoescape=True))
        ).all()
        delete_ids = [row.id for row in rows if row.period_id not in self._locked_period_ids]
        self.result.skipped += len(rows) - len(delete_ids)
        if delete_ids:
            self.session.execute(delete(table).where(table.c.id.in_(delete_ids)))
        self.result.lines_deleted += len(delete_ids)

    def _existing_lines(self, source_ids):
        """The link's existing lines among ``source_ids`` (one query, built once per writer)."""
        if self._existing_statement is None:
            self._existing_statement = self._existing_lines_query()
        postgres = self.session.get_bind().dialect.name == "postgresql"
        return self.session.execute(self._existing_statement,
                                    {"batch_ids": jsonlib.dumps(source_ids) if postgres else source_ids})

    def _existing_lines_query(self):
        """The query for a batch's existing lines (``batch_ids``), always probing the (link, source id) index.

        The dossier is checked by the caller (manual lines, link NULL, carry their dossier
        in their source ids). On PostgreSQL a plain ``IN`` lets the planner scan every line
        of the link per batch (quadratic on a first sync, when the table has no statistics
        yet inside the transaction), so each id of the batch probes the unique index
        through a LATERAL subquery over the batch's ids (a plan that does not depend on statistics;
        measured: without the ``LIMIT 1`` fence, after an ANALYZE of a table holding other
        links' lines, the lookups of a 100,000-line first sync took 11 s instead of 3.7 s).
        The ids travel as one JSON array: psycopg adapts a Python list to a PostgreSQL array
        string by string (measured: a tenth of a first sync's worker CPU on PostgreSQL).
        """
        table = LedgerLine.__table__
        link_condition = table.c.link_id == self.link_id if self.link_id is not None else table.c.link_id.is_(None)
        columns = [table.c.id, table.c.source_id, table.c.dossier_id, *[table.c[name] for name in _LINE_FIELDS]]
        if self.session.get_bind().dialect.name == "postgresql":
            ids = cast(bindparam("batch_ids", type_=String), JSON)
            keys = func.json_array_elements_text(ids).table_valued("value").render_derived(name="batch")
            # LIMIT 1 (the key is unique) keeps PostgreSQL from pulling the subquery up into a
            # plain join, which it then plans from stale statistics as a scan of the link's lines
            line = (select(*columns).where(link_condition, table.c.source_id == keys.c.value)
                    .limit(1).lateral("line"))
            return select(*line.c).select_from(keys.join(line, true()))
        return select(*columns).where(link_condition, table.c.source_id.in_(bindparam("batch_ids", expanding=True)))

    # ----------------------------------------------------------------------------------
    # Balances
    # ----------------------------------------------------------------------------------
    def _year_key(self, day):
        """The package's fiscal year containing ``day`` (for ytd balances)."""
        for record in self._all_years:
            if record.start <= day <= record.end:
                return record.start
        year = self.session.scalar(
            select(FiscalYear.start).where(
                FiscalYear.dossier_id == self.dossier.id, FiscalYear.start <= day, FiscalYear.end >= day
            )
        )
        if year is not None:
            return year
        pattern = self.dossier.first_fiscal_year_end
        return fiscal_years.year_end_on_or_after(day, pattern.month if pattern else 12, pattern.day if pattern else 31)

    def _movements(self):
        """``{(account, period_end): movement}`` from the buffered balances, whatever their basis."""
        movements = defaultdict(Decimal)
        running = defaultdict(list)  # (basis, account, year key) -> [(period_end, amount)]
        for record in self._balances:
            amount = money(record.amount, f"a balance for account {record.account}")
            account = str(record.account)
            if record.basis == "movement":
                movements[(account, record.period_end)] += amount
            elif record.basis == "ytd":
                running[(account, self._year_key(record.period_end))].append((record.period_end, amount))
            elif record.basis == "closing":
                running[(account, None)].append((record.period_end, amount))
            else:
                raise DataError(f"The package sent a balance with an unknown basis {record.basis!r}.")
        for (account, _), points in running.items():
            previous = Decimal("0.00")
            for period_end, amount in sorted(points):
                movements[(account, period_end)] += amount - previous
                previous = amount
        return movements

    def _write_balances(self):
        if not self._balances:
            return
        self._settle_years()
        movements = self._movements()
        self._balances = []
        target = defaultdict(Decimal)
        covered = set()
        numbers = set()
        for (account, period_end), amount in movements.items():
            if self.taking_opening and period_end < self.valid_from:
                self._before_from_balances[(account, period_end)] += amount
            if not self._in_scope(period_end):
                self.result.skipped += 1
                continue
            period = self._period_of(period_end)
            if period is None or period.id in self._locked_period_ids:
                self.result.skipped += 1
                continue
            covered.add(period.id)
            target[(account, period.id)] += amount
            numbers.add(account)
        self._package_periods |= covered
        account_ids = self._account_ids(numbers)
        wanted = {(account_ids[a], p): amount for (a, p), amount in target.items() if amount != 0}
        table = PeriodBalance.__table__
        self._replace_balances(wanted, table.c.period_id.in_(covered) if covered else None)

    def _balances_from_lines(self):
        """Packages that send ledger lines but no balances (Xero, ...): the balance of each
        account in each period is the sum of the link's lines there (locked years untouched)."""
        self._settle_years()
        if self._insert_first_balances_from_lines():
            return
        sums = self.session.execute(self._line_sums()).all()
        wanted = {}
        for account_id, period_id, total in sums:
            amount = money(total)
            if amount != 0 and period_id not in self._locked_period_ids:
                wanted[(account_id, period_id)] = amount
        table = PeriodBalance.__table__
        periods = {period_id for _, period_id in wanted}
        scope = table.c.origin_link_id == self.link_id
        if periods:
            scope = scope | table.c.period_id.in_(periods)
        self._replace_balances(wanted, scope & table.c.period_id.not_in(self._locked_period_ids or [-1]))

    def _line_sums(self, *conditions):
        """The query of the link's line amounts summed per ``(account_id, period_id, total)``,
        for the lines that also meet ``conditions``."""
        lines = LedgerLine.__table__
        return (select(lines.c.account_id, lines.c.period_id, func.sum(lines.c.amount).label("total"))
                .where(lines.c.dossier_id == self.dossier.id, lines.c.link_id == self.link_id, *conditions)
                .group_by(lines.c.account_id, lines.c.period_id))

    def _insert_first_balances_from_lines(self):
        """On PostgreSQL, for a dossier holding no balance yet (its first sync): the sums go from
        the lines into the balances in one ``INSERT ... SELECT`` instead of through the worker
        (fetched, compared with nothing, sent back by ``COPY``); the same rows. Measured on a
        100,000-line first sync: see ``docs/benchmarks.md`` (issue #21, fifth session).
        Answers whether it wrote them."""
        if self.session.get_bind().dialect.name != "postgresql":
            return False  # SQLite sums Numeric as floats: the Python path rounds them to the cent
        table = PeriodBalance.__table__
        if self.session.scalar(select(table.c.id).where(table.c.dossier_id == self.dossier.id).limit(1)) is not None:
            return False
        sums = self._line_sums(LedgerLine.__table__.c.period_id.not_in(self._locked_period_ids or [-1])).subquery()
        rows = (select(literal(self.dossier.id, Integer), sums.c.account_id, sums.c.period_id, sums.c.total,
                       literal(self.link_id, Integer), literal(utcnow(), DateTime))
                .where(sums.c.total != 0))
        written = self.session.execute(insert(table).from_select(
            ["dossier_id", "account_id", "period_id", "amount", "origin_link_id", "updated_at"], rows),
            execution_options={"preserve_rowcount": True})
        self.result.balances += written.rowcount
        return True

    def _balances_before_window(self):
        """Periods before the window's start (the package was not asked for their balances, and
        sent none for them in this run) take the sums of this link's lines, so every fiscal year a package's unbounded line feed brings
        in has figures, and a backdated line changes them. Periods holding a balance from another
        source (an upload, an earlier link) and locked years are left alone. Only runs that
        changed lines recompute (the sums cannot have moved otherwise)."""
        if self.link is None or self.window_start is None:
            return
        if not (self.result.lines_inserted or self.result.lines_updated or self.result.lines_deleted):
            return
        self._settle_years()
        lines, balances = LedgerLine.__table__, PeriodBalance.__table__
        candidates = [row.id for row in self._period_rows if row.end < self.window_start
                      and row.id not in self._locked_period_ids and row.id not in self._package_periods]
        if not candidates:
            return
        foreign = set(self.session.scalars(select(balances.c.period_id).where(
            balances.c.dossier_id == self.dossier.id, balances.c.period_id.in_(candidates),
            or_(balances.c.origin_link_id.is_(None), balances.c.origin_link_id != self.link_id))))
        owned = [period_id for period_id in candidates if period_id not in foreign]
        if not owned:
            return
        sums = self.session.execute(self._line_sums(lines.c.period_id.in_(owned))).all()
        wanted = {(account_id, period_id): money(total) for account_id, period_id, total in sums if money(total) != 0}
        existing = {(row.account_id, row.period_id): row for row in self.session.execute(
            select(balances.c.id, balances.c.account_id, balances.c.period_id, balances.c.amount,
                   balances.c.origin_link_id)
            .where(balances.c.dossier_id == self.dossier.id, balances.c.period_id.in_(owned)))}
        self.result.balances += self._write_amounts(balances, ("account_id", "period_id"), wanted, existing)

    def _replace_balances(self, wanted, scope):
        """Make the balance rows selected by ``scope`` equal ``wanted`` ({(account id, period id):
        amount}), writing only the differences."""
        table = PeriodBalance.__table__
        existing = {
            (row.account_id, row.period_id): row
            for row in self.session.execute(
                select(table.c.id, table.c.account_id, table.c.period_id, table.c.amount, table.c.origin_link_id)
                .where(table.c.dossier_id == self.dossier.id, scope)
            )
        } if scope is not None else {}
        self.result.balances += self._write_amounts(table, ("account_id", "period_id"), wanted, existing)

    def _write_amounts(self, table, key_columns, wanted, existing, delete_if=lambda key: True):
        """Make the amount rows of ``table`` match ``wanted`` ({key: amount}, keys over
        ``key_columns``), given the ``existing`` rows ({key: row}) it may change: insert the
        missing, update the different, delete the unwanted ones ``delete_if`` allows.
        Returns how many rows were written."""
        inserts, updates = [], []
        stamped = {"updated_at": utcnow()} if "updated_at" in table.c else {}  # balances: the API's updated_since
        for key, amount in wanted.items():
            row = existing.pop(key, None)
            if row is None:
                inserts.append({"dossier_id": self.dossier.id, **dict(zip(key_columns, key)),
                                "amount": amount, "origin_link_id": self.link_id, **stamped})
            elif row.amount != amount or row.origin_link_id != self.link_id:
                updates.append({"_id": row.id, "amount": amount, "origin_link_id": self.link_id, **stamped})
        delete_ids = [row.id for key, row in existing.items() if delete_if(key)]
        if inserts:
            insert_rows(self.session, table, inserts)
        if updates:
            self.session.execute(
                update(table).where(table.c.id == bindparam("_id"))
                .values(amount=bindparam("amount"), origin_link_id=bindparam("origin_link_id"),
                        **{name: bindparam(name) for name in stamped}),
                updates,
            )
        if delete_ids:
            self.session.execute(delete(table).where(table.c.id.in_(delete_ids)))
        return len(inserts) + len(updates) + len(delete_ids)

    # ----------------------------------------------------------------------------------
    # Opening balances
    # ----------------------------------------------------------------------------------
    def _write_openings(self):
        target = {}  # (account, date) -> amount
        for (account, day), amount in self._openings.items():
            if self.valid_from is not None and day <= self.valid_from:
                continue  # before the transfer date: only used to compute the opening balance
            if not self._in_scope(day) or self._in_locked_year(day):
                self.result.skipped += 1
                continue
            target[(account, day)] = amount
        replace_dates = {day for _, day in target}
        if self.taking_opening:
            if self._in_locked_year(self.valid_from):
                self.result.skipped += 1
            else:
                for account, amount in self._opening_at_transfer().items():
                    target[(account, self.valid_from)] = amount
                replace_dates.add(self.valid_from)
            self.link.opening_balance_taken_at = utcnow()
        if not replace_dates:
            return
        account_ids = self._account_ids({account for account, _ in target})
        wanted = {(account_ids[a], d): amount for (a, d), amount in target.items()}
        table = OpeningBalance.__table__
        existing = {
            (row.account_id, row.date): row
            for row in self.session.execute(
                select(table.c.id, table.c.account_id, table.c.date, table.c.amount, table.c.origin_link_id)
                .where(table.c.dossier_id == self.dossier.id, table.c.date.in_(replace_dates))
            )
        }
        # At the transfer date the computed set replaces what was there; package opening
        # balances on later dates replace only the accounts they name.
        self.result.opening_balances += self._write_amounts(
            table, ("account_id", "date"), wanted, existing,
            delete_if=lambda key: self.taking_opening and key[1] == self.valid_from,
        )

    def _opening_at_transfer(self):
        """Per account, the sum of everything before the transfer date (zeros left out).

        Movements come from the balances when the package sent any before the date, else
        from the ledger lines. An opening balance the package sent on or before the date
        is the starting point: the earliest one per account, plus the movements from its
        date up to the transfer date.
        """
        movements = self._before_from_balances or self._before_from_lines
        starts = {}
        for (account, day), amount in sorted(self._openings.items(), key=lambda item: item[0][1]):
            if day <= self.valid_from and account not in starts:
                starts[account] = (day, amount)
        totals = defaultdict(Decimal)
        for account, (_, amount) in starts.items():
            totals[account] += amount
        for (account, day), amount in movements.items():
            if account in starts and day < starts[account][0]:
                continue
            totals[account] += amount
        return {account: amount.quantize(CENT) for account, amount in totals.items() if amount != 0}

    def _in_locked_year(self, day):
        return self.session.scalar(
            select(FiscalYear.id).where(
                FiscalYear.dossier_id == self.dossier.id, FiscalYear.locked.is_(True),
                FiscalYear.start <= day, FiscalYear.end >= day,
            )
        ) is not None


def write_records(session, link_id, records, run_id=None, **options) -> WriteResult:
    """Convenience: feed ``records`` to a :class:`SyncWriter` and finish it (no commit)."""
    writer = SyncWriter(session, link_id, run_id, **options)
    for record in records:
        writer.write(record)
    return writer.finish()


def insert_rows(session, table, rows):
    """Insert ``rows`` (dicts with the same keys, every NOT NULL column given) into ``table``
    inside the session's transaction.

    On PostgreSQL the rows are streamed with ``COPY ... FROM STDIN`` on the session's own
    connection: measured 3 to 7 times faster than ``executemany`` (psycopg re-parses every
    multi-row VALUES statement in Python; see ``docs/benchmarks.md``, measure 1). The COPY
    is binary, with each column's type read from the catalogue (:func:`_copy_types`): psycopg
    then picks each column's dumper once instead of once per value (half the CPU of a text
    COPY). Values are adapted by psycopg (``Decimal``, dates, naive UTC datetimes, text);
    ``json`` columns are sent as their JSON text (``{}`` without a call to the encoder).
    Python-side column defaults do not apply, so callers give every column that has no
    server default. Elsewhere: one Core ``executemany`` insert.
    """
    if not rows:
        return
    dialect = session.get_bind().dialect
    if dialect.name == "sqlite":
        _insert_rows_sqlite(session, dialect, table, rows)
        return
    if dialect.name != "postgresql":
        session.execute(insert(table), rows)
        return
    from psycopg.sql import SQL, Identifier

    names = list(rows[0])
    values_of = itemgetter(*names) if len(names) > 1 else (lambda row: (row[names[0]],))
    connection = session.connection()
    driver = connection.connection.driver_connection
    types = _copy_types(connection, table.name, names)
    json_at = [index for index, name in enumerate(names)
               if isinstance(table.c[name].type, JSON) and (types is None or types[index] == TEXT_OID)]
    statement = SQL("COPY {} ({}) FROM STDIN{}").format(
        Identifier(table.name), SQL(", ").join(map(Identifier, names)), SQL(" (FORMAT BINARY)" if types else ""))
    with driver.cursor() as cursor, cursor.copy(statement) as copy:
        if types:
            copy.set_types(types)
        for row in rows:
            values = values_of(row)
            if json_at:
                values = list(values)
                for index in json_at:
                    values[index] = _json_text(values[index])
            copy.write_row(values)


def _insert_rows_sqlite(session, dialect, table, rows):
    """:func:`insert_rows` on SQLite: one ``executemany`` on the session's own sqlite3
    connection, each value converted by its column type's own bind processor (so stored
    exactly as SQLAlchemy stores it), a processor's last answer reused for the same object
    (a flush's rows share their stamps). Measured: a third of the CPU of a Core insert,
    whose per-row parameter building was a quarter of a first sync's worker CPU on SQLite."""
    names = list(rows[0])
    quote = dialect.identifier_preparer.quote
    statement = (f"INSERT INTO {quote(table.name)} ({', '.join(quote(name) for name in names)}) "
                 f"VALUES ({', '.join('?' * len(names))})")
    convert = [_RepeatingProcessor(table.c[name].type.dialect_impl(dialect).bind_processor(dialect)) for name in names]
    pairs = list(zip(names, convert))
    cursor = session.connection().connection.driver_connection.cursor()
    try:
        cursor.executemany(statement, [tuple(process(row[name]) for name, process in pairs) for row in rows])
    finally:
        cursor.close()


class _RepeatingProcessor:
    """A column's bind processor (or none) that answers again for the object it was last given."""

    __slots__ = ("processor", "last_in", "last_out")

    def __init__(self, processor):
        self.processor, self.last_in, self.last_out = processor, self, None

    def __call__(self, value):
        if self.processor is None:  # None goes through the processor too (a JSON column stores ``null``)
            return value
        if value is not self.last_in:
            self.last_in, self.last_out = value, self.processor(value)
        return self.last_out


#: PostgreSQL's ``json`` and ``text`` type oids: a binary COPY sends a ``json`` column as text
JSON_OID, TEXT_OID = 114, 25


def _copy_types(connection, table_name, names):
    """The type oids of ``names`` in ``table_name`` for a binary COPY (``json`` sent as
    ``text``, whose binary form is the same bytes; ``jsonb`` stays and psycopg encodes it),
    or None when a column's type is one psycopg cannot send in binary (a text COPY then).
    The catalogue is read once per table and database connection (kept in its ``info``)."""
    known = connection.info.setdefault("copy_column_types", {})
    if table_name not in known:
        known[table_name] = dict(connection.connection.driver_connection.execute(
            "SELECT attname, atttypid::int FROM pg_attribute WHERE attrelid = to_regclass(%s) AND attnum > 0"
            " AND NOT attisdropped", (table_name,)).fetchall())
    found = known[table_name]
    registry = connection.connection.driver_connection.adapters.types
    types = []
    for name in names:
        oid = found.get(name)
        if oid is None or registry.get(oid) is None:
            return None
        types.append(TEXT_OID if oid == JSON_OID else oid)
    return types


def _json_text(value):
    """``value`` as JSON text for a COPY into a JSON column (most lines' dimensions are empty)."""
    return "{}" if value == {} else jsonlib.dumps(value)
