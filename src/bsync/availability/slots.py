"""When can a customer still be booked?  Pure slot arithmetic: no I/O, no clock.

The rules are local (working hours are wall-clock times in the business's zone), the busy
time is absolute (instants in any zone), so everything is turned into UTC instants first
and all arithmetic happens there.  Doing it in local aware datetimes would be wrong twice
over: ``datetime + timedelta`` on a ZoneInfo datetime adds *wall* time, and two datetimes
sharing a tzinfo compare by wall time, ignoring ``fold``.

Wall time to instant (:func:`_local`), the one place DST is decided:

* a nonexistent wall time (spring-forward gap) is the instant the clock jumps, i.e. the
  first instant whose wall clock is past the gap: a 02:30 opening on Warsaw's 2026-03-29
  opens at 03:00 CEST.  zoneinfo resolves such a time with ``fold=0`` using the offset
  before the transition, which lands *inside* the other side (03:30 CEST); the engine
  detects the gap by a UTC round trip that does not reproduce the wall time, and then
  moves to the transition instant itself;
* an ambiguous wall time (fall-back repeat) is its first occurrence (``fold=0``);
* a range end of 00:00 (or "24:00" in :func:`parse_ranges`) is the midnight that ends the
  day.

Slots are stepped in absolute time from the start of each working range, so an opening
at 09:00 stays at 09:00 local on both sides of a change, and a range that contains the
change has its real length (a 01:00-04:00 range is 2 h on a spring-forward night).
"""

from __future__ import annotations

import math
import re
from bisect import bisect_right
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from itertools import pairwise
from types import MappingProxyType
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bsync.core.timeutil import UTC, parse_duration, to_utc

Interval = tuple[datetime, datetime]
Range = tuple[time, time]

WEEKDAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_DAY = timedelta(days=1)
_RANGE = re.compile(r"^\s*(\d{1,2}:\d{2})\s*-\s*(\d{1,2}:\d{2})\s*$")
_CLOCK = re.compile(r"^(\d{1,2}):(\d{2})$")


# --- working ranges -------------------------------------------------------------------------


def _since_midnight(t: time, *, end: bool) -> timedelta:
    """A range bound as an offset into the day; an *end* of 00:00 is 24:00, the day's end."""
    offset = timedelta(hours=t.hour, minutes=t.minute, seconds=t.second, microseconds=t.microsecond)
    return _DAY if end and not offset else offset


def _clock(t: time, *, end: bool = False) -> str:
    """``HH:MM`` (seconds only when present) as people wrote it; an end of 00:00 reads 24:00."""
    if end and t == time(0):
        return "24:00"
    return t.strftime("%H:%M:%S" if t.second or t.microsecond else "%H:%M")


def _label(r: Range) -> str:
    return f"{_clock(r[0])}-{_clock(r[1], end=True)}"


def _check_ranges(ranges: Iterable[Range]) -> tuple[Range, ...]:
    """Ranges sorted by start, each non-empty and none overlapping (touching is fine: half-open).

    Overlaps are refused rather than merged because they are almost always a typo, and
    merging would silently change which slot starts are aligned to which opening.
    """
    checked: list[Range] = []
    for pair in ranges:
        if len(pair) != 2 or not all(isinstance(t, time) and t.tzinfo is None for t in pair):
            raise ValueError(f"{pair!r} is not a (start, end) pair of naive times")
        start, end = pair
        if _since_midnight(end, end=True) < _since_midnight(start, end=False):
            raise ValueError(f"{_label(pair)}: end before start")
        if _since_midnight(end, end=True) == _since_midnight(start, end=False):
            raise ValueError(f"{_label(pair)}: empty range")
        checked.append((start, end))
    checked.sort(key=lambda r: _since_midnight(r[0], end=False))
    for before, after in pairwise(checked):
        if _since_midnight(after[0], end=False) < _since_midnight(before[1], end=True):
            raise ValueError(f"{_label(before)} overlaps {_label(after)}")
    return tuple(checked)


def _parse_clock(text: str, *, end: bool, whole: str) -> time:
    """``HH:MM`` as a time; ``24:00`` only as an end, where it means the day's closing midnight."""
    match = _CLOCK.match(text)
    hour, minute = (int(match[1]), int(match[2])) if match else (-1, -1)
    if (hour, minute) == (24, 0):
        if not end:
            raise ValueError(f"{whole}: 24:00 can only end a range")
        return time(0)
    if not (0 <= hour <= 23 and 0 <= minute <= 59):
        raise ValueError(f"{whole}: {text} is not a time of day (00:00-23:59, or 24:00 as an end)")
    return time(hour, minute)


