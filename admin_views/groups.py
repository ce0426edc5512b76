"""Groups of people in a firm; a dossier can be granted to a group."""
from flask_babel import lazy_gettext as _l
from wtforms.validators import DataRequired, Length

from admin_views.base import SecureModelView
from admin_views.choices import ScopedMultipleField, firm_members
from admin_views.formatting import when
from app.models import Group, Role

ADMIN_ONLY = {Role.ADMIN}


class GroupView(SecureModelView):
    model_class = Group
    menu_name = _l("Groups")
    screen_endpoint = "groups"
    permissions = {op: ADMIN_ONLY for op in ("list", "create", "edit", "delete")}

    column_list = ("name", "members", "created_at")
    column_labels = {"members": _l("Members"), "created_at": _l("Created"), "name": _l("Name")}
    column_searchable_list = ("name",)
    column_filters = ("name",)
    column_default_sort = "name"
    column_formatters = {
        "members": lambda v, c, m, n: ", ".join(sorted(str(u) for u in m.members)), "created_at": when,
    }
    form_columns = ("name", "members")
    form_overrides = {"members": ScopedMultipleField}
    form_args = {
        "name": {"validators": [DataRequired(), Length(max=200)]},
        "members": {"query_factory": firm_members, "label": _l("Members")},
    }
