"""The dossier page: ``/admin/dossier/?id=<id>``, one client file at a glance.

Header (name, last successful sync, status, the sync-now arrows), the newest data check
(:mod:`app.services.data_checks`: "In balance" or the differences), the yellow
administration-sync banner ("New data from Companies House: 3 fields changed") with its
"use the data" buttons, and tabs: Company (adopted profile, officers, shareholders), Figures
(trial balance of a fiscal year, ``&year=<id>&view=movement|closing``, and the result and
equity chart), Sync history, Fiscal years. ``/admin/dossier/ledger?id=`` lists the ledger
lines behind a trial balance cell, with filters (``account``, ``period``, ``journal``,
``q``) and pages. ``/admin/dossier/progress?id=`` answers the active run's progress as
JSON for the page's small poller.

Every request is scope-checked on the server: a dossier outside the actor's scope (another
firm's, or a private one not granted) answers 404, pulse users 403 (base view); the sync and
adopt POSTs check ``sync_now`` and ``adopt_profile`` themselves (403), whatever the page showed.
"""
from flask import abort, flash, jsonify, redirect, request, url_for
from flask_admin import expose
from flask_babel import gettext, ngettext
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select

from admin_views.account_kinds import classify_context
from admin_views.base import SUPPORT, SecureBaseView, row_id
from admin_views.formatting import STATUS_LABELS, badge, duration, run_message, timestamp, uploaded_badge
from admin_views.dossier_sync import REFERENCE_CHART_NAMES
from admin_views.sync_runs import data_check_badge, data_check_reason
from app import company_profile, figures
from app.access import can
from app.extensions import db
from app.i18n import N_, day
from app.models import Account, DossierLink, FiscalYear, Period, Role, RunStatus, SyncRun, Trigger
from app.services import account_mapping, manual_files
from app.services.syncs import backfills_ahead

HISTORY_ROWS = 25
TRIGGER_LABELS = {"nightly": N_("Nightly"), "manual": N_("Sync now"), "bulk": N_("Resync selected"),
                  "setup": N_("Setup"), "retry": N_("Retry")}
#: account kind -> heading of its group in the trial balance
KIND_LABELS = {"asset": N_("Assets"), "liability": N_("Liabilities"), "equity": N_("Equity"),
               "income": N_("Income"), "expense": N_("Expenses"), "other": N_("Other accounts")}
#: short names of the reference charts and of the standard mappings audit files carry (not translated)
REFERENCE_CHART_SHORT = {"be": "PCMN", "fr": "PCG", "nl": "NL", "uk": "UK"}
SCHEME_SHORT = {"rgs": "RGS", "lead": "XAF", "standard": "SAF-T", "grouping_category": "SAF-T",
                "grouping": "SAF-T", "taxonomy": "SAF-T"}


