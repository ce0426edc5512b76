"""The people, files and connections the browser journeys start from, and how a person logs in.

One firm ("Alpha Accountants") with one user per role, plus platform support staff. Rows
are written through the test's own session and committed, so the web server (another
application on the same database) sees them. Passwords use a cheap hash: logging in stays
fast.
"""
from dataclasses import dataclass
from datetime import date
from functools import cache

from sqlalchemy import select
from werkzeug.security import generate_password_hash

from app.extensions import db
from app.models import Connection, Dossier, DossierLink, FiscalYear, Firm, Membership, Role, RunStatus, SyncRun, User

PASSWORD = "correct horse battery"
EMAILS = {
    "admin": "admin@alpha.test",
    "staff": "staff@alpha.test",
    "external": "external@alpha.test",
    "pulse": "pulse@alpha.test",
    "support": "support@firmsync.test",
}
#: the sandbox's companies (connectors/emulation/books.py DEFAULT_COMPANIES); Northwind is the smallest
COMPANIES = {"c-1001": "Bakkerij De Gouden Korst BV", "c-1002": "Janssens & Co Architecten",
             "c-1003": "Northwind Trading Ltd"}
#: every sync-now control (file list arrows, dossier page button) posts to the dossier page's sync route
SYNC_FORMS = "form[action$='/admin/dossier/sync']"


@cache
def cheap_hash():
    return generate_password_hash(PASSWORD, method="pbkdf2:sha256:1000")


@dataclass
class People:
    """The firm and the user ids of each role."""

    firm_id: int
    users: dict

    def email(self, role):
        return EMAILS[role]


def build_people():
    """Create the firm and one user per role; commit; answer :class:`People`."""
    firm = Firm(name="Alpha Accountants")
    db.session.add(firm)
    users = {}
    for role, email in EMAILS.items():
        user = User(email=email, name=email.split("@")[0].title(), password_hash=cheap_hash(),
                    is_support=role == "support")
        db.session.add(user)
        if role != "support":
            db.session.add(Membership(user=user, firm=firm, role=getattr(Role, role.upper()),
                                      multi_file_access=role == "staff"))
        users[role] = user
    db.session.commit()
    return People(firm.id, {role: user.id for role, user in users.items()})


def demo_books_connection(people, sandbox, name="Demo Books office"):
    """A firm-level Demo Books connection (API key) to the sandbox; committed."""
    connection = Connection(firm_id=people.firm_id, package="demo", kind="accounting", level="firm", name=name,
                            config={"base_url": f"{sandbox.url}/demo"}, credentials={"api_key": "demo-key"},
                            references=[{"reference": k, "name": v} for k, v in COMPANIES.items()])
    db.session.add(connection)
    db.session.commit()
    return connection


def linked_dossier(people, connection, company, name, number=None, **fields):
    """A client file linked (scenario "replace") to ``company`` through ``connection``; committed."""
    dossier = Dossier(firm_id=people.firm_id, name=name, number=number, frequency="month", **fields)
    db.session.add(dossier)
    db.session.flush()
    db.session.add(DossierLink(firm_id=people.firm_id, dossier_id=dossier.id, connection_id=connection.id,
                               reference=company, reference_name=COMPANIES[company], scenario="replace"))
    db.session.commit()
    return dossier


def add_fiscal_years(dossier_id, *years):
    """Calendar fiscal years (origin "manual") for the given years; committed."""
    for year in years:
        db.session.add(FiscalYear(dossier_id=dossier_id, start=date(year, 1, 1), end=date(year, 12, 31),
                                  origin="manual"))
    db.session.commit()


def sync_in_this_process(dossier_id):
    """Run one sync of the dossier's link here, without a worker (for files that only need data); answer the run."""
    from jobs.sync import run as run_sync

    dossier = db.session.get(Dossier, dossier_id)
    link = dossier.active_link("accounting")
    sync_run = SyncRun(firm_id=dossier.firm_id, dossier_id=dossier_id, link_id=link.id, trigger="manual",
                       status=RunStatus.QUEUED)
    db.session.add(sync_run)
    db.session.commit()
    run_id = sync_run.id
    run_sync(run_id)
    fresh()
    return db.session.get(SyncRun, run_id)


def fresh():
    """End the test session's transaction so the next query sees what the server and worker wrote."""
    db.session.rollback()


def finished_runs(dossier_ids):
    """The newest run of each dossier once every one of them has finished, else None."""
    fresh()
    runs = []
    for dossier_id in dossier_ids:
        run = db.session.scalars(select(SyncRun).where(SyncRun.dossier_id == dossier_id)
                                 .order_by(SyncRun.id.desc()).limit(1)).first()
        if run is None or run.status not in RunStatus.FINISHED:
            return None
        runs.append(run)
    return runs


def log_in(page, email, password=PASSWORD):
    """Log in through the login form, like a person; answer where the browser landed."""
    page.goto("/login")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_load_state()
    return page.url


def log_out(page):
    page.locator("form[action$='/logout'] button").first.click()
    page.wait_for_url("**/login")


def open_menu(page, category, entry):
    """Go to a console screen through the navbar, like a person: open ``category``'s dropdown,
    click ``entry`` (exact names, in the page's language).

    Waits for the page's ``load`` first: a flash can be visible while the scripts at the end of
    the body (Bootstrap's dropdowns among them) have not run yet, and a click on the toggle then
    opens nothing."""
    page.wait_for_load_state()
    navbar = page.locator("#admin-navbar-collapse")
    navbar.get_by_role("button", name=category, exact=True).click()
    navbar.locator(".dropdown-menu.show").get_by_role("link", name=entry, exact=True).click()
    page.wait_for_load_state()
