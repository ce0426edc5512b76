"""e-conomic (Visma, legacy REST API at restapi.e-conomic.com): one dossier, one agreement.

Docs: https://restdocs.e-conomic.com/ (source: e-conomic/slate); facts: ../shared/docs/CONNECTORS.md
section 19; decisions: docs/connectors-quickbooks-economic.md.

Every call sends two headers: ``X-AppSecretToken`` (the firm's app, a secret of the
connection's config) and ``X-AgreementGrantToken`` (the customer's grant, in the
credentials). The grant comes from e-conomic's installation page: :func:`installation_url`
builds the link, :func:`grant_from_callback` reads the ``?token=`` e-conomic sends back.
"""
from __future__ import annotations

from datetime import date
from decimal import Decimal, InvalidOperation
from functools import cached_property
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from marshmallow import Schema, fields

from connectors.base import (
    ACCOUNTING, AUTH_API_KEY, DOSSIER, AccountRecord, AuthError, BalanceRecord, CheckResult, CompanyRef, ConfigError,
    Connector, ConnectorSpec, DataError, FiscalYearRecord, LedgerLineRecord, RateBudget, StreamDef, SyncWindow,
)
from connectors.pagination import next_link

API_URL = "https://restapi.e-conomic.com"
CONSENT_URL = "https://secure.e-conomic.com/secure/api1/requestaccess.aspx"
DOCS_URL = "https://restdocs.e-conomic.com/"
#: the largest page e-conomic serves (``pagesize``)
PAGE_SIZE = 1000
#: chart entries that hold postings (the others are headings and sums)
POSTING_TYPES = {"profitAndLoss", "status"}
#: e-conomic's entryType values, as a journal name an accountant recognises
JOURNALS = {
    "customerInvoice": "Sales", "customerPayment": "Customer payments", "supplierInvoice": "Purchases",
    "supplierPayment": "Supplier payments", "financeVoucher": "Finance vouchers", "reminder": "Reminders",
    "openingEntry": "Opening entries", "transferredOpeningEntry": "Transferred opening entries",
    "systemEntry": "System entries", "manualDebtorInvoice": "Manual customer invoices",
}


class EconomicConfig(Schema):
    """The firm's e-conomic app (developer agreement): its public and secret tokens."""

    app_secret_token = fields.String(required=True, metadata={"secret": True, "label": "App secret token"})
    # e-conomic calls it appPublicToken; it is public (it sits in the installation link), hence not "token" here
    app_public_id = fields.String(required=True, metadata={"label": "App public token (appPublicToken)"})
    base_url = fields.Url(load_default=API_URL, require_tld=False, metadata={"label": "REST API URL"})
    consent_url = fields.Url(load_default=CONSENT_URL, require_tld=False,
                             metadata={"label": "Installation page (leave as is)"})


def installation_url(config, redirect_uri, state):
    """The link that lets the customer grant Firmsync access to their agreement.

    e-conomic has no ``state`` parameter, so ``state`` travels inside ``redirectUrl``; the
    callback then carries both ``state`` and ``token``.
    """
    public = (config or {}).get("app_public_id")
    if not public:
        raise ConfigError("The e-conomic connection has no app public token.")
    parts = urlsplit(redirect_uri)
    query = urlencode(parse_qsl(parts.query) + [("state", state)])
    redirect = urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))
    base = (config.get("consent_url") or CONSENT_URL)
    return f"{base}?{urlencode({'appPublicToken': public, 'redirectUrl': redirect})}"


def grant_from_callback(args):
    """The credentials from the installation page's callback query (``?token=...``); AuthError when refused."""
    token = str((args or {}).get("token") or "").strip()
    if not token:
        raise AuthError("e-conomic did not grant Firmsync access to the agreement. Please connect again "
                        "and press \u201cAdd app\u201d on e-conomic's page.")
    return {"agreement_grant_token": token}


# --------------------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------------------


def parse_amount(value, what="amount"):
    if value is None or value == "":
        return Decimal("0")
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise DataError(f"e-conomic sent a {what} that is not an amount ({str(value)[:40]!r}).") from None
    if not amount.is_finite():
        raise DataError(f"e-conomic sent a {what} that is not an amount ({str(value)[:40]!r}).")
    return amount


def parse_date(value, what="date"):
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        raise DataError(f"e-conomic sent a {what} that is not a date ({str(value)[:40]!r}).") from None


