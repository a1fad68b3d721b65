"""The CalDAV backend against a real Radicale (and, for the core, a real Xandikos): every
guarantee of calendars/caldav.py, one at a time, through its protocol methods."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import caldav
import icalendar
import pytest

from bsync.calendars.caldav import KEY_PROPERTY, CalDAVCalendar, resource_name_for
from bsync.calendars.caldav_config import CalDAVConfig
from bsync.core.model import Booking, Customer, Status
from bsync.core.records import TargetOp
from bsync.core.retry import RetryPolicy
from bsync.errors import AuthError, ConfigError, RemoteError

UTC = timezone.utc
FAST = RetryPolicy(max_retries=1, base_delay=0.01, max_delay=0.01)


def backend(server, url: str, **kwargs) -> CalDAVCalendar:
    """A CalDAVCalendar on ``url`` (a collection URL) of ``server``."""
    config = CalDAVConfig(url=url, username=server.username, password=server.password)
    return CalDAVCalendar(config, FAST, default_timezone="Europe/Berlin", **kwargs)


def booking(key: str = "notion:1", title: str = "Rex – groom", start: datetime | None = None, hours: float = 1,
            zone: str = "Europe/Berlin", status: Status = Status.SCHEDULED, all_day: bool = False) -> Booking:
    start = start or datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
    return Booking(key=key, title=title, start=start, end=start + timedelta(hours=hours), timezone=zone,
                   status=status, all_day=all_day, customer=Customer(name="Ann", email="ann@example.com"),
                   service="Groom", notes="nervous dog")


def raw(server, url: str, name: str) -> tuple[str, str]:
    """(ETag, body) of a resource, read with the plain library: what the server stores."""
    with caldav.DAVClient(url=url, username=server.username, password=server.password) as client:
        r = client.request(url + name, "GET")
        return r.headers.get("ETag"), r.raw


def put_foreign(server, url: str, name: str, ics: str) -> None:
    with caldav.DAVClient(url=url, username=server.username, password=server.password) as client:
        assert client.put(url + name, ics, {"Content-Type": "text/calendar"}).status in (201, 204)


FOREIGN = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//phone//EN
BEGIN:VEVENT
UID:walk-in-1
DTSTAMP:20261201T080000Z
DTSTART;TZID=Europe/Berlin:20261204T140000
DTEND;TZID=Europe/Berlin:20261204T150000
SUMMARY:Walk-in
ATTENDEE;CN=Bob:mailto:bob@example.com
DESCRIPTION:nails
END:VEVENT
END:VCALENDAR
"""

WEEKLY = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//phone//EN
BEGIN:VEVENT
UID:weekly-1
DTSTAMP:20261201T080000Z
DTSTART:20261201T120000Z
DTEND:20261201T130000Z
RRULE:FREQ=WEEKLY;COUNT=4
SUMMARY:Lunch
END:VEVENT
END:VCALENDAR
"""

TRANSPARENT = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//phone//EN
BEGIN:VEVENT
UID:free-1
DTSTAMP:20261201T080000Z
DTSTART:20261202T070000Z
DTEND:20261202T080000Z
TRANSP:TRANSPARENT
SUMMARY:reminder
END:VEVENT
END:VCALENDAR
"""


@pytest.fixture
def cal(radicale, caldav_calendar):
    target = backend(radicale, caldav_calendar)
    yield target
    target.close()


# -- the test servers themselves --------------------------------------------------------------
def test_each_test_gets_an_empty_calendar_on_a_radicale_with_auth(radicale, caldav_calendar):
    assert caldav_calendar.startswith(radicale.url + "alice/") and caldav_calendar.endswith("/")
    import niquests

    assert niquests.request("PROPFIND", caldav_calendar, auth=(radicale.username, "wrong")).status_code == 401
    assert backend(radicale, caldav_calendar).read_changes(None).items == {}


