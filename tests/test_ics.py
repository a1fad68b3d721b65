"""The invite renderer is pure: each test builds a Booking, renders it and reads the bytes
back with icalendar's own parser, the way a mail client would."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from icalendar import Calendar

from bsync.notices.ics import PRODID, booking_invite, ics_content_type, ics_filename, uid_for
from bsync.core.model import Booking, Customer, Status
from bsync.core.timeutil import UTC, allday_span

STAMP = datetime(2026, 9, 1, 8, 30, tzinfo=UTC)


def booking(key="notion:abc", *, start=datetime(2026, 6, 10, 8, 0, tzinfo=UTC), minutes=60,
            tz="Europe/Berlin", **kw) -> Booking:
    fields = {"title": "Rex: bath", "customer": Customer("Zoë Keller", "zoe@example.com", "+49 30 1234"),
              "service": "Bath & trim", "staff": "Ana", "notes": "Nervous around dryers",
              "location": "Shop, Main St 1"}
    fields.update(kw)
    return Booking(key=key, start=start, end=start + timedelta(minutes=minutes), timezone=tz,
                   status=Status.SCHEDULED, **fields)


def render(b: Booking, method="REQUEST", sequence=0, **kw) -> bytes:
    kw.setdefault("organizer_email", "shop@example.com")
    kw.setdefault("organizer_name", "Pet Shop")
    return booking_invite(b, method=method, sequence=sequence, stamp=STAMP, **kw)


def parse(data: bytes) -> tuple[Calendar, object]:
    cal = Calendar.from_ical(data)
    events = cal.walk("VEVENT")
    assert len(events) == 1
    return cal, events[0]


def as_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


# --- UID --------------------------------------------------------------------------------------

def test_uid_is_stable_and_distinct_per_key():
    assert uid_for("notion:abc") == uid_for("notion:abc")
    assert uid_for("notion:abc") != uid_for("notion:abd")
    assert uid_for("notion:abc") != uid_for("calcom:abc")
    # a fixed value: changing the derivation would orphan every invite already sent
    assert uid_for("notion:abc") == "d76368b4597098e3aec16b4d33a55092@bsync"


def test_uid_uses_only_safe_characters_and_the_domain():
    uid = uid_for("gcal:weird id/with;chars,and\nnewline é", domain="shop.example.com")
    assert re.fullmatch(r"[0-9a-f]{32}@shop\.example\.com", uid)


@pytest.mark.parametrize("domain", ["", "a b", "x@y", "ex;ample", "-bad"])
def test_uid_rejects_unsafe_domains(domain):
    with pytest.raises(ValueError):
        uid_for("k", domain)


def test_event_carries_the_uid_of_the_key():
    _, ev = parse(render(booking(), uid_domain="shop.example.com"))
    assert str(ev["UID"]) == uid_for("notion:abc", "shop.example.com")


# --- calendar, method, sequence, status ---------------------------------------------------------

def test_calendar_headers_and_request():
    cal, ev = parse(render(booking(), sequence=3))
    assert str(cal["PRODID"]) == PRODID
    assert str(cal["VERSION"]) == "2.0"
    assert str(cal["METHOD"]) == "REQUEST"
    assert ev.decoded("SEQUENCE") == 3
    assert str(ev["STATUS"]) == "CONFIRMED"
    assert ev.decoded("DTSTAMP") == STAMP
    assert ev["DTSTAMP"].to_ical().endswith(b"Z")
    assert str(ev["SUMMARY"]) == "Rex: bath"
    assert str(ev["LOCATION"]) == "Shop, Main St 1"


def test_cancel_has_cancelled_status_and_same_uid():
    b = replace(booking(), status=Status.CANCELLED)
    _, req = parse(render(booking(), sequence=0))
    cal, ev = parse(render(b, method="CANCEL", sequence=1))
    assert str(cal["METHOD"]) == "CANCEL"
    assert str(ev["STATUS"]) == "CANCELLED"
    assert ev.decoded("SEQUENCE") == 1
    assert str(ev["UID"]) == str(req["UID"])
    assert str(ev["ATTENDEE"]) == "mailto:zoe@example.com"  # the customer learns of it


def test_stamp_in_another_zone_is_written_in_utc():
    stamp = datetime(2026, 9, 1, 10, 30, tzinfo=ZoneInfo("Europe/Berlin"))
    _, ev = parse(booking_invite(booking(), method="REQUEST", sequence=0, organizer_email="s@example.com",
                                 stamp=stamp))
    assert ev.decoded("DTSTAMP") == STAMP
    assert ev["DTSTAMP"].to_ical() == b"20260901T083000Z"


@pytest.mark.parametrize("bad", [
    {"method": "PUBLISH"}, {"sequence": -1}, {"sequence": True}, {"stamp": datetime(2026, 9, 1)},
    {"organizer_email": " "},
])
def test_invalid_arguments_are_rejected(bad):
    kw = {"method": "REQUEST", "sequence": 0, "organizer_email": "s@example.com", "stamp": STAMP} | bad
    with pytest.raises(ValueError):
        booking_invite(booking(), **kw)


def test_filename_and_content_type():
    assert ics_filename("REQUEST") == "invite.ics"
    assert ics_filename("CANCEL") == "cancel.ics"
    assert ics_content_type("REQUEST") == "text/calendar; charset=utf-8; method=REQUEST"
    assert ics_content_type("CANCEL") == "text/calendar; charset=utf-8; method=CANCEL"
    with pytest.raises(ValueError):
        ics_filename("REPLY")


# --- organizer and attendee -------------------------------------------------------------------

def test_organizer_and_attendee():
    _, ev = parse(render(booking()))
    org = ev["ORGANIZER"]
    assert str(org) == "mailto:shop@example.com"
    assert org.params["CN"] == "Pet Shop"
    att = ev["ATTENDEE"]
    assert not isinstance(att, list)
    assert str(att) == "mailto:zoe@example.com"
    assert att.params["CN"] == "Zoë Keller"
    assert att.params["ROLE"] == "REQ-PARTICIPANT"
    assert att.params["PARTSTAT"] == "NEEDS-ACTION"
    assert att.params["RSVP"] == "FALSE"


def test_organizer_without_name_has_no_cn():
    _, ev = parse(render(booking(), organizer_name=None))
    assert "CN" not in ev["ORGANIZER"].params


def test_no_attendee_without_customer_email():
    _, ev = parse(render(booking(customer=Customer("Walk-in", None, "+49 30 1"))))
    assert "ATTENDEE" not in ev
    assert "ORGANIZER" in ev


# --- time zones -------------------------------------------------------------------------------

def vtimezone(cal: Calendar, tzid: str):
    zones = [z for z in cal.walk("VTIMEZONE") if str(z["TZID"]) == tzid]
    assert len(zones) == 1, f"expected one VTIMEZONE {tzid}"
    return zones[0]


def check_local(cal, ev, prop: str, instant: datetime, tzid: str, wall: datetime):
    """``prop`` is written as ``wall`` with TZID=tzid, and both the zoneinfo database and the
    file's own VTIMEZONE (what Outlook uses) read it as ``instant``."""
    value = ev[prop]
    assert value.params["TZID"] == tzid
    assert value.to_ical().decode() == wall.strftime("%Y%m%dT%H%M%S")  # local, no "Z"
    assert as_utc(ev.decoded(prop)) == instant
    assert as_utc(wall.replace(tzinfo=ZoneInfo(tzid))) == instant
    embedded = vtimezone(cal, tzid).to_tz(lookup_tzid=False)
    assert as_utc(wall.replace(tzinfo=embedded)) == instant


