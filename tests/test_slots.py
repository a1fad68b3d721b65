"""The slot engine: a brute-force oracle property test, DST days, and the edges people hit.

The oracle shares no code with :mod:`bsync.availability.slots`.  It defines a wall time's instant as the
first UTC minute whose wall clock has reached it (found by walking minute by minute), which
gives the first occurrence of a repeated time and the end of a gap for a skipped one without
any fold/offset reasoning, and it checks every candidate slot against every busy interval.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bsync.availability.slots import (
    Rules,
    busy_from_all_day,
    free_slots,
    free_slots_between,
    parse_ranges,
)

WAW, NYC, LHI = ZoneInfo("Europe/Warsaw"), ZoneInfo("America/New_York"), ZoneInfo("Australia/Lord_Howe")
ZONES = ["Europe/Warsaw", "America/New_York", "Australia/Lord_Howe", "Asia/Kathmandu", "UTC"]
MIN = timedelta(minutes=1)
EARLY = datetime(2026, 1, 1, tzinfo=UTC)  # every 2026 date is within the default max_advance


# --- the oracle -----------------------------------------------------------------------------


@cache
def oracle_local(day: date, t: time, key: str) -> datetime:
    """First UTC minute whose wall clock in *key* shows at least day+t (whole-minute inputs)."""
    zone = ZoneInfo(key)
    wall = datetime.combine(day, t)
    as_utc = wall.replace(tzinfo=UTC)
    widest = max((as_utc + timedelta(hours=h)).astimezone(zone).utcoffset() for h in range(-48, 49))
    u = as_utc - widest - timedelta(hours=1)  # its wall clock, and every earlier one, is before `wall`
    while u.astimezone(zone).replace(tzinfo=None) < wall:
        u += MIN
    return u


def oracle_slots(rules_dict: dict, day: date, busy: list, now: datetime) -> list[tuple[datetime, datetime]]:
    key = rules_dict["timezone"]
    ranges = rules_dict["overrides"].get(day, rules_dict["hours"].get(day.weekday(), []))
    d, step = rules_dict["duration"], rules_dict["step"] or rules_dict["duration"]
    bb, ba = rules_dict["buffer_before"], rules_dict["buffer_after"]
    earliest, latest = now + rules_dict["min_notice"], now + rules_dict["max_advance"]
    # compared in UTC: two times in one zone compare by wall clock, so 01:00 and 01:00 fold=1
    # (an hour apart on the night clocks go back) would look equal
    busy_utc = [(a, b) for a, b in ((a.astimezone(UTC), b.astimezone(UTC)) for a, b in busy) if a != b]
    out = []
    for start_t, end_t in ranges:
        rs = oracle_local(day, start_t, key)
        re_ = oracle_local(day + timedelta(days=1), time(0), key) if end_t == time(0) else oracle_local(day, end_t, key)
        s = rs
        while s + d <= re_:
            window = (s - bb, s + d + ba)
            if earliest <= s <= latest and not any(window[0] < b1 and b0 < window[1] for b0, b1 in busy_utc):
                out.append((s, s + d))
            s += step
    return out


def utc_pairs(slots):
    return [(a.astimezone(UTC), b.astimezone(UTC)) for a, b in slots]


# --- strategies -----------------------------------------------------------------------------

CHANGES = {"Europe/Warsaw": [date(2026, 3, 29), date(2026, 10, 25)],
           "America/New_York": [date(2026, 3, 8), date(2026, 11, 1)],
           "Australia/Lord_Howe": [date(2026, 4, 5), date(2026, 10, 4)],
           "Asia/Kathmandu": [], "UTC": []}
# Bias bounds towards the small hours, where every DST gap and repeat in these zones lies.
bound_st = st.one_of(st.sampled_from([0, 60, 75, 90, 105, 120, 135, 150, 165, 180, 210, 1440]),
                     st.integers(0, 288).map(lambda i: i * 5))


@st.composite
def ranges_st(draw):
    """0 (closed) or 1-3 sorted, non-overlapping ranges; some touch, some end at 24:00."""
    n = draw(st.sampled_from([0, 1, 1, 2, 3]))
    points = sorted(draw(st.lists(bound_st, min_size=2 * n, max_size=2 * n, unique=True)))
    return [(_clock(points[2 * i]), _clock(points[2 * i + 1])) for i in range(n)]


def _clock(minute: int) -> time:
    return time(0) if minute == 1440 else time(minute // 60, minute % 60)


def minutes(lo, hi, *, grid=(0, 5, 10, 15, 30, 60)):
    """Mostly round values (so edges meet exactly: touching busy time, notice == slot start), some odd."""
    round_st = st.sampled_from([m for m in grid if lo <= m <= hi]) if any(lo <= m <= hi for m in grid) else st.nothing()
    coarse = [st.integers(-(-lo // n), hi // n).map(lambda i, n=n: i * n) for n in (30, 5)]
    return st.one_of(round_st, *coarse, st.integers(lo, hi)).map(lambda m: timedelta(minutes=m))


def day_st(key):
    """A random 2026 date, or often the zone's own DST change day (or the day before it)."""
    changes = CHANGES[key] + [d - timedelta(days=1) for d in CHANGES[key]]
    random_day = st.dates(date(2026, 1, 1), date(2026, 12, 31))
    return st.one_of(st.sampled_from(changes), random_day) if changes else random_day


