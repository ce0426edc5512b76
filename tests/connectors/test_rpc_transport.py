"""connectors.rpc: XML-RPC and JSON-RPC over the kit's HttpClient, against a local Odoo-like server.

One small Odoo-like backend answers through two front ends on 127.0.0.1: the standard
library's XML-RPC server (``/xmlrpc/2/common``, ``/xmlrpc/2/object``, faults coded as Odoo
codes them) and a WSGI JSON-RPC endpoint (``/jsonrpc``, errors shaped as Odoo's). Both report
faults with HTTP 200, as Odoo does.
"""
import json
import threading
import traceback
import xmlrpc.client
from decimal import Decimal
from xmlrpc.server import MultiPathXMLRPCServer, SimpleXMLRPCDispatcher, SimpleXMLRPCRequestHandler

import pytest

from connectors.base import AuthError, DataError, PermissionError, RateBudget, TransientError
from connectors.http import HttpClient
from connectors.rate_limit import RateLimiter
from connectors.rpc import JsonRpcTransport, XmlRpcTransport, loads
from tests.threaded_server import ThreadedServer

DB, LOGIN, UID = "alpha-accountants", "sync@alpha.test", 2
API_KEY = "odoo-key-8c2f51e9d0a4"  # must never appear in a message
#: the Odoo connector's fault table: XML-RPC codes (3 AccessDenied, 4 AccessError), exception
#: names (JSON-RPC data.name, legacy string fault codes) and JSON-RPC's session-expired code
ODOO_FAULTS = {3: AuthError, 4: PermissionError, "AccessDenied": AuthError, "AccessError": PermissionError,
               100: AuthError}

LINES = [
    {"id": 11, "date": "2024-01-31", "account_id": [5, "400000 Trade debtors"], "debit": 1234.56, "credit": 0.0,
     "balance": 1234.56},
    {"id": 12, "date": "2024-01-31", "account_id": [9, "700000 Sales"], "debit": 0.0, "credit": 1234.56,
     "balance": -1234.56},
    {"id": 13, "date": "2024-02-29", "account_id": [5, "400000 Trade debtors"], "debit": 0.07, "credit": 0.0,
     "balance": 0.07},
]


class AccessDenied(Exception):
    """Odoo's ``odoo.exceptions.AccessDenied``."""


class AccessError(Exception):
    """Odoo's ``odoo.exceptions.AccessError``."""


class FakeOdoo:
    """The services Odoo's external API offers, enough for a trial balance read."""

    def version(self):
        return {"server_version": "17.0", "server_version_info": [17, 0, 0, "final", 0, ""],
                "server_serie": "17.0", "protocol_version": 1}

    def authenticate(self, db, login, password, user_agent_env):
        return UID if (db, login, password) == (DB, LOGIN, API_KEY) else False

    def execute_kw(self, db, uid, password, model, method, args, kwargs=None):
        if (db, uid, password) != (DB, UID, API_KEY):
            raise AccessDenied("Access Denied")
        if model == "hr.employee":
            raise AccessError("You are not allowed to access 'Employee' (hr.employee) records.\n\n"
                              "This operation is allowed for the following groups:\n\t- Employees/Officer")
        if (model, method) != ("account.move.line", "search_read"):
            # an application error: Odoo sends the traceback (here quoting what it was given)
            raise KeyError(f"{model} (called with key {password})")
        fields = (kwargs or {}).get("fields")
        return [{k: v for k, v in line.items() if not fields or k in fields or k == "id"} for line in LINES]

    def services(self):
        return {"common": {"version": self.version, "authenticate": self.authenticate},
                "object": {"execute_kw": self.execute_kw}}


def odoo_xmlrpc_fault(exc):
    """``xmlrpc_handle_exception_int`` of Odoo's /xmlrpc/2."""
    if isinstance(exc, AccessDenied):
        return xmlrpc.client.Fault(3, str(exc))
    if isinstance(exc, AccessError):
        return xmlrpc.client.Fault(4, str(exc))
    return xmlrpc.client.Fault(1, "".join(traceback.format_exception(exc)))


def odoo_json_error(exc):
    """The ``error`` object of Odoo's JSON-RPC answers."""
    name = {AccessDenied: "odoo.exceptions.AccessDenied", AccessError: "odoo.exceptions.AccessError"}.get(
        type(exc), f"builtins.{type(exc).__name__}")
    return {"code": 200, "message": "Odoo Server Error",
            "data": {"name": name, "debug": "".join(traceback.format_exception(exc)), "message": str(exc),
                     "arguments": [str(exc)], "context": {}}}


