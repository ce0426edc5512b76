"""Firmsync's domain model (ARCHITECTURE section 3).

Every table except ``user`` carries a ``firm_id`` directly or through its dossier; the
console and the API scope every query by it (see :mod:`app.access`).
"""
from app.models.firm import Firm, Group, Membership, Role, User, group_members
from app.models.connection import Connection, ConnectionStatus
from app.models.dossier import Dossier, DossierLink, Frequency, Scenario, dossier_groups, dossier_users
from app.models.sync import RunStatus, SyncRun, Trigger
from app.models.bookkeeping import Account, FiscalYear, LedgerLine, OpeningBalance, Period, PeriodBalance
from app.models.profile import CompanyProfile
from app.models.audit import AuditEvent
from app.models.api import ApiToken, Scope, WebhookDelivery, WebhookEndpoint
from app.models.account_mapping import AccountMapping
from app.models.upload_mapping import UploadColumnMapping
from app.models.response_stage import RunResponseStage

__all__ = [
    "Account", "AuditEvent", "CompanyProfile", "Connection", "ConnectionStatus", "Dossier",
    "DossierLink", "FiscalYear", "Firm", "Frequency", "Group", "LedgerLine", "Membership",
    "OpeningBalance", "Period", "PeriodBalance", "Role", "RunStatus", "Scenario", "SyncRun",
    "Trigger", "User", "dossier_groups", "dossier_users", "group_members",
]
