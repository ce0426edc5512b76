"""The API benchmark (``python -m benchmarks.api``) runs end to end at a tiny size."""
from benchmarks.api import main


def test_the_api_benchmark_runs_at_a_tiny_size(redis_url, tmp_path):
    results = main(["--lines", "12000", "--dossiers", "3", "--events", "5", "--pages", "2",
                    "--redis-url", redis_url, "--database-url", f"sqlite:///{tmp_path}/bench.db"])
    assert set(results["ledger_page_500"]) == {"0%", "10%", "50%", "90%"}
    assert results["no_change_pull"]["lines"] == 0
    assert results["no_change_pull"]["statements_on_ledger_line"] == 0
    assert results["fanout"]["events"] == 5
