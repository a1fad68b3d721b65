"""The emulator's stored state: calendars and the events they hold.

Stored event resources are immutable: every write builds a new dict (copy-on-write), so
list responses reference them directly instead of deep-copying thousands of events, and
the JSON encoding that happens after the lock is released never sees a half-made write.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from bsync.sandbox.base import JSON

# Output order of an event resource (Google's own order, roughly).
FIELD_ORDER = (
    "kind", "etag", "id", "status", "htmlLink", "created", "updated", "summary", "description",
    "location", "colorId", "creator", "organizer", "start", "end", "endTimeUnspecified",
    "recurrence", "recurringEventId", "originalStartTime", "transparency", "visibility", "iCalUID",
    "sequence",
    "attendees", "attendeesOmitted", "extendedProperties", "gadget", "anyoneCanAddSelf",
    "guestsCanInviteOthers", "guestsCanModify", "guestsCanSeeOtherGuests", "privateCopy",
    "reminders", "source", "attachments", "conferenceData", "eventType",
    "workingLocationProperties", "outOfOfficeProperties", "focusTimeProperties",
    "birthdayProperties", "eventLabelId",
)


@dataclass
class Event:
    """A stored event, or an occurrence of a series computed on the fly (never stored until
    a write makes it an exception), with the instants and counters the endpoints filter on."""

    id: str
    index: int              # position in the calendar's creation order
    resource: JSON          # read format; replaced, never mutated, on each write
    change: int             # global change counter at the last write
    start: datetime         # UTC instant (all-day: midnight in the calendar's zone)
    end: datetime
    all_day: bool
    updated: datetime
    occurrence: int = 0     # an instance of a series: its original start (µs since epoch)

    @property
    def cancelled(self) -> bool:
        return self.resource.get("status") == "cancelled"


@dataclass
class Calendar:
    """One calendar: its events by id and in creation order (what paging walks)."""

    id: str
    summary: str
    time_zone: str
    tz: ZoneInfo
    created: datetime
    updated: datetime
    change: int = 0
    events: dict[str, Event] = field(default_factory=dict)
    order: list[Event] = field(default_factory=list)
    ical_uids: dict[str, str] = field(default_factory=dict)
