"""Benchmark: two-way Notion <-> CalDAV sync of 1,000 bookings against a real Radicale.

Phases: the first sync (every booking becomes an event), a no-change rerun the next day, and
one more (the contract: a no-change rerun costs at most 2 requests to the CalDAV server; the
first rerun also reads back what the first sync wrote, if the sync token it kept predates those
writes).  For each: the requests the CalDAV
server got, by method (counted by a DavProxy in front of Radicale, so nothing bsync sends is
missed), Notion's requests, wall seconds, CPU and peak RSS of the bsync process, which runs
as a child (the real CLI, :func:`sync_scale.run_bsync`).  Radicale runs as its own process:
its time is in the wall figure, not in bsync's CPU.

    .venv/bin/python bench/sync_caldav.py [--sizes 1000] [--json out.json]

Needs the test extras (``pip install '.[test]'``: Radicale).
Not named ``caldav.py``: a script's folder comes first on ``sys.path``, so that name would
hide the ``caldav`` client from bsync.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sync_scale import import_cpu_s, run_bsync, seed

from bsync import registry
from bsync.sandbox import Sandbox
from bsync.sandbox.caldav_servers import radicale_server, require, use_caldav
from bsync.sandbox.davproxy import DavProxy
from bsync.sandbox.seed import write_sandbox_config

CALENDAR = "caldav"
PHASES = ("first_sync", "rerun_next_day", "rerun_again")


def bench(n: int, startup_cpu: float) -> dict:
    with Sandbox() as sandbox, radicale_server() as server, DavProxy(server.url) as proxy, \
            tempfile.TemporaryDirectory() as folder:
        seed(sandbox, n)
        pairs = [registry.push_pair(CALENDAR), registry.pull_pair(CALENDAR)]
        config = write_sandbox_config(sandbox, Path(folder), sync={"pairs": pairs})
        use_caldav(config, proxy.proxied(server.new_calendar("bench")), server.username, server.password,
                   timeout_s=60)
        out: dict = {"bookings": n}
        for phase in PHASES:
            # The first run's write-backs are stamped a day earlier, as if it had been yesterday's
            # cron run (as in sync_scale.py): the rerun then has no page edited since.
            shift = timedelta(days=1) if phase == "first_sync" else timedelta(0)
            sandbox.notion.clock = lambda shift=shift: datetime.now(timezone.utc) - shift
            sandbox.clear_requests()
            proxy.clear_requests()
            result = run_bsync(config)
            summary = result.pop("summary")
            result.update(created=summary["created"], updated=summary["updated"], errors=summary["errors"],
                          caldav_requests=len(proxy.requests), caldav_by_method=proxy.counts_by_method(),
                          notion_requests=len(sandbox.notion.requests),
                          cpu_ms_per_booking_net=round(max(result["cpu_s"] - startup_cpu, 0) * 1000 / n, 3))
            out[phase] = result
        return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000])
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args()
    require("radicale")
    startup = import_cpu_s()
    print(f"import cost of a bsync process: {startup:.2f} s CPU (subtracted in 'net')")
    results = []
    for n in args.sizes:
        r = bench(n, startup)
        results.append(r)
        for phase in PHASES:
            p = r[phase]
            print(f"{n:>6} {phase:<15} wall {p['wall_s']:>7.2f}s  cpu {p['cpu_s']:>6.2f}s "
                  f"(net {p['cpu_ms_per_booking_net']:.3f} ms/booking)  rss {p['peak_rss_mb']:>6.1f} MB  "
                  f"created {p['created']} updated {p['updated']} errors {p['errors']}  "
                  f"CalDAV requests {p['caldav_requests']} {p['caldav_by_method']}  "
                  f"Notion requests {p['notion_requests']}", flush=True)
    if args.json:
        args.json.write_text(json.dumps({"sizes": results}, indent=2))


if __name__ == "__main__":
    main()
