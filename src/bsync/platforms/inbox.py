"""Processing webhook deliveries from the durable inbox into the local bookings table.

The receiver (``bsync serve``) only verifies, parses and stores a delivery before it
answers 2xx; this module acts on stored deliveries, so a crash between the two loses
nothing: the next ``sync`` (or ``retry``) processes what is still ``pending``/``failed``.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone

from bsync import registry
from bsync.config import Settings
from bsync.core.store import Store
from bsync.core.timeutil import parse_duration
from bsync.platforms.base import Outcome, Platform

log = logging.getLogger(__name__)
NO_REPLAY_CHECK = timedelta(days=36500)  # stored deliveries were checked when they arrived


def process_inbox(settings: Settings, store: Store) -> dict[str, int]:
    """Act on every pending or failed delivery, then forget processed ones older than
    ``[server] inbox_retention``; return counts by outcome (and ``pruned``)."""
    counts: dict[str, int] = {}
    platforms: dict[str, Platform] = {}
    try:
        for row in store.inbox_pending():
            try:
                outcome = _process(settings, store, platforms, row["provider"], row["payload"])
            except Exception as exc:  # a delivery we cannot act on stays visible, never lost
                log.warning("inbox delivery %s failed: %s", row["delivery_id"], exc)
                store.inbox_set(row["id"], "failed", f"{type(exc).__name__}: {exc}")
                counts["failed"] = counts.get("failed", 0) + 1
                continue
            store.inbox_set(row["id"], outcome)
            counts[outcome] = counts.get(outcome, 0) + 1
    finally:
        for platform in platforms.values():
            platform.close()
    retention = parse_duration(settings.server.inbox_retention)
    if pruned := store.inbox_prune(datetime.now(timezone.utc) - retention):
        counts["pruned"] = pruned
    return counts


def _process(settings: Settings, store: Store, platforms: dict[str, Platform], provider: str,
             payload: str) -> Outcome:
    """Re-parse a stored body (the raw body is the record, see :mod:`bsync.platforms.base`)
    and let its platform act on it; the ledger's own notifications need no work here."""
    if provider == registry.LEDGER.name:
        return "done"  # a change notification: the next ledger <-> calendar run reads the changed pages
    entry = registry.PLATFORMS.get(provider)
    if entry is None:
        raise ValueError(f"unknown provider {provider!r}")
    if provider not in platforms:
        platforms[provider] = registry.build(entry, settings)
    platform = platforms[provider]
    delivery = platform.parse(payload.encode(), datetime.now(timezone.utc), replay_window=NO_REPLAY_CHECK)
    return platform.apply(store, delivery)
