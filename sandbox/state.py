"""The sandbox's in-memory state: generated books, injected faults, budgets and statistics."""
from __future__ import annotations

import math
import threading
import time
from collections import Counter, deque

from connectors.emulation.books import Book, CompanySpec

FAULT_KINDS = ("429", "500", "slow", "malformed", "revoke")


class SandboxState:
    """Everything the emulated packages share; one per sandbox app, guarded by a lock."""

    def __init__(self, *, seed, companies, api_keys, budgets, modes=None):
        self.seed = seed
        self.lock = threading.RLock()
        self.books = {spec.id: Book(spec, seed) for spec in (_spec(c) for c in companies)}
        self.api_keys = set(api_keys)
        self.initial_budgets = {k: dict(v) for k, v in (budgets or {}).items()}
        self.initial_modes = {k: set(v) for k, v in (modes or {}).items()}
        #: OAuth providers by package key, registered by the package modules
        self.oauth = {}
        self.reset()

    def reset(self):
        """Forget faults, counters, mutations and issued tokens; budgets back to the initial ones."""
        with self.lock:
            self.faults = []
            self.calls = Counter()
            self.token_refreshes = Counter()
            self.token_grants = Counter()
            self.rejected = Counter()
            self.rejected_by = Counter()
            self.budgets = {k: dict(v) for k, v in self.initial_budgets.items()}
            self.windows = {}
            self.modes = {k: set(v) for k, v in self.initial_modes.items()}
            for book in self.books.values():
                book.reset()
            for provider in self.oauth.values():
                provider.reset()

    # -- faults ------------------------------------------------------------------------
    def add_fault(self, kind, path="/", count=1, retry_after=None, delay=None):
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; use one of {', '.join(FAULT_KINDS)}")
        with self.lock:
            self.faults.append({"kind": kind, "path": path or "/", "count": int(count),
                                "retry_after": retry_after, "delay": float(delay or 0)})

    def take_fault(self, path):
        """The first pending fault whose path prefix matches ``path`` (its count is decremented)."""
        with self.lock:
            for fault in self.faults:
                if fault["count"] > 0 and path.startswith(fault["path"]):
                    fault["count"] -= 1
                    return dict(fault)
        return None

    # -- modes -------------------------------------------------------------------------
    def mode(self, package, name):
        """True when ``package`` answers in the vendor variant ``name`` (see each emulator's ``MODES``).

        Modes reproduce shapes the real APIs are documented or recorded to send but our
        default data does not (older field names, padded strings, non-monotonic timestamps).
        """
        with self.lock:
            return name in self.modes.get(package, ())

    def set_modes(self, package, names):
        with self.lock:
            self.modes[package] = set(names or ())

    # -- budgets -----------------------------------------------------------------------
    def spend(self, package, tenant, connection=None):
        """Count one call against ``package``'s budgets; seconds to wait when over one of them."""
        return self.spend_naming(package, tenant, connection)[0]

    def spend_naming(self, package, tenant, connection=None):
        """Like :meth:`spend`, answering ``(seconds to wait, the limits that refused the call)``.

        A package's budget ``{"per_minute": n, "window_seconds": s, "per_connection": m}``
        allows ``n`` calls per tenant and ``m`` per connection (OAuth grant) in any ``s``
        seconds (sliding); either may be absent or 0. A refused call counts against
        neither, and is counted in :attr:`rejected` (and :attr:`rejected_by` per limit).
        """
        budget = self.budgets.get(package)
        if not budget:
            return 0, ()
        window = float(budget.get("window_seconds", 60))
        limits = [("tenant", tenant, int(budget.get("per_minute") or 0))]
        if connection is not None:
            limits.append(("connection", connection, int(budget.get("per_connection") or 0)))
        limits = [(kind, key, limit) for kind, key, limit in limits if limit > 0]
        if not limits:
            return 0, ()
        now = time.monotonic()
        with self.lock:
            logs, wait, refused = [], 0.0, []
            for kind, key, limit in limits:
                calls = self.windows.setdefault((package, key) if kind == "tenant" else (package, kind, key), deque())
                while calls and calls[0] <= now - window:
                    calls.popleft()
                if len(calls) >= limit:
                    refused.append(kind)
                    wait = max(wait, calls[0] + window - now)
                logs.append(calls)
            if refused:
                self.rejected[package] += 1
                for kind in refused:
                    self.rejected_by[f"{package}:{kind}"] += 1
                return max(1, math.ceil(wait)), tuple(refused)
            for calls in logs:
                calls.append(now)
            return 0, ()

    def stats(self):
        with self.lock:
            return {
                "calls": dict(self.calls),
                "total_calls": sum(self.calls.values()),
                "token_refreshes": dict(self.token_refreshes),
                "token_grants": dict(self.token_grants),
                "rejected": dict(self.rejected),
                "rejected_by": dict(self.rejected_by),
                "faults": [dict(f) for f in self.faults],
                "budgets": {k: dict(v) for k, v in self.budgets.items()},
                "modes": {k: sorted(v) for k, v in self.modes.items() if v},
            }


def _spec(company):
    return company if isinstance(company, CompanySpec) else CompanySpec(**company)
