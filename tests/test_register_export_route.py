"""The file route of administration packages built from public information (Corporify, FID-Manager): the
company register export uploaded on the Sync tab becomes a company snapshot of the file's administration
link, which the File page's change banner offers like a sync's; a column mapping is saved per firm and
package; bad files write nothing; other roles and firms are refused."""
import io

import pytest
from openpyxl import Workbook
from sqlalchemy import func, select

from app.extensions import db
from app.models import AuditEvent, CompanyProfile, Connection, DossierLink, UploadColumnMapping
from tests.conftest import login
from tests.console_world import build_world, csrf_token, fresh_request_globals, log_in  # noqa: F401 (fixture)

# a French export: the company row (type empty), an officer and a shareholder
EXPORT_FR = ("Type;Dénomination;Numéro d'entreprise;Numéro de TVA;Forme juridique;Statut;Adresse;Code postal;"
             "Localité;Pays;Date de constitution;Clôture;Assemblée générale;Capital social;Devise;Fonction;"
             "Actions;Pourcentage;Date de début;Date de fin\n"
             ";Alpha Grouped SRL;0456.789.012;BE 0456.789.012;SRL;Active;Rue Haute 12;1000;Bruxelles;BE;"
             "15/03/2016;31/12;2e mardi de juin;18 550,00;EUR;;;;;\n"
             "administrateur;Marie Dupont;;;;;;;;;;;;;;Administratrice;;;01/04/2016;\n"
             "actionnaire;Holding Dupont SA;;;;;;;;;;;;;;;600;60;15/03/2016;\n").encode()
# the same company in the package's own column names, which no built-in list knows
ODD_EXPORT = ("Soc.;Ond.nr;Einde bj;Rij\n"
              "Alpha Grouped BV;0456.789.012;30/06;\n"
              "Jan Peeters;;;officer\n").encode()
ODD_MAPPING = {"column_name": "Soc.", "column_registration_number": "Ond.nr", "column_fiscal_year_end": "Einde bj",
               "column_type": "Rij"}


def link_to(world, package, dossier_id=None):
    connection = Connection(firm_id=world.alpha, package=package, kind="administration", name=f"{package} office",
                            config={"base_url": "https://api.example"}, credentials={"api_key": "reg-5ecret"})
    db.session.add(connection)
    db.session.flush()
    db.session.add(DossierLink(firm_id=world.alpha, dossier_id=dossier_id or world.a_grouped,
                               connection_id=connection.id, kind="administration", reference="0456789012"))
    db.session.commit()


@pytest.fixture
def world(app):
    world = build_world()
    link_to(world, "corporify")
    return world


def upload(client, dossier_id, data, filename="register.csv"):
    return client.post("/admin/dossier-sync/register-upload", data={
        "csrf_token": csrf_token(client), "id": dossier_id, "file": (io.BytesIO(data), filename)},
        content_type="multipart/form-data", follow_redirects=True)


def snapshots(dossier_id):
    db.session.expire_all()
    return db.session.scalars(select(CompanyProfile).where(CompanyProfile.dossier_id == dossier_id)
                              .order_by(CompanyProfile.version)).all()


