"""Contract runs against a vendor's own OpenAPI spec: Prism for requests, openapi-core for answers.

A package that publishes a machine-readable spec (``../shared/specs/<vendor>/``) is checked two
ways, both with these helpers:

* **Requests**: ``prism_serving(spec)`` starts Prism (``@stoplight/prism-cli@5`` from the npm
  registry, fetched by ``npx``; ``make test`` installs Node.js and warms the cache) serving the
  spec; the connector is pointed at it with ``recording_client`` and reads its streams;
  ``assert_no_violations`` then fails on any request Prism found outside the spec (path, query,
  headers, body, security). A missing ``npx`` fails the run: it is never a reason to skip.
* **Answers**: ``openapi_spec(path)`` loads the spec for openapi-core and
  ``validate_answer(spec, method, url, body)`` raises when a fixture or a sandbox answer is not a
  valid answer of that operation.

Where a vendor's spec is wrong, the deviation is written once in the package's test module
(e.g. an extra format validator) and tested there.
"""
import os
import shutil
import signal
import subprocess
import tempfile
import time
from contextlib import contextmanager
from urllib.parse import parse_qsl, urlsplit

import pytest
from openapi_core import Config, OpenAPI
from openapi_core.testing import MockRequest, MockResponse

from connectors.http import build_client
from tests.conftest import free_port

#: the first run downloads Prism; loading a large spec takes a while on a busy machine
PRISM_STARTUP_SECONDS = 600
PRISM = "@stoplight/prism-cli@5"
VIOLATION_MARKS = ("did not pass the validation rules", "Request terminated with error", "sl-violations")


class PrismServer:
    """A running Prism mock server: its base ``url`` and its log."""

    def __init__(self, url, log_path):
        self.url = url
        self.log_path = log_path

    def output(self):
        """Everything Prism printed so far."""
        with open(self.log_path, encoding="utf-8", errors="replace") as handle:
            return handle.read()

    def output_since(self, offset):
        """What Prism printed after ``offset`` characters (take ``len(output())`` before a run)."""
        return self.output()[offset:]


@contextmanager
def prism_serving(spec_path, *extra_args):
    """Start Prism serving ``spec_path`` on a free loopback port; yield a ``PrismServer``.

    ``extra_args`` go to ``prism mock`` (e.g. ``"--dynamic"``). Fails the test, never skips,
    when ``npx`` is absent: ``make test`` installs Node.js.
    """
    npx = shutil.which("npx")
    if npx is None:
        pytest.fail("npx (Node.js) is not installed: the Prism contract run needs it (make test installs it)")
    port = free_port()
    log = tempfile.NamedTemporaryFile(prefix="prism-", suffix=".log", delete=False)
    process = subprocess.Popen(
        [npx, "--yes", PRISM, "mock", "-h", "127.0.0.1", "-p", str(port), *extra_args, str(spec_path)],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    server = PrismServer(f"http://127.0.0.1:{port}", log.name)
    try:
        deadline = time.monotonic() + PRISM_STARTUP_SECONDS
        while "Prism is listening" not in server.output():
            if process.poll() is not None:
                pytest.fail(f"Prism stopped before listening:\n{server.output()[-2000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"Prism did not start within {PRISM_STARTUP_SECONDS} s:\n{server.output()[-2000:]}")
            time.sleep(0.2)  # polling Prism's log for its start line, not synchronising test steps
        yield server
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
        log.close()
        os.unlink(log.name)


def recording_client(spec, responses, **options):
    """An ``HttpClient`` for a package ``spec`` that appends every response it receives to ``responses``."""
    http = build_client(spec, sleep=lambda seconds: None, **options)
    http.session.hooks["response"].append(lambda response, *args, **kwargs: responses.append(response))
    return http


def assert_no_violations(prism, responses, log_offset):
    """Fail unless every recorded response is a 2xx without a Prism violation since ``log_offset``."""
    assert responses, "no request reached Prism"
    for response in responses:
        assert 200 <= response.status_code < 300, (response.url, response.status_code, response.text[:300])
        assert "sl-violations" not in {name.lower() for name in response.headers}, response.headers["sl-violations"]
    log = prism.output_since(log_offset)
    for mark in VIOLATION_MARKS:
        assert mark not in log, log[-2000:]


def openapi_spec(path, **config):
    """Load an OpenAPI document for openapi-core, without validating the document itself.

    Vendor specs often fail the strictest spec validator on details that do not touch
    responses; ``config`` passes e.g. ``extra_format_validators`` for a documented deviation.
    """
    return OpenAPI.from_file_path(str(path), config=Config(spec_validator_cls=None, **config))


def validate_answer(spec, method, url, body, *, status=200, headers=None, server=None):
    """Raise unless ``body`` (bytes or str) is a valid ``status`` answer to ``method url`` in ``spec``.

    ``url`` may be absolute (its scheme and host are replaced by ``server`` when given, so a
    sandbox URL is checked against the spec's own server) or a path with a query string.
    """
    parts = urlsplit(url)
    host = server or (f"{parts.scheme}://{parts.netloc}" if parts.netloc else "https://api.example")
    request = MockRequest(host, method.upper(), parts.path, args=dict(parse_qsl(parts.query)),
                          headers=headers or {})
    spec.validate_response(request, MockResponse(body, status_code=status,
                                                 content_type="application/json"))
