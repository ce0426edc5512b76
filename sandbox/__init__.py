"""The local emulator of the vendor APIs (ARCHITECTURE section 9).

Each package folder's ``emulator.py`` (found by :func:`connectors.registry.emulator_modules`,
each with ``register(app, state)``, its ``PACKAGE`` key and its vendor variants ``MODES``), a
deterministic data generator (:mod:`connectors.emulation.books`), and
control endpoints for tests under ``/_sandbox`` (:mod:`sandbox.control`): reset, fault
injection, mutations, budgets and statistics. Run it with
``python -m sandbox --host 127.0.0.1 --port 5050``.
"""
from importlib import import_module

from flask import Flask

from connectors.emulation.books import DEFAULT_COMPANIES
from connectors.registry import emulator_modules
from sandbox.state import SandboxState

DEFAULT_API_KEYS = ("demo-key",)


def create_app(seed=42, companies=None, *, api_keys=DEFAULT_API_KEYS, oauth_clients=None, budgets=None,
               token_seconds=None, modes=None):
    """Build a sandbox app.

    :param seed: seeds every generated company (same seed, same data).
    :param companies: :class:`connectors.emulation.books.CompanySpec` objects or dicts of their fields
        (default: :data:`connectors.emulation.books.DEFAULT_COMPANIES`).
    :param api_keys: API keys Demo Books accepts.
    :param oauth_clients: ``{client_id: client_secret}`` for the OAuth packages.
    :param budgets: ``{package key: {"per_minute": n, "window_seconds": 60}}`` enforced
        per tenant (company) with 429 + ``Retry-After``.
    :param token_seconds: access token lifetime override for the OAuth packages.
    :param modes: ``{package key: [mode, ...]}``: vendor variants to answer in from the start
        (each emulator lists its own in ``MODES``; tests switch them with ``/_sandbox/modes``).
    """
    app = Flask(__name__)
    app.config["SANDBOX"] = {"oauth_clients": oauth_clients, "token_seconds": token_seconds}
    state = SandboxState(seed=seed, companies=companies or DEFAULT_COMPANIES, api_keys=api_keys,
                         budgets=budgets, modes=modes)
    app.extensions["sandbox"] = state
    from sandbox import control

    control.register(app, state)
    state.known_modes = {}
    for path in emulator_modules():
        module = import_module(path)
        module.register(app, state)
        state.known_modes[getattr(module, "PACKAGE", path.rsplit(".", 1)[1])] = dict(getattr(module, "MODES", {}))
    return app
