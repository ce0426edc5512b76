"""AdminPulse (Belgian practice management): company master data of the office's relations.

An administration package at firm level. A Bearer API key per office (or an OAuth2 access
token, sent the same way) on ``https://api.adminpulse.be``; the references are the office's
relations of type company (``/relations``), the company data comes from ``/companies``.
Facts: ``../shared/docs/CONNECTORS.md`` sections 14 and 26; the field names AdminPulse has
not published are assumptions, all of them in :data:`SHAPE` (one place to correct);
notes and decisions: connectors/adminpulse/README.md.
"""
from __future__ import annotations

import re

from marshmallow import Schema, fields

from connectors import parsing
from connectors.auth import ApiKey
from connectors.pagination import page_numbers
from connectors.base import (
    ADMINISTRATION, FIRM, CheckResult, CompanyProfileRecord, CompanyRef, Connector, ConnectorSpec, DataError,
    NotFoundError, RateBudget, Stream,
)

NAME = "AdminPulse"
API_URL = "https://api.adminpulse.be"
DOCS_URL = "https://developer.adminpulse.be/"
#: ``pageSize`` is at most 400 (CONNECTORS.md section 26)
PAGE_SIZE = 400
MAX_PAGES = 500

#: Every vendor-shape assumption (AdminPulse publishes its endpoints, not these field names).
#: A vendor correction changes this table only.
SHAPE = {
    "relations_path": "/relations",
    "companies_path": "/companies",
    "relation_filter": "relationIdentifier",  # /companies?relationIdentifier=<uniqueIdentifier>
    "relation_type_field": "type",
    "company_type": "company",  # compared case-insensitively
    "name": "name",
    "vat_number": "vatNumber",
    "enterprise_number": "enterpriseNumber",
    "legal_form": "legalForm",
    "status": "status",
    "founded_on": "foundingDate",
    "fiscal_year_end": "fiscalYearEnd",  # "31/12", "31-12" or "12-31"
    "agm_date": "generalMeetingDate",
    "capital": "capital",  # {"amount", "currency"} or a number (EUR)
    "address": "address",  # {"street", "number", "box", "postalCode", "city", "country"}
    "board": "boardMembers",  # [{"name", "function", "startDate", "endDate"}]
    "shareholders": "shareholders",  # [{"name", "numberOfShares", "percentage"}]
}


class AdminPulseConfig(Schema):
    """The connection form: the office's API key (or an OAuth2 access token)."""

    api_key = fields.String(required=True, metadata={"secret": True, "label": "API key"})
    base_url = fields.Url(load_default=API_URL, require_tld=False, metadata={"label": "API address"})


def _get(item, key):
    return (item or {}).get(SHAPE[key])


def enterprise_number(value):
    """A Belgian enterprise number as the register writes it: ``0456.789.012`` (None when absent)."""
    digits = re.sub(r"\D", "", str(value or ""))
    if not digits:
        return None
    if len(digits) == 9:
        digits = "0" + digits
    if len(digits) != 10:
        return parsing.text(value)
    return f"{digits[:4]}.{digits[4:7]}.{digits[7:]}"


def fiscal_year_end(value):
    """"31/12", "31-12", "12-31" or "--12-31" -> "MM-DD"; None when absent; a DataError otherwise."""
    if value in (None, ""):
        return None
    text = str(value).strip().lstrip("-").replace("/", "-").replace(".", "-")
    match = re.fullmatch(r"(\d{1,2})-(\d{1,2})", text)
    if not match:
        raise DataError(f"AdminPulse sent a fiscal year end that is not a day and month ({str(value)[:40]!r}).")
    first, second = int(match.group(1)), int(match.group(2))
    month, day = (second, first) if first > 12 else (first, second)
    if not (1 <= month <= 12 and 1 <= day <= 31):
        raise DataError(f"AdminPulse sent a fiscal year end that is not a day and month ({str(value)[:40]!r}).")
    return f"{month:02d}-{day:02d}"


def address(data):
    """The company's address with Firmsync's field names."""
    data = data or {}
    street = " ".join(parsing.text(data.get(k)) for k in ("street", "number") if data.get(k))
    if data.get("box"):
        street += f" bus {parsing.text(data['box'])}"
    parts = {"line_1": street, "city": parsing.text(data.get("city")),
             "postal_code": parsing.text(data.get("postalCode")), "country": parsing.text(data.get("country"))}
    return {key: value for key, value in parts.items() if value}


def capital(value):
    """``{"amount", "currency"}`` or a bare number (euros) -> ``{"amount": "18550.00", "currency": "EUR"}``."""
    if value in (None, "", {}):
        return None
    amount, currency = (value.get("amount"), value.get("currency") or "EUR") if isinstance(value, dict) else (value, "EUR")
    if amount in (None, ""):
        return None
    return {"amount": f"{parsing.amount(amount, 'capital', NAME):.2f}", "currency": str(currency).upper()}


def _day(value, field):
    found = parsing.optional_day(value, field, NAME)
    return found.isoformat() if found else None


def officer(item):
    """A board member: name, mandate (AdminPulse's function), start and end dates (ISO)."""
    return {"name": parsing.text(item.get("name")), "role": parsing.text(item.get("function")) or None,
            "start": _day(item.get("startDate"), "mandate start"), "end": _day(item.get("endDate"), "mandate end")}


