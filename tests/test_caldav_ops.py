"""The commands around the sync, on a CalDAV calendar: availability, reconcile, status,
doctor and the demo, against a real Radicale (behind the recording DavProxy where requests
are counted).  A business may keep both calendars: Google's emulator and Radicale together.

What a person does in their calendar app is done by ``test_caldav_sync.Person``, straight to
the server.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from conftest import Bsync
from typer.testing import CliRunner

pytest.importorskip("bsync.calendars.caldav", reason="the CalDAV backend (branch i14-cdav) has not landed yet")

from test_caldav_sync import DAY, Person, at  # noqa: E402

from bsync.cli import app  # noqa: E402
from bsync.sandbox.seed import booking_properties  # noqa: E402

BOTH = ["notion-to-gcal", "gcal-to-notion", "notion-to-caldav", "caldav-to-notion"]


@pytest.fixture
def two(bsync_caldav_proxied) -> Bsync:
    """One business, two calendars: the sandbox's config (Google's emulator) with a ``[caldav]``
    section besides, naming a new Radicale calendar behind the proxy, and all four pairs."""
    bsync_caldav_proxied.defaults["pairs"] = list(BOTH)
    bsync_caldav_proxied.configure()
    return bsync_caldav_proxied


@pytest.fixture
def person(radicale, caldav_calendar) -> Person:
    return Person(radicale, caldav_calendar)


def page(sandbox, title: str, start, minutes: int = 60) -> str:
    return sandbox.notion.create_page(booking_properties(title, start=start, end=start + timedelta(minutes=minutes),
                                                         time_zone="Europe/Warsaw"))["id"]


def slots(result) -> set[str]:
    assert result.exit_code == 0, result.stdout + result.stderr
    return {s["start"][11:16] for day in result.json["days"] for s in day["slots"]}


# -- availability --------------------------------------------------------------------------
def test_availability_counts_the_caldav_calendar_by_name_recurring_events_included(two, person):
    """``--calendar caldav`` asks the CalDAV backend for its own calendar; a weekly series that
    began weeks earlier blocks its occurrence; ``--calendar gcal`` (Google's, empty) does not;
    both names together count both; ``[availability] calendars`` may name it too."""
    person.create("Staff meeting", at(10, day=DAY - timedelta(days=21)), at(11, day=DAY - timedelta(days=21)),
                  rrule={"FREQ": "WEEKLY"})
    args = ("availability", "--date", DAY.isoformat(), "--now", at(0, day=DAY - timedelta(days=1)).isoformat(), "--json")
    assert "10:00" not in slots(two(*args, "--calendar", "caldav"))
    assert "10:00" in slots(two(*args, "--calendar", "gcal"))
    assert "10:00" not in slots(two(*args, "--calendar", "gcal", "--calendar", "caldav"))
    assert "10:00" in slots(two(*args))  # default: the synced calendar, the first in [sync] pairs (Google)

    two.configure(pairs=["notion-to-caldav", "caldav-to-notion"])
    assert "10:00" not in slots(two(*args))  # now CalDAV is the synced one
    config = two.config.read_text().replace("[availability]", "")
    two.config.write_text(config + '\n[availability]\ncalendars = ["gcal"]\n')
    assert "10:00" in slots(two(*args))


def test_availability_names_a_backend_without_its_section_exit_2(bsync):
    result = bsync("availability", "--date", "tomorrow", "--calendar", "caldav")
    assert result.exit_code == 2 and "[caldav]" in result.stderr + result.stdout


# -- reconcile -----------------------------------------------------------------------------
def test_reconcile_checks_notion_against_each_calendar_and_fix_repairs_the_one_that_drifted(two, sandbox, person):
    first = page(sandbox, "Rex – groom", at(9))
    page(sandbox, "Mia – bath", at(11))
    assert two("sync").exit_code == 0
    clean = two("reconcile", "--json")
    assert clean.exit_code == 0, clean.stdout
    assert clean.json["checked"]["events"] == 4
    assert clean.json["checked"]["events.gcal"] == 2 and clean.json["checked"]["events.caldav"] == 2

    person.delete(f"notion:{first}")  # gone from CalDAV only
    found = two("reconcile", "--json")
    assert found.exit_code == 1
    [drift] = found.json["drift"]
    assert drift["kind"] == "missing_event" and drift["ids"]["calendar"] == "caldav"
    assert drift["ids"]["booking"] == f"notion:{first}"
    text = two("reconcile")
    assert "calendar: caldav" in text.stdout and "gcal 2" in text.stdout and "caldav 1" in text.stdout

    fixed = two("reconcile", "--fix", "--json")
    assert fixed.exit_code == 0, fixed.stdout
    assert fixed.json["fix"]["after"]["clean"] is True
    assert [event for _, event in person.events() if str(event["SUMMARY"]) == "Rex – groom"]


# -- status and doctor ---------------------------------------------------------------------
def test_status_shows_each_calendars_cursor_and_mappings(two, sandbox, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")  # the dashboard's cells unwrapped
    page(sandbox, "Rex – groom", at(9))
    assert two("sync").exit_code == 0
    status = two("status", "--json")
    assert status.exit_code == 0
    cursors = {c["provider"]: c for c in status.json["cursors"]}
    assert cursors["caldav"]["label"] != "caldav" and cursors["gcal"]["label"] == "Google Calendar"
    assert cursors["caldav"]["scope"].startswith(two.caldav["url"].rstrip("/"))
    assert status.json["links"] == {"notion+gcal": 1, "notion+caldav": 1}
    runs = status.json["commands"]["sync"]["calendars"]  # one sync run per calendar: neither hides the other
    assert list(runs) == ["gcal", "caldav"]
    assert all(run["last"]["exit_code"] == 0 and run["last_success"] for run in runs.values())
    text = two("status").stdout
    assert cursors["caldav"]["label"] in text and "notion+caldav" in text
    assert "sync with Google Calendar" in text and f"sync with {cursors['caldav']['label']}" in text
    assert '{"collection"' not in text  # a CalDAV cursor is shown by its token, not as JSON


def test_doctor_checks_the_caldav_calendar_beside_google(two):
    result = two("doctor", "--json")
    checks = {c["name"]: c for c in result.json["checks"]}
    assert checks["google calendar"]["status"] == "ok"
    assert checks["caldav calendar"]["status"] == "ok", checks["caldav calendar"]

    two.caldav["password"] = "wrong-password"
    two.configure()
    result = two("doctor", "--json")
    bad = {c["name"]: c for c in result.json["checks"]}["caldav calendar"]
    assert result.exit_code == 1 and bad["status"] == "fail" and bad["hint"]
    assert "wrong-password" not in result.stdout


# -- the demo ------------------------------------------------------------------------------
def test_demo_on_caldav_tells_the_same_story_on_a_radicale_it_starts():
    result = CliRunner().invoke(app, ["demo", "--calendar", "caldav"])
    assert result.exit_code == 0, result.stdout + (result.stderr or "")
    out = result.stdout
    assert "Plan for notion<->caldav" in out and "Radicale" in out
    assert "Walk-in: Coco" in out and "caldav" in out  # imported from the calendar
    assert "Online booking: Nala" in out
    assert "5 created" in out
    assert "sandbox write requests during the rerun: 0" in out
    assert "demo finished" in out
