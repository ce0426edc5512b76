"""Fixtures for the bookkeeping-data tests: a dossier, a connection, links, a write counter."""
from datetime import date

import pytest

from app.models import Connection, Dossier, DossierLink, FiscalYear
from tests.conftest import recorded_statements


@pytest.fixture
def dossier(db, firm):
    dossier = Dossier(firm_id=firm.id, name="Bakery Janssens", number="D001", frequency="month")
    db.session.add(dossier)
    db.session.commit()
    return dossier


@pytest.fixture
def connection(db, firm):
    connection = Connection(
        firm_id=firm.id, package="demo", kind="accounting", name="Demo Books",
        config={"base_url": "http://sandbox.invalid"},
        references=[{"reference": "C1", "name": "Bakery Janssens BV"}, {"reference": "C2", "name": "Garage Peeters"}],
    )
    db.session.add(connection)
    db.session.commit()
    return connection


@pytest.fixture
def make_link(db):
    def _make(dossier, connection, **fields):
        fields.setdefault("reference", "C1")
        link = DossierLink(firm_id=dossier.firm_id, dossier_id=dossier.id, connection_id=connection.id, **fields)
        db.session.add(link)
        db.session.commit()
        return link

    return _make


@pytest.fixture
def calendar_years(db):
    """``calendar_years(dossier, 2023, 2024)`` adds calendar fiscal years (origin sync)."""
    def _add(dossier, *years, locked=()):
        for year in years:
            db.session.add(FiscalYear(dossier_id=dossier.id, start=date(year, 1, 1), end=date(year, 12, 31),
                                      origin="sync", locked=year in locked))
        db.session.commit()

    return _add


@pytest.fixture
def write_statements(db):
    """``with write_statements() as seen:`` collects every INSERT/UPDATE/DELETE executed."""
    def _watch():
        return recorded_statements(
            db.engine, keep=lambda statement: statement.lstrip().split(" ", 1)[0].upper() in ("INSERT", "UPDATE", "DELETE"))

    return _watch


@pytest.fixture
def snapshot(db):
    """``snapshot(dossier_id)``: every bookkeeping row of the dossier, comparable with ``==``."""
    from sqlalchemy import select

    from app.models import Account, LedgerLine, OpeningBalance, Period, PeriodBalance

    def _take(dossier_id):
        db.session.expire_all()
        tables = (Account, FiscalYear, Period, PeriodBalance, LedgerLine, OpeningBalance)
        rows = {}
        for model in tables:
            columns = [c for c in model.__table__.columns]
            result = db.session.execute(select(*columns).where(model.__table__.c.dossier_id == dossier_id))
            rows[model.__name__] = sorted(tuple(str(v) for v in row) for row in result)
        return rows

    return _take
