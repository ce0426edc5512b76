"""Demo Books: Firmsync's own test package, served by the sandbox (``connectors/demo/emulator.py``).

It exercises every part of the contract (API key auth, company listing, fiscal years,
accounts, period balances, paged incremental ledger lines, a delete feed) so the engine,
the console and the benchmarks can run end to end without any vendor.
"""
from datetime import date
from decimal import Decimal
from urllib.parse import urlencode

from marshmallow import Schema, fields

from connectors import pagination, parsing
from connectors.auth import ApiKey
from connectors.base import (
    ACCOUNTING,
    FIRM,
    AccountRecord,
    BalanceRecord,
    CheckResult,
    CompanyRef,
    ConfigError,
    Connector,
    ConnectorSpec,
    DeletedRecord,
    FiscalYearRecord,
    LedgerLineRecord,
    RateBudget,
    Stream,
)

PAGE_SIZE = 500
KINDS = {"asset", "liability", "equity", "income", "expense"}


class DemoConfig(Schema):
    base_url = fields.Url(required=True, require_tld=False, metadata={"label": "Base URL"})
    api_key = fields.String(required=True, metadata={"secret": True, "label": "API key"})


# -- streams ---------------------------------------------------------------------------------

class FiscalYears(Stream):
    name, record_type, primary_key = "fiscal_years", FiscalYearRecord, "start"

    def records(self, state, window):
        for year in self.connector.fiscal_years():
            if (window.end is None or year.start <= window.end) and (window.start is None or year.end >= window.start):
                yield year


class Accounts(Stream):
    name, record_type, primary_key, paginator = "accounts", AccountRecord, "number", pagination.page_numbers

    def records(self, state, window):
        books = self.connector

        def fetch(page):
            return books.get(books.company_path("/accounts"), page=page, per_page=PAGE_SIZE)["accounts"]

        for row in pagination.page_numbers(fetch, page_size=PAGE_SIZE, package=books.name):
            kind = row.get("type") if row.get("type") in KINDS else "other"
            yield AccountRecord(number=str(row["number"]), name=row["name"], kind=kind, source_id=row.get("id"))


class Balances(Stream):
    name, record_type, paginator = "balances", BalanceRecord, pagination.offsets

    def records(self, state, window):
        books = self.connector
        start, end = window.start, window.end
        if window.period_ends:
            start, end = start or min(window.period_ends).replace(day=1), end or max(window.period_ends)
        if start is None or end is None:
            years = books.fiscal_years()
            start, end = start or years[0].start, end or years[-1].end

        def fetch(offset, limit):
            return books.get(books.company_path("/balances"), **{"from": start.isoformat(), "to": end.isoformat(),
                                                                 "offset": offset, "limit": limit})["balances"]

        for row in pagination.offsets(fetch, page_size=PAGE_SIZE, package=books.name):
            yield BalanceRecord(account=str(row["account"]), period_end=date.fromisoformat(row["period_end"]),
                                amount=Decimal(row["movement"]), basis="movement")


class LedgerLines(Stream):
    name, record_type, primary_key, replication_key = "ledger_lines", LedgerLineRecord, "source_id", "modified_at"
    paginator = pagination.cursor

    def records(self, state, window):
        books = self.connector
        bookmark = state.bookmark or {}
        state.advance(state.bookmark)

        def fetch(cursor):
            params = {"limit": PAGE_SIZE}
            if cursor:
                params["cursor"] = cursor
            elif bookmark:
                params.update(modified_since=bookmark["modified_at"], after_id=bookmark["id"])
            body = books.get(books.company_path("/ledger-lines"), **params)
            return body["lines"], body.get("next_cursor")

        for line in pagination.cursor(fetch, package=books.name):
            yield LedgerLineRecord(
                source_id=str(line["id"]),
                booking_date=date.fromisoformat(line["date"]),
                booking_period_end=date.fromisoformat(line["period_end"]),
                account=str(line["account"]),
                amount=parsing.amount(line["amount"], "ledger amount", books.name),
                description=line.get("description") or "",
                reference=line.get("reference") or "",
                journal=line.get("journal") or "",
                dimensions=line.get("dimensions") or {},
                modified_at=parsing.moment(line["modified_at"], "modification time", books.name),
            )
            state.advance({"modified_at": line["modified_at"], "id": line["id"]})


class Deleted(Stream):
    name, record_type, primary_key, replication_key = "deleted", DeletedRecord, "source_id", "deleted_at"
    paginator = pagination.next_link

    def records(self, state, window):
        books = self.connector
        bookmark = state.bookmark or {}
        state.advance(state.bookmark)
        params = {"limit": PAGE_SIZE}
        if bookmark:
            params.update(since=bookmark["deleted_at"], after_id=bookmark["id"])
        first = books.url(books.company_path("/deleted-lines")) + "?" + urlencode(params)

        def fetch(url):
            body = books.get_json(url)  # the next link carries its own query
            return body["deleted"], body.get("next")

        for row in pagination.next_link(fetch, first, package=books.name):
            yield DeletedRecord(source_id=str(row["id"]))
            state.advance({"deleted_at": row["deleted_at"], "id": row["id"]})


# -- connector -------------------------------------------------------------------------------

class DemoBooks(Connector):
    spec = ConnectorSpec(
        key="demo",
        display_name="Demo Books (sandbox)",
        kind=ACCOUNTING,
        level=FIRM,
        auth=ApiKey(header="X-Api-Key", field="api_key"),
        config_schema=DemoConfig,
        api_version="1",
        docs_url="https://github.com/firmsync/firmsync/blob/main/connectors/demo/README.md",
        rate_budget=RateBudget(per_minute=600, per_day=100_000, concurrency=4, per="tenant"),
        reference_label="company",
        sandbox_config={"base_url": "{sandbox}/demo", "api_key": "demo-key"},
    )
    streams = (FiscalYears, Accounts, Balances, LedgerLines, Deleted)
    name = "Demo Books"

    def url(self, path):
        return f"{self.base_url}/api/v1{path}"

    def get(self, path, **params):
        return self.get_json(self.url(path), params=params or None)

    def company_path(self, path=""):
        if not self.reference:
            raise ConfigError("This dossier is not linked to a Demo Books company yet.")
        return f"/companies/{self.reference}{path}"

    @staticmethod
    def error_message(response):
        # the sandbox answers {"error": code, "message": text}
        try:
            return response.json().get("message")
        except ValueError:
            return None

    def check(self):
        references = self.list_references()
        return CheckResult(True, f"Connected to {self.name}: {len(references)} companies available.",
                           references=len(references))

    def list_references(self):
        return [CompanyRef(c["id"], c["name"], {"vat_number": c.get("vat_number"), "currency": c.get("currency"),
                                                "country": c.get("country")})
                for c in self.get("/companies")["companies"]]

    def fiscal_years(self):
        return [FiscalYearRecord(date.fromisoformat(y["start"]), date.fromisoformat(y["end"]))
                for y in self.get(self.company_path("/fiscal-years"))["fiscal_years"]]
