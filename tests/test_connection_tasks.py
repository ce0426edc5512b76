"""Console tasks on a connection ("Test connection", "Refresh companies"): queued, never inline.

The web process never builds a connector here (:func:`forbid_connectors` makes any attempt
fail the test); the queued job is then run in this process by an RQ ``SimpleWorker`` burst
(:func:`run_queued_jobs`, the same job class as a real worker), with a fake connector, and
the poll endpoints and the pages show its outcome. Rights and firms are checked on the
server for the enqueue and for the poll alike. The real worker against the sandbox is in
``tests/jobs/test_connection_tasks_e2e.py``.
"""
from datetime import datetime, timedelta, timezone

import pytest
from rq import SimpleWorker
from rq.job import JobStatus
from sqlalchemy import select
from werkzeug.exceptions import Forbidden

from app.access import actor_for
from app.extensions import db
from app.models import AuditEvent, Connection, ConnectionStatus, Dossier, Firm, Role, User
from app.services import connections as service
from app.services.queues import JOB_SERIALIZER, PEOPLE_QUEUE, fetch_job, get_queue
from connectors.base import AuthError, CheckResult, CompanyRef
from tests.console_world import add_user, build_world, csrf_token, fresh_request_globals, log_in  # noqa: F401 (fixture)

MESSAGE = "Connected to Fake Books: 2 companies available."
REFERENCES = [CompanyRef("R1", "Company One"), CompanyRef("R2", "Company Two")]


# --------------------------------------------------------------------------------------
# Helpers (also used by the console tests that run these jobs)
# --------------------------------------------------------------------------------------

def forbid_connectors(monkeypatch):
    """Make building a connector fail the test: the web process must only queue."""
    def refuse(*args, **kwargs):
        pytest.fail("a connector was built inside a web request")

    for target in ("app.services.connectors.open_connector", "app.services.connectors.open_link_connector",
                   "app.services.connections.open_connector", "app.oauth_flow.open_connector"):
        monkeypatch.setattr(target, refuse)


class FakeConnector:
    """Answers ``check()`` and ``list_references()`` like a package (or raises ``error``)."""

    error = None

    def __init__(self, *args, **kwargs):
        pass

    def check(self):
        if self.error:
            raise self.error
        return CheckResult(ok=True, message=MESSAGE, references=len(REFERENCES))

    def list_references(self):
        if self.error:
            raise self.error
        return list(REFERENCES)


def use_fake_connector(monkeypatch, error=None):
    """From now on the jobs (run in this process) build :class:`FakeConnector`."""
    monkeypatch.setattr(FakeConnector, "error", error)
    monkeypatch.setattr("app.services.connections.open_connector", FakeConnector)


def queued_job_ids():
    return get_queue(PEOPLE_QUEUE).get_job_ids()


class InProcessWorker(SimpleWorker):
    """RQ's in-process worker without its command channel (a burst needs no stop/kill commands,
    and the channel's listener thread can take a minute to wind down) and without signal
    handlers (pytest keeps its own)."""

    def _install_signal_handlers(self):
        pass

    def subscribe(self):
        pass

    def unsubscribe(self):
        pass


def run_queued_jobs():
    """Run every queued job in this process, as a worker would (an RQ worker burst, the app's job class)."""
    from jobs.worker import AppJob

    queue = get_queue(PEOPLE_QUEUE)
    InProcessWorker([queue], connection=queue.connection, job_class=AppJob, serializer=JOB_SERIALIZER).work(burst=True)
    db.session.expire_all()



def action(client, name, *ids, url=None):
    data = {"action": name, "rowid": [str(i) for i in ids], "csrf_token": csrf_token(client)}
    if url:
        data["url"] = url
    return client.post("/admin/connections/action/", data=data)


def poll(client, connection_id, kind):
    return client.get(f"/admin/connections/task/?id={connection_id}&kind={kind}")


def connection(connection_id):
    db.session.expire_all()
    return db.session.get(Connection, connection_id)


