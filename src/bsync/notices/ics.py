"""iCalendar invitations for a booking (RFC 5545 objects sent as RFC 5546 iTIP messages).

Pure: a booking in, the bytes of a ``.ics`` file out; no clock, no network, no files.
The caller passes the DTSTAMP and the SEQUENCE so that the same notice always renders
the same bytes (a retried send is byte-for-byte the message that failed, and tests can
compare output exactly).

How mail clients treat these files, and so why they are built this way:

* The UID names the event in the customer's calendar.  A later REQUEST with the same UID
  updates the event in place and a CANCEL with it removes it; a new UID would leave a
  stale copy behind.  So the UID is derived from the booking key alone (:func:`uid_for`),
  never from anything that can change or from randomness.
* SEQUENCE orders revisions of that UID.  Clients (Outlook, Apple Calendar, Gmail) ignore
  or flag as out of date a message whose SEQUENCE is lower than the one they hold, so every
  change the customer should see, a cancellation included, must go out with a larger
  number.  Keeping that counter is the caller's job; this module writes what it is given.
* Timed bookings are written as local wall time with ``TZID`` (RFC 5545 §3.3.5, form #3)
  rather than as UTC: the file then says what the appointment is, "10:00 in Berlin",
  not just an instant, so clients can show the event's own zone, and a client that
  resolves the TZID against its own, newer zone rules keeps it at 10:00 if those rules
  change before the day.  RFC 5545 §3.2.19 requires a VTIMEZONE for every TZID used, and
  Outlook does not know IANA names, so one is generated from the zoneinfo database
  covering the event's years.
"""

from __future__ import annotations

import hashlib
import re
from datetime import date, datetime
from typing import Literal
from zoneinfo import ZoneInfo

from icalendar import Calendar, Event, vCalAddress

from bsync.core.model import Booking
from bsync.core.timeutil import UTC, allday_dates

Method = Literal["REQUEST", "CANCEL"]

PRODID = "-//bsync//bookings//EN"

_METHODS: tuple[Method, ...] = ("REQUEST", "CANCEL")
_FILENAMES: dict[str, str] = {"REQUEST": "invite.ics", "CANCEL": "cancel.ics"}
_DOMAIN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?$")


def uid_for(key: str, domain: str = "bsync") -> str:
    """The iCalendar UID of a booking: ``<32 hex digits>@<domain>``, a pure function of the key.

    The booking key never changes (model.Booking), so neither does the UID: every invite,
    update and cancellation for a booking addresses the same event in the customer's
    calendar, across runs, machines and database rebuilds.  Hashing keeps the UID free of
    whatever characters a provider put in its ids, and doesn't show those ids to customers.
    128 bits of SHA-256 make a collision between two keys practically impossible.
    """
    if not _DOMAIN.match(domain):
        raise ValueError(f"UID domain must be letters, digits, dots and hyphens: {domain!r}")
    return f"{hashlib.sha256(key.encode('utf-8')).hexdigest()[:32]}@{domain}"


def ics_filename(method: Method) -> str:
    """Attachment name: ``invite.ics`` for REQUEST, ``cancel.ics`` for CANCEL."""
    _check_method(method)
    return _FILENAMES[method]


def ics_content_type(method: Method) -> str:
    """MIME type of the attachment, e.g. ``text/calendar; charset=utf-8; method=REQUEST``.

    RFC 6047 (iMIP) asks for the ``method`` parameter to match the object's METHOD; mail
    clients use it to show the invitation as one (accept/decline bar, "event cancelled").
    """
    _check_method(method)
    return f"text/calendar; charset=utf-8; method={method}"


