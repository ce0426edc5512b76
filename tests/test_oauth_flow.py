"""The OAuth flow (app/oauth_flow.py) end to end against the sandbox's real consent pages.

The Flask test client plays Firmsync; ``requests`` plays the user's browser at the package
(the sandbox runs in a thread). Nothing is mocked between the two.
"""
import html
import re
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from sqlalchemy import func, select, text

from app import oauth_flow
from app.models import (
    Connection,
    ConnectionStatus,
    Dossier,
    DossierLink,
    Role,
    SyncRun,
    Trigger,
)
from connectors import registry
from connectors.base import FIRM
from tests.conftest import csrf_from, logged_in, make_user
from tests.console_world import fresh_request_globals  # noqa: F401 - autouse: a fresh `g` per request
from tests.test_connection_tasks import forbid_connectors, queued_job_ids, run_queued_jobs

XERO_ORGS = 3  # every sandbox company is an organisation of the grant


@pytest.fixture(autouse=True)
def sandbox_apps(app, sandbox):
    """Dossier-level packages point at the test sandbox (what development does with SANDBOX_URL)."""
    app.config["SANDBOX_URL"] = sandbox.url
    return sandbox


@pytest.fixture
def admin(firm):
    return make_user("admin@alpha.test", firm, Role.ADMIN)




def token(client):
    return csrf_from(client.get("/admin/"))


def consent(location, decision="allow"):
    """Answer the package's consent page like a user; returns Firmsync's callback URL."""
    page = requests.get(location, timeout=10)
    assert page.status_code == 200, page.text[:300]
    fields = {name: html.unescape(value)
              for name, value in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page.text)}
    for select_name in re.findall(r'<select name="([^"]+)"', page.text):  # QuickBooks company, e-conomic agreement
        fields[select_name] = re.search(rf'<select name="{select_name}".*?<option value="([^"]+)"', page.text, re.S).group(1)
    answer = requests.post(location, data={**fields, "decision": decision}, allow_redirects=False, timeout=10)
    assert answer.status_code in (302, 303), answer.text[:300]
    return answer.headers["Location"]


def new_client(client, package, **details):
    data = {"name": "Bakkerij Janssens", "number": "C-42", "country": "BE", "currency": "EUR", "frequency": "month",
            "source": "direct", "package": f"package:{package}", "csrf_token": token(client), **details}
    return client.post("/admin/new-client/", data=data)


def count(db, model):
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(model))


def flashed(client):
    return client.get("/admin/").get_data(as_text=True)


# --------------------------------------------------------------------------------------
# Dossier-level packages through the "Add new client" wizard
# --------------------------------------------------------------------------------------


def test_xero_with_several_organisations_asks_which_one(client, db, admin, sandbox):
    logged_in(client, admin)
    start = new_client(client, "xero")
    assert start.status_code == 302 and start.location.startswith(f"{sandbox.url}/xero/identity/connect/authorize")
    query = parse_qs(urlsplit(start.location).query)
    assert query["code_challenge_method"] == ["S256"] and query["state"][0]

    back = client.get(consent(start.location))
    assert back.status_code == 302 and back.location.endswith("/oauth/choose")
    assert count(db, Dossier) == 0  # nothing is created before the choice

    page = client.get("/oauth/choose").get_data(as_text=True)
    choices = re.findall(r'name="reference" value="([^"]+)"', page)
    assert len(choices) == XERO_ORGS
    done = client.post("/oauth/choose", data={"reference": choices[1], "csrf_token": csrf_from(client.get("/oauth/choose"))})
    assert done.status_code == 302

    dossier = db.session.scalars(select(Dossier)).one()
    assert (dossier.name, dossier.number, dossier.firm_id) == ("Bakkerij Janssens", "C-42", admin.memberships[0].firm_id)
    link = dossier.active_link()
    assert link.reference == choices[1] and link.scenario == "replace"
    connection = link.connection
    assert (connection.level, connection.owner_dossier_id, connection.package) == ("dossier", dossier.id, "xero")
    assert connection.credentials["access_token"] and connection.credentials["refresh_token"]
    assert connection.credentials["client_secret"] == "xero-sandbox-secret" and "client_secret" not in connection.config
    raw = db.session.execute(text("select credentials from connection where id = :id"), {"id": connection.id}).scalar()
    assert connection.credentials["access_token"] not in raw and "xero-sandbox-secret" not in raw  # encrypted at rest
    run = db.session.scalars(select(SyncRun)).one()
    assert run.trigger == Trigger.SETUP and run.link_id == link.id


