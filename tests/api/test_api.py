"""The public API: its OpenAPI document, tokens, firm and file isolation, scopes, pagination,
ETags, rate limits and sync triggers. Every answer is validated against the served document
(:class:`tests.api.api_world.ApiClient`)."""
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from openapi_spec_validator import validate as validate_document
from sqlalchemy import func, select

from app.extensions import db
from app.models import ApiToken, AuditEvent, Dossier, LedgerLine, RunStatus, SyncRun
from app.models.base import utcnow
from app.services.api_tokens import revoke_token, token_hash
from app.access import actor_for
from app.models import Membership, User
from tests.api.api_world import ApiClient, token_for
from tests.console_world import fresh_request_globals, log_in  # noqa: F401 (fixture)


@pytest.fixture
def admin_api(client, world):
    return ApiClient(client, token_for(world.alpha, ("read", "sync"), admin_id=world.user_admin))


def ids(response):
    return [item["id"] for item in response.get_json()["data"]]


# ------------------------------------------------------------------ the document

def test_the_served_document_is_a_valid_openapi_3_1_document(client):
    document = client.get("/api/v1/openapi.json").get_json()
    assert document["openapi"] == "3.1.0"
    validate_document(document)
    assert "/api/v1/dossiers/{dossier_id}/ledger-lines" in document["paths"]
    page = client.get("/api/v1/docs")
    assert page.status_code == 200 and b"/api/v1/syncs" in page.data


def test_every_resource_answers_within_the_document(world, admin_api):
    d = world.a_public
    for url in ["/api/v1/dossiers", f"/api/v1/dossiers/{d}", f"/api/v1/dossiers/{d}/fiscal-years",
                f"/api/v1/dossiers/{d}/periods", f"/api/v1/dossiers/{d}/accounts", f"/api/v1/dossiers/{d}/balances",
                f"/api/v1/dossiers/{d}/ledger-lines", f"/api/v1/dossiers/{d}/company-profiles",
                f"/api/v1/dossiers/{d}/trial-balance?date=2024-12-15", "/api/v1/connections",
                f"/api/v1/connections/{world.a_connection}", "/api/v1/sync-runs", f"/api/v1/sync-runs/{world.a_run}"]:
        assert admin_api.get(url).status_code == 200, url
    # errors are documented too
    assert admin_api.get(f"/api/v1/dossiers/{d}/ledger-lines?limit=0").status_code == 422
    assert admin_api.get(f"/api/v1/dossiers/{d}/ledger-lines?cursor=bogus").status_code == 400
    assert admin_api.get("/api/v1/dossiers", token=None).status_code == 401
    assert admin_api.checked == 16


def test_amounts_are_decimal_strings_and_dates_iso(world, admin_api):
    balances = admin_api.get(f"/api/v1/dossiers/{world.a_public}/balances?period_id={world.books['p1']}").get_json()
    assert sorted(b["amount"] for b in balances["data"]) == ["-1000.50", "1000.50"]
    line = admin_api.get(f"/api/v1/dossiers/{world.a_public}/ledger-lines?limit=1").get_json()["data"][0]
    assert line["amount"] == "10.10" and line["booking_date"] == "2024-01-01"
    run = admin_api.get(f"/api/v1/sync-runs/{world.a_run}").get_json()
    assert run["finished_at"] == "2025-01-01T02:01:00Z"


def test_trial_balance_gives_closing_balances_at_a_date(world, admin_api):
    answer = admin_api.get(f"/api/v1/dossiers/{world.a_public}/trial-balance?date=2024-12-15").get_json()
    assert answer["period_end"] == "2024-12-31"
    by_number = {row["number"]: row for row in answer["rows"]}
    assert by_number["550000"]["balance"] == "1200.50"
    assert by_number["550000"]["comparative"] is None  # no 2023 year
    assert by_number["700000"]["balance"] == "-1200.50"


# ------------------------------------------------------------------ isolation and tokens

def test_a_firm_token_never_reaches_another_firm(world, admin_api):
    assert set(ids(admin_api.get("/api/v1/dossiers"))) == {world.a_public, world.a_private, world.a_grouped}
    for url in [f"/api/v1/dossiers/{world.b_public}", f"/api/v1/dossiers/{world.b_public}/ledger-lines",
                f"/api/v1/connections/{world.b_connection}", f"/api/v1/sync-runs/{world.b_run}"]:
        assert admin_api.get(url).status_code == 404, url
    assert world.b_run not in ids(admin_api.get("/api/v1/sync-runs"))
    assert admin_api.post("/api/v1/syncs", {"dossier_ids": [world.b_public]}).status_code == 404