@st.composite
def world_st(draw, *, on_changes: bool = False):
    """Rules, days, busy time and now.  *on_changes*: only DST change days, booking window open."""
    key = draw(st.sampled_from([k for k in ZONES if CHANGES[k]] if on_changes else ZONES))
    first = draw(st.sampled_from(CHANGES[key]) if on_changes else day_st(key))
    last = first + timedelta(days=draw(st.integers(0, 0 if on_changes else 2)))
    rules = {
        "timezone": key,
        "hours": {wd: draw(ranges_st()) for wd in range(7)},
        "overrides": draw(st.dictionaries(st.sampled_from([first, last]), ranges_st(),
                                          max_size=0 if on_changes else 1)),
        "duration": draw(minutes(5, 240)),
        "step": draw(st.one_of(st.none(), minutes(5, 120))),
        "buffer_before": draw(minutes(0, 60)),
        "buffer_after": draw(minutes(0, 60)),
        # Half the time the notice/advance window is wide open, so the other conditions get exercised.
        "min_notice": draw(st.one_of(st.just(timedelta(0)), minutes(0, 2 * 1440))),
        "max_advance": draw(st.one_of(st.just(timedelta(days=8)), minutes(0, 6 * 1440))),
    }
    anchor = oracle_local(first, time(0), key)
    span = ((last - first).days + 1) * 1440
    busy = []
    for _ in range(draw(st.integers(0, 3 if on_changes else 20))):
        start = anchor + draw(minutes(-900, span + 60))  # some reach in from the previous day
        length = draw(st.one_of(st.just(timedelta(0)), minutes(1, 120), minutes(1, 1440)))  # some zero-length
        shown_in = ZoneInfo(draw(st.sampled_from(ZONES + ["Asia/Tokyo"])))  # busy comes in any zone
        busy.append((start.astimezone(shown_in), (start + length).astimezone(shown_in)))
    now = anchor + draw(st.one_of(minutes(-2 * 1440, 0), minutes(-4 * 1440, span)))
    if on_changes:
        rules |= {"min_notice": timedelta(0), "max_advance": timedelta(days=8)}
        now = anchor - timedelta(days=1)
    return rules, first, last, busy, now


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(world_st(), world_st(on_changes=True)))
def test_matches_brute_force_oracle(world):
    rules_dict, first, last, busy, now = world
    rules = Rules(**rules_dict)
    got = free_slots_between(rules, first, last, busy, now)
    assert list(got) == [first + timedelta(days=i) for i in range((last - first).days + 1)]
    for day, slots in got.items():
        assert utc_pairs(slots) == oracle_slots(rules_dict, day, busy, now), day
        assert all(s.tzinfo is rules.zone and e.tzinfo is rules.zone for s, e in slots)
    assert utc_pairs(free_slots(rules, first, busy, now)) == utc_pairs(got[first])


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_all_day_busy_is_local_midnight_to_midnight(data):
    key = data.draw(st.sampled_from(ZONES))
    day = data.draw(day_st(key))
    start, end = busy_from_all_day(day, key)
    assert (start.astimezone(UTC), end.astimezone(UTC)) == (
        oracle_local(day, time(0), key), oracle_local(day + timedelta(days=1), time(0), key))
    assert start.tzinfo is ZoneInfo(key)


