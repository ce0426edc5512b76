"""The console's screens, grouped into the menu's categories, in menu order.

The menu shows the dashboard, then one dropdown per category (:data:`MENU`); a category
whose screens the actor may not open is not shown (Flask-Admin hides a category with no
visible item). Each screen decides who sees it (its ``permissions``), not the menu.
"""
from flask_babel import lazy_gettext as _l

from admin_views.account_kinds import AccountKindsView
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

#: ``(category, screens)`` in menu order; category ``None``: screens reached by links, not the menu
MENU = [
    (_l("Clients"), [DossierView, NewClientView, DossierLinkView, FiscalYearView]),
    (_l("Synchronisations"), [SyncRunView, ConnectionView, WebhookEndpointView, WebhookDeliveryView]),
    (_l("Firm"), [UserView, GroupView, FirmView, ApiTokenView, AuditEventView]),
    (_l("Support"), [SystemHealthView]),
    (None, [
        DossierPageView,  # /admin/dossier/?id=<id>
        DossierSyncView,  # /admin/dossier-sync/?id=<id>
        AccountKindsView,  # POST /admin/account-kinds/classify (the Figures tab)
    ]),
]

#: every screen, in menu order
SCREENS = [screen for _category, screens in MENU for screen in screens]
