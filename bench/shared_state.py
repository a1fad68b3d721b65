"""Benchmark: one state DB shared by `bsync serve`, sync loops, `remind` and `status`.

A real `bsync serve` process receives signed Cal.com deliveries at a steady rate while
N shell-like loops run `bsync sync -q`, one loops `bsync remind -q` and one loops
`bsync status --json` (an admin watching).  Afterwards: deliveries answered 202, how many
are in the inbox (exactly once) and processed, `PRAGMA integrity_check`, Notion pages
and calendar events made, what each loop's runs exited with, the receiver's peak RSS,
`/healthz` latency, and the drain time after the last delivery.

    .venv/bin/python bench/shared_state.py [--deliveries 2000] [--rate 20] [--syncs 5] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx

from bsync.sandbox import Sandbox
from bsync.sandbox.seed import CALCOM_WEBHOOK_SECRET, write_sandbox_config


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def bench(deliveries: int, rate: float, syncs: int) -> dict:
    with Sandbox() as sandbox, tempfile.TemporaryDirectory() as folder:
        config = write_sandbox_config(sandbox, Path(folder), notify=True)
        state = Path(folder) / "state.db"

        def cli(*args: str) -> list[str]:
            return [sys.executable, "-m", "bsync.cli", *args, "--config", str(config)]

        port = free_port()
        server = subprocess.Popen(cli("serve", "--port", str(port)), stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, text=True)
        base = f"http://127.0.0.1:{port}"
        while True:
            try:
                httpx.get(f"{base}/healthz", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        stop = threading.Event()
        codes: dict[str, Counter] = {}

        said: dict[str, str] = {}

        def loop(name: str, *args: str) -> None:
            codes[name] = Counter()
            while not stop.is_set():
                run = subprocess.run(cli(*args), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                codes[name][run.returncode] += 1
                if run.returncode and run.stderr.strip():
                    said[f"{name.split('-')[0]} exit {run.returncode}"] = run.stderr.strip().splitlines()[0][:160]

        loops = [threading.Thread(target=loop, args=(f"sync-{i}", "sync", "-q")) for i in range(syncs)]
        loops += [threading.Thread(target=loop, args=("remind", "remind", "-q")),
                  threading.Thread(target=loop, args=("status", "status", "--json"))]
        start = datetime.now(ZoneInfo("Europe/Warsaw")).replace(minute=0, second=0, microsecond=0) + timedelta(days=2)
        uids = [sandbox.calcom.create_booking(start=start + timedelta(hours=i % 9, days=i // 9))["uid"]
                for i in range(deliveries)]
        accepted, statuses, health_ms = [], Counter(), []
        for thread in loops:
            thread.start()
        def after_each(i: int, r: httpx.Response) -> None:
            statuses[r.status_code] += 1
            if r.status_code == 202:
                accepted.append(r.json()["delivery_id"])
            if i % 50 == 0:
                t = time.perf_counter()
                httpx.get(f"{base}/healthz")
                health_ms.append((time.perf_counter() - t) * 1000)

        began = time.monotonic()
        sandbox.calcom.deliver_at_rate(f"{base}/webhooks/calcom", "BOOKING_CREATED", uids, CALCOM_WEBHOOK_SECRET,
                                       rate=rate, on_each=after_each)
        sent_s = time.monotonic() - began
        stop.set()
        for thread in loops:
            thread.join()
        drain_began = time.monotonic()
        while time.monotonic() - drain_began < 600:  # every delivery processed and its booking in Notion
            with sqlite3.connect(f"file:{state}?mode=ro", uri=True) as conn:
                left = conn.execute("SELECT COUNT(*) FROM inbox WHERE status != 'done'").fetchone()[0]
            if not left and len(sandbox.notion.pages) >= len(accepted):
                break
            time.sleep(0.2)
        drain_s = time.monotonic() - drain_began
        final_health = httpx.get(f"{base}/healthz").status_code
        rss = peak_rss_mb(server.pid)
        server.terminate()
        _, stderr = server.communicate(timeout=30)
        with sqlite3.connect(state) as conn:
            rows = conn.execute("SELECT delivery_id, status FROM inbox WHERE verified = 1").fetchall()
            integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
        ids = Counter(d for d, _ in rows)
        return {
            "deliveries": deliveries, "rate_per_s": rate, "sync_loops": syncs, "send_s": round(sent_s, 1),
            "http_statuses": dict(statuses), "accepted": len(accepted),
            "in_inbox_once": sum(1 for d in accepted if ids[d] == 1),
            "lost": sum(1 for d in accepted if ids[d] == 0), "stored_twice": sum(1 for n in ids.values() if n > 1),
            "processed": sum(1 for _, s in rows if s == "done"), "integrity_check": integrity,
            "notion_pages": len(sandbox.notion.pages), "events": sandbox.google.event_count(sandbox.google.calendar_id),
            "drain_s": round(drain_s, 1), "final_healthz": final_health,
            "healthz_ms_max": round(max(health_ms), 1), "healthz_ms_median": round(sorted(health_ms)[len(health_ms) // 2], 1),
            "serve_peak_rss_mb": round(rss, 1), "exit_codes": {k: dict(v) for k, v in codes.items()}, "messages": said,
            "serve_tracebacks": stderr.count("Traceback"),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--deliveries", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--syncs", type=int, default=5)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    result = bench(args.deliveries, args.rate, args.syncs)
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
