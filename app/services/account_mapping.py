"""Classifying a file's accounts: standard mappings from audit files, reference charts, the firm's choice.

An account's kind (asset, liability, equity, income, expense, other) groups the Figures tab's
trial balance. It comes, strongest first, from:

1. the **firm** (:func:`map_account` to a kind, :func:`map_to_reference` to an account of a
   reference chart; the Figures tab's "Classify an account" form): kept whatever later
   uploads or reference-chart classifications say;
2. the **file**: the standard mapping an uploaded audit file carries (XAF's RGS code, SAF-T's
   grouping code), saved by :func:`remember_file_mappings` at each audit-file upload;
3. a **reference chart** (:func:`classify_with_reference`): every account without a firm
   mapping matched by number to the Belgian, French, Dutch or UK standard chart
   (``REFERENCE_CHART_DIR``, default ``../shared/data/charts`` beside the repository).

Mappings live in :class:`app.models.AccountMapping`, one per dossier and account number, so
the next upload (audit file, CSV or XLSX: those keep an account's kind) finds them again.
"""
from __future__ import annotations

import csv
from pathlib import Path

from flask import current_app
from flask_babel import gettext
from sqlalchemy import select
from werkzeug.exceptions import Forbidden

from app import audit
from app.access import can
from app.extensions import db
from app.models import Account, AccountMapping

KINDS = ("asset", "liability", "equity", "income", "expense", "other")
#: the reference charts: country -> file in the reference chart folder
REFERENCE_CHARTS = {"be": "be-account-template.csv", "fr": "fr-account-template.csv",
                    "nl": "nl-account-template.csv", "uk": "uk-account-template.csv"}
#: an account number and a reference code must share this many leading characters to match
MIN_PREFIX = 2


class MappingError(ValueError):
    """A mapping request that cannot be done (a sentence for the user)."""


def kind_of_reference_type(account_type):
    """The account kind of a reference chart's account type (``asset_receivable``, ``income_other``...)."""
    prefix = (account_type or "").split("_")[0]
    return prefix if prefix in ("asset", "liability", "equity", "income", "expense") else "other"


def remember_file_mappings(session, dossier_id, accounts):
    """Save the standard mappings of an audit file's chart (``{number: ChartAccount}``) and
    answer ``{number: kind}`` to write: the firm's kind where it chose one, else the file's."""
    existing = {row.account_number: row for row in session.scalars(
        select(AccountMapping).where(AccountMapping.dossier_id == dossier_id))}
    kinds = {}
    for number, account in accounts.items():
        row = existing.get(number)
        if row is not None and row.origin == "firm":
            kinds[number] = row.kind
            continue
        scheme, code = next(iter(account.mappings.items()), ("", ""))
        if not code and account.kind == "other":
            if row is not None:
                kinds[number] = row.kind
            continue
        if row is None:
            row = AccountMapping(dossier_id=dossier_id, account_number=number)
            session.add(row)
        if (row.scheme, row.code, row.kind, row.origin) != (scheme, code[:64], account.kind, "file"):
            row.scheme, row.code, row.kind, row.origin = scheme, code[:64], account.kind, "file"
        kinds[number] = account.kind
    return kinds


def map_account(actor, dossier, number, kind, code=""):
    """The firm's own kind for one account (kept across uploads); audited, committed."""
    _check(actor, dossier)
    if kind not in KINDS:
        raise MappingError(gettext("'%(kind)s' is not an account kind.", kind=kind))
    _save_firm_mapping(actor, dossier, number, kind, "firm", code)


def map_to_reference(actor, dossier, number, country, code):
    """Map one account to the account ``code`` of the reference chart of ``country``: the
    account takes that account's kind, and the mapping (origin ``firm``) is kept across uploads
    and reference-chart classifications. Answers the reference account ``(code, name, kind)``.
    MappingError when the chart or the code is unknown; audited, committed."""
    _check(actor, dossier)
    reference = reference_account(country, code)
    _save_firm_mapping(actor, dossier, number, reference[2], f"reference:{country}", reference[0])
    return reference


def mappings_of(dossier_id):
    """``{account number: AccountMapping}`` of a dossier (what the Figures tab shows beside each account)."""
    return {row.account_number: row for row in db.session.scalars(
        select(AccountMapping).where(AccountMapping.dossier_id == dossier_id))}


