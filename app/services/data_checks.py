"""Every sync checks its own data (docs/sync-engine.md, "Data checks").

After a run's data is committed, :func:`check_run` compares, for the run's link:

a. per account and period, the package's balance with the sum of the synced ledger lines;
b. per period, that the package's trial balance (the balances of every account) sums to zero.

What is compared, precisely: Firmsync stores a package's balances as **movements** (the net
change of an account in a period, debit positive): :class:`app.services.bookkeeping.SyncWriter`
converts year-to-date and closing bases to movements. Ledger lines are movements too. A
closing balance is "opening balance + movements so far" on either side, with the same opening
balance, so comparing closing balances period after period is the same as comparing each
period's movements; the check compares the movements and shows a difference in the one period
where it arises (a closing comparison would repeat it in every later period).

Only the periods the run's window asked the package balances for are checked (from
:func:`app.services.sync_windows.history_start`, never before the link's transfer date, never
after its end date): before that, the writer fills periods without balances from the lines
themselves, which would always agree. Only the link's own rows are compared (balances written
by it, lines it brought). Amounts are exact decimals; a difference of at most
:data:`TOLERANCE` (half a cent) is rounding and ignored.

Packages that send balances only, or ledger lines only (Firmsync then computes the balances
from the lines), and administration links get ``not_applicable`` with the reason.

Every figure is an aggregate computed in SQL (a few statements whatever the size of the ledger:
no line is loaded into Python). The result is stored on the run
(:attr:`SyncRun.data_check_status`, :attr:`SyncRun.data_check`). :func:`enqueue_check` queues
the job ``jobs.data_checks.check(run_id)`` on the maintenance queue.
"""
from __future__ import annotations

import logging
from datetime import date
from decimal import Decimal

from sqlalchemy import Numeric, and_, case, func, literal, select, union_all

from app import audit
from app.extensions import db
from app.models import Account, DossierLink, LedgerLine, Period, PeriodBalance, RunStatus, SyncRun
from app.models.base import utcnow
from app.services.queues import MAINTENANCE_QUEUE, get_queue
from app.services.sync_windows import history_start
from connectors.base import BalanceRecord, LedgerLineRecord
from connectors.registry import get_connector

log = logging.getLogger("firmsync.data_checks")

IN_BALANCE = "in_balance"
DIFFERENCES = "differences"
NOT_APPLICABLE = "not_applicable"
STATUSES = (IN_BALANCE, DIFFERENCES, NOT_APPLICABLE)

#: why a check does not apply (codes stored on the run; the console words them)
NO_LINK = "no_link"
ADMINISTRATION = "administration"
UNKNOWN_PACKAGE = "unknown_package"
LINES_ONLY = "lines_only"
BALANCES_ONLY = "balances_only"
#: no balance and no line in the checked periods
NO_FIGURES = "no_figures"
REASONS = (NO_LINK, ADMINISTRATION, UNKNOWN_PACKAGE, LINES_ONLY, BALANCES_ONLY, NO_FIGURES)

#: a difference of at most half a cent is rounding
TOLERANCE = Decimal("0.005")
#: differences listed on the run (the total count is always kept)
MAX_LISTED = 50
CHECK_JOB = "jobs.data_checks.check"
_AMOUNT = Numeric(18, 2, asdecimal=True)


def check_job_id(run_id):
    """The RQ job id of a run's data check: ``data-check-<run_id>`` (one per run)."""
    return f"data-check-{int(run_id)}"


def enqueue_check(run_id):
    """Queue the data check of run ``run_id`` (``jobs.data_checks.check``) on the maintenance queue."""
    return get_queue(MAINTENANCE_QUEUE).enqueue(CHECK_JOB, int(run_id), job_id=check_job_id(run_id),
                                                description=f"data check of sync run {int(run_id)}")


def enqueue_check_quietly(run_id):
    """:func:`enqueue_check` for the sync job after a run succeeded: never raises (a check that
    cannot be queued, Redis being away, is logged; it never changes how the sync ended)."""
    try:
        enqueue_check(run_id)
    except Exception:  # noqa: BLE001 - the sync's outcome is already written
        log.warning("run %s: data check not queued", run_id, exc_info=True)


