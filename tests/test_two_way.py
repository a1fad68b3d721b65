"""Two-way sync (both pairs in one run) against the sandbox, with the real clients."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
from conftest import write_requests

from bsync.calendars.gcal import event_id_for
from bsync.sandbox.seed import booking_properties, text

WAW = ZoneInfo("Europe/Warsaw")
DAY = date.today() + timedelta(days=3)


def at(h, m=0, day=DAY, tz=WAW):
    return datetime(day.year, day.month, day.day, h, m, tzinfo=tz)


def writes(sandbox) -> list:
    return write_requests(sandbox)


class Calendar:
    """Edits made in Google Calendar by a person, through the real API."""

    def __init__(self, sandbox):
        self.base = f"{sandbox.google.url}/calendar/v3/calendars/{sandbox.google.calendar_id}/events"
        self.headers = {"Authorization": "Bearer sandbox-token"}

    def patch(self, event_id, body):
        httpx.patch(f"{self.base}/{event_id}", headers=self.headers, json=body).raise_for_status()

    def move(self, event_id, start, end):
        self.patch(event_id, {"start": {"dateTime": start.isoformat(), "timeZone": "Europe/Warsaw"},
                              "end": {"dateTime": end.isoformat(), "timeZone": "Europe/Warsaw"}})

    def delete(self, event_id):
        httpx.delete(f"{self.base}/{event_id}", headers=self.headers).raise_for_status()

    def create(self, summary, start, end, zone=None, **extra):
        """Insert an event; ``zone`` names its time zone (required for a recurring one)."""
        where = {"timeZone": zone} if zone else {}
        r = httpx.post(self.base, headers=self.headers, json={
            "summary": summary, "start": {"dateTime": start.isoformat(), **where},
            "end": {"dateTime": end.isoformat(), **where}, **extra})
        r.raise_for_status()
        return r.json()["id"]


@pytest.fixture
def cal(sandbox):
    return Calendar(sandbox)


def page_props(sandbox, page_id):
    return sandbox.notion.get_page(page_id)["properties"]


def title_of(props):
    return "".join(t["plain_text"] for t in props["Name"]["title"])


def status_of(props):
    return props["Status"]["status"]["name"]


def add(sandbox, title, start, end, **kw):
    return sandbox.notion.create_page(booking_properties(title, start=start, end=end, time_zone="Europe/Warsaw",
                                                         **kw))["id"]


def synced(bsync, *args):
    result = bsync("sync", "--json", *args)
    assert result.exit_code == 0, result.stdout + result.stderr
    return result.json


def test_event_moved_in_the_calendar_moves_the_booking_and_settles(sandbox, bsync, cal):
    page = add(sandbox, "Rex", at(10), at(11))
    synced(bsync)
    cal.move(event_id_for(f"notion:{page}"), at(14), at(15))
    sandbox.clear_requests()
    summary = synced(bsync)
    assert summary["updated"] == 1
    assert [w[:2] for w in writes(sandbox)] == [("notion", "PATCH")]  # Notion only; the event is left as moved
    when = page_props(sandbox, page)["When"]["date"]
    assert datetime.fromisoformat(when["start"]) == at(14) and datetime.fromisoformat(when["end"]) == at(15)
    sandbox.clear_requests()
    synced(bsync)
    assert writes(sandbox) == []  # our own write doesn't come back as a change: no ping-pong


def test_event_deleted_in_the_calendar_cancels_the_booking_without_trashing_it(sandbox, bsync, cal):
    page = add(sandbox, "Rex", at(10), at(11))
    synced(bsync)
    cal.delete(event_id_for(f"notion:{page}"))
    synced(bsync)
    page_obj = sandbox.notion.get_page(page)
    assert status_of(page_obj["properties"]) == "Cancelled" and not page_obj["in_trash"]
    sandbox.clear_requests()
    synced(bsync)
    assert writes(sandbox) == []


def test_booking_moved_in_notion_while_its_event_was_deleted_comes_back_at_the_new_time(sandbox, bsync, cal):
    keep = add(sandbox, "Keep", at(9), at(10))
    page = add(sandbox, "Rex", at(10), at(11))
    synced(bsync)
    sandbox.notion.update_page(page, properties=booking_properties("Rex", start=at(15), end=at(16),
                                                                   time_zone="Europe/Warsaw"))
    cal.delete(event_id_for(f"notion:{page}"))
    summary = synced(bsync)
    assert summary["updated"] == 1 and summary["errors"] == 0
    props = page_props(sandbox, page)
    assert status_of(props) == "Confirmed" and datetime.fromisoformat(props["When"]["date"]["start"]) == at(15)
    event = sandbox.google.get_event(sandbox.google.calendar_id, event_id_for(f"notion:{page}"))
    assert event["status"] == "confirmed" and datetime.fromisoformat(event["start"]["dateTime"]) == at(15)
    assert status_of(page_props(sandbox, keep)) == "Confirmed"
    sandbox.clear_requests()
    synced(bsync)
    assert writes(sandbox) == []


def test_event_made_in_the_calendar_becomes_a_booking(sandbox, bsync, cal):
    event = cal.create("Walk-in: Coco", at(13), at(13, 30), description="paid cash")
    summary = synced(bsync)
    assert summary["created"] == 1
    [page] = [p for p in sandbox.notion.pages]
    props = page_props(sandbox, page)
    assert title_of(props) == "Walk-in: Coco" and status_of(props) == "Confirmed"
    assert props["Source"]["select"]["name"] == "gcal"
    assert "".join(t["plain_text"] for t in props["Calendar Event ID"]["rich_text"]) == event
    assert "".join(t["plain_text"] for t in props["Notes"]["rich_text"]) == "paid cash"
    stamped = sandbox.google.get_event(sandbox.google.calendar_id, event)
    assert stamped["extendedProperties"]["private"]["bsync_key"] == f"notion:{page}"
    sandbox.clear_requests()
    synced(bsync)
    assert writes(sandbox) == []


def touched(sandbox, event_id) -> list:
    """Every request that wrote to one event (inner calls of batch requests included)."""
    return [(r.method, r.path) for r in sandbox.google.requests if event_id in r.path and r.method != "GET"]


def add_recording(sandbox, title, start, end, event_id):
    """A page whose Calendar Event ID someone filled in by hand."""
    props = booking_properties(title, start=start, end=end, time_zone="Europe/Warsaw")
    props["Calendar Event ID"] = text(event_id)
    return sandbox.notion.create_page(props)["id"]


@pytest.mark.parametrize("case", ["first run", "incremental", "past event"])
def test_a_page_naming_an_event_bsync_did_not_make_fails_and_leaves_it_alone(sandbox, bsync, cal, case):
    bsync.configure(import_unmanaged=False)  # private appointments share the calendar
    day = DAY - timedelta(days=10) if case == "past event" else DAY  # past events are history, not bookings
    private = cal.create("Dentist (private)", at(8, day=day), at(9, day=day))
    other = add(sandbox, "Keep", at(12), at(13))
    if case == "incremental":  # the event predates the last run: an incremental read does not list it
        synced(bsync)
    page = add_recording(sandbox, "Rex", at(10), at(11), private)
    sandbox.clear_requests()
    result = bsync("sync", "--json")
    assert result.exit_code == 1, result.stdout + result.stderr
    [failure] = result.json["failures"]
    assert failure["id"] == page and private in failure["reason"] and "did not make" in failure["reason"]
    event = sandbox.google.get_event(sandbox.google.calendar_id, private)
    assert event["summary"] == "Dentist (private)" and "extendedProperties" not in event
    assert touched(sandbox, private) == []
    kept = sandbox.google.get_event(sandbox.google.calendar_id, event_id_for(f"notion:{other}"))
    assert kept["status"] == "confirmed"  # the rest still syncs
    assert sandbox.google.get_event(sandbox.google.calendar_id, event_id_for(f"notion:{page}")) is None


def test_page_of_an_import_killed_before_it_was_linked_adopts_its_event(sandbox, bsync, cal):
    from bsync.core.store import Store

    add(sandbox, "Keep", at(9), at(10))
    synced(bsync)
    event = cal.create("Walk-in: Coco", at(13), at(13, 30))
    page = add_recording(sandbox, "Walk-in: Coco", at(13), at(13, 30), event)  # the page the import made
    with Store.open(bsync.state_path) as store:  # ... and the journal intent it left when it died
        store.journal_intent(None, "notion+gcal", "import", f"gcal:{event}", event)
    summary = synced(bsync)
    assert summary["errors"] == 0 and sandbox.notion.page_count() == 2
    stamped = sandbox.google.get_event(sandbox.google.calendar_id, event)
    assert stamped["extendedProperties"]["private"]["bsync_key"] == f"notion:{page}"


def test_private_blocks_are_not_imported_when_configured(sandbox, bsync, cal):
    bsync.configure(import_unmanaged=False)
    cal.create("Dentist (private)", at(8), at(9))
    synced(bsync)
    assert sandbox.notion.page_count() == 0


def test_past_calendar_events_are_not_imported(sandbox, bsync, cal):
    cal.create("Last year's party", at(18, day=date.today() - timedelta(days=300)),
               at(20, day=date.today() - timedelta(days=300)))
    synced(bsync)
    assert sandbox.notion.page_count() == 0


def test_edits_to_different_fields_on_each_side_merge(sandbox, bsync, cal):
    page = add(sandbox, "Rex", at(10), at(11))
    synced(bsync)
    sandbox.notion.update_page(page, properties={"Name": {"title": [{"text": {"content": "Rex (VIP)"}}]}})
    cal.patch(event_id_for(f"notion:{page}"), {"location": "Room 2"})
    synced(bsync)
    props = page_props(sandbox, page)
    event = sandbox.google.get_event(sandbox.google.calendar_id, event_id_for(f"notion:{page}"))
    assert title_of(props) == "Rex (VIP)" and event["summary"] == "Rex (VIP)"
    assert "".join(t["plain_text"] for t in props["Location"]["rich_text"]) == "Room 2"
    assert event["location"] == "Room 2"
    sandbox.clear_requests()
    synced(bsync)
    assert writes(sandbox) == []


@pytest.mark.parametrize("policy, winner", [("source-wins", "from notion"), ("newest-wins", "from calendar")])
def test_same_field_changed_on_both_sides_follows_the_policy(sandbox, bsync, cal, policy, winner):
    bsync.configure(conflict=policy)
    page = add(sandbox, "Rex", at(10), at(11))
    synced(bsync)
    # Notion's edit comes first (and its time is rounded down to the minute): the calendar's is newer
    sandbox.notion.update_page(page, properties={"Name": {"title": [{"text": {"content": "from notion"}}]}})
    cal.patch(event_id_for(f"notion:{page}"), {"summary": "from calendar"})
    synced(bsync)
    event = sandbox.google.get_event(sandbox.google.calendar_id, event_id_for(f"notion:{page}"))
    assert title_of(page_props(sandbox, page)) == winner and event["summary"] == winner


def test_manual_conflicts_wait_for_resolve(sandbox, bsync, cal):
    bsync.configure(conflict="manual")
    page = add(sandbox, "Rex", at(10), at(11))
    synced(bsync)
    sandbox.notion.update_page(page, properties={"Name": {"title": [{"text": {"content": "from notion"}}]}})
    cal.patch(event_id_for(f"notion:{page}"), {"summary": "from calendar"})
    plan = bsync("sync", "--plan", "--json").json
    [conflict] = [a for a in plan["actions"] if a["op"] == "conflict"]
    assert conflict["changes"]["title"] == ["from notion", "from calendar"]
    sandbox.clear_requests()
    summary = synced(bsync)
    assert summary["conflicts"] == 1 and writes(sandbox) == []
    status = bsync("status", "--json").json
    assert status["conflicts"][0]["key"] == f"notion:{page}"
    assert "bsync resolve" in bsync("status").stdout
    result = bsync("resolve", f"notion:{page}", "--take", "gcal")
    assert result.exit_code == 0
    synced(bsync)
    assert title_of(page_props(sandbox, page)) == "from calendar"
    assert bsync("status", "--json").json["conflicts"] == []
    sandbox.clear_requests()
    synced(bsync)
    assert writes(sandbox) == []


def test_trashed_page_cancels_its_event_on_a_full_read(sandbox, bsync):
    keep = add(sandbox, "Keep", at(9), at(10))
    gone = add(sandbox, "Gone", at(10), at(11))
    synced(bsync)
    sandbox.notion.update_page(gone, in_trash=True)
    synced(bsync, "--full")
    assert sandbox.google.get_event(sandbox.google.calendar_id, event_id_for(f"notion:{gone}"))["status"] == "cancelled"
    assert sandbox.google.get_event(sandbox.google.calendar_id, event_id_for(f"notion:{keep}"))["status"] == "confirmed"
    sandbox.clear_requests()
    synced(bsync, "--full")
    assert writes(sandbox) == []


def test_update_in_the_calendar_beats_trashing_in_notion(sandbox, bsync, cal):
    keep = add(sandbox, "Keep", at(9), at(10))
    page = add(sandbox, "Rex", at(10), at(11))
    synced(bsync)
    sandbox.notion.update_page(page, in_trash=True)
    cal.patch(event_id_for(f"notion:{page}"), {"summary": "Rex – still coming"})
    synced(bsync, "--full")
    page_obj = sandbox.notion.get_page(page)
    assert not page_obj["in_trash"] and title_of(page_obj["properties"]) == "Rex – still coming"
    assert keep


def test_expired_sync_token_falls_back_to_a_full_read(sandbox, bsync, cal):
    page = add(sandbox, "Rex", at(10), at(11))
    synced(bsync)
    cal.move(event_id_for(f"notion:{page}"), at(16), at(17))
    sandbox.google.expire_sync_tokens()
    synced(bsync)
    statuses = [r.status for r in sandbox.google.requests if r.method == "GET"]
    assert 410 in statuses
    assert datetime.fromisoformat(page_props(sandbox, page)["When"]["date"]["start"]) == at(16)
    sandbox.clear_requests()
    synced(bsync)
    assert writes(sandbox) == []


@pytest.mark.parametrize("upcoming", [5, 230])
def test_no_change_rerun_costs_two_requests_and_one_per_100_upcoming(sandbox, bsync, monkeypatch, upcoming):
    # Notion's clock runs 10 minutes behind, so the first run's write-backs are older than the
    # next run's edited-pages window (which overlaps the previous run by two minutes).
    monkeypatch.setattr(sandbox.notion, "clock", lambda: datetime.now(ZoneInfo("UTC")) - timedelta(minutes=10))
    for i in range(upcoming):
        day = DAY + timedelta(days=i % 9)
        add(sandbox, f"B{i}", at(8 + i % 10, day=day), at(9 + i % 10, day=day))
    later = DAY + timedelta(days=30)  # beyond the trash window: not read again
    add(sandbox, "Later", at(9, day=later), at(10, day=later))
    synced(bsync)
    sandbox.clear_requests()
    summary = synced(bsync)
    # one Notion query since the cursor, the trash window's (100 bookings a request), one Google
    # list with the sync token
    window_reads = -(-upcoming // 100)
    assert summary["requests"] == 2 + window_reads
    assert len(sandbox.notion.requests) == 1 + window_reads and len(sandbox.google.requests) == 1
    assert writes(sandbox) == []


@pytest.mark.parametrize("day", [date(2026, 3, 29), date(2026, 10, 25)])
def test_dst_and_all_day_bookings_survive_a_round_trip(sandbox, bsync, cal, day):
    bsync.configure(history="all")  # these days are past
    timed = add(sandbox, "DST day", at(10, day=day), at(11, day=day))
    allday = sandbox.notion.create_page(booking_properties("Closed", start=day, end=day + timedelta(days=1)))["id"]
    synced(bsync)
    cal.move(event_id_for(f"notion:{timed}"), at(12, day=day), at(13, day=day))
    cal.patch(event_id_for(f"notion:{allday}"), {"summary": "Closed (training)"})
    synced(bsync)
    when = page_props(sandbox, timed)["When"]["date"]
    assert datetime.fromisoformat(when["start"]) == at(12, day=day)
    closed = page_props(sandbox, allday)
    assert closed["When"]["date"]["start"] == day.isoformat()
    assert closed["When"]["date"]["end"] == (day + timedelta(days=1)).isoformat()
    event = sandbox.google.get_event(sandbox.google.calendar_id, event_id_for(f"notion:{allday}"))
    assert event["start"] == {"date": day.isoformat()} and event["end"] == {"date": (day + timedelta(days=2)).isoformat()}
    sandbox.clear_requests()
    synced(bsync)
    assert writes(sandbox) == []


def test_import_interrupted_after_the_page_is_created_makes_no_duplicate(sandbox, bsync, cal):
    event = cal.create("Walk-in", at(13), at(13, 30))
    sandbox.clear_requests()
    # The run refreshes its token and lists events (2 requests), then creates the page in Notion;
    # marking the event as imported fails.
    sandbox.google.set_faults(fail_after_n=2)
    assert bsync("sync").exit_code == 5
    assert sandbox.notion.page_count() == 1
    sandbox.google.set_faults()
    synced(bsync)
    assert sandbox.notion.page_count() == 1
    [page] = list(sandbox.notion.pages)
    assert sandbox.google.get_event(sandbox.google.calendar_id, event)["extendedProperties"]["private"][
        "bsync_key"] == f"notion:{page}"


def test_a_write_that_keeps_failing_becomes_dead_and_retry_revives_it(sandbox, bsync):
    bsync.configure(dead_after=2)
    page = add(sandbox, "Rex", at(10), at(11))
    synced(bsync)
    # a title Notion accepts but Google refuses is hard to make; a too-long location is refused by Notion:
    sandbox.google.insert_event  # (the sandbox validates like the APIs)
    cal_patch = Calendar(sandbox)
    cal_patch.patch(event_id_for(f"notion:{page}"), {"location": "x" * 2100})  # > Notion's 2,000 chars
    first = bsync("sync", "--json")
    assert first.exit_code == 1 and "2000" in first.json["failures"][0]["reason"]
    second = bsync("sync", "--json")
    assert second.exit_code == 1
    status = bsync("status", "--json").json
    assert status["journal"].get("dead") == 1
    third = bsync("sync", "--json")
    assert third.exit_code == 0 and third.json["errors"] == 0  # dead letters are parked
    cal_patch.patch(event_id_for(f"notion:{page}"), {"location": "Room 2"})
    result = bsync("retry")
    assert result.exit_code == 0, result.stdout + result.stderr
    location = page_props(sandbox, page)["Location"]["rich_text"]
    assert "".join(t["plain_text"] for t in location) == "Room 2"


def test_since_reads_pages_edited_in_that_window(sandbox, bsync):
    later = DAY + timedelta(days=30)  # beyond the trash window, which reads upcoming pages every run
    page = add(sandbox, "Rex", at(10, day=later), at(11, day=later))
    synced(bsync)
    sandbox.notion.clock = lambda: datetime.now(ZoneInfo("UTC")) - timedelta(hours=5)  # an old, missed edit
    sandbox.notion.update_page(page, properties={"Name": {"title": [{"text": {"content": "Rex (old edit)"}}]}})
    sandbox.notion.clock = lambda: datetime.now(ZoneInfo("UTC"))
    synced(bsync)  # the normal window starts at the last run: the back-dated edit is not in it
    event = sandbox.google.get_event(sandbox.google.calendar_id, event_id_for(f"notion:{page}"))
    assert event["summary"] == "Rex"
    synced(bsync, "--since", "6h")
    event = sandbox.google.get_event(sandbox.google.calendar_id, event_id_for(f"notion:{page}"))
    assert event["summary"] == "Rex (old edit)"
    assert bsync("sync", "--since", "yesterday").exit_code == 2


def test_calendar_change_to_a_booking_trashed_since_the_last_full_read_restores_it(sandbox, bsync, cal):
    """Found by the state machine: an incremental run can't see trash, so the write meets it."""
    page = add(sandbox, "Rex", at(10), at(11))
    synced(bsync)
    sandbox.notion.update_page(page, in_trash=True)
    cal.move(event_id_for(f"notion:{page}"), at(15), at(16))
    summary = synced(bsync)
    assert summary["errors"] == 0
    page_obj = sandbox.notion.get_page(page)
    assert not page_obj["in_trash"]
    assert datetime.fromisoformat(page_obj["properties"]["When"]["date"]["start"]) == at(15)


