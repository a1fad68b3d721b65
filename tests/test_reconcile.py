"""`bsync reconcile`: every kind of drift seeded in the sandbox is found, `--fix` repairs
exactly the safe ones through the sync planner, and a second reconcile is clean."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from conftest import converges_after_dying_at_every_call, write_requests

from bsync.core.model import Booking, Customer, Status
from bsync.calendars.gcal import event_id_for
from bsync.core.records import TargetItem
from bsync.ops.reconcile import Drift, Report, find_drift, orphan_plan
from bsync.sandbox.seed import booking_properties
from bsync.core.store import Store

WAW = ZoneInfo("Europe/Warsaw")
DAY = date.today() + timedelta(days=4)


def at(h, m=0, day=DAY):
    return datetime(day.year, day.month, day.day, h, m, tzinfo=WAW)


def page(sandbox, title, start, staff="Anna", **kw):
    return sandbox.notion.create_page(booking_properties(title, start=start, end=start + timedelta(hours=1),
                                                         staff=staff, time_zone="Europe/Warsaw", **kw))["id"]


def api(sandbox):
    base = f"{sandbox.google.url}/calendar/v3/calendars/{sandbox.google.calendar_id}/events"
    return base, {"Authorization": "Bearer sandbox-token"}


def kinds(result) -> dict[str, int]:
    return result.json["counts"]


def seed_fixable(bsync, sandbox) -> dict[str, str]:
    pages = {"renamed": page(sandbox, "Rex – groom", at(9)), "cancel": page(sandbox, "Mia – bath", at(11)),
             "trash": page(sandbox, "Luna – trim", at(13))}
    online = sandbox.calcom.create_booking(start=at(12, 0, DAY + timedelta(days=1)).astimezone(timezone.utc),
                                           duration=60, title="Online: Nala", attendee_email="nala@example.com")
    assert bsync("sync", "pull", "calcom").exit_code == 0
    assert bsync("sync").exit_code == 0
    [nala] = [p for p in sandbox.notion.pages if "".join(
        t["plain_text"] for t in sandbox.notion.get_page(p)["properties"]["External ID"]["rich_text"]) == f"calcom:{online['uid']}"]
    moved = at(15, 0, DAY + timedelta(days=1))
    sandbox.notion.update_page(nala, {"When": {"date": {"start": moved.isoformat(),              # platform_differs
                                                        "end": (moved + timedelta(hours=1)).isoformat()}}})
    pages["new"] = page(sandbox, "Not synced yet", at(15))                     # missing_event
    base, headers = api(sandbox)
    httpx.patch(f"{base}/{event_id_for('notion:' + pages['renamed'])}", headers=headers,
                json={"summary": "Rex – groom (renamed in calendar)"}).raise_for_status()  # event_differs
    sandbox.notion.update_page(pages["cancel"], {"Status": {"status": {"name": "Cancelled"}}})  # stale_block
    sandbox.notion.update_page(pages["trash"], in_trash=True)                                  # orphan_event
    with Store.open(bsync.state_path) as store:
        store.save_link("notion+gcal", "notion:0000dead", "deadbeefevent00")                  # dangling_link
        store.save_booking(Booking(key="calcom:webhook-only", title="Online booking", start=at(16).astimezone(timezone.utc),
                                   end=at(17).astimezone(timezone.utc), timezone="Europe/Warsaw",
                                   status=Status.SCHEDULED, customer=Customer("Cal", "cal@example.com"),
                                   source="calcom"))                                          # platform_missing
    return pages


def test_reconcile_finds_each_fixable_drift_and_fix_leaves_it_clean(bsync, sandbox):
    seed_fixable(bsync, sandbox)
    result = bsync("reconcile", "--json")
    assert result.exit_code == 1
    assert kinds(result) == {"missing_event": 1, "event_differs": 2, "stale_block": 1, "orphan_event": 1,
                             "dangling_link": 1, "platform_missing": 1, "platform_differs": 1}
    for drift in result.json["drift"]:
        assert drift["ids"] and drift["explanation"] and drift["fixable"]

    sandbox.clear_requests()
    before = bsync.state_path.read_bytes()
    result = bsync("reconcile", "--fix", "--plan")
    assert result.exit_code == 0 and "create" in result.stdout
    assert write_requests(sandbox) == [] and bsync.state_path.read_bytes() == before

    result = bsync("reconcile", "--fix", "--json")
    assert result.exit_code == 0, result.stdout
    assert result.json["fix"]["after"]["clean"] is True
    again = bsync("reconcile", "--json")
    assert again.exit_code == 0 and again.json["clean"] is True
    assert bsync("sync").exit_code == 0  # and the sync agrees: nothing left to do
    assert "0 created, 0 updated, 0 deleted" in bsync("sync").stdout


def lose_state_db(bsync) -> None:
    """The state DB is gone (a new machine, a deleted file): no mapping row remembers anything."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{bsync.state_path}{suffix}").unlink(missing_ok=True)


