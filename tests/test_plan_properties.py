"""Property tests of the pure parts: the planner converges, ids are valid, all-day spans round-trip."""

from __future__ import annotations

import re
from datetime import date, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from bsync.plan import SourceItem, TargetItem, plan_push
from bsync.providers.gcal import event_id_for
from bsync.store import Link
from bsync.timeutil import allday_dates, allday_span

KEYS = [f"notion:{i}" for i in range(6)]
ZONES = ["Europe/Warsaw", "America/New_York", "Australia/Lord_Howe", "Asia/Kathmandu", "UTC", "Pacific/Apia"]


def tid(key: str) -> str:
    return event_id_for(key)


source_st = st.fixed_dictionaries({
    "title": st.sampled_from(["Rex", "Mia", "Luna"]),
    "start": st.sampled_from(["09:00", "10:00", "11:00"]),
    "active": st.booleans(),
    "recorded": st.booleans(),
})
target_st = st.fixed_dictionaries({
    "title": st.sampled_from(["Rex", "Mia", "old"]),
    "start": st.sampled_from(["09:00", "12:00"]),
    "deleted": st.booleans(),
})
world_st = st.tuples(
    st.dictionaries(st.sampled_from(KEYS), source_st),
    st.dictionaries(st.sampled_from(KEYS), target_st),
    st.sets(st.sampled_from(KEYS)),
)


def simulate(plan, sources, targets, links):
    """Apply a plan to in-memory sides the way apply.py does to real ones."""
    for a in plan.actions:
        src = sources.get(a.source_id)
        if a.op in ("create", "update"):
            targets[a.target_id] = TargetItem(a.target_id, a.source_id, dict(src.wanted))
            links[a.source_id] = Link("p", a.source_id, a.target_id, None, None, src.content_hash, "t")
            if a.writeback:
                sources[a.source_id] = SourceItem(src.key, src.wanted, src.active, a.target_id,
                                                  content_hash=src.content_hash)
        elif a.op == "delete":
            old = targets[a.target_id]
            targets[a.target_id] = TargetItem(old.id, old.key, old.fields, deleted=True)
            links[a.source_id] = Link("p", a.source_id, a.target_id, None, None,
                                      src.content_hash if src else None, "t", tombstone=src is None)
        elif a.op == "skip" and a.refresh_link:
            links[a.source_id] = Link("p", a.source_id, a.target_id, None, None,
                                      src.content_hash if src else None, "t", tombstone=src is None)


@settings(max_examples=300, deadline=None)
@given(world_st)
def test_applying_a_plan_then_replanning_gives_nothing_to_do(world):
    raw_sources, raw_targets, linked = world
    sources = {k: SourceItem(k, {"title": v["title"], "start": v["start"]}, v["active"],
                             tid(k) if v["recorded"] else None, content_hash=v["title"] + v["start"])
               for k, v in raw_sources.items()}
    targets = {tid(k): TargetItem(tid(k), k, {"title": v["title"], "start": v["start"]}, deleted=v["deleted"])
               for k, v in raw_targets.items()}
    links = {k: Link("p", k, tid(k), None, None, "x", "t") for k in linked if tid(k) in targets}
    first = plan_push("p", list(sources.values()), links, targets, target_id_for=tid,
                      max_delete=lambda mapped: float("inf"))
    simulate(first, sources, targets, links)
    second = plan_push("p", list(sources.values()), links, targets, target_id_for=tid,
                       max_delete=lambda mapped: float("inf"))
    assert [a for a in second.actions if a.op != "skip" or a.refresh_link] == []
    for key, item in sources.items():  # every active booking has a live event with its content
        if item.active:
            event = targets[tid(key)]
            assert not event.deleted and event.fields == item.wanted and item.recorded_target_id == tid(key)
        elif tid(key) in targets:
            assert targets[tid(key)].deleted
    for key in set(links) - set(sources):  # bookings gone from the source have no live event
        assert targets[links[key].target_key].deleted


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