# -- config --------------------------------------------------------------------------------------
def test_the_caldav_section_is_typed_and_the_environment_overrides_the_password(tmp_path, monkeypatch):
    from bsync.config import load_config as load_settings

    path = tmp_path / "bsync.toml"
    path.write_text('timezone = "Europe/Berlin"\n[caldav]\nurl = "https://dav.example.com/cal"\n'
                    'username = "ann"\npassword = "from-file"\n')
    monkeypatch.setenv("BSYNC_CALDAV__PASSWORD", "from-env")
    settings = load_settings(path)
    assert settings.caldav.password.get_secret_value() == "from-env"
    assert settings.caldav.url == "https://dav.example.com/cal/"  # a collection: relative hrefs resolve
    assert "from-env" not in repr(settings.caldav)
    path.write_text('timezone = "Europe/Berlin"\n[caldav]\nurl = "dav.example.com"\nusername = "a"\npassword = "p"\n')
    with pytest.raises(ConfigError, match="caldav"):
        load_settings(path)


# -- creates: deterministic, adopted ----------------------------------------------------------------
def test_create_uses_the_keys_name_and_uid_with_its_own_tzid_and_vtimezone(radicale, caldav_calendar, cal):
    b = booking()
    name = cal.target_id_for(b.key)
    assert name == resource_name_for(b.key) == cal.target_id_for(b.key)
    result = cal.write(TargetOp("create", name, b))
    etag, body = raw(radicale, caldav_calendar, name)
    assert result.target_id == name and result.version == etag
    parsed = icalendar.Calendar.from_ical(body)
    event = parsed.events[0]
    assert str(event["UID"]) == name.removesuffix(".ics") + "@bsync"
    assert event["DTSTART"].params["TZID"] == "Europe/Berlin" and "DTSTART;TZID=Europe/Berlin:20261203T100000" in body
    assert [str(tz["TZID"]) for tz in parsed.walk("VTIMEZONE")] == ["Europe/Berlin"]
    assert str(event[KEY_PROPERTY]) == b.key and str(event["STATUS"]) == "CONFIRMED"
    assert result.item.fields == cal.project(b) and result.hash == cal.fields_hash(cal.project(b))


def test_a_second_create_is_refused_with_412_and_adopts_the_resource(cal):
    b = booking()
    name = cal.target_id_for(b.key)
    first = cal.write(TargetOp("create", name, b))
    again = cal.write(TargetOp("create", name, b))
    assert again.note == "adopted the existing event" and again.version == first.version
    moved = cal.write(TargetOp("create", name, booking(start=datetime(2026, 12, 5, 9, tzinfo=UTC))))
    assert moved.note == "adopted and updated the existing event" and moved.version != first.version
    assert len(cal.read_changes(None).items) == 1


def test_a_cancelled_resource_found_by_a_create_is_restored(cal):
    b = booking()
    name = cal.target_id_for(b.key)
    cal.write(TargetOp("create", name, b))
    cal.write(TargetOp("remove", name))
    restored = cal.write(TargetOp("create", name, b))
    assert restored.note.startswith("restored") and not cal.fetch(name).cancelled


# -- updates: If-Match -----------------------------------------------------------------------------
def test_an_update_sends_if_match_and_a_concurrent_change_fails_it_with_412(radicale, caldav_calendar, cal):
    b = booking()
    name = cal.target_id_for(b.key)
    cal.write(TargetOp("create", name, b))
    cal.read_changes(None)
    updated = cal.write(TargetOp("update", name, booking(title="Rex – bath")))
    assert cal.fetch(name).common["title"] == "Rex – bath" and updated.version == cal._etags[name]
    assert int(icalendar.Calendar.from_ical(raw(radicale, caldav_calendar, name)[1]).events[0]["SEQUENCE"]) == 1
    # someone edits the event in their phone meanwhile
    _, body = raw(radicale, caldav_calendar, name)
    put_foreign(radicale, caldav_calendar, name, body.replace("Rex – bath", "Rex – phone edit"))
    with pytest.raises(RemoteError, match="412"):
        cal.write(TargetOp("update", name, booking(title="Rex – again")))
    assert cal.fetch(name).common["title"] == "Rex – phone edit"  # never overwritten blind


