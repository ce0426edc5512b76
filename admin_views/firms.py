"""Firms: an administrator edits their own firm; support lists every firm read-only.

Firms are created with ``flask users create --firm``, never in the console.
"""
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import current_app
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from wtforms import SelectField
from wtforms.validators import DataRequired, Length, Regexp, ValidationError

from admin_views.base import SUPPORT, SecureModelView
from admin_views.country_currency import CountryField
from admin_views.formatting import when
from app.i18n import LANGUAGE_NAMES
from app.models import Firm, Role
from app.time_zones import zone_choices

NIGHTLY_TIME = Regexp(r"^([01]\d|2[0-3]):[0-5]\d$", message="Use a 24-hour time such as 02:00.")


def valid_timezone(form, field):
    try:
        ZoneInfo(field.data or "")
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError(gettext("Unknown time zone; use a name such as Europe/Brussels.")) from None


def locale_choices():
    return [(code, LANGUAGE_NAMES.get(code, code)) for code in current_app.config["LANGUAGES"]]


class FirmView(SecureModelView):
    model_class = Firm
    menu_name = _l("Firm")
    screen_endpoint = "firms"
    scope = "none"
    permissions = {
        "list": {Role.ADMIN, SUPPORT},
        "edit": {Role.ADMIN},
    }

    column_list = ("name", "country", "timezone", "nightly_time", "default_locale", "created_at")
    column_labels = {
        "nightly_time": _l("Nightly sync at"), "default_locale": _l("Language"), "created_at": _l("Created"),
        "name": _l("Name"), "country": _l("Country"), "timezone": _l("Time zone"),
    }
    column_formatters = {"created_at": when}
    column_searchable_list = ("name",)
    column_filters = ("country",)
    column_default_sort = "name"
    form_columns = ("name", "country", "timezone", "nightly_time", "default_locale")
    form_overrides = {"default_locale": SelectField, "country": CountryField, "timezone": SelectField}
    form_args = {
        "name": {"validators": [DataRequired(), Length(max=200)]},
        "country": {"validators": [DataRequired()]},
        "timezone": {"validators": [DataRequired(), valid_timezone], "choices": zone_choices},
        "nightly_time": {"validators": [DataRequired(), NIGHTLY_TIME], "description": _l("Local time (HH:MM) at which the nightly sync starts.")},
        "default_locale": {"choices": locale_choices, "label": _l("Language")},
    }

    def scope_query(self, query):
        """Support sees every firm; an administrator only their own."""
        actor = self.actor
        if actor is None:
            return query.filter(Firm.id.is_(None))
        return query if actor.is_support else query.filter(Firm.id == actor.firm_id)
