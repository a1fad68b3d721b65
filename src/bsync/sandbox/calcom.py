"""Loopback emulator of the Cal.com API v2 bookings read endpoints and of Cal.com's webhooks.

The pull side is ``GET /v2/bookings`` and ``GET /v2/bookings/{uid}``; the push side is
:meth:`CalcomSandbox.webhook_payload`, :meth:`CalcomSandbox.sign` and
:meth:`CalcomSandbox.deliver`, which POST what Cal.com POSTs to a subscriber, so a receiver
can be tested against the real wire format.  Bookings are created and changed in-process
(:meth:`create_booking`, :meth:`reschedule`, :meth:`cancel`, :meth:`mark_no_show`,
:meth:`end_meeting`); those helpers are neither HTTP nor recorded.

Sources (repository ``calcom/cal.com``, read file by file; "[2°]" = secondary source):

* Error envelope -- ``apps/api/v2/src/filters/http-exception.filter.ts``:
  ``{"status":"error","timestamp":<ISO ms>,"path":<request.url>,"error":{"code":<exception
  class name>,"message":…}}``.  Hosted Cal.com also carries ``error.details`` = Nest's
  ``exception.getResponse()`` (``{"message","error":<reason phrase>,"statusCode"}``), observed
  live on ``api.cal.com`` [2°: a third-party emulator's fidelity notes]; emitted here too.
  TRPC errors -- ``filters/trpc-exception.filter.ts`` (code ``TRPCError``, fixed messages).
* Version routing -- the API bootstrap (``app.ts``): ``cal-api-version`` picks the controller;
  a missing or unknown value falls back to ``2024-04-15``.  ``BookingsController_2024_08_13``
  (``@ApiHeader``: "If not set to this value, the endpoint will default to an older
  version"); ``BookingsController_2024_04_15`` also serves ``2024-06-11``/``2024-06-14``.
  **Choice:** without the header this sandbox answers like the real fallback, i.e. the *old*
  handler and its old shape (``data: {bookings, recurringInfo, totalCount, nextCursor}``,
  ``filters[status]`` default ``upcoming``, ``limit`` default 10, ``cursor``; the new
  parameters ``take``/``skip``/``afterUpdatedAt``/… are silently dropped by the whitelisting
  ValidationPipe).  A client that forgets the header therefore gets a 200 it cannot parse
  as a v2 list -- exactly what happens against Cal.com.  ``2024-09-04`` (a real version with
  no bookings controller) answers Nest's 404 ``Cannot GET …``.  Versions ``2026-*`` are not
  in the stored source and are treated as unknown (legacy fallback).
* Auth -- ``modules/auth/strategies/api-auth/api-auth.strategy.ts``,
  ``guards/permissions/permissions.guard.ts``, ``guards/optional-api-auth``: the list runs
  ``PermissionsGuard`` (403 ``PermissionsGuard - no authentication provided. …`` without
  credentials; 403 ``… no oAuth client found for access token=<t>`` for an unknown non-``cal_``
  bearer) then ``ApiAuthGuard`` (401 ``ApiAuthStrategy - api key - Your api key is not valid``
  for an unknown ``cal_`` key).  ``GET /v2/bookings/{uid}`` uses ``OptionalApiAuthGuard``:
  anonymous is allowed, an invalid credential is a 401.  Accepted here: ``sandbox-token``
  (stands for a valid OAuth access token) and keys registered with :meth:`add_api_key`.
* Query input -- ``packages/platform/types/bookings/2024-08-13/inputs/get-bookings.input.ts``
  (texts of the 400s, ``take`` 1..250 default 100 via ``parseInt``, ``skip`` >= 0); the
  service (``bookings.service.ts``, ``input.service.ts``) and ``getAllUserBookings`` /
  ``get.handler.ts`` (status semantics, no status = no status filter, ``>=``/``<=`` bounds,
  ``eventTypeIds`` wins over ``eventTypeId``, sort precedence start > end > created >
  updated, default order by status, else ``startTime asc``).  Validation failures answer the
  global ValidationPipe's ``400 "Bad Request Exception"`` with
  ``details.errors[{property, children, constraints}]``.
* Pagination -- ``apps/api/v2/src/lib/pagination/pagination.ts`` (+ spec): skip clamped to the
  total, ``currentPage`` 0 when empty, keys as in ``PaginationMetaDto``.  Unlike some
  historical Cal.com versions (whose count ignored the created/updated filters), totalItems
  here counts the filtered set.
* Booking object -- ``packages/platform/types/bookings/2024-08-13/outputs/booking.output.ts``
  and ``ee/bookings/2024-08-13/services/output.service.ts``: lowercase status;
  ``cancellationReason``/``cancelledByEmail`` are ``""`` when unset; ``rescheduledByEmail``
  and ``rating`` are ``null``; ``rescheduledFromUid``/``rescheduledToUid``/``guests``/
  ``phoneNumber`` are omitted when unset; ``meetingUrl`` equals ``location``;
  ``bookingFieldsResponses`` carries ``displayEmail`` (and ``displayGuests``, and the
  ``smsReminderNumber`` booking field when ``create_booking(responses=…)`` gives one; webhooks
  then carry it top-level and in ``responses`` too [?: label]); dates are
  ``toISOString()`` (milliseconds, ``Z``).  Guests are also attendee rows (``name ""``), as
  ``handleNewBooking`` stores them.  Get-by-uid 404: ``Booking with uid=<uid> was not found in
  the database``; legacy: ``Booking with UID=<uid> does not exist.``
* Semantics -- reschedule: new booking, new uid, ``fromReschedule`` = old uid; old booking
  ``CANCELLED`` + ``rescheduled``; ``rescheduledToUid`` is looked up from the successor.  Host
  "request reschedule" (``requestReschedule.handler.ts``): ``CANCELLED``, ``rescheduled: true``,
  ``cancellationReason``, ``updatedAt`` bumped, BOOKING_CANCELLED with
  ``requestReschedule: true``.  Attendee no-show (``handleMarkNoShow.ts``) updates only
  Attendee rows, so the booking's ``updatedAt`` does **not** move (an ``afterUpdatedAt`` poll
  does not see it; the BOOKING_NO_SHOW_UPDATED webhook does); a host no-show updates the
  booking row.
* Webhooks -- ``packages/features/webhooks/lib/factory/versioned/v2021-10-20/
  BookingPayloadBuilder.ts`` (payload fields and per-trigger extras), the docs page
  ``docs/developing/guides/automation/webhooks.mdx`` (full examples per trigger, the
  ``x-cal-webhook-version`` header), ``lib/sendPayload.ts`` and the scheduled-trigger sender
  (headers ``Content-Type: application/json``, ``X-Cal-Signature-256`` = hex HMAC-SHA256 of
  the exact body with the webhook secret or the literal ``no-secret-provided``,
  ``X-Cal-Webhook-Version: 2021-10-20``; ``redirect: "manual"``).  MEETING_STARTED/ENDED
  follow the docs examples: flat booking row plus ``triggerEvent``, no ``payload`` wrapper
  (the newest ``MeetingPayloadBuilder`` wraps them; pass ``meeting_envelope=True``).

Not modelled: creating/cancelling/rescheduling over HTTP, teams (``teamId``/``teamsIds``
are validated and then, as for a user without team event types, filter nothing), seats,
recurring series other than carrying ``recurringBookingUid``, rate-limit headers.  Injected
502/503/504 use Cal.com's envelope although the real edge may answer them without JSON.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import math
import random
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http import HTTPStatus
from typing import Any, Callable, Iterable
from urllib.parse import urlencode
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpx

from bsync.sandbox.base import JSON, Request, Response, SandboxServer, route

API_VERSION = "2024-08-13"
LEGACY_VERSIONS = ("2024-04-15", "2024-06-11", "2024-06-14")  # BookingsController_2024_04_15
OTHER_KNOWN_VERSIONS = ("2024-09-04",)  # real versions without a bookings controller
WEBHOOK_VERSION = "2021-10-20"
STATIC_TOKEN = "sandbox-token"
NO_SECRET = "no-secret-provided"
CONTENT_TYPE = "application/json; charset=utf-8"  # Express res.json()

TAKE_DEFAULT, TAKE_MAX = 100, 250
LEGACY_LIMIT_DEFAULT, LEGACY_LIMIT_MAX = 10, 100

STATUSES = ("upcoming", "recurring", "past", "cancelled", "unconfirmed")
MSG_STATUS = "Invalid status. Allowed are upcoming, recurring, past, cancelled, unconfirmed"
MSG_NO_AUTH_LIST = ("PermissionsGuard - no authentication provided. Provide either authorization "
                    "bearer token containing managed user access token or oAuth client id in "
                    "'x-cal-client-id' header.")
MSG_BAD_KEY = "ApiAuthStrategy - api key - Your api key is not valid"
MSG_BAD_ACCESS_TOKEN = "ApiAuthStrategy - access token - Invalid Access Token."
MSG_TRPC_BAD_REQUEST = "Bad request: Please check your request data and try again"

_BASE58 = "123456789abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ"  # Flickr (short-uuid)
_API_KEY_RE = re.compile(r"^cal_(test|live)_\S+$")
_ISO_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})"
    r"(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?([Zz]|[+-]\d{2}(?::?\d{2})?)?)?$")

_EXCEPTION_NAMES = {
    400: "BadRequestException", 401: "UnauthorizedException", 403: "ForbiddenException",
    404: "NotFoundException", 405: "MethodNotAllowedException", 409: "ConflictException",
    429: "ThrottlerException", 500: "InternalServerErrorException", 502: "BadGatewayException",
    503: "ServiceUnavailableException", 504: "GatewayTimeoutException",
}

DEFAULT_HOST: JSON = {"id": 101, "name": "Alex Stylist", "email": "alex@salon.example",
                      "username": "alex", "timeZone": "Europe/London"}
DEFAULT_EVENT_TYPE: JSON = {"id": 1001, "slug": "haircut", "title": "Haircut", "length": 45}
DEFAULT_ATTENDEE: JSON = {"name": "Jamie Client", "email": "jamie@example.com",
                          "timeZone": "Europe/London", "language": "en"}

TRIGGERS = ("BOOKING_CREATED", "BOOKING_RESCHEDULED", "BOOKING_CANCELLED", "BOOKING_REQUESTED",
            "BOOKING_REJECTED", "BOOKING_PAID", "BOOKING_PAYMENT_INITIATED",
            "BOOKING_NO_SHOW_UPDATED", "MEETING_STARTED", "MEETING_ENDED")


class CalcomValidation(Exception):
    """A ValidationPipe failure: ``errors`` are class-validator entries."""

    def __init__(self, errors: list[JSON]) -> None:
        super().__init__("Bad Request Exception")
        self.errors = errors


class CalcomHttpError(Exception):
    """An HttpException raised inside a handler."""

    def __init__(self, status: int, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code


# -- time helpers ---------------------------------------------------------------------------

def _utc(dt: datetime) -> datetime:
    if dt.tzinfo is None:
        raise ValueError("naive datetime; give an aware one")
    return dt.astimezone(timezone.utc)


def _ms(dt: datetime) -> str:
    """``Date.prototype.toISOString()``."""
    dt = _utc(dt)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def _sec(dt: datetime) -> str:
    """``dayjs(...).utc().format()`` as CalendarEvent start/end times appear in webhooks."""
    return _utc(dt).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_iso(text: str) -> datetime | None:
    """validator.js ``isISO8601({strict: true})`` + ``dayjs.utc``; no offset means UTC."""
    m = _ISO_RE.match(text)
    if not m:
        return None
    y, mo, d, h, mi, s, frac, off = m.groups()
    try:
        dt = datetime(int(y), int(mo), int(d), int(h or 0), int(mi or 0), int(s or 0),
                      int(((frac or "") + "000000")[:6]))
    except ValueError:
        return None
    if off in (None, "Z", "z"):
        return dt.replace(tzinfo=timezone.utc)
    sign = 1 if off[0] == "+" else -1
    digits = off[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:4] or 0)
    if hours > 23 or minutes > 59:
        return None
    return (dt.replace(tzinfo=timezone(sign * timedelta(hours=hours, minutes=minutes)))
            .astimezone(timezone.utc))


def _as_datetime(value: datetime | str) -> datetime:
    if isinstance(value, datetime):
        return _utc(value)
    parsed = _parse_iso(value)
    if parsed is None:
        raise ValueError(f"not an ISO 8601 date-time: {value!r}")
    return parsed


def _utc_offset_minutes(tz_name: str | None, at: datetime) -> int:
    try:
        offset = at.astimezone(ZoneInfo(tz_name or "UTC")).utcoffset()
    except (ZoneInfoNotFoundError, ValueError):
        return 0
    return int(offset.total_seconds() // 60) if offset else 0


# -- JavaScript number parsing, as the input classes' transforms do it ------------------------

def _js_parse_int(text: str) -> int | None:
    m = re.match(r"^\s*([+-]?\d+)", text)
    return int(m.group(1)) if m else None  # None = NaN


def _js_number(text: str) -> float | None:
    text = text.strip()
    if text == "":
        return 0.0
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _display_email(email: str) -> str:
    """``getDisplayEmail``: drops a ``+<25 alphanumerics>`` managed-user suffix."""
    return re.sub(r"\+[a-zA-Z0-9]{25}", "", email, count=1)


# -- state ------------------------------------------------------------------------------------

@dataclass
class _Attendee:
    id: int
    name: str
    email: str
    time_zone: str
    locale: str | None = "en"
    phone_number: str | None = None
    no_show: bool = False


@dataclass
class _Booking:
    """A booking as Cal.com's database row holds it (status upper case)."""

    id: int
    uid: str
    title: str
    description: str
    start: datetime
    end: datetime
    status: str
    host: JSON
    event_type: JSON
    attendees: list[_Attendee]
    responses: JSON
    location: str | None
    metadata: JSON
    created_at: datetime
    updated_at: datetime | None
    ical_uid: str
    ical_sequence: int = 0
    cancellation_reason: str | None = None
    cancelled_by: str | None = None
    rescheduled: bool | None = None
    from_reschedule: str | None = None
    rescheduled_by: str | None = None
    rescheduling_reason: str | None = None
    request_reschedule: bool = False
    rating: int | None = None
    no_show_host: bool = False
    recurring_event_id: str | None = None
    meeting_ended_at: datetime | None = None
    last_no_show: list[JSON] = field(default_factory=list)


