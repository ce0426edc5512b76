"""XeroTB: Xero's trial balance at each period end, for organisations with foreign currency.

Xero's API does not expose FX revaluation postings as journals, so a ledger rebuilt from
journals does not tie out; the trial balance does. Same grant, app and config as
:mod:`connectors.xero`; no ledger lines. Notes: ``connectors/xero/README.md``.
Vendor docs: https://developer.xero.com/documentation/api/accounting/reports#trial-balance
"""
from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from connectors.base import BalanceRecord, DataError, Stream
from connectors.xero import Accounts, FiscalYears, Xero, XeroApi, account_record, parse_amount

#: the trial balance's column headers we read (Xero: Account, Debit, Credit, YTD Debit, YTD Credit)
YTD_DEBIT, YTD_CREDIT = "YTD Debit", "YTD Credit"
#: report sections of the balance sheet (their YTD columns carry the balance from earlier years)
BALANCE_SHEET_SECTIONS = {"Assets", "Liabilities", "Equity"}
BALANCE_SHEET_KINDS = {"asset", "liability", "equity"}


def trial_balance(payload, period_end, accounts):
    """``GET Reports/TrialBalance`` -> one :class:`BalanceRecord` per account; checks that it balances.

    ``accounts`` maps AccountID to its :class:`AccountRecord` (from ``GET Accounts``); an
    account missing from it keeps the code Xero prints in the row ("Sales (200)") or its id.
    Xero's YTD columns run from the start of Xero's fiscal year for revenue and expense
    accounts (basis ``"ytd"``) but include earlier years for asset, liability and equity
    accounts (basis ``"closing"``): https://help.xero.com/nz/Report_TrialBalance
    """
    reports = payload.get("Reports") or []
    if not reports:
        raise DataError(f"Xero sent no trial balance at {period_end.isoformat()}.")
    rows = reports[0].get("Rows") or []
    header = next((row for row in rows if row.get("RowType") == "Header"), None)
    columns = [cell.get("Value") for cell in (header or {}).get("Cells") or []]
    if YTD_DEBIT not in columns or YTD_CREDIT not in columns:
        raise DataError(f"Xero's trial balance at {period_end.isoformat()} has no YTD Debit and YTD Credit columns.")
    debit_at, credit_at = columns.index(YTD_DEBIT), columns.index(YTD_CREDIT)

    records, debits, credits = {}, 0, 0
    for section, row in _account_rows(rows):
        cells = row["Cells"]
        account_id = _account_id(cells)
        debit = parse_amount(cells[debit_at].get("Value"), "YTD Debit")
        credit = parse_amount(cells[credit_at].get("Value"), "YTD Credit")
        debits, credits = debits + debit, credits + credit
        account = accounts.get(account_id)
        number = account.number if account else _code_in_label(cells[0].get("Value")) or account_id
        balance_sheet = account.kind in BALANCE_SHEET_KINDS if account else section in BALANCE_SHEET_SECTIONS
        amount = debit - credit + (records[number].amount if number in records else 0)
        records[number] = BalanceRecord(account=number, period_end=period_end, amount=amount,
                                        basis="closing" if balance_sheet else "ytd")
    if debits != credits:
        side, gap = ("debits exceed credits", debits - credits) if debits > credits else ("credits exceed debits", credits - debits)
        raise DataError(f"Xero's trial balance at {period_end.isoformat()} does not balance: {side} by {gap:.2f}")
    return list(records.values())


def _account_rows(rows, section=None):
    """``(section title, row)`` for the rows of a report that carry an account (skipping totals)."""
    for row in rows:
        if row.get("RowType") == "Row" and _account_id(row.get("Cells") or []):
            yield section, row
        yield from _account_rows(row.get("Rows") or [], row.get("Title") or section)


def _account_id(cells):
    for cell in cells[:1]:
        for attribute in cell.get("Attributes") or []:
            if attribute.get("Id") == "account" and attribute.get("Value"):
                return attribute["Value"]
    return None


def _code_in_label(label):
    """``"Sales (200)"`` -> ``"200"``."""
    label = (label or "").strip()
    if label.endswith(")") and "(" in label:
        return label[label.rindex("(") + 1:-1].strip() or None
    return None


class Balances(Stream):
    """One ``Reports/TrialBalance?date=`` per period end of the window (plus the chart, once)."""

    name, record_type = "balances", BalanceRecord

    def records(self, state, window):
        if not window.period_ends:
            return
        xero = self.connector
        accounts = {row.get("AccountID"): account_record(row) for row in xero.get("Accounts").get("Accounts") or []}
        seen = {}
        for period_end in sorted(window.period_ends):
            payload = xero.get("Reports/TrialBalance", params={"date": period_end.isoformat()})
            records = trial_balance(payload, period_end, accounts)
            # Xero leaves out accounts whose balance became zero: say so, or the engine keeps the old one
            present = {record.account for record in records}
            records += [BalanceRecord(account=number, period_end=period_end, amount=Decimal(0), basis=basis)
                        for number, basis in seen.items() if number not in present]
            seen.update((record.account, record.basis) for record in records)
            yield from records


class XeroTB(XeroApi):
    # the same grant, app, budgets and sandbox as Xero: only the key, the name and the streams differ
    spec = replace(Xero.spec, key="xero_tb", display_name="Xero (trial balance only)", oauth_app="xero")
    streams = (FiscalYears, Accounts, Balances)
