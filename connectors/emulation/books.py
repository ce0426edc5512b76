"""Deterministic bookkeeping data for the sandbox.

A :class:`Book` is one company: a chart of 20 to 1,500 accounts, fiscal years, and a
ledger of balanced journal entries generated *by index* from a seeded PRNG, so page N of
a ledger with millions of lines is computed on demand and nothing big sits in memory.

Entries come in blocks of three with 2, 3 and 4 lines (9 lines per block), which makes
"line i belongs to entry e" plain arithmetic. Each entry's lines sum to exactly zero.
Generated lines were "modified" at ``BASE_MODIFIED + entry index`` seconds; mutations
(:meth:`Book.mutate`) happen later on a mutation clock, so incremental feeds see them in
``(modified_at, id)`` order.
"""
from __future__ import annotations

import calendar
import hashlib
import random
import threading
import zlib
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

BASE_MODIFIED = int(datetime(2025, 1, 1, tzinfo=timezone.utc).timestamp())
ENTRY_SIZES = (2, 3, 4)
ENTRY_OFFSETS = (0, 2, 5)
LINES_PER_BLOCK = 9
JOURNALS = ("SALES", "PURCH", "BANK", "MISC")
#: how each journal books, so the generated books read like real ones: (kinds of the entry's
#: lines, kinds of its balancing last line, sign of its lines: 1 debit, -1 credit, 0 either)
JOURNAL_BOOKING = {
    "SALES": (("income",), ("asset",), -1),
    "PURCH": (("expense",), ("liability",), 1),
    "BANK": (("asset", "liability"), ("asset",), 0),
    "MISC": (("asset", "liability", "equity", "income", "expense"), ("asset", "liability", "equity"), 0),
}

#: (kind, first number, last number, share of the chart, names)
CHART_PLAN = (
    ("asset", 1000, 1999, 0.25, ("Bank account", "Trade debtors", "Inventory", "Prepayments", "Equipment",
                                 "Vehicles", "VAT receivable", "Cash", "Deposits", "Software")),
    ("liability", 2000, 2999, 0.15, ("Trade creditors", "VAT payable", "Wages payable", "Bank loan",
                                     "Accruals", "Corporate tax payable", "Credit card")),
    ("equity", 3000, 3999, 0.05, ("Share capital", "Retained earnings", "Current year result", "Reserves")),
    ("income", 4000, 4999, 0.15, ("Sales", "Services", "Interest received", "Other income", "Rental income")),
    ("expense", 5000, 8999, 0.40, ("Purchases", "Rent", "Salaries", "Insurance", "Telephone", "Travel",
                                   "Fuel", "Office supplies", "Accountancy fees", "Bank charges",
                                   "Depreciation", "Advertising", "Repairs", "Training")),
)
DESCRIPTIONS = {
    "SALES": "Invoice", "PURCH": "Supplier invoice", "BANK": "Bank statement", "MISC": "Journal",
}


@dataclass
class CompanySpec:
    """What to generate for one company."""

    id: str
    name: str
    accounts: int = 60
    lines: int = 500
    first_year: int = 2023
    years: int = 2
    fy_start_month: int = 1
    currency: str = "EUR"
    country: str = "BE"
    vat_number: str = ""


DEFAULT_COMPANIES = (
    CompanySpec("c-1001", "Bakkerij De Gouden Korst BV", accounts=60, lines=500, vat_number="BE0456789012"),
    CompanySpec("c-1002", "Janssens & Co Architecten", accounts=120, lines=2_000, fy_start_month=4,
                vat_number="BE0567890123"),
    CompanySpec("c-1003", "Northwind Trading Ltd", accounts=20, lines=40, currency="GBP", country="GB",
                vat_number="GB123456789"),
)


def month_end(day):
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


def iso_ts(seconds):
    """``2025-01-01T00:00:00Z`` for UNIX ``seconds`` (whole seconds, UTC)."""
    return datetime.fromtimestamp(int(seconds), timezone.utc).replace(tzinfo=None).isoformat() + "Z"


def parse_ts(text):
    """UNIX seconds of an :func:`iso_ts` text; ValueError for any other shape."""
    if len(text) != 20 or text[10] != "T" or text[13] != ":" or text[16] != ":" or text[-1] != "Z":
        raise ValueError(f"not a time stamp like 2025-01-01T00:00:00Z: {text!r}")
    return int(datetime.fromisoformat(text[:-1]).replace(tzinfo=timezone.utc).timestamp())


def name_uuid(namespace, name):
    """``str(uuid.uuid5(namespace, name))``, computed without building a UUID object (the
    sandbox names every generated journal and line this way, hundreds of thousands a sync)."""
    digest = hashlib.sha1(namespace.bytes + name.encode()).hexdigest()
    variant = "89ab"[int(digest[16], 16) & 3]  # RFC 4122 variant bits 10xx
    return f"{digest[:8]}-{digest[8:12]}-5{digest[13:16]}-{variant}{digest[17:20]}-{digest[20:32]}"