# --- DST days -------------------------------------------------------------------------------


def rules(key="Europe/Warsaw", ranges=("09:00-17:00",), **kw) -> Rules:
    kw.setdefault("duration", timedelta(minutes=30))
    return Rules(timezone=key, hours={wd: parse_ranges(ranges) for wd in range(7)}, **kw)


def walls(slots, fmt="%H:%M%z"):
    return [s.strftime(fmt) for s, _ in slots]


@pytest.mark.parametrize(("key", "change"), [("Europe/Warsaw", date(2026, 3, 29)),
                                             ("Europe/Warsaw", date(2026, 10, 25)),
                                             ("America/New_York", date(2026, 3, 8)),
                                             ("America/New_York", date(2026, 11, 1))])
def test_nine_oclock_opening_stays_nine_oclock_local(key, change):
    r = rules(key)
    firsts = [free_slots(r, change + timedelta(days=k), [], EARLY)[0][0] for k in (-1, 0, 1)]
    assert [s.strftime("%H:%M") for s in firsts] == ["09:00"] * 3
    assert firsts[0].utcoffset() != firsts[2].utcoffset()
    assert firsts[1].utcoffset() == firsts[2].utcoffset()  # both changes happen before 09:00


@pytest.mark.parametrize(("key", "change", "hours"), [("Europe/Warsaw", date(2026, 3, 29), 2),
                                                      ("Europe/Warsaw", date(2026, 10, 25), 4),
                                                      ("America/New_York", date(2026, 3, 8), 2),
                                                      ("America/New_York", date(2026, 11, 1), 4)])
def test_range_spanning_the_change_has_its_real_length(key, change, hours):
    slots = free_slots(rules(key, ["01:00-04:00"]), change, [], EARLY)
    assert len(slots) == hours * 2  # 30-minute slots, back to back
    # in UTC: subtracting two datetimes of the same zone measures wall time, not elapsed time
    assert slots[-1][1].astimezone(UTC) - slots[0][0].astimezone(UTC) == timedelta(hours=hours)
    assert (slots[0][0].strftime("%H:%M"), slots[-1][1].strftime("%H:%M")) == ("01:00", "04:00")


@pytest.mark.parametrize(("key", "change", "opens"), [("Europe/Warsaw", date(2026, 3, 29), "03:00+0200"),
                                                      ("America/New_York", date(2026, 3, 8), "03:00-0400"),
                                                      ("Australia/Lord_Howe", date(2026, 10, 4), "02:30+1100")])
def test_range_starting_inside_the_gap_opens_when_the_clock_jumps(key, change, opens):
    slots = free_slots(rules(key, ["02:15-06:00"] if "Lord" in key else ["02:30-06:00"]), change, [], EARLY)
    assert walls(slots)[0] == opens


def test_range_wholly_inside_the_gap_is_closed():
    assert free_slots(rules("Europe/Warsaw", ["02:00-02:45"], duration=timedelta(minutes=5)),
                      date(2026, 3, 29), [], EARLY) == []


