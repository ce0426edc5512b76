"""e-conomic (Visma, legacy REST API at restapi.e-conomic.com): one dossier, one agreement.

Docs: https://restdocs.e-conomic.com/ (source: e-conomic/slate); facts: ../shared/docs/CONNECTORS.md
section 19; notes and decisions: connectors/economic/README.md.

Auth is e-conomic's agreement grant (:class:`EconomicGrant`): the customer adds Firmsync's app
on e-conomic's installation page, which hands back a grant token; every call then sends
``X-AppSecretToken`` (the firm's app, a secret of the connection's config) and
``X-AgreementGrantToken`` (the customer's grant, in the credentials).
"""
from __future__ import annotations

from functools import cached_property

from marshmallow import Schema, fields

from connectors import pagination, parsing
from connectors.auth import AgreementGrant
from connectors.base import (
    ACCOUNTING, DOSSIER, AccountRecord, AuthError, BalanceRecord, CheckResult, CompanyRef, Connector, ConnectorSpec,
    DataError, FiscalYearRecord, LedgerLineRecord, RateBudget, Stream,
)

NAME = "e-conomic"
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


class EconomicGrant(AgreementGrant):
    """:class:`AgreementGrant` with e-conomic's words for a missing grant and a cancelled installation."""

    def requests_auth(self, connector):
        if not connector.credentials.get(self.credential) or not connector.config.get("app_secret_token"):
            raise AuthError("This dossier's e-conomic connection has no grant. An administrator must connect it again.")
        return super().requests_auth(connector)

    def callback(self, connector_class, config, args, redirect_uri, verifier=None):
        # a cancelled installation comes back without ?token= (https://www.e-conomic.com/developer/connect)
        if not str((args or {}).get(self.token_param) or "").strip():
            raise AuthError("e-conomic did not grant Firmsync access to the agreement. Please connect again "
                            "and press \u201cAdd app\u201d on e-conomic's page.")
        return super().callback(connector_class, config, args, redirect_uri, verifier)


# --------------------------------------------------------------------------------------
# Records
# --------------------------------------------------------------------------------------


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
    return AccountRecord(number=number, name=parsing.text(row.get("name")) or number, kind=account_kind(row),
                         source_id=number)


def fiscal_year_record(row):
    return FiscalYearRecord(start=parsing.day(row.get("fromDate"), "year start", NAME),
                            end=parsing.day(row.get("toDate"), "year end", NAME))


def balance_record(row):
    """One row of ``.../periods/{p}/totals`` -> the account's movement in the period (debit positive)."""
    account = (row.get("account") or {}).get("accountNumber")
    if account is None:
        raise DataError("e-conomic sent a period total without its account.")
    return BalanceRecord(account=str(account), period_end=parsing.day(row.get("toDate"), "period end", NAME),
                         period_start=parsing.day(row.get("fromDate"), "period start", NAME),
                         amount=parsing.amount(row.get("totalInBaseCurrency"), "period total", NAME), basis="movement")


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
        booking_date=parsing.day(row.get("date"), "entry date", NAME),
        account=str(account),
        amount=parsing.amount(amount if amount is not None else row.get("amount"), "entry amount", NAME),
        description=row.get("text") or "",
        reference=str(row.get("voucherNumber") or row.get("invoiceNumber") or ""),
        journal=JOURNALS.get(row.get("entryType"), row.get("entryType") or ""),
        dimensions=dimensions,
    )


# --------------------------------------------------------------------------------------
# Streams
# --------------------------------------------------------------------------------------


def _link(row, name, fallback):
    # follow the links e-conomic sends: it writes a year "2023/2024" differently in URLs (https://restdocs.e-conomic.com/#accounting-years)
    return row.get(name) or f"{row.get('self') or fallback}/{name}"


def _year_url(year):
    return year.get("self") or f"accounting-years/{year.get('year')}"


class FiscalYears(Stream):
    name, record_type, primary_key, paginator = "fiscal_years", FiscalYearRecord, "start", pagination.next_link

    def records(self, state, window):
        for record, _ in self.connector.years_in(window):
            yield record


class Accounts(Stream):
    name, record_type, primary_key, paginator = "accounts", AccountRecord, "number", pagination.next_link

    def records(self, state, window):
        for row in self.connector.collection("accounts"):
            # headings and sums are chart entries too; only these types hold postings (https://restdocs.e-conomic.com/#accounts)
            if row.get("accountType", "profitAndLoss") in POSTING_TYPES:
                yield account_record(row)


