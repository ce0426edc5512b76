"""Webhook endpoints of the firm and their delivery log (administrators only).

Adding an endpoint shows its signing secret once; "Send test event" and "Enable" act on the
selected endpoints, "Redeliver" on the selected deliveries. Everything goes through
:mod:`app.services.webhooks` (which checks the address, audits and enqueues).
"""
from flask import flash
from flask_admin.actions import action
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import SelectMultipleField, StringField
from wtforms.validators import DataRequired, Length

from admin_views.base import SecureModelView
from admin_views.formatting import when, yes_no
from app.models import Role, WebhookDelivery, WebhookEndpoint
from app.services import webhooks

ADMIN_ONLY = {Role.ADMIN}


class WebhookEndpointForm(FlaskForm):
    url = StringField(_l("Address (https)"), validators=[DataRequired(), Length(max=500)])
    events = SelectMultipleField(_l("Events"), choices=[(e, e) for e in webhooks.EVENTS if e != "test"],
                                 validators=[DataRequired()])


class WebhookEndpointView(SecureModelView):
    model_class = WebhookEndpoint
    menu_name = _l("Webhooks")
    screen_endpoint = "webhooks"
    permissions = {"list": ADMIN_ONLY, "create": ADMIN_ONLY, "delete": ADMIN_ONLY}
    action_permissions = {"send_test": ADMIN_ONLY, "enable": ADMIN_ONLY}

    column_list = ("url", "events", "active", "disabled_reason", "created_at")
    column_labels = {"url": _l("Address"), "events": _l("Events"), "active": _l("Active"),
                     "disabled_reason": _l("Why disabled"), "created_at": _l("Created")}
    column_formatters = {"active": yes_no, "created_at": when}
    column_default_sort = ("id", True)
    can_view_details = False

    def create_form(self, obj=None):
        return WebhookEndpointForm()

    def create_model(self, form):
        """Add the endpoint through the service and show its secret once."""
        try:
            endpoint, secret = webhooks.create_endpoint(self.actor, form.url.data, form.events.data)
        except webhooks.WebhookError as error:
            flash(gettext(str(error)), "error")
            return False
        flash(gettext("Signing secret of %(url)s: copy it now, it will not be shown again: %(secret)s",
                      url=endpoint.url, secret=secret), "info")
        return endpoint

    @action("send_test", _l("Send test event"))
    def action_send_test(self, ids):
        count = sum(1 for endpoint in self.scoped(ids) if webhooks.send_test(self.actor, endpoint.id))
        flash(gettext("%(count)d test event(s) queued.", count=count), "success")

    @action("enable", _l("Enable"))
    def action_enable(self, ids):
        count = sum(1 for endpoint in self.scoped(ids) if webhooks.enable(self.actor, endpoint.id))
        flash(gettext("%(count)d endpoint(s) enabled.", count=count), "success")


class WebhookDeliveryView(SecureModelView):
    model_class = WebhookDelivery
    menu_name = _l("Webhook deliveries")
    screen_endpoint = "webhook-deliveries"
    permissions = {"list": ADMIN_ONLY}
    action_permissions = {"redeliver": ADMIN_ONLY}

    column_list = ("endpoint", "event", "status", "attempts", "last_status_code", "last_response",
                   "last_attempt_at", "next_attempt_at", "created_at")
    column_labels = {"endpoint": _l("Endpoint"), "event": _l("Event"), "status": _l("Status"),
                     "attempts": _l("Attempts"), "last_status_code": _l("Last answer"),
                     "last_response": _l("Last response"), "last_attempt_at": _l("Last attempt"),
                     "next_attempt_at": _l("Next attempt"), "created_at": _l("Created")}
    column_formatters = {"last_attempt_at": when, "next_attempt_at": when, "created_at": when}
    column_filters = ("event", "status")
    column_default_sort = ("id", True)
    can_view_details = False

    @action("redeliver", _l("Redeliver"))
    def action_redeliver(self, ids):
        count = sum(1 for delivery in self.scoped(ids) if webhooks.redeliver(self.actor, delivery.id))
        flash(gettext("%(count)d delivery(ies) queued again.", count=count), "success")