@pytest.mark.parametrize(("key", "change", "real"), [("Europe/Warsaw", date(2026, 10, 25), timedelta(hours=7)),
                                                     ("America/New_York", date(2026, 11, 1), timedelta(hours=7)),
                                                     ("Australia/Lord_Howe", date(2026, 4, 5), timedelta(hours=6.5))])
def test_fall_back_repeated_hour_no_duplicate_or_missing_slot(key, change, real):
    slots = free_slots(rules(key, ["00:00-06:00"], duration=timedelta(minutes=15)), change, [], EARLY)
    starts = [s.astimezone(UTC) for s, _ in slots]
    assert all(b - a == timedelta(minutes=15) for a, b in pairwise(starts))  # no gap, no duplicate
    assert len(slots) * timedelta(minutes=15) == real  # 00:00-06:00 wall is 7 h (6.5 h at Lord Howe)
    shown = walls(slots, "%H:%M")
    assert any(shown.count(w) == 2 for w in shown)  # the repeated wall times appear twice, other offset


def test_ambiguous_opening_uses_first_occurrence():
    slots = free_slots(rules("Europe/Warsaw", ["02:30-04:00"]), date(2026, 10, 25), [], EARLY)
    assert walls(slots)[0] == "02:30+0200"
    assert len(slots) == 5  # 02:30 CEST to 04:00 CET is 2.5 h


@pytest.mark.parametrize(("key", "day", "length"), [("Europe/Warsaw", date(2026, 3, 29), 23),
                                                    ("Europe/Warsaw", date(2026, 10, 25), 25),
                                                    ("America/New_York", date(2026, 3, 8), 23),
                                                    ("America/New_York", date(2026, 11, 1), 25),
                                                    ("Europe/Warsaw", date(2026, 6, 1), 24)])
def test_all_day_busy_blocks_the_whole_local_day(key, day, length):
    start, end = busy_from_all_day(day, ZoneInfo(key))
    assert end - start != timedelta(0) and end.astimezone(UTC) - start.astimezone(UTC) == timedelta(hours=length)
    r = rules(key, ["00:00-24:00"], duration=timedelta(minutes=15))
    assert free_slots(r, day, [(start, end)], EARLY) == []
    assert len(free_slots(r, day, [], EARLY)) == length * 4
    neighbours = free_slots_between(r, day - timedelta(days=1), day + timedelta(days=1), [(start, end)], EARLY)
    assert walls(neighbours[day + timedelta(days=1)], "%H:%M")[0] == "00:00"
    assert walls(neighbours[day - timedelta(days=1)], "%H:%M")[-1] == "23:45"


# --- busy, buffers, notice, advance ---------------------------------------------------------


def at(day: date, hh_mm: str, zone=WAW) -> datetime:
    return datetime.combine(day, time.fromisoformat(hh_mm), zone)


JUNE = date(2026, 6, 1)  # a Monday


def test_back_to_back_busy_with_buffers():
    r = rules(ranges=["09:00-13:00"], step=timedelta(minutes=15),
              buffer_before=timedelta(minutes=15), buffer_after=timedelta(minutes=15))
    busy = [(at(JUNE, "11:00"), at(JUNE, "12:00")), (at(JUNE, "10:00"), at(JUNE, "11:00"))]
    assert walls(free_slots(r, JUNE, busy, EARLY), "%H:%M") == ["09:00", "09:15", "12:15", "12:30"]


def test_buffers_may_touch_busy_time_half_open():
    r = rules(ranges=["09:00-12:00"], buffer_before=timedelta(minutes=30), buffer_after=timedelta(minutes=30))
    busy = [(at(JUNE, "08:00"), at(JUNE, "09:30"))]
    assert walls(free_slots(r, JUNE, busy, EARLY), "%H:%M") == ["10:00", "10:30", "11:00", "11:30"]
    busy = [(at(JUNE, "11:00"), at(JUNE, "12:00"))]
    assert walls(free_slots(r, JUNE, busy, EARLY), "%H:%M") == ["09:00", "09:30", "10:00"]