def check_run(run_id):
    """Check run ``run_id``'s data and store the result on the run (commits).

    Only a succeeded run is checked (returns None for any other, or a missing run); the result
    dict is returned (see :func:`check_dossier`)."""
    run = db.session.get(SyncRun, run_id)
    if run is None or run.status != RunStatus.SUCCEEDED:
        return None
    result = check_dossier(run.dossier_id, run_id)
    run.data_check_status = result["status"]
    run.data_check = result
    if result["status"] == DIFFERENCES:
        audit.record(None, "sync.data_check", run, summary=(
            f"Data check of sync run {run.id}: {result['differences_count']} difference(s) between the package's "
            "balances and its ledger lines"))
    db.session.commit()
    return result


def check_dossier(dossier_id, run_id=None, today=None):
    """The data check of a dossier (nothing is written).

    The link checked is the run's (``run_id``), else the dossier's active bookkeeping link.
    Returns ``{"status": in_balance | differences | not_applicable, "reason": code or None,
    "link_id", "checked_from" (ISO day), "cells" (account-periods compared), "periods",
    "differences_count", "account_differences", "trial_balance_differences",
    "differences": [{"account", "name", "period_end", "balance", "lines", "difference"}] (at most
    :data:`MAX_LISTED`), "trial_balance": [{"period_end", "total"}], "checked_at"}``; amounts
    are strings of exact decimals.
    """
    link = _link_of(dossier_id, run_id)
    reason = _not_applicable(link)
    if reason is not None:
        return _result(NOT_APPLICABLE, reason, link)
    if today is None and run_id is not None:
        started = db.session.scalar(select(SyncRun.started_at).where(SyncRun.id == run_id))
        today = started.date() if started else None
    start = history_start(link, today)
    if link.valid_from and link.valid_from > start:
        start = link.valid_from
    periods = _periods_in_scope(dossier_id, link, start)
    cells = _cells(dossier_id, link.id, periods)
    differing = func.abs(cells.c.balance - cells.c.lines) > TOLERANCE
    totals = db.session.execute(select(
        func.count(), func.count(func.distinct(cells.c.period_id)), func.sum(case((differing, 1), else_=0)),
    ).select_from(cells)).one()
    cell_count, period_count, account_count = int(totals[0] or 0), int(totals[1] or 0), int(totals[2] or 0)
    if not cell_count:
        return _result(NOT_APPLICABLE, NO_FIGURES, link, start, cells=cell_count, periods=period_count)
    listed = db.session.execute(
        select(Account.number, Account.name, Period.end, cells.c.balance, cells.c.lines)
        .select_from(cells)
        .join(Account, Account.id == cells.c.account_id)
        .join(Period, Period.id == cells.c.period_id)
        .where(differing)
        .order_by(Period.end, Account.number)
        .limit(MAX_LISTED)
    ).all() if account_count else []
    unbalanced = _unbalanced_periods(dossier_id, link.id, periods)
    result = _result(DIFFERENCES if account_count or unbalanced else IN_BALANCE, None, link, start,
                     cells=cell_count, periods=period_count)
    result.update(
        differences_count=account_count + len(unbalanced),
        account_differences=account_count,
        trial_balance_differences=len(unbalanced),
        differences=[{"account": number, "name": name, "period_end": end.isoformat(),
                      "balance": _text(balance), "lines": _text(lines),
                      "difference": _text(_decimal(balance) - _decimal(lines))}
                     for number, name, end, balance, lines in listed],
        trial_balance=[{"period_end": end.isoformat(), "total": _text(total)} for end, total in unbalanced[:MAX_LISTED]],
    )
    return result


# --------------------------------------------------------------------------------------
# The SQL
# --------------------------------------------------------------------------------------


