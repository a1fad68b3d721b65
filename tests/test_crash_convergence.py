"""Kill-at-every-write for notion-to-gcal: whichever request a run dies at, the next run
converges to exactly the state an uninterrupted run reaches, with no duplicate event."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from conftest import converges_after_dying_at_every_call

from bsync.sandbox.seed import booking_properties

WAW = ZoneInfo("Europe/Warsaw")


@pytest.fixture(autouse=True)
def one_way(bsync):
    """These tests cover the one-way pair: the calendar follows Notion."""
    bsync.defaults = {"pairs": ["notion-to-gcal"]}
    bsync.configure()


def at(h, m=0):
    return datetime(2026, 12, 3, h, m, tzinfo=WAW)


def scenario(sandbox, bsync):
    """Sync four bookings, then move one, cancel one and add two: the run under test."""
    ids = [sandbox.notion.create_page(booking_properties(f"B{i}", start=at(8 + i), end=at(9 + i)))["id"]
           for i in range(4)]
    assert bsync("sync").exit_code == 0
    sandbox.notion.update_page(ids[0], properties=booking_properties("B0 moved", start=at(15), end=at(16)))
    sandbox.notion.update_page(ids[1], properties={"Status": {"status": {"name": "Cancelled"}}})
    for i in (4, 5):
        sandbox.notion.create_page(booking_properties(f"B{i}", start=at(8 + i, 30), end=at(9 + i, 30)))
    sandbox.clear_requests()


def final_state(sandbox):
    events = sandbox.google.list_events(sandbox.google.calendar_id, include_deleted=True)
    keys = [e["extendedProperties"]["private"]["bsync_key"] for e in events]
    assert len(keys) == len(set(keys)), "duplicate event for a booking"
    calendar = sorted((e["summary"], e["start"].get("dateTime"), e["status"]) for e in events)
    written_back = sorted(
        "".join(t["plain_text"] for t in sandbox.notion.get_page(p)["properties"]["Calendar Event ID"]["rich_text"])
        for p in sandbox.notion.pages)
    return calendar, written_back


@pytest.fixture
def reference(sandbox, bsync):
    scenario(sandbox, bsync)
    assert bsync("sync").exit_code == 0
    counts = {"google": len(sandbox.google.requests), "notion": len(sandbox.notion.requests)}
    state = final_state(sandbox)
    sandbox.reset()
    return counts, state


@pytest.mark.parametrize("server", ["google", "notion"])
def test_run_dying_at_any_request_converges(sandbox, bsync, reference, server):
    """For k = 0, 1, 2, …: the server answers only k more calls, then fails every later one."""
    counts, expected = reference
    k = converges_after_dying_at_every_call(sandbox, bsync, server, setup=scenario, state=final_state,
                                            expected=expected)
    assert final_state(sandbox) == expected
    assert k >= 3  # reads, then the writes: several places to die were tried
