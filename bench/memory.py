"""Benchmark: peak memory of the full reads, `bsync sync --full` (a rerun where nothing
changed) and `bsync reconcile`, at 100,000 bookings by default.

The state is built once: the bookings are seeded straight into the Notion emulator's
store and a first sync creates the events and links (stamped a day earlier, as if it had
been yesterday's run).  Then each measured command runs as a separate process (the real
console script, see :func:`sync_scale.run_bsync`), so its peak RSS (VmHWM), wall time and
CPU are its own; the emulators run in this process and don't count.  Requests are counted
by the sandbox (a batch request counts once).

    .venv/bin/python bench/memory.py [--sizes 20000 100000] [--json out.json]

Measured (2 shared cores, Python 3.11; peak RSS of the bsync process, wall, CPU):

    bookings  command          before (c23fbcf)            after (i12-memory)
    100,000   sync --full      790 MB  44 s  21.8 s CPU    386 MB  30 s  21.2 s CPU
    100,000   reconcile        858 MB  55 s  18.5 s CPU    349 MB  28 s  18.8 s CPU
     20,000   sync --full      216 MB                      145 MB
     20,000   reconcile        227 MB                      141 MB

Requests are unchanged: at 100,000, 1,002 to Notion (2 GET + 1,000 queries of 100 pages)
and 40 to Google (event list pages of 2,500).  Still over the 250 MB aim: what is left is
one Booking (~0.9 KB) and one event item (~1.2 KB, its description and comparable fields)
per booking, held because the planner joins both sides, plus the interpreter and clients
(~70 MB) and one 2,500-event list page in flight (~20 MB).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sync_scale import by_method, run_bsync, seed  # noqa: E402

from bsync.sandbox import Sandbox  # noqa: E402
from bsync.sandbox.seed import write_sandbox_config  # noqa: E402

AIM_MB = 250
COMMANDS = {"sync_full_rerun": ("sync", "--full"), "reconcile": ("reconcile",)}


def measure(sandbox: Sandbox, config: Path, command: tuple[str, ...]) -> dict:
    """One bsync command's wall, CPU, peak RSS and requests (by service and method)."""
    sandbox.clear_requests()
    result = run_bsync(config, *command)
    result["requests"] = by_method(sandbox)
    summary = result.pop("summary")
    if command[0] == "sync":
        result["created"], result["updated"], result["errors"] = (summary["created"], summary["updated"],
                                                                  summary["errors"])
    else:
        result["drift"] = len(summary.get("drift") or [])
    return result


def bench(n: int) -> dict:
    with Sandbox() as sandbox, tempfile.TemporaryDirectory() as folder:
        t0 = time.perf_counter()
        seed(sandbox, n)
        out: dict = {"bookings": n, "seed_s": round(time.perf_counter() - t0, 1)}
        config = write_sandbox_config(sandbox, Path(folder))
        sandbox.notion.clock = lambda: datetime.now(timezone.utc) - timedelta(days=1)
        out["first_sync"] = measure(sandbox, config, ("sync",))
        sandbox.notion.clock = lambda: datetime.now(timezone.utc)
        for name, command in COMMANDS.items():
            out[name] = measure(sandbox, config, command)
        return out


def report_line(n: int, name: str, r: dict) -> str:
    extra = (f"created {r['created']} updated {r['updated']} errors {r['errors']}" if "created" in r
             else f"drift {r['drift']}")
    mark = "" if name == "first_sync" or r["peak_rss_mb"] < AIM_MB else f"  (over the {AIM_MB} MB aim)"
    return (f"{n:>7} {name:<16} rss {r['peak_rss_mb']:>6.1f} MB{mark}  wall {r['wall_s']:>7.2f}s  "
            f"cpu {r['cpu_s']:>7.2f}s  exit {r['exit_code']}  {extra}  requests {r['requests']}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000])
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args()
    results = []
    for n in args.sizes:
        r = bench(n)
        results.append(r)
        print(f"{n:>7} seeded in {r['seed_s']} s", flush=True)
        for name in ("first_sync", *COMMANDS):
            print(report_line(n, name, r[name]), flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
