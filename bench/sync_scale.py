"""Benchmark: two-way Notion <-> Google Calendar sync at 1,000 and 10,000 bookings.

Phases per size: the first sync, a no-change rerun, and a rerun after 10 edits (5 in
Notion, 5 in the calendar).  For each: HTTP requests by method (counted by the sandbox;
a batch request counts once), wall seconds, peak RSS and CPU ms per booking of the bsync
process, which runs as a separate process (the real console script) so its CPU and memory
are measured apart from the sandbox's.  Then a small run against the sandbox's Notion rate
limit (3 requests/s, like the real API) with bsync's pacing on: it must not fail.

    .venv/bin/python bench/sync_scale.py [--sizes 1000 10000] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
from zoneinfo import ZoneInfo

from bsync.sandbox import Sandbox
from bsync.sandbox.seed import booking_properties, write_sandbox_config

TZ = ZoneInfo("Europe/Warsaw")


def seed(sandbox: Sandbox, n: int) -> None:
    base = datetime(2027, 1, 4, 8, tzinfo=TZ)
    for i in range(n):
        start = base + timedelta(days=i // 8, hours=i % 8)
        sandbox.notion.create_page(booking_properties(
            f"Booking {i}", start=start, end=start + timedelta(minutes=45), customer=f"Customer {i}",
            email=f"c{i}@example.com", service="Bath", staff=("Anna", "Ben", "Chloe")[i % 3],
            time_zone="Europe/Warsaw"))


def edit_both_sides(sandbox: Sandbox, n: int) -> None:
    """5 bookings retitled in Notion, 5 events moved in the calendar (through the real API)."""
    from bsync.calendars.gcal import event_id_for

    pages = list(sandbox.notion.pages)
    for page in pages[:5]:
        sandbox.notion.update_page(page, properties={"Name": {"title": [{"text": {"content": "edited"}}]}})
    base = f"{sandbox.google.url}/calendar/v3/calendars/{sandbox.google.calendar_id}/events"
    for page in pages[n // 2:n // 2 + 5]:
        event = sandbox.google.get_event(sandbox.google.calendar_id, event_id_for(f"notion:{page}"))
        start = datetime.fromisoformat(event["start"]["dateTime"]) + timedelta(hours=1)
        end = datetime.fromisoformat(event["end"]["dateTime"]) + timedelta(hours=1)
        httpx.patch(f"{base}/{event['id']}", headers={"Authorization": "Bearer sandbox-token"},
                    json={"start": {"dateTime": start.isoformat()}, "end": {"dateTime": end.isoformat()}})


# The child reports its own peak RSS (VmHWM) at exit: Linux's ru_maxrss for a child keeps
# the size of the forked parent (this process, holding the sandbox), which would overstate it.
CHILD = """
import atexit, os, sys
def _report():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM"):
            with open(os.environ["BSYNC_BENCH_HWM"], "w") as f:
                f.write(line.split()[1])
