"""Property tests of the pure parts: any plan, once applied, leaves nothing to do and both
sides agreeing; event ids are valid; all-day spans round-trip."""

from __future__ import annotations

import re
from datetime import date, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from bsync.core.plan import plan_sync
from bsync.core.records import Link, SourceItem, TargetItem
from bsync.calendars.gcal import event_id_for, fields_hash
from bsync.core.timeutil import allday_dates, allday_span

KEYS = [f"notion:{i}" for i in range(5)]
ZONES = ["Europe/Warsaw", "America/New_York", "Australia/Lord_Howe", "Asia/Kathmandu", "UTC", "Pacific/Apia"]


def render_of(c):
    return {k: v for k, v in c.items() if k != "cancelled"}


def common_st():
    return st.fixed_dictionaries({"title": st.sampled_from(["Rex", "Mia"]), "start": st.sampled_from(["09", "10"]),
                                  "end": st.just("11"), "location": st.sampled_from(["", "Room 2"]),
                                  "cancelled": st.booleans()})


world_st = st.tuples(
    st.dictionaries(st.sampled_from(KEYS), st.tuples(common_st(), st.booleans())),  # sources (+ recorded id?)
    st.dictionaries(st.sampled_from(KEYS + ["walkin:1", "walkin:2"]), st.tuples(common_st(), st.booleans())),
    st.dictionaries(st.sampled_from(KEYS), common_st()),  # links with their snapshots
    st.sampled_from([frozenset({"push"}), frozenset({"pull"}), frozenset({"push", "pull"})]),
    st.sampled_from(["source-wins", "newest-wins"]),
)


class World:
    def __init__(self, raw_sources, raw_targets, raw_links):
        self.sources = {k: SourceItem(k, c, repr(sorted(c.items())), event_id_for(k) if rec else None)
                        for k, (c, rec) in raw_sources.items()}
        self.targets = {}
        for k, (c, managed) in raw_targets.items():
            tid = event_id_for(k)
            key = k if (managed and not k.startswith("walkin")) else None
            self.targets[tid] = self.target(tid, key, c)
        self.links = {k: Link("p", k, event_id_for(k), None, None, repr(sorted(c.items())), "t", False,
                              fields_hash(render_of(c), c["cancelled"]), dict(c), None, render_of(c))
                      for k, c in raw_links.items() if event_id_for(k) in self.targets}
        self.counter = 0

    @staticmethod
    def target(tid, key, c):
        fields = render_of(c)
        return TargetItem(tid, key, dict(c), fields, fields_hash(fields, c["cancelled"]))

    def plan(self, directions, policy):
        def render(key, merged):
            return render_of(merged) if key in self.sources else None

        return plan_sync("p", list(self.sources.values()), self.links, self.targets, directions=directions,
                         render=render, target_hash=lambda f: fields_hash(f, False), target_id_for=event_id_for,
                         conflict_policy=policy, max_delete=lambda m: float("inf"))

    def apply(self, plan):
        """Carry the plan out the way apply.py does against real remotes."""
        for a in plan.actions:
            key, tid, merged = a.source_id, a.target_id, a.merged
            if a.op in ("skip", "conflict"):
                if a.refresh_link and key and tid:
                    self.link(key, tid, merged, tombstone=a.tombstone)
                continue
            if a.source_write == "create":
                self.counter += 1
                key = f"notion:new{self.counter}"
                self.sources[key] = SourceItem(key, dict(merged), repr(sorted(merged.items())), tid)
                old = self.targets[tid]
                self.targets[tid] = TargetItem(tid, key, old.common, old.fields, old.hash)
                self.link(key, tid, merged)
                continue
            if a.target_write in ("create", "update", "restore"):
                self.targets[tid] = self.target(tid, key, merged)
            elif a.target_write == "stamp":
                old = self.targets[tid]
                self.targets[tid] = TargetItem(tid, key, old.common, old.fields, old.hash)
            elif a.target_write == "remove":
                current = self.targets.get(tid)
                base = dict(current.common) if current else dict(merged)
                self.targets[tid] = self.target(tid, key, {**base, "cancelled": True})
            if a.source_write in ("update", "restore"):
                current = self.sources.get(key)
                c = dict(merged) if a.source_write == "restore" or current is None else {**current.common, **a.source_fields}
                self.sources[key] = SourceItem(key, c, repr(sorted(c.items())), current.recorded_target_id if current else tid)
            if a.writeback:
                s = self.sources[key]
                self.sources[key] = SourceItem(key, s.common, s.hash, tid)
            self.link(key, tid, merged, tombstone=a.tombstone)

    def link(self, key, tid, merged, tombstone=False):
        s, t = self.sources.get(key), self.targets.get(tid)
        old = self.links.get(key)
        self.links[key] = Link("p", key, tid, None, None, s.hash if s else (old.source_hash if old else None), "t",
                               tombstone, t.hash if t else None,
                               dict(merged) if merged is not None else (old.snapshot if old else None), None,
                               dict(t.fields) if t else None)


@settings(max_examples=int(__import__("os").environ.get("BSYNC_EXAMPLES", "400")), deadline=None)
@given(world_st)
def test_applying_a_plan_then_planning_again_leaves_nothing_to_do(world):
    raw_sources, raw_targets, raw_links, directions, policy = world
    w = World(raw_sources, raw_targets, raw_links)
    first = w.plan(directions, policy)
    if first.needs_source:
        return  # complete reads never need loading; nothing to check
    w.apply(first)
    second = w.plan(directions, policy)
    busy = [a for a in second.actions if a.writes_remote]
    assert busy == [], (first.actions, busy)
    for key, link in w.links.items():  # linked pairs agree on every common field
        if link.tombstone or key not in w.sources or w.sources[key].deleted:
            continue
        s, t = w.sources[key].common, w.targets[link.target_key].common
        if s["cancelled"] and t["cancelled"]:
            continue
        assert s == t, (key, s, t)


@given(st.text(min_size=1, max_size=200))
def test_event_ids_are_valid_google_ids(key):
    value = event_id_for(key)
    assert re.fullmatch(r"[a-v0-9]{5,1024}", value) and event_id_for(key) == value


@given(st.dates(min_value=date(1990, 1, 1), max_value=date(2100, 1, 1)), st.integers(0, 30), st.sampled_from(ZONES))
def test_allday_span_round_trips_through_local_dates(first, extra_days, zone):
    tz = ZoneInfo(zone)
    last = first + timedelta(days=extra_days)
    start, end = allday_span(first, last, tz)
    assert allday_dates(start, end, tz) == (first, last + timedelta(days=1))
    assert start < end


@settings(max_examples=int(__import__("os").environ.get("BSYNC_EXAMPLES", "400")), deadline=None)
@given(world_st)
def test_two_way_never_cancels_a_booking_edited_since_the_last_sync(world):
    """Update beats delete: only the source itself cancels a booking it changed since the last sync."""
    raw_sources, raw_targets, raw_links, _, policy = world
    w = World(raw_sources, raw_targets, raw_links)
    p = w.plan(frozenset({"push", "pull"}), policy)
    for action in p.actions:
        link, source = w.links.get(action.source_id or ""), w.sources.get(action.source_id or "")
        if link is None or source is None or link.snapshot.get("cancelled") or source.common["cancelled"]:
            continue
        if source.hash != link.source_hash and action.merged is not None:
            assert not action.merged["cancelled"], (action, source, link)
