"""Free slots: working hours and rules from ``[availability]``, busy time from the calendar
backends' ``free_busy`` (Google's freeBusy: one request per 90 days and 50 calendars;
CalDAV's free-busy REPORT or its expanded events) plus what bsync knows locally.

Which calendars count (``--calendar``, ``[availability] calendars``) is said in one of two
ways, mixed freely: a registered backend's name (``gcal``, ``caldav``) asks that backend for
its own configured calendar; anything else is a calendar id of the backend bsync syncs with
(the first in ``[sync] pairs``), as Google calendar ids always were.

Local knowledge matters: a booking made in Notion or on a platform a minute ago may not be
on the calendar yet, but it is busy; a cancelled one is not.  The slot arithmetic itself
is the pure :mod:`bsync.availability.slots`.
"""

from __future__ import annotations

import json
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any, Iterable
from zoneinfo import ZoneInfo

from bsync import registry
from bsync.availability import slots
from bsync.calendars.base import CalendarBackend
from bsync.config import WEEKDAYS, Settings
from bsync.errors import UsageError
from bsync.core.model import Status, parse_when
from bsync.core.store import Store
from bsync.core.timeutil import DAY_EXAMPLES, parse_day, parse_duration, parse_instant

Interval = tuple[datetime, datetime]


def rules_from(settings: Settings, *, duration: int | None = None, step: int | None = None) -> Any:
    """The slot rules of ``[availability]``, with CLI/HTTP overrides; UsageError on bad values."""
    a = settings.availability
    minutes = duration if duration is not None else a.duration
    if minutes <= 0 or minutes > 24 * 60:
        raise UsageError(f"duration must be 1 to 1440 minutes, got {minutes}")
    step_minutes = step if step is not None else a.step
    if step_minutes is not None and step_minutes <= 0:
        raise UsageError(f"step must be a positive number of minutes, got {step_minutes}")
    try:
        hours = {WEEKDAYS.index(day): slots.parse_ranges(ranges) for day, ranges in a.hours.items()}
        overrides = {date.fromisoformat(day): slots.parse_ranges(ranges) for day, ranges in a.overrides.items()}
        return slots.Rules(
            timezone=settings.timezone, hours=hours, overrides=overrides, duration=timedelta(minutes=minutes),
            step=timedelta(minutes=step_minutes) if step_minutes else None,
            buffer_before=timedelta(minutes=a.buffer_before), buffer_after=timedelta(minutes=a.buffer_after),
            min_notice=parse_duration(a.min_notice), max_advance=parse_duration(a.max_advance))
    except ValueError as exc:
        raise UsageError(f"[availability]: {exc}") from None


def asked_calendars(settings: Settings, calendars: list[str] | None = None) -> dict[str, list[str | None]]:
    """Backend name -> the calendars to ask it for, in the order given; None stands for the
    backend's own configured calendar (its ``scope``).  Without ``calendars`` or
    ``[availability] calendars``, the synced backend's own calendar."""
    synced = registry.synced_calendar(settings.sync.pairs)
    asked: dict[str, list[str | None]] = {}
    for item in calendars or settings.availability.calendars or [synced]:
        if item in registry.CALENDARS:
            asked.setdefault(item, []).append(None)
        else:
            asked.setdefault(synced, []).append(item)
    return asked


def calendar_busy(settings: Settings, start: datetime, end: datetime,
                  calendars: list[str] | None = None) -> list[Interval]:
    """Busy intervals in [start, end) of every calendar asked (see :func:`asked_calendars`),
    one backend at a time; a backend without its config section is a ConfigError naming it,
    and a calendar a backend can't answer is its error, never free time."""
    busy: list[Interval] = []
    for name, wanted in asked_calendars(settings, calendars).items():
        entry = registry.CALENDARS[name]
        settings.require(entry.section)
        backend: CalendarBackend = registry.build(entry, settings)
        try:
            ids = list(dict.fromkeys(backend.scope if item is None else item for item in wanted))
            busy += backend.free_busy(ids, start, end)
        finally:
            backend.close()
    return busy


def local_busy(store: Store, zone: ZoneInfo) -> list[Interval]:
    """Scheduled bookings bsync knows (ledger bookings synced to any calendar, platform
    bookings); cancelled ones are free."""
    busy: list[Interval] = []
    for pair in (registry.link_pair(calendar) for calendar in registry.CALENDARS):
        for link in store.links(pair).values():
            snap = link.snapshot
            if link.tombstone or not snap or snap.get("cancelled"):
                continue
            start, _ = parse_when(snap["start"], zone)
            end, _ = parse_when(snap["end"], zone)
            busy.append((start, end))
    for source in registry.PLATFORMS:
        for booking in store.load_bookings(source):
            if booking.status in (Status.SCHEDULED, Status.IN_PROGRESS):
                busy.append((booking.start, booking.end))
    return busy


