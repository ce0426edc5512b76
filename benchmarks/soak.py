"""``make soak`` (``python -m benchmarks.soak``): two nights of the production topology on this machine.

gunicorn with ``--web-workers`` processes, ``--workers`` RQ workers (with the scheduler),
PostgreSQL, Redis and the sandbox, all as separate processes started here with production
settings. ``--files`` Xero files (``--connections`` grants of the firm's app, real OAuth
consent) go through two nights (``jobs.nightly.fan_out``, as the cron fires it: their first
sync, then an ordinary night) while ``--users`` simulated people log in through the form and
browse the dashboard, the Files list and file pages. The vendor budgets stay as the packages declare them.

Reported in ``--out`` (default ``docs/soak.md``): p95 of each page during each night, runs
succeeded, the 429s the sandbox answered, the memory (RSS) of every process before the first
night and after each, and a check that nothing was lost (every file holds the ledger lines
its company has). Not part of ``make test``: it takes minutes and the whole machine.
"""
from __future__ import annotations

import argparse
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from contextlib import ExitStack
from datetime import datetime, timedelta
from pathlib import Path

import requests

from benchmarks.services import ROOT, PostgresCluster, Redis, SandboxProcess, free_port, schema, wait_for_port
from benchmarks.world import XERO_CLIENT, Bench, connect_xero, xero_config

PASSWORD = "soak-password-123"
PAGES = ("dashboard", "files list", "file page")
NIGHTS = ("first night", "second night")


def parse(argv):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.soak", description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--lines", type=int, default=120, help="ledger lines of each company")
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--think", type=float, default=2.0,
                        help="mean seconds a person reads a page before the next (uniform, 0 to twice this)")
    parser.add_argument("--web-workers", type=int, default=4)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--deadline", type=int, default=3600, help="seconds before the night is called unfinished")
    parser.add_argument("--out", default=str(ROOT / "docs" / "soak.md"))
    return parser.parse_args(argv)


def say(message):
    print(f"soak: {message}", file=sys.stderr, flush=True)


def companies(count, lines):
    return [{"id": f"soak-{n:05d}", "name": f"Soak Client {n:05d} Ltd", "accounts": 25, "lines": lines,
             "first_year": 2025, "years": 1, "currency": "GBP", "country": "GB"} for n in range(count)]


def seed(sandbox_url, company_list, connection_count, user_count):
    """The firm, its users, ``connection_count`` Xero grants and a linked file per company."""
    from app.extensions import db
    from app.models import Connection, Dossier, DossierLink, Firm, Membership, Role, User
    from connectors.xero.emulator import tenant_id

    firm = Firm(name="Soak firm", country="GB", timezone="UTC", nightly_time="02:00")
    db.session.add(firm)
    db.session.flush()
    emails = []
    for n in range(user_count):
        user = User(email=f"user{n:02d}@soak.example", name=f"User {n:02d}")
        user.set_password(PASSWORD)
        db.session.add(user)
        db.session.flush()
        db.session.add(Membership(user_id=user.id, firm_id=firm.id, role=Role.ADMIN if n == 0 else Role.STAFF))
        emails.append(user.email)
    dossiers = [Dossier(firm_id=firm.id, name=c["name"], country="GB", currency="GBP") for c in company_list]
    db.session.add_all(dossiers)
    db.session.flush()
    connections = []
    for n in range(connection_count):
        connections.append(Connection(
            firm_id=firm.id, package="xero", kind="accounting", level="dossier", name=f"Xero grant {n}",
            config=xero_config(sandbox_url), owner_dossier_id=dossiers[n % len(dossiers)].id,
            credentials={**connect_xero(sandbox_url), "client_secret": XERO_CLIENT[1]}))
    db.session.add_all(connections)
    db.session.flush()
    db.session.add_all(DossierLink(firm_id=firm.id, dossier_id=d.id, connection_id=connections[i % connection_count].id,
                                   kind="accounting", reference=tenant_id(c["id"]), reference_name=c["name"])
                       for i, (d, c) in enumerate(zip(dossiers, company_list)))
    db.session.commit()
    return firm.id, [d.id for d in dossiers], emails


