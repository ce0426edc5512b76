"""The figures of a dossier: trial balance per period, ledger lines, result and equity chart.

Amounts follow the model's sign convention: debit positive, credit negative
(``PeriodBalance.amount`` is the net movement of one account in one period).

* :func:`trial_balance` answers a :class:`TrialBalance` for one fiscal year, in the
  ``movement`` view (net movement per period, plus the year) or the ``closing`` view
  (balance-sheet accounts: opening balance + cumulative movements; profit and loss
  accounts: year to date). Movements come from ONE grouped query over the year's period
  balances; the opening balances from one more grouped query, never one query per cell.
* :func:`ledger_page` answers one page of ledger lines of a dossier with filters.
* :func:`result_and_equity` and :func:`chart_svg` draw the year's result and equity per
  period as inline SVG (no JavaScript, no download).

Nothing here checks access: callers pass a dossier the actor may see.
"""
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from markupsafe import Markup, escape
from sqlalchemy import and_, func, or_, select

from app.extensions import db
from app.models import Account, FiscalYear, LedgerLine, OpeningBalance, Period, PeriodBalance

ZERO = Decimal("0.00")
CENT = Decimal("0.01")
#: account kinds in the order the trial balance groups them
KINDS = ("asset", "liability", "equity", "income", "expense", "other")
#: kinds whose closing balance is year to date (they start from zero each fiscal year)
PROFIT_AND_LOSS = frozenset({"income", "expense"})
VIEWS = ("movement", "closing")
LEDGER_PAGE_SIZE = 50


def _money(value):
    """A database sum (Decimal, float or None, depending on the database) as cents."""
    if value is None:
        return ZERO
    return Decimal(str(value)).quantize(CENT)


# --------------------------------------------------------------------------------------
# Trial balance
# --------------------------------------------------------------------------------------

@dataclass
class TrialBalanceRow:
    """One line of the trial balance: an account (``account_id`` None for a computed line)."""

    account_id: int | None
    number: str
    name: str
    kind: str
    cells: list
    total: Decimal | None = None  # the year's movement (movement view only)


@dataclass
class TrialBalanceGroup:
    """The rows of one account kind and their subtotals per column."""

    kind: str
    rows: list
    subtotals: list
    total: Decimal | None = None


@dataclass
class TrialBalance:
    """A fiscal year's trial balance: accounts down, periods across.

    ``totals`` sums every row per period (0.00 when the books balance); ``differences``
    lists the periods whose total is not zero.
    """

    year: FiscalYear
    view: str
    periods: list
    groups: list = field(default_factory=list)
    totals: list = field(default_factory=list)
    total: Decimal | None = None

    @property
    def rows(self):
        return [row for group in self.groups for row in group.rows]

    @property
    def balanced(self):
        return all(amount == 0 for amount in self.totals)

    @property
    def differences(self):
        return [period for period, amount in zip(self.periods, self.totals) if amount != 0]

    def cell(self, number, period_end):
        """The amount of account ``number`` at the period ending ``period_end`` (tests, charts)."""
        index = [p.end for p in self.periods].index(period_end)
        for row in self.rows:
            if row.number == number:
                return row.cells[index]
        raise KeyError(number)


def fiscal_years(dossier_id):
    """The dossier's fiscal years, newest first."""
    return db.session.scalars(
        select(FiscalYear).where(FiscalYear.dossier_id == dossier_id).order_by(FiscalYear.start.desc())).all()


def years_with_figures(dossier_id):
    """A SELECT of the ids of the dossier's fiscal years that have period balances (figures)."""
    return (select(Period.fiscal_year_id).join(PeriodBalance, PeriodBalance.period_id == Period.id)
            .where(Period.dossier_id == dossier_id, PeriodBalance.dossier_id == dossier_id))


