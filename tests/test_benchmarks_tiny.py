"""The benchmark harness end to end at the tiny size, so it cannot rot.

It starts its own Redis, PostgreSQL cluster, sandbox and workers, like ``make bench``. No
timing is asserted: only that every measure ran and the reports carry the expected keys.
"""
import glob
import json
import shutil

import pytest

from benchmarks.__main__ import run

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    if not glob.glob("/usr/lib/postgresql/*/bin/initdb") or not shutil.which("redis-server"):
        pytest.fail("the harness needs PostgreSQL and redis-server (make test installs them)")
    out = tmp_path_factory.mktemp("bench")
    json_path, md_path = run(["--size", "tiny", "--runs", "1", "--out", str(out)])
    return json.loads(json_path.read_text()), md_path.read_text()


def test_every_measure_is_reported(reports):
    data, markdown = reports
    assert sorted(data["measures"], key=int) == ["1", "2", "3", "4", "5", "6", "7", "8", "9", "10"]
    for key, measure in data["measures"].items():
        assert measure["size"] == "tiny" and measure["machine"]["cpus"] >= 1 and measure["date"], key
        assert f"## {key}. {measure['title']}" in markdown


def test_full_sync_moves_every_line_and_compares_with_its_floor(reports):
    data, _ = reports
    sync = data["measures"]["1"]
    assert {c["target"].split(":")[0] for c in sync["checks"]} == {"SQLite", "PostgreSQL"}
    for label, figures in sync["figures"].items():
        raw = sync["raw"][label.lower()][0]
        assert figures["lines"] >= 2_000, label  # every generated journal line was stored
        assert figures["lines"] == raw["floor_lines"] == raw["prerendered_floor_lines"] == raw["prerendered_lines"]
        assert figures["sync_seconds"] > 0 and figures["floor_seconds"] > 0
        assert figures["sync_over_floor"] == pytest.approx(figures["sync_seconds"] / figures["floor_seconds"])
        # the pre-rendered server answered every page the floor and the sync asked for, and
        # the sync against it called the sandbox for nothing but (at most) its token
        assert figures["prerendered_misses"] == 0 and figures["prerendered_floor_pages"] == figures["floor_pages"]
        assert figures["prerendered_sandbox_calls"] <= 1, label
        assert figures["sync_over_prerendered_floor"] == pytest.approx(
            figures["prerendered_sync_seconds"] / figures["prerendered_floor_seconds"])
        assert figures["prerendered_worker_cpu_us_per_line"] > 0


def test_resync_changes_nothing_and_memory_and_fan_out_are_counted(reports):
    data, _ = reports
    for label, figures in data["measures"]["3"]["figures"].items():
        assert 0 < figures["resync_over_full"] and figures["resync_api_calls"] >= 1, label
        assert all(run["resync_changed"] is False for run in data["measures"]["1"]["raw"][label.lower()])
    memory = data["measures"]["2"]["figures"]
    assert [f["lines"] for f in memory.values()] == sorted(f["lines"] for f in memory.values())
    assert all(f["horse_peak_rss_mb"] > 10 for f in memory.values())
    fan_out = data["measures"]["5"]["figures"]["PostgreSQL"]
    assert fan_out["nightly_runs"] == fan_out["nightly_rows"] == 200
    assert fan_out["bulk_runs"] == 50 and fan_out["bulk_skipped"] == 0
    assert fan_out["nightly_refire_runs"] == 0  # the next cron fire of the same night queues nothing
    assert data["measures"]["5"]["figures"]["PostgreSQL, first night after the import"]["runs"] == 200
    assert 0 < fan_out["nightly_enqueue_seconds"] < fan_out["nightly_seconds"]
    assert fan_out["nightly_database_seconds"] == pytest.approx(
        fan_out["nightly_seconds"] - fan_out["nightly_enqueue_seconds"])