def read_busy_file(path: Path, zone: ZoneInfo, window: Interval) -> list[Interval]:
    """A JSON list of {"start", "end"} (ISO 8601 with offsets) or an .ics file; UsageError if unreadable.

    An .ics file's events are expanded within ``window`` only, so a series that never ends
    costs no more than the days asked for.
    """
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise UsageError(f"--busy {path}: cannot read it ({exc.strerror})") from None
    if Path(path).suffix.lower() == ".ics" or raw.lstrip().startswith(b"BEGIN:VCALENDAR"):
        return _busy_from_ics(raw, path, zone, window)
    try:
        items = json.loads(raw)
        if not isinstance(items, list):
            raise ValueError("expected a JSON list of {start, end}")
        out = []
        for i, item in enumerate(items):
            start, end = parse_instant(item["start"]), parse_instant(item["end"])
            if end < start:
                raise ValueError(f"item {i}: end before start")
            out.append((start, end))
        return out
    except (ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"--busy {path}: {exc}") from None


def _busy_from_ics(raw: bytes, path: Path, zone: ZoneInfo, window: Interval) -> list[Interval]:
    """Every busy occurrence within ``window`` of every VCALENDAR in the file.

    Recurrence (RRULE, RDATE, EXDATE, RECURRENCE-ID overrides, DST through TZID/VTIMEZONE) is
    expanded by ``recurring-ical-events``; this only decides what an occurrence blocks.  A
    file concatenated from several calendars (``cat *.ics``) holds several VCALENDARs; each
    keeps its own VTIMEZONEs.
    """
    import icalendar

    try:
        calendars = icalendar.Calendar.from_ical(raw, multiple=True)
    except ValueError as exc:
        raise UsageError(f"--busy {path}: not a valid iCalendar file ({exc}); "
                         "export the calendar again or give a JSON list of {start, end}") from None
    if not calendars:
        raise UsageError(f"--busy {path}: no VCALENDAR in it; export the calendar again")
    out: list[Interval] = []
    for calendar in calendars:
        for occurrence in _occurrences(calendar, raw, path, window):
            interval = _busy_interval(occurrence, zone)
            if interval is not None:
                out.append(interval)
    return out


def _occurrences(calendar: Any, raw: bytes, path: Path, window: Interval) -> list[Any]:
    """The VEVENT occurrences of one VCALENDAR overlapping ``window``; a broken event is a
    UsageError naming its UID, since skipping it would show its time as free."""
    import recurring_ical_events

    try:
        return list(recurring_ical_events.of(calendar).between(*window))
    except Exception as exc:  # noqa: BLE001 - only the file's content can fail here; see _expansion_failure
        reason = _expansion_failure(exc)
        uid = _first_bad_uid(calendar, window)
        where = f"event {uid}{_line_of(raw, uid)}: " if uid else ""
        raise UsageError(f"--busy {path}: {where}{reason}; fix or remove that event") from None


def _first_bad_uid(calendar: Any, window: Interval) -> str | None:
    """Which series made the expansion fail: each UID is expanded alone (with the calendar's
    VTIMEZONEs).  Only run once something failed, so its cost does not matter."""
    import icalendar
    import recurring_ical_events

    zones = calendar.walk("VTIMEZONE")
    series: dict[str, list[Any]] = {}
    for event in calendar.walk("VEVENT"):
        series.setdefault(str(event.get("UID", "")), []).append(event)
    for uid, events in series.items():
        alone = icalendar.Calendar()
        for component in zones + events:
            alone.add_component(component)
        try:
            recurring_ical_events.of(alone).between(*window)
        except Exception:  # noqa: BLE001 - the same failures as in _occurrences
            return uid or "(without UID)"
    return None


def _expansion_failure(exc: Exception) -> str:
    """Why expanding failed, in words.  The library reports bad content as ValueError
    (InvalidCalendar, BadRuleStringFormat), a missing DTSTART as KeyError, and some rules
    dateutil cannot expand (e.g. BYDAY=9MO) as IndexError; all are the file's fault."""
    if isinstance(exc, KeyError):
        return f"missing {exc.args[0]}"
    if isinstance(exc, ValueError) and str(exc):
        return str(exc)
    return f"cannot expand its recurrence ({type(exc).__name__}: {exc})"