def test_requests_that_time_out_are_retried_then_reported_as_unreachable(sandbox, bsync):
    add(sandbox, "Rex", at(10), at(11))
    text = bsync.config.read_text().replace("requests_per_second = 0", "requests_per_second = 0\ntimeout_s = 0.2")
    bsync.config.write_text(text)
    sandbox.notion.set_faults(latency_ms=500)
    result = bsync("sync")
    assert result.exit_code == 5 and "timed out" in result.stderr
    last_run = bsync("status", "--json").json["runs"][0]
    assert last_run["exit_code"] == 5 and last_run["summary"]["requests"] == 3  # 1 try + 2 retries: bounded


def test_vanished_event_is_recreated_and_reported(sandbox, bsync):
    page = add(sandbox, "Rex", at(10), at(11))
    synced(bsync)
    sandbox.google.reset_state()  # the calendar lost everything (not even cancelled copies remain)
    summary = synced(bsync, "--full")
    assert summary["created"] == 1
    assert any("vanished" in n["note"] for n in summary["notes"])
    assert sandbox.google.get_event(sandbox.google.calendar_id, event_id_for(f"notion:{page}"))["status"] == "confirmed"


def test_recurring_calendar_events_are_not_imported(sandbox, bsync, cal):
    cal.create("Team meeting", at(8), at(9), "Europe/Warsaw", recurrence=["RRULE:FREQ=WEEKLY;COUNT=10"])
    synced(bsync)
    assert sandbox.notion.page_count() == 0


