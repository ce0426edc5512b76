"""What the measures set up: a Flask app on the benchmark's database, a firm, Xero dossiers
connected to the sandbox through the real OAuth code flow (PKCE), and worker runs."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from html import unescape
from pathlib import Path

import requests

from benchmarks.services import ROOT

XERO_CLIENT = ("xero-sandbox-client", "xero-sandbox-secret")
REDIRECT = "http://127.0.0.1/oauth/callback"


def make_app(database_url, redis_url):
    """A Firmsync app (testing settings: fixed encryption key) on ``database_url`` and ``redis_url``."""
    from app import create_app

    return create_app("testing", SQLALCHEMY_DATABASE_URI=database_url, REDIS_URL=redis_url)


class Bench:
    """One benchmark environment: database URL, Redis URL, instance dir, sandbox and a work dir."""

    def __init__(self, database_url, redis_url, sandbox, workdir):
        self.database_url = database_url
        self.redis_url = redis_url
        self.sandbox = sandbox
        self.workdir = Path(workdir)
        self.instance = self.workdir / "instance"
        self.instance.mkdir(parents=True, exist_ok=True)
        self._app = None

    @property
    def app(self):
        """The Firmsync app on this database (created once)."""
        if self._app is None:
            os.environ["FIRMSYNC_INSTANCE_PATH"] = str(self.instance)
            self._app = make_app(self.database_url, self.redis_url)
        return self._app

    def env(self):
        return {**os.environ, "FIRMSYNC_ENV": "testing", "DATABASE_URL": self.database_url,
                "REDIS_URL": self.redis_url, "FIRMSYNC_INSTANCE_PATH": str(self.instance),
                "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}

    def run_worker(self, keep_budgets=False, with_scheduler=False, name="worker"):
        """Run one burst worker until the queues are empty; its peak memory (KB) as a dict."""
        report = self.workdir / f"{name}-rss.json"
        log = open(self.workdir / f"{name}.log", "ab")
        command = [sys.executable, "-m", "benchmarks.worker_process", "--report", str(report)]
        command += ["--keep-budgets"] if keep_budgets else []
        command += ["--with-scheduler"] if with_scheduler else []
        subprocess.run(command, cwd=ROOT, env=self.env(), stdout=log, stderr=subprocess.STDOUT, check=True)
        return json.loads(report.read_text())


def connect_xero(sandbox_url):
    """Credentials for the sandbox's Xero, through the consent page and the code exchange."""
    from connectors.oauth import authorization_url, exchange_code, new_code_verifier
    from connectors.xero import Xero

    oauth = Xero.oauth_endpoints(xero_config(sandbox_url))
    verifier = new_code_verifier()
    url = authorization_url(oauth, XERO_CLIENT[0], REDIRECT, "bench", verifier)
    page = requests.get(url, timeout=30)
    page.raise_for_status()
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page.text))
    answer = requests.post(url.split("?")[0], data={**{k: unescape(v) for k, v in fields.items()}, "decision": "allow"},
                           allow_redirects=False, timeout=30)
    code = re.search(r"[?&]code=([^&]+)", answer.headers["Location"]).group(1)
    return exchange_code(oauth, *XERO_CLIENT, code, REDIRECT, verifier, package="Xero")


def xero_config(sandbox_url, api_origin=None):
    """A Xero connection's config on the sandbox (its API on ``api_origin`` when given: the
    pre-rendered page server of measure 1; OAuth stays on the sandbox)."""
    return {"client_id": XERO_CLIENT[0], "base_url": f"{api_origin or sandbox_url}/xero/api.xro/2.0",
            "identity_url": f"{sandbox_url}/xero"}


def firm_id():
    """The benchmark firm (created on first use)."""
    from app.extensions import db
    from app.models import Firm

    firm = db.session.query(Firm).filter_by(name="Benchmark firm").first()
    if firm is None:
        firm = Firm(name="Benchmark firm", country="BE", timezone="UTC")
        db.session.add(firm)
        db.session.commit()
    return firm.id


def add_xero_dossier(sandbox_url, company_id, credentials, name, api_origin=None):
    """A dossier with its own Xero connection linked to the sandbox company ``company_id``
    (API calls to ``api_origin`` when given, see :func:`xero_config`); its id."""
    from app.extensions import db
    from app.models import Connection, Dossier, DossierLink
    from connectors.xero.emulator import tenant_id

    firm = firm_id()
    dossier = Dossier(firm_id=firm, name=name, country="GB", currency="GBP")
    db.session.add(dossier)
    db.session.flush()
    connection = Connection(firm_id=firm, package="xero", kind="accounting", level="dossier", name=f"Xero {name}",
                            config=xero_config(sandbox_url, api_origin), owner_dossier_id=dossier.id,
                            credentials={**credentials, "client_secret": XERO_CLIENT[1]})
    db.session.add(connection)
    db.session.flush()
    db.session.add(DossierLink(firm_id=firm, dossier_id=dossier.id, connection_id=connection.id, kind="accounting",
                               reference=tenant_id(company_id), reference_name=name))
    db.session.commit()
    return dossier.id


def set_credentials(dossier_id, credentials):
    """Give a dossier's Xero connection new credentials (the sandbox forgets tokens on reset)."""
    from app.extensions import db
    from app.models import Connection

    connection = db.session.query(Connection).filter_by(owner_dossier_id=dossier_id).one()
    connection.credentials = {**credentials, "client_secret": XERO_CLIENT[1]}
    db.session.commit()


def sync_and_wait(bench, dossier_id, **worker_options):
    """Queue a manual sync of the dossier, drain it with a real worker; ``(run, worker_rss, wall_seconds)``."""
    from app.extensions import db
    from app.models import SyncRun
    from app.services.syncs import request_sync

    run_id = request_sync(dossier_id, "manual").id
    started = time.perf_counter()
    rss = bench.run_worker(**worker_options)
    wall = time.perf_counter() - started
    db.session.expire_all()
    return db.session.get(SyncRun, run_id), rss, wall


def run_seconds(run):
    return (run.finished_at - run.started_at).total_seconds()
