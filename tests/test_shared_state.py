"""One state DB, many processes: a real `bsync serve` takes signed deliveries while cron-like
`bsync sync` loops, a `bsync remind` loop and an admin's `status`, `sync --plan` and
`reconcile` run beside it (issue 11 §1).

The failure this guards against was silent: deliveries answered 202 that never reached the
inbox, and a state DB that failed `PRAGMA integrity_check`.  So the test counts every 202
and looks each one up afterwards, and checks the file's integrity with SQLite itself.
"""

from __future__ import annotations

import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import httpx

from bsync.sandbox.seed import CALCOM_WEBHOOK_SECRET

DELIVERIES = 400
RATE = 20.0  # deliveries per second, as a busy afternoon's webhooks would never reach
SYNC_LOOPS = 5


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cli(bsync, *args: str) -> list[str]:
    return [sys.executable, "-m", "bsync.cli", *args, "--config", str(bsync.config)]


def start_serve(bsync, port: int) -> subprocess.Popen:
    proc = subprocess.Popen(cli(bsync, "serve", "--port", str(port)), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code in (200, 503):
                return proc
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError("bsync serve did not start: " + (proc.stderr.read() if proc.stderr else ""))


def loop(bsync, commands: list[tuple[str, ...]], stop: threading.Event, codes: list[int]) -> None:
    """Run bsync commands in turn, again and again until ``stop``, keeping each exit code."""
    while not stop.is_set():
        for args in commands:
            codes.append(subprocess.run(cli(bsync, *args), stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL).returncode)


def inbox_rows(path) -> list[tuple[str, str]]:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        return conn.execute("SELECT delivery_id, status FROM inbox WHERE verified = 1").fetchall()


def test_serve_sync_loops_and_remind_share_the_state_db(sandbox, bsync):
    bsync.options = {"notify": True}
    bsync.configure()
    port = free_port()
    server = start_serve(bsync, port)
    stop = threading.Event()
    codes: dict[str, list[int]] = {f"sync-{i}": [] for i in range(SYNC_LOOPS)} | {"remind": [], "admin": []}
    loops = [threading.Thread(target=loop, args=(bsync, [("sync", "-q")], stop, codes[f"sync-{i}"]))
             for i in range(SYNC_LOOPS)]
    loops.append(threading.Thread(target=loop, args=(bsync, [("remind", "-q")], stop, codes["remind"])))
    admin = [("status", "--json"), ("sync", "--plan", "--json"), ("reconcile", "--json")]  # someone looking
    loops.append(threading.Thread(target=loop, args=(bsync, admin, stop, codes["admin"])))
    start = datetime.now(ZoneInfo("Europe/Warsaw")).replace(minute=0, second=0, microsecond=0) + timedelta(days=2)
    uids = [sandbox.calcom.create_booking(start=start + timedelta(hours=i % 9, days=i // 9))["uid"]
            for i in range(DELIVERIES)]
    accepted: list[str] = []
    try:
        for thread in loops:
            thread.start()
        began = time.monotonic()
        for response in sandbox.calcom.deliver_at_rate(f"http://127.0.0.1:{port}/webhooks/calcom", "BOOKING_CREATED",
                                                       uids, CALCOM_WEBHOOK_SECRET, rate=RATE):
            assert response.status_code == 202, response.text
            accepted.append(response.json()["delivery_id"])
        sent_s = time.monotonic() - began
        # the worker and the loops contend for the run lock; let each kind win it at least once
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not (
                any(0 in runs for name, runs in codes.items() if name.startswith("sync")) and 0 in codes["remind"]):
            time.sleep(0.2)
        stop.set()
        for thread in loops:
            thread.join(timeout=120)
        deadline = time.monotonic() + 120  # the worker drains what the loops left
        while time.monotonic() < deadline:
            if all(status == "done" for _, status in inbox_rows(bsync.state_path)):
                break
            time.sleep(0.2)
        health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10)
    finally:
        stop.set()
        server.terminate()
        _, stderr = server.communicate(timeout=30)

    assert len(accepted) == DELIVERIES
    print(f"\n{DELIVERIES} deliveries in {sent_s:.1f} s ({DELIVERIES / sent_s:.1f}/s); runs: "
          + ", ".join(f"{name} {dict(Counter(runs))}" for name, runs in codes.items()))
    rows = inbox_rows(bsync.state_path)
    ids = [delivery_id for delivery_id, _ in rows]
    assert sorted(ids) == sorted(accepted), "a delivery answered 202 is missing from the inbox (or stored twice)"
    assert {status for _, status in rows} == {"done"}
    with sqlite3.connect(bsync.state_path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    assert health.status_code == 200, health.text
    # the loops really ran beside the receiver: each sync either ran or found the lock held
    ran = [code for name, runs in codes.items() if name.startswith("sync") for code in runs]
    assert len(ran) >= SYNC_LOOPS and set(ran) <= {0, 3} and 0 in ran, codes
    assert set(codes["remind"]) <= {0, 3} and 0 in codes["remind"], codes
    assert set(codes["admin"]) <= {0, 1} and codes["admin"], codes  # reconcile may see drift mid-sync
    assert "Traceback" not in stderr and "malformed" not in stderr, stderr[-2000:]


def test_every_command_refuses_a_state_db_from_a_newer_bsync_and_writes_nothing(sandbox, bsync):
    from bsync.core.store import SCHEMA_VERSION, Store

    bsync.options = {"notify": True}
    bsync.configure()
    assert bsync("sync").exit_code == 0
    with Store.open(bsync.state_path) as store:
        store.db.execute("INSERT INTO schema_migrations VALUES (?, 'from the future', 'x')", [SCHEMA_VERSION + 1])
        store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    before = bsync.state_path.read_bytes()
    sandbox.clear_requests()
    for command in (("sync",), ("sync", "--plan"), ("status",), ("remind",), ("reconcile",), ("retry",),
                    ("sync", "pull", "calcom")):
        result = bsync(*command)
        assert result.exit_code == 2, (command, result.stdout, result.stderr)
        assert (f"state DB was written by a newer bsync (schema {SCHEMA_VERSION + 1} > {SCHEMA_VERSION}): "
                f"upgrade bsync or use another --state") in result.stderr, (command, result.stderr)
    assert bsync.state_path.read_bytes() == before
    assert [r.method for s in sandbox.servers for r in s.requests if r.method != "GET"] == []