def production_env(bench):
    """The environment of every process: production settings over the benchmark's services."""
    return {**bench.env(), "FIRMSYNC_ENV": "production", "FIRMSYNC_SECRET_KEY": "soak-secret-key",
            "FIRMSYNC_ENCRYPTION_KEYS": bench.app.config["ENCRYPTION_KEYS"],
            "FIRMSYNC_SESSION_COOKIE_SECURE": "", "FIRMSYNC_REMEMBER_COOKIE_SECURE": "",  # plain HTTP on loopback
            "FIRMSYNC_ALLOW_PRIVATE_CONNECTOR_HOSTS": "1"}  # the sandbox is on 127.0.0.1


def process_tree(pid):
    """``pid`` and all its descendants (from /proc)."""
    children = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo += children.get(current, [])
    return tree


def rss_mb(pid):
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    match = re.search(r"VmRSS:\s+(\d+) kB", status)
    return round(int(match.group(1)) / 1024, 1) if match else None


def memory(procs):
    """``{label: MB}`` for every long-lived process (gunicorn master and workers, RQ workers)."""
    figures = {}
    for label, proc in procs.items():
        for n, pid in enumerate(process_tree(proc.pid)):
            name = Path(f"/proc/{pid}/comm").read_text().strip() if Path(f"/proc/{pid}/comm").exists() else "?"
            if label.startswith("rq") and n > 0:
                continue  # a work horse lives for one job: its peak is measure 2's business
            figures[f"{label}/{pid} ({name})"] = rss_mb(pid)
    return figures


class Browser(threading.Thread):
    """One person: logs in through the form, then opens pages until told to stop."""

    def __init__(self, base, email, dossier_ids, stop, think):
        super().__init__(daemon=True)
        self.base, self.email, self.dossier_ids, self.stop, self.think = base, email, dossier_ids, stop, think
        self.timings = {page: [] for page in PAGES}
        self.failures = []

    def run(self):
        session = requests.Session()
        page = session.get(self.base + "/login", timeout=60)
        token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page.text).group(1)
        answer = session.post(self.base + "/login", data={"email": self.email, "password": PASSWORD,
                                                          "csrf_token": token}, allow_redirects=False, timeout=60)
        if answer.status_code != 302:
            self.failures.append(f"login answered {answer.status_code}")
            return
        rng = random.Random(self.email)
        while not self.stop.is_set():
            for label in PAGES:
                url = {"dashboard": "/admin/", "files list": "/admin/dossiers/",
                       "file page": f"/admin/dossier/?id={rng.choice(self.dossier_ids)}"}[label]
                started = time.perf_counter()
                try:
                    response = session.get(self.base + url, timeout=60)
                except requests.RequestException as exc:
                    self.failures.append(f"{url}: {exc.__class__.__name__}")
                    continue
                self.timings[label].append((time.perf_counter() - started) * 1000)
                if response.status_code != 200:
                    self.failures.append(f"{url} answered {response.status_code}")
                self.stop.wait(rng.uniform(0, 2 * self.think))  # reading the page


def stop_processes(procs):
    for proc in procs.values():
        proc.terminate()
    for proc in procs.values():
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


def p95(values):
    values = sorted(values)
    return round(values[min(len(values) - 1, int(round(0.95 * (len(values) - 1))))], 1) if values else None


def night(bench, run_ids, deadline):
    """Wait until every run of the night finished (or the deadline); seconds taken or None."""
    from app.extensions import db
    from app.models import RunStatus, SyncRun

    started = time.perf_counter()
    while time.perf_counter() - started < deadline:
        db.session.expire_all()
        unfinished = db.session.scalar(db.select(db.func.count()).select_from(SyncRun).where(
            SyncRun.id.in_(run_ids), SyncRun.status.notin_(tuple(RunStatus.FINISHED))))
        if not unfinished:
            return time.perf_counter() - started
        time.sleep(1)
    return None