def test_a_connection_answer_holds_no_secret(world, admin_api):
    body = admin_api.get(f"/api/v1/connections/{world.a_connection}").get_data(as_text=True)
    assert "api-key" not in body and "credentials" not in body and "config" not in body


def test_an_external_contributors_token_sees_only_their_files(world, client):
    api = ApiClient(client, token_for(world.alpha, ("read", "sync"), admin_id=world.user_admin,
                                      user_id=world.user_external))
    assert set(ids(api.get("/api/v1/dossiers"))) == {world.a_public, world.a_grouped}
    assert api.get(f"/api/v1/dossiers/{world.a_private}").status_code == 404
    assert api.get(f"/api/v1/dossiers/{world.a_private}/accounts").status_code == 404
    assert api.get("/api/v1/connections").status_code == 403
    # an external contributor may not start syncs, whatever the token's scopes
    assert api.post("/api/v1/syncs", {"dossier_ids": [world.a_public]}).status_code == 403


def test_a_group_restricted_token_sees_only_that_groups_files(world, client):
    api = ApiClient(client, token_for(world.alpha, ("read",), admin_id=world.user_admin, group_id=world.externals))
    assert ids(api.get("/api/v1/dossiers")) == [world.a_grouped]
    assert api.get(f"/api/v1/dossiers/{world.a_public}").status_code == 404


def test_revoked_expired_and_unknown_tokens_are_refused(world, client):
    api = ApiClient(client)
    good = token_for(world.alpha, ("read",), admin_id=world.user_admin)
    assert api.get("/api/v1/dossiers", token=good).status_code == 200
    token = db.session.scalar(select(ApiToken).where(ApiToken.token_hash == token_hash(good)))
    assert token.last_used_at is not None
    assert revoke_token(actor_for(db.session.get(User, world.user_admin), world.alpha), token.id)
    refused = api.get("/api/v1/dossiers", token=good)
    assert refused.status_code == 401 and refused.headers["WWW-Authenticate"].startswith("Bearer")

    expiring = token_for(world.alpha, ("read",), admin_id=world.user_admin, expires_at=utcnow() + timedelta(hours=1))
    db.session.execute(ApiToken.__table__.update().where(ApiToken.token_hash == token_hash(expiring))
                       .values(expires_at=utcnow() - timedelta(seconds=1)))
    db.session.commit()
    assert api.get("/api/v1/dossiers", token=expiring).status_code == 401
    assert api.get("/api/v1/dossiers", token="fsk_" + "x" * 43).status_code == 401
    assert api.get("/api/v1/dossiers", token=good[:-1]).status_code == 401
    # only the hash is stored
    assert db.session.scalar(select(func.count()).select_from(ApiToken).where(ApiToken.token_hash == good)) == 0


def test_a_console_session_cookie_does_not_authenticate_the_api(world, client):
    log_in(client, "admin")
    assert client.get("/admin/").status_code == 200
    assert client.get("/api/v1/dossiers").status_code == 401
    assert client.post("/api/v1/syncs", json={"dossier_ids": [world.a_public]}).status_code == 401


def test_a_member_who_left_the_firm_loses_their_personal_token(world, client):
    api = ApiClient(client, token_for(world.alpha, ("read",), admin_id=world.user_admin, user_id=world.user_leaver))
    assert api.get("/api/v1/dossiers").status_code == 200
    db.session.delete(db.session.get(Membership, world.membership_leaver))
    db.session.commit()
    db.session.expire_all()
    assert api.get("/api/v1/dossiers").status_code == 401


def test_scopes_are_enforced(world, client):
    read_only = ApiClient(client, token_for(world.alpha, ("read",), admin_id=world.user_admin))
    assert read_only.post("/api/v1/syncs", {"dossier_ids": [world.a_public]}).status_code == 403
    sync_only = ApiClient(client, token_for(world.alpha, ("sync",), admin_id=world.user_admin))
    assert sync_only.get("/api/v1/dossiers").status_code == 403
    assert sync_only.get(f"/api/v1/sync-runs/{world.a_run}").status_code == 403


def test_only_an_administrator_creates_tokens(world):
    from app.services.api_tokens import TokenError, create_token

    staff = actor_for(db.session.get(User, world.user_staff), world.alpha)
    with pytest.raises(TokenError):
        create_token(staff, "mine", ["read"])
    admin = actor_for(db.session.get(User, world.user_admin), world.alpha)
    with pytest.raises(TokenError):
        create_token(admin, "other firm's group", ["read"], group_id=world.b_group)
    with pytest.raises(TokenError):
        create_token(admin, "bad scope", ["write"])


# ------------------------------------------------------------------ pagination, updates, ETags

