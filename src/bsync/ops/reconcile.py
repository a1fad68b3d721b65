"""``bsync reconcile``: cross-check the ledger (Notion), each calendar ``[sync] pairs`` names
(Google Calendar, CalDAV, or both), the platform bookings and the state DB, and report drift
(each finding with ids and a one-line explanation; with two calendars, the ids name which).

Syncs are incremental, so some drift is invisible to them: a page trashed in Notion, an
event changed while its change notification was lost, a mapping row left behind, two
bookings for one groomer at the same time.  Reconcile reads everything and compares.

:func:`find_drift` is pure, and knows the systems only by their registry names and
labels (:class:`Sides`), never by a provider's name.  ``--fix`` repairs what is safe
through the same planner and applier as ``sync`` (a full two-way read; the platform pair; dropping mapping rows that
point at nothing), so ``--fix --plan`` shows the plan first.  Orphan events (their
booking is gone and no mapping row remembers the pair, e.g. after the state DB was lost)
are invisible to the sync planner, which never removes an event it can't tie to a
deletion; :func:`orphan_plan` plans their removal (cancel or delete per ``[sync]
delete_policy``) and the sync applier carries it out, journaled like any sync write.
It never touches double bookings and never deletes a Notion page.

Every ``reconcile`` that reads the remotes is recorded in ``runs`` (not ``--fix --plan``):
its exit code and the findings by kind, which ``bsync status`` and its metrics show.
"""

from __future__ import annotations

from collections import defaultdict
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping

from bsync import registry
from bsync.core.apply import ApplyContext, apply_plan
from bsync.core.runs import Summary
from bsync.config import Settings
from bsync.core.model import Booking, Status, booking_common
from bsync.core.plan import Action, Plan
from bsync.calendars.base import CalendarBackend
from bsync.core.records import Link, TargetItem, TargetTerms
from bsync.ledger.base import BookingLedger
from bsync.core.pipeline import PlatformStep, calendar_pairs, run_pipeline
from bsync.platforms.pairs import PLATFORM_LINKS
from bsync.core.store import Store
from bsync.core.runs import PairResult, command_run, open_store
from bsync.core.timeutil import now_utc

KINDS = {
    "missing_event": "scheduled booking with no calendar event",
    "event_differs": "calendar event with other times or title than its booking",
    "stale_block": "cancelled booking whose event still blocks time",
    "orphan_event": "calendar event of a booking that is gone",
    "platform_missing": f"platform booking missing from {registry.LEDGER.label}",
    "platform_differs": f"platform booking with other times or status than its {registry.LEDGER.label} page",
    "double_booking": "overlapping scheduled bookings for the same staff member",
    "dangling_link": "mapping row pointing at nothing",
    "stuck_journal": "write left unfinished, failed or dead",
    "manual_block": "calendar event bsync doesn't manage (listed, not drift)",
}
FIXABLE = frozenset({"missing_event", "event_differs", "stale_block", "orphan_event", "platform_missing",
                     "platform_differs", "dangling_link"})
INFORMATIONAL = frozenset({"manual_block"})


@dataclass(frozen=True)
class Sides:
    """The systems reconcile compares, by their registry names: the ledger's name (the prefix
    of its booking keys) and label, the calendar's name (the key of its event id in
    ``Booking.target_ids``) and label, and the link tables of the calendar and the platforms.

    Passed in rather than written into the comparisons, so a second calendar or another
    ledger is a registry entry, not an edit here.
    """

    ledger: str
    ledger_label: str
    ledger_section: str
    calendar: str
    calendar_label: str
    link_pair: str
    platform_links: str

    @classmethod
    def of(cls, calendar: str | None = None) -> "Sides":
        """The ledger against ``calendar`` (default: the first registered, the only one today)."""
        name = calendar or next(iter(registry.CALENDARS))
        return cls(registry.LEDGER.name, registry.LEDGER.label, registry.LEDGER.section, name,
                   registry.CALENDARS[name].label, registry.link_pair(name), PLATFORM_LINKS)

    @classmethod
    def configured(cls, settings: Settings) -> "Sides":
        """The ledger against the calendar ``[sync] pairs`` syncs with (the first it names)."""
        return cls.of(registry.synced_calendar(settings.sync.pairs))

    @classmethod
    def each_configured(cls, settings: Settings) -> list["Sides"]:
        """The ledger against every calendar ``[sync] pairs`` names, the first first (Google
        and CalDAV both, for one business with two calendars); the synced calendar alone when
        the pairs name none."""
        named = [parsed.calendar for pair in settings.sync.pairs
                 if (parsed := registry.parse_calendar_pair(pair)) is not None]
        return [cls.of(name) for name in dict.fromkeys(named)] or [cls.configured(settings)]


