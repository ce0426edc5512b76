"""Xero and XeroTB end to end against the sandbox (real HTTP on 127.0.0.1).

The OAuth code flow with PKCE goes through the spec's auth strategy (its consent URL and
callback), exactly as the console does; then listing, a full read of every stream, token
rotation and the error answers.
"""
import re
import time
from datetime import date
from decimal import Decimal
from html import unescape

import pytest
import requests

from connectors.base import (
    AccountRecord, AuthError, ConnectorContext, FiscalYearRecord, LedgerLineRecord, NotFoundError, RateLimited,
    StreamState, SyncWindow,
)
from connectors.http import build_client, secrets_for
from connectors.oauth import new_code_verifier
from connectors.xero import Xero
from connectors.xero_tb import XeroTB
from connectors.xero.emulator import tenant_id

CLIENT_ID, CLIENT_SECRET = "xero-sandbox-client", "xero-sandbox-secret"
REDIRECT = "http://127.0.0.1/oauth/callback"


def xero_config(sandbox):
    return {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
            "base_url": f"{sandbox.url}/xero/api.xro/2.0", "identity_url": f"{sandbox.url}/xero"}


def consent(sandbox, verifier, decision="allow"):
    """Open the consent page, check it lists the organisations, press a button: the callback's query."""
    url = Xero.spec.auth.consent_url(Xero, xero_config(sandbox), REDIRECT, "state-42", verifier)
    assert url.startswith(f"{sandbox.url}/xero/identity/connect/authorize?") and "code_challenge=" in url
    page = requests.get(url, timeout=10)
    assert page.status_code == 200
    for book in sandbox.state.books.values():
        assert unescape(page.text).count(book.spec.name) == 1
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page.text))
    answer = requests.post(url.split("?")[0], data={**{k: unescape(v) for k, v in fields.items()},
                                                    "decision": decision}, allow_redirects=False, timeout=10)
    assert answer.status_code == 302 and answer.headers["Location"].startswith(REDIRECT)
    return dict(re.findall(r"[?&]([^=&]+)=([^&]*)", answer.headers["Location"]))


def connect(sandbox):
    verifier = new_code_verifier()
    query = consent(sandbox, verifier)
    assert query["state"] == "state-42"
    return Xero.spec.auth.callback(Xero, xero_config(sandbox), query, REDIRECT, verifier)


def build(cls, sandbox, credentials, reference=None, saved=None):
    config = xero_config(sandbox)
    http = build_client(cls.spec, secrets=secrets_for(cls.spec, config, credentials), sleep=lambda s: None)
    return cls(ConnectorContext(config=config, credentials=credentials, reference=reference, http=http,
                                save_credentials=(saved.append if saved is not None else None)))


def company(sandbox, name_start):
    return next(book for book in sandbox.state.books.values() if book.spec.name.startswith(name_start))


def test_code_flow_with_pkce_then_listing(sandbox):
    credentials = connect(sandbox)
    assert credentials["access_token"] and credentials["refresh_token"]
    assert credentials["expires_at"] - time.time() == pytest.approx(1800, abs=60)
    references = build(Xero, sandbox, credentials).list_references()
    assert sorted(r.name for r in references) == sorted(b.spec.name for b in sandbox.state.books.values())
    assert {r.reference for r in references} == {tenant_id(b.spec.id) for b in sandbox.state.books.values()}


def test_pkce_is_checked_and_deny_is_an_error(sandbox):
    query = consent(sandbox, new_code_verifier())
    with pytest.raises(AuthError, match="did not accept"):
        Xero.spec.auth.callback(Xero, xero_config(sandbox), query, REDIRECT, new_code_verifier())
    assert consent(sandbox, new_code_verifier(), decision="deny")["error"] == "access_denied"


