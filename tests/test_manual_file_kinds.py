"""A manual file's status says when it was last uploaded, and its uploaded accounts can be
classified several at a time so the trial balance and the chart are no longer flat
(docs/console.md, "Manual files: last uploaded" and "Classifying uploaded accounts")."""
import io
import re
from datetime import date
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import Account, AccountMapping, AuditEvent, Dossier, FiscalYear
from app.services import fiscal_years
from app.services.account_kinds import suggested_kind
from app.time_zones import local_time
from tests.conftest import login
from tests.console_world import build_world, csrf_token, fresh_request_globals, log_in  # noqa: F401 (fixture)

TRIAL_BALANCE = (b"Account,Name,Debit,Credit\n"
                 b"100000,Capital,,1000.00\n"
                 b"550000,Bank,1500.00,\n"
                 b"604000,Purchases,300.00,\n"
                 b"700000,Sales,,800.00\n")
NUMBERS = ["100000", "550000", "604000", "700000"]


#: (country, account number, suggested kind)
SUGGESTIONS = [
    ("BE", "100000", "equity"), ("BE", "160000", "liability"), ("BE", "400000", "asset"),
    ("BE", "440000", "liability"), ("BE", "490000", "asset"), ("BE", "493000", "liability"),
    ("BE", "499000", None), ("BE", "190000", None), ("BE", "550000", "asset"), ("BE", "604000", "expense"),
    ("BE", "700000", "income"), ("BE", "000100", None), ("BE", "800000", None),
    ("FR", "401000", "liability"), ("FR", "411000", "asset"), ("FR", "445660", None), ("FR", "151000", "liability"),
    ("FR", "486000", "asset"), ("FR", "706000", "income"), ("fr", "607000", "expense"),
    ("NL", "8000", None), ("GB", "4000", None), ("BE", "CASH", None), ("BE", "", None),
]


def test_the_suggestion_follows_the_countrys_standard_chart_where_it_fixes_the_kind():
    """One test for the whole table (each test of this module builds an app: see the autouse fixture)."""
    assert {(country, number): suggested_kind(country, number) for country, number, _kind in SUGGESTIONS} == {
        (country, number): kind for country, number, kind in SUGGESTIONS}


@pytest.fixture
def world(app):
    """The console world; Alpha's grouped file (Belgian, no link) is a manual file with a 2026
    fiscal year; Alpha's private file is a manual file with nothing."""
    built = build_world()
    dossier = db.session.get(Dossier, built.a_grouped)
    db.session.add(FiscalYear(dossier_id=dossier.id, start=date(2026, 1, 1), end=date(2026, 12, 31), origin="manual"))
    db.session.flush()
    fiscal_years.ensure_periods(db.session, dossier)
    db.session.commit()
    return built


def upload(client, dossier_id):
    response = client.post("/admin/dossier-sync/upload", data={
        "csrf_token": csrf_token(client), "id": str(dossier_id), "kind": "trial_balance", "period_end": "2026-01-31",
        "file": (io.BytesIO(TRIAL_BALANCE), "tb.csv")}, content_type="multipart/form-data")
    assert response.status_code == 302
    return db.session.scalars(select(AuditEvent).where(AuditEvent.dossier_id == dossier_id,
                                                       AuditEvent.action == "data.upload_trial_balance")
                              .order_by(AuditEvent.id.desc())).first()


def files_row(client, name):
    page = client.get("/admin/dossiers/").get_data(as_text=True)
    return next(row for row in re.findall(r"<tr.*?</tr>", page, re.S) if name in row)


def test_a_manual_file_with_figures_says_when_it_was_last_uploaded(client, world):
    log_in(client, "admin")
    assert "Never synced" in files_row(client, "Alpha Grouped Ltd")
    event = upload(client, world.a_grouped)
    shown = local_time(event.created_at, zone=ZoneInfo("Europe/Brussels"))
    assert shown.endswith(("CET", "CEST"))

    row = files_row(client, "Alpha Grouped Ltd")
    assert f"Last uploaded {shown}" in row and "Never synced" not in row
    assert "Never synced" in files_row(client, "Alpha Private Ltd")  # a manual file with nothing
    assert 'data-status="succeeded"' not in files_row(client, "Alpha Grouped Ltd")

    page = client.get(f"/admin/dossier/?id={world.a_grouped}").get_data(as_text=True)
    assert re.search(rf'id="last-upload-time">{shown}<', page) and 'id="last-sync"' not in page
    assert 'data-status="uploaded"' in page
    page = client.get(f"/admin/dossier/?id={world.a_private}").get_data(as_text=True)
    assert 'id="last-sync-time">never<' in page and "Never synced" in page


