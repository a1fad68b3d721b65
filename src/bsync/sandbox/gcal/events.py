"""Calendars and their events: ``calendars.get`` and ``events.insert / get / patch / update /
delete / list / instances``, with the store they write to.

* client-chosen event ids (base32hex, 5-1024 chars) that are never freed: a deleted
  event stays readable as ``status: "cancelled"``, re-inserting its id is a 409,
  deleting it again is a 410;
* ``events.list`` paging, filters and incremental sync with ``syncToken``.  Tokens are
  built on a monotonically increasing change counter, never on wall time, so writes
  landing in the same millisecond are never missed;
* occurrences of a recurring event (:mod:`.recurrence`) can be read, written and deleted by
  their instance id; a write stores the occurrence as an exception of its own.

How a request body becomes a stored resource is :mod:`.resource`'s business; this module
owns the store: which events exist, the change counter, etags and sync tokens.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import secrets
import uuid
from datetime import datetime
from typing import Any, Callable, Iterable
from urllib.parse import unquote
from zoneinfo import ZoneInfo

from bsync.sandbox.base import JSON, Request, Response, SandboxApiError, route
from bsync.sandbox.gcal import recurrence
from bsync.sandbox.gcal.api import (
    API,
    GoogleApi,
    b64,
    bad_request,
    flag,
    invalid_param,
    json_body,
    unb64,
)
from bsync.sandbox.gcal.model import FIELD_ORDER, Calendar, Event
from bsync.sandbox.gcal.resource import (
    EVENT_ID_RE,
    WRITABLE,
    client_sequence,
    compose,
    etag,
    merge_patch,
    render,
    strip_nulls,
    writable_fields,
)
from bsync.sandbox.gcal.times import find_zone, format_ms, parse_rfc3339, to_utc

DEFAULT_CALENDAR_ID = "bsync-demo@group.calendar.google.com"
DEFAULT_CALENDAR_SUMMARY = "bsync demo"
MAX_RESULTS_DEFAULT = 250
MAX_RESULTS_LIMIT = 2500
_SYNC_EXCLUSIVE = ("iCalUID", "orderBy", "privateExtendedProperty", "q",
                   "sharedExtendedProperty", "timeMin", "timeMax", "updatedMin")
# Query parameters that do not shape the result set (left out of the page-token check).
_NEUTRAL_PARAMS = {"pageToken", "maxResults", "alt", "fields", "prettyPrint", "quotaUser", "key",
                   "userIp", "oauth_token", "access_token", "callback", "upload_protocol",
                   "uploadType", "$.xgafv", "alwaysIncludeEmail", "maxAttendees"}


class EventsApi(GoogleApi):
    """The calendar and event endpoints over an in-memory store of calendars."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.calendar_id = DEFAULT_CALENDAR_ID
        super().__init__(host, port)

    # -- state ------------------------------------------------------------------------------
    def reset_state(self) -> None:
        super().reset_state()
        with self.lock:
            self._calendars: dict[str, Calendar] = {}
            self._primary: str | None = None
            self._seq = 0                                   # global change counter
            self._sync_tokens: dict[str, tuple[str, int]] = {}
            self.add_calendar(self.calendar_id, "UTC", summary=DEFAULT_CALENDAR_SUMMARY)

    def add_calendar(self, calendar_id: str, time_zone: str = "UTC",
                     summary: str | None = None) -> str:
        """Create an empty calendar (the first one is also ``primary``)."""
        tz = find_zone(time_zone)
        if tz is None:
            raise ValueError(f"unknown time zone {time_zone!r}")
        with self.lock:
            if calendar_id in self._calendars or calendar_id == "primary":
                raise ValueError(f"calendar {calendar_id!r} already exists")
            now = self.now()
            self._calendars[calendar_id] = Calendar(
                id=calendar_id, summary=summary if summary is not None else calendar_id,
                time_zone=time_zone, tz=tz, created=now, updated=now)
            if self._primary is None:
                self._primary = calendar_id
        return calendar_id

    def lookup_calendar(self, calendar_id: str) -> Calendar | None:
        """The calendar with this id (``primary``: the first one created), or None."""
        key = self._primary if calendar_id == "primary" else calendar_id
        return self._calendars.get(key or "")

    def _calendar(self, calendar_id: str) -> Calendar:
        cal = self.lookup_calendar(calendar_id)
        if cal is None:
            raise SandboxApiError(404, "Not Found", "notFound")
        return cal

    def _next_change(self) -> int:
        self._seq += 1
        return self._seq

    def expire_sync_tokens(self) -> None:
        """Invalidate every issued sync token (the next incremental list answers 410)."""
        with self.lock:
            self._sync_tokens.clear()

    @staticmethod
    def _params(request: Request) -> tuple[str, str | None]:
        cal = unquote(request.params["calendar_id"])
        event = request.params.get("event_id")
        return cal, (unquote(event) if event is not None else None)

    # -- calendars.get -------------------------------------------------------------------------
    @route("GET", API + "/calendars/{calendar_id}")
    def calendars_get(self, request: Request) -> Response:
        cal = self._calendar(self._params(request)[0])
        return Response(200, {
            "kind": "calendar#calendar", "etag": f'"{cal.change or 1}"', "id": cal.id,
            "summary": cal.summary, "timeZone": cal.time_zone,
            "conferenceProperties": {"allowedConferenceSolutionTypes": ["hangoutsMeet"]}})

    # -- events: HTTP ----------------------------------------------------------------------------
    @route("POST", API + "/calendars/{calendar_id}/events")
    def events_insert(self, request: Request) -> Response:
        cal = self._calendar(self._params(request)[0])
        body = json_body(request)
        ev = self._insert(cal, body, attachments=bool(flag(request, "supportsAttachments")),
                          conference=self._conference_version(request))
        return Response(200, ev.resource)

    @route("GET", API + "/calendars/{calendar_id}/events/{event_id}")
    def events_get(self, request: Request) -> Response:
        cal_id, event_id = self._params(request)
        cal = self._calendar(cal_id)
        ev, _ = self._stored_or_instance(cal, event_id)
        if_none = request.headers.get("if-none-match")
        if if_none and if_none.strip() in (ev.resource["etag"], "*"):
            return Response(304, None)
        tz = self._request_zone(request, cal)
        return Response(200, render(ev, cal, tz, full=True))

    @route("PATCH", API + "/calendars/{calendar_id}/events/{event_id}")
    def events_patch(self, request: Request) -> Response:
        return self._modify(request, patch=True)

    @route("PUT", API + "/calendars/{calendar_id}/events/{event_id}")
    def events_update(self, request: Request) -> Response:
        return self._modify(request, patch=False)

    def _modify(self, request: Request, *, patch: bool) -> Response:
        """events.patch (merge) and events.update (full replace) share everything else."""
        cal_id, event_id = self._params(request)
        cal = self._calendar(cal_id)
        ev, instance = self._stored_or_instance(cal, event_id)
        self._check_if_match(request, ev)
        body = json_body(request)
        ev = self._write(cal, ev, body, patch=patch,
                         attachments=bool(flag(request, "supportsAttachments")),
                         conference=self._conference_version(request))
        if instance:  # writing one occurrence makes it an exception of its own
            self._adopt_instance(cal, ev)
        return Response(200, ev.resource)

    @route("DELETE", API + "/calendars/{calendar_id}/events/{event_id}")
    def events_delete(self, request: Request) -> Response:
        cal_id, event_id = self._params(request)
        cal = self._calendar(cal_id)
        ev, instance = self._stored_or_instance(cal, event_id)
        self._check_if_match(request, ev)
        self._delete(cal, ev)
        if instance:  # a deleted occurrence is a cancelled exception
            self._adopt_instance(cal, ev)
        return Response(204, None)

    @route("GET", API + "/calendars/{calendar_id}/events")
    def events_list(self, request: Request) -> Response:
        return Response(200, self._list(request))

    @route("GET", API + "/calendars/{calendar_id}/events/{event_id}/instances")
    def events_instances(self, request: Request) -> Response:
        return Response(200, self._instances_page(request))

    # -- request parameters ------------------------------------------------------------------
    @staticmethod
    def _conference_version(request: Request) -> int:
        value = request.arg("conferenceDataVersion")
        if value in (None, ""):
            return 0
        try:
            version = int(value)
        except ValueError:
            raise invalid_param("conferenceDataVersion") from None
        if version not in (0, 1):
            raise invalid_param("conferenceDataVersion")
        return version

    @staticmethod
    def _check_if_match(request: Request, ev: Event) -> None:
        expected = request.headers.get("if-match")
        if expected and expected.strip() not in (ev.resource["etag"], "*"):
            raise SandboxApiError(412, "Precondition Failed", "conditionNotMet",
                                  location="If-Match", location_type="header")

    def _request_zone(self, request: Request, cal: Calendar) -> ZoneInfo:
        name = request.arg("timeZone")
        if not name:
            return cal.tz
        tz = find_zone(name)
        if tz is None:
            raise invalid_param("timeZone")
        return tz

    # -- events: core -------------------------------------------------------------------------------
    @staticmethod
    def _event(cal: Calendar, event_id: str | None) -> Event:
        ev = cal.events.get(event_id or "")
        if ev is None:
            raise SandboxApiError(404, "Not Found", "notFound")
        return ev

    def _insert(self, cal: Calendar, body: JSON, *, attachments: bool = False,
                conference: int = 0) -> Event:
        event_id = body.get("id")
        if event_id is not None:
            if not isinstance(event_id, str) or not EVENT_ID_RE.match(event_id):
                raise SandboxApiError(400, "Invalid resource id value.", "invalid")
            if event_id in cal.events:  # ids are never freed, not even by delete
                raise SandboxApiError(409, "The requested identifier already exists.", "duplicate")
        ical_uid = body.get("iCalUID")
        if ical_uid is not None:
            if not isinstance(ical_uid, str) or not ical_uid:
                raise SandboxApiError(400, "Invalid iCalUID value.", "invalid")
            if ical_uid in cal.ical_uids:
                raise SandboxApiError(409, "The requested identifier already exists.", "duplicate")
        fields = writable_fields(strip_nulls(body), attachments, conference)
        fields.setdefault("status", "confirmed")
        if event_id is None:
            event_id = base64.b32hexencode(uuid.uuid4().bytes).decode().lower().rstrip("=")
        now = self.now()
        resource, when = compose(cal, event_id, fields, created=now, updated=now,
                                 sequence=client_sequence(fields, 0),
                                 ical_uid=ical_uid or f"{event_id}@google.com")
        change = self._next_change()
        resource["etag"] = etag(now, change)
        ev = Event(id=event_id, index=len(cal.order), resource=resource, change=change,
                   start=when[0].instant, end=when[1].instant, all_day=when[0].all_day,
                   updated=now)
        cal.events[event_id] = ev
        cal.order.append(ev)
        cal.ical_uids[resource["iCalUID"]] = event_id
        self._touch(cal, now, change)
        return ev

    def _write(self, cal: Calendar, ev: Event, body: JSON, *, patch: bool,
               attachments: bool = False, conference: int = 0) -> Event:
        old = ev.resource
        if patch:
            current = {k: old[k] for k in WRITABLE if k in old}
            changes = {k: v for k, v in body.items() if k in WRITABLE and k != "eventType"}
            if not attachments:
                changes.pop("attachments", None)
            if conference < 1:
                changes.pop("conferenceData", None)
            fields = writable_fields(merge_patch(current, changes), True, 1)
        else:
            fields = writable_fields(strip_nulls(body), attachments, conference)
            if "status" not in fields:
                # A full replace without status resets it to the default, except that it does
                # not resurrect a deleted event: that takes an explicit status (conservative).
                fields["status"] = "cancelled" if old.get("status") == "cancelled" else "confirmed"
            if "eventType" in old:  # immutable after creation
                fields["eventType"] = old["eventType"]
        asked_sequence = client_sequence(fields, 0)
        now = self.now()
        resource, when = compose(cal, ev.id, fields,
                                 created=parse_rfc3339(old["created"]) or now,
                                 updated=now, sequence=0, ical_uid=old["iCalUID"])
        if old.get("recurringEventId"):  # an exception stays an occurrence of its series
            resource.pop("recurrence", None)
            resource["recurringEventId"] = old["recurringEventId"]
            resource["originalStartTime"] = old["originalStartTime"]
            resource = {k: resource[k] for k in FIELD_ORDER if k in resource}
        timing_changed = ((when[0].all_day, when[0].instant, when[1].instant)
                          != (ev.all_day, ev.start, ev.end)
                          or resource.get("recurrence") != old.get("recurrence"))
        sequence = old.get("sequence", 0) + (1 if timing_changed else 0)
        resource["sequence"] = max(sequence, asked_sequence)
        change = self._next_change()
        resource["etag"] = etag(now, change)
        ev.resource = resource
        ev.change = change
        ev.start, ev.end, ev.all_day = when[0].instant, when[1].instant, when[0].all_day
        ev.updated = now
        self._touch(cal, now, change)
        return ev

    def _delete(self, cal: Calendar, ev: Event) -> None:
        if ev.cancelled:
            raise SandboxApiError(410, "Resource has been deleted", "deleted")
        now = self.now()
        change = self._next_change()
        resource = dict(ev.resource)
        resource["status"] = "cancelled"
        resource["updated"] = format_ms(now)
        resource["etag"] = etag(now, change)
        ev.resource = resource
        ev.change = change
        ev.updated = now
        self._touch(cal, now, change)
        if resource.get("recurrence"):  # the whole series goes: its exceptions too
            for other in list(cal.order):
                if other.resource.get("recurringEventId") == ev.id and not other.cancelled:
                    self._delete(cal, other)

    @staticmethod
    def _touch(cal: Calendar, now: datetime, change: int) -> None:
        cal.change = change
        if now > cal.updated:
            cal.updated = now

    # -- events.list ----------------------------------------------------------------------------
    def _list(self, request: Request) -> JSON:
        cal = self._calendar(self._params(request)[0])
        q = request.query
        sync_token = request.arg("syncToken")
        if sync_token is not None:
            for name in _SYNC_EXCLUSIVE:
                if q.get(name):
                    raise invalid_param(name, f"The parameter {name} cannot be used together "
                                              f"with syncToken.")
        max_results = self._max_results(request)
        show_deleted = flag(request, "showDeleted")
        single_events = flag(request, "singleEvents")
        order_by = request.arg("orderBy")
        if order_by not in (None, "", "startTime", "updated"):
            raise invalid_param("orderBy")
        if order_by == "startTime" and not single_events:
            raise SandboxApiError(400, "The requested ordering is not available for the "
                                       "particular query.", "invalid",
                                  location="orderBy", location_type="parameter")
        tz = self._request_zone(request, cal)
        time_min = self._time_param(request, "timeMin")
        time_max = self._time_param(request, "timeMax")
        updated_min = self._time_param(request, "updatedMin")
        if time_min and time_max and time_max <= time_min:
            raise SandboxApiError(400, "The specified time range is empty.", "timeRangeEmpty",
                                  location="timeMax", location_type="parameter")
        private = self._constraints(request, "privateExtendedProperty")
        shared = self._constraints(request, "sharedExtendedProperty")
        ical_uid = request.arg("iCalUID") or None
        terms = (request.arg("q") or "").lower().split()
        event_types = set(request.args("eventTypes")) - {""}

        since: int | None = None
        if sync_token is not None:
            entry = self._sync_tokens.get(sync_token)
            if entry is None or entry[0] != cal.id:
                raise SandboxApiError(410, "Sync token is no longer valid, a full sync is required.",
                                      "fullSyncRequired", location="syncToken",
                                      location_type="parameter")
            since = entry[1]

        fingerprint = self._fingerprint(cal, q)
        page_token = request.arg("pageToken")
        cursor: Any = None
        snapshot = self._seq
        if page_token:
            try:
                data = json.loads(unb64(page_token))
                assert data["f"] == fingerprint
                cursor, snapshot = data["c"], int(data["s"])
            except Exception:
                raise invalid_param("pageToken") from None

        incremental = since is not None or updated_min is not None
        details = bool(show_deleted)

        def keep(ev: Event) -> bool:
            if since is not None and ev.change <= since:
                return False
            if updated_min is not None and ev.updated < updated_min:
                return False
            if ev.cancelled and not incremental and not show_deleted:
                return False
            if time_min is not None and ev.end <= time_min:
                return False
            if time_max is not None and ev.start >= time_max:
                return False
            r = ev.resource
            if ical_uid is not None and r["iCalUID"] != ical_uid:
                return False
            if event_types and r.get("eventType", "default") not in event_types:
                return False
            ext = r.get("extendedProperties") or {}
            for scope, wanted in (("private", private), ("shared", shared)):
                have = ext.get(scope) or {}
                if any(have.get(k) != v for k, v in wanted):
                    return False
            if terms:
                text = " ".join(str(r.get(k, "")) for k in ("summary", "description", "location"))
                text += " " + " ".join(f"{a.get('email', '')} {a.get('displayName', '')}"
                                       for a in r.get("attendees", []))
                text += " " + r["organizer"].get("email", "")
                text = text.lower()
                if not all(t in text for t in terms):
                    return False
            return True

        # Each order has a unique, stable key; a page token carries the last key served.
        # singleEvents: series are replaced by their occurrences (which share the series'
        # index and change), so keys add the occurrence's original start to stay unique.
        key: Callable[[Event], Any]
        candidates: Iterable[Event]
        pool: Iterable[Event] = (recurrence.single_events(cal, time_min, time_max) if single_events
                                  else cal.order)
        if since is not None or order_by == "updated":
            key = ((lambda ev: [ev.change, ev.index, ev.occurrence]) if single_events  # noqa: E731
                   else (lambda ev: ev.change))
            candidates = sorted((ev for ev in pool if keep(ev)), key=key)
        elif order_by == "startTime":
            key = lambda ev: [int(ev.start.timestamp() * 1_000_000), ev.index, ev.occurrence]  # noqa: E731
            candidates = sorted((ev for ev in pool if keep(ev)), key=key)
        elif single_events:
            key = lambda ev: [ev.index, ev.occurrence]  # noqa: E731
            candidates = sorted((ev for ev in pool if keep(ev)), key=key)
        else:
            key = lambda ev: ev.index  # noqa: E731
            start_at = cursor + 1 if isinstance(cursor, int) else 0
            candidates = (ev for ev in cal.order[start_at:] if keep(ev))

        items: list[JSON] = []
        last: Any = None
        more = False
        for ev in candidates:
            k = key(ev)
            if cursor is not None and not (k > cursor):
                continue
            if len(items) == max_results:
                more = True
                break
            items.append(render(ev, cal, tz, full=details or not ev.cancelled))
            last = k

        out: JSON = {
            "kind": "calendar#events",
            "etag": f'"p{cal.change:x}"',
            "summary": cal.summary,
            "updated": format_ms(cal.updated),
            "timeZone": cal.time_zone,
            "accessRole": "owner",
            "defaultReminders": [],
        }
        if more:
            token = {"f": fingerprint, "c": last, "s": snapshot}
            out["nextPageToken"] = b64(json.dumps(token, separators=(",", ":")).encode())
        else:
            out["nextSyncToken"] = self._issue_sync_token(cal, snapshot)
        out["items"] = items
        return out

    def _issue_sync_token(self, cal: Calendar, seq: int) -> str:
        token = base64.b64encode(b"\x08" + secrets.token_bytes(17)).decode()
        self._sync_tokens[token] = (cal.id, seq)
        return token

    @staticmethod
    def _fingerprint(cal: Calendar, query: dict[str, list[str]]) -> str:
        relevant = sorted((k, sorted(v)) for k, v in query.items() if k not in _NEUTRAL_PARAMS)
        return hashlib.sha1(json.dumps([cal.id, relevant]).encode()).hexdigest()[:16]

    @staticmethod
    def _max_results(request: Request) -> int:
        raw = request.arg("maxResults")
        if raw in (None, ""):
            return MAX_RESULTS_DEFAULT
        try:
            value = int(raw)
        except ValueError:
            raise invalid_param("maxResults", f"Invalid value '{raw}'. Values must be within "
                                              f"the range: [1, {MAX_RESULTS_LIMIT}]") from None
        if value < 1:
            raise invalid_param("maxResults", f"Invalid value '{raw}'. Values must be within "
                                              f"the range: [1, {MAX_RESULTS_LIMIT}]")
        return min(value, MAX_RESULTS_LIMIT)  # "the page size can never be larger than 2500"

    @staticmethod
    def _time_param(request: Request, name: str) -> datetime | None:
        raw = request.arg(name)
        if raw is None or raw == "":
            return None
        dt = parse_rfc3339(raw)
        if dt is None:
            raise bad_request()
        return to_utc(dt)

    @staticmethod
    def _constraints(request: Request, name: str) -> list[tuple[str, str]]:
        out = []
        for raw in request.args(name):
            prop, sep, value = raw.partition("=")
            if not sep or not prop:
                raise invalid_param(name)
            out.append((prop, value))
        return out

    # -- occurrences of recurring events ------------------------------------------------------
    @staticmethod
    def _stored_or_instance(cal: Calendar, event_id: str | None) -> tuple[Event, bool]:
        """The stored event with this id, else the unsaved occurrence it names (``True``)."""
        ev = cal.events.get(event_id or "")
        if ev is not None:
            return ev, False
        instance = recurrence.occurrence_named(cal, event_id or "")
        if instance is None:
            raise SandboxApiError(404, "Not Found", "notFound")
        return instance, True

    @staticmethod
    def _adopt_instance(cal: Calendar, ev: Event) -> None:
        """Store a written occurrence as an exception (stays so, like every event id)."""
        ev.index = len(cal.order)
        cal.events[ev.id] = ev
        cal.order.append(ev)

    def _instances_page(self, request: Request) -> JSON:
        """events.instances: a series' occurrences in original-start order, exceptions in place.

        Cancelled occurrences only with ``showDeleted``; ``timeMin``/``timeMax`` filter on
        the occurrence's own times; paging by a token carrying the last original start.
        """
        cal_id, event_id = self._params(request)
        cal = self._calendar(cal_id)
        series = cal.events.get(event_id or "")
        if series is None:
            raise SandboxApiError(404, "Not Found", "notFound")
        if series.cancelled:
            raise SandboxApiError(410, "Resource has been deleted", "deleted")
        max_results = self._max_results(request)
        show_deleted = bool(flag(request, "showDeleted"))
        tz = self._request_zone(request, cal)
        time_min = self._time_param(request, "timeMin")
        time_max = self._time_param(request, "timeMax")
        original = self._time_param(request, "originalStart")
        cursor = None
        if request.arg("pageToken"):
            try:
                cursor = int(json.loads(unb64(request.arg("pageToken") or ""))["o"])
            except Exception:
                raise invalid_param("pageToken") from None
        rows: list[Event] = []
        if series.resource.get("recurrence"):
            for inst in recurrence.occurrences(cal, series, None, None):
                rows.append(cal.events.get(inst.id, inst))
        items: list[JSON] = []
        more = False
        last = None
        for ev in rows:
            if (cursor is not None and ev.occurrence <= cursor) or (ev.cancelled and not show_deleted):
                continue
            if (time_min is not None and ev.end <= time_min) or (time_max is not None and ev.start >= time_max):
                continue
            if original is not None and ev.occurrence != int(original.timestamp() * 1_000_000):
                continue
            if len(items) == max_results:
                more = True
                break
            items.append(render(ev, cal, tz, full=True))
            last = ev.occurrence
        out: JSON = {"kind": "calendar#events", "etag": f'"p{cal.change:x}"', "summary": cal.summary,
                     "updated": format_ms(cal.updated), "timeZone": cal.time_zone, "accessRole": "owner",
                     "defaultReminders": []}
        if more:
            out["nextPageToken"] = b64(json.dumps({"o": last}).encode())
        out["items"] = items
        return out

    # -- in-process helpers for tests (not HTTP, not recorded) --------------------------------
    def insert_event(self, calendar_id: str, body: JSON) -> JSON:
        """Insert like events.insert would (same validation; raises SandboxApiError)."""
        with self.lock:
            ev = self._insert(self._calendar(calendar_id), copy.deepcopy(body))
            return copy.deepcopy(ev.resource)

    def get_event(self, calendar_id: str, event_id: str) -> JSON | None:
        """The stored event (cancelled ones included, with details), or None."""
        with self.lock:
            ev = self._calendar(calendar_id).events.get(event_id)
            return copy.deepcopy(ev.resource) if ev else None

    def list_events(self, calendar_id: str, include_deleted: bool = True) -> list[JSON]:
        """All stored events of a calendar in creation order."""
        with self.lock:
            return [copy.deepcopy(ev.resource) for ev in self._calendar(calendar_id).order
                    if include_deleted or not ev.cancelled]

    def delete_event(self, calendar_id: str, event_id: str) -> None:
        """Delete like events.delete would (404 unknown, 410 already deleted)."""
        with self.lock:
            cal = self._calendar(calendar_id)
            self._delete(cal, self._event(cal, event_id))

    def event_count(self, calendar_id: str | None = None, include_deleted: bool = False) -> int:
        with self.lock:
            cals = [self._calendar(calendar_id)] if calendar_id else list(self._calendars.values())
            return sum(1 for cal in cals for ev in cal.order if include_deleted or not ev.cancelled)
