"""The file route of packages built from public information: a column mapping saved per firm and package on
the Sync tab, applied to uploads of that package's exports, also into a file linked to such a package."""
import io
from datetime import date

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.models import Account, AuditEvent, Connection, DossierLink, FiscalYear, LedgerLine, UploadColumnMapping
from app.services import uploads
from tests.conftest import login
from tests.console_world import build_world, csrf_token, fresh_request_globals, log_in  # noqa: F401 (fixture)

# a WingsOnline ledger export whose column names no built-in list knows
WINGS_LEDGER = ("Dtm;Rek.nr;Omschr. boeking;Bedrag EUR;Dgb\n"
                "15/01/2024;400000;Factuur 1;1210,00;VKP\n"
                "15/01/2024;700000;Factuur 1;-1210,00;VKP\n").encode()
MAPPING = {"column_date": "Dtm", "column_account": "Rek.nr", "column_description": "Omschr. boeking",
           "column_amount": "Bedrag EUR", "column_journal": "Dgb"}


@pytest.fixture
def world(app):
    world = build_world()
    wings = Connection(firm_id=world.alpha, package="wings_online", kind="accounting", name="Wings office",
                       config={"base_url": "https://ws.wings.example", "username": "Wings8x"},
                       credentials={"password": "Wings-secret-7d"})
    db.session.add(wings)
    db.session.flush()
    db.session.add(DossierLink(firm_id=world.alpha, dossier_id=world.a_grouped, connection_id=wings.id,
                               reference="DOS042"))
    db.session.add(FiscalYear(dossier_id=world.a_grouped, start=date(2024, 1, 1), end=date(2024, 12, 31),
                              origin="manual"))
    db.session.commit()
    return world


def upload(client, dossier_id, data, **form):
    return client.post("/admin/dossier-sync/upload", data={
        "csrf_token": csrf_token(client), "id": dossier_id, "kind": "ledger_lines",
        "file": (io.BytesIO(data), "wings.csv"), **form}, content_type="multipart/form-data", follow_redirects=True)


def save_mapping(client, dossier_id, **form):
    return client.post("/admin/dossier-sync/upload-mapping", data={
        "csrf_token": csrf_token(client), "id": dossier_id, "package": "wings_online", "kind": "ledger_lines",
        **form}, follow_redirects=True)


def lines(dossier_id):
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(LedgerLine).where(LedgerLine.dossier_id == dossier_id))


def test_a_linked_file_takes_its_package_exports_once_the_mapping_is_saved(client, world):
    log_in(client, "staff")
    page = client.get(f"/admin/dossier-sync/?id={world.a_grouped}").get_data(as_text=True)
    assert 'id="file-route"' in page and 'id="upload-form"' in page and 'id="mapping-form"' in page
    refused = upload(client, world.a_grouped, WINGS_LEDGER).get_data(as_text=True)
    assert "Nothing was uploaded" in refused and "has no column for" in refused
    assert lines(world.a_grouped) == 0

    saved = save_mapping(client, world.a_grouped, **MAPPING).get_data(as_text=True)
    assert "Column mapping saved: 5 column(s)" in saved and "“Bedrag EUR”" in saved
    done = upload(client, world.a_grouped, WINGS_LEDGER).get_data(as_text=True)
    assert "Nothing was uploaded" not in done
    assert lines(world.a_grouped) == 2
    row = db.session.scalars(select(LedgerLine).join(Account, LedgerLine.account_id == Account.id).where(
        LedgerLine.dossier_id == world.a_grouped, Account.number == "700000")).one()
    assert (str(row.amount), row.journal, row.description) == ("-1210.00", "VKP", "Factuur 1")
    event = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "upload_mapping.save")).one()
    assert event.firm_id == world.alpha and event.dossier_id == world.a_grouped


def test_a_mapping_naming_a_missing_column_says_so_and_writes_nothing(client, world):
    log_in(client, "admin")
    save_mapping(client, world.a_grouped, **{**MAPPING, "column_amount": "Montant TTC"})
    answer = upload(client, world.a_grouped, WINGS_LEDGER).get_data(as_text=True)
    assert "the file has no column “Montant TTC”" in answer and lines(world.a_grouped) == 0


def test_mappings_are_per_firm_and_checked_server_side(client, world):
    log_in(client, "admin")
    save_mapping(client, world.a_grouped, **MAPPING)
    with client.application.app_context():
        assert uploads.column_mapping(world.alpha, "wings_online", "ledger_lines")["amount"] == "Bedrag EUR"
        assert uploads.column_mapping(world.beta, "wings_online", "ledger_lines") is None
    outsider = client.application.test_client()
    login(outsider, "admin@beta.test")
    assert outsider.post("/admin/dossier-sync/upload-mapping", data={
        "csrf_token": csrf_token(outsider), "id": world.a_grouped, "package": "wings_online",
        "kind": "ledger_lines", "column_amount": "X"}).status_code == 404
    external = client.application.test_client()
    log_in(external, "external")
    assert external.post("/admin/dossier-sync/upload-mapping", data={
        "csrf_token": csrf_token(external), "id": world.a_grouped, "package": "wings_online",
        "kind": "ledger_lines", "column_amount": "X"}).status_code == 403
    db.session.expire_all()
    assert db.session.scalars(select(UploadColumnMapping)).one().columns["amount"] == "Bedrag EUR"


def test_bad_mappings_are_refused_with_a_reason(client, world):
    log_in(client, "admin")
    twice = save_mapping(client, world.a_grouped, column_account="Rek", column_name="rek").get_data(as_text=True)
    assert "The column mapping was not saved" in twice and "named for two different columns" in twice
    unknown = save_mapping(client, world.a_grouped, package="no_such_package").get_data(as_text=True)
    assert "Choose the package whose exports these are" in unknown
    long = save_mapping(client, world.a_grouped, column_account="x" * 101).get_data(as_text=True)
    assert "longer than 100 characters" in long
    assert db.session.scalar(select(func.count()).select_from(UploadColumnMapping)) == 0


def test_a_file_linked_to_a_documented_package_still_refuses_uploads(client, world):
    log_in(client, "admin")
    answer = upload(client, world.a_public, WINGS_LEDGER, package="wings_online").get_data(as_text=True)
    assert "revert it to a manual file" in answer
