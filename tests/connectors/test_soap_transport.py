"""connectors.soap: zeep over the kit's HttpClient, against a local Twinfield-like SOAP service.

The service is a small WSGI app on 127.0.0.1 (tests/threaded_server.py) built from Twinfield's
real WSDLs, read in place from ../shared/specs/twinfield/. Every request the client sends and
every answer the service gives is validated against the WSDL's own schema with xmlschema.
"""
import threading
from types import SimpleNamespace

import pytest
import requests
import xmlschema
import zeep.exceptions
from lxml import etree

from connectors.base import AuthError, DataError, RateBudget, TransientError
from connectors.http import HttpClient
from connectors.rate_limit import RateLimiter
from connectors.soap import SoapClient, fault_interpreter, parse_fault, soap_client, soap_header
from tests.conftest import shared_path
from tests.threaded_server import ThreadedServer

TWF = "http://www.twinfield.com/"
ENV = "http://schemas.xmlsoap.org/soap/envelope/"
WSDL_NS = "http://schemas.xmlsoap.org/wsdl/"
XSD_NS = "http://www.w3.org/2001/XMLSchema"
TOKEN = "twf-at-5d1c9e7f3a2b"  # the connection's access token: must never appear in a message
OFFICE = "NL001"
#: the Twinfield connector's fault table (CONNECTORS.md section 26: an expired token is fault code 354)
TWINFIELD_FAULTS = {"354": AuthError}

FINDER_ROWS = [("1000", "Kas"), ("1100", "Bank ING")]
OFFICES = ('<offices><office name="Alpha BV" shortname="Alpha">NL001</office>'
           '<office name="Beta BV" shortname="Beta">NL002</office></offices>')


def envelope(body, header=""):
    return (f'<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="{ENV}">{header}'
            f"<soap:Body>{body}</soap:Body></soap:Envelope>").encode()


def fault(code, reason, detail=""):
    return envelope(f"<soap:Fault><faultcode>{code}</faultcode><faultstring>{reason}</faultstring>{detail}"
                    "</soap:Fault>")


def search_response():
    items = "".join("<ArrayOfString>" + "".join(f"<string>{cell}</string>" for cell in row) + "</ArrayOfString>"
                    for row in FINDER_ROWS)
    return envelope(f'<SearchResponse xmlns="{TWF}"><SearchResult />'
                    f"<data><TotalRows>{len(FINDER_ROWS)}</TotalRows>"
                    f"<Columns><string>Code</string><string>Name</string></Columns>"
                    f"<Items>{items}</Items></data></SearchResponse>")


def process_xml_response():
    result = OFFICES.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return envelope(f'<ProcessXmlStringResponse xmlns="{TWF}"><ProcessXmlStringResult>{result}'
                    "</ProcessXmlStringResult></ProcessXmlStringResponse>")


#: what the service answers, by scripted kind: (HTTP status, body)
ANSWERS = {
    # a server echoing the token it was given, to prove the client scrubs it
    "auth_fault": (500, fault("soap:Server", f"Access denied. Token invalid (code 354). Token: {TOKEN}")),
    "auth_fault_200": (200, fault("soap:Server", "Access denied. Token invalid (code 354).")),
    "client_fault": (500, fault("soap:Client", "Option &apos;dimtype&apos; is mandatory.",
                                "<detail><code>OptionMandatory</code></detail>")),
    "server_fault": (500, fault("soap:Server", "Server was unable to process request.")),
    "503": (503, b"Service Unavailable"),
}


class FakeTwinfield:
    """Answers Finder ``Search`` and ProcessXml ``ProcessXmlString`` (or what ``script`` says
    next), serves the WSDLs on ``GET ...?wsdl``, and records every request."""

    def __init__(self, wsdls):
        self.wsdls = wsdls
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        self.script, self.hits, self.answers = [], [], []

    def __call__(self, environ, start_response):
        path = environ["PATH_INFO"]
        if environ["REQUEST_METHOD"] == "GET":
            content = self.wsdls[path].read_bytes()
            start_response("200 OK", [("Content-Type", "text/xml; charset=utf-8")])
            return [content]
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        with self.lock:
            self.hits.append(SimpleNamespace(path=path, body=body, action=environ.get("HTTP_SOAPACTION"),
                                             content_type=environ.get("CONTENT_TYPE")))
            kind = self.script.pop(0) if self.script else "ok"
        if kind == "ok":
            status, content = 200, search_response() if path.endswith("finder.asmx") else process_xml_response()
        else:
            status, content = ANSWERS[kind]
        with self.lock:
            self.answers.append(content)
        reason = {200: "OK", 500: "Internal Server Error", 503: "Service Unavailable"}[status]
        start_response(f"{status} {reason}", [("Content-Type", "text/xml; charset=utf-8")])
        return [content]


