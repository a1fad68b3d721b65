"""Google Calendar as a sync target, on the official ``google-api-python-client``.

Remote idempotency (SPEC §6): an event's id is derived from the booking key, so inserting
twice can only ever answer 409 ("already there"), which we adopt.  Google never frees an
id, so a booking re-opened after its event was cancelled gets that event back by update.
Each event carries ``extendedProperties.private.bsync_key`` naming its booking.

The client is built from the discovery document bundled with the library (no network)
and pointed at ``[google] base_url`` + ``/calendar/v3/``, so the sandbox, a proxy or a
regional endpoint work the same way.
"""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import random
import time
from datetime import datetime, timedelta
from dataclasses import replace
from typing import Any, Callable, Mapping, Sequence, TypeVar

import google.auth.exceptions
import google_auth_httplib2
import httplib2
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError
from googleapiclient.http import BatchHttpRequest

from bsync.calendars.event_text import describe, fields_hash
from bsync.calendars.google_auth import REAUTH_COMMAND, SCOPES, load_credentials, save_credentials  # noqa: F401 - re-exported
from bsync.config import GoogleConfig, Settings
from bsync.errors import AuthError, ConfigError, RemoteError, RemoteUnavailableError
from bsync.core.model import Booking, shared
from bsync.core.records import ChangeSet, ImportHints, TargetItem, TargetOp, TargetTerms, WriteResult
from bsync.core.retry import CallFailure, RetryPolicy, call
from bsync.core.runs import retry_policy
from bsync.core.timeutil import allday_dates, local_iso, parse_instant, rfc3339, to_utc

T = TypeVar("T")
KEY_PROPERTY = "bsync_key"
LIST_PAGE_SIZE = 2500  # the API's maximum
# Google refuses a freeBusy range over 90 days (400 timeRangeTooLong, found by Cal.com: not in
# the reference) and answers at most 50 calendars per request (calendarExpansionMax, documented).
FREEBUSY_SPAN = timedelta(days=90)
FREEBUSY_MAX_CALENDARS = 50
BATCH_SIZE = 50  # calls per batch request, as the Calendar docs advise (the hard limit is 1000)
RATE_REASONS = {"rateLimitExceeded", "userRateLimitExceeded"}


def event_id_for(key: str) -> str:
    """Deterministic Google event id for a booking key: base32hex of SHA-256, lower case.

    base32hex uses exactly the characters Google allows (a-v, 0-9); 52 characters carry
    the full 256-bit hash, well inside the 5-1024 length limit.
    """
    digest = hashlib.sha256(key.encode()).digest()
    return base64.b32hexencode(digest).decode().rstrip("=").lower()


def error_reason(exc: HttpError) -> str | None:
    try:
        return json.loads(exc.content)["error"]["errors"][0]["reason"]
    except (ValueError, KeyError, IndexError, TypeError):
        return None


def freebusy_pieces(start: datetime, end: datetime,
                    span: timedelta = FREEBUSY_SPAN) -> list[tuple[datetime, datetime]]:
    """[start, end) cut into consecutive pieces no longer than ``span`` of elapsed time.

    The arithmetic is done in UTC: adding 90 days to a local midnight in a zone that
    leaves summer time would give 90 days and one hour, which Google refuses.
    """
    pieces: list[tuple[datetime, datetime]] = []
    piece_start, end = to_utc(start), to_utc(end)
    while piece_start < end:
        piece_end = min(end, piece_start + span)
        pieces.append((piece_start, piece_end))
        piece_start = piece_end
    return pieces


def calendar_groups(calendars: list[str], size: int = FREEBUSY_MAX_CALENDARS) -> list[list[str]]:
    """The calendars (first mention kept, duplicates dropped: the answer is keyed by id)
    in groups of at most ``size``, one freeBusy request each."""
    unique = list(dict.fromkeys(calendars))
    return [unique[i:i + size] for i in range(0, len(unique), size)]


