"""Pytest fixtures for the sandbox and the connector kit (a plugin of ``tests/conftest.py``).

* ``sandbox_server`` (session): the sandbox on a free loopback port, served by werkzeug's
  threaded server in a background thread.
* ``sandbox`` (function): the same server, reset before the test (faults, counters,
  budgets, mutations, issued tokens). Helpers: ``.url``, ``.reset()``,
  ``.fault(kind, path="/", count=1, retry_after=None, delay=None)``, ``.stats()``,
  ``.mutate(company, **changes)``, ``.budgets(**{package: {...}})``, ``.modes(**{package: [...]})``, ``.state`` (the
  in-process :class:`sandbox.state.SandboxState`).
* ``redis_db`` (function): a redis-py client on the test Redis, flushed after the test.
"""
import pytest
import requests
from redis import Redis

from sandbox import create_app
from tests.threaded_server import ThreadedServer


class SandboxServer(ThreadedServer):
    """A running sandbox and the helpers tests use to steer it."""

    def __init__(self, app):
        super().__init__(app, "sandbox")
        self.state = app.extensions["sandbox"]

    def _post(self, path, body=None):
        response = requests.post(self.url + path, json=body or {}, timeout=10)
        response.raise_for_status()
        return response.json()

    def reset(self):
        return self._post("/_sandbox/reset")

    def fault(self, kind, path="/", count=1, retry_after=None, delay=None):
        return self._post("/_sandbox/faults", {"kind": kind, "path": path, "count": count,
                                               "retry_after": retry_after, "delay": delay})

    def stats(self):
        return requests.get(self.url + "/_sandbox/stats", timeout=10).json()

    def mutate(self, company, **changes):
        return self._post(f"/_sandbox/companies/{company}/mutate", changes)

    def budgets(self, **budgets):
        return self._post("/_sandbox/budgets", budgets)

    def modes(self, **modes):
        """Answer as the vendor's variants: ``sandbox.modes(xero=["backdated_journals"])`` (until reset)."""
        return self._post("/_sandbox/modes", modes)

    def calls(self, path_part):
        """How many requests reached paths containing ``path_part``."""
        return sum(n for path, n in self.stats()["calls"].items() if path_part in path)


@pytest.fixture(scope="session")
def sandbox_server():
    server = SandboxServer(create_app(seed=42)).start()
    yield server
    server.stop()


@pytest.fixture
def sandbox(sandbox_server):
    sandbox_server.reset()
    return sandbox_server


@pytest.fixture
def redis_db(redis_url):
    client = Redis.from_url(redis_url)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()
