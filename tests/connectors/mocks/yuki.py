"""Yuki mocks: one domain, administration Highpro BV, financial year 2024 (fixtures in connectors/yuki/fixtures/*.xml,
shaped as the vendor's SOAP answers). Every operation is a POST to ``<Service>.asmx``: the answer is chosen
by the SOAPAction header (and, for GetPeriodDateTable and GLAccountBalance, by the body's year or date)."""
import re
from datetime import date

from connectors.base import SyncWindow
from tests.connectors.mocks import fixtures_of

KEY = "yuki"
BASE_URL = "https://api.yukiworks.nl/ws"
ADMINISTRATION = "38a97d9b-5c1e-4f0a-9d2b-b9d5793723ee"
ACCESS_KEY = "5e0c3a1b-77f2-4c1d-9e8a-yuki-access-key"
NS = "http://www.theyukicompany.com/"


def config():
    return {"api_key": ACCESS_KEY, "region": "nl", "daily_calls": "1000", "base_url": BASE_URL}


def credentials():
    return {}


def reference():
    return ADMINISTRATION


def window():
    return SyncWindow(start=date(2024, 1, 1), end=date(2024, 2, 29), period_ends=(date(2024, 1, 31), date(2024, 2, 29)))


def xml(name):
    return (fixtures_of(KEY) / f"{name}.xml").read_text()


def answer_for(action, body):
    """The fixture answering ``action`` (an operation name) for request ``body``."""
    if action == "GetPeriodDateTable":
        return xml("period_date_table_2024" if "<ns0:yearID>2024<" in body else "period_date_table_none")
    if action == "GLAccountBalance":
        day = re.search(r"<ns0:transactionDate>(\d{4})-(\d{2})-(\d{2})", body).groups()
        return xml(f"gl_account_balance_{'_'.join(day)}")
    return xml({"Authenticate": "authenticate", "Domains": "domains", "Administrations": "administrations",
                "GetGLAccountScheme": "gl_account_scheme", "GetFinancialYearModifiedDate": "year_modified",
                "GetStartBalanceByGlAccount": "start_balance", "GetTransactionDetails": "transaction_details"}[action])


def register(requests_mock, base_url):
    def respond(request, context):
        context.headers["Content-Type"] = "text/xml; charset=utf-8"
        action = request.headers.get("SOAPAction", "").strip('"').removeprefix(NS)
        return answer_for(action, request.body.decode() if isinstance(request.body, bytes) else request.body)

    for service in ("Accounting", "AccountingInfo"):
        requests_mock.post(f"{base_url}/{service}.asmx", text=respond)
