"""Exact Online: one connector for three country hosts (``exact_online_be``, ``exact_online_fr``, ``exact_online_nl``).

The countries run the same REST API (OData-v2 style JSON) on different hosts, and a token
issued on one host is not valid on another, so each host is its own package
(:class:`ExactOnlineBE`, :class:`ExactOnlineFR`, :class:`ExactOnlineNL`: key, display name and
host only). The sync reference is the division ``Code``. Notes: ``README.md`` beside this file.
Docs: https://start.exactonline.nl/docs/HlpRestAPIResources.aspx
"""
from __future__ import annotations

import re
import time
from collections import defaultdict
from datetime import timedelta
from decimal import Decimal

from marshmallow import Schema, fields

from connectors import pagination, parsing
from connectors.auth import OAuth2Code
from connectors.base import (
    ACCOUNTING, FIRM, AccountRecord, AuthError, BalanceRecord, CheckResult, CompanyRef, ConfigError, Connector,
    ConnectorSpec, DataError, DeletedRecord, FiscalYearRecord, LedgerLineRecord, NotFoundError, PermissionError,
    RateBudget, RateLimited, Stream,
)

PACKAGE = "Exact Online"
DOCS_URL = "https://start.exactonline.nl/docs/HlpRestAPIResources.aspx"
#: sync/Deleted EntityType of transaction lines
DELETED_TRANSACTION_LINES = 1
#: ``$select`` is mandatory on sync endpoints
TRANSACTION_LINE_FIELDS = (
    "Timestamp,ID,Date,FinancialYear,FinancialPeriod,GLAccountCode,AmountDC,Description,EntryNumber,"
    "YourRef,InvoiceNumber,JournalCode,CostCenter,CostUnit,Modified"
)
#: only documented names: https://start.exactonline.nl/docs/HlpRestAPIResourcesDetails.aspx?name=SystemSystemAllDivisions
DIVISION_FIELDS = "Code,Description,Country,Currency,VATNumber,ChamberOfCommerceNumber"


class ExactOnlineConfig(Schema):
    """The connection form: the app registered at apps.exactonline.com and the country host."""

    base_url = fields.Url(required=True, require_tld=False, metadata={"label": "Exact Online address"})
    client_id = fields.String(required=True, metadata={"label": "Client ID (apps.exactonline.com)"})
    client_secret = fields.String(required=True, metadata={"secret": True, "label": "Client secret"})
    accountant_divisions = fields.Boolean(
        load_default=True,
        metadata={"label": "List the divisions of all client licences (accountant licence)"},
    )


class ExactOAuth2Code(OAuth2Code):
    """OAuth2 code grant renewed only after Exact's API refused the access token itself (see :meth:`renew`)."""

    def renew(self, connector):
        # not after a failed refresh, nor a blocked user or an expired password (a new token cures neither): Exact
        # counts each refusal towards blocking the key (10 errors per endpoint an hour) and allows 200 token calls a
        # day: https://forums.invantive.com/t/new-exact-online-api-limitations/1040/2
        return connector.token_refused and super().renew(connector)


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
        # endpoints on the connection's own host (ExactOnline.oauth_endpoints), client id and secret in the token
        # form, no PKCE: https://github.com/NangoHQ/nango/blob/master/packages/providers/providers.yaml (exact-online)
        auth=ExactOAuth2Code(
            authorize_url="/api/oauth2/auth",
            token_url="/api/oauth2/token",
            scopes=(),
            pkce=False,
            rotating_refresh_token=True,
            access_token_seconds=600,
            # Exact refuses a refresh while the access token is younger than 570 s: https://docs.maesn.com/rate-limits
            refresh_margin_seconds=30,
            token_auth_method="client_secret_post",
        ),
        config_schema=config_schema,
        api_version="v1",
        docs_url=DOCS_URL,
        # 60 calls a minute and 5,000 a day per division: https://docs.maesn.com/rate-limits
        rate_budget=RateBudget(per_minute=60, per_day=5000, per="tenant"),
        reference_label="division",
        # every country of Exact Online (https://support.exactonline.com/community/s/knowledge-base#All-All-DNO-Content-rest-api-urls)
        vendor_hosts=("start.exactonline.*",),
        # one emulator serves the three hosts (connectors/exact_online/emulator.py)
        sandbox_config={"base_url": "{sandbox}/exact-online", "client_id": "exact-sandbox-client",
                        "client_secret": "exact-sandbox-secret", "accountant_divisions": True},
    )


