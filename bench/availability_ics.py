"""Benchmark: availability over 120 days from `--busy FILE.ics` holding 200 recurring series
that never end (a collection export: one VCALENDAR, every-1-to-4-weeks and weekday series in two zones,
EXDATEs, RECURRENCE-ID overrides, a few all-day series), 15-minute step.  Reports the .ics
expansion time (the file is read and expanded within the window only), the whole question,
and the occurrences and free slots it found.  No provider is involved.

    PYTHONPATH=src .venv/bin/python bench/availability_ics.py
"""

from __future__ import annotations

import random
import resource
import statistics
import tempfile
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

from bsync.availability.query import availability, read_busy_file
from bsync.config import load_config

TZ = ZoneInfo("Europe/Warsaw")
DAYS = 120
SERIES = 200
ALL_DAY = 10  # of the SERIES, whole-day ones (a weekday off every other week)


def series_ics(rng: random.Random, first: date) -> str:
    """SERIES recurring VEVENTs begun a year before ``first``, none with COUNT or UNTIL."""
    begin = first - timedelta(days=364)
    events = []
    for i in range(SERIES):
        uid = f"series-{i}@bench"
        if i < ALL_DAY:
            day = begin + timedelta(days=i % 5)
            events.append([f"UID:{uid}", f"DTSTART;VALUE=DATE:{day:%Y%m%d}",
                           f"DTEND;VALUE=DATE:{day + timedelta(days=1):%Y%m%d}", "RRULE:FREQ=WEEKLY;INTERVAL=2"])
            continue
        zone = "America/New_York" if i % 5 == 0 else "Europe/Warsaw"
        start = datetime(begin.year, begin.month, begin.day, rng.randrange(7, 18), rng.choice((0, 15, 30, 45)))
        end = start + timedelta(minutes=rng.choice((15, 30, 45, 60)))
        rule = "RRULE:FREQ=DAILY;BYDAY=MO,TU,WE,TH,FR" if i % 20 == 0 else \
            f"RRULE:FREQ=WEEKLY;INTERVAL={rng.randrange(1, 5)};BYDAY={rng.choice(('MO', 'TU', 'WE', 'TH', 'FR'))}"
        lines = [f"UID:{uid}", f"DTSTART;TZID={zone}:{start:%Y%m%dT%H%M%S}",
                 f"DTEND;TZID={zone}:{end:%Y%m%dT%H%M%S}", rule]
        skipped = [start + timedelta(days=364 + 7 * rng.randrange(DAYS // 7)) for _ in range(3)]
        lines += [f"EXDATE;TZID={zone}:{s:%Y%m%dT%H%M%S}" for s in skipped]
        events.append(lines)
        moved = start + timedelta(days=364 + 7 * rng.randrange(DAYS // 7))
        events.append([f"UID:{uid}", f"RECURRENCE-ID;TZID={zone}:{moved:%Y%m%dT%H%M%S}",
                       f"DTSTART;TZID={zone}:{moved + timedelta(hours=2):%Y%m%dT%H%M%S}",
                       f"DTEND;TZID={zone}:{moved + timedelta(hours=2) + (end - start):%Y%m%dT%H%M%S}"])
    body = "".join("BEGIN:VEVENT\r\nDTSTAMP:20260101T000000Z\r\n" + "".join(f"{line}\r\n" for line in lines)
                   + "END:VEVENT\r\n" for lines in events)
    return "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//bsync bench//EN\r\n" + body + "END:VCALENDAR\r\n"


def main() -> None:
    rng = random.Random(42)
    first = date.today() + timedelta(days=1)
    days = [first + timedelta(days=i) for i in range(DAYS)]
    with tempfile.TemporaryDirectory() as folder:
        ics = Path(folder) / "busy.ics"
        ics.write_text(series_ics(rng, first))
        config = Path(folder) / "bsync.toml"
        config.write_text('timezone = "Europe/Warsaw"\nstate_path = "state.db"\n\n[availability]\nduration = 45\n'
                          'step = 15\nbuffer_after = 10\nmin_notice = "0"\nmax_advance = "130d"\n')
        settings = load_config(config)
        window = (datetime.combine(first - timedelta(days=1), datetime.min.time(), TZ),
                  datetime.combine(days[-1] + timedelta(days=2), datetime.min.time(), TZ))
        now = datetime.now(timezone.utc)
        expand, whole = [], []
        for _ in range(5):
            t0 = time.perf_counter()
            busy = read_busy_file(ics, TZ, window)
            expand.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            result = availability(settings, days, busy_file=ics, now=now)
            whole.append(time.perf_counter() - t0)
        n_slots = sum(len(d["slots"]) for d in result["days"])
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"{DAYS} days from {first}, {SERIES} never-ending series ({ics.stat().st_size // 1024} KiB .ics): "
              f"{len(busy)} busy occurrences in the window, {n_slots} free slots (45 min, 15-minute step)")
        print(f".ics read + expansion (median of 5): {statistics.median(expand) * 1000:.0f} ms; "
              f"whole question: {statistics.median(whole) * 1000:.0f} ms; peak RSS {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
