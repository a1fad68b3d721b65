"""The records every layer shares: what the ledger and a calendar hand the planner, what the
state DB remembers of a pair, and what a write answers.

They live apart from the planner, the store and the providers so that each of those
depends on this module and none on another: the planner sees no SQLite, a calendar backend
no planner.  Nothing here names a provider; a backend turns its own vocabulary (Google's
``status``, an iCalendar ``STATUS``) into these fields when it reads.

Naming of the two sides: the **source** is the ledger (the source of truth), the **target**
the calendar (or, for platform pairs, the ledger's pages).  A source record is named by its
booking *key* (``notion:<page id>``), a target record by its *id* (an event id).  A
:class:`Link` calls them ``source_key`` and ``target_key`` (the columns of ``links``), an
:class:`~bsync.core.plan.Action` ``source_id`` and ``target_id``: the same two values.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Mapping

from bsync.core.model import Booking, shared


@dataclass(frozen=True, slots=True)
class SourceItem:
    """A booking on the ledger as the planner sees it: its common fields
    (:data:`bsync.core.model.COMMON_FIELDS`), a content hash, and the target id it records."""

    key: str
    common: Mapping[str, Any]
    hash: str | None = None
    recorded_target_id: str | None = None
    updated: str | None = None
    label: str = ""
    deleted: bool = False  # trashed (known from a full read or a fetch)


def booking_label(booking: Booking) -> str:
    """``Rex – groom · Tue 24 Nov 10:00 CET`` in the booking's own timezone: a SourceItem's label."""
    local = booking.start.astimezone(booking.tz)
    when = local.strftime("%a %d %b") if booking.all_day else local.strftime("%a %d %b %Y %H:%M %Z")
    return f"{booking.title} · {when}"


@dataclass(frozen=True, slots=True)
class TargetItem:
    """A calendar event (or a ledger page, for platform pairs) as the planner sees it.

    ``key`` is the booking key the item carries (None: bsync didn't make it), read by the
    backend from wherever it keeps it.  ``common`` holds the common fields, ``cancelled``
    included (the backend maps its own status to it); ``fields`` the full comparable
    projection, which :meth:`CalendarBackend.project` also returns for a booking.
    """

    id: str
    key: str | None
    common: Mapping[str, Any]
    fields: Mapping[str, Any] = field(default_factory=dict)  # full comparable projection
    hash: str | None = None
    updated: str | None = None
    label: str = ""
    recurring: bool = False  # a recurring series or one of its instances
    series: bool = False  # the series itself (its rules), not one occurrence

    @property
    def cancelled(self) -> bool:
        return bool(self.common.get("cancelled"))


@dataclass(frozen=True, slots=True)
class Link:
    """One matched booking/event: ids, both sides' hashes and the common fields as last synced.

    ``source_key``/``target_key`` are what an Action calls ``source_id``/``target_id``.
    """

    pair: str
    source_key: str
    target_key: str
    source_version: str | None
    target_version: str | None
    source_hash: str | None  # the source record's hash when last synced (column content_hash)
    synced_at: str
    tombstone: bool = False
    target_hash: str | None = None  # the target record's hash when last synced
    snapshot: dict[str, Any] | None = None  # common fields when last synced
    conflict: dict[str, Any] | None = None  # {"fields": {...}} open, or {"take": side name} resolved
    target_fields: dict[str, Any] | None = None  # the target's comparable projection when last synced

    @property
    def resolution(self) -> str | None:
        """The side name ``bsync resolve --take`` chose, or None."""
        return (self.conflict or {}).get("take")

    @classmethod
    def from_row(cls, row: Any) -> "Link":
        """The link of a ``links`` row (its ids shared with the records read, see ``shared``)."""
        return cls(row[0], shared(row[1]), shared(row[2]), *row[3:7], bool(row[7]), row[8], json.loads(row[9]) if row[9] else None,
                   json.loads(row[10]) if row[10] else None, json.loads(row[11]) if row[11] else None)


@dataclass(frozen=True, slots=True)
class RecordFailure:
    """A record that could not be synced (or, for a draft, is not to be yet), and why.

    ``title`` lets a summary name it to a person, not only by id.  (A failed *call* is
    :class:`bsync.core.retry.CallFailure`.)
    """

    id: str
    reason: str
    title: str = ""

    def as_json(self) -> dict[str, str]:
        return {"id": self.id, "title": self.title, "reason": self.reason} if self.title else \
            {"id": self.id, "reason": self.reason}


@dataclass
class SourceRead:
    """What a ledger read returns: the bookings, and the pages that aren't bookings (yet)."""

    bookings: list[Booking]
    failures: list[RecordFailure] = field(default_factory=list)
    drafts: list[RecordFailure] = field(default_factory=list)  # not ready to sync (no date yet): not errors


@dataclass(frozen=True)
class ChangeSet:
    """What a calendar's ``read_changes`` returns.

    ``items`` by target id (cancelled ones included); ``cursor`` where the next read resumes
    (None: nothing new to store); ``complete``: the read covered the whole calendar, so an
    item absent from it is gone (else an absent item is unchanged).
    """

    items: dict[str, TargetItem]
    cursor: str | None
    complete: bool


@dataclass(frozen=True)
class WriteResult:
    target_id: str
    version: str | None = None
    note: str = ""  # e.g. "adopted existing event"
    hash: str | None = None  # the written record's hash, stored in the link
    item: Any = None  # the written record as a TargetItem, when the remote returned it


@dataclass(frozen=True)
class TargetOp:
    """One write to a target: create | update | restore | remove | stamp.

    ``booking`` for create/update/restore; ``key`` for stamp (the booking key to put on it).
    """

    kind: str
    target_id: str
    booking: Booking | None = None
    key: str | None = None


@dataclass(frozen=True)
class ImportHints:
    """What a calendar item tells about the booking to create for it, beyond its common
    fields: its time zone, notes and the customer's email (each None when unknown)."""

    timezone: str | None = None
    notes: str | None = None
    email: str | None = None


@dataclass(frozen=True)
class TargetTerms:
    """How a target names, in a plan's changes, its status and the booking key it carries.

    The planner shows a cancellation as ``{status: (confirmed, cancelled)}`` and marking an
    item as ``{key_field: (old key, key)}`` in the target's own words.  The defaults are the
    iCalendar ``STATUS`` values (RFC 5545), which Google and CalDAV both use.
    """

    status: str = "status"
    confirmed: str = "confirmed"
    cancelled: str = "cancelled"
    key_field: str = "bsync_key"
