"""Measure 9: webhook fan-out of many events to a local receiver through real RQ workers.

A threaded HTTP receiver in this process checks every delivery's ``Firmsync-Signature``
(HMAC-SHA256 of ``"<t>.<raw body>"``, the endpoint's secret, as ``docs/api.md``'s example
client does) and counts each delivery id once. One endpoint of the benchmark firm points at it.

* **floor**: the same number of POSTs, signed alike, sent by as many threads as there are
  workers straight to the receiver (no database, no queue): what the HTTP delivery alone costs
  on this machine;
* **emit**: this process emits the events through :func:`app.services.webhooks.emit` (one
  recorded delivery and one commit each, as production; the first event queues the
  endpoint's drain job, the others find it queued), timed apart;
* **fan-out**: then ``workers`` real worker processes (:mod:`benchmarks.worker_process`,
  forking a work horse per job, with the scheduler) start; the clock runs from their start
  (start-up included) to the last valid delivery received. One endpoint means one drain at a
  time (``jobs.webhooks.drain``: batches over one kept-alive session, a few POSTs in flight),
  so the other workers mostly wait: that is the design, the receiver sets the pace.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests

from benchmarks.services import ROOT

EVENT = "sync.succeeded"


class Receiver:
    """A local webhook receiver: ``.url``; counts valid deliveries (by delivery id) and bad signatures."""

    def __init__(self, secret):
        self.secret = secret.encode()
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        with self.lock:
            self.seen, self.bad, self.last = set(), 0, None

    def valid(self, header, body):
        try:
            parts = dict(item.split("=", 1) for item in header.split(","))
            expected = hmac.new(self.secret, parts["t"].encode() + b"." + body, hashlib.sha256).hexdigest()
            return hmac.compare_digest(expected, parts["v1"]) and abs(time.time() - int(parts["t"])) <= 300
        except (KeyError, ValueError, AttributeError):
            return False

    def __enter__(self):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                ok = receiver.valid(self.headers.get("Firmsync-Signature", ""), body)
                with receiver.lock:
                    if ok:
                        receiver.seen.add(self.headers.get("Firmsync-Delivery"))
                        receiver.last = time.perf_counter()
                    else:
                        receiver.bad += 1
                self.send_response(204 if ok else 400)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/firmsync-hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    @property
    def count(self):
        with self.lock:
            return len(self.seen)


def endpoint(url):
    """An administrator of the benchmark firm adds an endpoint at ``url``: ``(firm_id, endpoint_id, secret)``."""
    from app.access import actor_for
    from app.extensions import db
    from app.models import Membership, Role, User
    from app.services import webhooks
    from benchmarks.world import firm_id

    firm = firm_id()
    admin = User(email=f"webhooks-{time.time_ns()}@bench.test", name="Webhook admin")
    db.session.add(admin)
    db.session.flush()
    db.session.add(Membership(user_id=admin.id, firm_id=firm, role=Role.ADMIN))
    db.session.commit()
    created, secret = webhooks.create_endpoint(actor_for(admin, firm), url, [EVENT])
    return firm, created.id, secret


def floor(receiver, secret, events, senders):
    """Seconds for ``senders`` threads to POST ``events`` signed bodies to the receiver (no queue, no database)."""
    from app.services.webhooks import sign

    def send(n):
        body = json.dumps({"event": EVENT, "data": {"n": n}}, separators=(",", ":")).encode()
        answer = requests.post(receiver.url, data=body, timeout=10, allow_redirects=False, headers={
            "Content-Type": "application/json", "Firmsync-Delivery": f"floor-{n}",
            "Firmsync-Signature": sign(secret, time.time(), body)})
        return answer.status_code

    receiver.reset()
    started = time.perf_counter()
    with ThreadPoolExecutor(senders) as pool:
        codes = list(pool.map(send, range(events)))
    seconds = time.perf_counter() - started
    assert receiver.count == events and set(codes) == {204}, "the floor lost deliveries"
    return seconds


def start_workers(bench, count):
    procs = []
    for n in range(count):
        log = open(bench.workdir / f"webhook-worker-{n}.log", "ab")
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "benchmarks.worker_process", "--report", str(bench.workdir / f"webhook-{n}.json"),
             "--with-scheduler", "--forever"], cwd=ROOT, env=bench.env(), stdout=log, stderr=subprocess.STDOUT))
    return procs


def stop_workers(procs):
    for proc in procs:
        os.kill(proc.pid, signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def measure(bench, events, workers):
    """Floor and fan-out of ``events`` events with ``workers`` worker processes; the figures."""
    from sqlalchemy import func, select

    from app.extensions import db
    from app.models import WebhookDelivery
    from app.redis_connection import redis_connection
    from app.services import webhooks

    with bench.app.app_context(), Receiver("") as receiver:
        redis_connection().flushdb()
        firm, endpoint_id, secret = endpoint(receiver.url)
        receiver.secret = secret.encode()
        floor_seconds = floor(receiver, secret, events, workers)
        receiver.reset()
        started = time.perf_counter()
        for n in range(events):
            webhooks.emit(firm, EVENT, {"n": n})
        emit_seconds = time.perf_counter() - started
        started = time.perf_counter()
        procs = start_workers(bench, workers)
        try:
            deadline = started + max(120.0, events * 0.05)
            while receiver.count < events and time.perf_counter() < deadline:
                time.sleep(0.05)
            delivered = receiver.count
            seconds = ((receiver.last or time.perf_counter()) - started) if delivered else None
            # the workers record each answer after the receiver saw it: wait for the log to agree
            recorded = 0
            while time.perf_counter() < deadline + 30:
                db.session.expire_all()
                recorded = db.session.scalar(select(func.count()).select_from(WebhookDelivery).where(
                    WebhookDelivery.endpoint_id == endpoint_id, WebhookDelivery.status == "delivered"))
                if recorded >= delivered:
                    break
                time.sleep(0.1)
        finally:
            stop_workers(procs)
        bad = receiver.bad
    return {"events": events, "workers": workers, "delivered": delivered, "recorded_delivered": recorded,
            "bad_signatures": bad, "emit_seconds": round(emit_seconds, 2),
            "delivery_seconds": round(seconds, 2) if seconds else None,
            "events_per_second": round(delivered / seconds, 1) if seconds else 0.0,
            "floor_seconds": round(floor_seconds, 2), "floor_events_per_second": round(events / floor_seconds, 1),
            "delivery_over_floor": round(seconds / floor_seconds, 2) if seconds else None}
