"""Recurring series made in Google Calendar, synced: skipped with a reason by default, or
imported one booking per occurrence with ``[sync] import_recurring`` (sandbox, real clients)."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest
import test_two_way as two_way
from test_two_way import WAW, page_props, status_of, synced, writes

from bsync.core.plan import RECURRING_NOT_IMPORTED

TOMORROW = date.today() + timedelta(days=1)


@pytest.fixture
def cal(sandbox):
    return two_way.Calendar(sandbox)


def at(h, m=0, day=TOMORROW):
    return datetime(day.year, day.month, day.day, h, m, tzinfo=WAW)


def lunch(cal, *rules, first=TOMORROW) -> str:
    """A daily lunch series at 12:00 Warsaw from ``first``."""
    return cal.create("Lunch", at(12, day=first).replace(tzinfo=None), at(13, day=first).replace(tzinfo=None),
                      "Europe/Warsaw", recurrence=list(rules or ["RRULE:FREQ=DAILY;COUNT=3"]))


def imported(sandbox) -> dict[str, str]:
    """Calendar event id -> page id of every booking imported from the calendar."""
    out = {}
    for page in sandbox.notion.pages:
        props = page_props(sandbox, page)
        out["".join(t["plain_text"] for t in props["Calendar Event ID"]["rich_text"])] = page
    return out


def start_of(sandbox, page) -> datetime:
    return datetime.fromisoformat(page_props(sandbox, page)["When"]["date"]["start"])


def test_a_series_is_skipped_with_its_reason_in_the_plan(sandbox, bsync, cal, monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")  # one table row per line
    series = lunch(cal, first=TOMORROW - timedelta(days=30))  # began long ago: still a series, not history
    text = bsync("sync", "--plan", "-v")
    assert text.exit_code == 0, text.stdout + text.stderr
    assert RECURRING_NOT_IMPORTED in text.stdout and "Lunch" in text.stdout
    planned = bsync("sync", "--plan", "--json")
    [skip] = [a for a in planned.json["actions"] if a["target_id"] == series]
    assert skip["op"] == "skip" and skip["reason"] == RECURRING_NOT_IMPORTED
    assert synced(bsync)["created"] == 0 and sandbox.notion.page_count() == 0


def test_import_recurring_makes_one_booking_per_occurrence_inside_the_bound(sandbox, bsync, cal):
    bsync.configure(import_recurring=True, recurring_ahead="5d")
    series = lunch(cal, "RRULE:FREQ=DAILY")  # endless: only the bound keeps it finite
    now = datetime.now(WAW)
    expected = [d for d in range(6) if at(12, day=TOMORROW + timedelta(days=d)) < now + timedelta(days=5)]
    summary = synced(bsync)
    assert summary["created"] == len(expected) >= 4
    pages = imported(sandbox)
    stamps = [at(12, day=TOMORROW + timedelta(days=d)).astimezone(timezone.utc) for d in expected]
    assert sorted(pages) == [f"{series}_{s:%Y%m%dT%H%M%SZ}" for s in stamps]  # Google's instance ids
    assert sorted(start_of(sandbox, p) for p in pages.values()) == [
        at(12, day=TOMORROW + timedelta(days=d)) for d in expected]
    sandbox.clear_requests()
    assert synced(bsync)["created"] == 0 and writes(sandbox) == []  # idempotent


def test_a_moved_or_cancelled_occurrence_moves_or_cancels_its_booking(sandbox, bsync, cal):
    bsync.configure(import_recurring=True)
    series = lunch(cal)
    synced(bsync)
    pages = imported(sandbox)
    first, second, third = sorted(pages)
    assert first.startswith(series + "_") and len(pages) == 3
    day2 = TOMORROW + timedelta(days=1)
    cal.move(second, at(15, day=day2), at(16, day=day2))
    cal.delete(third)
    summary = synced(bsync)
    assert summary["updated"] == 2 and summary["created"] == 0
    assert start_of(sandbox, pages[second]) == at(15, day=day2)
    assert status_of(page_props(sandbox, pages[third])) == "Cancelled"
    assert status_of(page_props(sandbox, pages[first])) == "Confirmed"
    sandbox.clear_requests()
    synced(bsync)
    assert writes(sandbox) == []
    full = synced(bsync, "--full")  # a full read agrees
    assert full["created"] == full["updated"] == 0


def test_deleting_the_series_cancels_every_imported_occurrence(sandbox, bsync, cal):
    bsync.configure(import_recurring=True)
    series = lunch(cal)
    synced(bsync)
    pages = imported(sandbox)
    cal.delete(series)
    halted = bsync("sync")
    assert halted.exit_code == 1 and "safety halt" in halted.stderr  # every linked event gone at once
    summary = synced(bsync, "--force")  # the operator says it's right
    assert summary["updated"] == 3
    assert [status_of(page_props(sandbox, p)) for p in pages.values()] == ["Cancelled"] * 3