def parse_ranges(texts: Iterable[str]) -> list[Range]:
    """``["09:00-12:00", "13:00-17:00"]`` as (start, end) times, sorted by start.

    An end of ``24:00`` or ``00:00`` becomes ``time(0)``, which the engine reads as the
    midnight ending the day.  ValueError names the offending range.
    """
    if isinstance(texts, str):
        raise TypeError(f"{texts!r}: give a list of ranges like ['09:00-12:00'], not one string")
    ranges: list[Range] = []
    for text in texts:
        match = _RANGE.match(text) if isinstance(text, str) else None
        if match is None:
            raise ValueError(f"{text!r} is not a range like '09:00-12:00'")
        whole = f"{match[1]}-{match[2]}"
        ranges.append((_parse_clock(match[1], end=False, whole=whole), _parse_clock(match[2], end=True, whole=whole)))
    return list(_check_ranges(ranges))


# --- rules ----------------------------------------------------------------------------------


def _weekday(key: int | str) -> int:
    """0-6, or a day name (``"mon"``, ``"Monday"``) as config files spell it."""
    if isinstance(key, int) and not isinstance(key, bool) and 0 <= key <= 6:
        return key
    if isinstance(key, str):
        name = key.strip().lower()
        for index, full in enumerate(WEEKDAY_NAMES):
            if len(name) >= 3 and full.startswith(name):
                return index
    raise ValueError(f"unknown weekday {key!r} (use 0-6 with 0=Monday, or a name like 'mon')")


def _zone(key: str) -> ZoneInfo:
    try:
        return ZoneInfo(key)
    except (ZoneInfoNotFoundError, ValueError, OSError, TypeError):
        raise ValueError(f"unknown timezone {key!r} (expected an IANA name like 'Europe/Warsaw')") from None


@dataclass(frozen=True, slots=True, kw_only=True)
class Rules:
    """What a service's calendar allows.  Validated and normalised on construction.

    ``hours`` maps weekday (0=Monday) to local working ranges; a missing or empty weekday
    is closed.  ``overrides`` replaces a date's weekday ranges (empty = closed that day).
    ``step`` None means back-to-back slots (step = duration).  Buffers are kept free of
    busy time around a slot but may fall outside working hours.
    """

    timezone: str
    hours: Mapping[int, Sequence[Range]]
    duration: timedelta
    overrides: Mapping[date, Sequence[Range]] = field(default_factory=dict)
    step: timedelta | None = None
    buffer_before: timedelta = timedelta(0)
    buffer_after: timedelta = timedelta(0)
    min_notice: timedelta = timedelta(0)
    max_advance: timedelta = timedelta(days=365)

    def __post_init__(self) -> None:
        _zone(self.timezone)
        self._check_durations()
        hours = {}
        for key, ranges in self.hours.items():
            day = _weekday(key)
            hours[day] = _checked(ranges, f"hours for {WEEKDAY_NAMES[day].title()}")
        overrides = {}
        for key, ranges in self.overrides.items():
            if not isinstance(key, date) or isinstance(key, datetime):
                raise TypeError(f"override key {key!r} is not a date")
            overrides[key] = _checked(ranges, f"override for {key.isoformat()}")
        # Frozen means frozen: the caller's dicts and lists are copied into read-only views.
        object.__setattr__(self, "hours", MappingProxyType(hours))
        object.__setattr__(self, "overrides", MappingProxyType(overrides))

    def _check_durations(self) -> None:
        named = {"duration": self.duration, "buffer_before": self.buffer_before, "buffer_after": self.buffer_after,
                 "min_notice": self.min_notice, "max_advance": self.max_advance}
        if self.step is not None:
            named["step"] = self.step
        for name, value in named.items():
            if not isinstance(value, timedelta):
                raise TypeError(f"{name} must be a timedelta, got {type(value).__name__}")
        if self.duration <= timedelta(0):
            raise ValueError(f"duration must be positive, got {self.duration}")
        if self.duration > _DAY:
            raise ValueError(f"duration must be at most 24h, got {self.duration}")
        if self.step is not None and self.step <= timedelta(0):
            raise ValueError(f"step must be positive, got {self.step}")
        for name in ("buffer_before", "buffer_after", "min_notice", "max_advance"):
            if named[name] < timedelta(0):
                raise ValueError(f"{name} must not be negative, got -{-named[name]}")

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def slot_step(self) -> timedelta:
        return self.step if self.step is not None else self.duration

    def ranges_on(self, day: date) -> tuple[Range, ...]:
        """The day's working ranges: its override if it has one, else its weekday's hours."""
        if day in self.overrides:
            return tuple(self.overrides[day])
        return tuple(self.hours.get(day.weekday(), ()))

    @classmethod
    def from_strings(cls, *, timezone: str, hours: Mapping[int | str, Iterable[str]], duration: str,
                     overrides: Mapping[date | str, Iterable[str]] | None = None, step: str | None = None,
                     buffer_before: str = "0m", buffer_after: str = "0m", min_notice: str = "0m",
                     max_advance: str = "365d") -> Rules:
        """Rules as a config file writes them: ``{"mon": ["09:00-12:00"]}``, ``"90m"``, ``"2026-12-24"``."""
        return cls(
            timezone=timezone,
            hours={_weekday(key): _parsed(texts, f"hours for {key}") for key, texts in hours.items()},
            overrides={_override_day(key): _parsed(texts, f"override for {key}")
                       for key, texts in (overrides or {}).items()},
            duration=_duration(duration, "duration"),
            step=None if step is None else _duration(step, "step"),
            buffer_before=_duration(buffer_before, "buffer_before"),
            buffer_after=_duration(buffer_after, "buffer_after"),
            min_notice=_duration(min_notice, "min_notice"),
            max_advance=_duration(max_advance, "max_advance"),
        )