def outcome(run_ids, dossier_ids, lines):
    """Run statuses, and the files whose ledger does not hold every line of its company
    (the sandbox makes whole entries: ``lines`` rounded up to the entry, ``connectors.emulation.books``)."""
    from connectors.emulation.books import entries_for, lines_in

    lines = lines_in(entries_for(lines))
    from app.extensions import db
    from app.models import LedgerLine, SyncRun

    statuses = Counter(db.session.scalars(db.select(SyncRun.status).where(SyncRun.id.in_(run_ids))))
    messages = Counter(f"{r.status}: {(r.message or '')[:100]}" for r in db.session.scalars(
        db.select(SyncRun).where(SyncRun.id.in_(run_ids), SyncRun.status != "succeeded")))
    counts = dict(db.session.execute(db.select(LedgerLine.dossier_id, db.func.count()).where(
        LedgerLine.dossier_id.in_(dossier_ids)).group_by(LedgerLine.dossier_id)).all())
    wrong = {d: counts.get(d, 0) for d in dossier_ids if counts.get(d, 0) != lines}
    return dict(statuses), dict(messages), wrong


def write(path, args, figures):
    nights = figures["nights"]
    header = " | ".join(n["label"] for n in nights)
    line = "|---" * (len(nights) + 1) + "|"

    def row(title, key, show=lambda v: v):
        return f"| {title} | " + " | ".join(str(show(n[key])) for n in nights) + " |"

    figure_rows = "\n".join([
        row("runs queued by the nightly fan-out", "runs"),
        row("night finished in (s)", "night_seconds"),
        row("run outcomes", "statuses"),
        row("other outcomes", "messages", lambda v: v or "none"),
        row("files whose ledger is not complete", "wrong", len),
        row("429 answered by the sandbox", "sandbox_429"),
        row("API calls", "api_calls"),
        row("page errors seen by the people browsing", "page_failures", lambda v: v or "none")])
    page_rows = "\n".join(
        f"| {page} | " + " | ".join(f"{len(n['timings'][page])} / {n['p50'][page]} / {n['p95'][page]}" for n in nights)
        + " |" for page in PAGES)
    labels = sorted(set(figures["memory_start"]).union(*(n["memory"] for n in nights)))
    memory_rows = "\n".join(f"| {label} | {figures['memory_start'].get(label)} | "
                             + " | ".join(str(n["memory"].get(label)) for n in nights) + " |" for label in labels)
    growth = [n["memory"].get(label, 0) - nights[0]["memory"].get(label, 0)
              for label in labels for n in nights[1:] if nights[0]["memory"].get(label) and n["memory"].get(label)]
    text = f"""# Soak: the production topology through two nights

Written by `make soak` (`python -m benchmarks.soak`) on {figures['date']}. Machine: {os.cpu_count()} CPUs.
Topology: gunicorn with {args.web_workers} workers, {args.workers} RQ workers with the scheduler, PostgreSQL,
Redis and the sandbox, each its own process, production settings. {args.files} Xero files on
{args.connections} grants, {args.lines} ledger lines each, vendor budgets as declared; {args.users} people
log in and browse the console during each night: the dashboard, the Files list and a file page,
again and again, each person reading a page {args.think} s on average (uniformly 0 to
{2 * args.think} s; `--think 0` makes them robots that ask for the next page at once).

The first night is the files' first sync (every file is new: first syncs are backfills, released
`SYNC_BACKFILL_JOBS_PER_FIRM` at a time per firm); the second night is an ordinary night, the
files already in sync. Memory is read from every long-lived process before the first night and
after each; growth is judged between the two nights (the first night warms the processes up).

| figure | {header} |
{line}
{figure_rows}

## Pages during the nights (requests / p50 ms / p95 ms)

| page | {header} |
{line}
{page_rows}

## Memory (RSS, MB)

| process | before | after {" | after ".join(n["label"] for n in nights)} |
{line}---|
{memory_rows}

Largest change of one process between the nights: {max(growth, key=abs, default=0):+.1f} MB.
"""
    Path(path).write_text(text)