def _save_firm_mapping(actor, dossier, number, kind, scheme, code):
    account = db.session.scalar(select(Account).where(Account.dossier_id == dossier.id, Account.number == number))
    if account is None:
        raise MappingError(gettext("Account %(number)s is not in this file's chart.", number=str(number)[:50]))
    row = _row(dossier.id, number)
    before = (account.kind, row.scheme, row.code)
    row.scheme, row.code, row.kind, row.origin = scheme, (code or "")[:64], kind, "firm"
    account.kind = kind
    audit.record(actor, "data.map_account", dossier, dossier_id=dossier.id,
                 summary=f"Account {number} classified as {kind}" + (f" ({scheme} {code})" if code else ""),
                 changes={"account": number, "kind": [before[0], kind],
                          "mapping": [f"{before[1] or ''} {before[2] or ''}".strip(), f"{scheme} {code or ''}".strip()]})
    db.session.commit()


def classify_with_reference(actor, dossier, country):
    """Classify every account of ``dossier`` the firm has not mapped, by the reference chart of
    ``country``; answers how many accounts changed kind. Audited, committed."""
    _check(actor, dossier)
    chart = reference_chart(country)
    firm = set(db.session.scalars(select(AccountMapping.account_number).where(
        AccountMapping.dossier_id == dossier.id, AccountMapping.origin == "firm")))
    changed = 0
    for account in db.session.scalars(select(Account).where(Account.dossier_id == dossier.id)):
        if account.number in firm:
            continue
        match = best_match(chart, account.number)
        if match is None:
            continue
        code, kind = match
        row = _row(dossier.id, account.number)
        row.scheme, row.code, row.kind, row.origin = f"reference:{country}", code, kind, "reference"
        if account.kind != kind:
            account.kind = kind
            changed += 1
    audit.record(actor, "data.classify_accounts", dossier, dossier_id=dossier.id,
                 summary=f"Accounts classified by the {country.upper()} reference chart ({changed} changed)",
                 changes={"country": country, "changed": changed})
    db.session.commit()
    return changed


def reference_chart(country):
    """``[(code, kind), ...]`` of the reference chart of ``country`` (MappingError when absent)."""
    return [(code, kind) for code, _name, kind in _reference_rows(country)]


def reference_account(country, code):
    """``(code, name, kind)`` of the account ``code`` of the reference chart of ``country``
    (MappingError when the chart is absent or has no such account)."""
    code = str(code or "").strip()
    for row in _reference_rows(country):
        if row[0] == code:
            return row
    raise MappingError(gettext("The reference chart has no account %(code)s.", code=code[:20]))


def _reference_rows(country):
    name = REFERENCE_CHARTS.get(country)
    configured = current_app.config.get("REFERENCE_CHART_DIR")
    folder = Path(configured) if configured else Path(current_app.root_path).parent.parent / "shared/data/charts"
    if name is None or not (folder / name).is_file():
        raise MappingError(gettext("That reference chart is not installed on this server."))
    with open(folder / name, encoding="utf-8", newline="") as source:
        return [(row["code"].strip(), (row.get("name") or "").strip(), kind_of_reference_type(row["account_type"]))
                for row in csv.DictReader(source) if row.get("code")]


def best_match(chart, number):
    """The ``(code, kind)`` of ``chart`` sharing the longest leading part with ``number`` (at
    least :data:`MIN_PREFIX` characters; ties: the shortest code, the most general), else None."""
    best, best_length = None, MIN_PREFIX - 1
    for code, kind in chart:
        length = 0
        for a, b in zip(code, number):
            if a != b:
                break
            length += 1
        if length > best_length or (length == best_length and best is not None and len(code) < len(best[0])):
            best, best_length = (code, kind), length
    return best


def _row(dossier_id, number):
    row = db.session.scalar(select(AccountMapping).where(AccountMapping.dossier_id == dossier_id,
                                                         AccountMapping.account_number == number))
    if row is None:
        row = AccountMapping(dossier_id=dossier_id, account_number=number)
        db.session.add(row)
    return row


def _check(actor, dossier):
    if not can(actor, "upload_data", dossier.id):
        raise Forbidden("You may not classify this file's accounts.")
