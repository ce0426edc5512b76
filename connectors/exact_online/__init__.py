"""Exact Online: the shared connector behind ``exact_online_be``, ``exact_online_fr`` and ``exact_online_nl``.

The three countries run the same REST API (OData-v2 style JSON) on different hosts, and a
token issued on one host is not valid on another, so each country is its own package
(``connectors/exact_online_<cc>.py``: key, display name and host only). The sync reference is
the division ``Code``. Docs: https://start.exactonline.nl/docs/HlpRestAPIResources.aspx
"""
from __future__ import annotations

import re
import time
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from marshmallow import Schema, fields

from connectors.base import (
    ACCOUNTING, AUTH_OAUTH2, FIRM, AccountRecord, AuthError, BalanceRecord, CheckResult, CompanyRef, ConfigError,
    Connector, ConnectorError, ConnectorSpec, DataError, DeletedRecord, FiscalYearRecord, LedgerLineRecord,
    NotFoundError, OAuthSpec, PermissionError, RateBudget, RateLimited, StreamDef, SyncWindow,
)
from connectors.oauth import BearerAuth
from connectors.pagination import next_link

DOCS_URL = "https://start.exactonline.nl/docs/HlpRestAPIResources.aspx"
#: sync/ and bulk/ endpoints answer 1,000 rows per page; the others 60
SYNC_PAGE_SIZE = 1000
#: sync/Deleted EntityType of transaction lines
DELETED_TRANSACTION_LINES = 1
#: ``$select`` is mandatory on sync endpoints
TRANSACTION_LINE_FIELDS = (
    "Timestamp,ID,Date,FinancialYear,FinancialPeriod,GLAccountCode,AmountDC,Description,EntryNumber,"
    "YourRef,InvoiceNumber,JournalCode,CostCenter,CostUnit,Modified"
)
#: only documented names: https://start.exactonline.nl/docs/HlpRestAPIResourcesDetails.aspx?name=SystemSystemAllDivisions
DIVISION_FIELDS = "Code,Description,Country,Currency,VATNumber,ChamberOfCommerceNumber"
_MS_DATE = re.compile(r"^/Date\((-?\d+)([+-]\d{4})?\)/$")


class ExactOnlineConfig(Schema):
    """The connection form: the app registered at apps.exactonline.com and the country host."""

    base_url = fields.Url(required=True, require_tld=False, metadata={"label": "Exact Online address"})
    client_id = fields.String(required=True, metadata={"label": "Client ID (apps.exactonline.com)"})
    client_secret = fields.String(required=True, metadata={"secret": True, "label": "Client secret"})
    accountant_divisions = fields.Boolean(
        load_default=True,
        metadata={"label": "List the divisions of all client licences (accountant licence)"},
    )


def exact_spec(key, country, host):
    """The :class:`ConnectorSpec` of Exact Online in ``country`` served from ``host``."""
    config_schema = type(f"ExactOnline{country}Config", (ExactOnlineConfig,), {
        "base_url": fields.Url(load_default=host, require_tld=False, metadata={"label": "Exact Online address"}),
    })
    return ConnectorSpec(
        key=key,
        display_name=f"Exact Online ({country})",
        kind=ACCOUNTING,
        level=FIRM,
        auth=AUTH_OAUTH2,
        config_schema=config_schema,
        api_version="v1",
        docs_url=DOCS_URL,
        # 60 calls a minute and 5,000 a day per division; 10 errors per endpoint per hour block the key
        rate_budget=RateBudget(per_minute=60, per_day=5000, per="tenant"),
        # endpoint paths are joined to the connection's base URL: a token is only valid on its own host
        oauth=OAuthSpec(
            authorize_url="/api/oauth2/auth",
            token_url="/api/oauth2/token",
            scopes=(),
            pkce=False,
            rotating_refresh_token=True,
            access_token_seconds=600,
            # Exact refuses a refresh while the access token is younger than ~9.5 minutes
            refresh_margin_seconds=30,
            token_auth_method="client_secret_post",
        ),
        reference_label="division",
    )


