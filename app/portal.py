"""The read-only client portal of pulse users: their dossiers, last sync, key figures."""
from flask import Blueprint, abort, render_template
from flask_login import login_required
from sqlalchemy import func, select

from app.access import current_actor, dossier_visibility
from app.extensions import db
from app.models import Account, Dossier, FiscalYear, Period, PeriodBalance

blueprint = Blueprint("portal", __name__, url_prefix="/portal")


def key_figures(dossier_id):
    """Revenue, expenses and result of the dossier's latest fiscal year (credit shown positive)."""
    year = db.session.scalars(
        select(FiscalYear).where(FiscalYear.dossier_id == dossier_id).order_by(FiscalYear.start.desc()).limit(1)
    ).first()
    if year is None:
        return None
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
    return {"year": year, "revenue": revenue, "expenses": expenses, "result": revenue - expenses}


@blueprint.route("/")
@login_required
def index():
    actor = current_actor()
    if actor is None:
        abort(403)
    dossiers = db.session.scalars(
        select(Dossier).where(dossier_visibility(actor)).order_by(Dossier.name)
    ).all()
    return render_template(
        "portal/index.html", dossiers=[(d, key_figures(d.id)) for d in dossiers]
    )