def make_classifier(handled: tuple[int, ...] = ()) -> Callable[[BaseException], CallFailure | None]:
    """A classifier that leaves statuses in ``handled`` to the caller (returns None for them)."""

    def classify(exc: BaseException) -> CallFailure | None:
        if isinstance(exc, HttpError):
            status = exc.resp.status
            if status in handled:
                return None
            reason = error_reason(exc)
            retry_after = exc.resp.get("retry-after")
            wait = float(retry_after) if retry_after and str(retry_after).isdigit() else None
            if status == 401:
                return CallFailure("auth", "Google rejected the credentials (401)", status=status)
            if status == 429 or status >= 500 or (status == 403 and reason in RATE_REASONS):
                return CallFailure("transient", f"Google {status} {reason or ''}".strip(), wait, status)
            if status == 403:
                return CallFailure("auth", f"Google refused access (403 {reason})", status=status)
            return CallFailure("permanent", f"Google {status} {reason}: {exc.reason}", status=status)
        if isinstance(exc, google.auth.exceptions.RefreshError):
            return CallFailure("auth", f"Google token refresh failed: {exc.args[0] if exc.args else exc}")
        if isinstance(exc, google.auth.exceptions.TransportError):
            return CallFailure("transient", f"cannot reach Google's token endpoint: {exc}")
        if isinstance(exc, (OSError, httplib2.HttpLib2Error, socket.timeout)):
            return CallFailure("transient", f"cannot reach Google: {type(exc).__name__}: {exc}")
        return None

    return classify


def raise_calendar_errors(calendar: str, reasons: list[str]) -> None:
    """Raise the error a per-calendar freeBusy failure stands for: Google's own trouble
    (internalError) is worth running again, anything else is the calendar id or its sharing."""
    listed = ", ".join(reasons)
    if reasons == ["internalError"] * len(reasons):
        raise RemoteUnavailableError(f"Google could not compute free/busy for calendar {calendar!r} ({listed})",
                                     hint="a problem on Google's side: run again in a few minutes")
    raise ConfigError(f"availability.calendars: Google can't answer for {calendar!r} ({listed})",
                      hint="check the calendar id and that it is shared with this account")


