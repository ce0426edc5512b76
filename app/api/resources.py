"""The API's resources (docs/api.md): every query is scoped by the calling token's firm and
the console's visibility rules (:meth:`app.services.api_tokens.ApiCaller.dossier_visibility`);
a row outside them answers 404, exactly like a row that does not exist.

``updated_since`` on a file's bookkeeping data first asks whether a sync *changed* the file
since then (a run with ``changed`` true finished at or after it): a no-change night answers an
empty page after that one query. When one did, accounts, balances and ledger lines are filtered
per row on their ``updated_at`` (stamped by the sync writer on insert and on a real change),
from the earlier of ``updated_since`` and the start of those runs, so a row written by a run
still open when the client last pulled is not missed; fiscal years and periods come whole.
"""
from flask import current_app, g
from flask_smorest import Blueprint, abort
from sqlalchemy import func, or_, select
from sqlalchemy.orm import selectinload
from werkzeug.exceptions import HTTPException

from app import audit, figures
from app.access import can
from app.api import schemas
from app.api.pagination import page
from app.extensions import db
from app.models import (
    Account, CompanyProfile, Connection, Dossier, FiscalYear, LedgerLine, Period, PeriodBalance, RunStatus, Scope,
    SyncRun, Trigger,
)
from app.models.base import utcnow
from app.services.syncs import request_syncs

blueprint = Blueprint("api", __name__, url_prefix="/api/v1", description="Firmsync's public API")


@blueprint.errorhandler(HTTPException)
def _json_error(error):
    """Every error of the API is JSON: ``{code, status, message, errors?}``."""
    api = current_app.extensions["flask-smorest"]["apis"][""]["ext_obj"]
    return api.handle_http_exception(error)


# ---------------------------------------------------------------- helpers

def caller():
    """The :class:`~app.services.api_tokens.ApiCaller` of this request (set by ``app.api``)."""
    return g.api_caller


def require(scope):
    if not caller().has_scope(scope):
        abort(403, message=f"This token lacks the '{scope}' scope.")


#: ids are 32-bit ``Integer`` columns: a larger id in a query would make the database fail
MAX_ID = 2**31 - 1


def found_id(value, what):
    """``value`` when it can be a row's id, else 404 (an id no row can have is simply not found)."""
    if not 0 < value <= MAX_ID:
        abort(404, message=f"No such {what}.")
    return value


def visible_dossier(dossier_id):
    """The dossier when the caller may see it, else 404."""
    require(Scope.READ)
    found_id(dossier_id, "file")
    dossier = db.session.scalar(select(Dossier).where(Dossier.id == dossier_id, caller().dossier_visibility()))
    if dossier is None:
        abort(404, message="No such file.")
    return dossier


def changed_rows_from(dossier_id, since):
    """None when no sync changed the dossier's data at or after ``since``; else the moment from
    which a row's ``updated_at`` counts as changed: the earlier of ``since`` and the start of
    the first such run (its rows were stamped while it ran, before it committed). One query."""
    count, first_start = db.session.execute(select(func.count(SyncRun.id), func.min(SyncRun.started_at)).where(
        SyncRun.dossier_id == dossier_id, SyncRun.finished_at >= since, SyncRun.changed.isnot(False),
        SyncRun.status == RunStatus.SUCCEEDED)).one()
    if not count:
        return None
    return min(since, first_start) if first_start is not None else since


def dossier_page(dossier, query, id_column, args, updated_column=None):
    """A page of one file's bookkeeping rows, honouring ``updated_since`` at file level, then per
    row on ``updated_column`` when the rows have one."""
    since = args.get("updated_since")
    if since is not None:
        cutoff = changed_rows_from(dossier.id, since)
        if cutoff is None:
            return {"data": [], "next_cursor": None, "as_of": utcnow()}  # nothing changed: no query on the rows
        if updated_column is not None:
            query = query.where(updated_column >= cutoff)
    return page(db.session, query, id_column, args)


# ---------------------------------------------------------------- dossiers

@blueprint.route("/dossiers")
@blueprint.arguments(schemas.ListArgs, location="query")
@blueprint.response(200, schemas.page_schema(schemas.DossierSchema, "DossierPage"))
def list_dossiers(args):
    """List the files the token may see (with their active links, status and last sync)."""
    require(Scope.READ)
    query = select(Dossier).where(caller().dossier_visibility()).options(selectinload(Dossier.links))
    if args.get("updated_since") is not None:
        since = args["updated_since"]
        query = query.where(or_(Dossier.created_at >= since, Dossier.last_synced_at >= since))
    return page(db.session, query, Dossier.id, args)


@blueprint.route("/dossiers/<int:dossier_id>")
@blueprint.etag
@blueprint.response(200, schemas.DossierSchema)
@blueprint.alt_response(304, description="Not modified (If-None-Match matched the ETag)")
def get_dossier(dossier_id):
    """One file, with an ETag."""
    return visible_dossier(dossier_id)