def test_cursor_pagination_is_stable_while_lines_are_written(world, admin_api):
    url = f"/api/v1/dossiers/{world.a_public}/ledger-lines?limit=4"
    first = admin_api.get(url).get_json()
    assert len(first["data"]) == 4 and first["next_cursor"]
    # concurrent writes: a new line, and a line already served is changed
    db.session.add(LedgerLine(dossier_id=world.a_public, source_id="NEW", account_id=world.books["cash"],
                              period_id=world.books["p1"], booking_date=datetime(2024, 2, 1).date(),
                              amount=Decimal("1.00")))
    served = db.session.get(LedgerLine, first["data"][0]["id"])
    served.description = "changed"
    db.session.commit()
    seen = [line["id"] for line in first["data"]]
    cursor = first["next_cursor"]
    while cursor:
        answer = admin_api.get(f"{url}&cursor={cursor}").get_json()
        seen += [line["id"] for line in answer["data"]]
        cursor = answer["next_cursor"]
    expected = db.session.scalars(select(LedgerLine.id).where(LedgerLine.dossier_id == world.a_public)
                                  .order_by(LedgerLine.id)).all()
    assert seen == expected  # every line once, none twice, the new one included


def test_updated_since_returns_nothing_after_a_no_change_night(world, admin_api):
    d = world.a_public
    db.session.execute(LedgerLine.__table__.update().values(updated_at=utcnow() - timedelta(hours=8)))  # last night
    db.session.commit()
    first = admin_api.get(f"/api/v1/dossiers/{d}/ledger-lines").get_json()
    as_of = first["as_of"]
    # a nightly run that changed nothing
    run = SyncRun(firm_id=world.alpha, dossier_id=d, link_id=world.a_link, status=RunStatus.SUCCEEDED,
                  changed=False, started_at=utcnow(), finished_at=utcnow() + timedelta(seconds=1))
    db.session.add(run)
    db.session.commit()
    assert admin_api.get(f"/api/v1/dossiers/{d}/ledger-lines?updated_since={as_of}").get_json()["data"] == []
    # a run that changed one line (the writer stamps what it changes): that line only
    run.changed = True
    changed = db.session.scalar(select(LedgerLine).where(LedgerLine.dossier_id == d).order_by(LedgerLine.id.desc()))
    changed.updated_at = utcnow()
    db.session.commit()
    assert ids(admin_api.get(f"/api/v1/dossiers/{d}/ledger-lines?updated_since={as_of}")) == [changed.id]


def test_single_resources_carry_an_etag_and_answer_304(world, admin_api):
    url = f"/api/v1/dossiers/{world.a_public}"
    first = admin_api.get(url)
    etag = first.headers["ETag"]
    assert etag
    again = admin_api.get(url, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.data == b""
    db.session.get(Dossier, world.a_public).name = "Renamed Ltd"
    db.session.commit()
    changed = admin_api.get(url, headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.get_json()["name"] == "Renamed Ltd"
    assert changed.headers["ETag"] != etag


def test_rate_limit_answers_429_with_retry_after(world, app, admin_api):
    app.config["API_RATE_LIMIT"] = 3
    answers = [admin_api.get("/api/v1/dossiers") for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert answers[0].headers["RateLimit-Limit"] == "3" and answers[0].headers["RateLimit-Remaining"] == "2"
    assert int(answers[3].headers["Retry-After"]) >= 0 and answers[3].headers["RateLimit-Remaining"] == "0"


# ------------------------------------------------------------------ syncs

def test_starting_a_sync_deduplicates_and_is_audited(world, admin_api):
    first = admin_api.post("/api/v1/syncs", {"dossier_ids": [world.a_public, world.a_private]})
    assert first.status_code == 202
    body = first.get_json()
    assert [r["dossier_id"] for r in body["runs"]] == [world.a_public]
    assert body["skipped_dossier_ids"] == [world.a_private]  # no sync set up
    again = admin_api.post("/api/v1/syncs", {"dossier_ids": [world.a_public]}).get_json()
    assert again["runs"][0]["id"] == body["runs"][0]["id"]
    progress = admin_api.get(f"/api/v1/sync-runs/{body['runs'][0]['id']}").get_json()
    assert progress["status"] == RunStatus.QUEUED
    events = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "api.sync")).all()
    assert len(events) == 2 and all(e.firm_id == world.alpha for e in events)
    assert admin_api.post("/api/v1/syncs", {"dossier_ids": []}).status_code == 422
    assert admin_api.post("/api/v1/syncs", {"dossier_ids": ["x"]}).status_code == 422


def test_unknown_api_paths_answer_json_and_the_console_keeps_its_pages(client):
    missing = client.get("/api/v1/no-such-thing")
    assert missing.status_code == 404 and missing.get_json()["code"] == 404
    assert client.delete("/api/v1/dossiers").get_json()["code"] == 405
    assert client.get("/no-such-page").mimetype == "text/html"
