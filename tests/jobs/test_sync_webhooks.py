"""A sync run's end queues the webhook deliveries its firm's endpoints subscribed to."""
from sqlalchemy import select

from app.models import RunStatus, SyncRun, WebhookDelivery, WebhookEndpoint
from app.services.queues import MAINTENANCE_QUEUE, get_queue
from app.services.syncs import request_sync
from app.services.webhooks import queued_drain
from connectors.base import AuthError
from jobs.sync import run


def endpoint(db, firm, events):
    row = WebhookEndpoint(firm_id=firm.id, url="https://hooks.example.test/in", events=events, secret="whsec_x")
    db.session.add(row)
    db.session.commit()
    return row


def deliveries(db):
    db.session.expire_all()
    return db.session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)).all()


def test_a_succeeded_run_queues_sync_succeeded(db, firm, other_firm, scripted, linked_dossier):
    mine = endpoint(db, firm, "sync.succeeded sync.failed")
    endpoint(db, firm, "sync.failed")  # not subscribed to successes
    endpoint(db, other_firm, "sync.succeeded")  # another firm's
    dossier = linked_dossier()
    queued = request_sync(dossier.id, "manual")
    run(queued.id)
    [delivery] = deliveries(db)
    assert delivery.endpoint_id == mine.id and delivery.event == "sync.succeeded"
    assert delivery.payload["data"]["sync_run_id"] == queued.id
    assert delivery.payload["data"]["status"] == RunStatus.SUCCEEDED
    # one drain of the endpoint is queued (deduplicated per endpoint: docs/api.md, "Webhooks")
    assert queued_drain(mine.id).startswith(f"webhook-drain-{mine.id}-")
    assert queued_drain(mine.id) in get_queue(MAINTENANCE_QUEUE).job_ids


def test_a_revoked_connection_queues_needs_reconnect(db, firm, scripted, linked_dossier):
    endpoint(db, firm, "connection.needs_reconnect")
    scripted.fail_at = ("accounts", 0, AuthError("The connection to Scripted Books was revoked."))
    queued = request_sync(linked_dossier().id, "manual")
    run(queued.id)
    assert [d.event for d in deliveries(db)] == ["connection.needs_reconnect"]


def test_without_endpoints_a_run_queues_nothing(db, firm, scripted, linked_dossier):
    run(request_sync(linked_dossier().id, "manual").id)
    assert deliveries(db) == []


def test_setting_up_a_sync_queues_dossier_linked(db, firm):
    from app.access import actor_for
    from app.models import Connection, Dossier
    from app.services.links import set_up_sync
    from tests.conftest import make_user

    admin = actor_for(make_user("admin@hooks.test", firm), firm.id)
    endpoint(db, firm, "dossier.linked")
    connection = Connection(firm_id=firm.id, package="demo", kind="accounting", name="Books", config={},
                            credentials={"api_key": "k"})
    dossier = Dossier(firm_id=firm.id, name="Linked Ltd")
    db.session.add_all([connection, dossier])
    db.session.commit()
    link = set_up_sync(admin, dossier, connection, "C9", queue=False)
    [delivery] = deliveries(db)
    assert delivery.event == "dossier.linked"
    assert delivery.payload["data"]["link_id"] == link.id and delivery.payload["data"]["reference"] == "C9"


def test_a_run_that_wrote_a_new_profile_version_queues_company_profile_changed(db, firm, scripted, linked_dossier):
    from app.models import CompanyProfile
    from app.services.webhooks import sync_finished

    endpoint(db, firm, "company_profile.changed")
    queued = request_sync(linked_dossier().id, "manual")
    run(queued.id)
    assert deliveries(db) == []  # the scripted books have no profile
    done = db.session.get(SyncRun, queued.id)
    db.session.add(CompanyProfile(firm_id=firm.id, dossier_id=done.dossier_id, version=1, data={"name": "X"},
                                  content_hash="h", fetched_at=done.finished_at))
    db.session.commit()
    sync_finished(done.id)
    [delivery] = deliveries(db)
    assert delivery.event == "company_profile.changed" and delivery.payload["data"]["version"] == 1