@blueprint.route("/dossiers/<int:dossier_id>/fiscal-years")
@blueprint.arguments(schemas.ListArgs, location="query")
@blueprint.response(200, schemas.page_schema(schemas.FiscalYearSchema, "FiscalYearPage"))
def list_fiscal_years(args, dossier_id):
    """The file's fiscal years."""
    dossier = visible_dossier(dossier_id)
    return dossier_page(dossier, select(FiscalYear).where(FiscalYear.dossier_id == dossier.id), FiscalYear.id, args)


@blueprint.route("/dossiers/<int:dossier_id>/periods")
@blueprint.arguments(schemas.ListArgs, location="query")
@blueprint.response(200, schemas.page_schema(schemas.PeriodSchema, "PeriodPage"))
def list_periods(args, dossier_id):
    """The file's periods."""
    dossier = visible_dossier(dossier_id)
    return dossier_page(dossier, select(Period).where(Period.dossier_id == dossier.id), Period.id, args)


@blueprint.route("/dossiers/<int:dossier_id>/accounts")
@blueprint.arguments(schemas.ListArgs, location="query")
@blueprint.response(200, schemas.page_schema(schemas.AccountSchema, "AccountPage"))
def list_accounts(args, dossier_id):
    """The file's chart of accounts."""
    dossier = visible_dossier(dossier_id)
    return dossier_page(dossier, select(Account).where(Account.dossier_id == dossier.id), Account.id, args,
                        Account.updated_at)


@blueprint.route("/dossiers/<int:dossier_id>/balances")
@blueprint.arguments(schemas.BalanceArgs, location="query")
@blueprint.response(200, schemas.page_schema(schemas.BalanceSchema, "BalancePage"))
def list_balances(args, dossier_id):
    """Net movement per account and period (debit positive)."""
    dossier = visible_dossier(dossier_id)
    query = select(PeriodBalance).where(PeriodBalance.dossier_id == dossier.id)
    if args.get("period_id"):
        query = query.where(PeriodBalance.period_id == args["period_id"])
    return dossier_page(dossier, query, PeriodBalance.id, args, PeriodBalance.updated_at)


@blueprint.route("/dossiers/<int:dossier_id>/trial-balance")
@blueprint.arguments(schemas.TrialBalanceArgs, location="query")
@blueprint.response(200, schemas.TrialBalanceSchema)
def get_trial_balance(args, dossier_id):
    """Closing balance per account at the end of the period holding ``date``, with the same
    period of the previous fiscal year as comparative."""
    dossier = visible_dossier(dossier_id)
    day = args["date"]
    current = _closing_at(dossier.id, day)
    earlier = _closing_at(dossier.id, _a_year_before(day)) if day.year > 1 else (None, {})
    rows = {}
    for key, (amount, row) in current[1].items():
        rows[key] = {"account_id": row.account_id, "number": row.number, "name": row.name, "kind": row.kind,
                     "balance": amount, "comparative": None}
    for key, (amount, row) in earlier[1].items():
        entry = rows.setdefault(key, {"account_id": row.account_id, "number": row.number, "name": row.name,
                                      "kind": row.kind, "balance": figures.ZERO})
        entry["comparative"] = amount
    return {"dossier_id": dossier.id, "date": day, "period_end": current[0], "comparative_period_end": earlier[0],
            "rows": sorted(rows.values(), key=lambda r: (r["number"], r["name"]))}


def _a_year_before(day):
    """The same day a year earlier (29 February: the 28th)."""
    return day.replace(year=day.year - 1, day=28) if (day.month, day.day) == (2, 29) else day.replace(year=day.year - 1)


def _closing_at(dossier_id, day):
    """``(period end, {(number, name): (closing amount, row)})`` of the period holding ``day``."""
    year = db.session.scalar(select(FiscalYear).where(
        FiscalYear.dossier_id == dossier_id, FiscalYear.start <= day, FiscalYear.end >= day))
    if year is None:
        return None, {}
    balance = figures.trial_balance(dossier_id, year, "closing")
    index = next((i for i, period in enumerate(balance.periods) if period.start <= day <= period.end), None)
    if index is None:
        return None, {}
    return balance.periods[index].end, {(row.number, row.name): (row.cells[index], row) for row in balance.rows}


@blueprint.route("/dossiers/<int:dossier_id>/ledger-lines")
@blueprint.arguments(schemas.LedgerLineArgs, location="query")
@blueprint.response(200, schemas.page_schema(schemas.LedgerLineSchema, "LedgerLinePage"))
def list_ledger_lines(args, dossier_id):
    """The file's ledger lines, filtered by period, account and booking dates."""
    dossier = visible_dossier(dossier_id)
    query = select(LedgerLine).where(LedgerLine.dossier_id == dossier.id)
    if args.get("period_id"):
        query = query.where(LedgerLine.period_id == args["period_id"])
    if args.get("account_id"):
        query = query.where(LedgerLine.account_id == args["account_id"])
    if args.get("date_from"):
        query = query.where(LedgerLine.booking_date >= args["date_from"])
    if args.get("date_to"):
        query = query.where(LedgerLine.booking_date <= args["date_to"])
    return dossier_page(dossier, query, LedgerLine.id, args, LedgerLine.updated_at)


