"""Xero (Accounting API 2.0): one dossier, one organisation, every journal line.

Vendor docs: https://developer.xero.com/documentation/api/accounting/overview
Notes, quirks and the sandbox's modes: ``connectors/xero/README.md``. The trial-balance-only
variant (:mod:`connectors.xero_tb`) reuses this module's pieces.
"""
from __future__ import annotations

import dataclasses
from datetime import date, timedelta

from marshmallow import Schema, fields

from connectors import parsing
from connectors.auth import OAuth2Code
from connectors.base import (
    ACCOUNTING, DOSSIER, AccountRecord, CheckResult, CompanyRef, Connector, ConnectorSpec, DataError,
    FiscalYearRecord, LedgerLineRecord, NotFoundError, PermissionError, RateBudget, RateLimited, Stream,
)
from connectors.http import parse_retry_after, vendor_error

PACKAGE = "Xero"
API_URL = "https://api.xero.com/api.xro/2.0"
IDENTITY_URL = "https://api.xero.com"
#: Journals answers at most 100 per call (https://developer.xero.com/documentation/api/accounting/journals)
JOURNALS_PAGE = 100

# Apps created from 2 March 2026 must ask for granular scopes (accounting.reports.trialbalance.read...).
XERO_AUTH = OAuth2Code(
    authorize_url="https://login.xero.com/identity/connect/authorize",
    token_url="https://identity.xero.com/connect/token",
    scopes=("offline_access", "accounting.settings.read", "accounting.reports.read", "accounting.journals.read"),
    pkce=True,
    rotating_refresh_token=True,
    access_token_seconds=30 * 60,
)
#: per organisation (https://developer.xero.com/documentation/guides/oauth2/limits/)
XERO_BUDGET = RateBudget(per_minute=60, per_day=5000, concurrency=5, per="tenant")
#: per app across all its organisations, "App Minute Limit: 10,000 calls per minute"
#: (https://developer.xero.com/faq/limits); counted per connection (one grant of the firm's app)
XERO_APP_BUDGET = RateBudget(per_minute=10_000, per="connection")
XERO_DOCS = "https://developer.xero.com/documentation/api/accounting/overview"
#: the sandbox's Xero (app/oauth_flow.py uses it outside production when no Xero app is configured)
XERO_SANDBOX = {"client_id": "xero-sandbox-client", "client_secret": "xero-sandbox-secret",
                "base_url": "{sandbox}/xero/api.xro/2.0", "identity_url": "{sandbox}/xero"}
#: shown for an organisation whose name Xero gives neither in /connections nor in /Organisation
UNNAMED_ORGANISATION = "Xero organisation (name not shared by Xero)"


class XeroConfig(Schema):
    """The Xero app a firm registers at developer.xero.com (one app serves all dossiers)."""

    client_id = fields.String(required=True, metadata={"label": "Client id"})
    client_secret = fields.String(required=True, metadata={"secret": True, "label": "Client secret"})
    base_url = fields.Url(load_default=API_URL, require_tld=False, metadata={"label": "Accounting API URL"})
    identity_url = fields.Url(load_default=IDENTITY_URL, require_tld=False, metadata={"label": "Identity API URL"})


# --------------------------------------------------------------------------------------
# Parsing: Xero's payloads to plain values
# --------------------------------------------------------------------------------------

#: Xero account types (Accounts.Type) to the canonical kinds
ACCOUNT_KINDS = {
    **dict.fromkeys(("BANK", "CURRENT", "FIXED", "INVENTORY", "NONCURRENT", "PREPAYMENT"), "asset"),
    **dict.fromkeys(("CURRLIAB", "LIABILITY", "TERMLIAB", "PAYGLIABILITY", "SUPERANNUATIONLIABILITY",
                     "WAGESPAYABLELIABILITY", "PAYG"), "liability"),
    "EQUITY": "equity",
    **dict.fromkeys(("REVENUE", "SALES", "OTHERINCOME"), "income"),
    **dict.fromkeys(("EXPENSE", "DIRECTCOSTS", "OVERHEADS", "DEPRECIATN", "SUPERANNUATIONEXPENSE",
                     "WAGESEXPENSE"), "expense"),
}
#: Accounts.Class, used for types this table does not know
CLASS_KINDS = {"ASSET": "asset", "LIABILITY": "liability", "EQUITY": "equity", "REVENUE": "income",
               "EXPENSE": "expense"}


