"""Horus: firm-level package built from public information (docs/connectors.md, "Undocumented packages";
notes in README.md).

OAuth2 authorisation code against the customer's own API host: each fiduciary or SME running Horus
has its own database and API endpoint, stored on the connection as its API URL (Caseware's link keeps
exactly a refresh token and that company URL); the consent and token endpoints are joined to it. The
references are the ``folders``; chart from ``accounts``, ledger lines from ``accounthistories`` and
fiscal years from ``financialyears`` (each filtered by folder, paged); balances are aggregated from the
lines by the engine.

Every vendor shape is an entry of :data:`assumptions.ASSUMPTIONS`, read through
:meth:`Connector.assumed`; an answer they do not cover fails the run naming the field.

Vendor docs: given by Horus with a client id (developer@horus-software.be); public: integrators' guides.
"""
from marshmallow import Schema, fields

from connectors import pagination, parsing
from connectors.auth import OAuth2Code
from connectors.base import (
    ACCOUNTING, FIRM, AccountRecord, CheckResult, CompanyRef, ConfigError, Connector, ConnectorSpec,
    FiscalYearRecord, LedgerLineRecord, RateBudget, Stream,
)

from .assumptions import ASSUMPTIONS

PACKAGE = "Horus"


class HorusConfig(Schema):
    base_url = fields.Url(required=True, require_tld=False, metadata={
        "label": "Your Horus API URL (company URL)",
        "help": "Each Horus customer has its own API address: ask Horus or your Horus administrator."})
    client_id = fields.String(required=True, metadata={"label": "Client ID (from Horus)"})
    client_secret = fields.String(required=True, metadata={"secret": True, "label": "Client secret"})


class FiscalYears(Stream):
    name, record_type, primary_key = "fiscal_years", FiscalYearRecord, "start"

    def records(self, state, window):
        horus = self.connector
        names = horus.assumed("fiscal_year_fields")
        for row in horus.rows("fiscal_years_path", "financial year"):
            horus.expect_fields(row, names.values(), "financial year")
            yield FiscalYearRecord(start=parsing.day(row[names["start"]], "financial year start", PACKAGE),
                                   end=parsing.day(row[names["end"]], "financial year end", PACKAGE))


class Accounts(Stream):
    name, record_type, primary_key = "accounts", AccountRecord, "number"

    def records(self, state, window):
        horus = self.connector
        names, kinds = horus.assumed("account_fields"), horus.assumed("account_kind_by_class")
        for row in horus.rows("accounts_path", "account"):
            horus.expect_fields(row, names.values(), "account")
            number = parsing.text(row[names["number"]])
            yield AccountRecord(number=number, name=parsing.text(row[names["name"]]) or number,
                                kind=kinds.get(number[:1], "other"), source_id=number)


class LedgerLines(Stream):
    """Every account history line of the window (no modified-since filter is known); the writer keeps
    only what changed."""

    name, record_type, primary_key = "ledger_lines", LedgerLineRecord, "source_id"

    def records(self, state, window):
        horus = self.connector
        names, dates = horus.assumed("ledger_fields"), horus.assumed("ledger_date_filter")
        params = {}
        if window.start:
            params[dates["from"]] = window.start.isoformat()
        if window.end:
            params[dates["to"]] = window.end.isoformat()
        required = [names[key] for key in ("id", "date", "account", "debit", "credit")]
        for row in horus.rows("ledger_path", "account history line", params):
            horus.expect_fields(row, required, "account history line")
            yield LedgerLineRecord(
                source_id=str(row[names["id"]]),
                booking_date=parsing.day(row[names["date"]], "booking date", PACKAGE),
                account=parsing.text(row[names["account"]]),
                amount=(parsing.amount(row[names["debit"]] or 0, "debit", PACKAGE)
                        - parsing.amount(row[names["credit"]] or 0, "credit", PACKAGE)),
                description=parsing.text(row.get(names["description"])),
                reference=parsing.text(row.get(names["reference"])),
                journal=parsing.text(row.get(names["journal"])),
            )


class Horus(Connector):
    spec = ConnectorSpec(
        key="horus",
        display_name=PACKAGE,
        kind=ACCOUNTING,
        level=FIRM,
        # endpoints joined to the connection's own API host (Connector.oauth_endpoints)
        auth=OAuth2Code(
            authorize_url=ASSUMPTIONS["authorize_path"].value,
            token_url=ASSUMPTIONS["token_path"].value,
            pkce=ASSUMPTIONS["pkce"].value,
            rotating_refresh_token=ASSUMPTIONS["refresh_rotates"].value,
            token_auth_method=ASSUMPTIONS["token_client_auth"].value,
        ),
        config_schema=HorusConfig,
        api_version="v1 (assumed)",
        docs_url="https://www.apideck.com/blog/horus-software-api-integration-guide",
        rate_budget=RateBudget(per_minute=ASSUMPTIONS["rate_limit"].value["per_minute"], per="connection"),
        reference_label="folder",
        undocumented=True,
        assumptions=ASSUMPTIONS,
        sandbox_config={"base_url": "{sandbox}/horus/fidu-demo", "client_id": "horus-sandbox-client",
                        "client_secret": "horus-sandbox-secret"},
    )
    streams = (FiscalYears, Accounts, LedgerLines)

    def rows(self, path_name, what, params=None, folder=True):
        """Every row of a listing (of the linked folder unless ``folder`` is False): the assumed envelope,
        paged by page numbers."""
        url, paging, envelope = self.base_url + self.assumed(path_name), self.assumed("paging"), \
            self.assumed("list_envelope")
        base = dict(params or {})
        if folder:
            if not self.reference:
                raise ConfigError("This dossier is not linked to a Horus folder yet.")
            base[self.assumed("folder_param")] = self.reference

        def fetch(page):
            query = {**base, paging["page"]: page, paging["size"]: paging["page_size"]}
            return self.expect_list(self.get_json(url, params=query), what, key=envelope)

        return pagination.page_numbers(fetch, start=paging["first"], page_size=paging["page_size"], package=PACKAGE)

    def list_references(self):
        """The folders the consenting Horus user can reach."""
        names = self.assumed("folder_fields")
        found = []
        for row in self.rows("folders_path", "folder", folder=False):
            self.expect_fields(row, [names["id"]], "folder")
            reference = parsing.text(row[names["id"]])
            found.append(CompanyRef(reference, parsing.text(row.get(names["name"])) or reference))
        return found

    def check(self):
        folders = self.list_references()
        return CheckResult(True, f"Connected to Horus: {len(folders)} folder(s).", references=len(folders))
