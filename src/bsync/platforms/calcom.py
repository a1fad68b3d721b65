"""Cal.com as a booking platform: its signed webhooks, its API v2 pull, and one booking mapper.

Everything bsync knows about Cal.com is here, in this order: the status vocabulary; the
one mapper from a Cal.com booking (whichever wire shape it came in) to a canonical
:class:`~bsync.core.model.Booking`; the webhook (verify and parse, pure); the REST client
(``GET /v2/bookings``, over httpx); the reschedule chain that keys a booking; and
:class:`CalcomPlatform`, which puts them behind :class:`~bsync.platforms.base.Platform`.

A reschedule makes a *new* Cal.com booking (new uid) linked to the old one (webhook
``rescheduleUid``; API ``rescheduledFromUid``/``rescheduledToUid``).  bsync keys the whole
chain by the first uid it saw (aliases in the store), so a reschedule moves the same
ledger booking and the same calendar event instead of creating new ones, whether the
change arrives by webhook or by pull, in either order.

Wire facts: /work/shared/api-notes/core-apis.md §3 (webhook envelope, triggers, payload
version 2021-10-20, API v2 ``cal-api-version: 2024-08-13``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from types import MappingProxyType
from typing import Any, Callable, Iterator

import httpx

from bsync.config import CalcomConfig, Settings
from bsync.core.model import Booking, Customer, Status, suspicious_time, validate_booking
from bsync.core.plan import Failure
from bsync.core.ratelimit import Pacer
from bsync.core.retry import CallFailure, RetryPolicy, call
from bsync.core.runs import retry_policy
from bsync.core.store import Store
from bsync.core.timeutil import now_utc, parse_instant
from bsync.errors import AuthError, RecordError, RemoteError, RemoteUnavailableError
from bsync.platforms import intake
from bsync.platforms.base import Outcome, PullResult
from bsync.platforms.intake import MalformedError, SignatureError, UnsupportedError

NAME = "calcom"
API_RATE = 2.0  # requests/s: Cal.com allows an API key 120 requests a minute
PULL_OVERLAP = timedelta(minutes=5)  # re-read a little before the cursor: updatedAt ties, clock skew

# --------------------------------------------------------------------------- status vocabulary

CALCOM_STATUS: Mapping[str, Status] = MappingProxyType({
    # booking statuses: UPPERCASE in webhooks, lowercase in API v2 (looked up case-blind)
    "accepted": Status.SCHEDULED,
    "pending": Status.SCHEDULED,  # awaiting host confirmation: still holds the slot
    "awaiting_host": Status.SCHEDULED,  # instant meetings (BookingStatus enum)
    "cancelled": Status.CANCELLED,
    "rejected": Status.CANCELLED,
    # states a trigger implies rather than a status field
    "meeting_started": Status.IN_PROGRESS,
    "meeting_ended": Status.COMPLETED,
    "no_show": Status.NO_SHOW,
})
"""The one Cal.com status → canonical table, shared by webhooks and the API v2 pull."""


def calcom_status(value: str, table: Mapping[str, Status] = CALCOM_STATUS) -> Status:
    """Canonical status of a Cal.com status in any case ("ACCEPTED", "accepted", "no-show");
    MalformedError naming the value when it is unknown."""
    if table is not CALCOM_STATUS:
        table = {intake.normalise(k): v for k, v in table.items()}
    return intake.lookup_status(value, table, "Cal.com status")


# --------------------------------------------------------------------------- the one booking mapper


@dataclass(frozen=True)
class WireShape:
    """Where one of Cal.com's three booking shapes keeps what the mapper reads: field
    names differ between them, meanings don't."""

    where: str  # how error reasons name the object
    start: str
    end: str
    host: str  # an object, or (``hosts``) a list whose first entry is the host
    duration: str  # minutes
    responses: str  # booking-form answers, bare or wrapped as {"value": ...}


API_BOOKING = WireShape("booking", "start", "end", "hosts", "duration", "bookingFieldsResponses")
"""An API v2 (2024-08-13) booking object."""
WEBHOOK_PAYLOAD = WireShape("payload", "startTime", "endTime", "organizer", "length", "responses")
"""The ``payload`` of a booking trigger (webhook version 2021-10-20)."""
MEETING_ROW = WireShape("body", "startTime", "endTime", "user", "length", "responses")
"""The flat booking row MEETING_STARTED/MEETING_ENDED send."""


