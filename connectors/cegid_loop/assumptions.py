"""Every assumption Firmsync makes about the Cegid Loop public API, in one place.

Cegid documents Loop's public API in prose on its developer portal (developers.cegid.com, Loop API
management docs); no machine-readable spec or recorded answer is public (CONNECTORS.md sections 4 and
26). The connector reads each value below through ``CegidLoop.assumed(name)``; when Cegid's
documentation (or a diagnostic from a real firm) says otherwise, correct the entry here, the emulator
and the fixtures, and regenerate the README's table: nothing else. Sources: CONNECTORS.md =
../shared/docs/CONNECTORS.md; LOOP = developers.cegid.com, Loop-Api-Management-Docs.
"""
from connectors.base import GUESS, THIRD_PARTY, VERIFIED, Assumption

LOOP = "developers.cegid.com Loop-Api-Management-Docs (CONNECTORS.md section 4)"

ASSUMPTIONS = {
    # -- host and auth ----------------------------------------------------------------
    "base_url": Assumption(
        "https://api.cegid.com/loop-api-publiques", f"{LOOP}: '<resource>?codeDossier=<code>'", VERIFIED),
    "subscription_header": Assumption(
        "Ocp-Apim-Subscription-Key", f"{LOOP} (Azure API Management subscription key from Cegid)", VERIFIED),
    "api_key_header": Assumption(
        "x-apikey", f"{LOOP}, GetStart.html: the firm's API key 'key:client secret' activated in Loop Hub",
        VERIFIED, note="the connection stores the whole 'key:secret' value, encrypted"),
    "dossier_param": Assumption("codeDossier", f"{LOOP}", VERIFIED),
    # -- references -------------------------------------------------------------------
    "dossier_listing": Assumption(
        None, "CONNECTORS.md section 4: no public 'list dossiers' endpoint; the dossiers are those bound to the "
        "key in Loop Hub (cabinet-level listing needs the billable Cabinet key)", GUESS,
        note="dossier codes are typed (or listed in the connection's 'Dossier codes') and verified by a read"),
    "entity_path": Assumption("/etablissementComplet", f"{LOOP} (entities, legal data)", VERIFIED,
                              note="read to verify a typed dossier code and to name it"),
    "entity_fields": Assumption({"name": "raisonSociale"}, f"{LOOP} ('raison sociale, nature, siret')",
                                THIRD_PARTY),
    # -- chart, journals, fiscal years -----------------------------------------------------
    "accounts_path": Assumption("/compte", LOOP, VERIFIED),
    "account_fields": Assumption({"number": "numero", "name": "libelle"}, LOOP, VERIFIED),
    "account_kind_by_class": Assumption(
        {"1": "equity", "2": "asset", "3": "asset", "4": "other", "5": "asset", "6": "expense", "7": "income"},
        "GUESS: the French chart (PCG) class of the account number's first digit; Loop's 'type' 1-7 is not "
        "explained publicly", GUESS),
    "journals_path": Assumption("/journal", LOOP, VERIFIED),
    "journal_fields": Assumption({"code": "code"}, "GUESS: LOOP lists journal types, not the code's field name",
                                 GUESS),
    "fiscal_years_path": Assumption(
        "/exercice", "GUESS: fiscal periods are documented only as Sink events (comptaPeriode*); an 'exercice' "
        "resource is assumed", GUESS,
        note="if Cegid has none, derive the years from the entries (calendar years) here"),
    "fiscal_year_fields": Assumption({"start": "dateDebut", "end": "dateFin"}, "GUESS", GUESS),
    # -- entries ----------------------------------------------------------------------
    "entries_path": Assumption("/EcritureComptable", LOOP, VERIFIED),
    "entries_required_filter": Assumption(
        'ecritureOrigine!=""', f"{LOOP}: EcritureComptable requires a filter on codeLettrage or ecritureOrigine",
        THIRD_PARTY, note="the exact condition that selects every entry is a GUESS"),
    "entries_window_filter": Assumption(
        'journalCode=="{journal}" && datePiece>="{start}" && datePiece<="{end}"',
        f"{LOOP}: secondary filters journalCode and datePiece (==\"AAAA-MM-JJ\" or >=), JavaScript-like syntax",
        THIRD_PARTY, note="one window per journal and fiscal year (clipped to the sync window); '&&' is a GUESS"),
    "entry_fields": Assumption(
        {"entry": "numeroEcriture", "line": "numeroLigne", "journal": "journalCode", "date": "datePiece",
         "account": "compteNumero", "debit": "debit", "credit": "credit", "description": "libelle",
         "reference": "refPiece"},
        "journalCode, datePiece, compteNumero, refPiece: LOOP's filter names; the others GUESS", GUESS),
    "paging": Assumption(
        {"skip": "skip", "take": "take", "page_size": 100}, f"{LOOP}: '[&skip][&take]', at most 100 rows a call",
        VERIFIED, note="a short page ends the listing; the answer is assumed to be a bare JSON array (GUESS)"),
    "balances": Assumption(
        "derived from the lines per period", "CONNECTORS.md section 4: no trial-balance endpoint found", GUESS),
    "ledger_incremental": Assumption(
        False, "CONNECTORS.md section 4: incremental reads go through the Sink (files pushed to storage), not the "
        "REST API", THIRD_PARTY, note="every sync reads the window again; the writer stores only what changed"),
    "rate_limit": Assumption(
        {"per_minute": 60}, "CONNECTORS.md section 4: limits not published; paced conservatively, 429 honoured",
        GUESS, note="a connection can set its own pace ('Calls a minute')"),
}