# --------------------------------------------------------------------------------------
# Parsing (pure functions over Exact's payloads)
# --------------------------------------------------------------------------------------


def parse_ms_datetime(value):
    """``/Date(1704067200000)/`` (MS-JSON, milliseconds since 1970 UTC) -> aware ``datetime``.

    ``None`` stays ``None``. The optional ``+0100`` suffix only says which offset the
    server was in; the milliseconds are UTC either way.
    """
    if value in (None, ""):
        return None
    match = _MS_DATE.match(str(value))
    if not match:
        raise DataError(f"Exact Online sent a date Firmsync cannot read ({value!r}).")
    return datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(milliseconds=int(match.group(1)))


def parse_ms_date(value):
    """``/Date(ms)/`` -> ``date`` (Exact stores dates as midnight, so the UTC day is the date)."""
    moment = parse_ms_datetime(value)
    return moment.date() if moment else None


def odata_page(payload):
    """``(rows, next_url)`` of an OData-v2 envelope ``{"d": {"results": [...], "__next": url}}``.

    Single-entity answers (``{"d": {...}}``) come back as one row. Anything else is a
    :class:`DataError`.
    """
    body = payload.get("d") if isinstance(payload, dict) else None
    if isinstance(body, list):
        return body, None
    if not isinstance(body, dict):
        raise DataError("Exact Online sent an answer without the usual data envelope.")
    if "results" not in body:
        return [body], None
    rows = body["results"]
    if not isinstance(rows, list):
        raise DataError("Exact Online sent a list that is not a list.")
    return rows, body.get("__next") or None


def amount(value):
    """A JSON number as an exact :class:`Decimal` (via its text, never through binary float maths)."""
    if value is None:
        return Decimal("0")
    return Decimal(str(value))


def code(value):
    """A string code without Exact's space padding (``"   400000"``, ``"FR "``, ``"EUR "``); ``None`` -> ``""``."""
    # padded in recorded answers, not in the reference: https://start.exactonline.nl/docs/HlpRestAPIResources.aspx
    return str(value if value is not None else "").strip()


#: GL account codes are right-aligned with spaces in many divisions
account_code = code


def account_kind(balance_type, balance_side):
    """Canonical account kind from ``BalanceType`` (B balance sheet, W profit and loss) and ``BalanceSide``."""
    balance_type, balance_side = code(balance_type), code(balance_side)
    if balance_type == "W":
        return "income" if balance_side == "C" else "expense"
    if balance_type == "B":
        return "liability" if balance_side == "C" else "asset"
    return "other"


def period_calendar(rows):
    """``{(year, period): (start, end)}`` from ``financial/FinancialPeriods`` rows.

    Exact documents ``EndDate`` as the period's end; when a division answers with the next
    period's first day instead (exclusive end), it is moved back one day so periods never overlap.
    """
    calendar = {}
    for row in rows:
        start, end = parse_ms_date(row.get("StartDate")), parse_ms_date(row.get("EndDate"))
        if start is None or end is None or row.get("FinYear") is None or row.get("FinPeriod") is None:
            raise DataError("Exact Online sent a financial period without its year, number or dates.")
        calendar[(int(row["FinYear"]), int(row["FinPeriod"]))] = (start, end)
    starts = {start for start, _ in calendar.values()}
    for key, (start, end) in calendar.items():
        if end in starts and end > start:
            calendar[key] = (start, end - timedelta(days=1))
    return calendar


def fiscal_years(calendar):
    """One :class:`FiscalYearRecord` per financial year: first period's start to last period's end."""
    years = defaultdict(list)
    for (year, _), (start, end) in calendar.items():
        years[year].append((start, end))
    return [
        FiscalYearRecord(start=min(s for s, _ in spans), end=max(e for _, e in spans))
        for year, spans in sorted(years.items())
    ]


def account_record(row):
    return AccountRecord(
        number=account_code(row.get("Code")),
        name=(row.get("Description") or "").strip(),
        kind=account_kind(row.get("BalanceType"), row.get("BalanceSide")),
        source_id=row.get("ID"),
    )