class DossierPageView(SecureBaseView):
    """One dossier's page (hidden from the menu; linked from the Files list)."""

    permissions = {"list": {Role.ADMIN, Role.STAFF, Role.EXTERNAL, SUPPORT}}

    def __init__(self):
        super().__init__(name=_l("File"), endpoint="dossier", url="/admin/dossier")

    def is_visible(self):
        return False

    # -- helpers -------------------------------------------------------------------
    def back(self, dossier):
        return redirect(url_for(".index", id=dossier.id))

    # -- pages ---------------------------------------------------------------------
    @expose("/")
    def index(self):
        """The page itself."""
        actor = self.actor
        dossier = self.dossier_or_404(request.args.get("id"))
        profile = company_profile.latest_profile(dossier.id)
        links = {kind: dossier.active_link(kind) for kind in ("accounting", "administration")}
        runs = db.session.scalars(
            select(SyncRun).where(SyncRun.dossier_id == dossier.id).order_by(SyncRun.id.desc()).limit(HISTORY_ROWS)
        ).all()
        checked = db.session.scalars(  # the newest data check (app/services/data_checks.py)
            select(SyncRun).where(SyncRun.dossier_id == dossier.id, SyncRun.data_check_status.is_not(None))
            .order_by(SyncRun.id.desc()).limit(1)
        ).first()
        return self.render(
            "admin/dossier_page/index.html",
            **self.figures_context(dossier),
            dossier=dossier,
            links=links,
            profile=profile,
            source=company_profile.source_name(profile) if profile else None,
            changes=company_profile.pending_changes(dossier, profile),
            company=_company_rows(dossier, profile),
            officers=_people(dossier, profile, "officers"),
            shareholders=_people(dossier, profile, "shareholders"),
            runs=runs,
            checked=checked, data_check_badge=data_check_badge, data_check_reason=data_check_reason,
            statuses=company_profile.sync_statuses([dossier.id])[dossier.id],
            years=_years(dossier.id),
            active=_active_run(dossier.id),
            may_sync=can(actor, "sync_now", dossier.id) and not actor.is_support,
            may_adopt=can(actor, "adopt_profile", dossier.id) and not actor.is_support,
            may_setup=can(actor, "setup_sync", dossier.id) and not actor.is_support,
            last_upload=manual_files.last_upload(dossier), uploaded_badge=uploaded_badge,
            badge=badge, timestamp=timestamp, duration=duration, trigger_labels=TRIGGER_LABELS, run_message=run_message,
            display=company_profile.display, gettext=gettext,
        )

    def figures_context(self, dossier):
        """The Figures tab: chosen year and view, its trial balance and the chart."""
        chosen = request.args.get("year")
        year_id = row_id(chosen) if chosen else None
        if chosen and year_id is None:
            abort(404)
        year = figures.year_of(dossier.id, year_id)
        if year_id is not None and year is None:
            abort(404)
        view = request.args.get("view")
        view = view if view in figures.VIEWS else "movement"
        balance = chart = earlier = None
        if year is not None:
            movement = figures.trial_balance(dossier.id, year, "movement")
            closing = figures.trial_balance(dossier.id, year, "closing")
            balance = closing if view == "closing" else movement
            chart = figures.chart_svg(figures.result_and_equity(movement, closing),
                                      label=period_label, amount=figures_amount,
                                      titles=(gettext("Result"), gettext("Equity")))
            earlier = figures.comparatives(dossier.id, year, view) if balance.groups else None
        opened = "figures" if {"year", "view"} & set(request.args) or request.args.get("tab") == "figures" else None
        may_map = may_map_accounts(self.actor, dossier)
        mappable = figures.accounts(dossier.id) if may_map else []
        return dict(balance=balance, chart=chart, view=view, fiscal_year=year, comparatives=earlier,
                    any_figures=bool(balance and balance.groups) or (year is not None and figures.has_figures(dossier.id)),
                    fiscal_years=figures.fiscal_years(dossier.id), kind_labels=KIND_LABELS,
                    period_label=period_label, opened_tab=opened or "company",
                    mappings=account_mapping.mappings_of(dossier.id), scheme_label=scheme_label, may_map=may_map,
                    mappable_accounts=mappable,
                    reference_charts=REFERENCE_CHART_NAMES, **classify_context(self.actor, dossier, mappable))

    @expose("/map-account", methods=["POST"])
    def map_account(self):
        """"Classify an account" (Figures tab): map one account of the file to an account of a
        reference chart (``country`` and ``code``; the account takes its kind) or to an account
        kind (``kind``). Saved per file (origin ``firm``: later uploads and reference-chart
        classifications keep it), audited. Who may upload into the file may map (403 otherwise)."""
        actor = self.actor
        dossier = self.dossier_or_404(request.form.get("id"))
        if not may_map_accounts(actor, dossier):
            abort(403)
        number = (request.form.get("account") or "").strip()
        code = (request.form.get("code") or "").strip()
        kind = request.form.get("kind") or ""
        try:
            if code:
                reference = account_mapping.map_to_reference(actor, dossier, number, request.form.get("country", ""),
                                                             code)
                flash(gettext("Account %(number)s is mapped to %(code)s %(name)s (%(kind)s).", number=number,
                              code=reference[0], name=reference[1], kind=gettext(KIND_LABELS[reference[2]]).lower()),
                      "success")
            elif kind:
                account_mapping.map_account(actor, dossier, number, kind)
                flash(gettext("Account %(number)s is classified as %(kind)s.", number=number,
                              kind=gettext(KIND_LABELS[kind]).lower()), "success")
            else:
                flash(gettext("Choose an account of the reference chart or an account kind."), "error")
        except account_mapping.MappingError as error:
            db.session.rollback()
            flash(gettext("Nothing was changed:") + " " + str(error), "error")
        year_id = row_id(request.form.get("year")) if request.form.get("year") else None
        return redirect(url_for(".index", id=dossier.id, tab="figures",
                                **({"year": year_id} if year_id is not None else {})))

    @expose("/ledger")
    def ledger(self):
        """The ledger lines of the dossier, filtered (account, period, journal, text) and paged."""
        dossier = self.dossier_or_404(request.args.get("id"))
        account_id = _own_id(Account, request.args.get("account"), dossier.id)
        period_id = _own_id(Period, request.args.get("period"), dossier.id)
        journal = (request.args.get("journal") or "").strip() or None
        text = (request.args.get("q") or "").strip()[:100] or None
        result = figures.ledger_page(dossier.id, account_id=account_id, period_id=period_id, journal=journal,
                                     text=text, page=request.args.get("page", 1, type=int))
        filters = {"account": account_id, "period": period_id, "journal": journal, "q": text}
        return self.render(
            "admin/dossier_page/ledger.html", dossier=dossier, result=result, filters=filters,
            accounts=figures.accounts(dossier.id), periods=figures.periods(dossier.id),
            journals=figures.journals(dossier.id), period_label=period_label,
            page_url=lambda page: url_for(".ledger", id=dossier.id, page=page,
                                          **{k: v for k, v in filters.items() if v is not None}),
        )

    @expose("/sync", methods=["POST"])
    def sync(self):
        """The sync-now arrows: queue a manual run (of the administration link with ``link_id``). A press
        while the link has a queued, running or deferred run creates nothing and says so (that run
        answers it: :func:`app.services.syncs.request_sync`)."""
        from app.services.syncs import request_sync

        actor = self.actor
        dossier = self.dossier_or_404(request.form.get("id"))
        if actor.is_support or not can(actor, "sync_now", dossier.id):
            abort(403)
        chosen = request.form.get("link_id")
        link_id = row_id(chosen) if chosen else None
        if chosen and (link_id is None or db.session.scalar(
                select(DossierLink.id).where(DossierLink.id == link_id, DossierLink.dossier_id == dossier.id,
                                             DossierLink.ended_at.is_(None))) is None):
            abort(404)
        newest_before = db.session.scalar(select(func.max(SyncRun.id)).where(SyncRun.dossier_id == dossier.id)) or 0
        run = request_sync(dossier.id, Trigger.MANUAL, actor, link_id=link_id)
        if run is None:
            flash(gettext("This file has no sync set up yet."), "info")
        elif getattr(run, "waits_for_queue", False):  # Redis away: the run waits in the database
            flash(gettext("The sync is queued. Firmsync's job queue is briefly unavailable: the sync will start "
                          "as soon as it is back."), "warning")
        else:  # a run older than this press is the queued or running one it was answered with
            flash(gettext("The sync is queued.") if run.id > newest_before
                  else gettext("A sync of this file is already under way."), "success")
        return self.back(dossier)

    @expose("/adopt", methods=["POST"])
    def adopt(self):
        """"Use the data from …": all pending fields, or the one named ``field``."""
        actor = self.actor
        dossier = self.dossier_or_404(request.form.get("id"))
        if actor.is_support or not can(actor, "adopt_profile", dossier.id):
            abort(403)
        field = request.form.get("field") or None
        if field is not None and field not in company_profile.LABELS:
            abort(400)
        profile = company_profile.latest_profile(dossier.id)
        if profile is None:
            flash(gettext("There is no administration data to take over yet."), "info")
            return self.back(dossier)
        fields = [field] if field else [change.field for change in company_profile.pending_changes(dossier, profile)]
        taken = company_profile.adopt(actor, dossier, fields, profile)
        db.session.commit()
        source = company_profile.source_name(profile)
        if taken:
            flash(ngettext("Took over %(num)d field from %(source)s.", "Took over %(num)d fields from %(source)s.",
                           len(taken), source=source), "success")
        else:
            flash(gettext("The file already has the data from %(source)s.", source=source), "info")
        return self.back(dossier)

    @expose("/progress")
    def progress(self):
        """JSON: the newest run of the dossier (active first) and its progress."""
        dossier = self.dossier_or_404(request.args.get("id"))
        run = _active_run(dossier.id) or db.session.scalar(
            select(SyncRun).where(SyncRun.dossier_id == dossier.id).order_by(SyncRun.id.desc()).limit(1))
        return jsonify(run_progress(run, dossier))