def main(argv=None):
    args = parse(argv)
    company_list = companies(args.files, args.lines)
    with ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="firmsync-soak-")))
        say("starting Redis, PostgreSQL and the sandbox")
        redis = stack.enter_context(Redis(password="soak-redis-password"))
        postgres = stack.enter_context(PostgresCluster())
        sandbox = stack.enter_context(SandboxProcess(company_list, log_path=work / "sandbox.log"))
        schema(postgres.url, redis.url, work / "instance")
        bench = Bench(postgres.url, redis.url, sandbox, work)
        with bench.app.app_context():
            say(f"seeding {args.files} files on {args.connections} connections")
            _firm_id, dossier_ids, emails = seed(sandbox.url, company_list, args.connections, args.users)
        env = production_env(bench)
        port = free_port()
        procs = {"gunicorn": subprocess.Popen(
            [str(Path(sys.executable).parent / "gunicorn"), "--workers", str(args.web_workers), "--bind",
             f"127.0.0.1:{port}", "wsgi:app"], cwd=ROOT, env=env,
            stdout=open(work / "gunicorn.log", "wb"), stderr=subprocess.STDOUT)}
        for n in range(args.workers):
            procs[f"rq-{n}"] = subprocess.Popen(
                [sys.executable, "-m", "flask", "--app", "wsgi", "worker", "--with-scheduler"], cwd=ROOT, env=env,
                stdout=open(work / f"worker-{n}.log", "wb"), stderr=subprocess.STDOUT)
        stack.callback(stop_processes, procs)
        wait_for_port(port, timeout=60)
        base = f"http://127.0.0.1:{port}"
        requests.get(base + "/login", timeout=60).raise_for_status()
        memory_start = memory(procs)
        nights = []
        for number, label in enumerate(NIGHTS):
            stop = threading.Event()
            browsers = [Browser(base, email, dossier_ids, stop, args.think) for email in emails]
            for browser in browsers:
                browser.start()
            with bench.app.app_context():
                from jobs.nightly import fan_out

                calls_before = sandbox.stats()["total_calls"]
                rejected_before = sandbox.stats()["rejected"].get("xero", 0)
                tonight = (datetime.utcnow().replace(hour=2, minute=1, second=0, microsecond=0)
                           + timedelta(days=1 + number))
                say(f"firing the {label}")
                run_ids = fan_out(now=tonight)
                seconds = night(bench, run_ids, args.deadline)
                stop.set()
                for browser in browsers:
                    browser.join(120)
                statuses, messages, wrong = outcome(run_ids, dossier_ids, args.lines)
            stats = sandbox.stats()
            timings = {page: [t for b in browsers for t in b.timings[page]] for page in PAGES}
            nights.append({
                "label": label, "runs": len(run_ids),
                "night_seconds": round(seconds, 1) if seconds else f"unfinished after {args.deadline}",
                "finished": bool(seconds), "statuses": statuses, "messages": messages, "wrong": wrong,
                "timings": timings,
                "p50": {p: round(statistics.median(v), 1) if v else None for p, v in timings.items()},
                "p95": {p: p95(v) for p, v in timings.items()},
                "sandbox_429": stats["rejected"].get("xero", 0) - rejected_before,
                "api_calls": stats["total_calls"] - calls_before,
                "page_failures": dict(Counter(f for b in browsers for f in b.failures)),
                "memory": memory(procs)})
        figures = {"date": datetime.utcnow().strftime("%Y-%m-%d"), "memory_start": memory_start, "nights": nights}
        write(args.out, args, figures)
        say(f"written to {args.out}")
        return 0 if all(n["finished"] and not n["wrong"] and not n["page_failures"]
                        and n["statuses"].get("succeeded") == n["runs"] for n in nights) else 1


if __name__ == "__main__":
    sys.exit(main())
