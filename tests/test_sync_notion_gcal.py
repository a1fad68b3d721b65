"""notion-to-gcal end to end: the real notion-client and google-api-python-client over
loopback HTTP against the sandbox.  Nothing of bsync's own is mocked."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
from conftest import write_requests

from bsync.calendars.gcal import event_id_for
from bsync.sandbox.seed import booking_properties, seed_demo

WAW = ZoneInfo("Europe/Warsaw")
NYC = ZoneInfo("America/New_York")


@pytest.fixture(autouse=True)
def one_way(bsync):
    """These tests cover the one-way pair: the calendar follows Notion.  Their dates are fixed
    (in 2026), so the history horizon is off unless a test is about it."""
    bsync.defaults = {"pairs": ["notion-to-gcal"], "history": "all"}
    bsync.configure()


def at(y, m, d, h, mi=0, tz=WAW):
    return datetime(y, m, d, h, mi, tzinfo=tz)


def writes(sandbox) -> list:
    return write_requests(sandbox)


def add(sandbox, title, **kw):
    page = sandbox.notion.create_page(booking_properties(title, **kw))
    return page["id"]


def event_of(sandbox, page_id):
    return sandbox.google.get_event(sandbox.google.calendar_id, event_id_for(f"notion:{page_id}"))


def live_events(sandbox):
    return [e for e in sandbox.google.list_events(sandbox.google.calendar_id, include_deleted=False)]


def test_create_sets_times_allday_and_dst_and_writes_back_the_event_id(sandbox, bsync):
    rex = add(sandbox, "Rex – groom", start=at(2026, 3, 29, 10), end=at(2026, 3, 29, 11, 30),
              time_zone="Europe/Warsaw", email="jan@example.com", customer="Jan")
    autumn = add(sandbox, "Autumn", start=at(2026, 10, 25, 10), end=at(2026, 10, 25, 11), time_zone="Europe/Warsaw")
    nyc = add(sandbox, "Video call", start=at(2026, 3, 8, 9, tz=NYC), end=at(2026, 3, 8, 9, 30, tz=NYC),
              time_zone="America/New_York", timezone="America/New_York")
    allday = add(sandbox, "Workshop", start=date(2026, 3, 28), end=date(2026, 3, 29))

    result = bsync("sync", "--json")
    assert result.exit_code == 0, result.stdout + result.stderr
    summary = result.json
    assert summary["created"] == 4 and summary["errors"] == 0 and summary["pair"] == "notion-to-gcal"

    ev = event_of(sandbox, rex)
    assert datetime.fromisoformat(ev["start"]["dateTime"]) == datetime(2026, 3, 29, 8, 0, tzinfo=ZoneInfo("UTC"))
    assert ev["start"]["timeZone"] == "Europe/Warsaw"
    assert ev["extendedProperties"]["private"]["bsync_key"] == f"notion:{rex}"
    assert ev["attendees"][0]["email"] == "jan@example.com"
    ev = event_of(sandbox, autumn)  # after the autumn change Warsaw is UTC+1 again
    assert datetime.fromisoformat(ev["start"]["dateTime"]) == datetime(2026, 10, 25, 9, 0, tzinfo=ZoneInfo("UTC"))
    ev = event_of(sandbox, nyc)  # 9:00 EDT on the day New York springs forward
    assert datetime.fromisoformat(ev["start"]["dateTime"]) == datetime(2026, 3, 8, 13, 0, tzinfo=ZoneInfo("UTC"))
    assert ev["start"]["timeZone"] == "America/New_York"
    ev = event_of(sandbox, allday)  # Notion's inclusive 28–29 March is Google's [28, 30)
    assert ev["start"] == {"date": "2026-03-28"} and ev["end"] == {"date": "2026-03-30"}

    page = sandbox.notion.get_page(rex)
    stored = "".join(t["plain_text"] for t in page["properties"]["Calendar Event ID"]["rich_text"])
    assert stored == event_id_for(f"notion:{rex}")


def test_rerun_without_changes_writes_nothing(sandbox, bsync):
    seed_demo(sandbox.notion, date(2026, 11, 23))
    assert bsync("sync").exit_code == 0  # Bella, with no date yet, is a draft: skipped, not an error
    sandbox.clear_requests()
    result = bsync("sync", "--json")
    assert writes(sandbox) == []
    assert result.json["created"] == result.json["updated"] == result.json["deleted"] == 0
    assert result.json["requests"] == len(sandbox.notion.requests) + len(sandbox.google.requests)


def test_edit_in_notion_patches_the_event_instead_of_recreating(sandbox, bsync):
    page = add(sandbox, "Rex", start=at(2026, 12, 1, 10), end=at(2026, 12, 1, 11))
    bsync("sync")
    sandbox.clear_requests()
    sandbox.notion.update_page(page, properties=booking_properties(
        "Rex (moved)", start=at(2026, 12, 1, 14), end=at(2026, 12, 1, 15)))
    result = bsync("sync", "--json")
    assert result.json["updated"] == 1 and result.json["created"] == 0
    google_writes = [w for w in writes(sandbox) if w[0] == "google"]
    assert [w[1] for w in google_writes] == ["PATCH"]
    ev = event_of(sandbox, page)
    assert ev["summary"] == "Rex (moved)"
    assert datetime.fromisoformat(ev["start"]["dateTime"]).astimezone(WAW).hour == 14
    assert sandbox.google.event_count(sandbox.google.calendar_id) == 1


@pytest.mark.parametrize("policy, method", [("cancel", "PATCH"), ("delete", "DELETE")])
def test_cancelled_booking_cancels_or_deletes_its_event(sandbox, bsync, policy, method):
    bsync.configure(delete_policy=policy)
    page = add(sandbox, "Rex", start=at(2026, 12, 1, 10), end=at(2026, 12, 1, 11))
    bsync("sync")
    sandbox.clear_requests()
    sandbox.notion.update_page(page, properties={"Status": {"status": {"name": "Cancelled"}}})
    result = bsync("sync", "--json")
    assert result.json["deleted"] == 1
    assert [w[1] for w in writes(sandbox) if w[0] == "google"] == [method]
    assert event_of(sandbox, page)["status"] == "cancelled"
    sandbox.clear_requests()
    assert bsync("sync").exit_code == 0 and writes(sandbox) == []  # settled: not cancelled twice

    # Re-opened: Google never frees the id, so the same event comes back by update.
    sandbox.notion.update_page(page, properties={"Status": {"status": {"name": "Confirmed"}}})
    result = bsync("sync", "--json")
    assert result.json["updated"] == 1 and result.json["created"] == 0
    assert event_of(sandbox, page)["status"] == "confirmed"
    assert sandbox.google.event_count(sandbox.google.calendar_id, include_deleted=True) == 1


def test_existing_event_with_the_deterministic_id_is_adopted(sandbox, bsync):
    page = add(sandbox, "Rex", start=at(2026, 12, 1, 10), end=at(2026, 12, 1, 11))
    sandbox.google.insert_event(sandbox.google.calendar_id, {
        "id": event_id_for(f"notion:{page}"), "summary": "old title",
        "start": {"dateTime": "2026-12-01T09:00:00Z"}, "end": {"dateTime": "2026-12-01T10:00:00Z"},
        "extendedProperties": {"private": {"bsync_key": f"notion:{page}"}}})
    result = bsync("sync", "--json")
    assert result.exit_code == 0
    assert sandbox.google.count("POST", "/events") == 0  # no insert at all
    assert sandbox.google.event_count(sandbox.google.calendar_id) == 1
    assert event_of(sandbox, page)["summary"] == "Rex"


def test_a_full_read_holds_each_shared_value_once(sandbox, bsync):
    """At 100,000 bookings every string counts: a booking and its event read back share their
    title, key and event id (and pages their zone and staff member) as one object each."""
    add(sandbox, "Rex groom", start=at(2026, 12, 1, 10), end=at(2026, 12, 1, 11), staff="Anna",
        timezone="Europe/Warsaw")
    add(sandbox, "Bella bath", start=at(2026, 12, 2, 10), end=at(2026, 12, 2, 11), staff="Anna",
        timezone="Europe/Warsaw")
    assert bsync("sync").exit_code == 0
    from bsync.config import load_config
    from bsync.calendars.gcal import GoogleCalendarTarget
    from bsync.ledger.notion import NotionSource

    settings = load_config(bsync.config)
    bookings = NotionSource.from_settings(settings).read_bookings().bookings
    target = GoogleCalendarTarget.from_settings(settings)
    events = {item.key: item for item in target.read_changes(None).items.values()}
    target.close()
    for booking in bookings:
        event = events[booking.key]
        assert event.key is booking.key and event.id is booking.target_ids["gcal"]
        assert event.common["title"] is booking.title
    assert bookings[0].staff is bookings[1].staff and bookings[0].timezone is bookings[1].timezone


def test_insert_that_hits_409_adopts_the_event(sandbox, bsync):
    """The event exists but the listing missed it (e.g. created in the same second): 409 → adopt."""
    page = add(sandbox, "Rex", start=at(2026, 12, 1, 10), end=at(2026, 12, 1, 11))
    from bsync.config import load_config
    from bsync.calendars.gcal import GoogleCalendarTarget
    from bsync.ledger.notion import NotionSource
    from bsync.core.retry import RetryPolicy

    settings = load_config(bsync.config)
    source = NotionSource(settings.notion, settings.timezone, RetryPolicy())
    target = GoogleCalendarTarget(settings.google, RetryPolicy())
    booking = source.read_bookings().bookings[0]
    first = target.create(booking, target.target_id_for(booking.key))
    second = target.create(booking, target.target_id_for(booking.key))
    assert first.target_id == second.target_id and "adopted" in second.note
    assert sandbox.google.count("POST", "/events") == 2
    assert sandbox.google.event_count(sandbox.google.calendar_id) == 1
    assert page


def test_failure_between_insert_and_writeback_converges_with_one_event(sandbox, bsync):
    pages = [add(sandbox, f"B{i}", start=at(2026, 12, 1, 8 + i), end=at(2026, 12, 1, 9 + i)) for i in range(3)]
    # Notion lets discovery + schema + query through, then fails every write-back.
    sandbox.notion.set_faults(fail_after_n=3)
    result = bsync("sync")
    assert result.exit_code == 5
    assert "still failing" in result.stderr
    assert sandbox.google.event_count(sandbox.google.calendar_id) == 3  # one batch inserted them all
    sandbox.notion.set_faults()
    result = bsync("sync", "--json")
    assert result.exit_code == 0
    assert sandbox.google.event_count(sandbox.google.calendar_id) == 3
    for page in pages:
        props = sandbox.notion.get_page(page)["properties"]
        assert "".join(t["plain_text"] for t in props["Calendar Event ID"]["rich_text"]) == event_id_for(f"notion:{page}")


def test_killed_run_converges_without_duplicates(sandbox, bsync):
    """SIGKILL a real `bsync sync` process mid-apply (between two batch requests), then rerun."""
    pages = [add(sandbox, f"B{i}", start=at(2026, 12, 2 + i // 20, 8, i % 20), end=at(2026, 12, 2 + i // 20, 9, i % 20))
             for i in range(120)]
    sandbox.google.set_faults(latency_ms=300)
    proc = subprocess.Popen([sys.executable, "-m", "bsync.cli", "sync", "--config", str(bsync.config)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while sandbox.google.count("POST", "/batch") < 1 and time.monotonic() < deadline:
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    sandbox.google.set_faults()
    created_before = sandbox.google.event_count(sandbox.google.calendar_id)
    assert 0 < created_before < 120
    result = bsync("sync", "--json")
    assert result.exit_code == 0, result.stderr
    events = live_events(sandbox)
    keys = [e["extendedProperties"]["private"]["bsync_key"] for e in events]
    assert len(events) == 120 and len(set(keys)) == 120
    assert set(keys) == {f"notion:{p}" for p in pages}
    status = bsync("status", "--json").json
    assert status["runs"][1]["exit_code"] is None  # the killed run shows as unfinished
    sandbox.clear_requests()
    assert bsync("sync").exit_code == 0 and writes(sandbox) == []


def test_malformed_pages_are_reported_and_the_rest_sync(sandbox, bsync):
    good = add(sandbox, "Good", start=at(2026, 12, 1, 10), end=at(2026, 12, 1, 11))
    no_date = add(sandbox, "No date", start=None)
    backwards = add(sandbox, "Backwards", start=at(2026, 12, 1, 11), end=at(2026, 12, 1, 10))
    bad_email = add(sandbox, "Bad email", start=at(2026, 12, 1, 10), email="not-an-email")
    bad_zone = add(sandbox, "Bad zone", start=at(2026, 12, 1, 10), timezone="Mars/Olympus")
    bad_status = add(sandbox, "Bad status", start=at(2026, 12, 1, 10), status="In progress")
    result = bsync("sync", "--json", "--config", str(bsync.config))
    reasons = {f["id"]: f["reason"] for f in result.json["failures"]}
    assert result.exit_code == 1
    assert "no date" in reasons[no_date]
    assert "before start" in reasons[backwards]
    assert "email" in reasons[bad_email]
    assert "Mars/Olympus" in reasons[bad_zone]
    assert good not in reasons and bad_status not in reasons  # In progress is a known status
    assert result.json["created"] == 2
    assert event_of(sandbox, good) is not None


def test_unknown_status_is_a_record_error(sandbox, bsync):
    page = add(sandbox, "Odd", start=at(2026, 12, 1, 10))
    with bsync.config.open("a") as f:  # a status table that doesn't know "Confirmed"
        f.write('\n[notion.status_map]\n"Pending" = "scheduled"\n')
    result = bsync("sync", "--json")
    assert result.exit_code == 1
    assert result.json["failures"] == [{"id": page, "title": "Odd", "reason": result.json["failures"][0]["reason"]}]
    assert "unknown status 'Confirmed'" in result.json["failures"][0]["reason"]


def test_wrong_token_exits_4_with_a_clear_message(sandbox, bsync):
    text = bsync.config.read_text().replace('token = "sandbox-token"', 'token = "secret_wrong_token_123"')
    bsync.config.write_text(text)
    result = bsync("sync")
    assert result.exit_code == 4
    assert "Notion refused the token" in result.stderr
    assert "secret_wrong_token_123" not in result.stdout + result.stderr


def test_unreachable_remote_exits_5_after_bounded_retries(sandbox, bsync):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    text = bsync.config.read_text().replace(sandbox.notion.url, f"http://127.0.0.1:{closed_port}")
    bsync.config.write_text(text)
    started = time.monotonic()
    result = bsync("sync")
    assert result.exit_code == 5
    assert "cannot reach Notion" in result.stderr and "3 attempts" in result.stderr
    assert time.monotonic() - started < 10


def test_plan_writes_nothing_anywhere(sandbox, bsync):
    seed_demo(sandbox.notion, date(2026, 11, 23))
    result = bsync("sync", "--plan", "--json")
    assert result.exit_code == 0  # Bella (Pending, no date yet) is a draft, not a failure
    assert not bsync.state_path.exists()
    ops = [a["op"] for a in result.json["actions"]]
    assert ops.count("create") == 5 and "failures" not in result.json
    bsync("sync")
    page = next(iter(sandbox.notion.pages))
    sandbox.notion.update_page(page, properties={"Name": {"title": [{"text": {"content": "Renamed"}}]}})
    before = bsync.state_path.read_bytes()
    sandbox.clear_requests()
    result = bsync("sync", "--plan", "--json")
    assert [a for a in result.json["actions"] if a["op"] == "update"][0]["changes"]["title"][1] == "Renamed"
    assert writes(sandbox) == []
    assert bsync.state_path.read_bytes() == before
    text = bsync("sync", "--plan")
    assert "Renamed" in text.stdout and "update" in text.stdout


def test_safety_halt_on_mass_removal_and_force(sandbox, bsync):
    pages = [add(sandbox, f"B{i}", start=at(2026, 12, 1, 8 + i), end=at(2026, 12, 1, 9 + i)) for i in range(4)]
    assert bsync("sync").exit_code == 0
    for page in pages[:3]:
        sandbox.notion.update_page(page, in_trash=True)
    sandbox.clear_requests()
    assert bsync("sync").exit_code == 0 and writes(sandbox) == []  # trash shows only in a full read
    result = bsync("sync", "--full")
    assert result.exit_code == 1 and "safety halt" in result.stderr and "3 of 4" in result.stderr
    assert writes(sandbox) == []
    result = bsync("sync", "--full", "--force", "--json")
    assert result.exit_code == 0 and result.json["deleted"] == 3
    sandbox.clear_requests()
    assert bsync("sync", "--full").exit_code == 0 and writes(sandbox) == []  # tombstones: not again


def test_empty_source_with_mappings_halts(sandbox, bsync):
    pages = [add(sandbox, f"B{i}", start=at(2026, 12, 1, 8 + i), end=at(2026, 12, 1, 9 + i)) for i in range(2)]
    bsync("sync")
    for page in pages:
        sandbox.notion.update_page(page, in_trash=True)
    result = bsync("sync", "--full")
    assert result.exit_code == 1 and "returned no bookings" in result.stderr


def test_pagination_reads_every_page(sandbox, bsync):
    for i in range(230):
        add(sandbox, f"B{i}", start=at(2026, 12, 1 + i % 28, 8), end=at(2026, 12, 1 + i % 28, 9))
    result = bsync("sync", "--json")
    assert result.json["created"] == 230
    assert sandbox.notion.count("POST", "/query") == 3
    assert sandbox.google.event_count(sandbox.google.calendar_id) == 230


def test_lock_held_exits_3(sandbox, bsync):
    import threading

    from bsync.core.store import RunLock

    held, done = threading.Event(), threading.Event()

    def other_run():  # another run (the lock is re-entrant only within one thread)
        with RunLock(bsync.state_path):
            held.set()
            done.wait(10)

    thread = threading.Thread(target=other_run)
    thread.start()
    held.wait(10)
    try:
        result = bsync("sync")
    finally:
        done.set()
        thread.join()
    assert result.exit_code == 3 and "holds the lock" in result.stderr


def test_missing_section_exits_2_naming_it(sandbox, bsync):
    text = bsync.config.read_text()
    bsync.config.write_text(text[: text.index("[google]")] + text[text.index("[sync]"):])
    result = bsync("sync")
    assert result.exit_code == 2 and "[google]" in result.stderr


def test_no_secret_in_output_logs_or_state(sandbox, bsync):
    seed_demo(sandbox.notion, date(2026, 11, 23))
    outputs = [bsync("sync", "--plan", "-vv"), bsync("sync", "-vv"), bsync("sync", "--json"),
               bsync("status"), bsync("status", "--json")]
    blob = "".join(r.stdout + r.stderr for r in outputs)
    assert "sandbox-token" not in blob and "sandbox-client-secret" not in blob
    assert b"sandbox-token" not in bsync.state_path.read_bytes()
    assert os.stat(bsync.state_path).st_mode & 0o777 == 0o600


def test_status_shows_runs_and_summaries(sandbox, bsync):
    seed_demo(sandbox.notion, date(2026, 11, 23))
    bsync("sync")
    result = bsync("status", "--json")
    data = result.json
    assert data["runs"][0]["command"] == "sync notion-to-gcal"
    assert data["runs"][0]["exit_code"] == 0 and data["runs"][0]["summary"]["created"] == 5
    assert data["links"]["notion+gcal"] == 5
    text = bsync("status")
    assert "Recent runs" in text.stdout and "sync notion-to-gcal" in text.stdout


def test_paced_run_stays_under_notions_rate_limit(sandbox, bsync):
    """Sandbox Notion limits to 3 req/s like the real API; bsync paces itself and never gets a 429."""
    for i in range(5):
        add(sandbox, f"B{i}", start=at(2026, 12, 1, 8 + i), end=at(2026, 12, 1, 9 + i))
    from bsync.sandbox.seed import write_sandbox_config

    bsync.config = write_sandbox_config(sandbox, bsync.folder, notion_rate=3)
    sandbox.notion.set_faults(rate_limit_per_s=3)
    started = time.monotonic()
    result = bsync("sync", "--json")
    elapsed = time.monotonic() - started
    assert result.exit_code == 0 and result.json["created"] == 5
    statuses = [r.status for r in sandbox.notion.requests]
    assert 429 not in statuses and len(statuses) == 8  # db + data source + query + 5 write-backs
    assert elapsed >= 7 / 3 - 0.1  # 8 requests spaced 1/3 s apart


def test_rate_limited_requests_are_retried_after_retry_after(sandbox, bsync):
    """Without pacing, the sandbox's 429s (with Retry-After) are retried and the run still succeeds."""
    for i in range(4):
        add(sandbox, f"B{i}", start=at(2026, 12, 1, 8 + i), end=at(2026, 12, 1, 9 + i))
    bsync.configure(max_retries=6, retry_max_delay=1.0)
    sandbox.notion.set_faults(rate_limit_per_s=4)
    result = bsync("sync", "--json")
    assert result.exit_code == 0 and result.json["created"] == 4
    statuses = [r.status for r in sandbox.notion.requests]
    assert statuses.count(429) >= 1 and statuses.count(200) == 7


