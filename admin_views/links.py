"""Dossier links (which company in which package feeds a file): read-only history."""
from flask_babel import gettext
from flask_babel import lazy_gettext as _l

from admin_views.base import SUPPORT, SecureModelView
from admin_views.formatting import timestamp
from app.i18n import N_
from app.models import DossierLink, Role

SCENARIO_LABELS = {
    "keep": N_("Kept existing data, synced from the transfer date"),
    "replace": N_("Replaced all data with the sync"),
    "switch": N_("Switched source from the transfer date"),
    "manual": N_("Reverted to a manual file"),
    "re_establish": N_("Re-established completely"),
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
        "dossier": _l("File"), "connection": _l("Connection"), "reference": _l("Company"), "valid_from": _l("Transfer date"),
        "valid_to": _l("Until"), "ended_at": _l("Ended"), "opening_balance_taken_at": _l("Opening balance taken"),
        "created_by": _l("Set up by"), "created_at": _l("Set up"), "kind": _l("Kind"),
        "scenario": _l("Scenario"),
    }
    column_formatters = {
        "reference": lambda v, c, m, n: f"{m.reference_name} ({m.reference})" if m.reference_name else m.reference,
        "scenario": lambda v, c, m, n: gettext(SCENARIO_LABELS[m.scenario]) if m.scenario in SCENARIO_LABELS else m.scenario,
        "ended_at": lambda v, c, m, n: timestamp(m.ended_at, empty=gettext("active")),
        "created_at": lambda v, c, m, n: timestamp(m.created_at),
        "opening_balance_taken_at": lambda v, c, m, n: timestamp(m.opening_balance_taken_at, empty=""),
    }
