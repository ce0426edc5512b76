"""Odoo in the sandbox: four servers (``/odoo/16`` to ``/odoo/19``) and odoo.com (``/odoo/www``), over the
generated books.

Each server answers ``common`` (``version``, ``authenticate``) and ``object`` (``execute_kw``) over XML-RPC
(``/xmlrpc/2/common``, ``/xmlrpc/2/object``) and JSON-RPC (``/jsonrpc``), ``GET /web/version``, and from 19
JSON-2 (``POST /json/2/<model>/<method>``, bearer key, ``X-Odoo-Database``). Databases: ``firmsync`` holds
every generated company (ids 1, 2, 3..., line and account ids interleaved as in a real multi-company
database) and each company also has a database of its own named after it (``c-1001``...). Models:
``res.company``, ``res.users`` (``context_get``), ``account.account``, ``account.move.line`` with ``fields_get``,
``search_read``, ``search``, ``search_count``, ``read_group`` (16-18) and ``formatted_read_group`` (19), field
names per version. Records of a company other than the user's first are visible only when the context's
``allowed_company_ids`` names it, as Odoo's multi-company rules do. The user is :data:`LOGIN` with one of the
sandbox's API keys; ``/_sandbox/faults`` ``revoke`` revokes the keys. A line deleted by ``mutate`` is a line
whose move was reset to draft (``parent_state`` draft, new ``write_date``), or gone (``drafts_deleted``).
"""
from __future__ import annotations

import calendar
import json
import xmlrpc.client
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

from flask import Blueprint, Response, current_app, request

from connectors.emulation.books import entry_of, parse_ts

PACKAGE = "odoo"
#: vendor variants (``sandbox.modes(odoo=[...])``)
MODES = {
    "no_accounting_rights": "the user has no Accounting rights: accounting models raise AccessError",
    "standard_plan": "the database is on a Standard plan: the external API is refused",
    "drafts_deleted": "a deleted line's move was reset to draft and then deleted: the line is gone entirely",
    "no_range": "read_group answers carry the month's label only (no __range), as some older servers do",
}
VERSIONS = ("16", "17", "18", "19")
LOGIN = "admin@firmsync.test"
UID = 2
DATABASE = "firmsync"
ACCOUNT_TYPES = {"asset": "asset_current", "liability": "liability_current", "equity": "equity",
                 "income": "income", "expense": "expense"}
PNL = {"income", "expense"}
PARTNERS = {"SALES": [7, "Dupont SRL"], "PURCH": [8, "Meelfabriek Gent"]}
PLAN_TEXT = "The external API is not available on your plan: it requires the Custom pricing plan."
ACCESS_TEXT = ("You are not allowed to access 'Journal Item' (account.move.line) records.\n\nThis operation is allowed "
               "for the following groups:\n\t- Accounting/Auditor")

api = Blueprint("odoo", __name__, url_prefix="/odoo")


class OdooState:
    """This emulator's own state: whether the API keys were revoked, and the lines per book state. Kept with
    the OAuth providers (``state.oauth``) so the sandbox's reset and its ``revoke`` fault reach it."""

    def __init__(self):
        self.revoked = False
        self.cache = {}

    def reset(self):
        self.revoked = False
        self.cache.clear()

    def revoke_all(self):
        self.revoked = True


class OdooFault(Exception):
    """An Odoo exception: its qualified name, XML-RPC fault code, HTTP status (JSON-2) and message."""

    def __init__(self, name, message, code=1, status=500):
        super().__init__(message)
        self.name, self.message, self.code, self.status = name, message, code, status


def _state():
    return current_app.extensions["sandbox"]


def _odoo():
    return _state().oauth[PACKAGE]


def _mode(name):
    return _state().mode(PACKAGE, name)


# -- databases and records ------------------------------------------------------------------------

def databases():
    books = sorted(_state().books)
    found = {DATABASE: books}
    found.update({book: [book] for book in books})
    return found


def _books_of(database):
    found = databases().get(database)
    if found is None:
        raise OdooFault("psycopg2.OperationalError",
                        f'connection to server failed: FATAL:  database "{database}" does not exist')
    return [_state().books[b] for b in found]


def _money(amount):
    return float(Decimal(amount))


