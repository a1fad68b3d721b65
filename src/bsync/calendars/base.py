"""What a calendar backend must do for bsync: the contract Google Calendar meets today and a
CalDAV backend will meet next.

A backend speaks its own API and vocabulary inside; across this line it speaks only the
records of :mod:`bsync.core.records`.  The calendar pair run (:mod:`bsync.core.sync`), the
applier, reconcile and availability call nothing else, so a new backend is this protocol,
its module, its sandbox, its tests and one line in :data:`bsync.registry.CALENDARS`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Mapping, Protocol, Sequence, runtime_checkable

from bsync.core.model import Booking
from bsync.core.records import ChangeSet, ImportHints, TargetItem, TargetOp, TargetTerms, WriteResult


@runtime_checkable
class CalendarBackend(Protocol):
    """One calendar that follows the ledger (and, two-way, feeds it).

    ``name`` is the registry name: it prefixes journal keys of imports (``<name>:<id>``),
    names the pairs (``notion-to-<name>``) and the cursor table; ``label`` is what people
    call it in messages; ``scope`` the calendar this instance reads (cursors are stored per
    scope, so pointing the config at another calendar starts afresh); ``id_setting`` the
    config setting naming it (for the safety halt's message); ``terms`` how it words a
    status change and the key it carries in a plan's changes; ``check_name`` the line
    ``bsync doctor`` gives :meth:`check` (``google calendar``).
    """

    name: str
    label: str
    id_setting: str  # the config setting that picks the calendar, e.g. "[google] calendar_id"
    terms: TargetTerms
    check_name: str

    @property
    def requests(self) -> int:
        """HTTP requests sent so far (retries included), for the run summary."""

    @property
    def scope(self) -> str:
        """The calendar read and written (the cursor key)."""

    def target_id_for(self, key: str) -> str:
        """The item id for a booking key: deterministic, so a create repeated after a crash
        finds its own item (an "already exists" answer is adopted, never duplicated)."""

    def project(self, booking: Booking) -> Mapping[str, Any]:
        """The comparable fields the booking's item should have: equal to ``TargetItem.fields``
        of an item that shows it, so the planner can diff them."""

    def fields_hash(self, fields: Mapping[str, Any]) -> str:
        """The hash of a live item with these fields, as its ``TargetItem.hash`` would be."""

    def read_changes(self, cursor: str | None) -> ChangeSet:
        """Items changed since ``cursor`` (every item without one), cancelled ones included.

        A cursor the calendar no longer accepts (Google's 410) must fall back to a full read
        and say so with ``complete=True``; ``complete`` is True only when the read covered the
        whole calendar.  Items carry the booking key stored on them (``TargetItem.key``) and
        ``cancelled`` in their common fields.
        """

    def read_occurrences(self, start: datetime, end: datetime) -> dict[str, TargetItem]:
        """The occurrences of recurring series meeting [start, end), each under its own id."""

    def fetch(self, target_id: str) -> TargetItem | None:
        """One item by id (a cancelled one too), or None if the calendar never had it."""

    def write(self, op: TargetOp) -> WriteResult:
        """One write, retried per the policy.  Idempotent: a create of an id that exists adopts
        (and if needed restores) the item, a remove of a gone item answers "already gone"."""

    def write_many(self, ops: Sequence[TargetOp]) -> list[WriteResult | Exception]:
        """Many writes (batched where the API allows), one outcome per op in order: its
        WriteResult, or the RemoteError refusing it.  Auth and unreachable errors are raised."""

    def free_busy(self, calendars: list[str], start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
        """Busy intervals of ``calendars`` in [start, end), unmerged; an error is raised, never
        reported as free time."""

    def import_hints(self, item: TargetItem) -> ImportHints:
        """What an item made in the calendar says about its booking beyond the common fields
        (zone, notes, the guest's email), for creating that booking in the ledger."""

    def check(self) -> str:
        """``bsync doctor``'s check: one cheap authenticated request proving the calendar is
        there and visible; the detail line when it worked, else the typed error, carrying a
        ``hint`` that says what to fix (doctor adds the host)."""

    def close(self) -> None:
        """Release the client and persist what must outlive the run (a refreshed token)."""


@dataclass(frozen=True)
class Verdict:
    """A judgement made without the network, worded for a ``bsync doctor`` line."""

    status: Literal["ok", "warn", "fail"]
    detail: str  # one line, never a secret
    hint: str | None = None  # what to do next


@runtime_checkable
class StoredCredentials(Protocol):
    """A calendar's saved sign-in, when it can lapse on its own (Google's refresh token of an
    app in "Testing" dies after seven days): judged from the config section alone, without
    the network, so ``bsync doctor`` gives it a line of its own (failing even when the
    calendar can't be built) and ``bsync status`` shows its age before it lapses.

    Named by the registry entry's ``credentials``; a calendar whose sign-in can't lapse
    (a CalDAV password) has none.  Its module must be light: ``bsync status`` imports it.
    """

    check_name: str
    """The ``bsync doctor`` line (``google token``)."""

    status_key: str
    """``bsync status --json``'s key (``google_token``); the report's ``age_seconds`` is the
    metric ``bsync_<status_key>_age_seconds``."""

    age_help: str
    """That metric's help text."""

    def judge(self, config: Any, now: datetime) -> Verdict:
        """Which credentials a run would use, and whether they are about to lapse."""

    def report(self, config: Any, now: datetime) -> dict[str, Any]:
        """The same, JSON-ready for ``bsync status`` (with ``age_seconds``); never a secret."""