def test_full_read_of_every_stream_matches_the_books(sandbox):
    book = company(sandbox, "Bakkerij")  # 500 generated lines: two pages of journals
    xero = build(Xero, sandbox, connect(sandbox), tenant_id(book.spec.id))
    assert xero.check().ok
    window = SyncWindow(date(2023, 1, 1), date(2024, 12, 31))
    assert list(xero.read("fiscal_years", StreamState(), window)) == [
        FiscalYearRecord(start, end) for start, end in book.fiscal_years]
    accounts = list(xero.read("accounts", StreamState(), window))
    assert accounts and all(isinstance(a, AccountRecord) for a in accounts)
    assert {(a.number, a.kind) for a in accounts} == {(a["number"], a["type"]) for a in book.accounts}
    state = StreamState()
    lines = list(xero.read("ledger_lines", state, window))
    assert all(isinstance(line, LedgerLineRecord) for line in lines)
    expected = list(book.all_lines())
    assert len(lines) == len(expected) == book.line_count
    assert sum(line.amount for line in lines) == 0
    by_account = {}
    for line in expected:
        by_account[line["account"]] = by_account.get(line["account"], Decimal(0)) + Decimal(line["amount"])
    got = {}
    for line in lines:
        got[line.account] = got.get(line.account, Decimal(0)) + line.amount
    assert {k: v for k, v in got.items() if v} == {k: v for k, v in by_account.items() if v}
    assert state.new_bookmark["offset"] == book.entry_count
    assert sandbox.calls("/xero/api.xro/2.0/Journals") == -(-book.entry_count // 100)


def test_incremental_read_brings_only_new_journals(sandbox):
    book = company(sandbox, "Northwind")
    xero = build(Xero, sandbox, connect(sandbox), tenant_id(book.spec.id))
    state = StreamState()
    assert len(list(xero.read("ledger_lines", state, SyncWindow()))) == book.line_count
    added = sandbox.mutate(book.spec.id, add=2)["added"]
    again = StreamState(bookmark=state.new_bookmark)
    new_lines = list(xero.read("ledger_lines", again, SyncWindow()))
    assert len(new_lines) == len(added) and again.new_bookmark["offset"] == book.entry_count + 2
    assert sum(line.amount for line in new_lines) == 0
    nothing = StreamState(bookmark=again.new_bookmark)
    assert list(xero.read("ledger_lines", nothing, SyncWindow())) == [] and nothing.new_bookmark is None


def test_an_expired_token_is_refreshed_and_the_refresh_token_rotates(sandbox):
    credentials = connect(sandbox)
    old_refresh = credentials["refresh_token"]
    saved = []
    book = company(sandbox, "Northwind")
    xero = build(Xero, sandbox, {**credentials, "expires_at": int(time.time()) - 10}, tenant_id(book.spec.id), saved)
    assert list(xero.read("accounts", StreamState(), SyncWindow()))
    assert len(saved) == 1 and saved[0]["refresh_token"] != old_refresh
    assert sandbox.stats()["token_refreshes"]["xero"] == 1
    # the old refresh token worked once: a second use is refused and asks for a reconnect
    stale = build(Xero, sandbox, {**credentials, "access_token": "gone", "expires_at": 0}, tenant_id(book.spec.id))
    with pytest.raises(AuthError, match="reconnect"):
        stale.list_references()


def test_xero_tb_reads_trial_balances_that_agree_with_the_ledger(sandbox):
    book = company(sandbox, "Janssens")  # fiscal years from April
    xero_tb = build(XeroTB, sandbox, connect(sandbox), tenant_id(book.spec.id))
    assert [s.name for s in XeroTB.streams] == ["fiscal_years", "accounts", "balances"]
    ends = (date(2023, 4, 30), date(2024, 3, 31), date(2024, 4, 30))
    records = list(xero_tb.read("balances", StreamState(), SyncWindow(date(2023, 4, 1), date(2024, 4, 30), ends)))
    assert {r.period_end for r in records} == set(ends)
    kinds = {a["number"]: a["type"] for a in book.accounts}
    lines = list(book.all_lines())
    for record in records:
        if kinds[record.account] in ("income", "expense"):
            year_start = date(record.period_end.year - (record.period_end.month < 4), 4, 1)
            expected = sum((Decimal(line["amount"]) for line in lines if line["account"] == record.account
                            and year_start <= date.fromisoformat(line["date"]) <= record.period_end), Decimal(0))
            assert record.basis == "ytd" and record.amount == expected, record
        else:
            assert record.basis == "closing"
    for end in ends:
        assert sum(r.amount for r in records if r.period_end == end) == 0


def test_a_disconnected_organisation_is_not_found(sandbox):
    credentials = connect(sandbox)
    book = company(sandbox, "Northwind")
    xero = build(Xero, sandbox, credentials, tenant_id(book.spec.id))
    connection = next(c for c in requests.get(f"{sandbox.url}/xero/connections", timeout=10, headers={
        "Authorization": f"Bearer {credentials['access_token']}"}).json() if c["tenantName"] == book.spec.name)
    assert requests.delete(f"{sandbox.url}/xero/connections/{connection['id']}", timeout=10, headers={
        "Authorization": f"Bearer {credentials['access_token']}"}).status_code == 204
    with pytest.raises(NotFoundError, match="no longer connected"):
        list(xero.read("accounts", StreamState(), SyncWindow()))


def test_the_per_tenant_minute_limit_answers_429_with_its_problem(sandbox):
    sandbox.budgets(xero={"per_minute": 2})
    book = company(sandbox, "Northwind")
    xero = build(Xero, sandbox, connect(sandbox), tenant_id(book.spec.id))
    list(xero.read("accounts", StreamState(), SyncWindow()))
    list(xero.read("accounts", StreamState(), SyncWindow()))
    with pytest.raises(RateLimited) as caught:
        list(xero.read("accounts", StreamState(), SyncWindow()))
    assert caught.value.retry_after > 5 and not caught.value.daily
    assert "60 calls a minute" in caught.value.message


def test_organisations_listed_without_tenant_name_keep_their_own_names(sandbox):
    sandbox.modes(xero=["unnamed_connections"])
    credentials = connect(sandbox)
    answer = requests.get(f"{sandbox.url}/xero/connections", timeout=10,
                          headers={"Authorization": f"Bearer {credentials['access_token']}"}).json()
    assert answer and not any("tenantName" in row for row in answer)
    references = build(Xero, sandbox, credentials).list_references()
    assert sorted(r.name for r in references) == sorted(b.spec.name for b in sandbox.state.books.values())
