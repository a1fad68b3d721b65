"""`bsync availability` and the HTTP endpoints, against the Google sandbox (freeBusy) and
the state store; the slot arithmetic itself is covered by tests/test_slots.py."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from itertools import chain, pairwise
from zoneinfo import ZoneInfo

import httpx
import pytest

from bsync.availability.query import requested_days
from bsync.errors import UsageError
from bsync.errors import ConfigError, RemoteError, RemoteUnavailableError
from bsync.calendars.gcal import calendar_groups, event_id_for, freebusy_pieces, raise_calendar_errors
from bsync.core.timeutil import parse_day
from bsync.sandbox.seed import booking_properties

WAW = ZoneInfo("Europe/Warsaw")
DAY = date.today() + timedelta(days=7)
NOW = datetime.now(WAW).replace(microsecond=0).isoformat()


def at(h, m=0, day=DAY):
    return datetime(day.year, day.month, day.day, h, m, tzinfo=WAW)


def working_hours(bsync, max_advance: str = "60d"):
    """A simple week: 09:00-12:00 and 13:00-17:00 every day, 60-minute slots."""
    with bsync.config.open("a") as f:
        f.write(f'\n[availability]\nduration = 60\nmin_notice = "0"\nmax_advance = "{max_advance}"\n'
                '[availability.hours]\n' + "".join(f'{d} = ["09:00-12:00", "13:00-17:00"]\n'
                                                   for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")))
    return bsync


@pytest.fixture
def hours(bsync):
    return working_hours(bsync)


def ask_days(more: int, calendars: list[str]) -> list[str]:
    """`bsync availability` from DAY to DAY + ``more`` days across ``calendars``, as JSON."""
    return ["availability", "--date", DAY.isoformat(), "--to", (DAY + timedelta(days=more)).isoformat(),
            "--now", NOW, "--json", *(arg for cal in calendars for arg in ("--calendar", cal))]


def starts(result, day=DAY):
    [d] = [d for d in result["days"] if d["date"] == day.isoformat()]
    return [datetime.fromisoformat(s["start"]).astimezone(WAW).strftime("%H:%M") for s in d["slots"]]


def test_busy_file_json_shape_and_every_day_present(hours, tmp_path):
    busy = tmp_path / "busy.json"
    busy.write_text(json.dumps([{"start": at(10, 30).isoformat(), "end": at(11, 0).isoformat()}]))
    result = hours("availability", "--date", DAY.isoformat(), "--to", (DAY + timedelta(days=2)).isoformat(),
                   "--busy", str(busy), "--now", NOW, "--json")
    assert result.exit_code == 0, result.stderr
    data = result.json
    assert data["timezone"] == "Europe/Warsaw" and data["duration"] == 60
    assert [d["date"] for d in data["days"]] == [(DAY + timedelta(days=i)).isoformat() for i in range(3)]
    assert starts(data) == ["09:00", "11:00", "13:00", "14:00", "15:00", "16:00"]
    first = data["days"][0]["slots"][0]
    assert first["start"].endswith(("+01:00", "+02:00"))  # local offsets


def test_ics_busy_file_with_an_all_day_event(hours, tmp_path):
    ics = tmp_path / "busy.ics"
    ics.write_text("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n"
                   "BEGIN:VEVENT\r\nUID:a@test\r\nDTSTART;VALUE=DATE:" + DAY.strftime("%Y%m%d") + "\r\n"
                   "DTEND;VALUE=DATE:" + (DAY + timedelta(days=1)).strftime("%Y%m%d") + "\r\nSUMMARY:Closed\r\n"
                   "END:VEVENT\r\nEND:VCALENDAR\r\n")
    data = hours("availability", "--date", DAY.isoformat(), "--date", (DAY + timedelta(days=1)).isoformat(),
                 "--busy", str(ics), "--now", NOW, "--json").json
    assert starts(data) == []
    assert len(starts(data, DAY + timedelta(days=1))) == 7


def test_ics_busy_file_every_occurrence_of_a_series_is_busy(hours, tmp_path):
    """A daily 10:00 series begun weeks ago, never ending, with tomorrow's occurrence removed."""
    ics = tmp_path / "busy.ics"
    first, skipped = DAY - timedelta(days=30), DAY + timedelta(days=1)
    ics.write_text("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n"
                   "BEGIN:VEVENT\r\nUID:standup@test\r\n"
                   f"DTSTART;TZID=Europe/Warsaw:{first:%Y%m%d}T100000\r\n"
                   f"DTEND;TZID=Europe/Warsaw:{first:%Y%m%d}T110000\r\nRRULE:FREQ=DAILY\r\n"
                   f"EXDATE;TZID=Europe/Warsaw:{skipped:%Y%m%d}T100000\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")
    result = hours("availability", "--date", DAY.isoformat(), "--to", (DAY + timedelta(days=2)).isoformat(),
                   "--busy", str(ics), "--now", NOW, "--json")
    assert result.exit_code == 0, result.stderr
    busy_day = ["09:00", "11:00", "13:00", "14:00", "15:00", "16:00"]
    assert starts(result.json) == busy_day and starts(result.json, DAY + timedelta(days=2)) == busy_day
    assert "10:00" in starts(result.json, skipped)


