"""Measure 7: Singer's ``tap-xero`` (from PyPI) against the same Xero sandbox.

The harness installs ``tap-xero`` into a throwaway virtualenv, then runs it through a small
launcher (:data:`LAUNCHER`) that points the tap's hard-coded Xero URLs at the sandbox and
hands it a catalog selecting ``accounts`` and ``journals`` (the tap's discovery calls an
endpoint the sandbox does not emulate, ``Currencies``). Its Singer output goes to /dev/null.
In the same run, Firmsync fully syncs the same organisation through a real worker (SQLite).
Records are journal lines for both (the tap emits one record per journal; the lines are
what both move).
"""
from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
import venv
from pathlib import Path

from benchmarks.full_sync import COMPANY
from benchmarks.world import XERO_CLIENT, add_xero_dossier, connect_xero, run_seconds, sync_and_wait

LAUNCHER = r'''
import json, sys
import requests
import tap_xero, tap_xero.client as client
from singer.catalog import Catalog

sandbox, config_path = sys.argv[1], sys.argv[2]
client.BASE_URL = sandbox + "/xero/api.xro/2.0"
_post = requests.Session.post
def post(self, url, *args, **kwargs):
    if url == "https://identity.xero.com/connect/token":
        url = sandbox + "/xero/connect/token"
    return _post(self, url, *args, **kwargs)
requests.Session.post = post
streams = []
for stream in tap_xero.streams_.all_streams:
    if stream.tap_stream_id not in ("accounts", "journals"):
        continue
    schema = tap_xero.load_schema(stream.tap_stream_id)
    metadata = tap_xero.load_metadata(stream, schema)
    metadata[0]["metadata"]["selected"] = True
    streams.append({"stream": stream.tap_stream_id, "tap_stream_id": stream.tap_stream_id,
                    "key_properties": stream.pk_fields, "schema": schema, "metadata": metadata})
config = json.load(open(config_path))
tap_xero.sync(tap_xero.Context(config, {}, Catalog.from_dict({"streams": streams}), config_path))
'''


def install(workdir, existing=None):
    """The python of a virtualenv with tap-xero (``existing`` reuses one)."""
    if existing:
        return Path(existing) / "bin" / "python"
    target = Path(workdir) / "tap-xero-venv"
    venv.create(target, with_pip=True)
    subprocess.run([target / "bin" / "python", "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                    "tap-xero", "six"], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return target / "bin" / "python"


def run_tap(python, sandbox_url, credentials, workdir):
    """Run the tap once; its wall seconds."""
    from connectors.xero.emulator import tenant_id

    config_path = Path(workdir) / "tap-config.json"
    config_path.write_text(json.dumps({
        "client_id": XERO_CLIENT[0], "client_secret": XERO_CLIENT[1], "refresh_token": credentials["refresh_token"],
        "tenant_id": tenant_id(COMPANY), "start_date": "2000-01-01T00:00:00Z", "user_agent": "firmsync-bench"}))
    launcher = Path(workdir) / "tap_launcher.py"
    launcher.write_text(LAUNCHER)
    started = time.perf_counter()
    log_path = Path(workdir) / "tap.log"
    with open(log_path, "wb") as log:
        done = subprocess.run([str(python), str(launcher), sandbox_url, str(config_path)],
                              stdout=subprocess.DEVNULL, stderr=log)
    seconds = time.perf_counter() - started
    if done.returncode:
        raise RuntimeError("tap-xero failed:\n" + log_path.read_text(errors="replace")[-2000:])
    return seconds


def measure(bench, lines, runs, existing_venv=None):
    """Alternate tap runs and Firmsync full syncs of the same organisation; medians and ratio."""
    bench.workdir.mkdir(parents=True, exist_ok=True)
    python = install(bench.workdir, existing_venv)
    raw = []
    with bench.app.app_context():
        for index in range(runs):
            bench.sandbox.reset()
            credentials = connect_xero(bench.sandbox.url)
            before = bench.sandbox.stats()["total_calls"]
            tap_seconds = run_tap(python, bench.sandbox.url, credentials, bench.workdir)
            tap_calls = bench.sandbox.stats()["total_calls"] - before
            credentials = connect_xero(bench.sandbox.url)
            dossier_id = add_xero_dossier(bench.sandbox.url, COMPANY, credentials, f"peer {lines} run {index + 1}")
            run, _, _ = sync_and_wait(bench, dossier_id)
            if run.status != "succeeded":
                raise RuntimeError(f"the Firmsync sync ended {run.status}: {run.message}")
            seconds = run_seconds(run)
            raw.append({"tap_seconds": tap_seconds, "tap_calls": tap_calls, "tap_records_per_second": lines and
                        run.lines_inserted / tap_seconds, "firmsync_seconds": seconds,
                        "firmsync_records_per_second": run.lines_inserted / seconds, "lines": run.lines_inserted,
                        "firmsync_over_tap": (run.lines_inserted / seconds) / (run.lines_inserted / tap_seconds)})
    return {"runs": len(raw), "raw": raw, "median": {k: statistics.median(r[k] for r in raw) for k in raw[0]}}


if __name__ == "__main__":
    sys.exit("use python -m benchmarks --only 7")
