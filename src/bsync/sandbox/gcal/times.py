"""Time as Google Calendar writes and reads it: strict RFC 3339, IANA zones, all-day midnights.

Every part of the emulator that takes or renders a time (event start/end, ``timeMin``,
freeBusy ranges, ``created``/``updated``, token expiry) goes through these helpers, so one
parser decides what Google accepts and one formatter what it answers.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_DATE_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
_DATETIME_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})?$")


def to_utc(dt: datetime) -> datetime:
    return dt.astimezone(timezone.utc)


def format_ms(dt: datetime) -> str:
    """RFC3339 UTC with milliseconds, as Google renders created/updated."""
    dt = to_utc(dt)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def format_local(dt: datetime, tz: ZoneInfo) -> str:
    """RFC3339 in ``tz`` without fractional seconds; a zero offset is written ``Z``."""
    local = dt.astimezone(tz)
    offset = local.utcoffset() or timedelta(0)
    text = local.strftime("%Y-%m-%dT%H:%M:%S")
    if offset == timedelta(0):
        return text + "Z"
    total = int(offset.total_seconds())
    sign = "+" if total >= 0 else "-"
    total = abs(total)
    return f"{text}{sign}{total // 3600:02d}:{(total % 3600) // 60:02d}"


def parse_rfc3339(text: Any, *, offset_required: bool = True,
                   tz: ZoneInfo | None = None) -> datetime | None:
    """Strict RFC3339 date-time; None when malformed.  Without an offset ``tz`` is used."""
    if not isinstance(text, str):
        return None
    m = _DATETIME_RE.match(text.strip())
    if not m:
        return None
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    frac, off = m.group(7), m.group(8)
    micro = int((frac[1:] + "000000")[:6]) if frac else 0
    try:
        naive = datetime(year, month, day, hour, minute, second, micro)
    except ValueError:
        return None
    if off is None:
        if offset_required or tz is None:
            return None
        return naive.replace(tzinfo=tz)
    if off in ("Z", "z"):
        return naive.replace(tzinfo=timezone.utc)
    sign = 1 if off[0] == "+" else -1
    hours, minutes = int(off[1:3]), int(off[4:6])
    if hours > 23 or minutes > 59:
        return None
    return naive.replace(tzinfo=timezone(sign * timedelta(hours=hours, minutes=minutes)))


def parse_date(text: Any) -> date | None:
    if not isinstance(text, str):
        return None
    m = _DATE_RE.match(text)
    if not m:
        return None
    try:
        return date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except ValueError:
        return None


def find_zone(name: Any) -> ZoneInfo | None:
    """The IANA zone ``name``, or None when it is not one."""
    if not isinstance(name, str) or not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def midnight(d: date, tz: ZoneInfo) -> datetime:
    """Where an all-day date starts: midnight in ``tz``, as a UTC instant."""
    return datetime(d.year, d.month, d.day, tzinfo=tz).astimezone(timezone.utc)