def test_page_without_a_date_is_a_draft_unless_its_status_needs_one(sandbox, bsync):
    good = add(sandbox, "Rex – bath", start=at(2026, 12, 1, 10), end=at(2026, 12, 1, 11))
    draft = add(sandbox, "Bella – consultation", start=None, status="Pending")
    result = bsync("sync", "--plan", "-v")
    assert result.exit_code == 0 and "Bella – consultation" in result.stdout and "no date yet" in result.stdout
    plan = bsync("sync", "--plan", "--json").json
    assert {"op": "skip", "source_id": f"notion:{draft}", "target_id": None, "changes": {},
            "reason": "no date yet"} in plan["actions"] and "failures" not in plan
    result = bsync("sync", "--json")
    assert result.exit_code == 0 and result.json["failures"] == [] and result.json["drafts"] == 1
    assert event_of(sandbox, good) is not None and len(live_events(sandbox)) == 1
    status = bsync("status", "--json").json
    assert status["commands"]["sync"]["last_success"] is not None
    assert [d["title"] for d in status["records"]["drafts"]] == ["Bella – consultation"]
    assert status["records"]["failing"] == []
    assert "drafts: 1" in bsync("status").stdout

    bsync.configure(date_required=["Pending"])  # now Pending needs a date: an error again
    result = bsync("sync", "--json", "--full")
    assert result.exit_code == 1
    assert result.json["failures"] == [{"id": draft, "title": "Bella – consultation",
                                         "reason": "no date in property 'When'; a 'Pending' booking "
                                                   "needs one ([sync] date_required)"}]


