"""QuickBooks Online (Intuit Accounting API v3): one dossier, one company (realm).

Vendor docs: https://developer.intuit.com/app/developer/qbo/docs/api/accounting/all-entities/account
Facts: ../shared/docs/CONNECTORS.md section 20; notes, decisions and the sandbox's modes:
``connectors/quickbooks/README.md``.

The consent callback carries the ``realmId`` (the company), stored in the credentials as
``realm_id`` (:meth:`QuickBooks.grant_details`); it is the dossier's reference. Ledger lines
come from the GeneralLedger report, deletes from the change data capture feed (``/cdc``).
"""
from __future__ import annotations

import dataclasses
import re
from collections import defaultdict
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from functools import cached_property

from marshmallow import Schema, fields

from connectors import pagination, parsing
from connectors.auth import OAuth2Code
from connectors.base import (
    ACCOUNTING, DOSSIER, AccountRecord, AuthError, BalanceRecord, CheckResult, CompanyRef, ConfigError, Connector,
    ConnectorSpec, DataError, DeletedRecord, FiscalYearRecord, LedgerLineRecord, NotFoundError, RateBudget, Stream,
)
from connectors.http import vendor_error

PACKAGE = "QuickBooks Online"
API_URL = "https://quickbooks.api.intuit.com/v3/company"
DOCS_URL = "https://developer.intuit.com/app/developer/qbo/docs/api/accounting/all-entities/account"
# every call pins a minor version; Intuit retires old ones (1-74 from August 2025)
# (https://developer.intuit.com/app/developer/qbo/docs/learn/explore-the-quickbooks-online-api/minor-versions)
MINOR_VERSION = "75"
# a query page holds at most 1,000 entities, STARTPOSITION counts from 1
# (https://developer.intuit.com/app/developer/qbo/docs/learn/explore-the-quickbooks-online-api/data-queries)
QUERY_PAGE = 1000
# CDC looks back 30 days at most (a day's margin here); an older bookmark means a full re-read
# (https://developer.intuit.com/app/developer/qbo/docs/learn/explore-the-quickbooks-online-api/change-data-capture)
CDC_DAYS = 29
#: a transaction deleted in QuickBooks has its lines removed up to this many (GeneralLedger has no line ids)
MAX_LINES_PER_TRANSACTION = 1000
#: transaction entities whose changes and deletes the CDC feed is asked for
CDC_ENTITIES = (
    "Invoice", "SalesReceipt", "CreditMemo", "RefundReceipt", "Payment", "Deposit", "Transfer", "JournalEntry",
    "Bill", "BillPayment", "VendorCredit", "Purchase",
)
#: GeneralLedger ``txn_type`` labels -> the entity whose Id the row carries (CDC speaks entities)
ENTITY_OF_TXN_TYPE = {
    "Invoice": "Invoice", "Sales Receipt": "SalesReceipt", "Credit Memo": "CreditMemo", "Refund": "RefundReceipt",
    "Payment": "Payment", "Deposit": "Deposit", "Transfer": "Transfer", "Journal Entry": "JournalEntry",
    "Bill": "Bill", "Bill Payment (Check)": "BillPayment", "Bill Payment (Credit Card)": "BillPayment",
    "Vendor Credit": "VendorCredit", "Expense": "Purchase", "Check": "Purchase", "Cash Expense": "Purchase",
    "Credit Card Expense": "Purchase", "Credit Card Credit": "Purchase",
}
#: the GeneralLedger columns asked for (``columns=``): debit and credit make the sign unambiguous
LEDGER_COLUMNS = ("tx_date", "txn_type", "doc_num", "memo", "debt_amt", "credit_amt")
#: Account.Classification -> canonical kind
CLASSIFICATION_KINDS = {"Asset": "asset", "Liability": "liability", "Equity": "equity", "Revenue": "income",
                        "Expense": "expense"}
BALANCE_SHEET_KINDS = {"asset", "liability", "equity"}
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December")

QBO_AUTH = OAuth2Code(
    authorize_url="https://appcenter.intuit.com/connect/oauth2",
    token_url="https://oauth.platform.intuit.com/oauth2/v1/tokens/bearer",
    scopes=("com.intuit.quickbooks.accounting",),
    pkce=False,
    # the refresh token "may change on refresh, so always store the latest"; access tokens last an hour
    # (https://developer.intuit.com/app/developer/qbo/docs/develop/authentication-and-authorization/faq)
    rotating_refresh_token=True,
    access_token_seconds=3600,
)


