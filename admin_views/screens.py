"""The list of console screens, in menu order."""
from admin_views.api_tokens import ApiTokenView
from admin_views.audit_log import AuditEventView
from admin_views.connections import ConnectionView
from admin_views.dossier_page import DossierPageView
from admin_views.dossier_sync import DossierSyncView
from admin_views.dossiers import DossierView
from admin_views.firms import FirmView
from admin_views.fiscal_years import FiscalYearView
from admin_views.groups import GroupView
from admin_views.links import DossierLinkView
from admin_views.new_client import NewClientView
from admin_views.sync_runs import SyncRunView
from admin_views.system_health import SystemHealthView
from admin_views.users import UserView
from admin_views.webhooks import WebhookDeliveryView, WebhookEndpointView

SCREENS = [
    DossierView,
    NewClientView,
    DossierLinkView,
    SyncRunView,
    FiscalYearView,
    ConnectionView,
    UserView,
    GroupView,
    ApiTokenView,
    WebhookEndpointView,
    WebhookDeliveryView,
    FirmView,
    AuditEventView,
    SystemHealthView,
    DossierPageView,  # hidden from the menu: /admin/dossier/?id=<id>
    DossierSyncView,  # hidden from the menu: /admin/dossier-sync/?id=<id>
]
