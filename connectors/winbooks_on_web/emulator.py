"""Winbooks On Web in the sandbox (``/winbooks``): the API as :mod:`.assumptions` assumes it.

``POST /OAuth20/Token`` (``Authorization: Basic base64(e-mail)``, form ``grant_type=exchange_token``
or ``refresh_token`` with ``code``) answers ``access_token``, ``refresh_token`` (rotating) and
``expires_in`` (900, or the sandbox's ``token_seconds``); ``GET /app/{BookYears|GLAccounts}/Folder/<code>``
and ``POST /app/GLTrans/Folder/<code>/ExecuteCriteria`` (``Conditions`` on ``Date``, operators 3 and 14)
answer JSON arrays of at most :data:`PAGE` objects, continued with the ``ContinuePath`` header.
Folder codes are the sandbox's company ids. A ``revoke`` fault revokes every token and the
exchange token. Since Winbooks documents none of these shapes, this emulator is the assumptions
made executable, not a recording.
"""
import base64

from flask import Blueprint, current_app, jsonify, request

from connectors.emulation.oauth_server import OAuthProvider

PACKAGE = "winbooks_on_web"
#: vendor variants (``sandbox.modes(winbooks_on_web=[...])``)
MODES = {
    "renamed_amount": "ledger lines carry 'Amount' instead of the assumed 'AmountEUR' (an unexpected shape)",
    "single_use_exchange": "the exchange token works once (then only refresh tokens do)",
}
EXCHANGE_TOKENS = ("demo-exchange-token",)
PAGE = 100
TYPES = "Winbooks.TORM.OM.Accounting.{}, Winbooks.TORM.OM"

api = Blueprint("winbooks_on_web", __name__, url_prefix="/winbooks")


class WinbooksTokens(OAuthProvider):
    """The token store, with the exchange token's state (used once, revoked)."""

    def reset(self):
        super().reset()
        self.used_exchange = set()
        self.exchange_revoked = False

    def revoke_all(self):
        super().revoke_all()
        with self.lock:
            self.exchange_revoked = True


def _state():
    return current_app.extensions["sandbox"]


def _tokens():
    return _state().oauth[PACKAGE]


def _error(message, status):
    return jsonify({"error": message, "Message": message}), status


@api.post("/OAuth20/Token")
def token():
    tokens, state = _tokens(), _state()
    auth = request.headers.get("Authorization", "")
    try:
        email = base64.b64decode(auth[6:]).decode() if auth.startswith("Basic ") else ""
    except ValueError:
        email = ""
    if "@" not in email:
        return _error("invalid_client", 401)
    grant, code = request.form.get("grant_type"), request.form.get("code", "")
    if grant == "exchange_token":
        with tokens.lock:
            refused = (code not in EXCHANGE_TOKENS or tokens.exchange_revoked
                       or (state.mode(PACKAGE, "single_use_exchange") and code in tokens.used_exchange))
            tokens.used_exchange.add(code)
        if refused:
            return _error("invalid_grant", 400)
        state.token_grants[PACKAGE] += 1
        return jsonify({**tokens._issue(email), "token_type": "bearer"})
    if grant == "refresh_token":
        state.token_refreshes[PACKAGE] += 1
        with tokens.lock:
            data = tokens.refresh_tokens.get(code)
            if data is None or data["used"]:
                return _error("invalid_grant", 400)
            data["used"] = True
        return jsonify({**tokens._issue(email, data.get("grant")), "token_type": "bearer"})
    return _error("unsupported_grant_type", 400)


@api.before_request
def _bearer():
    if request.path.startswith("/winbooks/app/") and not _tokens().valid_bearer(request.headers.get("Authorization")):
        return _error("Unauthorized", 401)
    return None


def _book(folder):
    return _state().books.get(folder)


def _page(rows):
    start = int(request.headers.get("ContinuePath") or 0)
    response = jsonify(rows[start:start + PAGE])
    if start + PAGE < len(rows):
        response.headers["ContinuePath"] = str(start + PAGE)
    return response


@api.get("/app/<oms>/Folder/<folder>")
def listing(oms, folder):
    book = _book(folder)
    if book is None:
        return _error(f"Folder {folder} not found", 404)
    if oms == "BookYears":
        rows = [{"$type": TYPES.format("BookYear"), "Code": str(start.year), "StartDate": f"{start}T00:00:00",
                 "EndDate": f"{end}T00:00:00"} for start, end in book.fiscal_years]
    elif oms == "GLAccounts":
        rows = [{"$type": TYPES.format("GLAccount"), "Code": a["number"], "Name1": a["name"], "Name2": a["name"]}
                for a in book.accounts]
    else:
        return _error(f"Unknown object model {oms}", 404)
    return _page(rows)


@api.post("/app/GLTrans/Folder/<folder>/ExecuteCriteria")
def gl_trans(folder):
    book = _book(folder)
    if book is None:
        return _error(f"Folder {folder} not found", 404)
    criteria = request.get_json(silent=True) or {}
    low, high = "", "9999"
    for condition in criteria.get("Conditions") or []:
        value = str((condition.get("Values") or [""])[0])[:10]
        if condition.get("PropertyName") == "Date" and condition.get("Operator") == 3:
            low = value
        elif condition.get("PropertyName") == "Date" and condition.get("Operator") == 14:
            high = value
    amount = "Amount" if _state().mode(PACKAGE, "renamed_amount") else "AmountEUR"
    rows = [{"$type": TYPES.format("GLTrans"), "Id": line["id"], "Date": f"{line['date']}T00:00:00",
             "AccountGL": line["account"], amount: float(line["amount"]), "Comment": line["description"],
             "DocNumber": line["reference"], "DBKCode": line["journal"]}
            for line in book.all_lines() if low <= line["date"] <= high]
    return _page(rows)


def register(app, state):
    """Mount Winbooks On Web under ``/winbooks``."""
    seconds = (app.config.get("SANDBOX") or {}).get("token_seconds") or 900
    state.oauth[PACKAGE] = WinbooksTokens(PACKAGE, "Winbooks On Web", state, clients={}, access_seconds=seconds)
    app.register_blueprint(api)