def _stamp(iso):
    return datetime.fromtimestamp(parse_ts(iso), timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def _fy_end(book):
    month = (book.spec.fy_start_month - 2) % 12 + 1
    return month, calendar.monthrange(2023, month)[1]


def companies(database, version):
    rows = []
    for position, book in enumerate(_books_of(database)):
        month, day = _fy_end(book)
        row = {"id": position + 1, "name": book.spec.name, "vat": book.spec.vat_number or False,
               "company_registry": book.spec.vat_number[2:] if book.spec.vat_number else False,
               "currency_id": [position * 10 + 1, book.spec.currency], "fiscalyear_last_day": day,
               "fiscalyear_last_month": str(month),  # a selection: Odoo answers the month as text
               "account_fiscal_country_id": [position * 10 + 2, book.spec.country],
               "fiscalyear_lock_date": book.fiscal_years[0][1].isoformat(),
               "tax_lock_date": book.fiscal_years[0][1].isoformat()}
        if version < 18:
            row["period_lock_date"] = False
        else:
            row.update(hard_lock_date=False, sale_lock_date=False, purchase_lock_date=False)
        rows.append(row)
    return rows


def _unaffected(book):
    equity = [a for a in book.accounts if a["type"] == "equity"]
    named = [a for a in equity if a["name"].startswith("Current year result")]
    return (named or equity[-1:] or [None])[0]


def accounts(database, version):
    rows, books = [], _books_of(database)
    for position, book in enumerate(books):
        unaffected = _unaffected(book)
        for index, account in enumerate(book.accounts):
            account_type = "equity_unaffected" if account is unaffected else ACCOUNT_TYPES[account["type"]]
            row = {"id": position * 10_000 + index + 1, "code": account["number"], "name": account["name"],
                   "account_type": account_type, "include_initial_balance": account["type"] not in PNL,
                   "_company": position + 1}
            if version >= 18:
                row["company_ids"] = [position + 1]
                row["code_store"] = account["number"]
            else:
                row["company_id"] = [position + 1, book.spec.name]
            rows.append(row)
    return rows


def _line_row(line, book, position, count, account_ids, state, written):
    amount = Decimal(line["amount"])
    journal = line["journal"]
    entry_id = line["entry_id"] * count + position
    name = f"{journal}/{line['date'][:4]}/{line['entry_id']:05d}"
    account_id = account_ids[line["account"]]
    foreign = book.spec.currency != "EUR"  # the GBP company invoices in EUR: a foreign-currency amount
    return {
        "id": line["id"] * count + position, "date": line["date"], "move_id": [entry_id, name], "move_name": name,
        "journal_id": [position * 10 + 3 + "SALES PURCH BANK MISC".split().index(journal), journal.title()],
        "account_id": [account_id, f"{line['account']} {account_ids['_names'][line['account']]}"],
        "partner_id": PARTNERS.get(journal, False), "name": line["description"], "ref": line["reference"],
        "debit": _money(max(amount, 0)), "credit": _money(max(-amount, 0)), "balance": _money(amount),
        "amount_currency": _money(amount * Decimal("1.17")) if foreign else _money(amount),
        "currency_id": [91, "EUR"] if foreign else [position * 10 + 1, book.spec.currency],
        "parent_state": state, "write_date": written, "company_id": [position + 1, book.spec.name],
        "_company": position + 1,
    }


def lines(database):
    """Every line of the database (posted, and draft for lines ``mutate`` deleted), cached per book state."""
    books = _books_of(database)
    found = []
    for position, book in enumerate(books):
        key = (database, book.spec.id, book.mutations, book.clock, _mode("drafts_deleted"))
        cache = _odoo().cache
        if key not in cache:
            account_ids = {a["number"]: position * 10_000 + i + 1 for i, a in enumerate(book.accounts)}
            account_ids["_names"] = {a["number"]: a["name"] for a in book.accounts}
            rows = [_line_row(line, book, position, len(books), account_ids, "posted", _stamp(line["modified_at"]))
                    for line in book.all_lines()]
            if not _mode("drafts_deleted"):
                for line_id, deleted_at in book.deleted.items():
                    if 1 <= line_id <= book.line_count:
                        line = next(x for x in book.base_entry(entry_of(line_id - 1)) if x["id"] == line_id)
                        written = datetime.fromtimestamp(deleted_at, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
                        rows.append(_line_row(line, book, position, len(books), account_ids, "draft", written))
            cache[key] = sorted(rows, key=lambda r: r["id"])
        found.extend(cache[key])
    return sorted(found, key=lambda r: r["id"])


# -- domains, orders, groups ----------------------------------------------------------------------

def _value(row, name):
    raw = row.get(name)
    if isinstance(raw, list) and name.endswith("_id"):
        return raw[0]
    return raw


def _leaf(row, leaf):
    name, op, wanted = leaf
    have = _value(row, name)
    if name == "company_ids":
        have = row.get("company_ids") or []
        return any(c in (wanted if isinstance(wanted, list) else [wanted]) for c in have) if op == "in" else False
    if op == "=":
        return have == wanted
    if op == "!=":
        return have != wanted
    if op == "in":
        return have in wanted
    if op == "not in":
        return have not in wanted
    if have is None or have is False:
        return False
    return {"<": have < wanted, "<=": have <= wanted, ">": have > wanted, ">=": have >= wanted}[op]


def matches(row, domain):
    """Odoo's prefix-notation domains: ``&``, ``|``, ``!`` and leaves (implicit ``&`` between them)."""
    def walk(items):
        head = items.pop(0)
        if head == "&":
            return walk(items) & walk(items)
        if head == "|":
            return walk(items) | walk(items)
        if head == "!":
            return not walk(items)
        return _leaf(row, head)

    items = [tuple(x) if isinstance(x, list) else x for x in domain]
    result = True
    while items:
        result = walk(items) and result
    return result


def _ordered(rows, order):
    for part in reversed([p.strip() for p in (order or "id").split(",") if p.strip()]):
        name, _, direction = part.partition(" ")
        rows = sorted(rows, key=lambda r: (_value(r, name) or "", r["id"]) if name != "id" else r["id"],
                      reverse=direction.lower() == "desc")
    return rows


def _public(row, fields):
    names = [f for f in (fields or row) if not f.startswith("_")]
    return {"id": row["id"], **{f: row.get(f, False) for f in names if f != "id"}}


def _grouped(rows, groupby, version):
    groups = {}
    for row in rows:
        account = row["account_id"]
        month = row["date"][:7] + "-01" if "date:month" in groupby else None
        key = (account[0], month)
        group = groups.setdefault(key, {"account": account, "month": month, "balance": Decimal(0), "count": 0})
        group["balance"] += Decimal(str(row["balance"]))
        group["count"] += 1
    answer = []
    for (_, month), group in sorted(groups.items()):
        row = {"account_id": group["account"]}
        extra = [["account_id", "=", group["account"][0]]]
        if month:
            start = date.fromisoformat(month)
            following = date(start.year + start.month // 12, start.month % 12 + 1, 1)
            label = start.strftime("%B %Y")
            extra = ["&", *extra, "&", ["date", ">=", month], ["date", "<", following.isoformat()]]
            if version >= 19:
                row["date:month"] = [month, label]
            else:
                row["date:month"] = label
                if not _mode("no_range"):
                    row["__range"] = {"date:month": {"from": month, "to": following.isoformat()}}
        if version >= 19:
            row.update({"__extra_domain": extra, "balance:sum": float(group["balance"])})
        else:
            row.update({"__count": group["count"], "balance": float(group["balance"]), "__domain": extra})
        answer.append(row)
    return answer


# -- the ORM --------------------------------------------------------------------------------------

FIELD_TYPES = {"id": "integer", "name": "char", "code": "char", "date": "date", "write_date": "datetime",
               "balance": "monetary", "debit": "monetary", "credit": "monetary", "amount_currency": "monetary"}


def _fields_get(rows, extra=()):
    names = set(extra)
    for row in rows[:1]:
        names.update(k for k in row if not k.startswith("_"))
    return {n: {"type": FIELD_TYPES.get(n, "many2one" if n.endswith("_id") else "char")} for n in sorted(names)}


def execute(database, version, model, method, kwargs):
    """One ORM call of the external API (all arguments named)."""
    if _mode("standard_plan"):
        raise OdooFault("odoo.exceptions.AccessDenied", PLAN_TEXT, code=3, status=403)
    context = kwargs.get("context") or {}
    if model == "res.users" and method == "context_get":
        return {"lang": "en_US", "tz": "Europe/Brussels", "uid": UID}
    if model == "res.company":
        rows = companies(database, version)
    elif model == "account.account":
        rows = accounts(database, version)
    elif model == "account.move.line":
        rows = lines(database)
    else:
        raise OdooFault("builtins.KeyError", f"'{model}'", status=404)
    if model.startswith("account.") and _mode("no_accounting_rights"):
        raise OdooFault("odoo.exceptions.AccessError", ACCESS_TEXT, code=4, status=403)
    if method == "fields_get":
        return _fields_get(rows, ("write_date",) if model == "account.move.line" else ())
    if model != "res.company":  # multi-company rule: the context's allowed companies, else the user's first
        allowed = context.get("allowed_company_ids") or [1]
        rows = [row for row in rows if row["_company"] in allowed]
    rows = [row for row in rows if matches(row, kwargs.get("domain") or [])]
    if method in ("search_read", "search", "search_count"):
        rows = _ordered(rows, kwargs.get("order"))
        offset, limit = int(kwargs.get("offset") or 0), kwargs.get("limit")
        rows = rows[offset: offset + int(limit) if limit else None]
        if method == "search":
            return [row["id"] for row in rows]
        if method == "search_count":
            return len(rows)
        return [_public(row, kwargs.get("fields")) for row in rows]
    grouping = {"read_group": version < 19, "formatted_read_group": version >= 19}
    if grouping.get(method):
        groups = _grouped(rows, list(kwargs.get("groupby") or []), version)
        offset, limit = int(kwargs.get("offset") or 0), kwargs.get("limit")
        return groups[offset: offset + int(limit) if limit else None]
    raise OdooFault("builtins.AttributeError", f"The method '{method}' does not exist on the model '{model}'",
                    status=404)


def _check_key(key):
    if _odoo().revoked or key not in _state().api_keys:
        raise OdooFault("odoo.exceptions.AccessDenied", "Access Denied", code=3, status=401)


def _version_answer(version):
    return {"server_version": f"{version}.0", "server_version_info": [version, 0, 0, "final", 0, ""],
            "server_serie": f"{version}.0", "protocol_version": 1}


def service(version, name, method, args):
    """The ``common`` and ``object`` services (RPC)."""
    if name == "common" and method == "version":
        return _version_answer(version)
    if name == "common" and method in ("authenticate", "login"):
        database, login, key = args[0], args[1], args[2]
        _books_of(database)
        if login != LOGIN or _odoo().revoked or key not in _state().api_keys:
            return False
        return UID
    if name == "object" and method == "execute_kw":
        database, uid, key, model, model_method = args[:5]
        positional = list(args[5]) if len(args) > 5 else []
        kwargs = dict(args[6]) if len(args) > 6 else {}
        _books_of(database)
        if uid != UID:
            raise OdooFault("odoo.exceptions.AccessDenied", "Access Denied", code=3)
        _check_key(key)
        if positional and "domain" not in kwargs:
            kwargs["domain"] = positional[0]
        return execute(database, version, model, model_method, kwargs)
    raise OdooFault("builtins.NameError", f"method {method} does not exist in service {name}")


def _traceback(fault):
    return (f"Traceback (most recent call last):\n  File \"/opt/odoo/odoo/http.py\", line 2212, in _transactioning\n"
            f"{fault.name}: {fault.message}\n")


# -- routes ---------------------------------------------------------------------------------------

def _server(version):
    if version not in VERSIONS:
        return None
    return int(version)


@api.post("/<version>/xmlrpc/2/<name>")
def xmlrpc_service(version, name):
    version = _server(version)
    if version is None:
        return Response("Not Found", status=404)
    try:
        params, method = xmlrpc.client.loads(request.get_data(), use_builtin_types=True)
        result = service(version, name, method, params)
        body = xmlrpc.client.dumps((result,), methodresponse=True, allow_none=False)
    except OdooFault as fault:  # /xmlrpc/2: integer codes; an unexpected error carries its traceback
        text = fault.message if fault.code in (2, 3, 4) else _traceback(fault)
        body = xmlrpc.client.dumps(xmlrpc.client.Fault(fault.code, text))
    return Response(body, content_type="text/xml; charset=utf-8")


@api.post("/<version>/jsonrpc")
def jsonrpc_service(version):
    version = _server(version)
    if version is None:
        return Response("Not Found", status=404)
    payload = request.get_json(force=True)
    params = payload.get("params") or {}
    try:
        result = service(version, params.get("service"), params.get("method"), params.get("args") or [])
        body = {"jsonrpc": "2.0", "id": payload.get("id"), "result": result}
    except OdooFault as fault:
        body = {"jsonrpc": "2.0", "id": payload.get("id"), "error": {
            "code": 200, "message": "Odoo Server Error",
            "data": {"name": fault.name, "debug": _traceback(fault), "message": fault.message,
                     "arguments": [fault.message], "context": {}}}}
    return Response(json.dumps(body), content_type="application/json")


def _json2_error(fault):
    body = {"name": fault.name, "message": fault.message, "arguments": [fault.message, fault.status],
            "context": {}, "debug": _traceback(fault)}
    return Response(json.dumps(body), status=fault.status, content_type="application/json; charset=utf-8")


@api.post("/<version>/json/2/<model>/<method>")
def json2(version, model, method):
    version = _server(version)
    if version is None or version < 19:
        return Response("Not Found", status=404)
    try:
        auth = request.headers.get("Authorization", "")
        if not auth.lower().startswith("bearer "):
            raise OdooFault("werkzeug.exceptions.Unauthorized", "Invalid apikey", status=401)
        try:
            _check_key(auth[7:].strip())
        except OdooFault:
            raise OdooFault("werkzeug.exceptions.Unauthorized", "Invalid apikey", status=401) from None
        database = request.headers.get("X-Odoo-Database") or DATABASE
        _books_of(database)
        result = execute(database, version, model, method, request.get_json(force=True) or {})
    except OdooFault as fault:
        if fault.name == "psycopg2.OperationalError":
            fault = OdooFault("werkzeug.exceptions.NotFound", f"Database {request.headers.get('X-Odoo-Database')} "
                                                              "not found.", status=404)
        return _json2_error(fault)
    return Response(json.dumps(result), content_type="application/json; charset=utf-8")


@api.get("/<version>/web/version")
def web_version(version):
    version = _server(version)
    if version is None:
        return Response("Not Found", status=404)
    answer = _version_answer(version)
    return Response(json.dumps({"version_info": answer["server_version_info"], "version": answer["server_version"]}),
                    content_type="application/json")


@api.post("/www/json/2/odoo.database/list")
def database_list():
    """odoo.com: the databases the API key's account manages (GUESS: shape not documented publicly)."""
    auth = request.headers.get("Authorization", "")
    if _odoo().revoked or auth[7:].strip() not in _state().api_keys:
        return _json2_error(OdooFault("werkzeug.exceptions.Unauthorized", "Invalid apikey", status=401))
    base = request.host_url.rstrip("/") + "/odoo/19"
    return Response(json.dumps([{"db": name, "url": base} for name in sorted(databases())]),
                    content_type="application/json; charset=utf-8")


def trial_balance_of(book, start, end):
    """Odoo's trial balance report of ``book`` for [start, end] inside one fiscal year: per account code
    ``(initial, movement, end)``, P&L accounts from the year's start and earlier years' results on the
    unaffected-earnings account (odoo/enterprise account_reports); the tests compare the dossier with it."""
    fy_start = next(s for s, e in _fiscal_years(book, end) if s <= end <= e)
    kinds = {a["number"]: a["type"] for a in book.accounts}
    unaffected = _unaffected(book)["number"]
    rows = {}
    for line in book.all_lines():
        day, code, amount = date.fromisoformat(line["date"]), line["account"], Decimal(line["amount"])
        initial, movement = rows.get(code, (Decimal(0), Decimal(0)))
        if day < start:
            if kinds[code] in PNL:
                if day >= fy_start:
                    initial += amount
                else:
                    before = rows.get(unaffected, (Decimal(0), Decimal(0)))
                    rows[unaffected] = (before[0] + amount, before[1])
                    rows.setdefault(code, (initial, movement))
                    continue
            else:
                initial += amount
        elif day <= end:
            movement += amount
        else:
            continue
        rows[code] = (initial, movement)
    return {code: (i, m, i + m) for code, (i, m) in rows.items()}


def _fiscal_years(book, until):
    start = book.fiscal_years[0][0]
    years = []
    while start <= until:
        following = date(start.year + 1, start.month, 1)
        years.append((start, following - timedelta(days=1)))
        start = following
    return years


def register(app, state):
    """Mount the Odoo servers and odoo.com under ``/odoo``."""
    state.oauth[PACKAGE] = OdooState()
    app.register_blueprint(api)
