"""The demo firm that ``make run`` seeds (``flask seed demo``).

:func:`seed_demo` is idempotent: it looks every row up by its natural key (firm name, e-mail,
group name, dossier number, connection name, link) and creates only what is missing, so
running it twice leaves the database as after the first run. It needs nothing outside the
repository (no ``../shared``).

When the sandbox (``SANDBOX_URL``) and Redis answer, :func:`seed_sandbox` also connects the
demo firm to it: an Exact Online Belgium connection (several divisions; the grant comes from
the sandbox's real consent page, answered programmatically), Companies House, Demo Books, a
Xero grant owned by one file, and every other accounting package the sandbox emulates
(Twinfield, Yuki, Sage, Octopus, AFAS, BoCount, Odoo: connected, their companies listed, ready
to link); links the files to companies; and runs their first sync and
tonight's nightly sync in-process, so the console shows real figures, history and a failure
("Atelier Lumière" is linked to a company Demo Books does not know) right after logging in.
Without the sandbox those steps are skipped with a note; the next ``flask seed demo``
completes them.
"""
import html
import re
import secrets
from dataclasses import dataclass
from datetime import date
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import select

from app.models import (
    Connection, ConnectionStatus, Dossier, DossierLink, Firm, Frequency, Group, Membership, Role, RunStatus,
    SyncRun, Trigger, User,
)

FIRM_NAME = "Demo Accountancy"
GROUP_NAME = "Audit team"


@dataclass(frozen=True)
class DemoLogin:
    """One demo account: the key used in the returned dict, and what the login table shows."""

    key: str
    email: str
    password: str
    name: str
    role: str | None  # a :class:`Role` value, or None for platform support staff
    can_create_files: bool = False

    @property
    def label(self):
        return Role.LABELS[self.role] if self.role else "Support (platform staff)"


LOGINS = (
    DemoLogin("admin", "admin@demo.firmsync.test", "demo-admin-2024", "Anne Admin", Role.ADMIN, True),
    DemoLogin("staff", "staff@demo.firmsync.test", "demo-staff-2024", "Stijn Staff", Role.STAFF, True),
    DemoLogin("external", "external@demo.firmsync.test", "demo-external-2024", "Emma External", Role.EXTERNAL),
    DemoLogin("pulse", "pulse@demo.firmsync.test", "demo-pulse-2024", "Pieter Pulse", Role.PULSE),
    DemoLogin("support", "support@demo.firmsync.test", "demo-support-2024", "Sam Support", None),
)

#: Client files of the demo firm; ``number`` is the dossier's natural key inside the firm.
DOSSIERS = (
    dict(number="BE001", name="Boulangerie Dupont SRL", country="BE", currency="EUR",
         company_number="0456.789.123", vat_number="BE0456789123", frequency=Frequency.MONTH,
         first_fiscal_year_end=date(2019, 12, 31)),
    dict(number="BE002", name="Vandenberghe Bouw NV", country="BE", currency="EUR",
         company_number="0412.345.678", vat_number="BE0412345678", frequency=Frequency.QUARTER,
         first_fiscal_year_end=date(2016, 6, 30)),
    dict(number="NL001", name="De Groene Fiets B.V.", country="NL", currency="EUR",
         company_number="68750110", vat_number="NL857321466B01", frequency=Frequency.MONTH,
         first_fiscal_year_end=date(2018, 12, 31)),
    dict(number="UK001", name="Thames Valley Joinery Ltd", country="GB", currency="GBP",
         company_number="09876543", vat_number="GB123456789", frequency=Frequency.QUARTER,
         first_fiscal_year_end=date(2017, 3, 31)),
    dict(number="UK002", name="Harbour Lane Consulting Ltd", country="GB", currency="GBP",
         company_number="11223344", vat_number="GB987654321", frequency=Frequency.YEAR,
         first_fiscal_year_end=date(2020, 3, 31)),
    dict(number="FR001", name="Atelier Lumière SAS", country="FR", currency="EUR",
         company_number="812 345 678", vat_number="FR40812345678", frequency=Frequency.MONTH,
         first_fiscal_year_end=date(2021, 12, 31), private=True),
)

