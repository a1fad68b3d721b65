"""Execute a plan, exactly: one remote write per planned change, each journaled first.

Order inside one action is chosen so a kill at any point converges on the next run:
the target write comes first (idempotent: the event id is deterministic), then the link
in the state DB, then the write-back onto the source record.  A run killed between any
two steps finds, next time, an event with its key already in place and plans only the
missing steps.  Importing an event creates a ledger record (a Notion page today), which has
no client-chosen id: its journal intent is resolved by looking the event id up in the
ledger before creating again.

Both sides are reached only through their protocols (:class:`BookingLedger`,
:class:`CalendarBackend`); journal names and keys come from the sides' names.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from bsync.calendars.base import CalendarBackend
from bsync.core.model import Booking, apply_common
from bsync.core.plan import Action, Plan
from bsync.core.records import TargetItem, TargetOp, WriteResult
from bsync.core.runs import Summary
from bsync.core.store import Store
from bsync.errors import AuthError, RemoteError, RemoteUnavailableError
from bsync.ledger.base import BookingLedger

log = logging.getLogger(__name__)


@dataclass
class ApplyContext:
    """Everything apply needs besides the plan: both sides, what was read, the store.

    Platform pairs pass narrower sides (the local bookings table as the source, the ledger's
    pages as the target): a push-only pair without imports calls only ``record_target_id``
    on the source and ``write`` on the target.
    """

    store: Store
    link_pair: str
    run_id: int | None
    source: BookingLedger
    target: CalendarBackend
    bookings: dict[str, Booking]
    targets: Mapping[str, TargetItem]
    default_timezone: str
    dead_after: int = 3
    prewritten: dict[int, Any] = field(default_factory=dict)  # id(action) -> batched outcome


def apply_plan(plan: Plan, ctx: ApplyContext, *, on_action: Callable[[Action], None] | None = None) -> Summary:
    """Carry out ``plan``; record per-record failures and go on; stop on auth/unreachable."""
    summary = Summary(plan.pair, total=len(plan.actions))
    for failure in plan.failures:
        summary.fail(failure.id, failure.reason, failure.title)
    _write_targets_in_batches(plan, ctx)
    for action in plan.actions:
        try:
            _apply_action(action, ctx, summary)
        except RemoteError as exc:
            summary.fail(_record_id(action.source_id or action.target_id or "?"), str(exc))
        finally:
            if on_action is not None:
                on_action(action)
    return summary


BATCHABLE = {"create", "update", "restore", "remove", "stamp"}


def _write_targets_in_batches(plan: Plan, ctx: ApplyContext) -> None:
    """Send the plan's calendar writes as batch requests, journaled like single writes.

    Imports and restores of trashed records write the ledger first, so they stay sequential;
    so do all writes to a target without ``write_many`` (the ledger's pages, as the target of
    platform pairs: a page create is not idempotent, so each is journaled on its own).
    """
    actions = [a for a in plan.actions if a.target_write in BATCHABLE and a.op != "conflict"
               and a.source_write not in ("create", "restore") and a.source_id and a.target_id]
    if len(actions) < 2 or not hasattr(ctx.target, "write_many"):
        return
    ops, entries = [], []
    for action in actions:
        ops.append(_target_op(ctx, action))
        entries.append(ctx.store.journal_intent(ctx.run_id, ctx.link_pair, action.target_write, action.source_id,
                                                action.target_id))
    outcomes = ctx.target.write_many(ops)
    for action, entry, outcome in zip(actions, entries, outcomes):
        if isinstance(outcome, Exception):
            ctx.store.journal_failed(entry, str(outcome), dead_after=ctx.dead_after)
        else:
            ctx.store.journal_done(entry, ctx.link_pair, action.source_id)
        ctx.prewritten[id(action)] = outcome


def _target_step(ctx: ApplyContext, action: Action, name: str, key: str, target_id: str,
                 write: Callable[[], Any]) -> Any:
    """The action's calendar write: already done in a batch, or done now."""
    if id(action) in ctx.prewritten:
        outcome = ctx.prewritten[id(action)]
        if isinstance(outcome, Exception):
            raise outcome
        return outcome
    return _journaled(ctx, name, key, target_id, write)


def _record_id(key: str) -> str:
    return key.split(":", 1)[-1]


def import_key(calendar: str, target_id: str) -> str:
    """The journal key of importing item ``target_id`` of ``calendar``: it has no booking key
    yet, so the calendar's name stands in for the ledger's (``gcal:<event id>``)."""
    return f"{calendar}:{target_id}"


def imported_id(calendar: str, key: str) -> str | None:
    """The item id a journal key of :func:`import_key` names, or None for a booking key."""
    prefix = f"{calendar}:"
    return key[len(prefix):] if key.startswith(prefix) else None


def _journaled(ctx: ApplyContext, name: str, key: str, target_id: str | None, write: Callable[[], Any]) -> Any:
    store = ctx.store
    entry = store.journal_intent(ctx.run_id, ctx.link_pair, name, key, target_id)
    try:
        result = write()
    except (RemoteError, RemoteUnavailableError, AuthError) as exc:
        state = store.journal_failed(entry, str(exc), dead_after=ctx.dead_after if isinstance(exc, RemoteError) else 0)
        log.warning("%s %s (%s) failed (%s): %s", name, key, target_id, state, exc)
        raise
    store.journal_done(entry, ctx.link_pair, key)
    log.info("%s %s -> %s", name, key, target_id)
    return result


