"""The calendar ``bsync demo`` syncs with: Google's emulator, or a real Radicale it starts.

The demo tells one story whichever calendar it runs on; what differs is behind
:class:`DemoCalendar`: how the demo's config names the calendar, how a stylist's phone edits
it (through the calendar's own API, never through bsync), what it holds now, and how many
write requests bsync sent it.  ``bsync demo --calendar NAME`` picks one from :data:`DEMO_CALENDARS`.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, Callable, ContextManager, Iterator, Protocol
from zoneinfo import ZoneInfo

import httpx

from bsync.sandbox import Sandbox
from bsync.sandbox.seed import DEMO_TIMEZONE

#: Methods that change a calendar (WebDAV's among them); Notion's query POST and OAuth's
#: /token are reads.
WRITE_METHODS = frozenset({"PATCH", "PUT", "DELETE", "MKCALENDAR", "MKCOL", "PROPPATCH", "COPY", "MOVE"})


class DemoCalendar(Protocol):
    """One calendar the demo can run on, started and ready."""

    name: str  # the registry name: its pairs are notion-to-<name> and <name>-to-notion
    title: str  # what the demo calls it ("Google Calendar (sandbox)")
    url: str

    def configure(self, config: Path) -> None:
        """Point the demo's ``bsync.toml`` (written for the sandbox) at this calendar."""

    def write_requests(self) -> int:
        """Write requests bsync sent this calendar since :meth:`clear_requests`."""

    def clear_requests(self) -> None:
        """Forget the requests counted so far."""

    def events(self, tz: ZoneInfo) -> list[tuple[str, str, str]]:
        """(when, title, status) of every event, cancelled ones too, in time order."""

    def move(self, title: str, start: datetime, end: datetime) -> None:
        """A stylist moves the event titled ``title`` (one bsync made) on their phone."""

    def add(self, title: str, description: str, start: datetime, end: datetime) -> None:
        """A stylist adds an event of their own (a walk-in)."""


def _when(start: Any, tz: ZoneInfo) -> str:
    """An event's start for the table: a date as a date, an instant in local time."""
    if not isinstance(start, datetime):
        return f"{start.isoformat()} (all day)"
    return start.astimezone(tz).strftime("%a %d %b %H:%M %Z")


def _sort_key(start: Any, tz: ZoneInfo) -> datetime:
    """Where an event goes in time order: an all-day one at the start of its local day."""
    return start if isinstance(start, datetime) else datetime.combine(start, datetime.min.time(), tz)


@dataclass
class GoogleDemoCalendar:
    """The sandbox's Google Calendar emulator, which the sandbox config already names."""

    sandbox: Sandbox
    name: str = "gcal"
    title: str = "Google Calendar (sandbox)"

    @property
    def url(self) -> str:
        return self.sandbox.google.url

    def configure(self, config: Path) -> None:
        return None  # write_sandbox_config names it, and its pairs are the default ones

    def write_requests(self) -> int:
        return sum(1 for r in self.sandbox.google.requests
                   if not r.batch and (r.method in WRITE_METHODS or (r.method == "POST" and not r.path.endswith("/token"))))

    def clear_requests(self) -> None:
        self.sandbox.google.clear_requests()

    def events(self, tz: ZoneInfo) -> list[tuple[str, str, str]]:
        google = self.sandbox.google
        rows = []
        for event in google.list_events(google.calendar_id, include_deleted=True):
            start = event["start"]
            when: Any = (datetime.fromisoformat(start["dateTime"]) if "dateTime" in start
                         else date.fromisoformat(start["date"]))
            rows.append((_sort_key(when, tz), _when(when, tz), event.get("summary", ""), event.get("status", "")))
        return [row[1:] for row in sorted(rows, key=lambda row: row[0])]

    def _events_url(self) -> str:
        return f"{self.sandbox.google.url}/calendar/v3/calendars/{self.sandbox.google.calendar_id}/events"

    def move(self, title: str, start: datetime, end: datetime) -> None:
        google = self.sandbox.google
        event = next(e for e in google.list_events(google.calendar_id) if e.get("summary") == title)
        httpx.patch(f"{self._events_url()}/{event['id']}", headers={"Authorization": "Bearer sandbox-token"}, json={
            "start": {"dateTime": start.isoformat(), "timeZone": DEMO_TIMEZONE},
            "end": {"dateTime": end.isoformat(), "timeZone": DEMO_TIMEZONE}}).raise_for_status()

    def add(self, title: str, description: str, start: datetime, end: datetime) -> None:
        httpx.post(self._events_url(), headers={"Authorization": "Bearer sandbox-token"}, json={
            "summary": title, "description": description,
            "start": {"dateTime": start.isoformat(), "timeZone": DEMO_TIMEZONE},
            "end": {"dateTime": end.isoformat(), "timeZone": DEMO_TIMEZONE}}).raise_for_status()