def test_a_forged_choice_is_refused(client, db, admin):
    logged_in(client, admin)
    client.get(consent(new_client(client, "xero").location))
    page = client.get("/oauth/choose")
    answer = client.post("/oauth/choose", data={"reference": "not-in-the-grant", "csrf_token": csrf_from(page)})
    assert answer.status_code == 200 and "Choose one organisation" in answer.get_data(as_text=True)
    assert count(db, Dossier) == 0 and count(db, Connection) == 0


def test_the_organisation_chooser_speaks_the_users_language(client, db, admin):
    """Issue #18: the page after a package's consent, its refusal and the package's word for a
    company are translated (Xero's "organisation" in French)."""
    admin.locale = "fr"
    db.session.commit()
    logged_in(client, admin)
    client.get(consent(new_client(client, "xero").location))
    page = client.get("/oauth/choose")
    html = page.get_data(as_text=True)
    assert "Quel·le organisation\u202f?" in html and "Choisissez celui avec lequel le dossier" in html
    assert "Which organisation" not in html and "gives access" not in html
    answer = client.post("/oauth/choose", data={"reference": "not-in-the-grant", "csrf_token": csrf_from(page)})
    assert "Choisissez un élément (organisation)." in answer.get_data(as_text=True)


def test_quickbooks_takes_the_realm_from_the_callback(client, db, admin, sandbox):
    logged_in(client, admin)
    start = new_client(client, "quickbooks")
    assert start.location.startswith(f"{sandbox.url}/quickbooks/connect/oauth2")
    callback = consent(start.location)
    realm = parse_qs(urlsplit(callback).query)["realmId"][0]
    done = client.get(callback)
    assert done.status_code == 302 and "/admin/dossier/?id=" in done.location  # the file page
    link = db.session.scalars(select(DossierLink)).one()
    assert link.reference == realm and link.connection.credentials["realm_id"] == realm
    assert link.reference_name  # the company's name, read from the package


def test_economic_reads_the_grant_token_from_its_installation_page(client, db, admin, sandbox):
    logged_in(client, admin)
    start = new_client(client, "economic")
    assert start.location.startswith(f"{sandbox.url}/e-conomic/secure/api1/requestaccess.aspx")
    callback = consent(start.location)
    grant = parse_qs(urlsplit(callback).query)["token"][0]
    assert client.get(callback).status_code == 302
    link = db.session.scalars(select(DossierLink)).one()
    assert link.connection.credentials["agreement_grant_token"] == grant
    assert link.reference.isdigit() and link.connection.owner_dossier_id == link.dossier_id


# --------------------------------------------------------------------------------------
# Firm-level packages: a new connection
# --------------------------------------------------------------------------------------

#: firm-level packages connected through a consent page, from the registry
FIRM_PACKAGES = sorted(key for key, cls in registry.all_connectors().items()
                       if cls.spec.level == FIRM and cls.spec.auth.consent and cls.spec.sandbox_config)


def add_firm_connection(client, sandbox, package, name="Main office"):
    """An administrator submits the new-connection form with the package's sandbox settings."""
    form = {field: ("y" if value is True else value)
            for field, value in registry.get_connector(package).spec.sandbox_settings(sandbox.url).items()
            if value is not False}
    return client.post(f"/admin/connections/new/?package={package}",
                       data={"name": name, **form, "csrf_token": token(client)})


@pytest.mark.parametrize("package", FIRM_PACKAGES)
def test_a_firm_level_connection_is_added_after_consent(client, db, admin, sandbox, package):
    logged_in(client, admin)
    cls = registry.get_connector(package)
    settings = cls.spec.sandbox_settings(sandbox.url)
    start = add_firm_connection(client, sandbox, package)
    assert start.status_code == 302 and start.location.startswith(cls.oauth_endpoints(settings).authorize_url)
    assert count(db, Connection) == 0  # created only when the consent comes back

    done = client.get(consent(start.location))
    connection = db.session.scalars(select(Connection)).one()
    assert done.location.endswith(f"/admin/connections/details/?id={connection.id}")
    assert (connection.name, connection.level, connection.status) == ("Main office", "firm", ConnectionStatus.ACTIVE)
    assert connection.credentials["access_token"] and connection.credentials["client_secret"] == settings["client_secret"]
    assert len(connection.references) >= 1  # the grant's companies were listed right away

    page = client.get(done.location).get_data(as_text=True)
    assert connection.references[0]["name"] in page
    for secret in (settings["client_secret"], connection.credentials["access_token"],
                   connection.credentials["refresh_token"]):
        assert secret not in page


