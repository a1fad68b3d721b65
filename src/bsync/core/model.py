"""The canonical booking every provider maps to and from (SPEC §4)."""

from __future__ import annotations

import hashlib
import json
import re
import sys
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bsync.errors import RecordError


class Status(StrEnum):
    SCHEDULED = "scheduled"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    NO_SHOW = "no_show"


EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]{2,}$")
E164_RE = re.compile(r"\+[1-9]\d{6,14}")  # an international phone number, digits only


@dataclass(frozen=True, slots=True)
class Customer:
    name: str | None = None
    email: str | None = None
    phone: str | None = None


@dataclass(frozen=True, slots=True)
class Booking:
    """One appointment.  ``start``/``end`` are aware UTC instants; the interval is half-open.

    ``key`` is ``"<system>:<external id>"`` and never changes for the life of the booking.
    ``target_ids`` holds ids other systems gave it, as recorded on the source (for Notion:
    the ``calendar_event_id`` property), so write-backs can be planned without guessing.
    """

    key: str
    title: str
    start: datetime
    end: datetime
    timezone: str
    status: Status
    all_day: bool = False
    customer: Customer = field(default_factory=Customer)
    service: str | None = None
    service_duration: int | None = None  # minutes
    staff: str | None = None
    notes: str | None = None
    location: str | None = None
    links: dict[str, str] = field(default_factory=dict)
    source: str = ""
    updated_at: datetime | None = None
    target_ids: dict[str, str] = field(default_factory=dict)
    # The customer asked for no notifications (Notion's opt-out property).  Not synced to
    # other systems and not part of the content hash: it only steers `bsync remind`.
    notifications_off: bool = False

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def active(self) -> bool:
        """Whether the booking should hold a slot on the calendar (cancelled ones don't)."""
        return self.status is not Status.CANCELLED

    def content_hash(self) -> str:
        """Hash of what the booking says, not of bookkeeping (updated_at, target ids)."""
        c = self.customer
        parts = (self.key, self.title, self.start.isoformat(), self.end.isoformat(), self.timezone,
                 self.status.value, self.all_day, c.name, c.email, c.phone, self.service,
                 self.service_duration, self.staff, self.notes, self.location, sorted(self.links.items()),
                 self.source)
        return hashlib.sha256(repr(parts).encode()).hexdigest()[:32]


COMMON_FIELDS = ("title", "start", "end", "location", "cancelled")
"""Fields both Notion and Google Calendar hold, merged field by field in two-way sync.

``start``/``end`` are UTC ISO instants, or ``date:YYYY-MM-DD`` (exclusive end) for
all-day bookings; ``cancelled`` is a bool.  Everything else a booking says (customer,
service, staff, notes, timezone) lives only in Notion and is rendered into the event.
"""


def shared(text: str | None) -> str | None:
    """One string object for every equal value read (``sys.intern``).

    A full read of 100,000 bookings holds each booking's title, key and event id twice, once
    from Notion and once from the calendar, and every page's zone, service and staff member
    as a string of its own: shared, they cost their memory once.
    """
    return sys.intern(text) if text else text


def when_value(value: datetime, all_day: bool, zone: ZoneInfo) -> str:
    """A start/end instant in the common-field form."""
    if all_day:
        return "date:" + value.astimezone(zone).date().isoformat()
    return value.astimezone(timezone.utc).isoformat()


def booking_common(booking: Booking) -> dict[str, Any]:
    tz = booking.tz
    return {"title": booking.title, "start": when_value(booking.start, booking.all_day, tz),
            "end": when_value(booking.end, booking.all_day, tz), "location": booking.location or "",
            "cancelled": booking.status is Status.CANCELLED}


def parse_when(value: str, zone: ZoneInfo) -> tuple[datetime, bool]:
    """Inverse of :func:`when_value`: (UTC instant, all_day)."""
    if value.startswith("date:"):
        day = datetime.fromisoformat(value[5:]).date()
        return datetime.combine(day, datetime.min.time(), zone).astimezone(timezone.utc), True
    return datetime.fromisoformat(value).astimezone(timezone.utc), False


