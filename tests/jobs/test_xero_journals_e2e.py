"""Xero journals whose creation times are not monotonic in their numbers, through a real worker.

Backdated and converted journals are created long after journals with higher numbers (or
before lower ones): a read that filters by creation time next to the offset loses them.
"""
from datetime import datetime, timezone

import pytest
import requests

from app.models import RunStatus, Trigger
from app.services.syncs import request_sync
from connectors.xero.emulator import tenant_id
from tests.connectors.test_xero_sandbox import company, connect, xero_config
from tests.jobs.conftest import finished, line_count

pytestmark = pytest.mark.slow


def journal_numbers(sandbox, credentials, tenant, offset, since=None):
    headers = {"Authorization": f"Bearer {credentials['access_token']}", "xero-tenant-id": tenant}
    if since:
        headers["If-Modified-Since"] = since
    answer = requests.get(f"{sandbox.url}/xero/api.xro/2.0/Journals", params={"offset": offset},
                          headers=headers, timeout=10).json()
    return [journal["JournalNumber"] for journal in answer["Journals"]], answer["Journals"]


def test_the_sandbox_mode_hides_backdated_journals_from_a_creation_time_filter(sandbox):
    sandbox.modes(xero=["backdated_journals"])
    book, credentials = company(sandbox, "Janssens"), connect(sandbox)
    tenant = tenant_id(book.spec.id)
    _, first_page = journal_numbers(sandbox, credentials, tenant, 0)
    last_created = int(first_page[-1]["CreatedDateUTC"][6:-7]) // 1000
    since = datetime.fromtimestamp(last_created, timezone.utc).isoformat()
    filtered, _ = journal_numbers(sandbox, credentials, tenant, 100, since)
    unfiltered, _ = journal_numbers(sandbox, credentials, tenant, 100)
    assert unfiltered == list(range(101, 201))
    assert set(unfiltered) - set(filtered)  # the filter the old connector sent hides journals


def test_every_backdated_journal_is_synced_through_a_real_worker(db, sandbox, workers, linked_dossier):
    sandbox.modes(xero=["backdated_journals"])
    book, credentials = company(sandbox, "Janssens"), connect(sandbox)  # 2,000 lines, 7 pages of journals
    dossier = linked_dossier(package="xero", reference=tenant_id(book.spec.id), config=xero_config(sandbox),
                             credentials=credentials, name="Janssens & Co Architecten")
    run = request_sync(dossier.id, Trigger.MANUAL)
    workers.start()
    done = workers.wait_for(lambda: finished(db, run.id), timeout=180, what="the first Xero sync")
    assert done.status == RunStatus.SUCCEEDED, f"{done.message}\n{workers.logs()}"
    assert line_count(db, dossier.id) == book.line_count

    added = sandbox.mutate(book.spec.id, add=9)["added"]  # new journals, some of them backdated
    again = request_sync(dossier.id, Trigger.MANUAL)
    second = workers.wait_for(lambda: finished(db, again.id), timeout=180, what="the second Xero sync")
    assert second.status == RunStatus.SUCCEEDED, second.message
    assert line_count(db, dossier.id) == book.line_count + len(added)
    assert second.lines_inserted == len(added)