class QuickBooksConfig(Schema):
    """The Intuit app a firm registers at developer.intuit.com (one app serves all dossiers)."""

    client_id = fields.String(required=True, metadata={"label": "Client ID"})
    client_secret = fields.String(required=True, metadata={"secret": True, "label": "Client secret"})
    base_url = fields.Url(load_default=API_URL, require_tld=False, metadata={"label": "Accounting API URL"})
    oauth_url = fields.Url(load_default=None, allow_none=True, require_tld=False,
                           metadata={"label": "Sign-in server (leave empty for Intuit)"})
    accounting_method = fields.String(load_default="Accrual", metadata={"label": "Accounting method (Accrual or Cash)"})


# --------------------------------------------------------------------------------------
# Parsing: Intuit's payloads to plain values
# --------------------------------------------------------------------------------------


def parse_amount(value, field="amount"):
    # report values are strings, "" for zero (https://developer.intuit.com/app/developer/qbo/docs/api/accounting/report-entities/trialbalance)
    return parsing.amount(value, field, PACKAGE)


def parse_date(value, field="date"):
    return parsing.day(value, field, PACKAGE)


def parse_time(value, field="time"):
    # Intuit writes its clock with the company's offset (2024-02-01T09:30:00-08:00): compared in UTC
    return parsing.moment(value, field, PACKAGE)


def account_number(row):
    """The number a dossier uses: ``AcctNum`` when the company numbers its accounts, else the ``Id``."""
    # account numbers are optional in QuickBooks (https://developer.intuit.com/app/developer/qbo/docs/api/accounting/all-entities/account)
    return parsing.text(row.get("AcctNum")) or str(row.get("Id") or "")


def account_record(row):
    number = account_number(row)
    if not number:
        raise DataError("QuickBooks sent an account without a number or an id.")
    return AccountRecord(number=number, name=row.get("FullyQualifiedName") or row.get("Name") or number,
                         kind=CLASSIFICATION_KINDS.get(row.get("Classification"), "other"),
                         source_id=str(row.get("Id")))


def fiscal_years(company_info, start, end):
    """The fiscal years overlapping ``start``..``end`` from ``FiscalYearStartMonth``."""
    month_name = company_info.get("FiscalYearStartMonth") or "January"
    if month_name not in MONTHS:
        raise DataError(f"QuickBooks sent a fiscal year start month Firmsync does not know ({month_name!r}).")
    month = MONTHS.index(month_name) + 1
    first = date(start.year if start.month >= month else start.year - 1, month, 1)
    years = []
    while first <= end:
        following = date(first.year + 1, month, 1)
        years.append(FiscalYearRecord(start=first, end=following - timedelta(days=1)))
        first = following
    return years


def fault_errors(body):
    """The ``Error`` list of an Intuit fault body."""
    if not isinstance(body, dict):
        return []
    # a 401 answers a lowercase fault.error[] (https://developer.intuit.com/app/developer/qbo/docs/develop/troubleshooting/error-codes)
    fault = body.get("Fault") or body.get("fault") or {}
    errors = fault.get("Error") or fault.get("error") or [] if isinstance(fault, dict) else []
    return [e for e in errors if isinstance(e, dict)]


#: Intuit fault codes -> what they mean for an accountant
FAULT_MESSAGES = {
    "3200": "the sign-in of this dossier's QuickBooks company has expired or was revoked",
    "3100": "the QuickBooks company no longer lets Firmsync's app read its data",
    "120": "the QuickBooks user who connected the dossier may not read the books (an administrator is needed)",
    "610": "the requested record does not exist (any more) in this QuickBooks company",
    "3001": "too many requests for this QuickBooks company; Intuit asks to wait a minute",
    "3003": "the QuickBooks company's monthly API quota is used up",
    "6000": "QuickBooks refused the request for a business reason",
}


def fault_text(errors):
    """What the first fault error says, in words for an accountant (None when it says nothing)."""
    if not errors:
        return None
    error = errors[0]
    known = FAULT_MESSAGES.get(str(error.get("code") or "").lstrip("0"))
    if known:
        return known
    text = str(error.get("Detail") or error.get("detail") or error.get("Message") or error.get("message") or "")
    return text.strip()[:200] or None


