"""Test controls (``/_sandbox/...``) and the per-request emulation: statistics, injected
faults and per-tenant budgets."""
import time

from flask import Blueprint, Response, current_app, jsonify, render_template_string, request

bp = Blueprint("sandbox_control", __name__, url_prefix="/_sandbox")

INDEX = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Firmsync sandbox</title></head>
<body><h1>Firmsync sandbox</h1><p>Seed {{ state.seed }}.</p><ul>
{% for book in state.books.values() %}<li>{{ book.spec.id }}: {{ book.spec.name }}
({{ book.accounts|length }} accounts, {{ book.line_count }} ledger lines)</li>{% endfor %}
</ul><p>Demo Books: <code>/demo/api/v1</code>; Demo Cloud: <code>/demo-cloud/api/v1</code>.
Controls: <code>/_sandbox/stats</code>.</p></body></html>"""


def _state():
    return current_app.extensions["sandbox"]


def _json_error(code, message, status, retry_after=None):
    response = jsonify({"error": code, "message": message})
    response.status_code = status
    if retry_after is not None:
        response.headers["Retry-After"] = str(int(retry_after))
    return response


def emulate():
    """Before every package request: count it, apply a pending fault, enforce the budget."""
    path = request.path
    if path.startswith("/_sandbox") or path == "/":
        return None
    state = _state()
    with state.lock:
        state.calls[path] += 1
    fault = state.take_fault(path)
    if fault:
        kind = fault["kind"]
        if kind == "429":
            return _json_error("rate_limited", "Too many requests", 429, fault["retry_after"] or 30)
        if kind == "500":
            return _json_error("internal", "Internal server error", 500)
        if kind == "malformed":
            return Response('{"lines": [{"id": 1, "amount": ', status=200, mimetype="application/json")
        if kind == "slow":
            time.sleep(fault["delay"])
        if kind == "revoke":
            for provider in state.oauth.values():
                provider.revoke_all()
    if "/api/" in path and request.blueprint:
        tenant = (request.view_args or {}).get("company") or "account"
        wait = state.spend(request.blueprint, tenant)
        if wait:
            return _json_error("rate_limited", "Rate limit exceeded for this company", 429, wait)
    return None


@bp.post("/reset")
def reset():
    _state().reset()
    return jsonify({"ok": True})


@bp.post("/faults")
def add_fault():
    body = request.get_json(force=True) or {}
    try:
        _state().add_fault(str(body.get("kind")), body.get("path", "/"), body.get("count", 1),
                           body.get("retry_after"), body.get("delay"))
    except ValueError as exc:
        return _json_error("bad_request", str(exc), 400)
    return jsonify({"ok": True}), 201


@bp.get("/stats")
def stats():
    return jsonify(_state().stats())


@bp.post("/budgets")
def budgets():
    body = request.get_json(force=True) or {}
    state = _state()
    with state.lock:
        for package, budget in body.items():
            if budget:
                state.budgets[package] = dict(budget)
            else:
                state.budgets.pop(package, None)
        state.windows.clear()
    return jsonify(state.stats()["budgets"])


@bp.post("/modes")
def modes():
    """``{package: [mode, ...]}``: answer in these vendor variants until the next reset."""
    body = request.get_json(force=True) or {}
    state = _state()
    for package, names in body.items():
        known = getattr(state, "known_modes", {}).get(package)
        unknown = sorted(set(names or ()) - set(known or ()))
        if known is None or unknown:
            return _json_error("bad_request", f"unknown mode(s) for {package}: {', '.join(unknown) or package}", 400)
        state.set_modes(package, names)
    return jsonify(state.stats()["modes"])


@bp.get("/companies")
def companies():
    return jsonify([{"id": b.spec.id, "name": b.spec.name, "accounts": len(b.accounts), "lines": b.line_count,
                     "fiscal_years": [[s.isoformat(), e.isoformat()] for s, e in b.fiscal_years]}
                    for b in _state().books.values()])


@bp.post("/companies/<company>/mutate")
def mutate(company):
    book = _state().books.get(company)
    if book is None:
        return _json_error("not_found", "Company not found", 404)
    body = request.get_json(force=True) or {}
    result = book.mutate(add=int(body.get("add", 0)), change=int(body.get("change", 0)),
                         delete=int(body.get("delete", 0)), change_ids=body.get("change_ids", ()),
                         delete_ids=body.get("delete_ids", ()))
    return jsonify(result)


def index():
    return render_template_string(INDEX, state=_state())


def register(app, state):
    app.before_request(emulate)
    app.add_url_rule("/", "index", index)
    app.register_blueprint(bp)
