"""Benchmark: the trash window and the history horizon (issue 12, sections 3 and 4).

(a) A no-change rerun with the trash window on, at 10,000 bookings of which 2,000 start
    within the next 14 days: requests per API (bound: 2 + ⌈upcoming/100⌉) and wall time;
    then a rerun after 3 of those upcoming pages were trashed (each confirmed with a GET).
    The rerun right after the first sync is reported apart: Google's sync token returns the
    10,000 events that sync made (4 list pages of 2,500), once.
(b) A first sync of a 10,000-booking database spread over two years (most in the past) with
    the default horizon (30 days), and the same with ``history = "all"``: requests per API,
    wall time, and the minutes those Notion requests take at Notion's 3 requests/s.

bsync runs as its own process (the real CLI), as in bench/sync_scale.py, whose helpers this
reuses; the sandbox counts requests (a Google batch counts once).

    .venv/bin/python bench/horizon.py [--bookings 10000] [--upcoming 2000] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sync_scale import TZ, by_method, import_cpu_s, run_bsync

from bsync.sandbox import Sandbox
from bsync.sandbox.seed import booking_properties, write_sandbox_config

NOTION_RATE = 3.0  # Notion's documented average, requests per second


def seed_starts(sandbox: Sandbox, starts: list[datetime]) -> list[str]:
    """One 45-minute booking page per start; returns the page ids."""
    ids = []
    for i, start in enumerate(starts):
        ids.append(sandbox.notion.create_page(booking_properties(
            f"Booking {i}", start=start, end=start + timedelta(minutes=45), customer=f"Customer {i}",
            email=f"c{i}@example.com", service="Bath", time_zone="Europe/Warsaw"))["id"])
    return ids


def spread(first: datetime, last: datetime, n: int) -> list[datetime]:
    """n starts evenly spaced from ``first`` to ``last``, on the minute, in the business timezone.

    Spaced in UTC: wall-clock arithmetic would land some in a DST gap (a time that doesn't
    exist), which bsync rightly refuses as a bad record.
    """
    first_utc = first.astimezone(timezone.utc)
    step = (last - first) / max(n - 1, 1)
    return [(first_utc + step * i).replace(second=0, microsecond=0).astimezone(TZ) for i in range(n)]


def measured(sandbox: Sandbox, config: Path, *command: str) -> dict:
    """One bsync run: its summary counts, wall time, peak RSS, and requests per API."""
    sandbox.clear_requests()
    result = run_bsync(config, *command)
    summary = result.pop("summary")
    requests = by_method(sandbox)
    notion_total = sum(requests["notion"].values())
    return {**{k: summary.get(k) for k in ("created", "updated", "deleted", "errors")}, **result,
            "requests": requests, "notion_requests": notion_total,
            "google_requests": sum(requests["google"].values()),
            "notion_minutes_at_3_per_s": round(notion_total / NOTION_RATE / 60, 1)}


def yesterdays_run(sandbox: Sandbox) -> None:
    """Stamp the next run's write-backs a day earlier, as if it had been yesterday's cron run
    (a rerun minutes after a big sync re-reads the pages it wrote back, one query per 100)."""
    sandbox.notion.clock = lambda: datetime.now(timezone.utc) - timedelta(days=1)


def today(sandbox: Sandbox) -> None:
    sandbox.notion.clock = lambda: datetime.now(timezone.utc)


def bench_trash_window(n: int, upcoming: int) -> dict:
    now = datetime.now(TZ)
    soon = spread(now + timedelta(hours=1), now + timedelta(days=13, hours=20), upcoming)
    later = spread(now + timedelta(days=16), now + timedelta(days=16 + 365), n - upcoming)
    with Sandbox() as sandbox, tempfile.TemporaryDirectory() as folder:
        ids = seed_starts(sandbox, soon + later)
        config = write_sandbox_config(sandbox, Path(folder))
        yesterdays_run(sandbox)
        first = measured(sandbox, config)
        today(sandbox)
        settling = measured(sandbox, config)  # Google's sync token hands back the events just made
        rerun = measured(sandbox, config)
        for page in ids[:3]:
            sandbox.notion.update_page(page, in_trash=True)
        trashed = measured(sandbox, config)
        return {"bookings": n, "upcoming": upcoming, "first_sync": first, "settling_rerun": settling,
                "no_change_rerun": rerun,
                "bound": 2 + math.ceil(upcoming / 100), "rerun_after_3_trashed": trashed}


def bench_first_sync(n: int, history: str) -> dict:
    now = datetime.now(TZ)
    starts = spread(now - timedelta(days=700), now + timedelta(days=30), n)
    with Sandbox() as sandbox, tempfile.TemporaryDirectory() as folder:
        seed_starts(sandbox, starts)
        config = write_sandbox_config(sandbox, Path(folder), sync={"history": history})
        plan_started = time.perf_counter()
        plan = run_bsync(config, "sync", "--plan")["summary"]
        plan_s = time.perf_counter() - plan_started
        first = measured(sandbox, config)
        first["plan_outside_horizon"] = plan.get("outside_horizon", 0)
        first["plan_wall_s"] = round(plan_s, 2)
        return {"bookings": n, "history": history, "first_sync": first}


def line(name: str, r: dict) -> str:
    return (f"{name:<28} wall {r['wall_s']:>7.2f}s  rss {r['peak_rss_mb']:>6.1f} MB  created {r['created']} "
            f"deleted {r['deleted']} errors {r['errors']}  notion {r['notion_requests']} "
            f"({r['notion_minutes_at_3_per_s']} min at 3/s)  google {r['google_requests']}  {r['requests']}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bookings", type=int, default=10000)
    parser.add_argument("--upcoming", type=int, default=2000)
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args()
    startup = import_cpu_s()
    print(f"import cost of a bsync process: {startup:.2f} s CPU")
    window = bench_trash_window(args.bookings, args.upcoming)
    print(f"(a) trash window: {args.bookings} bookings, {args.upcoming} upcoming within 14 days "
          f"(bound {window['bound']} requests)")
    for phase in ("first_sync", "settling_rerun", "no_change_rerun", "rerun_after_3_trashed"):
        print("  " + line(phase, window[phase]), flush=True)
    horizons = [bench_first_sync(args.bookings, history) for history in ("30d", "all")]
    print(f"(b) first sync of {args.bookings} bookings over two years")
    for h in horizons:
        r = h["first_sync"]
        print("  " + line(f"history={h['history']}", r) + f"  --plan: {r['plan_outside_horizon']} outside the "
              f"horizon, {r['plan_wall_s']} s", flush=True)
    if args.json:
        args.json.write_text(json.dumps({"trash_window": window, "first_sync": horizons}, indent=2))


if __name__ == "__main__":
    main()
