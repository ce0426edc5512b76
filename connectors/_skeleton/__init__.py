"""Skeleton Books: copy this folder to start a package (docs/connectors.md, "Adding a package").

Rename the folder (``connectors/<key>/``), the classes and the spec's key; replace the
emulator's answers with the vendor's documented ones. The leading underscore keeps this
folder out of the registry: a copy without it is a package.

Vendor docs: https://example.com/skeleton-books/api (one line and a link per quirk below).
"""
from marshmallow import Schema, fields

from connectors import pagination, parsing
from connectors.auth import ApiKey
from connectors.base import (
    ACCOUNTING, FIRM, AccountRecord, CheckResult, CompanyRef, ConfigError, Connector, ConnectorSpec, LedgerLineRecord,
    RateBudget, Stream,
)

PAGE_SIZE = 100


class SkeletonConfig(Schema):
    base_url = fields.Url(required=True, require_tld=False, metadata={"label": "API URL"})
    api_key = fields.String(required=True, metadata={"secret": True, "label": "API key"})


class Accounts(Stream):
    name, record_type, primary_key, paginator = "accounts", AccountRecord, "number", pagination.page_numbers

    def records(self, state, window):
        books = self.connector

        def fetch(page):
            return books.get_json(books.company_url("/accounts"), params={"page": page, "size": PAGE_SIZE})["items"]

        for row in pagination.page_numbers(fetch, page_size=PAGE_SIZE, package=books.spec.display_name):
            # account codes arrive space-padded (example quirk: https://example.com/skeleton-books/api#accounts)
            yield AccountRecord(number=parsing.text(row["code"]), name=parsing.text(row["name"]), kind=row["kind"])


class LedgerLines(Stream):
    name, record_type, primary_key, replication_key = "ledger_lines", LedgerLineRecord, "source_id", "changed_at"
    paginator = pagination.cursor

    def records(self, state, window):
        books, package = self.connector, self.connector.spec.display_name
        bookmark = state.bookmark or {}

        def fetch(cursor):
            params = {"cursor": cursor} if cursor else {}
            if not cursor and bookmark:
                params = {"changed_since": bookmark["changed_at"], "after_id": bookmark["id"]}
            body = books.get_json(books.company_url("/lines"), params=params)
            return body["items"], body.get("next")

        for row in pagination.cursor(fetch, package=package):
            yield LedgerLineRecord(
                source_id=str(row["id"]), booking_date=parsing.day(row["date"], "booking date", package),
                account=parsing.text(row["account"]), amount=parsing.amount(row["amount"], "amount", package),
                description=parsing.text(row.get("text")), modified_at=parsing.moment(row["changed_at"], "change", package),
            )
            state.advance({"changed_at": row["changed_at"], "id": row["id"]})


class SkeletonBooks(Connector):
    spec = ConnectorSpec(
        key="skeleton",
        display_name="Skeleton Books",
        kind=ACCOUNTING,
        level=FIRM,
        auth=ApiKey(header="X-Api-Key", field="api_key"),
        config_schema=SkeletonConfig,
        api_version="1",
        docs_url="https://example.com/skeleton-books/api",
        rate_budget=RateBudget(per_minute=60, per="connection"),
        sandbox_config={"base_url": "{sandbox}/skeleton", "api_key": "demo-key"},
    )
    streams = (Accounts, LedgerLines)

    def company_url(self, path):
        if not self.reference:
            raise ConfigError("This dossier is not linked to a Skeleton Books company yet.")
        return f"{self.base_url}/companies/{self.reference}{path}"

    def list_references(self):
        return [CompanyRef(row["id"], parsing.text(row["name"])) for row in self.get_json(f"{self.base_url}/companies")]

    def check(self):
        count = len(self.list_references())
        return CheckResult(True, f"Connected to Skeleton Books: {count} companies available.", references=count)