# --------------------------------------------------------------------------------------
# Parsing (pure functions over Exact's payloads)
# --------------------------------------------------------------------------------------


def ms_date(value, field):
    """An Exact date (``/Date(ms)/``, midnight UTC) -> ``date``; anything else is a :class:`DataError`."""
    # Exact sends every date as MS-JSON: https://start.exactonline.nl/docs/HlpRestAPIResources.aspx
    return parsing.ms_json_date(value, field, PACKAGE)


def optional_ms_moment(value, field):
    """An Exact date-time (``/Date(ms)/``) -> aware UTC ``datetime``; ``None`` stays ``None``."""
    return None if value in (None, "") else parsing.ms_json_datetime(value, field, PACKAGE)


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


def account_kind(balance_type, balance_side):
    """Canonical account kind from ``BalanceType`` (B balance sheet, W profit and loss) and ``BalanceSide``."""
    balance_type, balance_side = parsing.text(balance_type), parsing.text(balance_side)
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
        if any(row.get(name) in (None, "") for name in ("FinYear", "FinPeriod", "StartDate", "EndDate")):
            raise DataError("Exact Online sent a financial period without its year, number or dates.")
        calendar[(int(row["FinYear"]), int(row["FinPeriod"]))] = (
            ms_date(row["StartDate"], "period start date"), ms_date(row["EndDate"], "period end date"))
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
    # GL account codes come right-aligned with spaces (recorded answers; not in the reference: DOCS_URL)
    return AccountRecord(
        number=parsing.text(row.get("Code")),
        name=parsing.text(row.get("Description")),
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
        if row.get("Amount") is None:
            value = parsing.amount(row.get("AmountDebit"), "debit amount", PACKAGE) - \
                parsing.amount(row.get("AmountCredit"), "credit amount", PACKAGE)
        else:
            value = parsing.amount(row["Amount"], "balance amount", PACKAGE)
        totals[(parsing.text(row.get("GLAccountCode")), key)] += value
    return [
        BalanceRecord(account=account, period_end=calendar[key][1], period_start=calendar[key][0],
                      amount=total, basis="movement")
        for (account, key), total in sorted(totals.items(), key=lambda item: (item[0][1], item[0][0]))
    ]


def ledger_line_record(row, calendar):
    """A :class:`LedgerLineRecord` from a ``sync/Financial/TransactionLines`` row.

    ``FinancialYear`` + ``FinancialPeriod`` decide the booking period (not ``Date``).
    """
    if not row.get("ID") or row.get("Date") in (None, ""):
        raise DataError("Exact Online sent a transaction line without its ID or date.")
    year, period = row.get("FinancialYear"), row.get("FinancialPeriod")
    span = calendar.get((int(year), int(period))) if year is not None and period is not None else None
    reference = row.get("YourRef") or row.get("InvoiceNumber") or row.get("EntryNumber") or ""
    codes = {name: parsing.text(row.get(field)) for name, field in (("cost_center", "CostCenter"),
                                                                    ("cost_unit", "CostUnit"))}
    return LedgerLineRecord(
        source_id=row["ID"],
        booking_date=ms_date(row["Date"], "booking date"),
        booking_period_end=span[1] if span else None,
        account=parsing.text(row.get("GLAccountCode")),
        amount=parsing.amount(row.get("AmountDC"), "line amount", PACKAGE),
        description=row.get("Description") or "",
        reference=str(reference),
        journal=parsing.text(row.get("JournalCode")),
        dimensions={name: value for name, value in codes.items() if value},
        modified_at=optional_ms_moment(row.get("Modified"), "modification time"),
    )


def company_ref(row):
    """A division as a :class:`CompanyRef`; its codes come space-padded (``"FR "``, ``"EUR "``)."""
    # ChamberOfCommerceNumber now, ChamberOfCommerce in older answers: https://start.exactonline.nl/docs/HlpRestAPIResourcesDetails.aspx?name=SystemSystemDivisions
    number = parsing.text(row.get("ChamberOfCommerceNumber")) or parsing.text(row.get("ChamberOfCommerce"))
    details = {key: parsing.text(row.get(field)) for key, field in (
        ("country", "Country"), ("currency", "Currency"), ("vat_number", "VATNumber"),
    ) if parsing.text(row.get(field))}
    if number:
        details["company_number"] = number
    return CompanyRef(reference=parsing.text(row["Code"]), name=parsing.text(row.get("Description")), details=details)


# --------------------------------------------------------------------------------------
# Error catalogue (PRODUCT-RESEARCH section 5) and rate-limit headers
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
    """The human text of an Exact JSON error body, or ``""``."""
    # OData errors: {"error": {"code": "", "message": {"lang": "", "value": "..."}}}; the token endpoint's are
    # OAuth's {"error", "error_description"}: https://start.exactonline.nl/docs/HlpRestAPIResources.aspx
    try:
        body = response.json()
    except ValueError:
        return ""
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
    reason = response.headers.get("Reason") or ""
    text = error_text(response) or (response.text or "")[:500]
    for reasons, patterns, error_class, message in ERROR_CATALOGUE:
        if reason in reasons or any(re.search(p, text, re.IGNORECASE) for p in patterns):
            return error_class(message.format(division=division or "?"),
                               detail=f"{reason} {text}".strip()[:300])
    return None


def rate_limit_wait(headers, now_ms):
    """Seconds to wait from Exact's ``X-RateLimit-*`` headers, and whether the day's budget is spent.

    ``(0, False)`` while calls remain. ``X-RateLimit-*-Reset`` are Unix times in milliseconds.
    """
    # the headers: https://forums.invantive.com/t/inzien-waardes-exact-online-kopteksten-voor-rate-limits/3102
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
# Streams
# --------------------------------------------------------------------------------------


def sync_pages(exact, resource, select, state, condition=""):
    """The pages of a ``sync/`` endpoint after ``state.bookmark`` (Exact's ``Timestamp``, an int),
    advancing the bookmark to the highest ``Timestamp`` once each page has been read."""
    since = int(state.bookmark or 0)
    params = {"$select": select, "$filter": f"Timestamp gt {since}L{condition}"}
    for page in exact.pages(exact.url(resource), params):
        yield page
        since = max([since] + [int(row["Timestamp"]) for row in page if row.get("Timestamp") is not None])
        state.advance(since)


class FiscalYears(Stream):
    name, record_type, primary_key = "fiscal_years", FiscalYearRecord, "start"

    def records(self, state, window):
        yield from self.connector.years_in(window).values()


class Accounts(Stream):
    name, record_type, primary_key, paginator = "accounts", AccountRecord, "number", pagination.next_link

    def records(self, state, window):
        exact = self.connector
        params = {"$select": "ID,Code,Description,BalanceType,BalanceSide"}
        for row in exact.rows(exact.url("financial/GLAccounts"), params):
            yield account_record(row)


class Balances(Stream):
    name, record_type, paginator = "balances", BalanceRecord, pagination.next_link

    def records(self, state, window):
        exact = self.connector
        for year in exact.years_in(window):
            # filter on ReportingYear (advised: https://start.exactonline.nl/docs/HlpRestAPIResourcesDetails.aspx?name=FinancialReportingBalance)
            params = {"$filter": f"ReportingYear eq {year}",
                      "$select": "ReportingYear,ReportingPeriod,GLAccountCode,Amount,AmountDebit,AmountCredit"}
            yield from balance_records(exact.rows(exact.url("financial/ReportingBalance"), params), exact.calendar())


class LedgerLines(Stream):
    name, record_type, primary_key = "ledger_lines", LedgerLineRecord, "source_id"
    #: the bookmark is Exact's row version ``Timestamp`` (an int, not a clock)
    replication_key, paginator = "Timestamp", pagination.next_link

    def records(self, state, window):
        exact = self.connector
        calendar = exact.calendar()
        for page in sync_pages(exact, "sync/Financial/TransactionLines", TRANSACTION_LINE_FIELDS, state):
            for row in page:
                yield ledger_line_record(row, calendar)


class Deleted(Stream):
    name, record_type, primary_key = "deleted", DeletedRecord, "source_id"
    replication_key, paginator = "Timestamp", pagination.next_link

    def records(self, state, window):
        condition = f" and EntityType eq {DELETED_TRANSACTION_LINES}"
        for page in sync_pages(self.connector, "sync/Deleted", "Timestamp,EntityType,EntityKey", state, condition):
            for row in page:
                if row.get("EntityType") == DELETED_TRANSACTION_LINES and row.get("EntityKey"):
                    yield DeletedRecord(source_id=row["EntityKey"])


# --------------------------------------------------------------------------------------
# Connector
# --------------------------------------------------------------------------------------


class ExactOnline(Connector):
    """Exact Online for one country host; subclasses set :attr:`host` and :attr:`spec` only."""

    streams = (FiscalYears, Accounts, Balances, LedgerLines, Deleted)
    #: the country's Exact Online address (a connection's ``base_url`` overrides it: the sandbox)
    host = "https://start.exactonline.nl"
    #: the last answer refused the access token without a catalogued reason (:class:`ExactOAuth2Code` renews then only)
    token_refused = False
    _calendar = None
    #: when the day's budget, spent, resets (``time.time()`` seconds)
    _daily_until = None

    @property
    def base_url(self):
        return (self.config.get("base_url") or self.host).rstrip("/")

    @classmethod
    def oauth_endpoints(cls, config):
        # a token is only valid on the host that issued it: https://start.exactonline.nl/docs/HlpRestAPIResources.aspx
        return cls.spec.auth.joined_to((config or {}).get("base_url") or cls.host)

    # -- HTTP ----------------------------------------------------------------------------
    def request(self, method, url, *, headers=None, **kwargs):
        """The kit's signed call; none while the division's daily budget is spent."""
        if self._daily_until is not None:
            wait = self._daily_until - time.time()
            if wait > 0:
                raise RateLimited(self._daily_message(), retry_after=wait, daily=True)
            self._daily_until = None
        self.token_refused = False
        # Exact answers JSON only when asked: https://start.exactonline.nl/docs/HlpRestAPIResources.aspx
        return super().request(method, url, headers={"Accept": "application/json", **(headers or {})}, **kwargs)

    def error_message(self, response):
        return error_text(response) or None

    def interpret_response(self, response):
        """Exact's error catalogue and ``X-RateLimit-*`` headers, before the kit's status table."""
        self.token_refused = False
        wait, daily = rate_limit_wait(response.headers, time.time() * 1000)
        if daily:
            self._daily_until = time.time() + wait
        if response.status_code < 400:
            limiter = getattr(self.http, "limiter", None)
            if wait and not daily and limiter is not None:
                # the next call waits (or defers the run) instead of earning a 429, which counts as an error at Exact
                limiter.block(*self.http.budget_key, wait)
            return None
        error = classify_error(response, self.reference)
        if error is not None:
            # never retried: 10 errors per endpoint an hour block the key (https://docs.maesn.com/rate-limits)
            return error
        self.token_refused = response.status_code == 401
        if response.status_code == 429 and wait:
            message = self._daily_message() if daily else \
                f"{self.spec.display_name} asked Firmsync to slow down. The sync will continue later."
            return RateLimited(message, retry_after=wait, daily=daily)
        return None

    def _daily_message(self):
        return (f"The daily {self.spec.display_name} API budget of this division is used up. "
                "The sync will continue tomorrow.")

    def url(self, resource, division=None):
        return f"{self.base_url}/api/v1/{division if division is not None else self.division()}/{resource}"

    def pages(self, url, params=None):
        """The rows of each page of an OData list, following ``__next`` (on this host only) until the last page."""
        def fetch(page_url):
            rows, following = odata_page(self.get_json(page_url, params=params if page_url == url else None))
            # the bearer token must never go to another host
            if following and not following.startswith(self.base_url + "/"):
                raise DataError(f"{self.spec.display_name} sent a next-page link to another address.",
                                detail=following.split("?")[0])
            return [rows], following
        return pagination.next_link(fetch, url, package=self.spec.display_name)

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
        rows, _ = odata_page(self.get_json(f"{self.base_url}/api/v1/current/Me"))
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
        """The division's ``{(year, period): (start, end)}`` (read once per connector)."""
        if self._calendar is None:
            params = {"$select": "FinYear,FinPeriod,StartDate,EndDate"}
            self._calendar = period_calendar(self.rows(self.url("financial/FinancialPeriods"), params))
        return self._calendar

    def years_in(self, window):
        """``{financial year number: FiscalYearRecord}`` of the years overlapping ``window``."""
        numbers = sorted({year for year, _ in self.calendar()})
        return {
            number: record for number, record in zip(numbers, fiscal_years(self.calendar()))
            if (window.end is None or record.start <= window.end) and (window.start is None or record.end >= window.start)
        }


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
