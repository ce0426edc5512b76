"""Demo Books: Firmsync's own test package, served by the sandbox (``connectors/demo/emulator.py``).

It exercises every part of the contract (API key auth, company listing, fiscal years,
accounts, period balances, paged incremental ledger lines, a delete feed) so the engine,
the console and the benchmarks can run end to end without any vendor.
"""
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from urllib.parse import urlencode

from marshmallow import Schema, fields

from connectors import pagination
from connectors.base import (
    ACCOUNTING,
    AUTH_API_KEY,
    FIRM,
    AccountRecord,
    BalanceRecord,
    CheckResult,
    CompanyRef,
    ConfigError,
    Connector,
    ConnectorSpec,
    DataError,
    DeletedRecord,
    FiscalYearRecord,
    LedgerLineRecord,
    RateBudget,
    StreamDef,
)
from connectors.oauth import api_key_header

PAGE_SIZE = 500
KINDS = {"asset", "liability", "equity", "income", "expense"}


class DemoConfig(Schema):
    base_url = fields.Url(required=True, require_tld=False, metadata={"label": "Base URL"})
    api_key = fields.String(required=True, metadata={"secret": True, "label": "API key"})


class DemoBooks(Connector):
    spec = ConnectorSpec(
        key="demo",
        display_name="Demo Books (sandbox)",
        kind=ACCOUNTING,
        level=FIRM,
        auth=AUTH_API_KEY,
        config_schema=DemoConfig,
        api_version="1",
        docs_url="https://github.com/firmsync/firmsync/blob/main/docs/connectors.md#demo-books",
        rate_budget=RateBudget(per_minute=600, per_day=100_000, concurrency=4, per="tenant"),
        reference_label="company",
    )
    name = "Demo Books"

    # -- plumbing ----------------------------------------------------------------------
    def auth(self):
        return api_key_header("X-Api-Key", self.config["api_key"])

    def url(self, path):
        return f"{self.base_url}/api/v1{path}"

    def get(self, path, **params):
        return self.http.get_json(self.url(path), params=params or None, auth=self.auth())

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

    # -- contract ----------------------------------------------------------------------
    def check(self):
        references = self.list_references()
        return CheckResult(True, f"Connected to {self.name}: {len(references)} companies available.",
                           references=len(references))

    def list_references(self):
        return [CompanyRef(c["id"], c["name"], {"vat_number": c.get("vat_number"), "currency": c.get("currency"),
                                                "country": c.get("country")})
                for c in self.get("/companies")["companies"]]

    def streams(self):
        return [
            StreamDef("fiscal_years", FiscalYearRecord, primary_key="start"),
            StreamDef("accounts", AccountRecord, primary_key="number"),
            StreamDef("balances", BalanceRecord),
            StreamDef("ledger_lines", LedgerLineRecord, incremental=True, primary_key="source_id"),
            StreamDef("deleted", DeletedRecord, incremental=True, primary_key="source_id"),
        ]

    def read(self, stream, state, window):
        readers = {"fiscal_years": self.read_fiscal_years, "accounts": self.read_accounts,
                   "balances": self.read_balances, "ledger_lines": self.read_ledger_lines,
                   "deleted": self.read_deleted}
        if stream not in readers:
            raise ConfigError(f"{self.name} has no stream called {stream!r}.")
        try:
            yield from readers[stream](state, window)
        except (KeyError, TypeError, ValueError, InvalidOperation) as exc:
            raise DataError(f"{self.name} sent {stream.replace('_', ' ')} Firmsync could not read.",
                            detail=f"{type(exc).__name__}: {exc}"[:200]) from None

    # -- streams -----------------------------------------------------------------------
    def fiscal_years(self):
        return [FiscalYearRecord(date.fromisoformat(y["start"]), date.fromisoformat(y["end"]))
                for y in self.get(self.company_path("/fiscal-years"))["fiscal_years"]]

    def read_fiscal_years(self, state, window):
        for year in self.fiscal_years():
            if (window.end is None or year.start <= window.end) and (window.start is None or year.end >= window.start):
                yield year

    def read_accounts(self, state, window):
        def fetch(page):
            return self.get(self.company_path("/accounts"), page=page, per_page=PAGE_SIZE)["accounts"]

        for row in pagination.page_numbers(fetch, page_size=PAGE_SIZE, package=self.name):
            kind = row.get("type") if row.get("type") in KINDS else "other"
            yield AccountRecord(number=str(row["number"]), name=row["name"], kind=kind, source_id=row.get("id"))

    def read_balances(self, state, window):
        start, end = window.start, window.end
        if window.period_ends:
            start, end = start or min(window.period_ends).replace(day=1), end or max(window.period_ends)
        if start is None or end is None:
            years = self.fiscal_years()
            start, end = start or years[0].start, end or years[-1].end

        def fetch(offset, limit):
            return self.get(self.company_path("/balances"), **{"from": start.isoformat(), "to": end.isoformat(),
                                                               "offset": offset, "limit": limit})["balances"]

        for row in pagination.offsets(fetch, page_size=PAGE_SIZE, package=self.name):
            yield BalanceRecord(account=str(row["account"]), period_end=date.fromisoformat(row["period_end"]),
                                amount=Decimal(row["movement"]), basis="movement")

    def read_ledger_lines(self, state, window):
        bookmark = state.bookmark or {}
        state.advance(state.bookmark)

        def fetch(cursor):
            params = {"limit": PAGE_SIZE}
            if cursor:
                params["cursor"] = cursor
            elif bookmark:
                params.update(modified_since=bookmark["modified_at"], after_id=bookmark["id"])
            body = self.get(self.company_path("/ledger-lines"), **params)
            return body["lines"], body.get("next_cursor")

        for line in pagination.cursor(fetch, package=self.name):
            yield LedgerLineRecord(
                source_id=str(line["id"]),
                booking_date=date.fromisoformat(line["date"]),
                booking_period_end=date.fromisoformat(line["period_end"]),
                account=str(line["account"]),
                amount=Decimal(line["amount"]),
                description=line.get("description") or "",
                reference=line.get("reference") or "",
                journal=line.get("journal") or "",
                dimensions=line.get("dimensions") or {},
                modified_at=datetime.fromisoformat(line["modified_at"].replace("Z", "+00:00")),
            )
            state.advance({"modified_at": line["modified_at"], "id": line["id"]})

    def read_deleted(self, state, window):
        bookmark = state.bookmark or {}
        state.advance(state.bookmark)
        params = {"limit": PAGE_SIZE}
        if bookmark:
            params.update(since=bookmark["deleted_at"], after_id=bookmark["id"])
        first = self.url(self.company_path("/deleted-lines")) + "?" + urlencode(params)

        def fetch(url):
            body = self.http.get_json(url, auth=self.auth())  # the next link carries its own query
            return body["deleted"], body.get("next")

        for row in pagination.next_link(fetch, first, package=self.name):
            yield DeletedRecord(source_id=str(row["id"]))
            state.advance({"deleted_at": row["deleted_at"], "id": row["id"]})