def test_ics_busy_file_with_a_broken_rule_exits_2_naming_the_event(hours, tmp_path):
    ics = tmp_path / "busy.ics"
    ics.write_text("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\nUID:standup@test\r\n"
                   f"DTSTART;TZID=Europe/Warsaw:{DAY:%Y%m%d}T100000\r\nRRULE:FREQ=SOMETIMES\r\n"
                   "END:VEVENT\r\nEND:VCALENDAR\r\n")
    result = hours("availability", "--date", DAY.isoformat(), "--busy", str(ics), "--now", NOW)
    assert result.exit_code == 2 and "busy.ics: event standup@test (line 5)" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_google_freebusy_one_request_for_30_days_across_3_calendars(sandbox, hours):
    extra = ["staff-anna@group.calendar.google.com", "staff-ben@group.calendar.google.com"]
    for cal in extra:
        sandbox.google.add_calendar(cal, time_zone="Europe/Warsaw")
    sandbox.google.insert_event(extra[0], {"summary": "Anna busy", "start": {"dateTime": at(9).isoformat()},
                                           "end": {"dateTime": at(10).isoformat()}})
    sandbox.google.insert_event(extra[1], {"summary": "Ben busy", "start": {"dateTime": at(15).isoformat()},
                                           "end": {"dateTime": at(16, 30).isoformat()}})
    sandbox.clear_requests()
    calendars = [sandbox.google.calendar_id, *extra]
    result = hours(*ask_days(29, calendars))
    assert result.exit_code == 0, result.stderr
    assert len(result.json["days"]) == 30
    assert sandbox.google.count("POST", "/freeBusy") == 1 and len(sandbox.google.requests) <= 2  # (+ token)
    assert starts(result.json) == ["10:00", "11:00", "13:00", "14:00"]


T0 = datetime(2026, 1, 5, tzinfo=UTC)


@pytest.mark.parametrize("length, expected", [
    (timedelta(days=90), [timedelta(days=90)]),
    (timedelta(days=90, minutes=1), [timedelta(days=90), timedelta(minutes=1)]),
    (timedelta(days=365), [timedelta(days=90)] * 4 + [timedelta(days=5)]),
])
def test_freebusy_pieces_are_at_most_90_days_and_cover_the_range(length, expected):
    pieces = freebusy_pieces(T0, T0 + length)
    assert [end - start for start, end in pieces] == expected
    assert pieces[0][0] == T0 and pieces[-1][1] == T0 + length
    assert all(a[1] == b[0] for a, b in pairwise(pieces))


def test_freebusy_pieces_count_elapsed_time_across_the_end_of_summer_time():
    """90 local days from a Warsaw midnight in August are 90 days and an hour (October's
    extra hour): Google would refuse that, so pieces are cut in UTC."""
    start = datetime(2026, 8, 1, tzinfo=WAW)
    pieces = freebusy_pieces(start, datetime(2026, 11, 15, tzinfo=WAW))
    assert all(end - start <= timedelta(days=90) for start, end in pieces)
    assert pieces[0] == (start.astimezone(UTC), start.astimezone(UTC) + timedelta(days=90))


