"""Running a sync: read both sides (incrementally when possible), plan, and apply under the lock.

``notion-to-gcal`` makes the calendar follow Notion; ``gcal-to-notion`` makes Notion follow
the calendar (and imports events made there); running both in one invocation is the
two-way sync, merged field by field against the last synced snapshot.

Reads are incremental: Notion pages edited since the last run (``last_edited_time`` is
rounded down to the minute, so the window overlaps the previous one and unchanged pages
are recognised by their content hash), Google events changed since the stored
``syncToken`` (a 410 falls back to a full read).  Notion queries cannot return trashed
pages, so their absence is only visible in a full read: one happens on ``--full``, on the
first run, and whenever the last one is older than ``[sync] full_every``.  Between full
reads, each run also reads the bookings starting within ``[sync] trash_window`` ahead: a
linked upcoming booking missing from both reads was trashed, and its slot is freed now.
Bookings that ended before ``[sync] history`` ago are left alone.  Cursors are saved only
after the run's writes are committed.
"""

from __future__ import annotations

import json
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import chain
from typing import Any, Callable

from bsync.core.apply import ApplyContext, apply_plan
from bsync.core.runs import PairResult, Summary, open_store, recorded_run, retry_policy
from bsync.config import Settings
from bsync.errors import UsageError
from bsync.core.model import Booking, apply_common, booking_common, parse_when
from bsync.core.plan import Action, Failure, Plan, SourceItem, TargetItem, plan_sync
from bsync.calendars.gcal import GoogleCalendarTarget, fields_hash
from bsync.ledger.notion import NotionSource
from bsync.core.store import Store
from bsync.core.timeutil import now_utc, parse_instant, to_utc

NOTION_TO_GCAL = "notion-to-gcal"
GCAL_TO_NOTION = "gcal-to-notion"
LINK_PAIR = "notion+gcal"  # both directions share one mapping
DIRECTIONS = {NOTION_TO_GCAL: "push", GCAL_TO_NOTION: "pull"}
NOTION_OVERLAP = timedelta(minutes=2)  # last_edited_time is rounded down to the minute
IN_PROGRESS = timedelta(days=1)  # the trash window reaches back this far: a booking under way counts
TRASH_CONFIRM_MAX = 5  # up to this many missing pages are confirmed trashed with one GET each


def build_notion_source(settings: Settings) -> NotionSource:
    notion = settings.require("notion")
    return NotionSource(notion, settings.timezone, retry_policy(settings),
                        default_duration=timedelta(minutes=notion.default_duration_min),
                        date_required=settings.sync.date_required)


def build_gcal_target(settings: Settings) -> GoogleCalendarTarget:
    google = settings.require("google")
    return GoogleCalendarTarget(google, retry_policy(settings), delete_policy=settings.sync.delete_policy,
                                invite_customer=google.invite_customer)


def notion_scope(settings: Settings) -> str:
    """The key Notion cursors are stored under (the database, or the data source given)."""
    return settings.notion.database_id or settings.notion.data_source_id


def booking_label(booking: Booking) -> str:
    """``Rex – groom · Tue 24 Nov 10:00 CET`` in the booking's own timezone."""
    local = booking.start.astimezone(booking.tz)
    when = local.strftime("%a %d %b") if booking.all_day else local.strftime("%a %d %b %Y %H:%M %Z")
    return f"{booking.title} · {when}"


def source_item(booking: Booking) -> SourceItem:
    return SourceItem(key=booking.key, common=booking_common(booking), hash=booking.content_hash(),
                      recorded_target_id=booking.target_ids.get("gcal"),
                      updated=booking.updated_at.isoformat(timespec="microseconds") if booking.updated_at else None,
                      label=booking_label(booking))


def _source_key(record_id: str) -> str:
    """A Notion failure's page id as a booking key (failures carry the bare id)."""
    return record_id if record_id.startswith("notion:") else f"notion:{record_id}"


