"""Account mappings (app.services.account_mapping): from audit files, reference charts and the firm."""
import pytest
from sqlalchemy import select
from werkzeug.exceptions import Forbidden

from app.models import Account, AccountMapping, AuditEvent
from app.services.account_mapping import (
    MappingError, best_match, classify_with_reference, kind_of_reference_type, map_account,
)
from app.services.audit_file_import import import_audit_file
from app.services.uploads import import_trial_balance
from benchmarks.audit_file_samples import as_bytes, sample_books, xaf
from tests.audit_files.test_import import XAF, world  # noqa: F401 (fixture)


def kinds(db):
    return dict(db.session.execute(select(Account.number, Account.kind)).all())


def test_an_xaf_upload_saves_its_rgs_mappings(db, world):
    import_audit_file(world["admin"], world["dossier"], XAF, "books.xaf")
    rows = {r.account_number: (r.scheme, r.code, r.kind, r.origin) for r in db.session.scalars(select(AccountMapping))}
    assert rows["1000"] == ("rgs", "BLimBanRba", "asset", "file")
    assert rows["8000"] == ("rgs", "WOmzNopOlh", "income", "file")


def test_the_firms_choice_survives_the_next_upload(db, world):
    import_audit_file(world["admin"], world["dossier"], XAF, "books.xaf")
    map_account(world["admin"], world["dossier"], "1800", "other")
    assert kinds(db)["1800"] == "other"
    import_audit_file(world["admin"], world["dossier"], as_bytes(xaf(sample_books(), "4.0")), "books-40.xaf")
    assert kinds(db)["1800"] == "other" and kinds(db)["1000"] == "asset"
    assert db.session.scalar(select(AuditEvent).where(AuditEvent.action == "data.map_account")) is not None
    with pytest.raises(MappingError):
        map_account(world["admin"], world["dossier"], "1800", "sideways")
    with pytest.raises(Forbidden):
        map_account(world["external"], world["dossier"], "1800", "asset")


def test_a_csv_chart_is_classified_by_the_french_reference_chart_and_keeps_it_at_the_next_upload(db, world):
    from datetime import date

    from app.models import FiscalYear

    db.session.add(FiscalYear(dossier_id=world["dossier"].id, start=date(2024, 1, 1), end=date(2024, 12, 31),
                              origin="manual"))
    db.session.commit()
    data = b"compte;intitule;solde\n101300;Capital;-1000\n512000;Banque;1250\n706000;Prestations;-250\n"
    import_trial_balance(world["admin"], world["dossier"], data, "balance.csv", date(2024, 1, 31))
    assert set(kinds(db).values()) == {"other"}
    changed = classify_with_reference(world["admin"], world["dossier"], "fr")
    assert changed == 3 and kinds(db) == {"101300": "equity", "512000": "asset", "706000": "income"}
    import_trial_balance(world["admin"], world["dossier"], data, "balance.csv", date(2024, 1, 31))
    assert kinds(db)["706000"] == "income"
    with pytest.raises(MappingError):
        classify_with_reference(world["admin"], world["dossier"], "xx")
    with pytest.raises(Forbidden):
        classify_with_reference(world["external"], world["dossier"], "fr")


def test_matching_rules():
    chart = [("6", "expense"), ("61", "expense"), ("6130", "expense"), ("70", "income"), ("7000", "income")]
    assert best_match(chart, "613000") == ("6130", "expense")
    assert best_match(chart, "7099") == ("70", "income")
    assert best_match(chart, "8000") is None  # nothing shares two characters
    assert kind_of_reference_type("asset_receivable") == "asset"
    assert kind_of_reference_type("liability_payable") == "liability"
    assert kind_of_reference_type("off_balance") == "other"
