"""AFAS Profit in the sandbox: ``/afas/<environment>/ProfitRestServices`` with an ``AfasToken`` header.

``GET /connectors/<GetConnector id>?skip=&take=&orderbyfieldids=&filterfieldids=&filtervalues=&operatortypes=``
answers ``{"skip", "take", "rows"}`` for the standard GetConnectors of Mutaties.json (and the guessed log of deleted
mutations) over the generated books, one administration per company (``AdminId`` from the company id). ``take``
defaults to 100 as AFAS's does; an id the App connector lacks answers 401, a filter on an unknown field 500 with
``externalMessage``, maintenance 503 with ``retry_after``. The generic ``revoke`` fault revokes every token.
"""
import base64
import binascii
import re
import threading
from datetime import datetime, timezone
from decimal import Decimal

from flask import Blueprint, Response, current_app, jsonify, request

from connectors.emulation.books import entry_of, iso_ts, lines_in

PACKAGE = "afas"
#: vendor variants (``sandbox.modes(afas=[...])``)
MODES = {
    "maintenance": "every call answers 503 with retry_after 7200 (AFAS Online's maintenance window)",
    "accounts_with_unit": "Profit_Accounts is a custom connector carrying UnitId: one chart per administration",
    "nulls": "empty text fields and zero amounts come as null, as AFAS sends empty fields",
}
DEFAULT_TAKE = 100
MAINTENANCE_SECONDS = 7200
DELETED_CONNECTOR = "Profit_Deleted_Transactions"
SORTS = {"Trade debtors": "Deb", "Trade creditors": "Cre", "Bank account": "Bnk", "Cash": "Kas"}

api = Blueprint("afas", __name__, url_prefix="/afas/<environment>/ProfitRestServices")