def actor(world, name):
    user = db.session.get(User, getattr(world, f"user_{name}"))
    return actor_for(user, world.beta if name.endswith("_b") else world.alpha)


@pytest.fixture
def world(app, monkeypatch):
    forbid_connectors(monkeypatch)
    return build_world()


# --------------------------------------------------------------------------------------
# The actions queue a job and answer at once
# --------------------------------------------------------------------------------------

def test_test_connection_only_queues_a_job(client, world):
    log_in(client, "admin")
    details = f"/admin/connections/details/?id={world.a_connection}"
    answer = action(client, "check", world.a_connection, url=details)
    assert answer.status_code == 302 and answer.location.endswith(details)
    job_id = f"connection-check-{world.a_connection}"
    assert queued_job_ids() == [job_id]
    job = fetch_job(job_id)
    assert job.func_name == "jobs.connection_tasks.check"
    assert job.args == [world.a_connection, world.user_admin, world.alpha]  # ids, never objects (JSON)
    assert connection(world.a_connection).last_check_at is None  # nothing was asked of the package
    assert db.session.scalars(select(AuditEvent.action).where(
        AuditEvent.object_type == "Connection", AuditEvent.object_id == str(world.a_connection))).all() \
        == ["connection.check_requested"]
    page = client.get(details).get_data(as_text=True)
    assert "testing the connection; the result appears on this page when it is ready" in page
    assert 'data-active="yes"' in page and "Testing connection…" in page
    assert f'data-url="/admin/connections/task/?id={world.a_connection}&amp;kind=check"' in page


def test_refresh_companies_only_queues_a_job(client, world):
    log_in(client, "admin")
    answer = action(client, "refresh_references", world.a_connection, world.a_spare_connection)
    assert answer.status_code == 302
    assert sorted(queued_job_ids()) == sorted(f"connection-references-{i}" for i in (world.a_connection,
                                                                                   world.a_spare_connection))
    assert fetch_job(f"connection-references-{world.a_connection}").func_name == "jobs.connection_tasks.references"
    assert connection(world.a_connection).references_refreshed_at is None
    listing = client.get("/admin/connections/").get_data(as_text=True)
    assert listing.count("Asking Demo Books (sandbox) for its companies…") == 2  # the Companies column of both rows


def test_a_double_click_queues_one_job(client, world):
    log_in(client, "admin")
    action(client, "check", world.a_connection)
    second = action(client, "check", world.a_connection)
    assert "a test is already under way" in client.get(second.location).get_data(as_text=True)
    action(client, "refresh_references", world.a_connection)
    second = action(client, "refresh_references", world.a_connection)
    assert "the companies are already being asked for" in client.get(second.location).get_data(as_text=True)
    assert sorted(queued_job_ids()) == [f"connection-check-{world.a_connection}",
                                        f"connection-references-{world.a_connection}"]
    requests = db.session.scalars(select(AuditEvent.action).where(AuditEvent.action.like("connection.%"))).all()
    assert sorted(requests) == ["connection.check_requested", "connection.references_requested"]


def test_the_service_answers_the_job_under_way_and_queues_again_once_it_is_done(world, monkeypatch):
    admin = actor(world, "admin")
    row = db.session.get(Connection, world.a_connection)
    first = service.request_check(admin, row)
    again = service.request_check(admin, row)
    assert (first.new, first.state, again.new, again.state) == (True, "queued", False, "queued")
    assert first.job_id == again.job_id == f"connection-check-{row.id}"
    use_fake_connector(monkeypatch)
    run_queued_jobs()
    assert service.task_state("check", row.id).state == "done"
    third = service.request_check(admin, db.session.get(Connection, world.a_connection))
    assert third.new is True and queued_job_ids() == [f"connection-check-{row.id}"]


# --------------------------------------------------------------------------------------
# The outcome: polled as JSON, shown on the page after the job (and after a reload)
# --------------------------------------------------------------------------------------

