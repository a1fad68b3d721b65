"""Execute a plan, exactly: one remote write per planned change, each journaled first.

Order inside one action is chosen so a kill at any point converges on the next run:
the target write comes first (idempotent: the event id is deterministic), then the link
in the state DB, then the write-back onto the source record.  A run killed between any
two steps finds, next time, an event with its key already in place and plans only the
missing steps.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from bsync.errors import AuthError, RemoteError, RemoteUnavailableError
from bsync.model import Booking
from bsync.plan import Action, Plan
from bsync.providers.base import BookingSource, EventTarget
from bsync.store import Store


log = logging.getLogger(__name__)


@dataclass
class Summary:
    """The sync summary of SPEC §3."""

    pair: str
    total: int = 0
    created: int = 0
    updated: int = 0
    deleted: int = 0
    skipped: int = 0
    conflicts: int = 0
    errors: int = 0
    requests: int = 0
    failures: list[dict[str, str]] = field(default_factory=list)
    notes: list[dict[str, str]] = field(default_factory=list)
    halted: str | None = None

    def as_json(self) -> dict[str, Any]:
        out = {"pair": self.pair, "total": self.total, "created": self.created, "updated": self.updated,
               "deleted": self.deleted, "skipped": self.skipped, "conflicts": self.conflicts,
               "errors": self.errors, "requests": self.requests, "failures": self.failures}
        if self.notes:
            out["notes"] = self.notes
        if self.halted:
            out["halted"] = self.halted
        return out

    def fail(self, record_id: str, reason: str) -> None:
        self.errors += 1
        self.failures.append({"id": record_id, "reason": reason})

    @property
    def exit_code(self) -> int:
        return 1 if self.errors or self.halted else 0


def apply_plan(
    plan: Plan,
    bookings: Mapping[str, Booking],
    source: BookingSource,
    target: EventTarget,
    store: Store,
    run_id: int | None,
    *,
    on_action: Callable[[Action], None] | None = None,
) -> Summary:
    """Carry out ``plan``; record per-record failures and go on; stop on auth/unreachable."""
    summary = Summary(plan.pair, total=len(plan.actions))
    for failure in plan.failures:
        summary.fail(failure.id, failure.reason)
    for action in plan.actions:
        try:
            _apply_action(plan.pair, action, bookings, source, target, store, run_id, summary)
        except RemoteError as exc:
            summary.fail(_record_id(action.source_id), str(exc))
        finally:
            if on_action is not None:
                on_action(action)
    return summary


def _record_id(key: str) -> str:
    return key.split(":", 1)[-1]


def _journaled(store: Store, run_id: int | None, pair: str, name: str, key: str, target_id: str | None,
               write: Callable[[], Any]) -> Any:
    entry = store.journal_intent(run_id, pair, name, key, target_id)
    try:
        result = write()
    except (RemoteError, RemoteUnavailableError, AuthError) as exc:
        store.journal_failed(entry, str(exc))
        log.warning("%s %s (%s) failed: %s", name, key, target_id, exc)
        raise
    store.journal_done(entry, pair, key)
    log.info("%s %s -> %s", name, key, target_id)
    return result


def _apply_action(pair: str, action: Action, bookings: Mapping[str, Booking], source: BookingSource,
                  target: EventTarget, store: Store, run_id: int | None, summary: Summary) -> None:
    key, target_id = action.source_id, action.target_id
    booking = bookings.get(key)

    if action.op == "skip":
        summary.skipped += 1
        if not action.refresh_link or not target_id:
            return
        if booking is None:  # gone from the source: leave a tombstone
            store.save_link(pair, key, target_id, tombstone=True)
        elif booking.active:
            store.save_link(pair, key, target_id, content_hash=booking.content_hash(),
                            source_version=_version(booking))
        return

    if action.op == "delete":
        assert target_id is not None
        result = _journaled(store, run_id, pair, "delete", key, target_id, lambda: target.remove(target_id))
        store.save_link(pair, key, target_id, tombstone=booking is None,
                        content_hash=booking.content_hash() if booking else None,
                        source_version=_version(booking) if booking else None, target_version=result.version)
        summary.deleted += 1
        _note(summary, key, result.note)
        return

    if action.op == "conflict":  # one-way pairs never plan conflicts; two-way ones will
        summary.conflicts += 1
        return

    assert booking is not None and target_id is not None
    if action.op == "create":
        result = _journaled(store, run_id, pair, "create", key, target_id,
                            lambda: target.create(booking, target_id))
        summary.created += 1
    elif action.target_changes or action.restore:
        result = _journaled(store, run_id, pair, "update", key, target_id,
                            lambda: target.update(booking, target_id, restore=action.restore))
        summary.updated += 1
    else:
        result = None
        summary.updated += 1
    store.save_link(pair, key, target_id, content_hash=booking.content_hash(), source_version=_version(booking),
                    target_version=result.version if result else None)
    if result is not None:
        _note(summary, key, result.note)
    if action.writeback:
        _journaled(store, run_id, pair, "writeback", key, target_id,
                   lambda: source.record_target_id(key, target_id))


def _version(booking: Booking | None) -> str | None:
    return booking.updated_at.isoformat() if booking and booking.updated_at else None


def _note(summary: Summary, key: str, note: str) -> None:
    if note:
        summary.notes.append({"id": _record_id(key), "note": note})