def year_of(dossier_id, year_id=None):
    """The fiscal year ``year_id`` of the dossier (None when it is another dossier's), or by
    default the latest year with figures (period balances): a newer year that is still empty
    (just opened, not synced yet) is not where an accountant starts. Failing that, the newest
    year that has periods, else the newest year."""
    if year_id is not None:
        return db.session.scalar(select(FiscalYear).where(FiscalYear.id == year_id, FiscalYear.dossier_id == dossier_id))
    with_periods = select(Period.fiscal_year_id).where(Period.dossier_id == dossier_id)
    return db.session.scalar(
        select(FiscalYear).where(FiscalYear.dossier_id == dossier_id)
        .order_by(FiscalYear.id.in_(years_with_figures(dossier_id)).desc(), FiscalYear.id.in_(with_periods).desc(),
                  FiscalYear.start.desc()).limit(1))


def has_figures(dossier_id):
    """Does any fiscal year of the dossier have figures (period balances)?"""
    return db.session.scalar(select(years_with_figures(dossier_id).limit(1).exists())) or False


def previous_year(dossier_id, year):
    """The fiscal year of the dossier just before ``year`` (the comparatives), or None."""
    return db.session.scalar(
        select(FiscalYear).where(FiscalYear.dossier_id == dossier_id, FiscalYear.start < year.start)
        .order_by(FiscalYear.start.desc()).limit(1))


@dataclass
class Comparatives:
    """The previous fiscal year beside a trial balance: per account, per kind and in total, the
    previous year's movement (movement view) or its closing balance (closing view)."""

    year: FiscalYear
    accounts: dict
    kinds: dict
    total: Decimal

    def of(self, row):
        """The previous year's amount of a :class:`TrialBalanceRow` (0.00 when it had none)."""
        return self.accounts.get(row.account_id if row.account_id is not None else row.name, ZERO)

    def of_kind(self, kind):
        """The previous year's subtotal of an account kind (0.00 when it had none)."""
        return self.kinds.get(kind, ZERO)


def comparatives(dossier_id, year, view="movement"):
    """The :class:`Comparatives` of the year before ``year`` in ``view``, or None when the file
    has no earlier fiscal year. An account the earlier year does not have shows 0.00."""
    earlier = previous_year(dossier_id, year)
    if earlier is None:
        return None
    balance = trial_balance(dossier_id, earlier, view)

    def amount(cells, total):
        if view == "movement":
            return total if total is not None else ZERO
        return cells[-1] if cells else ZERO

    accounts = {row.account_id if row.account_id is not None else row.name: amount(row.cells, row.total)
                for row in balance.rows}
    kinds = {group.kind: amount(group.subtotals, group.total) for group in balance.groups}
    return Comparatives(earlier, accounts, kinds, sum(kinds.values(), ZERO))


def _movements(dossier_id, year_id):
    """``{(account id, period id): movement}`` of the year: ONE grouped query."""
    rows = db.session.execute(
        select(PeriodBalance.account_id, PeriodBalance.period_id, func.sum(PeriodBalance.amount))
        .join(Period, Period.id == PeriodBalance.period_id)
        .where(PeriodBalance.dossier_id == dossier_id, Period.fiscal_year_id == year_id)
        .group_by(PeriodBalance.account_id, PeriodBalance.period_id))
    return {(account_id, period_id): _money(amount) for account_id, period_id, amount in rows}


def _openings(dossier_id, until):
    """``{account id: [(date, amount), ...]}`` of the opening balances up to ``until``, by date."""
    openings = defaultdict(list)
    rows = db.session.execute(
        select(OpeningBalance.account_id, OpeningBalance.date, OpeningBalance.amount)
        .where(OpeningBalance.dossier_id == dossier_id, OpeningBalance.date <= until)
        .order_by(OpeningBalance.date))
    for account_id, day, amount in rows:
        openings[account_id].append((day, _money(amount)))
    return openings