def apply_common(booking: Booking, common: dict[str, Any]) -> Booking:
    """The booking with its common fields replaced (status kept unless cancellation changed)."""
    tz = booking.tz
    start, all_day = parse_when(common["start"], tz)
    end, _ = parse_when(common["end"], tz)
    status = booking.status
    if common["cancelled"] and status is not Status.CANCELLED:
        status = Status.CANCELLED
    elif not common["cancelled"] and status is Status.CANCELLED:
        status = Status.SCHEDULED
    return replace(booking, title=common["title"], start=start, end=end, all_day=all_day,
                   location=common["location"] or None, status=status)


MAX_TIMED_LENGTH = timedelta(hours=24)
MAX_ALL_DAY_LENGTH = timedelta(days=31)
EARLIEST_YEAR, LATEST_YEAR = 1970, 2100  # a start outside [1970, 2100) is a typo, not a booking


def suspicious_time(start: datetime, end: datetime, all_day: bool) -> str | None:
    """Why a booking's time can't be real (so it must not reach the calendar), or None.

    Catches zero-length bookings, ones longer than a working day (timed) or a month
    (all-day), and typos in the year (1900, 9999): each becomes a per-record failure with
    this reason instead of a decade-long event blocking every availability slot.
    """
    if not EARLIEST_YEAR <= start.year < LATEST_YEAR:
        return f"suspicious time: starts in year {start.year} (expected {EARLIEST_YEAR}–{LATEST_YEAR - 1})"
    length = end - start
    if length <= timedelta(0):
        return f"suspicious time: zero length (ends when it starts, {start.isoformat()})"
    limit, unit = (MAX_ALL_DAY_LENGTH, "31 days") if all_day else (MAX_TIMED_LENGTH, "24 hours")
    if length > limit:
        return f"suspicious time: lasts {_span(length)}, more than {unit}"
    return None


def _span(length: timedelta) -> str:
    """``3 days 4 h`` / ``26 h 30 min``: a duration as people read it."""
    if length >= timedelta(days=2):
        hours = length.seconds // 3600
        return f"{length.days} days" + (f" {hours} h" if hours else "")
    hours, minutes = divmod(int(length.total_seconds()) // 60, 60)
    return f"{hours} h" + (f" {minutes} min" if minutes else "")


def validate_booking(booking: Booking, record_id: str) -> Booking:
    """Raise RecordError (with the record id and a reason) when the booking can't be synced."""
    if not booking.title.strip():
        raise RecordError(record_id, "title is empty")
    if booking.start.tzinfo is None or booking.end.tzinfo is None:
        raise RecordError(record_id, "start/end must carry a timezone")
    if booking.end < booking.start:
        raise RecordError(record_id, f"end {booking.end.isoformat()} is before start {booking.start.isoformat()}")
    if (why := suspicious_time(booking.start, booking.end, booking.all_day)) is not None:
        raise RecordError(record_id, why)
    try:
        ZoneInfo(booking.timezone)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise RecordError(record_id, f"unknown timezone {booking.timezone!r}") from None
    email = booking.customer.email
    if email is not None and not EMAIL_RE.match(email):
        raise RecordError(record_id, f"invalid email address {email!r}")
    return booking


def json_safe(value: Any) -> Any:
    """Make a value printable as JSON (datetimes as ISO strings)."""
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def booking_to_json(booking: Booking) -> str:
    """A stable JSON form of a booking (for the local ``bookings`` table)."""
    c = booking.customer
    return json.dumps({
        "key": booking.key, "title": booking.title, "start": booking.start.isoformat(),
        "end": booking.end.isoformat(), "timezone": booking.timezone, "status": booking.status.value,
        "all_day": booking.all_day, "customer": {"name": c.name, "email": c.email, "phone": c.phone},
        "service": booking.service, "service_duration": booking.service_duration, "staff": booking.staff,
        "notes": booking.notes, "location": booking.location, "links": dict(sorted(booking.links.items())),
        "source": booking.source, "updated_at": booking.updated_at.isoformat() if booking.updated_at else None,
    }, sort_keys=True)


def booking_from_json(text: str) -> Booking:
    d = json.loads(text)
    return Booking(key=d["key"], title=d["title"], start=datetime.fromisoformat(d["start"]),
                   end=datetime.fromisoformat(d["end"]), timezone=d["timezone"], status=Status(d["status"]),
                   all_day=d["all_day"], customer=Customer(**d["customer"]), service=d["service"],
                   service_duration=d["service_duration"], staff=d["staff"], notes=d["notes"],
                   location=d["location"], links=d["links"], source=d["source"],
                   updated_at=datetime.fromisoformat(d["updated_at"]) if d["updated_at"] else None)
