"""A CalDAV calendar (RFC 4791: Nextcloud, iCloud, Fastmail, Radicale, Baïkal) as a sync
target, on the ``caldav`` client (3.x) and ``icalendar``.

The guarantees are Google's, in CalDAV's words:

* **Deterministic resources.**  A booking's UID and resource name come from its key
  (:func:`resource_name_for`), and a create is a ``PUT`` with ``If-None-Match: *``: a create
  repeated after a crash is refused with 412 and the resource found there is adopted.
* **Safe updates.**  Every change to an existing resource is a ``PUT`` (or ``DELETE``) with
  ``If-Match: <etag>``, the version bsync last read.  A 412 means someone changed it since:
  the write fails for that record (:class:`~bsync.errors.RemoteError`), and the next run reads
  it again and plans anew; it is never overwritten blind.
* **Incremental reads** with sync-collection (RFC 6578).  The cursor stored between runs is
  JSON: the collection's URL, its sync token, and the ETag of every resource.  The ETags give
  each update its ``If-Match`` without a read, and are the fallback change feed for a server
  without sync-collection (one PROPFIND, compared with them).  Either way a rerun with no
  change costs one request, and a rerun that reads changes back two.
* **Times.**  A timed event carries the booking's own ``TZID`` and its ``VTIMEZONE``; an
  all-day one is ``VALUE=DATE`` with the exclusive end the booking has.
* **Never touch what isn't ours.**  A bsync event carries its booking key in ``X-BSYNC-KEY``;
  an event without it is foreign: read for imports and free/busy, written only to stamp the
  key on it when it is imported.

Raw ``PUT``/``GET``/``DELETE`` go through :meth:`caldav.DAVClient.request` with the headers
above (a PUT is no XML); every REPORT and PROPFIND is the library's.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any, Callable, Mapping, Sequence, TypeVar
from urllib.parse import quote, unquote, urlsplit
from zoneinfo import ZoneInfo

import caldav
import icalendar
import niquests
import recurring_ical_events
from caldav.elements import dav
from caldav.lib import error as dav_error
from caldav.lib.url import URL

from bsync.calendars.caldav_config import CalDAVConfig
from bsync.calendars.event_text import describe, fields_hash
from bsync.config import Settings
from bsync.core.model import Booking, shared
from bsync.core.records import ChangeSet, ImportHints, TargetItem, TargetOp, TargetTerms, WriteResult
from bsync.core.retry import CallFailure, RetryPolicy, call
from bsync.core.runs import retry_policy
from bsync.core.timeutil import allday_dates, now_utc, to_utc
from bsync.errors import AuthError, ConfigError, RemoteError

T = TypeVar("T")
KEY_PROPERTY = "X-BSYNC-KEY"
PRODID = "-//bsync//bsync CalDAV//EN"
ICS_HEADERS = {"Content-Type": 'text/calendar; charset="utf-8"'}
MULTIGET_SIZE = 500  # hrefs per calendar-multiget REPORT
CURSOR_VERSION = 1
OCCURRENCE_SEPARATOR = "#"  # "<resource name>#<recurrence id>": one occurrence of a series

AUTH_HINT = ("check [caldav] username and password; iCloud and Fastmail need an app password "
             "(iCloud: appleid.apple.com → Sign-In and Security → App-Specific Passwords; "
             "Fastmail: Settings → Privacy & Security → App passwords), not the account password")
MISSING_HINT = ("check [caldav] url and calendar: url is a calendar's collection URL, or the server's root "
                "with calendar = its display name (a name not found lists the calendars there)")


def resource_name_for(key: str) -> str:
    """The resource name (and, without ``.ics``, the UID) of a booking's event: the key's
    SHA-256 in hex.  Deterministic, so a create repeated after a crash finds its own resource;
    only URL-safe characters, so every server stores it under the name bsync gave."""
    return "bsync-" + hashlib.sha256(key.encode()).hexdigest()[:40] + ".ics"


def uid_for(resource_name: str) -> str:
    """The UID bsync gives the event stored under ``resource_name``."""
    return resource_name.removesuffix(".ics") + "@bsync"


class StatusError(Exception):
    """A raw request (PUT, GET, DELETE) answered with a status its caller doesn't handle."""

    def __init__(self, status: int, what: str, retry_after: str | None = None) -> None:
        super().__init__(f"{what}: HTTP {status}")
        self.status = status
        self.retry_after = retry_after


def classify(exc: BaseException) -> CallFailure | None:
    """How a failed CalDAV request is treated: 401 is the credentials, 429 and 5xx and the
    network are worth a retry, anything else refuses this one request."""
    status: int | None = None
    retry_after: float | None = None
    if isinstance(exc, StatusError):
        status = exc.status
        if exc.retry_after and exc.retry_after.isdigit():
            retry_after = float(exc.retry_after)
    elif isinstance(exc, dav_error.RateLimitError):
        return CallFailure("transient", f"the CalDAV server asks to slow down: {exc}", getattr(exc, "retry_after", None))
    elif isinstance(exc, dav_error.DAVError):
        status = exc.status or (401 if isinstance(exc, dav_error.AuthorizationError) else None)
        if status is None and isinstance(exc, dav_error.NotFoundError):
            status = 404
    elif isinstance(exc, (niquests.exceptions.ConnectionError, niquests.exceptions.Timeout, OSError)):
        return CallFailure("transient", f"cannot reach the CalDAV server: {type(exc).__name__}: {exc}")
    else:
        return None
    if status == 401:
        return CallFailure("auth", "the CalDAV server rejected the credentials (401)", status=status)
    if status is not None and (status == 429 or status >= 500):
        return CallFailure("transient", f"the CalDAV server answered {status}", retry_after, status)
    return CallFailure("permanent", f"the CalDAV server refused the request ({status or exc})", status=status)