@pytest.mark.parametrize("count, sizes", [(1, [1]), (50, [50]), (51, [50, 1]), (120, [50, 50, 20])])
def test_calendar_groups_hold_at_most_50(count, sizes):
    cals = [f"c{i}@example.com" for i in range(count)]
    groups = calendar_groups(cals + cals[:3])  # a calendar named twice is asked once
    assert [len(g) for g in groups] == sizes and list(chain(*groups)) == cals


def freebusy_requests(sandbox) -> list[tuple[datetime, datetime, list[str]]]:
    """(timeMin, timeMax, calendar ids) of every freeBusy request in the Google emulator's log."""
    return [(datetime.fromisoformat(r.json["timeMin"]), datetime.fromisoformat(r.json["timeMax"]),
             [item["id"] for item in r.json["items"]])
            for r in sandbox.google.requests if r.path.endswith("/freeBusy")]


def test_120_days_across_120_calendars_stay_within_googles_freebusy_limits(sandbox, bsync):
    hours = working_hours(bsync, max_advance="200d")
    cals = [sandbox.google.calendar_id] + [sandbox.google.add_calendar(f"room-{i:03d}@group.calendar.google.com",
                                                                       time_zone="Europe/Warsaw")
                                           for i in range(119)]
    late = DAY + timedelta(days=110)  # in the second piece
    sandbox.google.insert_event(cals[119], {"summary": "Room 119", "start": {"dateTime": at(9, day=late).isoformat()},
                                            "end": {"dateTime": at(10, day=late).isoformat()}})
    sandbox.google.insert_event(cals[50], {"summary": "Room 50", "start": {"dateTime": at(13).isoformat()},
                                           "end": {"dateTime": at(14).isoformat()}})
    sandbox.clear_requests()
    result = hours(*ask_days(120, cals))
    assert result.exit_code == 0, result.stderr
    asked = freebusy_requests(sandbox)
    assert len(asked) == 2 * 3  # 124 padded days: 2 pieces; 120 calendars: 3 groups
    assert all(time_max - time_min <= timedelta(days=90) and len(ids) <= 50 for time_min, time_max, ids in asked)
    for cal in cals:  # every calendar asked over the whole padded range, no gap
        spans = sorted((lo, hi) for lo, hi, ids in asked if cal in ids)
        assert spans[0][0] <= at(0, day=DAY) and spans[-1][1] >= at(0, day=DAY + timedelta(days=121))
        assert all(a[1] == b[0] for a, b in pairwise(spans))
    assert "13:00" not in starts(result.json) and "09:00" not in starts(result.json, late)
    assert "09:00" in starts(result.json) and "13:00" in starts(result.json, late)


def test_calendars_google_refuses_as_too_many_are_asked_again_in_smaller_groups(sandbox, hours):
    sandbox.google.freebusy_max_calendars = 7  # Google answers fewer than bsync's groups of 50
    cals = [sandbox.google.add_calendar(f"desk-{i:02d}@group.calendar.google.com") for i in range(20)]
    sandbox.google.insert_event(cals[-1], {"summary": "Desk 19", "start": {"dateTime": at(9).isoformat()},
                                           "end": {"dateTime": at(10).isoformat()}})
    sandbox.clear_requests()
    result = hours("availability", "--date", DAY.isoformat(), "--now", NOW, "--json",
                   *[arg for cal in cals for arg in ("--calendar", cal)])
    assert result.exit_code == 0, result.stderr
    assert "09:00" not in starts(result.json)  # the refused calendar's busy time is not lost
    asked = [ids for _, _, ids in freebusy_requests(sandbox)]
    assert len(asked[0]) == 20 and len(asked) > 1 and all(len(ids) <= 10 for ids in asked[1:])