def parse_ms_datetime(value, field):
    # the offset suffix of /Date(ms+0000)/ is informational: ms are UTC
    # (https://developer.xero.com/documentation/api/accounting/requests-and-responses#json-responses-and-date-formats)
    return parsing.ms_json_datetime(value, field, PACKAGE)


def parse_ms_date(value, field):
    return parsing.ms_json_date(value, field, PACKAGE)


def parse_amount(value, field):
    # reports send amounts as strings, "" for zero (https://developer.xero.com/documentation/api/accounting/reports)
    return parsing.amount(value, field, PACKAGE)


def account_number(row):
    """The account number a dossier uses: the account's Code, or its AccountID when it has none."""
    # bank accounts often have no Code (https://developer.xero.com/documentation/api/accounting/accounts)
    return (row.get("Code") or row.get("AccountCode") or "").strip() or row.get("AccountID") or ""


def account_record(row):
    """One entry of ``GET Accounts`` -> :class:`AccountRecord`."""
    kind = ACCOUNT_KINDS.get(row.get("Type")) or CLASS_KINDS.get(row.get("Class"), "other")
    number = account_number(row)
    if not number:
        raise DataError("Xero sent an account without a code or an id.")
    return AccountRecord(number=number, name=row.get("Name") or number, kind=kind, source_id=row.get("AccountID"))


def fiscal_year_end(organisation, year):
    """The day Xero's fiscal year ends in calendar ``year`` (FinancialYearEndDay/Month)."""
    try:
        month = int(organisation["FinancialYearEndMonth"])
        day = int(organisation["FinancialYearEndDay"])
    except (KeyError, TypeError, ValueError):
        raise DataError("Xero did not send the organisation's financial year end.") from None
    if not 1 <= month <= 12 or not 1 <= day <= 31:
        raise DataError(f"Xero sent an impossible financial year end (day {day}, month {month}).")
    last = (date(year + (month == 12), month % 12 + 1, 1) - timedelta(days=1)).day
    return date(year, month, min(day, last))


def fiscal_years(organisation, start, end):
    """The fiscal years (as :class:`FiscalYearRecord`) overlapping ``start``..``end``."""
    years = []
    year = start.year - 1
    while True:
        previous_end, this_end = fiscal_year_end(organisation, year - 1), fiscal_year_end(organisation, year)
        first = previous_end + timedelta(days=1)
        if first > end:
            break
        if this_end >= start:
            years.append(FiscalYearRecord(start=first, end=this_end))
        year += 1
    return years


def journal_number(value):
    """A ``JournalNumber`` (a JSON number, or a string of digits in some answers) -> int."""
    if isinstance(value, bool):
        value = None
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        raise DataError(f"Xero sent a journal without a usable JournalNumber ({str(value)[:40]!r}).") from None


def ledger_lines(journal):
    """One Xero journal -> its :class:`LedgerLineRecord` (one per JournalLine; NetAmount is debit positive)."""
    journal_id = journal.get("JournalID")
    if not journal_id:
        raise DataError("Xero sent a journal without a JournalID.")
    booking_date = parse_ms_date(journal.get("JournalDate"), "JournalDate")
    created = parse_ms_datetime(journal["CreatedDateUTC"], "CreatedDateUTC") if journal.get("CreatedDateUTC") else None
    reference, source_type = journal.get("Reference") or "", journal.get("SourceType") or ""
    for line in journal.get("JournalLines") or []:
        tracking = line.get("TrackingCategories")
        yield LedgerLineRecord(
            source_id=f"{journal_id}:{line.get('JournalLineID')}",
            booking_date=booking_date,
            account=account_number(line),
            amount=parse_amount(line.get("NetAmount"), "NetAmount"),
            description=line.get("Description") or "",
            reference=reference,
            journal=source_type,
            dimensions={t["Name"]: t.get("Option") or "" for t in tracking if t.get("Name")} if tracking else {},
            modified_at=created,
        )