# -- the cursor ----------------------------------------------------------------------------------
@dataclass
class CursorState:
    """What ``read_changes`` resumes from: the collection (so a display name is looked up once),
    its sync token (None: the server has no sync-collection, compare ETags), and the ETag of
    every resource (the ``If-Match`` of the next updates, and the fallback change feed)."""

    collection: str
    token: str | None
    etags: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, cursor: str | None) -> "CursorState | None":
        """The state a stored cursor holds, or None (no cursor, or one of another format)."""
        if not cursor:
            return None
        try:
            data = json.loads(cursor)
            if data.get("v") != CURSOR_VERSION:
                return None
            return cls(data["collection"], data.get("token"), dict(data.get("etags") or {}))
        except (ValueError, KeyError, TypeError, AttributeError):
            return None

    def dump(self) -> str:
        return json.dumps({"v": CURSOR_VERSION, "collection": self.collection, "token": self.token,
                           "etags": self.etags}, sort_keys=True)


# -- reading iCalendar ---------------------------------------------------------------------------
def _when(value: Any, default_zone: ZoneInfo) -> str | None:
    """A DTSTART/DTEND value in the common-field form: ``date:YYYY-MM-DD`` or a UTC instant
    (a floating time is read in the business's zone)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=default_zone)
        return to_utc(value).isoformat()
    if isinstance(value, date):
        return f"date:{value.isoformat()}"
    return None


def _end_of(event: icalendar.Event) -> Any:
    """DTEND, or DTSTART + DURATION, or (RFC 5545 §3.6.1) the day after an all-day DTSTART."""
    if event.get("DTEND") is not None:
        return event.decoded("DTEND")
    start = event.decoded("DTSTART") if event.get("DTSTART") is not None else None
    if start is None:
        return None
    if event.get("DURATION") is not None:
        return start + event.decoded("DURATION")
    return start if isinstance(start, datetime) else start + timedelta(days=1)


def _attendees(event: icalendar.Event) -> list[str]:
    """The attendees' addresses (one ATTENDEE is a value, several a list), without ``mailto:``."""
    found = event.get("ATTENDEE")
    if found is None:
        return []
    values = found if isinstance(found, list) else [found]
    return [str(a).removeprefix("mailto:").removeprefix("MAILTO:") for a in values]


def event_fields(event: icalendar.Event, default_zone: ZoneInfo) -> dict[str, Any]:
    """The comparable projection of a VEVENT: what bsync manages, normalised.

    Instants compare in UTC; ``timezone`` is DTSTART's TZID (None for all-day, UTC and
    floating times); absent text is "".
    """
    start = event.get("DTSTART")
    tzid = start.params.get("TZID") if start is not None and isinstance(start.dt, datetime) else None
    return {
        "title": shared(str(event.get("SUMMARY") or "")) or "",
        "start": _when(event.decoded("DTSTART") if start is not None else None, default_zone),
        "end": _when(_end_of(event), default_zone),
        "timezone": shared(str(tzid)) if tzid else None,
        "description": str(event.get("DESCRIPTION") or ""),
        "location": str(event.get("LOCATION") or ""),
        "attendee": ", ".join(sorted(_attendees(event))) or None,
    }


def event_cancelled(event: icalendar.Event) -> bool:
    return str(event.get("STATUS") or "").upper() == "CANCELLED"


def _stamp(value: Any) -> str | None:
    if isinstance(value, datetime):
        value = value if value.tzinfo else value.replace(tzinfo=ZoneInfo("UTC"))
        return to_utc(value).isoformat(timespec="microseconds")
    return None


def _local_label(event: icalendar.Event) -> str:
    start = event.get("DTSTART")
    if start is None:
        return ""
    value = start.dt
    return value.strftime("%Y-%m-%d %H:%M") if isinstance(value, datetime) else value.isoformat()


def event_item(item_id: str, event: icalendar.Event, default_zone: ZoneInfo, *, series: bool | None = None,
               recurring: bool | None = None) -> TargetItem:
    """The TargetItem a VEVENT stands for, under ``item_id``."""
    fields = event_fields(event, default_zone)
    cancelled = event_cancelled(event)
    common = {"title": fields["title"], "start": fields["start"], "end": fields["end"],
              "location": fields["location"], "cancelled": cancelled}
    has_rule = event.get("RRULE") is not None or event.get("RDATE") is not None
    key = event.get(KEY_PROPERTY)
    return TargetItem(id=shared(item_id), key=shared(str(key)) if key else None, common=common, fields=fields,
                      hash=fields_hash(fields, cancelled),
                      updated=_stamp(event.decoded("LAST-MODIFIED") if event.get("LAST-MODIFIED") is not None
                                     else event.decoded("DTSTAMP") if event.get("DTSTAMP") is not None else None),
                      recurring=recurring if recurring is not None else (has_rule or event.get("RECURRENCE-ID") is not None),
                      series=series if series is not None else has_rule,
                      label=f"{fields['title']} · {_local_label(event)}")