# -- XML-RPC front end (the standard library's server) ---------------------------------------------

class CountingHandler(SimpleXMLRPCRequestHandler):
    rpc_paths = ("/xmlrpc/2/common", "/xmlrpc/2/object")

    def do_POST(self):
        with self.server.lock:
            self.server.hits.append(self.path)
        super().do_POST()

    def send_response(self, code, message=None):
        self.server.statuses.append(code)
        super().send_response(code, message)

    def log_message(self, *args):
        pass


def odoo_xmlrpc_method(function):
    def method(*params):
        try:
            return function(*params)
        except Exception as exc:
            raise odoo_xmlrpc_fault(exc) from None
    return method


@pytest.fixture(scope="module")
def xmlrpc_server():
    server = MultiPathXMLRPCServer(("127.0.0.1", 0), requestHandler=CountingHandler, allow_none=True,
                                   logRequests=False)
    server.lock, server.hits, server.statuses = threading.Lock(), [], []
    for service, methods in FakeOdoo().services().items():
        dispatcher = SimpleXMLRPCDispatcher(allow_none=True, encoding="utf-8")
        for name, function in methods.items():
            dispatcher.register_function(odoo_xmlrpc_method(function), name)
        server.add_dispatcher(f"/xmlrpc/2/{service}", dispatcher)
    server.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, name="odoo-xmlrpc", daemon=True)
    thread.start()
    yield server
    server.shutdown()
    thread.join(5)
    server.server_close()


@pytest.fixture
def odoo_xmlrpc(xmlrpc_server):
    del xmlrpc_server.hits[:], xmlrpc_server.statuses[:]
    return xmlrpc_server


# -- JSON-RPC front end (a WSGI app) ---------------------------------------------------------------

class OdooJsonRpc:
    """POST /jsonrpc ``{"method": "call", "params": {"service", "method", "args"}}``; POST
    /web/dataset/call_kw answers Odoo's "session expired" error (no session cookie)."""

    def __init__(self):
        self.services = FakeOdoo().services()
        self.lock = threading.Lock()
        self.hits, self.bodies = [], []

    def __call__(self, environ, start_response):
        body = json.loads(environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0)))
        with self.lock:
            self.hits.append(environ["PATH_INFO"])
            self.bodies.append(body)
        answer = {"jsonrpc": "2.0", "id": body.get("id")}
        if environ["PATH_INFO"] == "/web/dataset/call_kw":
            answer["error"] = {"code": 100, "message": "Odoo Session Expired",
                               "data": {"name": "odoo.http.SessionExpiredException", "message": "Session expired",
                                        "arguments": ["Session expired"], "context": {}}}
        else:
            params = body["params"]
            try:
                answer["result"] = self.services[params["service"]][params["method"]](*params["args"])
            except Exception as exc:
                answer["error"] = odoo_json_error(exc)
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps(answer).encode()]


@pytest.fixture(scope="module")
def jsonrpc_server():
    server = ThreadedServer(OdooJsonRpc(), "odoo-jsonrpc").start()
    yield server
    server.stop()


@pytest.fixture
def odoo_json(jsonrpc_server):
    del jsonrpc_server.app.hits[:], jsonrpc_server.app.bodies[:]
    return jsonrpc_server


class RecordingLimiter:
    """Grants every call and counts what the client asked."""

    def __init__(self):
        self.acquired = self.released = 0

    def acquire_all(self, package, budgets):
        from connectors.rate_limit import Permit

        self.acquired += 1
        return Permit(wait=0, lease="lease", package=package, held=tuple(budgets))

    def release(self, permit):
        self.released += 1

    def block(self, package, scope, seconds):
        raise AssertionError("no 429 expected")


@pytest.fixture
def sleeps():
    return []


@pytest.fixture
def http(sleeps):
    return HttpClient("Odoo", secrets=[API_KEY], sleep=sleeps.append)


def assert_no_secret(error):
    for text in (error.message, error.detail or "", str(error), repr(error)):
        assert API_KEY not in text
    assert error.__cause__ is None and error.__context__ is None


# -- XML-RPC -----------------------------------------------------------------------------------------

