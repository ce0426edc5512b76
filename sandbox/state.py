"""The sandbox's in-memory state: generated books, injected faults, budgets and statistics."""
from __future__ import annotations

import math
import threading
import time
from collections import Counter, deque

from sandbox.books import Book, CompanySpec

FAULT_KINDS = ("429", "500", "slow", "malformed", "revoke")


class SandboxState:
    """Everything the emulated packages share; one per sandbox app, guarded by a lock."""

    def __init__(self, *, seed, companies, api_keys, budgets):
        self.seed = seed
        self.lock = threading.RLock()
        self.books = {spec.id: Book(spec, seed) for spec in (_spec(c) for c in companies)}
        self.api_keys = set(api_keys)
        self.initial_budgets = {k: dict(v) for k, v in (budgets or {}).items()}
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
            self.budgets = {k: dict(v) for k, v in self.initial_budgets.items()}
            self.windows = {}
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

    # -- budgets -----------------------------------------------------------------------
    def spend(self, package, tenant):
        """Count one call against ``package``'s budget for ``tenant``; seconds to wait when over it."""
        budget = self.budgets.get(package)
        if not budget or not budget.get("per_minute"):
            return 0
        window = float(budget.get("window_seconds", 60))
        now = time.monotonic()
        with self.lock:
            calls = self.windows.setdefault((package, tenant), deque())
            while calls and calls[0] <= now - window:
                calls.popleft()
            if len(calls) >= int(budget["per_minute"]):
                self.rejected[package] += 1
                return max(1, math.ceil(calls[0] + window - now))
            calls.append(now)
            return 0

    def stats(self):
        with self.lock:
            return {
                "calls": dict(self.calls),
                "total_calls": sum(self.calls.values()),
                "token_refreshes": dict(self.token_refreshes),
                "token_grants": dict(self.token_grants),
                "rejected": dict(self.rejected),
                "faults": [dict(f) for f in self.faults],
                "budgets": {k: dict(v) for k, v in self.budgets.items()},
            }


def _spec(company):
    return company if isinstance(company, CompanySpec) else CompanySpec(**company)
