"""Processing webhook deliveries from the durable inbox into the local bookings table.

The receiver (``bsync serve``) only verifies, parses and stores a delivery before it
answers 2xx; this module acts on stored deliveries, so a crash between the two loses
nothing: the next ``sync`` (or ``retry``) processes what is still ``pending``/``failed``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any

from bsync.platforms import webhooks
from bsync.config import Settings
from bsync.core.model import Status
from bsync.platforms.pairs import calcom_key
from bsync.core.store import Store
from bsync.core.timeutil import parse_duration

log = logging.getLogger(__name__)
NO_REPLAY_CHECK = timedelta(days=36500)  # stored deliveries were checked when they arrived


def process_inbox(settings: Settings, store: Store) -> dict[str, int]:
    """Act on every pending or failed delivery, then forget processed ones older than
    ``[server] inbox_retention``; return counts by outcome (and ``pruned``)."""
    counts: dict[str, int] = {}
    for row in store.inbox_pending():
        try:
            outcome = _process(settings, store, row["provider"], row["payload"])
        except Exception as exc:  # a delivery we cannot act on stays visible, never lost
            log.warning("inbox delivery %s failed: %s", row["delivery_id"], exc)
            store.inbox_set(row["id"], "failed", f"{type(exc).__name__}: {exc}")
            counts["failed"] = counts.get("failed", 0) + 1
            continue
        store.inbox_set(row["id"], outcome)
        counts[outcome] = counts.get(outcome, 0) + 1
    retention = parse_duration(settings.server.inbox_retention)
    if pruned := store.inbox_prune(datetime.now(timezone.utc) - retention):
        counts["pruned"] = pruned
    return counts


def _process(settings: Settings, store: Store, provider: str, payload: str) -> str:
    body = payload.encode()
    now = datetime.now(timezone.utc)
    if provider == "calcom":
        calcom = settings.require("calcom")
        delivery = webhooks.parse_calcom(body, now, replay_window=NO_REPLAY_CHECK,
                                         link_metadata=list(calcom.link_metadata), default_timezone=settings.timezone)
        return _apply_calcom(store, delivery)
    if provider == "sesami":
        delivery = webhooks.parse_sesami(body, now, replay_window=NO_REPLAY_CHECK, default_timezone=settings.timezone)
        if delivery.booking is None:
            return "ignored"
        store.save_booking(delivery.booking)
        return "done"
    if provider == "notion":
        return "done"  # the next notion<->gcal run reads the changed pages
    raise ValueError(f"unknown provider {provider!r}")


def _apply_calcom(store: Store, delivery: Any) -> str:
    uid = delivery.uid
    if getattr(delivery, "no_show", None) is not None and delivery.booking is None:
        key = store.alias("calcom", uid) or f"calcom:{uid}"
        current = store.load_booking(key)
        if current is None:
            return "ignored"
        if delivery.no_show:
            store.save_booking(replace(current, status=Status.NO_SHOW))
        return "done"
    if delivery.booking is None:
        return "ignored"
    key = calcom_key(store, uid, getattr(delivery, "previous_uid", None))
    booking = replace(delivery.booking, key=key, links={**delivery.booking.links, "calcom_uid": uid})
    current = store.load_booking(key)
    if current is not None and booking.status is Status.COMPLETED:
        # MEETING_ENDED carries a thin booking whose createdAt is the booking's creation, not
        # the event's: keep what we know, change the status, and date it at the meeting's end
        # so it is never mistaken for an older state.
        happened = max(d for d in (current.updated_at, booking.updated_at, booking.end) if d is not None)
        booking = replace(current, status=Status.COMPLETED, updated_at=happened)
    store.save_booking(booking)
    return "done"


def inbox_payload(body: bytes) -> str:
    """The stored form of a delivery's raw body (valid JSON has been checked already)."""
    return json.dumps(json.loads(body))
