"""The protocols are the contract a new calendar or ledger is written against: the classes
serving them today must implement every member, with the same parameters, so a method
missing or renamed on either side fails here rather than in the middle of a sync."""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from bsync import registry
from bsync.calendars.base import CalendarBackend
from bsync.calendars.caldav import CalDAVCalendar
from bsync.calendars.gcal import GoogleCalendarTarget
from bsync.ledger.base import BookingLedger
from bsync.ledger.notion import NotionSource

# Every registered implementation, with the protocol it serves: a new calendar is checked
# here as soon as its registry entry exists.
IMPLEMENTATIONS = [(BookingLedger, registry.LEDGER)] + [(CalendarBackend, e) for e in registry.CALENDARS.values()]


def protocol_members(protocol: type) -> dict[str, Any]:
    """A protocol's own members: its annotated attributes, properties and methods."""
    members: dict[str, Any] = {name: None for name in getattr(protocol, "__annotations__", {})}
    for name, value in vars(protocol).items():
        if not name.startswith("_") and (callable(value) or isinstance(value, property)):
            members[name] = value
    return members


def parameters(fn: Any) -> list[tuple[str, Any]]:
    return [(p.name, p.kind) for p in inspect.signature(fn).parameters.values()]


@pytest.mark.parametrize(("protocol", "entry"), IMPLEMENTATIONS, ids=lambda x: getattr(x, "name", None))
def test_each_implementation_has_every_protocol_member_with_its_parameters(protocol, entry):
    cls = registry.load(entry)  # the class behind module:Class.from_settings
    members = protocol_members(protocol)
    assert {"name", "label", "requests", "scope", "close"} <= set(members)
    missing = [name for name in members if not hasattr(cls, name)]
    assert not missing, f"{cls.__name__} lacks {missing}"
    for name, member in members.items():
        if isinstance(member, property):
            assert isinstance(getattr(cls, name), property), f"{cls.__name__}.{name} must be a property"
        elif callable(member):
            assert parameters(getattr(cls, name)) == parameters(member), f"{cls.__name__}.{name} differs"


@pytest.mark.parametrize(("entry", "cls"), [(registry.LEDGER, NotionSource),
                                            (registry.CALENDARS["gcal"], GoogleCalendarTarget),
                                            (registry.CALENDARS["caldav"], CalDAVCalendar)])
def test_the_registry_builds_each_implementation_under_its_own_name(entry, cls):
    """The registry's name is the one the class reports: keys, pairs and cursors agree."""
    assert registry.load(entry) is cls
    assert entry.factory == f"{cls.__module__}:{cls.__name__}.from_settings"
    assert (cls.name, cls.label) == (entry.name, entry.label)


# -- the planner knows roles, not providers ------------------------------------------------------
def test_the_planner_speaks_the_side_names_and_terms_its_caller_gives():
    """A new calendar brings its own name and words; the planner needs no change for it."""
    from test_plan import common, link, only, plan, src, tgt

    from bsync.core.records import TargetTerms

    sides = {"source_name": "ledger", "target_name": "dav"}
    terms = TargetTerms(status="STATUS", confirmed="CONFIRMED", cancelled="CANCELLED", key_field="X-BSYNC-KEY")
    conflict = only(plan([src(c=common(title="a"))], [link()], [tgt(c=common(title="b"))],
                         conflict_policy="manual", **sides))
    assert conflict.op == "conflict" and "--take ledger|dav" in conflict.reason
    taken = only(plan([src(c=common(title="a"))], [link(conflict={"fields": {}, "take": "dav"})],
                      [tgt(c=common(title="b"))], conflict_policy="manual", **sides))
    assert taken.source_fields == {"title": "b"}
    removed = only(plan([src(c=common(cancelled=True))], [link()], [tgt()], terms=terms))
    assert removed.changes == {"STATUS": ("CONFIRMED", "CANCELLED")}
    restored = only(plan([src()], [link(c=common(cancelled=True))], [tgt(c=common(cancelled=True))], terms=terms))
    assert restored.changes["STATUS"] == ("CANCELLED", "CONFIRMED")
    unmarked = only(plan([src()], [link()], [tgt(managed=False)], terms=terms))
    assert unmarked.target_write == "stamp" and unmarked.changes["X-BSYNC-KEY"] == (None, "n:1")
