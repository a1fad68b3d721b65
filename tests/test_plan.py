"""The planner is pure: these tests need no HTTP and no DB file.  They read as a scenario
table in the spirit of vdirsyncer's sync tests: each builds both sides and the links, then
checks what the plan does."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace

import pytest

from bsync.core.plan import RECURRING_NOT_IMPORTED, SERIES_IMPORTED_BY_OCCURRENCE, WRITEBACK_FIELD, plan_sync
from bsync.core.records import Link, RecordFailure, SourceItem, TargetItem

BOTH = frozenset({"push", "pull"})
PUSH = frozenset({"push"})
PULL = frozenset({"pull"})


def tid(key: str) -> str:
    return "ev" + key.replace(":", "")


def common(title="Rex", start="2026-12-01T09:00:00+00:00", end="2026-12-01T10:00:00+00:00", location="",
           cancelled=False):
    return {"title": title, "start": start, "end": end, "location": location, "cancelled": cancelled}


MOVED_START, MOVED_END = "2026-12-01T11:00:00+00:00", "2026-12-01T12:00:00+00:00"


def render_of(c):
    return {k: v for k, v in c.items() if k != "cancelled"}


def fhash(fields, cancelled=False):
    return hashlib.sha256(json.dumps([sorted(fields.items()), cancelled]).encode()).hexdigest()[:16]


def src(key="n:1", c=None, *, h=None, recorded="auto", updated=None, deleted=False):
    c = c or common()
    recorded = tid(key) if recorded == "auto" else recorded
    return SourceItem(key, c, h or fhash(c), recorded, updated, deleted=deleted)


def tgt(key="n:1", c=None, *, managed=True, updated=None, id=None):
    c = c or common()
    fields = render_of(c)
    return TargetItem(id or tid(key), key if managed else None, c, fields, fhash(fields, c["cancelled"]), updated)


def link(key="n:1", c=None, *, tombstone=False, conflict=None):
    """A link as left by a sync in which both sides held ``c``."""
    c = c or common()
    return Link("p", key, tid(key), None, None, fhash(c), "t", tombstone, fhash(render_of(c), c["cancelled"]),
                dict(c), conflict, render_of(c))


def plan(sources=(), links=(), targets=(), directions=BOTH, **kw):
    loaded = {s.key: s for s in sources}

    def render(key, merged):
        return render_of(merged) if key in loaded else None

    return plan_sync("p", list(sources), {l.source_key: l for l in links}, {t.id: t for t in targets},
                     directions=directions, render=render, target_hash=lambda f: fhash(f),
                     target_id_for=tid, **{"source_name": "notion", "target_name": "gcal", **kw})


def only(p):
    assert len(p.actions) == 1, p.actions
    return p.actions[0]


# -- first sight --------------------------------------------------------------------------
def test_new_booking_creates_an_event_and_records_its_id():
    a = only(plan([src(recorded=None)]))
    assert a.op == "create" and a.target_write == "create" and a.target_id == "evn1"
    assert a.changes["title"] == (None, "Rex") and a.changes[WRITEBACK_FIELD] == (None, "evn1")


def test_same_booking_already_on_both_sides_is_adopted_not_duplicated():
    a = only(plan([src(recorded=None)], [], [tgt()]))
    assert a.op == "update" and set(a.changes) == {WRITEBACK_FIELD} and a.refresh_link


def test_adopting_differing_sides_settles_by_policy():
    a = only(plan([src()], [], [tgt(c=common(title="Old"))]))
    assert a.target_write == "update" and a.changes["title"] == ("Old", "Rex")


def test_cancelled_booking_never_seen_creates_nothing():
    assert only(plan([src(c=common(cancelled=True), recorded=None)])).op == "skip"


def test_event_made_in_the_calendar_is_imported_when_pulling():
    a = only(plan([], [], [tgt("x:1", managed=False, id="walkin1")]))
    assert a.op == "create" and a.source_write == "create" and a.target_write == "stamp"
    assert a.changes["source.title"] == (None, "Rex")


@pytest.mark.parametrize("kw", [{"directions": PUSH}, {"import_unmanaged": False}])
def test_unmanaged_events_are_left_alone_when_not_importing(kw):
    assert plan([], [], [tgt("x:1", managed=False, id="walkin1")], **kw).actions == []


@pytest.mark.parametrize("series, import_recurring, op, reason", [
    (True, False, "skip", RECURRING_NOT_IMPORTED),          # the series' rules
    (False, False, "skip", RECURRING_NOT_IMPORTED),         # one occurrence (e.g. a moved one)
    (True, True, "skip", SERIES_IMPORTED_BY_OCCURRENCE),
    (False, True, "create", "new event in target; importing"),
])
def test_recurring_events_are_skipped_with_a_reason_unless_occurrences_are_imported(
        series, import_recurring, op, reason):
    event = replace(tgt("x:1", managed=False, id="lunch1"), recurring=True, series=series)
    a = only(plan([], [], [event], import_recurring=import_recurring))
    assert (a.op, a.reason, a.target_id) == (op, reason, "lunch1")


# -- already synced -----------------------------------------------------------------------
def test_already_synced_is_skipped_without_any_write():
    a = only(plan([src()], [link()], [tgt()]))
    assert a.op == "skip" and not a.writes_remote and not a.refresh_link


def test_incremental_run_with_nothing_seen_plans_nothing():
    assert plan([], [link()], [], source_complete=False, target_complete=False).actions == []


def test_bogus_version_bump_without_content_change_writes_nothing():
    a = only(plan([src(updated="2026-12-02T00:00:00Z")], [link()], [tgt(updated="2026-12-02T00:00:00Z")]))
    assert a.op == "skip" and not a.writes_remote


# -- one side changed ---------------------------------------------------------------------
def test_field_changed_in_the_source_is_patched_on_the_target():
    a = only(plan([src(c=common(title="Rex (moved)"))], [link()], [tgt()]))
    assert a.op == "update" and a.target_write == "update" and a.changes == {"title": ("Rex", "Rex (moved)")}


def test_field_changed_in_the_target_flows_to_the_source_without_touching_the_target():
    moved = common(start="2026-12-01T11:00:00+00:00", end="2026-12-01T12:00:00+00:00")
    a = only(plan([], [link()], [tgt(c=moved)], source_complete=False))
    assert a.source_write == "update" and a.target_write is None
    assert a.source_fields == {"start": moved["start"], "end": moved["end"]}


def test_event_cancelled_in_the_calendar_cancels_the_booking():
    a = only(plan([], [link()], [tgt(c=common(cancelled=True))], source_complete=False))
    assert a.source_fields == {"cancelled": True} and a.target_write is None


def test_event_deleted_while_the_booking_is_unchanged_still_cancels_it():
    a = only(plan([src()], [link()], [tgt(c=common(cancelled=True))]))
    assert a.source_fields == {"cancelled": True} and a.target_write is None


def test_deleted_event_passes_on_only_its_deletion():
    """Google guarantees only the id of a deleted event: its empty fields are not edits."""
    bare = common(title="", start=None, end=None, cancelled=True)
    a = only(plan([], [link()], [tgt(c=bare)], source_complete=False))
    assert a.source_fields == {"cancelled": True}


@pytest.mark.parametrize("edit", [common(title="Rex (VIP)"), common(start=MOVED_START, end=MOVED_END)])
def test_edit_in_the_source_beats_the_event_deleted_in_the_calendar(edit):
    a = only(plan([src(c=edit)], [link()], [tgt(c=common(cancelled=True))]))
    assert a.target_write == "restore" and a.changes["status"] == ("cancelled", "confirmed")
    assert a.source_fields == {} and a.merged == edit and "recreating" in a.reason
    assert all(a.changes[name][1] == edit[name] for name in ("title", "start", "end") if name in a.changes)


def test_edit_beats_delete_only_in_two_way_sync():
    a = only(plan([src(c=common(start=MOVED_START, end=MOVED_END))], [link()], [tgt(c=common(cancelled=True))],
                  directions=PULL))
    assert a.source_fields["cancelled"] is True


def test_booking_cancelled_in_the_source_removes_the_event_once():
    first = only(plan([src(c=common(cancelled=True))], [link()], [tgt()]))
    assert first.op == "delete" and first.target_write == "remove"
    settled = link(c=common(cancelled=True))
    assert not only(plan([src(c=common(cancelled=True))], [settled], [tgt(c=common(cancelled=True))])).writes_remote


def test_reopened_booking_restores_its_cancelled_event():
    a = only(plan([src()], [link(c=common(cancelled=True))], [tgt(c=common(cancelled=True))]))
    assert a.target_write == "restore" and a.changes["status"] == ("cancelled", "confirmed")


def test_one_way_push_overwrites_edits_made_in_the_calendar():
    a = only(plan([src()], [link()], [tgt(c=common(title="edited in calendar"))], directions=PUSH))
    assert a.target_write == "update" and a.changes == {"title": ("edited in calendar", "Rex")}


def test_one_way_pull_overwrites_the_source():
    a = only(plan([src(c=common(title="edited in notion"))], [link()], [tgt()], directions=PULL))
    assert a.source_write == "update" and a.source_fields == {"title": "Rex"} and a.target_write is None


# -- both changed -------------------------------------------------------------------------
def test_different_fields_changed_on_each_side_merge():
    a = only(plan([src(c=common(title="New title"))], [link()], [tgt(c=common(location="Room 2"))]))
    assert a.source_fields == {"location": "Room 2"}
    assert a.changes["title"] == ("Rex", "New title") and a.target_write == "update"
    assert a.merged["title"] == "New title" and a.merged["location"] == "Room 2"


def test_same_change_on_both_sides_is_not_a_conflict():
    a = only(plan([src(c=common(title="Same"))], [link()], [tgt(c=common(title="Same"))]))
    assert a.op == "skip" and a.refresh_link and a.merged["title"] == "Same"


@pytest.mark.parametrize("policy, s_upd, t_upd, winner", [
    ("source-wins", "2026-12-02T10:00:00Z", "2026-12-02T11:00:00Z", "notion"),
    ("newest-wins", "2026-12-02T10:00:00Z", "2026-12-02T11:00:00Z", "gcal"),
    ("newest-wins", "2026-12-02T12:00:00Z", "2026-12-02T11:00:00Z", "notion"),
])
def test_same_field_changed_differently_follows_the_policy(policy, s_upd, t_upd, winner):
    a = only(plan([src(c=common(title="notion"), updated=s_upd)], [link()],
                  [tgt(c=common(title="gcal"), updated=t_upd)], conflict_policy=policy))
    assert a.merged["title"] == winner
    if winner == "notion":
        assert a.changes["title"] == ("gcal", "notion")
    else:
        assert a.source_fields == {"title": "gcal"}


def test_manual_policy_reports_both_values_and_writes_nothing():
    a = only(plan([src(c=common(title="notion"))], [link()], [tgt(c=common(title="gcal"))], conflict_policy="manual"))
    assert a.op == "conflict" and a.changes == {"title": ("notion", "gcal")} and not a.writes_remote
    resolved = link(conflict={"fields": {}, "take": "gcal"})
    b = only(plan([src(c=common(title="notion"))], [resolved], [tgt(c=common(title="gcal"))], conflict_policy="manual"))
    assert b.source_fields == {"title": "gcal"}


# -- deletions ----------------------------------------------------------------------------
def test_booking_gone_from_a_full_read_removes_its_event_and_leaves_a_tombstone():
    p = plan([src("n:2")], [link(), link("n:2")], [tgt(), tgt("n:2")])
    a = next(a for a in p.actions if a.source_id == "n:1")
    assert a.op == "delete" and a.tombstone and p.halt is None


def test_incremental_read_does_not_mistake_unseen_bookings_for_deleted():
    assert plan([src("n:2")], [link(), link("n:2")], [], source_complete=False, target_complete=False).count("delete") == 0


def test_update_beats_deletion_the_booking_comes_back():
    a = only(plan([], [link()], [tgt(c=common(title="changed in calendar"))]))
    assert a.source_write == "restore" and a.changes["source.title"][1] == "changed in calendar"


def test_records_that_failed_to_parse_are_not_treated_as_deleted():
    p = plan([], [link()], [tgt()], failures=[RecordFailure("1", "no date")])
    assert p.actions == [] and p.halt is None


def test_drafts_are_skips_with_their_reason_never_deletions():
    draft = RecordFailure("n:1", "no date yet", "Bella – consultation")
    p = plan([], [link()], [tgt()], drafts=[draft])
    assert [(a.op, a.source_id, a.target_id, a.reason, a.label) for a in p.actions] == [
        ("skip", "n:1", tid("n:1"), "no date yet", "Bella – consultation")]
    assert p.failures == [] and p.halt is None  # every source a draft is not an empty database
    assert [(a.op, a.target_id) for a in plan([], [], [], drafts=[draft]).actions] == [("skip", None)]


def test_tombstoned_links_stay_deleted():
    assert plan([], [link(tombstone=True)], [tgt(c=common(cancelled=True))]).actions == []


def test_vanished_event_is_recreated():
    a = only(plan([src()], [link()], []))
    assert a.op == "create" and "vanished" in a.reason


def test_unseen_booking_needed_for_a_write_is_requested():
    p = plan([], [link()], [tgt(c=common(title="edit"))], directions=PUSH, source_complete=False)
    assert p.needs_source == {"n:1"}


# -- safety -------------------------------------------------------------------------------
def test_one_side_suddenly_empty_halts():
    p = plan([], [link(), link("n:2")], [tgt(), tgt("n:2")])
    assert p.halt and "no bookings" in p.halt


def test_calendar_returning_none_of_the_linked_events_halts():
    keys = ["n:1", "n:2", "n:3"]
    p = plan([src(k) for k in keys], [link(k) for k in keys], [], target_id_setting="[google] calendar_id",
             target_noun="events")
    assert p.count("create") == 3  # a full read without them would recreate every event...
    assert "none of the events linked to 3 bookings" in p.halt and "[google] calendar_id" in p.halt  # ...so halt


def test_every_linked_event_reported_deleted_halts_instead_of_cancelling_every_booking():
    keys = ["n:1", "n:2", "n:3"]
    gone = [tgt(k, c=common(cancelled=True)) for k in keys]
    p = plan([], [link(k) for k in keys], gone, source_complete=False, target_complete=False)
    assert sum(1 for a in p.actions if a.source_fields == {"cancelled": True}) == 3
    assert "none of the items linked to 3 bookings" in p.halt


def test_mass_cancellation_from_the_calendar_halts_like_mass_removal_from_the_source():
    keys = [f"n:{i}" for i in range(4)]
    gone = [tgt(k, c=common(cancelled=True)) for k in keys[:3]]  # n:3's event is unchanged, so not read
    p = plan([], [link(k) for k in keys], gone, source_complete=False, target_complete=False)
    assert "cancel 3 of 4 mapped bookings" in p.halt
    assert plan([], [link(k) for k in keys], gone[:2], source_complete=False, target_complete=False,
                max_delete=lambda mapped: 2).halt is None  # within max_delete


@pytest.mark.parametrize("sources, targets", [
    ([], [tgt()]),  # the only booking trashed: a full read finds Notion empty
    ([src()], [tgt(c=common(cancelled=True))]),  # the only event deleted in the calendar
    ([src()], []),  # ... or gone from a full read
])
def test_a_single_booking_leaving_either_side_never_halts(sources, targets):
    assert plan(sources, [link()], targets).halt is None


def test_bookings_cancelled_on_both_sides_do_not_halt():
    keys = ["n:1", "n:2"]
    p = plan([src(k, c=common(cancelled=True)) for k in keys], [link(k) for k in keys],
             [tgt(k, c=common(cancelled=True)) for k in keys])
    assert p.halt is None and p.count("skip") == 2


def test_sources_may_stream_from_a_generator():
    """A full read of 100,000 bookings hands the planner a generator: it is read once, and the
    plan (safety halt included) is the same as from a list."""
    keys = [f"n:{i}" for i in range(5)]
    sources = [src("n:0"), src("n:1", c=common(title="Moved")), src("n:9", recorded=None)]
    links, targets = [link(k) for k in keys], [tgt(k) for k in keys]
    listed = plan(sources, links, targets)
    streamed = plan_sync("p", iter(sources), {l.source_key: l for l in links}, {t.id: t for t in targets},
                         directions=BOTH, render=lambda key, merged: render_of(merged),
                         target_hash=lambda f: fhash(f), target_id_for=tid)
    assert streamed.actions == listed.actions and streamed.halt == listed.halt
    assert listed.count("delete") == 3 and listed.count("create") == 1 and "3 of 5" in listed.halt
    empty = plan_sync("p", iter(()), {l.source_key: l for l in links}, {t.id: t for t in targets},
                      render=lambda key, merged: None, target_hash=fhash, target_id_for=tid)
    assert empty.halt and "no bookings" in empty.halt


def test_an_up_to_date_pair_keeps_no_merged_copy():
    """100,000 unchanged bookings make 100,000 skips: they carry nothing apply would not use."""
    a = only(plan([src()], [link()], [tgt()]))
    assert a.op == "skip" and not a.refresh_link and a.merged is None


def test_mass_deletion_halts_but_one_deletion_never_does():
    keys = [f"n:{i}" for i in range(4)]
    p = plan([src("n:0")], [link(k) for k in keys], [tgt(k) for k in keys])
    assert p.count("delete") == 3 and "3 of 4" in p.halt
    assert plan([src(c=common(cancelled=True))], [link()], [tgt()]).halt is None


def test_plan_json_matches_the_spec_shape():
    data = plan([src(recorded=None)]).as_json()
    assert set(data) == {"pair", "actions"}
    assert set(data["actions"][0]) == {"op", "source_id", "target_id", "changes", "reason"}
    assert data["actions"][0]["changes"]["title"] == [None, "Rex"]


# -- ids that are not the derived ones --------------------------------------------------
def test_link_to_an_event_with_a_foreign_id_is_kept():
    """An imported walk-in keeps the calendar's own id; nothing re-derives it."""
    linked = Link("p", "n:1", "walkin42", None, None, fhash(common()), "t", False,
                  fhash(render_of(common())), common(), None, render_of(common()))
    a = only(plan([src(recorded="walkin42")], [linked], [tgt(id="walkin42")]))
    assert a.op == "skip" and a.target_id == "walkin42" and not a.writes_remote


