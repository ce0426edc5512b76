"""The data-check job (queue ``default``): ``jobs.data_checks.check(run_id)``.

Run once a sync run has succeeded (its data committed): compares the package's balances with
the synced ledger lines and checks each period's trial balance, and stores the result on the
run (:func:`app.services.data_checks.check_run`; docs/sync-engine.md, "Data checks").
Queued by :func:`app.services.data_checks.enqueue_check` with job id ``data-check-<run_id>``.
"""
from app.services import data_checks


def check(run_id):
    """Check succeeded run ``run_id``'s data and store the result on it; the result's status,
    or None when the run is missing or did not succeed (nothing is checked then)."""
    result = data_checks.check_run(run_id)
    return result["status"] if result is not None else None
