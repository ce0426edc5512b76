"""Every assumption Firmsync makes about the FID-Manager API, in one place.

FID-Manager publishes no API documentation (CONNECTORS.md section 17): what is known is the product (a
Belgian practice-management tool whose client records, the "signalétique", hold mandataries and
shareholders with share counts) and that Silverfin sets up its administrative synchronisation by hand.
Only the kind of data and the reference (the FID-Manager client id) are facts; every endpoint shape below
is a GUESS, kept here so that FID-Manager's documentation (info@fid-manager.com) corrects the package in
this file (and its emulator and fixtures) only. Sources: CONNECTORS.md = ../shared/docs/CONNECTORS.md.
"""
from connectors.base import GUESS, THIRD_PARTY, Assumption

ASSUMPTIONS = {
    # -- facts (3rd-party) ----------------------------------------------------------------
    "data": Assumption(
        "client records ('signalétique'): identity, address, enterprise/VAT number, mandataries, shareholders "
        "with share counts", "CONNECTORS.md section 17 (fid-manager.document360.io user guide)", THIRD_PARTY),
    "reference": Assumption(
        "the FID-Manager client id", "CONNECTORS.md section 17 (Silverfin's sync reference: client id or name)",
        THIRD_PARTY, note="chosen from the list of the firm's company clients"),
    # -- everything else is a guess ---------------------------------------------------
    "auth": Assumption(
        "a firm-level API token sent as 'Authorization: Bearer <token>'",
        "GUESS: CONNECTORS.md section 17 ('a firm-level credential')", GUESS),
    "base_url": Assumption(
        "https://app.fid-manager.com/api", "GUESS: no public host; the connection can name the URL FID-Manager "
        "gives", GUESS),
    "clients_path": Assumption("/v1/clients", "GUESS", GUESS, note="the firm's clients, companies and persons"),
    "client_path": Assumption("/v1/clients/{client}", "GUESS", GUESS,
                              note="one client's signalétique; 404: no such client"),
    "envelope": Assumption("data", "GUESS: listings and objects answer {data: ...}", GUESS),
    "paging": Assumption({"page": "page", "size": "per_page", "page_size": 100, "first": 1}, "GUESS", GUESS,
                         note="page numbers until a short or empty page"),
    "client_fields": Assumption({"id": "id", "name": "name", "type": "type"}, "GUESS", GUESS),
    "company_type": Assumption("company", "GUESS (compared without case); persons are skipped", GUESS),
    "signaletique_fields": Assumption(
        {"name": "name", "legal_form": "legalForm", "enterprise_number": "companyNumber", "vat_number": "vatNumber",
         "address": "address", "incorporated": "foundedOn", "fiscal_year_end": "fiscalYearEnd",
         "mandataries": "mandataries", "shareholders": "shareholders"},
        "GUESS", GUESS, note="name, mandataries and shareholders are required; the others may be null"),
    "address_fields": Assumption(
        {"street": "street", "number": "number", "box": "box", "postal_code": "zip", "city": "city",
         "country": "country"}, "GUESS", GUESS),
    "mandatary_fields": Assumption(
        {"name": "name", "role": "capacity", "start": "startDate", "end": "endDate"}, "GUESS", GUESS,
        note="name and capacity are required; the officer's role is the capacity"),
    "shareholder_fields": Assumption(
        {"name": "name", "shares": "shares", "percentage": "percentage"}, "GUESS", GUESS,
        note="name and shares are required (the share counts the AML forms use)"),
    "rate_limit": Assumption({"per_minute": 60}, "GUESS: unknown; paced conservatively, 429 honoured", GUESS),
}