def account_kind(row):
    """``status`` accounts are the balance sheet, ``profitAndLoss`` the result; ``debitCredit`` says the side."""
    credit = row.get("debitCredit") == "credit"
    if row.get("accountType") == "status":
        return "liability" if credit else "asset"
    if row.get("accountType") == "profitAndLoss":
        return "income" if credit else "expense"
    return "other"


def account_record(row):
    if row.get("accountNumber") is None:
        raise DataError("e-conomic sent an account without a number.")
    number = str(row["accountNumber"])
    return AccountRecord(number=number, name=(row.get("name") or number).strip(), kind=account_kind(row),
                         source_id=number)


def fiscal_year_record(row):
    return FiscalYearRecord(start=parse_date(row.get("fromDate"), "year start"),
                            end=parse_date(row.get("toDate"), "year end"))


def balance_record(row):
    """One row of ``.../periods/{p}/totals`` -> the account's movement in the period (debit positive)."""
    account = (row.get("account") or {}).get("accountNumber")
    if account is None:
        raise DataError("e-conomic sent a period total without its account.")
    return BalanceRecord(account=str(account), period_end=parse_date(row.get("toDate"), "period end"),
                         period_start=parse_date(row.get("fromDate"), "period start"),
                         amount=parse_amount(row.get("totalInBaseCurrency"), "period total"), basis="movement")


def ledger_line_record(row):
    """One booked entry of ``/accounting-years/{y}/entries`` -> :class:`LedgerLineRecord` (source id ``entryNumber``)."""
    number, account = row.get("entryNumber"), (row.get("account") or {}).get("accountNumber")
    if number is None or account is None:
        raise DataError("e-conomic sent an entry without its number or account.")
    amount = row.get("amountInBaseCurrency")
    dimensions = {}
    for key, handler, field in (("departmental_distribution", "departmentalDistribution",
                                 "departmentalDistributionNumber"),
                                ("project", "project", "projectNumber"), ("cost_type", "costType", "costTypeNumber")):
        if (row.get(handler) or {}).get(field) is not None:
            dimensions[key] = str(row[handler][field])
    return LedgerLineRecord(
        source_id=str(number),
        booking_date=parse_date(row.get("date"), "entry date"),
        account=str(account),
        amount=parse_amount(amount if amount is not None else row.get("amount"), "entry amount"),
        description=row.get("text") or "",
        reference=str(row.get("voucherNumber") or row.get("invoiceNumber") or ""),
        journal=JOURNALS.get(row.get("entryType"), row.get("entryType") or ""),
        dimensions=dimensions,
    )


def error_message(response):
    """e-conomic's error body ``{message, errorCode, developerHint, ...}`` -> its message (None when empty)."""
    try:
        body = response.json()
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None
    if response.status_code == 401:
        return ("the agreement's grant no longer works: the customer may have removed the Firmsync app "
                "in e-conomic (Settings > Apps)")
    return str(body.get("message") or "").strip()[:200] or None


# --------------------------------------------------------------------------------------
# Connector
# --------------------------------------------------------------------------------------