@blueprint.route("/dossiers/<int:dossier_id>/company-profiles")
@blueprint.arguments(schemas.ListArgs, location="query")
@blueprint.response(200, schemas.page_schema(schemas.CompanyProfileSchema, "CompanyProfilePage"))
def list_company_profiles(args, dossier_id):
    """The file's company master data snapshots, oldest version first."""
    dossier = visible_dossier(dossier_id)
    query = select(CompanyProfile).where(CompanyProfile.dossier_id == dossier.id)
    if args.get("updated_since") is not None:
        query = query.where(CompanyProfile.fetched_at >= args["updated_since"])
    return page(db.session, query, CompanyProfile.id, args)


# ---------------------------------------------------------------- connections

def _connections_query():
    require(Scope.READ)
    if not can(caller().actor, "manage_connections"):
        abort(403, message="Only an administrator's token reads connections.")
    return select(Connection).where(Connection.firm_id == caller().firm_id)


@blueprint.route("/connections")
@blueprint.arguments(schemas.ListArgs, location="query")
@blueprint.response(200, schemas.page_schema(schemas.ConnectionSchema, "ConnectionPage"))
def list_connections(args):
    """The firm's connections (never a secret nor a configuration value)."""
    query = _connections_query()
    if args.get("updated_since") is not None:
        query = query.where(Connection.updated_at >= args["updated_since"])
    return page(db.session, query, Connection.id, args)


@blueprint.route("/connections/<int:connection_id>")
@blueprint.etag
@blueprint.response(200, schemas.ConnectionSchema)
@blueprint.alt_response(304, description="Not modified")
def get_connection(connection_id):
    """One connection, with an ETag."""
    query = _connections_query()
    connection = db.session.scalar(query.where(Connection.id == found_id(connection_id, "connection")))
    if connection is None:
        abort(404, message="No such connection.")
    return connection


# ---------------------------------------------------------------- sync runs

@blueprint.route("/sync-runs")
@blueprint.arguments(schemas.SyncRunArgs, location="query")
@blueprint.response(200, schemas.page_schema(schemas.SyncRunSchema, "SyncRunPage"))
def list_sync_runs(args):
    """Sync runs of the files the token may see (status, counts, API calls, error)."""
    require(Scope.READ)
    query = select(SyncRun).where(SyncRun.firm_id == caller().firm_id,
                                  SyncRun.dossier_id.in_(caller().visible_dossier_ids()))
    if args.get("dossier_id"):
        query = query.where(SyncRun.dossier_id == args["dossier_id"])
    if args.get("status"):
        query = query.where(SyncRun.status == args["status"])
    if args.get("updated_since") is not None:
        since = args["updated_since"]
        query = query.where(or_(SyncRun.queued_at >= since, SyncRun.started_at >= since,
                                SyncRun.heartbeat_at >= since, SyncRun.finished_at >= since))
    return page(db.session, query, SyncRun.id, args)


@blueprint.route("/sync-runs/<int:run_id>")
@blueprint.etag
@blueprint.response(200, schemas.SyncRunSchema)
@blueprint.alt_response(304, description="Not modified")
def get_sync_run(run_id):
    """One sync run: poll it to follow a sync's progress."""
    require(Scope.READ)
    run = db.session.scalar(select(SyncRun).where(SyncRun.id == found_id(run_id, "sync run"), SyncRun.firm_id == caller().firm_id,
                                                  SyncRun.dossier_id.in_(caller().visible_dossier_ids())))
    if run is None:
        abort(404, message="No such sync run.")
    return run


@blueprint.route("/syncs", methods=["POST"])
@blueprint.arguments(schemas.SyncRequest)
@blueprint.response(202, schemas.SyncOutcomeSchema)
def start_syncs(body):
    """Start a sync of one or more files (a file already syncing gives its current run back)."""
    require(Scope.SYNC)
    who = caller()
    wanted = list(dict.fromkeys(body["dossier_ids"]))
    visible = set(db.session.scalars(select(Dossier.id).where(Dossier.id.in_(wanted), who.dossier_visibility())))
    if len(visible) != len(wanted):
        abort(404, message="No such file: " + ", ".join(str(i) for i in wanted if i not in visible))
    if not can(who.actor, "sync_now"):
        abort(403, message="This token's user may not start syncs.")
    trigger = Trigger.MANUAL if len(wanted) == 1 else Trigger.BULK
    runs, skipped = request_syncs(wanted, trigger, who.actor)
    audit.record(who.actor, "api.sync", object_type="ApiToken", object_id=str(who.token_id), firm_id=who.firm_id,
                 dossier_id=wanted[0] if len(wanted) == 1 else None,
                 summary=f"API token #{who.token_id} started syncs of files {', '.join(map(str, wanted))}"[:500])
    db.session.commit()
    return {"runs": runs, "skipped_dossier_ids": skipped}