class Balances(Stream):
    name, record_type, paginator = "balances", BalanceRecord, pagination.next_link

    def records(self, state, window):
        economic, wanted = self.connector, set(window.period_ends)
        for _, year in economic.years_in(window):
            year_url = _year_url(year)
            for period in economic.collection(_link(year, "periods", year_url)):
                end = parsing.day(period.get("toDate"), "period end", NAME)
                if wanted and end not in wanted:
                    continue
                period_url = period.get("self") or f"{year_url}/periods/{period.get('periodNumber')}"
                for row in economic.collection(_link(period, "totals", period_url)):
                    yield balance_record(row)


class LedgerLines(Stream):
    # not incremental: the legacy API has no modified filter, and booked entries are immutable (no delete feed)
    name, record_type, primary_key, paginator = "ledger_lines", LedgerLineRecord, "source_id", pagination.next_link

    def records(self, state, window):
        economic = self.connector
        for _, year in economic.years_in(window):
            for row in economic.collection(_link(year, "entries", _year_url(year))):
                yield ledger_line_record(row)


# --------------------------------------------------------------------------------------
# Connector
# --------------------------------------------------------------------------------------


class Economic(Connector):
    spec = ConnectorSpec(
        key="economic",
        display_name=NAME,
        kind=ACCOUNTING,
        level=DOSSIER,
        # installation page: appPublicToken + redirectUrl, which carries our state (https://www.e-conomic.com/developer/connect)
        auth=EconomicGrant(consent_page=CONSENT_URL,
                           headers=(("X-AppSecretToken", "app_secret_token"),
                                    ("X-AgreementGrantToken", "agreement_grant_token")),
                           app_id_field="app_public_id", consent_page_field="consent_url", token_param="token",
                           credential="agreement_grant_token"),
        config_schema=EconomicConfig,
        api_version="REST (restapi.e-conomic.com)",
        docs_url=DOCS_URL,
        # fair use: 50,000 calls per 24 hours per agreement (https://www.e-conomic.com/developer/fair-use-policy)
        rate_budget=RateBudget(per_day=50_000, per="tenant"),
        reference_label="agreement",
        vendor_hosts=("*.e-conomic.com",),
        sandbox_config={"app_public_id": "economic-sandbox-public", "app_secret_token": "economic-sandbox-secret",
                        "base_url": "{sandbox}/e-conomic/api",
                        "consent_url": "{sandbox}/e-conomic/secure/api1/requestaccess.aspx"},
    )
    streams = (FiscalYears, Accounts, Balances, LedgerLines)

    page_size = PAGE_SIZE

    @staticmethod
    def error_message(response):
        """e-conomic's error body ``{message, errorCode, developerHint, ...}`` -> its message (None when empty)."""
        # errors are JSON {message, developerHint, logId, httpStatusCode, ...} (https://restdocs.e-conomic.com/#errors)
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

    @property
    def base_url(self):
        return (self.config.get("base_url") or API_URL).rstrip("/")

    def get(self, url, params=None):
        """GET an e-conomic URL (a path or a link e-conomic sent, on this API only) as JSON."""
        if not url.startswith("http"):
            url = f"{self.base_url}/{url.lstrip('/')}"
        elif not url.startswith(self.base_url + "/"):
            # never send the grant to another host, whatever link a page carries
            raise DataError("e-conomic sent a link to another address.", detail=url.split("?")[0])
        return self.get_json(url, params=params, headers={"Accept": "application/json"})

    def collection(self, url):
        """Every item of a collection, following ``pagination.nextPage`` (1,000 per page)."""
        first = url if url.startswith("http") else f"{self.base_url}/{url.lstrip('/')}"

        def fetch(page_url):
            # skippages/pagesize (default 20, max 1,000), then the nextPage links (https://restdocs.e-conomic.com/#pagination)
            params = {"skippages": 0, "pagesize": self.page_size} if page_url == first else None
            body = self.get(page_url, params)
            items = body.get("collection")
            if not isinstance(items, list):
                raise DataError("e-conomic sent a list that is not a list.")
            return items, (body.get("pagination") or {}).get("nextPage")

        return pagination.next_link(fetch, first, package=NAME)

    # -- contract ------------------------------------------------------------------------
    @cached_property
    def agreement(self):
        """``GET /self``: the agreement this grant opens (a grant covers exactly one)."""
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

    # -- accounting years (shared by the streams) --------------------------------------
    @cached_property
    def years(self):
        """``[(FiscalYearRecord, accounting-year row)]`` in date order."""
        rows = [(fiscal_year_record(row), row) for row in self.collection("accounting-years")]
        return sorted(rows, key=lambda pair: pair[0].start)

    def years_in(self, window):
        return [(record, row) for record, row in self.years
                if (window.end is None or record.start <= window.end)
                and (window.start is None or record.end >= window.start)]
