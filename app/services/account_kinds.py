"""Account kinds for a file's accounts: several at once, and suggestions from the account number.

Accounts that come by upload (trial balance or ledger lines in CSV or XLSX) have no kind
("other"), so the Figures tab's trial balance has one group and the result and equity chart
stays flat. :func:`classify_accounts` gives several accounts one kind at once (or each its
suggested kind); the choice is saved like one made with "Classify an account"
(:mod:`app.services.account_mapping`: an :class:`~app.models.AccountMapping` of origin
``firm``, kept across later uploads), audited and committed.

:func:`suggested_kind` reads the kind off the account number where the country's standard
chart fixes it by the number's first digits (docs/console.md, "Classifying uploaded
accounts"):

* Belgium: the minimum standardised chart of accounts (PCMN / MAR) of the Royal Decree of
  12 September 1983 determining its content and presentation (as amended);
* France: the Plan comptable général of ANC Regulation No 2014-03 (as amended), its chart
  of accounts, classes 1 to 7.

Where the chart leaves the kind open (Belgian 18-19 and 499, French 18 and 44-47, class 0,
8 and 9) there is no suggestion, and none for other countries: the Dutch RGS and other
charts do not fix the kind by the first digit.
"""
from flask_babel import gettext
from sqlalchemy import select
from werkzeug.exceptions import Forbidden

from app import audit
from app.access import can
from app.extensions import db
from app.models import Account, AccountMapping, Firm
from app.services.account_mapping import KINDS, MappingError, mappings_of

#: the kind value of the bulk form asking for each account's own suggestion
SUGGESTED = "suggested"
#: at most this many accounts in one classification (a form cannot reasonably hold more)
MAX_ACCOUNTS = 5000
#: country -> {leading digits of the account number: kind}; the longest matching prefix wins
CLASS_RULES = {
    "BE": {
        "10": "equity", "11": "equity", "12": "equity", "13": "equity", "14": "equity", "15": "equity",
        "16": "liability", "17": "liability",
        "2": "asset", "3": "asset",
        "40": "asset", "41": "asset",
        "42": "liability", "43": "liability", "44": "liability", "45": "liability", "46": "liability",
        "47": "liability", "48": "liability",
        "490": "asset", "491": "asset", "492": "liability", "493": "liability",
        "5": "asset", "6": "expense", "7": "income",
    },
    "FR": {
        "10": "equity", "11": "equity", "12": "equity", "13": "equity", "14": "equity",
        "15": "liability", "16": "liability", "17": "liability",
        "2": "asset", "3": "asset",
        "40": "liability", "41": "asset", "42": "liability", "43": "liability",
        "486": "asset", "487": "liability", "49": "asset",
        "5": "asset", "6": "expense", "7": "income",
    },
}


def suggestion_country(dossier):
    """The country whose standard chart suggests kinds for ``dossier``: the client file's own
    country (its books follow it), else its firm's."""
    return (dossier.country or db.session.scalar(select(Firm.country).where(Firm.id == dossier.firm_id)) or "").upper()


def suggested_kind(country, number):
    """The kind the standard chart of ``country`` gives account ``number`` (by its leading
    digits), or None where the chart does not fix it or the country has no rule."""
    rules = CLASS_RULES.get((country or "").upper())
    digits = str(number or "").strip()
    if not rules or not digits[:1].isdigit():
        return None
    for length in range(min(len(digits), 3), 0, -1):
        kind = rules.get(digits[:length])
        if kind is not None:
            return kind
    return None


def suggestions(dossier, accounts):
    """``{account number: suggested kind}`` of ``accounts`` of ``dossier`` (those with one)."""
    country = suggestion_country(dossier)
    found = {account.number: suggested_kind(country, account.number) for account in accounts}
    return {number: kind for number, kind in found.items() if kind}


def may_classify(actor, dossier):
    """May ``actor`` classify the accounts of ``dossier``? Who may upload into it; support reads only."""
    return actor is not None and not actor.is_support and can(actor, "upload_data", dossier.id)


def classify_accounts(actor, dossier, numbers, kind):
    """Give the accounts ``numbers`` of ``dossier`` the account ``kind`` (one of
    :data:`~app.services.account_mapping.KINDS`), or each its :func:`suggested_kind` when
    ``kind`` is :data:`SUGGESTED` (accounts without a suggestion keep theirs). Saved as the
    firm's mapping (kept across uploads), one audit event, committed. Answers how many
    accounts changed kind. :class:`MappingError` (nothing written) for an unknown kind, no
    account, too many, or a number that is not in the file's chart; Forbidden when the actor
    may not classify this file's accounts."""
    if not may_classify(actor, dossier):
        raise Forbidden("You may not classify this file's accounts.")
    if kind != SUGGESTED and kind not in KINDS:
        raise MappingError(gettext("'%(kind)s' is not an account kind.", kind=str(kind)[:20]))
    wanted = sorted({str(number).strip() for number in numbers if str(number).strip()})
    if not wanted:
        raise MappingError(gettext("Select at least one account."))
    if len(wanted) > MAX_ACCOUNTS:
        raise MappingError(gettext("Classify at most %(count)s accounts at once.", count=MAX_ACCOUNTS))
    accounts = {account.number: account for account in db.session.scalars(
        select(Account).where(Account.dossier_id == dossier.id, Account.number.in_(wanted)))}
    missing = [number for number in wanted if number not in accounts]
    if missing:
        raise MappingError(gettext("Account %(number)s is not in this file's chart.", number=missing[0][:50]))
    country = suggestion_country(dossier)
    mappings = mappings_of(dossier.id)
    changes = {}
    for number, account in accounts.items():
        new = suggested_kind(country, number) if kind == SUGGESTED else kind
        if new is None:
            continue
        row = mappings.get(number)
        if row is None:
            row = AccountMapping(dossier_id=dossier.id, account_number=number)
            db.session.add(row)
        row.scheme, row.code, row.kind, row.origin = "firm", "", new, "firm"
        if account.kind != new:
            changes[number] = [account.kind, new]
            account.kind = new
    how = "their suggested kinds" if kind == SUGGESTED else kind
    audit.record(actor, "data.map_accounts", dossier, dossier_id=dossier.id,
                 summary=f"{len(wanted)} accounts classified as {how} ({len(changes)} changed)",
                 changes={"kind": kind, "accounts": changes})
    db.session.commit()
    return len(changes)
