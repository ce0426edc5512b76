"""Fiscal years and periods of a dossier (ARCHITECTURE section 8).

* :func:`apply_fiscal_year_records` fills a dossier's fiscal years from the years a package
  sends (origin ``sync``), including ``Dossier.first_fiscal_year_end`` when it is empty;
* :func:`ensure_year_for` derives the year containing a day when the package sends none
  (calendar years, or years ending on the dossier's first fiscal year end);
* :func:`ensure_periods` lays the periods of every fiscal year out according to
  ``Dossier.frequency`` (month, quarter, year);
* :func:`period_for` answers the period containing a day; :func:`fiscal_year_errors`
  validates a year (end after start, shorter than two years, no overlap).

A locked fiscal year (set by support) is never changed here. Nothing in this module commits.
"""
import calendar
from datetime import date, timedelta

from sqlalchemy import delete, func, select

from app.extensions import db
from app.models import Dossier, FiscalYear, Frequency, LedgerLine, OpeningBalance, Period, PeriodBalance

#: months per period for each reporting frequency
FREQUENCY_MONTHS = {Frequency.MONTH: 1, Frequency.QUARTER: 3, Frequency.YEAR: 12}


# --------------------------------------------------------------------------------------
# Date arithmetic
# --------------------------------------------------------------------------------------

def _is_month_end(day):
    return day.day == calendar.monthrange(day.year, day.month)[1]


def add_months(day, months, *, month_end=None):
    """``day`` moved by ``months``; a month end stays a month end (``month_end`` forces it)."""
    month_index = day.year * 12 + day.month - 1 + months
    year, month = divmod(month_index, 12)
    month += 1
    last = calendar.monthrange(year, month)[1]
    if month_end if month_end is not None else _is_month_end(day):
        return date(year, month, last)
    return date(year, month, min(day.day, last))


def year_end_on_or_after(day, month, dom):
    """The first date on or after ``day`` that falls on ``month``/``dom`` (clamped to the month)."""
    for year in (day.year, day.year + 1):
        candidate = date(year, month, min(dom, calendar.monthrange(year, month)[1]))
        if candidate >= day:
            return candidate
    raise AssertionError("unreachable")


# --------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------

def fiscal_year_errors(dossier_id, start, end, *, exclude_id=None, session=None):
    """Problems with a fiscal year from ``start`` to ``end`` (empty list when valid).

    A year ends after it starts, is shorter than two years, and does not overlap another
    year of the dossier (``exclude_id``: the year being edited).
    """
    session = session or db.session
    errors = []
    if end <= start:
        errors.append("The fiscal year must end after it starts.")
    elif end >= add_months(start, 24, month_end=False) - timedelta(days=1):
        errors.append("A fiscal year must be shorter than two years.")
    query = select(FiscalYear).where(
        FiscalYear.dossier_id == dossier_id, FiscalYear.start <= end, FiscalYear.end >= start
    )
    if exclude_id is not None:
        query = query.where(FiscalYear.id != exclude_id)
    for other in session.scalars(query):
        errors.append(f"It overlaps the fiscal year {other.start.isoformat()} – {other.end.isoformat()}.")
    return errors


# --------------------------------------------------------------------------------------
# Fiscal years
# --------------------------------------------------------------------------------------

def years_of(dossier_id, session=None):
    """The dossier's fiscal years, oldest first."""
    session = session or db.session
    return list(session.scalars(
        select(FiscalYear).where(FiscalYear.dossier_id == dossier_id).order_by(FiscalYear.start)
    ))


def apply_fiscal_year_records(session, dossier, records, *, not_before=None):
    """Fill the dossier's fiscal years from the package's ``FiscalYearRecord``s.

    A record with the start of an existing unlocked year updates its end; a new record is
    inserted with origin ``sync``. A record overlapping a locked year, or a year set by
    hand (origin ``manual`` or ``support``), is ignored: those years win. Overlapping
    unlocked ``sync`` years are replaced (their periods and data go; the same sync run
    writes the data again in the new periods). Years ending before ``not_before`` (the
    link's transfer date) are left alone. Returns the number of years inserted or changed.
    """
    from connectors.base import DataError

    changed = 0
    for record in sorted(records, key=lambda r: r.start):
        if record.end <= record.start or record.end >= add_months(record.start, 24, month_end=False) - timedelta(days=1):
            raise DataError(
                f"The package sent a fiscal year from {record.start.isoformat()} to {record.end.isoformat()}, "
                "which is not a valid fiscal year (it must end after it starts and last less than two years)."
            )
        if not_before is not None and record.end < not_before:
            continue
        existing = session.scalar(
            select(FiscalYear).where(FiscalYear.dossier_id == dossier.id, FiscalYear.start == record.start)
        )
        if existing is not None:
            if existing.locked or existing.origin != "sync" or existing.end == record.end:
                continue
            if _overlapping(session, dossier.id, record.start, record.end, exclude_id=existing.id, protected=True):
                continue
            for other in _overlapping(session, dossier.id, record.start, record.end, exclude_id=existing.id):
                remove_fiscal_year(session, other)
            existing.end = record.end
            changed += 1
            continue
        if _overlapping(session, dossier.id, record.start, record.end, protected=True):
            continue
        for other in _overlapping(session, dossier.id, record.start, record.end):
            remove_fiscal_year(session, other)
        session.add(FiscalYear(dossier_id=dossier.id, start=record.start, end=record.end, origin="sync"))
        changed += 1
    if changed:
        session.flush()
    _fill_first_year_end(session, dossier)
    return changed


