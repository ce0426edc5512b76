"""Corporify: firm-level administration package built from public information (docs/connectors.md,
"Undocumented packages"; docs/administration-sync.md; notes in README.md).

Corporify keeps a Belgian company's digital share register, governing bodies and mandates, fiscal
year and AGM date. It publishes no API documentation: the facts are the data it holds and the
reference (the legal entity's enterprise number, typed when a file is linked and checked with
Corporify there). Every vendor shape (host, paths, field names, paging) is an entry of
:data:`assumptions.ASSUMPTIONS`, read here through :meth:`Connector.assumed`; an answer those entries
do not cover fails the run naming the field (:meth:`Connector.expect_fields`), writing nothing.
"""
import re

from marshmallow import Schema, fields

from connectors import pagination, parsing
from connectors.auth import ApiKey
from connectors.base import (
    ADMINISTRATION, FIRM, CheckResult, CompanyProfileRecord, CompanyRef, Connector, ConnectorSpec,
    DataError, NotFoundError, RateBudget, Stream,
)

from .assumptions import ASSUMPTIONS

PACKAGE = "Corporify"


class CorporifyConfig(Schema):
    """The connection form: the silo's partner API key (and its URL when Corporify names one)."""

    base_url = fields.Url(require_tld=False, load_default=ASSUMPTIONS["base_url"].value,
                          metadata={"label": "API URL (given by Corporify)"})
    api_key = fields.String(required=True, metadata={"secret": True, "label": "Partner API key"})


def enterprise_digits(value):
    """The 10 digits of a Belgian enterprise number typed in any form ("BE 0456.789.012", "456789012"),
    or a :class:`NotFoundError` in the user's words when it cannot be one."""
    digits = re.sub(r"\D", "", str(value or ""))
    if len(digits) == 9:
        digits = "0" + digits
    if len(digits) != 10 or digits[0] not in "01":
        raise NotFoundError(f"“{parsing.text(value)[:40]}” is not an enterprise number: type its 10 digits "
                            "(e.g. 0456.789.012).")
    return digits


def dotted(digits):
    """``0456789012`` -> ``0456.789.012`` (how the register writes it)."""
    return f"{digits[:4]}.{digits[4:7]}.{digits[7:]}"


class CompanyProfile(Stream):
    """One :class:`CompanyProfileRecord` of the linked legal entity: the entity, its mandates and shareholders."""

    name, record_type, primary_key = "company_profile", CompanyProfileRecord, "registration_number"

    def records(self, state, window):
        corporify = self.connector
        number = enterprise_digits(corporify.reference)
        entity = corporify.entity(number)
        yield corporify.profile_record(entity, corporify.mandates(number), corporify.shareholders(number))


