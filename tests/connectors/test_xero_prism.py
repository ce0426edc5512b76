"""A contract run of the Xero connectors against Prism serving Xero's official OpenAPI spec.

Prism (``@stoplight/prism-cli`` from the npm registry, fetched by ``npx`` on first use)
validates every request against ``../shared/specs/xero/xero_accounting.yaml`` (tenant
header, query types, ``If-Modified-Since`` format, OAuth2 bearer) and answers with the
spec's examples. Prism serves the paths without the ``/api.xro/2.0`` prefix. Skipped with
a reason when ``../shared`` is absent; a missing ``npx`` fails (``make test`` installs Node.js).
"""
import time
from datetime import date

import pytest

from connectors.base import ConnectorContext, DataError, FiscalYearRecord, StreamState, SyncWindow
from connectors.xero import Xero
from connectors.xero_tb import XeroTB
from tests.conftest import shared_path
from tests.spec_contract import assert_no_violations, prism_serving, recording_client


@pytest.fixture(scope="module")
def prism():
    with prism_serving(shared_path("specs", "xero", "xero_accounting.yaml")) as server:
        yield server


def prism_connector(cls, prism, responses, bookmark_since=None):
    config = {"client_id": "prism-client", "client_secret": "prism-secret-8c1e", "base_url": prism.url,
              "identity_url": prism.url}
    credentials = {"access_token": "prism-access-token", "refresh_token": "prism-refresh-token",
                   "expires_at": int(time.time()) + 1800}
    http = recording_client(cls.spec, responses)
    return cls(ConnectorContext(config=config, credentials=credentials,
                                reference="fe79f7dd-b6d4-4a92-ba7b-538af6289c58", http=http))


def test_xero_reads_every_stream_without_a_prism_violation(prism):
    responses, offset = [], len(prism.output())
    xero = prism_connector(Xero, prism, responses)
    years = list(xero.read("fiscal_years", StreamState(), SyncWindow(date(2019, 1, 1), date(2019, 12, 31))))
    assert years == [FiscalYearRecord(date(2018, 4, 1), date(2019, 3, 31)),
                     FiscalYearRecord(date(2019, 4, 1), date(2020, 3, 31))]
    assert [a.number for a in xero.read("accounts", StreamState(), SyncWindow())] == ["091", "200"]
    state = StreamState()
    lines = list(xero.read("ledger_lines", state, SyncWindow()))
    assert len(lines) == 9 and sum(line.amount for line in lines) == 0
    assert state.new_bookmark["offset"] == 30
    # an incremental read pages by offset alone; Prism ignores the offset and sends the same
    # example journals again, which the connector refuses rather than loop
    with pytest.raises(DataError, match="out of order"):
        list(xero.read("ledger_lines", StreamState(bookmark=state.new_bookmark), SyncWindow()))
    assert responses[-1].request.url.endswith("offset=30")
    assert "If-Modified-Since" not in responses[-1].request.headers
    assert_no_violations(prism, responses, offset)


def test_xero_tb_reads_the_trial_balance_without_a_prism_violation(prism):
    responses, offset = [], len(prism.output())
    xero_tb = prism_connector(XeroTB, prism, responses)
    window = SyncWindow(date(2019, 4, 1), date(2019, 4, 30), (date(2019, 4, 30),))
    records = list(xero_tb.read("balances", StreamState(), window))
    assert len(records) == 19 and sum(r.amount for r in records) == 0
    assert responses[-1].request.url.endswith("/Reports/TrialBalance?date=2019-04-30")
    assert_no_violations(prism, responses, offset)


def test_prism_does_flag_a_request_without_the_tenant_header(prism):
    """The run above can fail: Prism refuses a call that breaks the spec."""
    responses, offset = [], len(prism.output())
    xero = prism_connector(Xero, prism, responses)
    with pytest.raises(DataError):
        xero.http.get(f"{prism.url}/Accounts", headers={"Authorization": "Bearer prism-access-token"})
    assert responses[-1].status_code == 422
    with pytest.raises(AssertionError):
        assert_no_violations(prism, responses, offset)