def orphan_scenario(sandbox, bsync) -> tuple[str, str]:
    """Two synced bookings; then the state DB is lost and one page is trashed, so its event
    is an orphan that no mapping row ties to a deletion.  Returns (kept, orphan) event ids."""
    kept = page(sandbox, "Rex – groom", at(9))
    gone = page(sandbox, "Luna – trim", at(13))
    assert bsync("sync").exit_code == 0
    lose_state_db(bsync)
    sandbox.notion.update_page(gone, in_trash=True)
    return event_id_for(f"notion:{kept}"), event_id_for(f"notion:{gone}")


def event_statuses(sandbox) -> dict[str, str]:
    return {e["id"]: e.get("status", "confirmed") for e in sandbox.google.list_events(sandbox.google.calendar_id)}


@pytest.mark.parametrize("policy, method", [("cancel", "PATCH"), ("delete", "DELETE")])
def test_fix_removes_an_orphan_event_per_delete_policy_and_a_rerun_is_clean(bsync, sandbox, policy, method):
    bsync.defaults = {"delete_policy": policy}
    bsync.configure()
    kept, orphan = orphan_scenario(sandbox, bsync)
    result = bsync("reconcile", "--json")
    assert result.exit_code == 1 and kinds(result) == {"orphan_event": 1}
    [finding] = result.json["drift"]
    assert finding["ids"]["event"] == orphan and finding["fixable"]

    sandbox.clear_requests()
    before = bsync.state_path.read_bytes()
    result = bsync("reconcile", "--fix", "--plan", "--json")
    [removal] = [a for p in result.json["fix"]["plans"] for a in p["actions"]
                 if a["target_id"] == orphan and a["op"] != "skip"]  # the sync plan only skips it
    assert result.exit_code == 0 and removal["op"] == "delete" and "no longer in Notion" in removal["reason"]
    assert "1 delete" in bsync("reconcile", "--fix", "--plan").stdout
    assert write_requests(sandbox) == [] and bsync.state_path.read_bytes() == before  # wrote, recorded nothing

    result = bsync("reconcile", "--fix", "--json")
    assert result.exit_code == 0, result.stdout
    assert result.json["fix"]["applied"]["orphans"]["deleted"] == 1
    assert [(m, path.rsplit("/", 1)[1]) for _, m, path in write_requests(sandbox)] == [(method, orphan)]
    assert event_statuses(sandbox) == {kept: "confirmed", orphan: "cancelled"}  # Google keeps deleted ones
    recorded = bsync("status", "--json").json["commands"]["reconcile"]["last"]
    assert recorded["exit_code"] == 0 and recorded["summary"]["found"] == {"orphan_event": 1}
    assert recorded["summary"]["counts"] == {}  # what is left after --fix
    again = bsync("reconcile", "--json")
    assert again.exit_code == 0 and again.json["counts"] == {}
    sandbox.clear_requests()
    assert bsync("sync").exit_code == 0 and write_requests(sandbox) == []  # the sync agrees


def test_fix_never_removes_events_when_notion_returns_no_bookings(bsync, sandbox):
    """A wrong database id looks exactly like every booking gone: the safety halt keeps the events."""
    orphan_scenario(sandbox, bsync)
    [other] = [p for p in sandbox.notion.pages if not sandbox.notion.get_page(p).get("in_trash")]
    sandbox.notion.update_page(other, in_trash=True)
    sandbox.clear_requests()
    result = bsync("reconcile", "--fix")
    assert result.exit_code == 1 and "safety halt" in result.stdout and "no bookings" in result.stdout
    assert write_requests(sandbox) == []
    assert set(event_statuses(sandbox).values()) == {"confirmed"}


def test_a_fix_killed_at_any_google_call_converges(bsync, sandbox):
    """The removal is journaled like a sync write: a run that dies at any Google call exits 5,
    and the next --fix finishes the job."""
    def setup(sandbox, bsync):
        bsync.ids = orphan_scenario(sandbox, bsync)

    def state(sandbox):
        kept, orphan = bsync.ids
        return event_statuses(sandbox) == {kept: "confirmed", orphan: "cancelled"}

    tried = converges_after_dying_at_every_call(sandbox, bsync, "google", setup=setup, state=state, expected=True,
                                                args=("reconcile", "--fix"))
    assert tried >= 4  # the reads, the sync, the re-read under the lock and the removal


def test_double_bookings_manual_blocks_and_dead_writes_are_reported_never_fixed(bsync, sandbox):
    first = page(sandbox, "Rex – groom", at(10), staff="Ben")
    second = page(sandbox, "Bella – bath", at(10, 30), staff="Ben")
    page(sandbox, "Other staff, same time", at(10), staff="Chloe")
    bsync.configure(import_unmanaged=False)
    assert bsync("sync").exit_code == 0
    base, headers = api(sandbox)
    httpx.post(base, headers=headers, json={"summary": "Dentist (personal)", "start": {"dateTime": at(18).isoformat()},
                                            "end": {"dateTime": at(19).isoformat()}}).raise_for_status()
    with Store.open(bsync.state_path) as store:
        entry = store.journal_intent(None, "notion+gcal", "update", "notion:someone", "ev1")
        store.journal_failed(entry, "500 from Google", dead_after=1)
    result = bsync("reconcile", "--json")
    assert result.exit_code == 1
    assert kinds(result) == {"double_booking": 1, "manual_block": 1, "stuck_journal": 1}
    [double] = [d for d in result.json["drift"] if d["kind"] == "double_booking"]
    assert set(double["ids"].values()) == {f"notion:{first}", f"notion:{second}"} and "Ben" in double["explanation"]
    [dead] = [d for d in result.json["drift"] if d["kind"] == "stuck_journal"]
    assert "bsync retry" in dead["explanation"]

    sandbox.clear_requests()
    result = bsync("reconcile", "--fix", "--json")
    assert result.exit_code == 1
    assert write_requests(sandbox) == []  # nothing safe to repair: both bookings stay
    assert kinds(result) == result.json["fix"]["after"]["counts"]


