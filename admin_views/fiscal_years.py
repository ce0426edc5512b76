"""Fiscal years of the files: everyone with access reads them; support edits and locks them.

A year support edits gets ``origin="support"``; a locked year is never changed by a sync.
"""
from datetime import date

from flask import flash, request
from flask_admin.actions import action
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from admin_views.base import SUPPORT, SecureModelView, row_id
from admin_views.choices import visible_dossiers
from admin_views.formatting import yes_no
from app import audit
from app.extensions import db
from app.models import FiscalYear, Role
from app.services.uploads import EARLIEST_DATE, LATEST_DATE

SUPPORT_ONLY = {SUPPORT}
MAX_MONTHS = 24


def months_later(day, months):
    """``day`` moved ``months`` months on (clamped to the month's last day)."""
    year, month = divmod(day.month - 1 + months, 12)
    year, month = day.year + year, month + 1
    for candidate in (31, 30, 29, 28):
        try:
            return date(year, month, min(day.day, candidate))
        except ValueError:
            continue
    raise ValueError(day)


def fiscal_year_problems(dossier_id, start, end, year_id=None):
    """Messages for the ``end`` field: dates an upload may hold, order, length (at most 24
    months) and overlap."""
    if start is None or end is None:
        return []
    if not (EARLIEST_DATE <= start <= LATEST_DATE and EARLIEST_DATE <= end <= LATEST_DATE):
        return [gettext("A fiscal year must fall between %(earliest)s and %(latest)s.",
                        earliest=EARLIEST_DATE.isoformat(), latest=LATEST_DATE.isoformat())]
    if end <= start:
        return ["The end must come after the start."]
    if end >= months_later(start, MAX_MONTHS):
        return [f"A fiscal year lasts at most {MAX_MONTHS} months."]
    overlapping = db.session.scalars(
        select(FiscalYear).where(
            FiscalYear.dossier_id == dossier_id, FiscalYear.start <= end, FiscalYear.end >= start,
            FiscalYear.id != (year_id or 0),
        )
    ).first()
    if overlapping is not None:
        return [f"This overlaps the fiscal year {overlapping}."]
    return []


class FiscalYearView(SecureModelView):
    model_class = FiscalYear
    menu_name = _l("Fiscal years")
    screen_endpoint = "fiscal-years"
    scope = "dossier"
    permissions = {
        "list": {Role.ADMIN, Role.STAFF, Role.EXTERNAL, SUPPORT},
        "create": SUPPORT_ONLY,
        "edit": SUPPORT_ONLY,
        "delete": SUPPORT_ONLY,
    }
    action_permissions = {"lock": SUPPORT_ONLY, "unlock": SUPPORT_ONLY}

    column_list = ("dossier", "start", "end", "origin", "locked")
    column_sortable_list = ("start", "end", "origin", "locked")
    column_filters = ("locked", "origin", "start", "end")
    column_default_sort = ("start", True)
    column_labels = {
        "dossier": _l("File"), "origin": _l("Source"), "locked": _l("Locked"), "start": _l("Start"), "end": _l("End"),
    }
    column_formatters = {"locked": yes_no}
    form_columns = ("dossier", "start", "end", "locked")
    form_args = {
        "dossier": {"query_factory": visible_dossiers, "label": _l("File")},
        "locked": {"description": _l("A locked year is never changed by a sync.")},
    }

    def validate_form(self, form):
        if not super().validate_form(form):
            return False
        if not hasattr(form, "end"):
            return True  # delete and action forms
        dossier = form.dossier.data
        problems = fiscal_year_problems(dossier.id if dossier else None, form.start.data, form.end.data,
                                        year_id=row_id(request.args.get("id")))
        form.end.errors = list(form.end.errors) + problems
        return not problems

    def on_model_change(self, form, model, is_created):
        model.origin = "support"
        super().on_model_change(form, model, is_created)

    def _set_locked(self, ids, locked):
        changed = 0
        for year in self.scoped(ids):
            if year.locked != locked:
                audit.record(self.actor, "fiscal_year.lock" if locked else "fiscal_year.unlock", year,
                             firm_id=year.dossier.firm_id, changes={"locked": [year.locked, locked]},
                             summary=f"{'Locked' if locked else 'Unlocked'} fiscal year {year} of {year.dossier}")
                year.locked = locked
                changed += 1
        db.session.commit()
        flash(gettext("%(count)s fiscal year(s) locked.", count=changed) if locked
              else gettext("%(count)s fiscal year(s) unlocked.", count=changed), "success")

    @action("lock", _l("Lock"), _l("Lock the selected fiscal years against the sync?"))
    def action_lock(self, ids):
        self._set_locked(ids, True)

    @action("unlock", _l("Unlock"), _l("Unlock the selected fiscal years? The next sync may change them."))
    def action_unlock(self, ids):
        self._set_locked(ids, False)
