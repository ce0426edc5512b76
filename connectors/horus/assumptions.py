"""Every assumption Firmsync makes about the Horus API, in one place.

Horus Software gives its developer documentation only with a client id (e-mail developer@horus-software.be,
subject "New Api Integration Request"); what is public are integrators' guides (apideck.com "How to
Integrate with the Horus Software API", 2026; unified.to's Horus page; Chift's help) and Caseware's link,
which stores exactly a refresh token and a company URL (CONNECTORS.md sections 1, 6 and 26). The connector
reads each value below through ``Horus.assumed(name)``; when Horus' documentation (or a diagnostic from a
real customer) says otherwise, correct the entry here, the emulator and the fixtures, and regenerate the
README's table: nothing else. Sources: CONNECTORS.md = ../shared/docs/CONNECTORS.md.
"""
from connectors.base import GUESS, THIRD_PARTY, Assumption

APIDECK = "apideck.com, 'How to Integrate with the Horus Software API' (2026; CONNECTORS.md section 6)"
UNIFIED = "unified.to Horus integration page (CONNECTORS.md section 6)"

ASSUMPTIONS = {
    # -- host and auth ----------------------------------------------------------------
    "api_host": Assumption(
        "per customer: each fiduciary or SME has its own database and API endpoint (the 'company URL')",
        f"{APIDECK}; Caseware's Horus link stores a refresh token and a company URL (CONNECTORS.md section 6)",
        THIRD_PARTY, note="stored on the connection as its API URL; no vendor host pattern is enforced"),
    "oauth_grant": Assumption(
        "authorization code; client id and secret from Horus on request; a Horus user (the accountant) consents",
        f"{APIDECK}; Chift help (CONNECTORS.md section 6)", THIRD_PARTY),
    "authorize_path": Assumption("/oauth/authorize", "GUESS: joined to the customer's API host", GUESS,
                                 note="if Horus has one central login, set an absolute URL here"),
    "token_path": Assumption("/oauth/token", "GUESS: joined to the customer's API host", GUESS),
    "token_client_auth": Assumption("client_secret_post", "GUESS", GUESS),
    "pkce": Assumption(False, "GUESS: PKCE is not mentioned in the public guides", GUESS),
    "refresh_rotates": Assumption(
        True, "GUESS: token lifetimes are not public; a returned refresh token is always saved before use", GUESS),
    # -- references -------------------------------------------------------------------
    "folders_path": Assumption("/api/v1/folders", f"{UNIFIED} (folder = organization); path GUESS", GUESS),
    "folder_fields": Assumption({"id": "id", "name": "name"}, "GUESS", GUESS),
    "folder_param": Assumption("folderId", f"{UNIFIED} (accounts need the org id, i.e. the folder); name GUESS",
                               GUESS),
    # -- data ----------------------------------------------------------------------
    "accounts_path": Assumption("/api/v1/accounts", f"{UNIFIED} ('account', filtered by folder); path GUESS", GUESS),
    "account_fields": Assumption({"number": "number", "name": "name"}, "GUESS", GUESS),
    "account_kind_by_class": Assumption(
        {"1": "equity", "2": "asset", "3": "asset", "4": "other", "5": "asset", "6": "expense", "7": "income"},
        "GUESS: the Belgian minimum chart (PCMN) class of the account number's first digit", GUESS),
    "ledger_path": Assumption("/api/v1/accounthistories", f"{UNIFIED} ('accounthistory' = GL lines); path GUESS",
                              GUESS, note="book entries ('bookentries') group the lines; not read separately"),
    "ledger_fields": Assumption(
        {"id": "id", "date": "date", "account": "accountNumber", "debit": "debit", "credit": "credit",
         "description": "description", "reference": "documentNumber", "journal": "journalCode"}, "GUESS", GUESS),
    "ledger_date_filter": Assumption({"from": "dateFrom", "to": "dateTo"}, "GUESS (ISO dates)", GUESS),
    "fiscal_years_path": Assumption(
        "/api/v1/financialyears", "GUESS: periods and financial years are not in public material "
        "(CONNECTORS.md section 6)", GUESS),
    "fiscal_year_fields": Assumption({"start": "startDate", "end": "endDate"}, "GUESS", GUESS),
    "balances": Assumption(
        "aggregated from accounthistory per account and period", "CONNECTORS.md section 6 (TB: GUESS)", GUESS),
    "ledger_incremental": Assumption(
        False, "GUESS: no modified-since filter is public", GUESS,
        note="every sync reads the window again; the writer stores only what changed"),
    # -- paging and limits ---------------------------------------------------------------
    "list_envelope": Assumption("data", f"GUESS from {APIDECK}'s sideloading (JSON:API-like documents)", GUESS),
    "paging": Assumption({"page": "page", "size": "pageSize", "first": 1, "page_size": 100}, "GUESS", GUESS,
                         note="a short or empty page ends the listing"),
    "rate_limit": Assumption({"per_minute": 60}, "CONNECTORS.md section 6: limits not published; paced "
                             "conservatively, 429 honoured", GUESS),
}
