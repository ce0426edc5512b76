"""The list of console screens, in menu order."""
from admin_views.audit_log import AuditEventView
from admin_views.connections import ConnectionView
from admin_views.dossiers import DossierView
from admin_views.firms import FirmView
from admin_views.fiscal_years import FiscalYearView
from admin_views.groups import GroupView
from admin_views.links import DossierLinkView
from admin_views.sync_runs import SyncRunView
from admin_views.users import UserView

SCREENS = [
    DossierView,
    DossierLinkView,
    SyncRunView,
    FiscalYearView,
    ConnectionView,
    UserView,
    GroupView,
    FirmView,
    AuditEventView,
]