@dataclass(frozen=True)
class Drift:
    kind: str
    ids: Mapping[str, str]
    explanation: str

    @property
    def fixable(self) -> bool:
        return self.kind in FIXABLE

    def as_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "ids": dict(self.ids), "explanation": self.explanation, "fixable": self.fixable}


@dataclass
class Report:
    drift: list[Drift] = field(default_factory=list)
    checked: dict[str, int] = field(default_factory=dict)
    failures: list[dict[str, str]] = field(default_factory=list)  # pages that aren't bookings

    @property
    def problems(self) -> list[Drift]:
        return [d for d in self.drift if d.kind not in INFORMATIONAL]

    @property
    def exit_code(self) -> int:
        return 1 if self.problems else 0

    @property
    def counts(self) -> dict[str, int]:
        """Findings per kind (only the kinds found)."""
        counts: dict[str, int] = defaultdict(int)
        for d in self.drift:
            counts[d.kind] += 1
        return dict(counts)

    def as_json(self) -> dict[str, Any]:
        return {"clean": not self.problems, "checked": self.checked, "counts": self.counts,
                "drift": [d.as_json() for d in self.drift], "failures": self.failures}


def _when(common: Mapping[str, Any]) -> tuple[Any, Any]:
    return common.get("start"), common.get("end")


def _ended(common: Mapping[str, Any], now_value: str, today: str) -> bool:
    end = common.get("end") or ""
    return end <= (today if end.startswith("date:") else now_value)


def _describe(value: Any, tz: Any = None) -> str:
    """A common-field value for people: instants in local time, dates as dates."""
    if value is None:
        return "∅"
    text = str(value)
    if tz is not None and len(text) >= 19 and text[10:11] == "T":
        try:
            return datetime.fromisoformat(text).astimezone(tz).strftime("%a %d %b %H:%M")
        except ValueError:
            return text
    return text.removeprefix("date:")


def find_drift(*, bookings: Mapping[str, Booking], events: Mapping[str, TargetItem], links: Mapping[str, Link],
               platform_bookings: Iterable[Booking], platform_links: Mapping[str, Link],
               journal: Iterable[Mapping[str, Any]], now: datetime, bad_pages: Iterable[str] = (),
               event_id_for: Any = None, tz: Any = timezone.utc, sides: Sides | None = None) -> list[Drift]:
    """Every disagreement between the systems, for bookings and events not yet over.

    ``tz`` is the business timezone: events without a booking are described in it.
    ``event_id_for`` is the calendar's deterministic id for a booking key (its
    ``target_id_for``); ``sides`` names the ledger and the calendar (default: :meth:`Sides.of`).
    """
    sides = sides or Sides.of()
    return [*calendar_drift(bookings=bookings, events=events, links=links, now=now, bad_pages=bad_pages,
                            event_id_for=event_id_for, tz=tz, sides=sides),
            *ledger_drift(bookings=bookings, platform_bookings=platform_bookings, platform_links=platform_links,
                          journal=journal, now=now, bad_pages=bad_pages, sides=sides)]


