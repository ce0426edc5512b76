"""Every assumption Firmsync makes about the WingsOnline API, in one place.

Wings publishes no API documentation at all (CONNECTORS.md section 12: what is known comes from
Banqup/Billtobox help articles and Silverfin's set-up). Only the connection's credentials and the
reference are facts; every endpoint shape below is a GUESS, kept here so that Wings' developer
documentation, when it arrives, corrects the package in this file (and its emulator and fixtures)
only. Until then the firm can upload Wings' exports through the file route (the Sync tab's upload).
Sources: CONNECTORS.md = ../shared/docs/CONNECTORS.md.
"""
from connectors.base import GUESS, THIRD_PARTY, Assumption

ASSUMPTIONS = {
    # -- facts (3rd-party) ----------------------------------------------------------------
    "credentials": Assumption(
        "API user (starts with 'Wings8') and password, set up by Wings", "CONNECTORS.md section 12 "
        "(Banqup/Billtobox help articles)", THIRD_PARTY),
    "reference": Assumption(
        "the dossier code: the last part of the dossier's home directory (Beheer, Instellingen)",
        "CONNECTORS.md section 12 (Banqup/Billtobox; Silverfin's sync reference)", THIRD_PARTY),
    # -- everything else is a guess ---------------------------------------------------
    "auth": Assumption(
        "HTTP basic with the API user and password on every call", "GUESS: CONNECTORS.md section 12 "
        "('a per-dossier HTTP web service with user/password auth')", GUESS),
    "base_url": Assumption(
        None, "GUESS: no public host; the connection asks for the web service URL Wings gives", GUESS),
    "dossier_path": Assumption("/api/v1/dossiers/{dossier}", "GUESS", GUESS,
                               note="read once to verify a typed dossier code; 404: no such dossier"),
    "dossier_fields": Assumption({"code": "code", "name": "name"}, "GUESS", GUESS),
    "fiscal_years_path": Assumption("/api/v1/dossiers/{dossier}/fiscalyears", "GUESS", GUESS),
    "fiscal_year_fields": Assumption({"start": "startDate", "end": "endDate"}, "GUESS", GUESS),
    "accounts_path": Assumption("/api/v1/dossiers/{dossier}/accounts", "GUESS", GUESS),
    "account_fields": Assumption({"number": "number", "name": "description"}, "GUESS", GUESS),
    "account_kind_by_class": Assumption(
        {"1": "equity", "2": "asset", "3": "asset", "4": "other", "5": "asset", "6": "expense", "7": "income"},
        "GUESS: the Belgian minimum chart (PCMN) classes of the account number's first digit", GUESS),
    "entries_path": Assumption("/api/v1/dossiers/{dossier}/entries", "GUESS", GUESS,
                               note="filtered by dateFrom/dateTo (ISO dates)"),
    "entry_fields": Assumption(
        {"id": "id", "date": "date", "account": "account", "amount": "amount", "description": "description",
         "reference": "documentNumber", "journal": "journal"}, "GUESS", GUESS),
    "list_envelope": Assumption("items", "GUESS: every listing answers {items: [...]}", GUESS),
    "paging": Assumption({"page": "page", "size": "pageSize", "page_size": 200, "first": 1}, "GUESS", GUESS,
                         note="page numbers until a short or empty page"),
    "rate_limit": Assumption({"per_minute": 30}, "GUESS: unknown; paced conservatively, 429 honoured", GUESS),
    "incremental": Assumption(False, "GUESS: no modified-since filter known; each sync reads the window again",
                              GUESS),
}
