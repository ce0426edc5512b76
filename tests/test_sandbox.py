"""The sandbox itself: deterministic books, lazy ledgers, mutations, faults, budgets, OAuth."""
import subprocess
import sys
import uuid
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import requests

from sandbox import create_app
from connectors.emulation.books import (BASE_MODIFIED, Book, CompanySpec, entries_for, entry_of, iso_ts, lines_in, month_end,
                                       name_uuid, parse_ts)

KEY = {"X-Api-Key": "demo-key"}


def test_same_seed_same_books_other_seed_other_books():
    spec = CompanySpec("c-x", "X", accounts=50, lines=300)
    one, two, other = Book(spec, 1), Book(spec, 1), Book(spec, 2)
    assert one.accounts == two.accounts and one.lines_after(None, 300) == two.lines_after(None, 300)
    assert one.lines_after(None, 300) != other.lines_after(None, 300)


def test_chart_sizes_are_clamped_and_cover_every_kind():
    for wanted, size in ((5, 20), (20, 20), (700, 700), (5000, 1500)):
        book = Book(CompanySpec("c", "C", accounts=wanted, lines=10), 7)
        assert len(book.accounts) == size
        assert len({a["number"] for a in book.accounts}) == size
        assert {a["type"] for a in book.accounts} == {"asset", "liability", "equity", "income", "expense"}


def test_generated_ids_and_time_stamps_keep_their_shapes():
    namespace = uuid.UUID("5b0c8a9e-7f4d-4c1e-9a53-2d6f0e1b7c44")
    for name in ("line:c-1:1", "journal:bench-xero:299999", "", "option:CC3", "é"):
        assert name_uuid(namespace, name) == str(uuid.uuid5(namespace, name))
    for seconds in (0, BASE_MODIFIED, BASE_MODIFIED + 86_399, 2_000_000_000):
        assert parse_ts(iso_ts(seconds)) == seconds
    assert iso_ts(BASE_MODIFIED) == "2025-01-01T00:00:00Z"
    for text in ("2025-01-01", "2025-01-01T00:00+01:00", "2025-01-01T00:00:00+00", "2025-01-01 00:00:00Z"):
        with pytest.raises(ValueError):
            parse_ts(text)


def test_entry_arithmetic():
    assert [entry_of(i) for i in range(9)] == [0, 0, 1, 1, 1, 2, 2, 2, 2]
    assert lines_in(3) == 9 and lines_in(4) == 11
    for wanted in (1, 5, 9, 10, 1000):
        entries = entries_for(wanted)
        assert lines_in(entries) >= wanted > lines_in(entries - 1)


def test_every_entry_balances_and_lands_in_its_fiscal_years():
    book = Book(CompanySpec("c", "C", accounts=30, lines=900, fy_start_month=7), 3)
    entries = {}
    for line in book.all_lines():
        entries.setdefault(line["entry_id"], Decimal(0))
        entries[line["entry_id"]] += Decimal(line["amount"])
        booked, period_end = date.fromisoformat(line["date"]), date.fromisoformat(line["period_end"])
        assert book.fiscal_years[0][0] <= period_end <= book.fiscal_years[-1][1]
        # the period of the booking date, or (a few early-month entries) the previous period
        assert period_end == month_end(booked) or (booked.day <= 5 and period_end == booked.replace(day=1) - timedelta(days=1))
    assert len(entries) == book.entry_count and set(entries.values()) == {Decimal(0)}


def test_a_million_lines_are_generated_page_by_page():
    book = Book(CompanySpec("big", "Big", accounts=1500, lines=3_000_000), 42)
    assert book.line_count >= 3_000_000
    assert book.lines_after(None, 1)[0]["id"] == 1
    entry = book.entry_count // 2
    within = book.lines_after((BASE_MODIFIED + entry, lines_in(entry)), 5)  # from the entry's first line
    assert [line["id"] for line in within] == list(range(lines_in(entry) + 1, lines_in(entry) + 6))
    after = book.lines_after((BASE_MODIFIED + entry, lines_in(entry + 1)), 2)  # the entry's last line seen
    assert [line["id"] for line in after] == [lines_in(entry + 1) + 1, lines_in(entry + 1) + 2]
    assert book.changed == {} and book.added == {}  # nothing was materialised


def test_mutations_flow_through_the_feeds_in_order():
    book = Book(CompanySpec("c", "C", lines=90), 5)
    last = book.lines_after(None, 1000)[-1]
    bookmark = (parse_ts(last["modified_at"]), last["id"])
    result = book.mutate(add=1, change=1, delete=1)
    fresh = book.lines_after(bookmark, 1000)
    assert sorted(line["id"] for line in fresh) == sorted(result["added"] + result["changed"])
    assert all(line["modified_at"] == result["modified_at"] for line in fresh)
    assert [d["id"] for d in book.deleted_after()] == sorted(result["deleted"])
    assert not {line["id"] for line in book.all_lines()} & set(result["deleted"])
    assert sum(Decimal(line["amount"]) for line in book.all_lines()) == 0
    book.reset()
    assert book.deleted_after() == [] and len(list(book.all_lines())) == book.line_count