def test_busy_may_be_unsorted_overlapping_zero_length_and_in_any_zone():
    r = rules(ranges=["09:00-12:00"], duration=timedelta(hours=1))
    tokyo = ZoneInfo("Asia/Tokyo")
    busy = [(at(JUNE, "10:30").astimezone(tokyo), at(JUNE, "10:45").astimezone(UTC)),  # 10:30-10:45
            (at(JUNE, "09:00"), at(JUNE, "09:00")),  # zero length: blocks nothing
            (at(JUNE, "10:15"), at(JUNE, "10:40"))]
    assert walls(free_slots(r, JUNE, busy, EARLY), "%H:%M") == ["09:00", "11:00"]


def test_minimum_notice_crossing_midnight():
    r = rules(min_notice=timedelta(hours=12))
    now = at(JUNE, "22:40")
    got = free_slots_between(r, JUNE, JUNE + timedelta(days=1), [], now)
    assert got[JUNE] == []
    assert walls(got[JUNE + timedelta(days=1)], "%H:%M")[0] == "11:00"  # 10:40 earliest, aligned to 09:00
    exactly = free_slots(r, JUNE + timedelta(days=1), [], at(JUNE, "22:30"))
    assert walls(exactly, "%H:%M")[0] == "10:30"  # now + min_notice == start is allowed


def test_max_advance_cut_is_inclusive():
    r = rules(max_advance=timedelta(days=7))
    now = at(JUNE, "10:00")
    got = free_slots_between(r, JUNE + timedelta(days=7), JUNE + timedelta(days=8), [], now)
    assert walls(got[JUNE + timedelta(days=7)], "%H:%M") == ["09:00", "09:30", "10:00"]
    assert got[JUNE + timedelta(days=8)] == []


def test_overrides_close_a_day_or_replace_its_hours():
    r = Rules(timezone="Europe/Warsaw", hours={0: parse_ranges(["09:00-12:00"])}, duration=timedelta(hours=1),
              overrides={JUNE: [], JUNE + timedelta(days=7): parse_ranges(["14:00-16:00"])})
    got = free_slots_between(r, JUNE, JUNE + timedelta(days=14), [], EARLY)
    assert got[JUNE] == []
    assert walls(got[JUNE + timedelta(days=7)], "%H:%M") == ["14:00", "15:00"]
    assert walls(got[JUNE + timedelta(days=14)], "%H:%M") == ["09:00", "10:00", "11:00"]
    assert [d for d, s in got.items() if s] == [JUNE + timedelta(days=7), JUNE + timedelta(days=14)]
    assert list(got) == [JUNE + timedelta(days=i) for i in range(15)]


def test_several_ranges_a_day_align_to_each_opening():
    r = rules(ranges=["13:10-14:00", "09:00-10:00"], duration=timedelta(minutes=20))
    assert walls(free_slots(r, JUNE, [], EARLY), "%H:%M") == ["09:00", "09:20", "09:40", "13:10", "13:30"]


def test_slots_are_in_the_business_zone():
    slots = free_slots(rules("America/New_York"), JUNE, [], EARLY)
    assert slots[0] == (datetime(2026, 6, 1, 13, 0, tzinfo=UTC), datetime(2026, 6, 1, 13, 30, tzinfo=UTC))
    assert slots[0][0].tzinfo is NYC and str(slots[0][0]) == "2026-06-01 09:00:00-04:00"


def test_from_strings():
    r = Rules.from_strings(timezone="Europe/Warsaw", hours={"mon": ["09:00-12:00", "13:00-17:00"], 5: ["10:00-24:00"]},
                           overrides={"2026-06-01": []}, duration="1h30m", step="30m", buffer_after="15m",
                           min_notice="2h", max_advance="90d")
    assert r.hours[0] == ((time(9), time(12)), (time(13), time(17)))
    assert r.hours[5] == ((time(10), time(0)),)
    assert r.overrides == {JUNE: ()}
    assert (r.duration, r.step, r.buffer_after, r.min_notice, r.max_advance) == (
        timedelta(minutes=90), timedelta(minutes=30), timedelta(minutes=15), timedelta(hours=2), timedelta(days=90))


