"""Plan rendering: every kind of action the planner makes prints as a table row, never a crash.

The plans come from the real planner (the scenario helpers of test_plan), so a new kind of
action there shows up here as soon as a scenario for it exists."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest
from rich.console import Console
from test_plan import BOTH, MOVED_END, MOVED_START, PULL, common, link, plan, src, tgt

from bsync.core.plan import Action, Plan
from bsync.render import action_subject, print_plan

WAW = ZoneInfo("Europe/Warsaw")
MOVED = common(start=MOVED_START, end=MOVED_END)

SCENARIOS = {
    "new booking": lambda: plan([src(recorded=None)]),
    "import from the calendar (two-way)": lambda: plan([], [], [tgt("x:1", managed=False, id="walkin1")]),
    "import from the calendar (gcal-to-notion)": lambda: plan([], [], [tgt("x:1", managed=False, id="walkin1")],
                                                              directions=PULL),
    "update the event": lambda: plan([src(c=common(title="Rex (moved)"))], [link()], [tgt()]),
    "update the booking": lambda: plan([], [link()], [tgt(c=MOVED)], source_complete=False),
    "remove the event": lambda: plan([src(c=common(cancelled=True))], [link()], [tgt()]),
    "restore the event": lambda: plan([src()], [link(c=common(cancelled=True))], [tgt(c=common(cancelled=True))]),
    "restore a trashed booking": lambda: plan([], [link()], [tgt(c=common(title="changed in calendar"))]),
    "conflict": lambda: plan([src(c=common(title="notion"))], [link()], [tgt(c=common(title="gcal"))],
                             conflict_policy="manual"),
    "skip": lambda: plan([src()], [link()], [tgt()]),
    "event claiming a missing booking": lambda: plan([], [], [tgt("n:9")], directions=BOTH),
}


def rendered(p: Plan, **kw) -> str:
    console = Console(record=True, width=200, color_system=None)
    print_plan(console, p, show_skips=True, tz=WAW, **kw)
    return console.export_text()


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_every_kind_of_action_renders_with_its_subject_and_reason(name):
    p = SCENARIOS[name]()
    assert p.actions, name
    text = rendered(p)
    for action in p.actions:
        assert action.op in text and action_subject(action) in text
        assert action.reason.split(" ")[0] in text


def test_import_shows_the_event_and_its_time_in_the_business_timezone():
    [action] = SCENARIOS["import from the calendar (gcal-to-notion)"]().actions
    assert action.source_id is None  # an import has no booking yet: the row names the event
    text = rendered(Plan("gcal-to-notion", [action]))
    assert "event walkin1" in text and "start: Tue 01 Dec 10:00" in text


def test_an_action_without_any_id_or_label_still_renders():
    text = rendered(Plan("p", [Action("skip", None, None, reason="nothing to say")]))
    assert "nothing to say" in text


def test_halt_and_failures_are_printed_under_the_table():
    p = plan([src()], [link()], [tgt()])
    p.halt = "the plan would cancel [3] of 4"
    text = rendered(p)
    assert "safety halt: the plan would cancel [3] of 4" in text


def test_plan_says_how_many_bookings_the_history_horizon_leaves_alone():
    p = Plan("p", [])
    p.outside_horizon = 9840
    assert "9840 bookings ended before the 30-day history horizon: left alone" in rendered(p, history="30d")
    assert "horizon" not in rendered(p, history="all") and "horizon" not in rendered(Plan("p", []), history="30d")


def test_plan_estimates_a_long_run_at_the_notion_pace():
    writeback = {"source.target_id": (None, "ev1")}
    long = Plan("p", [Action("create", f"n:{i}", f"ev{i}", writeback, target_write="create") for i in range(360)])
    assert "this run writes 360 pages: about 2 minutes at 3 requests/s" in rendered(long, pages_per_second=3)
    assert "about 1 minute at 6 requests/s" in rendered(long, pages_per_second=6)
    assert "under a minute at 20 requests/s" in rendered(long, pages_per_second=20)
    assert "at 3 requests/s" in rendered(long, pages_per_second=0)  # unpaced still meets Notion's average
    short = Plan("p", long.actions[:100])
    assert "this run writes" not in rendered(short, pages_per_second=3)