def test_console_pages_at_every_scale_and_page_size(reports):
    data, _ = reports
    figures = data["measures"]["4"]["figures"]
    assert sorted(figures) == sorted(f"{page}, {scale}" for page in (
        "Files list (20 a page)", "Files list (100 a page)", "dashboard", "file page")
        for scale in ("50 files, 500 runs, 2 firms", "300 files, 6,000 runs, 2 firms"))
    assert all(f["queries"] > 0 and f["p95_ms"] > 0 for f in figures.values())


def test_pacing_spreads_files_over_connections_and_counts_budget_sleeps(reports):
    data, _ = reports
    pacing = data["measures"]["6"]["figures"]["PostgreSQL"]
    assert (pacing["files"], pacing["connections"], pacing["organisations"], pacing["workers"]) == (8, 2, 4, 4)
    assert pacing["succeeded"] == 8 and pacing["unfinished"] == 0
    assert pacing["lower_bound_seconds"] > 0 and pacing["makespan_seconds"] > 0
    assert pacing["budget_sleep_seconds"] >= 0 and 0 <= pacing["budget_sleep_share"] < 1
    assert {c["target"] for c in data["measures"]["6"]["checks"]} >= {"worker time spent sleeping on budgets < 5 %"}


def test_both_peers_read_every_journal_line_of_the_sandbox(reports):
    data, markdown = reports
    assert sorted(data["measures"]["7"]["figures"]) == ["PostgreSQL", "SQLite"]  # Firmsync stores into both
    for peer in data["measures"]["7"]["figures"].values():
        assert peer["lines"] >= 2_000
        for name in ("tap", "airbyte"):
            # at least every Journals page Firmsync read (its calls less Organisation and Accounts),
            # so every line (a peer may ask for one more, empty, page)
            assert peer[f"{name}_journal_pages"] >= peer["firmsync_calls"] - 2, name
            assert peer[f"{name}_records_per_second"] > 0, name
            assert peer[f"firmsync_over_{name}"] == pytest.approx(
                peer["firmsync_records_per_second"] / peer[f"{name}_records_per_second"])
    assert "airbyte-source-xero" in markdown and "url_base" in markdown


def test_api_pages_and_the_no_change_pull_are_compared_with_their_floor(reports):
    data, markdown = reports
    api = data["measures"]["8"]
    pages = {label: figures for label, figures in api["figures"].items() if label.startswith("page of 500")}
    assert len(pages) == 4  # cursor at 0, 10, 50 and 90 %
    for label, figures in pages.items():
        assert 0 < figures["floor_p95_ms"] and 0 < figures["p50_ms"] <= figures["p95_ms"], label
    pull = api["figures"]["no-change pull"]
    assert pull["lines"] == 0 and pull["statements_on_ledger_line"] == 0
    assert markdown.index("## 8.") < markdown.index("## 9.") < markdown.index("## 10.")


def test_webhook_fan_out_delivers_every_event_once_with_a_valid_signature(reports):
    data, _ = reports
    fan_out = data["measures"]["9"]["figures"]["PostgreSQL"]
    assert fan_out["delivered"] == fan_out["recorded_delivered"] == fan_out["events"] == 100
    assert fan_out["bad_signatures"] == 0
    assert fan_out["delivery_seconds"] > 0 and fan_out["floor_seconds"] > 0


def test_audit_files_are_read_whole_and_compared_with_a_parse_only_floor(reports):
    data, _ = reports
    figures = data["measures"]["10"]["figures"]
    assert sorted(figures) == ["FEC, 3,000 lines", "XAF 3.2, 3,000 lines"]
    for label, f in figures.items():
        assert f["lines"] >= 3_000 and f["floor_units"] >= 3_000, label
        assert f["lines_per_second"] > 0 and f["floor_lines_per_second"] > 0
        assert 0 < f["peak_rss_mb"] < 100  # the reading process's own peak (VmHWM), not the harness's


def test_the_copy_cost_experiment_runs_its_four_tables():
    from benchmarks.copy_costs import measure

    results = measure(300)
    assert list(results) == ["foreign keys and indexes", "indexes only", "foreign keys only", "neither"]
    assert all(cpu >= 0 and wall > 0 for cpu, wall in results.values())
