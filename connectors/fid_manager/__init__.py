"""FID-Manager: firm-level administration package built from public information (docs/connectors.md,
"Undocumented packages"; docs/administration-sync.md; notes in README.md).

FID-Manager is a Belgian practice-management tool for fiduciaries; its client records (the
"signalétique") hold the company's identity, mandataries and shareholders with share counts. It
publishes no API documentation: the facts are that data and the reference (the FID-Manager client id,
chosen from the firm's company clients). Every vendor shape (host, paths, field names, paging) is an
entry of :data:`assumptions.ASSUMPTIONS`, read here through :meth:`Connector.assumed`; an answer those
entries do not cover fails the run naming the field (:meth:`Connector.expect_fields`), writing nothing.
"""
import re

from marshmallow import Schema, fields

from connectors import pagination, parsing
from connectors.auth import ApiKey
from connectors.base import (
    ADMINISTRATION, FIRM, CheckResult, CompanyProfileRecord, CompanyRef, ConfigError, Connector, ConnectorSpec,
    DataError, NotFoundError, RateBudget, Stream, unexpected_shape,
)

from .assumptions import ASSUMPTIONS

PACKAGE = "FID-Manager"


class FidManagerConfig(Schema):
    """The connection form: the firm's API token (and the URL FID-Manager gives, when it names one)."""

    base_url = fields.Url(require_tld=False, load_default=ASSUMPTIONS["base_url"].value,
                          metadata={"label": "API URL (given by FID-Manager)"})
    api_key = fields.String(required=True, metadata={"secret": True, "label": "API token"})


def enterprise_number(value):
    """A Belgian enterprise number as the register writes it (``0456.789.012``); other numbers as sent."""
    digits = re.sub(r"\D", "", str(value or ""))
    if len(digits) == 9:
        digits = "0" + digits
    if len(digits) == 10:
        return f"{digits[:4]}.{digits[4:7]}.{digits[7:]}"
    return parsing.text(value) or None


class CompanyProfile(Stream):
    """One :class:`CompanyProfileRecord` from the linked client's signalétique."""

    name, record_type, primary_key = "company_profile", CompanyProfileRecord, "registration_number"

    def records(self, state, window):
        fid = self.connector
        yield fid.profile_record(fid.signaletique(fid.reference))