def fault_message(response):
    """An Intuit fault answer -> what QuickBooks says (None when it says nothing)."""
    try:
        return fault_text(fault_errors(response.json()))
    except ValueError:
        return None


#: English titles -> keys, the last resort: titles are localized and may be empty
TITLE_KEYS = {"Date": "tx_date", "Transaction Type": "txn_type", "Num": "doc_num", "Memo/Description": "memo",
              "Debit": "debt_amt", "Credit": "credit_amt"}
#: a column key (``debt_amt``), not a ColumnTypeEnum value (``Money``, ``Account``)
COLUMN_KEY = re.compile(r"^[a-z][a-z0-9_]*$")


def report_columns(report):
    return (report.get("Columns") or {}).get("Column") or []


def column_keys(report):
    """The report's column keys in order: ``MetaData`` ``ColKey``, else a key in ``ColType``, else the title."""
    keys = []
    for column in report_columns(report):
        meta = {m.get("Name"): m.get("Value") for m in column.get("MetaData") or []}
        kind, title = str(column.get("ColType") or ""), parsing.text(column.get("ColTitle"))
        # older answers: the key only in ColType, no MetaData (https://developer.intuit.com/app/developer/qbo/docs/api/accounting/report-entities/generalledger)
        keys.append(meta.get("ColKey") or (kind if COLUMN_KEY.match(kind) else "") or TITLE_KEYS.get(title)
                    or title or kind)
    return keys


def report_rows(rows, account_id=None):
    """Walk a report's nested ``Rows``: ``(section account id, row)`` for every data row."""
    for row in (rows or {}).get("Row") or []:
        header = (row.get("Header") or {}).get("ColData") or []
        section_account = header[0].get("id") if header and header[0].get("id") else account_id
        if row.get("ColData"):
            yield section_account, row
        if row.get("Rows"):
            yield from report_rows(row["Rows"], section_account)


def trial_balance(report, period_end, accounts):
    """``reports/TrialBalance`` -> one :class:`BalanceRecord` per account; checks that it balances.

    ``accounts`` maps the account Id to its :class:`AccountRecord`. The report runs from the
    fiscal year's start: revenue and expense rows are year to date (``ytd``), balance sheet
    rows hold everything since the company started (``closing``).
    """
    keys = column_keys(report)
    # columns Account, Money, Money; localized titles (https://developer.intuit.com/app/developer/qbo/docs/api/accounting/report-entities/trialbalance)
    money = [at for at, column in enumerate(report_columns(report)) if column.get("ColType") == "Money"]
    debit_at, credit_at = money if len(money) == 2 else (1, 2)
    debit_at = keys.index("debt_amt") if "debt_amt" in keys else debit_at
    credit_at = keys.index("credit_amt") if "credit_amt" in keys else credit_at
    records, debits, credits = {}, Decimal(0), Decimal(0)
    for _, row in report_rows(report.get("Rows")):
        cells = row["ColData"]
        account_id = cells[0].get("id")
        if not account_id:
            continue  # totals
        debit = parse_amount(cells[debit_at].get("value") if len(cells) > debit_at else "", "debit")
        credit = parse_amount(cells[credit_at].get("value") if len(cells) > credit_at else "", "credit")
        debits, credits = debits + debit, credits + credit
        account = accounts.get(str(account_id))
        number = account.number if account else str(account_id)
        basis = "closing" if (account is None or account.kind in BALANCE_SHEET_KINDS) else "ytd"
        previous = records[number].amount if number in records else 0
        records[number] = BalanceRecord(account=number, period_end=period_end, amount=debit - credit + previous,
                                        basis=basis)
    if debits != credits:
        raise DataError(f"QuickBooks' trial balance at {period_end.isoformat()} does not balance "
                        f"(debit {debits}, credit {credits}); nothing was saved.")
    return list(records.values())