def pair_name(pairs: list[str]) -> str:
    return pairs[0] if len(pairs) == 1 else "notion<->gcal"


@dataclass
class Cursors:
    """Where incremental reads resume, and when the last full Notion read happened."""

    notion_edited: str | None
    notion_full: str | None
    gcal_token: str | None
    notion_cache: dict[str, Any] | None

    @classmethod
    def load(cls, store: Store, settings: Settings) -> "Cursors":
        scope = notion_scope(settings)
        cache = store.cursor("notion", f"{scope}:schema")
        return cls(store.cursor("notion", f"{scope}:edited"), store.cursor("notion", f"{scope}:full"),
                   store.cursor("gcal", settings.google.calendar_id), json.loads(cache) if cache else None)


class SyncRun:
    """One sync invocation: reads, plans and (unless planning) applies."""

    def __init__(self, settings: Settings, pairs: list[str], store: Store, *, full: bool,
                 since: datetime | None = None) -> None:
        for pair in pairs:
            if pair not in DIRECTIONS:
                raise UsageError(f"unknown pair {pair!r}; known pairs: {', '.join(DIRECTIONS)}")
        self.settings = settings
        self.pairs = pairs
        self.directions = frozenset(DIRECTIONS[p] for p in pairs)
        self.store = store
        self.source = build_notion_source(settings)
        self.target = build_gcal_target(settings)
        self.cursors = Cursors.load(store, settings)
        self.started = now_utc()
        self.since = since
        self.source_full = full or (since is None and self._full_read_due())
        if not full:
            self.source.use_cache(self.cursors.notion_cache)
        self.gcal_token = None if full else self.cursors.gcal_token
        self.bookings: dict[str, Booking] = {}
        self.deleted_sources: set[str] = set()
        self.targets: dict[str, TargetItem] = {}
        self.failures: list[Failure] = []
        self.drafts: list[Failure] = []  # pages with no date yet (ids are booking keys)
        self.next_gcal_token: str | None = None
        self.target_complete = True
        history = settings.sync.history_delta
        self.history_cutoff = None if history is None else self.started - history

    def _full_read_due(self) -> bool:
        last_full = self.cursors.notion_full
        if not self.cursors.notion_edited or not last_full:
            return True
        return self.started - parse_instant(last_full) >= self.settings.sync.full_every_delta

    @property
    def requests(self) -> int:
        return self.source.requests + self.target.requests

    # -- reading ------------------------------------------------------------------------
    def read(self) -> None:
        since = None
        if self.since is not None and not self.source_full:
            since = self.since
        elif not self.source_full:
            since = parse_instant(self.cursors.notion_edited) - NOTION_OVERLAP
        read = self.source.read_bookings(since)
        self.bookings = {b.key: b for b in read.bookings}
        self.failures = list(read.failures)
        self.drafts = list(read.drafts)
        self.targets, self.next_gcal_token, self.target_complete = self.target.read_changes(self.gcal_token)
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

        Notion queries never return trashed pages, so an incremental read can't see a
        deletion, and deleting the row is how Notion users cancel: :meth:`_find_trashed`
        then compares this read with the links.
        """
        if self.source_full or "push" not in self.directions or not self.settings.sync.trash_window_delta:
            return None
        lo, hi = self._trash_window()
        read = self.source.read_bookings_starting(lo, hi)
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
            _source_key(f.id) for f in self.failures}
        missing = []
        for key, link in self.store.link_map(LINK_PAIR).items():  # streamed, not all held at once
            snapshot = link.snapshot or {}
            if (link.tombstone or key in seen or not key.startswith("notion:") or snapshot.get("cancelled")
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
            _source_key(f.id) for f in self.failures}
        for key, row in self.store.record_issues(self.source.name).items():
            if key in seen:
                continue
            if row["kind"] == "draft":
                self.drafts.append(Failure(key, row["reason"], row["title"] or ""))
            else:
                self.failures.append(Failure(key.split(":", 1)[1], row["reason"], row["title"] or ""))

    def save_record_issues(self) -> None:
        """Remember this run's failing records and drafts; forget those now read valid or gone."""
        issues = [(_source_key(f.id), "failure", f.title, f.reason) for f in self.failures]
        issues += [(d.id, "draft", d.title, d.reason) for d in self.drafts]
        self.store.save_record_issues(self.source.name, issues, cleared=set(self.bookings) | self.deleted_sources,
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
        self.targets.update(self.target.read_occurrences(to_utc(self._start_of_today()), ahead))

    def _drop_past_unmanaged_events(self) -> None:
        """Events bsync doesn't manage that ended before today are history, not bookings.

        A recurring series stays whatever its first occurrence's date: the planner reports it
        as skipped (staff meetings and opening hours are rarely bookings), or imports its
        occurrences one by one, each judged by its own end.
        """
        today = self._start_of_today()
        by_date, by_instant = "date:" + today.date().isoformat(), to_utc(today).isoformat()
        linked = self.store.link_map(LINK_PAIR).target_keys()
        recorded = {b.target_ids.get("gcal") for b in self.bookings.values()}  # the planner judges those
        for event_id, item in list(self.targets.items()):
            if item.key is not None or event_id in linked or event_id in recorded:
                continue  # ours (an interrupted import may not carry its key yet)
            end = item.common.get("end") or ""
            if not item.series and end <= (by_date if end.startswith("date:") else by_instant):
                del self.targets[event_id]

    def _reload_failed(self) -> None:
        """Failed writes and conflicts are looked at again every run: load both sides of them."""
        keys = self.store.journal_keys("failed", LINK_PAIR) | self.store.conflict_keys(LINK_PAIR)
        for key in sorted(keys):
            if key.startswith("gcal:"):  # an import that failed: look at its event again
                event_id = key.split(":", 1)[1]
                if event_id not in self.targets and (item := self.target.fetch(event_id)) is not None:
                    self.targets[event_id] = item
                continue
            if key.startswith("notion:") and key not in self.bookings:
                self._load_source(key)
            link = self.store.links_get(LINK_PAIR, key)
            if link is not None and link.target_key not in self.targets:
                item = self.target.fetch(link.target_key)
                if item is not None:
                    self.targets[item.id] = item

    def _load_source(self, key: str) -> None:
        booking, gone, failure = self.source.fetch(key)
        if booking is not None:
            self.bookings[key] = booking
            self.failures = [f for f in self.failures if _source_key(f.id) != key]  # fixed since
        elif gone:
            self.deleted_sources.add(key)
        elif failure is not None and all(f.id != failure.id for f in self.failures):
            self.failures.append(failure)

    # -- planning -----------------------------------------------------------------------
    def plan(self) -> Plan:
        links = self.store.link_map(LINK_PAIR)
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
                if (item := self.target.fetch(event_id)) is not None:
                    self.targets[event_id] = item
        return self._skip_dead(plan)

    def _imported(self) -> set[str]:
        """Event ids an earlier run imported or began importing: a page recording one was made by
        bsync, even if the run died before linking it (or before the event got its key)."""
        states = ("intent", "failed", "dead", "done")
        keys = set().union(*(self.store.journal_keys(state, LINK_PAIR) for state in states))
        return {key.split(":", 1)[1] for key in keys if key.startswith("gcal:")}

    def _plan_once(self, links: dict) -> Plan:
        # A generator: each booking's item lives only while the planner looks at it.
        sources = chain((source_item(b) for b in self.bookings.values()),
                        (SourceItem(key, {}, deleted=True) for key in sorted(self.deleted_sources)
                         if key not in self.bookings))
        target = self.target

        def render(key: str, merged: dict[str, Any]) -> Any:
            booking = self.bookings.get(key)
            if booking is None:
                return None
            return target.wanted_fields(apply_common(booking, merged))

        return plan_sync(pair_name(self.pairs), sources, links, self.targets, directions=self.directions,
                         render=render, target_hash=lambda fields: fields_hash(fields, False),
                         target_id_for=target.target_id_for, source_complete=self.source_full,
                         target_complete=self.target_complete, conflict_policy=self.settings.sync.conflict,
                         import_unmanaged=self.settings.sync.import_unmanaged, failures=self.failures,
                         drafts=self.drafts,
                         max_delete=self.settings.sync.max_delete_allowed, source_label=self.source.label,
                         target_label="Google Calendar", target_id_setting="[google] calendar_id",
                         target_noun="events", importing=self._imported(),
                         import_recurring=self.settings.sync.import_recurring, past=self._past_keys(links))

    def _skip_dead(self, plan: Plan) -> Plan:
        dead = self.store.journal_keys("dead", LINK_PAIR)
        if not dead:
            return plan
        def is_dead(action: Action) -> bool:
            return action.source_id in dead or (action.source_id is None and f"gcal:{action.target_id}" in dead)

        plan.actions = [a if (not is_dead(a) or a.op == "skip") else
                        Action("skip", a.source_id, a.target_id, label=a.label,
                               reason="failed too often; `bsync retry` tries it again")
                        for a in plan.actions]
        return plan

    # -- applying -----------------------------------------------------------------------
    def apply(self, plan: Plan, run_id: int | None, on_action: Callable[[Action], None] | None) -> Summary:
        ctx = ApplyContext(self.store, LINK_PAIR, run_id, self.source, self.target, self.bookings, self.targets,
                           self.settings.timezone, dead_after=self.settings.sync.dead_after)
        summary = apply_plan(plan, ctx, on_action=on_action)
        summary.drafts = len(self.drafts)
        self.save_record_issues()
        self._advance_cursors()
        return summary

    def _advance_cursors(self) -> None:
        scope = notion_scope(self.settings)
        started = self.started.isoformat()
        if self.since is None or self.cursors.notion_edited is None:  # --since doesn't move the cursor back
            self.store.set_cursor("notion", f"{scope}:edited", started)
        if self.source_full:
            self.store.set_cursor("notion", f"{scope}:full", started)
        self.store.set_cursor("notion", f"{scope}:schema", json.dumps(self.source.cache()))
        if self.next_gcal_token:
            self.store.set_cursor("gcal", self.settings.google.calendar_id, self.next_gcal_token)


def run_sync(settings: Settings, pairs: list[str] | None = None, *, plan_only: bool = False, force: bool = False,
             full: bool = False, since: datetime | None = None, on_plan: Callable[[Plan], None] | None = None,
             on_action: Callable[[Action], None] | None = None) -> PairResult:
    """Sync (or only plan, writing nothing anywhere) the given pairs; both pairs = two-way."""
    pairs = list(pairs or settings.sync.pairs)
    settings.require("notion")
    settings.require("google")
    command = "sync " + " ".join(pairs) if pairs != list(DIRECTIONS) else "sync"
    with ExitStack() as stack:
        store = open_store(stack, settings, plan_only)
        run: SyncRun | None = None
        with recorded_run(store, command, pair_name(pairs), plan_only=plan_only,
                          requests=lambda: run.requests if run else 0) as record:
            run = SyncRun(settings, pairs, store, full=full, since=since)
            if not plan_only:
                stack.callback(run.target.close)  # persists a refreshed Google token
            run.read()
            plan = run.plan()
            if on_plan is not None:
                on_plan(plan)
            if plan_only:
                return PairResult(plan, None)
            record.halt_unless_forced(plan, force)
            record.summary = run.apply(plan, record.run_id, on_action)
        return PairResult(plan, record.summary)


def run_notion_to_gcal(settings: Settings, **kwargs: Any) -> PairResult:
    """One-way: make the calendar follow Notion."""
    return run_sync(settings, [NOTION_TO_GCAL], **kwargs)