def calendar_drift(*, bookings: Mapping[str, Booking], events: Mapping[str, TargetItem], links: Mapping[str, Link],
                   now: datetime, bad_pages: Iterable[str] = (), event_id_for: Any = None, tz: Any = timezone.utc,
                   sides: Sides) -> list[Drift]:
    """The part of :func:`find_drift` that concerns one calendar: its events against the
    bookings, and its mapping rows.  Reconcile asks it for each calendar it compares, and
    :func:`ledger_drift` once for the rest."""
    bad = _bad_keys(bad_pages, sides)
    return [*_booking_drift(bookings, events, links, now, event_id_for, sides),
            *_event_drift(events, bookings, links, bad, now, tz, sides),
            *_dangling_links(sides.link_pair, links, bookings, events, bad)]


def ledger_drift(*, bookings: Mapping[str, Booking], platform_bookings: Iterable[Booking],
                 platform_links: Mapping[str, Link], journal: Iterable[Mapping[str, Any]], now: datetime,
                 bad_pages: Iterable[str] = (), sides: Sides) -> list[Drift]:
    """The part of :func:`find_drift` that concerns no calendar: platform bookings against the
    ledger, double bookings, the platforms' mapping rows and stuck writes (found once, however
    many calendars are compared)."""
    bad = _bad_keys(bad_pages, sides)
    platform_bookings = sorted(platform_bookings, key=lambda b: b.key)
    return [*_platform_drift(platform_bookings, platform_links, bookings, now, sides),
            *_double_bookings(bookings.values(), now),
            *_dangling_links(sides.platform_links, platform_links, {b.key: b for b in platform_bookings}, bookings,
                             bad),
            *_stuck_journal(journal)]


def _of_calendar(drift: Drift, calendar: str) -> Drift:
    """The finding with the calendar it concerns among its ids, when several are compared."""
    return Drift(drift.kind, {**drift.ids, "calendar": calendar}, drift.explanation)


def _bad_keys(bad_pages: Iterable[str], sides: Sides) -> set[str]:
    """Ledger keys of the pages that could not be read; they may come with or without the prefix."""
    prefix = f"{sides.ledger}:"
    return {p if p.startswith(prefix) else prefix + p for p in bad_pages}


def _booking_drift(bookings: Mapping[str, Booking], events: Mapping[str, TargetItem], links: Mapping[str, Link],
                   now: datetime, event_id_for: Any, sides: Sides) -> list[Drift]:
    """Each booking not yet over against its event: missing, differing, or still blocking
    time after the booking was cancelled."""
    out: list[Drift] = []
    now_value = now.isoformat()
    for key, booking in sorted(bookings.items()):
        common = booking_common(booking)
        tz_today = "date:" + now.astimezone(booking.tz).date().isoformat()
        if _ended(common, now_value, tz_today):
            continue
        link = links.get(key)
        event_id = link.target_key if link else booking.target_ids.get(sides.calendar) or (
            event_id_for(key) if event_id_for else None)
        event = events.get(event_id) if event_id else None
        ids = {"booking": key, **({"event": event_id} if event_id else {})}
        if booking.status is Status.SCHEDULED:
            if event is None:
                out.append(Drift("missing_event", ids, f"{booking.title!r} has no event in the calendar"))
            elif event.cancelled:
                out.append(Drift("missing_event", ids, f"{booking.title!r} is scheduled but its event is cancelled"))
            else:
                diffs = [name for name in ("title", "start", "end") if event.common.get(name) != common[name]]
                if diffs:
                    detail = ", ".join(f"{name} {_describe(event.common.get(name), booking.tz)} ≠ "
                                       f"{_describe(common[name], booking.tz)}" for name in diffs)
                    out.append(Drift("event_differs", ids, f"{booking.title!r}: event {detail} (booking)"))
        elif booking.status is Status.CANCELLED and event is not None and not event.cancelled:
            out.append(Drift("stale_block", ids, f"{booking.title!r} is cancelled but its event still blocks "
                                                 f"{_describe(event.common.get('start'), booking.tz)}"))
    return out