# -- removals ------------------------------------------------------------------------------------
def test_cancel_policy_keeps_the_event_as_cancelled(cal):
    b = booking()
    name = cal.target_id_for(b.key)
    cal.write(TargetOp("create", name, b))
    cal.write(TargetOp("remove", name))
    item = cal.fetch(name)
    assert item.cancelled and item.common["title"] == b.title and item.key == b.key


def test_delete_policy_deletes_and_a_404_is_already_gone(radicale, caldav_calendar):
    cal = backend(radicale, caldav_calendar)
    cal.delete_policy = "delete"
    b = booking()
    name = cal.target_id_for(b.key)
    cal.write(TargetOp("create", name, b))
    assert cal.write(TargetOp("remove", name)).note == ""
    assert cal.fetch(name) is None
    assert cal.write(TargetOp("remove", name)).note == "already gone"


# -- incremental reads ----------------------------------------------------------------------------
def test_sync_token_reads_only_changes_and_deletions_and_a_no_change_rerun_costs_one_request(
        radicale, caldav_calendar, cal):
    a, b = booking("notion:a"), booking("notion:b", start=datetime(2026, 12, 4, 9, tzinfo=UTC))
    for x in (a, b):
        cal.write(TargetOp("create", cal.target_id_for(x.key), x))
    first = cal.read_changes(None)
    assert first.complete and set(first.items) == {cal.target_id_for("notion:a"), cal.target_id_for("notion:b")}
    assert cal.supports_sync_collection
    rerun = backend(radicale, caldav_calendar)  # a new run: the cursor is all it has
    before = rerun.requests
    nothing = rerun.read_changes(first.cursor)
    assert (nothing.items, nothing.complete) == ({}, False)
    assert rerun.requests - before == 1
    # a change and a deletion made elsewhere
    name_b = cal.target_id_for("notion:b")
    rerun.write(TargetOp("update", cal.target_id_for("notion:a"), booking("notion:a", title="moved")))
    with caldav.DAVClient(url=caldav_calendar, username=radicale.username, password=radicale.password) as client:
        client.delete(caldav_calendar + name_b)
    third = backend(radicale, caldav_calendar)
    before = third.requests
    changes = third.read_changes(nothing.cursor)
    assert third.requests - before == 2  # sync-collection + multiget
    assert changes.items[cal.target_id_for("notion:a")].common["title"] == "moved"
    assert changes.items[name_b].cancelled and not changes.complete


def test_an_invalid_sync_token_falls_back_to_a_full_read(radicale, caldav_calendar, cal):
    b = booking()
    cal.write(TargetOp("create", cal.target_id_for(b.key), b))
    cursor = cal.read_changes(None).cursor
    broken = cursor.replace("http://radicale.org/ns/sync/", "http://radicale.org/ns/sync/00")
    again = backend(radicale, caldav_calendar).read_changes(broken)
    assert again.complete and set(again.items) == {cal.target_id_for(b.key)}


def test_without_sync_collection_etags_are_compared(radicale, caldav_calendar):
    cal = backend(radicale, caldav_calendar, sync_collection=False)
    a, b = booking("notion:a"), booking("notion:b")
    for x in (a, b):
        cal.write(TargetOp("create", cal.target_id_for(x.key), x))
    first = cal.read_changes(None)
    assert first.complete and len(first.items) == 2 and cal.supports_sync_collection is None
    rerun = backend(radicale, caldav_calendar, sync_collection=False)
    before = rerun.requests
    assert rerun.read_changes(first.cursor).items == {}
    assert rerun.requests - before == 1  # one PROPFIND
    rerun.write(TargetOp("update", cal.target_id_for("notion:a"), booking("notion:a", title="moved")))
    rerun.write(TargetOp("remove", cal.target_id_for("notion:b")))
    third = backend(radicale, caldav_calendar, sync_collection=False)
    changes = third.read_changes(rerun.read_changes(first.cursor).cursor)
    assert changes.items == {}  # the second read above already saw both writes
    fourth = backend(radicale, caldav_calendar, sync_collection=False)
    seen = fourth.read_changes(first.cursor)
    assert seen.items[cal.target_id_for("notion:a")].common["title"] == "moved"
    assert seen.items[cal.target_id_for("notion:b")].cancelled