#: Which demo users see which dossiers besides what their role gives them.
GRANTS = {"external": ("BE001", "NL001"), "pulse": ("BE001",)}
GROUP_DOSSIERS = ("BE002", "FR001")
GROUP_MEMBERS = ("staff",)


def seed_demo(db, *, sandbox=True):
    """Create (or complete) the demo firm and return what it holds.

    Returns a dict: ``firm`` (:class:`Firm`), ``users`` ({login key: :class:`User`}),
    ``group`` (:class:`Group`), ``dossiers`` ({number: :class:`Dossier`}), ``logins``
    (the :data:`LOGINS`), ``created`` ({kind: number of rows created by this call}) and
    ``sandbox`` (what :func:`seed_sandbox` did; skipped when ``sandbox`` is false).
    Demo passwords are set on every call so the printed table is always right. Commits.
    """
    created = {"firm": 0, "users": 0, "memberships": 0, "group": 0, "dossiers": 0}
    session = db.session

    firm = session.scalar(select(Firm).where(Firm.name == FIRM_NAME))
    if firm is None:
        firm = Firm(name=FIRM_NAME, country="BE", timezone="Europe/Brussels", default_locale="en")
        session.add(firm)
        session.flush()
        created["firm"] += 1

    users = {}
    for login in LOGINS:
        user = session.scalar(select(User).where(User.email == login.email))
        if user is None:
            user = User(email=login.email, name=login.name)
            session.add(user)
            created["users"] += 1
        user.set_password(login.password)
        user.active = True
        user.is_support = login.role is None
        if login.role is not None and user.membership_for(firm.id) is None:
            session.add(Membership(user=user, firm=firm, role=login.role,
                                   can_create_files=login.can_create_files))
            created["memberships"] += 1
        users[login.key] = user
    session.flush()

    group = session.scalar(select(Group).where(Group.firm_id == firm.id, Group.name == GROUP_NAME))
    if group is None:
        group = Group(firm=firm, name=GROUP_NAME)
        session.add(group)
        created["group"] += 1

    dossiers = {}
    for values in DOSSIERS:
        dossier = session.scalar(
            select(Dossier).where(Dossier.firm_id == firm.id, Dossier.number == values["number"])
        )
        if dossier is None:
            dossier = Dossier(firm=firm, **values)
            session.add(dossier)
            created["dossiers"] += 1
        dossiers[values["number"]] = dossier

    for key, numbers in GRANTS.items():
        for number in numbers:
            if users[key] not in dossiers[number].users:
                dossiers[number].users.append(users[key])
    for number in GROUP_DOSSIERS:
        if group not in dossiers[number].groups:
            dossiers[number].groups.append(group)
    for key in GROUP_MEMBERS:
        if users[key] not in group.members:
            group.members.append(users[key])

    session.commit()
    outcome = seed_sandbox(db, firm, users["admin"], dossiers) if sandbox else SandboxOutcome(
        note="The sandbox steps were not asked for.")
    created.update({kind: count for kind, count in outcome.created.items()})
    return {
        "firm": firm,
        "users": users,
        "group": group,
        "dossiers": dossiers,
        "logins": LOGINS,
        "created": created,
        "sandbox": outcome,
    }


# --------------------------------------------------------------------------------------
# The sandbox part: connections, links, synced files
# --------------------------------------------------------------------------------------

#: where the sandbox's consent pages send the code back; nothing listens there, the seed reads
#: the code from the redirect itself
DEMO_REDIRECT_URI = "http://127.0.0.1:5000/oauth/callback"