def shareholder(item):
    """A shareholder: name, number of shares and percentage (a decimal string)."""
    percentage = item.get("percentage")
    shares = item.get("numberOfShares")
    return {"name": parsing.text(item.get("name")),
            "share": None,
            "shares": int(shares) if shares not in (None, "") else None,
            "percentage": f"{parsing.amount(percentage, 'percentage', NAME).normalize():f}"
            if percentage not in (None, "") else None}


def profile_record(company):
    """A :class:`CompanyProfileRecord` from one ``/companies`` result (see :data:`SHAPE`)."""
    if not isinstance(company, dict) or not parsing.text(_get(company, "name")):
        raise DataError("AdminPulse sent a company without its name.")
    board, owners = _get(company, "board"), _get(company, "shareholders")
    if not isinstance(board or [], list) or not isinstance(owners or [], list):
        raise DataError("AdminPulse sent board members or shareholders that are not lists.")
    vat = parsing.text(_get(company, "vat_number")).replace(" ", "").replace(".", "").upper() or None
    return CompanyProfileRecord(
        name=parsing.text(_get(company, "name")),
        registration_number=enterprise_number(_get(company, "enterprise_number") or (vat[2:] if vat else None)),
        vat_number=vat,
        legal_form=parsing.text(_get(company, "legal_form")) or None,
        status=parsing.text(_get(company, "status")) or None,
        address=address(_get(company, "address")),
        incorporation_date=parsing.optional_day(_get(company, "founded_on"), "founding date", NAME),
        fiscal_year_end=fiscal_year_end(_get(company, "fiscal_year_end")),
        agm_date=parsing.text(_get(company, "agm_date")) or None,
        capital=capital(_get(company, "capital")),
        officers=tuple(officer(item) for item in board or []),
        shareholders=tuple(shareholder(item) for item in owners or []),
    )


class CompanyProfile(Stream):
    name, record_type, primary_key = "company_profile", CompanyProfileRecord, "registration_number"

    def records(self, state, window):
        yield profile_record(self.connector.company(self.connector.reference))


class AdminPulse(Connector):
    spec = ConnectorSpec(
        key="adminpulse",
        display_name=NAME,
        kind=ADMINISTRATION,
        level=FIRM,
        # API key and OAuth2 token alike go as "Authorization: Bearer" (CONNECTORS.md section 14, Postman collection)
        auth=ApiKey(header="Authorization", field="api_key", prefix="Bearer "),
        config_schema=AdminPulseConfig,
        api_version="1",
        docs_url=DOCS_URL,
        # 429 over 480 calls a minute (CONNECTORS.md section 14)
        rate_budget=RateBudget(per_minute=480, per="key"),
        reference_label="relation",
        vendor_hosts=("api.adminpulse.be",),
        sandbox_config={"base_url": "{sandbox}/adminpulse", "api_key": "adminpulse-key"},
    )
    streams = (CompanyProfile,)

    @property
    def base_url(self):
        return (self.config.get("base_url") or API_URL).rstrip("/")

    def get(self, path, **params):
        return self.get_json(f"{self.base_url}{path}", params=params or None)

    @staticmethod
    def error_message(response):
        """AdminPulse's errors: 401 in an administrator's words, else the body's ``message``."""
        if response.status_code == 401:
            return ("AdminPulse refused the API key (revoked or mistyped). An administrator must enter a "
                    "current key from AdminPulse's settings.")
        try:
            body = response.json()
        except ValueError:
            return None
        return str(body.get("message") or body.get("error") or "")[:300] or None if isinstance(body, dict) else None

    def results(self, body, what):
        items = body.get("results") if isinstance(body, dict) else None
        if not isinstance(items, list):
            raise DataError(f"AdminPulse sent {what} without its results list.")
        return items

    def relations(self, **filters):
        """Every relation of type company (``page``/``pageSize`` up to 400, until a short page)."""
        def fetch(page):
            body = self.get(SHAPE["relations_path"], page=page, pageSize=PAGE_SIZE, **filters)
            return self.results(body, "the relations")
        for item in page_numbers(fetch, page_size=PAGE_SIZE, max_pages=MAX_PAGES, package=NAME):
            kind = str(item.get(SHAPE["relation_type_field"]) or "").lower()
            if kind == SHAPE["company_type"] and item.get("uniqueIdentifier"):
                yield item

    def company(self, identifier):
        body = self.get(SHAPE["companies_path"], **{SHAPE["relation_filter"]: identifier})
        items = self.results(body, "the company")
        if not items:
            raise NotFoundError(f"AdminPulse has no company relation {identifier}.")
        return items[0]

    # -- contract ----------------------------------------------------------------------
    def check(self):
        body = self.get(SHAPE["relations_path"], page=1, pageSize=1)
        self.results(body, "the relations")
        return CheckResult(True, "Connected to AdminPulse: the API key works. Refresh the list of companies, then "
                                 "link a file to one of them.")

    def list_references(self):
        return [CompanyRef(str(item["uniqueIdentifier"]), parsing.text(item.get("name")) or str(item["uniqueIdentifier"]),
                           {"vat_number": item.get("vatNumber")})
                for item in self.relations()]

    def find(self, text):
        """Relations whose name or VAT number matches ``text`` (AdminPulse searches, we page)."""
        vat = re.sub(r"[\s.]", "", text or "").upper()
        filters = {"vatNumber": vat} if re.fullmatch(r"(BE)?\d{9,10}", vat) else {"name": text}
        return [CompanyRef(str(i["uniqueIdentifier"]), parsing.text(i.get("name"))) for i in self.relations(**filters)]