def test_the_poll_answers_queued_then_done_and_the_page_shows_the_outcome(client, world, monkeypatch):
    log_in(client, "admin")
    action(client, "check", world.a_connection)
    waiting = poll(client, world.a_connection, "check").get_json()
    assert (waiting["state"], waiting["active"], waiting["text"]) == ("queued", True, "Testing connection…")

    use_fake_connector(monkeypatch)
    run_queued_jobs()
    done = poll(client, world.a_connection, "check").get_json()
    assert (done["state"], done["active"], done["ok"], done["mark"]) == ("done", False, True, "✓")
    assert done["text"] == "Connection works." and done["message"] == MESSAGE
    assert done["last_check_at"].endswith(("CET", "CEST")) and done["status"] == "active"
    row = connection(world.a_connection)
    assert row.last_check_ok is True and row.last_check_message == MESSAGE
    assert db.session.scalar(select(AuditEvent.summary).where(AuditEvent.action == "connection.check")) \
        == "Tested connection Alpha Demo Books: OK"
    page = client.get(f"/admin/connections/details/?id={world.a_connection}").get_data(as_text=True)
    assert 'data-active="no"' in page and "Connection works." in page and MESSAGE in page  # no JavaScript needed


def test_a_refresh_answers_the_count_and_the_list(client, world, monkeypatch):
    log_in(client, "admin")
    action(client, "refresh_references", world.a_connection)
    assert poll(client, world.a_connection, "references").get_json()["text"] == "Asking Demo Books (sandbox) for its companies…"
    use_fake_connector(monkeypatch)
    run_queued_jobs()
    done = poll(client, world.a_connection, "references").get_json()
    assert (done["state"], done["ok"], done["count"], done["text"]) == ("done", True, 2, "2 companies found.")
    assert done["references"] == [{"reference": "R1", "name": "Company One"}, {"reference": "R2", "name": "Company Two"}]
    assert connection(world.a_connection).references_refreshed_at is not None
    page = client.get(f"/admin/connections/details/?id={world.a_connection}").get_data(as_text=True)
    assert "2 companies found." in page and "<td>Company Two</td><td>R2</td>" in page


def test_a_refused_test_shows_the_cross_and_asks_for_a_reconnect(client, world, monkeypatch):
    log_in(client, "admin")
    action(client, "check", world.a_connection)
    action(client, "refresh_references", world.a_spare_connection)
    use_fake_connector(monkeypatch, AuthError("Demo Books refused the API key: enter it again."))
    run_queued_jobs()
    check = poll(client, world.a_connection, "check").get_json()
    assert (check["state"], check["ok"], check["mark"], check["text"]) == ("done", False, "✗", "Test failed.")
    assert check["message"] == "Demo Books refused the API key: enter it again."
    assert check["status"] == ConnectionStatus.NEEDS_RECONNECT
    refresh = poll(client, world.a_spare_connection, "references").get_json()
    assert (refresh["state"], refresh["ok"], refresh["text"]) == ("done", False, "The list could not be refreshed.")
    assert refresh["message"] == "Demo Books refused the API key: enter it again."


def test_a_job_that_breaks_answers_failed(client, world, monkeypatch):
    def crash(*args, **kwargs):
        raise RuntimeError("bug")

    log_in(client, "admin")
    action(client, "check", world.a_connection)
    monkeypatch.setattr("jobs.connection_tasks.check_connection", crash)
    run_queued_jobs()
    answer = poll(client, world.a_connection, "check").get_json()
    assert (answer["state"], answer["active"], answer["mark"]) == ("failed", False, "✗")
    assert answer["text"] == "The job stopped before it finished; please try again."
    assert action(client, "check", world.a_connection).status_code == 302  # it can be asked again
    assert poll(client, world.a_connection, "check").get_json()["state"] == "queued"


def test_a_job_whose_worker_died_counts_as_failed_and_can_be_asked_again(client, world):
    log_in(client, "admin")
    action(client, "check", world.a_connection)
    job = fetch_job(f"connection-check-{world.a_connection}")
    get_queue(PEOPLE_QUEUE).remove(job.id)  # a worker took it, then was killed: RQ still says "started"
    job.started_at = datetime.now(timezone.utc) - timedelta(seconds=service.TASK_TIMEOUT + 120)
    job.set_status(JobStatus.STARTED)
    job.save()
    assert poll(client, world.a_connection, "check").get_json()["state"] == "failed"
    action(client, "check", world.a_connection)
    assert queued_job_ids() == [f"connection-check-{world.a_connection}"]
    assert poll(client, world.a_connection, "check").get_json()["state"] == "queued"