def test_a_valid_export_becomes_a_snapshot_the_banner_offers(client, world):
    log_in(client, "staff")
    page = client.get(f"/admin/dossier-sync/?id={world.a_grouped}").get_data(as_text=True)
    assert 'id="register-upload-form"' in page and 'id="register-mapping-form"' in page
    done = upload(client, world.a_grouped, EXPORT_FR).get_data(as_text=True)
    assert "Company register export uploaded: the File page shows what it would change." in done
    [profile] = snapshots(world.a_grouped)
    data = profile.data
    assert data["name"] == "Alpha Grouped SRL" and data["registration_number"] == "0456.789.012"
    assert data["vat_number"] == "BE0456789012" and data["legal_form"] == "SRL"
    assert data["address"] == {"line_1": "Rue Haute 12", "postal_code": "1000", "city": "Bruxelles", "country": "BE"}
    assert data["incorporation_date"] == "2016-03-15" and data["fiscal_year_end"] == "12-31"
    assert data["agm_date"] == "2e mardi de juin" and data["capital"] == {"amount": "18550.00", "currency": "EUR"}
    assert data["officers"] == [{"name": "Marie Dupont", "role": "Administratrice", "start": "2016-04-01",
                                 "end": None}]
    assert data["shareholders"] == [{"name": "Holding Dupont SA", "share": None, "shares": 600, "percentage": "60",
                                     "start": "2016-03-15", "end": None}]
    link = db.session.get(DossierLink, profile.link_id)
    assert link.dossier_id == world.a_grouped and link.kind == "administration"
    event = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "profile.upload_register")).one()
    assert event.user_id == world.user_staff and "register.csv" in event.summary

    banner = client.get(f"/admin/dossier/?id={world.a_grouped}").get_data(as_text=True)
    assert "Use the data from Corporify sync" in banner and "Alpha Grouped SRL" in banner and "Marie Dupont" in banner

    again = upload(client, world.a_grouped, EXPORT_FR).get_data(as_text=True)
    assert "it holds the same data as the latest snapshot" in again
    assert len(snapshots(world.a_grouped)) == 1


def test_an_xlsx_export_of_fid_manager_in_dutch(client, app):
    world = build_world()
    link_to(world, "fid_manager")
    book = Workbook()
    sheet = book.active
    sheet.append(["Naam", "Ondernemingsnummer", "Rechtsvorm", "Einde boekjaar", "Soort", "Functie", "Begindatum"])
    sheet.append(["Alpha Grouped BV", "0456.789.012", "BV", "31/03", None, None, None])
    sheet.append(["Jan Peeters", None, None, None, "bestuurder", "Zaakvoerder", "2019-01-01"])
    buffer = io.BytesIO()
    book.save(buffer)
    log_in(client, "admin")
    done = upload(client, world.a_grouped, buffer.getvalue(), "register.xlsx").get_data(as_text=True)
    assert "Company register export uploaded" in done
    [profile] = snapshots(world.a_grouped)
    assert profile.data["fiscal_year_end"] == "03-31" and profile.data["legal_form"] == "BV"
    assert profile.data["officers"] == [{"name": "Jan Peeters", "role": "Zaakvoerder", "start": "2019-01-01",
                                         "end": None}]
    banner = client.get(f"/admin/dossier/?id={world.a_grouped}").get_data(as_text=True)
    assert "Use the data from FID-Manager sync" in banner


def test_a_saved_mapping_is_reused(client, world):
    log_in(client, "staff")
    refused = upload(client, world.a_grouped, ODD_EXPORT).get_data(as_text=True)
    assert "Nothing was uploaded" in refused and "has no column for the name" in refused
    assert snapshots(world.a_grouped) == []
    saved = client.post("/admin/dossier-sync/register-mapping", data={
        "csrf_token": csrf_token(client), "id": world.a_grouped, **ODD_MAPPING}, follow_redirects=True)
    assert "Column mapping saved: 4 column(s)" in saved.get_data(as_text=True)
    mapping = db.session.scalars(select(UploadColumnMapping)).one()
    assert (mapping.firm_id, mapping.package, mapping.kind) == (world.alpha, "corporify", "company_register")
    page = client.get(f"/admin/dossier-sync/?id={world.a_grouped}").get_data(as_text=True)
    assert 'id="register-saved-mapping"' in page and "“Ond.nr”" in page
    # the mapping belongs to the firm and package: a second file linked to Corporify uses it too
    link_to(world, "corporify", world.a_public)
    for dossier_id in (world.a_grouped, world.a_public):
        assert "Company register export uploaded" in upload(client, dossier_id, ODD_EXPORT).get_data(as_text=True)
        [profile] = snapshots(dossier_id)
        assert profile.data["name"] == "Alpha Grouped BV" and profile.data["fiscal_year_end"] == "06-30"
        assert profile.data["officers"] == [{"name": "Jan Peeters", "role": None, "start": None, "end": None}]


