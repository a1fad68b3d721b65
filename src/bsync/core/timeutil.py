"""Time at the edges: everything inside bsync is an aware UTC datetime.

All-day bookings are half-open intervals of whole local days, [first midnight, midnight
after the last day), the same convention as Google Calendar's exclusive end date and
iCalendar.  Providers whose vocabulary differs (Notion's inclusive end date) convert with
:func:`allday_span` and :func:`allday_dates`, and nowhere else.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

UTC = timezone.utc


def to_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value.isoformat()} has no offset")
    return value.astimezone(UTC)


def parse_instant(text: str) -> datetime:
    """Parse an ISO 8601 / RFC 3339 timestamp that carries an offset, to UTC."""
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return to_utc(value)


def rfc3339(value: datetime) -> str:
    """UTC instant as ``2026-11-23T10:00:00Z`` (what Google's list filters expect)."""
    return to_utc(value).strftime("%Y-%m-%dT%H:%M:%SZ")


def local_iso(value: datetime, tz: ZoneInfo) -> str:
    """The instant as local wall time with its offset, e.g. ``2026-03-29T10:00:00+02:00``."""
    return value.astimezone(tz).isoformat(timespec="seconds")


def allday_span(first_day: date, last_day_inclusive: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """[local midnight of first_day, local midnight after last_day) as UTC instants."""
    start = datetime.combine(first_day, time(0), tz)
    end = datetime.combine(last_day_inclusive + timedelta(days=1), time(0), tz)
    return to_utc(start), to_utc(end)


def allday_dates(start: datetime, end: datetime, tz: ZoneInfo) -> tuple[date, date]:
    """Inverse of :func:`allday_span`: (first day, exclusive end day) in local dates."""
    return start.astimezone(tz).date(), end.astimezone(tz).date()


def now_utc() -> datetime:
    return datetime.now(UTC)


_DURATION = {"m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> timedelta:
    """``"90m"``, ``"24h"``, ``"7d"``, ``"2w"`` (or ``"1h30m"``) as a timedelta."""
    import re

    if text.strip() == "0":
        return timedelta(0)
    parts = re.findall(r"(\d+)\s*([mhdw])", text.strip().lower())
    if not parts or re.sub(r"\d+\s*[mhdw]", "", text.strip().lower()).strip():
        raise ValueError(f"not a duration like '90m', '24h' or '7d': {text!r}")
    return timedelta(seconds=sum(int(n) * _DURATION[unit] for n, unit in parts))


def format_duration(delta: timedelta) -> str:
    """A duration the way people say it: ``"45s"``, ``"7m"``, ``"5.5h"``, ``"3d"``."""
    seconds = delta.total_seconds()
    if seconds < 90:
        return f"{seconds:.0f}s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f}m"
    if seconds < 36 * 3600:
        return f"{seconds / 3600:.1f}h".replace(".0h", "h")
    return f"{seconds / 86400:.0f}d"


DAY_WORDS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
DAY_EXAMPLES = "YYYY-MM-DD, today, tomorrow, or a weekday like monday or mon"


def parse_day(text: str, today: date, *, weekday_from: date | None = None) -> date:
    """A day on the command line: ``YYYY-MM-DD``, ``today``, ``tomorrow`` or a weekday name.

    ``today`` is the caller's date in the business time zone (people say "tomorrow" in the
    shop's time, not the server's).  A weekday (``monday`` or ``mon``, any case) is the next
    such day *including today*: on a Monday, ``monday`` is today, not a week ahead, the
    way "is Monday free?" is asked on a Monday morning.  ``weekday_from`` counts weekdays
    from another day instead (the end of a range: ``--date fri --to mon`` spans the weekend).
    """
    word = text.strip().lower()
    if word == "today":
        return today
    if word == "tomorrow":
        return today + timedelta(days=1)
    for index, name in enumerate(DAY_WORDS):
        if word in (name, name[:3]):
            start = weekday_from or today
            return start + timedelta(days=(index - start.weekday()) % 7)
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"not a day: {text!r} (give {DAY_EXAMPLES})") from None