#: firm-level connections of the demo: key -> (name, package, kind)
CONNECTIONS = {
    "exact": ("Exact Online Belgium", "exact_online_be", "accounting"),
    "companies_house": ("Companies House", "companies_house", "administration"),
    "demo_books": ("Demo Books", "demo", "accounting"),
    # connected and listing their companies, so a demo administrator can link a file to them
    "twinfield": ("Twinfield", "twinfield", "accounting"),
    "yuki": ("Yuki", "yuki", "accounting"),
    "sage_bca": ("Sage Accounting", "sage_bca", "accounting"),
    "octopus": ("Octopus", "octopus", "accounting"),
    "afas": ("AFAS Profit", "afas", "accounting"),
    "bocount_odata_v4": ("BoCount (Business Central)", "bocount_odata_v4", "accounting"),
    "odoo": ("Odoo", "odoo", "accounting"),
    "winbooks_on_web": ("Winbooks On Web", "winbooks_on_web", "accounting"),
    "wings_online": ("WingsOnline", "wings_online", "accounting"),
    "cegid_loop": ("Cegid Loop", "cegid_loop", "accounting"),
    "horus": ("Horus", "horus", "accounting"),
    "adminpulse": ("AdminPulse", "adminpulse", "administration"),
    "virk_cvr": ("Virk (CVR)", "virk_cvr", "administration"),
    "corporify": ("Corporify", "corporify", "administration"),
    "fid_manager": ("FID-Manager", "fid_manager", "administration"),
}
#: dossier number -> (connection key, sandbox company id); the company id is turned into the
#: package's reference (Exact division code, Companies House number, Xero tenant) by name
LINKS = (
    ("BE001", "exact", "c-1001"),
    ("BE002", "exact", "c-1002"),
    ("NL001", "demo_books", "c-1001"),
    ("UK001", "demo_books", "c-1003"),
    ("UK001", "companies_house", "c-1003"),
    ("UK002", "xero", "c-1003"),
    ("FR001", "demo_books", "c-4040"),  # unknown to Demo Books: the demo's failing sync
)
XERO_DOSSIER = "UK002"


@dataclass
class SandboxOutcome:
    """What :func:`seed_sandbox` did: rows created, runs run, and a note when it skipped."""

    note: str | None = None
    created: dict = None
    runs: list = None  # [(dossier number, trigger, status)]
    connections: dict = None  # {key: Connection}

    def __post_init__(self):
        self.created = self.created or {"connections": 0, "links": 0, "sync runs": 0}
        self.runs = self.runs or []
        self.connections = self.connections or {}


def sandbox_url():
    from flask import current_app

    return current_app.config.get("SANDBOX_URL", "http://127.0.0.1:5050").rstrip("/")


def sandbox_problem():
    """Why the sandbox steps cannot run (sandbox or Redis not answering), or None."""
    import requests

    from app.redis_connection import redis_connection

    try:
        requests.get(sandbox_url() + "/_sandbox/stats", timeout=3).raise_for_status()
    except requests.RequestException:
        return (f"The sandbox does not answer at {sandbox_url()}: the demo files are not connected or synced. "
                "Start it (python -m sandbox) and run `flask seed demo` again.")
    try:
        redis_connection().ping()
    except Exception:  # noqa: BLE001 - any Redis failure means "no syncs now"
        return "Redis does not answer: the demo files are not synced. Start Redis and run `flask seed demo` again."
    return None


def seed_sandbox(db, firm, admin, dossiers):
    """Connect the demo firm to the sandbox and sync its files (idempotent; see the module docstring).

    Returns a :class:`SandboxOutcome`. Grants are fetched again on every call: the sandbox
    keeps its tokens in memory, so after a restart the stored ones no longer work.
    """
    from app.access import actor_for

    problem = sandbox_problem()
    if problem:
        return SandboxOutcome(note=problem)
    outcome = SandboxOutcome()
    actor = actor_for(admin, firm.id)
    companies = _sandbox_companies()
    for key in CONNECTIONS:
        outcome.connections[key] = _firm_connection(db, firm, key, outcome)
    outcome.connections["xero"] = _xero_connection(db, firm, dossiers[XERO_DOSSIER], outcome)
    for number, key, company in LINKS:
        _link(db, actor, dossiers[number], outcome.connections[key], _reference(key, company, companies,
                                                                               outcome.connections[key]), outcome)
    db.session.commit()
    _first_syncs(db, firm, outcome, dossiers)
    _nightly_syncs(db, firm, outcome, dossiers)
    return outcome


