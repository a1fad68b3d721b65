"""Recurring events: expanding a series into occurrences, as Google does.

Google expands a series in the zone of its ``start.timeZone`` (required for recurring timed
events), so a weekly 09:00 Europe/Warsaw event stays at 09:00 local across DST.  Expansion
runs on naive wall-clock times with python-dateutil's rruleset; the zone is attached to each
occurrence afterwards, which is exactly "same wall time, that day's offset".

* sourced (discovery document / Calendar reference): ``singleEvents=true`` lists occurrences
  instead of series; ``orderBy=startTime`` needs it (400 otherwise); ``timeMin``/``timeMax``
  filter occurrences by their own end/start; an occurrence carries ``recurringEventId`` and
  ``originalStartTime`` and no ``recurrence``; ``start.timeZone`` is required on a recurring
  timed event; ``events.instances`` lists one series' occurrences (cancelled ones only with
  ``showDeleted``); a cancelled exception keeps id, ``recurringEventId`` and
  ``originalStartTime``;
* widely observed [2°]: occurrence ids are ``<id>_<YYYYMMDDTHHMMSSZ>`` (original start in UTC)
  for timed series and ``<id>_<YYYYMMDD>`` for all-day ones (kuzmoyev/google-calendar-simple-api
  #52 shows the form; Google announced in 2025 that instance ids change format from Q3 2026
  and must be treated as opaque, phw198/OutlookGoogleCalendarSync#2205, so bsync never parses
  them); writing or deleting an occurrence by that id (the documented "retrieve the instance,
  update the instance" flow) turns it into an exception of its own (listed as a separate event
  without ``singleEvents``), which then overrides the occurrence in lists, instances and
  freeBusy;
* guesses [?]: at most ``MAX_INSTANCES`` occurrences per series when no ``timeMax`` bounds the
  expansion; ``instances`` of a one-off event is an empty list and answers no sync token;
  deleting a series cancels its exceptions too (each reported by an incremental list);
  RDATE/EXDATE date values mean that day at the series' start time.

Occurrences are computed, never stored, until a write makes one an exception of its own
(:mod:`.events` stores it then); the functions here only read a calendar.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta, timezone
from typing import Iterator
from zoneinfo import ZoneInfo

from dateutil.rrule import rruleset, rrulestr

from bsync.sandbox.base import JSON
from bsync.sandbox.gcal.api import b64
from bsync.sandbox.gcal.model import FIELD_ORDER, Calendar, Event
from bsync.sandbox.gcal.times import find_zone, format_local, midnight, to_utc

MAX_INSTANCES = 730  # [guess] occurrences expanded per series when no timeMax bounds a query
_STAMP_DATE_RE = re.compile(r"^\d{8}$")
_STAMP_UTC_RE = re.compile(r"^\d{8}T\d{6}Z$")
_STAMP_LOCAL_RE = re.compile(r"^\d{8}T\d{6}$")
_UNTIL_UTC_RE = re.compile(r"UNTIL=(\d{8}T\d{6})Z", re.IGNORECASE)


@dataclass
class Series:
    """A recurring event's rules, ready to expand: naive wall-clock times in ``zone``."""

    rules: rruleset
    zone: ZoneInfo
    duration: timedelta   # timed: end - start; all-day: whole days
    all_day: bool


def _wall(dt: datetime, zone: ZoneInfo) -> datetime:
    """An aware instant as a naive wall-clock time in ``zone`` (what the rules expand on)."""
    return dt.astimezone(zone).replace(tzinfo=None)


