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

**Config sections.**  An entry's ``config`` names the pydantic model of its ``[section]``;
:func:`bsync.config.settings_model` declares one optional ``Settings`` field per entry
from it, so the section is typed and validated at load and ``BSYNC_<SECTION>__<KEY>``
overrides it, with no edit to ``config.py``.  Every command makes ``Settings``, so every
command imports each model's module, and the rule is:

* keep the model in ``bsync.config`` (the built-in ones are there), or in a module of the
  provider's that is light: it may import ``bsync.config`` for ``Section`` and the
  validation helpers (``Settings`` is made on first use, so either module may be imported
  first), but must not use ``Settings`` at import time (annotations only) nor import a
  provider client: ``googleapiclient`` and the like belong to the class's module, which
  only :func:`build` and :func:`load` import, so ``bsync status`` never pays for them.

An entry configured in a section bsync already has (Sesami's secret in ``[server]``) has
``config=None``.  After registering an entry at run time (a test), call
:func:`bsync.config.rebuild_settings` so ``Settings`` declares its section.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Literal

Role = Literal["ledger", "calendar", "platform"]


@dataclass(frozen=True)
class Entry:
    """One implementation: its short name (key prefix, cursor scope, pair names), the
    config section that configures it, what people call it, where the class lives, and the
    model of its config section."""

    name: str
    role: Role
    section: str
    label: str
    factory: str  # "module:callable", called with Settings; imported lazily
    pullable: bool = True  # platforms only: False for webhook-only ones (Sesami)
    config: str | None = None  # "module:Model" of [section]; None when the section is bsync's own
    credentials: str | None = None  # calendars only: "module:object", a calendars.base.StoredCredentials


LEDGER = Entry("notion", "ledger", "notion", "Notion", "bsync.ledger.notion:NotionSource.from_settings",
               config="bsync.config:NotionConfig")

CALENDARS: dict[str, Entry] = {  # each factory builds a bsync.calendars.base.CalendarBackend
    "gcal": Entry("gcal", "calendar", "google", "Google Calendar",
                  "bsync.calendars.gcal:GoogleCalendarTarget.from_settings", config="bsync.config:GoogleConfig",
                  credentials="bsync.calendars.google_auth:GOOGLE_TOKEN"),
    "caldav": Entry("caldav", "calendar", "caldav", "CalDAV calendar",
                    "bsync.calendars.caldav:CalDAVCalendar.from_settings",
                    config="bsync.calendars.caldav_config:CalDAVConfig"),
}

PLATFORMS: dict[str, Entry] = {  # each factory is a bsync.platforms.base.Platform class
    "calcom": Entry("calcom", "platform", "calcom", "Cal.com", "bsync.platforms.calcom:CalcomPlatform",
                    config="bsync.config:CalcomConfig"),
    "sesami": Entry("sesami", "platform", "server", "Sesami", "bsync.platforms.sesami:SesamiPlatform",
                    pullable=False),  # webhook-only; its secret is [server] sesami_secret
}


def _import(dotted: str) -> Any:
    """``"module:attr.attr"``, imported now."""
    module, _, path = dotted.partition(":")
    obj: Any = importlib.import_module(module)
    for attr in path.split("."):
        obj = getattr(obj, attr)
    return obj


def load(entry: Entry) -> Any:
    """The class ``entry`` names, imported now (for ``Cls.from_settings``, ``Cls``): for what
    it says before any config exists (its ``check_name`` for doctor's list of checks)."""
    factory = _import(entry.factory)
    return getattr(factory, "__self__", factory)  # a classmethod's class; a class or function itself


def build(entry: Entry, settings: Any) -> Any:
    """The configured instance for ``entry`` (its section must be present in ``settings``)."""
    return _import(entry.factory)(settings)


def config_model(entry: Entry) -> Any:
    """The pydantic model of ``entry``'s section, or None when it is configured in one of
    bsync's own sections (see the rule above on what its module may import)."""
    return _import(entry.config) if entry.config else None


def credentials(entry: Entry) -> Any:
    """The calendar's :class:`~bsync.calendars.base.StoredCredentials`, or None when its
    sign-in cannot lapse by itself.  Light to import: ``bsync status`` reads it."""
    return _import(entry.credentials) if entry.credentials else None


def entries() -> tuple[Entry, ...]:
    """Every entry: the ledger, the calendars, the platforms, in that order (config's and
    doctor's order)."""
    return (LEDGER, *CALENDARS.values(), *PLATFORMS.values())


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
    one reconcile compares with the ledger, availability asks for busy time, and whose item
    ids the ledger records (``[notion.properties] calendar_event_id``)."""
    for pair in pairs:
        parsed = parse_calendar_pair(pair)
        if parsed is not None:
            return parsed.calendar
    return next(iter(CALENDARS))