@dataclass
class CalDAVDemoCalendar:
    """A real Radicale on loopback with an empty calendar, and a :class:`DavProxy` in front of
    it that bsync talks to, so the demo can count bsync's requests.  The stylist's edits go
    to Radicale directly, with the caldav client, as a phone's calendar app would."""

    server: Any  # a bsync.sandbox.caldav_servers.CalDAVServer
    proxy: Any  # a bsync.sandbox.davproxy.DavProxy in front of it
    calendar_url: str  # on the server itself
    name: str = "caldav"
    title: str = "CalDAV calendar (Radicale on loopback)"

    @property
    def url(self) -> str:
        return self.proxy.proxied(self.calendar_url)

    def configure(self, config: Path) -> None:
        from bsync.sandbox.caldav_servers import use_caldav

        use_caldav(config, self.url, self.server.username, self.server.password)

    def write_requests(self) -> int:
        return sum(1 for r in self.proxy.requests if r.method in WRITE_METHODS)

    def clear_requests(self) -> None:
        self.proxy.clear_requests()

    @contextlib.contextmanager
    def _calendar(self) -> Iterator[Any]:
        import caldav

        with caldav.DAVClient(url=self.server.url, username=self.server.username,
                              password=self.server.password) as client:
            yield client.calendar(url=self.calendar_url)

    def events(self, tz: ZoneInfo) -> list[tuple[str, str, str]]:
        rows = []
        with self._calendar() as calendar:
            for obj in calendar.get_events():
                event = obj.icalendar_component
                start = event.decoded("DTSTART")
                status = str(event.get("STATUS", "")).lower() or "confirmed"
                rows.append((_sort_key(start, tz), _when(start, tz), str(event.get("SUMMARY", "")), status))
        return [row[1:] for row in sorted(rows, key=lambda row: row[0])]

    def move(self, title: str, start: datetime, end: datetime) -> None:
        with self._calendar() as calendar:
            obj = next(o for o in calendar.get_events() if str(o.icalendar_component.get("SUMMARY")) == title)
            event = obj.icalendar_component
            for name, value in (("DTSTART", start), ("DTEND", end)):
                del event[name]
                event.add(name, value)
            obj.icalendar_instance.add_missing_timezones()
            obj.save()

    def add(self, title: str, description: str, start: datetime, end: datetime) -> None:
        import uuid

        import icalendar

        event = icalendar.Event()
        event.add("UID", f"{uuid.uuid4()}@phone.example")
        event.add("DTSTAMP", datetime.now(start.tzinfo))
        event.add("SUMMARY", title)
        event.add("DESCRIPTION", description)
        event.add("DTSTART", start)
        event.add("DTEND", end)
        calendar = icalendar.Calendar()
        calendar.add("PRODID", "-//a stylist's phone//EN")
        calendar.add("VERSION", "2.0")
        calendar.add_component(event)
        calendar.add_missing_timezones()
        with self._calendar() as collection:
            collection.add_event(calendar.to_ical().decode())


@contextlib.contextmanager
def google_calendar(sandbox: Sandbox) -> Iterator[DemoCalendar]:
    yield GoogleDemoCalendar(sandbox)


@contextlib.contextmanager
def caldav_calendar(sandbox: Sandbox) -> Iterator[DemoCalendar]:
    """Radicale started on a free loopback port (UsageError naming the package if it is not
    installed), a calendar "bookings" made on it, and the proxy in front; all stopped after."""
    from bsync.sandbox.caldav_servers import radicale_server, require
    from bsync.sandbox.davproxy import DavProxy

    require("radicale")
    with radicale_server() as server, DavProxy(server.url) as proxy:
        yield CalDAVDemoCalendar(server, proxy, server.new_calendar("bookings"))


DEMO_CALENDARS: dict[str, Callable[[Sandbox], ContextManager[DemoCalendar]]] = {
    "gcal": google_calendar,
    "caldav": caldav_calendar,
}
"""``bsync demo --calendar NAME``: the calendars the demo can run on, by registry name."""