def test_reconcile_text_output_names_ids_and_the_fix(bsync, sandbox):
    seed_fixable(bsync, sandbox)
    result = bsync("reconcile")
    assert result.exit_code == 1
    assert "missing_event" in result.stdout and "reconcile --fix" in result.stdout


def test_double_booking_rules_pure():
    now = datetime(2026, 1, 1, tzinfo=timezone.utc)

    def b(key, h, staff=None, status=Status.SCHEDULED, minutes=60):
        start = datetime(2026, 1, 2, h, tzinfo=timezone.utc)
        return Booking(key=key, title=key, start=start, end=start + timedelta(minutes=minutes), timezone="UTC",
                       status=status, staff=staff)

    bookings = {x.key: x for x in [b("a", 9, "Ann"), b("b", 9, "Bob"), b("c", 10, "Ann"),  # back to back: fine
                                   b("d", 9, "Ann", Status.CANCELLED), b("e", 12), b("f", 12, minutes=30),
                                   b("g", 9, "Ann", minutes=180)]}
    drift = find_drift(bookings=bookings, events={}, links={}, platform_bookings=[], platform_links={}, journal=[],
                       now=now)
    pairs = sorted(tuple(sorted(d.ids.values())) for d in drift if d.kind == "double_booking")
    assert pairs == [("a", "g"), ("c", "g"), ("e", "f")]


def test_orphan_removal_halts_like_a_sync_pure():
    """Removing events is refused when Notion looks empty or too many would go at once."""
    events = {f"ev{i}": TargetItem(f"ev{i}", f"notion:p{i}", {"title": f"B{i}"}) for i in range(4)}

    def report(orphans: int, bookings: int) -> Report:
        return Report([Drift("orphan_event", {"event": f"ev{i}", "booking": f"notion:p{i}"}, "gone")
                       for i in range(orphans)], {"bookings": bookings})

    one = orphan_plan(report(1, 3), events, delete_policy="delete")
    assert one.halt is None and [(a.op, a.target_id, a.target_write) for a in one.actions] == [("delete", "ev0", "remove")]
    assert "delete the event" in one.actions[0].reason
    assert "more than max_delete" in orphan_plan(report(3, 1), events, delete_policy="cancel").halt
    assert "no bookings" in orphan_plan(report(1, 0), events, delete_policy="cancel").halt
    assert orphan_plan(report(3, 1), events, delete_policy="cancel", max_delete=lambda n: n).halt is None


def test_find_drift_knows_the_systems_only_by_the_names_it_is_given_pure():
    """Another ledger and calendar (by registry name) are compared exactly as Notion and Google:
    nothing in find_drift or orphan_plan assumes a provider's name."""
    from bsync.ops.reconcile import Sides

    sides = Sides("ledger", "The Ledger", "ledger", "caldav", "CalDAV", "ledger+caldav", "platforms+ledger")
    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    start = datetime(2026, 1, 2, 9, tzinfo=timezone.utc)
    kept = Booking(key="ledger:1", title="Rex", start=start, end=start + timedelta(hours=1), timezone="UTC",
                   status=Status.SCHEDULED, target_ids={"caldav": "ev1", "gcal": "elsewhere"})
    common = {"title": "Rex (renamed)", "start": start.isoformat(), "end": (start + timedelta(hours=1)).isoformat()}
    events = {"ev1": TargetItem("ev1", "ledger:1", common),
              "ev2": TargetItem("ev2", "ledger:gone", {**common, "title": "Mia"}),
              "ev3": TargetItem("ev3", "notion:other", {**common, "title": "not this ledger's"})}
    drift = find_drift(bookings={kept.key: kept}, events=events, links={}, platform_bookings=[],
                       platform_links={}, journal=[], now=now, bad_pages=["broken"], sides=sides)
    found = {(d.kind, d.ids.get("event")): d.explanation for d in drift if d.kind != "manual_block"}
    assert set(found) == {("event_differs", "ev1"), ("orphan_event", "ev2")}
    assert found[("orphan_event", "ev2")].endswith("which is no longer in The Ledger")

    plan = orphan_plan(Report([d for d in drift if d.kind == "orphan_event"], {"bookings": 0}), events,
                       delete_policy="cancel", sides=sides)
    assert plan.halt.startswith("The Ledger returned no bookings") and "[ledger]" in plan.halt
    assert "no longer in The Ledger" in plan.actions[0].reason
