"""`bsync availability` and the HTTP endpoints, against the Google sandbox (freeBusy) and
the state store; the slot arithmetic itself is covered by tests/test_slots.py."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest

from bsync.availability import requested_days
from bsync.errors import UsageError
from bsync.providers.gcal import event_id_for
from bsync.timeutil import parse_day
from bsync.sandbox.seed import booking_properties

WAW = ZoneInfo("Europe/Warsaw")
DAY = date.today() + timedelta(days=7)
NOW = datetime.now(WAW).replace(microsecond=0).isoformat()


def at(h, m=0, day=DAY):
    return datetime(day.year, day.month, day.day, h, m, tzinfo=WAW)


@pytest.fixture
def hours(bsync):
    """A simple week: 09:00-12:00 and 13:00-17:00 every day, 60-minute slots."""
    with bsync.config.open("a") as f:
        f.write('\n[availability]\nduration = 60\nmin_notice = "0"\nmax_advance = "60d"\n'
                '[availability.hours]\n' + "".join(f'{d} = ["09:00-12:00", "13:00-17:00"]\n'
                                                   for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")))
    return bsync


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
    args = ["availability", "--date", DAY.isoformat(), "--to", (DAY + timedelta(days=29)).isoformat(),
            "--now", NOW, "--json"]
    for cal in calendars:
        args += ["--calendar", cal]
    result = hours(*args)
    assert result.exit_code == 0, result.stderr
    assert len(result.json["days"]) == 30
    assert sandbox.google.count("POST", "/freeBusy") == 1 and len(sandbox.google.requests) <= 2  # (+ token)
    assert starts(result.json) == ["10:00", "11:00", "13:00", "14:00"]


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
    from bsync.server import create_app
    from bsync.store import Store

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