def test_timed_booking_uses_tzid_local_time_not_utc():
    b = booking(start=datetime(2026, 6, 10, 8, 0, tzinfo=UTC), minutes=90)
    data = render(b)
    cal, ev = parse(data)
    check_local(cal, ev, "DTSTART", b.start, "Europe/Berlin", datetime(2026, 6, 10, 10, 0))
    check_local(cal, ev, "DTEND", b.end, "Europe/Berlin", datetime(2026, 6, 10, 11, 30))
    assert b"DTSTART;TZID=Europe/Berlin:20260610T100000\r\n" in data


def test_vtimezone_present_once_and_covers_the_event_year():
    cal, ev = parse(render(booking(tz="America/New_York")))
    zone = vtimezone(cal, "America/New_York")
    assert len(cal.walk("VTIMEZONE")) == 1
    starts = [c.decoded("DTSTART") for c in zone.subcomponents]
    assert any(s.year == 2026 and s.month == 3 for s in starts)  # DST begins
    assert any(s.year == 2026 and s.month == 11 for s in starts)  # DST ends
    assert ev["DTSTART"].params["TZID"] == "America/New_York"


@pytest.mark.parametrize(("tzid", "start_utc", "minutes", "wall_start", "wall_end"), [
    # Berlin falls back at 03:00 CEST on 25 Oct 2026: 01:30 CEST -> 04:00 CET is 3.5 hours
    ("Europe/Berlin", datetime(2026, 10, 24, 23, 30, tzinfo=UTC), 210,
     datetime(2026, 10, 25, 1, 30), datetime(2026, 10, 25, 4, 0)),
    # New York falls back at 02:00 EDT on 1 Nov 2026: 00:30 EDT -> 03:30 EST is 4 hours
    ("America/New_York", datetime(2026, 11, 1, 4, 30, tzinfo=UTC), 240,
     datetime(2026, 11, 1, 0, 30), datetime(2026, 11, 1, 3, 30)),
    # and a week-long booking over the change keeps 10:00 local at both ends
    ("America/New_York", datetime(2026, 10, 29, 14, 0, tzinfo=UTC), 7 * 24 * 60 + 60,
     datetime(2026, 10, 29, 10, 0), datetime(2026, 11, 5, 10, 0)),
])
def test_booking_across_dst_change_keeps_wall_time_and_instant(tzid, start_utc, minutes, wall_start, wall_end):
    b = booking(start=start_utc, minutes=minutes, tz=tzid)
    cal, ev = parse(render(b))
    check_local(cal, ev, "DTSTART", b.start, tzid, wall_start)
    check_local(cal, ev, "DTEND", b.end, tzid, wall_end)