def chart(client, dossier_id):
    """``{period end: result}`` of the file page's chart and the kinds its trial balance groups."""
    page = client.get(f"/admin/dossier/?id={dossier_id}&tab=figures").get_data(as_text=True)
    results = dict(re.findall(r'class="fs-result" data-period="([^"]+)" data-value="([^"]+)"', page))
    return results, re.findall(r'<tbody data-kind="(\w+)"', page), page


def classify(client, dossier_id, numbers, kind):
    return client.post("/admin/account-kinds/classify", data={
        "csrf_token": csrf_token(client), "id": str(dossier_id), "account": numbers, "kind": kind})


def kinds(dossier_id):
    db.session.expire_all()
    return dict(db.session.execute(select(Account.number, Account.kind).where(Account.dossier_id == dossier_id)).all())


def test_classifying_uploaded_accounts_splits_income_and_expenses_in_the_chart(client, world):
    log_in(client, "staff")
    upload(client, world.a_grouped)
    results, groups, page = chart(client, world.a_grouped)
    assert results["2026-01-31"] == "0.00" and groups == ["other"]  # flat: every account is "other"
    assert 'id="classify-accounts"' in page
    assert re.search(r'<tr data-account="604000">.*?data-kind="expense"', page, re.S)  # its suggestion

    response = classify(client, world.a_grouped, NUMBERS, "suggested")
    assert response.status_code == 302 and "tab=figures" in response.headers["Location"]
    assert kinds(world.a_grouped) == {"100000": "equity", "550000": "asset", "604000": "expense", "700000": "income"}
    results, groups, _page = chart(client, world.a_grouped)
    assert results["2026-01-31"] == "500.00"  # sales 800 - purchases 300
    assert groups == ["asset", "equity", "income", "expense"]
    event = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "data.map_accounts")).one()
    assert event.dossier_id == world.a_grouped and event.changes["accounts"]["700000"] == ["other", "income"]

    classify(client, world.a_grouped, ["100000", "550000"], "liability")  # several at once, one chosen kind
    assert kinds(world.a_grouped)["100000"] == "liability" and kinds(world.a_grouped)["550000"] == "liability"
    mapping = db.session.scalars(select(AccountMapping).where(AccountMapping.dossier_id == world.a_grouped,
                                                              AccountMapping.account_number == "550000")).one()
    assert (mapping.kind, mapping.origin) == ("liability", "firm")  # kept across later uploads

    upload(client, world.a_grouped)  # the next upload keeps the firm's kinds
    assert kinds(world.a_grouped) == {"100000": "liability", "550000": "liability", "604000": "expense",
                                      "700000": "income"}


def test_bad_classifications_say_why_and_change_nothing(client, world):
    log_in(client, "admin")
    upload(client, world.a_grouped)
    for numbers, kind, reason in ((NUMBERS, "purple", "is not an account kind"),
                                  (["100000", "999999"], "asset", "Account 999999 is not in this file"),
                                  ([], "asset", "Select at least one account")):
        response = classify(client, world.a_grouped, numbers, kind)
        assert response.status_code == 302
        assert reason in client.get(response.headers["Location"]).get_data(as_text=True)
        assert set(kinds(world.a_grouped).values()) == {"other"}
    assert db.session.scalar(select(AuditEvent.id).where(AuditEvent.action == "data.map_accounts")) is None


def test_who_may_not_upload_may_not_classify(app, client, world):
    log_in(client, "admin")
    upload(client, world.a_grouped)
    for role in ("external", "support", "pulse"):
        other = app.test_client()
        log_in(other, role)
        if role == "external":  # sees the file (through a group) but not the form
            page = other.get(f"/admin/dossier/?id={world.a_grouped}&tab=figures").get_data(as_text=True)
            assert "Alpha Grouped Ltd" in page and 'id="classify-accounts"' not in page
        assert classify(other, world.a_grouped, NUMBERS, "suggested").status_code == 403, role
    assert set(kinds(world.a_grouped).values()) == {"other"}


def test_another_firms_administrator_gets_404(client, world):
    login(client, "admin@beta.test")
    assert classify(client, world.a_grouped, NUMBERS, "asset").status_code == 404
    assert classify(client, "not-a-number", NUMBERS, "asset").status_code == 404
