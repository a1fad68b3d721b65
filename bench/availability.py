"""Benchmark: availability for 90 days across 3 calendars holding 5,000 busy intervals,
15-minute step.  Reports the slot computation time (the pure engine) and the requests the
whole question costs against the Google sandbox (target: 2 freeBusy requests: 90 days plus
3 days of padding, in pieces of at most 90 days as Google requires).

    .venv/bin/python bench/availability.py
"""

from __future__ import annotations

import random
import statistics
import tempfile
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from bsync.availability import slots
from bsync.availability.query import availability, rules_from
from bsync.config import load_config
from bsync.sandbox import Sandbox
from bsync.sandbox.seed import write_sandbox_config
from bsync.core.timeutil import parse_instant

TZ = ZoneInfo("Europe/Warsaw")
DAYS = 90
BUSY = 5000


CALENDARS = ["staff-a@group.calendar.google.com", "staff-b@group.calendar.google.com"]


def sandbox_calendars(sandbox: Sandbox) -> list[str]:
    """The sandbox's calendar and two staff calendars, as a salon would ask about them."""
    for cal in CALENDARS:
        sandbox.google.add_calendar(cal, time_zone="Europe/Warsaw")
    return [sandbox.google.calendar_id, *CALENDARS]


def ask(sandbox: Sandbox, folder: str, availability_toml: str, first: date, n_days: int,
        calendars: list[str]) -> tuple[Any, list[date], Any, float, dict, int]:
    """Configure bsync against the sandbox and ask for ``n_days`` from ``first``: returns the
    settings, the days, the answer, its wall seconds, Google requests and freeBusy calls."""
    config = write_sandbox_config(sandbox, Path(folder))
    with config.open("a") as f:
        f.write("\n[availability]\n" + availability_toml)
    settings = load_config(config)
    days = [first + timedelta(days=i) for i in range(n_days)]
    sandbox.clear_requests()
    started = time.perf_counter()
    result = availability(settings, days, calendars=calendars, now=datetime.now(timezone.utc))
    total = time.perf_counter() - started
    return settings, days, result, total, sandbox.google.counts_by_method(), sandbox.google.count("POST", "/freeBusy")


def main() -> None:
    rng = random.Random(42)
    first = date.today() + timedelta(days=1)
    with Sandbox() as sandbox, tempfile.TemporaryDirectory() as folder:
        calendars = sandbox_calendars(sandbox)
        for i in range(BUSY):
            day = first + timedelta(days=rng.randrange(DAYS))
            start = datetime(day.year, day.month, day.day, rng.randrange(0, 24), rng.choice((0, 15, 30, 45)), tzinfo=TZ)
            sandbox.google.insert_event(calendars[i % 3], {
                "summary": f"busy {i}", "start": {"dateTime": start.isoformat()},
                "end": {"dateTime": (start + timedelta(minutes=rng.choice((5, 10, 15, 20)))).isoformat()}})
        settings, days, result, total, google, freebusy_calls = ask(
            sandbox, folder, 'duration = 45\nstep = 15\nbuffer_after = 10\nmin_notice = "0"\nmax_advance = "120d"\n',
            first, DAYS, calendars)
        requests = {"google": google}
        now = datetime.now(timezone.utc)
        # the pure engine alone, on the same busy set
        from bsync.calendars.gcal import GoogleCalendarTarget

        busy = GoogleCalendarTarget.from_settings(settings).free_busy(calendars, datetime.combine(first, datetime.min.time(), TZ),
                                                     datetime.combine(days[-1] + timedelta(days=1), datetime.min.time(), TZ))
        rules = rules_from(settings)
        raw = [(parse_instant(e["start"]["dateTime"]), parse_instant(e["end"]["dateTime"]))
               for cal in calendars for e in sandbox.google.list_events(cal, include_deleted=False)]
        timings, raw_timings = [], []
        for _ in range(7):
            t0 = time.perf_counter()
            computed = slots.free_slots_between(rules, days[0], days[-1], busy, now)
            timings.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            slots.free_slots_between(rules, days[0], days[-1], raw, now)
            raw_timings.append(time.perf_counter() - t0)
        n_slots = sum(len(d["slots"]) for d in result["days"])
        print(f"{DAYS} days, 3 calendars, {len(busy)} busy intervals from freeBusy, 15-minute step: "
              f"{n_slots} free slots")
        print(f"slot computation (median of 7): {statistics.median(timings) * 1000:.1f} ms on freeBusy's merged "
              f"intervals, {statistics.median(raw_timings) * 1000:.1f} ms on the {len(raw)} raw events; "
              f"whole question incl. HTTP: {total * 1000:.0f} ms; requests: {requests} "
              f"({freebusy_calls} freeBusy calls, plus the OAuth refresh of a fresh token)")
        assert sum(len(c) for c in computed.values()) == n_slots


if __name__ == "__main__":
    main()