class CalcomSandbox(SandboxServer):
    """Cal.com API v2 (bookings, ``cal-api-version: 2024-08-13``) plus its webhook sender."""

    name = "calcom"

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, seed: int | None = 0) -> None:
        #: Zero-arg callable returning the sandbox's "now" (aware UTC); tests may replace it.
        self.clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)
        #: Seed of the uid generator; ``reset()`` restarts the sequence (None = random).
        self.seed = seed
        self._tls = threading.local()
        super().__init__(host, port)

    def reset_state(self) -> None:
        with self.lock:
            self._bookings: dict[str, _Booking] = {}
            self._successor: dict[str, str] = {}         # old uid -> uid rescheduled to
            self._next_id = 1
            self._next_attendee_id = 1
            self._rng = random.Random(self.seed)
            self.api_keys: set[str] = set()
            self.event_types: dict[int, JSON] = {DEFAULT_EVENT_TYPE["id"]: dict(DEFAULT_EVENT_TYPE)}
            #: Every webhook :meth:`deliver` sent: url, trigger, uid, status, body, signature.
            self.deliveries: list[JSON] = []

    def _now(self) -> datetime:
        return _utc(self.clock())

    # -- errors -------------------------------------------------------------------------------
    def dispatch(self, request: Request) -> Response:
        self._tls.request = request  # lets error() echo the request path like Nest does
        try:
            return super().dispatch(request)
        finally:
            self._tls.request = None

    @staticmethod
    def _url(request: Request | None) -> str:
        if request is None:
            return "/"
        if not request.query:
            return request.path
        return request.path + "?" + urlencode(request.query, doseq=True)

    def error(self, status: int, message: str, code: str | None = None, *,
              details: Any = None) -> Response:
        """Cal.com's v2 error envelope (``HttpExceptionFilter``)."""
        request: Request | None = getattr(self._tls, "request", None)
        if status == 405:  # Express has no 405: an unrouted method is Nest's 404
            status = 404
            if request is not None:
                message = f"Cannot {request.method} {self._url(request)}"
            code = "NotFoundException"
        name = code or _EXCEPTION_NAMES.get(status, "HttpException")
        if details is None:
            if status == 429:
                details = message  # ThrottlerException's response is its message string
            else:
                try:
                    phrase = HTTPStatus(status).phrase
                except ValueError:
                    phrase = "Error"
                details = {"message": message, "error": phrase, "statusCode": status}
        error: JSON = {"code": name, "message": message}
        if name != "TRPCError":
            error["details"] = details
        body = {"status": "error", "timestamp": _ms(self._now()), "path": self._url(request),
                "error": error}
        return Response(status, body, content_type=CONTENT_TYPE)

    def not_found_route(self, request: Request) -> Response:
        return self.error(404, f"Cannot {request.method} {self._url(request)}")

    def _validation(self, errors: list[JSON]) -> Response:
        return self.error(400, "Bad Request Exception", details={"errors": errors})

    # -- auth ------------------------------------------------------------------------------------
    def add_api_key(self, key: str) -> str:
        """Accept ``key`` (``cal_test_…`` or ``cal_live_…``) as a valid API key."""
        if not isinstance(key, str) or not _API_KEY_RE.match(key):
            raise ValueError("Cal.com API keys look like cal_test_… or cal_live_…")
        with self.lock:
            self.api_keys.add(key)
        return key

    @staticmethod
    def _bearer(request: Request) -> str:
        header = request.headers.get("authorization", "")
        return header.replace("Bearer ", "", 1)  # request.get("Authorization")?.replace(...)

    def _api_auth(self, request: Request, *, optional: bool) -> Response | None:
        """``ApiAuthGuard`` / ``OptionalApiAuthGuard`` (bearer credentials only)."""
        token = self._bearer(request)
        if not token:
            if optional:
                return None
            return self.error(401, "ApiAuthStrategy - No authentication method provided. Either "
                                   "pass an API key as 'Bearer' header or OAuth client credentials "
                                   "as 'x-cal-secret-key' and 'x-cal-client-id' headers")
        if token.startswith("cal_"):
            return None if token in self.api_keys else self.error(401, MSG_BAD_KEY)
        return None if token == STATIC_TOKEN else self.error(401, MSG_BAD_ACCESS_TOKEN)

    def _permissions(self, request: Request) -> Response | None:
        """``PermissionsGuard`` for an endpoint that declares ``BOOKING_READ``."""
        token = self._bearer(request)
        client_id = request.headers.get("x-cal-client-id")
        if token.startswith("cal_"):
            return None  # API keys have full access (validity is ApiAuthGuard's job)
        if not token and not client_id:
            return self.error(403, MSG_NO_AUTH_LIST)
        if token:
            if token == STATIC_TOKEN:
                return None
            return self.error(403, f"PermissionsGuard - no oAuth client found for access token={token}")
        return self.error(403, f"PermissionsGuard - no oAuth client found for client id={client_id}")

    # -- routes --------------------------------------------------------------------------------
    def _version(self, request: Request) -> str:
        value = request.headers.get("cal-api-version", "")
        if value == API_VERSION:
            return "v2"
        if value in OTHER_KNOWN_VERSIONS:
            return "none"
        return "legacy"  # LEGACY_VERSIONS, missing or unknown: the extractor's fallback

    def _call(self, fn: Callable[[], Response]) -> Response:
        try:
            return fn()
        except CalcomValidation as exc:
            return self._validation(exc.errors)
        except CalcomHttpError as exc:
            return self.error(exc.status, exc.message, exc.code)

    @route("GET", "/v2/bookings")
    def bookings_list(self, request: Request) -> Response:
        version = self._version(request)
        if version == "none":
            return self.not_found_route(request)
        denied = self._permissions(request) or self._api_auth(request, optional=False)
        if denied is not None:
            return denied
        if version == "legacy":
            return self._call(lambda: self._legacy_list(request))
        return self._call(lambda: self._list(request))

    @route("GET", "/v2/bookings/{uid}")
    def bookings_get(self, request: Request) -> Response:
        version = self._version(request)
        if version == "none":
            return self.not_found_route(request)
        uid = request.params["uid"]
        if version == "legacy":  # the 2024-04-15 get has no guards at all
            booking = self._bookings.get(uid)
            if booking is None:
                return self.error(404, f"Booking with UID={uid} does not exist.")
            return Response(200, {"status": "success", "data": self._legacy_render(booking, full=True)},
                            content_type=CONTENT_TYPE)
        denied = self._api_auth(request, optional=True)
        if denied is not None:
            return denied
        booking = self._bookings.get(uid)
        if booking is None:
            return self.error(404, f"Booking with uid={uid} was not found in the database")
        return Response(200, {"status": "success", "data": self._render(booking)},
                        content_type=CONTENT_TYPE)

    # -- GET /v2/bookings (2024-08-13) -----------------------------------------------------------
    def _list(self, request: Request) -> Response:
        params = self._validate_list_query(request)
        now = self._now()
        candidates = [b for b in self._bookings.values() if self._status_match(b, params["status"], now)]
        candidates = [b for b in candidates if self._filters_match(b, params)]
        ordered = self._order(candidates, params["status"], params["sort"])
        take, skip = abs(params["take"]), abs(params["skip"])
        page = ordered[skip:skip + take]
        return Response(200, {"status": "success", "data": [self._render(b) for b in page],
                              "pagination": self._pagination(skip, take, len(ordered))},
                        content_type=CONTENT_TYPE)

    def _validate_list_query(self, request: Request) -> JSON:
        errors: list[JSON] = []
        q = request.query

        def fail(prop: str, **constraints: str) -> None:
            errors.append({"property": prop, "children": [], "constraints": constraints})

        def one(name: str) -> str | list[str] | None:
            values = q.get(name)
            if not values:
                return None
            return values[0] if len(values) == 1 else list(values)

        out: JSON = {}
        # status: comma list (a repeated parameter arrives as an array)
        raw = one("status")
        statuses: list[str] | None = None
        if raw is not None:
            statuses = ([s.strip() for s in raw.split(",")] if isinstance(raw, str)
                        else [str(s) for s in raw])
            if not statuses:
                fail("status", arrayNotEmpty="status cannot be empty.")
            elif any(s not in STATUSES for s in statuses):
                fail("status", isEnum=MSG_STATUS)
        out["status"] = statuses or []

        for name in ("attendeeEmail", "attendeeName", "bookingUid"):
            value = one(name)
            if isinstance(value, list):
                fail(name, isString=f"{name} must be a string")
                value = None
            if name == "attendeeEmail" and isinstance(value, str):
                value = re.sub(r"\s+", "+", value.strip())
            out[name] = value

        for name in ("eventTypeIds", "eventTypeId", "teamsIds", "teamId"):  # declaration order
            value = one(name)
            if name.endswith("s"):  # comma list of ids: parseInt each (Number each for arrays)
                ids: list[int] | None = None
                if value is not None:
                    parts = value.split(",") if isinstance(value, str) else list(value)
                    parsed = [_js_parse_int(p) if isinstance(value, str) else _js_number(p)
                              for p in parts]
                    if any(p is None for p in parsed):
                        fail(name, isNumber=f"each value in {name} must be a number conforming "
                                            f"to the specified constraints")
                    else:
                        ids = [int(p) for p in parsed]  # type: ignore[arg-type]
                out[name] = ids
                continue
            number: int | None = None  # @Type(() => Number) + @IsInt
            if value is not None:
                parsed_num = _js_number(value) if isinstance(value, str) else None
                if parsed_num is None or parsed_num != int(parsed_num):
                    fail(name, isInt=f"{name} must be an integer number")
                else:
                    number = int(parsed_num)
            out[name] = number

        for name, which in (("afterStart", "fromDate"), ("beforeEnd", "toDate"),
                            ("afterCreatedAt", "fromDate"), ("beforeCreatedAt", "toDate"),
                            ("afterUpdatedAt", "fromDate"), ("beforeUpdatedAt", "toDate")):
            value = one(name)
            when = None
            if value is not None:
                when = _parse_iso(value) if isinstance(value, str) else None
                if when is None:
                    fail(name, isIso8601=f"{which} must be a valid ISO 8601 date.")
            out[name] = when

        sort: JSON = {}
        for name, label in (("sortStart", "SortStart"), ("sortEnd", "SortEnd"),
                            ("sortCreated", "SortCreated"), ("sortUpdatedAt", "SortCreated")):
            value = one(name)
            if value is not None:
                if value not in ("asc", "desc"):
                    fail(name, isEnum=f'{label} must be either "asc" or "desc".')
                else:
                    sort[name] = value
        out["sort"] = sort

        for name, low, high, default in (("take", 1, TAKE_MAX, TAKE_DEFAULT), ("skip", 0, None, 0)):
            value = one(name)
            if value is None:
                out[name] = default
                continue
            text = value if isinstance(value, str) else ",".join(value)
            number = _js_parse_int(text) if text else None  # `value && parseInt(value)`
            constraints: JSON = {}
            if high is not None and (number is None or number > high):
                constraints["max"] = f"{name} must not be greater than {high}"
            if number is None or number < low:
                constraints["min"] = f"{name} must not be less than {low}"
            if number is None:
                constraints["isNumber"] = f"{name} must be a number conforming to the specified constraints"
            if constraints:
                fail(name, **constraints)
            out[name] = number if number is not None else default

        if errors:
            raise CalcomValidation(errors)
        ids = out["eventTypeIds"] or ([out["eventTypeId"]] if out["eventTypeId"] else None)
        if ids and not any(i in self.event_types for i in ids):
            # getEventTypeIdsFromEventTypeIdsFilter throws TRPCError BAD_REQUEST
            raise CalcomHttpError(400, MSG_TRPC_BAD_REQUEST, "TRPCError")
        out["event_type_ids"] = set(ids) if ids else None
        return out

    @staticmethod
    def _status_match(b: _Booking, statuses: list[str], now: datetime) -> bool:
        if not statuses:
            return True  # the 2024-08-13 service passes `status || []`: no status filter
        for status in statuses:
            if status == "upcoming" and b.end >= now and (
                    (b.status == "ACCEPTED") if b.recurring_event_id
                    else b.status not in ("CANCELLED", "REJECTED")):
                return True
            if status == "recurring" and (b.end >= now and b.recurring_event_id
                                          and b.status not in ("CANCELLED", "REJECTED")):
                return True
            if status == "past" and b.end <= now and b.status not in ("CANCELLED", "REJECTED"):
                return True
            if status == "cancelled" and b.status in ("CANCELLED", "REJECTED"):
                return True
            if status == "unconfirmed" and b.end >= now and b.status == "PENDING":
                return True
        return False

    @staticmethod
    def _filters_match(b: _Booking, p: JSON) -> bool:
        if p["attendeeEmail"] and not any(a.email == p["attendeeEmail"].strip() for a in b.attendees):
            return False
        if p["attendeeName"] and not any(a.name == p["attendeeName"].strip() for a in b.attendees):
            return False
        if p["bookingUid"] and b.uid != p["bookingUid"].strip():
            return False
        if p["event_type_ids"] is not None and b.event_type["id"] not in p["event_type_ids"]:
            return False
        if p["afterStart"] and b.start < p["afterStart"]:
            return False
        if p["beforeEnd"] and b.end > p["beforeEnd"]:
            return False
        if p["afterCreatedAt"] and b.created_at < p["afterCreatedAt"]:
            return False
        if p["beforeCreatedAt"] and b.created_at > p["beforeCreatedAt"]:
            return False
        if p["afterUpdatedAt"] and (b.updated_at is None or b.updated_at < p["afterUpdatedAt"]):
            return False
        return not (p["beforeUpdatedAt"]
                    and (b.updated_at is None or b.updated_at > p["beforeUpdatedAt"]))

    @staticmethod
    def _order(bookings: list[_Booking], statuses: list[str], sort: JSON) -> list[_Booking]:
        """``getOrderBy``; ties (unordered in Postgres) are broken by id for stable pages."""
        by_status = {"upcoming": ("start", "asc"), "recurring": ("start", "asc"),
                     "past": ("start", "desc"), "cancelled": ("start", "desc"),
                     "unconfirmed": ("start", "asc")}
        if len(statuses) == 1 and not sort:
            key, order = by_status[statuses[0]]
        elif "sortStart" in sort:
            key, order = "start", sort["sortStart"]
        elif "sortEnd" in sort:
            key, order = "end", sort["sortEnd"]
        elif "sortCreated" in sort:
            key, order = "created_at", sort["sortCreated"]
        elif "sortUpdatedAt" in sort:
            key, order = "updated_at", sort["sortUpdatedAt"]
        else:
            key, order = "start", "asc"
        floor = datetime.min.replace(tzinfo=timezone.utc)
        out = sorted(bookings, key=lambda b: b.id)
        out.sort(key=lambda b: getattr(b, key) or floor, reverse=(order == "desc"))
        return out

    @staticmethod
    def _pagination(skip: int, take: int, total: int) -> JSON:
        safe_skip = max(0, min(skip, total))
        total_pages = -(-total // take) if take else 0
        if total_pages == 0:
            current = 0
        else:
            current = max(1, min(safe_skip // take + 1, total_pages))
        return {
            "returnedItems": max(0, min(total - safe_skip, take)),
            "totalItems": total,
            "itemsPerPage": take,
            "remainingItems": max(0, min(total - (safe_skip + take), total)),
            "currentPage": current,
            "totalPages": total_pages,
            "hasNextPage": safe_skip + take < total,
            "hasPreviousPage": safe_skip > 0,
        }

    # -- GET /v2/bookings (legacy 2024-04-15 fallback) ---------------------------------------------
    def _legacy_list(self, request: Request) -> Response:
        errors: list[JSON] = []
        status = request.arg("filters[status]") or "upcoming"
        if status not in STATUSES:
            errors.append({"property": "filters", "children": [{
                "property": "status", "children": [],
                "constraints": {"isEnum": "status must be one of the following values: "
                                          + ", ".join(STATUSES)}}], "constraints": {}})
        numbers: JSON = {}
        for name, low, high, default in (("limit", 1, LEGACY_LIMIT_MAX, LEGACY_LIMIT_DEFAULT),
                                         ("cursor", None, None, 0)):
            raw = request.arg(name)
            number = _js_parse_int(raw) if raw else None
            if raw and (number is None or (low is not None and number < low)
                        or (high is not None and number > high)):
                errors.append({"property": name, "children": [],
                               "constraints": {"isNumber": f"{name} must be a number conforming "
                                                           f"to the specified constraints"}})
            numbers[name] = number if number is not None else default
        if errors:
            raise CalcomValidation(errors)
        now = self._now()
        matching = self._order([b for b in self._bookings.values()
                                if self._status_match(b, [status], now)], [status], {})
        limit, cursor = numbers["limit"], numbers["cursor"]
        page = matching[cursor:cursor + limit]
        next_cursor = cursor + limit if len(matching) > cursor + limit else None
        data = {"bookings": [self._legacy_render(b) for b in page], "recurringInfo": [],
                "totalCount": len(matching), "nextCursor": next_cursor}
        return Response(200, {"status": "success", "data": data}, content_type=CONTENT_TYPE)

    def _legacy_render(self, b: _Booking, *, full: bool = False) -> JSON:
        """A ``GetBookingsDataEntry`` of the 2024-04-15 output (upper-case status, startTime)."""
        out: JSON = {
            "id": b.id, "title": b.title, "userPrimaryEmail": b.host["email"],
            "description": b.description, "customInputs": {},
            "startTime": _ms(b.start), "endTime": _ms(b.end),
            "attendees": [{"id": a.id, "email": a.email, "name": a.name, "timeZone": a.time_zone,
                           "locale": a.locale, "bookingId": b.id, "noShow": a.no_show}
                          for a in b.attendees],
            "metadata": copy.deepcopy(b.metadata), "uid": b.uid,
            "recurringEventId": b.recurring_event_id, "location": b.location,
            "eventType": {"slug": b.event_type["slug"], "id": b.event_type["id"], "eventName": None,
                          "price": 0, "recurringEvent": None, "currency": "usd", "metadata": {},
                          "seatsShowAttendees": False, "seatsShowAvailabilityCount": True,
                          "team": None},
            "status": b.status, "paid": False, "payment": [], "references": [],
            "isRecorded": False, "seatsReferences": [],
            "user": {"id": b.host["id"], "name": b.host["name"], "email": b.host["email"]},
            "rescheduled": b.rescheduled, "fromReschedule": b.from_reschedule,
        }
        if full:
            out["responses"] = self._responses(b)
        return out

    # -- rendering (API v2 BookingOutput_2024_08_13) -------------------------------------------
    def _responses(self, b: _Booking) -> JSON:
        return copy.deepcopy(b.responses)

    def _rescheduled_by_email(self, b: _Booking) -> str | None:
        if b.rescheduled:
            return b.rescheduled_by
        if b.from_reschedule:
            previous = self._bookings.get(b.from_reschedule)
            if previous is not None and previous.rescheduled_by is not None:
                return previous.rescheduled_by
        return b.rescheduled_by

    def _render(self, b: _Booking) -> JSON:
        host = b.host
        out: JSON = {
            "id": b.id,
            "uid": b.uid,
            "title": b.title,
            "description": b.description,
            "hosts": [{"id": host["id"], "name": host["name"], "email": host["email"],
                       "displayEmail": _display_email(host["email"]), "username": host["username"],
                       "timeZone": host["timeZone"]}],
            "status": b.status.lower(),
            "cancellationReason": b.cancellation_reason or "",
            "cancelledByEmail": b.cancelled_by or "",
        }
        if b.rescheduling_reason is not None:
            out["reschedulingReason"] = b.rescheduling_reason
        out["rescheduledByEmail"] = self._rescheduled_by_email(b)
        if b.from_reschedule:
            out["rescheduledFromUid"] = b.from_reschedule
        successor = self._successor.get(b.uid) if b.rescheduled else None
        if successor:
            out["rescheduledToUid"] = successor
        location = b.metadata.get("videoCallUrl") or b.location
        out.update({
            "start": _ms(b.start),
            "end": _ms(b.end),
            "duration": int((b.end - b.start).total_seconds() // 60),
            "eventTypeId": b.event_type["id"],
            "eventType": {"id": b.event_type["id"], "slug": b.event_type["slug"]},
            "meetingUrl": location,
            "location": location,
            "absentHost": b.no_show_host,
            "createdAt": _ms(b.created_at),
            "updatedAt": _ms(b.updated_at) if b.updated_at else None,
            "metadata": {k: v for k, v in b.metadata.items() if k != "videoCallUrl"},
            "rating": b.rating,
            "icsUid": b.ical_uid,
        })
        attendees = []
        for a in b.attendees:
            item: JSON = {"name": a.name, "email": a.email, "displayEmail": _display_email(a.email),
                          "timeZone": a.time_zone, "language": a.locale, "absent": a.no_show}
            if a.phone_number is not None:
                item["phoneNumber"] = a.phone_number
            attendees.append(item)
        out["attendees"] = attendees
        responses = self._responses(b)
        if isinstance(responses.get("guests"), list):
            out["guests"] = list(responses["guests"])
        if isinstance(responses.get("email"), str):
            responses["displayEmail"] = _display_email(responses["email"])
        if isinstance(responses.get("guests"), list):
            responses["displayGuests"] = [_display_email(g) for g in responses["guests"]]
        out["bookingFieldsResponses"] = responses
        if b.recurring_event_id:
            out["recurringBookingUid"] = b.recurring_event_id
        return out

    # -- in-process helpers (not HTTP, not recorded) ----------------------------------------------
    def _new_uid(self) -> str:
        n = self._rng.getrandbits(128)
        chars = []
        while n:
            n, r = divmod(n, 58)
            chars.append(_BASE58[r])
        return "".join(reversed(chars)).rjust(22, _BASE58[0])

    def _event_type(self, event_type_id: int | None, slug: str | None, title: str | None,
                    length: int | None) -> JSON:
        if event_type_id is None:
            event_type_id = DEFAULT_EVENT_TYPE["id"]
        et = self.event_types.get(event_type_id)
        if et is None:
            et = {"id": event_type_id, "slug": slug or f"event-{event_type_id}",
                  "title": title or (slug or f"Event {event_type_id}"), "length": length or 30}
            self.event_types[event_type_id] = et
        return et

    def _attendee(self, data: JSON) -> _Attendee:
        attendee = _Attendee(id=self._next_attendee_id, name=str(data.get("name", "")),
                             email=str(data.get("email", "")),
                             time_zone=str(data.get("timeZone", "UTC")),
                             locale=data.get("language", data.get("locale", "en")),
                             phone_number=data.get("phoneNumber"),
                             no_show=bool(data.get("absent", data.get("noShow", False))))
        self._next_attendee_id += 1
        return attendee

    def _get(self, uid: str) -> _Booking:
        booking = self._bookings.get(uid)
        if booking is None:
            raise KeyError(f"no booking with uid {uid!r}")
        return booking

    def create_booking(self, *, uid: str | None = None, title: str | None = None,
                       description: str = "", start: datetime | str | None = None,
                       end: datetime | str | None = None, duration: int | None = None,
                       status: str = "accepted", attendees: Iterable[JSON] | None = None,
                       attendee_name: str | None = None, attendee_email: str | None = None,
                       attendee_time_zone: str | None = None, host: JSON | None = None,
                       event_type_id: int | None = None, event_type_slug: str | None = None,
                       event_type_title: str | None = None, location: str | None = None,
                       metadata: JSON | None = None, guests: Iterable[str] | None = None,
                       responses: JSON | None = None, created_at: datetime | str | None = None,
                       updated_at: datetime | str | None = None, rating: int | None = None,
                       recurring_booking_uid: str | None = None,
                       cancellation_reason: str | None = None,
                       cancelled_by_email: str | None = None) -> JSON:
        """Store a booking as Cal.com would after a booker booked it; returns the API v2 object.

        Defaults: a random-but-seeded 22-character uid, the next id, one host
        (:data:`DEFAULT_HOST`), one attendee (:data:`DEFAULT_ATTENDEE`, or ``attendee_*``),
        event type :data:`DEFAULT_EVENT_TYPE`, start tomorrow on the hour, status accepted,
        ``createdAt`` = ``updatedAt`` = the clock.
        """
        with self.lock:
            now = self._now()
            et = self._event_type(event_type_id, event_type_slug, event_type_title, duration)
            start_dt = (_as_datetime(start) if start is not None
                        else (now + timedelta(days=1)).replace(minute=0, second=0, microsecond=0))
            if end is not None:
                end_dt = _as_datetime(end)
            else:
                end_dt = start_dt + timedelta(minutes=duration or et["length"])
            if end_dt < start_dt:
                raise ValueError("end before start")
            db_status = status.upper()
            if db_status not in ("ACCEPTED", "CANCELLED", "REJECTED", "PENDING", "AWAITING_HOST"):
                raise ValueError(f"unknown booking status {status!r}")
            if uid is None:
                uid = self._new_uid()
                while uid in self._bookings:
                    uid = self._new_uid()
            elif uid in self._bookings:
                raise ValueError(f"booking {uid!r} already exists")
            host_data = {**DEFAULT_HOST, **(host or {})}
            if attendees is None:
                main = dict(DEFAULT_ATTENDEE)
                if attendee_name is not None:
                    main["name"] = attendee_name
                if attendee_email is not None:
                    main["email"] = attendee_email
                if attendee_time_zone is not None:
                    main["timeZone"] = attendee_time_zone
                attendee_list = [main]
            else:
                attendee_list = [dict(a) for a in attendees]
            people = [self._attendee(a) for a in attendee_list]
            guest_list = list(guests or [])
            tz = people[0].time_zone if people else "UTC"
            people += [self._attendee({"name": "", "email": g, "timeZone": tz}) for g in guest_list]
            booking_responses: JSON = {}
            if people:
                booking_responses = {"email": people[0].email, "name": people[0].name}
            if guest_list:
                booking_responses["guests"] = guest_list
            booking_responses.update(copy.deepcopy(responses or {}))
            if title is None:
                who = people[0].name if people else "Guest"
                title = f"{et['title']} between {host_data['name']} and {who}"
            created = _as_datetime(created_at) if created_at is not None else now
            booking = _Booking(
                id=self._next_id, uid=uid, title=title, description=description,
                start=start_dt, end=end_dt, status=db_status, host=host_data, event_type=et,
                attendees=people, responses=booking_responses, location=location,
                metadata=copy.deepcopy(metadata or {}), created_at=created,
                updated_at=_as_datetime(updated_at) if updated_at is not None else created,
                ical_uid=f"{uid}@Cal.com", rating=rating, recurring_event_id=recurring_booking_uid,
                cancellation_reason=cancellation_reason, cancelled_by=cancelled_by_email)
            self._next_id += 1
            self._bookings[uid] = booking
            return self._render(booking)

    def reschedule(self, uid: str, start: datetime | str, end: datetime | str | None = None,
                   by_email: str | None = None, *, reason: str | None = None) -> JSON:
        """Reschedule like a booker does: a NEW booking (new uid) replaces ``uid``.

        The old booking becomes cancelled and ``rescheduled``; its API object then links
        ``rescheduledToUid``, the new one ``rescheduledFromUid``.  Returns the new booking.
        """
        with self.lock:
            old = self._get(uid)
            if old.status == "CANCELLED":
                successor = self._successor.get(uid)
                if successor:
                    raise ValueError(f"Can't reschedule booking with uid={uid} because it has been "
                                     f"cancelled and rescheduled already to booking with "
                                     f"uid={successor}.")
                raise ValueError(f"Can't reschedule booking with uid={uid} because it has been "
                                 f"cancelled.")
            now = self._now()
            start_dt = _as_datetime(start)
            end_dt = _as_datetime(end) if end is not None else start_dt + (old.end - old.start)
            new_uid = self._new_uid()
            while new_uid in self._bookings:
                new_uid = self._new_uid()
            responses = copy.deepcopy(old.responses)
            if reason is not None:
                responses["rescheduleReason"] = reason
            people = [self._attendee({"name": a.name, "email": a.email, "timeZone": a.time_zone,
                                      "language": a.locale, "phoneNumber": a.phone_number})
                      for a in old.attendees]
            new = _Booking(
                id=self._next_id, uid=new_uid, title=old.title, description=old.description,
                start=start_dt, end=end_dt, status="ACCEPTED", host=dict(old.host),
                event_type=old.event_type, attendees=people, responses=responses,
                location=old.location, metadata=copy.deepcopy(old.metadata), created_at=now,
                updated_at=now, ical_uid=old.ical_uid, ical_sequence=old.ical_sequence + 1,
                from_reschedule=uid, rescheduling_reason=reason,
                recurring_event_id=old.recurring_event_id)
            self._next_id += 1
            self._bookings[new_uid] = new
            old.status = "CANCELLED"
            old.rescheduled = True
            old.rescheduled_by = by_email
            old.updated_at = now
            self._successor[uid] = new_uid
            return self._render(new)

    def cancel(self, uid: str, reason: str | None = None, request_reschedule: bool = False, *,
               by_email: str | None = None) -> JSON:
        """Cancel ``uid``; ``request_reschedule`` is the host's "Request reschedule"."""
        with self.lock:
            booking = self._get(uid)
            if booking.status == "CANCELLED":
                raise ValueError(f"Can't cancel booking with uid={uid} because it has been "
                                 f"cancelled already.")
            booking.status = "CANCELLED"
            booking.cancellation_reason = reason
            booking.cancelled_by = by_email if by_email is not None else (
                booking.host["email"] if request_reschedule else None)
            booking.request_reschedule = request_reschedule
            if request_reschedule:
                booking.rescheduled = True
            booking.updated_at = self._now()
            return self._render(booking)

    def mark_no_show(self, uid: str, emails: Iterable[str] = (), *, no_show: bool = True,
                     host: bool = False) -> JSON:
        """Mark attendees (by email) and/or the host absent.

        As in Cal.com, attendee flags live on Attendee rows, so the booking's ``updatedAt``
        is unchanged; a host no-show updates the booking row and bumps it.
        """
        with self.lock:
            booking = self._get(uid)
            wanted = set(emails)
            changed = []
            for attendee in booking.attendees:
                if attendee.email in wanted:
                    attendee.no_show = no_show
                    changed.append({"email": attendee.email, "noShow": no_show})
            booking.last_no_show = changed
            if host:
                booking.no_show_host = True
                booking.updated_at = self._now()
            return self._render(booking)

    def end_meeting(self, uid: str) -> JSON:
        """Record that the meeting ended (MEETING_ENDED); the booking row does not change."""
        with self.lock:
            booking = self._get(uid)
            booking.meeting_ended_at = self._now()
            return self._render(booking)

    def get(self, uid: str) -> JSON | None:
        """The API v2 object of ``uid`` (a copy), or None."""
        with self.lock:
            booking = self._bookings.get(uid)
            return self._render(booking) if booking else None

    @property
    def bookings(self) -> dict[str, JSON]:
        """Every booking, uid -> API v2 object (copies), in creation order."""
        with self.lock:
            return {uid: self._render(b) for uid, b in self._bookings.items()}

    def booking_count(self, status: str | None = None) -> int:
        """How many bookings are stored (optionally with this v2 ``status``)."""
        with self.lock:
            return sum(1 for b in self._bookings.values()
                       if status is None or b.status.lower() == status.lower())

    # -- webhooks (the push side) ---------------------------------------------------------------
    def _organizer(self, b: _Booking) -> JSON:
        h = b.host
        return {"id": h["id"], "name": h["name"], "email": h["email"], "username": h["username"],
                "timeZone": h["timeZone"], "language": {"locale": "en"}, "timeFormat": "h:mma",
                "utcOffset": _utc_offset_minutes(h["timeZone"], b.start)}

    def _webhook_attendees(self, b: _Booking) -> list[JSON]:
        out = []
        for a in b.attendees:
            first, _, last = a.name.partition(" ")
            out.append({"email": a.email, "name": a.name, "firstName": first, "lastName": last,
                        "timeZone": a.time_zone, "phoneNumber": a.phone_number,
                        "language": {"locale": a.locale or "en"},
                        "utcOffset": _utc_offset_minutes(a.time_zone, b.start)})
        return out

    def _webhook_responses(self, b: _Booking) -> JSON:
        r = b.responses
        out: JSON = {
            "name": {"label": "your_name", "value": r.get("name", ""), "isHidden": False},
            "email": {"label": "email_address", "value": r.get("email", ""), "isHidden": False},
            "location": {"label": "location",
                         "value": {"optionValue": "", "value": b.location or ""}, "isHidden": False},
            "notes": {"label": "additional_notes", "isHidden": False},
            "guests": {"label": "additional_guests", "isHidden": False},
            "rescheduleReason": {"label": "reason_for_reschedule", "isHidden": False},
        }
        if r.get("notes"):
            out["notes"]["value"] = r["notes"]
        if r.get("guests"):
            out["guests"]["value"] = list(r["guests"])
        if r.get("rescheduleReason"):
            out["rescheduleReason"]["value"] = r["rescheduleReason"]
        if r.get("smsReminderNumber"):
            out["smsReminderNumber"] = {"label": "number_text_notifications", "value": r["smsReminderNumber"],
                                        "isHidden": False}  # [?] label
        return out

    def _booking_payload(self, b: _Booking, status: str) -> JSON:
        """The v2021-10-20 ``BookingPayloadBuilder`` payload (CalendarEvent spread + fields)."""
        et = b.event_type
        return {
            "bookerUrl": "https://cal.com",
            "type": et["slug"],
            "title": b.title,
            "description": b.description,
            "additionalNotes": b.responses.get("notes", ""),
            "customInputs": {},
            "startTime": _sec(b.start),
            "endTime": _sec(b.end),
            "organizer": self._organizer(b),
            "responses": self._webhook_responses(b),
            "userFieldsResponses": {},
            "attendees": self._webhook_attendees(b),
            "location": b.location,
            "destinationCalendar": None,
            "hideCalendarNotes": False,
            "requiresConfirmation": False,
            "eventTypeId": et["id"],
            "seatsShowAttendees": True,
            "seatsPerTimeSlot": None,
            "iCalUID": b.ical_uid,
            "iCalSequence": b.ical_sequence,
            "uid": b.uid,
            "eventTitle": et["title"],
            "eventDescription": "",
            "price": 0,
            "currency": "usd",
            "length": int((b.end - b.start).total_seconds() // 60),
            "bookingId": b.id,
            "metadata": copy.deepcopy(b.metadata),
            "status": status,
            # handleNewBooking adds ``smsReminderNumber: booking.smsReminderNumber || undefined``
            **({"smsReminderNumber": b.responses["smsReminderNumber"]}
               if b.responses.get("smsReminderNumber") else {}),
        }

    def _meeting_row(self, b: _Booking) -> JSON:
        """The booking row MEETING_STARTED/MEETING_ENDED send (docs example, flat)."""
        idempotency_key = str(uuid.uuid5(uuid.NAMESPACE_URL, f"cal.com/booking/{b.uid}"))
        return {
            "id": b.id, "uid": b.uid, "idempotencyKey": idempotency_key, "userId": b.host["id"],
            "userPrimaryEmail": b.host["email"], "eventTypeId": b.event_type["id"],
            "title": b.title, "description": b.description, "customInputs": {},
            "responses": self._webhook_responses(b), "startTime": _ms(b.start),
            "endTime": _ms(b.end), "location": b.location, "createdAt": _ms(b.created_at),
            "updatedAt": _ms(b.updated_at) if b.updated_at else None, "status": b.status,
            "paid": False, "destinationCalendarId": None,
            "cancellationReason": b.cancellation_reason, "rejectionReason": None,
            "reassignReason": None, "reassignById": None, "dynamicEventSlugRef": None,
            "dynamicGroupSlugRef": None, "rescheduled": b.rescheduled,
            "fromReschedule": b.from_reschedule, "recurringEventId": b.recurring_event_id,
            "smsReminderNumber": b.responses.get("smsReminderNumber"), "scheduledJobs": [],
            "metadata": copy.deepcopy(b.metadata),
            "isRecorded": False, "iCalUID": b.ical_uid, "iCalSequence": b.ical_sequence,
            "rating": b.rating, "ratingFeedback": None, "noShowHost": b.no_show_host,
            "oneTimePassword": None, "cancelledBy": b.cancelled_by,
            "rescheduledBy": b.rescheduled_by, "creationSource": "WEBAPP",
            "user": {"email": b.host["email"], "name": b.host["name"],
                     "timeZone": b.host["timeZone"], "username": b.host["username"]},
            "attendees": [{"id": a.id, "email": a.email, "name": a.name, "timeZone": a.time_zone,
                           "phoneNumber": a.phone_number, "locale": a.locale, "bookingId": b.id,
                           "noShow": a.no_show} for a in b.attendees],
            "payment": [], "references": [],
        }

    def webhook_payload(self, trigger: str, uid: str, *, meeting_envelope: bool = False,
                        **extra: Any) -> JSON:
        """The JSON body Cal.com POSTs for ``trigger`` about booking ``uid`` (version 2021-10-20).

        ``extra`` keys are merged into ``payload`` (into the root for the flat
        MEETING_STARTED/MEETING_ENDED bodies) and override the defaults, e.g.
        ``cancellationReason=…`` or ``requestReschedule=True``.  For BOOKING_RESCHEDULED,
        ``uid`` is the NEW booking's uid (``rescheduleUid`` is the previous one).
        """
        if trigger not in TRIGGERS:
            raise ValueError(f"unsupported trigger {trigger!r}; one of {', '.join(TRIGGERS)}")
        with self.lock:
            b = self._get(uid)
            created_at = _ms(self._now())
            if trigger in ("MEETING_STARTED", "MEETING_ENDED"):
                row = {**self._meeting_row(b), **extra}
                if meeting_envelope:  # the newest MeetingPayloadBuilder
                    return {"triggerEvent": trigger, "createdAt": created_at, "payload": row}
                return {"triggerEvent": trigger, **row}
            if trigger == "BOOKING_NO_SHOW_UPDATED":
                attendees = b.last_no_show or [{"email": a.email, "noShow": a.no_show}
                                               for a in b.attendees]
                if len(attendees) == 1:
                    verb = "marked" if attendees[0]["noShow"] else "unmarked"
                    message = f"{attendees[0]['email']} {verb} as no-show"
                else:
                    message = "No-show updated"
                payload: JSON = {"bookingUid": b.uid, "bookingId": b.id,
                                 "attendees": copy.deepcopy(attendees), "message": message}
                payload.update(extra)
                return {"triggerEvent": trigger, "createdAt": created_at, "payload": payload}
            status = {"BOOKING_CANCELLED": "CANCELLED", "BOOKING_REQUESTED": "PENDING",
                      "BOOKING_REJECTED": "REJECTED"}.get(trigger, "ACCEPTED")
            payload = self._booking_payload(b, status)
            if trigger == "BOOKING_CANCELLED":
                payload.update({"cancelledBy": b.cancelled_by,
                                "cancellationReason": b.cancellation_reason,
                                "requestReschedule": b.request_reschedule})
            elif trigger == "BOOKING_RESCHEDULED":
                previous = self._bookings.get(b.from_reschedule or "")
                if previous is None:
                    raise ValueError(f"booking {uid!r} was not rescheduled from another booking; "
                                     f"BOOKING_RESCHEDULED is sent for the new uid")
                payload.update({"rescheduleId": previous.id, "rescheduleUid": previous.uid,
                                "rescheduleStartTime": _sec(previous.start),
                                "rescheduleEndTime": _sec(previous.end),
                                "rescheduledBy": previous.rescheduled_by})
            elif trigger == "BOOKING_REJECTED":
                payload["rejectionReason"] = b.cancellation_reason
            elif trigger in ("BOOKING_PAID", "BOOKING_PAYMENT_INITIATED"):
                payload.update({"paymentId": None, "paymentData": None})
            payload.update(extra)
            return {"triggerEvent": trigger, "createdAt": created_at, "payload": payload}

    @staticmethod
    def encode_body(payload: JSON) -> bytes:
        """``JSON.stringify`` of the payload (compact, UTF-8)."""
        return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")

    @staticmethod
    def sign(body: bytes, secret: str) -> str:
        """``X-Cal-Signature-256``: hex HMAC-SHA256 of the exact body bytes with the secret."""
        return hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()

    def deliver_at_rate(self, url: str, trigger: str, uids: list[str], secret: str | None, *, rate: float,
                        on_each: Callable[[int, httpx.Response], None] | None = None) -> list[httpx.Response]:
        """:meth:`deliver` one webhook per uid, ``rate`` per second on one connection, as a
        busy Cal.com account would; ``on_each(i, response)`` is called after each."""
        responses: list[httpx.Response] = []
        began = time.monotonic()
        with httpx.Client(timeout=30) as client:
            for i, uid in enumerate(uids):
                time.sleep(max(0.0, began + i / rate - time.monotonic()))
                responses.append(self.deliver(url, trigger, uid, secret, client=client))
                if on_each is not None:
                    on_each(i, responses[-1])
        return responses

    def deliver(self, url: str, trigger: str, uid: str, secret: str | None, *,
                timeout: float = 10.0, client: httpx.Client | None = None, **extra: Any) -> httpx.Response:
        """POST the webhook for ``trigger``/``uid`` to ``url`` as Cal.com does.

        Headers: ``Content-Type: application/json``, ``X-Cal-Signature-256`` (hex HMAC, or
        ``no-secret-provided`` when ``secret`` is None), ``X-Cal-Webhook-Version: 2021-10-20``;
        redirects are not followed.  ``client`` keeps one connection for a stream of
        deliveries (a new client per call costs more than the post itself).
        """
        body = self.encode_body(self.webhook_payload(trigger, uid, **extra))
        signature = self.sign(body, secret) if secret else NO_SECRET
        headers = {"Content-Type": "application/json", "X-Cal-Signature-256": signature,
                   "X-Cal-Webhook-Version": WEBHOOK_VERSION}
        response = (client or httpx).post(url, content=body, headers=headers, timeout=timeout,
                                          follow_redirects=False)
        with self.lock:
            self.deliveries.append({"url": url, "trigger": trigger, "uid": uid,
                                    "status": response.status_code, "body": body,
                                    "signature": signature})
        return response
