"""Running a sync between the ledger and one calendar: read both sides (incrementally when
possible), plan, and apply under the lock.

``<ledger>-to-<calendar>`` (``notion-to-gcal``) makes the calendar follow the ledger;
``<calendar>-to-<ledger>`` makes the ledger follow the calendar (and imports events made
there); running both in one invocation is the two-way sync, merged field by field against
the last synced snapshot.  Which ledger and calendar, and the pair, link, cursor and journal
names, all come from :mod:`bsync.registry` and the sides' ``name``/``scope``.

Reads are incremental: ledger records edited since the last run (starting
``ledger.overlap`` early: Notion rounds ``last_edited_time`` down to the minute, so unchanged
records are recognised by their content hash), calendar items changed since the stored
cursor (one the calendar refuses falls back to a full read).  Ledger queries may not return
deleted records, so their absence is only visible in a full read: one happens on
``--full``, on the first run, and whenever the last one is older than ``[sync] full_every``.
Between full reads, each run also reads the bookings starting within ``[sync]
trash_window`` ahead: a linked upcoming booking missing from both reads was deleted, and
its slot is freed now.  Bookings that ended before ``[sync] history`` ago are left alone.
Cursors are saved only after the run's writes are committed.
"""

from __future__ import annotations

import json
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import chain
from typing import Any, Callable

from bsync import registry
from bsync.calendars.base import CalendarBackend
from bsync.config import Settings
from bsync.core.apply import ApplyContext, apply_plan, import_key, imported_id
from bsync.core.model import Booking, apply_common, booking_common, parse_when
from bsync.core.plan import Action, Plan, plan_sync
from bsync.core.records import RecordFailure, SourceItem, TargetItem, booking_label
from bsync.core.runs import PairResult, Summary, open_store, recorded_run
from bsync.core.store import Store
from bsync.core.timeutil import now_utc, parse_instant, to_utc
from bsync.errors import UsageError
from bsync.ledger.base import BookingLedger

CALENDAR = next(iter(registry.CALENDARS))  # the one calendar the config can name today
IN_PROGRESS = timedelta(days=1)  # the trash window reaches back this far: a booking under way counts
TRASH_CONFIRM_MAX = 5  # up to this many missing records are confirmed deleted with one GET each


def source_item(booking: Booking, calendar: str) -> SourceItem:
    """The planner's view of a booking paired with ``calendar``."""
    return SourceItem(key=booking.key, common=booking_common(booking), hash=booking.content_hash(),
                      recorded_target_id=booking.target_ids.get(calendar),
                      updated=booking.updated_at.isoformat(timespec="microseconds") if booking.updated_at else None,
                      label=booking_label(booking))


def pair_name(pairs: list[str]) -> str:
    """The run's pair: the one given, or ``notion<->gcal`` for both directions."""
    if len(pairs) == 1:
        return pairs[0]
    parsed = registry.parse_calendar_pair(pairs[0])
    return f"{registry.LEDGER.name}<->{parsed.calendar if parsed else CALENDAR}"


def _parse_pairs(pairs: list[str]) -> tuple[str, frozenset[str]]:
    """The calendar the pairs share, and their directions; UsageError for anything else."""
    parsed = [registry.parse_calendar_pair(pair) for pair in pairs]
    known = ", ".join(registry.calendar_pairs())
    for pair, found in zip(pairs, parsed):
        if found is None:
            raise UsageError(f"unknown pair {pair!r}; known pairs: {known}")
    calendars = {found.calendar for found in parsed if found}
    if not calendars:
        raise UsageError(f"no pair to sync; known pairs: {known}")
    if len(calendars) > 1:
        raise UsageError(f"pairs {', '.join(pairs)} name different calendars; sync one calendar at a time")
    return calendars.pop(), frozenset(found.direction for found in parsed if found)


@dataclass
class Cursors:
    """Where incremental reads resume, and when the last full ledger read happened."""

    ledger_edited: str | None
    ledger_full: str | None
    calendar: str | None
    ledger_cache: dict[str, Any] | None

    @classmethod
    def load(cls, store: Store, ledger: BookingLedger, calendar: CalendarBackend) -> "Cursors":
        scope = ledger.scope
        cache = store.cursor(ledger.name, f"{scope}:schema")
        return cls(store.cursor(ledger.name, f"{scope}:edited"), store.cursor(ledger.name, f"{scope}:full"),
                   store.cursor(calendar.name, calendar.scope), json.loads(cache) if cache else None)