atexit.register(_report)
sys.argv = ["bsync", *sys.argv[1:]]
from bsync.cli import main
main()
"""


def run_bsync(config: Path, *command: str) -> dict:
    """Run `bsync <command> --json` (default: sync) as a child; return its summary, wall time,
    CPU and peak RSS."""
    hwm = Path(config).with_name("hwm.txt")
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", CHILD, *(command or ("sync",)), "--json", "--config", str(config)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "BSYNC_BENCH_HWM": str(hwm)})
    out = proc.stdout.read()
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode not in (0, 1):
        raise SystemExit(f"bsync failed ({proc.returncode}): {err.decode()[-2000:]}")
    return {"summary": json.loads(out), "wall_s": round(wall, 2),
            "cpu_s": round(usage.ru_utime + usage.ru_stime, 2), "peak_rss_mb": round(int(hwm.read_text()) / 1024, 1),
            "exit_code": proc.returncode}


def import_cpu_s() -> float:
    """CPU seconds a bsync process spends importing its modules (best of 3), to report net figures."""
    best = float("inf")
    for _ in range(3):
        proc = subprocess.Popen([sys.executable, "-c", "import bsync.cli, bsync.core.sync"])
        _, _, usage = os.wait4(proc.pid, 0)
        best = min(best, usage.ru_utime + usage.ru_stime)
    return best


def by_method(sandbox: Sandbox) -> dict[str, dict[str, int]]:
    return {"notion": sandbox.notion.counts_by_method(), "google": sandbox.google.counts_by_method()}


def bench(n: int, startup_cpu: float) -> dict:
    with Sandbox() as sandbox, tempfile.TemporaryDirectory() as folder:
        t0 = time.perf_counter()
        seed(sandbox, n)
        seed_s = time.perf_counter() - t0
        config = write_sandbox_config(sandbox, Path(folder))
        out = {"bookings": n, "seed_s": round(seed_s, 2)}
        for phase in ("first_sync", "rerun_next_day", "rerun_after_10_edits"):
            if phase == "first_sync":
                # The sandbox stamps this run's write-backs a day earlier, as if it had been
                # yesterday's cron run.  (A rerun within minutes of a big sync re-reads the
                # pages it wrote back, one query per 100, and finds them unchanged by hash.)
                sandbox.notion.clock = lambda: datetime.now(timezone.utc) - timedelta(days=1)
            else:
                sandbox.notion.clock = lambda: datetime.now(timezone.utc)
            if phase == "rerun_after_10_edits":
                edit_both_sides(sandbox, n)
            sandbox.clear_requests()
            result = run_bsync(config)
            result["requests"] = by_method(sandbox)
            result["cpu_ms_per_booking"] = round(result["cpu_s"] * 1000 / n, 3)
            result["cpu_ms_per_booking_net"] = round(max(result["cpu_s"] - startup_cpu, 0) * 1000 / n, 3)
            s = result.pop("summary")
            result["created"], result["updated"], result["errors"] = s["created"], s["updated"], s["errors"]
            out[phase] = result
        return out


def bench_rate_limited(n: int = 60) -> dict:
    """n bookings against a Notion sandbox limited to 3 req/s, bsync pacing at 3 req/s."""
    with Sandbox() as sandbox, tempfile.TemporaryDirectory() as folder:
        seed(sandbox, n)
        config = write_sandbox_config(sandbox, Path(folder), notion_rate=3)
        sandbox.notion.set_faults(rate_limit_per_s=3)
        result = run_bsync(config)
        statuses = [r.status for r in sandbox.notion.requests]
        return {"bookings": n, "exit_code": result["exit_code"], "wall_s": result["wall_s"],
                "notion_requests": len(statuses), "notion_429s": statuses.count(429),
                "created": result["summary"]["created"], "errors": result["summary"]["errors"]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args()
    results = []
    startup = import_cpu_s()
    print(f"import cost of a bsync process: {startup:.2f} s CPU (subtracted in 'net')")
    for n in args.sizes:
        r = bench(n, startup)
        results.append(r)
        for phase in ("first_sync", "rerun_next_day", "rerun_after_10_edits"):
            p = r[phase]
            print(f"{n:>6} {phase:<16} wall {p['wall_s']:>7.2f}s  cpu {p['cpu_s']:>6.2f}s "
                  f"({p['cpu_ms_per_booking']:.3f} ms/booking, net {p['cpu_ms_per_booking_net']:.3f})  rss {p['peak_rss_mb']:>6.1f} MB  "
                  f"created {p['created']} updated {p['updated']}  requests {p['requests']}", flush=True)
    limited = bench_rate_limited()
    print(f"rate-limited Notion (3 req/s), {limited['bookings']} bookings: exit {limited['exit_code']}, "
          f"{limited['created']} created, {limited['errors']} errors, {limited['notion_requests']} Notion requests, "
          f"{limited['notion_429s']} answered 429, wall {limited['wall_s']} s")
    if args.json:
        args.json.write_text(json.dumps({"sizes": results, "rate_limited": limited}, indent=2))


if __name__ == "__main__":
    main()