def booking_invite(booking: Booking, *, method: Method, sequence: int, organizer_email: str,
                   organizer_name: str | None = None, stamp: datetime, uid_domain: str = "bsync",
                   description: str | None = None) -> bytes:
    """A VCALENDAR with METHOD and one VEVENT for the booking, as UTF-8 bytes with CRLF lines.

    ``method`` is REQUEST to invite or update, CANCEL to withdraw the event; STATUS follows
    the method (CONFIRMED / CANCELLED, RFC 5546 §3.2.5 asks a CANCEL of the whole event to
    say CANCELLED), whatever ``booking.status`` says: choosing the method is the caller's
    decision.  ``sequence`` must be larger than the one any earlier message for this booking
    carried (see the module docstring).  ``stamp`` is the DTSTAMP, the moment the message was
    made; it must be aware and is written in UTC as RFC 5545 requires.  ``description``
    replaces the one built from service, staff and notes.

    The customer becomes the ATTENDEE only when they have an email address: an ATTENDEE is
    a calendar address, and there is none to give without one.  ORGANIZER is always
    present (iTIP requires it on REQUEST and CANCEL); clients match replies against it.
    """
    _check_method(method)
    if isinstance(sequence, bool) or not isinstance(sequence, int) or sequence < 0:
        raise ValueError(f"sequence must be a non-negative integer, not {sequence!r}")
    if stamp.tzinfo is None:
        raise ValueError(f"stamp {stamp.isoformat()} has no offset")
    if not organizer_email.strip():
        raise ValueError("organizer_email is empty")

    tz = booking.tz
    event = Event()
    event.add("uid", uid_for(booking.key, uid_domain))
    event.add("sequence", sequence)
    event.add("dtstamp", stamp.astimezone(UTC))
    start, end = _when(booking, tz)
    event.add("dtstart", start)
    if end is not None:
        event.add("dtend", end)
    event.add("summary", booking.title)
    if booking.location:
        event.add("location", booking.location)
    text = description if description is not None else _describe(booking)
    if text:
        event.add("description", text)
    event.add("organizer", _address(organizer_email, organizer_name))
    customer = booking.customer
    if customer.email:
        attendee = _address(customer.email, customer.name)
        attendee.params["ROLE"] = "REQ-PARTICIPANT"
        attendee.params["PARTSTAT"] = "NEEDS-ACTION"
        attendee.params["RSVP"] = "FALSE"
        event.add("attendee", attendee)
    event.add("status", "CANCELLED" if method == "CANCEL" else "CONFIRMED")

    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("method", method)
    calendar.add_component(event)
    if not booking.all_day:
        first, last = _zone_span(booking, tz)
        # Only TZIDs the event actually uses get a VTIMEZONE: none for all-day dates, none
        # for UTC zones (written with "Z"), and none when both ends had to fall back to UTC.
        calendar.add_missing_timezones(first_date=first, last_date=last)
    return calendar.to_ical()


def _check_method(method: str) -> None:
    if method not in _METHODS:
        raise ValueError(f"method must be one of {', '.join(_METHODS)}, not {method!r}")


def _when(booking: Booking, tz: ZoneInfo) -> tuple[date | datetime, date | datetime | None]:
    """DTSTART and DTEND values; DTEND is None when the booking has no length.

    All-day bookings become DATE values with the exclusive end iCalendar uses, the same
    convention as the booking's own half-open interval.  RFC 5545 wants DTEND later than
    DTSTART and defines an event without DTEND as lasting one day (DATE) or no time
    (DATE-TIME), so a zero-length booking is written without DTEND.
    """
    if booking.all_day:
        first, end_day = allday_dates(booking.start, booking.end, tz)
        return first, (end_day if end_day > first else None)
    start = _local(booking.start, tz)
    end = _local(booking.end, tz) if booking.end > booking.start else None
    return start, end


def _local(instant: datetime, tz: ZoneInfo) -> datetime:
    """The instant as wall time in ``tz``, or in UTC when wall time can't name it.

    When clocks go back, a wall time occurs twice and RFC 5545 §3.3.5 reads a TZID value as
    the first occurrence.  An instant in the repeated hour's second pass (``fold=1``) would
    be read an hour early, so it is written in UTC instead, which is exact and allowed
    alongside a TZID value on the other end.
    """
    local = instant.astimezone(tz)
    if local.fold and local.replace(fold=0).utcoffset() != local.utcoffset():
        return instant.astimezone(UTC)
    return local


def _zone_span(booking: Booking, tz: ZoneInfo) -> tuple[date, date]:
    """Dates the generated VTIMEZONE must cover: 1 January of the start year up to the next
    year after the end, so it holds the transitions around the event and stays small and
    the same for every booking in the same years."""
    first = booking.start.astimezone(tz).year
    last = max(booking.end, booking.start).astimezone(tz).year
    return date(first, 1, 1), date(last + 1, 1, 1)


def _address(email: str, name: str | None) -> vCalAddress:
    address = vCalAddress(f"mailto:{email.strip()}")
    if name and name.strip():
        address.params["CN"] = name.strip()
    return address


def _describe(booking: Booking) -> str | None:
    """Service and staff on their own lines, then the notes, or None when there is nothing."""
    lines = []
    if booking.service:
        lines.append(f"Service: {booking.service}")
    if booking.staff:
        lines.append(f"Staff: {booking.staff}")
    notes = (booking.notes or "").strip()
    if notes:
        if lines:
            lines.append("")
        lines.append(notes)
    return "\n".join(lines) or None
