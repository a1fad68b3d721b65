"""The planner is pure: these tests need no HTTP, no DB file."""

from bsync.plan import WRITEBACK_FIELD, SourceItem, TargetItem, plan_push
from bsync.store import Link


def tid(key: str) -> str:
    return "ev" + key.replace(":", "")


def wanted(title="Rex", start="2026-11-24T09:00:00+00:00"):
    return {"title": title, "start": start}


def link(key, target=None, tombstone=False):
    return Link("p", key, target or tid(key), None, None, "h", "2026-01-01", tombstone)


def plan(sources, links=(), targets=(), **kw):
    return plan_push("p", sources, {l.source_key: l for l in links}, {t.id: t for t in targets},
                     target_id_for=tid, **kw)


def test_new_booking_is_created_with_every_field_and_a_writeback():
    p = plan([SourceItem("n:1", wanted(), True)])
    [a] = p.actions
    assert a.op == "create" and a.target_id == "evn1"
    assert a.changes["title"] == (None, "Rex")
    assert a.changes[WRITEBACK_FIELD] == (None, "evn1")


def test_up_to_date_booking_is_skipped():
    p = plan([SourceItem("n:1", wanted(), True, "evn1")], [link("n:1")],
             [TargetItem("evn1", "n:1", wanted())])
    assert [a.op for a in p.actions] == ["skip"]
    assert not p.actions[0].writes_remote


def test_changed_field_gives_a_field_level_update():
    p = plan([SourceItem("n:1", wanted(title="Rex (moved)"), True, "evn1")], [link("n:1")],
             [TargetItem("evn1", "n:1", wanted())])
    [a] = p.actions
    assert a.op == "update" and a.changes == {"title": ("Rex", "Rex (moved)")}


def test_existing_event_without_link_is_adopted_not_duplicated():
    p = plan([SourceItem("n:1", wanted(), True)], [], [TargetItem("evn1", "n:1", wanted())])
    [a] = p.actions
    assert a.op == "update" and a.adopt and set(a.changes) == {WRITEBACK_FIELD}


def test_cancelled_event_of_an_active_booking_is_restored():
    p = plan([SourceItem("n:1", wanted(), True, "evn1")], [link("n:1")],
             [TargetItem("evn1", "n:1", wanted(), deleted=True)])
    [a] = p.actions
    assert a.op == "update" and a.restore and a.changes["status"] == ("cancelled", "confirmed")


def test_cancelled_booking_removes_its_event_once():
    first = plan([SourceItem("n:1", wanted(), False, "evn1")], [link("n:1")], [TargetItem("evn1", "n:1", wanted())])
    assert [a.op for a in first.actions] == ["delete"]
    again = plan([SourceItem("n:1", wanted(), False, "evn1")], [link("n:1")],
                 [TargetItem("evn1", "n:1", wanted(), deleted=True)])
    assert [a.op for a in again.actions] == ["skip"]


def test_cancelled_booking_never_seen_creates_nothing():
    assert [a.op for a in plan([SourceItem("n:1", wanted(), False)]).actions] == ["skip"]


def test_booking_gone_from_source_removes_its_event_and_failed_records_are_left_alone():
    links = [link("n:1"), link("n:2"), link("n:3"), link("n:4")]
    targets = [TargetItem(tid(k), k, wanted()) for k in ("n:1", "n:2", "n:3", "n:4")]
    from bsync.plan import Failure
    p = plan([SourceItem("n:1", wanted(), True, "evn1"), SourceItem("n:2", wanted(), True, "evn2")],
             links, targets, failures=[Failure("4", "no date")])
    ops = {a.source_id: a.op for a in p.actions}
    assert ops == {"n:1": "skip", "n:2": "skip", "n:3": "delete"}
    assert p.halt is None


def test_tombstoned_links_are_not_deleted_again():
    p = plan([], [link("n:1", tombstone=True)], [TargetItem("evn1", "n:1", wanted(), deleted=True)])
    assert p.actions == [] and p.halt is None


def test_empty_source_with_mappings_halts():
    p = plan([], [link("n:1")], [TargetItem("evn1", "n:1", wanted())])
    assert p.halt and "no bookings" in p.halt


def test_mass_deletion_halts_but_one_deletion_never_does():
    links = [link(f"n:{i}") for i in range(4)]
    targets = [TargetItem(tid(f"n:{i}"), f"n:{i}", wanted()) for i in range(4)]
    keep = [SourceItem("n:0", wanted(), True, tid("n:0"))]
    p = plan(keep, links, targets)
    assert p.count("delete") == 3 and "3 of 4" in p.halt
    one = plan([SourceItem("n:0", wanted(), False, tid("n:0"))], links[:1], targets[:1])
    assert one.count("delete") == 1 and one.halt is None


def test_plan_json_matches_the_spec_shape():
    p = plan([SourceItem("n:1", wanted(), True)])
    data = p.as_json()
    assert set(data) == {"pair", "actions"}
    assert set(data["actions"][0]) == {"op", "source_id", "target_id", "changes", "reason"}
    assert data["actions"][0]["changes"]["title"] == [None, "Rex"]
