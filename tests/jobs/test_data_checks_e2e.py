"""End to end: a real worker syncs a small sandbox company of Demo Books (a package that sends both
balances and ledger lines), the data-check job runs in that worker and finds the file in
balance; a stored balance edited afterwards is then found by the job, with both amounts and
the period's trial balance."""
from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import select

from app.models import Account, Period, PeriodBalance, RunStatus, Trigger
from app.services.data_checks import DIFFERENCES, IN_BALANCE, enqueue_check
from app.services.syncs import request_sync
from jobs.data_checks import check
from tests.jobs.conftest import finished, run_row

pytestmark = pytest.mark.slow

SMALL = "c-1003"  # Northwind Trading: 20 accounts, 40 lines, fiscal years 2023 and 2024


def test_a_synced_file_is_in_balance_until_a_stored_balance_is_changed(db, workers, linked_dossier, sandbox):
    dossier = linked_dossier(package="demo", reference=SMALL, name="Northwind Trading",
                             config={"base_url": f"{sandbox.url}/demo"}, credentials={"api_key": "demo-key"})
    run = request_sync(dossier.id, Trigger.MANUAL)
    workers.start()
    done = workers.wait_for(lambda: finished(db, run.id), what="the sync")
    assert done.status == RunStatus.SUCCEEDED, done.message

    # the check as its own job in the worker, after the run's data commit
    enqueue_check(run.id)
    checked = workers.wait_for(lambda: (r := run_row(db, run.id)).data_check_status and r, what="the data check")
    assert checked.data_check_status == IN_BALANCE, checked.data_check
    assert checked.data_check["periods"] > 0 and checked.data_check["cells"] > 0

    # a stored balance changed behind the sync's back: the check names it with both amounts
    balance = db.session.scalars(
        select(PeriodBalance).join(Period).where(PeriodBalance.dossier_id == dossier.id,
                                                 Period.start >= date.fromisoformat(checked.data_check["checked_from"]))
        .order_by(Period.end, PeriodBalance.id).limit(1)).one()
    number = db.session.get(Account, balance.account_id).number
    period_end = db.session.get(Period, balance.period_id).end.isoformat()
    synced = balance.amount
    balance.amount = synced + Decimal("10.00")
    db.session.commit()

    assert check(run.id) == DIFFERENCES
    result = run_row(db, run.id).data_check
    assert result["account_differences"] == 1
    assert result["differences"] == [{"account": number, "name": result["differences"][0]["name"],
                                      "period_end": period_end, "balance": str(synced + Decimal("10.00")),
                                      "lines": str(synced), "difference": "10.00"}]
    assert result["trial_balance"] == [{"period_end": period_end, "total": "10.00"}]