@pytest.fixture(scope="module")
def wsdls():
    return {"finder": shared_path("specs", "twinfield", "finder.wsdl"),
            "processxml": shared_path("specs", "twinfield", "processxml.wsdl")}


@pytest.fixture(scope="module")
def twinfield_server(wsdls):
    app = FakeTwinfield({"/webservices/finder.asmx": wsdls["finder"],
                         "/webservices/processxml.asmx": wsdls["processxml"]})
    server = ThreadedServer(app, "twinfield-soap").start()
    server.app = app
    yield server
    server.stop()


@pytest.fixture
def twinfield(twinfield_server):
    twinfield_server.app.reset()
    return twinfield_server


@pytest.fixture
def sleeps():
    return []


@pytest.fixture
def http(sleeps):
    return HttpClient("Twinfield", secrets=[TOKEN], sleep=sleeps.append)


def finder(wsdls, http, twinfield):
    return soap_client(str(wsdls["finder"]), http, service_address=twinfield.url + "/webservices/finder.asmx",
                       faults=TWINFIELD_FAULTS)


def header():
    return soap_header(f"{{{TWF}}}Header", AccessToken=TOKEN, CompanyCode=OFFICE)


def search(client):
    return client.service.Search(type="DIM", pattern="*", field=0, firstRow=1, maxRows=100, _soapheaders=[header()])


def wsdl_schema(path):
    """The XML schema inside a WSDL's ``types`` (its schemas built together)."""
    root = etree.parse(str(path)).getroot()
    schemas = root.findall(f"{{{WSDL_NS}}}types/{{{XSD_NS}}}schema")
    return xmlschema.XMLSchema([etree.tostring(s).decode() for s in reversed(schemas)])


def body_of(content):
    return etree.fromstring(content).find(f"{{{ENV}}}Body")[0]


def header_fields(content):
    found = etree.fromstring(content).find(f"{{{ENV}}}Header/{{{TWF}}}Header")
    return {etree.QName(child).localname: child.text for child in found}


def assert_no_secret(error):
    for text in (error.message, error.detail, str(error), repr(error)):
        assert TOKEN not in text
    assert error.__cause__ is None and error.__context__ is None, "no zeep exception is chained"


# -- calls --------------------------------------------------------------------------------------

def test_finder_search_goes_through_the_kit_client_and_its_budget(wsdls, twinfield, sleeps, redis_db):
    budget = RateBudget(per_minute=1000)
    limiter = RateLimiter(redis_db)
    http = HttpClient("Twinfield", secrets=[TOKEN], sleep=sleeps.append, limiter=limiter, budget=budget,
                      budget_key=("twinfield", "tenant-NL001"))
    client = finder(wsdls, http, twinfield)
    assert http.api_calls == 0, "a local WSDL is read from disk"

    answer = search(client)

    assert answer.data.TotalRows == 2 and answer.data.Columns.string == ["Code", "Name"]
    assert [row.string for row in answer.data.Items.ArrayOfString] == [list(row) for row in FINDER_ROWS]
    assert http.api_calls == 1 and len(twinfield.app.hits) == 1
    assert limiter.usage("twinfield", "tenant-NL001", budget)["window"] == 1, "the call counted against the budget"
    hit = twinfield.app.hits[0]
    assert hit.path == "/webservices/finder.asmx" and hit.action == '"http://www.twinfield.com/Search"'
    assert hit.content_type.startswith("text/xml")
    assert header_fields(hit.body) == {"AccessToken": TOKEN, "CompanyCode": OFFICE}
    schema = wsdl_schema(wsdls["finder"])
    schema.validate(body_of(hit.body))  # the request is a valid tns:Search
    schema.validate(body_of(twinfield.app.answers[0]))  # the answer is a valid tns:SearchResponse