def test_rules_are_frozen_copies():
    hours = {0: [(time(9), time(12))]}
    r = Rules(timezone="UTC", hours=hours, duration=timedelta(hours=1))
    hours[0].append((time(13), time(14)))
    assert r.hours[0] == ((time(9), time(12)),)
    with pytest.raises(AttributeError):
        r.duration = timedelta(hours=2)  # type: ignore[misc]
    with pytest.raises(TypeError):
        r.hours[1] = ()  # type: ignore[index]


# --- validation -----------------------------------------------------------------------------


def test_parse_ranges():
    assert parse_ranges([" 13:00 - 17:00", "9:00-12:00"]) == [(time(9), time(12)), (time(13), time(17))]
    assert parse_ranges(["22:00-24:00", "00:00-01:00"]) == [(time(0), time(1)), (time(22), time(0))]
    assert parse_ranges(["00:00-00:00"]) == [(time(0), time(0))]
    assert parse_ranges(["09:00-12:00", "12:00-13:00"]) == [(time(9), time(12)), (time(12), time(13))]
    assert parse_ranges([]) == []


@pytest.mark.parametrize(("texts", "message"), [
    (["13:00-12:00"], "13:00-12:00: end before start"),
    (["09:00-09:00"], "09:00-09:00: empty range"),
    (["09:00-12:00", "11:00-13:00"], "09:00-12:00 overlaps 11:00-13:00"),
    (["13:00-17:00", "09:00-13:30"], "09:00-13:30 overlaps 13:00-17:00"),
    (["9-12"], "'9-12' is not a range like '09:00-12:00'"),
    (["09:00–12:00"], "'09:00–12:00' is not a range like '09:00-12:00'"),
    (["09:00-25:00"], "09:00-25:00: 25:00 is not a time of day"),
    (["09:60-10:00"], "09:60-10:00: 09:60 is not a time of day"),
    (["24:00-24:00"], "24:00-24:00: 24:00 can only end a range"),
])
def test_parse_ranges_errors(texts, message):
    with pytest.raises(ValueError) as info:
        parse_ranges(texts)
    assert str(info.value).startswith(message)


@pytest.mark.parametrize(("change", "message"), [
    ({"timezone": "Europe/Warsawa"}, "unknown timezone 'Europe/Warsawa'"),
    ({"timezone": "Europe"}, "unknown timezone 'Europe'"),
    ({"timezone": ""}, "unknown timezone ''"),
    ({"duration": timedelta(0)}, "duration must be positive, got 0:00:00"),
    ({"duration": timedelta(minutes=-5)}, "duration must be positive"),
    ({"duration": timedelta(hours=24, minutes=1)}, "duration must be at most 24h, got 1 day, 0:01:00"),
    ({"step": timedelta(0)}, "step must be positive, got 0:00:00"),
    ({"buffer_before": timedelta(minutes=-15)}, "buffer_before must not be negative, got -0:15:00"),
    ({"buffer_after": timedelta(minutes=-1)}, "buffer_after must not be negative, got -0:01:00"),
    ({"min_notice": timedelta(hours=-1)}, "min_notice must not be negative"),
    ({"hours": {0: [(time(13), time(12))]}}, "hours for Monday: 13:00-12:00: end before start"),
    ({"hours": {6: [(time(9), time(12)), (time(11), time(13))]}}, "hours for Sunday: 09:00-12:00 overlaps 11:00-13:00"),
    ({"hours": {7: []}}, "unknown weekday 7"),
    ({"overrides": {date(2026, 12, 24): [(time(9), time(9))]}}, "override for 2026-12-24: 09:00-09:00: empty range"),
])
def test_rules_validation(change, message):
    args = {"timezone": "Europe/Warsaw", "hours": {0: [(time(9), time(17))]}, "duration": timedelta(hours=1)} | change
    with pytest.raises(ValueError) as info:
        Rules(**args)
    assert str(info.value).startswith(message)