def balance_records(rows, calendar):
    """Movements per (account, period) from ``financial/ReportingBalance`` rows.

    Exact groups by status, cost centre and cost unit, so one account and period can come in
    several rows: they are summed. Period 0 (Exact's opening-balance bucket) is folded into the
    year's first period.
    """
    totals = defaultdict(Decimal)
    for row in rows:
        year, period = row.get("ReportingYear"), row.get("ReportingPeriod")
        if year is None or period is None:
            raise DataError("Exact Online sent a balance without its reporting year or period.")
        key = (int(year), int(period))
        if key not in calendar and key[1] == 0:
            key = min((k for k in calendar if k[0] == key[0]), default=key)
        if key not in calendar:
            raise DataError(f"Exact Online sent a balance for period {period} of {year}, which is not one of its financial periods.")
        value = row.get("Amount")
        if value is None:
            value = amount(row.get("AmountDebit")) - amount(row.get("AmountCredit"))
        totals[(account_code(row.get("GLAccountCode")), key)] += amount(value)
    return [
        BalanceRecord(account=code, period_end=calendar[key][1], period_start=calendar[key][0],
                      amount=total, basis="movement")
        for (code, key), total in sorted(totals.items(), key=lambda item: (item[0][1], item[0][0]))
    ]


def ledger_line_record(row, calendar):
    """A :class:`LedgerLineRecord` from a ``sync/Financial/TransactionLines`` row.

    ``FinancialYear`` + ``FinancialPeriod`` decide the booking period (not ``Date``).
    """
    booking_date = parse_ms_date(row.get("Date"))
    if not row.get("ID") or booking_date is None:
        raise DataError("Exact Online sent a transaction line without its ID or date.")
    year, period = row.get("FinancialYear"), row.get("FinancialPeriod")
    span = calendar.get((int(year), int(period))) if year is not None and period is not None else None
    reference = row.get("YourRef") or row.get("InvoiceNumber") or row.get("EntryNumber") or ""
    codes = {name: code(row.get(field)) for name, field in (("cost_center", "CostCenter"), ("cost_unit", "CostUnit"))}
    dimensions = {name: value for name, value in codes.items() if value}
    return LedgerLineRecord(
        source_id=row["ID"],
        booking_date=booking_date,
        booking_period_end=span[1] if span else None,
        account=account_code(row.get("GLAccountCode")),
        amount=amount(row.get("AmountDC")),
        description=row.get("Description") or "",
        reference=str(reference),
        journal=code(row.get("JournalCode")),
        dimensions=dimensions,
        modified_at=parse_ms_datetime(row.get("Modified")),
    )


def company_ref(row):
    """A division as a :class:`CompanyRef`; its codes come space-padded (``"FR "``, ``"EUR "``)."""
    # ChamberOfCommerceNumber now, ChamberOfCommerce in older answers: https://start.exactonline.nl/docs/HlpRestAPIResourcesDetails.aspx?name=SystemSystemDivisions
    number = code(row.get("ChamberOfCommerceNumber")) or code(row.get("ChamberOfCommerce"))
    details = {key: code(row.get(field)) for key, field in (
        ("country", "Country"), ("currency", "Currency"), ("vat_number", "VATNumber"),
    ) if code(row.get(field))}
    if number:
        details["company_number"] = number
    return CompanyRef(reference=code(row["Code"]), name=(row.get("Description") or "").strip(), details=details)


# --------------------------------------------------------------------------------------
# Error catalogue (PRODUCT-RESEARCH section 5)
# --------------------------------------------------------------------------------------

