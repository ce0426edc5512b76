"""WingsOnline in the sandbox (``/wings``): the API as :mod:`.assumptions` guesses it (Wings documents none).

HTTP basic with an API user starting with ``Wings8`` and the password; ``GET /api/v1/dossiers/<code>``,
``/fiscalyears``, ``/accounts`` and ``/entries?dateFrom=&dateTo=``, each listing ``{"items": [...]}`` paged
with ``page`` and ``pageSize``. Dossier codes are the sandbox's company ids. A ``revoke`` fault revokes the
API user (every call then answers 401). This is the assumptions made executable, not a recording.
"""
import base64
import threading

from flask import Blueprint, current_app, jsonify, request

PACKAGE = "wings_online"
#: vendor variants (``sandbox.modes(wings_online=[...])``)
MODES = {"dutch_fields": "entry lines carry Dutch field names (bedrag, rekening) instead of the assumed ones"}
PASSWORD = "demo-wings-password"

api = Blueprint("wings_online", __name__, url_prefix="/wings/api/v1")


class ApiUsers:
    """The API users Wings set up; the sandbox's ``revoke`` fault and reset reach them through ``state.oauth``."""

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


@api.before_request
def _basic():
    header = request.headers.get("Authorization", "")
    try:
        user, _, password = base64.b64decode(header[6:]).decode().partition(":") if header.startswith("Basic ") \
            else ("", "", "")
    except ValueError:
        user, password = "", ""
    if not user.startswith("Wings8") or password != PASSWORD or _state().oauth[PACKAGE].revoked:
        return jsonify({"message": "Access denied"}), 401
    return None


def _book(code):
    return _state().books.get(code)


def _page(rows):
    page, size = int(request.args.get("page", 1)), int(request.args.get("pageSize", 200))
    return jsonify({"items": rows[(page - 1) * size: page * size]})


@api.get("/dossiers/<code>")
def dossier(code):
    book = _book(code)
    if book is None:
        return jsonify({"message": f"Dossier {code} not found"}), 404
    return jsonify({"code": code, "name": book.spec.name})


@api.get("/dossiers/<code>/fiscalyears")
def fiscal_years(code):
    book = _book(code)
    if book is None:
        return jsonify({"message": f"Dossier {code} not found"}), 404
    return _page([{"startDate": str(start), "endDate": str(end)} for start, end in book.fiscal_years])


@api.get("/dossiers/<code>/accounts")
def accounts(code):
    book = _book(code)
    if book is None:
        return jsonify({"message": f"Dossier {code} not found"}), 404
    return _page([{"number": a["number"], "description": a["name"]} for a in book.accounts])


@api.get("/dossiers/<code>/entries")
def entries(code):
    book = _book(code)
    if book is None:
        return jsonify({"message": f"Dossier {code} not found"}), 404
    low, high = request.args.get("dateFrom", ""), request.args.get("dateTo", "9999")
    dutch = _state().mode(PACKAGE, "dutch_fields")
    rows = [{"id": line["id"], "date": line["date"], ("rekening" if dutch else "account"): line["account"],
             ("bedrag" if dutch else "amount"): line["amount"], "description": line["description"],
             "documentNumber": line["reference"], "journal": line["journal"]}
            for line in book.all_lines() if low <= line["date"] <= high]
    return _page(rows)


def register(app, state):
    """Mount WingsOnline under ``/wings``."""
    state.oauth[PACKAGE] = ApiUsers()
    app.register_blueprint(api)