class Corporify(Connector):
    spec = ConnectorSpec(
        key="corporify",
        display_name=PACKAGE,
        kind=ADMINISTRATION,
        level=FIRM,
        auth=ApiKey(header="X-Api-Key", field="api_key"),
        config_schema=CorporifyConfig,
        api_version="unknown (no public documentation)",
        docs_url="https://knowledge.corporify.com/",
        rate_budget=RateBudget(per_minute=ASSUMPTIONS["rate_limit"].value["per_minute"], per="connection"),
        reference_label="enterprise number",
        reference_typed=True,
        undocumented=True,
        assumptions=ASSUMPTIONS,
        sandbox_config={"base_url": "{sandbox}/corporify", "api_key": "corporify-key"},
    )
    streams = (CompanyProfile,)

    @staticmethod
    def error_message(response):
        """401/403: the key is revoked or mistyped, in an administrator's words."""
        if response.status_code in (401, 403):
            return ("Corporify refused the partner API key (revoked or mistyped). An administrator must enter a "
                    "current key from Corporify on the connection.")
        return None

    # -- calls ------------------------------------------------------------------------
    def _url(self, path_name, number=None):
        return self.base_url + self.assumed(path_name).format(number=number)

    def entity(self, number):
        """The legal entity with enterprise number ``number`` (10 digits); NotFoundError when Corporify has none."""
        try:
            row = self.get_json(self._url("entity_path", number))
        except NotFoundError:
            raise NotFoundError(f"Corporify has no legal entity with enterprise number {dotted(number)} in this "
                                "environment.") from None
        names = self.assumed("entity_fields")
        self.expect_fields(row, [names["number"], names["name"]], "legal entity")
        return row

    def _listing(self, path_name, number, what):
        url, paging, envelope = self._url(path_name, number), self.assumed("paging"), self.assumed("list_envelope")

        def fetch(page):
            query = {paging["page"]: page, paging["size"]: paging["page_size"]}
            return self.expect_list(self.get_json(url, params=query), what, key=envelope)

        return list(pagination.page_numbers(fetch, start=paging["first"], page_size=paging["page_size"],
                                            package=PACKAGE))

    def mandates(self, number):
        """Every mandate of the entity's governing bodies (current and ended)."""
        names = self.assumed("mandate_fields")
        rows = self._listing("mandates_path", number, "mandate")
        for row in rows:
            self.expect_fields(row, [names["name"], names["mandate"]], "mandate")
        return rows

    def shareholders(self, number):
        """Every line of the entity's share register."""
        names = self.assumed("shareholder_fields")
        rows = self._listing("shareholders_path", number, "shareholder")
        for row in rows:
            self.expect_fields(row, [names["name"], names["shares"]], "shareholder")
        return rows

    # -- the canonical record ---------------------------------------------------------
    def address(self, data):
        if data in (None, {}):
            return {}
        if not isinstance(data, dict):
            raise DataError(f"{PACKAGE} sent a registered office that is not an address.")
        names = self.assumed("address_fields")
        value = {key: parsing.text(data.get(name)) for key, name in names.items()}
        line = " ".join(part for part in (value["street"], value["number"]) if part)
        if value["box"]:
            line += f" bus {value['box']}"
        parts = {"line_1": line, "city": value["city"], "postal_code": value["postal_code"],
                 "country": value["country"].upper()}
        return {key: part for key, part in parts.items() if part}

    def capital(self, value):
        if value in (None, "", {}):
            return None
        amount, currency = (value.get("amount"), value.get("currency") or "EUR") if isinstance(value, dict) \
            else (value, "EUR")
        if amount in (None, ""):
            return None
        return {"amount": f"{parsing.amount(amount, 'capital', PACKAGE):.2f}", "currency": str(currency).upper()}

    def officer(self, row):
        names = self.assumed("mandate_fields")
        return {"name": parsing.text(row[names["name"]]), "role": parsing.text(row[names["mandate"]]) or None,
                "start": parsing.optional_iso_day(row.get(names["start"]), "mandate start", PACKAGE),
                "end": parsing.optional_iso_day(row.get(names["end"]), "mandate end", PACKAGE)}

    def shareholder(self, row):
        names = self.assumed("shareholder_fields")
        shares, percentage = row[names["shares"]], row.get(names["percentage"])
        return {"name": parsing.text(row[names["name"]]),
                "share": parsing.text(row.get(names["share_class"])) or None,
                "shares": int(parsing.amount(shares, "number of shares", PACKAGE)) if shares not in (None, "") else None,
                "percentage": f"{parsing.amount(percentage, 'percentage', PACKAGE).normalize():f}"
                if percentage not in (None, "") else None,
                "start": parsing.optional_iso_day(row.get(names["start"]), "shareholder since", PACKAGE), "end": None}

    def profile_record(self, entity, mandates, shareholders):
        """The :class:`CompanyProfileRecord` of one entity (Corporify fills every canonical field)."""
        names = self.assumed("entity_fields")
        vat = re.sub(r"[\s.]", "", parsing.text(entity.get(names["vat_number"]))).upper() or None
        return CompanyProfileRecord(
            name=parsing.text(entity[names["name"]]),
            registration_number=dotted(enterprise_digits(entity[names["number"]])),
            vat_number=vat,
            legal_form=parsing.text(entity.get(names["legal_form"])) or None,
            status=parsing.text(entity.get(names["status"])) or None,
            address=self.address(entity.get(names["address"])),
            incorporation_date=parsing.optional_day(entity.get(names["incorporated"]), "incorporation date", PACKAGE),
            fiscal_year_end=parsing.month_day(entity.get(names["fiscal_year_end"]), "fiscal year end", PACKAGE),
            agm_date=parsing.text(entity.get(names["agm_date"])) or None,
            capital=self.capital(entity.get(names["capital"])),
            officers=tuple(self.officer(row) for row in mandates),
            shareholders=tuple(self.shareholder(row) for row in shareholders),
        )

    # -- references and check ---------------------------------------------------------
    def lookup_reference(self, reference):
        """The entity with this enterprise number: format first, then one read (normalised to 10 digits)."""
        number = enterprise_digits(reference)
        entity = self.entity(number)
        return CompanyRef(number, parsing.text(entity[self.assumed("entity_fields")["name"]]) or dotted(number))

    def check(self):
        paging = self.assumed("paging")
        body = self.get_json(self._url("entities_path"), params={paging["page"]: paging["first"], paging["size"]: 1})
        self.expect_list(body, "legal entity", key=self.assumed("list_envelope"))
        return CheckResult(True, "Connected to Corporify: the partner API key works. Type a legal entity's "
                                 "enterprise number when you link a file.", references=0)
