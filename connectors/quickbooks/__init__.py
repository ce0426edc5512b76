"""QuickBooks Online (Intuit Accounting API v3): one dossier, one company (realm).

Docs: https://developer.intuit.com/app/developer/qbo/docs/api/accounting/all-entities/account
Facts: ../shared/docs/CONNECTORS.md section 20; decisions: docs/connectors-quickbooks-economic.md.

The OAuth callback carries the ``realmId`` (the company): the console stores it in the
credentials as ``realm_id`` (see :func:`realm_from_callback`); it is the dossier's reference.
Ledger lines come from the GeneralLedger report (the only read that gives every posting of
every transaction type per account); deletes from the change data capture feed (``/cdc``).
"""
from __future__ import annotations

import dataclasses
import re
from collections import defaultdict
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from functools import cached_property

from marshmallow import Schema, fields

from connectors.base import (
    ACCOUNTING, AUTH_OAUTH2, DOSSIER, AccountRecord, AuthError, BalanceRecord, CheckResult, CompanyRef, ConfigError,
    Connector, ConnectorSpec, DataError, DeletedRecord, FiscalYearRecord, LedgerLineRecord, NotFoundError, OAuthSpec,
    RateBudget, StreamDef, SyncWindow,
)

API_URL = "https://quickbooks.api.intuit.com/v3/company"
DOCS_URL = "https://developer.intuit.com/app/developer/qbo/docs/api/accounting/all-entities/account"
#: the schema version every call pins (Intuit retires older minor versions)
MINOR_VERSION = "75"
#: Intuit answers at most 1,000 entities per query page
QUERY_PAGE = 1000
#: CDC looks back at most 30 days; a bookmark older than this (with a day's margin) means a full re-read
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

