"""Cal.com API v2 as a booking source (``GET /v2/bookings``), over httpx.

There is no official Python client; the API is small.  Every request carries
``cal-api-version: 2024-08-13`` (without it the endpoint silently answers with an older
handler).  Reads are incremental: ``afterUpdatedAt`` + ``sortUpdatedAt=asc``, paged with
``take``/``skip``.

A reschedule makes a *new* Cal.com booking (new uid) linked to the old one by
``rescheduledFromUid``/``rescheduledToUid``.  bsync keys the whole chain by the first uid it
saw (aliases in the store), so a reschedule moves the same Notion booking and the same
calendar event instead of creating new ones.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Callable, Iterator, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpx

from bsync.config import CalcomConfig
from bsync.errors import RecordError
from bsync.core.model import Booking, Customer, Status, validate_booking
from bsync.core.ratelimit import Pacer
from bsync.core.retry import CallFailure
from bsync.core.retry import RetryPolicy, call
from bsync.core.timeutil import parse_instant
from bsync.platforms.webhooks import calcom_status

T = TypeVar("T")
API_RATE = 2.0  # requests/s: Cal.com allows an API key 120 requests a minute


def classify(exc: BaseException) -> CallFailure | None:
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


def sms_reminder_number(responses: Any) -> str | None:
    """The booker's "number for text notifications" (Cal.com's ``smsReminderNumber``
    booking field), used as the customer's phone when the attendee has none: without it
    those customers never got an SMS reminder.  In API v2 it is a key of
    ``bookingFieldsResponses``; webhook ``responses`` wrap it as ``{"value": …}``."""
    if not isinstance(responses, dict):
        return None
    entry = responses.get("smsReminderNumber")
    value = entry.get("value") if isinstance(entry, dict) else entry
    return value.strip() if isinstance(value, str) and value.strip() else None


class CalcomSource:
    """Reads bookings from Cal.com and turns them into canonical bookings."""

    name = "calcom"
    label = "Cal.com"

    def __init__(self, config: CalcomConfig, default_timezone: str, policy: RetryPolicy,
                 *, now: Callable[[], datetime] = lambda: datetime.now(timezone.utc)) -> None:
        self.config = config
        self.default_timezone = default_timezone
        self.policy = policy
        self.now = now
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

    def _get(self, path: str, params: dict[str, Any]) -> Any:
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
            page = self._get("/v2/bookings", params)
            data = page.get("data") or []
            yield from data
            pagination = page.get("pagination") or {}
            if not data or not pagination.get("hasNextPage", len(data) == self.config.page_size):
                return
            skip += len(data)

    def to_booking(self, data: dict[str, Any], key: str) -> Booking:
        """One API v2 booking as a canonical Booking under ``key`` (RecordError if unusable)."""
        uid = str(data.get("uid") or data.get("id") or "?")
        try:
            start = parse_instant(data["start"])
            end = parse_instant(data["end"])
        except (KeyError, TypeError, ValueError) as exc:
            raise RecordError(uid, f"unreadable start/end: {exc}") from None
        try:
            status = calcom_status(str(data.get("status", "")))
        except Exception as exc:  # the shared table names the unknown value
            raise RecordError(uid, str(exc)) from None
        attendees = data.get("attendees") or []
        attendee = attendees[0] if attendees else {}
        hosts = data.get("hosts") or []
        if status is Status.SCHEDULED and attendees and all(a.get("absent") for a in attendees):
            status = Status.NO_SHOW
        elif status is Status.SCHEDULED and end <= self.now():
            status = Status.COMPLETED  # the meeting has ended
        zone = attendee.get("timeZone") or (hosts[0].get("timeZone") if hosts else None) or self.default_timezone
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            zone = self.default_timezone
        metadata = data.get("metadata") or {}
        links = {name: str(metadata[name]) for name in self.config.link_metadata if metadata.get(name) is not None}
        event_type = data.get("eventType") or {}
        booking = Booking(
            key=key, title=data.get("title") or "Cal.com booking", start=start, end=end, timezone=zone,
            status=status,
            customer=Customer(attendee.get("name"), attendee.get("email"),
                              attendee.get("phoneNumber") or sms_reminder_number(data.get("bookingFieldsResponses"))),
            service=event_type.get("slug"), service_duration=data.get("duration"),
            staff=hosts[0].get("name") if hosts else None, notes=data.get("description") or None,
            location=data.get("location") or None, links={"calcom_uid": uid, **links}, source="calcom",
            updated_at=parse_instant(data["updatedAt"]) if data.get("updatedAt") else None)
        return validate_booking(booking, uid)