def test_control_endpoints_and_faults():
    client = create_app(seed=1).test_client()
    assert client.post("/_sandbox/faults", json={"kind": "explode"}).status_code == 400
    client.post("/_sandbox/faults", json={"kind": "500", "path": "/demo/api/v1/companies", "count": 1})
    client.post("/_sandbox/faults", json={"kind": "429", "path": "/demo/", "count": 1, "retry_after": 17})
    assert client.get("/demo/api/v1/companies", headers=KEY).status_code == 500
    limited = client.get("/demo/api/v1/companies", headers=KEY)
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "17"
    assert client.get("/demo/api/v1/companies", headers=KEY).status_code == 200
    client.post("/_sandbox/faults", json={"kind": "malformed", "path": "/demo/"})
    broken = client.get("/demo/api/v1/companies", headers=KEY)
    assert broken.status_code == 200 and broken.get_json(silent=True) is None
    stats = client.get("/_sandbox/stats").get_json()
    assert stats["calls"]["/demo/api/v1/companies"] == 4
    client.post("/_sandbox/reset")
    assert client.get("/_sandbox/stats").get_json()["total_calls"] == 0


def test_per_tenant_budget():
    client = create_app(budgets={"demo": {"per_minute": 2}}).test_client()
    for _ in range(2):
        assert client.get("/demo/api/v1/companies/c-1001/fiscal-years", headers=KEY).status_code == 200
    refused = client.get("/demo/api/v1/companies/c-1001/fiscal-years", headers=KEY)
    assert refused.status_code == 429 and 0 < int(refused.headers["Retry-After"]) <= 60
    assert client.get("/demo/api/v1/companies/c-1002/fiscal-years", headers=KEY).status_code == 200
    assert client.get("/demo/api/v1/companies", headers={"X-Api-Key": "nope"}).status_code == 401
    assert client.get("/demo/api/v1/companies/c-404/accounts", headers=KEY).status_code == 404


def test_token_endpoint_rotates_and_verifies_pkce():
    import base64
    import hashlib

    client = create_app(oauth_clients={"app": "s3cret"}).test_client()
    verifier = "v" * 50
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    params = {"response_type": "code", "client_id": "app", "redirect_uri": "http://x/cb", "state": "s",
              "code_challenge": challenge, "code_challenge_method": "S256"}
    page = client.get("/demo-cloud/oauth/authorize", query_string=params)
    assert b"Allow" in page.data and b"Deny" in page.data
    answer = client.post("/demo-cloud/oauth/authorize", data={**params, "decision": "allow"})
    code = answer.headers["Location"].split("code=")[1].split("&")[0]
    token = {"grant_type": "authorization_code", "code": code, "redirect_uri": "http://x/cb",
             "client_id": "app", "client_secret": "s3cret"}
    assert client.post("/demo-cloud/oauth/token", data={**token, "code_verifier": "w" * 50}).status_code == 400
    answer = client.post("/demo-cloud/oauth/authorize", data={**params, "decision": "allow"})
    token["code"] = answer.headers["Location"].split("code=")[1].split("&")[0]
    issued = client.post("/demo-cloud/oauth/token", data={**token, "code_verifier": verifier}).get_json()
    assert issued["expires_in"] == 1800
    refresh = {"grant_type": "refresh_token", "refresh_token": issued["refresh_token"]}
    first = client.post("/demo-cloud/oauth/token", data=refresh, auth=("app", "s3cret"))
    assert first.status_code == 200 and first.get_json()["refresh_token"] != issued["refresh_token"]
    again = client.post("/demo-cloud/oauth/token", data=refresh, auth=("app", "s3cret"))
    assert again.status_code == 400 and again.get_json()["error"] == "invalid_grant"
    bearer = {"Authorization": "Bearer " + first.get_json()["access_token"]}
    assert client.get("/demo-cloud/api/v1/companies", headers=bearer).status_code == 200
    assert client.get("/demo-cloud/api/v1/companies", headers=KEY).status_code == 401
    assert client.post("/demo-cloud/oauth/token", data=refresh, auth=("app", "wrong")).status_code == 401


def test_the_fixture_serves_over_real_http(sandbox):
    response = requests.get(sandbox.url + "/demo/api/v1/companies", headers=KEY, timeout=10)
    assert [c["id"] for c in response.json()["companies"]] == ["c-1001", "c-1002", "c-1003"]
    assert sandbox.stats()["calls"] == {"/demo/api/v1/companies": 1}


def test_module_entry_point_has_help():
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-m", "sandbox", "--help"], cwd=root, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0 and "--port" in out.stdout


def test_modes_are_declared_by_each_emulator_switched_per_package_and_forgotten_on_reset():
    client = create_app(seed=3).test_client()
    assert client.post("/_sandbox/modes", json={"xero": ["backdated_journals"]}).status_code == 200
    assert client.get("/_sandbox/stats").get_json()["modes"] == {"xero": ["backdated_journals"]}
    refused = client.post("/_sandbox/modes", json={"xero": ["no_such_mode"]})
    assert refused.status_code == 400 and "no_such_mode" in refused.get_json()["message"]
    assert client.post("/_sandbox/modes", json={"nowhere": ["x"]}).status_code == 400
    client.post("/_sandbox/reset")
    assert client.get("/_sandbox/stats").get_json()["modes"] == {}
    started = create_app(seed=3, modes={"xero": ["unnamed_connections"]}).test_client()
    started.post("/_sandbox/reset")
    assert started.get("/_sandbox/stats").get_json()["modes"] == {"xero": ["unnamed_connections"]}