def _periods_in_scope(dossier_id, link, start):
    """The ids of the dossier's periods the check covers (a subquery)."""
    conditions = [Period.dossier_id == dossier_id, Period.end >= start]
    if link.valid_to is not None:
        conditions.append(Period.start <= link.valid_to)
    return select(Period.id).where(*conditions)


def _cells(dossier_id, link_id, periods):
    """Per (account, period) of the link: the package's balance and the sum of its lines, one
    row per cell where either is present (a missing side is zero). A subquery."""
    balances = select(
        PeriodBalance.account_id.label("account_id"), PeriodBalance.period_id.label("period_id"),
        PeriodBalance.amount.label("balance"), literal(0, _AMOUNT).label("lines"),
    ).where(PeriodBalance.dossier_id == dossier_id, PeriodBalance.origin_link_id == link_id,
            PeriodBalance.period_id.in_(periods))
    lines = select(
        LedgerLine.account_id, LedgerLine.period_id, literal(0, _AMOUNT), func.sum(LedgerLine.amount),
    ).where(LedgerLine.dossier_id == dossier_id, LedgerLine.link_id == link_id,
            LedgerLine.period_id.in_(periods)).group_by(LedgerLine.account_id, LedgerLine.period_id)
    both = union_all(balances, lines).subquery("sides")
    return (select(both.c.account_id, both.c.period_id,
                   func.sum(both.c.balance).label("balance"), func.sum(both.c.lines).label("lines"))
            .group_by(both.c.account_id, both.c.period_id).subquery("cells"))


def _unbalanced_periods(dossier_id, link_id, periods):
    """``[(period end, total)]``: the periods whose trial balance (the package's balances of every
    account) does not sum to zero, oldest first (one statement)."""
    total = func.sum(PeriodBalance.amount)
    return db.session.execute(
        select(Period.end, total)
        .join(Period, Period.id == PeriodBalance.period_id)
        .where(PeriodBalance.dossier_id == dossier_id, PeriodBalance.origin_link_id == link_id,
               PeriodBalance.period_id.in_(periods))
        .group_by(Period.end)
        .having(func.abs(total) > TOLERANCE)
        .order_by(Period.end)
    ).all()


# --------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------


def _link_of(dossier_id, run_id):
    if run_id is not None:
        return db.session.scalar(select(DossierLink).join(SyncRun, SyncRun.link_id == DossierLink.id)
                                 .where(and_(SyncRun.id == run_id, SyncRun.dossier_id == dossier_id)))
    return db.session.scalar(select(DossierLink).where(
        DossierLink.dossier_id == dossier_id, DossierLink.kind == "accounting", DossierLink.ended_at.is_(None))
        .order_by(DossierLink.id.desc()).limit(1))


def _not_applicable(link):
    """Why the check does not apply to ``link`` (a reason code), or None."""
    if link is None:
        return NO_LINK
    if link.kind != "accounting":
        return ADMINISTRATION
    try:
        kinds = {stream.record_type for stream in get_connector(link.connection.package).streams}
    except KeyError:
        return UNKNOWN_PACKAGE
    if BalanceRecord not in kinds:
        return LINES_ONLY if LedgerLineRecord in kinds else BALANCES_ONLY
    if LedgerLineRecord not in kinds:
        return BALANCES_ONLY
    return None


def _result(status, reason, link, start=None, *, cells=0, periods=0):
    return {
        "status": status, "reason": reason, "link_id": link.id if link is not None else None,
        "checked_from": start.isoformat() if isinstance(start, date) else None,
        "cells": cells, "periods": periods, "differences_count": 0, "account_differences": 0,
        "trial_balance_differences": 0, "differences": [], "trial_balance": [],
        "checked_at": utcnow().isoformat(timespec="seconds") + "Z",
    }


def _decimal(amount):
    """An exact amount with two decimals (SQLite's sums may come back as floats)."""
    value = amount if isinstance(amount, Decimal) else Decimal(str(amount or 0))
    return value.quantize(Decimal("0.01"))


def _text(amount):
    """An exact amount as text with two decimals."""
    return str(_decimal(amount))