def _recurrence_dates(line: str, head: str, zone: ZoneInfo, at: time) -> list[datetime]:
    """The values of an RDATE/EXDATE line as naive wall-clock times in the series' zone.

    ``TZID=`` names the values' zone, a trailing ``Z`` means UTC, a bare date means that day
    at the series' start time.
    """
    params = dict(p.split("=", 1) for p in head.split(";")[1:] if "=" in p)
    value_zone = zone
    if "TZID" in params:
        value_zone = find_zone(params["TZID"])
        if value_zone is None:
            raise ValueError(f"unknown TZID in {line!r}")
    out = []
    for raw in line.split(":", 1)[1].split(","):
        raw = raw.strip()
        if _STAMP_DATE_RE.match(raw):
            out.append(datetime.combine(datetime.strptime(raw, "%Y%m%d").date(), at))
        elif _STAMP_UTC_RE.match(raw):
            out.append(_wall(datetime.strptime(raw, "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc), zone))
        elif _STAMP_LOCAL_RE.match(raw):
            out.append(_wall(datetime.strptime(raw, "%Y%m%dT%H%M%S").replace(tzinfo=value_zone), zone))
        else:
            raise ValueError(f"bad date {raw!r} in {line!r}")
    return out


def _series_rules(recurrence: list[str], dtstart: datetime, zone: ZoneInfo) -> rruleset:
    """Build the rule set of a ``recurrence`` list (RRULE, EXRULE, RDATE, EXDATE lines).

    ``dtstart`` is naive wall-clock time in ``zone``; a UTC ``UNTIL`` is turned into that
    zone's wall time (dateutil wants UNTIL and DTSTART both naive or both aware).  Raises
    ValueError for a line it cannot read.
    """
    rules = rruleset()
    for line in recurrence:
        head = line.split(":", 1)[0]
        name = head.split(";", 1)[0].upper()
        if ":" not in line:
            raise ValueError(f"no value in {line!r}")
        if name in ("RRULE", "EXRULE"):
            text = _UNTIL_UTC_RE.sub(lambda m: "UNTIL=" + _wall(datetime.strptime(
                m.group(1), "%Y%m%dT%H%M%S").replace(tzinfo=timezone.utc), zone).strftime("%Y%m%dT%H%M%S"),
                line.split(":", 1)[1])
            rule = rrulestr(text, dtstart=dtstart)
            (rules.rrule if name == "RRULE" else rules.exrule)(rule)  # type: ignore[operator]
        elif name in ("RDATE", "EXDATE"):
            for value in _recurrence_dates(line, head, zone, dtstart.time()):
                (rules.rdate if name == "RDATE" else rules.exdate)(value)
        else:
            raise ValueError(f"unknown recurrence line {line!r}")
    return rules


def _instance_id(series_id: str, start: datetime, all_day: bool, zone: ZoneInfo) -> str:
    """Google's id of one occurrence: ``<id>_<YYYYMMDD>`` (all-day) or ``<id>_<UTC stamp>``."""
    if all_day:
        return f"{series_id}_{_wall(start, zone):%Y%m%d}"
    return f"{series_id}_{to_utc(start):%Y%m%dT%H%M%SZ}"


def series_of(cal: Calendar, resource: JSON, start: datetime, end: datetime, all_day: bool) -> Series:
    """The rules of a recurring event, expanded in its start zone (all-day: the calendar's).

    Raises ValueError (or TypeError) for a ``recurrence`` it cannot read.
    """
    zone = (cal.tz if all_day else find_zone(resource["start"].get("timeZone"))) or cal.tz
    if all_day:
        first = _wall(start, zone)
        duration = timedelta(days=(_wall(end, zone).date() - first.date()).days)
    else:
        first, duration = _wall(start, zone), end - start
    return Series(_series_rules(resource["recurrence"], first, zone), zone, duration, all_day)


def occurrences(cal: Calendar, series: Event, lo: datetime | None, hi: datetime | None) -> Iterator[Event]:
    """The series' occurrences (as unsaved instances) whose original span meets [lo, hi).

    Without ``hi`` at most MAX_INSTANCES are produced, so an endless rule stays finite.
    """
    sr = series_of(cal, series.resource, series.start, series.end, series.all_day)
    after = _wall((lo or series.start) - sr.duration - timedelta(days=1), sr.zone)
    produced = 0
    for occ in sr.rules.xafter(after, inc=True):
        start = to_utc(occ.replace(tzinfo=sr.zone))
        if hi is not None and start >= hi:
            break
        if sr.all_day:
            end = midnight(occ.date() + sr.duration, sr.zone)
        else:
            end = start + sr.duration
        if lo is not None and end <= lo and start < lo:
            continue
        produced += 1
        if hi is None and produced > MAX_INSTANCES:
            break
        yield _instance(cal, series, sr, start, end)


def _instance(cal: Calendar, series: Event, sr: Series, start: datetime, end: datetime) -> Event:
    """One occurrence as Google shows it: the series' fields at the occurrence's times,
    its own id, ``recurringEventId`` and ``originalStartTime``, no ``recurrence``."""
    r = series.resource
    iid = _instance_id(series.id, start, sr.all_day, sr.zone)
    out = {k: v for k, v in r.items() if k != "recurrence"}
    if sr.all_day:
        first = _wall(start, sr.zone).date()
        out["start"] = {**r["start"], "date": first.isoformat()}
        out["end"] = {**r["end"], "date": (first + sr.duration).isoformat()}
        out["originalStartTime"] = {"date": first.isoformat()}
    else:
        end_zone = find_zone(r["end"].get("timeZone")) or sr.zone
        out["start"] = {**r["start"], "dateTime": format_local(start, sr.zone)}
        out["end"] = {**r["end"], "dateTime": format_local(end, end_zone)}
        out["originalStartTime"] = {"dateTime": format_local(start, sr.zone),
                                    "timeZone": r["start"]["timeZone"]}
    out["id"] = iid
    out["recurringEventId"] = series.id
    out["htmlLink"] = "https://www.google.com/calendar/event?eid=" + b64(f"{iid} {cal.id}".encode())
    resource = {k: out[k] for k in FIELD_ORDER if k in out}
    return Event(id=iid, index=series.index, resource=resource, change=series.change,
                  start=start, end=end, all_day=sr.all_day, updated=series.updated,
                  occurrence=int(start.timestamp() * 1_000_000))


def live_series(cal: Calendar, event_id: str) -> Event | None:
    """The stored, not cancelled, recurring event with this id, or None."""
    ev = cal.events.get(event_id)
    if ev is None or ev.cancelled or not ev.resource.get("recurrence"):
        return None
    return ev


def single_events(cal: Calendar, lo: datetime | None, hi: datetime | None) -> Iterator[Event]:
    """One-off events, exceptions, and each live series' other occurrences in [lo, hi).

    What ``singleEvents=true`` lists and freeBusy counts: a series itself never appears,
    and an occurrence that was modified or cancelled is replaced by its exception.
    Exceptions of a deleted series go with it.
    """
    for ev in cal.order:
        if ev.resource.get("recurrence"):
            if not ev.cancelled:
                yield from (inst for inst in occurrences(cal, ev, lo, hi)
                            if inst.id not in cal.events)
        elif ev.resource.get("recurringEventId"):
            if live_series(cal, ev.resource["recurringEventId"]) is not None:
                yield ev
        else:
            yield ev


def occurrence_named(cal: Calendar, event_id: str) -> Event | None:
    """The unsaved occurrence an instance id (``<series id>_<stamp>``) names, or None."""
    series_id, sep, stamp = event_id.rpartition("_")
    series = live_series(cal, series_id) if sep else None
    if series is None:
        return None
    if _STAMP_DATE_RE.match(stamp):
        lo = midnight(datetime.strptime(stamp, "%Y%m%d").date(), cal.tz)
    elif _STAMP_UTC_RE.match(stamp):
        lo = datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
    else:
        return None
    for inst in occurrences(cal, series, lo, lo + timedelta(seconds=1)):
        if inst.id == event_id:
            return inst
    return None
