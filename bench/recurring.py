"""Benchmark: availability over 120 days when the calendars hold 200 recurring series
(staff lunches every weekday, weekly blocks, some with exceptions), answered by the Google
sandbox's freeBusy, which expands every occurrence.  Reports requests, busy intervals, free
slots and wall time, and checks that no free slot overlaps an occurrence.

    .venv/bin/python bench/recurring.py
"""

from __future__ import annotations

import random
import tempfile
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from availability import ask, sandbox_calendars

from bsync.sandbox import Sandbox
from bsync.core.timeutil import parse_instant

TZ = ZoneInfo("Europe/Warsaw")
DAYS = 120
SERIES = 200
WEEKDAYS = ("MO", "TU", "WE", "TH", "FR")


def series_body(i: int, rng: random.Random, first: date) -> dict:
    """A series that began before the asked range: weekday lunches, or a weekly block."""
    began = first - timedelta(days=rng.randrange(1, 60))
    hour = rng.randrange(8, 18)
    length = rng.choice((30, 60, 90))
    start = datetime(began.year, began.month, began.day, hour, rng.choice((0, 15, 30, 45)))
    rules = (["RRULE:FREQ=WEEKLY;BYDAY=" + ",".join(WEEKDAYS)] if i % 2 else
             [f"RRULE:FREQ=WEEKLY;BYDAY={rng.choice(WEEKDAYS)}"])
    if i % 5 == 0:  # a day off: one occurrence removed
        rules.append(f"EXDATE;TZID=Europe/Warsaw:{(start + timedelta(days=70)):%Y%m%dT%H%M%S}")
    return {"summary": f"series {i}", "recurrence": rules,
            "start": {"dateTime": start.isoformat(), "timeZone": "Europe/Warsaw"},
            "end": {"dateTime": (start + timedelta(minutes=length)).isoformat(), "timeZone": "Europe/Warsaw"}}


def main() -> None:
    rng = random.Random(42)
    first = date.today() + timedelta(days=1)
    with Sandbox() as sandbox, tempfile.TemporaryDirectory() as folder:
        calendars = sandbox_calendars(sandbox)
        for i in range(SERIES):
            sandbox.google.insert_event(calendars[i % 3], series_body(i, rng, first))
        settings, days, result, total, requests, freebusy = ask(
            sandbox, folder, 'duration = 30\nstep = 15\nmin_notice = "0"\nmax_advance = "130d"\n',
            first, DAYS, calendars)

        from bsync.calendars.gcal import GoogleCalendarTarget

        lo = datetime.combine(first, datetime.min.time(), TZ)
        hi = datetime.combine(days[-1] + timedelta(days=1), datetime.min.time(), TZ)
        busy = GoogleCalendarTarget.from_settings(settings).free_busy(calendars, lo, hi)
        free = [(parse_instant(s["start"]), parse_instant(s["end"])) for d in result["days"] for s in d["slots"]]
        clashes = sum(1 for fs, fe in free for bs, be in busy if fs < be and bs < fe)
        print(f"{DAYS} days, 3 calendars, {SERIES} recurring series: {len(busy)} busy intervals after "
              f"freeBusy's merge, {len(free)} free 30-minute slots, {clashes} overlapping an occurrence")
        print(f"whole question incl. HTTP: {total * 1000:.0f} ms; requests: {requests} "
              f"({freebusy} freeBusy calls, one per piece of at most 90 days, plus the OAuth refresh of a fresh token)")
        assert clashes == 0


if __name__ == "__main__":
    main()