def test_xmlrpc_version_authenticate_and_search_read(odoo_xmlrpc, sleeps, redis_db):
    budget = RateBudget(per_minute=100)
    limiter = RateLimiter(redis_db)
    http = HttpClient("Odoo", secrets=[API_KEY], sleep=sleeps.append, limiter=limiter, budget=budget,
                      budget_key=("odoo", "connection-7"))
    common = XmlRpcTransport(http, odoo_xmlrpc.url + "/xmlrpc/2/common", faults=ODOO_FAULTS)

    assert common.call("version")["server_version"] == "17.0"
    uid = common.call("authenticate", DB, LOGIN, API_KEY, {})
    lines = common.call("execute_kw", DB, uid, API_KEY, "account.move.line", "search_read", [[]],
                        {"fields": ["debit", "credit", "balance"]}, url=odoo_xmlrpc.url + "/xmlrpc/2/object")

    assert uid == UID
    assert [(line["id"], line["debit"], line["credit"], line["balance"]) for line in lines] == [
        (11, Decimal("1234.56"), Decimal("0.0"), Decimal("1234.56")),
        (12, Decimal("0.0"), Decimal("1234.56"), Decimal("-1234.56")),
        (13, Decimal("0.07"), Decimal("0.0"), Decimal("0.07")),
    ]
    assert all(type(line["debit"]) is Decimal for line in lines)
    assert lines[0]["debit"] != Decimal(1234.56), "read from the text, not through a float"
    assert sum(line["balance"] for line in lines) == Decimal("0.07")
    assert odoo_xmlrpc.hits == ["/xmlrpc/2/common", "/xmlrpc/2/common", "/xmlrpc/2/object"]
    assert http.api_calls == 3
    assert limiter.usage("odoo", "connection-7", budget)["window"] == 3, "every call counted against the budget"


def test_xmlrpc_authenticate_with_a_wrong_key_answers_false(odoo_xmlrpc, http):
    common = XmlRpcTransport(http, odoo_xmlrpc.url + "/xmlrpc/2/common", faults=ODOO_FAULTS)
    assert common.call("authenticate", DB, LOGIN, "wrong-key", {}) is False


@pytest.mark.parametrize("call, error_class, says", [
    (("execute_kw", DB, UID, "not-the-key", "account.move.line", "search_read", [[]]), AuthError, "Access Denied"),
    (("execute_kw", DB, UID, API_KEY, "hr.employee", "search_read", [[]]), PermissionError,
     "You are not allowed to access 'Employee' (hr.employee) records."),
    (("execute_kw", DB, UID, API_KEY, "no.such.model", "read", [[1]]), DataError,
     "KeyError: 'no.such.model (called with key ***)'"),
])
def test_xmlrpc_faults_with_http_200_become_typed_errors_by_the_table(odoo_xmlrpc, http, sleeps, call, error_class,
                                                                     says):
    objects = XmlRpcTransport(http, odoo_xmlrpc.url + "/xmlrpc/2/object", faults=ODOO_FAULTS)
    with pytest.raises(error_class) as caught:
        objects.call(*call)
    assert type(caught.value) is error_class
    assert caught.value.message.endswith(f"Odoo says: \u201c{says}\u201d")
    assert odoo_xmlrpc.statuses == [200], "Odoo reports faults inside an HTTP 200"
    assert odoo_xmlrpc.hits == ["/xmlrpc/2/object"] and http.api_calls == 1 and sleeps == [], "never retried"
    assert caught.value.detail.startswith("POST /xmlrpc/2/object -> 200 XML-RPC fault ")
    assert_no_secret(caught.value)


def test_xmlrpc_legacy_string_fault_codes_match_by_name(requests_mock, http):
    requests_mock.post("http://odoo.test/xmlrpc/object",
                       text=xmlrpc.client.dumps(xmlrpc.client.Fault("AccessDenied", "Access Denied"),
                                                methodresponse=True))
    with pytest.raises(AuthError):
        XmlRpcTransport(http, "http://odoo.test/xmlrpc/object", faults=ODOO_FAULTS).call("execute_kw")


def test_xmlrpc_server_errors_are_retried_by_the_client(requests_mock, http, sleeps):
    requests_mock.post("http://odoo.test/xmlrpc/2/common", [
        {"status_code": 502}, {"text": xmlrpc.client.dumps(({"server_version": "16.0"},), methodresponse=True)}])
    assert XmlRpcTransport(http, "http://odoo.test/xmlrpc/2/common").call("version") == {"server_version": "16.0"}
    assert http.api_calls == 2 and sleeps == [0.5]
    sent = requests_mock.request_history[0]
    assert sent.headers["Content-Type"].startswith("text/xml")
    assert xmlrpc.client.loads(sent.body) == ((), "version")


def test_xmlrpc_unreadable_answer_is_a_data_error(requests_mock, http):
    requests_mock.post("http://odoo.test/xmlrpc/2/common", text=f"<html>proxy error {API_KEY}</html>")
    with pytest.raises(DataError) as caught:
        XmlRpcTransport(http, "http://odoo.test/xmlrpc/2/common").call("version")
    assert "could not read" in caught.value.message
    assert_no_secret(caught.value)


