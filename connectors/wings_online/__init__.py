"""WingsOnline: firm-level package built from public information (docs/connectors.md, "Undocumented
packages"; notes in README.md).

Wings publishes no API documentation. The facts: an API user (``Wings8...``) and a password set up by
Wings, and the dossier code as the reference. Everything else (host, paths, field names, paging) is an
entry of :data:`assumptions.ASSUMPTIONS`, read here through :meth:`Connector.assumed`, so that Wings'
documentation corrects the package in one place. Until it arrives the firm can upload Wings' exports
(trial balance, ledger) through the file route.
"""
from marshmallow import Schema, fields

from connectors import pagination, parsing
from connectors.auth import Basic
from connectors.base import (
    ACCOUNTING, FIRM, AccountRecord, CheckResult, CompanyRef, ConfigError, Connector, ConnectorSpec,
    FiscalYearRecord, LedgerLineRecord, NotFoundError, RateBudget, Stream,
)

from .assumptions import ASSUMPTIONS

PACKAGE = "WingsOnline"


class WingsConfig(Schema):
    base_url = fields.Url(required=True, require_tld=False, metadata={"label": "Web service URL (given by Wings)"})
    username = fields.String(required=True, metadata={"label": "API user (Wings8...)"})
    password = fields.String(required=True, metadata={"secret": True, "label": "Password"})
    dossiers = fields.String(load_default="", metadata={
        "label": "Dossier codes (optional, comma separated)",
        "help": "Wings publishes no list of dossiers: the codes typed here are offered when a file is linked."})


def dossier_codes(config):
    """The dossier codes listed in the connection's ``dossiers`` setting."""
    return [code.strip() for code in str(config.get("dossiers") or "").replace(";", ",").split(",") if code.strip()]


class FiscalYears(Stream):
    name, record_type, primary_key = "fiscal_years", FiscalYearRecord, "start"

    def records(self, state, window):
        wings = self.connector
        names = wings.assumed("fiscal_year_fields")
        for row in wings.rows("fiscal_years_path", "fiscal year"):
            wings.expect_fields(row, names.values(), "fiscal year")
            yield FiscalYearRecord(start=parsing.day(row[names["start"]], "fiscal year start", PACKAGE),
                                   end=parsing.day(row[names["end"]], "fiscal year end", PACKAGE))


class Accounts(Stream):
    name, record_type, primary_key = "accounts", AccountRecord, "number"

    def records(self, state, window):
        wings = self.connector
        names, kinds = wings.assumed("account_fields"), wings.assumed("account_kind_by_class")
        for row in wings.rows("accounts_path", "account"):
            wings.expect_fields(row, names.values(), "account")
            number = parsing.text(row[names["number"]])
            yield AccountRecord(number=number, name=parsing.text(row[names["name"]]) or number,
                                kind=kinds.get(number[:1], "other"), source_id=number)


class LedgerLines(Stream):
    """Every entry line of the window (no modified-since filter is known); the writer keeps what changed."""

    name, record_type, primary_key = "ledger_lines", LedgerLineRecord, "source_id"

    def records(self, state, window):
        wings = self.connector
        names = wings.assumed("entry_fields")
        params = {}
        if window.start:
            params["dateFrom"] = window.start.isoformat()
        if window.end:
            params["dateTo"] = window.end.isoformat()
        required = [names[key] for key in ("id", "date", "account", "amount")]
        for row in wings.rows("entries_path", "ledger line", params):
            wings.expect_fields(row, required, "ledger line")
            yield LedgerLineRecord(
                source_id=str(row[names["id"]]),
                booking_date=parsing.day(row[names["date"]], "booking date", PACKAGE),
                account=parsing.text(row[names["account"]]),
                amount=parsing.amount(row[names["amount"]], "amount", PACKAGE),
                description=parsing.text(row.get(names["description"])),
                reference=parsing.text(row.get(names["reference"])),
                journal=parsing.text(row.get(names["journal"])),
            )


class WingsOnline(Connector):
    spec = ConnectorSpec(
        key="wings_online",
        display_name=PACKAGE,
        kind=ACCOUNTING,
        level=FIRM,
        auth=Basic(username_field="username", password_field="password"),
        config_schema=WingsConfig,
        api_version="unknown (no public documentation)",
        docs_url="https://www.wings.be/",
        rate_budget=RateBudget(per_minute=ASSUMPTIONS["rate_limit"].value["per_minute"], per="connection"),
        reference_label="dossier",
        reference_typed=True,
        undocumented=True,
        assumptions=ASSUMPTIONS,
        sandbox_config={"base_url": "{sandbox}/wings", "username": "Wings8demo", "password": "demo-wings-password",
                        "dossiers": "c-1001, c-1003"},
    )
    streams = (FiscalYears, Accounts, LedgerLines)

    def _url(self, path_name, dossier=None):
        dossier = dossier or self.reference
        if not dossier:
            raise ConfigError("This dossier is not linked to a WingsOnline dossier yet.")
        return self.base_url + self.assumed(path_name).format(dossier=dossier)

    def rows(self, path_name, what, params=None):
        """Every row of a listing: the assumed envelope, paged by page numbers."""
        url, paging, envelope = self._url(path_name), self.assumed("paging"), self.assumed("list_envelope")

        def fetch(page):
            query = {**(params or {}), paging["page"]: page, paging["size"]: paging["page_size"]}
            return self.expect_list(self.get_json(url, params=query), what, key=envelope)

        return pagination.page_numbers(fetch, start=paging["first"], page_size=paging["page_size"], package=PACKAGE)

    def lookup_reference(self, reference):
        """A dossier code exists when Wings answers its dossier (no dossier listing is known)."""
        code = parsing.text(reference)
        if not code:
            raise NotFoundError("Type the Wings dossier code (the last part of the dossier's home directory).")
        try:
            row = self.get_json(self._url("dossier_path", code))
        except NotFoundError:
            raise NotFoundError(f"WingsOnline has no dossier {code} for this API user.") from None
        names = self.assumed("dossier_fields")
        self.expect_fields(row, [names["code"]], "dossier")
        return CompanyRef(code, parsing.text(row.get(names["name"])) or code)

    def list_references(self):
        """The dossier codes listed on the connection, each verified by a read."""
        return [self.lookup_reference(code) for code in dossier_codes(self.config)]

    def check(self):
        codes = dossier_codes(self.config)
        if not codes:
            return CheckResult(True, "WingsOnline settings saved. Wings publishes no test call: type a dossier code "
                                     "when you link a file and Firmsync verifies it.", references=0)
        found = self.list_references()
        return CheckResult(True, f"Connected to WingsOnline: {len(found)} dossier(s) verified.", references=len(found))
