"""Twinfield through a real worker: an incremental night, transactions deleted in Twinfield, an access token expiring mid-sync,
a revoked grant, and a refused browse or unreadable SOAP answer that a re-run heals."""
import pytest

from app.models import Connection, ConnectionStatus, DossierLink, RunStatus, Trigger
from app.services.syncs import request_sync
from tests.connectors.test_twinfield import connect, office, sandbox_config
from tests.jobs.conftest import bookkeeping_snapshot, finished, line_count

pytestmark = pytest.mark.slow


def connection_of(db, run):
    db.session.expire_all()
    return db.session.get(Connection, db.session.get(DossierLink, run.link_id).connection_id)


@pytest.fixture
def twinfield_file(db, sandbox, workers, linked_dossier):
    """``sync()`` runs one manual sync of a dossier linked to the Northwind office and answers the finished run."""
    book, code = office(sandbox, "Northwind")
    credentials = connect(sandbox)
    dossier = linked_dossier(package="twinfield", reference=code, config=sandbox_config(sandbox),
                             credentials=credentials, name="Northwind Traders")
    workers.start()

    def sync(what="the Twinfield sync"):
        run = request_sync(dossier.id, Trigger.MANUAL)
        return workers.wait_for(lambda: finished(db, run.id), timeout=180, what=what)

    sync.book, sync.dossier, sync.credentials, sync.logs = book, dossier, credentials, workers.logs
    return sync


def test_an_incremental_night_stores_exactly_the_new_lines(db, sandbox, twinfield_file):
    first = twinfield_file("the first sync")
    assert first.status == RunStatus.SUCCEEDED, f"{first.message}\n{twinfield_file.logs()}"
    book, dossier_id = twinfield_file.book, twinfield_file.dossier.id
    assert line_count(db, dossier_id) == book.line_count

    added = sandbox.mutate(book.spec.id, add=7)["added"]
    second = twinfield_file("the second sync")
    assert second.status == RunStatus.SUCCEEDED, second.message
    assert second.lines_inserted == len(added) > 0  # lines of 7 new entries
    assert line_count(db, dossier_id) == book.line_count + len(added)


def test_transactions_deleted_in_twinfield_leave_the_dossier_at_the_next_sync(db, sandbox, twinfield_file):
    first = twinfield_file("the first sync")
    assert first.status == RunStatus.SUCCEEDED, f"{first.message}\n{twinfield_file.logs()}"
    book, dossier_id = twinfield_file.book, twinfield_file.dossier.id

    deleted = sandbox.mutate(book.spec.id, delete=3)["deleted"]  # three whole transactions
    second = twinfield_file("the sync after the deletions")
    assert second.status == RunStatus.SUCCEEDED, second.message
    assert (second.lines_deleted, second.lines_inserted) == (len(deleted), 0) and len(deleted) >= 6
    assert line_count(db, dossier_id) == book.line_count - len(deleted)

    third = twinfield_file("a night without changes")  # the deletions are reported again: nothing to do
    assert third.status == RunStatus.SUCCEEDED and not third.changed, third.message


def test_an_access_token_expiring_mid_sync_is_renewed_and_the_sync_succeeds(db, sandbox, twinfield_file):
    sandbox.modes(twinfield=["token_expires_mid_sync"])  # every token dies after 4 SOAP calls (fault 354)
    done = twinfield_file()
    assert done.status == RunStatus.SUCCEEDED, f"{done.message}\n{twinfield_file.logs()}"
    assert line_count(db, twinfield_file.dossier.id) == twinfield_file.book.line_count
    refreshes = sandbox.stats()["token_refreshes"]["twinfield"]
    accepted = sandbox.calls("/twinfield/api.accounting/webservices/") - refreshes  # a refresh follows each fault 354
    assert refreshes >= 2 and refreshes == -(-accepted // 4) - 1  # one renewal per expired token, none wasted
    connection = connection_of(db, done)
    assert connection.status == ConnectionStatus.ACTIVE
    assert connection.credentials["access_token"] != twinfield_file.credentials["access_token"]
    assert connection.credentials["cluster_url"] == twinfield_file.credentials["cluster_url"]


def test_a_revoked_grant_needs_reconnect_and_leaves_the_data_alone(db, sandbox, twinfield_file):
    first = twinfield_file("the first sync")
    assert first.status == RunStatus.SUCCEEDED, first.message
    before = bookkeeping_snapshot(db, twinfield_file.dossier.id)

    sandbox.state.oauth["twinfield"].revoke_all()  # the organisation withdrew Firmsync's access
    done = twinfield_file("the sync after the revocation")
    assert done.status == RunStatus.NEEDS_RECONNECT, f"{done.message}\n{twinfield_file.logs()}"
    assert connection_of(db, done).status == ConnectionStatus.NEEDS_RECONNECT
    assert bookkeeping_snapshot(db, twinfield_file.dossier.id) == before
    message = done.message or ""
    assert "Twinfield" in message and "reconnect" in message.lower()
    assert "Traceback" not in message and "invalid_grant" not in message and "354" not in message
    config = sandbox_config(sandbox)
    for secret in (twinfield_file.credentials["access_token"], twinfield_file.credentials["refresh_token"],
                   config["client_secret"]):
        assert secret not in message


PROCESSXML = "/twinfield/api.accounting/webservices/processxml.asmx"
BAD_ANSWERS = {  # how the vendor breaks it, what the accountant then reads
    "browse_refused": (lambda sandbox: sandbox.modes(twinfield=["browse_refused"]),
                       "Twinfield says: “You have no rights to browse 040_1.”"),
    "malformed_soap_body": (lambda sandbox: sandbox.fault("malformed", path=PROCESSXML, count=1),
                            "Twinfield sent an answer Firmsync could not read."),
}


@pytest.mark.parametrize("bad", list(BAD_ANSWERS))
def test_a_bad_answer_fails_clearly_writes_nothing_then_a_rerun_heals(db, sandbox, twinfield_file, bad):
    breaks, said = BAD_ANSWERS[bad]
    breaks(sandbox)
    done = twinfield_file("the failing sync")
    assert done.status == RunStatus.FAILED, f"{done.message}\n{twinfield_file.logs()}"
    assert done.error_category == "data" and said in done.message and "Traceback" not in done.message
    assert not any(bookkeeping_snapshot(db, twinfield_file.dossier.id).values())  # not a row written

    sandbox.modes(twinfield=[])
    healed = twinfield_file("the re-run")
    assert healed.status == RunStatus.SUCCEEDED, healed.message
    assert line_count(db, twinfield_file.dossier.id) == twinfield_file.book.line_count