def _movements_before(dossier_id, start):
    """``{account id: movements of the periods ending before start}``, each account counted
    from its latest opening balance on or before ``start`` (that balance already holds
    everything earlier). ONE grouped query with a correlated subquery."""
    anchor = (
        select(func.max(OpeningBalance.date))
        .where(OpeningBalance.dossier_id == dossier_id, OpeningBalance.account_id == PeriodBalance.account_id,
               OpeningBalance.date <= start)
        .correlate(PeriodBalance).scalar_subquery()
    )
    rows = db.session.execute(
        select(PeriodBalance.account_id, func.sum(PeriodBalance.amount))
        .join(Period, Period.id == PeriodBalance.period_id)
        .where(PeriodBalance.dossier_id == dossier_id, Period.end < start,
               or_(anchor.is_(None), Period.start >= anchor))
        .group_by(PeriodBalance.account_id))
    return {account_id: _money(amount) for account_id, amount in rows}


def _closing_cells(periods, movements, openings, opening_at_start):
    """Closing balance per period: the latest opening balance dated on or before the
    period's start (the year's opening when none inside the year), plus the movements of
    the year's periods from that date up to the period."""
    cells = []
    for index, period in enumerate(periods):
        inside = [(day, amount) for day, amount in openings if periods[0].start < day <= period.start]
        if inside:
            day, base = inside[-1]
            counted = [m for p, m in zip(periods[:index + 1], movements) if p.start >= day]
        else:
            base, counted = opening_at_start, movements[:index + 1]
        cells.append(base + sum(counted, ZERO))
    return cells


def trial_balance(dossier_id, year, view="movement"):
    """The trial balance of ``year`` (a :class:`FiscalYear` of the dossier) in ``view``.

    Accounts without any amount in the year (and, in the closing view, no opening balance)
    are left out. In the closing view, profit and loss accounts show the year to date; what
    they held before the year (earlier years' results not yet booked to equity) appears on
    a computed equity line "Result of earlier years", so the totals still balance.
    """
    if view not in VIEWS:
        raise ValueError(f"unknown view {view!r}")
    periods = db.session.scalars(
        select(Period).where(Period.dossier_id == dossier_id, Period.fiscal_year_id == year.id).order_by(Period.end)
    ).all()
    movements = _movements(dossier_id, year.id)
    closing = view == "closing"
    openings, before = ({}, {})
    if closing and periods:
        openings = _openings(dossier_id, year.end)
        before = _movements_before(dossier_id, year.start)
    wanted = {account_id for account_id, _ in movements} | set(openings) | set(before)
    accounts = db.session.scalars(
        select(Account).where(Account.dossier_id == dossier_id, Account.id.in_(wanted))) if wanted else []

    rows_by_kind = defaultdict(list)
    earlier_results = ZERO
    for account in accounts:
        row_movements = [movements.get((account.id, period.id), ZERO) for period in periods]
        kind = account.kind if account.kind in KINDS else "other"
        if not closing:
            row = TrialBalanceRow(account.id, account.number, account.name, kind, row_movements,
                                  total=sum(row_movements, ZERO))
        else:
            account_openings = openings.get(account.id, [])
            at_start = [amount for day, amount in account_openings if day <= year.start]
            opening = (at_start[-1] if at_start else ZERO) + before.get(account.id, ZERO)
            if kind in PROFIT_AND_LOSS:
                earlier_results += opening
                opening = ZERO
                account_openings = []
            row = TrialBalanceRow(account.id, account.number, account.name, kind,
                                  _closing_cells(periods, row_movements, account_openings, opening))
        if any(row.cells) or (row.total or 0):
            rows_by_kind[kind].append(row)
    if closing and earlier_results and periods:
        rows_by_kind["equity"].append(TrialBalanceRow(None, "", "Result of earlier years", "equity",
                                                      [earlier_results] * len(periods)))

    balance = TrialBalance(year=year, view=view, periods=list(periods))
    for kind in KINDS:
        rows = sorted(rows_by_kind.get(kind, []), key=lambda row: (row.account_id is None, row.number))
        if not rows:
            continue
        subtotals = [sum(column, ZERO) for column in zip(*(row.cells for row in rows))] or []
        total = sum((row.total for row in rows), ZERO) if not closing else None
        balance.groups.append(TrialBalanceGroup(kind, rows, subtotals, total))
    balance.totals = [sum(column, ZERO) for column in zip(*(g.subtotals for g in balance.groups))] \
        if balance.groups else [ZERO] * len(periods)
    balance.total = None if closing else sum((g.total for g in balance.groups), ZERO)
    return balance