# -- times ---------------------------------------------------------------------------------------
def test_all_day_bookings_are_value_date_with_an_exclusive_end(radicale, caldav_calendar, cal):
    start = datetime(2026, 12, 23, 23, 0, tzinfo=UTC)  # local midnight in Berlin
    b = booking(start=start, hours=48, all_day=True)
    name = cal.target_id_for(b.key)
    cal.write(TargetOp("create", name, b))
    body = raw(radicale, caldav_calendar, name)[1]
    assert "DTSTART;VALUE=DATE:20261224" in body and "DTEND;VALUE=DATE:20261226" in body
    item = cal.read_changes(None).items[name]
    assert item.common["start"] == "date:2026-12-24" and item.common["end"] == "date:2026-12-26"
    assert dict(item.fields) == dict(cal.project(b))


def test_a_dst_day_round_trips_unchanged(radicale, caldav_calendar, cal):
    start = datetime(2026, 3, 29, 0, 30, tzinfo=UTC)  # 01:30 CET; clocks jump at 02:00 to 03:00 CEST
    b = booking(start=start, hours=2)
    name = cal.target_id_for(b.key)
    cal.write(TargetOp("create", name, b))
    body = raw(radicale, caldav_calendar, name)[1]
    assert "DTSTART;TZID=Europe/Berlin:20260329T013000" in body and "DTEND;TZID=Europe/Berlin:20260329T043000" in body
    item = cal.read_changes(None).items[name]
    assert item.common["start"] == start.isoformat() and item.common["end"] == (start + timedelta(hours=2)).isoformat()
    assert dict(item.fields) == dict(cal.project(b)) and item.hash == cal.fields_hash(cal.project(b))


# -- foreign events --------------------------------------------------------------------------------
def test_foreign_events_are_read_without_a_key_and_only_stamping_touches_them(radicale, caldav_calendar, cal):
    put_foreign(radicale, caldav_calendar, "walk-in-1.ics", FOREIGN)
    item = cal.read_changes(None).items["walk-in-1.ics"]
    assert item.key is None and item.common["title"] == "Walk-in"
    hints = cal.import_hints(item)
    assert (hints.timezone, hints.notes, hints.email) == ("Europe/Berlin", "nails", "bob@example.com")
    cal.write(TargetOp("stamp", "walk-in-1.ics", key="notion:new"))
    body = raw(radicale, caldav_calendar, "walk-in-1.ics")[1]
    stamped = icalendar.Calendar.from_ical(body).events[0]
    assert str(stamped[KEY_PROPERTY]) == "notion:new" and str(stamped["UID"]) == "walk-in-1"
    assert cal.fetch("walk-in-1.ics").fields == item.fields  # nothing else changed


# -- free/busy and occurrences --------------------------------------------------------------------
@pytest.mark.parametrize("report", [True, False], ids=["free-busy-report", "expanded-events"])
def test_free_busy_counts_recurring_events_and_not_cancelled_or_transparent_ones(radicale, caldav_calendar, report):
    cal = backend(radicale, caldav_calendar, free_busy_report=report)
    put_foreign(radicale, caldav_calendar, "weekly.ics", WEEKLY)
    put_foreign(radicale, caldav_calendar, "free.ics", TRANSPARENT)
    b = booking(start=datetime(2026, 12, 9, 15, tzinfo=UTC))
    gone = booking("notion:gone", start=datetime(2026, 12, 10, 15, tzinfo=UTC))
    cal.write(TargetOp("create", cal.target_id_for(b.key), b))
    cal.write(TargetOp("create", cal.target_id_for(gone.key), gone))
    cal.write(TargetOp("remove", cal.target_id_for(gone.key)))
    busy = sorted(cal.free_busy([cal.scope], datetime(2026, 12, 1, tzinfo=UTC), datetime(2026, 12, 16, tzinfo=UTC)))
    hours = [(s.astimezone(UTC).strftime("%d %H"), e.astimezone(UTC).strftime("%d %H")) for s, e in busy]
    assert hours == [("01 12", "01 13"), ("08 12", "08 13"), ("09 15", "09 16"), ("15 12", "15 13")]