class CountingHttp(httplib2.Http):
    """httplib2.Http that counts the requests it sends (for the run summary)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.requests = 0

    def request(self, *args: Any, **kwargs: Any) -> Any:
        self.requests += 1
        return super().request(*args, **kwargs)


class GoogleCalendarTarget:
    """One Google calendar as a :class:`bsync.calendars.base.CalendarBackend`: bookings
    become events in it, and its free/busy answers availability."""

    name = "gcal"
    label = "Google Calendar"
    id_setting = "[google] calendar_id"
    # Google's event status words, and the private extended property holding the booking key.
    terms = TargetTerms(status="status", confirmed="confirmed", cancelled="cancelled", key_field=KEY_PROPERTY)
    check_name = "google calendar"

    def __init__(self, config: GoogleConfig, policy: RetryPolicy, *, delete_policy: str = "cancel",
                 invite_customer: bool = True, credentials: Any = None) -> None:
        self.config = config
        self.calendar_id = config.calendar_id
        self.policy = policy
        self.delete_policy = delete_policy
        self.invite_customer = invite_customer
        self.credentials = credentials if credentials is not None else load_credentials(config)
        self._initial_token = getattr(self.credentials, "token", None)
        self._http = CountingHttp(timeout=config.timeout_s)
        http = self._authorized_http = google_auth_httplib2.AuthorizedHttp(self.credentials, http=self._http)
        self.service = build("calendar", "v3", http=http, static_discovery=True, cache_discovery=False,
                             client_options={"api_endpoint": f"{config.base_url}/calendar/v3/"})
        self.events = self.service.events()
        self.calendar_timezone: str | None = None  # the calendar's own zone, learnt from a list

    @classmethod
    def from_settings(cls, settings: Settings) -> "GoogleCalendarTarget":
        """The calendar of ``[google]``, with the run's retry policy and ``[sync]`` delete policy."""
        google = settings.require("google")
        return cls(google, retry_policy(settings), delete_policy=settings.sync.delete_policy,
                   invite_customer=google.invite_customer)

    @property
    def requests(self) -> int:
        return self._http.requests

    @property
    def scope(self) -> str:
        """The calendar id: sync tokens are stored per calendar."""
        return self.calendar_id

    def _execute(self, request: Any, what: str, handled: tuple[int, ...] = ()) -> Any:
        return call(lambda: request.execute(num_retries=0), classify=make_classifier(handled),
                    policy=self.policy, what=what)

    def close(self) -> None:
        """Persist a refreshed access token, so the next run doesn't refresh again."""
        if getattr(self.credentials, "token", None) != self._initial_token:
            save_credentials(self.config, self.credentials)

    # -- rendering --------------------------------------------------------------------
    def target_id_for(self, key: str) -> str:
        return event_id_for(key)

    def event_body(self, booking: Booking) -> dict[str, Any]:
        """The event resource for a booking: the one place a booking becomes Google's shape.

        All-day bookings use date-only start/end; the end date is exclusive, as the
        canonical booking's end already is.
        """
        if booking.all_day:
            first, end_exclusive = allday_dates(booking.start, booking.end, booking.tz)
            start = {"date": first.isoformat()}
            end = {"date": end_exclusive.isoformat()}
        else:
            start = {"dateTime": local_iso(booking.start, booking.tz), "timeZone": booking.timezone}
            end = {"dateTime": local_iso(booking.end, booking.tz), "timeZone": booking.timezone}
        body: dict[str, Any] = {
            "summary": booking.title,
            "description": describe(booking),
            "start": start,
            "end": end,
            "extendedProperties": {"private": {KEY_PROPERTY: booking.key}},
        }
        if booking.location:
            body["location"] = booking.location
        if self.invite_customer and booking.customer.email:
            attendee = {"email": booking.customer.email}
            if booking.customer.name:
                attendee["displayName"] = booking.customer.name
            body["attendees"] = [attendee]
        return body

    def project(self, booking: Booking) -> Mapping[str, Any]:
        """The comparable fields of the booking's event (what :func:`event_fields` reads back)."""
        return event_fields(self.event_body(booking))

    def fields_hash(self, fields: Mapping[str, Any]) -> str:
        """The hash of a live (not cancelled) event with these fields."""
        return fields_hash(fields, False)

    def import_hints(self, item: TargetItem) -> ImportHints:
        """An event made in the calendar: its zone (else the calendar's), its description as
        notes, its first guest as the customer."""
        fields = item.fields
        return ImportHints(timezone=fields.get("timezone") or self.calendar_timezone,
                           notes=fields.get("description") or None,
                           email=(fields.get("attendee") or "").split(", ")[0] or None)

    # -- reading ----------------------------------------------------------------------
    def read_changes(self, cursor: str | None) -> ChangeSet:
        """Events changed since ``cursor`` (a Google sync token; every event without one).

        A token Google no longer accepts (410) falls back to a full read, which ``complete``
        reports.  The request parameters are the same with and without a token, as the API
        requires.
        """
        items: dict[str, TargetItem] = {}
        page_token: str | None = None
        complete = cursor is None
        while True:
            params: dict[str, Any] = {"calendarId": self.calendar_id, "showDeleted": True,
                                      "maxResults": LIST_PAGE_SIZE}
            if page_token:
                params["pageToken"] = page_token
            if cursor:
                params["syncToken"] = cursor
            try:
                page = self._execute(self.events.list(**params), f"Google: listing events of {self.calendar_id}",
                                     handled=(404, 410))
            except HttpError as exc:
                if exc.resp.status == 410 and cursor:
                    return self.read_changes(None)  # token expired: full resync
                raise ConfigError(f"google.calendar_id {self.calendar_id!r}: calendar not found or not "
                                  f"shared with this account") from None
            self.calendar_timezone = page.get("timeZone") or self.calendar_timezone
            for event in page.get("items", []):
                items[event["id"]] = to_target_item(event)
            page_token = page.get("nextPageToken")
            if not page_token:
                return ChangeSet(items, page.get("nextSyncToken"), complete)

    def read_occurrences(self, start: datetime, end: datetime) -> dict[str, TargetItem]:
        """Occurrences of recurring series meeting [start, end), cancelled ones included.

        One ``singleEvents`` list over the window (Google expands every series in it); one-off
        events in the window come back too and are left out, the change read covers them.
        Each occurrence is keyed by its instance id (``<series>_<start stamp>``), which a
        write to it turns into an event of its own.
        """
        items: dict[str, TargetItem] = {}
        page_token: str | None = None
        while True:
            params: dict[str, Any] = {"calendarId": self.calendar_id, "singleEvents": True, "showDeleted": True,
                                      "timeMin": rfc3339(start), "timeMax": rfc3339(end),
                                      "maxResults": LIST_PAGE_SIZE}
            if page_token:
                params["pageToken"] = page_token
            page = self._execute(self.events.list(**params), f"Google: listing recurring events of {self.calendar_id}")
            for event in page.get("items", []):
                if event.get("recurringEventId"):
                    items[event["id"]] = to_target_item(event)
            page_token = page.get("nextPageToken")
            if not page_token:
                return items

    def free_busy(self, calendars: list[str], start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
        """Busy intervals of ``calendars`` in [start, end), whatever padding the caller added.

        One freeBusy request per piece of at most FREEBUSY_SPAN and group of at most
        FREEBUSY_MAX_CALENDARS (Google's limits); the intervals of all answers together,
        unmerged (the slot arithmetic merges them).
        """
        busy: list[tuple[datetime, datetime]] = []
        for piece_start, piece_end in freebusy_pieces(start, end):
            for group in calendar_groups(calendars):
                busy.extend(self._free_busy_group(group, piece_start, piece_end))
        return busy

    def _free_busy_group(self, group: list[str], start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
        """One freeBusy request for ``group``; calendars Google refused as too many are asked
        again in groups half the size (the limit is Google's to lower), any other
        per-calendar error is raised naming the calendar: an error's empty ``busy`` is
        not free time."""
        body = {"timeMin": rfc3339(start), "timeMax": rfc3339(end), "timeZone": "UTC",
                "items": [{"id": cal} for cal in group]}
        answer = self._query_free_busy(body)
        busy: list[tuple[datetime, datetime]] = []
        too_many: list[str] = []
        for cal, info in (answer.get("calendars") or {}).items():
            reasons = [e.get("reason") or "?" for e in info.get("errors") or []]
            if "tooManyCalendarsRequested" in reasons and len(group) > 1:
                too_many.append(cal)
            elif reasons:
                raise_calendar_errors(cal, reasons)
            else:
                busy.extend((parse_instant(b["start"]), parse_instant(b["end"])) for b in info.get("busy") or [])
        for smaller in calendar_groups(too_many, max(1, len(group) // 2)):
            busy.extend(self._free_busy_group(smaller, start, end))
        return busy

    def _query_free_busy(self, body: dict[str, Any]) -> dict[str, Any]:
        """freebusy.query; a 400 is a request bsync built wrong (its pieces are meant to stay
        inside Google's limits), reported as such instead of as the user's mistake."""
        what = f"Google: asking free/busy from {body['timeMin']} to {body['timeMax']}"
        try:
            return self._execute(self.service.freebusy().query(body=body), what, handled=(400,))
        except HttpError as exc:
            reason = error_reason(exc) or "badRequest"
            raise RemoteError(f"{what}: Google refused the request (400 {reason}: {exc.reason})",
                              hint="this is a bsync bug (its requests should stay within Google's "
                                   "freeBusy limits): please report it with the dates you asked for") from None

    def fetch(self, target_id: str) -> TargetItem | None:
        """One event by id (cancelled ones too), or None if Google has never heard of it."""
        try:
            event = self._execute(self.events.get(calendarId=self.calendar_id, eventId=target_id),
                                  f"Google: reading event {target_id}", handled=(404,))
        except HttpError:
            return None
        return to_target_item(event)

    # -- writing ----------------------------------------------------------------------
    def _request(self, op: TargetOp) -> Any:
        """The API request for one write; sequential and batched writes share it."""
        cal, send = self.calendar_id, self.config.send_updates
        if op.kind == "create":
            body = {"id": op.target_id, **self.event_body(op.booking)}
            return self.events.insert(calendarId=cal, body=body, sendUpdates=send)
        if op.kind == "update":
            return self.events.patch(calendarId=cal, eventId=op.target_id, body=self.event_body(op.booking),
                                     sendUpdates=send)
        if op.kind == "restore":  # a full update: Google never frees an id, so this brings it back
            body = {**self.event_body(op.booking), "status": "confirmed"}
            return self.events.update(calendarId=cal, eventId=op.target_id, body=body, sendUpdates=send)
        if op.kind == "stamp":
            body = {"extendedProperties": {"private": {KEY_PROPERTY: op.key}}}
            return self.events.patch(calendarId=cal, eventId=op.target_id, body=body)
        if op.kind == "remove" and self.delete_policy == "delete":
            return self.events.delete(calendarId=cal, eventId=op.target_id, sendUpdates=send)
        if op.kind == "remove":
            return self.events.patch(calendarId=cal, eventId=op.target_id, body={"status": "cancelled"},
                                     sendUpdates=send)
        raise ValueError(f"unknown write {op.kind!r}")

    def _outcome(self, op: TargetOp, event: Any) -> WriteResult:
        return result_of(event) if event else WriteResult(op.target_id, None)

    def _handle_refusal(self, op: TargetOp, exc: HttpError) -> WriteResult | None:
        """Statuses that mean "already so": 409 on insert (adopt), 404/410 on removal (gone)."""
        status = exc.resp.status
        if op.kind == "create" and status == 409:
            return self._adopt(op.booking, op.target_id)
        if op.kind == "remove" and status in (404, 410):
            return WriteResult(op.target_id, None, "already gone")
        return None

    def write(self, op: TargetOp) -> WriteResult:
        """Perform one write (with retries)."""
        handled = (409,) if op.kind == "create" else (404, 410) if op.kind == "remove" else ()
        try:
            event = self._execute(self._request(op), f"Google: {op.kind} event {op.target_id}", handled=handled)
        except HttpError as exc:
            result = self._handle_refusal(op, exc)
            if result is None:
                raise
            return result
        return self._outcome(op, event)

    def create(self, booking: Booking, target_id: str) -> WriteResult:
        """Insert with the deterministic id; on 409 adopt (and if needed restore) the event."""
        return self.write(TargetOp("create", target_id, booking))

    def update(self, booking: Booking, target_id: str, *, restore: bool) -> WriteResult:
        """Patch the event to match the booking; a cancelled one is restored with a full update."""
        return self.write(TargetOp("restore" if restore else "update", target_id, booking))

    def stamp(self, target_id: str, key: str) -> WriteResult:
        """Mark an imported event as managed: store its booking's key on it."""
        return self.write(TargetOp("stamp", target_id, key=key))

    def remove(self, target_id: str) -> WriteResult:
        """Cancel (status=cancelled, content kept) or delete the event, per ``delete_policy``."""
        return self.write(TargetOp("remove", target_id))

    def _adopt(self, booking: Booking, target_id: str) -> WriteResult:
        """The id exists (409): take the event over, restoring or updating it as needed."""
        existing = self._execute(self.events.get(calendarId=self.calendar_id, eventId=target_id),
                                 f"Google: reading event {target_id}")
        item = to_target_item(existing)
        if item.cancelled:
            return replace(self.update(booking, target_id, restore=True),
                           note="restored the cancelled event with this id")
        if item.fields != event_fields(self.event_body(booking)) or item.key != booking.key:
            return replace(self.update(booking, target_id, restore=False),
                           note="adopted and updated the existing event")
        return replace(result_of(existing), note="adopted the existing event")

    def write_many(self, ops: Sequence[TargetOp]) -> list[WriteResult | Exception]:
        """Perform many writes in batch requests of up to BATCH_SIZE calls.

        Each call gets its own outcome: a WriteResult, or the RemoteError refusing it.
        Calls answered with 429/5xx are sent again in a later batch, with backoff, up to
        the retry limit; then RemoteUnavailableError is raised (as is AuthError at once).
        """
        results: list[WriteResult | Exception | None] = [None] * len(ops)
        pending = list(range(len(ops)))
        classify = make_classifier()
        for attempt in range(self.policy.max_retries + 1):
            again: list[int] = []
            waits: list[float] = []
            for start in range(0, len(pending), BATCH_SIZE):
                chunk = pending[start:start + BATCH_SIZE]
                for index, outcome in zip(chunk, self._send_batch([ops[i] for i in chunk])):
                    if not isinstance(outcome, HttpError):
                        results[index] = self._outcome(ops[index], outcome)
                        continue
                    try:
                        handled = self._handle_refusal(ops[index], outcome)
                    except (RemoteError, RemoteUnavailableError) as exc:
                        results[index] = exc
                        continue
                    if handled is not None:
                        results[index] = handled
                        continue
                    failure = classify(outcome)
                    assert failure is not None
                    if failure.kind == "auth":
                        raise AuthError(f"Google: {failure.message}")
                    if failure.kind == "transient":
                        again.append(index)
                        waits.append(failure.retry_after or 0)
                    else:
                        results[index] = RemoteError(f"Google: {ops[index].kind} event {ops[index].target_id}: "
                                                     f"{failure.message}")
            if not again:
                break
            pending = again
            if attempt < self.policy.max_retries:
                backoff = min(self.policy.max_delay, self.policy.base_delay * 2 ** attempt) * random.random()
                time.sleep(min(self.policy.max_delay, max(max(waits), backoff)))
        else:
            raise RemoteUnavailableError(f"Google: {len(pending)} batched writes still failing after "
                                         f"{self.policy.max_retries + 1} attempts",
                                         hint="run again later; nothing is lost")
        return [r for r in results]  # type: ignore[misc]

    def _send_batch(self, ops: list[TargetOp]) -> list[Any]:
        """One batch HTTP request (retried as a whole on transport errors); per-call outcomes."""
        outcomes: dict[str, Any] = {}

        def collect(request_id: str, response: Any, exception: Exception | None) -> None:
            outcomes[request_id] = exception if exception is not None else response

        def send() -> None:
            outcomes.clear()
            batch = BatchHttpRequest(callback=collect, batch_uri=f"{self.config.base_url}/batch/calendar/v3")
            for i, op in enumerate(ops):
                batch.add(self._request(op), request_id=str(i))
            batch.execute(http=self._authorized_http)

        call(send, classify=make_classifier(), policy=self.policy, what="Google: batch request")
        return [outcomes.get(str(i)) for i in range(len(ops))]

    def describe_calendar(self) -> dict[str, Any]:
        """The calendar's own entry (``calendars.get``: its ``summary`` and ``timeZone``): one
        cheap authenticated read that proves the calendar is there and visible, for ``doctor``."""
        request = self.service.calendars().get(calendarId=self.calendar_id)
        return self._execute(request, f"Google Calendar: reading calendar {self.calendar_id}")

    def check(self) -> str:
        """``bsync doctor``'s line: the calendar's name and zone, or the error with its fix."""
        try:
            calendar = self.describe_calendar()
        except AuthError as exc:
            exc.hint = exc.hint or CHECK_AUTH_HINT
            raise
        except RemoteError as exc:  # a 404: the id is wrong, or the account can't see it
            exc.hint = exc.hint or CHECK_REFUSED_HINT
            raise
        detail = f"calendar {calendar.get('summary') or self.calendar_id!r} is readable"
        if calendar.get("timeZone"):
            detail += f" (its zone: {calendar['timeZone']})"
        return detail


CHECK_AUTH_HINT = f"run `{REAUTH_COMMAND}` to sign in again, and check that the account can edit the calendar"
CHECK_REFUSED_HINT = ("check [google] calendar_id (Google Calendar → Settings → Integrate calendar → Calendar ID) "
                      "and that the signed-in account can see that calendar")


def _when(value: Mapping[str, Any] | None) -> str | None:
    if not value:
        return None
    if "date" in value and value["date"]:
        return f"date:{value['date']}"
    if value.get("dateTime"):
        return to_utc(parse_instant(value["dateTime"])).isoformat()
    return None


def event_fields(event: Mapping[str, Any]) -> dict[str, Any]:
    """The comparable projection of an event: what bsync manages, normalised.

    Instants compare in UTC (Google may echo another offset); absent text is "".
    """
    guests = sorted(a.get("email", "") for a in event.get("attendees") or []
                    if not a.get("organizer") and not a.get("self"))
    return {
        "title": shared(event.get("summary")) or "",
        "start": _when(event.get("start")),
        "end": _when(event.get("end")),
        "timezone": shared((event.get("start") or {}).get("timeZone")),
        "description": event.get("description") or "",
        "location": event.get("location") or "",
        "attendee": ", ".join(guests) or None,  # Google may add the organizer; it isn't ours
    }


def event_common(event: Mapping[str, Any], fields: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The common fields (see bsync.core.model.COMMON_FIELDS) an event holds."""
    fields = fields if fields is not None else event_fields(event)
    return {"title": fields["title"], "start": fields["start"], "end": fields["end"],
            "location": fields["location"], "cancelled": event.get("status") == "cancelled"}


def to_target_item(event: Mapping[str, Any]) -> TargetItem:
    key = ((event.get("extendedProperties") or {}).get("private") or {}).get(KEY_PROPERTY)
    fields = event_fields(event)
    common = event_common(event, fields)
    return TargetItem(id=shared(event["id"]), key=shared(key), common=common, fields=fields,
                      hash=fields_hash(fields, common["cancelled"]),
                      updated=parse_instant(event["updated"]).isoformat(timespec="microseconds") if event.get("updated") else None,
                      recurring=bool(event.get("recurrence") or event.get("recurringEventId")),
                      series=bool(event.get("recurrence")),
                      label=f"{fields['title']} · {_local_start(event)}")


def _local_start(event: Mapping[str, Any]) -> str:
    """The event's start as Google gave it, in the event's own zone (``2026-12-03 12:00``), for
    plans and reports; the UTC form in ``fields`` is for comparing."""
    start = event.get("start") or {}
    return (start.get("dateTime") or start.get("date") or "")[:16].replace("T", " ")


def result_of(event: Mapping[str, Any]) -> WriteResult:
    """The write result for the event Google returned (its etag and projection hash)."""
    item = to_target_item(event)
    return WriteResult(event["id"], event.get("etag"), hash=item.hash, item=item)