def test_the_new_connection_works_for_a_test(client, db, admin, sandbox, monkeypatch):
    logged_in(client, admin)
    client.get(consent(add_firm_connection(client, sandbox, "demo_oauth").location))
    connection = db.session.scalars(select(Connection)).one()
    details = f"/admin/connections/details/?id={connection.id}"
    token = csrf_from(client.get(details))
    with monkeypatch.context() as web:
        forbid_connectors(web)  # the click only queues the test
        client.post("/admin/connections/action/", data={"action": "check", "rowid": connection.id, "url": details,
                                                         "csrf_token": token})
    assert queued_job_ids() == [f"connection-check-{connection.id}"]
    run_queued_jobs()  # the job, as a worker runs it, uses the stored grant against the sandbox
    assert db.session.get(Connection, connection.id).last_check_ok is True
    answer = client.get(f"/admin/connections/task/?id={connection.id}&kind=check").get_json()
    assert (answer["state"], answer["ok"], answer["mark"]) == ("done", True, "✓")


# --------------------------------------------------------------------------------------
# Refused, mismatched, expired
# --------------------------------------------------------------------------------------


def test_refused_consent_changes_nothing(client, db, admin):
    logged_in(client, admin)
    back = client.get(consent(new_client(client, "xero").location, decision="deny"))
    assert back.status_code == 302 and back.location.endswith("/admin/new-client/")
    assert "Consent was refused in Xero; nothing was changed." in flashed(client)
    assert count(db, Dossier) == 0 and count(db, Connection) == 0


def test_refused_installation_at_economic_changes_nothing(client, db, admin):
    logged_in(client, admin)
    client.get(consent(new_client(client, "economic").location, decision="deny"))
    assert "Consent was refused in e-conomic; nothing was changed." in flashed(client)
    assert count(db, Dossier) == 0 and count(db, Connection) == 0


def test_state_mismatch_creates_nothing_and_leaves_the_pending_flow_alone(client, db, admin):
    logged_in(client, admin)
    callback = consent(new_client(client, "xero").location)
    forged = re.sub(r"state=[^&]+", "state=forged", callback)
    back = client.get(forged)  # e.g. a link on another site: it must not cancel the user's flow
    assert back.location.endswith("/admin/new-client/")
    assert "does not match" in flashed(client)
    assert count(db, Dossier) == 0 and count(db, Connection) == 0
    genuine = client.get(callback)  # the package's real answer still completes the flow
    assert genuine.status_code == 302 and "does not match" not in flashed(client)
    assert client.get(callback).status_code == 302 and "does not match" in flashed(client)  # a replay is refused


def test_expired_flow_restarts_and_creates_nothing(client, db, admin):
    logged_in(client, admin)
    callback = consent(new_client(client, "quickbooks").location)
    with client.session_transaction() as session:
        flow = oauth_flow.load_flow(session[oauth_flow.SESSION_KEY])
    flow["expires_at"] = flow["created_at"] - 1
    oauth_flow.save_flow(flow)
    client.get(callback)
    assert "has expired" in flashed(client)
    assert count(db, Dossier) == 0 and count(db, Connection) == 0


def test_flow_records_are_encrypted_in_redis(client, admin):
    logged_in(client, admin)
    new_client(client, "xero")
    with client.session_transaction() as session:
        flow_id = session[oauth_flow.SESSION_KEY]
    stored = oauth_flow.redis_connection().get(oauth_flow.REDIS_PREFIX + flow_id)
    flow = oauth_flow.load_flow(flow_id)
    assert flow["verifier"] and flow["verifier"].encode() not in stored and b"xero-sandbox-secret" not in stored


# --------------------------------------------------------------------------------------
# Reconnect
# --------------------------------------------------------------------------------------


def test_reconnect_keeps_the_same_connection_and_the_links(client, db, admin, sandbox):
    logged_in(client, admin)
    client.get(consent(add_firm_connection(client, sandbox, "demo_oauth").location))
    connection = db.session.scalars(select(Connection)).one()
    dossier = Dossier(firm_id=connection.firm_id, name="Linked Ltd")
    db.session.add(dossier)
    db.session.flush()
    link = DossierLink(firm_id=connection.firm_id, dossier_id=dossier.id, connection_id=connection.id, reference="c-1001")
    db.session.add(link)
    old_token = connection.credentials["refresh_token"]
    connection.status = ConnectionStatus.NEEDS_RECONNECT
    db.session.commit()
    ids = (connection.id, link.id)

    listing = client.get("/admin/connections/").get_data(as_text=True)
    assert f'action="/oauth/reconnect/{connection.id}"' in listing and "Reconnect" in listing
    start = client.post(f"/oauth/reconnect/{connection.id}", data={"csrf_token": token(client)})
    assert start.location.startswith(f"{sandbox.url}/demo-cloud/oauth/authorize")
    client.get(consent(start.location))

    db.session.expire_all()
    again = db.session.scalars(select(Connection)).one()
    assert again.id == ids[0] and again.status == ConnectionStatus.ACTIVE
    assert again.credentials["refresh_token"] != old_token and again.credentials["client_secret"] == "demo-cloud-secret"
    kept = db.session.get(DossierLink, ids[1])
    assert kept.connection_id == ids[0] and kept.ended_at is None
    assert 'action="/oauth/reconnect/' not in client.get("/admin/connections/").get_data(as_text=True)