def test_failed_import_is_retried_on_later_runs_until_dead(sandbox, bsync, cal):
    bsync.configure(dead_after=2)
    cal.create("Walk-in", at(13), at(13, 30), location="x" * 2100)  # Notion refuses texts over 2,000 characters
    first = bsync("sync", "--json")
    assert first.exit_code == 1 and "2000" in first.json["failures"][0]["reason"]
    second = bsync("sync", "--json")  # nothing changed, yet the failed import is tried again
    assert second.exit_code == 1
    assert bsync("status", "--json").json["journal"].get("dead") == 1
    third = bsync("sync", "--json")
    assert third.exit_code == 0 and sandbox.notion.page_count() == 0


@pytest.mark.parametrize("pair", [(), ("gcal-to-notion",)])
def test_plan_text_shows_an_event_made_in_the_calendar(sandbox, bsync, cal, pair, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")  # one table row per line
    add(sandbox, "Rex", at(10), at(11))
    synced(bsync)
    event = cal.create("Walk-in: Coco", at(13), at(13, 30))
    sandbox.clear_requests()
    result = bsync("sync", *pair, "--plan")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "Walk-in: Coco" in result.stdout and f"event {event}" in result.stdout
    assert "importing" in result.stdout and writes(sandbox) == []


def _cursors(bsync) -> list:
    return [(c["provider"], c["scope"], c["value"]) for c in bsync("status", "--json").json["cursors"]]


@pytest.mark.parametrize("how", ["deleted", "wiped"])
def test_an_emptied_calendar_halts_instead_of_cancelling_every_booking(sandbox, bsync, how):
    pages = [add(sandbox, f"B{i}", at(8 + i), at(8 + i, 30)) for i in range(10)]
    synced(bsync)
    if how == "deleted":  # every event deleted: an incremental read reports each one cancelled
        for page in pages:
            sandbox.google.delete_event(sandbox.google.calendar_id, event_id_for(f"notion:{page}"))
    else:  # the calendar re-created: a full read finds none of them
        sandbox.google.reset_state()
    cursors = _cursors(bsync)
    sandbox.clear_requests()
    planned = bsync("sync", "--plan")
    assert planned.exit_code == 1 and "safety halt" in planned.stdout
    result = bsync("sync")
    assert result.exit_code == 1, result.stdout + result.stderr
    assert "none of the events linked to 10 bookings" in result.stderr and "[google] calendar_id" in result.stderr
    assert writes(sandbox) == [] and _cursors(bsync) == cursors  # nothing written, not even a cursor
    assert all(status_of(page_props(sandbox, p)) == "Confirmed" for p in pages)
    last = bsync("status", "--json").json["runs"][0]
    assert last["exit_code"] == 1 and "none of the events" in last["summary"]["error"]
    forced = synced(bsync, "--force")  # once: the operator says the plan is right
    if how == "deleted":
        assert forced["updated"] == 10 and all(status_of(page_props(sandbox, p)) == "Cancelled" for p in pages)
    else:
        assert forced["created"] == 10 and sandbox.google.event_count(sandbox.google.calendar_id) == 10
    sandbox.clear_requests()
    synced(bsync)  # settled: no halt, nothing to write
    assert writes(sandbox) == []



def event_status(sandbox, page_id):
    return sandbox.google.get_event(sandbox.google.calendar_id, event_id_for(f"notion:{page_id}"))["status"]


def test_trashed_upcoming_page_frees_its_slot_on_the_next_incremental_run(sandbox, bsync):
    keep = add(sandbox, "Keep", at(9), at(10))
    gone = add(sandbox, "Gone", at(10), at(11))
    later = DAY + timedelta(days=20)  # beyond the 14-day trash window
    far = add(sandbox, "Far", at(10, day=later), at(11, day=later))
    synced(bsync)
    sandbox.notion.update_page(gone, in_trash=True)
    sandbox.notion.update_page(far, in_trash=True)
    sandbox.clear_requests()
    summary = synced(bsync)  # incremental: the trash window read misses the upcoming page
    assert summary["deleted"] == 1
    assert event_status(sandbox, gone) == "cancelled" and event_status(sandbox, keep) == "confirmed"
    assert sandbox.notion.count("GET", f"/pages/{gone}") == 1  # one missing page: confirmed trashed first
    assert event_status(sandbox, far) == "confirmed"  # beyond the window: the next full read sees it
    sandbox.clear_requests()
    synced(bsync)
    assert writes(sandbox) == []  # a tombstone: not again
    synced(bsync, "--full")
    assert event_status(sandbox, far) == "cancelled"


def test_trash_window_off_leaves_trash_to_the_full_read(sandbox, bsync):
    bsync.configure(trash_window="0")
    gone = add(sandbox, "Gone", at(10), at(11))
    add(sandbox, "Keep", at(9), at(10))
    synced(bsync)
    sandbox.notion.update_page(gone, in_trash=True)
    sandbox.clear_requests()
    assert synced(bsync)["requests"] == 2 and event_status(sandbox, gone) == "confirmed"


def test_many_upcoming_pages_trashed_halt_without_a_request_each(sandbox, bsync):
    pages = [add(sandbox, f"B{i}", at(8 + i), at(9 + i)) for i in range(8)]
    synced(bsync)
    for page in pages[:6]:
        sandbox.notion.update_page(page, in_trash=True)
    sandbox.clear_requests()
    result = bsync("sync")
    assert result.exit_code == 1 and "safety halt" in result.stderr and "6 of 8" in result.stderr
    assert writes(sandbox) == [] and sandbox.notion.count("GET", "/pages/") == 0  # more than 5: not each confirmed
    summary = synced(bsync, "--force")
    assert summary["deleted"] == 6 and [event_status(sandbox, p) for p in pages].count("cancelled") == 6


def test_upcoming_pages_that_are_drafts_or_failing_are_not_taken_for_trashed(sandbox, bsync):
    draft = add(sandbox, "Draft", at(9), at(10))
    broken = add(sandbox, "Broken", at(11), at(12))
    add(sandbox, "Keep", at(13), at(14))
    synced(bsync)
    sandbox.notion.update_page(draft, properties={"When": {"date": None}, "Status": {"status": {"name": "Pending"}}})
    sandbox.notion.update_page(broken, properties={"When": {"date": None}})  # Confirmed needs a date
    synced_or_failed = bsync("sync", "--json")
    assert synced_or_failed.exit_code == 1  # the broken page is reported
    sandbox.clear_requests()
    assert bsync("sync", "--json").exit_code == 1  # not edited since: carried, still not trashed
    assert writes(sandbox) == [] and sandbox.notion.count("GET", "/pages/") == 0
    assert event_status(sandbox, draft) == "confirmed" and event_status(sandbox, broken) == "confirmed"


def event_id_of(sandbox, page_id):
    return "".join(t["plain_text"] for t in page_props(sandbox, page_id)["Calendar Event ID"]["rich_text"])


def test_first_sync_leaves_bookings_before_the_history_horizon_alone(sandbox, bsync, cal):
    today = date.today()
    old = [add(sandbox, f"Old {i}", at(10, day=today - timedelta(days=40 + 6 * i)),
               at(11, day=today - timedelta(days=40 + 6 * i))) for i in range(110)]  # 2 years back
    recent = add(sandbox, "Last week", at(10, day=today - timedelta(days=7)), at(11, day=today - timedelta(days=7)))
    upcoming = [add(sandbox, f"Soon {i}", at(9 + i), at(10 + i)) for i in range(3)]
    cal.create("Old dentist", at(8, day=today - timedelta(days=300)), at(9, day=today - timedelta(days=300)))
    plan = bsync("sync", "--plan")
    assert "110 bookings ended before the 30-day history horizon: left alone" in plan.stdout
    assert "this run writes" not in plan.stdout  # 4 pages: no estimate
    sandbox.clear_requests()
    summary = synced(bsync)
    assert summary["created"] == 4 and summary["errors"] == 0
    assert sandbox.google.event_count(sandbox.google.calendar_id) == 5  # ours, and the old event not imported
    assert [w[:2] for w in writes(sandbox) if w[0] == "notion"] == [("notion", "PATCH")] * 4  # write-backs
    assert all(event_id_of(sandbox, page) for page in [recent, *upcoming])
    assert not any(event_id_of(sandbox, page) for page in old)
    sandbox.clear_requests()
    synced(bsync, "--full")
    assert writes(sandbox) == []


def test_history_all_syncs_every_booking_and_plan_estimates_the_long_run(sandbox, bsync):
    today = date.today()
    for i in range(110):
        add(sandbox, f"Old {i}", at(10, day=today - timedelta(days=40 + 6 * i)), at(11, day=today - timedelta(days=40 + 6 * i)))
    bsync.options["notion_rate"] = 1
    bsync.configure(history="all")
    plan = bsync("sync", "--plan")
    assert "history horizon" not in plan.stdout
    assert "this run writes 110 pages: about 2 minutes at 1 requests/s" in plan.stdout


def test_linked_bookings_that_fall_behind_the_horizon_are_left_alone(sandbox, bsync, cal):
    today = date.today()
    old = [add(sandbox, f"Old {i}", at(10, day=today - timedelta(days=60 + i)), at(11, day=today - timedelta(days=60 + i)))
           for i in range(3)]
    soon = add(sandbox, "Soon", at(9), at(10))
    bsync.configure(history="all")
    assert synced(bsync)["created"] == 4
    bsync.configure()  # the default horizon, 30 days
    sandbox.notion.update_page(old[0], properties={"Name": {"title": [{"text": {"content": "renamed"}}]}})
    cal.patch(event_id_for(f"notion:{old[1]}"), {"summary": "edited in the calendar"})
    sandbox.notion.update_page(old[2], in_trash=True)
    sandbox.clear_requests()
    synced(bsync)
    synced(bsync, "--full")
    assert writes(sandbox) == []
    assert event_status(sandbox, old[2]) == "confirmed" and title_of(page_props(sandbox, old[1])) == "Old 1"
    assert event_status(sandbox, soon) == "confirmed"
