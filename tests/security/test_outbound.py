"""A connection never makes the server call its own network (SSRF): loopback, private,
link-local and non-HTTP addresses are refused in the form and before any request, with one
message whatever the address answers; the sandbox and the vendors' documented hosts pass."""
import dataclasses
import re

import pytest
from sqlalchemy import func, select

from app.models import Connection
from app.services.connectors import open_connector
from app.services.outbound import refusal
from connectors.base import ConfigError
from connectors.registry import get_connector
from tests.console_world import build_world, csrf_token, fresh_request_globals, log_in  # noqa: F401

INSIDE = ["http://127.0.0.1:6379/", "http://localhost:8080/api", "http://10.0.0.5/api", "http://192.168.1.20/",
          "http://169.254.169.254/latest/meta-data/", "http://[::1]:5432/", "http://0.0.0.0:22/",
          "http://[fe80::1]/", "http://172.16.3.4/", "http://224.0.0.1/"]
NOT_HTTP = ["file:///etc/passwd", "gopher://example.com/", "ftp://example.com/"]


@pytest.fixture
def strict(app):
    """Production's rules: no private hosts (the sandbox stays allowed outside production)."""
    app.config["ALLOW_PRIVATE_CONNECTOR_HOSTS"] = False
    yield app
    app.config["ALLOW_PRIVATE_CONNECTOR_HOSTS"] = True


@pytest.fixture
def world(db):
    return build_world()


@pytest.mark.parametrize("url", INSIDE + NOT_HTTP)
def test_inside_and_non_http_addresses_are_refused(strict, url):
    said = refusal(get_connector("demo").spec, {"base_url": url})
    assert said and said.startswith("Firmsync does not send requests to")


def test_public_addresses_and_the_sandbox_pass(strict):
    spec = get_connector("demo").spec
    assert refusal(spec, {"base_url": "http://8.8.8.8/api"}) is None
    assert refusal(spec, {"base_url": strict.config["SANDBOX_URL"] + "/demo/api"}) is None


def test_a_package_with_vendor_hosts_takes_only_those(strict):
    spec = dataclasses.replace(get_connector("demo").spec, vendor_hosts=("*.vendor.example", "api.vendor.test"))
    assert refusal(spec, {"base_url": "https://eu.vendor.example/v1"}) is None
    assert refusal(spec, {"base_url": "https://8.8.8.8/v1"})  # public, but not the vendor's


def test_in_production_the_sandbox_address_is_an_inside_address(strict):
    strict.config["ENV_NAME"] = "production"
    try:
        assert refusal(get_connector("demo").spec, {"base_url": strict.config["SANDBOX_URL"] + "/demo/api"})
    finally:
        strict.config["ENV_NAME"] = "testing"


def test_a_connector_is_never_built_for_an_inside_address(strict, db):
    connection = Connection(firm_id=None, package="demo", kind="accounting", level="firm", name="probe",
                            config={"base_url": "http://169.254.169.254/latest"}, credentials={"api_key": "k-123456"})
    with pytest.raises(ConfigError, match="does not send requests to 169.254.169.254"):
        open_connector(connection)


def test_the_connection_form_refuses_an_inside_address_alike_for_open_and_closed_ports(strict, client, world, db):
    log_in(client, "admin")
    before = db.session.scalar(select(func.count(Connection.id)))
    answers = []
    for port in (6379, 6398):  # Redis answers on one, nothing on the other: the page must not tell
        page = client.post("/admin/connections/new/?package=demo", data={
            "name": "Probe", "base_url": f"http://127.0.0.1:{port}/api", "api_key": "probe-key-1",
            "csrf_token": csrf_token(client)}).get_data(as_text=True)
        assert "Firmsync does not send requests to 127.0.0.1" in page
        page = page.replace(f":{port}", ":PORT")  # then drop what differs on every answer: nonce, CSRF token
        answers.append(re.sub(r'(nonce|name="csrf_token" type="hidden" value)="[^"]+"', "", page))
    assert answers[0] == answers[1]
    assert db.session.scalar(select(func.count(Connection.id))) == before


def test_a_redirect_to_another_host_carries_no_credential_header(requests_mock):
    from connectors.http import build_client

    requests_mock.get("https://api.vendor.example/v1/accounts", status_code=302,
                      headers={"Location": "https://elsewhere.example/collect"})
    requests_mock.get("https://elsewhere.example/collect", json={"ok": True})
    http = build_client(get_connector("demo").spec, sleep=lambda seconds: None)
    http.get("https://api.vendor.example/v1/accounts", headers={
        "Authorization": "Bearer at-123456", "X-Api-Key": "key-987654", "X-Business": "b-1",
        "AfasToken": "tok-555555", "Accept": "application/json"})
    moved = requests_mock.request_history[-1]
    assert moved.url == "https://elsewhere.example/collect"
    assert set(moved.headers) & {"Authorization", "X-Api-Key", "X-Business", "AfasToken"} == set()
    assert moved.headers["Accept"] == "application/json"


def test_a_redirect_on_the_same_host_keeps_the_headers(requests_mock):
    from connectors.http import build_client

    requests_mock.get("https://api.vendor.example/v1/a", status_code=302, headers={"Location": "/v1/b"})
    requests_mock.get("https://api.vendor.example/v1/b", json={"ok": True})
    http = build_client(get_connector("demo").spec, sleep=lambda seconds: None)
    http.get("https://api.vendor.example/v1/a", headers={"X-Api-Key": "key-987654"})
    assert requests_mock.request_history[-1].headers["X-Api-Key"] == "key-987654"