def test_a_calendar_google_cannot_answer_is_an_error_naming_it_not_free_time(sandbox, hours):
    result = hours("availability", "--date", DAY.isoformat(), "--now", NOW, "--calendar", sandbox.google.calendar_id,
                   "--calendar", "gone@group.calendar.google.com")
    assert result.exit_code == 2 and "'gone@group.calendar.google.com' (notFound)" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("reasons, error", [
    (["internalError"], RemoteUnavailableError),  # Google's trouble: exit 5, run again
    (["notFound"], ConfigError), (["internalError", "notFound"], ConfigError),
    (["somethingGoogleAddsLater"], ConfigError),
])
def test_per_calendar_freebusy_errors_are_raised_by_kind(reasons, error):
    with pytest.raises(error, match="'c@example.com'"):
        raise_calendar_errors("c@example.com", reasons)


def test_a_range_google_refuses_is_reported_as_a_bsync_bug_without_retrying(sandbox, hours):
    from bsync.config import load_config
    from bsync.calendars.gcal import GoogleCalendarTarget

    target = GoogleCalendarTarget.from_settings(load_config(hours.config))
    sandbox.clear_requests()
    with pytest.raises(RemoteError) as info:  # only a bsync bug could send this: pieces stay at 90 days
        target._query_free_busy({"timeMin": "2026-01-01T00:00:00Z", "timeMax": "2026-04-02T00:00:00Z",
                                 "items": [{"id": sandbox.google.calendar_id}]})
    assert "timeRangeTooLong" in str(info.value) and "bsync bug" in info.value.hint
    assert sandbox.google.count("POST", "/freeBusy") == 1


def test_every_occurrence_of_a_weekly_block_in_google_is_busy(sandbox, hours):
    first = DAY - timedelta(days=14)  # the series began before the asked range: no event starts in it
    sandbox.google.insert_event(sandbox.google.calendar_id, {
        "summary": "Team meeting", "recurrence": ["RRULE:FREQ=WEEKLY"],
        "start": {"dateTime": at(13, day=first).replace(tzinfo=None).isoformat(), "timeZone": "Europe/Warsaw"},
        "end": {"dateTime": at(15, day=first).replace(tzinfo=None).isoformat(), "timeZone": "Europe/Warsaw"}})
    result = hours("availability", "--date", DAY.isoformat(), "--to", (DAY + timedelta(days=7)).isoformat(),
                   "--now", NOW, "--json")
    assert result.exit_code == 0, result.stderr
    week_later = DAY + timedelta(days=7)
    assert starts(result.json) == starts(result.json, week_later) == ["09:00", "10:00", "11:00", "15:00", "16:00"]
    assert "13:00" in starts(result.json, DAY + timedelta(days=1))  # only that weekday is blocked


def test_scheduled_bookings_known_locally_are_busy_and_cancelled_ones_free(sandbox, hours):
    booked = sandbox.notion.create_page(booking_properties("Rex", start=at(9), end=at(10), time_zone="Europe/Warsaw"))
    cancelled = sandbox.notion.create_page(booking_properties("Mia", start=at(13), end=at(14),
                                                              time_zone="Europe/Warsaw"))
    assert hours("sync").exit_code == 0
    sandbox.notion.update_page(cancelled["id"], properties={"Status": {"status": {"name": "Cancelled"}}})
    assert hours("sync").exit_code == 0
    # the calendar loses Rex's event (not synced back yet): bsync still knows he is booked
    sandbox.google.delete_event(sandbox.google.calendar_id, event_id_for(f"notion:{booked['id']}"))
    data = hours("availability", "--date", DAY.isoformat(), "--now", NOW, "--json").json
    assert "09:00" not in starts(data) and "13:00" in starts(data)


@pytest.mark.parametrize("args, message", [
    (["--date", "2026-02-30"], "--date '2026-02-30': give YYYY-MM-DD, today, tomorrow"),
    (["--date", "someday"], "--date 'someday': give YYYY-MM-DD, today, tomorrow, or a weekday"),
    (["--date", DAY.isoformat(), "--to", "nextweek"], "--to 'nextweek': give"),
    (["--date", "today", "--now", "yesterday-ish"], "--now 'yesterday-ish'"),
    (["--date", DAY.isoformat(), "--to", (DAY - timedelta(days=1)).isoformat()], "before --date"),
    (["--date", DAY.isoformat(), "--duration", "0"], "duration"),
    (["--date", DAY.isoformat(), "--duration", "1500"], "duration"),
    (["--date", DAY.isoformat(), "--step", "0"], "step"),
    (["--date", (date.today() + timedelta(days=400)).isoformat()], "max_advance"),
    (["--date", DAY.isoformat(), "--busy", "/nonexistent/busy.json"], "cannot read"),
])
def test_bad_input_exits_2_with_a_precise_message(hours, args, message):
    result = hours("availability", *args, *([] if "--now" in args else ["--now", NOW]))
    assert result.exit_code == 2 and message in result.stderr, result.stderr