def run_progress(run, dossier):
    """What the poller shows: status, label, stream, records, percent, and the last sync time.

    While a run is active its progress comes from the RQ job's ``meta`` (always current),
    else from the run row (written every few hundred records, and the final numbers). A first
    sync waiting for its turn says how many of its firm's first syncs are ahead of it.
    """
    answer = {"dossier_id": dossier.id, "last_synced_at": timestamp(dossier.last_synced_at),
              "run_id": None, "status": dossier.sync_status, "active": False, "stream": None,
              "records": 0, "percent": None, "message": None}
    if run is None:
        answer["label"] = gettext(STATUS_LABELS.get(dossier.sync_status, "Never synced"))
        return answer
    answer.update(run_id=run.id, status=run.status, active=run.status in RunStatus.ACTIVE,
                  stream=run.progress_stream, records=run.progress_records or 0, percent=run.progress_percent,
                  message=run_message(run), label=gettext(STATUS_LABELS.get(run.status, run.status)))
    ahead = backfills_ahead(run)
    if ahead is not None:  # a first sync waiting for its firm's turn (docs/sync-engine.md "Queues and fairness")
        answer["message"] = ngettext("Waiting for its turn: %(num)d first sync of this firm is ahead.",
                                     "Waiting for its turn: %(num)d first syncs of this firm are ahead.", ahead)
    if run.status == RunStatus.RUNNING:
        meta = _job_progress(run.id)
        if meta:
            answer.update(stream=meta.get("stream") or answer["stream"],
                          records=max(int(meta.get("records") or 0), answer["records"]),
                          percent=meta.get("percent") if meta.get("percent") is not None else answer["percent"])
    return answer