class SyncRun:
    """One sync invocation: reads, plans and (unless planning) applies."""

    def __init__(self, settings: Settings, pairs: list[str], store: Store, *, full: bool,
                 since: datetime | None = None) -> None:
        calendar, self.directions = _parse_pairs(pairs)
        self.settings = settings
        self.pairs = pairs
        self.store = store
        self.ledger: BookingLedger = registry.build(registry.LEDGER, settings)
        self.calendar: CalendarBackend = registry.build(registry.CALENDARS[calendar], settings)
        self.link_pair = registry.link_pair(calendar)
        self.key_prefix = f"{self.ledger.name}:"  # booking keys are "<ledger>:<record id>"
        self.cursors = Cursors.load(store, self.ledger, self.calendar)
        self.started = now_utc()
        self.since = since
        self.source_full = full or (since is None and self._full_read_due())
        if not full:
            self.ledger.use_cache(self.cursors.ledger_cache)
        self.calendar_cursor = None if full else self.cursors.calendar
        self.bookings: dict[str, Booking] = {}
        self.deleted_sources: set[str] = set()
        self.targets: dict[str, TargetItem] = {}
        self.failures: list[RecordFailure] = []
        self.drafts: list[RecordFailure] = []  # records with no date yet (ids are booking keys)
        self.next_calendar_cursor: str | None = None
        self.target_complete = True
        history = settings.sync.history_delta
        self.history_cutoff = None if history is None else self.started - history

    def _full_read_due(self) -> bool:
        last_full = self.cursors.ledger_full
        if not self.cursors.ledger_edited or not last_full:
            return True
        return self.started - parse_instant(last_full) >= self.settings.sync.full_every_delta

    @property
    def requests(self) -> int:
        return self.ledger.requests + self.calendar.requests

    # -- reading ------------------------------------------------------------------------
    def read(self) -> None:
        since = None
        if self.since is not None and not self.source_full:
            since = self.since
        elif not self.source_full:
            since = parse_instant(self.cursors.ledger_edited) - self.ledger.overlap
        read = self.ledger.read_bookings(since)
        self.bookings = {b.key: b for b in read.bookings}
        self.failures = list(read.failures)
        self.drafts = list(read.drafts)
        changes = self.calendar.read_changes(self.calendar_cursor)
        self.targets, self.next_calendar_cursor, self.target_complete = changes.items, changes.cursor, changes.complete
        self._read_occurrences()
        self._drop_past_unmanaged_events()
        window = self._read_trash_window()
        self._reload_failed()
        self._carry_record_issues()
        if window is not None:
            self._find_trashed(*window)

    def _trash_window(self) -> tuple[datetime, datetime]:
        """The start range read for trashed pages: from a day back (under way) to the window's end,
        on whole minutes (what a date filter surely compares exactly)."""
        now = self.started.replace(second=0, microsecond=0)
        return now - IN_PROGRESS, now + self.settings.sync.trash_window_delta

    def _read_trash_window(self) -> tuple[datetime, datetime] | None:
        """An incremental pushing run also reads the bookings starting in the trash window
        (one query, 100 pages a request); returns the window read, or None.

        Ledger queries (Notion's) never return trashed pages, so an incremental read can't see
        a deletion, and deleting the row is how Notion users cancel: :meth:`_find_trashed`
        then compares this read with the links.
        """
        if self.source_full or "push" not in self.directions or not self.settings.sync.trash_window_delta:
            return None
        lo, hi = self._trash_window()
        read = self.ledger.read_bookings_starting(lo, hi)
        for booking in read.bookings:
            self.bookings.setdefault(booking.key, booking)
        known_failures = {f.id for f in self.failures}
        self.failures += [f for f in read.failures if f.id not in known_failures]
        known_drafts = {d.id for d in self.drafts}
        self.drafts += [d for d in read.drafts if d.id not in known_drafts]
        return lo, hi

    def _find_trashed(self, lo: datetime, hi: datetime) -> None:
        """Linked bookings starting in the window that neither read returned are gone.

        Their start can't have moved out of the window unseen: that edit puts the page in
        the edited read.  Failing and draft pages (also those carried from earlier runs) are
        known and never taken for deleted.  Up to ``TRASH_CONFIRM_MAX`` missing pages are
        confirmed with a GET each (cheap, and exact whatever a date filter's edge cases);
        more are taken as trashed and the safety halt judges them, so a wrong window can't
        cancel a mass of events unasked.
        """
        missing = self._missing_upcoming(lo, hi)
        if len(missing) <= TRASH_CONFIRM_MAX:
            for key in missing:
                self._load_source(key)
        else:
            self.deleted_sources.update(missing)

    def _missing_upcoming(self, lo: datetime, hi: datetime) -> list[str]:
        """Linked live bookings starting in [lo, hi) by their snapshot that no read returned."""
        seen = set(self.bookings) | self.deleted_sources | {d.id for d in self.drafts} | {
            self._source_key(f.id) for f in self.failures}
        missing = []
        for key, link in self.store.link_map(self.link_pair).items():  # streamed, not all held at once
            snapshot = link.snapshot or {}
            if (link.tombstone or key in seen or not self._is_booking_key(key) or snapshot.get("cancelled")
                    or not snapshot.get("start")):
                continue
            if self._starts_within(snapshot["start"], lo, hi):
                missing.append(key)
        return sorted(missing)

    def _starts_within(self, start: str, lo: datetime, hi: datetime) -> bool:
        """Whether a snapshot start is surely inside the queried range: exact for a time, with a
        day's margin for an all-day date (Notion compares dates at a midnight of its choosing)."""
        instant, all_day = parse_when(start, self.settings.tz)
        if all_day:
            return lo + IN_PROGRESS <= instant < hi - IN_PROGRESS
        return lo <= instant < hi

    def _past_keys(self, links: dict) -> set[str]:
        """Bookings that ended before the history horizon: by what was read, else by the snapshot."""
        cutoff = self.history_cutoff
        if cutoff is None:
            return set()
        past = {key for key, booking in self.bookings.items() if booking.end < cutoff}
        for key, link in links.items():
            end = (link.snapshot or {}).get("end")
            if key not in self.bookings and end and parse_when(end, self.settings.tz)[0] < cutoff:
                past.add(key)
        return past

    def _carry_record_issues(self) -> None:
        """Failing records and drafts reported before and not re-read this run stay reported.

        An incremental read only sees pages edited since the last run, so without this a
        broken page would be reported once and then vanish from view (and the exit code
        would turn 0) while it is still broken.  A complete read sees every live page, so
        an issue it doesn't report again is gone (the page was fixed or trashed).
        """
        if self.source_full:
            return
        seen = set(self.bookings) | self.deleted_sources | {d.id for d in self.drafts} | {
            self._source_key(f.id) for f in self.failures}
        for key, row in self.store.record_issues(self.ledger.name).items():
            if key in seen:
                continue
            if row["kind"] == "draft":
                self.drafts.append(RecordFailure(key, row["reason"], row["title"] or ""))
            else:
                self.failures.append(RecordFailure(key.split(":", 1)[1], row["reason"], row["title"] or ""))

    def save_record_issues(self) -> None:
        """Remember this run's failing records and drafts; forget those now read valid or gone."""
        issues = [(self._source_key(f.id), "failure", f.title, f.reason) for f in self.failures]
        issues += [(d.id, "draft", d.title, d.reason) for d in self.drafts]
        self.store.save_record_issues(self.ledger.name, issues, cleared=set(self.bookings) | self.deleted_sources,
                                      clear_unlisted=self.source_full)

    def _start_of_today(self) -> datetime:
        return datetime.now(self.settings.tz).replace(hour=0, minute=0, second=0, microsecond=0)

    def _read_occurrences(self) -> None:
        """With ``[sync] import_recurring``, add each occurrence of every series from today to
        now + ``recurring_ahead``: a change read returns a series once, as its rules, and only
        when it changes, while its occurrences come into the window as time passes."""
        if not self.settings.sync.import_recurring or "pull" not in self.directions:
            return
        ahead = self.started + self.settings.sync.recurring_ahead_delta
        self.targets.update(self.calendar.read_occurrences(to_utc(self._start_of_today()), ahead))

    def _drop_past_unmanaged_events(self) -> None:
        """Events bsync doesn't manage that ended before today are history, not bookings.

        A recurring series stays whatever its first occurrence's date: the planner reports it
        as skipped (staff meetings and opening hours are rarely bookings), or imports its
        occurrences one by one, each judged by its own end.
        """
        today = self._start_of_today()
        by_date, by_instant = "date:" + today.date().isoformat(), to_utc(today).isoformat()
        linked = self.store.link_map(self.link_pair).target_keys()
        recorded = {b.target_ids.get(self.calendar.name) for b in self.bookings.values()}  # the planner judges those
        for event_id, item in list(self.targets.items()):
            if item.key is not None or event_id in linked or event_id in recorded:
                continue  # ours (an interrupted import may not carry its key yet)
            end = item.common.get("end") or ""
            if not item.series and end <= (by_date if end.startswith("date:") else by_instant):
                del self.targets[event_id]

    def _reload_failed(self) -> None:
        """Failed writes and conflicts are looked at again every run: load both sides of them."""
        keys = self.store.journal_keys("failed", self.link_pair) | self.store.conflict_keys(self.link_pair)
        for key in sorted(keys):
            event_id = imported_id(self.calendar.name, key)
            if event_id is not None:  # an import that failed: look at its event again
                if event_id not in self.targets and (item := self.calendar.fetch(event_id)) is not None:
                    self.targets[event_id] = item
                continue
            if self._is_booking_key(key) and key not in self.bookings:
                self._load_source(key)
            link = self.store.links_get(self.link_pair, key)
            if link is not None and link.target_key not in self.targets:
                item = self.calendar.fetch(link.target_key)
                if item is not None:
                    self.targets[item.id] = item

    def _is_booking_key(self, key: str) -> bool:
        """Whether a link or journal key names a ledger booking (not an import's event)."""
        return key.startswith(self.key_prefix)

    def _source_key(self, record_id: str) -> str:
        """A ledger failure's record id as a booking key (failures carry the bare id)."""
        return record_id if self._is_booking_key(record_id) else self.key_prefix + record_id

    def _load_source(self, key: str) -> None:
        booking, gone, failure = self.ledger.fetch(key)
        if booking is not None:
            self.bookings[key] = booking
            self.failures = [f for f in self.failures if self._source_key(f.id) != key]  # fixed since
        elif gone:
            self.deleted_sources.add(key)
        elif failure is not None and all(f.id != failure.id for f in self.failures):
            self.failures.append(failure)

    # -- planning -----------------------------------------------------------------------
    def plan(self) -> Plan:
        links = self.store.link_map(self.link_pair)
        fetched: set[str] = set()
        for _ in range(3):  # an incremental plan may ask for records it didn't see; load, plan again
            plan = self._plan_once(links)
            missing = plan.needs_source - set(self.bookings) - self.deleted_sources
            unseen = plan.needs_target - set(self.targets) - fetched
            if not missing and not unseen:
                break
            for key in sorted(missing):
                self._load_source(key)
            for event_id in sorted(unseen):
                fetched.add(event_id)
                if (item := self.calendar.fetch(event_id)) is not None:
                    self.targets[event_id] = item
        return self._skip_dead(plan)

    def _imported(self) -> set[str]:
        """Event ids an earlier run imported or began importing: a page recording one was made by
        bsync, even if the run died before linking it (or before the event got its key)."""
        states = ("intent", "failed", "dead", "done")
        keys = set().union(*(self.store.journal_keys(state, self.link_pair) for state in states))
        return {event_id for key in keys if (event_id := imported_id(self.calendar.name, key)) is not None}

    def _plan_once(self, links: dict) -> Plan:
        # A generator: each booking's item lives only while the planner looks at it.
        calendar = self.calendar
        sources = chain((source_item(b, calendar.name) for b in self.bookings.values()),
                        (SourceItem(key, {}, deleted=True) for key in sorted(self.deleted_sources)
                         if key not in self.bookings))

        def render(key: str, merged: dict[str, Any]) -> Any:
            booking = self.bookings.get(key)
            if booking is None:
                return None
            return calendar.project(apply_common(booking, merged))

        return plan_sync(pair_name(self.pairs), sources, links, self.targets, directions=self.directions,
                         render=render, target_hash=calendar.fields_hash,
                         target_id_for=calendar.target_id_for, source_complete=self.source_full,
                         target_complete=self.target_complete, conflict_policy=self.settings.sync.conflict,
                         import_unmanaged=self.settings.sync.import_unmanaged, failures=self.failures,
                         drafts=self.drafts,
                         max_delete=self.settings.sync.max_delete_allowed, source_label=self.ledger.label,
                         target_label=calendar.label, source_name=self.ledger.name, target_name=calendar.name,
                         terms=calendar.terms, target_id_setting=calendar.id_setting,
                         target_noun="events", importing=self._imported(),
                         import_recurring=self.settings.sync.import_recurring, past=self._past_keys(links),
                         records_target_ids=calendar.name == registry.synced_calendar(self.settings.sync.pairs))

    def _skip_dead(self, plan: Plan) -> Plan:
        dead = self.store.journal_keys("dead", self.link_pair)
        if not dead:
            return plan
        calendar = self.calendar.name

        def is_dead(action: Action) -> bool:
            return action.source_id in dead or (action.source_id is None and action.target_id is not None
                                                and import_key(calendar, action.target_id) in dead)

        plan.actions = [a if (not is_dead(a) or a.op == "skip") else
                        Action("skip", a.source_id, a.target_id, label=a.label,
                               reason="failed too often; `bsync retry` tries it again")
                        for a in plan.actions]
        return plan

    # -- applying -----------------------------------------------------------------------
    def apply(self, plan: Plan, run_id: int | None, on_action: Callable[[Action], None] | None) -> Summary:
        ctx = ApplyContext(self.store, self.link_pair, run_id, self.ledger, self.calendar, self.bookings, self.targets,
                           self.settings.timezone, dead_after=self.settings.sync.dead_after)
        summary = apply_plan(plan, ctx, on_action=on_action)
        summary.drafts = len(self.drafts)
        self.save_record_issues()
        self._advance_cursors()
        return summary

    def _advance_cursors(self) -> None:
        ledger, scope = self.ledger.name, self.ledger.scope
        started = self.started.isoformat()
        if self.since is None or self.cursors.ledger_edited is None:  # --since doesn't move the cursor back
            self.store.set_cursor(ledger, f"{scope}:edited", started)
        if self.source_full:
            self.store.set_cursor(ledger, f"{scope}:full", started)
        self.store.set_cursor(ledger, f"{scope}:schema", json.dumps(self.ledger.cache()))
        if self.next_calendar_cursor:
            self.store.set_cursor(self.calendar.name, self.calendar.scope, self.next_calendar_cursor)