# --------------------------------------------------------------------------------------
# Result and equity (the chart)
# --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ChartPoint:
    """One period of the chart: the period's result and the equity at its end (credit positive)."""

    period_end: date
    result: Decimal
    equity: Decimal


def result_and_equity(movement, closing):
    """Per period: result (income - expenses of the period) and equity at the period's end.

    ``movement`` and ``closing`` are the year's two :func:`trial_balance` views. Equity =
    equity accounts + earlier years' results + the year's result to date, shown credit
    positive (what the owners have in the business).
    """
    points = []
    for index, period in enumerate(movement.periods):
        result = -sum((g.subtotals[index] for g in movement.groups if g.kind in PROFIT_AND_LOSS), ZERO)
        equity = -sum((g.subtotals[index] for g in closing.groups if g.kind in PROFIT_AND_LOSS | {"equity"}), ZERO)
        points.append(ChartPoint(period.end, result, equity))
    return points


def _nice_bounds(values):
    low, high = min(values + [ZERO]), max(values + [ZERO])
    if low == high:
        high = low + 1
    return float(low), float(high)


def chart_svg(points, *, label=str, amount=str, titles=("Result", "Equity"), width=640, height=240):
    """Inline SVG: a bar per period for the result, a line for the equity, a zero axis.

    ``label(date)`` and ``amount(Decimal)`` format the axis labels and tooltips (locale
    aware in the page); ``titles`` name the two series. Every bar and point carries
    ``data-period`` and ``data-value`` so the picture can be checked.
    """
    if not points:
        return Markup("")
    left, right, top, bottom = 70, 10, 20, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    low, high = _nice_bounds([p.result for p in points] + [p.equity for p in points])

    def y(value):
        return round(top + (high - float(value)) / (high - low) * plot_h, 1)

    step = plot_w / len(points)
    bar_w = max(2.0, round(step * 0.5, 1))
    zero_y = y(0)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="fs-chart" id="figures-chart" role="img" '
             f'viewBox="0 0 {width} {height}" width="100%" style="max-width:{width}px">',
             f'<title>{escape(titles[0])} / {escape(titles[1])}</title>',
             f'<line x1="{left}" x2="{width - right}" y1="{zero_y}" y2="{zero_y}" stroke="#888" stroke-width="1"/>',
             f'<text x="{left - 6}" y="{y(high)}" text-anchor="end" font-size="11" dominant-baseline="middle">'
             f'{escape(amount(Decimal(str(high)).quantize(CENT)))}</text>',
             f'<text x="{left - 6}" y="{zero_y}" text-anchor="end" font-size="11" dominant-baseline="middle">'
             f'{escape(amount(ZERO))}</text>']
    if low < 0:
        parts.append(f'<text x="{left - 6}" y="{y(low)}" text-anchor="end" font-size="11" dominant-baseline="middle">'
                     f'{escape(amount(Decimal(str(low)).quantize(CENT)))}</text>')
    line = []
    for index, point in enumerate(points):
        centre = round(left + step * (index + 0.5), 1)
        top_y, bottom_y = sorted((y(point.result), zero_y))
        colour = "#2e7d32" if point.result >= 0 else "#c62828"
        period = point.period_end.isoformat()
        parts.append(f'<rect class="fs-result" data-period="{period}" data-value="{point.result}" '
                     f'x="{round(centre - bar_w / 2, 1)}" y="{top_y}" width="{bar_w}" '
                     f'height="{round(bottom_y - top_y, 1)}" fill="{colour}" fill-opacity="0.7">'
                     f'<title>{escape(label(point.period_end))}: {escape(titles[0])} {escape(amount(point.result))}'
                     f'</title></rect>')
        parts.append(f'<text x="{centre}" y="{height - bottom + 16}" text-anchor="middle" font-size="11">'
                     f'{escape(label(point.period_end))}</text>')
        line.append((centre, y(point.equity), point))
    parts.append('<polyline class="fs-equity-line" fill="none" stroke="#1565c0" stroke-width="2" points="'
                 + " ".join(f"{x},{py}" for x, py, _ in line) + '"/>')
    for x, py, point in line:
        parts.append(f'<circle class="fs-equity" data-period="{point.period_end.isoformat()}" '
                     f'data-value="{point.equity}" cx="{x}" cy="{py}" r="3.5" fill="#1565c0">'
                     f'<title>{escape(label(point.period_end))}: {escape(titles[1])} {escape(amount(point.equity))}'
                     f'</title></circle>')
    legend_y = height - 8
    parts.append(f'<rect x="{left}" y="{legend_y - 9}" width="10" height="10" fill="#2e7d32" fill-opacity="0.7"/>'
                 f'<text x="{left + 14}" y="{legend_y}" font-size="11">{escape(titles[0])}</text>'
                 f'<line x1="{left + 110}" x2="{left + 126}" y1="{legend_y - 4}" y2="{legend_y - 4}" '
                 f'stroke="#1565c0" stroke-width="2"/>'
                 f'<text x="{left + 130}" y="{legend_y}" font-size="11">{escape(titles[1])}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


# --------------------------------------------------------------------------------------
# Ledger lines (the drill-down)
# --------------------------------------------------------------------------------------

@dataclass
class LedgerPage:
    """One page of ledger lines and what the filters and pager need."""

    lines: list
    total: int
    amount: Decimal
    page: int
    pages: int


def ledger_page(dossier_id, *, account_id=None, period_id=None, journal=None, text=None, page=1,
                page_size=LEDGER_PAGE_SIZE):
    """The dossier's ledger lines matching the filters, newest booking date last, one page.

    ``text`` matches the description or reference (case-insensitive). ``amount`` is the
    sum of every matching line (not only this page). Out-of-range pages answer the last.
    """
    conditions = [LedgerLine.dossier_id == dossier_id]
    if account_id is not None:
        conditions.append(LedgerLine.account_id == account_id)
    if period_id is not None:
        conditions.append(LedgerLine.period_id == period_id)
    if journal:
        conditions.append(LedgerLine.journal == journal)
    if text:
        pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        conditions.append(or_(LedgerLine.description.ilike(pattern, escape="\\"),
                              LedgerLine.reference.ilike(pattern, escape="\\")))
    where = and_(*conditions)
    total, amount = db.session.execute(select(func.count(LedgerLine.id), func.sum(LedgerLine.amount)).where(where)).one()
    pages = max(1, -(-total // page_size))
    page = min(max(1, page), pages)
    lines = db.session.execute(
        select(LedgerLine, Account.number, Account.name).join(Account, Account.id == LedgerLine.account_id)
        .where(where).order_by(LedgerLine.booking_date, LedgerLine.id)
        .limit(page_size).offset((page - 1) * page_size)).all()
    return LedgerPage(lines=lines, total=total, amount=_money(amount), page=page, pages=pages)


def journals(dossier_id):
    """The journal codes used in the dossier's ledger lines, sorted."""
    return [j for j in db.session.scalars(
        select(LedgerLine.journal).where(LedgerLine.dossier_id == dossier_id).distinct().order_by(LedgerLine.journal))
        if j]


def accounts(dossier_id):
    """The dossier's accounts, by number."""
    return db.session.scalars(select(Account).where(Account.dossier_id == dossier_id).order_by(Account.number)).all()


def periods(dossier_id):
    """The dossier's periods, newest first."""
    return db.session.scalars(select(Period).where(Period.dossier_id == dossier_id).order_by(Period.end.desc())).all()