def gone_item(item_id: str) -> TargetItem:
    """A resource deleted from the calendar: only its id is left (as Google's cancelled stubs)."""
    fields = {"title": "", "start": None, "end": None, "timezone": None, "description": "", "location": "",
              "attendee": None}
    common = {"title": "", "start": None, "end": None, "location": "", "cancelled": True}
    return TargetItem(id=shared(item_id), key=None, common=common, fields=fields, hash=fields_hash(fields, True),
                      label=item_id)


def master_event(calendar: icalendar.Calendar) -> icalendar.Event | None:
    """The VEVENT a resource is about: the one without RECURRENCE-ID (a series' rules), else
    the first (a resource holding only overridden occurrences); None for a VTODO and the like."""
    events = list(calendar.walk("VEVENT"))
    for event in events:
        if event.get("RECURRENCE-ID") is None:
            return event
    return events[0] if events else None


def _recurrence_stamp(value: Any) -> str:
    """An occurrence's RECURRENCE-ID as the suffix of its id: ``20261203T100000Z`` or ``20261203``."""
    if isinstance(value, datetime):
        value = value if value.tzinfo else value.replace(tzinfo=ZoneInfo("UTC"))
        return to_utc(value).strftime("%Y%m%dT%H%M%SZ")
    return value.strftime("%Y%m%d")


