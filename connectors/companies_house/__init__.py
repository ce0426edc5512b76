"""Companies House (UK public register): company master data by company number.

An administration package at firm level: no listing, the user types the company number
(:meth:`CompaniesHouse.lookup_reference`); the API key is the HTTP basic user with a blank
password. Docs:
https://developer-specs.company-information.service.gov.uk/companies-house-public-data-api/reference;
notes and decisions: connectors/companies_house/README.md.
"""
from __future__ import annotations

import re

from marshmallow import Schema, fields

from connectors import parsing
from connectors.auth import Basic
from connectors.base import (
    ADMINISTRATION, FIRM, CheckResult, CompanyProfileRecord, CompanyRef, ConfigError, Connector, ConnectorSpec,
    DataError, NotFoundError, RateBudget, Stream,
)

NAME = "Companies House"
API_URL = "https://api.company-information.service.gov.uk"
DOCS_URL = "https://developer-specs.company-information.service.gov.uk/companies-house-public-data-api/reference"
#: officers are paged with start_index / items_per_page (the API allows up to 100)
OFFICERS_PAGE_SIZE = 100
PSC_PAGE_SIZE = 100
MAX_PAGES = 1000
#: ``check`` validates the key with the cheapest call there is: a one-result company search
CHECK_PATH = "/search/companies"

# Labels of the common codes, from companieshouse/api-enumerations constants.yml (tests compare them).
# Codes not listed here are shown as readable text made from the code itself.
COMPANY_TYPES = {
    "ltd": "Private limited company",
    "plc": "Public limited company",
    "llp": "Limited liability partnership",
    "private-unlimited": "Private unlimited company",
    "private-unlimited-nsc": "Private unlimited company without share capital",
    "private-limited-guarant-nsc": "Private limited by guarantee without share capital",
    "private-limited-guarant-nsc-limited-exemption":
        "Private Limited Company by guarantee without share capital, use of 'Limited' exemption",
    "private-limited-shares-section-30-exemption": "Private Limited Company, use of 'Limited' exemption",
    "limited-partnership": "Limited partnership",
    "scottish-partnership": "Scottish qualifying partnership",
    "charitable-incorporated-organisation": "Charitable incorporated organisation",
    "scottish-charitable-incorporated-organisation": "Scottish charitable incorporated organisation",
    "oversea-company": "Overseas company",
    "uk-establishment": "UK establishment company",
    "registered-society-non-jurisdictional": "Registered society",
    "royal-charter": "Royal charter company",
    "other": "Other company type",
}
COMPANY_STATUSES = {
    "active": "Active",
    "dissolved": "Dissolved",
    "liquidation": "Liquidation",
    "receivership": "Receiver Action",
    "converted-closed": "Converted / Closed",
    "voluntary-arrangement": "Voluntary Arrangement",
    "insolvency-proceedings": "Insolvency Proceedings",
    "administration": "In Administration",
    "open": "Open",
    "closed": "Closed",
    "registered": "Registered",
    "removed": "Removed",
}
OFFICER_ROLES = {
    "director": "Director",
    "corporate-director": "Director",
    "nominee-director": "Nominee Director",
    "corporate-nominee-director": "Nominee Director",
    "secretary": "Secretary",
    "corporate-secretary": "Secretary",
    "nominee-secretary": "Nominee Secretary",
    "corporate-nominee-secretary": "Nominee Secretary",
    "llp-member": "LLP Member",
    "corporate-llp-member": "LLP Member",
    "llp-designated-member": "LLP Designated Member",
    "corporate-llp-designated-member": "LLP Designated Member",
    "general-partner-in-a-limited-partnership": "General partner",
    "limited-partner-in-a-limited-partnership": "Limited partner",
    "judicial-factor": "Judicial Factor",
    "receiver-and-manager": "Receiver and Manager",
    "cic-manager": "CIC Manager",
}
#: ownership bands of a person with significant control (psc_descriptions.yml: "ownership-of-shares-*")
SHARE_BANDS = {
    "ownership-of-shares-25-to-50-percent": "25-50%",
    "ownership-of-shares-50-to-75-percent": "50-75%",
    "ownership-of-shares-75-to-100-percent": "75-100%",
    "ownership-of-shares-more-than-25-percent": "more than 25%",
}
_NUMBER = re.compile(r"^(\d{8}|[A-Z]{2}\d{6})$")
_ISO_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_SHORT = re.compile(r"^([A-Z]{2})?(\d{1,7})$")


class CompaniesHouseConfig(Schema):
    """The connection form: one API key from the Companies House developer hub."""

    api_key = fields.String(required=True, metadata={"secret": True, "label": "API key"})
    base_url = fields.Url(load_default=API_URL, require_tld=False, metadata={"label": "API address"})