def test_date_required_must_name_a_status_option(sandbox, bsync):
    bsync.configure(date_required=["Confirmd"])
    result = bsync("sync")
    assert result.exit_code == 2 and "sync.date_required" in result.stderr and "'Confirmd'" in result.stderr


def test_failing_record_stays_reported_until_fixed(sandbox, bsync, monkeypatch):
    from datetime import timedelta, timezone

    real_now = sandbox.notion.clock
    monkeypatch.setattr(sandbox.notion, "clock", lambda: real_now() - timedelta(hours=1))  # edited an hour ago
    bad = add(sandbox, "Kiki – trim", start=at(2026, 12, 1, 10), email="kiki-at-example")
    add(sandbox, "Rex – bath", start=at(2026, 12, 1, 12))
    first = bsync("sync", "--json")
    assert first.exit_code == 1
    expected = {"id": bad, "title": "Kiki – trim", "reason": "invalid email address 'kiki-at-example'"}
    assert first.json["failures"] == [expected]

    sandbox.clear_requests()
    second = bsync("sync", "--json")  # incremental: the page, edited an hour ago, is not read again
    queried = [r for r in sandbox.notion.requests if r.path.endswith("/query")]
    assert queried and all("filter" in r.json for r in queried)
    assert second.exit_code == 1 and second.json["failures"] == [expected]
    assert "Kiki – trim" in bsync("sync").stdout
    status = bsync("status", "--json").json
    assert [(r["id"], r["title"]) for r in status["records"]["failing"]] == [(f"notion:{bad}", "Kiki – trim")]
    assert "invalid email address" in bsync("status").stdout
    assert bsync("status", "--metrics", str(bsync.folder / "bsync.prom")).exit_code == 0
    assert 'bsync_records{state="failing"} 1' in (bsync.folder / "bsync.prom").read_text().splitlines()

    monkeypatch.setattr(sandbox.notion, "clock", lambda: datetime.now(timezone.utc))
    sandbox.notion.update_page(bad, properties={"Email": {"email": "kiki@example.com"}})
    fixed = bsync("sync", "--json")
    assert fixed.exit_code == 0 and fixed.json["failures"] == []
    assert event_of(sandbox, bad) is not None
    assert bsync("status", "--json").json["records"] == {"failing": [], "drafts": []}