def _event_drift(events: Mapping[str, TargetItem], bookings: Mapping[str, Booking], links: Mapping[str, Link],
                 bad: set[str], now: datetime, tz: Any, sides: Sides) -> list[Drift]:
    """Each live event not yet over without its booking: an orphan when it carries a ledger
    key whose booking is gone (not merely unreadable), a manual block when it carries none."""
    out: list[Drift] = []
    now_value = now.isoformat()
    today = "date:" + now.astimezone(tz).date().isoformat()
    prefix = f"{sides.ledger}:"
    linked_events = {link.target_key for link in links.values()}
    for event_id, event in sorted(events.items()):
        if event.cancelled or (event.recurring and not event.key) or _ended(event.common, now_value, today):
            continue
        if event.key:
            if event.key not in bookings and event.key not in bad and event.key.startswith(prefix):
                out.append(Drift("orphan_event", {"event": event_id, "booking": event.key},
                                 f"event {event.common.get('title')!r} belongs to booking {event.key}, "
                                 f"which is no longer in {sides.ledger_label}"))
        elif event_id not in linked_events:
            out.append(Drift("manual_block", {"event": event_id},
                             f"{event.common.get('title')!r} at {_describe(event.common.get('start'), tz)} "
                             f"(made in the calendar; not imported)"))
    return out


def _platform_drift(platform_bookings: Iterable[Booking], platform_links: Mapping[str, Link],
                    bookings: Mapping[str, Booking], now: datetime, sides: Sides) -> list[Drift]:
    """Each scheduled platform booking not yet over against its ledger booking: missing, or
    with other times or cancellation."""
    out: list[Drift] = []
    for booking in platform_bookings:
        if booking.status is not Status.SCHEDULED or booking.end <= now:
            continue
        link = platform_links.get(booking.key)
        page = bookings.get(link.target_key) if link else None
        ids = {"platform": booking.key, **({"booking": link.target_key} if link else {})}
        if page is None:
            out.append(Drift("platform_missing", ids, f"{booking.title!r} from {booking.key.split(':')[0]} has no "
                                                      f"{sides.ledger_label} page"))
            continue
        diffs = []
        if (page.start, page.end) != (booking.start, booking.end):
            diffs.append(f"times {page.start:%Y-%m-%d %H:%M}Z ≠ {booking.start:%Y-%m-%d %H:%M}Z")
        if (page.status is Status.CANCELLED) != (booking.status is Status.CANCELLED):
            diffs.append(f"status {page.status.value} ≠ {booking.status.value}")
        if diffs:
            out.append(Drift("platform_differs", ids, f"{booking.title!r}: {sides.ledger_label} " + ", ".join(diffs) +
                             f" ({booking.key.split(':')[0]})"))
    return out


def _dangling_links(pair: str, pair_links: Mapping[str, Link], sources: Mapping[str, Any],
                    present: Mapping[str, Any], bad: set[str]) -> list[Drift]:
    """Mapping rows of ``pair`` whose source and target are both gone (a cancelled event counts
    as gone); a source that could not be read is not gone."""
    out: list[Drift] = []
    for key in sorted(pair_links):  # keys first: links are only built for the sources gone
        if key in sources or key in bad:
            continue
        link = pair_links[key]
        if link.tombstone:
            continue
        target = present.get(link.target_key)
        target_gone = target is None or (isinstance(target, TargetItem) and target.cancelled)
        if target_gone:
            out.append(Drift("dangling_link", {"pair": pair, "source": key, "target": link.target_key},
                             f"{pair} maps {key} to {link.target_key}; neither exists any more"))
    return out


def _stuck_journal(journal: Iterable[Mapping[str, Any]]) -> list[Drift]:
    """Journal entries left unfinished, failed or dead, with what will try them again."""
    out: list[Drift] = []
    for entry in journal:
        hint = "`bsync retry` tries it again" if entry["state"] == "dead" else "the next sync tries it again"
        out.append(Drift("stuck_journal", {"journal": str(entry["id"]), "key": entry["key"]},
                         f"{entry['action']} ({entry.get('pair') or ''}) is {entry['state']}"
                         f"{': ' + entry['error'] if entry.get('error') else ''}; {hint}"))
    return out


