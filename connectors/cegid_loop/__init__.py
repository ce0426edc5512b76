"""Cegid Loop: firm-level package built from public information (docs/connectors.md, "Undocumented
packages"; notes in README.md).

Two headers sign every call on Loop's public API (Azure API Management): the subscription key from
Cegid's developer portal and the firm's API key (``key:client secret``, generated in CegidLife and
activated in Loop Hub). The reference is a dossier code (``codeDossier``) bound to that key, typed and
verified by reading its entity. Chart from ``compte``, fiscal years from ``exercice``, ledger lines
from ``EcritureComptable`` (at most 100 rows a call), read per journal and fiscal-year window and
paged with ``skip``/``take``; balances are derived from the lines by the engine.

Every vendor shape is an entry of :data:`assumptions.ASSUMPTIONS`, read through
:meth:`Connector.assumed`; an answer they do not cover fails the run naming the field.

Vendor docs: https://developers.cegid.com/ (prose only).
"""
import dataclasses
from dataclasses import dataclass
from typing import ClassVar

from marshmallow import Schema, fields, validate

from connectors import pagination, parsing
from connectors.auth import API_KEY, AuthStrategy
from connectors.base import (
    ACCOUNTING, FIRM, AccountRecord, CheckResult, CompanyRef, ConfigError, Connector, ConnectorSpec,
    FiscalYearRecord, LedgerLineRecord, NotFoundError, RateBudget, Stream,
)
from connectors.oauth import HeaderAuth

from .assumptions import ASSUMPTIONS

PACKAGE = "Cegid Loop"


@dataclass(frozen=True)
class LoopKeys(AuthStrategy):
    """The APIM subscription key and the firm's API key, each in its assumed header."""

    kind: ClassVar[str] = API_KEY

    def requests_auth(self, connector):
        values = {**connector.config, **connector.credentials}
        for field, label in (("subscription_key", "subscription key"), ("api_key", "API key")):
            if not values.get(field):
                raise ConfigError(f"The {PACKAGE} connection has no {label}.")
        return HeaderAuth({connector.assumed("subscription_header"): str(values["subscription_key"]),
                           connector.assumed("api_key_header"): str(values["api_key"])})


class CegidLoopConfig(Schema):
    base_url = fields.Url(require_tld=False, load_default=ASSUMPTIONS["base_url"].value,
                          metadata={"label": "API URL"})
    subscription_key = fields.String(required=True, metadata={
        "secret": True, "label": "Subscription key (Cegid developer portal)"})
    api_key = fields.String(required=True, validate=validate.Regexp(r"^[^:\s]+:\S+$", error="Enter key:secret."),
                            metadata={"secret": True, "label": "Firm API key (key:secret, from CegidLife)"})
    dossiers = fields.String(load_default="", metadata={
        "label": "Dossier codes (optional, comma separated)",
        "help": "Cegid publishes no list of dossiers: the codes bound to the key in Loop Hub, offered when a file "
                "is linked."})
    calls_per_minute = fields.Integer(load_default=ASSUMPTIONS["rate_limit"].value["per_minute"],
                                      validate=validate.Range(min=1, max=600),
                                      metadata={"label": "Calls a minute (Cegid publishes no limit)"})


def dossier_codes(config):
    """The dossier codes listed in the connection's ``dossiers`` setting."""
    return [code.strip() for code in str(config.get("dossiers") or "").replace(";", ",").split(",") if code.strip()]


class FiscalYears(Stream):
    name, record_type, primary_key = "fiscal_years", FiscalYearRecord, "start"

    def records(self, state, window):
        yield from self.connector.fiscal_years()


class Accounts(Stream):
    name, record_type, primary_key = "accounts", AccountRecord, "number"

    def records(self, state, window):
        loop = self.connector
        names, kinds = loop.assumed("account_fields"), loop.assumed("account_kind_by_class")
        for row in loop.rows("accounts_path", "account"):
            loop.expect_fields(row, names.values(), "account")
            number = parsing.text(row[names["number"]])
            yield AccountRecord(number=number, name=parsing.text(row[names["name"]]) or number,
                                kind=kinds.get(number[:1], "other"), source_id=number)


class LedgerLines(Stream):
    """Every entry line of the window, read per journal and fiscal year (no modified-since filter on the REST
    API: assumption ``ledger_incremental``); the writer keeps only what changed."""

    name, record_type, primary_key = "ledger_lines", LedgerLineRecord, "source_id"

    def records(self, state, window):
        loop = self.connector
        names = loop.assumed("entry_fields")
        required = [names[key] for key in ("entry", "line", "journal", "date", "account", "debit", "credit")]
        for journal in loop.journal_codes():
            for start, end in loop.date_windows(window):
                condition = loop.assumed("entries_window_filter").format(journal=journal, start=start.isoformat(),
                                                                         end=end.isoformat())
                query = {"filter": f"{loop.assumed('entries_required_filter')} && {condition}"}
                for row in loop.rows("entries_path", "ledger line", query):
                    loop.expect_fields(row, required, "ledger line")
                    debit = parsing.amount(row[names["debit"]] or 0, "debit", PACKAGE)
                    credit = parsing.amount(row[names["credit"]] or 0, "credit", PACKAGE)
                    yield LedgerLineRecord(
                        source_id="-".join(str(row[names[key]]) for key in ("journal", "entry", "line")),
                        booking_date=parsing.day(row[names["date"]], "booking date", PACKAGE),
                        account=parsing.text(row[names["account"]]),
                        amount=debit - credit,
                        description=parsing.text(row.get(names["description"])),
                        reference=parsing.text(row.get(names["reference"])),
                        journal=parsing.text(row[names["journal"]]),
                    )