def test_an_operator_queues_without_an_actor(world):
    state = service.request_references(None, db.session.get(Connection, world.b_connection))
    assert state.new and fetch_job(state.job_id).args == [world.b_connection, None, world.beta]


def test_a_job_for_a_connection_of_another_firm_changes_nothing(world):
    from jobs.connection_tasks import GONE, check

    assert check(world.b_connection, world.user_admin, world.alpha) == {"ok": False, "message": GONE}
    assert connection(world.b_connection).last_check_at is None


@pytest.mark.parametrize("locale, testing, works", [
    ("fr", "Test de la connexion…", "La connexion fonctionne."),
    ("nl", "Verbinding wordt getest…", "De verbinding werkt."),
])
def test_the_poller_speaks_the_users_language(client, world, monkeypatch, locale, testing, works):
    log_in(client, "admin")
    client.post("/locale", data={"csrf_token": csrf_token(client), "locale": locale, "next": "/admin/"})
    action(client, "check", world.a_connection)
    assert poll(client, world.a_connection, "check").get_json()["text"] == testing
    use_fake_connector(monkeypatch)
    run_queued_jobs()
    assert poll(client, world.a_connection, "check").get_json()["text"] == works


# --------------------------------------------------------------------------------------
# Rights and firms, on the server: the enqueue and the poll
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("role", ["staff", "creator", "external", "support"])
def test_who_may_not_test_gets_403_for_the_action_and_the_poll(client, world, role):
    log_in(client, role)
    assert action(client, "check", world.a_connection).status_code == 403
    assert action(client, "refresh_references", world.a_connection).status_code == 403
    for kind in ("check", "references"):
        assert poll(client, world.a_connection, kind).status_code == 403
    assert queued_job_ids() == []


def test_an_admin_of_another_firm_queues_nothing_and_polls_404(client, world):
    log_in(client, "admin")  # firm A's admin, aiming at firm B's connection
    action(client, "check", world.b_connection)
    action(client, "refresh_references", world.b_connection)
    assert queued_job_ids() == []
    for kind in ("check", "references", "nonsense"):
        assert poll(client, world.b_connection, kind).status_code == 404
    assert poll(client, "not-a-number", "check").status_code == 404


def test_the_service_refuses_who_may_not(world):
    own, theirs = db.session.get(Connection, world.a_connection), db.session.get(Connection, world.b_connection)
    public = db.session.get(Dossier, world.a_public)
    for name in ("staff", "creator", "external", "pulse"):
        with pytest.raises(Forbidden):
            service.request_check(actor(world, name), own)
    with pytest.raises(Forbidden):
        service.request_check(actor(world, "admin_b"), own)
    with pytest.raises(Forbidden):
        service.request_references(actor(world, "admin"), theirs)
    with pytest.raises(Forbidden):
        service.request_references(actor(world, "staff"), own)  # not from a file's Sync tab nor the wizard
    with pytest.raises(Forbidden):
        service.request_references(actor(world, "external"), own, public)
    with pytest.raises(Forbidden):
        service.request_check(actor(world, "support"), own)
    assert queued_job_ids() == []
    assert service.request_references(actor(world, "staff"), own, public).new  # the Sync tab of a file they set up
    assert service.request_references(actor(world, "creator"), db.session.get(Connection, world.a_spare_connection)).new