def test_trashed_failing_record_is_forgotten_by_the_next_full_read(sandbox, bsync):
    bad = add(sandbox, "Kiki – trim", start=at(2026, 12, 1, 10), email="kiki-at-example")
    assert bsync("sync").exit_code == 1
    sandbox.notion.update_page(bad, in_trash=True)
    assert bsync("sync", "--full").exit_code == 0
    assert bsync("status", "--json").json["records"]["failing"] == []


@pytest.mark.parametrize("start, end, why", [
    (at(2026, 12, 1, 10), at(2026, 12, 1, 10), "zero length"),
    (at(2026, 12, 1, 10), at(2036, 12, 1, 10), "lasts 3653 days"),
    (at(1900, 12, 1, 10), at(1900, 12, 1, 11), "year 1900"),
    (at(9999, 12, 1, 10), at(9999, 12, 1, 11), "year 9999"),
    (date(2026, 12, 1), date(2027, 3, 1), "lasts 91 days, more than 31 days"),
])
def test_suspicious_times_are_reported_and_never_reach_the_calendar(sandbox, bsync, start, end, why):
    good = add(sandbox, "Rex – bath", start=at(2026, 12, 1, 12))
    odd = add(sandbox, "Odd", start=start, end=end)
    result = bsync("sync", "--json")
    assert result.exit_code == 1 and result.json["created"] == 1
    [failure] = result.json["failures"]
    assert failure["id"] == odd and failure["title"] == "Odd"
    assert failure["reason"].startswith("suspicious time") and why in failure["reason"]
    assert event_of(sandbox, good) is not None and len(live_events(sandbox)) == 1


