"""Measure 7: two peers from PyPI against the same Xero sandbox, and Firmsync.

* Singer's ``tap-xero``: installed into a throwaway virtualenv and run through a small
  launcher (:data:`LAUNCHER`) that points the tap's hard-coded Xero URLs at the sandbox
  (``tap_xero.client.BASE_URL`` and the token URL of ``requests.Session.post``) and hands it
  a catalog selecting ``accounts`` and ``journals`` (the tap's discovery calls an endpoint
  the sandbox does not emulate, ``Currencies``).
* Airbyte's ``airbyte-source-xero`` (a low-code ``airbyte-cdk`` connector, its own virtualenv):
  run through :data:`AIRBYTE_LAUNCHER`, which loads the package's own ``manifest.yaml``,
  sets its requester's ``url_base`` to the sandbox, and uses its bearer authenticator
  (``credentials.auth_type = oauth2_access_token``, the access token of a sandbox grant).
  The package has **no journals stream** (2.0.1 reads invoices, bank transactions, manual
  journals and 18 other documents, none of which the sandbox emulates): the launcher adds
  one to the manifest, made of the package's own definitions (requester, authenticator,
  ``CustomExtractor`` selector, error handler) with Xero's ``offset`` paging on
  ``JournalNumber``, and selects it with the package's ``organisations`` and ``accounts``
  streams. The CDK's whole read path (HTTP, paging, extraction, date conversion, schema
  transform, Airbyte messages) is the package's; only the stream's definition is ours.

Both peers' output goes to /dev/null. In the same run, Firmsync fully syncs the same
organisation through a real worker (SQLite) and stores it. Records are journal lines for
all three (the peers emit one record per journal; the lines are what all three move).
"""
from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
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


AIRBYTE_LAUNCHER = r'''
import copy, json, os, sys
import yaml
from airbyte_cdk.entrypoint import launch
from airbyte_cdk.sources.declarative.decoders.json_decoder import JsonDecoder
from airbyte_cdk.sources.declarative.manifest_declarative_source import ManifestDeclarativeSource

# source_xero.components declares ``decoder: Decoder = JsonDecoder(parameters={})``, a default
# Python >= 3.11's dataclasses refuse ("mutable default ... use default_factory"): JsonDecoder
# is an unhashable dataclass. Made hashable here, the package's own class loads unchanged.
JsonDecoder.__hash__ = object.__hash__
import source_xero

sandbox, config_path, catalog_path = sys.argv[1], sys.argv[2], sys.argv[3]
with open(os.path.join(os.path.dirname(source_xero.__file__), "manifest.yaml")) as source:
    manifest = yaml.safe_load(source)
definitions = manifest["definitions"]
definitions["requester"]["url_base"] = sandbox + "/xero/api.xro/2.0/"
journals = copy.deepcopy(definitions["organisations_stream"])
journals.update(name="journals", schema_loader={"type": "InlineSchemaLoader", "schema": {
    "type": "object", "additionalProperties": True, "properties": {}}})
journals["$parameters"] = {"primary_key": "JournalID", "path": "/Journals", "extractor_path": "Journals"}
journals["retriever"] = {"$ref": "#/definitions/retriever", "paginator": {
    "type": "DefaultPaginator",
    "pagination_strategy": {"type": "CursorPagination", "cursor_value": "{{ last_record['JournalNumber'] }}",
                            "stop_condition": "{{ response['Journals'] | length < 100 }}"},
    "page_token_option": {"type": "RequestOption", "inject_into": "request_parameter", "field_name": "offset"}}}
definitions["journals_stream"] = journals
manifest["streams"] = ["#/definitions/organisations_stream", "#/definitions/accounts_stream",
                       "#/definitions/journals_stream"]
launch(ManifestDeclarativeSource(source_config=manifest), ["read", "--config", config_path, "--catalog", catalog_path])
'''

#: the peers: the packages their virtualenv gets from PyPI, their launcher
PEERS = {"tap": (("tap-xero", "six"), LAUNCHER), "airbyte": (("airbyte-source-xero",), AIRBYTE_LAUNCHER)}


class PeerInstall:
    """A peer's virtualenv (``<workdir>/<peer>-venv``), installed from PyPI in the background
    from :meth:`start` (the harness starts it first, so the minutes ``pip`` takes overlap the
    other measures); :meth:`python` waits for it. ``existing`` reuses a virtualenv instead."""

    def __init__(self, workdir, peer, existing=None):
        self.peer = peer
        self.target = Path(existing) if existing else Path(workdir) / f"{peer}-venv"
        self.existing = bool(existing)
        self.proc = None

    def start(self):
        if not self.existing:
            self.target.parent.mkdir(parents=True, exist_ok=True)
            self.log = self.target.parent / f"{self.peer}-install.log"
            script = (f"import subprocess, sys, venv; venv.create({str(self.target)!r}, with_pip=True); "
                      f"sys.exit(subprocess.call([{str(self.target / 'bin' / 'python')!r}, '-m', 'pip', 'install', "
                      f"'--quiet', '--disable-pip-version-check', *{list(PEERS[self.peer][0])!r}]))")
            self.proc = subprocess.Popen([sys.executable, "-c", script], stdout=open(self.log, "wb"),
                                         stderr=subprocess.STDOUT)
        return self

    def python(self):
        """The virtualenv's python, once installed."""
        if self.proc is not None and self.proc.wait():
            raise RuntimeError(f"installing {self.peer} failed:\n" + self.log.read_text(errors="replace")[-2000:])
        return self.target / "bin" / "python"

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def run_peer(python, peer, arguments, workdir):
    """Run a peer's launcher once with ``arguments`` (its Singer/Airbyte output to /dev/null); its wall seconds."""
    launcher = Path(workdir) / f"{peer}_launcher.py"
    launcher.write_text(PEERS[peer][1])
    log_path = Path(workdir) / f"{peer}.log"
    started = time.perf_counter()
    with open(log_path, "wb") as log:
        done = subprocess.run([str(python), str(launcher), *arguments], stdout=subprocess.DEVNULL, stderr=log)
    seconds = time.perf_counter() - started
    if done.returncode:
        raise RuntimeError(f"{peer} failed:\n" + log_path.read_text(errors="replace")[-2000:])
    return seconds