def _double_bookings(bookings: Iterable[Booking], now: datetime) -> list[Drift]:
    """Overlapping scheduled bookings per staff member (the business as a whole when unset)."""
    by_staff: dict[str, list[Booking]] = defaultdict(list)
    for b in bookings:
        if b.status is Status.SCHEDULED and b.end > now:
            by_staff[b.staff or ""].append(b)
    out = []
    for staff, items in sorted(by_staff.items()):
        items.sort(key=lambda b: (b.start, b.key))
        active: list[Booking] = []
        for booking in items:
            active = [a for a in active if a.end > booking.start]
            for other in active:
                who = staff or "the business (no staff set)"
                out.append(Drift("double_booking", {"booking": other.key, "other": booking.key},
                                 f"{who}: {other.title!r} and {booking.title!r} overlap at "
                                 f"{max(other.start, booking.start).astimezone(booking.tz):%a %d %b %H:%M}"))
            active.append(booking)
    return out


ORPHAN_PAIR = "reconcile orphan events"


def orphan_plan(report: Report, events: Mapping[str, TargetItem], *, delete_policy: str,
                max_delete: Any = lambda managed: managed * 0.5, sides: Sides | None = None,
                terms: TargetTerms = TargetTerms()) -> Plan:
    """Remove each orphan event (cancel or delete, per ``delete_policy``); pure.

    The same safety halt as a sync: if the ledger returned no booking at all (a wrong
    database id, an integration that lost access) or more events would go than
    ``max_delete`` allows, nothing is removed: those events are more likely the business's
    bookings than leftovers.  ``terms`` are the calendar's words for the status change.
    """
    sides = sides or Sides.of()
    verb = "delete" if delete_policy == "delete" else "cancel"
    actions = []
    for drift in report.drift:
        if drift.kind != "orphan_event":
            continue
        event = events.get(drift.ids["event"])
        actions.append(Action("delete", drift.ids["booking"], drift.ids["event"],
                              changes={terms.status: (terms.confirmed, terms.cancelled)}, target_write="remove",
                              tombstone=True, label=event.label if event else "",
                              merged=dict(event.common) if event else None,
                              reason=f"its booking is no longer in {sides.ledger_label}; {verb} the event"))
    plan = Plan(ORPHAN_PAIR, actions)
    managed = sum(1 for e in events.values() if e.key and not e.cancelled)
    if actions and report.checked.get("bookings", 0) == 0 and not report.failures:
        plan.halt = (f"{sides.ledger_label} returned no bookings; refusing to remove {len(actions)} event(s) of "
                     f"bookings it may still have (check [{sides.ledger_section}] database_id and the "
                     f"integration's access)")
    elif len(actions) > 1 and len(actions) > max_delete(managed):
        plan.halt = (f"removing {len(actions)} of {managed} bsync events is more than max_delete allows "
                     f"({max_delete(managed):g}); check that those bookings are really gone, then remove "
                     f"the events in {sides.calendar_label} by hand or raise [sync] max_delete")
    return plan


@dataclass
class ReconcileResult:
    report: Report
    fix_plans: list[Plan] = field(default_factory=list)
    fixed: dict[str, Any] = field(default_factory=dict)
    after: Report | None = None

    @property
    def final(self) -> Report:
        return self.after or self.report

    def run_summary(self) -> dict[str, Any]:
        """What the ``runs`` row keeps: the findings by kind (what is left after ``--fix``)."""
        out: dict[str, Any] = {"clean": not self.final.problems, "counts": self.final.counts,
                               "checked": self.final.checked}
        if self.after is not None:
            out["found"] = self.report.counts
            out["fixed"] = self.fixed
        return out


Events = dict[str, dict[str, TargetItem]]
"""The events read, per calendar (registry name) and event id."""