def test_second_pass_of_repeated_hour_is_written_in_utc():
    # 02:30 happens twice in Berlin on 25 Oct 2026; a TZID value would mean the first (CEST)
    b = booking(start=datetime(2026, 10, 25, 1, 30, tzinfo=UTC), minutes=60)  # 02:30 CET -> 03:30 CET
    cal, ev = parse(render(b))
    assert ev["DTSTART"].to_ical() == b"20261025T013000Z"
    assert "TZID" not in ev["DTSTART"].params
    assert as_utc(ev.decoded("DTSTART")) == b.start
    check_local(cal, ev, "DTEND", b.end, "Europe/Berlin", datetime(2026, 10, 25, 3, 30))


def test_first_pass_of_repeated_hour_keeps_tzid():
    b = booking(start=datetime(2026, 10, 25, 0, 30, tzinfo=UTC), minutes=30)  # 02:30 CEST
    cal, ev = parse(render(b))
    check_local(cal, ev, "DTSTART", b.start, "Europe/Berlin", datetime(2026, 10, 25, 2, 30))


def test_utc_zone_is_written_with_z_and_no_vtimezone():
    b = booking(tz="UTC")
    cal, ev = parse(render(b))
    assert ev["DTSTART"].to_ical() == b"20260610T080000Z"
    assert as_utc(ev.decoded("DTEND")) == b.end
    assert cal.walk("VTIMEZONE") == []


def test_booking_over_new_year_gets_both_years():
    b = booking(start=datetime(2026, 12, 31, 22, 0, tzinfo=UTC), minutes=180)  # 23:00 -> 02:00 Berlin
    cal, ev = parse(render(b))
    check_local(cal, ev, "DTEND", b.end, "Europe/Berlin", datetime(2027, 1, 1, 2, 0))
    assert cal.get_missing_tzids() == set()


# --- all-day ----------------------------------------------------------------------------------

