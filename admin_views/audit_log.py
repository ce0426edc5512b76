"""The audit log: who did what to which object, newest first (read-only)."""
import json

from flask_babel import lazy_gettext as _l
from markupsafe import Markup, escape

from admin_views.base import SUPPORT, SecureModelView
from admin_views.formatting import when
from app.models import AuditEvent, Role


def _changes(view, context, model, name):
    if not model.changes:
        return ""
    rows = "".join(
        f"<tr><th>{escape(field)}</th><td>{escape(json.dumps(values[0] if isinstance(values, list) else values))}</td>"
        f"<td>{escape(json.dumps(values[1])) if isinstance(values, list) and len(values) > 1 else ''}</td></tr>"
        for field, values in sorted(model.changes.items())
    )
    return Markup(f'<table class="table table-sm mb-0"><tr><th>field</th><th>before</th><th>after</th></tr>{rows}</table>')


class AuditEventView(SecureModelView):
    model_class = AuditEvent
    menu_name = _l("Audit log")
    screen_endpoint = "audit"
    permissions = {"list": {Role.ADMIN, SUPPORT}, "export": {Role.ADMIN}}

    column_list = ("created_at", "user", "action", "object_type", "object_id", "summary")
    column_details_list = ("created_at", "firm", "user", "action", "object_type", "object_id", "dossier_id", "summary", "changes")
    column_export_list = ("created_at", "user", "action", "object_type", "object_id", "dossier_id", "summary", "changes")
    column_sortable_list = ("created_at", "action", "object_type")
    column_searchable_list = ("summary",)
    column_filters = ("action", "object_type", "user.email", "created_at")
    column_default_sort = ("created_at", True)
    column_labels = {
        "created_at": _l("When"), "user": _l("Who"), "object_type": _l("Object"), "object_id": _l("Id"),
        "dossier_id": _l("File id"),
        "user.email": _l("User e-mail"), "action": _l("Action"), "summary": _l("Summary"), "changes": _l("Changes"),
    }
    column_formatters = {"created_at": when, "user": lambda v, c, m, n: m.user.email if m.user else "system"}
    column_formatters_detail = {**column_formatters, "changes": _changes}
    column_formatters_export = {
        "user": lambda v, c, m, n: m.user.email if m.user else "system",
        "changes": lambda v, c, m, n: json.dumps(m.changes, sort_keys=True, default=str),
    }
