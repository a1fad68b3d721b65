"""Webhook deliveries from Cal.com, Sesami and Notion, checked and parsed.  Pure: no I/O.

Each function takes the raw request body (bytes, exactly as received), a header value,
configuration values and "now", and either returns a frozen result or raises one of the
typed errors below.  The HTTP receiver (``bsync serve``) maps errors to status codes with
``err.http_status`` and logs ``err.reason``; reasons never contain secrets, tokens or
signatures, only field names and (short) offending values.

Order of calls in a receiver::

    check_size(body)                       # before buffering more than MAX_BODY
    verify_calcom(body, header, secret)    # authenticate the exact bytes...
    delivery = parse_calcom(body, now, ...)  # ...then parse them
    if already_seen(delivery.delivery_id): return 200   # dedupe is the receiver's job

HTTP mapping (``http_status`` on each error class):

* ``SignatureError`` 401: missing/bad signature, or no secret configured (we never accept
  unsigned deliveries; configure the secret).
* ``MalformedError`` 400: not JSON, or a field missing / of the wrong type / unknown value.
* ``TooLargeError`` 413: body over ``MAX_BODY``.
* ``ReplayError`` 409: the delivery's own timestamp is outside the replay window (too old,
  or further in the future than the allowed clock skew).  409 rather than 400 so a stale or
  replayed delivery stands apart from a broken one in logs and metrics (and it matches
  ``bsync serve``).  A *duplicate* delivery (same ``delivery_id`` seen before) is not an
  error at all: acknowledge it 200.
* ``UnsupportedError`` 200: well-formed, authentic, but of a kind bsync doesn't know
  (e.g. a Cal.com trigger added after this was written).  Acknowledge so the sender
  doesn't retry, and log the reason.

Documented-but-unhandled kinds (Cal.com ``BOOKING_PAID``, Notion ``comment.created``, …)
are *not* errors: they parse to a delivery with ``actionable=False``.

Sources for the wire facts are in /work/shared/api-notes (core-apis.md §3, platform-apis.md
§5) and the Notion webhook reference (developers.notion.com/reference/webhooks and
/reference/webhooks-events-delivery).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bsync.errors import BsyncError, ConfigError
from bsync.core.model import Booking, Customer, Status, suspicious_time
from bsync.core.timeutil import to_utc

MAX_BODY = 1024 * 1024
"""Largest body accepted (1 MiB).  Real deliveries are a few KiB."""

DEFAULT_MAX_SKEW = timedelta(minutes=5)
"""How far in the future a delivery timestamp may be (sender clock ahead of ours)."""

NOTION_REDELIVERY_SPAN = timedelta(hours=24)
"""Notion retries a failed delivery up to 8 times, the last about 24 h after the event, and
an event's ``timestamp`` is when it *occurred*, not when it was sent.  A Notion
``replay_window`` shorter than this (plus a little) drops late retries."""


# --------------------------------------------------------------------------- errors


class WebhookError(BsyncError):
    """Base of webhook errors.  ``reason`` is short and safe to log; ``http_status`` is the
    answer the receiver should give."""

    http_status = 400

    def __init__(self, reason: str, *, hint: str | None = None) -> None:
        super().__init__(reason, hint=hint)
        self.reason = reason


class SignatureError(WebhookError):
    http_status = 401


class MalformedError(WebhookError):
    http_status = 400


class TooLargeError(WebhookError):
    http_status = 413


class ReplayError(WebhookError):
    http_status = 409


class UnsupportedError(WebhookError):
    """Authentic and well-formed, but nothing bsync knows how to act on: acknowledge it."""

    http_status = 200


# --------------------------------------------------------------------------- results


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


@dataclass(frozen=True, slots=True)
class SesamiDelivery:
    delivery_id: str
    event_type: str  # booking.created | booking.updated | booking.cancelled
    booking_id: str
    timestamp: datetime
    booking: Booking
    shop_domain: str | None = None
    actionable: bool = True


@dataclass(frozen=True, slots=True)
class NotionDelivery:
    """One Notion event.  Events are signals: fetch the page for its current state.
    ``page_id`` is the entity id when the entity is a page (else None)."""

    delivery_id: str
    type: str
    timestamp: datetime
    entity_id: str
    entity_type: str
    page_id: str | None
    parent_id: str | None
    parent_type: str | None
    deleted: bool
    attempt_number: int | None
    workspace_id: str | None
    subscription_id: str | None
    integration_id: str | None
    updated_properties: tuple[str, ...] = ()
    actionable: bool = True


# --------------------------------------------------------------------------- shared helpers


def check_size(body: bytes) -> None:
    """Raise TooLargeError when the body is over MAX_BODY."""
    if len(body) > MAX_BODY:
        raise TooLargeError(f"body is {len(body)} bytes; the limit is {MAX_BODY}")


def _show(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _span(delta: timedelta) -> str:
    seconds = int(abs(delta).total_seconds())
    days, seconds = divmod(seconds, 86400)
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    parts = [f"{n}{unit}" for n, unit in ((days, "d"), (hours, "h"), (minutes, "m"), (seconds, "s")) if n]
    return " ".join(parts) or "0s"


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _load_object(body: bytes, source: str) -> dict[str, Any]:
    check_size(body)
    try:
        text = bytes(body).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedError(f"{source} body is not UTF-8 (bad byte at offset {exc.start})") from None
    try:
        data = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise MalformedError(f"{source} body is not valid JSON: {exc.msg} at line {exc.lineno} "
                             f"column {exc.colno}") from None
    except RecursionError:
        raise MalformedError(f"{source} body is nested too deeply") from None
    except ValueError as exc:
        raise MalformedError(f"{source} body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise MalformedError(f"{source} body must be a JSON object, got {type(data).__name__}")
    return data


def _obj(data: Mapping[str, Any], key: str, where: str, *, required: bool = True) -> dict[str, Any]:
    value = data.get(key)
    if value is None:
        if required:
            raise MalformedError(f"{where}.{key} is missing")
        return {}
    if not isinstance(value, dict):
        raise MalformedError(f"{where}.{key} must be an object, got {type(value).__name__}")
    return value


def _text(data: Mapping[str, Any], key: str, where: str, *, required: bool = False) -> str | None:
    """A string field; None/""/whitespace count as absent."""
    value = data.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise MalformedError(f"{where}.{key} is missing or empty")
        return None
    if not isinstance(value, str):
        raise MalformedError(f"{where}.{key} must be a string, got {type(value).__name__}")
    return value


def _ident(data: Mapping[str, Any], key: str, where: str) -> str:
    """An id that may arrive as a string or an integer."""
    value = data.get(key)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    text = _text(data, key, where, required=True)
    assert text is not None
    return text.strip()


def _instant(value: Any, where: str) -> datetime:
    """An ISO 8601 timestamp carrying an offset, as an aware UTC datetime."""
    if not isinstance(value, str) or not value.strip():
        raise MalformedError(f"{where} must be an ISO 8601 timestamp string, got {_show(value)}")
    try:
        parsed = datetime.fromisoformat(value.strip())  # Python >= 3.11 reads "Z" and fractions
    except ValueError:
        raise MalformedError(f"{where} is not an ISO 8601 timestamp: {_show(value)}") from None
    if parsed.tzinfo is None:
        raise MalformedError(f"{where} has no UTC offset: {_show(value)}")
    try:
        return to_utc(parsed)
    except OverflowError:
        raise MalformedError(f"{where} is out of range: {_show(value)}") from None


def _zone(name: str, where: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: over-long names, directories
        raise MalformedError(f"{where} is not a known IANA timezone: {_show(name)}") from None
    return name


def _config_zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError, OSError):
        raise ConfigError(f"default_timezone {name!r} is not a known IANA timezone") from None
    return name


def _check_fresh(when: datetime, now: datetime, window: timedelta, skew: timedelta, what: str) -> None:
    if window <= timedelta(0) or skew < timedelta(0):
        raise ValueError("replay_window must be positive and max_skew not negative")
    now = to_utc(now)
    if when < now - window:
        raise ReplayError(f"{what} {when.isoformat()} is {_span(now - when)} old, outside the "
                          f"{_span(window)} replay window")
    if when > now + skew:
        raise ReplayError(f"{what} {when.isoformat()} is {_span(when - now)} in the future "
                          f"(at most {_span(skew)} of clock skew is allowed)")


def _hmac_hex(secret: str, body: bytes) -> bytes:
    return hmac.new(secret.encode("utf-8"), bytes(body), hashlib.sha256).hexdigest().encode("ascii")


_HEX64 = re.compile(r"[0-9a-f]{64}")


def _compare_hex(body: bytes, provided: str, secret: str, name: str) -> None:
    candidate = provided.strip().lower()
    if not _HEX64.fullmatch(candidate):
        raise SignatureError(f"{name} is not a 64-digit hex HMAC-SHA256")
    if not hmac.compare_digest(_hmac_hex(secret, body), candidate.encode("ascii")):
        raise SignatureError(f"{name} does not match the body")


def _normalise(value: str) -> str:
    return value.strip().lower().replace("-", "_").replace(" ", "_")


def _status_table(entries: Mapping[str, Status | str], name: str) -> dict[str, Status]:
    table: dict[str, Status] = {}
    for key, value in entries.items():
        try:
            table[_normalise(key)] = Status(value)
        except ValueError:
            raise ConfigError(f"{name}[{key!r}] = {value!r} is not one of "
                              f"{', '.join(s.value for s in Status)}") from None
    return table


def _lookup_status(value: Any, table: Mapping[str, Status], what: str) -> Status:
    if not isinstance(value, str) or not value.strip():
        raise MalformedError(f"{what} must be a non-empty string, got {_show(value)}")
    try:
        return table[_normalise(value)]
    except KeyError:
        raise MalformedError(f"unknown {what} {_show(value)} (known: {', '.join(sorted(table))})") from None


# --------------------------------------------------------------------------- Cal.com

CALCOM_SIGNATURE_HEADER = "X-Cal-Signature-256"
CALCOM_NO_SECRET = "no-secret-provided"

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
"""The one Cal.com status → canonical table, shared by webhooks and the API v2 client."""


def calcom_status(value: str, table: Mapping[str, Status] = CALCOM_STATUS) -> Status:
    """Canonical status of a Cal.com status in any case ("ACCEPTED", "accepted", "no-show");
    MalformedError naming the value when it is unknown."""
    if table is not CALCOM_STATUS:
        table = {_normalise(k): v for k, v in table.items()}
    return _lookup_status(value, table, "Cal.com status")


# Triggers that carry a booking we map to canonical, and the status each implies.  For
# CANCELLED/REJECTED/MEETING_* the trigger decides; for the others the payload's status
# does (it may say PENDING), falling back to this when absent.
_CALCOM_BOOKING_TRIGGERS = {
    "BOOKING_CREATED": "accepted",
    "BOOKING_RESCHEDULED": "accepted",
    "BOOKING_REQUESTED": "pending",
    "BOOKING_REJECTED": "rejected",
    "BOOKING_CANCELLED": "cancelled",
    "MEETING_STARTED": "meeting_started",
    "MEETING_ENDED": "meeting_ended",
}
_CALCOM_TRIGGER_DECIDES = {"BOOKING_CANCELLED", "BOOKING_REJECTED", "MEETING_STARTED", "MEETING_ENDED"}
# MEETING_STARTED/ENDED are scheduled jobs whose body is the booking row itself, flat,
# with no "payload" wrapper; their createdAt is the *booking's*, not the delivery's.
_CALCOM_FLAT_TRIGGERS = {"MEETING_STARTED": "startTime", "MEETING_ENDED": "endTime"}
CALCOM_TRIGGERS = frozenset({
    *_CALCOM_BOOKING_TRIGGERS, "BOOKING_NO_SHOW_UPDATED", "BOOKING_PAYMENT_INITIATED", "BOOKING_PAID",
    "RECORDING_READY", "RECORDING_TRANSCRIPTION_GENERATED", "FORM_SUBMITTED", "FORM_SUBMITTED_NO_EVENT",
    "INSTANT_MEETING", "OOO_CREATED", "AFTER_HOSTS_CAL_VIDEO_NO_SHOW", "AFTER_GUESTS_CAL_VIDEO_NO_SHOW",
    "WRONG_ASSIGNMENT_REPORT", "ROUTING_FORM_FALLBACK_HIT", "DELEGATION_CREDENTIAL_ERROR",
    "PING",  # the "Ping test" button in Cal.com's webhook settings
})
"""Every trigger Cal.com documents; those not handled parse with ``actionable=False``."""


def verify_calcom(body: bytes, header: str | None, secret: str | None) -> None:
    """Check ``X-Cal-Signature-256``: hex HMAC-SHA256 of the raw body keyed with the secret.

    No secret configured → SignatureError: bsync refuses unsigned Cal.com deliveries (the
    signature is the only thing that authenticates them).  Cal.com sends the literal
    ``no-secret-provided`` when the webhook on its side has no secret; that is rejected too.
    """
    check_size(body)
    if not secret:
        raise SignatureError("no Cal.com webhook secret is configured; unsigned deliveries are refused",
                             hint="set the same secret on the Cal.com webhook and in bsync's config")
    if header is None or not header.strip():
        raise SignatureError(f"missing {CALCOM_SIGNATURE_HEADER} header")
    if header.strip() == CALCOM_NO_SECRET:
        raise SignatureError(f"{CALCOM_SIGNATURE_HEADER} is {CALCOM_NO_SECRET!r}: the Cal.com webhook has "
                             "no secret", hint="set a secret on the Cal.com webhook")
    _compare_hex(body, header, secret, CALCOM_SIGNATURE_HEADER)


def parse_calcom(body: bytes, now: datetime, *, replay_window: timedelta,
                 status_map: Mapping[str, Status | str] | None = None,
                 link_metadata: Sequence[str] = (), default_timezone: str = "UTC",
                 max_skew: timedelta = DEFAULT_MAX_SKEW) -> CalcomDelivery:
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
    default_timezone = _config_zone(default_timezone)
    table = dict(CALCOM_STATUS)
    if status_map:
        table.update(_status_table(status_map, "status_map"))
    data = _load_object(body, "Cal.com")

    trigger = data.get("triggerEvent")
    if not isinstance(trigger, str) or not trigger.strip():
        raise MalformedError("triggerEvent is missing (custom payload templates are not supported)")
    trigger = trigger.strip()
    if trigger not in CALCOM_TRIGGERS:
        raise UnsupportedError(f"unknown Cal.com trigger {_show(trigger)}")

    wrapped = isinstance(data.get("payload"), dict)
    if wrapped:
        payload, where = data["payload"], "payload"
    elif trigger in _CALCOM_FLAT_TRIGGERS and "payload" not in data:
        payload, where = data, "body"
    elif data.get("payload") is not None:
        raise MalformedError(f"payload must be an object, got {type(data['payload']).__name__}")
    else:
        raise MalformedError(f"payload is missing (only {' and '.join(_CALCOM_FLAT_TRIGGERS)} come unwrapped)")

    created_raw = _text(data, "createdAt", "body", required=True)
    assert created_raw is not None
    created_at = _instant(created_raw, "createdAt")
    if wrapped:
        _check_fresh(created_at, now, replay_window, max_skew, "createdAt")
    else:
        field = _CALCOM_FLAT_TRIGGERS[trigger]
        _check_fresh(_instant(payload.get(field), f"{where}.{field}"), now, replay_window, max_skew,
                     f"{trigger} {field}")

    def delivery_id(uid: str | None) -> str:
        return f"{trigger}:{uid or '-'}:{created_raw}"

    if trigger == "BOOKING_NO_SHOW_UPDATED":
        uid = _text(payload, "bookingUid", where, required=True)
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

    if trigger not in _CALCOM_BOOKING_TRIGGERS:
        uid = payload.get("uid") or payload.get("bookingUid")
        uid = uid if isinstance(uid, str) and uid.strip() else None
        return CalcomDelivery(delivery_id(uid), trigger, created_at, uid, actionable=False)

    uid = _text(payload, "uid", where, required=True)
    assert uid is not None
    implied = _CALCOM_BOOKING_TRIGGERS[trigger]
    stated = payload.get("status")
    status = calcom_status(stated, table) if stated is not None else None  # validates it when present
    if status is None or trigger in _CALCOM_TRIGGER_DECIDES:
        status = calcom_status(implied, table)

    previous_uid = _text(payload, "rescheduleUid", where) if trigger == "BOOKING_RESCHEDULED" else None
    request_reschedule = False
    if trigger == "BOOKING_CANCELLED":
        flag = payload.get("requestReschedule")
        if flag is not None and not isinstance(flag, bool):
            raise MalformedError(f"{where}.requestReschedule must be true or false, got {_show(flag)}")
        request_reschedule = bool(flag)

    updated_at = created_at if wrapped else (
        _instant(payload["updatedAt"], f"{where}.updatedAt") if payload.get("updatedAt") else None)
    booking = _calcom_booking(payload, where, uid=uid, status=status, flat=not wrapped,
                              link_metadata=link_metadata, default_timezone=default_timezone,
                              updated_at=updated_at)
    return CalcomDelivery(delivery_id(uid), trigger, created_at, uid, previous_uid=previous_uid,
                          request_reschedule=request_reschedule, booking=booking)


def _calcom_booking(p: dict[str, Any], where: str, *, uid: str, status: Status, flat: bool,
                    link_metadata: Sequence[str], default_timezone: str,
                    updated_at: datetime | None) -> Booking:
    organizer = _obj(p, "user" if flat else "organizer", where, required=False)
    org_where = f"{where}.{'user' if flat else 'organizer'}"
    attendees = p.get("attendees") or []
    if not isinstance(attendees, list) or not all(isinstance(a, dict) for a in attendees):
        raise MalformedError(f"{where}.attendees must be a list of objects")
    first: dict[str, Any] = attendees[0] if attendees else {}
    first_where = f"{where}.attendees[0]"

    title = _text(p, "title", where) or _text(p, "eventTitle", where)
    if title is None:
        raise MalformedError(f"{where}.title is missing or empty")
    start = _instant(p.get("startTime"), f"{where}.startTime")
    end = _instant(p.get("endTime"), f"{where}.endTime")
    if end < start:
        raise MalformedError(f"{where}.endTime {end.isoformat()} is before startTime {start.isoformat()}")
    if (why := suspicious_time(start, end, False)) is not None:
        raise MalformedError(f"{where}.startTime/endTime: {why}")

    zone_name = _text(organizer, "timeZone", org_where) or _text(first, "timeZone", first_where)
    zone = _zone(zone_name, "organizer/attendee timeZone") if zone_name else default_timezone

    responses = p.get("responses") if isinstance(p.get("responses"), dict) else {}

    def response(key: str) -> str | None:
        entry = responses.get(key)
        value = entry.get("value") if isinstance(entry, dict) else entry
        return value.strip() if isinstance(value, str) and value.strip() else None

    customer = Customer(name=_text(first, "name", first_where) or response("name"),
                        email=_text(first, "email", first_where) or response("email"),
                        phone=_text(first, "phoneNumber", first_where) or response("attendeePhoneNumber")
                        # the booker's "number for text notifications" when the attendee has no phone
                        or _text(p, "smsReminderNumber", where) or response("smsReminderNumber"))

    event_type = _obj(p, "eventType", where, required=False)
    service = (_text(event_type, "title", f"{where}.eventType") or _text(p, "eventTitle", where)
               or _text(event_type, "slug", f"{where}.eventType") or _text(p, "type", where))
    length = p.get("length")
    duration = length if isinstance(length, int) and not isinstance(length, bool) and length > 0 else None

    metadata = _obj(p, "metadata", where, required=False)
    links: dict[str, str] = {}
    for key in link_metadata:
        value = metadata.get(key)
        if value is None or value == "":
            continue
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise MalformedError(f"{where}.metadata.{key} must be a string or integer, "
                                 f"got {type(value).__name__}")
        links[key] = str(value).strip()

    return Booking(key=f"calcom:{uid}", title=title.strip(), start=start, end=end, timezone=zone,
                   status=status, customer=customer, service=service, service_duration=duration,
                   staff=_text(organizer, "name", org_where),
                   notes=_text(p, "additionalNotes", where) or _text(p, "description", where),
                   location=_text(p, "location", where), links=links, source="calcom",
                   updated_at=updated_at)


# --------------------------------------------------------------------------- Sesami

SESAMI_SIGNATURE_HEADER = "x-sesami-signature"

SESAMI_STATUS: Mapping[str, Status] = MappingProxyType({
    "confirmed": Status.SCHEDULED,
    "pending": Status.SCHEDULED,
    "in_progress": Status.IN_PROGRESS,  # "in-progress" normalises to this
    "completed": Status.COMPLETED,
    "cancelled": Status.CANCELLED,
    "canceled": Status.CANCELLED,  # Sesami's own UI spells it this way
    "no_show": Status.NO_SHOW,  # Sesami has a NO_SHOW appointment event
})

_MAX_MINUTES = 7 * 24 * 60  # no appointment is longer than a week

_SESAMI_EVENTS = {"booking.created": "booking.created", "booking.updated": "booking.updated",
                  "booking.cancelled": "booking.cancelled", "booking.canceled": "booking.cancelled"}


def sesami_status(value: str) -> Status:
    return _lookup_status(value, SESAMI_STATUS, "Sesami status")


def verify_sesami(body: bytes, header: str | None, secret: str | None) -> None:
    """Check ``x-sesami-signature``: bare lowercase hex HMAC-SHA256 of the raw body.

    Sesami itself documents no webhook signing (its webhooks are merchant-templated Flows);
    this is bsync's own contract for whatever relays Sesami's Flow to bsync and signs it.
    No secret configured → SignatureError, as for Cal.com.
    """
    check_size(body)
    if not secret:
        raise SignatureError("no Sesami webhook secret is configured; unsigned deliveries are refused")
    if header is None or not header.strip():
        raise SignatureError(f"missing {SESAMI_SIGNATURE_HEADER} header")
    _compare_hex(body, header, secret, SESAMI_SIGNATURE_HEADER)


def parse_sesami(body: bytes, now: datetime, *, replay_window: timedelta, default_timezone: str,
                 max_skew: timedelta = DEFAULT_MAX_SKEW) -> SesamiDelivery:
    """Parse ``{event_type, booking{id, customer, service, appointment_time, status, notes},
    shop{domain}, timestamp}``.  ``appointment_time`` and ``timestamp`` must carry an offset;
    ``service.duration`` is in minutes.  ``booking.cancelled`` (or ``.canceled``) is always
    cancelled whatever ``status`` says."""
    default_timezone = _config_zone(default_timezone)
    data = _load_object(body, "Sesami")
    raw_event = _text(data, "event_type", "body", required=True)
    assert raw_event is not None
    event_type = _SESAMI_EVENTS.get(raw_event.strip().lower())
    if event_type is None:
        raise UnsupportedError(f"unknown Sesami event_type {_show(raw_event)}")

    ts_raw = _text(data, "timestamp", "body", required=True)
    timestamp = _instant(ts_raw, "timestamp")
    _check_fresh(timestamp, now, replay_window, max_skew, "timestamp")

    b = _obj(data, "booking", "body")
    booking_id = _ident(b, "id", "booking")
    customer = _obj(b, "customer", "booking", required=False)
    service = _obj(b, "service", "booking")
    service_name = _text(service, "name", "booking.service", required=True)
    assert service_name is not None
    duration = service.get("duration")
    if isinstance(duration, str) and duration.strip().isdigit():
        duration = int(duration.strip())
    if isinstance(duration, bool) or not isinstance(duration, int) or not 0 < duration <= _MAX_MINUTES:
        raise MalformedError(f"booking.service.duration must be a whole number of minutes from 1 to "
                             f"{_MAX_MINUTES}, got {_show(duration)}")
    start = _instant(b.get("appointment_time"), "booking.appointment_time")
    if (why := suspicious_time(start, start + timedelta(minutes=duration), False)) is not None:
        raise MalformedError(f"booking.appointment_time: {why}")

    stated = b.get("status")
    if event_type == "booking.cancelled":
        if stated is not None:
            sesami_status(stated)  # still reject junk
        status = Status.CANCELLED
    else:
        if stated is None:
            raise MalformedError("booking.status is missing")
        status = sesami_status(stated)

    name = _text(customer, "name", "booking.customer")
    booking = Booking(
        key=f"sesami:{booking_id}", title=f"{service_name.strip()} — {name.strip()}" if name else service_name.strip(),
        start=start, end=start + timedelta(minutes=duration), timezone=default_timezone, status=status,
        customer=Customer(name=name, email=_text(customer, "email", "booking.customer"),
                          phone=_text(customer, "phone", "booking.customer")),
        service=service_name.strip(), service_duration=duration,
        staff=_text(service, "staff_member", "booking.service"), notes=_text(b, "notes", "booking"),
        source="sesami", updated_at=timestamp)
    shop = _obj(data, "shop", "body", required=False)
    return SesamiDelivery(delivery_id=f"{event_type}:{booking_id}:{ts_raw}", event_type=event_type,
                          booking_id=booking_id, timestamp=timestamp, booking=booking,
                          shop_domain=_text(shop, "domain", "shop"))


# --------------------------------------------------------------------------- Notion

NOTION_SIGNATURE_HEADER = "X-Notion-Signature"

NOTION_EVENT_TYPES = frozenset({
    "page.content_updated", "page.created", "page.deleted", "page.locked", "page.moved",
    "page.properties_updated", "page.undeleted", "page.unlocked",
    "database.content_updated", "database.created", "database.deleted", "database.moved",
    "database.schema_updated", "database.undeleted",
    "data_source.content_updated", "data_source.created", "data_source.deleted", "data_source.moved",
    "data_source.schema_updated", "data_source.undeleted",
    "comment.created", "comment.deleted", "comment.updated",
})
"""Event types Notion documents.  Unknown ones raise UnsupportedError."""

NOTION_PAGE_EVENTS = frozenset({"page.created", "page.properties_updated", "page.content_updated",
                                "page.moved", "page.deleted", "page.undeleted"})
"""Events that can change a booking row: re-fetch the page (or mark it gone)."""

_TOKEN = re.compile(r"[A-Za-z0-9_\-.~+/=]{1,512}")


def notion_verification_token(body: bytes) -> str | None:
    """The ``verification_token`` of Notion's one-time subscription handshake, else None.

    Notion POSTs ``{"verification_token": "secret_…"}`` once when the subscription is
    created (again on "Resend token"); the operator pastes it into Notion's Verify form, and
    it then keys every event's signature.  The handshake is unsigned, so anyone can send
    one: the receiver must show/store it only while no token is stored (or on an explicit
    operator action), never replace a stored token automatically.  The token is checked to
    be plain printable characters so displaying it is safe.
    """
    check_size(body)
    try:
        data = json.loads(bytes(body).decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    if not isinstance(data, dict) or "verification_token" not in data or "type" in data:
        return None
    token = data["verification_token"]
    if not isinstance(token, str) or not _TOKEN.fullmatch(token):
        raise MalformedError("verification_token must be 1-512 printable token characters")
    return token


def verify_notion(body: bytes, header: str | None, token: str | None) -> None:
    """Check ``X-Notion-Signature: sha256=<hex HMAC-SHA256 of the raw body keyed with the
    verification token>``.  No stored token → SignatureError (finish the handshake first)."""
    check_size(body)
    if not token:
        raise SignatureError("no Notion verification token is stored; complete the subscription handshake",
                             hint="Notion sends the token once; paste it into bsync's config")
    if header is None or not header.strip():
        raise SignatureError(f"missing {NOTION_SIGNATURE_HEADER} header")
    scheme, sep, digest = header.strip().partition("=")
    if not sep or scheme.lower() != "sha256":
        raise SignatureError(f"{NOTION_SIGNATURE_HEADER} must look like 'sha256=<hex>'")
    _compare_hex(body, digest, token, NOTION_SIGNATURE_HEADER)


def parse_notion(body: bytes, now: datetime, *, replay_window: timedelta,
                 max_skew: timedelta = DEFAULT_MAX_SKEW) -> NotionDelivery:
    """Parse a (verified) Notion event.  ``timestamp`` is when the event happened; Notion
    retries for ~24 h (see NOTION_REDELIVERY_SPAN), and the same event keeps its ``id``
    across retries (``attempt_number`` 1-8), so dedupe on ``delivery_id``."""
    data = _load_object(body, "Notion")
    if "verification_token" in data and "type" not in data:
        raise MalformedError("this is Notion's one-time verification request, not an event; "
                             "handle it with notion_verification_token()")
    event_id = _text(data, "id", "body", required=True)
    event_type = _text(data, "type", "body", required=True)
    assert event_id is not None and event_type is not None
    if event_type not in NOTION_EVENT_TYPES:
        raise UnsupportedError(f"unknown Notion event type {_show(event_type)}")
    timestamp = _instant(data.get("timestamp"), "timestamp")
    _check_fresh(timestamp, now, replay_window, max_skew, "timestamp")

    entity = _obj(data, "entity", "body")
    entity_id = _text(entity, "id", "entity", required=True)
    entity_type = _text(entity, "type", "entity", required=True)
    assert entity_id is not None and entity_type is not None
    event_data = _obj(data, "data", "body", required=False)
    parent = _obj(event_data, "parent", "data", required=False)

    attempt = data.get("attempt_number")
    if attempt is not None and (isinstance(attempt, bool) or not isinstance(attempt, int) or attempt < 1):
        raise MalformedError(f"attempt_number must be a positive integer, got {_show(attempt)}")
    props = event_data.get("updated_properties") or []
    if not isinstance(props, list) or not all(isinstance(p, str) for p in props):
        raise MalformedError("data.updated_properties must be a list of property ids")

    is_page = entity_type == "page"
    return NotionDelivery(
        delivery_id=event_id, type=event_type, timestamp=timestamp, entity_id=entity_id,
        entity_type=entity_type, page_id=entity_id if is_page else None,
        parent_id=_text(parent, "id", "data.parent"), parent_type=_text(parent, "type", "data.parent"),
        deleted=event_type == "page.deleted", attempt_number=attempt,
        workspace_id=_text(data, "workspace_id", "body"), subscription_id=_text(data, "subscription_id", "body"),
        integration_id=_text(data, "integration_id", "body"), updated_properties=tuple(props),
        actionable=is_page and event_type in NOTION_PAGE_EVENTS)
