"""What the booking ledger, the source of truth, must do for bsync (Notion today).

The calendar pair run, the applier, reconcile and the notices read and write the ledger
only through this protocol and the records of :mod:`bsync.core.records`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Protocol, runtime_checkable

from bsync.core.model import Booking
from bsync.core.records import RecordFailure, SourceRead


@runtime_checkable
class BookingLedger(Protocol):
    """The bookings database.

    ``name`` is the registry name: booking keys are ``<name>:<record id>``, cursors and
    record issues are stored under it, and it names the pairs; ``label`` is what people call
    it; ``scope`` the database read (its cursors are stored per scope).
    """

    name: str
    label: str
    overlap: timedelta  # an incremental read starts this long before the last run (rounded edit times)

    @property
    def requests(self) -> int:
        """HTTP requests sent so far (retries included), for the run summary."""

    @property
    def scope(self) -> str:
        """The database read (the cursor key)."""

    def read_bookings(self, since: datetime | None = None) -> SourceRead:
        """Every live booking, or those edited at or after ``since``, with the records that
        failed to read and the drafts.  A full read (no ``since``) is how deletions show: a
        linked booking absent from it is gone."""

    def read_bookings_starting(self, start: datetime, end: datetime) -> SourceRead:
        """Bookings starting in [start, end) (inclusive of start, exclusive of end; all-day
        dates may be compared at a midnight of the ledger's choosing: widen and filter)."""

    def fetch(self, key: str) -> tuple[Booking | None, bool, RecordFailure | None]:
        """One booking by key: (booking, deleted_or_gone, failure)."""

    def find_by_target_id(self, target_id: str) -> Booking | None:
        """The booking that records ``target_id`` (resolves an import a crash interrupted)."""

    def record_target_id(self, booking_key: str, target_id: str) -> None:
        """Store the calendar item's id on the booking (a no-op where nothing holds it)."""

    def update_common(self, key: str, fields: dict[str, Any], zone_name: str | None, *,
                      restore: bool = False) -> Booking | None:
        """Write common fields to the booking (restoring it from the trash first if asked);
        the booking as written, or None if it can't be read back."""

    def create_booking(self, fields: dict[str, Any], zone_name: str | None, *, target_id: str,
                       origin: str, notes: str | None = None, email: str | None = None) -> Booking | None:
        """Create the booking of an item made in a calendar (``origin`` names that calendar);
        it records ``target_id``.  Not idempotent: callers journal it and look the id up with
        :meth:`find_by_target_id` after a crash."""

    def cache(self) -> dict[str, Any]:
        """What :meth:`use_cache` takes: discovery the next run can skip (ids, schema)."""

    def use_cache(self, cache: dict[str, Any] | None) -> None:
        """Reuse what an earlier run's :meth:`cache` returned, if it still fits the config."""

    def close(self) -> None:
        """Release the client."""