def test_booking_whose_linked_event_vanished_moves_to_a_new_event_id():
    linked = Link("p", "n:1", "walkin42", None, None, fhash(common()), "t", False,
                  fhash(render_of(common())), common(), None, render_of(common()))
    a = only(plan([src(recorded="walkin42")], [linked], []))
    assert a.op == "create" and a.target_id == tid("n:1") and "vanished" in a.reason


def test_booking_recording_an_event_bsync_did_not_make_fails_and_leaves_the_event_alone():
    private = tgt("x:1", managed=False, id="private1")
    for booking in (src(recorded="private1"), src(c=common(cancelled=True), recorded="private1")):
        p = plan([booking, src("n:2", recorded=None)], [], [private])
        assert [a.source_id for a in p.actions] == ["n:2"]  # not adopted, not imported; the rest syncs
        [failure] = p.failures
        assert failure.id == "1" and "private1" in failure.reason and "did not make" in failure.reason


def test_booking_recording_an_unseen_event_asks_for_it_when_the_read_was_partial():
    p = plan([src(recorded="private1")], [], [], target_complete=False)
    assert p.needs_target == {"private1"}
    assert plan([src(recorded="private1")], [], []).needs_target == set()  # a full read saw every event


def test_page_made_by_an_interrupted_import_adopts_its_event():
    a = only(plan([src(recorded="walkin1")], [], [tgt("x:1", managed=False, id="walkin1")], importing={"walkin1"}))
    assert a.target_id == "walkin1" and a.target_write == "stamp" and not a.source_write
    assert only(plan([src()], [], [tgt("x:1", managed=False, id=tid("n:1"))])).target_id == tid("n:1")  # its own id


