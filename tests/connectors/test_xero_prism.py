"""A contract run of the Xero connectors against Prism serving Xero's official OpenAPI spec.

Prism (``@stoplight/prism-cli`` from the npm registry, fetched by ``npx`` on first use)
validates every request against ``../shared/specs/xero/xero_accounting.yaml`` (tenant
header, query types, ``If-Modified-Since`` format, OAuth2 bearer) and answers with the
spec's examples. Prism serves the paths without the ``/api.xro/2.0`` prefix. Skipped with
a reason when ``npx`` or ``../shared`` is absent.
"""
import os
import shutil
import signal
import subprocess
import tempfile
import time
from datetime import date

import pytest

from connectors.base import ConnectorContext, DataError, FiscalYearRecord, StreamState, SyncWindow
from connectors.http import build_client
from connectors.xero import Xero
from connectors.xero_tb import XeroTB
from tests.conftest import free_port, shared_path

#: the first run downloads Prism; loading the 900 KB spec takes a while on a busy machine
STARTUP_SECONDS = 600
VIOLATION_MARKS = ("did not pass the validation rules", "Request terminated with error", "sl-violations")


@pytest.fixture(scope="module")
def prism():
    spec = shared_path("specs", "xero", "xero_accounting.yaml")
    npx = shutil.which("npx")
    if npx is None:
        pytest.skip("npx (Node.js) is not installed: the Prism contract run needs it")
    port = free_port()
    log = tempfile.NamedTemporaryFile(prefix="prism-xero-", suffix=".log", delete=False)
    process = subprocess.Popen(
        [npx, "--yes", "@stoplight/prism-cli@5", "mock", "-h", "127.0.0.1", "-p", str(port), str(spec)],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    server = PrismServer(f"http://127.0.0.1:{port}", log.name)
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while "Prism is listening" not in server.output():
            if process.poll() is not None:
                pytest.fail(f"Prism stopped before listening:\n{server.output()[-2000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"Prism did not start within {STARTUP_SECONDS} s:\n{server.output()[-2000:]}")
            time.sleep(1)
        yield server
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
        log.close()
        os.unlink(log.name)


class PrismServer:
    def __init__(self, url, log_path):
        self.url = url
        self.log_path = log_path

    def output(self):
        with open(self.log_path, encoding="utf-8", errors="replace") as handle:
            return handle.read()

    def output_since(self, offset):
        return self.output()[offset:]


def prism_connector(cls, prism, responses, bookmark_since=None):
    config = {"client_id": "prism-client", "client_secret": "prism-secret-8c1e", "base_url": prism.url,
              "identity_url": prism.url}
    credentials = {"access_token": "prism-access-token", "refresh_token": "prism-refresh-token",
                   "expires_at": int(time.time()) + 1800}
    http = build_client(cls.spec, sleep=lambda s: None)
    http.session.hooks["response"].append(lambda response, *args, **kwargs: responses.append(response))
    return cls(ConnectorContext(config=config, credentials=credentials,
                                reference="fe79f7dd-b6d4-4a92-ba7b-538af6289c58", http=http))


def assert_no_violations(prism, responses, log_offset):
    assert responses, "no request reached Prism"
    for response in responses:
        assert response.status_code == 200, (response.url, response.status_code, response.text[:300])
        assert "sl-violations" not in {name.lower() for name in response.headers}, response.headers["sl-violations"]
    log = prism.output_since(log_offset)
    for mark in VIOLATION_MARKS:
        assert mark not in log, log[-2000:]


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