class FidManager(Connector):
    spec = ConnectorSpec(
        key="fid_manager",
        display_name=PACKAGE,
        kind=ADMINISTRATION,
        level=FIRM,
        auth=ApiKey(header="Authorization", field="api_key", prefix="Bearer "),
        config_schema=FidManagerConfig,
        api_version="unknown (no public documentation)",
        docs_url="https://fid-manager.document360.io/",
        rate_budget=RateBudget(per_minute=ASSUMPTIONS["rate_limit"].value["per_minute"], per="connection"),
        reference_label="client",
        undocumented=True,
        assumptions=ASSUMPTIONS,
        sandbox_config={"base_url": "{sandbox}/fid_manager/api", "api_key": "fid-manager-token"},
    )
    streams = (CompanyProfile,)

    @staticmethod
    def error_message(response):
        """401/403: the token is revoked or mistyped, in an administrator's words."""
        if response.status_code in (401, 403):
            return ("FID-Manager refused the API token (revoked or mistyped). An administrator must enter a "
                    "current token from FID-Manager on the connection.")
        return None

    # -- calls ------------------------------------------------------------------------
    def clients(self, page_size=None):
        """Every client of the firm (companies and persons), page by page."""
        url = self.base_url + self.assumed("clients_path")
        paging, envelope = self.assumed("paging"), self.assumed("envelope")
        size = page_size or paging["page_size"]
        names = self.assumed("client_fields")

        def fetch(page):
            rows = self.expect_list(self.get_json(url, params={paging["page"]: page, paging["size"]: size}),
                                    "client", key=envelope)
            for row in rows:
                self.expect_fields(row, names.values(), "client")
            return rows

        return pagination.page_numbers(fetch, start=paging["first"], page_size=size, package=PACKAGE)

    def signaletique(self, client):
        """The client record of ``client`` (its id); NotFoundError when FID-Manager has none."""
        if not client:
            raise ConfigError("This dossier is not linked to a FID-Manager client yet.")
        url = self.base_url + self.assumed("client_path").format(client=client)
        try:
            body = self.get_json(url)
        except NotFoundError:
            raise NotFoundError(f"FID-Manager has no client {client} for this firm.") from None
        envelope = self.assumed("envelope")
        if not isinstance(body, dict) or not isinstance(body.get(envelope), dict):
            raise unexpected_shape(PACKAGE, "client record", envelope, "the answer has no such object")
        record = body[envelope]
        names = self.assumed("signaletique_fields")
        self.expect_fields(record, [names["name"], names["mandataries"], names["shareholders"]], "client record")
        return record

    # -- the canonical record ---------------------------------------------------------
    def address(self, data):
        if data in (None, {}):
            return {}
        if not isinstance(data, dict):
            raise DataError(f"{PACKAGE} sent an address that is not an address.")
        value = {key: parsing.text(data.get(name)) for key, name in self.assumed("address_fields").items()}
        line = " ".join(part for part in (value["street"], value["number"]) if part)
        if value["box"]:
            line += f" bus {value['box']}"
        parts = {"line_1": line, "city": value["city"], "postal_code": value["postal_code"],
                 "country": value["country"].upper()}
        return {key: part for key, part in parts.items() if part}

    def _rows(self, value, what, fields_name, required):
        if not isinstance(value, list):
            raise unexpected_shape(PACKAGE, what, None, f"a {type(value).__name__} instead of a list")
        names = self.assumed(fields_name)
        for row in value:
            self.expect_fields(row, [names[key] for key in required], what)
        return names, value

    def profile_record(self, record):
        """The :class:`CompanyProfileRecord` of one signalétique (FID-Manager has no AGM date or capital)."""
        names = self.assumed("signaletique_fields")
        officers, mandataries = self._rows(record[names["mandataries"]], "mandatary", "mandatary_fields",
                                           ("name", "role"))
        owners, shareholders = self._rows(record[names["shareholders"]], "shareholder", "shareholder_fields",
                                          ("name", "shares"))
        vat = re.sub(r"[\s.]", "", parsing.text(record.get(names["vat_number"]))).upper() or None
        number = record.get(names["enterprise_number"]) or (vat[2:] if vat and vat.startswith("BE") else None)
        return CompanyProfileRecord(
            name=parsing.text(record[names["name"]]),
            registration_number=enterprise_number(number),
            vat_number=vat,
            legal_form=parsing.text(record.get(names["legal_form"])) or None,
            address=self.address(record.get(names["address"])),
            incorporation_date=parsing.optional_day(record.get(names["incorporated"]), "foundation date", PACKAGE),
            fiscal_year_end=parsing.month_day(record.get(names["fiscal_year_end"]), "fiscal year end", PACKAGE),
            officers=tuple({"name": parsing.text(row[officers["name"]]),
                            "role": parsing.text(row[officers["role"]]) or None,
                            "start": parsing.optional_iso_day(row.get(officers["start"]), "mandate start", PACKAGE),
                            "end": parsing.optional_iso_day(row.get(officers["end"]), "mandate end", PACKAGE)} for row in mandataries),
            shareholders=tuple(self._shareholder(row, owners) for row in shareholders),
        )

    @staticmethod
    def _shareholder(row, names):
        shares, percentage = row[names["shares"]], row.get(names["percentage"])
        return {"name": parsing.text(row[names["name"]]), "share": None,
                "shares": int(parsing.amount(shares, "number of shares", PACKAGE)) if shares not in (None, "") else None,
                "percentage": f"{parsing.amount(percentage, 'percentage', PACKAGE).normalize():f}"
                if percentage not in (None, "") else None}

    # -- references and check ---------------------------------------------------------
    def list_references(self):
        """The firm's company clients (persons skipped), by client id."""
        names, company = self.assumed("client_fields"), str(self.assumed("company_type")).lower()
        return [CompanyRef(str(row[names["id"]]), parsing.text(row[names["name"]]) or str(row[names["id"]]))
                for row in self.clients() if str(row[names["type"]] or "").lower() == company]

    def check(self):
        next(iter(self.clients(page_size=1)), None)
        return CheckResult(True, "Connected to FID-Manager: the API token works. Refresh the list of clients, then "
                                 "link a file to one of them.")
