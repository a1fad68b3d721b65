"""The two roles a provider can play in a one-way pair, as protocols.

A source yields canonical bookings (and per-record failures) and can store a target's id
on its record; a target renders bookings into comparable fields and performs writes.
The pair runner in :mod:`bsync.core.sync` speaks only these protocols.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Protocol

from bsync.core.model import Booking
from bsync.core.plan import Failure, TargetItem


@dataclass
class SourceRead:
    bookings: list[Booking]
    failures: list[Failure] = field(default_factory=list)
    drafts: list[Failure] = field(default_factory=list)  # pages not ready to sync (no date yet): not errors


@dataclass(frozen=True)
class WriteResult:
    target_id: str
    version: str | None = None
    note: str = ""  # e.g. "adopted existing event"
    hash: str | None = None  # the written record's hash, stored in the link
    item: Any = None  # the written record as a TargetItem, when the remote returned it


class BookingSource(Protocol):
    name: str
    label: str

    def read_bookings(self) -> SourceRead: ...

    def record_target_id(self, booking_key: str, target_id: str) -> None:
        """Store the target's id on the source record (Notion: the calendar_event_id property)."""


class EventTarget(Protocol):
    name: str

    def target_id_for(self, key: str) -> str: ...

    def wanted_fields(self, booking: Booking) -> Mapping[str, Any]: ...

    def read_items(self) -> dict[str, TargetItem]: ...

    def create(self, booking: Booking, target_id: str) -> WriteResult: ...

    def update(self, booking: Booking, target_id: str, *, restore: bool) -> WriteResult: ...

    def remove(self, target_id: str) -> WriteResult: ...
