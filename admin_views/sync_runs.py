"""Sync runs: read-only history of every sync attempt, newest first, with each run's data check.

:func:`data_check_badge` and :func:`data_check_reason` word a run's data check
(:mod:`app.services.data_checks`) for every screen that shows one (this list, the file page,
the dashboard): "In balance" (green), "N differences" (red), "Not checked" (grey) with the reason.
"""
from flask import url_for
from flask_admin.contrib.sqla.filters import FilterEqual
from flask_babel import gettext, ngettext
from flask_babel import lazy_gettext as _l
from markupsafe import Markup, escape

from admin_views.base import SUPPORT, SecureModelView
from admin_views.formatting import duration, run_message, status_badge, when
from app.i18n import N_
from app.models import Role, SyncRun
from app.services import data_checks

#: why a data check did not apply (reason code -> words for an accountant)
DATA_CHECK_REASONS = {
    data_checks.NO_LINK: N_("The file has no bookkeeping sync."),
    data_checks.ADMINISTRATION: N_("An administration sync brings company details, not figures."),
    data_checks.UNKNOWN_PACKAGE: N_("The package of this sync is no longer installed."),
    data_checks.LINES_ONLY: N_("The package sends ledger lines only: Firmsync computes the balances from them, "
                               "so there is nothing to compare."),
    data_checks.BALANCES_ONLY: N_("The package sends balances only, without ledger lines to compare them with."),
    data_checks.NO_FIGURES: N_("The package sent no balances and no ledger lines for the periods checked."),
}


def data_check_badge(status, data=None):
    """A badge for a run's data check: "In balance", "N differences", "Not checked" (with the
    reason as its title); empty when the run was not checked."""
    if not status:
        return ""
    data = data or {}
    if status == data_checks.IN_BALANCE:
        colour, label, title = "success", gettext("In balance"), ""
    elif status == data_checks.DIFFERENCES:
        count = int(data.get("differences_count") or 0)
        colour, title = "danger", ""
        label = ngettext("%(num)d difference", "%(num)d differences", count)
    else:
        colour, label, title = "light", gettext("Not checked"), data_check_reason(data)
    title_attr = f' title="{escape(title)}"' if title else ""
    return Markup(f'<span class="badge badge-{colour} fs-data-check" data-check="{escape(status)}"'
                  f'{title_attr}>{escape(label)}</span>')


def runs_with_differences_url():
    """The Sync runs list showing the runs whose data check found differences."""
    return url_for("runs.index_view", flt0_0=data_checks.DIFFERENCES)


def data_check_reason(data):
    """Why a check did not apply, in the user's language ("" when it applied)."""
    reason = (data or {}).get("reason")
    return gettext(DATA_CHECK_REASONS[reason]) if reason in DATA_CHECK_REASONS else ""

TRIGGER_LABELS = {
    "nightly": N_("Nightly"), "manual": N_("Sync now"), "bulk": N_("Resync selected"), "setup": N_("Setup"),
    "retry": N_("Retry"),
}


class SyncRunView(SecureModelView):
    model_class = SyncRun
    menu_name = _l("Sync runs")
    screen_endpoint = "runs"
    scope = "dossier"
    permissions = {
        "list": {Role.ADMIN, Role.STAFF, Role.EXTERNAL, SUPPORT},
        "export": {Role.ADMIN, Role.STAFF},
    }

    column_list = (
        "dossier", "trigger", "status", "queued_at", "duration", "accounts_count", "balances_count",
        "lines", "api_calls", "data_check_status", "message",
    )
    column_details_list = (
        "dossier", "link", "trigger", "triggered_by", "status", "attempt", "queued_at", "started_at", "finished_at",
        "duration", "accounts_count", "balances_count", "lines_inserted", "lines_updated", "lines_deleted",
        "changed", "api_calls", "progress_stream", "progress_records", "progress_percent", "error_category", "message", "data_check_status",
    )
    column_export_list = (
        "id", "dossier", "trigger", "status", "queued_at", "started_at", "finished_at", "duration", "accounts_count",
        "balances_count", "lines_inserted", "lines_updated", "lines_deleted", "changed", "api_calls",
        "error_category", "message", "data_check_status",
    )
    column_sortable_list = ("trigger", "status", "queued_at", "api_calls")
    #: the data check's filter comes first: :func:`runs_with_differences_url` names it by position
    column_filters = (FilterEqual(SyncRun.data_check_status, _l("Data check"), options=(
        (data_checks.DIFFERENCES, _l("Differences")), (data_checks.IN_BALANCE, _l("In balance")),
        (data_checks.NOT_APPLICABLE, _l("Not checked")))), "status", "trigger", "error_category", "queued_at")
    column_default_sort = ("queued_at", True)
    column_labels = {
        "dossier": _l("File"), "queued_at": _l("Queued"), "started_at": _l("Started"), "finished_at": _l("Finished"),
        "accounts_count": _l("Accounts"), "balances_count": _l("Balances"), "lines": _l("Ledger lines (+/~/−)"),
        "lines_inserted": _l("Lines added"), "lines_updated": _l("Lines changed"), "lines_deleted": _l("Lines removed"),
        "api_calls": _l("API calls"), "triggered_by": _l("Started by"), "error_category": _l("Problem"), "link": _l("Source"),
        "data_check_status": _l("Data check"), "trigger": _l("Trigger"), "status": _l("Status"),
        "message": _l("Message"), "duration": _l("Duration"),
    }
    column_formatters = {
        "trigger": lambda v, c, m, n: gettext(TRIGGER_LABELS[m.trigger]) if m.trigger in TRIGGER_LABELS else m.trigger,
        "status": status_badge,
        "queued_at": when, "started_at": when, "finished_at": when,
        "duration": lambda v, c, m, n: duration(m.duration_seconds),
        "lines": lambda v, c, m, n: f"+{m.lines_inserted} / ~{m.lines_updated} / −{m.lines_deleted}",
        "data_check_status": lambda v, c, m, n: data_check_badge(m.data_check_status, m.data_check),
        "message": lambda v, c, m, n: run_message(m),
    }
    column_formatters_export = {
        "duration": lambda v, c, m, n: m.duration_seconds if m.duration_seconds is not None else "",
        "dossier": lambda v, c, m, n: str(m.dossier),
    }
