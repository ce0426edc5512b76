"""Every assumption Firmsync makes about the Corporify API, in one place.

Corporify publishes no API documentation (CONNECTORS.md section 16): what is known is the product
(a digital share register under the Belgian Companies Code, governing bodies and mandates, the AGM
workflow, fiscal year and AGM date) and that Silverfin lists it among its administration syncs. Only
the reference (the legal entity's enterprise number) and the kind of data are facts; every endpoint
shape below is a GUESS, kept here so that Corporify's documentation (support@corporify.com) corrects
the package in this file (and its emulator and fixtures) only. Sources: CONNECTORS.md =
../shared/docs/CONNECTORS.md.
"""
from connectors.base import GUESS, THIRD_PARTY, Assumption

ASSUMPTIONS = {
    # -- facts (3rd-party) ----------------------------------------------------------------
    "data": Assumption(
        "legal entities, governing bodies and mandates, shareholders and shares, fiscal-year end, AGM date",
        "CONNECTORS.md section 16 (knowledge.corporify.com product pages; Silverfin support article "
        "101000378769)", THIRD_PARTY),
    "reference": Assumption(
        "the legal entity's Belgian enterprise number (10 digits, 0 or 1 first)",
        "CONNECTORS.md section 16 (Silverfin's sync reference)", THIRD_PARTY,
        note="typed when a file is linked, checked for its format and then read once"),
    # -- everything else is a guess ---------------------------------------------------
    "auth": Assumption(
        "a partner API key per customer environment ('silo') in the X-Api-Key header",
        "GUESS: CONNECTORS.md section 16 ('a partner API key per customer environment')", GUESS),
    "base_url": Assumption(
        "https://api.corporify.com", "GUESS: no public host; the connection can name the silo's URL", GUESS),
    "entities_path": Assumption("/api/v1/entities", "GUESS", GUESS,
                                note="listing used by 'Test connection' (first page only)"),
    "entity_path": Assumption("/api/v1/entities/{number}", "GUESS", GUESS,
                              note="{number}: the enterprise number's 10 digits; 404: no such entity"),
    "mandates_path": Assumption("/api/v1/entities/{number}/mandates", "GUESS", GUESS),
    "shareholders_path": Assumption("/api/v1/entities/{number}/shareholders", "GUESS", GUESS),
    "list_envelope": Assumption("items", "GUESS: every listing answers {items: [...]}", GUESS),
    "paging": Assumption({"page": "page", "size": "pageSize", "page_size": 100, "first": 1}, "GUESS", GUESS,
                         note="page numbers until a short or empty page"),
    "entity_fields": Assumption(
        {"number": "enterpriseNumber", "name": "name", "vat_number": "vatNumber", "legal_form": "legalForm",
         "status": "status", "incorporated": "incorporationDate", "address": "registeredOffice",
         "fiscal_year_end": "fiscalYearEnd", "agm_date": "annualMeetingDate", "capital": "capital"},
        "GUESS", GUESS, note="enterpriseNumber and name are required; the others may be null"),
    "address_fields": Assumption(
        {"street": "street", "number": "houseNumber", "box": "box", "postal_code": "postalCode", "city": "city",
         "country": "countryCode"}, "GUESS", GUESS),
    "mandate_fields": Assumption(
        {"name": "holderName", "body": "governingBody", "mandate": "mandate", "start": "startDate",
         "end": "endDate"}, "GUESS", GUESS,
        note="holderName and mandate are required; the officer's role is the mandate"),
    "shareholder_fields": Assumption(
        {"name": "holderName", "share_class": "shareClass", "shares": "numberOfShares",
         "percentage": "percentage", "start": "since"}, "GUESS", GUESS,
        note="holderName and numberOfShares are required"),
    "fiscal_year_end_format": Assumption(
        "day and month: '31/12', '31-12', '12-31' or '--12-31'", "GUESS", GUESS),
    "rate_limit": Assumption({"per_minute": 60}, "GUESS: unknown; paced conservatively, 429 honoured", GUESS),
}
