"""The example client of ``docs/api.md`` really works: its code is taken from the document as
it stands and run against a live test server (the trial-balance pull) and a real signed
delivery (the signature check)."""
import re
import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from app.access import actor_for
from app.extensions import db
from app.models import PeriodBalance, RunStatus, SyncRun, User
from app.models.base import utcnow
from app.services import webhooks
from tests.api.api_world import token_for
from tests.threaded_server import ThreadedServer

DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"


def example_code():
    """The Python block under the "Example client" heading of docs/api.md."""
    text = DOC.read_text()
    section = text.split("## Example client", 1)
    assert len(section) == 2, "docs/api.md has no 'Example client' section"
    found = re.search(r"```python\n(.*?)```", section[1], re.S)
    assert found, "the 'Example client' section has no python code block"
    return found.group(1)


@pytest.fixture
def example(app, world):
    """The example's namespace, pointed at a live server with a firm token."""
    app.config["API_RATE_LIMIT"] = 10_000
    server = ThreadedServer(app, "api-for-the-example").start()
    namespace = {"__name__": "firmsync_example"}
    exec(compile(example_code(), str(DOC), "exec"), namespace)  # noqa: S102 (the document's own code)
    namespace["BASE"] = f"{server.url}/api/v1"
    namespace["session"].headers["Authorization"] = f"Bearer {token_for(world.alpha, ('read',), admin_id=world.user_admin)}"
    try:
        yield namespace
    finally:
        namespace["session"].close()
        server.stop()


def a_night(world, changed):
    """A finished night; a changing one stamps the rows it wrote, as the sync writer does."""
    started = utcnow()
    db.session.add(SyncRun(firm_id=world.alpha, dossier_id=world.a_public, link_id=world.a_link, started_at=started,
                           status=RunStatus.SUCCEEDED, changed=changed, finished_at=started + timedelta(seconds=1)))
    if changed:
        db.session.execute(update(PeriodBalance).where(PeriodBalance.dossier_id == world.a_public)
                           .values(updated_at=started))
    db.session.commit()


def test_the_example_pulls_the_trial_balance_only_when_the_file_changed(world, example, client):
    rows, since = example["pull_trial_balance"](world.a_public, "2024-12-15")
    token = example["session"].headers["Authorization"]
    expected = client.get(f"/api/v1/dossiers/{world.a_public}/trial-balance?date=2024-12-15",
                          headers={"Authorization": token}).get_json()["rows"]
    assert rows == expected and len(rows) == 2 and since

    a_night(world, changed=False)
    unchanged, since_after = example["pull_trial_balance"](world.a_public, "2024-12-15", since)
    assert unchanged is None and since_after >= since

    a_night(world, changed=True)
    again, _ = example["pull_trial_balance"](world.a_public, "2024-12-15", since_after)
    assert again == expected


def test_the_examples_pager_follows_every_cursor(world, example):
    lines, as_of = example["pages"](f"{example['BASE']}/dossiers/{world.a_public}/ledger-lines", limit=2)
    assert len(lines) == 6 and len({line["id"] for line in lines}) == 6 and as_of


def test_the_example_verifies_a_real_delivery_and_refuses_a_forged_or_old_one(app, world):
    received = {}

    def receiver(environ, start_response):
        received["signature"] = environ["HTTP_FIRMSYNC_SIGNATURE"]
        received["body"] = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        start_response("204 No Content", [])
        return [b""]

    server = ThreadedServer(receiver, "webhook-receiver").start()
    try:
        actor = actor_for(db.session.get(User, world.user_admin), world.alpha)
        endpoint, secret = webhooks.create_endpoint(actor, f"{server.url}/hook", ["sync.succeeded"])
        (delivery_id,) = webhooks.emit(world.alpha, "sync.succeeded", {"sync_run_id": 1})
        assert webhooks.attempt(delivery_id) is None  # delivered: the job's own call
    finally:
        server.stop()
    namespace = {"__name__": "firmsync_example"}
    exec(compile(example_code(), str(DOC), "exec"), namespace)  # noqa: S102
    verify = namespace["verify_signature"]
    assert verify(secret, received["signature"], received["body"])
    assert not verify(secret, received["signature"], received["body"].replace(b"sync_run_id", b"sync_run_iD"))
    assert not verify("whsec_someone-else", received["signature"], received["body"])
    old = int(time.time()) - 3600
    assert not verify(secret, webhooks.sign(secret, old, received["body"]), received["body"])