def _line_of(raw: bytes, uid: str) -> str:
    """' (line N)' for the line holding ``UID:uid``, so an editor can jump to it; '' if not found."""
    for number, line in enumerate(raw.splitlines(), 1):
        if line.strip() == b"UID:" + uid.encode():
            return f" (line {number})"
    return ""


def _busy_interval(occurrence: Any, zone: ZoneInfo) -> Interval | None:
    """What one occurrence blocks: None if it is free (TRANSP:TRANSPARENT, STATUS:CANCELLED).

    Floating times (no TZID, no Z) are in the business timezone, and so is a TZID that is
    neither an IANA or Windows zone name nor defined by a VTIMEZONE (icalendar reads it as
    floating); an all-day occurrence blocks whole local days there, DTEND being exclusive.
    """
    if str(occurrence.get("STATUS", "")).upper() == "CANCELLED":
        return None
    if str(occurrence.get("TRANSP", "")).upper() == "TRANSPARENT":
        return None
    start, end = occurrence.decoded("DTSTART"), occurrence.decoded("DTEND")
    if isinstance(start, datetime):
        end = end if isinstance(end, datetime) else start
        return (start if start.tzinfo else start.replace(tzinfo=zone), end if end.tzinfo else end.replace(tzinfo=zone))
    last = end if isinstance(end, date) and not isinstance(end, datetime) and end > start else start + timedelta(days=1)
    return slots.busy_from_all_day(start, zone)[0], slots.busy_from_all_day(last, zone)[0]


def check_dates(settings: Settings, dates: list[date], now: datetime) -> None:
    """Refuse ranges the rules can never answer (beyond max_advance), with a precise message."""
    horizon = (now + parse_duration(settings.availability.max_advance)).astimezone(settings.tz).date()
    late = [d for d in dates if d > horizon]
    if late:
        raise UsageError(f"{late[0]} is beyond max_advance ({settings.availability.max_advance}, i.e. after {horizon})")


def requested_days(dates: Iterable[str], to: str | None, today: date) -> list[date]:
    """The days ``--date`` (repeatable) and ``--to`` ask for, as dates.

    Words (today, tomorrow, weekdays) are read relative to ``today`` in the business time
    zone; a weekday given to ``--to`` is the first such day on or after ``--date``.  A bad
    value is a UsageError naming its option with examples.
    """
    days = [_day_option("--date", text, today) for text in dates]
    if to is None:
        return days
    if len(days) != 1:
        raise UsageError("--to goes with a single --date")
    return expand(days[0], _day_option("--to", to, today, weekday_from=days[0]))


def _day_option(option: str, text: str, today: date, *, weekday_from: date | None = None) -> date:
    try:
        return parse_day(text, today, weekday_from=weekday_from)
    except ValueError:
        raise UsageError(f"{option} {text!r}: give {DAY_EXAMPLES} (e.g. {option} tomorrow, "
                         f"{option} fri, {option} {today + timedelta(days=1)})") from None


def expand(first: date, last: date | None) -> list[date]:
    if last is None:
        return [first]
    if last < first:
        raise UsageError(f"--to {last} is before --date {first}")
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def availability(settings: Settings, dates: Iterable[date], *, duration: int | None = None, step: int | None = None,
                 calendars: list[str] | None = None, busy_file: Path | None = None,
                 now: datetime | None = None, store: Store | None = None) -> dict[str, Any]:
    """The SPEC §3 JSON: every requested day, in order, with its free slots (local offsets).

    ``calendars``: backend names and/or calendar ids (see :func:`asked_calendars`)."""
    days = sorted(set(dates))
    if not days:
        raise UsageError("give at least one --date")
    now = now or datetime.now(timezone.utc)
    rules = rules_from(settings, duration=duration, step=step)
    check_dates(settings, days, now)
    zone = settings.tz
    start = datetime.combine(days[0] - timedelta(days=1), time(0), zone)
    end = datetime.combine(days[-1] + timedelta(days=2), time(0), zone)
    busy: list[Interval] = []
    if busy_file is not None:
        busy = read_busy_file(busy_file, zone, (start, end))
    else:
        busy = calendar_busy(settings, start, end, calendars)
        own_store = store is None
        store = store or Store.open_readonly(settings.state_path)
        try:
            busy += local_busy(store, zone)
        finally:
            if own_store:
                store.close()
    minutes = duration if duration is not None else settings.availability.duration
    by_day = slots.free_slots_between(rules, days[0], days[-1], busy, now)  # busy is indexed once
    return {"timezone": settings.timezone, "duration": minutes,
            "days": [{"date": day.isoformat(),
                      "slots": [{"start": s.isoformat(), "end": e.isoformat()} for s, e in by_day[day]]}
                     for day in days]}
