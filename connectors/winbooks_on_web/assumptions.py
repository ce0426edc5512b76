"""Every assumption Firmsync makes about the Winbooks On Web API, in one place.

Winbooks publishes prose (dev.winbooksonweb.be, help.winbooks.be DEV space), no machine-readable
spec and no recorded answers; the only public client is whitecube/winbooks-on-web-php-client.
The connector reads each value below through ``WinbooksOnWeb.assumed(name)``; when Winbooks'
documentation (or a diagnostic from a real licence) says otherwise, correct the entry here and
its line in README.md, nothing else. Sources: CONNECTORS.md = ../shared/docs/CONNECTORS.md.
"""
from connectors.base import GUESS, THIRD_PARTY, VERIFIED, Assumption

WHITECUBE = "whitecube/winbooks-on-web-php-client"

ASSUMPTIONS = {
    # -- hosts and auth -------------------------------------------------------------------
    "base_url": Assumption(
        "https://rapi.winbooksonweb.be", "dev.winbooksonweb.be, 'Basics of the WinBooks on Web API' "
        "(CONNECTORS.md section 11; the PHP client uses https://prd.winbooksapis.be/wow/v2/)", VERIFIED),
    "token_path": Assumption(
        "/OAuth20/Token", f"CONNECTORS.md section 11; {WHITECUBE}: src/Winbooks.php getAuth()", VERIFIED),
    "token_basic_auth": Assumption(
        "base64(e-mail), no colon, no password", f"{WHITECUBE}: src/Winbooks.php getAuth() "
        "('Basic ' . base64_encode($email))", THIRD_PARTY),
    "exchange_grant": Assumption(
        {"grant_type": "exchange_token", "token_field": "code"},
        f"CONNECTORS.md section 11; {WHITECUBE}: src/Winbooks.php getAccessToken()", THIRD_PARTY),
    "refresh_grant": Assumption(
        {"grant_type": "refresh_token", "token_field": "code"},
        f"CONNECTORS.md section 11; {WHITECUBE}: src/Winbooks.php refreshAuth()", THIRD_PARTY),
    "token_fields": Assumption(
        ("access_token", "refresh_token", "expires_in"), "CONNECTORS.md section 11 (expires_in 900)", THIRD_PARTY),
    "refresh_rotates": Assumption(
        True, "CONNECTORS.md section 2 note 1 (Winbooks returns a new refresh token on every refresh)", THIRD_PARTY,
        note="the new refresh token is saved before the access token is used"),
    "exchange_token_single_use": Assumption(
        True, "GUESS from the e-mailed token and the 'Trusted application' option giving 'more time to use it' "
        "(CONNECTORS.md section 11)", GUESS,
        note="after the first exchange the refresh token is used; when a refresh is refused the exchange token is "
        "tried once more, and if Winbooks refuses it too the administrator enters a new one"),
    # -- URLs -----------------------------------------------------------------------------
    "list_path": Assumption(
        "/app/{oms}/Folder/{folder}", "CONNECTORS.md section 11 URL patterns; "
        f"{WHITECUBE}: src/Winbooks.php all()", VERIFIED),
    "criteria_path": Assumption(
        "/app/{oms}/Folder/{folder}/ExecuteCriteria", "CONNECTORS.md section 11 URL patterns; "
        f"{WHITECUBE}: src/Winbooks.php query()", VERIFIED),
    "folder_listing": Assumption(
        None, "CONNECTORS.md section 11: no list endpoint verified; the folder code is the one in WoW's company "
        "switcher", GUESS, note="references are typed (or listed in the connection's 'folders') and verified by "
        "reading the folder's book years"),
    # -- object models and fields --------------------------------------------------------
    "accounts_oms": Assumption("GLAccounts", f"{WHITECUBE}: src/Models/Accounting/GLAccount.php (OMS)", THIRD_PARTY),
    "account_fields": Assumption(
        {"number": "Code", "name": "Name1"}, "GUESS: Winbooks objects carry 'Code' (whitecube src/Winbooks.php "
        "add()); 'Name1' follows Winbooks' desktop NAME1", GUESS),
    "account_kind_by_class": Assumption(
        {"1": "equity", "2": "asset", "3": "asset", "4": "other", "5": "asset", "6": "expense", "7": "income"},
        "GUESS: the Belgian minimum chart (PCMN) classes of the account number's first digit", GUESS),
    "book_years_oms": Assumption("BookYears", f"{WHITECUBE}: src/Models/Accounting/BookYear.php (OMS)", THIRD_PARTY),
    "book_year_fields": Assumption({"start": "StartDate", "end": "EndDate"}, "GUESS", GUESS),
    "ledger_oms": Assumption("GLTrans", f"{WHITECUBE}: src/Models/Accounting/GLTrans.php (OMS)", THIRD_PARTY),
    "ledger_entity_type": Assumption(
        "Winbooks.TORM.OM.Accounting.GLTrans, Winbooks.TORM.OM", "CONNECTORS.md section 11", VERIFIED),
    "ledger_fields": Assumption(
        {"id": "Id", "date": "Date", "account": "AccountGL", "amount": "AmountEUR", "description": "Comment",
         "reference": "DocNumber", "journal": "DBKCode"},
        "GUESS: Winbooks' desktop ACT columns (ACCOUNTGL, AMOUNTEUR, COMMENT, DOCNUMBER, DBKCODE) in Pascal case",
        GUESS),
    "ledger_date_filter": Assumption(
        {"property": "Date", "ge": 3, "le": 14},
        f"{WHITECUBE}: src/Query.php (OPERATOR_GE = 3, OPERATOR_LE = 14) and tests/Feature/QueryTest.php "
        "(Conditions: Operator, PropertyName, OtherPropertyName, Values)", THIRD_PARTY),
    "ledger_incremental": Assumption(
        False, "CONNECTORS.md section 11: incremental filtering GUESS; no modified-since field is known", GUESS,
        note="every sync reads the window's lines again; the writer stores only what changed"),
    "balances": Assumption(
        "aggregated from GLTrans per account and period", "CONNECTORS.md section 11 (no balance endpoint seen)", GUESS),
    # -- paging and limits ---------------------------------------------------------------
    "continue_header": Assumption(
        "ContinuePath", f"CONNECTORS.md section 11; {WHITECUBE}: src/Winbooks.php request()", THIRD_PARTY,
        note="repeat the same request with the header until the answer has none"),
    "rate_limit": Assumption(
        {"per_minute": 60}, "GUESS: Winbooks publishes no limit; paced conservatively, 429 honoured", GUESS),
}
