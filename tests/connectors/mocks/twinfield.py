"""Twinfield mocks: the access-token validation call, ProcessXmlString and the ``.svc`` queries
(``PeriodService``: years 2024 and 2025, calendar months; ``DeletedTransactionsService``: two
deleted transactions) on the cluster, on the XML fixtures of ``connectors/twinfield/fixtures/``
(browse answers filtered by the requested ``fin.trs.head.yearperiod`` range, as the vendor
filters them)."""
import copy
import time
from datetime import date
from xml.sax.saxutils import escape

from lxml import etree

from connectors.base import SyncWindow
from tests.connectors.mocks import fixture, fixtures_of

KEY = "twinfield"
LOGIN_URL = "https://login.twinfield.test/auth/authentication"
CLUSTER = "https://api.accounting.twinfield.com"
ENDPOINT = f"{CLUSTER}/webservices/processxml.asmx"
PERIOD_SERVICE = f"{CLUSTER}/webservices/PeriodService.svc"
DELETED_SERVICE = f"{CLUSTER}/webservices/DeletedTransactionsService.svc"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
OFFICE = "NLA001234"
ENV = "http://schemas.xmlsoap.org/soap/envelope/"
TWF = "http://www.twinfield.com/"


def config():
    return {"client_id": "twf-client-4e1b", "client_secret": "twf-secret-90c2d7a5", "login_url": LOGIN_URL}


def credentials():
    return {"access_token": "twf-at-7d3e51b0a9", "refresh_token": "twf-rt-c4a8e20f17", "token_type": "Bearer",
            "expires_at": int(time.time()) + 3600, "cluster_url": CLUSTER}


def reference():
    return OFFICE


def window():
    return SyncWindow(start=date(2024, 4, 1), end=date(2024, 5, 31),
                      period_ends=(date(2024, 4, 30), date(2024, 5, 31)))


def xml_fixture(name):
    return (fixtures_of("twinfield") / f"{name}.xml").read_text()


def soap_answer(result):
    """A ProcessXmlStringResponse envelope carrying ``result`` (XML) as its string."""
    return (f'<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="{ENV}"><soap:Body>'
            f'<ProcessXmlStringResponse xmlns="{TWF}"><ProcessXmlStringResult>{escape(result)}'
            "</ProcessXmlStringResult></ProcessXmlStringResponse></soap:Body></soap:Envelope>")


def xml_request(body):
    """The ``xmlRequest`` string of a ProcessXmlString envelope, parsed."""
    envelope = etree.fromstring(body)
    text = envelope.find(f"{{{ENV}}}Body/{{{TWF}}}ProcessXmlString/{{{TWF}}}xmlRequest").text
    return etree.fromstring(text.encode())


def filtered_browse(name, low, high):
    """The browse fixture ``name`` with only the rows whose yearperiod is in ``low``..``high``."""
    root = etree.fromstring(xml_fixture(name).encode())
    root = copy.deepcopy(root)
    for row in root.findall("tr"):
        period = next(td.text for td in row.findall("td") if td.get("field") == "fin.trs.head.yearperiod")
        if not low <= period <= high:
            root.remove(row)
    count = str(len(root.findall("tr")))
    root.set("last", count)
    root.set("total", count)
    return etree.tostring(root, encoding="unicode")


def answer_for(root):
    """The ProcessXml answer (a string of XML) the fixtures give to request ``root``."""
    if root.tag == "list" and root.findtext("type") == "offices":
        return xml_fixture("offices")
    if root.tag == "list" and root.findtext("type") == "dimensions":
        return xml_fixture(f"dimensions_{root.findtext('dimtype')}")
    if root.tag == "columns":
        for column in root.findall("column"):
            if column.findtext("field") == "fin.trs.head.yearperiod":
                low, high = column.findtext("from"), column.findtext("to") or column.findtext("from")
        return filtered_browse(f"browse_{root.get('code')}", low, high)
    return f'<{root.tag} result="0" msg="Unknown request." />'


def process_xml(request, context):
    context.headers["Content-Type"] = "text/xml; charset=utf-8"
    return soap_answer(answer_for(xml_request(request.body)))


def wcf_query(body):
    """``(query type, {field: text})`` of a ``.svc`` Query envelope (the query named by its xsi:type)."""
    query = etree.fromstring(body).find(f"{{{ENV}}}Body/{{{TWF}}}Query")
    return (query.get(f"{{{XSI}}}type").rpartition(":")[2],
            {etree.QName(child).localname: (child.text or "") for child in query})


def period_service(request, context):
    context.headers["Content-Type"] = "text/xml; charset=utf-8"
    kind, fields = wcf_query(request.body)
    if kind == "GetYears":
        return xml_fixture("period_years")
    return xml_fixture(f"periods_{fields['Year']}")


def register(requests_mock, base_url):
    requests_mock.get(f"{base_url}/connect/accesstokenvalidation", json=fixture("twinfield", "accesstokenvalidation"))
    requests_mock.post(ENDPOINT, text=process_xml)
    requests_mock.post(PERIOD_SERVICE, text=period_service)
    requests_mock.post(DELETED_SERVICE, text=xml_fixture("deleted_transactions"),
                       headers={"Content-Type": "text/xml; charset=utf-8"})
