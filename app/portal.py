"""The read-only client portal of pulse users (``/portal/``): the files granted to them, each
with its last sync time and its key figures (revenue, expenses and result of the latest fiscal
year, balance sheet total at its end), nothing else. Console users who open it see the same
cards for the files they may see; pulse users get 403 on the console (``admin_views/base.py``).
Each card shows the latest fiscal year with figures and, beside it, the year before (comparatives).
"""
from flask import Blueprint, abort, render_template
from flask_login import login_required
from sqlalchemy import func, select

from app import figures
from app.access import current_actor, dossier_visibility
from app.extensions import db
from app.models import Account, Dossier, FiscalYear, OpeningBalance, Period, PeriodBalance
from app.models.base import utcnow

blueprint = Blueprint("portal", __name__, url_prefix="/portal")


def balance_sheet_total(dossier_id, year_end):
    """The total of the asset accounts at ``year_end``: their newest opening balances on or
    before it plus their movements from that date (or from the start) up to it."""
    opened = db.session.scalar(
        select(func.max(OpeningBalance.date)).join(OpeningBalance.account)
        .where(OpeningBalance.dossier_id == dossier_id, Account.kind == "asset", OpeningBalance.date <= year_end)
    )
    opening = 0
    movements = (select(func.sum(PeriodBalance.amount)).join(PeriodBalance.account)
                 .join(Period, Period.id == PeriodBalance.period_id)
                 .where(PeriodBalance.dossier_id == dossier_id, Account.kind == "asset", Period.end <= year_end))
    if opened is not None:
        opening = db.session.scalar(
            select(func.sum(OpeningBalance.amount)).join(OpeningBalance.account)
            .where(OpeningBalance.dossier_id == dossier_id, Account.kind == "asset", OpeningBalance.date == opened)
        ) or 0
        movements = movements.where(Period.start >= opened)
    return opening + (db.session.scalar(movements) or 0)


def year_figures(dossier_id, year):
    """Revenue, expenses and result of ``year`` (credit shown positive) and the balance sheet
    total at its end."""
    rows = db.session.execute(
        select(Account.kind, func.sum(PeriodBalance.amount))
        .join(PeriodBalance.account)
        .join(Period, Period.id == PeriodBalance.period_id)
        .where(PeriodBalance.dossier_id == dossier_id, Period.fiscal_year_id == year.id)
        .group_by(Account.kind)
    ).all()
    sums = {kind: amount or 0 for kind, amount in rows}
    revenue = -sums.get("income", 0)
    expenses = sums.get("expense", 0)
    return {"year": year, "revenue": revenue, "expenses": expenses, "result": revenue - expenses,
            "balance_sheet_total": balance_sheet_total(dossier_id, year.end)}


def key_figures(dossier_id, today=None):
    """The key figures (:func:`year_figures`) of the dossier's latest fiscal year with figures
    (the newest one that has started and has period balances: a new, still empty year is not
    shown), with ``previous``: the same figures of the fiscal year before it (None when the
    file has none). None when no year has figures yet (the card says so)."""
    today = today or utcnow().date()
    year = db.session.scalars(
        select(FiscalYear).where(FiscalYear.dossier_id == dossier_id, FiscalYear.start <= today,
                                 FiscalYear.id.in_(figures.years_with_figures(dossier_id)))
        .order_by(FiscalYear.start.desc()).limit(1)
    ).first()
    if year is None:
        return None
    earlier = figures.previous_year(dossier_id, year)
    return {**year_figures(dossier_id, year), "previous": year_figures(dossier_id, earlier) if earlier else None}


@blueprint.route("/")
@login_required
def index():
    """The actor's files (for a pulse user: the files granted to them), read-only."""
    actor = current_actor()
    if actor is None:
        abort(403)
    dossiers = db.session.scalars(
        select(Dossier).where(dossier_visibility(actor)).order_by(Dossier.name)
    ).all()
    return render_template(
        "portal/index.html", dossiers=[(d, key_figures(d.id)) for d in dossiers]
    )