class Tokens:
    """App Connector tokens revoked in Profit (reset and revoked like the OAuth packages' grants)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        with self.lock:
            self.revoked = False

    def revoke_all(self):
        with self.lock:
            self.revoked = True


def _state():
    return current_app.extensions["sandbox"]


def token_data(header):
    """The ``<data>`` of an ``AfasToken <base64 XML>`` header, None when it is not one."""
    scheme, _, encoded = (header or "").partition(" ")
    if scheme != "AfasToken":
        return None
    try:
        xml = base64.b64decode(encoded, validate=True).decode()
    except (binascii.Error, ValueError):
        return None
    found = re.fullmatch(r"\s*<token>\s*<version>1</version>\s*<data>(.*)</data>\s*</token>\s*", xml, re.S)
    return found.group(1) if found else None


@api.before_request
def _authorise():
    state = _state()
    if state.mode(PACKAGE, "maintenance"):
        said = "Service temporarily unavailable due to scheduled maintenance. Please check afasstatus.nl for details."
        response = jsonify({"error": {"code": "503", "message": said}, "retry_after": MAINTENANCE_SECONDS})
        response.status_code, response.headers["Retry-After"] = 503, str(MAINTENANCE_SECONDS)
        return response
    if token_data(request.headers.get("Authorization")) not in state.api_keys or state.oauth[PACKAGE].revoked:
        return Response("", status=401, content_type="application/xml; charset=utf-8")
    return None


# -- the data ----------------------------------------------------------------------------------------------


def admin_id(book, position):
    digits = re.sub(r"\D", "", book.spec.id)
    return int(digits) if digits else position + 1


def administrations():
    return {admin_id(book, n): book for n, book in enumerate(_state().books.values())}


def stamp(day):
    return f"{day}T00:00:00Z"


def periods_of(book):
    """``{period end (ISO): (year, period, start, end)}``: 12 monthly periods per fiscal year (Year: its start's)."""
    periods = {}
    for start, end in book.fiscal_years:
        first = start
        for number in range(1, 13):
            following = first.replace(year=first.year + first.month // 12, month=first.month % 12 + 1)
            last = min(following.toordinal() - 1, end.toordinal())
            last = datetime.fromordinal(last).date()
            periods[last.isoformat()] = (start.year, number, first, last)
            first = following
    return periods


def money(amount, nulls=False):
    value = float(Decimal(amount))
    return None if nulls and not value else value


def text(value, nulls=False):
    return None if nulls and not value else value


def account_rows(unit, book, with_unit):
    for account in book.accounts:
        row = {"Account": account["number"], "Description": account["name"],
               "Type": "B" if account["type"] in ("asset", "liability", "equity") else "W",
               "Sort": SORTS.get(account["name"], "Grb"), "Blocked": False, "CollectAccount": False,
               "VatAllowed": account["type"] in ("income", "expense"), "VatCode": "", "DimAx1": "", "DimAx2": ""}
        yield {"UnitId": unit, **row} if with_unit else row


def seq_no(book, line):
    """The line's place in its journal entry (1, 2, ...)."""
    if line["id"] <= book.line_count:
        return line["id"] - lines_in(line["entry_id"] - 1)
    first = min(i for i, other in book.added.items() if other["entry_id"] == line["entry_id"])
    return line["id"] - first + 1


def transaction_row(unit, book, periods, line, nulls):
    year, number, _, _ = periods[line["period_end"]]
    amount = Decimal(line["amount"])
    invoice = line["reference"] if line["journal"] in ("SALES", "PURCH") else ""
    return {"UnitId": unit, "EntryNo": line["entry_id"], "SeqNo": seq_no(book, line), "Year": year, "Period": number,
            "JournalId": line["journal"], "AccountNo": line["account"],
            "AmtDebit": money(max(amount, Decimal(0)), nulls), "AmtCredit": money(max(-amount, Decimal(0)), nulls),
            "EntryDate": stamp(line["date"]), "InvoiceId": text(invoice, nulls), "VoucherDate": stamp(line["date"]),
            "VoucherNo": line["reference"], "VatCode": text("", nulls), "VatAmt": money(0, nulls),
            "Description": text(line["description"], nulls), "Created": line["modified_at"],
            "Modified": line["modified_at"]}


def rows_of(connector):
    """Every row of GetConnector ``connector`` over every administration, or None when the App connector lacks it."""
    state, found = _state(), []
    nulls = state.mode(PACKAGE, "nulls")
    admins = administrations()
    if connector == "Profit_Administrations":
        return [{"AdminId": unit, "AdminNm": book.spec.name, "AdminCd": f"{unit:04d}"[-4:]}
                for unit, book in admins.items()]
    if connector == "Profit_Accounts":
        if state.mode(PACKAGE, "accounts_with_unit"):
            return [row for unit, book in admins.items() for row in account_rows(unit, book, True)]
        chart = {}
        for unit, book in admins.items():
            for row in account_rows(unit, book, False):
                chart.setdefault(row["Account"], row)
        return list(chart.values())
    for unit, book in admins.items():
        periods = periods_of(book)
        if connector == "Profit_periods_per_administration":
            found += [{"Unit": unit, "Year": year, "Period": number, "PeriodDesc": first.strftime("%B %Y"),
                       "DateFrom": stamp(first), "DateTo": stamp(last), "Blocked": False, "Periodtable": 1,
                       "TableDesc": "Maanden"} for year, number, first, last in periods.values()]
        elif connector == "Profit_Period_balance":
            names = {a["number"]: a["name"] for a in book.accounts}
            for (period_end, account), amount in book.movements().items():
                year, number, _, _ = periods[period_end]
                found.append({"UnitId": unit, "Year": year, "Period": number, "AccountNr": account,
                              "AccountDesc": names.get(account, account),
                              "Credit": money(max(-amount, Decimal(0))), "Debit": money(max(amount, Decimal(0))),
                              "Balance": money(amount), "Budget": money(0, nulls)})
        elif connector == "Profit_Transactions":
            found += [transaction_row(unit, book, periods, line, nulls) for line in book.all_lines()]
        elif connector == DELETED_CONNECTOR:  # the guessed log of deleted mutations (see the package README)
            for line_id, deleted_at in book.deleted.items():
                if line_id > book.line_count:
                    continue  # an added entry deleted again: never synced from here
                line = next(ln for ln in book.base_entry(entry_of(line_id - 1)) if ln["id"] == line_id)
                year = periods[line["period_end"]][0]
                found.append({"UnitId": unit, "Year": year, "EntryNo": line["entry_id"], "SeqNo": seq_no(book, line),
                              "Deleted": iso_ts(deleted_at)})
        else:
            return None
    return found


# -- GetConnector queries --------------------------------------------------------------------------------


def comparable(value):
    if isinstance(value, bool) or value is None:
        return (0, str(value))
    try:
        return (1, Decimal(str(value)))
    except ArithmeticError:
        return (2, str(value).rstrip("Z"))


OPERATORS = {"1": lambda a, b: a == b, "2": lambda a, b: a >= b, "3": lambda a, b: a <= b, "4": lambda a, b: a > b,
             "5": lambda a, b: a < b, "7": lambda a, b: a != b}


def profit_error(message, number=-1):
    response = jsonify({"externalMessage": message, "errorNumber": number,
                        "profitLogReference": f"{datetime.now(timezone.utc):%Y%m%d%H%M%S}-AFAS"})
    response.status_code = 500
    return response


@api.get("/connectors/<connector>")
def get_connector(environment, connector):
    rows = rows_of(connector)
    if rows is None:
        return Response("", status=401, content_type="application/xml; charset=utf-8")
    args = request.args
    fields_, values = args.get("filterfieldids", ""), args.get("filtervalues", "")
    if fields_:
        names, wanted, operators = fields_.split(","), values.split(","), args.get("operatortypes", "").split(",")
        if not (len(names) == len(wanted) == len(operators)) or any(op not in OPERATORS for op in operators):
            return profit_error("De filterwaarden komen niet overeen met de filtervelden.")
        for name, value, operator in zip(names, wanted, operators):
            if rows and name not in rows[0]:
                return profit_error(f"Het veld '{name}' bestaat niet in GetConnector {connector}.")
            rows = [row for row in rows if OPERATORS[operator](comparable(row.get(name)), comparable(value))]
    order = [name for name in args.get("orderbyfieldids", "").split(",") if name]
    for name in reversed(order):  # "-Field" sorts descending
        rows.sort(key=lambda row, field=name.lstrip("-"): comparable(row.get(field)), reverse=name.startswith("-"))
    try:
        skip, take = int(args.get("skip", 0)), int(args.get("take", DEFAULT_TAKE))
    except ValueError:
        return profit_error("Ongeldige waarde voor skip of take.")
    if skip < 0 or take < 0:
        return profit_error("Ongeldige combinatie van skip en take.")  # AFAS answers 500 (CONNECTORS.md section 3)
    return jsonify({"skip": skip, "take": take, "rows": rows[skip: skip + take]})


@api.get("/ProfitVersion")
def profit_version(environment):
    return jsonify({"version": "22.22.5"})


def register(app, state):
    """Mount AFAS Profit under ``/afas/<environment>/ProfitRestServices``."""
    state.oauth[PACKAGE] = Tokens()
    app.register_blueprint(api)