def _job_progress(run_id):
    """The ``progress`` entry of the run's RQ job meta, or None (job gone, Redis down)."""
    from rq.exceptions import NoSuchJobError
    from app.services.queues import fetch_job, sync_job_id

    try:
        job = fetch_job(sync_job_id(run_id))
        return (job.get_meta(refresh=True) or {}).get("progress")
    except NoSuchJobError:
        return None
    except Exception:  # progress is best effort; the row still answers
        return None


def may_map_accounts(actor, dossier):
    """May ``actor`` map the accounts of ``dossier``? Who may upload into it (support reads only)."""
    return not actor.is_support and can(actor, "upload_data", dossier.id)


def scheme_label(mapping):
    """How a saved mapping is shown beside its account: ``RGS BLimBanRba``, ``PCMN 6000``,
    ``firm`` for a kind chosen by the firm without a reference account."""
    scheme = mapping.scheme or ""
    if scheme.startswith("reference:"):
        return f"{REFERENCE_CHART_SHORT.get(scheme.split(':', 1)[1], scheme)} {mapping.code}"
    if scheme == "firm":
        return gettext("set by the firm")
    return f"{SCHEME_SHORT.get(scheme, scheme)} {mapping.code}".strip()


def period_label(period_end):
    """A period's column heading: its end month for the current locale (``Mar 2024``, ``mrt 2024``)."""
    return day(period_end, "MMM yyyy")


def figures_amount(value):
    """An amount in the chart (no decimals are needed at that size)."""
    from flask_babel import format_decimal

    return format_decimal(value, format="#,##0")


def _own_id(model, value, dossier_id):
    """``value`` as the id of a ``model`` row of the dossier; None when empty; 404 otherwise."""
    if value in (None, ""):
        return None
    own_id = row_id(value)
    if own_id is None or db.session.scalar(
            select(model.id).where(model.id == own_id, model.dossier_id == dossier_id)) is None:
        abort(404)
    return own_id


def _active_run(dossier_id):
    return db.session.scalar(
        select(SyncRun).where(SyncRun.dossier_id == dossier_id, SyncRun.status.in_(RunStatus.ACTIVE))
        .order_by(SyncRun.id.desc()).limit(1))


def _company_rows(dossier, profile):
    """``[(label, value in effect, adopted version or None)]`` for the Company tab."""
    adopted = dossier.adopted_profile or {}
    rows = []
    for field, label in company_profile.FIELDS:
        if field in ("officers", "shareholders"):
            continue
        entry = adopted.get(field) if isinstance(adopted.get(field), dict) else {}
        rows.append((gettext(label), company_profile.display(field, company_profile.value_in_effect(dossier, field)),
                     entry.get("version")))
    return rows


def _people(dossier, profile, field):
    """``(people, adopted)``: the adopted list, else the latest snapshot's (not adopted yet)."""
    entry = (dossier.adopted_profile or {}).get(field)
    if isinstance(entry, dict) and entry.get("value") is not None:
        return entry["value"], True
    return ((profile.data or {}).get(field) or [] if profile else []), False


def _years(dossier_id):
    """``[(FiscalYear, number of periods)]``, newest first."""
    counts = dict(db.session.execute(
        select(Period.fiscal_year_id, func.count(Period.id)).where(Period.dossier_id == dossier_id)
        .group_by(Period.fiscal_year_id)).all())
    years = db.session.scalars(select(FiscalYear).where(FiscalYear.dossier_id == dossier_id)
                               .order_by(FiscalYear.start.desc())).all()
    return [(year, counts.get(year.id, 0)) for year in years]