def test_wrong_types_are_type_errors():
    with pytest.raises(TypeError, match=r"'09:00-12:00': give a list of ranges like \['09:00-12:00'\], not one string"):
        parse_ranges("09:00-12:00")
    with pytest.raises(TypeError, match="override key '2026-12-24' is not a date"):
        Rules(timezone="UTC", hours={}, duration=timedelta(hours=1), overrides={"2026-12-24": []})
    with pytest.raises(TypeError, match="duration must be a timedelta, got str"):
        Rules(timezone="UTC", hours={}, duration="1h")


def test_duration_of_exactly_24h_is_allowed():
    r = rules("UTC", ["00:00-24:00"], duration=timedelta(hours=24))
    assert len(free_slots(r, JUNE, [], EARLY)) == 1


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"duration": "soon"}, "duration: not a duration like"),
    ({"hours": {"funday": ["09:00-12:00"]}}, "unknown weekday 'funday'"),
    ({"hours": {"tue": ["12:00-09:00"]}}, "hours for tue: 12:00-09:00: end before start"),
    ({"overrides": {"24.12.2026": []}}, "override key '24.12.2026' is not a date"),
    ({"buffer_before": "-5m"}, "buffer_before: not a duration like"),
])
def test_from_strings_errors(kwargs, message):
    args = {"timezone": "Europe/Warsaw", "hours": {"mon": ["09:00-17:00"]}, "duration": "1h"} | kwargs
    with pytest.raises(ValueError) as info:
        Rules.from_strings(**args)
    assert str(info.value).startswith(message)


def test_engine_input_errors():
    r = rules()
    with pytest.raises(ValueError, match="naive datetime"):
        free_slots(r, JUNE, [], datetime(2026, 6, 1, 9))
    with pytest.raises(ValueError, match="naive datetime"):
        free_slots(r, JUNE, [(datetime(2026, 6, 1, 9), datetime(2026, 6, 1, 10))], EARLY)
    with pytest.raises(ValueError, match="busy interval ends before it starts"):
        free_slots(r, JUNE, [(at(JUNE, "10:00"), at(JUNE, "09:00"))], EARLY)
    with pytest.raises(ValueError, match="last day 2026-05-31 is before first day 2026-06-01"):
        free_slots_between(r, JUNE, JUNE - timedelta(days=1), [], EARLY)


def test_many_busy_intervals_over_ninety_days():
    """The large case, checked functionally (no timing assertion): scattered busy time, oracle on a few days."""
    r = rules(ranges=["08:00-12:00", "13:00-18:00"], duration=timedelta(minutes=15), step=timedelta(minutes=15),
              buffer_before=timedelta(minutes=5))
    base = datetime(2026, 3, 1, tzinfo=UTC)
    busy = [(base + timedelta(minutes=(i * 7919) % 129_600), base + timedelta(minutes=(i * 7919) % 129_600 + 10))
            for i in range(5000)]
    got = free_slots_between(r, date(2026, 3, 1), date(2026, 5, 29), busy, EARLY)
    assert len(got) == 90 and sum(map(len, got.values())) > 100
    as_dict = {"timezone": "Europe/Warsaw", "hours": dict(r.hours), "overrides": {}, "duration": r.duration,
               "step": r.step, "buffer_before": r.buffer_before, "buffer_after": r.buffer_after,
               "min_notice": r.min_notice, "max_advance": r.max_advance}
    for day in (date(2026, 3, 1), date(2026, 3, 29), date(2026, 5, 29)):
        assert utc_pairs(got[day]) == oracle_slots(as_dict, day, busy, EARLY)