def test_booking_recording_an_event_that_claims_it_is_adopted_by_that_id():
    a = only(plan([src(recorded="walkin42")], [], [tgt(id="walkin42")]))
    assert a.target_id == "walkin42" and a.refresh_link and not a.target_write


# -- the trash window and the history horizon ----------------------------------------------
def test_booking_found_trashed_by_a_fetch_removes_its_event_like_a_full_read():
    """An incremental run learns of a trashed page from a GET or the trash window: the
    deleted source takes the deleted-source path (cancel the event, leave a tombstone)."""
    for directions in (PUSH, BOTH):
        a = only(plan([src(deleted=True)], [link()], [], directions, source_complete=False,
                      target_complete=False))
        assert a.op == "delete" and a.target_write == "remove" and a.tombstone


def test_booking_found_trashed_whose_event_was_edited_comes_back():
    a = only(plan([src(deleted=True)], [link()], [tgt(c=common(title="moved in calendar"))],
                  source_complete=False, target_complete=False))
    assert a.source_write == "restore" and a.changes["source.title"][1] == "moved in calendar"


def test_many_bookings_found_trashed_in_an_incremental_run_halt():
    keys = [f"n:{i}" for i in range(4)]
    p = plan([src(k, deleted=True) for k in keys[:3]], [link(k) for k in keys], [],
             source_complete=False, target_complete=False)
    assert p.count("delete") == 3 and "3 of 4" in p.halt


