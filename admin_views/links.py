"""Dossier links (which company in which package feeds a file): read-only history."""
from flask_babel import lazy_gettext as _l

from admin_views.base import SUPPORT, SecureModelView
from admin_views.formatting import timestamp
from app.models import DossierLink, Role

SCENARIO_LABELS = {
    "keep": "Kept existing data, synced from the transfer date",
    "replace": "Replaced all data with the sync",
    "switch": "Switched source from the transfer date",
    "manual": "Reverted to a manual file",
    "re_establish": "Re-established completely",
}


class DossierLinkView(SecureModelView):
    model_class = DossierLink
    menu_name = _l("File links")
    screen_endpoint = "links"
    scope = "dossier"
    permissions = {"list": {Role.ADMIN, Role.STAFF, Role.EXTERNAL, SUPPORT}}

    column_list = ("dossier", "connection", "kind", "reference", "scenario", "valid_from", "valid_to", "ended_at")
    column_details_list = column_list + ("reference_name", "options", "opening_balance_taken_at", "created_by", "created_at")
    column_sortable_list = ("kind", "reference", "scenario", "valid_from", "valid_to", "ended_at")
    column_searchable_list = ("reference", "reference_name")
    column_filters = ("kind", "scenario")
    column_default_sort = ("created_at", True)
    column_labels = {
        "dossier": "File", "connection": "Connection", "reference": "Company", "valid_from": "Transfer date",
        "valid_to": "Until", "ended_at": "Ended", "opening_balance_taken_at": "Opening balance taken",
        "created_by": "Set up by", "created_at": "Set up",
    }
    column_formatters = {
        "reference": lambda v, c, m, n: f"{m.reference_name} ({m.reference})" if m.reference_name else m.reference,
        "scenario": lambda v, c, m, n: SCENARIO_LABELS.get(m.scenario, m.scenario),
        "ended_at": lambda v, c, m, n: timestamp(m.ended_at, empty="active"),
    }