def test_read_occurrences_gives_each_occurrence_its_own_id_and_stamps_one(radicale, caldav_calendar, cal):
    put_foreign(radicale, caldav_calendar, "weekly.ics", WEEKLY)
    found = cal.read_occurrences(datetime(2026, 12, 5, tzinfo=UTC), datetime(2026, 12, 20, tzinfo=UTC))
    assert sorted(found) == ["weekly.ics#20261208T120000Z", "weekly.ics#20261215T120000Z"]
    one = found["weekly.ics#20261208T120000Z"]
    assert one.recurring and not one.series and one.key is None
    cal.write(TargetOp("stamp", one.id, key="notion:lunch"))
    again = cal.read_occurrences(datetime(2026, 12, 5, tzinfo=UTC), datetime(2026, 12, 20, tzinfo=UTC))
    assert again[one.id].key == "notion:lunch" and again[one.id].common == one.common
    assert again["weekly.ics#20261215T120000Z"].key is None


# -- doctor --------------------------------------------------------------------------------------
def test_check_reports_sync_collection_and_names_the_fix_for_401_and_a_missing_calendar(radicale, caldav_calendar):
    line = backend(radicale, caldav_calendar).check()
    assert "readable" in line and "sync-collection supported" in line
    wrong = CalDAVCalendar(CalDAVConfig(url=caldav_calendar, username=radicale.username, password="nope"), FAST)
    with pytest.raises(AuthError) as auth:
        wrong.check()
    assert "app password" in auth.value.hint
    with pytest.raises(RemoteError) as missing:
        backend(radicale, caldav_calendar + "nope/").check()
    assert "[caldav] url" in missing.value.hint
    by_name = CalDAVCalendar(CalDAVConfig(url=radicale.url, username=radicale.username, password=radicale.password,
                                          calendar=caldav_calendar.rstrip("/").rsplit("/", 1)[-1]), FAST)
    assert caldav_calendar in by_name.check()
    unknown = CalDAVCalendar(CalDAVConfig(url=radicale.url, username=radicale.username, password=radicale.password,
                                          calendar="Nope"), FAST)
    with pytest.raises(ConfigError, match="no calendar named 'Nope'"):
        unknown.check()


# -- a second real server ----------------------------------------------------------------------------
def test_the_core_on_xandikos(xandikos):
    url = xandikos.new_calendar()
    cal = backend(xandikos, url)
    b = booking()
    name = cal.target_id_for(b.key)
    cal.write(TargetOp("create", name, b))
    assert cal.write(TargetOp("create", name, b)).note == "adopted the existing event"
    first = cal.read_changes(None)
    assert first.complete and dict(first.items[name].fields) == dict(cal.project(b))
    rerun = backend(xandikos, url)
    before = rerun.requests
    assert rerun.read_changes(first.cursor).items == {} and rerun.requests - before == 1
    rerun.write(TargetOp("update", name, booking(title="moved")))
    broken = first.cursor.replace(first.cursor.split('"token": "')[1].split('"')[0], "bogus")
    assert backend(xandikos, url).read_changes(broken).complete
    with pytest.raises(RemoteError, match="412"):  # cal's ETag predates rerun's update
        cal.write(TargetOp("remove", name))
    rerun.write(TargetOp("remove", name))
    assert cal.fetch(name).cancelled
    assert "sync-collection supported" in cal.check()


# -- end to end through the CLI (the full scenario suite is test_caldav_sync*.py) -------------------
def _events(radicale, url: str) -> dict:
    """Every event on the calendar, by resource name (read with a fresh backend)."""
    return backend(radicale, url).read_changes(None).items