#: X-Rate-Limit-Problem values (https://developer.xero.com/documentation/guides/oauth2/limits/)
RATE_PROBLEMS = {
    "day": "the daily limit of 5,000 calls for this organisation is used up",
    "minute": "the limit of 60 calls a minute for this organisation was reached",
    "concurrent": "too many calls for this organisation were running at once",
    "appminute": "the limit of calls a minute for Firmsync's Xero app was reached",
}
#: authorisation failures Xero names in its problem ``Detail``
AUTH_PROBLEMS = {
    "AuthenticationUnsuccessful": "this organisation is not connected to the sign-in Firmsync uses",
    "AuthorizationUnsuccessful": "the Xero user who connected the dossier may not read this data",
}


# --------------------------------------------------------------------------------------
# Streams
# --------------------------------------------------------------------------------------


class FiscalYears(Stream):
    name, record_type, primary_key = "fiscal_years", FiscalYearRecord, "start"

    def records(self, state, window):
        end = window.end or date.today()
        yield from fiscal_years(self.connector.organisation(), window.start or end, end)


class Accounts(Stream):
    # one call answers the whole chart (https://developer.xero.com/documentation/api/accounting/accounts)
    name, record_type, primary_key = "accounts", AccountRecord, "number"

    def records(self, state, window):
        for row in self.connector.get("Accounts").get("Accounts") or []:
            yield account_record(row)


class LedgerLines(Stream):
    """Journals after the bookmark ``{"offset": <last JournalNumber>}``, 100 a page; advances after each page."""

    # Xero's own keyset paging (offset = the last JournalNumber read): no pagination helper fits
    name, record_type, primary_key, replication_key = "ledger_lines", LedgerLineRecord, "source_id", "JournalNumber"

    def records(self, state, window):
        xero = self.connector
        bookmark = state.bookmark or {}
        # offset alone, no If-Modified-Since: CreatedDateUTC is not monotonic in JournalNumber (backdated and converted
        # journals), and journals are immutable (https://developer.xero.com/documentation/api/accounting/journals);
        # a bookmark of an earlier version (with "since") may have skipped journals: read again from 0
        offset = 0 if "since" in bookmark else journal_number(bookmark.get("offset") or 0)
        while True:
            page = xero.get("Journals", params={"offset": offset}).get("Journals") or []
            # Xero promises journals "with a JournalNumber greater than the offset", not their order in a page
            journals = sorted(((journal_number(j.get("JournalNumber")), j) for j in page), key=lambda n_j: n_j[0])
            fresh = [(number, journal) for number, journal in journals if number > offset]
            if page and not fresh:
                raise DataError("Xero sent journals out of order; the sync stopped to avoid missing any.")
            for number, journal in fresh:
                yield from ledger_lines(journal)
            if fresh:
                offset = fresh[-1][0]
                state.advance({"offset": offset})
            if len(page) < JOURNALS_PAGE:
                return


# --------------------------------------------------------------------------------------
# Connector
# --------------------------------------------------------------------------------------


