"""``/admin/system-health/``: the System health screen, for support staff (every firm) and
administrators (their own firm's runs).

Workers alive (RQ's registered workers, their state, queues, current job and last
heartbeat), the depth of each queue with its running, scheduled and failed jobs and whether
a scheduler serves it, the oldest queued run and the deferred runs with their reason
(:func:`app.services.health.system_health`). Read-only; nothing on it can change anything.
With Redis away it says so and still shows the runs (they come from the database).
"""
from flask_admin import expose
from flask_babel import lazy_gettext as _l

from admin_views.base import SUPPORT, SecureBaseView
from admin_views.formatting import duration, timestamp
from app.models import Role
from app.services.health import system_health


class SystemHealthView(SecureBaseView):
    """Read-only: support (all firms' runs) and administrators (their firm's runs)."""

    permissions = {"list": {Role.ADMIN, SUPPORT}}

    def __init__(self):
        super().__init__(name=_l("System health"), endpoint="system_health", url="/admin/system-health")

    @expose("/")
    def index(self):
        return self.render("admin/system_health.html", health=system_health(self.actor), timestamp=timestamp,
                           duration=duration, all_firms=self.actor.is_support)
