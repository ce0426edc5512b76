"""Mapping accounts one by one on the Figures tab (/admin/dossier/map-account): to an account of a
reference chart or to a kind, saved per file, kept at the next upload, checked server-side, audited;
the Figures tab then groups the trial balance by kind and shows each account's mapping."""
import io
import re
from datetime import date

from sqlalchemy import select

from app.extensions import db
from app.models import Account, AccountMapping, AuditEvent, FiscalYear
from tests.conftest import login
from tests.console_world import build_world, csrf_token, fresh_request_globals, log_in  # noqa: F401 (fixture)

BALANCE = b"compte;intitule;solde\n101300;Capital;-1000\n512000;Banque;1250\n706000;Prestations;-250\n"


def upload_balance(client, dossier_id):
    return client.post("/admin/dossier-sync/upload", data={
        "csrf_token": csrf_token(client), "id": dossier_id, "kind": "trial_balance", "period_end": "2024-01-31",
        "file": (io.BytesIO(BALANCE), "balance.csv")}, content_type="multipart/form-data", follow_redirects=True)


def map_account(client, dossier_id, **form):
    return client.post("/admin/dossier/map-account", data={"csrf_token": csrf_token(client), "id": dossier_id,
                                                           **form}, follow_redirects=True)


def kinds(dossier_id):
    db.session.expire_all()
    return dict(db.session.execute(select(Account.number, Account.kind).where(Account.dossier_id == dossier_id)).all())


def groups(page):
    """``{kind: [account numbers]}`` of the Figures tab's trial balance."""
    found = {}
    for kind, body in re.findall(r'<tbody data-kind="(\w+)">(.*?)</tbody>', page, re.S):
        found[kind] = re.findall(r'<tr data-account="(\d+)">', body)
    return found


def figures(client, world, year):
    return client.get(f"/admin/dossier/?id={world.a_grouped}&tab=figures&year={year}").get_data(as_text=True)


def test_accounts_mapped_one_by_one_group_the_trial_balance_and_survive_the_next_upload(client, app):
    world = build_world()
    year = FiscalYear(dossier_id=world.a_grouped, start=date(2024, 1, 1), end=date(2024, 12, 31), origin="manual")
    db.session.add(year)
    db.session.commit()
    year_id = year.id
    log_in(client, "staff")
    assert "Nothing was uploaded" not in upload_balance(client, world.a_grouped).get_data(as_text=True)
    page = figures(client, world, year_id)
    assert groups(page) == {"other": ["101300", "512000", "706000"]}  # a flat list before any mapping
    assert 'id="map-account-form"' in page

    done = map_account(client, world.a_grouped, account="706000", country="fr", code="706000").get_data(as_text=True)
    assert "Account 706000 is mapped to 706000 Ventes de prestations de services (income)." in done
    done = map_account(client, world.a_grouped, account="512000", kind="asset", year=year_id).get_data(as_text=True)
    assert "Account 512000 is classified as assets." in done
    map_account(client, world.a_grouped, account="101300", kind="liability")
    page = figures(client, world, year_id)
    assert groups(page) == {"asset": ["512000"], "liability": ["101300"], "income": ["706000"]}
    assert re.search(r'<tr data-account="706000">.*?<small class="text-muted fs-mapping" data-origin="firm">PCG '
                     r'706000</small>', page, re.S)
    assert 'id="trial-balance-totals" class="font-weight-bold" data-balanced="yes"' in page
    rows = {r.account_number: (r.scheme, r.code, r.kind, r.origin) for r in db.session.scalars(
        select(AccountMapping).where(AccountMapping.dossier_id == world.a_grouped))}
    assert rows == {"706000": ("reference:fr", "706000", "income", "firm"), "512000": ("firm", "", "asset", "firm"),
                    "101300": ("firm", "", "liability", "firm")}

    # a reference-chart classification and the next upload keep the firm's choices
    client.post("/admin/dossier-sync/classify", data={"csrf_token": csrf_token(client), "id": world.a_grouped,
                                                      "country": "fr"})
    upload_balance(client, world.a_grouped)
    assert kinds(world.a_grouped) == {"101300": "liability", "512000": "asset", "706000": "income"}
    assert groups(figures(client, world, year_id)) == {"asset": ["512000"], "liability": ["101300"],
                                                       "income": ["706000"]}
    events = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "data.map_account")
                                .order_by(AuditEvent.id)).all()
    assert [e.changes["account"] for e in events] == ["706000", "512000", "101300"]
    assert {e.dossier_id for e in events} == {world.a_grouped} and {e.firm_id for e in events} == {world.alpha}
    assert events[0].changes["kind"] == ["other", "income"] and events[0].changes["mapping"][1] == "reference:fr 706000"


def test_bad_mappings_say_why_and_change_nothing(client, app):
    world = build_world()
    db.session.add(FiscalYear(dossier_id=world.a_grouped, start=date(2024, 1, 1), end=date(2024, 12, 31),
                              origin="manual"))
    db.session.commit()
    log_in(client, "admin")
    upload_balance(client, world.a_grouped)
    answers = [map_account(client, world.a_grouped, **form).get_data(as_text=True) for form in (
        {"account": "706000", "country": "fr", "code": "999999"},
        {"account": "706000", "country": "xx", "code": "706000"},
        {"account": "123", "kind": "asset"},
        {"account": "706000", "kind": "sideways"},
        {"account": "706000"},
    )]
    assert "Nothing was changed: The reference chart has no account 999999." in answers[0]
    assert "Nothing was changed: That reference chart is not installed on this server." in answers[1]
    assert "Nothing was changed: Account 123 is not in this file&#39;s chart." in answers[2]
    assert "Nothing was changed: &#39;sideways&#39; is not an account kind." in answers[3]
    assert "Choose an account of the reference chart or an account kind." in answers[4]
    assert set(kinds(world.a_grouped).values()) == {"other"}
    assert db.session.scalars(select(AccountMapping)).all() == []
    assert db.session.scalars(select(AuditEvent).where(AuditEvent.action == "data.map_account")).all() == []


def test_only_who_may_upload_may_map(client, app):
    world = build_world()
    db.session.add(FiscalYear(dossier_id=world.a_grouped, start=date(2024, 1, 1), end=date(2024, 12, 31),
                              origin="manual"))
    db.session.commit()
    log_in(client, "staff")
    upload_balance(client, world.a_grouped)
    form = {"account": "706000", "kind": "income"}
    for role in ("external", "support", "pulse"):
        other = client.application.test_client()
        log_in(other, role)
        assert other.post("/admin/dossier/map-account", data={"csrf_token": csrf_token(other),
                                                              "id": world.a_grouped, **form}).status_code == 403, role
        if role == "external":  # sees the file's figures, not the form
            page = other.get(f"/admin/dossier/?id={world.a_grouped}&tab=figures").get_data(as_text=True)
            assert 'id="trial-balance"' in page and 'id="map-account-form"' not in page
    outsider = client.application.test_client()
    login(outsider, "admin@beta.test")
    assert outsider.post("/admin/dossier/map-account", data={"csrf_token": csrf_token(outsider),
                                                             "id": world.a_grouped, **form}).status_code == 404
    assert set(kinds(world.a_grouped).values()) == {"other"}
    assert db.session.scalars(select(AccountMapping)).all() == []