def _checked(ranges: Iterable[Range], where: str) -> tuple[Range, ...]:
    try:
        return _check_ranges(ranges)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{where}: {exc}") from None


def _parsed(texts: Iterable[str], where: str) -> list[Range]:
    try:
        return parse_ranges(texts)
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None


def _override_day(key: date | str) -> date:
    if isinstance(key, date) and not isinstance(key, datetime):
        return key
    try:
        return date.fromisoformat(str(key))
    except ValueError:
        raise ValueError(f"override key {key!r} is not a date like '2026-12-24'") from None


def _duration(text: str, name: str) -> timedelta:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise ValueError(f"{name}: {exc}") from None


# --- wall time to instants ------------------------------------------------------------------


def _local(day: date, t: time, zone: ZoneInfo) -> datetime:
    """The UTC instant the wall clock in *zone* shows *t* on *day* (see the module docstring).

    Ambiguous: fold=0, the first occurrence.  Nonexistent: the UTC round trip does not give
    back the wall time, and the answer is the transition instant, found between the two
    readings zoneinfo offers for the gap (fold=1 lands before it, fold=0 after it).
    """
    wall = datetime.combine(day, t).replace(fold=0)  # combine copies t.fold; the rule is first occurrence
    after = wall.replace(tzinfo=zone).astimezone(UTC)
    if after.astimezone(zone).replace(tzinfo=None) == wall:
        return after
    before = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    return _transition(before, after, zone)


def _transition(before: datetime, after: datetime, zone: ZoneInfo) -> datetime:
    """The first instant in (before, after] with after's UTC offset, to the second.

    Bisection on whole seconds is exact because tzdata transitions fall on whole seconds;
    it runs only for wall times inside a gap, i.e. a few times a year.
    """
    target = after.astimezone(zone).utcoffset()
    lo, hi = math.floor(before.timestamp()), math.floor(after.timestamp())  # lo: old offset, hi: new offset
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if datetime.fromtimestamp(mid, UTC).astimezone(zone).utcoffset() == target:
            hi = mid
        else:
            lo = mid
    return datetime.fromtimestamp(hi, UTC)


def _working_intervals(rules: Rules, day: date, zone: ZoneInfo) -> list[Interval]:
    """The day's ranges as UTC instants; a range wholly inside a gap comes out empty and is dropped."""
    out = []
    for start_t, end_t in rules.ranges_on(day):
        start = _local(day, start_t, zone)
        end = _local(day + _DAY, end_t, zone) if end_t == time(0) else _local(day, end_t, zone)
        if start < end:
            out.append((start, end))
    return out