_RECONNECT = "then an administrator reconnects the Exact Online connection in Firmsync."
#: (Exact's ``Reason`` header values, words in the error text, typed error, message for the administrator)
ERROR_CATALOGUE = (
    (("BlockedUser", "InactiveUser"), (r"user\b.*\b(blocked|inactive)", r"blocked user"), AuthError,
     "Exact Online says the user who connected Firmsync is blocked or no longer active. "
     "An administrator in Exact Online must unblock that user (or you connect with another user); " + _RECONNECT),
    (("NoDivisionAccess",), (r"(no|not have) access to (the )?(requested )?division", r"division.*not (allowed|accessible)"),
     NotFoundError,
     "Exact Online no longer lets Firmsync read division {division}. An administrator must add this division "
     "to the Firmsync app's access list in Exact Online (or reconnect and select it), then refresh the division list."),
    (("DivisionBlocked",), (r"division.*blocked",), PermissionError,
     "Exact Online says division {division} is blocked. The licence holder must unblock it in Exact Online; "
     "the next sync will then work again."),
    (("BlockedCustomer", "LicenseExpired"), (r"licen[cs]e.*expired", r"customer.*blocked"), PermissionError,
     "Exact Online says the licence behind this connection is blocked or has expired. "
     "The licence holder must renew or unblock it in Exact Online; the next sync will then work again."),
    ((), (r"password.*expired",), AuthError,
     "The password of the Exact Online user who connected Firmsync has expired. That user must log in to "
     "Exact Online and choose a new password; " + _RECONNECT),
    ((), (r"e-?mail.*(not|yet).*(validated|verified|confirmed)", r"(validate|verify|confirm) (your|the) e-?mail"), AuthError,
     "Exact Online has not yet validated the e-mail address of the user who connected Firmsync. That user must "
     "confirm it from the e-mail Exact Online sent; " + _RECONNECT),
)


def error_text(response):
    """The human text of an Exact error body (OData ``error.message.value``), or ``""``."""
    try:
        body = response.json()
    except ValueError:
        return (response.text or "")[:500]
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        message = error.get("message")
        if isinstance(message, dict):
            return str(message.get("value") or "")
        return str(message or error.get("code") or "")
    if isinstance(body, dict):
        return str(body.get("error_description") or body.get("error") or "")
    return ""


def classify_error(response, division=None):
    """The typed error for an Exact error response, from the catalogue, or ``None`` if it is not one of them."""
    reason = response.headers.get("Reason") or response.headers.get("reason") or ""
    text = error_text(response)
    for reasons, patterns, error_class, message in ERROR_CATALOGUE:
        if reason in reasons or any(re.search(p, text, re.IGNORECASE) for p in patterns):
            return error_class(message.format(division=division or "?"), detail=f"{response.status_code} {reason} {text}".strip())
    return None


def error_message(response):
    """Hook for the HTTP client: Exact's catalogue message for this response, or ``None``."""
    error = classify_error(response)
    return error.message if error else None


def rate_limit_wait(headers, now_ms):
    """Seconds to wait from Exact's ``X-RateLimit-*`` headers, and whether the day's budget is spent.

    ``(0, False)`` while calls remain. ``X-RateLimit-*-Reset`` are Unix times in milliseconds.
    """
    def number(name):
        try:
            return int(headers.get(name)) if headers.get(name) not in (None, "") else None
        except (TypeError, ValueError):
            return None

    if number("X-RateLimit-Remaining") == 0:
        reset = number("X-RateLimit-Reset")
        return (max(1.0, (reset - now_ms) / 1000) if reset else 3600.0), True
    if number("X-RateLimit-Minutely-Remaining") == 0:
        reset = number("X-RateLimit-Minutely-Reset")
        return (max(1.0, (reset - now_ms) / 1000) if reset else 60.0), False
    return 0.0, False


# --------------------------------------------------------------------------------------
# Connector
# --------------------------------------------------------------------------------------