def test_all_day_booking_uses_dates_with_exclusive_end():
    tz = ZoneInfo("America/New_York")
    start, end = allday_span(date(2026, 10, 31), date(2026, 11, 2), tz)  # three days over the DST change
    b = replace(booking(tz="America/New_York"), start=start, end=end, all_day=True)
    data = render(b)
    cal, ev = parse(data)
    assert ev["DTSTART"].params["VALUE"] == "DATE"
    assert ev["DTEND"].params["VALUE"] == "DATE"
    assert "TZID" not in ev["DTSTART"].params
    assert ev.decoded("DTSTART") == date(2026, 10, 31)
    assert ev.decoded("DTEND") == date(2026, 11, 3)
    assert b"DTSTART;VALUE=DATE:20261031\r\n" in data
    assert b"DTEND;VALUE=DATE:20261103\r\n" in data
    assert cal.walk("VTIMEZONE") == []


def test_single_all_day_in_zone_east_of_utc():
    tz = ZoneInfo("Pacific/Auckland")  # local midnight is the previous day in UTC
    start, end = allday_span(date(2026, 7, 4), date(2026, 7, 4), tz)
    b = replace(booking(tz="Pacific/Auckland"), start=start, end=end, all_day=True)
    _, ev = parse(render(b))
    assert (ev.decoded("DTSTART"), ev.decoded("DTEND")) == (date(2026, 7, 4), date(2026, 7, 5))


def test_zero_length_booking_has_no_dtend():
    _, ev = parse(render(booking(minutes=0)))
    assert "DTEND" not in ev
    assert "DTSTART" in ev


# --- text -------------------------------------------------------------------------------------

def test_description_built_from_service_staff_notes():
    _, ev = parse(render(booking(notes="Line one\nLine two")))
    assert str(ev["DESCRIPTION"]) == "Service: Bath & trim\nStaff: Ana\n\nLine one\nLine two"


def test_description_given_wins_and_missing_parts_are_left_out():
    _, ev = parse(render(booking(), description="See you soon"))
    assert str(ev["DESCRIPTION"]) == "See you soon"
    _, ev = parse(render(booking(service=None, staff=None, notes="just notes")))
    assert str(ev["DESCRIPTION"]) == "just notes"
    _, ev = parse(render(booking(service=None, staff=None, notes=None, location=None)))
    assert "DESCRIPTION" not in ev
    assert "LOCATION" not in ev


def test_special_characters_round_trip():
    title = "Bath, trim; nails \\ Größe: Ünterwäsche — 猫 " * 3  # long: folded lines split UTF-8 safely
    notes = "Allergic to: oats, wheat;\nprefers “quiet” room\n\nÇa va? 😀"
    location = "Café, Straße 5; Hinterhof"
    b = booking(title=title, notes=notes, location=location, service="Wash; dry", staff="Zoë, Jr.",
                customer=Customer('Ann "Nan" O\'Brien, Jr.; Esq.', "ann@example.com"))
    data = render(b, organizer_name="Shop; Co, Ltd")
    data.decode("utf-8")  # valid UTF-8 as a whole
    assert all(len(line) <= 75 for line in data.split(b"\r\n"))
    _, ev = parse(data)
    assert str(ev["SUMMARY"]) == title
    assert str(ev["LOCATION"]) == location
    assert str(ev["DESCRIPTION"]) == f"Service: Wash; dry\nStaff: Zoë, Jr.\n\n{notes}"
    assert ev["ATTENDEE"].params["CN"] == 'Ann "Nan" O\'Brien, Jr.; Esq.'
    assert ev["ORGANIZER"].params["CN"] == "Shop; Co, Ltd"


def test_lines_end_with_crlf():
    data = render(booking())
    assert data.endswith(b"END:VCALENDAR\r\n")
    assert b"\n" not in data.replace(b"\r\n", b"")


# --- determinism ------------------------------------------------------------------------------

def test_same_inputs_render_same_bytes():
    b = booking(start=datetime(2026, 10, 24, 23, 30, tzinfo=UTC), minutes=210)
    first = render(b, sequence=4, description="x")
    second = render(replace(b), sequence=4, description="x")
    assert first == second
    assert render(b, sequence=5, description="x") != first