def read_all(settings: Settings, store: Store) -> tuple[Report, Events]:
    """Read every system in full and compare (writes nothing); also the events read, per calendar.

    Every calendar ``[sync] pairs`` names is compared with the ledger (:meth:`Sides.each_configured`).
    With more than one, each calendar's findings carry its name in their ids (``calendar``)
    and ``checked`` counts each one's events as ``events.<name>`` besides the total.
    """
    every = Sides.each_configured(settings)
    settings.require(registry.LEDGER.section)
    for sides in every:
        settings.require(registry.CALENDARS[sides.calendar].section)
    source: BookingLedger = registry.build(registry.LEDGER, settings)
    try:
        read = source.read_bookings(None)
    finally:
        source.close()
    events: Events = {}
    id_for: dict[str, Any] = {}
    for sides in every:
        target: CalendarBackend = registry.build(registry.CALENDARS[sides.calendar], settings)
        try:
            events[sides.calendar] = target.read_changes(None).items
            id_for[sides.calendar] = target.target_id_for
        finally:
            target.close()
    bookings = {b.key: b for b in read.bookings}
    platform_bookings = [b for platform in registry.PLATFORMS for b in store.load_bookings(platform)]
    journal = store.journal_entries(("intent", "failed", "dead"), limit=1000, sync_only=True)
    now, bad = now_utc(), [f.id for f in read.failures]

    checked = {"bookings": len(bookings), "events": sum(len(items) for items in events.values()),
               "platform_bookings": len(platform_bookings)}
    drift: list[Drift] = []
    for sides in every:
        found = calendar_drift(bookings=bookings, events=events[sides.calendar], links=store.link_map(sides.link_pair),
                               now=now, bad_pages=bad, event_id_for=id_for[sides.calendar], tz=settings.tz,
                               sides=sides)
        drift += [_of_calendar(d, sides.calendar) for d in found] if len(every) > 1 else found
    if len(every) > 1:
        checked.update({f"events.{name}": len(items) for name, items in events.items()})
    drift += ledger_drift(bookings=bookings, platform_bookings=platform_bookings,
                          platform_links=store.link_map(every[0].platform_links), journal=journal, now=now,
                          bad_pages=bad, sides=every[0])
    report = Report(drift, checked, [{"id": f.id, "reason": f.reason} for f in read.failures])
    return report, events


def check(settings: Settings, store: Store) -> Report:
    """Read every system in full and compare (writes nothing)."""
    return read_all(settings, store)[0]


def remove_orphans(settings: Settings, run_id: int | None) -> dict[str, PairResult]:
    """Cancel or delete the orphan events of each calendar compared, under the run lock, as
    the sync applier does; keyed by calendar name.

    The systems are read again under the lock: between the first check and now a sync
    may have run, and an event is only removed if its booking is still gone.
    """
    results: dict[str, PairResult] = {}
    with ExitStack() as stack:
        store = open_store(stack, settings, False)
        report, events = read_all(settings, store)
        for sides in _with_orphans(report, settings):
            target: CalendarBackend = registry.build(registry.CALENDARS[sides.calendar], settings)
            stack.callback(target.close)
            plan = orphan_plan(of_calendar(report, sides.calendar, settings), events[sides.calendar],
                               delete_policy=settings.sync.delete_policy,
                               max_delete=settings.sync.max_delete_allowed, sides=sides, terms=target.terms)
            if plan.halt:
                results[sides.calendar] = PairResult(plan, Summary(plan.pair, total=len(plan.actions), halted=plan.halt))
                continue
            ctx = ApplyContext(store, sides.link_pair, run_id, None, target, {}, events[sides.calendar],
                               settings.timezone, dead_after=settings.sync.dead_after)
            summary = apply_plan(plan, ctx)
            summary.requests = target.requests
            results[sides.calendar] = PairResult(plan, summary)
    return results


def of_calendar(report: Report, calendar: str, settings: Settings) -> Report:
    """The report as far as one calendar is concerned: its own findings (those of no calendar
    when only one is compared, as their ids then name none), with the same counts and failures."""
    first = Sides.each_configured(settings)[0].calendar
    drift = [d for d in report.drift if d.ids.get("calendar", first) == calendar]
    return Report(drift, report.checked, report.failures)


