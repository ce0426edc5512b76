"""The console's two-firm world plus bookkeeping data and API tokens, and a client that checks
every answer of the API against the served OpenAPI document."""
import json
from datetime import date
from decimal import Decimal

from openapi_core import OpenAPI
from openapi_core.testing import MockRequest, MockResponse
from urllib.parse import parse_qsl, urlsplit

from app.access import actor_for
from app.extensions import db
from app.models import Account, LedgerLine, Period, PeriodBalance, User
from app.services.api_tokens import create_token


def add_books(dossier_id, year_id, link_id=None, lines=6):
    """Two periods, three accounts, balances and ``lines`` ledger lines in the world's 2024 year."""
    p1 = Period(dossier_id=dossier_id, fiscal_year_id=year_id, start=date(2024, 1, 1), end=date(2024, 6, 30))
    p2 = Period(dossier_id=dossier_id, fiscal_year_id=year_id, start=date(2024, 7, 1), end=date(2024, 12, 31))
    cash = Account(dossier_id=dossier_id, number="550000", name="Bank", kind="asset")
    sales = Account(dossier_id=dossier_id, number="700000", name="Sales", kind="income")
    db.session.add_all([p1, p2, cash, sales])
    db.session.flush()
    db.session.add_all([
        PeriodBalance(dossier_id=dossier_id, account_id=cash.id, period_id=p1.id, amount=Decimal("1000.50")),
        PeriodBalance(dossier_id=dossier_id, account_id=sales.id, period_id=p1.id, amount=Decimal("-1000.50")),
        PeriodBalance(dossier_id=dossier_id, account_id=cash.id, period_id=p2.id, amount=Decimal("200.00")),
        PeriodBalance(dossier_id=dossier_id, account_id=sales.id, period_id=p2.id, amount=Decimal("-200.00")),
    ])
    for i in range(lines):
        period = p1 if i % 2 == 0 else p2
        db.session.add(LedgerLine(dossier_id=dossier_id, link_id=link_id, source_id=f"L{i}", account_id=cash.id,
                                  period_id=period.id, booking_date=period.start, amount=Decimal("10.10"),
                                  description=f"line {i}"))
    db.session.commit()
    return {"p1": p1.id, "p2": p2.id, "cash": cash.id, "sales": sales.id}


def token_for(firm_id, scopes=("read",), *, admin_id, **options):
    """Create a token as the firm's administrator ``admin_id``; answer its text."""
    actor = actor_for(db.session.get(User, admin_id), firm_id)
    return create_token(actor, "test token", scopes, **options)[1]


class ApiClient:
    """Calls the API with a token and validates every answer against the served OpenAPI document."""

    def __init__(self, client, token=None):
        self.client = client
        self.token = token
        document = client.get("/api/v1/openapi.json").get_json()
        self.spec = OpenAPI.from_dict(document)
        self.checked = 0

    def call(self, method, url, *, token=..., headers=None, json_body=None, validate=True):
        token = self.token if token is ... else token
        headers = dict(headers or {})
        if token:
            headers["Authorization"] = f"Bearer {token}"
        response = self.client.open(url, method=method, headers=headers, json=json_body)
        if validate and response.status_code != 304:
            parts = urlsplit(url)
            request = MockRequest("http://localhost", method.lower(), parts.path, args=dict(parse_qsl(parts.query)),
                                  headers=headers, data=json.dumps(json_body) if json_body is not None else None,
                                  content_type="application/json")
            self.spec.validate_response(request, MockResponse(response.get_data(), status_code=response.status_code,
                                                              content_type=response.mimetype))
            self.checked += 1
        return response

    def get(self, url, **kwargs):
        return self.call("GET", url, **kwargs)

    def post(self, url, json_body, **kwargs):
        return self.call("POST", url, json_body=json_body, **kwargs)
