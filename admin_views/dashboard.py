"""The console's home page: for now, the actor's files counted by sync status."""
from flask_admin import expose
from sqlalchemy import func, select

from admin_views.base import ConsoleIndexView
from admin_views.formatting import badge
from app.access import dossier_visibility
from app.extensions import db
from app.models import Dossier


def status_counts(actor):
    """``[(status or None, count)]`` of the dossiers ``actor`` may see, largest first."""
    rows = db.session.execute(
        select(Dossier.sync_status, func.count(Dossier.id)).where(dossier_visibility(actor)).group_by(Dossier.sync_status)
    ).all()
    return sorted(((status, count) for status, count in rows), key=lambda row: (-row[1], row[0] or ""))


class DashboardView(ConsoleIndexView):
    """``/admin/``: a minimal dashboard (a later issue builds the full one)."""

    @expose("/")
    def index(self):
        return self.render(self._template, status_counts=status_counts(self.actor), badge=badge)
