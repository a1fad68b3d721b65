"""Benchmark: notion-to-gcal at 1,000 and 10,000 bookings against the sandbox.

For the first sync and for a no-change rerun it reports HTTP requests by method (counted
by the sandbox), wall seconds, peak RSS and CPU ms per booking of the bsync process.
bsync runs as a separate process (the real console script), so its CPU and memory are
measured apart from the sandbox's.

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
from datetime import datetime, timedelta
from pathlib import Path
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


def run_bsync(config: Path) -> dict:
    """Run `bsync sync --json` as a child; return its summary, wall time, CPU and peak RSS."""
    exe = Path(sys.executable).with_name("bsync")
    started = time.perf_counter()
    proc = subprocess.Popen([str(exe), "sync", "--json", "--config", str(config)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out = proc.stdout.read()
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode not in (0, 1):
        raise SystemExit(f"bsync failed ({proc.returncode}): {err.decode()[-2000:]}")
    return {"summary": json.loads(out), "wall_s": round(wall, 2),
            "cpu_s": round(usage.ru_utime + usage.ru_stime, 2), "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
            "exit_code": proc.returncode}


def import_cpu_s() -> float:
    """CPU seconds a bsync process spends importing its modules (best of 3), to report net figures."""
    best = float("inf")
    for _ in range(3):
        proc = subprocess.Popen([sys.executable, "-c", "import bsync.cli, bsync.sync"])
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
        for phase in ("first_sync", "rerun_no_change"):
            sandbox.clear_requests()
            result = run_bsync(config)
            result["requests"] = by_method(sandbox)
            result["cpu_ms_per_booking"] = round(result["cpu_s"] * 1000 / n, 3)
            result["cpu_ms_per_booking_net"] = round(max(result["cpu_s"] - startup_cpu, 0) * 1000 / n, 3)
            s = result.pop("summary")
            result["created"], result["updated"], result["errors"] = s["created"], s["updated"], s["errors"]
            out[phase] = result
        return out


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
        for phase in ("first_sync", "rerun_no_change"):
            p = r[phase]
            print(f"{n:>6} {phase:<16} wall {p['wall_s']:>7.2f}s  cpu {p['cpu_s']:>6.2f}s "
                  f"({p['cpu_ms_per_booking']:.3f} ms/booking, net {p['cpu_ms_per_booking_net']:.3f})  rss {p['peak_rss_mb']:>6.1f} MB  "
                  f"created {p['created']} updated {p['updated']}  requests {p['requests']}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