def ledger_lines(report, accounts):
    """``reports/GeneralLedger`` -> :class:`LedgerLineRecord` per posting (rows without a transaction are skipped).

    The source id is ``<entity>:<transaction id>:<n>``, ``n`` counting the transaction's
    rows in report order: the report has no line ids, and a transaction lies in one period.
    """
    keys = column_keys(report)
    missing = [key for key in ("tx_date", "txn_type", "debt_amt", "credit_amt") if key not in keys]
    if missing:
        raise DataError(f"QuickBooks' general ledger lacks the column(s) {', '.join(missing)}.")
    at = {key: keys.index(key) for key in keys}
    counts = defaultdict(int)
    for account_id, row in report_rows(report.get("Rows")):
        cells = row["ColData"]

        def cell(key, name="value"):
            return cells[at[key]].get(name) if key in at and at[key] < len(cells) else None

        txn_id, txn_type = cell("txn_type", "id"), cell("txn_type") or ""
        if not txn_id or not account_id:
            continue  # beginning balances and totals
        entity = ENTITY_OF_TXN_TYPE.get(txn_type, txn_type.replace(" ", ""))
        counts[(entity, txn_id)] += 1
        account = accounts.get(str(account_id))
        yield LedgerLineRecord(
            source_id=f"{entity}:{txn_id}:{counts[(entity, txn_id)]}",
            booking_date=parse_date(cell("tx_date"), "transaction date"),
            account=account.number if account else str(account_id),
            amount=parse_amount(cell("debt_amt"), "debit") - parse_amount(cell("credit_amt"), "credit"),
            description=cell("memo") or "",
            reference=cell("doc_num") or "",
            journal=txn_type,
        )


def cdc_entities(payload):
    """``(entity name, entity)`` of every object in a ``/cdc`` answer."""
    for response in payload.get("CDCResponse") or []:
        for query in response.get("QueryResponse") or []:
            for name, objects in query.items():
                if isinstance(objects, list):
                    for obj in objects:
                        if isinstance(obj, dict) and obj.get("Id"):
                            yield name, obj


# --------------------------------------------------------------------------------------
# Streams
# --------------------------------------------------------------------------------------


class FiscalYears(Stream):
    name, record_type, primary_key = "fiscal_years", FiscalYearRecord, "start"

    def records(self, state, window):
        yield from self.connector.years(window)


class Accounts(Stream):
    name, record_type, primary_key, paginator = "accounts", AccountRecord, "number", pagination.offsets

    def records(self, state, window):
        yield from self.connector.accounts_by_id.values()


class Balances(Stream):
    name, record_type = "balances", BalanceRecord

    def records(self, state, window):
        qbo = self.connector
        accounts, (info, _) = qbo.accounts_by_id, qbo.company
        for period_end in qbo.period_ends(window):
            year = fiscal_years(info, period_end, period_end)[0]
            report = qbo.get("reports/TrialBalance", {
                "start_date": year.start.isoformat(), "end_date": period_end.isoformat(),
                "accounting_method": qbo.accounting_method})
            yield from trial_balance(report, period_end, accounts)


class LedgerLines(Stream):
    """The general ledger of each month; with a bookmark younger than CDC's window, only the months changed since.

    Bookmark ``{"since": <QuickBooks' clock when the read started, ISO>}``; an older (or no)
    bookmark means a full re-read of the window.
    """

    name, record_type, primary_key, replication_key = "ledger_lines", LedgerLineRecord, "source_id", "since"

    def records(self, state, window):
        qbo = self.connector
        _, now = qbo.company
        since = qbo.fresh_bookmark(state.bookmark, now)
        periods = [(end.replace(day=1), end) for end in qbo.period_ends(window)]
        if since is not None:
            payload, now = qbo.changes(since)
            months = {parse_date(obj["TxnDate"], "transaction date").replace(day=1)
                      for _, obj in cdc_entities(payload) if obj.get("status") != "Deleted" and obj.get("TxnDate")}
            periods = [(start, end) for start, end in periods if start in months]
        accounts, counts = qbo.accounts_by_id, qbo.line_counts
        counts.clear()
        for start, end in periods:
            report = qbo.get("reports/GeneralLedger", {
                "start_date": start.isoformat(), "end_date": end.isoformat(), "columns": ",".join(LEDGER_COLUMNS),
                "accounting_method": qbo.accounting_method, "sort_by": "tx_date"})
            for line in ledger_lines(report, accounts):
                entity, txn, n = line.source_id.rsplit(":", 2)
                counts[(entity, txn)] = max(int(n), counts.get((entity, txn), 0))
                yield line
        state.advance({"since": now.isoformat()})