def _sandbox_companies():
    """``{company id: {"name", "ch_number"}}`` from the sandbox's control listings."""
    import requests

    found = {row["id"]: {"name": row["name"]} for row in
             requests.get(sandbox_url() + "/_sandbox/companies", timeout=10).json()}
    for row in requests.get(sandbox_url() + "/_sandbox/companies-house/companies", timeout=10).json():
        found.setdefault(row["company"], {})["ch_number"] = row["number"]
    return found


def _reference(key, company, companies, connection):
    """``(reference, name)`` of sandbox company ``company`` in connection ``key``'s package."""
    known = companies.get(company)
    if key == "companies_house":
        return known["ch_number"], known["name"]
    if key == "demo_books":
        return company, (known or {}).get("name")
    by_name = {ref["name"]: ref["reference"] for ref in connection.references or []}
    return by_name[known["name"]], known["name"]


def _spec(package):
    from connectors import registry

    return registry.get_connector(package).spec


def consent_grant(spec, config):
    """Run the package's OAuth code flow against the sandbox like a user clicking "Allow";
    answer the grant (tokens) exactly as the console's flow stores it."""
    import requests

    from app import oauth_flow
    from connectors.oauth import new_code_verifier

    verifier = new_code_verifier() if spec.auth.pkce else None
    url = oauth_flow.consent_url(spec, config, DEMO_REDIRECT_URI, secrets.token_urlsafe(16), verifier)
    page = requests.get(url, timeout=10)
    page.raise_for_status()
    fields = {name: html.unescape(value)
              for name, value in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page.text)}
    answer = requests.post(url, data={**fields, "decision": "allow"}, allow_redirects=False, timeout=10)
    code = parse_qs(urlsplit(answer.headers.get("Location", "")).query).get("code", [""])[0]
    return oauth_flow.grant_from(spec, config, {"code": code}, DEMO_REDIRECT_URI, verifier)


def _granted(db, connection, spec, config):
    """Put a fresh grant and the companies it reaches on ``connection``."""
    from app import oauth_flow
    from app.models.base import utcnow

    config_values, secret_values = oauth_flow.split_config(spec, config)
    credentials = {**secret_values, **consent_grant(spec, config)}
    connection.config = config_values
    connection.credentials = credentials
    connection.status = ConnectionStatus.ACTIVE
    connection.references = oauth_flow.grant_references(spec, config, credentials)
    connection.references_refreshed_at = utcnow()


def _firm_connection(db, firm, key, outcome):
    name, package, kind = CONNECTIONS[key]
    connection = db.session.scalar(select(Connection).where(
        Connection.firm_id == firm.id, Connection.level == "firm", Connection.name == name))
    if connection is None:
        connection = Connection(firm_id=firm.id, package=package, kind=kind, level="firm", name=name)
        db.session.add(connection)
        outcome.created["connections"] += 1
    spec = _spec(package)
    config = spec.sandbox_settings(sandbox_url())
    if spec.auth.consent:
        _granted(db, connection, spec, config)
    else:
        from app import oauth_flow
        from app.services.connections import refresh_references

        connection.config, connection.credentials = oauth_flow.split_config(spec, config)
        if not spec.reference_typed:
            db.session.flush()
            refresh_references(connection)  # what "Refresh companies" does, here in the seed's own process
    db.session.flush()
    return connection