class ExactOnline(Connector):
    """Exact Online for one country host; subclasses set :attr:`host` and :attr:`spec` only."""

    #: the country's Exact Online address (a connection's ``base_url`` overrides it: the sandbox)
    host = "https://start.exactonline.nl"

    @property
    def base_url(self):
        return (self.config.get("base_url") or self.host).rstrip("/")

    def streams(self):
        return [
            StreamDef("fiscal_years", FiscalYearRecord),
            StreamDef("accounts", AccountRecord, primary_key="number"),
            StreamDef("balances", BalanceRecord),
            StreamDef("ledger_lines", LedgerLineRecord, incremental=True, primary_key="source_id"),
            StreamDef("deleted", DeletedRecord, incremental=True, primary_key="source_id"),
        ]

    def __init__(self, context):
        super().__init__(context)
        self._calendar = None
        self._bearer = None
        self._error_response = None
        self._daily_reset = None
        if self.http is not None:
            # always this instance's hook: get() needs the failed response to apply Exact's catalogue
            self.http.error_message = self.error_message

    # -- OAuth -------------------------------------------------------------------------
    def auth(self):
        """Bearer auth from the connection's :class:`connectors.oauth.TokenManager` (one per instance)."""
        if self._bearer is None:
            self._bearer = BearerAuth(self.token_manager(self.config.get("client_id"), self.config.get("client_secret")))
        return self._bearer

    # -- HTTP ----------------------------------------------------------------------------
    def error_message(self, response):
        """The HTTP client's hook: remember the failed response so :meth:`get` can apply Exact's catalogue."""
        self._error_response = response
        error = classify_error(response, self.reference)
        return error.message if error else None

    def url(self, resource, division=None):
        return f"{self.base_url}/api/v1/{division if division is not None else self.division()}/{resource}"

    def get(self, url, params=None):
        """GET one Exact URL as JSON; Exact's error catalogue and ``X-RateLimit-*`` headers applied."""
        if self._daily_reset is not None:
            raise RateLimited(f"The daily {self.spec.display_name} API budget of this division is used up. "
                              "The sync will continue tomorrow.", retry_after=self._daily_reset, daily=True)
        self._error_response = None
        try:
            response = self.http.get(url, params=params, headers={"Accept": "application/json"},
                                     auth=self.auth())
        except ConnectorError as error:
            failed, self._error_response = self._error_response, None
            catalogued = classify_error(failed, self.reference) if failed is not None else None
            if catalogued is not None:
                raise catalogued from None
            if isinstance(error, RateLimited) and failed is not None:
                wait, daily = rate_limit_wait(failed.headers, time.time() * 1000)
                if wait:
                    raise RateLimited(error.message, retry_after=wait, daily=daily, detail=error.detail) from None
            raise
        wait, daily = rate_limit_wait(response.headers, time.time() * 1000)
        if daily:
            self._daily_reset = wait
        elif wait and getattr(self.http, "limiter", None) is not None:
            # the next call waits (or defers the run) instead of earning a 429, which counts as an error at Exact
            self.http.limiter.block(*self.http.budget_key, wait)
        return self.http.json_of(response)

    def pages(self, url, params=None):
        """The rows of each page of an OData list, following ``__next`` (on this host only) until the last page."""
        def fetch(page_url):
            payload = self.get(page_url, params if page_url == url else None)
            rows, following = odata_page(payload)
            if following and not following.startswith(self.base_url + "/"):
                raise DataError(f"{self.spec.display_name} sent a next-page link to another address.",
                                detail=following.split("?")[0])
            return [rows], following
        return next_link(fetch, url, package=self.spec.display_name)

    def rows(self, url, params=None):
        for page in self.pages(url, params):
            yield from page

    # -- contract ------------------------------------------------------------------------
    def division(self):
        """The linked division code (the sync reference)."""
        if not str(self.reference or "").strip().isdigit():
            raise ConfigError(f"\u201c{self.reference}\u201d is not an Exact Online division code (a number).")
        return int(self.reference)

    def me(self):
        rows, _ = odata_page(self.get(f"{self.base_url}/api/v1/current/Me"))
        if not rows or rows[0].get("CurrentDivision") is None:
            raise DataError(f"{self.spec.display_name} did not say which division the user works in.")
        return rows[0]

    def check(self):
        me = self.me()
        references = self.list_references(me)
        return CheckResult(
            ok=True,
            message=f"Connected to {self.spec.display_name} as {me.get('FullName') or me.get('UserName') or 'the user'}; "
                    f"{len(references)} division(s) can be linked.",
            references=len(references),
        )

    def list_references(self, me=None):
        me = me or self.me()
        # AllDivisions spans the client licences of an accountant; Divisions only the user's own licence
        resource = "system/AllDivisions" if self.config.get("accountant_divisions", True) else "system/Divisions"
        params = {"$select": DIVISION_FIELDS}
        refs = [company_ref(row) for row in self.rows(self.url(resource, me["CurrentDivision"]), params)]
        return sorted(refs, key=lambda ref: ref.name.lower())

    def calendar(self):
        if self._calendar is None:
            params = {"$select": "FinYear,FinPeriod,StartDate,EndDate"}
            self._calendar = period_calendar(self.rows(self.url("financial/FinancialPeriods"), params))
        return self._calendar

    def read(self, stream, state, window):
        readers = {
            "fiscal_years": self._fiscal_years,
            "accounts": self._accounts,
            "balances": self._balances,
            "ledger_lines": self._ledger_lines,
            "deleted": self._deleted,
        }
        if stream not in readers:
            raise ConfigError(f"{self.spec.display_name} has no stream called {stream!r}.")
        return readers[stream](state, window or SyncWindow())

    def _years_in(self, window):
        """``{financial year number: FiscalYearRecord}`` of the years overlapping ``window``."""
        numbers = sorted({year for year, _ in self.calendar()})
        return {
            number: record for number, record in zip(numbers, fiscal_years(self.calendar()))
            if (window.end is None or record.start <= window.end) and (window.start is None or record.end >= window.start)
        }

    def _fiscal_years(self, state, window):
        yield from self._years_in(window).values()

    def _accounts(self, state, window):
        params = {"$select": "ID,Code,Description,BalanceType,BalanceSide"}
        for row in self.rows(self.url("financial/GLAccounts"), params):
            yield account_record(row)

    def _balances(self, state, window):
        for year in self._years_in(window):
            params = {"$filter": f"ReportingYear eq {year}",
                      "$select": "ReportingYear,ReportingPeriod,GLAccountCode,Amount,AmountDebit,AmountCredit"}
            yield from balance_records(self.rows(self.url("financial/ReportingBalance"), params), self.calendar())

    def _ledger_lines(self, state, window):
        calendar = self.calendar()
        since = int(state.bookmark or 0)
        params = {"$select": TRANSACTION_LINE_FIELDS, "$filter": f"Timestamp gt {since}L"}
        for page in self.pages(self.url("sync/Financial/TransactionLines"), params):
            for row in page:
                yield ledger_line_record(row, calendar)
            since = max([since] + [int(row["Timestamp"]) for row in page if row.get("Timestamp") is not None])
            state.advance(since)

    def _deleted(self, state, window):
        since = int(state.bookmark or 0)
        params = {"$select": "Timestamp,EntityType,EntityKey",
                  "$filter": f"Timestamp gt {since}L and EntityType eq {DELETED_TRANSACTION_LINES}"}
        for page in self.pages(self.url("sync/Deleted"), params):
            for row in page:
                if row.get("EntityType") == DELETED_TRANSACTION_LINES and row.get("EntityKey"):
                    yield DeletedRecord(source_id=row["EntityKey"])
            since = max([since] + [int(row["Timestamp"]) for row in page if row.get("Timestamp") is not None])
            state.advance(since)


# -- the three hosts: one connection each (a token of one host is not valid on another) --------

class ExactOnlineBE(ExactOnline):
    host = "https://start.exactonline.be"
    spec = exact_spec("exact_online_be", "BE", host)


class ExactOnlineFR(ExactOnline):
    host = "https://start.exactonline.fr"
    spec = exact_spec("exact_online_fr", "FR", host)


class ExactOnlineNL(ExactOnline):
    host = "https://start.exactonline.nl"
    spec = exact_spec("exact_online_nl", "NL", host)