def _overlapping(session, dossier_id, start, end, *, exclude_id=None, protected=False):
    query = select(FiscalYear).where(
        FiscalYear.dossier_id == dossier_id, FiscalYear.start <= end, FiscalYear.end >= start
    )
    if exclude_id is not None:
        query = query.where(FiscalYear.id != exclude_id)
    years = list(session.scalars(query))
    if protected:
        return [y for y in years if y.locked or y.origin != "sync"]
    return years


def _fill_first_year_end(session, dossier):
    if dossier.first_fiscal_year_end is None:
        first = session.scalar(
            select(FiscalYear.end).where(FiscalYear.dossier_id == dossier.id).order_by(FiscalYear.start).limit(1)
        )
        if first is not None:
            dossier.first_fiscal_year_end = first


def remove_fiscal_year(session, year):
    """Delete an unlocked year with its periods and their data (explicitly, on every database)."""
    if year.locked:
        raise ValueError("a locked fiscal year is never removed")
    period_ids = select(Period.id).where(Period.fiscal_year_id == year.id)
    session.execute(delete(LedgerLine).where(LedgerLine.period_id.in_(period_ids)))
    session.execute(delete(PeriodBalance).where(PeriodBalance.period_id.in_(period_ids)))
    session.execute(delete(Period).where(Period.fiscal_year_id == year.id))
    session.delete(year)
    session.flush()


def ensure_year_for(session, dossier, day, *, origin="sync"):
    """The fiscal year containing ``day``, derived and inserted when the dossier has none.

    The derived year ends on the month and day of the dossier's first fiscal year end
    (or of its latest year, or 31 December) and is clipped so it never overlaps a
    neighbouring year.
    """
    found = session.scalar(
        select(FiscalYear).where(FiscalYear.dossier_id == dossier.id, FiscalYear.start <= day, FiscalYear.end >= day)
    )
    if found is not None:
        return found
    pattern = dossier.first_fiscal_year_end or session.scalar(
        select(FiscalYear.end).where(FiscalYear.dossier_id == dossier.id).order_by(FiscalYear.end.desc()).limit(1)
    )
    month, dom = (pattern.month, pattern.day) if pattern else (12, 31)
    if pattern and _is_month_end(pattern):
        dom = 31
    end = year_end_on_or_after(day, month, dom)
    start = add_months(end, -12, month_end=_is_month_end(end)) + timedelta(days=1)
    previous_end = session.scalar(
        select(func.max(FiscalYear.end)).where(FiscalYear.dossier_id == dossier.id, FiscalYear.end < day)
    )
    next_start = session.scalar(
        select(func.min(FiscalYear.start)).where(FiscalYear.dossier_id == dossier.id, FiscalYear.start > day)
    )
    if previous_end is not None and start <= previous_end:
        start = previous_end + timedelta(days=1)
    if next_start is not None and end >= next_start:
        end = next_start - timedelta(days=1)
    year = FiscalYear(dossier_id=dossier.id, start=start, end=end, origin=origin)
    session.add(year)
    session.flush()
    _fill_first_year_end(session, dossier)
    return year


# --------------------------------------------------------------------------------------
# Periods
# --------------------------------------------------------------------------------------

def period_bounds(start, end, frequency):
    """``[(start, end), ...]`` of the periods of a fiscal year, following ``frequency``.

    Period ends step back from the year end by 1, 3 or 12 months. A first period that is
    incomplete (the year starts mid-month or mid-quarter) is merged into the next one, so
    every period but a short year's only one is at least a full period long.
    """
    months = FREQUENCY_MONTHS.get(frequency, 1)
    ends = []
    cursor = end
    step = 0
    while cursor >= start:
        ends.append(cursor)
        step += 1
        cursor = add_months(end, -months * step, month_end=_is_month_end(end))
    natural_first_start = cursor + timedelta(days=1)
    if natural_first_start != start and len(ends) > 1:
        ends.pop()  # incomplete first period: its days move into the next period
    ends.reverse()
    bounds = []
    period_start = start
    for period_end in ends:
        bounds.append((period_start, period_end))
        period_start = period_end + timedelta(days=1)
    return bounds