def test_cli_create_rerun_move_cancel(sandbox, bsync_caldav, radicale):
    from conftest import write_requests

    from bsync.sandbox.seed import booking_properties

    bsync = bsync_caldav
    bsync.configure(history="all")
    url = bsync.caldav["url"]
    start = datetime(2026, 12, 10, 9, tzinfo=UTC)
    page = sandbox.notion.create_page(booking_properties("Rex – groom", start=start, end=start + timedelta(hours=1),
                                                         time_zone="Europe/Warsaw"))["id"]
    first = bsync("sync", "--json")
    assert first.exit_code == 0 and first.json["created"] == 1, first.stderr
    name = resource_name_for(f"notion:{page}")
    [event] = _events(radicale, url).values()
    assert event.id == name and event.key == f"notion:{page}" and event.fields["timezone"] == "Europe/Warsaw"

    sandbox.clear_requests()
    rerun = bsync("sync", "--json")
    assert rerun.exit_code == 0 and (rerun.json["created"], rerun.json["updated"]) == (0, 0)
    assert write_requests(sandbox) == []
    assert rerun.json["requests"] - len(sandbox.notion.requests) <= 2  # the CalDAV server's share
    sandbox.clear_requests()
    quiet = bsync("sync", "--json")
    assert quiet.json["requests"] - len(sandbox.notion.requests) == 1  # one sync-collection REPORT
    assert bsync("sync", "--plan").exit_code == 0

    sandbox.notion.update_page(page, properties=booking_properties(
        "Rex – groom", start=start + timedelta(hours=3), end=start + timedelta(hours=4), time_zone="Europe/Warsaw"))
    moved = bsync("sync", "--json")
    assert moved.json["updated"] == 1 and moved.json["created"] == 0
    assert _events(radicale, url)[name].common["start"] == (start + timedelta(hours=3)).isoformat()

    sandbox.notion.update_page(page, properties={"Status": {"status": {"name": "Cancelled"}}})
    cancelled = bsync("sync", "--json")
    assert cancelled.json["deleted"] == 1
    assert _events(radicale, url)[name].cancelled
    sandbox.clear_requests()
    settled = bsync("sync", "--json")
    assert settled.exit_code == 0 and write_requests(sandbox) == []
    assert settled.json["updated"] == settled.json["deleted"] == 0


def test_two_calendars_each_get_each_booking_once_and_the_event_id_property_stays_googles(
        sandbox, bsync_caldav, radicale):
    from conftest import write_requests

    from bsync.calendars.gcal import event_id_for
    from bsync.sandbox.seed import booking_properties

    bsync = bsync_caldav
    bsync.defaults["pairs"] = ["notion-to-gcal", "gcal-to-notion", "notion-to-caldav", "caldav-to-notion"]
    bsync.configure(history="all")
    url = bsync.caldav["url"]
    start = datetime(2026, 12, 11, 9, tzinfo=UTC)
    pages = [sandbox.notion.create_page(booking_properties(f"Dog {i}", start=start + timedelta(hours=i),
                                                           end=start + timedelta(hours=i, minutes=30)))["id"]
             for i in range(3)]
    result = bsync("sync")
    assert result.exit_code == 0, result.stderr
    google = [e for e in sandbox.google.list_events(sandbox.google.calendar_id, include_deleted=False)]
    assert sorted(e["id"] for e in google) == sorted(event_id_for(f"notion:{p}") for p in pages)
    assert sorted(_events(radicale, url)) == sorted(resource_name_for(f"notion:{p}") for p in pages)
    from bsync.config import load_config
    from bsync.ledger.notion import NotionSource

    for booking_read in NotionSource.from_settings(load_config(bsync.config)).read_bookings().bookings:
        assert booking_read.target_ids == {"gcal": event_id_for(booking_read.key)}  # Google's, not CalDAV's
    for _ in range(2):
        sandbox.clear_requests()
        again = bsync("sync", "--json")
        assert again.exit_code == 0 and write_requests(sandbox) == []
        steps = [json.loads(line) for line in again.stdout.splitlines() if line.strip()]  # one line a calendar
        assert len(steps) == 2 and all(step["created"] == step["updated"] == 0 for step in steps), steps
    assert len(_events(radicale, url)) == 3



def test_an_unreachable_server_is_remote_unavailable_after_the_retries(radicale):
    from bsync.sandbox.caldav_servers import free_port

    from bsync.errors import RemoteUnavailableError

    gone = backend(radicale, f"http://127.0.0.1:{free_port()}/alice/cal/")
    with pytest.raises(RemoteUnavailableError, match="cannot reach the CalDAV server"):
        gone.read_changes(None)
    assert gone.requests == 2  # the first try and one retry (FAST)
