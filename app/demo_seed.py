"""The demo firm that ``make run`` seeds (``flask seed demo``).

:func:`seed_demo` is idempotent: it looks every row up by its natural key (firm name, e-mail,
group name, dossier number) and creates only what is missing, so running it twice leaves the
database as after the first run. It needs nothing outside the repository (no ``../shared``).

Later issues extend the demo (connections to the sandbox, synced data) by adding a step to
:func:`seed_demo` and an entry to the dict it returns.
"""
from dataclasses import dataclass
from datetime import date

from sqlalchemy import select

from app.models import Dossier, Firm, Frequency, Group, Membership, Role, User

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


def seed_demo(db):
    """Create (or complete) the demo firm and return what it holds.

    Returns a dict: ``firm`` (:class:`Firm`), ``users`` ({login key: :class:`User`}),
    ``group`` (:class:`Group`), ``dossiers`` ({number: :class:`Dossier`}), ``logins``
    (the :data:`LOGINS`) and ``created`` ({kind: number of rows created by this call}).
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
    return {
        "firm": firm,
        "users": users,
        "group": group,
        "dossiers": dossiers,
        "logins": LOGINS,
        "created": created,
    }


def login_table(logins=LOGINS):
    """The demo logins as a plain-text table (what ``flask seed demo`` prints)."""
    rows = [("Role", "E-mail", "Password")] + [(l.label, l.email, l.password) for l in logins]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)