def busy_from_all_day(d: date, zone: ZoneInfo | str) -> Interval:
    """An all-day event on *d*: [local midnight, next local midnight) in *zone* (23 h or 25 h on change days).

    Midnights go through the same wall-to-instant mapping as working ranges, so an all-day
    event blocks exactly a 00:00-24:00 range even in zones whose midnight can be skipped.
    """
    tz = zone if isinstance(zone, ZoneInfo) else _zone(zone)
    return _local(d, time(0), tz).astimezone(tz), _local(d + _DAY, time(0), tz).astimezone(tz)


# --- busy time ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Busy:
    """Busy time merged into sorted, disjoint UTC intervals, so one bisect answers "is this free?"."""

    starts: tuple[datetime, ...]
    ends: tuple[datetime, ...]

    @classmethod
    def merge(cls, busy: Iterable[Interval]) -> _Busy:
        """Sort and merge once; zero-length intervals block nothing and are dropped."""
        spans = []
        for start, end in busy:
            start, end = to_utc(start), to_utc(end)
            if end < start:
                raise ValueError(f"busy interval ends before it starts: {start.isoformat()} - {end.isoformat()}")
            if end > start:
                spans.append((start, end))
        spans.sort()
        starts: list[datetime] = []
        ends: list[datetime] = []
        for start, end in spans:
            if ends and start <= ends[-1]:
                ends[-1] = max(ends[-1], end)
            else:
                starts.append(start)
                ends.append(end)
        return cls(tuple(starts), tuple(ends))

    def blocked_until(self, start: datetime, end: datetime) -> datetime | None:
        """End of the busy interval overlapping [start, end), or None when that window is free.

        The first merged interval ending after *start* is the only candidate: earlier ones
        end too soon, later ones start even later.
        """
        i = bisect_right(self.ends, start)
        if i < len(self.starts) and self.starts[i] < end:
            return self.ends[i]
        return None


# --- slots ----------------------------------------------------------------------------------


def _steps_to_reach(distance: timedelta, step: timedelta) -> int:
    """The smallest k >= 0 with k * step >= distance."""
    return max(0, -(-distance // step))


def _range_slots(start: datetime, end: datetime, rules: Rules, busy: _Busy,
                 earliest: datetime, latest: datetime) -> Iterator[Interval]:
    """Offered slots of one working range, in UTC.

    Starts are start + k*step.  A blocked candidate skips straight past the busy interval
    that blocks it (plus buffer_before), so the work is per offered slot, not per minute.
    """
    step, duration = rules.slot_step, rules.duration
    k = _steps_to_reach(earliest - start, step)
    while True:
        slot = start + k * step
        if slot + duration > end or slot > latest:
            return
        free_from = busy.blocked_until(slot - rules.buffer_before, slot + duration + rules.buffer_after)
        if free_from is None:
            yield slot, slot + duration
            k += 1
        else:
            k = max(k + 1, _steps_to_reach(free_from + rules.buffer_before - start, step))


def _day_slots(rules: Rules, day: date, busy: _Busy, now: datetime) -> list[Interval]:
    zone = rules.zone
    earliest, latest = now + rules.min_notice, now + rules.max_advance
    return [(s.astimezone(zone), e.astimezone(zone))
            for start, end in _working_intervals(rules, day, zone)
            for s, e in _range_slots(start, end, rules, busy, earliest, latest)]


def free_slots_between(rules: Rules, first: date, last: date, busy: Iterable[Interval],
                       now: datetime) -> dict[date, list[Interval]]:
    """Every day from *first* to *last* inclusive, in order, with its offered slots (empty when none).

    Slots are [start, end) in the business zone.  A slot is offered when it fits in a
    working range, its buffered window [start - buffer_before, end + buffer_after) overlaps
    no busy interval, and now + min_notice <= start <= now + max_advance.
    """
    if last < first:
        raise ValueError(f"last day {last.isoformat()} is before first day {first.isoformat()}")
    merged = _Busy.merge(busy)
    now = to_utc(now)
    days = (first + timedelta(days=i) for i in range((last - first).days + 1))
    return {day: _day_slots(rules, day, merged, now) for day in days}


def free_slots(rules: Rules, day: date, busy: Iterable[Interval], now: datetime) -> list[Interval]:
    """The offered slots of one local day; see :func:`free_slots_between`."""
    return free_slots_between(rules, day, day, busy, now)[day]