class XeroApi(Connector):
    """What Xero and XeroTB share: the endpoints, the tenant header, listing, fiscal years, accounts."""

    @classmethod
    def oauth_endpoints(cls, config):
        # Xero's endpoints are absolute; a stand-in identity service (the sandbox) serves both under its identity_url
        identity = (config.get("identity_url") or IDENTITY_URL).rstrip("/")
        if identity == IDENTITY_URL:
            return cls.spec.auth
        return dataclasses.replace(cls.spec.auth, authorize_url=f"{identity}/identity/connect/authorize",
                                   token_url=f"{identity}/connect/token")

    @staticmethod
    def error_message(response):
        # {"Type", "Message"} for API errors, {"Title", "Detail"} for authorisation failures, 429 with
        # X-Rate-Limit-Problem (https://developer.xero.com/documentation/api/accounting/responsecodes)
        if response.status_code == 429:
            return RATE_PROBLEMS.get((response.headers.get("X-Rate-Limit-Problem") or "").lower())
        try:
            body = response.json()
        except ValueError:
            return None
        if not isinstance(body, dict):
            return None
        detail = str(body.get("Message") or body.get("Detail") or "").strip()
        return AUTH_PROBLEMS.get(detail, detail[:200] or None)

    def interpret_response(self, response):
        # a 429 naming the "day" problem: the organisation's daily limit is spent, defer until it resets
        # (https://developer.xero.com/documentation/guides/oauth2/limits/)
        if response.status_code == 429 and (response.headers.get("X-Rate-Limit-Problem") or "").lower() == "day":
            error = vendor_error(PACKAGE, RateLimited, RATE_PROBLEMS["day"],
                                 retry_after=parse_retry_after(response.headers.get("Retry-After")))
            error.daily = True
            return error
        return None

    def _identity_url(self):
        return (self.config.get("identity_url") or IDENTITY_URL).rstrip("/")

    def get(self, path, params=None, tenant=None):
        """GET ``path`` of the accounting API for the linked organisation (or another ``tenant``, as is)."""
        # every data call names its organisation in xero-tenant-id
        # (https://developer.xero.com/documentation/guides/oauth2/tenants); JSON only when asked for
        if not (tenant or self.reference):
            raise NotFoundError("This dossier is not linked to a Xero organisation yet.")
        headers = {"Accept": "application/json", "xero-tenant-id": tenant or self.reference}
        try:
            return self.get_json(f"{self.base_url}/{path}", params=params, headers=headers)
        except PermissionError:
            if tenant is None:
                self._raise_if_disconnected()
            raise

    def _raise_if_disconnected(self, references=None):
        # 403 AuthenticationUnsuccessful also means "the organisation left the grant": /connections tells which
        # (https://developer.xero.com/documentation/guides/oauth2/tenants)
        if references is None:
            references = self.list_references()
        if self.reference not in {ref.reference for ref in references}:
            raise NotFoundError(
                "The Xero organisation linked to this dossier is no longer connected to Firmsync. "
                "Reconnect the dossier to Xero and pick the organisation again.")

    # -- contract -------------------------------------------------------------------
    def list_references(self):
        # /connections is the identity API: no tenant header
        rows = self.get_json(f"{self._identity_url()}/connections", headers={"Accept": "application/json"})
        if not isinstance(rows, list):
            raise DataError("Xero sent an unexpected list of organisations.")
        return [
            CompanyRef(reference=row["tenantId"], name=self._tenant_name(row), details={"tenant_type": row.get("tenantType")})
            for row in rows if row.get("tenantId") and row.get("tenantType", "ORGANISATION") == "ORGANISATION"
        ]

    def _tenant_name(self, row):
        # some grants answer without tenantName: the organisation's own Name, never the GUID
        # (https://developer.xero.com/documentation/guides/oauth2/tenants)
        name = str(row.get("tenantName") or "").strip()
        if name:
            return name
        try:
            organisation = (self.get("Organisation", tenant=row["tenantId"]).get("Organisations") or [{}])[0]
        except (PermissionError, NotFoundError, DataError):
            organisation = {}
        return str(organisation.get("Name") or organisation.get("LegalName") or "").strip() or UNNAMED_ORGANISATION

    def check(self):
        references = self.list_references()
        if not references:
            return CheckResult(ok=False, message="Xero accepted the sign-in, but no organisation was shared with Firmsync.",
                               references=0)
        if self.reference:
            self._raise_if_disconnected(references)
            name = self.organisation().get("Name") or self.reference
            return CheckResult(ok=True, message=f"Connected to Xero organisation {name}.", references=len(references))
        return CheckResult(ok=True, message=f"Connected to Xero: {len(references)} organisation(s) available.",
                           references=len(references))

    def organisation(self):
        """The linked organisation's record from ``GET Organisation``."""
        rows = self.get("Organisation").get("Organisations") or []
        if not rows:
            raise DataError("Xero sent no organisation details.")
        return rows[0]


class Xero(XeroApi):
    spec = ConnectorSpec(
        key="xero",
        display_name=PACKAGE,
        kind=ACCOUNTING,
        level=DOSSIER,
        auth=XERO_AUTH,
        config_schema=XeroConfig,
        api_version="2.0",
        docs_url=XERO_DOCS,
        rate_budgets=(XERO_BUDGET, XERO_APP_BUDGET),
        reference_label="organisation",
        sandbox_config=XERO_SANDBOX,
        vendor_hosts=("api.xero.com", "identity.xero.com", "login.xero.com"),
    )
    streams = (FiscalYears, Accounts, LedgerLines)