class Deleted(Stream):
    """Lines of transactions deleted in QuickBooks (CDC ``status: Deleted``) or shortened since the bookmark.

    Without a bookmark (first sync) nothing was stored yet, so nothing is deleted; a bookmark
    older than CDC's 30 days cannot see deletes and starts again from now.
    """

    name, record_type, primary_key, replication_key = "deleted", DeletedRecord, "source_id", "since"

    def records(self, state, window):
        qbo = self.connector
        _, now = qbo.company
        since = qbo.fresh_bookmark(state.bookmark, now)
        if since is not None:
            payload, now = qbo.changes(since)
            for entity, obj in cdc_entities(payload):
                key = (entity, str(obj["Id"]))
                if obj.get("status") == "Deleted":
                    first = 1
                elif key in qbo.line_counts:
                    first = qbo.line_counts[key] + 1  # a changed transaction may have lost lines
                else:
                    continue
                for n in range(first, MAX_LINES_PER_TRANSACTION + 1):
                    yield DeletedRecord(source_id=f"{entity}:{obj['Id']}:{n}")
        state.advance({"since": now.isoformat()})


# --------------------------------------------------------------------------------------
# Connector
# --------------------------------------------------------------------------------------


class QuickBooks(Connector):
    spec = ConnectorSpec(
        key="quickbooks",
        display_name=PACKAGE,
        kind=ACCOUNTING,
        level=DOSSIER,
        auth=QBO_AUTH,
        config_schema=QuickBooksConfig,
        api_version=f"v3 (minor version {MINOR_VERSION})",
        docs_url=DOCS_URL,
        # 500 a minute per realm, at most 10 requests in flight per realm and app
        # (https://blogs.intuit.com/2016/08/08/idg-concurrent-api-use-changes-coming-soon/)
        rate_budget=RateBudget(per_minute=500, concurrency=10, per="tenant"),
        reference_label="company",
        vendor_hosts=("*.intuit.com",),
        sandbox_config={"client_id": "qbo-sandbox-client", "client_secret": "qbo-sandbox-secret",
                        "base_url": "{sandbox}/quickbooks/api/v3/company", "oauth_url": "{sandbox}/quickbooks"},
    )
    streams = (FiscalYears, Accounts, Balances, LedgerLines, Deleted)

    page_size = QUERY_PAGE
    error_message = staticmethod(fault_message)

    @classmethod
    def oauth_endpoints(cls, config):
        """Intuit's endpoints, or a stand-in's at ``oauth_url`` (the sandbox): ``<oauth_url>/connect/oauth2``
        and ``<oauth_url>/oauth2/v1/tokens/bearer``."""
        root = (config.get("oauth_url") or "").rstrip("/")
        if not root:
            return cls.spec.auth
        return dataclasses.replace(cls.spec.auth, authorize_url=f"{root}/connect/oauth2",
                                   token_url=f"{root}/oauth2/v1/tokens/bearer")

    @classmethod
    def grant_details(cls, args):
        # the consent callback names the company in realmId
        # (https://developer.intuit.com/app/developer/qbo/docs/develop/authentication-and-authorization/oauth-2.0)
        realm = parsing.text((args or {}).get("realmId"))
        if not realm.isdigit():
            raise AuthError("QuickBooks did not say which company was connected. Please connect again.")
        return {"realm_id": realm}

    def interpret_response(self, response):
        # some faults come with HTTP 200 (https://developer.intuit.com/app/developer/qbo/docs/develop/troubleshooting/error-codes)
        if response.status_code >= 300 or not re.search(rb'"[Ff]ault"', response.content or b""):
            return None
        try:
            errors = fault_errors(response.json())
        except ValueError:
            return None
        if not errors:
            return None
        return vendor_error(self.spec.display_name, DataError, fault_text(errors),
                            detail=str(errors[0].get("code") or ""))

    @property
    def base_url(self):
        return (self.config.get("base_url") or API_URL).rstrip("/")

    @property
    def accounting_method(self):
        return self.config.get("accounting_method") or "Accrual"

    # -- calls ---------------------------------------------------------------------------
    def realms(self):
        """The companies recorded in the credentials (the callback's ``realmId``)."""
        found = [str(r) for r in (self.credentials.get("realm_ids") or []) if r]
        if self.credentials.get("realm_id"):
            found.insert(0, str(self.credentials["realm_id"]))
        return list(dict.fromkeys(found))

    def realm(self):
        realm = str(self.reference or "").strip() or next(iter(self.realms()), "")
        if not realm:
            raise ConfigError("This dossier is not linked to a QuickBooks company yet.")
        return realm

    def get(self, path, params=None, realm=None):
        """GET ``<base>/<realm>/<path>`` pinned to :data:`MINOR_VERSION`."""
        return self.get_json(f"{self.base_url}/{realm or self.realm()}/{path}",
                             params={**(params or {}), "minorversion": MINOR_VERSION},
                             headers={"Accept": "application/json"})

    def query(self, statement):
        """Every entity a ``select`` statement finds, :attr:`page_size` a page."""
        def fetch(position, size):
            body = self.get("query", {"query": f"{statement} STARTPOSITION {position} MAXRESULTS {size}"})
            result = body.get("QueryResponse") or {}
            return next((v for k, v in result.items() if isinstance(v, list) and k not in ("Warnings", "Fault")), [])

        return pagination.offsets(fetch, page_size=self.page_size, start=1, package=self.spec.display_name)

    def company_info(self, realm=None):
        """``(CompanyInfo, server time)`` of the realm; the answer's ``time`` is QuickBooks' clock."""
        realm = realm or self.realm()
        body = self.get(f"companyinfo/{realm}", realm=realm)
        info = body.get("CompanyInfo")
        if not isinstance(info, dict):
            raise DataError("QuickBooks sent no company details.")
        return info, parse_time(body["time"], "server time") if body.get("time") else datetime.now(timezone.utc)

    def changes(self, since):
        """``(payload, server time)`` of ``/cdc`` for the transaction entities changed since ``since``."""
        body = self.get("cdc", {"entities": ",".join(CDC_ENTITIES), "changedSince": since.isoformat()})
        now = parse_time(body["time"], "server time") if body.get("time") else datetime.now(timezone.utc)
        return body, now

    # -- state shared by the streams of one connector -----------------------------------
    @cached_property
    def company(self):
        return self.company_info()

    @cached_property
    def accounts_by_id(self):
        return {record.source_id: record for record in
                (account_record(row) for row in self.query("select * from Account where Active IN (true, false)"))}

    @cached_property
    def line_counts(self):
        """``(entity, transaction id) -> lines`` read by ``ledger_lines`` in this run (``deleted`` drops the rest)."""
        return {}

    def years(self, window):
        info, now = self.company
        start = window.start or parse_date(info.get("CompanyStartDate") or now.date().isoformat(), "company start date")
        return fiscal_years(info, start, window.end or now.date())

    def period_ends(self, window):
        """The window's period ends, else every month end of the fiscal years in the window."""
        if window.period_ends:
            return sorted(window.period_ends)
        ends = []
        for year in self.years(window):
            month = year.start
            while month <= year.end:
                following = date(month.year + month.month // 12, month.month % 12 + 1, 1)
                ends.append(following - timedelta(days=1))
                month = following
        return ends

    def fresh_bookmark(self, bookmark, now):
        """The bookmark's time when CDC can still look back to it, else None."""
        since = (bookmark or {}).get("since")
        if not since:
            return None
        since = parse_time(since, "bookmark")
        return since if now - since < timedelta(days=CDC_DAYS) else None

    # -- contract ------------------------------------------------------------------------
    def list_references(self):
        references = []
        for realm in self.realms():
            info, _ = self.company_info(realm)
            references.append(CompanyRef(reference=realm, name=info.get("CompanyName") or info.get("LegalName") or realm,
                                         details={key: info[name] for key, name in (
                                             ("country", "Country"), ("legal_name", "LegalName"),
                                             ("fiscal_year_start_month", "FiscalYearStartMonth")) if info.get(name)}))
        return references

    def check(self):
        if not self.reference and not self.realms():
            raise NotFoundError("QuickBooks did not say which company was connected. Connect the dossier again.")
        info, _ = self.company_info()
        return CheckResult(ok=True, message=f"Connected to QuickBooks company {info.get('CompanyName') or self.realm()}.",
                           references=max(1, len(self.realms())))
