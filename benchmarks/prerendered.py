"""The pre-rendered floor of measure 1: the pages a full sync reads, served as stored bytes.

The sandbox spends most of a full sync's CPU generating journal pages, so a floor that
fetches from it measures the sandbox. Here the floor's first pass through the sandbox
records the exact bytes of every page (``path?query -> (content type, body)``);
:class:`PrerenderedServer` then serves them from a dict in its own process
(``python -m benchmarks.prerendered --port P --pages FILE --upstream URL``): a stdlib
threading HTTP/1.1 server (keep-alive) that does no work per request beyond the lookup.

It ignores the request's headers (bearer token, ``xero-tenant-id``): the sync and the floor
are the only clients. A path it has not recorded is fetched once from ``--upstream`` (the
sandbox) with the request's headers, answered, and counted as a miss in
``GET /_prerendered/stats``; a fair comparison has zero misses (the report shows them).
"""
from __future__ import annotations

import argparse
import json
import os
import pickle
import subprocess
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import requests

from benchmarks.services import ROOT, free_port, stop_process, wait_for_port

STATS_PATH = "/_prerendered/stats"


def page_key(url):
    """The key of a fetched page: its path and query as sent (``/xero/api.xro/2.0/Journals?offset=0``)."""
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


class PrerenderedServer:
    """The pre-rendered pages in their own server process; ``.url`` and ``.proc`` once started.

    :param pages: ``{page_key: (content type, body bytes)}`` (see :func:`page_key`).
    :param upstream: the origin (``http://127.0.0.1:PORT``) a page not recorded is fetched from.
    """

    def __init__(self, pages, upstream, workdir, log_path=None):
        self.pages = pages
        self.upstream = upstream
        self.workdir = Path(workdir)
        self.log_path = log_path

    def __enter__(self):
        self.workdir.mkdir(parents=True, exist_ok=True)
        pages_path = self.workdir / "prerendered-pages.pickle"
        with open(pages_path, "wb") as out:
            pickle.dump(self.pages, out, protocol=pickle.HIGHEST_PROTOCOL)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        log = open(self.log_path, "wb") if self.log_path else subprocess.DEVNULL
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.prerendered", "--port", str(self.port), "--pages", str(pages_path),
             "--upstream", self.upstream],
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONPATH": str(ROOT)})
        wait_for_port(self.port, timeout=120)
        return self

    def stats(self):
        """``{"hits": n, "misses": [page keys fetched from upstream]}``."""
        return requests.get(self.url + STATS_PATH, timeout=30).json()

    def __exit__(self, *exc):
        stop_process(self.proc)


def handler_class(pages, upstream):
    """The request handler serving ``pages`` (a miss is fetched from ``upstream`` and counted)."""
    counts = {"hits": 0, "misses": []}
    session = requests.Session()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the sandbox and a vendor's API

        def do_GET(self):  # noqa: N802 (http.server's naming)
            if self.path == STATS_PATH:
                self._answer(200, "application/json", json.dumps(counts).encode())
                return
            page = pages.get(self.path)
            if page is not None:
                counts["hits"] += 1
                self._answer(200, *page)
                return
            counts["misses"].append(self.path)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
            response = session.get(upstream + self.path, headers=headers, timeout=60)
            self._answer(response.status_code, response.headers.get("Content-Type", "application/json"),
                         response.content)

        def _answer(self, status, content_type, body):
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args):
            pass

    return Handler


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--pages", required=True)
    parser.add_argument("--upstream", required=True)
    args = parser.parse_args(argv)
    with open(args.pages, "rb") as source:
        pages = pickle.load(source)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), handler_class(pages, args.upstream.rstrip("/")))
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