def test_process_xml_string_with_the_declared_header(wsdls, twinfield, http):
    client = soap_client(str(wsdls["processxml"]), http, faults=TWINFIELD_FAULTS,
                         service_address=twinfield.url + "/webservices/processxml.asmx")
    result = client.service.ProcessXmlString(
        xmlRequest="<list><type>offices</type></list>",
        _soapheaders={"Header": {"AccessToken": TOKEN, "CompanyCode": OFFICE, "CompanyId": None}})

    offices = etree.fromstring(result.encode())  # the result is XML inside a string: parsed twice
    assert [(o.text, o.get("name")) for o in offices] == [("NL001", "Alpha BV"), ("NL002", "Beta BV")]
    hit = twinfield.app.hits[0]
    assert hit.action == '"http://www.twinfield.com/ProcessXmlString"' and http.api_calls == 1
    assert header_fields(hit.body) == {"AccessToken": TOKEN, "CompanyCode": OFFICE, "CompanyId": None}
    schema = wsdl_schema(wsdls["processxml"])
    schema.validate(etree.fromstring(hit.body).find(f"{{{ENV}}}Header/{{{TWF}}}Header"))
    schema.validate(body_of(hit.body))
    schema.validate(body_of(twinfield.app.answers[0]))


def test_a_local_wsdl_loads_without_any_network(wsdls):
    class NoNetwork(requests.Session):
        def request(self, *args, **kwargs):
            raise AssertionError("no request may be sent while loading a local WSDL")

    http = HttpClient("Twinfield", session=NoNetwork())
    for source in (str(wsdls["finder"]), wsdls["processxml"].as_uri()):
        client = soap_client(source, http, service_address="http://127.0.0.1:9/none")
        assert isinstance(client, SoapClient) and isinstance(client, zeep.Client)
    assert http.api_calls == 0


def test_a_wsdl_over_http_is_fetched_through_the_client(wsdls, twinfield, http):
    client = soap_client(twinfield.url + "/webservices/finder.asmx?wsdl", http,
                         service_address=twinfield.url + "/webservices/finder.asmx")
    assert http.api_calls == 1, "the WSDL GET counts like any call"
    assert search(client).data.TotalRows == 2 and http.api_calls == 2


# -- faults and retries ---------------------------------------------------------------------------

def test_an_auth_fault_on_http_500_is_an_auth_error_and_is_not_retried(wsdls, twinfield, http, sleeps):
    twinfield.app.script = ["auth_fault"]
    client = finder(wsdls, http, twinfield)
    with pytest.raises(AuthError) as caught:
        search(client)
    assert len(twinfield.app.hits) == 1 and http.api_calls == 1 and sleeps == []
    error = caught.value
    assert not isinstance(error, zeep.exceptions.Fault)
    assert "reconnect" in error.message and "Token invalid (code 354)" in error.message
    assert error.detail == "POST /webservices/finder.asmx -> 500 SOAP fault soap:Server"
    assert_no_secret(error)


def test_an_auth_fault_inside_a_200_is_an_auth_error(wsdls, twinfield, http):
    twinfield.app.script = ["auth_fault_200"]
    with pytest.raises(AuthError) as caught:
        search(finder(wsdls, http, twinfield))
    assert len(twinfield.app.hits) == 1
    assert_no_secret(caught.value)


def test_without_the_table_the_same_server_fault_would_be_retried_as_transient(wsdls, twinfield, http, sleeps):
    twinfield.app.script = ["auth_fault"] * 4
    client = soap_client(str(wsdls["finder"]), http, service_address=twinfield.url + "/webservices/finder.asmx")
    with pytest.raises(TransientError) as caught:
        search(client)
    assert len(twinfield.app.hits) == 4 and sleeps == [0.5, 1.0, 2.0]
    assert_no_secret(caught.value)