QBO_OAUTH = OAuthSpec(
    authorize_url="https://appcenter.intuit.com/connect/oauth2",
    token_url="https://oauth.platform.intuit.com/oauth2/v1/tokens/bearer",
    scopes=("com.intuit.quickbooks.accounting",),
    pkce=False,
    # "the value may change on refresh, so always store the latest" (CONNECTORS.md section 20)
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


def parse_amount(value, what="amount"):
    """A report value (a string; ``""`` is zero) or an entity number -> :class:`Decimal`."""
    if value is None or value == "":
        return Decimal("0")
    try:
        amount = Decimal(str(value).replace(",", "").strip())
    except InvalidOperation:
        raise DataError(f"QuickBooks sent a {what} that is not an amount ({str(value)[:40]!r}).") from None
    if not amount.is_finite():
        raise DataError(f"QuickBooks sent a {what} that is not an amount ({str(value)[:40]!r}).")
    return amount


def parse_date(value, what="date"):
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        raise DataError(f"QuickBooks sent a {what} that is not a date ({str(value)[:40]!r}).") from None


def parse_time(value, what="time"):
    """Intuit's ``2024-02-01T09:30:00-08:00`` -> aware UTC datetime."""
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise DataError(f"QuickBooks sent a {what} that is not a date and time ({str(value)[:40]!r}).") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def account_number(row):
    """The number a dossier uses: ``AcctNum`` when the company numbers its accounts, else the ``Id``."""
    return (row.get("AcctNum") or "").strip() or str(row.get("Id") or "")


def account_record(row):
    """One ``Account`` entity -> :class:`AccountRecord`."""
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
    """The ``Error`` list of an Intuit fault body (``Fault`` or, on 401, ``fault``/``error``)."""
    if not isinstance(body, dict):
        return []
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


def error_message(response):
    """Intuit's fault answers -> what QuickBooks says, in words for an accountant (None when it says nothing)."""
    try:
        body = response.json()
    except ValueError:
        return None
    errors = fault_errors(body)
    if not errors:
        return None
    error = errors[0]
    code = str(error.get("code") or "").lstrip("0")
    known = FAULT_MESSAGES.get(code)
    if known:
        return known
    text = str(error.get("Detail") or error.get("detail") or error.get("Message") or error.get("message") or "")
    return text.strip()[:200] or None


def check_fault(response, body):
    """A fault QuickBooks sends with HTTP 200 is a :class:`DataError`; else ``body``."""
    errors = fault_errors(body)
    if errors:
        text = error_message(response) or "an error without details"
        raise DataError(f"QuickBooks refused a request from Firmsync. QuickBooks says: \u201c{text}\u201d",
                        detail=str(errors[0].get("code") or ""))
    return body


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
        kind, title = str(column.get("ColType") or ""), str(column.get("ColTitle") or "").strip()
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
    fiscal year's start, so revenue and expense rows are year to date (basis ``ytd``) and
    balance sheet rows hold everything since the company started (basis ``closing``).
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


def realm_from_callback(args):
    """The credentials' ``realm_id`` from the OAuth callback's query (``realmId``); AuthError when absent."""
    realm = str((args or {}).get("realmId") or "").strip()
    if not realm.isdigit():
        raise AuthError("QuickBooks did not say which company was connected. Please connect again.")
    return realm


# --------------------------------------------------------------------------------------
# Connector
# --------------------------------------------------------------------------------------


class QuickBooks(Connector):
    spec = ConnectorSpec(
        key="quickbooks",
        display_name="QuickBooks Online",
        kind=ACCOUNTING,
        level=DOSSIER,
        auth=AUTH_OAUTH2,
        config_schema=QuickBooksConfig,
        api_version=f"v3 (minor version {MINOR_VERSION})",
        docs_url=DOCS_URL,
        # 500 a minute per realm; Intuit's 10 a second is held as at most 10 calls in flight
        rate_budget=RateBudget(per_minute=500, concurrency=10, per="tenant"),
        oauth=QBO_OAUTH,
        reference_label="company",
    )

    page_size = QUERY_PAGE

    @classmethod
    def oauth_for(cls, config):
        """The OAuth endpoints for ``config``: Intuit's, or a stand-in's at ``oauth_url`` (the sandbox).

        A stand-in serves ``<oauth_url>/connect/oauth2`` and ``<oauth_url>/oauth2/v1/tokens/bearer``.
        """
        root = (config.get("oauth_url") or "").rstrip("/")
        if not root:
            return cls.spec.oauth
        return dataclasses.replace(cls.spec.oauth, authorize_url=f"{root}/connect/oauth2",
                                   token_url=f"{root}/oauth2/v1/tokens/bearer")

    def token_manager(self, client_id, client_secret):
        manager = super().token_manager(client_id, client_secret)
        manager.oauth = self.oauth_for(self.config)
        return manager

    @cached_property
    def tokens(self):
        return self.token_manager(self.config.get("client_id"), self.config.get("client_secret"))

    @property
    def base_url(self):
        return (self.config.get("base_url") or API_URL).rstrip("/")

    def error_message(self, response):
        return error_message(response)

    # -- HTTP ----------------------------------------------------------------------------
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

    def _headers(self, force_refresh=False):
        return {"Authorization": f"Bearer {self.tokens.access_token(force_refresh=force_refresh)}",
                "Accept": "application/json"}

    def get(self, path, params=None, realm=None):
        """GET ``<base>/<realm>/<path>`` with the minor version; on a 401 renews the token once and retries."""
        url = f"{self.base_url}/{realm or self.realm()}/{path}"
        params = {**(params or {}), "minorversion": MINOR_VERSION}
        try:
            response = self.http.get(url, params=params, headers=self._headers())
        except AuthError:
            response = self.http.get(url, params=params, headers=self._headers(force_refresh=True))
        return check_fault(response, self.http.json_of(response))

    def query(self, statement):
        """Every entity of a ``select`` statement, 1,000 per page (``STARTPOSITION``/``MAXRESULTS``)."""
        position = 1
        while True:
            body = self.get("query", {"query": f"{statement} STARTPOSITION {position} MAXRESULTS {self.page_size}"})
            result = body.get("QueryResponse") or {}
            rows = next((v for k, v in result.items() if isinstance(v, list) and k not in ("Warnings", "Fault")), [])
            yield from rows
            if len(rows) < self.page_size:
                return
            position += len(rows)
            if position > 10_000_000:
                raise DataError("QuickBooks keeps sending pages: the list seems to loop.")

    # -- contract ------------------------------------------------------------------------
    def company_info(self, realm=None):
        """``(CompanyInfo, server time)`` of the realm; the answer's ``time`` is QuickBooks' clock."""
        realm = realm or self.realm()
        body = self.get(f"companyinfo/{realm}", realm=realm)
        info = body.get("CompanyInfo")
        if not isinstance(info, dict):
            raise DataError("QuickBooks sent no company details.")
        return info, parse_time(body["time"], "server time") if body.get("time") else datetime.now(timezone.utc)

    @cached_property
    def _company(self):
        return self.company_info()

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

    def streams(self):
        return [
            StreamDef("fiscal_years", FiscalYearRecord),
            StreamDef("accounts", AccountRecord, primary_key="number"),
            StreamDef("balances", BalanceRecord),
            StreamDef("ledger_lines", LedgerLineRecord, incremental=True, primary_key="source_id"),
            StreamDef("deleted", DeletedRecord, incremental=True, primary_key="source_id"),
        ]

    def read(self, stream, state, window):
        readers = {"fiscal_years": self._fiscal_years, "accounts": self._accounts, "balances": self._balances,
                   "ledger_lines": self._ledger_lines, "deleted": self._deleted}
        if stream not in readers:
            raise ConfigError(f"QuickBooks Online has no stream called {stream!r}.")
        return readers[stream](state, window or SyncWindow())

    # -- streams -------------------------------------------------------------------------
    def _years(self, window):
        info, now = self._company
        start = window.start or parse_date(info.get("CompanyStartDate") or now.date().isoformat(), "company start date")
        return fiscal_years(info, start, window.end or now.date())

    def _fiscal_years(self, state, window):
        yield from self._years(window)

    @cached_property
    def _accounts_by_id(self):
        return {record.source_id: record for record in
                (account_record(row) for row in self.query("select * from Account where Active IN (true, false)"))}

    def _accounts(self, state, window):
        yield from self._accounts_by_id.values()

    def _period_ends(self, window):
        """The window's period ends, else every month end of the fiscal years in the window."""
        if window.period_ends:
            return sorted(window.period_ends)
        ends = []
        for year in self._years(window):
            month = year.start
            while month <= year.end:
                following = date(month.year + month.month // 12, month.month % 12 + 1, 1)
                ends.append(following - timedelta(days=1))
                month = following
        return ends

    def _balances(self, state, window):
        accounts = self._accounts_by_id
        info, _ = self._company
        for period_end in self._period_ends(window):
            year = fiscal_years(info, period_end, period_end)[0]
            report = self.get("reports/TrialBalance", {
                "start_date": year.start.isoformat(), "end_date": period_end.isoformat(),
                "accounting_method": self.config.get("accounting_method") or "Accrual"})
            yield from trial_balance(report, period_end, accounts)

    def _periods(self, window):
        """``(start, end)`` of each month to read the general ledger for."""
        for end in self._period_ends(window):
            yield end.replace(day=1), end

    def _fresh_bookmark(self, bookmark, now):
        since = (bookmark or {}).get("since")
        return parse_time(since) if since and now - parse_time(since) < timedelta(days=CDC_DAYS) else None

    def _changes(self, since):
        """``(payload, server time)`` of ``/cdc`` for the transaction entities changed since ``since``."""
        body = self.get("cdc", {"entities": ",".join(CDC_ENTITIES), "changedSince": since.isoformat()})
        now = parse_time(body["time"], "server time") if body.get("time") else datetime.now(timezone.utc)
        return body, now

    def _ledger_lines(self, state, window):
        """The general ledger of each month; with a bookmark younger than CDC's window, only the months changed since.

        The bookmark is ``{"since": <QuickBooks' clock when the read started, ISO>}``; an
        older (or no) bookmark means a full re-read of the window.
        """
        _, now = self._company
        since = self._fresh_bookmark(state.bookmark, now)
        periods = list(self._periods(window))
        if since is not None:
            payload, now = self._changes(since)
            months = {parse_date(obj["TxnDate"]).replace(day=1) for _, obj in cdc_entities(payload)
                      if obj.get("status") != "Deleted" and obj.get("TxnDate")}
            periods = [(start, end) for start, end in periods if start.replace(day=1) in months]
        accounts = self._accounts_by_id
        self._line_counts = {}
        for start, end in periods:
            report = self.get("reports/GeneralLedger", {
                "start_date": start.isoformat(), "end_date": end.isoformat(), "columns": ",".join(LEDGER_COLUMNS),
                "accounting_method": self.config.get("accounting_method") or "Accrual", "sort_by": "tx_date"})
            for line in ledger_lines(report, accounts):
                entity, txn, n = line.source_id.rsplit(":", 2)
                self._line_counts[(entity, txn)] = max(int(n), self._line_counts.get((entity, txn), 0))
                yield line
        state.advance({"since": now.isoformat()})

    def _deleted(self, state, window):
        """Lines of transactions deleted in QuickBooks (CDC ``status: Deleted``) or shortened since the bookmark.

        Without a bookmark (first sync) nothing was stored yet, so nothing is deleted; a
        bookmark older than CDC's 30 days cannot see deletes and starts again from now.
        """
        _, now = self._company
        since = self._fresh_bookmark(state.bookmark, now)
        if since is not None:
            payload, now = self._changes(since)
            read_counts = getattr(self, "_line_counts", {})
            for entity, obj in cdc_entities(payload):
                key = (entity, str(obj["Id"]))
                if obj.get("status") == "Deleted":
                    first = 1
                elif key in read_counts:
                    first = read_counts[key] + 1  # a changed transaction may have lost lines
                else:
                    continue
                for n in range(first, MAX_LINES_PER_TRANSACTION + 1):
                    yield DeletedRecord(source_id=f"{entity}:{obj['Id']}:{n}")
        state.advance({"since": now.isoformat()})