def test_reconnect_of_a_dossier_connection_by_staff(client, db, admin, firm, sandbox):
    logged_in(client, admin)
    client.get(consent(new_client(client, "quickbooks").location))
    connection = db.session.scalars(select(Connection)).one()
    connection.status = ConnectionStatus.NEEDS_RECONNECT
    db.session.commit()
    staff = make_user("staff@alpha.test", firm, Role.STAFF)
    client.post("/logout", data={"csrf_token": token(client)})
    logged_in(client, staff)
    start = client.post(f"/oauth/reconnect/{connection.id}", data={"csrf_token": token(client)})
    assert start.status_code == 302 and start.location.startswith(f"{sandbox.url}/quickbooks/")
    client.get(consent(start.location))
    db.session.expire_all()
    assert db.session.get(Connection, connection.id).status == ConnectionStatus.ACTIVE
    assert count(db, Connection) == 1


# --------------------------------------------------------------------------------------
# Roles and firms
# --------------------------------------------------------------------------------------


def test_staff_cannot_add_a_firm_connection(client, db, firm, sandbox):
    staff = make_user("staff@alpha.test", firm, Role.STAFF, can_create_files=True)
    logged_in(client, staff)
    assert add_firm_connection(client, sandbox, "exact_online_be").status_code == 403
    assert count(db, Connection) == 0


def test_external_cannot_start_any_flow(client, db, firm, admin, sandbox):
    external = make_user("external@alpha.test", firm, Role.EXTERNAL)
    connection = Connection(firm_id=firm.id, package="demo_oauth", name="Cloud", config={}, credentials={})
    dossier = Dossier(firm_id=firm.id, name="Granted Ltd", users=[external])
    db.session.add_all([connection, dossier])
    db.session.commit()
    logged_in(client, external)
    csrf = token(client)
    assert client.post(f"/oauth/reconnect/{connection.id}", data={"csrf_token": csrf}).status_code == 403
    assert client.post(f"/oauth/re-establish/{dossier.id}", data={"package": "xero", "csrf_token": csrf}).status_code == 403
    assert client.get("/admin/new-client/").status_code == 403
    assert client.post("/admin/new-client/", data={"csrf_token": csrf}).status_code == 403


def test_staff_without_create_right_cannot_use_the_wizard_but_creators_can(client, db, firm, sandbox):
    logged_in(client, make_user("staff@alpha.test", firm, Role.STAFF))
    assert client.get("/admin/new-client/").status_code == 403
    client.post("/logout", data={"csrf_token": token(client)})
    creator = make_user("creator@alpha.test", firm, Role.STAFF, can_create_files=True)
    logged_in(client, creator)
    client.get(consent(new_client(client, "quickbooks").location))
    dossier = db.session.scalars(select(Dossier)).one()
    assert creator in dossier.users  # the creator keeps access to the file


def test_another_firms_rows_answer_404(client, db, admin, other_firm):
    theirs = Connection(firm_id=other_firm.id, package="demo_oauth", name="Theirs", config={}, credentials={})
    their_dossier = Dossier(firm_id=other_firm.id, name="Their client")
    db.session.add_all([theirs, their_dossier])
    db.session.commit()
    logged_in(client, admin)
    csrf = token(client)
    assert client.post(f"/oauth/reconnect/{theirs.id}", data={"csrf_token": csrf}).status_code == 404
    assert client.post(f"/oauth/re-establish/{their_dossier.id}", data={"package": "xero", "csrf_token": csrf}).status_code == 404


def test_the_flow_cannot_be_finished_by_someone_else(client, app, db, admin, firm):
    logged_in(client, admin)
    callback = consent(new_client(client, "quickbooks").location)
    with client.session_transaction() as session:
        flow_id = session[oauth_flow.SESSION_KEY]
    other = make_user("admin2@alpha.test", firm, Role.ADMIN)
    with app.test_client() as thief:
        logged_in(thief, other)
        with thief.session_transaction() as session:
            session[oauth_flow.SESSION_KEY] = flow_id  # a stolen flow id
        assert thief.get(callback).status_code == 403
    assert count(db, Dossier) == 0


def test_anonymous_is_sent_to_login(client):
    assert "/login" in client.get("/oauth/callback?state=x&code=y").location
