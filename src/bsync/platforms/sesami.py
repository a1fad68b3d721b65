"""Sesami (Shopify appointment booking) as a booking platform: webhook-only.

Sesami has no API bsync reads, so nothing is pulled and ``bsync doctor`` has nothing to
ask; bookings arrive as signed webhooks on ``/webhooks/sesami`` (``[server]
sesami_secret``), are stored in the inbox, and become ``sesami:<booking id>`` rows of the
local bookings table.  Sesami itself documents no webhook signing (its webhooks are
merchant-templated Flows): the body shape and the signature below are bsync's own
contract for whatever relays a Flow to bsync (platform-apis.md §5).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any

from bsync.config import Settings
from bsync.core.model import Booking, Customer, Status, suspicious_time
from bsync.core.store import Store
from bsync.platforms import intake
from bsync.platforms.base import Outcome
from bsync.platforms.intake import MalformedError, SignatureError, UnsupportedError

NAME = "sesami"

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


@dataclass(frozen=True, slots=True)
class SesamiDelivery:
    """One Sesami webhook.  ``delivery_id`` is ``f"{event_type}:{booking id}:{timestamp}"``."""

    delivery_id: str
    event_type: str  # booking.created | booking.updated | booking.cancelled
    booking_id: str
    timestamp: datetime
    booking: Booking
    shop_domain: str | None = None
    actionable: bool = True


def sesami_status(value: str) -> Status:
    """Canonical status of a Sesami status word in any case; MalformedError when unknown."""
    return intake.lookup_status(value, SESAMI_STATUS, "Sesami status")


def verify_sesami(body: bytes, header: str | None, secret: str | None) -> None:
    """Check ``x-sesami-signature``: bare lowercase hex HMAC-SHA256 of the raw body.

    Sesami itself documents no webhook signing (its webhooks are merchant-templated Flows);
    this is bsync's own contract for whatever relays Sesami's Flow to bsync and signs it.
    No secret configured → SignatureError, as for Cal.com.
    """
    intake.check_size(body)
    if not secret:
        raise SignatureError("no Sesami webhook secret is configured; unsigned deliveries are refused")
    if header is None or not header.strip():
        raise SignatureError(f"missing {SESAMI_SIGNATURE_HEADER} header")
    intake.compare_hex(body, header, secret, SESAMI_SIGNATURE_HEADER)


def parse_sesami(body: bytes, now: datetime, *, replay_window: timedelta, default_timezone: str,
                 max_skew: timedelta = intake.DEFAULT_MAX_SKEW) -> SesamiDelivery:
    """Parse ``{event_type, booking{id, customer, service, appointment_time, status, notes},
    shop{domain}, timestamp}``.  ``appointment_time`` and ``timestamp`` must carry an offset;
    ``service.duration`` is in minutes.  ``booking.cancelled`` (or ``.canceled``) is always
    cancelled whatever ``status`` says."""
    default_timezone = intake.config_zone(default_timezone)
    data = intake.load_object(body, "Sesami")
    raw_event = intake.text(data, "event_type", "body", required=True)
    assert raw_event is not None
    event_type = _SESAMI_EVENTS.get(raw_event.strip().lower())
    if event_type is None:
        raise UnsupportedError(f"unknown Sesami event_type {intake.show(raw_event)}")

    ts_raw = intake.text(data, "timestamp", "body", required=True)
    timestamp = intake.instant(ts_raw, "timestamp")
    intake.check_fresh(timestamp, now, replay_window, max_skew, "timestamp")

    b = intake.obj(data, "booking", "body")
    booking_id = intake.ident(b, "id", "booking")
    customer = intake.obj(b, "customer", "booking", required=False)
    service = intake.obj(b, "service", "booking")
    service_name = intake.text(service, "name", "booking.service", required=True)
    assert service_name is not None
    duration = service.get("duration")
    if isinstance(duration, str) and duration.strip().isdigit():
        duration = int(duration.strip())
    if isinstance(duration, bool) or not isinstance(duration, int) or not 0 < duration <= _MAX_MINUTES:
        raise MalformedError(f"booking.service.duration must be a whole number of minutes from 1 to "
                             f"{_MAX_MINUTES}, got {intake.show(duration)}")
    start = intake.instant(b.get("appointment_time"), "booking.appointment_time")
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

    name = intake.text(customer, "name", "booking.customer")
    booking = Booking(
        key=f"{NAME}:{booking_id}", title=f"{service_name.strip()} — {name.strip()}" if name else service_name.strip(),
        start=start, end=start + timedelta(minutes=duration), timezone=default_timezone, status=status,
        customer=Customer(name=name, email=intake.text(customer, "email", "booking.customer"),
                          phone=intake.text(customer, "phone", "booking.customer")),
        service=service_name.strip(), service_duration=duration,
        staff=intake.text(service, "staff_member", "booking.service"), notes=intake.text(b, "notes", "booking"),
        source=NAME, updated_at=timestamp)
    shop = intake.obj(data, "shop", "body", required=False)
    return SesamiDelivery(delivery_id=f"{event_type}:{booking_id}:{ts_raw}", event_type=event_type,
                          booking_id=booking_id, timestamp=timestamp, booking=booking,
                          shop_domain=intake.text(shop, "domain", "shop"))


class SesamiPlatform:
    """Sesami behind :class:`~bsync.platforms.base.Platform`: webhooks only."""

    name = NAME
    label = "Sesami"
    section = "server"
    check_name = None
    statuses = SESAMI_STATUS
    requests = 0

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def unconfigured(self) -> str | None:
        return "no [server] sesami_secret" if self.settings.server.sesami_secret is None else None

    def link_properties(self) -> Mapping[str, str]:
        return {}

    def verify(self, body: bytes, headers: Mapping[str, str]) -> None:
        secret = self.settings.server.sesami_secret
        verify_sesami(body, headers.get(SESAMI_SIGNATURE_HEADER), secret.get_secret_value() if secret else None)

    def parse(self, body: bytes, now: datetime, *, replay_window: timedelta) -> SesamiDelivery:
        return parse_sesami(body, now, replay_window=replay_window, default_timezone=self.settings.timezone)

    def apply(self, store: Store, delivery: Any) -> Outcome:
        """Every Sesami event carries the whole booking: store it (an older one is not saved)."""
        if delivery.booking is None:
            return "ignored"
        store.save_booking(delivery.booking)
        return "done"

    def pull(self, store: Store, cursor: str | None) -> None:
        return None  # webhook-only

    def check(self) -> str:
        raise NotImplementedError("Sesami has no API bsync calls; doctor skips it (check_name is None)")

    def close(self) -> None:
        return None