def _with_orphans(report: Report, settings: Settings) -> list[Sides]:
    """The calendars whose orphan events to plan for: the one compared, or of several those
    with orphan findings."""
    every = Sides.each_configured(settings)
    if len(every) == 1:
        return every
    return [sides for sides in every
            if any(d.kind == "orphan_event" for d in of_calendar(report, sides.calendar, settings).drift)]


def _fixed_key(what: str, calendar: str, settings: Settings) -> str:
    """``result.fixed``'s key for a calendar's repair: ``sync``, or ``sync.caldav`` when
    several calendars are compared."""
    return what if len(Sides.each_configured(settings)) == 1 else f"{what}.{calendar}"


def run_reconcile(settings: Settings, *, fix: bool = False, plan_only: bool = False) -> ReconcileResult:
    """Report drift; with ``fix``, repair the safe kinds and check again.

    Recorded as a ``reconcile`` run (except ``--fix --plan``, which writes nothing).
    """
    if plan_only:
        return _reconcile(settings, fix=fix, plan_only=True, run_id=None)
    with command_run(settings.state_path, "reconcile") as run:
        result = _reconcile(settings, fix=fix, plan_only=False, run_id=run.run_id)
        run.finish(result.final.exit_code, result.run_summary())
    return result


def _reading_store(settings: Settings, plan_only: bool) -> Store:
    """The state DB to compare against: the file itself (the run is recorded in it anyway),
    or for ``--fix --plan``, which writes nothing anywhere, an in-memory copy.

    Why not always the copy: at 100,000 bookings the copy alone holds the whole DB in memory.
    """
    return Store.open_readonly(settings.state_path) if plan_only else Store.open(settings.state_path)


def _reconcile(settings: Settings, *, fix: bool, plan_only: bool, run_id: int | None) -> ReconcileResult:
    with _reading_store(settings, plan_only) as store:
        report, events = read_all(settings, store)
    result = ReconcileResult(report)
    if not fix:
        return result
    kinds = {d.kind for d in report.drift}
    platform_drift = bool(kinds & {"platform_missing", "platform_differs"})
    sync_drift = bool(kinds & {"missing_event", "event_differs", "stale_block", "orphan_event", "dangling_link"})
    if platform_drift or sync_drift:
        # The sync's own steps, reading everything: the platform step if platform bookings
        # drifted, the calendar pairs (or, if [sync] pairs has none, each calendar's push) if
        # events did; no inbox, no notices.
        pairs = calendar_pairs(settings) or [registry.push_pair(name) for name in registry.CALENDARS]
        repair = run_pipeline(settings, pairs=pairs if sync_drift else (), plan_only=plan_only, full=True,
                              inbox=False, platforms=platform_drift, notify=False)
        platform = repair.step(PlatformStep)
        if platform is not None and platform.result is not None:
            result.fix_plans.append(platform.result.plan)
            result.fixed["platforms"] = platform.as_json()
        for synced in repair.calendars:
            result.fix_plans.append(synced.result.plan)
            result.fixed[_fixed_key("sync", synced.calendar, settings)] = synced.as_json()
    if "orphan_event" in kinds:
        if plan_only:
            for sides in _with_orphans(report, settings):
                result.fix_plans.append(orphan_plan(of_calendar(report, sides.calendar, settings),
                                                    events[sides.calendar], delete_policy=settings.sync.delete_policy,
                                                    max_delete=settings.sync.max_delete_allowed, sides=sides))
        else:
            for calendar, removed in remove_orphans(settings, run_id).items():
                result.fix_plans.append(removed.plan)
                result.fixed[_fixed_key("orphans", calendar, settings)] = (
                    removed.summary.as_json() if removed.summary else None)
    dangling = [d for d in report.drift if d.kind == "dangling_link"]
    if dangling and not plan_only:
        with ExitStack() as stack:
            store = open_store(stack, settings, False)
            removed_links = sum(store.delete_link(d.ids["pair"], d.ids["source"]) for d in dangling)
        result.fixed["links_removed"] = removed_links
    if plan_only:
        return result
    with _reading_store(settings, plan_only) as store:
        result.after = check(settings, store)
    return result