@pytest.mark.parametrize("data, filename, message", [
    ("Type;Nom;Clôture;Date de début\n;Alpha SRL;31/02;\nofficer;Jan;;99/99/2020\npartner;Piet;;\n".encode(),
     "register.csv",
     ["line 2: the fiscal year end “31/02” is not a day and month", "line 3: the start date “99/99/2020” is not a "
      "date", "line 4: type “partner” is not company, officer or shareholder"]),
    ("Name;Type\nAlpha SRL;\nBeta SRL;company\n".encode(), "register.csv",
     ["The file must have exactly one company row", "it has 2."]),
    (b"PK\x03\x04 not really a workbook", "register.xlsx", ["The file is not a readable Excel workbook"]),
    (b"\xff\xfe\x00bad", "register.csv", ["The file is not UTF-8 text"]),
    (b"Name\n", "register.pdf", []),
])
def test_a_bad_file_is_refused_and_writes_nothing(client, world, data, filename, message):
    log_in(client, "staff")
    page = upload(client, world.a_grouped, data, filename).get_data(as_text=True)
    assert "Nothing was uploaded" in page
    for text in message:
        assert text in page
    assert snapshots(world.a_grouped) == []
    assert db.session.scalar(select(func.count()).select_from(AuditEvent)
                             .where(AuditEvent.action == "profile.upload_register")) == 0


@pytest.mark.parametrize("user, status", [("external", 403), ("pulse", 403), ("support", 403),
                                          ("admin@beta.test", 404), ("staff@beta.test", 404)])
def test_another_role_or_firm_is_refused(client, world, user, status):
    if "@" in user:
        assert login(client, user).status_code == 302
    else:
        log_in(client, user)
    assert upload(client, world.a_grouped, EXPORT_FR).status_code == status
    mapped = client.post("/admin/dossier-sync/register-mapping", data={
        "csrf_token": csrf_token(client), "id": world.a_grouped, **ODD_MAPPING})
    assert mapped.status_code == status
    assert snapshots(world.a_grouped) == []
    assert db.session.scalar(select(func.count()).select_from(UploadColumnMapping)) == 0


def test_a_file_without_such_a_link_is_refused(client, world):
    house = Connection(firm_id=world.alpha, package="companies_house", kind="administration", name="Companies House",
                       config={"base_url": "http://127.0.0.1:9/ch"}, credentials={"api_key": "ch-5ecret"})
    db.session.add(house)
    db.session.flush()
    db.session.add(DossierLink(firm_id=world.alpha, dossier_id=world.a_public, connection_id=house.id,
                               kind="administration", reference="09876543"))
    db.session.commit()
    log_in(client, "admin")
    for dossier_id in (world.a_public, world.a_private):  # a documented package's link; no link at all
        page = client.get(f"/admin/dossier-sync/?id={dossier_id}").get_data(as_text=True)
        assert 'id="register-upload-form"' not in page
        refused = upload(client, dossier_id, EXPORT_FR).get_data(as_text=True)
        assert "can only be uploaded into a file whose administration sync is Corporify or FID-Manager" in refused
        assert snapshots(dossier_id) == []


def test_an_export_over_the_size_limit_comes_back_to_the_tab_and_writes_nothing(app, client, world):
    app.config["MAX_CONTENT_LENGTH"] = 10_000
    log_in(client, "staff")
    big = EXPORT_FR + b";padding;;;;;;;;;;;;;;;;;;\n" * 1_000
    response = client.post(f"/admin/dossier-sync/register-upload?id={world.a_grouped}", data={
        "csrf_token": csrf_token(client), "id": world.a_grouped, "file": (io.BytesIO(big), "register.csv")},
        content_type="multipart/form-data")
    assert response.status_code == 302 and response.headers["Location"] == f"/admin/dossier-sync/?id={world.a_grouped}"
    assert "the file is larger than" in client.get(response.headers["Location"]).get_data(as_text=True)
    assert snapshots(world.a_grouped) == []