def ensure_periods(session, dossier):
    """Make the dossier's periods match its fiscal years and frequency.

    Missing periods are inserted, existing ones (same end) get the right start and year;
    periods no longer planned are removed when they hold no data. Returns the number of
    periods inserted, changed or removed.
    """
    years = years_of(dossier.id, session)
    existing = {p.end: p for p in session.scalars(select(Period).where(Period.dossier_id == dossier.id))}
    planned = set()
    touched = 0
    for year in years:
        kept = [end for end, p in existing.items() if p.fiscal_year_id == year.id]
        if year.locked and kept:  # a locked year keeps its periods exactly as they are
            planned.update(kept)
            continue
        for start, end in period_bounds(year.start, year.end, dossier.frequency):
            planned.add(end)
            period = existing.get(end)
            if period is None:
                session.add(Period(dossier_id=dossier.id, fiscal_year_id=year.id, start=start, end=end))
                touched += 1
            elif period.start != start or period.fiscal_year_id != year.id:
                period.start, period.fiscal_year_id = start, year.id
                touched += 1
    stale = [p for end, p in existing.items() if end not in planned]
    for period in stale:
        has_data = session.scalar(select(LedgerLine.id).where(LedgerLine.period_id == period.id).limit(1)) or \
            session.scalar(select(PeriodBalance.id).where(PeriodBalance.period_id == period.id).limit(1))
        if not has_data:
            session.delete(period)
            touched += 1
    if touched:
        session.flush()
    return touched


def period_for(dossier_id, day, session=None):
    """The dossier's period containing ``day`` (None when no period covers it)."""
    session = session or db.session
    return session.scalar(
        select(Period).where(Period.dossier_id == dossier_id, Period.start <= day, Period.end >= day)
    )


def delete_bookkeeping(session, dossier_id, *, from_date=None, link_id=None, only_link=False):
    """Delete a dossier's bookkeeping data, sparing locked fiscal years; return the counts.

    ``from_date``: only data in periods ending on or after it (and opening balances dated
    on or after it). ``only_link``: only rows whose origin is ``link_id``. Without
    ``from_date`` and ``only_link``, unlocked fiscal years, their periods and accounts no
    longer used are removed too.
    """
    locked_periods = select(Period.id).join(FiscalYear, Period.fiscal_year_id == FiscalYear.id).where(
        FiscalYear.dossier_id == dossier_id, FiscalYear.locked.is_(True)
    )
    periods = select(Period.id).where(Period.dossier_id == dossier_id, Period.id.not_in(locked_periods))
    if from_date is not None:
        periods = periods.where(Period.end >= from_date)
    session.flush()
    counts = {}

    lines = delete(LedgerLine).where(LedgerLine.dossier_id == dossier_id, LedgerLine.period_id.in_(periods))
    balances = delete(PeriodBalance).where(PeriodBalance.dossier_id == dossier_id, PeriodBalance.period_id.in_(periods))
    openings = delete(OpeningBalance).where(OpeningBalance.dossier_id == dossier_id)
    if from_date is not None:
        openings = openings.where(OpeningBalance.date >= from_date)
    if only_link:
        lines = lines.where(LedgerLine.link_id == link_id)
        balances = balances.where(PeriodBalance.origin_link_id == link_id)
        openings = openings.where(OpeningBalance.origin_link_id == link_id)
    else:
        locked_ranges = session.execute(
            select(FiscalYear.start, FiscalYear.end).where(FiscalYear.dossier_id == dossier_id, FiscalYear.locked.is_(True))
        ).all()
        for start, end in locked_ranges:
            openings = openings.where((OpeningBalance.date < start) | (OpeningBalance.date > end))
    counts["ledger_lines"] = session.execute(lines).rowcount
    counts["period_balances"] = session.execute(balances).rowcount
    counts["opening_balances"] = session.execute(openings).rowcount

    if from_date is None and not only_link:
        unlocked = select(FiscalYear.id).where(FiscalYear.dossier_id == dossier_id, FiscalYear.locked.is_(False))
        counts["periods"] = session.execute(
            delete(Period).where(Period.dossier_id == dossier_id, Period.fiscal_year_id.in_(unlocked))
        ).rowcount
        counts["fiscal_years"] = session.execute(
            delete(FiscalYear).where(FiscalYear.dossier_id == dossier_id, FiscalYear.locked.is_(False))
        ).rowcount
        from app.models import Account

        used = select(LedgerLine.account_id).where(LedgerLine.dossier_id == dossier_id).union(
            select(PeriodBalance.account_id).where(PeriodBalance.dossier_id == dossier_id),
            select(OpeningBalance.account_id).where(OpeningBalance.dossier_id == dossier_id),
        )
        counts["accounts"] = session.execute(
            delete(Account).where(Account.dossier_id == dossier_id, Account.id.not_in(used))
        ).rowcount
    session.expire_all()
    return counts


def dossier_of(dossier_id, session=None):
    session = session or db.session
    return session.get(Dossier, dossier_id)