def label(labels, code):
    """The readable label of ``code``; unknown codes become their words ("in-administration" -> "In administration")."""
    if not code:
        return None
    return labels.get(code) or code.replace("-", " ").capitalize()


def normalise_company_number(value):
    """A valid Companies House number (8 characters: 8 digits, or 2 letters and 6 digits).

    Spaces are removed, letters upper-cased and shorter numbers zero-padded (``"123456"`` ->
    ``"00123456"``, ``"SC1234"`` -> ``"SC001234"``). Raises :class:`ConfigError` for anything else.
    """
    text = re.sub(r"\s+", "", str(value or "")).upper()
    short = _SHORT.match(text)
    if short and len(text) < 8:
        prefix, digits = short.group(1) or "", short.group(2)
        text = prefix + digits.zfill(8 - len(prefix))
    if not _NUMBER.match(text):
        raise ConfigError(
            f"\u201c{value}\u201d is not a Companies House company number. It has 8 characters: "
            "8 digits (for example 09876543) or 2 letters and 6 digits (for example SC123456)."
        )
    return text


def iso_date(value, field="date"):
    """``"2015-11-03"`` -> ``date``; ``None`` and ``""`` stay ``None``; any other shape is a :class:`DataError`."""
    if value in (None, ""):
        return None
    # dates are ISO "format: date" only; never guess "12/09/2023" (https://developer-specs.company-information.service.gov.uk/companies-house-public-data-api/resources/companyprofile)
    if not _ISO_DAY.match(str(value).strip()):
        raise DataError(f"Companies House sent a {field} that is not a date ({str(value)[:40]!r}).")
    return parsing.day(value, field, NAME)


def fiscal_year_end(accounts):
    """``accounts.accounting_reference_date`` ``{"day": "31", "month": "03"}`` -> ``"03-31"``."""
    reference = (accounts or {}).get("accounting_reference_date") or {}
    day, month = reference.get("day"), reference.get("month")
    if not day or not month:
        return None
    return f"{int(month):02d}-{int(day):02d}"


def address(data):
    """The registered office address with Firmsync's field names (empty parts left out)."""
    data = data or {}
    line_1 = " ".join(part for part in (data.get("premises"), data.get("address_line_1")) if part)
    parts = {
        "line_1": line_1,
        "line_2": data.get("address_line_2"),
        "city": data.get("locality"),
        "region": data.get("region"),
        "postal_code": data.get("postal_code"),
        "country": data.get("country"),
    }
    return {key: value for key, value in parts.items() if value}


def officer(item):
    """An officer as the profile stores it: name, role label, start and end dates (ISO)."""
    return {
        "name": item.get("name") or "",
        "role": label(OFFICER_ROLES, item.get("officer_role")),
        "start": item.get("appointed_on"),
        "end": item.get("resigned_on"),
    }


def shareholder(item):
    """A person with significant control as a shareholder: name, share band and natures of control."""
    natures = list(item.get("natures_of_control") or [])
    share = next((SHARE_BANDS[n] for n in natures if n in SHARE_BANDS), None)
    return {
        "name": item.get("name") or "",
        "share": share,
        "natures_of_control": natures,
        "start": item.get("notified_on"),
        "end": item.get("ceased_on"),
    }


def previous_name(item):
    """A former name as the profile stores it: name, and the dates it was used from and until (ISO)."""
    return {"name": item.get("name") or "", "start": item.get("effective_from"), "end": item.get("ceased_on")}


def profile_record(profile, officers=(), shareholders=()):
    """A :class:`CompanyProfileRecord` from ``GET /company/{n}`` plus officers and PSCs."""
    if not profile.get("company_name") or not profile.get("company_number"):
        raise DataError("Companies House sent a company profile without its name or number.")
    accounts = profile.get("accounts") or {}
    next_accounts = accounts.get("next_accounts") or {}
    cessation = iso_date(profile.get("date_of_cessation"), "cessation date")
    extra = {
        "accounts_next_due": accounts.get("next_due") or next_accounts.get("due_on"),
        "accounts_next_made_up_to": accounts.get("next_made_up_to") or next_accounts.get("period_end_on"),
        "last_accounts_made_up_to": (accounts.get("last_accounts") or {}).get("made_up_to"),
        "confirmation_statement_next_due": (profile.get("confirmation_statement") or {}).get("next_due"),
        "sic_codes": list(profile.get("sic_codes") or []),
        "jurisdiction": profile.get("jurisdiction"),
        # both optional (closed companies; renamed ones): https://developer-specs.company-information.service.gov.uk/companies-house-public-data-api/resources/companyprofile
        "date_of_cessation": cessation.isoformat() if cessation else None,
        "previous_names": [previous_name(i) for i in profile.get("previous_company_names") or [] if i.get("name")],
    }
    return CompanyProfileRecord(
        name=profile["company_name"],
        registration_number=profile["company_number"],
        legal_form=label(COMPANY_TYPES, profile.get("type")),
        status=label(COMPANY_STATUSES, profile.get("company_status")),
        address=address(profile.get("registered_office_address")),
        incorporation_date=iso_date(profile.get("date_of_creation"), "incorporation date"),
        fiscal_year_end=fiscal_year_end(accounts),
        officers=tuple(officer(item) for item in officers),
        shareholders=tuple(shareholder(item) for item in shareholders),
        extra={key: value for key, value in extra.items() if value},
    )