def lines_in(entries):
    """How many lines the first ``entries`` entries have."""
    return LINES_PER_BLOCK * (entries // 3) + ENTRY_OFFSETS[entries % 3]


def entries_for(lines):
    """The fewest whole entries holding at least ``lines`` lines."""
    entries = 3 * (max(lines, 1) // LINES_PER_BLOCK)
    while lines_in(entries) < max(lines, 1):
        entries += 1
    return entries


def entry_of(index):
    """The entry holding line ``index`` (0-based)."""
    block, rest = divmod(index, LINES_PER_BLOCK)
    local = 0 if rest < 2 else 1 if rest < 5 else 2
    return 3 * block + local


class Book:
    """One generated company; thread safe for the sandbox's threaded server."""

    def __init__(self, spec: CompanySpec, seed: int):
        self.spec = spec
        self.seed = (seed * 2_654_435_761 + zlib.crc32(spec.id.encode())) % (2 ** 32)
        self.accounts = self._chart(random.Random(self.seed))
        self.fiscal_years = []
        start = date(spec.first_year, spec.fy_start_month, 1)
        for _ in range(spec.years):
            following = date(start.year + 1, start.month, 1)
            self.fiscal_years.append((start, following - timedelta(days=1)))
            start = following
        self.entry_count = entries_for(spec.lines)
        self.line_count = lines_in(self.entry_count)
        self._days = (self.fiscal_years[-1][1] - self.fiscal_years[0][0]).days + 1
        self._lock = threading.RLock()
        self.reset()

    def reset(self):
        """Forget every mutation."""
        with self._lock:
            self.changed = {}  # line id -> line dict (replaces the generated line)
            self.added = {}  # line id -> line dict
            self.deleted = {}  # line id -> deleted at (seconds)
            self.mutations = 0
            self.next_entry = self.entry_count
            self.next_id = self.line_count + 1
            self.clock = BASE_MODIFIED + self.entry_count + 3600
            self._movements = None

    # -- chart -------------------------------------------------------------------------
    def _chart(self, rng):
        size = max(20, min(1500, self.spec.accounts))
        accounts = []
        for kind, first, last, share, names in CHART_PLAN:
            count = max(2, round(size * share)) if kind != "expense" else 0
            accounts.append([kind, first, last, names, count])
        accounts[-1][4] = size - sum(a[4] for a in accounts[:-1])
        chart = []
        for kind, first, last, names, count in accounts:
            numbers = sorted(rng.sample(range(first, last + 1), count))
            for position, number in enumerate(numbers):
                name = names[position % len(names)]
                if position >= len(names):
                    name = f"{name} {position // len(names) + 1}"
                chart.append({"id": f"acc-{number}", "number": str(number), "name": name, "type": kind})
        return chart

    def _by_kind(self, kinds):
        """The chart's accounts of the given kinds (cached per tuple of kinds)."""
        cache = self.__dict__.setdefault("_kind_cache", {})
        if kinds not in cache:
            cache[kinds] = [a for a in self.accounts if a["type"] in kinds] or self.accounts
        return cache[kinds]

    # -- generated ledger --------------------------------------------------------------
    def _entry_lines(self, entry, first_id, modified):
        rng = random.Random(self.seed * 1_000_003 + entry)
        size = ENTRY_SIZES[entry % 3]
        day = self.fiscal_years[0][0] + timedelta(days=(entry * self._days) // max(self.entry_count, 1) % self._days)
        period_end = month_end(day)
        fy_start = next(start for start, end in self.fiscal_years if start <= day <= end)
        if day.day <= 5 and rng.random() < 0.05 and month_end(fy_start) < period_end:
            period_end = day.replace(day=1) - timedelta(days=1)  # booked in the previous period
        journal = JOURNALS[rng.randrange(len(JOURNALS))]
        reference = f"{journal[0]}{entry + 1:07d}"
        main_kinds, balancing_kinds, sign = JOURNAL_BOOKING[journal]
        cents = [(sign or rng.choice((1, -1))) * rng.randrange(100, 500_000) for _ in range(size - 1)]
        cents.append(-sum(cents))
        lines = []
        for position, amount in enumerate(cents):
            kinds = balancing_kinds if position == size - 1 else main_kinds
            candidates = self._by_kind(kinds)
            account = candidates[rng.randrange(len(candidates))]
            lines.append({
                "id": first_id + position,
                "entry_id": entry + 1,
                "date": day.isoformat(),
                "period_end": period_end.isoformat(),
                "account": account["number"],
                "amount": str(Decimal(amount) / 100),
                "description": f"{DESCRIPTIONS[journal]} {reference}",
                "reference": reference,
                "journal": journal,
                "dimensions": {"cost_centre": f"CC{rng.randrange(1, 4)}"} if rng.random() < 0.3 else {},
                "modified_at": iso_ts(modified),
            })
        return lines

    def base_entry(self, entry):
        """The generated lines of entry ``entry`` (ignoring mutations)."""
        first = lines_in(entry)
        return self._entry_lines(entry, first + 1, BASE_MODIFIED + entry)

    def _base_start(self, after):
        """Index of the first generated line whose (modified_at, id) is after ``after``."""
        if after is None:
            return 0
        ts, line_id = after
        if ts < BASE_MODIFIED:
            return 0
        entry = ts - BASE_MODIFIED
        if entry >= self.entry_count:
            return self.line_count
        return min(max(line_id, lines_in(entry)), lines_in(entry + 1))

    def lines_after(self, after=None, limit=500):
        """Up to ``limit`` current lines with ``(modified_at, id)`` after ``after``, in that order."""
        with self._lock:
            found = []
            index = self._base_start(after)
            while index < self.line_count and len(found) < limit:
                entry = entry_of(index)
                for line in self.base_entry(entry):
                    if line["id"] - 1 >= index and line["id"] not in self.changed and line["id"] not in self.deleted:
                        found.append(line)
                        if len(found) == limit:
                            break
                index = lines_in(entry + 1)
            if len(found) < limit:
                overlay = sorted(list(self.changed.values()) + list(self.added.values()), key=_key)
                found.extend(line for line in overlay if after is None or _key(line) > tuple(after))
            return found[:limit]

    def all_lines(self, page=5000):
        """Every current line (a generator, page by page)."""
        after = None
        while True:
            lines = self.lines_after(after, page)
            yield from lines
            if len(lines) < page:
                return
            after = _key(lines[-1])

    def deleted_after(self, after=None, limit=500):
        with self._lock:
            rows = sorted((ts, line_id) for line_id, ts in self.deleted.items())
            rows = [r for r in rows if after is None or r > tuple(after)]
            return [{"id": line_id, "deleted_at": iso_ts(ts)} for ts, line_id in rows[:limit]]

    def movements(self):
        """``{(period_end, account): Decimal}`` summed over the current ledger (cached)."""
        with self._lock:
            if self._movements is None:
                totals = {}
                for line in self.all_lines():
                    key = (line["period_end"], line["account"])
                    totals[key] = totals.get(key, Decimal(0)) + Decimal(line["amount"])
                self._movements = {k: v for k, v in sorted(totals.items()) if v}
            return self._movements

    # -- mutations ---------------------------------------------------------------------
    def _live_entries(self, rng, count):
        chosen = []
        for _ in range(count * 20):
            if len(chosen) == count:
                break
            entry = rng.randrange(self.entry_count)
            ids = [line["id"] for line in self.base_entry(entry)]
            if entry not in chosen and not any(i in self.deleted or i in self.changed for i in ids):
                chosen.append(entry)
        return chosen

    def _current_line(self, line_id):
        if line_id in self.changed:
            return dict(self.changed[line_id])
        if line_id in self.added:
            return dict(self.added[line_id])
        if 1 <= line_id <= self.line_count:
            return next(line for line in self.base_entry(entry_of(line_id - 1)) if line["id"] == line_id)
        return None

    def mutate(self, add=0, change=0, delete=0, change_ids=(), delete_ids=()):
        """Add, change (amounts doubled, description marked) or delete whole entries.

        ``change_ids``/``delete_ids`` name single lines instead. Returns the ids touched.
        """
        with self._lock:
            self.mutations += 1
            self.clock += 1
            rng = random.Random(self.seed + 7919 * self.mutations)
            result = {"added": [], "changed": [], "deleted": [], "modified_at": iso_ts(self.clock)}
            for entry in self._live_entries(rng, change):
                change_ids = list(change_ids) + [line["id"] for line in self.base_entry(entry)]
            for entry in self._live_entries(rng, delete):
                delete_ids = list(delete_ids) + [line["id"] for line in self.base_entry(entry)]
            for line_id in change_ids:
                line = self._current_line(int(line_id))
                if line is None or int(line_id) in self.deleted:
                    continue
                line.update(amount=str(Decimal(line["amount"]) * 2), modified_at=iso_ts(self.clock),
                            description=line["description"] + " (corrected)")
                (self.added if line["id"] in self.added else self.changed)[line["id"]] = line
                result["changed"].append(line["id"])
            for line_id in delete_ids:
                line_id = int(line_id)
                if self._current_line(line_id) is None or line_id in self.deleted:
                    continue
                self.changed.pop(line_id, None)
                self.added.pop(line_id, None)
                self.deleted[line_id] = self.clock
                result["deleted"].append(line_id)
            for _ in range(add):
                lines = self._entry_lines(self.next_entry, self.next_id, self.clock)
                for line in lines:
                    self.added[line["id"]] = line
                    result["added"].append(line["id"])
                self.next_entry += 1
                self.next_id += len(lines)
            self._movements = None
            return result


def _key(line):
    return (parse_ts(line["modified_at"]), line["id"])