def test_bookings_before_the_history_horizon_are_left_alone_and_counted():
    old, new = common(start="2024-12-01T09:00:00+00:00", end="2024-12-01T10:00:00+00:00"), common()
    p = plan([src("n:old", old, recorded=None), src("n:new", new, recorded=None)], [], [], PUSH,
             past={"n:old"})
    assert [(a.op, a.source_id) for a in p.actions] == [("create", "n:new")] and p.outside_horizon == 1
    assert p.source_writes() == 1 and p.as_json()["outside_horizon"] == 1


def test_linked_past_bookings_are_neither_written_nor_taken_for_deleted():
    old = common(start="2024-12-01T09:00:00+00:00", end="2024-12-01T10:00:00+00:00")
    edited = common(title="renamed long after", start=old["start"], end=old["end"])
    # read and edited, its event edited too: nothing is written either way
    p = plan([src("n:1", edited)], [link("n:1", old)], [tgt("n:1", common(title="x", start=old["start"],
                                                                         end=old["end"]))], past={"n:1"})
    assert p.actions == [] and p.halt is None
    # gone from a full read (trashed long ago), their events still there: no removal, no halt
    p = plan([src("n:3")], [link("n:1", old), link("n:2", old), link("n:3")], [tgt("n:1", old), tgt("n:2", old),
                                                                              tgt("n:3")], past={"n:1", "n:2"})
    assert p.count("delete") == 0 and p.halt is None
    # their events missing from a full calendar read: neither recreated nor a wiped calendar
    p = plan([src("n:1", old), src("n:2", old)], [link("n:1", old), link("n:2", old)], [], past={"n:1", "n:2"})
    assert p.actions == [] and p.halt is None
