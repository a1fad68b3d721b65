"""Kill-at-every-write, two-way, at scale: 50 bookings with creates, moves, cancellations and
deletions on both sides.  Whichever call a run dies at, the next run ends in exactly the
state an uninterrupted run reaches, with no duplicate event or page; a third writes nothing.
Also: a run under 20% injected 429/500/502 answers leaves no duplicate and converges."""

from __future__ import annotations

import os
from collections import Counter
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from conftest import converges_after_dying_at_every_call
from test_two_way import Calendar

from bsync.calendars.gcal import event_id_for
from bsync.sandbox.seed import booking_properties

WAW = ZoneInfo("Europe/Warsaw")
BASE = date.today() + timedelta(days=2)
N = 50


def at(i: int, hour_shift: int = 0) -> tuple[datetime, datetime]:
    day = BASE + timedelta(days=i // 8)
    start = datetime(day.year, day.month, day.day, 9 + i % 8 + hour_shift, tzinfo=WAW)
    return start, start + timedelta(minutes=45)


def scenario(sandbox, bsync) -> None:
    """Sync 50 bookings, then change both sides before the run under test."""
    pages = []
    for i in range(N):
        start, end = at(i)
        pages.append(sandbox.notion.create_page(booking_properties(
            f"B{i}", start=start, end=end, time_zone="Europe/Warsaw", email=f"c{i}@example.com"))["id"])
    assert bsync("sync").exit_code == 0
    cal = Calendar(sandbox)
    for i in range(0, 5):  # moved in Notion
        start, end = at(i, hour_shift=1)
        sandbox.notion.update_page(pages[i], properties=booking_properties(
            f"B{i} moved", start=start, end=end, time_zone="Europe/Warsaw"))
    for i in range(5, 8):  # cancelled in Notion
        sandbox.notion.update_page(pages[i], properties={"Status": {"status": {"name": "Cancelled"}}})
    for i in range(8, 10):  # trashed in Notion
        sandbox.notion.update_page(pages[i], in_trash=True)
    for i in range(N, N + 5):  # new in Notion
        start, end = at(i)
        sandbox.notion.create_page(booking_properties(f"B{i}", start=start, end=end, time_zone="Europe/Warsaw"))
    for i in range(10, 15):  # moved in the calendar
        start, end = at(i, hour_shift=-1)
        cal.move(event_id_for(f"notion:{pages[i]}"), start, end)
    for i in range(15, 18):  # deleted in the calendar
        cal.delete(event_id_for(f"notion:{pages[i]}"))
    for j in range(3):  # made in the calendar
        start, _ = at(N + 10 + j)
        cal.create(f"Walk-in {j}", start, start + timedelta(minutes=30))
    sandbox.clear_requests()


def state(sandbox):
    """Both sides, without ids (which differ between runs only for imported pages)."""
    pages = []
    event_ids = Counter()
    for page_id in sandbox.notion.pages:
        page = sandbox.notion.get_page(page_id)
        p = page["properties"]
        when = p["When"]["date"] or {}
        recorded = "".join(t["plain_text"] for t in p["Calendar Event ID"]["rich_text"])
        event_ids[recorded] += 1
        pages.append(("".join(t["plain_text"] for t in p["Name"]["title"]), when.get("start"), when.get("end"),
                      p["Status"]["status"]["name"], page["in_trash"], bool(recorded)))
    assert all(n == 1 for e, n in event_ids.items() if e), f"two pages record one event: {event_ids}"
    events = sandbox.google.list_events(sandbox.google.calendar_id, include_deleted=True)
    keys = Counter(((e.get("extendedProperties") or {}).get("private") or {}).get("bsync_key") for e in events)
    assert all(n == 1 for k, n in keys.items() if k), f"two events for one booking: {keys}"
    calendar = sorted((e.get("summary"), e["start"].get("dateTime") or e["start"].get("date"), e["status"],
                       bool(((e.get("extendedProperties") or {}).get("private") or {}).get("bsync_key")))
                      for e in events)
    return sorted(pages), calendar


@pytest.fixture
def reference(sandbox, bsync):
    scenario(sandbox, bsync)
    result = bsync("sync", "--full", "--force")
    assert result.exit_code == 0, result.stderr
    expected = state(sandbox)
    assert any(p[0] == "Walk-in 0" for p in expected[0])  # imported
    assert any(p[3] == "Cancelled" for p in expected[0])  # cancelled from the calendar
    sandbox.reset()
    return expected


STRIDE = int(os.environ.get("BSYNC_CRASH_STRIDE", "1"))  # 1 = every call; CI keeps every call


@pytest.mark.parametrize("server", ["google", "notion"])
def test_two_way_run_dying_at_any_call_converges(sandbox, bsync, reference, server):
    tried = converges_after_dying_at_every_call(sandbox, bsync, server, setup=scenario, state=state,
                                                expected=reference, args=("sync", "--full", "--force"),
                                                stride=STRIDE)
    assert state(sandbox) == reference
    assert tried >= 10


FAULT_SEEDS = [int(x) for x in os.environ.get("BSYNC_FAULT_SEEDS", "7,11,23").split(",")]


@pytest.mark.parametrize("seed", FAULT_SEEDS)
def test_faults_on_a_fifth_of_all_calls_never_duplicate_and_converge(sandbox, bsync, reference, seed):
    (bsync.folder / "state.db").unlink(missing_ok=True)
    bsync.configure()
    scenario(sandbox, bsync)
    for server in (sandbox.notion, sandbox.google):
        server.set_faults(fail_rate=0.2, fail_statuses=[429, 500, 502], seed=seed)
    bsync.configure(max_retries=6, retry_base_delay=0.01, retry_max_delay=0.05)
    outcome = bsync("sync", "--full", "--force")
    assert outcome.exit_code in (0, 1, 5), outcome.stderr
    state(sandbox)  # no duplicates even mid-way
    for server in (sandbox.notion, sandbox.google):
        server.set_faults()
    for _ in range(3):  # failed writes are retried on the next runs
        result = bsync("sync", "--full", "--force")
        if result.exit_code == 0 and state(sandbox) == reference:
            break
    assert state(sandbox) == reference