def test_loads_reads_doubles_as_decimals_or_floats():
    packet = xmlrpc.client.dumps(([0.1 + 0.2, 1234.56, 7, None, "x"],), methodresponse=True, allow_none=True)
    (values,), _ = loads(packet)
    assert values == [Decimal("0.30000000000000004"), Decimal("1234.56"), 7, None, "x"]
    (floats,), _ = loads(packet, decimals=False)
    assert floats[1] == 1234.56 and type(floats[1]) is float
    with pytest.raises(xmlrpc.client.Fault):
        loads(xmlrpc.client.dumps(xmlrpc.client.Fault(3, "Access Denied"), methodresponse=True))


# -- JSON-RPC ----------------------------------------------------------------------------------------

def test_jsonrpc_version_and_execute_kw(odoo_json, sleeps):
    limiter = RecordingLimiter()
    http = HttpClient("Odoo", secrets=[API_KEY], sleep=sleeps.append, limiter=limiter,
                      budget=RateBudget(per_minute=100), budget_key=("odoo", "connection-7"))
    rpc = JsonRpcTransport(http, odoo_json.url + "/jsonrpc", faults=ODOO_FAULTS)

    assert rpc.call("common", "version")["server_serie"] == "17.0"
    lines = rpc.call("object", "execute_kw", DB, UID, API_KEY, "account.move.line", "search_read", [[]],
                     {"fields": ["balance"]})

    assert lines == [{"id": 11, "balance": Decimal("1234.56")}, {"id": 12, "balance": Decimal("-1234.56")},
                     {"id": 13, "balance": Decimal("0.07")}]
    assert all(type(line["balance"]) is Decimal for line in lines)
    assert http.api_calls == 2 and limiter.acquired == limiter.released == 2, "the budget was consulted per call"
    first, second = odoo_json.app.bodies
    assert first == {"jsonrpc": "2.0", "method": "call", "id": 1,
                     "params": {"service": "common", "method": "version", "args": []}}
    assert second["id"] == 2 and second["params"]["method"] == "execute_kw"


@pytest.mark.parametrize("path, args, error_class, says", [
    ("/jsonrpc", [DB, UID, "not-the-key", "account.move.line", "search_read", [[]]], AuthError, "Access Denied"),
    ("/jsonrpc", [DB, UID, API_KEY, "hr.employee", "search_read", [[]]], PermissionError,
     "You are not allowed to access 'Employee' (hr.employee) records."),
    ("/jsonrpc", [DB, UID, API_KEY, "no.such.model", "read", [[1]]], DataError,
     "'no.such.model (called with key ***)'"),
    ("/web/dataset/call_kw", [], AuthError, "Session expired"),
])
def test_jsonrpc_errors_with_http_200_become_typed_errors_by_the_table(odoo_json, http, sleeps, path, args,
                                                                      error_class, says):
    rpc = JsonRpcTransport(http, odoo_json.url + "/jsonrpc", faults=ODOO_FAULTS)
    with pytest.raises(error_class) as caught:
        rpc.call("object", "execute_kw", *args, url=odoo_json.url + path)
    assert type(caught.value) is error_class
    assert caught.value.message.endswith(f"Odoo says: \u201c{says}\u201d")
    assert odoo_json.app.hits == [path] and http.api_calls == 1 and sleeps == []
    assert_no_secret(caught.value)


def test_jsonrpc_unknown_errors_use_the_default_class(requests_mock, http):
    requests_mock.post("http://odoo.test/jsonrpc", json={"jsonrpc": "2.0", "id": 1, "error": {
        "code": -32000, "message": "Server busy"}})
    with pytest.raises(TransientError):
        JsonRpcTransport(http, "http://odoo.test/jsonrpc", default=TransientError, faults=ODOO_FAULTS).request("x")
    assert requests_mock.call_count == 4, "a TransientError from the table is retried by the client"


def test_jsonrpc_answer_without_a_result_is_a_data_error(requests_mock, http):
    requests_mock.post("http://odoo.test/jsonrpc", [{"json": {"jsonrpc": "2.0", "id": 1}},
                                                    {"json": {"jsonrpc": "2.0", "id": 99, "result": 1}},
                                                    {"text": "<html>gateway</html>"}])
    rpc = JsonRpcTransport(http, "http://odoo.test/jsonrpc")
    for _ in range(3):
        with pytest.raises(DataError) as caught:
            rpc.request("call", {})
        assert "could not read" in caught.value.message
