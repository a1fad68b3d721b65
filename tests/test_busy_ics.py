"""`--busy FILE.ics`: every occurrence of a recurring event is busy (RRULE, EXDATE,
RECURRENCE-ID overrides, DST, all-day series), expanded only within the window asked for.

Pure: real iCalendar text written to tmp_path and read by ``read_busy_file``; the CLI path
is covered in tests/test_availability.py.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from bsync.availability.query import read_busy_file
from bsync.errors import UsageError

WAW = ZoneInfo("Europe/Warsaw")

# Europe/Warsaw as Radicale, Thunderbird and Apple Calendar write it; under a made-up TZID so
# the offsets can only come from this VTIMEZONE, not from the system's zone database.
WARSAW_VTIMEZONE = """BEGIN:VTIMEZONE
TZID:Custom/Warsaw
BEGIN:STANDARD
DTSTART:19701025T030000
RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU
TZOFFSETFROM:+0200
TZOFFSETTO:+0100
TZNAME:CET
END:STANDARD
BEGIN:DAYLIGHT
DTSTART:19700329T020000
RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU
TZOFFSETFROM:+0100
TZOFFSETTO:+0200
TZNAME:CEST
END:DAYLIGHT
END:VTIMEZONE
"""


def vcalendar(*components: str) -> str:
    """One VCALENDAR holding the given components, with CRLF line ends as RFC 5545 wants."""
    body = "BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//bsync tests//EN\n" + "".join(components) + "END:VCALENDAR\n"
    return body.replace("\n", "\r\n")


def vevent(uid: str, *lines: str) -> str:
    return f"BEGIN:VEVENT\nUID:{uid}\nDTSTAMP:20260101T000000Z\n" + "".join(f"{line}\n" for line in lines) + "END:VEVENT\n"


def busy(tmp_path, text: str, first: date, last: date, name: str = "busy.ics") -> list[tuple[str, str]]:
    """The busy intervals of ``text`` for the days first..last, as sorted local ISO strings."""
    path = tmp_path / name
    path.write_text(text)
    window = (datetime.combine(first, time(0), WAW), datetime.combine(last + timedelta(days=1), time(0), WAW))
    return sorted((s.astimezone(WAW).isoformat(), e.astimezone(WAW).isoformat())
                  for s, e in read_busy_file(path, WAW, window))


def test_a_daily_series_with_count_is_busy_each_of_its_days(tmp_path):
    text = vcalendar(vevent("daily@test", "DTSTART;TZID=Europe/Warsaw:20261201T100000",
                            "DTEND;TZID=Europe/Warsaw:20261201T113000", "RRULE:FREQ=DAILY;COUNT=3"))
    assert busy(tmp_path, text, date(2026, 11, 30), date(2026, 12, 6)) == [
        ("2026-12-01T10:00:00+01:00", "2026-12-01T11:30:00+01:00"),
        ("2026-12-02T10:00:00+01:00", "2026-12-02T11:30:00+01:00"),
        ("2026-12-03T10:00:00+01:00", "2026-12-03T11:30:00+01:00"),
    ]


@pytest.mark.parametrize("tzid, zones", [("Europe/Warsaw", ()), ("Custom/Warsaw", (WARSAW_VTIMEZONE,))],
                         ids=["iana-tzid", "vtimezone"])
def test_a_weekly_series_keeps_its_local_time_across_the_dst_change(tmp_path, tzid, zones):
    text = vcalendar(*zones, vevent("weekly@test", f"DTSTART;TZID={tzid}:20260323T090000",
                                    f"DTEND;TZID={tzid}:20260323T100000", "RRULE:FREQ=WEEKLY;BYDAY=MO,WE"))
    assert busy(tmp_path, text, date(2026, 3, 23), date(2026, 4, 1)) == [  # clocks go forward on Sun 29 March
        ("2026-03-23T09:00:00+01:00", "2026-03-23T10:00:00+01:00"),
        ("2026-03-25T09:00:00+01:00", "2026-03-25T10:00:00+01:00"),
        ("2026-03-30T09:00:00+02:00", "2026-03-30T10:00:00+02:00"),
        ("2026-04-01T09:00:00+02:00", "2026-04-01T10:00:00+02:00"),
    ]


SERIES = ("DTSTART;TZID=Europe/Warsaw:20261130T090000", "DTEND;TZID=Europe/Warsaw:20261130T100000",
          "RRULE:FREQ=DAILY;COUNT=3")  # Mon 30 Nov to Wed 2 Dec, 09:00-10:00


def test_an_exdate_frees_that_occurrence(tmp_path):
    text = vcalendar(vevent("ex@test", *SERIES, "EXDATE;TZID=Europe/Warsaw:20261201T090000"))
    assert busy(tmp_path, text, date(2026, 11, 30), date(2026, 12, 2)) == [
        ("2026-11-30T09:00:00+01:00", "2026-11-30T10:00:00+01:00"),
        ("2026-12-02T09:00:00+01:00", "2026-12-02T10:00:00+01:00"),
    ]


def test_a_recurrence_id_override_moves_its_occurrence(tmp_path):
    moved = vevent("move@test", "RECURRENCE-ID;TZID=Europe/Warsaw:20261201T090000",
                   "DTSTART;TZID=Europe/Warsaw:20261201T150000", "DTEND;TZID=Europe/Warsaw:20261201T163000")
    text = vcalendar(vevent("move@test", *SERIES), moved)
    assert busy(tmp_path, text, date(2026, 11, 30), date(2026, 12, 2)) == [
        ("2026-11-30T09:00:00+01:00", "2026-11-30T10:00:00+01:00"),
        ("2026-12-01T15:00:00+01:00", "2026-12-01T16:30:00+01:00"),  # the old 09:00 is free
        ("2026-12-02T09:00:00+01:00", "2026-12-02T10:00:00+01:00"),
    ]


def test_a_cancelled_override_frees_its_occurrence(tmp_path):
    cancelled = vevent("cancel@test", "RECURRENCE-ID;TZID=Europe/Warsaw:20261202T090000",
                       "DTSTART;TZID=Europe/Warsaw:20261202T090000", "DTEND;TZID=Europe/Warsaw:20261202T100000",
                       "STATUS:CANCELLED")
    text = vcalendar(vevent("cancel@test", *SERIES), cancelled)
    assert busy(tmp_path, text, date(2026, 11, 30), date(2026, 12, 2)) == [
        ("2026-11-30T09:00:00+01:00", "2026-11-30T10:00:00+01:00"),
        ("2026-12-01T09:00:00+01:00", "2026-12-01T10:00:00+01:00"),
    ]


def test_a_cancelled_series_and_a_transparent_one_are_free(tmp_path):
    text = vcalendar(vevent("off@test", *SERIES, "STATUS:CANCELLED"),
                     vevent("fyi@test", *SERIES, "TRANSP:TRANSPARENT"),
                     vevent("real@test", "DTSTART;TZID=Europe/Warsaw:20261201T120000",
                            "DTEND;TZID=Europe/Warsaw:20261201T130000", "TRANSP:OPAQUE"))
    assert busy(tmp_path, text, date(2026, 11, 30), date(2026, 12, 2)) == [
        ("2026-12-01T12:00:00+01:00", "2026-12-01T13:00:00+01:00")]


def test_an_all_day_weekly_series_blocks_whole_local_days(tmp_path):
    text = vcalendar(vevent("sundays@test", "DTSTART;VALUE=DATE:20260322", "DTEND;VALUE=DATE:20260323",
                            "RRULE:FREQ=WEEKLY;BYDAY=SU"))
    assert busy(tmp_path, text, date(2026, 3, 20), date(2026, 4, 6)) == [
        ("2026-03-22T00:00:00+01:00", "2026-03-23T00:00:00+01:00"),
        ("2026-03-29T00:00:00+01:00", "2026-03-30T00:00:00+02:00"),  # a 23-hour day: DST starts
        ("2026-04-05T00:00:00+02:00", "2026-04-06T00:00:00+02:00"),
    ]


def test_floating_times_are_in_the_business_timezone(tmp_path):
    text = vcalendar(vevent("float@test", "DTSTART:20260323T090000", "DURATION:PT45M", "RRULE:FREQ=WEEKLY"))
    assert busy(tmp_path, text, date(2026, 3, 20), date(2026, 4, 1)) == [
        ("2026-03-23T09:00:00+01:00", "2026-03-23T09:45:00+01:00"),
        ("2026-03-30T09:00:00+02:00", "2026-03-30T09:45:00+02:00"),
    ]


def test_a_series_without_end_is_expanded_only_within_the_window(tmp_path):
    text = vcalendar(vevent("forever@test", "DTSTART;TZID=Europe/Warsaw:20200106T083000",
                            "DTEND;TZID=Europe/Warsaw:20200106T090000", "RRULE:FREQ=DAILY"))
    first = date(2026, 12, 1)
    intervals = busy(tmp_path, text, first, first + timedelta(days=119))
    assert len(intervals) == 120
    assert intervals[0][0] == "2026-12-01T08:30:00+01:00" and intervals[-1][0] == "2027-03-30T08:30:00+02:00"


NEW_YORK_VTIMEZONE = """BEGIN:VTIMEZONE
TZID:America/New_York
BEGIN:STANDARD
DTSTART:19701101T020000
RRULE:FREQ=YEARLY;BYMONTH=11;BYDAY=1SU
TZOFFSETFROM:-0400
TZOFFSETTO:-0500
TZNAME:EST
END:STANDARD
BEGIN:DAYLIGHT
DTSTART:19700308T020000
RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=2SU
TZOFFSETFROM:-0500
TZOFFSETTO:-0400
TZNAME:EDT
END:DAYLIGHT
END:VTIMEZONE
"""


def test_a_collection_export_with_many_events_and_timezones(tmp_path):
    """Radicale's export of a collection: one VCALENDAR, every item's VTIMEZONE (one repeated),
    events in two zones whose clocks change on different dates (US 8 March, EU 29 March)."""
    text = vcalendar(WARSAW_VTIMEZONE, NEW_YORK_VTIMEZONE, WARSAW_VTIMEZONE,
                     vevent("here@test", "DTSTART;TZID=Custom/Warsaw:20260323T090000",
                            "DTEND;TZID=Custom/Warsaw:20260323T100000", "RRULE:FREQ=WEEKLY;COUNT=3"),
                     vevent("there@test", "DTSTART;TZID=America/New_York:20260309T090000",
                            "DTEND;TZID=America/New_York:20260309T100000", "RRULE:FREQ=DAILY;COUNT=30"))
    assert busy(tmp_path, text, date(2026, 3, 28), date(2026, 3, 30)) == [
        ("2026-03-28T14:00:00+01:00", "2026-03-28T15:00:00+01:00"),  # 09:00 EDT, before Warsaw's change
        ("2026-03-29T15:00:00+02:00", "2026-03-29T16:00:00+02:00"),
        ("2026-03-30T09:00:00+02:00", "2026-03-30T10:00:00+02:00"),
        ("2026-03-30T15:00:00+02:00", "2026-03-30T16:00:00+02:00"),
    ]


def test_several_calendars_in_one_file_each_with_its_own_timezones(tmp_path):
    """`cat work.ics home.ics > busy.ics`: two VCALENDARs, only the first defines Custom/Warsaw."""
    work = vcalendar(WARSAW_VTIMEZONE, vevent("w@test", "DTSTART;TZID=Custom/Warsaw:20260330T090000",
                                              "DTEND;TZID=Custom/Warsaw:20260330T100000"))
    home = vcalendar(vevent("h@test", "DTSTART:20260330T160000Z", "DTEND:20260330T170000Z"))
    assert busy(tmp_path, work + home, date(2026, 3, 30), date(2026, 3, 30)) == [
        ("2026-03-30T09:00:00+02:00", "2026-03-30T10:00:00+02:00"),
        ("2026-03-30T18:00:00+02:00", "2026-03-30T19:00:00+02:00"),
    ]


@pytest.mark.parametrize("event, message", [
    (vevent("bad-rule@test", *SERIES[:2], "RRULE:FREQ=SOMETIMES"),
     "busy.ics: event bad-rule@test (line 5): "),
    (vevent("no-start@test", "DTEND;TZID=Europe/Warsaw:20261201T100000"),
     "busy.ics: event no-start@test (line 5): missing DTSTART; fix or remove that event"),
    (vevent("bad-start@test", "DTSTART;TZID=Europe/Warsaw:2026120", "DTEND;TZID=Europe/Warsaw:20261201T100000"),
     "busy.ics: event bad-start@test (line 5): "),
    (vevent("ninth-monday@test", *SERIES[:2], "RRULE:FREQ=MONTHLY;BYDAY=9MO"),  # dateutil: IndexError
     "busy.ics: event ninth-monday@test (line 5): cannot expand its recurrence"),
], ids=["bad-rrule", "no-dtstart", "bad-dtstart", "rule-dateutil-cannot-expand"])
def test_a_broken_event_names_the_file_and_its_uid(tmp_path, event, message):
    good = vevent("good@test", *SERIES)
    with pytest.raises(UsageError) as caught:
        busy(tmp_path, vcalendar(event, good), date(2026, 11, 30), date(2026, 12, 2))
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_text_that_is_not_icalendar_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match=r"busy\.ics: not a valid iCalendar file"):
        busy(tmp_path, "BEGIN:VCALENDAR\r\nthis is not a content line\r\nEND:VCALENDAR\r\n",
             date(2026, 11, 30), date(2026, 12, 2))