def run_sync(settings: Settings, pairs: list[str] | None = None, *, plan_only: bool = False, force: bool = False,
             full: bool = False, since: datetime | None = None, on_plan: Callable[[Plan], None] | None = None,
             on_action: Callable[[Action], None] | None = None) -> PairResult:
    """Sync (or only plan, writing nothing anywhere) the given pairs; both pairs = two-way."""
    pairs = list(pairs or settings.sync.pairs)
    parsed = registry.parse_calendar_pair(pairs[0]) if pairs else None
    calendar = parsed.calendar if parsed else CALENDAR  # an unknown pair is refused inside the recorded run
    settings.require(registry.LEDGER.section)
    settings.require(registry.CALENDARS[calendar].section)
    both = [registry.push_pair(calendar), registry.pull_pair(calendar)]
    command = "sync " + " ".join(pairs) if pairs != both else "sync"
    with ExitStack() as stack:
        store = open_store(stack, settings, plan_only)
        run: SyncRun | None = None
        with recorded_run(store, command, pair_name(pairs), plan_only=plan_only,
                          requests=lambda: run.requests if run else 0) as record:
            run = SyncRun(settings, pairs, store, full=full, since=since)
            if not plan_only:
                stack.callback(run.calendar.close)  # persists a refreshed token
            run.read()
            plan = run.plan()
            if on_plan is not None:
                on_plan(plan)
            if plan_only:
                return PairResult(plan, None)
            record.halt_unless_forced(plan, force)
            record.summary = run.apply(plan, record.run_id, on_action)
        return PairResult(plan, record.summary)