class Economic(Connector):
    spec = ConnectorSpec(
        key="economic",
        display_name="e-conomic",
        kind=ACCOUNTING,
        level=DOSSIER,
        auth=AUTH_API_KEY,
        config_schema=EconomicConfig,
        api_version="REST (restapi.e-conomic.com)",
        docs_url=DOCS_URL,
        # fair use: 50,000 calls per 24 hours per agreement (e-conomic.com/developer/fair-use-policy)
        rate_budget=RateBudget(per_day=50_000, per="tenant"),
        reference_label="agreement",
    )

    page_size = PAGE_SIZE

    def error_message(self, response):
        return error_message(response)

    @property
    def base_url(self):
        return (self.config.get("base_url") or API_URL).rstrip("/")

    def _headers(self):
        grant = self.credentials.get("agreement_grant_token")
        if not grant or not self.config.get("app_secret_token"):
            raise AuthError("This dossier's e-conomic connection has no grant. An administrator must connect it again.")
        return {"X-AppSecretToken": self.config["app_secret_token"], "X-AgreementGrantToken": grant,
                "Accept": "application/json"}

    def get(self, url, params=None):
        """GET an e-conomic URL (a path or a link e-conomic sent, on this API only) as JSON."""
        if not url.startswith("http"):
            url = f"{self.base_url}/{url.lstrip('/')}"
        elif not url.startswith(self.base_url + "/"):
            raise DataError("e-conomic sent a link to another address.", detail=url.split("?")[0])
        return self.http.get_json(url, params=params, headers=self._headers())

    def collection(self, url):
        """Every item of a collection, following ``pagination.nextPage`` (1,000 per page)."""
        first = url if url.startswith("http") else f"{self.base_url}/{url.lstrip('/')}"

        def fetch(page_url):
            params = {"skippages": 0, "pagesize": self.page_size} if page_url == first else None
            body = self.get(page_url, params)
            items = body.get("collection")
            if not isinstance(items, list):
                raise DataError("e-conomic sent a list that is not a list.")
            return items, (body.get("pagination") or {}).get("nextPage")

        return next_link(fetch, first, package="e-conomic")

    # -- contract ------------------------------------------------------------------------
    @cached_property
    def agreement(self):
        """``GET /self``: the agreement this grant opens."""
        body = self.get("self")
        if body.get("agreementNumber") is None:
            raise DataError("e-conomic did not say which agreement this grant opens.")
        return body

    def list_references(self):
        body = self.agreement
        company = body.get("company") or {}
        details = {key: company[name] for key, name in (("country", "country"), ("vat_number", "vatNumber"),
                                                       ("company_number", "companyIdentificationNumber"))
                   if company.get(name)}
        if (body.get("settings") or {}).get("baseCurrency"):
            details["currency"] = body["settings"]["baseCurrency"]
        return [CompanyRef(reference=str(body["agreementNumber"]),
                           name=company.get("name") or f"Agreement {body['agreementNumber']}", details=details)]

    def check(self):
        reference = self.list_references()[0]
        if self.reference and str(self.reference) != reference.reference:
            return CheckResult(ok=False, references=1, message=(
                f"This grant opens e-conomic agreement {reference.reference} ({reference.name}), not agreement "
                f"{self.reference} linked to the dossier. Connect the dossier with the right agreement."))
        return CheckResult(ok=True, message=f"Connected to e-conomic agreement {reference.reference} ({reference.name}).",
                           references=1)

    def streams(self):
        return [
            StreamDef("fiscal_years", FiscalYearRecord),
            StreamDef("accounts", AccountRecord, primary_key="number"),
            StreamDef("balances", BalanceRecord),
            StreamDef("ledger_lines", LedgerLineRecord, primary_key="source_id"),
        ]

    def read(self, stream, state, window):
        readers = {"fiscal_years": self._fiscal_years, "accounts": self._accounts, "balances": self._balances,
                   "ledger_lines": self._ledger_lines}
        if stream not in readers:
            raise ConfigError(f"e-conomic has no stream called {stream!r}.")
        return readers[stream](window or SyncWindow())

    # -- streams -------------------------------------------------------------------------
    @cached_property
    def _years(self):
        """``[(FiscalYearRecord, accounting-year row)]`` in date order."""
        rows = [(fiscal_year_record(row), row) for row in self.collection("accounting-years")]
        return sorted(rows, key=lambda pair: pair[0].start)

    def _years_in(self, window):
        return [(record, row) for record, row in self._years
                if (window.end is None or record.start <= window.end)
                and (window.start is None or record.end >= window.start)]

    def _fiscal_years(self, window):
        for record, _ in self._years_in(window):
            yield record

    def _accounts(self, window):
        for row in self.collection("accounts"):
            if row.get("accountType", "profitAndLoss") in POSTING_TYPES:
                yield account_record(row)

    def _link(self, row, name, fallback):
        return row.get(name) or f"{row.get('self') or fallback}/{name}"

    def _balances(self, window):
        wanted = set(window.period_ends)
        for _, year in self._years_in(window):
            year_url = year.get("self") or f"accounting-years/{year.get('year')}"
            for period in self.collection(self._link(year, "periods", year_url)):
                end = parse_date(period.get("toDate"), "period end")
                if wanted and end not in wanted:
                    continue
                period_url = period.get("self") or f"{year_url}/periods/{period.get('periodNumber')}"
                for row in self.collection(self._link(period, "totals", period_url)):
                    yield balance_record(row)

    def _ledger_lines(self, window):
        for _, year in self._years_in(window):
            year_url = year.get("self") or f"accounting-years/{year.get('year')}"
            for row in self.collection(self._link(year, "entries", year_url)):
                yield ledger_line_record(row)