class CompanyProfile(Stream):
    name, record_type, primary_key = "company_profile", CompanyProfileRecord, "registration_number"

    def records(self, state, window):
        house = self.connector
        number = house.company_number()
        profile = house.profile(number)
        officers = list(house.listing(f"/company/{number}/officers", OFFICERS_PAGE_SIZE))
        psc = list(house.listing(f"/company/{number}/persons-with-significant-control", PSC_PAGE_SIZE))
        yield profile_record(profile, officers, psc)


class CompaniesHouse(Connector):
    spec = ConnectorSpec(
        key="companies_house",
        display_name=NAME,
        kind=ADMINISTRATION,
        level=FIRM,
        # the API key is the basic-auth user name, with a blank password (https://developer-specs.company-information.service.gov.uk/guides/authorisation)
        auth=Basic(username_field="api_key", password_field=None),
        config_schema=CompaniesHouseConfig,
        api_version="1",
        docs_url=DOCS_URL,
        # 600 requests per 5 minutes per key (https://developer-specs.company-information.service.gov.uk/guides/rateLimiting)
        rate_budget=RateBudget(per_minute=600, window_seconds=300, per="key"),
        reference_label="company number",
        reference_typed=True,
        # the emulator takes any sandbox API key or its own demo key, companies-house-key
        vendor_hosts=("*.company-information.service.gov.uk",),
        sandbox_config={"base_url": "{sandbox}/companies-house", "api_key": "companies-house-key"},
    )
    streams = (CompanyProfile,)

    # -- plumbing ----------------------------------------------------------------------
    @property
    def base_url(self):
        return (self.config.get("base_url") or API_URL).rstrip("/")

    def get(self, path, **params):
        return self.get_json(f"{self.base_url}{path}", params=params or None)

    @staticmethod
    def error_message(response):
        """Companies House's errors: ``{"errors": [{"error": code}]}`` or ``{"error": text}``."""
        if response.status_code == 401:
            return "The API key is not valid. An administrator must enter a current key from the Companies House developer hub."
        try:
            body = response.json()
        except ValueError:
            return None
        if isinstance(body, dict) and isinstance(body.get("errors"), list) and body["errors"]:
            return str(body["errors"][0].get("error") or "").replace("-", " ") or None
        return str(body.get("error") or "") or None if isinstance(body, dict) else None

    def company_number(self, reference=None):
        return normalise_company_number(reference if reference is not None else self.reference)

    def profile(self, number):
        try:
            return self.get(f"/company/{number}")
        except NotFoundError:
            raise NotFoundError(f"Companies House has no company with number {number}.") from None

    def listing(self, path, page_size):
        """Every item of a ``start_index`` / ``items_per_page`` list, up to its ``total_results``.

        Companies House may answer fewer items than asked for, so paging follows the count it
        reports; an absent list (404: no officers or no PSC register) is empty.
        """
        # short pages happen, so follow total_results (https://developer-specs.company-information.service.gov.uk/companies-house-public-data-api/reference/officers/list)
        offset = 0
        for _ in range(MAX_PAGES):
            try:
                body = self.get(path, items_per_page=page_size, start_index=offset)
            except NotFoundError:
                return
            items = body.get("items") or []
            yield from items
            offset += len(items)
            if not items or offset >= int(body.get("total_results") or 0):
                return
        raise DataError(f"Companies House sent more than {MAX_PAGES} pages for {path}: the list seems to loop.")

    # -- contract ----------------------------------------------------------------------
    def check(self):
        self.get(CHECK_PATH, q="limited", items_per_page=1)
        return CheckResult(True, "Connected to Companies House: the API key works. "
                                 "Link a dossier by typing its company number.")

    def list_references(self):
        # Companies House has no listing: the reference is typed (see lookup_reference)
        return [self.lookup_reference(self.reference)] if self.reference else []

    def lookup_reference(self, reference):
        number = self.company_number(reference)
        profile = self.profile(number)
        return CompanyRef(number, profile.get("company_name") or number, {
            "status": label(COMPANY_STATUSES, profile.get("company_status")),
            "legal_form": label(COMPANY_TYPES, profile.get("type")),
        })
