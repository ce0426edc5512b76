"""BoCount: Dynamics 365 Business Central with the BoCount extension, read over OData v4.

Facts: ../shared/docs/CONNECTORS.md sections 23 and 26; notes, guesses and decisions: README.md
beside this file. Docs: https://learn.microsoft.com/en-us/dynamics365/business-central/dev-itpro/api-reference/v2.0/

One firm connection per accountant's Business Central (its own base URL). Auth is chosen per
connection (``auth_method``): basic with a user and its Web Service Access Key (BoCount's way),
or Microsoft Entra ID client credentials (Business Central SaaS). BoCount's own service names
are not public: every one is a config field defaulting to the standard API v2.0 name.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from urllib.parse import quote

from marshmallow import Schema, fields, validate

from connectors import pagination, parsing
from connectors.auth import BASIC, AuthStrategy, Basic, SessionLogin
from connectors.base import (
    ACCOUNTING, FIRM, AccountRecord, BalanceRecord, CheckResult, CompanyRef, ConfigError, Connector, ConnectorSpec,
    DataError, FiscalYearRecord, LedgerLineRecord, RateBudget, RenewalRefused, Stream,
)

NAME = "BoCount"
DOCS_URL = "https://learn.microsoft.com/en-us/dynamics365/business-central/dev-itpro/api-reference/v2.0/"
BASIC_AUTH, ENTRA_AUTH = "basic", "entra"
API_STYLE, ODATA_STYLE = "api", "odatav4"
ENTRA_LOGIN = "https://login.microsoftonline.com"
#: the client-credentials scope of Business Central (CONNECTORS.md section 23)
ENTRA_SCOPE = "https://api.businesscentral.dynamics.com/.default"
#: the service names, defaulting to the standard API v2.0 entity sets (BoCount's are not public)
SERVICES = {
    "companies_service": "companies",
    "accounts_service": "accounts",
    "trial_balance_service": "trialBalance",
    "ledger_entries_service": "generalLedgerEntries",
    "accounting_periods_service": "accountingPeriods",
}
#: how far before the newest change seen an incremental read starts again
REREAD = timedelta(minutes=5)
#: account types that carry no postings (headings and totals would count amounts twice)
NON_POSTING = {"heading", "total", "begin-total", "end-total", "begintotal", "endtotal"}
#: account ``category`` (API v2.0 enum) -> canonical kind
CATEGORIES = {"assets": "asset", "liabilities": "liability", "equity": "equity", "income": "income",
              "costofgoodssold": "expense", "expense": "expense"}


class BoCountConfig(Schema):
    base_url = fields.Url(required=True, require_tld=False, metadata={
        "label": "Business Central web services URL (your accountant's, ending in /api/v2.0 or /ODataV4)"})
    endpoint_style = fields.String(
        load_default=API_STYLE, validate=validate.OneOf([API_STYLE, ODATA_STYLE]),
        metadata={"label": "Endpoints: api (companies(id)/...) or odatav4 (Company('name')/...)"})
    auth_method = fields.String(
        load_default=BASIC_AUTH, validate=validate.OneOf([BASIC_AUTH, ENTRA_AUTH]),
        metadata={"label": "Sign-in: basic (user + web service access key) or entra (Entra ID app)"})
    username = fields.String(load_default=None, allow_none=True, metadata={"label": "Business Central user name"})
    web_service_access_key = fields.String(load_default=None, allow_none=True,
                                           metadata={"secret": True, "label": "Web Service Access Key"})
    tenant_id = fields.String(load_default=None, allow_none=True,
                              metadata={"label": "Entra ID tenant (directory) id"})
    client_id = fields.String(load_default=None, allow_none=True,
                              metadata={"label": "Entra ID application (client) id"})
    client_secret = fields.String(load_default=None, allow_none=True,
                                  metadata={"secret": True, "label": "Entra ID client secret"})
    entra_login_url = fields.String(load_default=ENTRA_LOGIN, metadata={"label": "Entra ID sign-in host"})
    decimal_separator = fields.String(load_default="auto", validate=validate.OneOf(["auto", ".", ","]), metadata={
        "label": "Decimal separator of trial-balance amounts (auto, . or ,)"})
    companies_service = fields.String(
        load_default=None, allow_none=True,
        metadata={"label": "Companies service (empty: companies, or Company for odatav4)"})
    accounts_service = fields.String(load_default=SERVICES["accounts_service"],
                                     metadata={"label": "G/L accounts service"})
    trial_balance_service = fields.String(load_default=SERVICES["trial_balance_service"],
                                          metadata={"label": "Trial balance service"})
    ledger_entries_service = fields.String(load_default=SERVICES["ledger_entries_service"],
                                           metadata={"label": "G/L entries service"})
    accounting_periods_service = fields.String(load_default=SERVICES["accounting_periods_service"],
                                               metadata={"label": "Accounting periods service"})


# --------------------------------------------------------------------------------------
# Auth: one strategy chosen by the connection's ``auth_method``
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EntraClientCredentials(SessionLogin):
    """Entra ID client credentials: :meth:`BoCount.login` fetches an app token (about an hour);
    a refused token is replaced once by a new login."""


@dataclass(frozen=True)
class ChosenAuth(AuthStrategy):
    """Basic (the BoCount default) or Entra ID, by the connection's ``auth_method``. Neither has a
    browser consent step, so the console shows the key form (``kind`` basic)."""

    basic: Basic = Basic(username_field="username", password_field="web_service_access_key")
    entra: EntraClientCredentials = EntraClientCredentials(margin_seconds=300)
    margin_seconds: int = 300  # for Connector.session (the Entra token cache)

    kind = BASIC

    def chosen(self, connector):
        return self.entra if connector.config.get("auth_method") == ENTRA_AUTH else self.basic

    def requests_auth(self, connector):
        return self.chosen(connector).requests_auth(connector)

    def renew(self, connector):
        return self.chosen(connector).renew(connector)


# --------------------------------------------------------------------------------------
# Reading Business Central's answers
# --------------------------------------------------------------------------------------


def decimal_separator_of(text):
    """The decimal separator of a formatted amount: the last of ``.``/``,`` unless it is a
    thousands separator (it repeats, or three digits follow it: amounts carry two decimals)."""
    last = max(text.rfind("."), text.rfind(","))
    if last < 0:
        return "."
    mark, other = text[last], "," if text[last] == "." else "."
    if other in text:
        return mark
    if text.count(mark) > 1 or len(re.sub(r"\D", "", text[last + 1:])) == 3:
        return other
    return mark


def formatted_amount(value, field, separator="auto"):
    """A trial-balance amount -> Decimal: a number, or a string formatted in the server's locale
    (``"1,234.56"``, ``"1.234,56"``, ``"-12 345,60"``, ``"1'234.56"``, ``"1.234,56-"``, ``"(1,234.56)"``)."""
    # v2.0 trialBalance amounts are Text[30] (CONNECTORS.md section 26; spec: components/schemas/trialBalance)
    if not isinstance(value, str):
        return parsing.amount(value, field, NAME)
    text = value.strip().replace("\u00a0", "").replace("\u202f", "").replace(" ", "").replace("'", "")
    if text.endswith("-") or (text.startswith("(") and text.endswith(")")):  # "1.234,56-", "(1,234.56)"
        text = "-" + text.strip("()-")
    if separator == "auto":
        separator = decimal_separator_of(text)
    return parsing.amount(text, field, NAME, decimal_comma=separator == ",")


def enum_text(value):
    """An enum value as Business Central's JSON writes it: a blank is ``_x0020_``, spaces are
    ``_x0020_`` (``Credit_x0020_Memo``)."""
    # XML-style name escaping of enum values:
    # https://learn.microsoft.com/en-us/dynamics365/business-central/dev-itpro/api-reference/v2.0/resources/dynamics_generalledgerentry
    return parsing.text(str(value or "").replace("_x0020_", " "))


def posting_row(row):
    """False for heading and total rows (their amounts repeat the posting accounts')."""
    return enum_text(row.get("accountType")).replace(" ", "").lower() not in NON_POSTING


def account_record(row):
    number = parsing.text(row.get("number"))
    if not number:
        raise DataError("BoCount sent a G/L account without a number.")
    kind = CATEGORIES.get(enum_text(row.get("category")).replace(" ", "").lower(), "other")
    return AccountRecord(number=number, name=parsing.text(row.get("displayName")) or number, kind=kind,
                         source_id=parsing.text(row.get("id")) or None)


def ledger_line_record(row):
    """A G/L entry: ``entryNumber`` (v2.0) or the integer ``id`` (v1.0) identifies it; debit positive."""
    entry = row.get("entryNumber", row.get("id"))  # v1.0 has no entryNumber and an int32 id (README "Spec deviations")
    account = parsing.text(row.get("accountNumber"))
    if entry in (None, "") or not account:
        raise DataError("BoCount sent a G/L entry without its entry number or account.")
    debit = parsing.amount(row.get("debitAmount"), "debit amount", NAME)
    credit = parsing.amount(row.get("creditAmount"), "credit amount", NAME)
    modified = row.get("lastModifiedDateTime")
    return LedgerLineRecord(
        source_id=str(entry), booking_date=parsing.day(row.get("postingDate"), "posting date", NAME),
        account=account, amount=debit - credit, description=parsing.text(row.get("description")),
        reference=parsing.text(row.get("documentNumber")), journal=enum_text(row.get("documentType")),
        modified_at=parsing.moment(modified, "modification time", NAME) if modified else None,
    )


def fiscal_years(rows):
    """Fiscal years from accounting periods: a year starts at each ``newFiscalYear`` period and
    ends the day before the next one (the last one after twelve months)."""
    starts = sorted({parsing.day(row.get("startingDate"), "period start", NAME) for row in rows
                     if row.get("newFiscalYear") is True or str(row.get("newFiscalYear")).lower() == "true"})
    years = []
    for index, start in enumerate(starts):
        following = starts[index + 1] if index + 1 < len(starts) else date(start.year + 1, start.month, start.day)
        years.append(FiscalYearRecord(start=start, end=following - timedelta(days=1)))
    return years


def odata_moment(moment):
    """A bookmark as an OData v4 DateTimeOffset literal (unquoted, UTC)."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


# --------------------------------------------------------------------------------------
# Streams
# --------------------------------------------------------------------------------------


class FiscalYears(Stream):
    name, record_type, primary_key, paginator = "fiscal_years", FiscalYearRecord, "start", pagination.next_link

    def records(self, state, window):
        bc = self.connector
        for year in fiscal_years(bc.rows(bc.service_url("accounting_periods_service"))):
            if (window.end is None or year.start <= window.end) and (window.start is None or year.end >= window.start):
                yield year


class Accounts(Stream):
    name, record_type, primary_key, paginator = "accounts", AccountRecord, "number", pagination.next_link

    def records(self, state, window):
        bc = self.connector
        for row in bc.rows(bc.service_url("accounts_service")):
            if posting_row(row):
                yield account_record(row)


class Balances(Stream):
    """Each month's net change per posting account: ``trialBalance`` filtered on one period's
    ``dateFilter`` range, ``totalDebit - totalCredit`` (formatted strings)."""

    name, record_type, paginator = "balances", BalanceRecord, pagination.next_link

    def records(self, state, window):
        bc = self.connector
        separator = bc.config.get("decimal_separator") or "auto"
        for end in sorted(window.period_ends):
            start = end.replace(day=1)
            # the documented filter: dateFilter ge <from> and dateFilter le <to> (CONNECTORS.md section 23)
            params = {"$filter": f"dateFilter ge {start.isoformat()} and dateFilter le {end.isoformat()}"}
            for row in bc.rows(bc.service_url("trial_balance_service"), params):
                if not posting_row(row):
                    continue
                if not parsing.text(row.get("number")):
                    raise DataError("BoCount sent a trial-balance line without an account number.")
                movement = formatted_amount(row.get("totalDebit"), "total debit", separator) - \
                    formatted_amount(row.get("totalCredit"), "total credit", separator)
                yield BalanceRecord(account=parsing.text(row.get("number")), period_end=end, period_start=start,
                                    amount=movement, basis="movement")


class LedgerLines(Stream):
    """Every G/L entry, then those changed since shortly before the bookmark (:data:`REREAD`). Entries
    are never deleted in Business Central (a reversal is a new entry): there is no delete feed."""

    name, record_type, primary_key = "ledger_lines", LedgerLineRecord, "source_id"
    replication_key, paginator = "lastModifiedDateTime", pagination.next_link

    def records(self, state, window):
        bc = self.connector
        params = {}
        if state.bookmark:
            # an overlap, not gt: entries of one posting share a timestamp, and a long posting commits entries
            # stamped before later ones already read (re-read entries change nothing)
            since = parsing.moment(state.bookmark, "bookmark", NAME) - REREAD
            params["$filter"] = f"lastModifiedDateTime ge {odata_moment(since)}"
        newest = None
        for row in bc.rows(bc.service_url("ledger_entries_service"), params):
            record = ledger_line_record(row)
            if record.modified_at and (newest is None or record.modified_at > newest):
                newest = record.modified_at
            yield record
        # no promised order: the bookmark moves only after the last page
        if newest is not None:
            state.advance(odata_moment(newest))
        elif state.bookmark:
            state.advance(state.bookmark)


# --------------------------------------------------------------------------------------
# Connector
# --------------------------------------------------------------------------------------


class BoCount(Connector):
    spec = ConnectorSpec(
        key="bocount_odata_v4",
        display_name=NAME,
        kind=ACCOUNTING,
        level=FIRM,
        auth=ChosenAuth(),
        config_schema=BoCountConfig,
        api_version="Business Central API v2.0 / OData v4 (BoCount service names configurable)",
        docs_url=DOCS_URL,
        # 6,000 calls per 5-minute sliding window per user, 100 at once:
        # https://learn.microsoft.com/en-us/dynamics365/business-central/dev-itpro/api-reference/v2.0/dynamics-rate-limits
        rate_budget=RateBudget(per_minute=6000, window_seconds=300, concurrency=100, per="connection"),
        undocumented=True,
        sandbox_config={"base_url": "{sandbox}/bocount/BC/api/v2.0", "endpoint_style": API_STYLE,
                        "auth_method": BASIC_AUTH, "username": "FIRMSYNC", "web_service_access_key": "demo-key",
                        "decimal_separator": "auto"},
    )
    streams = (FiscalYears, Accounts, Balances, LedgerLines)

    # -- urls -----------------------------------------------------------------------
    @property
    def odata_style(self):
        return self.config.get("endpoint_style") == ODATA_STYLE

    def service(self, name):
        if name == "companies_service" and self.odata_style:
            return parsing.text(self.config.get(name)) or "Company"
        return parsing.text(self.config.get(name)) or SERVICES[name]

    def service_url(self, name):
        if not self.reference:
            raise ConfigError("This dossier is not linked to a BoCount company yet.")
        if self.odata_style:  # ODataV4 keys companies by name, quotes doubled: {base}/ODataV4/Company('name')/Service
            company = "Company('" + quote(self.reference.replace("'", "''"), safe="'") + "')"
        else:  # API keys them by id: {base}/api/v2.0/companies(id)/entitySet
            company = f"{self.service('companies_service')}({self.reference})"
        return f"{self.base_url}/{company}/{self.service(name)}"

    def rows(self, url, params=None):
        """Every row of an OData collection, following ``@odata.nextLink`` (absolute, params included)."""
        def fetch(link):
            body = self.get_json(link, params=params if link == url else None)
            if not isinstance(body, dict) or not isinstance(body.get("value"), list):
                raise DataError("BoCount sent a list without its usual \"value\" envelope.")
            return body["value"], body.get("@odata.nextLink") or body.get("odata.nextLink")

        return pagination.next_link(fetch, url, package=NAME)

    # -- auth -----------------------------------------------------------------------
    def login(self):
        """Entra ID client credentials -> (access token, lifetime seconds)."""
        config = self.config
        missing = [label for name, label in (("tenant_id", "tenant id"), ("client_id", "client id"),
                                             ("client_secret", "client secret")) if not config.get(name)]
        if missing:
            raise ConfigError(f"The BoCount connection has no Entra ID {', '.join(missing)}.")
        host = (config.get("entra_login_url") or ENTRA_LOGIN).rstrip("/")
        response = self.http.request(
            "POST", f"{host}/{quote(config['tenant_id'], safe='')}/oauth2/v2.0/token", interpret=token_refusal,
            data={"grant_type": "client_credentials", "client_id": config["client_id"],
                  "client_secret": config["client_secret"], "scope": ENTRA_SCOPE})
        answer = self.http.json_of(response)
        token = answer.get("access_token") if isinstance(answer, dict) else None
        if not token:
            raise DataError("Microsoft Entra ID sent a sign-in answer without an access token.")
        self.http.secrets.append(token)
        return token, float(answer.get("expires_in") or 3599)

    # -- hooks ----------------------------------------------------------------------
    @staticmethod
    def error_message(response):
        # OData errors: {"error": {"code": "...", "message": "...  CorrelationId: ..."}} (CONNECTORS.md section 23)
        try:
            error = response.json().get("error")
        except (ValueError, AttributeError):
            return None
        if not isinstance(error, dict):
            return None
        text = str(error.get("message") or "").split("CorrelationId")[0].strip()
        return text or None

    # -- references -----------------------------------------------------------------
    def list_references(self):
        rows = list(self.rows(f"{self.base_url}/{self.service('companies_service')}"))
        if self.odata_style:  # ODataV4 Company: Name, Display_Name, Id
            return [CompanyRef(parsing.text(row.get("Name")), parsing.text(row.get("Display_Name")) or
                               parsing.text(row.get("Name")), {"id": parsing.text(row.get("Id"))})
                    for row in rows if parsing.text(row.get("Name"))]
        return [CompanyRef(parsing.text(row.get("id")), parsing.text(row.get("displayName")) or
                           parsing.text(row.get("name")), {"name": parsing.text(row.get("name"))})
                for row in rows if parsing.text(row.get("id"))]

    def check(self):
        count = len(self.list_references())
        return CheckResult(True, f"Connected to BoCount: {count} companies available.", references=count)


def token_refusal(response):
    """Entra ID's token endpoint refusing the app (400/401 ``invalid_client``...): reconnect, never retried."""
    if response.status_code not in (400, 401):
        return None
    try:
        body = response.json()
    except ValueError:
        body = {}
    code = str(body.get("error") or "refused") if isinstance(body, dict) else "refused"
    return RenewalRefused("Microsoft Entra ID refused the app credentials of this BoCount connection "
                          f"({code}). An administrator must check the tenant, client id and secret, "
                          "then reconnect it.", detail=code)