def _xero_connection(db, firm, dossier, outcome):
    """The Xero grant owned by the Xero file (what "Add new client" with Xero creates)."""
    from app import oauth_flow

    spec = _spec("xero")
    connection = db.session.scalar(select(Connection).where(
        Connection.firm_id == firm.id, Connection.owner_dossier_id == dossier.id, Connection.package == "xero"))
    if connection is None:
        connection = Connection(firm_id=firm.id, package="xero", kind=spec.kind, level="dossier",
                                owner_dossier_id=dossier.id, name=f"Xero – {dossier.name}")
        db.session.add(connection)
        outcome.created["connections"] += 1
    _granted(db, connection, spec, oauth_flow.dossier_app_config("xero"))
    db.session.flush()
    return connection


def _link(db, actor, dossier, connection, reference, outcome):
    """Link ``dossier`` to ``reference`` through ``connection`` unless that link exists."""
    from app.services.links import set_up_sync

    reference, name = reference
    existing = db.session.scalar(select(DossierLink).where(
        DossierLink.dossier_id == dossier.id, DossierLink.connection_id == connection.id,
        DossierLink.ended_at.is_(None)))
    if existing is not None or (connection.kind == "accounting" and dossier.active_link("accounting")):
        return existing
    outcome.created["links"] += 1
    return set_up_sync(actor, dossier, connection, reference, reference_name=name, queue=False)


def _run_now(db, link, trigger, outcome, number, nightly_key=None):
    """Create a run of ``link`` and run it in this process (``jobs.sync.run``)."""
    from jobs.sync import run as run_sync

    run = SyncRun(firm_id=link.firm_id, dossier_id=link.dossier_id, link_id=link.id, trigger=trigger,
                  nightly_key=nightly_key, status=RunStatus.QUEUED)
    db.session.add(run)
    db.session.get(Dossier, link.dossier_id).sync_status = RunStatus.QUEUED
    db.session.commit()
    run_id = run.id
    run_sync(run_id)
    db.session.expire_all()
    outcome.created["sync runs"] += 1
    outcome.runs.append((number, trigger, db.session.get(SyncRun, run_id).status))


def _demo_links(db, firm):
    return db.session.scalars(select(DossierLink).where(
        DossierLink.firm_id == firm.id, DossierLink.ended_at.is_(None)).order_by(DossierLink.id)).all()


def _first_syncs(db, firm, outcome, dossiers):
    """The set-up sync of every demo link that never ran."""
    numbers = {d.id: n for n, d in dossiers.items()}
    for link in _demo_links(db, firm):
        ran = db.session.scalar(select(SyncRun.id).where(SyncRun.link_id == link.id).limit(1))
        if ran is None:
            _run_now(db, link, Trigger.SETUP, outcome, numbers.get(link.dossier_id))


def _nightly_syncs(db, firm, outcome, dossiers):
    """Tonight's nightly sync of every demo link, keyed like the cron's (it then skips them)."""
    from app.models.base import utcnow
    from jobs.nightly import firm_local_now

    night = firm_local_now(firm, utcnow()).date().isoformat()
    numbers = {d.id: n for n, d in dossiers.items()}
    for link in _demo_links(db, firm):
        key = f"{link.id}:{night}"
        if db.session.scalar(select(SyncRun.id).where(SyncRun.nightly_key == key)) is None:
            _run_now(db, link, Trigger.NIGHTLY, outcome, numbers.get(link.dossier_id), nightly_key=key)


def sandbox_summary(outcome):
    """One paragraph for ``flask seed demo``: the note when the sandbox steps were skipped,
    else what was synced."""
    if outcome.note:
        return f"Note: {outcome.note}"
    if not outcome.runs:
        return "Sandbox: the demo files were already connected and synced tonight."
    done = ", ".join(f"{number} {trigger} {status}" for number, trigger, status in outcome.runs)
    return f"Sandbox: connected the demo firm and ran {len(outcome.runs)} sync(s): {done}."


def login_table(logins=LOGINS):
    """The demo logins as a plain-text table (what ``flask seed demo`` prints)."""
    rows = [("Role", "E-mail", "Password")] + [(l.label, l.email, l.password) for l in logins]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)