def test_a_fault_zeep_sees_anyway_is_still_a_typed_error(wsdls, twinfield, http):
    twinfield.app.script = ["auth_fault_200"]
    client = soap_client(str(wsdls["finder"]), http, service_address=twinfield.url + "/webservices/finder.asmx",
                         faults=TWINFIELD_FAULTS, interpret_faults=lambda response: None)
    with pytest.raises(AuthError) as caught:
        search(client)
    assert caught.value.detail == "SOAP fault soap:Server"
    assert_no_secret(caught.value)


def test_a_client_fault_is_a_data_error_raised_at_once(wsdls, twinfield, http, sleeps):
    twinfield.app.script = ["client_fault"]
    with pytest.raises(DataError) as caught:
        search(finder(wsdls, http, twinfield))
    assert caught.value.message == ("Twinfield refused a request from Firmsync. "
                                    "Twinfield says: \u201cOption 'dimtype' is mandatory.\u201d")
    assert len(twinfield.app.hits) == 1 and sleeps == []


def test_a_server_fault_is_retried_like_a_5xx(wsdls, twinfield, http, sleeps):
    twinfield.app.script = ["server_fault", "server_fault"]
    assert search(finder(wsdls, http, twinfield)).data.TotalRows == 2
    assert len(twinfield.app.hits) == 3 and http.api_calls == 3 and sleeps == [0.5, 1.0]


def test_a_transient_503_is_retried(wsdls, twinfield, http, sleeps):
    twinfield.app.script = ["503"]
    assert search(finder(wsdls, http, twinfield)).data.TotalRows == 2
    assert len(twinfield.app.hits) == 2 and http.api_calls == 2 and sleeps == [0.5]


def test_an_unreadable_answer_is_a_data_error(wsdls, http, requests_mock):
    requests_mock.post("http://twinfield.test/finder.asmx", content=b"<html>" + TOKEN.encode() + b"</html>")
    client = soap_client(str(wsdls["finder"]), http, service_address="http://twinfield.test/finder.asmx")
    with pytest.raises(DataError) as caught:
        search(client)
    assert "could not read" in caught.value.message
    assert_no_secret(caught.value)


# -- the fault parser -----------------------------------------------------------------------------

SOAP12_FAULT = b"""<?xml version="1.0"?>
<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope" xmlns:t="http://www.twinfield.com/">
 <env:Body><env:Fault>
  <env:Code><env:Value>env:Sender</env:Value><env:Subcode><env:Value>t:TokenExpired</env:Value></env:Subcode></env:Code>
  <env:Reason><env:Text xml:lang="en">Access denied.</env:Text></env:Reason>
  <env:Detail><t:code>354</t:code></env:Detail>
 </env:Fault></env:Body>
</env:Envelope>"""


def test_soap_12_faults_are_parsed_and_mapped():
    fault = parse_fault(SOAP12_FAULT)
    assert (fault.version, fault.code, fault.subcodes, fault.reason, fault.details) == (
        "1.2", "env:Sender", ("t:TokenExpired",), "Access denied.", ("354",))
    assert fault.is_client and "TokenExpired" in fault.codes and "354" in fault.codes
    interpret = fault_interpreter("Twinfield", {"TokenExpired": AuthError})
    assert isinstance(interpret(SimpleNamespace(content=SOAP12_FAULT, status_code=500)), AuthError)
    assert isinstance(fault_interpreter("Twinfield")(SimpleNamespace(content=SOAP12_FAULT)), DataError)


def test_only_a_fault_in_the_envelope_body_counts():
    assert parse_fault(search_response()) is None
    data_mentioning_fault = envelope(f'<ProcessXmlStringResponse xmlns="{TWF}"><ProcessXmlStringResult>'
                                     "&lt;Fault/&gt;</ProcessXmlStringResult></ProcessXmlStringResponse>")
    assert parse_fault(data_mentioning_fault) is None
    assert parse_fault(b"<Fault>not SOAP</Fault>") is None and parse_fault(b"Fault <<") is None
    assert parse_fault(b"") is None
    entity = (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
              b'<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><soap:Fault>'
              b"<faultcode>soap:Client</faultcode><faultstring>&e;</faultstring></soap:Fault></soap:Body>"
              b"</soap:Envelope>")
    parsed = parse_fault(entity)
    assert parsed is None or "root:" not in parsed.reason, "external entities are never resolved"