def _save_link(ctx: ApplyContext, action: Action, key: str, target_id: str, *,
               source_hash: str | None = None, target_result: WriteResult | None = None,
               tombstone: bool = False, conflict: dict[str, Any] | None = None) -> None:
    """Record the pair with both sides' current hashes and the merged snapshot."""
    old = ctx.store.links_get(ctx.link_pair, key)
    booking = ctx.bookings.get(key)
    if source_hash is None:
        source_hash = booking.content_hash() if booking else (old.source_hash if old else None)
    target = ctx.targets.get(target_id)
    if target_result is not None and target_result.hash:
        target_hash, version = target_result.hash, target_result.version
        target_fields = dict(target_result.item.fields) if target_result.item is not None else None
    else:
        target_hash = target.hash if target else (old.target_hash if old else None)
        version = old.target_version if old else None
        target_fields = dict(target.fields) if target else (old.target_fields if old else None)
    snapshot = action.merged if action.merged is not None else (old.snapshot if old else None)
    ctx.store.save_link(ctx.link_pair, key, target_id, source_hash=source_hash, target_hash=target_hash,
                        snapshot=dict(snapshot) if snapshot is not None else None, tombstone=tombstone,
                        source_version=booking.updated_at.isoformat() if booking and booking.updated_at else None,
                        target_version=version, conflict=conflict, target_fields=target_fields)


def _merged_booking(ctx: ApplyContext, action: Action, key: str) -> Booking:
    booking = ctx.bookings[key]
    return apply_common(booking, action.merged) if action.merged is not None else booking


def _target_op(ctx: ApplyContext, action: Action) -> TargetOp:
    """The target write an action plans (batched or alone): the merged booking to show, or
    for a stamp the booking key to put on the item."""
    assert action.target_write is not None and action.target_id is not None and action.source_id is not None
    booking = (_merged_booking(ctx, action, action.source_id)
               if action.target_write in ("create", "update", "restore") else None)
    return TargetOp(action.target_write, action.target_id, booking, key=action.source_id)


def _apply_action(action: Action, ctx: ApplyContext, summary: Summary) -> None:
    key, target_id = action.source_id, action.target_id

    if action.op == "skip":
        summary.skipped += 1
        if action.refresh_link and key and target_id:
            _save_link(ctx, action, key, target_id, tombstone=action.tombstone)
        return

    if action.op == "conflict":
        summary.conflicts += 1
        assert key and target_id
        conflict = {"fields": {name: list(values) for name, values in (action.conflict or {}).items()}}
        if ctx.store.links_get(ctx.link_pair, key) is None:
            ctx.store.save_link(ctx.link_pair, key, target_id, conflict=conflict)
        else:
            ctx.store.set_conflict(ctx.link_pair, key, conflict)
        return

    if action.source_write == "create":  # an event made in the calendar becomes a booking
        _import(action, ctx, summary)
        return

    assert key is not None and target_id is not None
    result: WriteResult | None = None
    if action.target_write is not None:
        write = action.target_write
        result = _target_step(ctx, action, write, key, target_id, lambda: ctx.target.write(_target_op(ctx, action)))
        if write == "create":
            target_id = result.target_id  # a target that picks its own ids (Notion pages) says which
            summary.created += 1
        elif write == "remove":
            summary.deleted += 1

    source_hash = None
    if action.source_write in ("update", "restore"):
        booking = ctx.bookings.get(key)
        fields = dict(action.merged) if action.source_write == "restore" else action.source_fields
        zone = booking.timezone if booking else ctx.default_timezone
        restore = action.source_write == "restore"
        updated = _journaled(ctx, f"{ctx.source.name}-{action.source_write}", key, target_id,
                             lambda: ctx.source.update_common(key, fields, zone, restore=restore))
        if updated is not None:
            ctx.bookings[key] = updated
            source_hash = updated.content_hash()

    if action.op == "update" and action.target_write != "remove":
        summary.updated += 1
    _save_link(ctx, action, key, target_id, source_hash=source_hash, target_result=result,
               tombstone=action.tombstone)
    if result is not None and result.note:
        summary.notes.append({"id": _record_id(key), "note": result.note})
    elif action.target_write == "create" and "vanished" in action.reason:
        summary.notes.append({"id": _record_id(key), "note": action.reason})
    if action.writeback:
        _journaled(ctx, "writeback", key, target_id, lambda: ctx.source.record_target_id(key, target_id))


def _import(action: Action, ctx: ApplyContext, summary: Summary) -> None:
    """Create the ledger booking of an event made in the calendar, link them, mark the event."""
    target_id = action.target_id
    assert target_id is not None and action.merged is not None
    target = ctx.targets[target_id]
    intent_key = import_key(ctx.target.name, target_id)
    booking: Booking | None = None
    if ctx.store.unfinished(ctx.link_pair, intent_key, "import"):
        booking = ctx.source.find_by_target_id(target_id)  # an earlier run may have created it
        if booking is not None:
            summary.notes.append({"id": target_id, "note": f"found the page an interrupted run created ({booking.key})"})
    if booking is None:
        hints = ctx.target.import_hints(target)
        zone = hints.timezone or ctx.default_timezone
        booking = _journaled(ctx, "import", intent_key, target_id, lambda: ctx.source.create_booking(
            dict(action.merged), zone, target_id=target_id, origin=ctx.target.name, notes=hints.notes,
            email=hints.email))
        if booking is None:
            raise RemoteError(f"{ctx.source.label} created a record for event {target_id} that bsync cannot read back")
    ctx.bookings[booking.key] = booking
    summary.created += 1
    _save_link(ctx, action, booking.key, target_id, source_hash=booking.content_hash())
    stamp = TargetOp("stamp", target_id, key=booking.key)
    result = _journaled(ctx, "stamp", booking.key, target_id, lambda: ctx.target.write(stamp))
    _save_link(ctx, action, booking.key, target_id, source_hash=booking.content_hash(), target_result=result)