# -- the backend ---------------------------------------------------------------------------------
class CalDAVCalendar:
    """One CalDAV calendar collection as a :class:`bsync.calendars.base.CalendarBackend`:
    bookings become VEVENT resources in it, and its free/busy answers availability."""

    name = "caldav"
    label = "CalDAV calendar"
    id_setting = "[caldav] calendar"
    # iCalendar's STATUS words (RFC 5545), and the property holding the booking key.
    terms = TargetTerms(status="STATUS", confirmed="CONFIRMED", cancelled="CANCELLED", key_field=KEY_PROPERTY)
    check_name = "caldav calendar"

    def __init__(self, config: CalDAVConfig, policy: RetryPolicy, *, delete_policy: str = "cancel",
                 default_timezone: str = "UTC", sync_collection: bool = True, free_busy_report: bool = True) -> None:
        """``sync_collection=False`` compares ETags even where the server has sync-collection,
        and ``free_busy_report=False`` computes busy time from the events even where the
        server answers a free-busy REPORT: both for the tests of those fallbacks."""
        self.config = config
        self.policy = policy
        self.delete_policy = delete_policy
        self.default_zone = ZoneInfo(default_timezone)
        self.use_sync_collection = sync_collection
        self.use_free_busy_report = free_busy_report
        self.client = caldav.DAVClient(url=config.url, username=config.username,
                                       password=config.password.get_secret_value(), auth_type="basic",
                                       timeout=config.timeout_s)  # type: ignore[arg-type]
        self._requests = 0
        self.client.session.hooks["pre_send"].append(self._count)
        self._collection: str | None = None  # the calendar collection's URL, once known
        self._etags: dict[str, str] = {}  # resource name -> ETag, as last read or written
        self._raw: dict[str, icalendar.Calendar] = {}  # resource name -> its iCalendar, as last read
        self.supports_sync_collection: bool | None = None  # learnt from the first change read

    @classmethod
    def from_settings(cls, settings: Settings) -> "CalDAVCalendar":
        """The calendar of ``[caldav]``, with the run's retry policy and ``[sync]`` delete policy."""
        return cls(settings.require("caldav"), retry_policy(settings), delete_policy=settings.sync.delete_policy,
                   default_timezone=settings.timezone)

    def _count(self, *args: Any, **kwargs: Any) -> None:
        self._requests += 1

    @property
    def requests(self) -> int:
        """HTTP requests sent (retries and redirects included), counted by the HTTP session."""
        return self._requests

    @property
    def scope(self) -> str:
        """The calendar as configured: the collection URL, or the root and the calendar's name."""
        calendar = self.config.calendar
        if calendar and calendar.startswith(("http://", "https://")):
            return calendar if calendar.endswith("/") else calendar + "/"
        return f"{self.config.url}#{calendar}" if calendar else self.config.url

    def close(self) -> None:
        self.client.close()

    # -- requests ---------------------------------------------------------------------------
    def _call(self, fn: Callable[[], T], what: str) -> T:
        return call(fn, classify=classify, policy=self.policy, what=f"CalDAV: {what}")

    def _send(self, method: str, url: str, what: str, *, body: str = "", headers: Mapping[str, str] | None = None,
              handled: tuple[int, ...] = ()) -> Any:
        """One raw request, retried per the policy; statuses in ``handled`` are returned to the
        caller, other errors raised as typed errors."""

        def send() -> Any:
            response = self.client.request(url, method, body, dict(headers or {}))
            if response.status >= 400 and response.status not in handled:
                raise StatusError(response.status, what, response.headers.get("Retry-After"))
            return response

        return self._call(send, what)

    def _href(self, name: str) -> str:
        return self.collection() + quote(name)

    @staticmethod
    def _name_of(href: Any) -> str:
        return unquote(urlsplit(str(href)).path.rstrip("/").rsplit("/", 1)[-1])

    # -- the collection ---------------------------------------------------------------------
    def collection(self) -> str:
        """The calendar collection's URL (ending in ``/``): ``[caldav] calendar`` when it is a
        URL, else ``url`` itself when no calendar is named, else the calendar with that display
        name under the principal (three requests, once; the cursor keeps the answer)."""
        if self._collection is None:
            calendar = self.config.calendar
            if not calendar:
                self._collection = self.config.url
            elif calendar.startswith(("http://", "https://")):
                self._collection = self.scope
            else:
                self._collection = self._find_by_name(calendar)
        return self._collection

    def _calendars(self) -> list[Any]:
        principal = self._call(self.client.get_principal, "finding the account's principal")
        return self._call(principal.get_calendars, "listing the account's calendars")

    def _find_by_name(self, name: str) -> str:
        calendars = self._calendars()
        names = []
        for calendar in calendars:
            shown = self._call(calendar.get_display_name, "reading a calendar's name") or self._name_of(calendar.url)
            names.append(shown)
            if shown == name:
                url = str(calendar.url)
                return url if url.endswith("/") else url + "/"
        raise ConfigError(f"caldav.calendar: no calendar named {name!r} under {self.config.url}",
                          hint=f"calendars found: {', '.join(repr(n) for n in names) or 'none'}")

    def _calendar_object(self, url: str | None = None) -> Any:
        return self.client.calendar(url=url or self.collection())

    # -- rendering --------------------------------------------------------------------------
    def target_id_for(self, key: str) -> str:
        return resource_name_for(key)

    def event_component(self, booking: Booking, name: str, *, sequence: int = 0,
                        cancelled: bool = False) -> icalendar.Event:
        """The VEVENT for a booking, stored under resource ``name``: the one place a booking
        becomes iCalendar.  Timed: DTSTART/DTEND in the booking's own zone (its TZID); all-day:
        ``VALUE=DATE`` dates, the end exclusive as the booking's end already is."""
        event = icalendar.Event()
        event.add("UID", uid_for(name))
        event.add("DTSTAMP", now_utc())
        event.add("SEQUENCE", sequence)
        event.add("SUMMARY", booking.title)
        if booking.all_day:
            first, end_exclusive = allday_dates(booking.start, booking.end, booking.tz)
            event.add("DTSTART", first)
            event.add("DTEND", end_exclusive)
        else:
            event.add("DTSTART", booking.start.astimezone(booking.tz))
            event.add("DTEND", booking.end.astimezone(booking.tz))
        text = describe(booking)
        if text:
            event.add("DESCRIPTION", text)
        if booking.location:
            event.add("LOCATION", booking.location)
        event.add("STATUS", "CANCELLED" if cancelled else "CONFIRMED")
        event.add(KEY_PROPERTY, booking.key)
        return event

    @staticmethod
    def _ics(calendar: icalendar.Calendar) -> str:
        return calendar.to_ical().decode()

    @staticmethod
    def _wrap(*events: icalendar.Event) -> icalendar.Calendar:
        calendar = icalendar.Calendar()
        calendar.add("PRODID", PRODID)
        calendar.add("VERSION", "2.0")
        for event in events:
            calendar.add_component(event)
        calendar.add_missing_timezones()  # a VTIMEZONE for each TZID used
        return calendar

    def project(self, booking: Booking) -> Mapping[str, Any]:
        """The comparable fields of the booking's event (what :func:`event_fields` reads back)."""
        return event_fields(self.event_component(booking, resource_name_for(booking.key)), self.default_zone)

    def fields_hash(self, fields: Mapping[str, Any]) -> str:
        """The hash of a live (not cancelled) event with these fields."""
        return fields_hash(fields, False)

    def import_hints(self, item: TargetItem) -> ImportHints:
        """An event made in the calendar: its zone, its description as notes, its first guest
        as the customer."""
        fields = item.fields
        return ImportHints(timezone=fields.get("timezone") or None, notes=fields.get("description") or None,
                           email=(fields.get("attendee") or "").split(", ")[0] or None)

    # -- reading ----------------------------------------------------------------------------
    def read_changes(self, cursor: str | None) -> ChangeSet:
        """Resources changed since ``cursor`` (every resource without one), deleted ones as
        cancelled stubs.  A sync token the server no longer accepts falls back to a full read,
        which ``complete`` reports."""
        state = CursorState.parse(cursor)
        if state is not None and self._collection is None:
            self._collection = state.collection if self._same_calendar(state) else None
        if state is None or state.collection != self.collection():
            return self._read_all()
        self._etags = dict(state.etags)
        if state.token is not None and self.use_sync_collection:
            try:
                changed, deleted, token = self._sync_collection(state.token)
            except _InvalidToken:
                return self._read_all()
            self.supports_sync_collection = True
        else:
            current = self._list_etags()
            changed = {name: etag for name, etag in current.items() if state.etags.get(name) != etag}
            deleted = set(state.etags) - set(current)
            token = None
        items = self._load(changed)
        for name in deleted:
            self._etags.pop(name, None)
            self._raw.pop(name, None)
            items[name] = gone_item(name)
        return ChangeSet(items, CursorState(self.collection(), token, dict(self._etags)).dump(), False)

    def _same_calendar(self, state: CursorState) -> bool:
        """Whether a cursor's collection is the configured calendar's (else it starts afresh)."""
        calendar = self.config.calendar
        if calendar and calendar.startswith(("http://", "https://")):
            return state.collection == self.scope
        return state.collection == self.config.url if not calendar else True  # a name: trust the lookup kept

    def _read_all(self) -> ChangeSet:
        """Every resource, with the token (or, without sync-collection, the ETags) to resume from."""
        token: str | None = None
        listing: dict[str, str] | None = None
        if self.use_sync_collection:
            try:
                changed, _, token = self._sync_collection(None)
                listing = changed
                self.supports_sync_collection = True
            except _NoSyncCollection:
                self.supports_sync_collection = False
        if listing is None:
            listing = self._list_etags()
        self._etags = {}
        items = self._load(listing)
        return ChangeSet(items, CursorState(self.collection(), token, dict(self._etags)).dump(), True)

    def _sync_collection(self, token: str | None) -> tuple[dict[str, str], set[str], str | None]:
        """One sync-collection REPORT (the library follows a truncated answer): changed
        resources with their ETags, deleted ones, and the new token."""
        calendar = self._calendar_object()

        def report() -> Any:
            return calendar.get_objects_by_sync_token(sync_token=token, load_objects=False, disable_fallback=True)

        try:
            result = self._call(report, "reading changes (sync-collection)")
        except (AuthError, RemoteError) as exc:
            cause = exc.__cause__ or exc.__context__
            preconditions = getattr(cause, "preconditions", []) or []
            if "{DAV:}valid-sync-token" in preconditions and token is not None:
                raise _InvalidToken() from None
            if token is None and isinstance(exc, RemoteError) and not _is_missing(cause):
                raise _NoSyncCollection() from None
            raise
        deleted = {self._name_of(url) for url in getattr(result, "deleted_urls", set()) or set()}
        changed = {self._name_of(obj.url): obj.etag for obj in result if self._name_of(obj.url) not in deleted}
        return {n: e for n, e in changed.items() if n}, deleted, result.sync_token

    def _list_etags(self) -> dict[str, str]:
        """Every resource's ETag (one PROPFIND, depth 1): the change feed without sync-collection."""
        calendar = self._calendar_object()
        response = self._call(lambda: calendar.get_properties([dav.GetEtag()], depth=1, parse_response_xml=False),
                              "listing the calendar's resources")
        own = urlsplit(self.collection()).path
        out = {}
        for href, props in response.expand_simple_props([dav.GetEtag()]).items():
            if urlsplit(str(href)).path.rstrip("/") == own.rstrip("/"):
                continue  # the collection itself
            etag = props.get(dav.GetEtag.tag)
            if etag:
                out[self._name_of(href)] = etag
        return out

    def _load(self, names: Mapping[str, str]) -> dict[str, TargetItem]:
        """The items of these resources, read with calendar-multiget REPORTs; ETags kept."""
        items: dict[str, TargetItem] = {}
        wanted = sorted(names)
        calendar = self._calendar_object()
        for start in range(0, len(wanted), MULTIGET_SIZE):
            urls = [URL.objectify(self._href(name)) for name in wanted[start:start + MULTIGET_SIZE]]
            objects = self._call(lambda urls=urls: calendar.multiget(urls), "reading events (calendar-multiget)")
            for obj in objects:
                name = self._name_of(obj.url)
                self._etags[name] = obj.etag or names.get(name) or ""
                item = self._remember(name, obj.data)
                if item is not None:
                    items[name] = item
        for name in wanted:  # listed but unreadable (deleted meanwhile, or not an event)
            self._etags.setdefault(name, names[name])
        return items

    def _remember(self, name: str, data: str | bytes | None) -> TargetItem | None:
        """Parse and cache a resource; its item, or None for anything that isn't an event."""
        if not data:
            return None
        try:
            parsed = icalendar.Calendar.from_ical(data)
        except ValueError:
            return None
        self._raw[name] = parsed
        event = master_event(parsed)
        return event_item(name, event, self.default_zone) if event is not None else None

    def fetch(self, target_id: str) -> TargetItem | None:
        """One item by id (a cancelled one too), or None if the calendar doesn't have it."""
        name, occurrence = _split_occurrence(target_id)
        response = self._send("GET", self._href(name), f"reading event {name}", handled=(404, 410))
        if response.status in (404, 410):
            return None
        self._etags[name] = response.headers.get("ETag") or ""
        item = self._remember(name, response.raw)
        if occurrence is None or item is None:
            return item
        return self._occurrence_item(name, occurrence)

    def read_occurrences(self, start: datetime, end: datetime) -> dict[str, TargetItem]:
        """The occurrences of recurring series meeting [start, end), each under
        ``<resource>#<recurrence id>`` (cancelled ones included): one calendar-query REPORT,
        the series expanded here with ``recurring-ical-events``."""
        items: dict[str, TargetItem] = {}
        for name, parsed in self._events_between(start, end).items():
            master = master_event(parsed)
            if master is None or (master.get("RRULE") is None and master.get("RDATE") is None):
                continue
            for occurrence in recurring_ical_events.of(parsed, skip_bad_series=True).between(start, end):
                item_id = f"{name}{OCCURRENCE_SEPARATOR}{_recurrence_stamp(_recurrence_id(occurrence))}"
                items[item_id] = event_item(item_id, occurrence, self.default_zone, series=False, recurring=True)
        return items

    def _occurrence_item(self, name: str, stamp: str) -> TargetItem | None:
        parsed = self._raw.get(name)
        if parsed is None:
            return None
        for occurrence in recurring_ical_events.of(parsed, skip_bad_series=True).all():
            if _recurrence_stamp(_recurrence_id(occurrence)) == stamp:
                item_id = f"{name}{OCCURRENCE_SEPARATOR}{stamp}"
                return event_item(item_id, occurrence, self.default_zone, series=False, recurring=True)
        return None

    def _events_between(self, start: datetime, end: datetime, url: str | None = None) -> dict[str, icalendar.Calendar]:
        """The resources with an event meeting [start, end) (a calendar-query REPORT with a
        time range; the server expands nothing), parsed."""
        calendar = self._calendar_object(url)
        found = self._call(lambda: calendar.search(start=start, end=end, event=True, expand=False),
                           "searching events in a time range")
        out = {}
        for obj in found:
            name = self._name_of(obj.url)
            if obj.etag and url is None:
                self._etags[name] = obj.etag
            try:
                out[name] = icalendar.Calendar.from_ical(obj.data)
            except ValueError:
                continue
            if url is None:
                self._raw[name] = out[name]
        return out

    # -- free/busy ---------------------------------------------------------------------------
    def free_busy(self, calendars: list[str], start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
        """Busy intervals of ``calendars`` (this calendar's scope, or collection URLs) in
        [start, end): the server's free-busy REPORT where it answers one, else the events'
        (recurrences expanded; cancelled and transparent events are free)."""
        busy: list[tuple[datetime, datetime]] = []
        for calendar in dict.fromkeys(calendars):
            url = self.collection() if calendar in (self.scope, self.name, "") else calendar
            if not url.startswith(("http://", "https://")):
                url = self._find_by_name(calendar)
            busy.extend(self._busy(url, to_utc(start), to_utc(end)))
        return busy

    def _busy(self, url: str, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
        if self.use_free_busy_report:
            calendar = self._calendar_object(url)
            try:
                answer = self._call(lambda: calendar.freebusy_request(start, end), "asking free/busy")
                return _free_busy_periods(answer.data)
            except RemoteError as exc:
                if _is_missing(exc.__cause__ or exc.__context__):
                    raise RemoteError(f"CalDAV: no calendar at {url}", hint=MISSING_HINT) from None
                # the server answers no free-busy REPORT: compute it from the events
        busy = []
        for parsed in self._events_between(start, end, url).values():
            for event in recurring_ical_events.of(parsed, skip_bad_series=True).between(start, end):
                if event_cancelled(event) or str(event.get("TRANSP") or "").upper() == "TRANSPARENT":
                    continue
                first, last = event.decoded("DTSTART"), _end_of(event)
                busy.append((self._instant(first), self._instant(last)))
        return busy

    def _instant(self, value: Any) -> datetime:
        if isinstance(value, datetime):
            return to_utc(value if value.tzinfo else value.replace(tzinfo=self.default_zone))
        return to_utc(datetime.combine(value, datetime.min.time(), self.default_zone))

    # -- writing ----------------------------------------------------------------------------
    def write(self, op: TargetOp) -> WriteResult:
        """One write, retried per the policy; see the module docstring for the preconditions."""
        name, occurrence = _split_occurrence(op.target_id)
        if occurrence is not None:
            return self._write_occurrence(op, name, occurrence)
        if op.kind == "create":
            return self._create(op.booking, name)
        if op.kind in ("update", "restore"):
            return self._update(op.booking, name)
        if op.kind == "stamp":
            return self._stamp(name, op.key)
        if op.kind == "remove":
            return self._remove(name)
        raise ValueError(f"unknown write {op.kind!r}")

    def write_many(self, ops: Sequence[TargetOp]) -> list[WriteResult | Exception]:
        """Each write in turn (CalDAV has no batch request): its WriteResult, or the
        RemoteError refusing it.  Auth and unreachable errors are raised."""
        out: list[WriteResult | Exception] = []
        for op in ops:
            try:
                out.append(self.write(op))
            except RemoteError as exc:
                out.append(exc)
        return out

    def _put(self, name: str, calendar: icalendar.Calendar, what: str, *, create: bool) -> Any:
        """PUT a resource: ``If-None-Match: *`` to create, ``If-Match: <etag>`` to change it.
        Returns the response; a 412 is the caller's to judge."""
        headers = dict(ICS_HEADERS)
        if create:
            headers["If-None-Match"] = "*"
        else:
            etag = self._etags.get(name) or self._read_etag(name)
            if etag is None:
                return None  # gone
            headers["If-Match"] = etag
        response = self._send("PUT", self._href(name), what, body=self._ics(calendar), headers=headers,
                              handled=(412,))
        if response.status < 300:
            self._etags[name] = response.headers.get("ETag") or ""
            self._raw[name] = calendar
        return response

    def _read_etag(self, name: str) -> str | None:
        """The ETag of a resource the reads did not show this run (fetched now), None if gone."""
        item = self.fetch(name)
        return self._etags.get(name) if item is not None else None

    def _written(self, name: str, event: icalendar.Event, note: str = "") -> WriteResult:
        item = event_item(name, event, self.default_zone)
        return WriteResult(name, self._etags.get(name) or None, note, hash=item.hash, item=item)

    def _create(self, booking: Booking | None, name: str) -> WriteResult:
        """Create with the deterministic name; on 412 adopt (and if needed restore) what is there."""
        assert booking is not None
        event = self.event_component(booking, name)
        response = self._put(name, self._wrap(event), f"creating event {name}", create=True)
        if response.status == 412:
            return self._adopt(booking, name)
        return self._written(name, event)

    def _adopt(self, booking: Booking, name: str) -> WriteResult:
        """The resource exists (412): take it over, restoring or updating it as needed."""
        existing = self.fetch(name)
        if existing is None:  # deleted between the PUT and the GET: create again
            return self._create(booking, name)
        if existing.cancelled:
            return replace(self._update(booking, name), note="restored the cancelled event with this name")
        if dict(existing.fields) != dict(self.project(booking)) or existing.key != booking.key:
            return replace(self._update(booking, name), note="adopted and updated the existing event")
        return WriteResult(name, self._etags.get(name) or None, "adopted the existing event", hash=existing.hash,
                           item=existing)

    def _sequence_after(self, name: str) -> int:
        """The SEQUENCE of a real change: one more than the stored event's (RFC 5545 §3.8.7.4)."""
        parsed = self._raw.get(name)
        event = master_event(parsed) if parsed is not None else None
        try:
            return int(event.get("SEQUENCE", 0)) + 1 if event is not None else 0
        except (TypeError, ValueError):
            return 0

    def _conflict(self, name: str) -> RemoteError:
        self._etags.pop(name, None)
        return RemoteError(f"CalDAV: event {name} changed on the server since bsync read it (412 Precondition "
                           f"Failed); not overwritten: the next run reads it again and plans anew")

    def _update(self, booking: Booking | None, name: str) -> WriteResult:
        """Rewrite the event to show the booking (a cancelled one is restored), If-Match."""
        assert booking is not None
        event = self.event_component(booking, name, sequence=self._sequence_after(name))
        response = self._put(name, self._wrap(event), f"updating event {name}", create=False)
        if response is None:
            raise RemoteError(f"CalDAV: event {name} is gone; the next run creates it again")
        if response.status == 412:
            raise self._conflict(name)
        return self._written(name, event)

    def _stored(self, name: str) -> icalendar.Calendar | None:
        """The resource as last read (read now if this run hasn't), or None when it is gone."""
        if name not in self._raw and self.fetch(name) is None:
            return None
        return self._raw.get(name)

    def _change_stored(self, name: str, what: str, change: Callable[[icalendar.Event], None]) -> WriteResult | None:
        """Apply ``change`` to the stored event's master VEVENT and PUT it back, If-Match;
        None when the resource is gone."""
        parsed = self._stored(name)
        event = master_event(parsed) if parsed is not None else None
        if parsed is None or event is None:
            return None
        change(event)
        response = self._put(name, parsed, f"{what} event {name}", create=False)
        if response is None:
            return None
        if response.status == 412:
            raise self._conflict(name)
        return self._written(name, event)

    def _stamp(self, name: str, key: str | None) -> WriteResult:
        """Mark an imported event as bsync's: store its booking key on it, nothing else changed."""
        def put_key(event: icalendar.Event) -> None:
            event.pop(KEY_PROPERTY, None)
            event.add(KEY_PROPERTY, key)

        result = self._change_stored(name, "marking", put_key)
        if result is None:
            raise RemoteError(f"CalDAV: event {name} is gone; nothing to mark")
        return result

    def _remove(self, name: str) -> WriteResult:
        """Cancel (STATUS:CANCELLED, content kept) or DELETE the event, per ``delete_policy``;
        a resource already gone is "already gone"."""
        if self.delete_policy == "delete":
            headers = {"If-Match": self._etags[name]} if self._etags.get(name) else {}
            response = self._send("DELETE", self._href(name), f"deleting event {name}", headers=headers,
                                  handled=(404, 410, 412))
            if response.status == 412:
                raise self._conflict(name)
            self._etags.pop(name, None)
            self._raw.pop(name, None)
            if response.status in (404, 410):
                return WriteResult(name, None, "already gone")
            return WriteResult(name, None)

        def cancel(event: icalendar.Event) -> None:
            sequence = int(event.get("SEQUENCE", 0) or 0)
            for prop in ("STATUS", "SEQUENCE"):
                event.pop(prop, None)
            event.add("STATUS", "CANCELLED")
            event.add("SEQUENCE", sequence + 1)

        result = self._change_stored(name, "cancelling", cancel)
        return result if result is not None else WriteResult(name, None, "already gone")

    # -- one occurrence of a series -----------------------------------------------------------
    def _write_occurrence(self, op: TargetOp, name: str, stamp: str) -> WriteResult:
        """A write to one occurrence (an imported one): an overriding VEVENT with its
        RECURRENCE-ID in the series' resource, PUT back If-Match."""
        parsed = self._stored(name)
        if parsed is None:
            if op.kind == "remove":
                return WriteResult(op.target_id, None, "already gone")
            raise RemoteError(f"CalDAV: the series of occurrence {op.target_id} is gone")
        occurrence = next((o for o in recurring_ical_events.of(parsed, skip_bad_series=True).all()
                           if _recurrence_stamp(_recurrence_id(o)) == stamp), None)
        if occurrence is None:
            if op.kind == "remove":
                return WriteResult(op.target_id, None, "already gone")
            raise RemoteError(f"CalDAV: occurrence {op.target_id} is no longer in its series")
        override = _override_for(parsed, occurrence)
        if op.kind == "stamp":
            override.pop(KEY_PROPERTY, None)
            override.add(KEY_PROPERTY, op.key)
        elif op.kind in ("update", "restore", "create"):
            assert op.booking is not None
            rendered = self.event_component(op.booking, name)
            for prop in ("SUMMARY", "DTSTART", "DTEND", "DESCRIPTION", "LOCATION", "STATUS", KEY_PROPERTY):
                override.pop(prop, None)
                if rendered.get(prop) is not None:
                    override.add(prop, rendered.decoded(prop) if prop in ("DTSTART", "DTEND") else rendered.get(prop))
        elif op.kind == "remove":
            override.pop("STATUS", None)
            override.add("STATUS", "CANCELLED")
        sequence = int(override.get("SEQUENCE", 0) or 0) + (0 if op.kind == "stamp" else 1)
        override.pop("SEQUENCE", None)
        override.add("SEQUENCE", sequence)
        parsed.add_missing_timezones()
        response = self._put(name, parsed, f"writing occurrence {op.target_id}", create=False)
        if response is None:
            raise RemoteError(f"CalDAV: the series of occurrence {op.target_id} is gone")
        if response.status == 412:
            raise self._conflict(name)
        item = event_item(op.target_id, override, self.default_zone, series=False, recurring=True)
        return WriteResult(op.target_id, self._etags.get(name) or None, hash=item.hash, item=item)

    # -- doctor -------------------------------------------------------------------------------
    def check(self) -> str:
        """``bsync doctor``'s line: one authenticated PROPFIND of the calendar (its name, and
        whether the server offers sync-collection), or the error with its fix."""
        try:
            url = self.collection()
            calendar = self._calendar_object(url)
            props = self._call(lambda: calendar.get_properties([dav.DisplayName(), dav.ResourceType(),
                                                                dav.SyncToken()]),
                               f"reading calendar {url}")
        except AuthError as exc:
            exc.hint = exc.hint or AUTH_HINT
            raise
        except RemoteError as exc:
            exc.hint = exc.hint or MISSING_HINT
            raise
        kinds = str(props.get(dav.ResourceType.tag) or "")
        if kinds and "calendar" not in kinds:
            raise ConfigError(f"caldav: {url} is not a calendar collection", hint=MISSING_HINT)
        shown = props.get(dav.DisplayName.tag) or self._name_of(url)
        syncs = bool(props.get(dav.SyncToken.tag))
        return (f"calendar {shown!r} is readable at {url}; "
                f"{'sync-collection supported' if syncs else 'no sync-collection: changes found by comparing ETags'}")


class _InvalidToken(Exception):
    """The server no longer accepts the stored sync token (RFC 6578 §3.2 valid-sync-token)."""


class _NoSyncCollection(Exception):
    """The server answers no sync-collection REPORT."""


def _is_missing(exc: BaseException | None) -> bool:
    return isinstance(exc, dav_error.NotFoundError) or getattr(exc, "status", None) == 404


def _split_occurrence(target_id: str) -> tuple[str, str | None]:
    """``name#stamp`` -> (name, stamp); a plain resource name -> (name, None)."""
    name, sep, stamp = target_id.partition(OCCURRENCE_SEPARATOR)
    return name, (stamp if sep else None)


def _recurrence_id(occurrence: icalendar.Event) -> Any:
    rid = occurrence.get("RECURRENCE-ID")
    return rid.dt if rid is not None else occurrence.decoded("DTSTART")


def _override_for(parsed: icalendar.Calendar, occurrence: icalendar.Event) -> icalendar.Event:
    """The VEVENT overriding this occurrence in its resource, added (a copy of the occurrence
    without the series' rules) when there is none yet."""
    stamp = _recurrence_stamp(_recurrence_id(occurrence))
    for event in parsed.walk("VEVENT"):
        rid = event.get("RECURRENCE-ID")
        if rid is not None and _recurrence_stamp(rid.dt) == stamp:
            return event
    override = icalendar.Event()
    for prop, value in occurrence.property_items(recursive=False):
        if prop in ("BEGIN", "END", "RRULE", "RDATE", "EXDATE", "RECURRENCE-ID"):
            continue
        override.add(prop, value)
    override.add("RECURRENCE-ID", _recurrence_id(occurrence))
    parsed.add_component(override)
    return override


def _free_busy_periods(data: str | bytes) -> list[tuple[datetime, datetime]]:
    """The busy periods of a VFREEBUSY answer (FBTYPE other than FREE)."""
    busy: list[tuple[datetime, datetime]] = []
    for calendar in icalendar.Calendar.from_ical(data, multiple=True):
        for component in calendar.walk("VFREEBUSY"):
            found = component.get("FREEBUSY")
            for prop in (found if isinstance(found, list) else [found] if found is not None else []):
                if str(prop.params.get("FBTYPE", "BUSY")).upper() == "FREE":
                    continue
                for period in (prop.dt if isinstance(prop.dt, list) else [prop.dt]):
                    start, end = period
                    if isinstance(end, timedelta):
                        end = start + end
                    busy.append((to_utc(start), to_utc(end)))
    return busy