def run_tap(python, sandbox_url, credentials, workdir):
    """Run tap-xero once (its token refreshed on the sandbox); its wall seconds."""
    from connectors.xero.emulator import tenant_id

    config_path = Path(workdir) / "tap-config.json"
    config_path.write_text(json.dumps({
        "client_id": XERO_CLIENT[0], "client_secret": XERO_CLIENT[1], "refresh_token": credentials["refresh_token"],
        "tenant_id": tenant_id(COMPANY), "start_date": "2000-01-01T00:00:00Z", "user_agent": "firmsync-bench"}))
    return run_peer(python, "tap", [sandbox_url, str(config_path)], workdir)


def run_airbyte(python, sandbox_url, credentials, workdir):
    """Run airbyte-source-xero once (bearer access token of a sandbox grant); its wall seconds."""
    from connectors.xero.emulator import tenant_id

    config_path = Path(workdir) / "airbyte-config.json"
    config_path.write_text(json.dumps({
        "credentials": {"auth_type": "oauth2_access_token", "access_token": credentials["access_token"]},
        "tenant_id": tenant_id(COMPANY), "start_date": "2000-01-01T00:00:00Z"}))
    catalog_path = Path(workdir) / "airbyte-catalog.json"
    catalog_path.write_text(json.dumps({"streams": [
        {"stream": {"name": name, "json_schema": {}, "supported_sync_modes": ["full_refresh"]},
         "sync_mode": "full_refresh", "destination_sync_mode": "overwrite"}
        for name in ("organisations", "accounts", "journals")]}))
    return run_peer(python, "airbyte", [sandbox_url, str(config_path), str(catalog_path)], workdir)


def journal_pages(stats):
    """Journals pages the sandbox has answered (its ``/_sandbox/stats``)."""
    return stats["calls"].get("/xero/api.xro/2.0/Journals", 0)


def measure(benches, lines, runs, installs):
    """Alternate the peers' runs and Firmsync full syncs of the same organisation into each
    database; per database label, medians and ratios (the peers' figures repeated in each).

    :param benches: ``{"SQLite": Bench, "PostgreSQL": Bench}`` sharing one sandbox.
    :param installs: ``{"tap": PeerInstall, "airbyte": PeerInstall}`` (started).
    """
    first = next(iter(benches.values()))
    for bench in benches.values():
        bench.workdir.mkdir(parents=True, exist_ok=True)
    tap_python, airbyte_python = installs["tap"].python(), installs["airbyte"].python()
    raw = {label: [] for label in benches}
    for index in range(runs):
        first.sandbox.reset()
        peers = {}
        with first.app.app_context():
            for peer, python, runner in (("tap", tap_python, run_tap), ("airbyte", airbyte_python, run_airbyte)):
                credentials = connect_xero(first.sandbox.url)
                before = first.sandbox.stats()
                peers[f"{peer}_seconds"] = runner(python, first.sandbox.url, credentials, first.workdir)
                after = first.sandbox.stats()
                peers[f"{peer}_calls"] = after["total_calls"] - before["total_calls"]
                peers[f"{peer}_journal_pages"] = journal_pages(after) - journal_pages(before)
        for label, bench in benches.items():
            with bench.app.app_context():
                credentials = connect_xero(bench.sandbox.url)
                dossier_id = add_xero_dossier(bench.sandbox.url, COMPANY, credentials,
                                              f"peer {lines} run {index + 1}")
                run, _, _ = sync_and_wait(bench, dossier_id)
                if run.status != "succeeded":
                    raise RuntimeError(f"the Firmsync sync ({label}) ended {run.status}: {run.message}")
                seconds = run_seconds(run)
                firmsync = run.lines_inserted / seconds
                figures = dict(peers, firmsync_seconds=seconds, firmsync_records_per_second=firmsync,
                               lines=run.lines_inserted, firmsync_calls=run.api_calls)
                for peer in ("tap", "airbyte"):
                    figures[f"{peer}_records_per_second"] = run.lines_inserted / figures[f"{peer}_seconds"]
                    figures[f"firmsync_over_{peer}"] = firmsync / figures[f"{peer}_records_per_second"]
                raw[label].append(figures)
    return {label: {"runs": len(rows), "raw": rows, "median": {k: statistics.median(r[k] for r in rows) for k in rows[0]}}
            for label, rows in raw.items()}


if __name__ == "__main__":
    sys.exit("use python -m benchmarks --only 7")