def test_a_file_owned_connection_is_tested_by_who_may_set_up_that_file(world):
    grouped = db.session.get(Dossier, world.a_grouped)
    grant = Connection(firm_id=world.alpha, package="demo", kind="accounting", level="dossier", name="Client's own grant",
                       config={}, credentials={}, owner_dossier_id=grouped.id)
    db.session.add(grant)
    db.session.commit()
    assert service.may_check(actor(world, "staff"), grant)  # staff with multi-file access see the grouped file
    assert service.may_check(actor(world, "admin"), grant)
    assert not service.may_check(actor(world, "external"), grant)  # sees the file, may not set up its sync
    assert not service.may_check(actor(world, "admin_b"), grant)
    lone = add_user("lone@alpha.test", db.session.get(Firm, world.alpha), Role.STAFF, multi_file_access=False)
    db.session.commit()
    assert not service.may_check(actor_for(lone, world.alpha), grant)  # cannot see the file


# --------------------------------------------------------------------------------------
# The Sync tab and the new-client wizard
# --------------------------------------------------------------------------------------

def sync_tab_poll(client, dossier_id, connection_id):
    return client.get(f"/admin/dossier-sync/references-task?id={dossier_id}&connection_id={connection_id}")


def sync_tab_refresh(client, dossier_id, connection_id):
    return client.post("/admin/dossier-sync/refresh", data={"csrf_token": csrf_token(client), "id": dossier_id,
                                                            "connection_id": connection_id})


def test_the_sync_tab_refresh_queues_and_its_poll_fills_the_list(client, world, monkeypatch):
    log_in(client, "staff")
    answer = sync_tab_refresh(client, world.a_grouped, world.a_spare_connection)
    assert answer.status_code == 302 and answer.location.endswith(f"/admin/dossier-sync/?id={world.a_grouped}")
    assert queued_job_ids() == [f"connection-references-{world.a_spare_connection}"]
    tab = client.get(f"/admin/dossier-sync/?id={world.a_grouped}").get_data(as_text=True)
    assert "Asking Demo Books (sandbox) for its companies…" in tab and "the list is filled in when the answer comes" in tab
    assert sync_tab_poll(client, world.a_grouped, world.a_spare_connection).get_json()["state"] == "queued"
    use_fake_connector(monkeypatch)
    run_queued_jobs()
    done = sync_tab_poll(client, world.a_grouped, world.a_spare_connection).get_json()
    assert done["state"] == "done" and [r["reference"] for r in done["references"]] == ["R1", "R2"]
    tab = client.get(f"/admin/dossier-sync/?id={world.a_grouped}").get_data(as_text=True)
    assert '<option value="R2">Company Two (R2)</option>' in tab


def test_the_sync_tab_refresh_and_poll_are_scoped(client, world):
    log_in(client, "external")
    assert sync_tab_refresh(client, world.a_public, world.a_connection).status_code == 403
    assert sync_tab_poll(client, world.a_public, world.a_connection).status_code == 403
    client.post("/logout", data={"csrf_token": csrf_token(client)})
    log_in(client, "admin")
    assert sync_tab_refresh(client, world.b_public, world.b_connection).status_code == 404
    assert sync_tab_poll(client, world.b_public, world.b_connection).status_code == 404
    assert sync_tab_refresh(client, world.a_public, world.b_connection).status_code == 404  # another firm's connection
    assert sync_tab_poll(client, world.a_public, world.b_connection).status_code == 404
    assert queued_job_ids() == []


def test_staff_polling_a_private_file_not_granted_get_404(client, world):
    log_in(client, "staff")
    assert sync_tab_refresh(client, world.a_private, world.a_connection).status_code == 404
    assert sync_tab_poll(client, world.a_private, world.a_connection).status_code == 404
    assert queued_job_ids() == []


def test_the_wizard_poll_is_for_those_who_create_files_of_the_firm(client, world):
    log_in(client, "creator")
    assert client.get(f"/admin/new-client/references-task?connection_id={world.a_connection}").get_json()["state"] \
        == "idle"
    assert client.get(f"/admin/new-client/references-task?connection_id={world.b_connection}").status_code == 404
    client.post("/logout", data={"csrf_token": csrf_token(client)})
    log_in(client, "staff")  # may not create files
    assert client.get(f"/admin/new-client/references-task?connection_id={world.a_connection}").status_code == 403
