"""Xero (Accounting API 2.0): one dossier, one organisation, every journal line.

Docs: https://developer.xero.com/documentation/api/accounting/overview
Facts and quirks: docs/connectors-xero.md. The trial-balance-only variant
(:mod:`connectors.xero_tb`) reuses this module's pieces.
"""
from __future__ import annotations

import dataclasses
import re
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from functools import cached_property

from marshmallow import Schema, fields

from connectors.base import (
    ACCOUNTING, AUTH_OAUTH2, DOSSIER, AccountRecord, AuthError, CheckResult, CompanyRef, Connector, ConnectorSpec,
    DataError, FiscalYearRecord, LedgerLineRecord, NotFoundError, OAuthSpec, PermissionError, RateBudget,
    RateLimited,
    StreamDef,
)

API_URL = "https://api.xero.com/api.xro/2.0"
IDENTITY_URL = "https://api.xero.com"
#: Journals answers at most 100 per call (https://developer.xero.com/documentation/api/accounting/journals)
JOURNALS_PAGE = 100

# Apps created from 2 March 2026 must ask for granular scopes (accounting.reports.trialbalance.read...).
XERO_OAUTH = OAuthSpec(
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

_MS_DATE = re.compile(r"^/Date\((-?\d+)([+-]\d{4})?\)/$")

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
    """``/Date(1539993600000+0000)/`` (milliseconds since 1970, UTC) -> aware UTC datetime.

    Xero's offset suffix is informational: the milliseconds are already UTC. Raises
    :class:`DataError` naming ``field`` when the value is not such a date.
    """
    match = _MS_DATE.match(str(value or "").strip())
    if not match:
        raise DataError(f"Xero sent a {field} that is not a date ({str(value)[:40]!r}).")
    return datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(milliseconds=int(match.group(1)))


def parse_ms_date(value, field):
    """``/Date(1539993600000+0000)/`` -> :class:`date` (Xero sends dates as midnight UTC)."""
    return parse_ms_datetime(value, field).date()


def parse_amount(value, field):
    """A Xero amount (number, or string in reports; ``""`` means zero) -> :class:`Decimal`."""
    if value is None or value == "":
        return Decimal("0")
    if isinstance(value, bool):
        raise DataError(f"Xero sent a {field} that is not an amount ({value!r}).")
    try:
        amount = Decimal(str(value).replace(",", "").strip())
    except InvalidOperation:
        raise DataError(f"Xero sent a {field} that is not an amount ({str(value)[:40]!r}).") from None
    if not amount.is_finite():
        raise DataError(f"Xero sent a {field} that is not an amount ({str(value)[:40]!r}).")
    return amount


def account_number(row):
    """The account number a dossier uses: the account's Code, or its AccountID when it has none."""
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
    for line in journal.get("JournalLines") or []:
        yield LedgerLineRecord(
            source_id=f"{journal_id}:{line.get('JournalLineID')}",
            booking_date=booking_date,
            account=account_number(line),
            amount=parse_amount(line.get("NetAmount"), "NetAmount"),
            description=line.get("Description") or "",
            reference=journal.get("Reference") or "",
            journal=journal.get("SourceType") or "",
            dimensions={t["Name"]: t.get("Option") or "" for t in line.get("TrackingCategories") or [] if t.get("Name")},
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


def error_message(response):
    """Xero's error answers -> what Xero says, in words for an accountant (None when it says nothing).

    Xero answers ``{"Type", "Message"}`` for API errors, ``{"Title", "Detail"}`` for
    authorisation failures (a missing or disconnected ``xero-tenant-id``), and a 429 with
    ``X-Rate-Limit-Problem`` naming the limit.
    """
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


# --------------------------------------------------------------------------------------
# Connector
# --------------------------------------------------------------------------------------


class XeroApi(Connector):
    """What Xero and XeroTB share: the grant, the tenant header, listing, fiscal years, accounts."""

    @classmethod
    def oauth_for(cls, config):
        """The OAuth endpoints for ``config``: Xero's own, or the stand-in's at ``identity_url``.

        A connection whose ``identity_url`` is not Xero's (the sandbox) signs in at
        ``<identity_url>/identity/connect/authorize`` and ``<identity_url>/connect/token``.
        Pass the result to :func:`connectors.oauth.authorization_url` and ``exchange_code``.
        """
        identity = (config.get("identity_url") or IDENTITY_URL).rstrip("/")
        if identity == IDENTITY_URL:
            return cls.spec.oauth
        return dataclasses.replace(cls.spec.oauth, authorize_url=f"{identity}/identity/connect/authorize",
                                   token_url=f"{identity}/connect/token")

    def token_manager(self, client_id, client_secret):
        """The kit's token manager, on :meth:`oauth_for` endpoints."""
        manager = super().token_manager(client_id, client_secret)
        manager.oauth = self.oauth_for(self.config)
        return manager

    def _identity_url(self):
        return (self.config.get("identity_url") or IDENTITY_URL).rstrip("/")

    def _headers(self, tenant=True):
        headers = {"Authorization": f"Bearer {self._access_token()}", "Accept": "application/json"}
        if tenant:
            if not self.reference:
                raise NotFoundError("This dossier is not linked to a Xero organisation yet.")
            headers["xero-tenant-id"] = self.reference
        return headers

    def error_message(self, response):
        """The HTTP client's hook (see :func:`error_message`); remembers a spent daily limit."""
        self._daily_limit_hit = (response.status_code == 429
                                 and (response.headers.get("X-Rate-Limit-Problem") or "").lower() == "day")
        return error_message(response)

    @cached_property
    def tokens(self):
        """The :class:`connectors.oauth.TokenManager` of this dossier's grant."""
        return self.token_manager(self.config.get("client_id"), self.config.get("client_secret"))

    def _access_token(self, force_refresh=False):
        return self.tokens.access_token(force_refresh=force_refresh)

    def _call(self, url, params=None, headers=None, tenant=True):
        """GET ``url``; on a 401 renews the access token once (Xero may revoke it early) and retries."""
        try:
            return self.http.get(url, params=params, headers={**self._headers(tenant), **(headers or {})})
        except AuthError:
            self._access_token(force_refresh=True)
            return self.http.get(url, params=params, headers={**self._headers(tenant), **(headers or {})})

    def _get(self, path, params=None, headers=None):
        """GET ``path`` of the accounting API for the linked organisation."""
        try:
            response = self._call(f"{self.base_url}/{path}", params=params, headers=headers)
        except PermissionError:
            self._raise_if_disconnected()
            raise
        except RateLimited as exc:
            if getattr(self, "_daily_limit_hit", False) and not exc.daily:
                raise RateLimited(exc.message, retry_after=exc.retry_after, daily=True, detail=exc.detail) from None
            raise
        return self.http.json_of(response)

    def _raise_if_disconnected(self):
        """Xero answers 403 for an organisation that left the grant: say so plainly."""
        if self.reference not in {ref.reference for ref in self.list_references()}:
            raise NotFoundError(
                "The Xero organisation linked to this dossier is no longer connected to Firmsync. "
                "Reconnect the dossier to Xero and pick the organisation again.")

    # -- contract -------------------------------------------------------------------
    def list_references(self):
        response = self._call(f"{self._identity_url()}/connections", tenant=False)
        rows = self.http.json_of(response)
        if not isinstance(rows, list):
            raise DataError("Xero sent an unexpected list of organisations.")
        return [
            CompanyRef(reference=row["tenantId"], name=self._tenant_name(row), details={"tenant_type": row.get("tenantType")})
            for row in rows if row.get("tenantId") and row.get("tenantType", "ORGANISATION") == "ORGANISATION"
        ]

    def _tenant_name(self, row):
        """``tenantName``; some grants answer without it: then the organisation's own ``Name``, never the GUID.

        https://developer.xero.com/documentation/guides/oauth2/tenants
        """
        name = str(row.get("tenantName") or "").strip()
        if name:
            return name
        try:
            response = self._call(f"{self.base_url}/Organisation", headers={"xero-tenant-id": row["tenantId"]},
                                  tenant=False)
            organisation = (self.http.json_of(response).get("Organisations") or [{}])[0]
        except (PermissionError, NotFoundError, DataError):
            organisation = {}
        return str(organisation.get("Name") or organisation.get("LegalName") or "").strip() or UNNAMED_ORGANISATION

    def check(self):
        references = self.list_references()
        if not references:
            return CheckResult(ok=False, message="Xero accepted the sign-in, but no organisation was shared with Firmsync.",
                               references=0)
        if self.reference and self.reference in {r.reference for r in references}:
            name = self.organisation().get("Name") or self.reference
            return CheckResult(ok=True, message=f"Connected to Xero organisation {name}.", references=len(references))
        if self.reference:
            self._raise_if_disconnected()
        return CheckResult(ok=True, message=f"Connected to Xero: {len(references)} organisation(s) available.",
                           references=len(references))

    def organisation(self):
        """The linked organisation's record from ``GET Organisation``."""
        rows = self._get("Organisation").get("Organisations") or []
        if not rows:
            raise DataError("Xero sent no organisation details.")
        return rows[0]

    def read_fiscal_years(self, window):
        today = date.today()
        end = window.end or today
        start = window.start or end
        yield from fiscal_years(self.organisation(), start, end)

    def read_accounts(self):
        for row in self._get("Accounts").get("Accounts") or []:
            yield account_record(row)


class Xero(XeroApi):
    spec = ConnectorSpec(
        key="xero",
        display_name="Xero",
        kind=ACCOUNTING,
        level=DOSSIER,
        auth=AUTH_OAUTH2,
        config_schema=XeroConfig,
        api_version="2.0",
        docs_url=XERO_DOCS,
        rate_budgets=(XERO_BUDGET, XERO_APP_BUDGET),
        oauth=XERO_OAUTH,
        reference_label="organisation",
    )

    def streams(self):
        return [
            StreamDef("fiscal_years", FiscalYearRecord),
            StreamDef("accounts", AccountRecord, primary_key="number"),
            StreamDef("ledger_lines", LedgerLineRecord, incremental=True, primary_key="source_id"),
        ]

    def read(self, stream, state, window):
        if stream == "fiscal_years":
            return self.read_fiscal_years(window)
        if stream == "accounts":
            return self.read_accounts()
        if stream == "ledger_lines":
            return self.read_ledger_lines(state)
        raise KeyError(stream)

    def read_ledger_lines(self, state):
        """Journals after the bookmark, 100 per page by JournalNumber; advances after each page.

        Pages go by ``offset`` alone: ``CreatedDateUTC`` is not monotonic in ``JournalNumber``
        (backdated and converted journals), so an ``If-Modified-Since`` next to the offset
        would hide journals (https://developer.xero.com/documentation/api/accounting/journals).
        Xero journals are immutable, so the offset alone misses nothing. The bookmark is
        ``{"offset": <last JournalNumber>}``; a bookmark written by an earlier version (with
        ``since``) may have skipped journals and is read again from the start (idempotent).
        """
        bookmark = state.bookmark or {}
        offset = 0 if "since" in bookmark else journal_number(bookmark.get("offset") or 0)
        while True:
            page = self._get("Journals", params={"offset": offset}).get("Journals") or []
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