def map_booking(p: Mapping[str, Any], shape: WireShape, *, uid: str, status: Status,
                link_metadata: Sequence[str], default_timezone: str,
                updated_at: datetime | None) -> Booking:
    """One Cal.com booking, in any :class:`WireShape`, as a canonical Booking keyed
    ``calcom:<uid>``; MalformedError naming the field when it can't be one.

    The same booking gives the same Booking whichever way it arrived: only ``status`` (a
    trigger decides it for webhooks, the status field and the clock for the pull) and
    ``updated_at`` (the delivery's or the row's time) come from the caller.

    * **Zone**: the host's (webhook ``organizer``/``user``, API ``hosts[0]``), then the
      first attendee's, then ``default_timezone``.  The host is the business: the
      appointment happens where the business is, and staff, the ledger and the calendar read
      it in the business's zone, while an attendee's zone is only where their browser was
      when they booked (a customer booking from abroad, or a phone set to another zone,
      would otherwise move the booking's displayed time).  The webhook tests pinned this
      order already (``organizer first``); the pull used to prefer the attendee.
    * **Title**: ``title``, else ``eventTitle``; a booking without one is malformed (the
      pull used to invent "Cal.com booking"; a webhook always refused it).
    * **Customer**: the first attendee; name, email and phone fall back to the booking
      form's answers, and the phone further to the "number for text notifications"
      (``smsReminderNumber``), so an SMS-only booker still gets reminders.
    * **Service**: the event type's title where the shape carries it (webhooks), else its
      slug (API v2 gives only ``eventType{id, slug}``).  Its duration: the shape's length
      field, else the booking's own length (a MEETING_* row has none).
    """
    where = shape.where
    host = _host(p, shape)
    host_where = f"{where}.{shape.host}"
    attendees = p.get("attendees") or []
    if not isinstance(attendees, list) or not all(isinstance(a, dict) for a in attendees):
        raise MalformedError(f"{where}.attendees must be a list of objects")
    first: dict[str, Any] = attendees[0] if attendees else {}
    first_where = f"{where}.attendees[0]"

    title = intake.text(p, "title", where) or intake.text(p, "eventTitle", where)
    if title is None:
        raise MalformedError(f"{where}.title is missing or empty")
    start = intake.instant(p.get(shape.start), f"{where}.{shape.start}")
    end = intake.instant(p.get(shape.end), f"{where}.{shape.end}")
    if end < start:
        raise MalformedError(f"{where}.{shape.end} {end.isoformat()} is before {shape.start} {start.isoformat()}")
    if (why := suspicious_time(start, end, False)) is not None:
        raise MalformedError(f"{where}.{shape.start}/{shape.end}: {why}")

    zone_name = intake.text(host, "timeZone", host_where) or intake.text(first, "timeZone", first_where)
    zone = intake.zone(zone_name, "organizer/attendee timeZone") if zone_name else default_timezone

    raw_responses = p.get(shape.responses)
    responses: Mapping[str, Any] = raw_responses if isinstance(raw_responses, dict) else {}

    def response(key: str) -> str | None:
        entry = responses.get(key)
        value = entry.get("value") if isinstance(entry, dict) else entry
        return value.strip() if isinstance(value, str) and value.strip() else None

    customer = Customer(name=intake.text(first, "name", first_where) or response("name"),
                        email=intake.text(first, "email", first_where) or response("email"),
                        phone=intake.text(first, "phoneNumber", first_where) or response("attendeePhoneNumber")
                        or intake.text(p, "smsReminderNumber", where) or response("smsReminderNumber"))

    event_type = intake.obj(p, "eventType", where, required=False)
    service = (intake.text(event_type, "title", f"{where}.eventType") or intake.text(p, "eventTitle", where)
               or intake.text(event_type, "slug", f"{where}.eventType") or intake.text(p, "type", where))
    length = p.get(shape.duration)
    if not isinstance(length, int) or isinstance(length, bool) or length <= 0:
        length = int((end - start).total_seconds() // 60) or None  # a MEETING_* row has no length field

    metadata = intake.obj(p, "metadata", where, required=False)
    links: dict[str, str] = {}
    for key in link_metadata:
        value = metadata.get(key)
        if value is None or value == "":
            continue
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise MalformedError(f"{where}.metadata.{key} must be a string or integer, "
                                 f"got {type(value).__name__}")
        links[key] = str(value).strip()

    return Booking(key=f"{NAME}:{uid}", title=title.strip(), start=start, end=end, timezone=zone,
                   status=status, customer=customer, service=service, service_duration=length,
                   staff=intake.text(host, "name", host_where),
                   notes=intake.text(p, "additionalNotes", where) or intake.text(p, "description", where),
                   location=intake.text(p, "location", where), links=links, source=NAME,
                   updated_at=updated_at)


def _host(p: Mapping[str, Any], shape: WireShape) -> dict[str, Any]:
    if shape.host != "hosts":
        return intake.obj(p, shape.host, shape.where, required=False)
    hosts = p.get("hosts") or []
    if not isinstance(hosts, list) or not all(isinstance(h, dict) for h in hosts):
        raise MalformedError(f"{shape.where}.hosts must be a list of objects")
    return hosts[0] if hosts else {}


def booking_from_api(data: Mapping[str, Any], *, now: datetime, link_metadata: Sequence[str],
                     default_timezone: str) -> Booking:
    """One API v2 booking (keyed ``calcom:<uid>``), or RecordError naming its uid.

    The API has no trigger, so its status field stands in, and two things a webhook
    trigger would say are read from the object: every attendee ``absent`` is a no-show
    (BOOKING_NO_SHOW_UPDATED), and a scheduled booking whose end has passed is completed
    (MEETING_ENDED).
    """
    uid = str(data.get("uid") or data.get("id") or "?")
    try:
        status = calcom_status(str(data.get("status", "")))
        updated_at = intake.instant(data["updatedAt"], "booking.updatedAt") if data.get("updatedAt") else None
        booking = map_booking(data, API_BOOKING, uid=uid, status=status, link_metadata=link_metadata,
                              default_timezone=default_timezone, updated_at=updated_at)
    except MalformedError as exc:
        raise RecordError(uid, exc.reason) from None
    attendees = data.get("attendees") or []
    if status is Status.SCHEDULED and attendees and all(a.get("absent") for a in attendees):
        booking = replace(booking, status=Status.NO_SHOW)
    elif status is Status.SCHEDULED and booking.end <= now:
        booking = replace(booking, status=Status.COMPLETED)  # the meeting has ended
    return validate_booking(booking, uid)


# --------------------------------------------------------------------------- webhooks

CALCOM_SIGNATURE_HEADER = "X-Cal-Signature-256"
CALCOM_NO_SECRET = "no-secret-provided"

# Triggers that carry a booking we map to canonical, and the status each implies.  For
# CANCELLED/REJECTED/MEETING_* the trigger decides; for the others the payload's status
# does (it may say PENDING), falling back to this when absent.
_BOOKING_TRIGGERS = {
    "BOOKING_CREATED": "accepted",
    "BOOKING_RESCHEDULED": "accepted",
    "BOOKING_REQUESTED": "pending",
    "BOOKING_REJECTED": "rejected",
    "BOOKING_CANCELLED": "cancelled",
    "MEETING_STARTED": "meeting_started",
    "MEETING_ENDED": "meeting_ended",
}
_TRIGGER_DECIDES = {"BOOKING_CANCELLED", "BOOKING_REJECTED", "MEETING_STARTED", "MEETING_ENDED"}
# MEETING_STARTED/ENDED are scheduled jobs whose body is the booking row itself, flat,
# with no "payload" wrapper; their createdAt is the *booking's*, not the delivery's.
_FLAT_TRIGGERS = {"MEETING_STARTED": "startTime", "MEETING_ENDED": "endTime"}
CALCOM_TRIGGERS = frozenset({
    *_BOOKING_TRIGGERS, "BOOKING_NO_SHOW_UPDATED", "BOOKING_PAYMENT_INITIATED", "BOOKING_PAID",
    "RECORDING_READY", "RECORDING_TRANSCRIPTION_GENERATED", "FORM_SUBMITTED", "FORM_SUBMITTED_NO_EVENT",
    "INSTANT_MEETING", "OOO_CREATED", "AFTER_HOSTS_CAL_VIDEO_NO_SHOW", "AFTER_GUESTS_CAL_VIDEO_NO_SHOW",
    "WRONG_ASSIGNMENT_REPORT", "ROUTING_FORM_FALLBACK_HIT", "DELEGATION_CREDENTIAL_ERROR",
    "PING",  # the "Ping test" button in Cal.com's webhook settings
})
"""Every trigger Cal.com documents; those not handled parse with ``actionable=False``."""


@dataclass(frozen=True, slots=True)
class CalcomDelivery:
    """One Cal.com webhook.  ``delivery_id`` is ``f"{trigger}:{uid}:{createdAt}"`` (``-`` for
    a missing uid), stable across re-sends of the same body.

    ``booking`` is set for booking-bearing triggers; ``no_show`` only for
    BOOKING_NO_SHOW_UPDATED (True when any attendee is marked absent).  ``previous_uid`` is
    the booking a BOOKING_RESCHEDULED replaces (attendee reschedules create a new uid).
    ``request_reschedule`` is True on the BOOKING_CANCELLED a host's "request reschedule"
    sends (the replacement booking doesn't exist yet).
    """

    delivery_id: str
    trigger: str
    created_at: datetime
    uid: str | None
    previous_uid: str | None = None
    request_reschedule: bool = False
    booking: Booking | None = None
    no_show: bool | None = None
    actionable: bool = True


def verify_calcom(body: bytes, header: str | None, secret: str | None) -> None:
    """Check ``X-Cal-Signature-256``: hex HMAC-SHA256 of the raw body keyed with the secret.

    No secret configured → SignatureError: bsync refuses unsigned Cal.com deliveries (the
    signature is the only thing that authenticates them).  Cal.com sends the literal
    ``no-secret-provided`` when the webhook on its side has no secret; that is rejected too.
    """
    intake.check_size(body)
    if not secret:
        raise SignatureError("no Cal.com webhook secret is configured; unsigned deliveries are refused",
                             hint="set the same secret on the Cal.com webhook and in bsync's config")
    if header is None or not header.strip():
        raise SignatureError(f"missing {CALCOM_SIGNATURE_HEADER} header")
    if header.strip() == CALCOM_NO_SECRET:
        raise SignatureError(f"{CALCOM_SIGNATURE_HEADER} is {CALCOM_NO_SECRET!r}: the Cal.com webhook has "
                             "no secret", hint="set a secret on the Cal.com webhook")
    intake.compare_hex(body, header, secret, CALCOM_SIGNATURE_HEADER)


def parse_calcom(body: bytes, now: datetime, *, replay_window: timedelta,
                 status_map: Mapping[str, Status | str] | None = None,
                 link_metadata: Sequence[str] = (), default_timezone: str = "UTC",
                 max_skew: timedelta = intake.DEFAULT_MAX_SKEW) -> CalcomDelivery:
    """Parse a (verified) Cal.com delivery.

    ``status_map`` entries override/extend CALCOM_STATUS (keys in any case).
    ``link_metadata`` names booking-metadata keys copied into ``Booking.links``.
    Freshness: the envelope's ``createdAt`` must be within ``replay_window`` of ``now``
    (and at most ``max_skew`` ahead).  For the flat MEETING_STARTED/ENDED bodies, whose
    ``createdAt`` is when the booking was made, the scheduled moment (``startTime`` /
    ``endTime``) is checked instead; Cal.com's cron may send these late, so a tight window
    can drop them.  MEETING_ENDED fires at endTime whether or not anyone came: the receiver
    shouldn't let it overwrite a no_show or cancelled status.
    """
    default_timezone = intake.config_zone(default_timezone)
    table = dict(CALCOM_STATUS)
    if status_map:
        table.update(intake.status_table(status_map, "status_map"))
    data = intake.load_object(body, "Cal.com")

    trigger = data.get("triggerEvent")
    if not isinstance(trigger, str) or not trigger.strip():
        raise MalformedError("triggerEvent is missing (custom payload templates are not supported)")
    trigger = trigger.strip()
    if trigger not in CALCOM_TRIGGERS:
        raise UnsupportedError(f"unknown Cal.com trigger {intake.show(trigger)}")

    wrapped = isinstance(data.get("payload"), dict)
    if wrapped:
        payload, shape = data["payload"], WEBHOOK_PAYLOAD
    elif trigger in _FLAT_TRIGGERS and "payload" not in data:
        payload, shape = data, MEETING_ROW
    elif data.get("payload") is not None:
        raise MalformedError(f"payload must be an object, got {type(data['payload']).__name__}")
    else:
        raise MalformedError(f"payload is missing (only {' and '.join(_FLAT_TRIGGERS)} come unwrapped)")
    where = shape.where

    created_raw = intake.text(data, "createdAt", "body", required=True)
    assert created_raw is not None
    created_at = intake.instant(created_raw, "createdAt")
    if wrapped:
        intake.check_fresh(created_at, now, replay_window, max_skew, "createdAt")
    else:
        field = _FLAT_TRIGGERS[trigger]
        intake.check_fresh(intake.instant(payload.get(field), f"{where}.{field}"), now, replay_window, max_skew,
                           f"{trigger} {field}")

    def delivery_id(uid: str | None) -> str:
        return f"{trigger}:{uid or '-'}:{created_raw}"

    if trigger == "BOOKING_NO_SHOW_UPDATED":
        uid = intake.text(payload, "bookingUid", where, required=True)
        attendees = payload.get("attendees")
        if not isinstance(attendees, list) or not attendees:
            raise MalformedError(f"{where}.attendees must be a non-empty list")
        flags = []
        for i, attendee in enumerate(attendees):
            flag = attendee.get("noShow") if isinstance(attendee, dict) else None
            if not isinstance(flag, bool):
                raise MalformedError(f"{where}.attendees[{i}].noShow must be true or false")
            flags.append(flag)
        return CalcomDelivery(delivery_id(uid), trigger, created_at, uid, no_show=any(flags))

    if trigger not in _BOOKING_TRIGGERS:
        uid = payload.get("uid") or payload.get("bookingUid")
        uid = uid if isinstance(uid, str) and uid.strip() else None
        return CalcomDelivery(delivery_id(uid), trigger, created_at, uid, actionable=False)

    uid = intake.text(payload, "uid", where, required=True)
    assert uid is not None
    implied = _BOOKING_TRIGGERS[trigger]
    stated = payload.get("status")
    status = calcom_status(stated, table) if stated is not None else None  # validates it when present
    if status is None or trigger in _TRIGGER_DECIDES:
        status = calcom_status(implied, table)

    previous_uid = intake.text(payload, "rescheduleUid", where) if trigger == "BOOKING_RESCHEDULED" else None
    request_reschedule = False
    if trigger == "BOOKING_CANCELLED":
        flag = payload.get("requestReschedule")
        if flag is not None and not isinstance(flag, bool):
            raise MalformedError(f"{where}.requestReschedule must be true or false, got {intake.show(flag)}")
        request_reschedule = bool(flag)

    updated_at = created_at if wrapped else (
        intake.instant(payload["updatedAt"], f"{where}.updatedAt") if payload.get("updatedAt") else None)
    booking = map_booking(payload, shape, uid=uid, status=status, link_metadata=link_metadata,
                          default_timezone=default_timezone, updated_at=updated_at)
    return CalcomDelivery(delivery_id(uid), trigger, created_at, uid, previous_uid=previous_uid,
                          request_reschedule=request_reschedule, booking=booking)


# --------------------------------------------------------------------------- the REST client


def classify(exc: BaseException) -> CallFailure | None:
    """How a failed Cal.com request is retried: 401/403 auth, 429/5xx and transport transient."""
    if isinstance(exc, httpx.HTTPStatusError):
        status = exc.response.status_code
        retry_after = exc.response.headers.get("retry-after")
        wait = float(retry_after) if retry_after and retry_after.isdigit() else None
        if status in (401, 403):
            return CallFailure("auth", f"Cal.com refused the API key ({status})", status=status)
        if status == 429 or status >= 500:
            return CallFailure("transient", f"Cal.com {status}", wait, status)
        return CallFailure("permanent", f"Cal.com {status}: {exc.response.text[:200]}", status=status)
    if isinstance(exc, httpx.TransportError):
        return CallFailure("transient", f"cannot reach Cal.com: {type(exc).__name__}: {exc}")
    return None


class CalcomClient:
    """Cal.com API v2 bookings, read-only, over httpx (there is no official Python client).

    Every request carries ``cal-api-version`` (``2024-08-13``: without it the endpoint
    silently answers with an older handler), is paced to the API key's rate limit, and
    retried through :func:`bsync.core.retry.call` with :func:`classify`.
    """

    def __init__(self, config: CalcomConfig, policy: RetryPolicy) -> None:
        self.config = config
        self.policy = policy
        self.pacer = Pacer(API_RATE)
        self.requests = 0
        self.http = httpx.Client(
            base_url=config.base_url, timeout=config.timeout_s,
            headers={"Authorization": f"Bearer {config.api_key.get_secret_value()}",
                     "cal-api-version": config.api_version},
            event_hooks={"request": [self._before_request]})

    def _before_request(self, request: httpx.Request) -> None:
        self.pacer.wait()
        self.requests += 1

    def close(self) -> None:
        self.http.close()

    def get(self, path: str, params: dict[str, Any]) -> Any:
        """``GET path`` as JSON, retried per the policy (typed errors when it can't be had)."""
        def send() -> Any:
            response = self.http.get(path, params=params)
            response.raise_for_status()
            return response.json()

        return call(send, classify=classify, policy=self.policy, what=f"Cal.com: GET {path}")

    def iter_bookings(self, updated_after: datetime | None = None) -> Iterator[dict[str, Any]]:
        """Every booking (updated at or after ``updated_after``), oldest update first."""
        skip = 0
        while True:
            params: dict[str, Any] = {"take": self.config.page_size, "skip": skip, "sortUpdatedAt": "asc"}
            if updated_after is not None:
                params["afterUpdatedAt"] = updated_after.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
            page = self.get("/v2/bookings", params)
            data = page.get("data") or []
            yield from data
            pagination = page.get("pagination") or {}
            if not data or not pagination.get("hasNextPage", len(data) == self.config.page_size):
                return
            skip += len(data)


# --------------------------------------------------------------------------- keys and storing


def calcom_key(store: Store, uid: str, from_uid: str | None = None, to_uid: str | None = None) -> str:
    """The bsync key of a Cal.com booking: the key of its reschedule chain, wherever first seen."""
    key = None
    for candidate in (uid, from_uid, to_uid):
        if candidate and (key := store.alias(NAME, candidate)):
            break
    key = key or f"{NAME}:{uid}"
    for candidate in (uid, from_uid, to_uid):
        if candidate:
            store.set_alias(NAME, candidate, key)
    return key


def store_booking(store: Store, booking: Booking, uid: str, from_uid: str | None = None,
                  to_uid: str | None = None) -> Booking:
    """Save a mapped booking under its chain's key, remembering the uid it came as; both the
    webhook and the pull store through here.  Returns what was stored (or offered: an
    older state than the stored one is not saved)."""
    key = calcom_key(store, uid, from_uid, to_uid)
    booking = replace(booking, key=key, links={**booking.links, "calcom_uid": uid})
    store.save_booking(booking)
    return booking


def apply_delivery(store: Store, delivery: CalcomDelivery) -> Outcome:
    """Act on one parsed delivery (the inbox calls this, through :class:`CalcomPlatform`).

    BOOKING_NO_SHOW_UPDATED carries no booking: it marks the stored one (or is ignored when
    bsync never saw that booking).  MEETING_ENDED carries a thin booking whose ``createdAt``
    is the booking's creation, not the event's: keep what is stored, change the status, and
    date it at the meeting's end so it is never mistaken for an older state.
    """
    uid = delivery.uid
    if delivery.no_show is not None and delivery.booking is None:
        key = store.alias(NAME, uid) if uid else None
        current = store.load_booking(key or f"{NAME}:{uid}")
        if current is None:
            return "ignored"
        if delivery.no_show:
            store.save_booking(replace(current, status=Status.NO_SHOW))
        return "done"
    if delivery.booking is None or uid is None:
        return "ignored"
    booking = delivery.booking
    key = calcom_key(store, uid, delivery.previous_uid)
    current = store.load_booking(key)
    if current is not None and booking.status is Status.COMPLETED:
        happened = max(d for d in (current.updated_at, booking.updated_at, booking.end) if d is not None)
        store.save_booking(replace(current, status=Status.COMPLETED, updated_at=happened))
        return "done"
    store_booking(store, booking, uid, delivery.previous_uid)
    return "done"


def pull_bookings(store: Store, client: CalcomClient, cursor: str | None, *, link_metadata: Sequence[str],
                  default_timezone: str, now: Callable[[], datetime] = now_utc) -> PullResult:
    """Store every booking changed since ``cursor`` (re-reading :data:`PULL_OVERLAP` before
    it); the superseded half of a reschedule is skipped (its successor, same key, carries
    the booking), and a valid successor settles its predecessor's failure."""
    started = now()
    after = parse_instant(cursor) - PULL_OVERLAP if cursor else None
    failures: list[Failure] = []
    read_ok: set[str] = set()
    newest: datetime | None = None
    for data in client.iter_bookings(after):
        uid = str(data.get("uid"))
        chain = (uid, data.get("rescheduledFromUid"), data.get("rescheduledToUid"))
        try:
            calcom_key(store, *chain)  # remember the chain even when this half can't be read
            if not (data.get("rescheduledToUid") and str(data.get("status", "")).lower() == "cancelled"):
                store_booking(store, booking_from_api(data, now=started, link_metadata=link_metadata,
                                                      default_timezone=default_timezone), *chain)
            read_ok.add(uid)
            if data.get("rescheduledFromUid"):
                read_ok.add(str(data["rescheduledFromUid"]))
        except RecordError as exc:
            failures.append(Failure(exc.record_id, exc.reason, str(data.get("title") or "")[:100]))
        if data.get("updatedAt"):
            updated = parse_instant(data["updatedAt"])
            newest = updated if newest is None or updated > newest else newest
    return PullResult((newest or started).isoformat(), failures, read_ok)


# --------------------------------------------------------------------------- the platform

AUTH_HINT = "check [calcom] api_key (or $BSYNC_CALCOM__API_KEY): Cal.com → Settings → Developer → API keys"
REFUSED_HINT = "check [calcom] api_version and base_url"


class CalcomPlatform:
    """Cal.com behind :class:`~bsync.platforms.base.Platform`: signed webhooks on
    ``/webhooks/calcom`` (``[calcom] webhook_secret``) and an incremental pull."""

    name = NAME
    label = "Cal.com"
    section = "calcom"
    check_name = "cal.com"
    statuses = CALCOM_STATUS

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._client: CalcomClient | None = None

    @property
    def requests(self) -> int:
        return self._client.requests if self._client else 0

    def client(self) -> CalcomClient:
        """The REST client, opened on first use (ConfigError without a [calcom] section)."""
        if self._client is None:
            self._client = CalcomClient(self.settings.require("calcom"), retry_policy(self.settings))
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    def unconfigured(self) -> str | None:
        return "no [calcom] section" if self.settings.calcom is None else None

    def link_properties(self) -> Mapping[str, str]:
        calcom = self.settings.calcom
        return calcom.link_metadata if calcom else {}

    def verify(self, body: bytes, headers: Mapping[str, str]) -> None:
        secret = self.settings.require("calcom").webhook_secret
        verify_calcom(body, headers.get(CALCOM_SIGNATURE_HEADER.lower()),
                      secret.get_secret_value() if secret else None)

    def parse(self, body: bytes, now: datetime, *, replay_window: timedelta) -> CalcomDelivery:
        calcom = self.settings.require("calcom")
        return parse_calcom(body, now, replay_window=replay_window, link_metadata=list(calcom.link_metadata),
                            default_timezone=self.settings.timezone)

    def apply(self, store: Store, delivery: Any) -> Outcome:
        return apply_delivery(store, delivery)

    def pull(self, store: Store, cursor: str | None) -> PullResult:
        calcom = self.settings.require("calcom")
        return pull_bookings(store, self.client(), cursor, link_metadata=list(calcom.link_metadata),
                             default_timezone=self.settings.timezone)

    def check(self) -> str:
        calcom = self.settings.require("calcom")
        try:
            self.client().get("/v2/bookings", {"take": 1})  # Cal.com has no cheaper call every key may make
        except AuthError as exc:
            raise AuthError(str(exc), hint=exc.hint or AUTH_HINT) from None
        except RemoteUnavailableError:
            raise
        except RemoteError as exc:
            raise RemoteError(str(exc), hint=exc.hint or REFUSED_HINT) from None
        return f"API key accepted (GET /v2/bookings, cal-api-version {calcom.api_version})"