@pytest.mark.parametrize("mapping, message", [
    ('start = "Whenn"', '[notion.properties] start = "Whenn": no such property in the database '
                        '(properties: Calendar Event ID, Client ID, Customer, Email, '),
    ('start = "Name"\nend = "Name"', '[notion.properties] start = "Name" is a title property; it must be a date'),
    ('status = "Customer"', '[notion.properties] status = "Customer" is a text property; '
                            'it must be a select or a status'),
])
def test_mapped_property_missing_or_of_the_wrong_type_is_a_config_error(sandbox, bsync, mapping, message):
    add(sandbox, "Rex – bath", start=at(2026, 12, 1, 12))
    text = bsync.config.read_text()
    bsync.config.write_text(text.replace("[google]", f"[notion.properties]\n{mapping}\n\n[google]"))
    result = bsync("sync")
    assert result.exit_code == 2 and message in " ".join(result.stderr.split())
    assert not [r for r in sandbox.notion.requests if r.path.endswith("/query")]  # no page was read
    assert writes(sandbox) == []


def test_property_mapping_is_checked_even_with_a_cached_schema(sandbox, bsync):
    add(sandbox, "Rex – bath", start=at(2026, 12, 1, 12))
    assert bsync("sync").exit_code == 0  # caches the schema
    text = bsync.config.read_text()
    bsync.config.write_text(text.replace("[google]", '[notion.properties]\nstaff = "Staf"\n\n[google]'))
    sandbox.clear_requests()
    result = bsync("sync")
    assert result.exit_code == 2 and 'staff = "Staf": no such property' in " ".join(result.stderr.split())
    assert not [r for r in sandbox.notion.requests if r.path.endswith("/query")]
