"""Which implementation serves each config section, and the pairs that follow from them.

Like vdirsyncer's storage index: a name in the config (``[google]``) maps to the dotted path
of the class that serves it, imported only when a run needs it, so ``bsync status`` never
pays for the Google client.  Everything that used to spell out ``"notion"``, ``"gcal"`` or
``"notion-to-gcal"`` by hand asks this module instead:

* the **ledger** is the source of truth (Notion);
* each **calendar** backend pairs with the ledger both ways: ``<ledger>-to-<calendar>``
  makes the calendar follow the ledger, ``<calendar>-to-<ledger>`` the reverse, and both
  share one link table named ``<ledger>+<calendar>``;
* each **platform** (Cal.com, Sesami, ...) feeds bookings into the ledger through the local
  ``bookings`` table; ``<platform>-to-<ledger>`` is its pair when it can be pulled.

Adding a calendar or a platform is one entry here plus its module, sandbox and tests.
This module imports nothing from bsync, so config and the CLI can read it at start-up.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Literal

Role = Literal["ledger", "calendar", "platform"]


@dataclass(frozen=True)
class Entry:
    """One implementation: its short name (key prefix, cursor scope, pair names), the
    config section that configures it, what people call it, and where the class lives."""

    name: str
    role: Role
    section: str
    label: str
    factory: str  # "module:callable", called with Settings; imported lazily
    pullable: bool = True  # platforms only: False for webhook-only ones (Sesami)


LEDGER = Entry("notion", "ledger", "notion", "Notion", "bsync.ledger.notion:NotionSource.from_settings")

CALENDARS: dict[str, Entry] = {
    "gcal": Entry("gcal", "calendar", "google", "Google Calendar",
                  "bsync.calendars.gcal:GoogleCalendarTarget.from_settings"),
}

PLATFORMS: dict[str, Entry] = {  # each factory is a bsync.platforms.base.Platform class
    "calcom": Entry("calcom", "platform", "calcom", "Cal.com", "bsync.platforms.calcom:CalcomPlatform"),
    "sesami": Entry("sesami", "platform", "server", "Sesami", "bsync.platforms.sesami:SesamiPlatform",
                    pullable=False),  # webhook-only; its secret is [server] sesami_secret
}


def _resolve(entry: Entry) -> Any:
    module, _, path = entry.factory.partition(":")
    obj: Any = importlib.import_module(module)
    for attr in path.split("."):
        obj = getattr(obj, attr)
    return obj


def load(entry: Entry) -> Any:
    """The class (or factory) ``entry`` names, imported now: for what it says before any
    config exists (a platform's ``check_name`` for doctor's list of checks)."""
    return _resolve(entry)


def build(entry: Entry, settings: Any) -> Any:
    """The configured instance for ``entry`` (its section must be present in ``settings``)."""
    return _resolve(entry)(settings)


def push_pair(calendar: str) -> str:
    """``notion-to-gcal``: the calendar follows the ledger."""
    return f"{LEDGER.name}-to-{calendar}"


def pull_pair(calendar: str) -> str:
    """``gcal-to-notion``: the ledger follows the calendar (and imports events made there)."""
    return f"{calendar}-to-{LEDGER.name}"


def link_pair(calendar: str) -> str:
    """``notion+gcal``: both directions share one mapping."""
    return f"{LEDGER.name}+{calendar}"


def platform_pair(platform: str) -> str:
    """``calcom-to-notion``: a platform's bookings become ledger records."""
    return f"{platform}-to-{LEDGER.name}"


def calendar_pairs() -> tuple[str, ...]:
    """Every calendar pair name, both directions, in registry order."""
    return tuple(p for name in CALENDARS for p in (push_pair(name), pull_pair(name)))


def pullable_platforms() -> tuple[str, ...]:
    """What ``bsync sync pull NAME`` accepts: the platforms that can be pulled."""
    return tuple(name for name, entry in PLATFORMS.items() if entry.pullable)


def platform_pairs() -> tuple[str, ...]:
    """The pair of every platform that can be pulled."""
    return tuple(platform_pair(name) for name in pullable_platforms())


def parse_platform_pair(pair: str) -> str | None:
    """``calcom-to-notion`` -> ``calcom``; None for a calendar pair or an unknown name."""
    return next((name for name in pullable_platforms() if pair == platform_pair(name)), None)


def all_pairs() -> tuple[str, ...]:
    """What ``[sync] pairs`` and ``bsync sync PAIR`` accept."""
    return calendar_pairs() + platform_pairs()


@dataclass(frozen=True)
class CalendarPair:
    """A pair name taken apart: which calendar, and which way."""

    calendar: str
    direction: Literal["push", "pull"]


def parse_calendar_pair(pair: str) -> CalendarPair | None:
    """``notion-to-gcal`` -> (gcal, push); None for a platform pair or an unknown name."""
    for name in CALENDARS:
        if pair == push_pair(name):
            return CalendarPair(name, "push")
        if pair == pull_pair(name):
            return CalendarPair(name, "pull")
    return None


def synced_calendar(pairs: tuple[str, ...] | list[str]) -> str:
    """The calendar ``[sync] pairs`` syncs with (the first registered when they name none): the
    one reconcile compares with the ledger and availability asks for busy time."""
    for pair in pairs:
        parsed = parse_calendar_pair(pair)
        if parsed is not None:
            return parsed.calendar
    return next(iter(CALENDARS))
