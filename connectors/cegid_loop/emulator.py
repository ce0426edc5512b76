"""Cegid Loop in the sandbox (``/cegid/loop-api-publiques``): the API as :mod:`.assumptions` assumes it.

Every call carries ``Ocp-Apim-Subscription-Key`` and ``x-apikey: key:secret`` (else 401 in APIM's shape);
``GET /etablissementComplet``, ``/compte``, ``/journal``, ``/exercice`` and ``/EcritureComptable`` take
``codeDossier`` (the sandbox's company ids), ``skip`` and ``take`` (more than 100 is refused), and answer
JSON arrays. ``EcritureComptable`` needs a ``filter`` with ``ecritureOrigine`` and understands
``journalCode==``, ``datePiece>=`` and ``datePiece<=``. A ``revoke`` fault deactivates the API key.
Since Cegid documents none of the answers' shapes, this emulator is the assumptions made executable.
"""
import re
import threading

from flask import Blueprint, current_app, jsonify, request

PACKAGE = "cegid_loop"
#: vendor variants (``sandbox.modes(cegid_loop=[...])``)
MODES = {"amount_field": "entry lines carry one signed 'montant' instead of the assumed 'debit' and 'credit'"}
SUBSCRIPTION_KEY = "demo-subscription-key"
API_KEY = "demo-key:demo-secret"
MAX_TAKE = 100

api = Blueprint("cegid_loop", __name__, url_prefix="/cegid/loop-api-publiques")


class LoopKeys:
    """The firm's API key as Loop Hub holds it; ``revoke`` deactivates it (reached through ``state.oauth``)."""

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


def _refuse(status, message):
    return jsonify({"statusCode": status, "message": message}), status


@api.before_request
def _keys():
    if request.headers.get("Ocp-Apim-Subscription-Key") != SUBSCRIPTION_KEY:
        return _refuse(401, "Access denied due to invalid subscription key.")
    if request.headers.get("x-apikey") != API_KEY or _state().oauth[PACKAGE].revoked:
        return _refuse(401, "Invalid or inactive API key.")
    return None


def _book():
    return _state().books.get(request.args.get("codeDossier", ""))


def _page(rows):
    skip, take = int(request.args.get("skip", 0)), int(request.args.get("take", MAX_TAKE))
    if take > MAX_TAKE:
        return _refuse(400, f"take cannot exceed {MAX_TAKE}.")
    return jsonify(rows[skip:skip + take])


def _dossier_or_404(answer):
    book = _book()
    if book is None:
        return _refuse(404, "Dossier not found.")
    return answer(book)


@api.get("/etablissementComplet")
def entity():
    return _dossier_or_404(lambda book: _page([{"raisonSociale": book.spec.name, "siret": "00000000000000",
                                                "nature": "SAS"}]))


@api.get("/compte")
def accounts():
    return _dossier_or_404(lambda book: _page([
        {"numero": a["number"], "libelle": a["name"], "type": 1, "collectif": False, "lettrable": False,
         "ferme": False} for a in book.accounts]))


@api.get("/journal")
def journals():
    from connectors.emulation.books import JOURNALS

    return _dossier_or_404(lambda book: _page([{"code": code, "libelle": code.title(), "type": 2}
                                               for code in JOURNALS]))


@api.get("/exercice")
def fiscal_years():
    return _dossier_or_404(lambda book: _page([{"dateDebut": str(start), "dateFin": str(end)}
                                               for start, end in book.fiscal_years]))


def _condition(text, name, operator):
    found = re.search(rf'{name}\s*{re.escape(operator)}\s*"([^"]*)"', text)
    return found.group(1) if found else None


@api.get("/EcritureComptable")
def entries():
    book = _book()
    if book is None:
        return _refuse(404, "Dossier not found.")
    text = request.args.get("filter", "")
    if "ecritureOrigine" not in text and "codeLettrage" not in text:
        return _refuse(400, "A filter on codeLettrage or ecritureOrigine is required.")
    journal = _condition(text, "journalCode", "==")
    low, high = _condition(text, "datePiece", ">=") or "", _condition(text, "datePiece", "<=") or "9999"
    signed = _state().mode(PACKAGE, "amount_field")
    rows = []
    for line in book.all_lines():
        if (journal and line["journal"] != journal) or not low <= line["date"] <= high:
            continue
        row = {"numeroEcriture": line["entry_id"], "numeroLigne": line["id"], "journalCode": line["journal"],
               "datePiece": line["date"], "compteNumero": line["account"], "libelle": line["description"],
               "refPiece": line["reference"], "ecritureOrigine": "SAISIE"}
        amount = float(line["amount"])
        if signed:
            row["montant"] = amount
        else:
            row["debit"], row["credit"] = max(amount, 0.0), max(-amount, 0.0)
        rows.append(row)
    return _page(rows)


def register(app, state):
    """Mount Cegid Loop under ``/cegid/loop-api-publiques``."""
    state.oauth[PACKAGE] = LoopKeys()
    app.register_blueprint(api)
