"""Sync runs: read-only history of every sync attempt, newest first."""
from flask_babel import lazy_gettext as _l

from admin_views.base import SUPPORT, SecureModelView
from admin_views.formatting import duration, status_badge, when
from app.models import Role, SyncRun

TRIGGER_LABELS = {"nightly": "Nightly", "manual": "Sync now", "bulk": "Resync selected", "setup": "Setup", "retry": "Retry"}


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
        "lines", "api_calls", "message",
    )
    column_details_list = (
        "dossier", "link", "trigger", "triggered_by", "status", "attempt", "queued_at", "started_at", "finished_at",
        "duration", "accounts_count", "balances_count", "lines_inserted", "lines_updated", "lines_deleted",
        "changed", "api_calls", "progress_stream", "progress_records", "progress_percent", "error_category", "message",
    )
    column_export_list = (
        "id", "dossier", "trigger", "status", "queued_at", "started_at", "finished_at", "duration", "accounts_count",
        "balances_count", "lines_inserted", "lines_updated", "lines_deleted", "changed", "api_calls",
        "error_category", "message",
    )
    column_sortable_list = ("trigger", "status", "queued_at", "api_calls")
    column_filters = ("status", "trigger", "error_category", "queued_at")
    column_default_sort = ("queued_at", True)
    column_labels = {
        "dossier": "File", "queued_at": "Queued", "started_at": "Started", "finished_at": "Finished",
        "accounts_count": "Accounts", "balances_count": "Balances", "lines": "Ledger lines (+/~/−)",
        "lines_inserted": "Lines added", "lines_updated": "Lines changed", "lines_deleted": "Lines removed",
        "api_calls": "API calls", "triggered_by": "Started by", "error_category": "Problem", "link": "Source",
    }
    column_formatters = {
        "trigger": lambda v, c, m, n: TRIGGER_LABELS.get(m.trigger, m.trigger),
        "status": status_badge,
        "queued_at": when, "started_at": when, "finished_at": when,
        "duration": lambda v, c, m, n: duration(m.duration_seconds),
        "lines": lambda v, c, m, n: f"+{m.lines_inserted} / ~{m.lines_updated} / −{m.lines_deleted}",
    }
    column_formatters_export = {
        "duration": lambda v, c, m, n: m.duration_seconds if m.duration_seconds is not None else "",
        "dossier": lambda v, c, m, n: str(m.dossier),
    }