WED = date(2026, 12, 2)  # a Wednesday


@pytest.mark.parametrize("text, expected", [
    ("today", WED), ("Tomorrow", WED + timedelta(days=1)),
    ("wednesday", WED), ("wed", WED),  # the next Wednesday, today included
    ("thu", WED + timedelta(days=1)), ("Monday", WED + timedelta(days=5)), ("tue", WED + timedelta(days=6)),
    ("2026-12-24", date(2026, 12, 24)),
])
def test_day_words_are_read_from_today(text, expected):
    assert parse_day(text, WED) == expected


@pytest.mark.parametrize("text", ["", "tomorow", "mo", "2026-13-01", "next monday"])
def test_not_a_day_names_the_forms(text):
    with pytest.raises(ValueError, match="today, tomorrow"):
        parse_day(text, WED)


def test_a_weekday_ending_a_range_counts_from_its_first_day():
    friday = WED + timedelta(days=2)
    assert requested_days(["fri"], "mon", WED) == [friday + timedelta(days=i) for i in range(4)]
    assert requested_days(["today"], "today", WED) == [WED]
    with pytest.raises(UsageError, match="--to goes with a single --date"):
        requested_days(["mon", "tue"], "fri", WED)


def test_date_tomorrow_is_tomorrow_in_the_business_zone(hours, tmp_path):
    busy = tmp_path / "busy.json"
    busy.write_text("[]")
    now = "2026-12-02T23:30:00+00:00"  # already Thursday 00:30 in Warsaw: tomorrow is Friday there
    words = hours("availability", "--date", "tomorrow", "--to", "sun", "--busy", str(busy), "--now", now, "--json")
    assert words.exit_code == 0, words.stderr
    assert [d["date"] for d in words.json["days"]] == ["2026-12-04", "2026-12-05", "2026-12-06"]
    dated = hours("availability", "--date", "2026-12-04", "--to", "2026-12-06", "--busy", str(busy), "--now", now,
                  "--json")
    assert words.json == dated.json


def test_unreadable_busy_json_exits_2(hours, tmp_path):
    bad = tmp_path / "busy.json"
    bad.write_text('[{"start": "tomorrow"}]')
    result = hours("availability", "--date", DAY.isoformat(), "--busy", str(bad), "--now", NOW)
    assert result.exit_code == 2 and "busy.json" in result.stderr


@pytest.fixture
def http(sandbox, hours):
    import threading
    import time

    import uvicorn

    from bsync.config import load_config
    from bsync.serve.app import create_app
    from bsync.core.store import Store

    settings = load_config(hours.config)
    with Store.open(settings.state_path):
        pass
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    server.should_exit = True
    thread.join(timeout=10)


def test_get_and_batch_over_http(http):
    r = httpx.get(f"{http}/availability", params={"date": DAY.isoformat(), "duration": 60})
    assert r.status_code == 200 and r.json()["days"][0]["date"] == DAY.isoformat()
    assert len(r.json()["days"][0]["slots"]) == 7
    r = httpx.post(f"{http}/availability/batch",
                   json={"dates": [DAY.isoformat(), (DAY + timedelta(days=1)).isoformat()], "duration": 30})
    assert r.status_code == 200 and [d["date"] for d in r.json()["days"]] == [
        DAY.isoformat(), (DAY + timedelta(days=1)).isoformat()]
    assert r.json()["duration"] == 30
    assert httpx.get(f"{http}/availability", params={"date": "not-a-date"}).status_code == 400
    assert httpx.get(f"{http}/availability", params={"date": DAY.isoformat(), "duration": 0}).status_code == 400
    assert httpx.get(f"{http}/availability").status_code == 400
    assert httpx.post(f"{http}/availability/batch", json={"dates": []}).status_code == 400