class CegidLoop(Connector):
    spec = ConnectorSpec(
        key="cegid_loop",
        display_name=PACKAGE,
        kind=ACCOUNTING,
        level=FIRM,
        auth=LoopKeys(),
        config_schema=CegidLoopConfig,
        api_version="loop-api-publiques (unversioned)",
        docs_url="https://developers.cegid.com/",
        rate_budget=RateBudget(per_minute=ASSUMPTIONS["rate_limit"].value["per_minute"], per="connection"),
        reference_label="dossier",
        reference_typed=True,
        undocumented=True,
        assumptions=ASSUMPTIONS,
        sandbox_config={"base_url": "{sandbox}/cegid/loop-api-publiques", "subscription_key": "demo-subscription-key",
                        "api_key": "demo-key:demo-secret", "dossiers": "c-1001, c-1003"},
        vendor_hosts=("api.cegid.com",),
    )
    streams = (FiscalYears, Accounts, LedgerLines)

    @classmethod
    def budgets_for(cls, config):
        """The connection's own pace (``calls_per_minute``): Cegid publishes no limit."""
        try:
            per_minute = int((config or {}).get("calls_per_minute") or cls.spec.rate_budget.per_minute)
        except (TypeError, ValueError):
            per_minute = cls.spec.rate_budget.per_minute
        if per_minute == cls.spec.rate_budget.per_minute:
            return cls.spec.budgets
        return (dataclasses.replace(cls.spec.rate_budget, per_minute=per_minute),)

    # -- calls ------------------------------------------------------------------------
    def _dossier(self, dossier=None):
        dossier = dossier or self.reference
        if not dossier:
            raise ConfigError("This dossier is not linked to a Cegid Loop dossier yet.")
        return dossier

    def rows(self, path_name, what, params=None, dossier=None):
        """Every row of a listing of the dossier, ``take`` rows a call (at most 100), paged with ``skip``."""
        url, paging = self.base_url + self.assumed(path_name), self.assumed("paging")
        base = {**(params or {}), self.assumed("dossier_param"): self._dossier(dossier)}

        def fetch(offset, limit):
            query = {**base, paging["skip"]: offset, paging["take"]: limit}
            return self.expect_list(self.get_json(url, params=query), what)

        return pagination.offsets(fetch, page_size=paging["page_size"], package=PACKAGE)

    def fiscal_years(self):
        names = self.assumed("fiscal_year_fields")
        years = []
        for row in self.rows("fiscal_years_path", "fiscal year"):
            self.expect_fields(row, names.values(), "fiscal year")
            years.append(FiscalYearRecord(start=parsing.day(row[names["start"]], "fiscal year start", PACKAGE),
                                          end=parsing.day(row[names["end"]], "fiscal year end", PACKAGE)))
        return sorted(years, key=lambda year: year.start)

    def date_windows(self, window):
        """The fiscal years clipped to the sync window: one ``datePiece`` range each."""
        if not hasattr(self, "_years"):
            self._years = self.fiscal_years()
        for year in self._years:
            start = max(year.start, window.start) if window.start else year.start
            end = min(year.end, window.end) if window.end else year.end
            if start <= end:
                yield start, end

    def journal_codes(self):
        names = self.assumed("journal_fields")
        codes = []
        for row in self.rows("journals_path", "journal"):
            self.expect_fields(row, names.values(), "journal")
            codes.append(parsing.text(row[names["code"]]))
        return codes

    # -- references -------------------------------------------------------------------
    def lookup_reference(self, reference):
        """A dossier code exists for this key when Loop answers its entity (no listing is documented)."""
        code = parsing.text(reference)
        if not code:
            raise NotFoundError("Type the Cegid Loop dossier code (codeDossier) bound to the API key in Loop Hub.")
        try:
            rows = list(self.rows("entity_path", "entity", dossier=code))
        except NotFoundError:
            rows = []
        if not rows:
            raise NotFoundError(f"Cegid Loop has no dossier {code} for this API key (bind it in Loop Hub).")
        names = self.assumed("entity_fields")
        self.expect_fields(rows[0], names.values(), "entity")
        return CompanyRef(code, parsing.text(rows[0][names["name"]]) or code)

    def list_references(self):
        """The dossier codes listed on the connection, each verified by a read."""
        return [self.lookup_reference(code) for code in dossier_codes(self.config)]

    def check(self):
        codes = dossier_codes(self.config)
        if not codes:
            return CheckResult(True, "Cegid Loop settings saved. Type a dossier code when you link a file and "
                                     "Firmsync verifies it.", references=0)
        found = self.list_references()
        return CheckResult(True, f"Connected to Cegid Loop: {len(found)} dossier(s) verified.", references=len(found))
