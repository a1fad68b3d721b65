"""Benchmark: notices and reminders at 1,000 and 5,000 bookings.

Per size: the first sync (the notices pass records every existing booking as a baseline,
sending nothing); a `bsync remind` pass at a time when about a seventh of the bookings
have a reminder due (email + SMS); the same pass again (nothing may be sent twice); and a
sync after 50 new bookings (50 confirmations).  For each: requests per API (counted by
the sandboxes), messages sent, wall seconds, CPU and peak RSS of the bsync process.

    .venv/bin/python bench/notify.py [--sizes 1000 5000] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from datetime import datetime, timedelta
from pathlib import Path

from sync_scale import TZ, import_cpu_s, run_bsync

from bsync.sandbox import Sandbox
from bsync.sandbox.seed import booking_properties, write_sandbox_config

START = datetime.now(TZ).replace(hour=9, minute=0, second=0, microsecond=0) + timedelta(days=1)


def seed(sandbox: Sandbox, n: int, offset: int = 0) -> None:
    """n bookings over the next 7 days, 09:00-17:00, every customer with email and phone."""
    per_day = max(1, n // 7)
    for j in range(n):
        i = j + offset
        start = START + timedelta(days=(i // per_day) % 7, minutes=(i % per_day) * 480 // per_day)
        sandbox.notion.create_page(booking_properties(
            f"Booking {i}", start=start, end=start + timedelta(minutes=30), customer=f"Customer {i}",
            email=f"c{i}@example.com", phone=f"+4860{i:07d}", service="Bath",
            staff=("Anna", "Ben", "Chloe")[i % 3], time_zone="Europe/Warsaw"))


def requests(sandbox: Sandbox) -> dict[str, dict[str, int]]:
    return {s.name: s.counts_by_method() for s in sandbox.servers if s.counts_by_method()}


def phase(sandbox: Sandbox, config: Path, *command: str) -> dict:
    sandbox.clear_requests()
    mails, texts = len(sandbox.sendgrid.messages), len(sandbox.twilio.messages)
    result = run_bsync(config, *command)
    result["requests"] = requests(sandbox)
    result["emails_sent"] = len(sandbox.sendgrid.messages) - mails
    result["sms_sent"] = len(sandbox.twilio.messages) - texts
    return result


def bench(n: int) -> dict:
    with Sandbox() as sandbox, tempfile.TemporaryDirectory() as folder:
        seed(sandbox, n)
        config = write_sandbox_config(sandbox, Path(folder), notify=True,
                                      reminders={"quiet_hours": "", "channels": ["email", "sms"]})
        out = {"bookings": n, "first_sync": phase(sandbox, config, "sync")}
        # The day before the first day's bookings: their 24h reminders are due.
        due_at = (START - timedelta(hours=24) + timedelta(hours=8)).isoformat()
        out["remind"] = phase(sandbox, config, "remind", "--now", due_at, "--window", "15m")
        out["remind_again"] = phase(sandbox, config, "remind", "--now", due_at, "--window", "15m")
        seed(sandbox, 50, offset=n)
        out["sync_50_new"] = phase(sandbox, config, "sync")
        return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results = {"import_cpu_s": round(import_cpu_s(), 2), "runs": [bench(n) for n in args.sizes]}
    for run in results["runs"]:
        print(f"\n== {run['bookings']} bookings ==")
        for name in ("first_sync", "remind", "remind_again", "sync_50_new"):
            r = run[name]
            print(f"{name:>13}: {r['wall_s']:6.2f} s wall, {r['cpu_s']:5.2f} s CPU, {r['peak_rss_mb']:6.1f} MB RSS, "
                  f"exit {r['exit_code']}, {r['emails_sent']} emails, {r['sms_sent']} SMS, requests {r['requests']}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
