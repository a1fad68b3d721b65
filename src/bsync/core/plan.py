"""The pure planner: source items + target items + links -> actions.  No I/O, no providers.

Like vdirsyncer's sync algorithm, it sees only the provider-neutral records of
:mod:`bsync.core.records`:

* :class:`SourceItem` - a booking on the ledger (the source of truth): its common fields
  (:data:`bsync.core.model.COMMON_FIELDS`), a content hash, and the target id it records.
* :class:`TargetItem` - an event: its common fields, its full comparable projection, a hash,
  and the key naming its booking.
* :class:`Link` - what the last run matched, with the *snapshot* of the common fields as
  last synced and both sides' hashes then.

A side's item is "changed" when its hash differs from the link's.  Two-way sync merges
field by field against the snapshot: a field changed on one side flows to the other; the
same field changed differently on both sides is a conflict settled by the policy.  One-way
pairs make one side follow the other.  Reads may be incremental: an item not seen this run
is unchanged since its link, so the snapshot stands in for it.

The sides are roles: the caller names them (``source_name``/``target_name``, the names
``bsync resolve --take`` accepts) and says how the target words its status and key
(:class:`TargetTerms`); nothing here knows which providers play them.

The same inputs always give the same plan, so ``--plan`` shows exactly what apply will do.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Collection, Iterable, Literal, Mapping, Sequence

from bsync.core.model import COMMON_FIELDS
from bsync.core.records import Link, RecordFailure, SourceItem, TargetItem, TargetTerms

Op = Literal["create", "update", "delete", "skip", "conflict"]
Direction = Literal["push", "pull"]  # push: source -> target; pull: target -> source
TargetWrite = Literal["create", "update", "restore", "remove", "stamp"]
SourceWrite = Literal["create", "update", "restore"]

WRITEBACK_FIELD = "source.target_id"
"""The pseudo-field in ``changes`` meaning "store the target id on the source record"."""
SOURCE_PREFIX = "source."
# Why an event of a recurring series made in the calendar is not imported (a weekly block or
# a daily lunch is rarely a booking), and why a series itself isn't when its occurrences are.
RECURRING_NOT_IMPORTED = "part of a recurring series (set [sync] import_recurring = true to import each occurrence)"
SERIES_IMPORTED_BY_OCCURRENCE = "a recurring series; its occurrences are imported one by one"


@dataclass(frozen=True, slots=True)
class Action:
    op: Op
    source_id: str | None
    target_id: str | None
    changes: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    reason: str = ""
    label: str = ""  # for tables, not part of the JSON
    target_write: TargetWrite | None = None
    source_write: SourceWrite | None = None
    merged: Mapping[str, Any] | None = None  # the snapshot to store once the writes succeed
    tombstone: bool = False
    refresh_link: bool = False  # nothing to write remotely, but the link must be (re)recorded
    conflict: dict[str, tuple[Any, Any]] | None = None

    @property
    def source_fields(self) -> dict[str, Any]:
        """Common fields to write to the source (from ``source.<field>`` changes)."""
        return {k[len(SOURCE_PREFIX):]: v[1] for k, v in self.changes.items()
                if k.startswith(SOURCE_PREFIX) and k != WRITEBACK_FIELD}

    @property
    def target_changes(self) -> dict[str, tuple[Any, Any]]:
        return {k: v for k, v in self.changes.items() if not k.startswith(SOURCE_PREFIX)}

    @property
    def writeback(self) -> bool:
        return WRITEBACK_FIELD in self.changes

    @property
    def writes_remote(self) -> bool:
        return bool(self.target_write or self.source_write or self.writeback)

    def as_json(self) -> dict[str, Any]:
        return {"op": self.op, "source_id": self.source_id, "target_id": self.target_id,
                "changes": {k: list(v) for k, v in self.changes.items()}, "reason": self.reason}


@dataclass
class Plan:
    pair: str
    actions: list[Action]
    failures: list[RecordFailure] = field(default_factory=list)
    halt: str | None = None  # why apply must not run without --force
    needs_source: set[str] = field(default_factory=set)  # source keys to load fully, then plan again
    needs_target: set[str] = field(default_factory=set)  # target ids worth fetching before planning again
    outside_horizon: int = 0  # bookings read that ended before the history horizon: left alone

    def count(self, op: Op) -> int:
        return sum(1 for a in self.actions if a.op == op)

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"pair": self.pair, "actions": [a.as_json() for a in self.actions]}
        if self.failures:
            out["failures"] = [f.as_json() for f in self.failures]
        if self.halt:
            out["halt"] = self.halt
        if self.outside_horizon:
            out["outside_horizon"] = self.outside_horizon
        return out

    def source_writes(self) -> int:
        """How many ledger records applying the plan writes: one request each."""
        return sum(1 for a in self.actions if a.source_write or a.writeback)


def diff_fields(current: Mapping[str, Any], wanted: Mapping[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Field-level changes turning ``current`` into ``wanted`` (only wanted's fields count)."""
    return {name: (current.get(name), value) for name, value in wanted.items()
            if current.get(name) != value}


_MISSING = object()


def merge(snapshot: Mapping[str, Any] | None, a: Mapping[str, Any], b: Mapping[str, Any],
          directions: frozenset[str], policy: str, a_updated: str | None, b_updated: str | None,
          ) -> tuple[dict[str, Any], dict[str, tuple[Any, Any]]]:
    """Merge the common fields; return (merged, conflicts as {field: (source value, target value)}).

    One-way pairs make the written side follow the other whole.  Two-way: a field that
    changed on one side only (against the snapshot) takes that side's value; equal values
    never conflict; otherwise ``source-wins`` / ``newest-wins`` decide, and ``manual``
    reports the conflict (the merged value then is the source's, but nothing is written).
    """
    if directions == {"push"}:
        return dict(a), {}
    if directions == {"pull"}:
        return dict(b), {}
    merged: dict[str, Any] = {}
    conflicts: dict[str, tuple[Any, Any]] = {}
    for name in COMMON_FIELDS:
        va, vb = a.get(name), b.get(name)
        old = snapshot.get(name, _MISSING) if snapshot is not None else _MISSING
        if va == vb:
            merged[name] = va
        elif old is not _MISSING and va == old:
            merged[name] = vb
        elif old is not _MISSING and vb == old:
            merged[name] = va
        else:
            conflicts[name] = (va, vb)
            if policy == "target-wins" or (policy == "newest-wins" and (b_updated or "") > (a_updated or "")):
                merged[name] = vb
            else:
                merged[name] = va
    return merged, conflicts


Render = Callable[[str, Mapping[str, Any]], Mapping[str, Any] | None]
"""render(source key, merged common fields) -> the target's projection, or None if the
source record isn't loaded (the planner then asks for it)."""


@dataclass
class _Ctx:
    pair: str
    directions: frozenset[str]
    policy: str
    render: Render
    target_hash: Callable[[Mapping[str, Any]], str]
    target_id_for: Callable[[str], str]
    target_complete: bool
    source_label: str
    target_label: str
    source_name: str = "source"
    target_name: str = "target"
    terms: TargetTerms = TargetTerms()
    import_unmanaged: bool = True
    importing: frozenset[str] = frozenset()
    import_recurring: bool = False
    records_target_ids: bool = True
    needs_source: set[str] = field(default_factory=set)
    needs_target: set[str] = field(default_factory=set)

    @property
    def push(self) -> bool:
        return "push" in self.directions

    @property
    def pull(self) -> bool:
        return "pull" in self.directions


def plan_sync(
    pair: str,
    sources: Iterable[SourceItem],
    links: Mapping[str, Link],
    targets: Mapping[str, TargetItem],
    *,
    directions: frozenset[str] | set[str] = frozenset({"push"}),
    render: Render,
    target_hash: Callable[[Mapping[str, Any]], str],
    target_id_for: Callable[[str], str],
    source_complete: bool = True,
    target_complete: bool = True,
    conflict_policy: str = "source-wins",
    import_unmanaged: bool = True,
    failures: Sequence[RecordFailure] = (),
    drafts: Sequence[RecordFailure] = (),
    max_delete: Callable[[int], float] = lambda mapped: mapped * 0.5,
    source_label: str = "source",
    target_label: str = "target",
    source_name: str = "source",
    target_name: str = "target",
    terms: TargetTerms = TargetTerms(),
    target_id_setting: str = "the target's id",
    target_noun: str = "items",
    importing: Collection[str] = (),
    import_recurring: bool = False,
    past: Collection[str] = (),
    records_target_ids: bool = True,
) -> Plan:
    """Plan one sync run between a source (of truth) and a target.

    ``sources`` is iterated once, so it may be a generator (a full read of 100,000 bookings
    then never holds all their items at once).
    ``source_complete``/``target_complete`` say whether a side was read in full (so an
    absent item is gone) or incrementally (an absent item is unchanged).
    ``drafts`` (ids are source keys) are records read but not ready to sync: each becomes a
    skip with its reason, and like a failure it is never taken for a deletion.
    ``source_name``/``target_name`` are the side names a resolved conflict's ``take`` holds
    (``bsync resolve KEY --take NAME``); ``terms`` how the target words a status change and
    the key it carries, for the changes shown.
    ``target_id_setting`` names the setting that picks the target and ``target_noun`` what it
    holds ("events"), for the safety halt's message.  ``importing``: target ids an earlier run
    began importing (a source record recording one of them was made by that import).
    ``past``: source keys of bookings that ended before the history horizon.  They are left
    alone: no action for them, their links, or events claiming them (a first sync of years of
    bookings must not create or write back thousands of old ones), and they are counted.
    ``import_recurring``: occurrences of a recurring series are imported one by one (else every
    part of a series is skipped, with the setting that changes it as the reason).
    ``records_target_ids``: whether the source stores this target's ids (``recorded_target_id``);
    when it doesn't (a ledger holds one calendar's ids, and this is another), no write-back is planned.
    """
    ctx = _Ctx(pair, frozenset(directions), conflict_policy, render, target_hash, target_id_for,
               target_complete, source_label, target_label, source_name, target_name, terms, import_unmanaged,
               frozenset(importing), import_recurring, records_target_ids)
    actions: list[Action] = []
    refused: list[RecordFailure] = []
    failed = {f.id for f in failures} | {d.id for d in drafts}
    seen_sources: set[str] = set()
    claimed_targets: set[str] = set()
    by_key = {t.key: t for t in targets.values() if t.key}
    # Only membership is asked of it: a set of ids, not the links (which may be built on access).
    link_by_target = {link.target_key for link in links.values() if not link.tombstone}
    past = frozenset(past)
    outside_horizon = 0

    live_sources = 0
    ended: set[str] = set()  # source keys deleted or cancelled (for the safety halt)
    for item in sources:
        seen_sources.add(item.key)
        if item.deleted or item.common.get("cancelled"):
            ended.add(item.key)
        live_sources += not item.deleted
        link = links.get(item.key)
        if item.key in past:
            outside_horizon += 1
            claimed_targets.update(t.id for t in (by_key.get(item.key),) if t is not None)
            if link is not None and not link.tombstone:
                claimed_targets.add(link.target_key)
            continue
        if link is not None and not link.tombstone:
            target = targets.get(link.target_key)
            claimed_targets.add(link.target_key)
            if item.deleted:  # found trashed by a fetch or the trash window: as a full read would
                actions.append(_plan_source_deleted(ctx, item.key, target, link))
            else:
                actions.append(_plan_linked(ctx, item, target, link))
            continue
        foreign = _foreign_recorded_target(ctx, item, targets, link_by_target)
        if foreign is not None:  # never take over an event bsync did not make
            claimed_targets.add(foreign.id)
            refused.append(RecordFailure(_record_id(item.key), _foreign_reason(ctx, foreign)))
            continue
        target = _find_target(ctx, item, targets, by_key, link_by_target)
        if target is not None:
            claimed_targets.add(target.id)
        actions.append(_plan_unlinked_source(ctx, item, target))

    for key in sorted(links):  # keys first: the links of sources seen above are not built again
        if key in seen_sources:
            continue
        link = links[key]
        if link.tombstone:
            continue
        claimed_targets.add(link.target_key)
        if _record_id(key) in failed or key in failed or key in past:
            continue  # a record we could not read is not a record that was deleted
        target = targets.get(link.target_key)
        if source_complete:
            actions.append(_plan_source_deleted(ctx, key, target, link))
        elif target is not None and target.hash != link.target_hash:
            actions.append(_plan_linked(ctx, None, target, link))
        elif target is None and target_complete:
            actions.append(_plan_linked(ctx, None, None, link))

    for target in targets.values():
        if target.id in claimed_targets or target.key in past:
            continue
        action = _plan_unlinked_target(ctx, target, links, source_complete)
        if action is not None:
            actions.append(action)

    for draft in drafts:
        link = links.get(draft.id)
        actions.append(Action("skip", draft.id, link.target_key if link and not link.tombstone else None,
                              reason=draft.reason, label=draft.title))

    actions = [a for a in actions if a is not None]
    plan = Plan(pair, actions, [*failures, *refused], needs_source=ctx.needs_source,
                needs_target=ctx.needs_target, outside_horizon=outside_horizon)
    plan.halt = _safety_halt(plan, live_sources, ended, links, targets, [*failures, *drafts], max_delete, past,
                             source_complete=source_complete, target_complete=target_complete,
                             source_label=source_label, target_label=target_label,
                             target_id_setting=target_id_setting, target_noun=target_noun)
    return plan


def _record_id(key: str) -> str:
    return key.split(":", 1)[-1]


def _foreign_recorded_target(ctx: _Ctx, item: SourceItem, targets: Mapping[str, TargetItem],
                             link_by_target: Collection[str]) -> TargetItem | None:
    """The live event an unlinked booking records that bsync did not make (no key, linked to no
    booking, not the booking's own id, not an interrupted import of it), or None.

    A page pointing at someone's private appointment must not rename, move or stamp it.  A
    deleted event is not judged: a calendar may keep only its id, so its key may be missing.
    An event the read did not include is asked for (``needs_target``) when the read was partial.
    """
    event_id = item.recorded_target_id
    if (item.deleted or not event_id or event_id in link_by_target or event_id == ctx.target_id_for(item.key)
            or event_id in ctx.importing):
        return None
    target = targets.get(event_id)
    if target is None:
        if not ctx.target_complete:
            ctx.needs_target.add(event_id)
        return None
    return target if target.key is None and not target.cancelled else None


def _foreign_reason(ctx: _Ctx, target: TargetItem) -> str:
    return (f"its recorded event id {target.id} names an event in {ctx.target_label} that bsync did not make "
            f"(no {ctx.terms.key_field}); left it untouched. Clear the booking's event id to give it an event of its own")


def _find_target(ctx: _Ctx, item: SourceItem, targets: Mapping[str, TargetItem],
                 by_key: Mapping[str, TargetItem], link_by_target: Collection[str]) -> TargetItem | None:
    """An existing event for an unlinked booking: the one it records, one claiming it, or its id."""
    for candidate in (targets.get(item.recorded_target_id or ""), by_key.get(item.key),
                      targets.get(ctx.target_id_for(item.key))):
        if candidate is None or candidate.id in link_by_target:
            continue
        if candidate.key in (None, item.key):
            return candidate
    return None


def _label(item: SourceItem | None, target: TargetItem | None) -> str:
    return (item.label if item else "") or (target.label if target else "")


def _plan_linked(ctx: _Ctx, item: SourceItem | None, target: TargetItem | None, link: Link,
                 *, adopt: bool = False) -> Action:
    """A matched booking/event pair: merge and decide what to write on each side."""
    key = item.key if item else link.source_key
    target_id = target.id if target else link.target_key
    snapshot = link.snapshot
    label = _label(item, target)

    if target is None and ctx.target_complete:  # the event vanished from the calendar
        if not ctx.push:
            return Action("skip", key, target_id, reason=f"its event vanished from {ctx.target_label}", label=label)
        source_common = item.common if item else snapshot
        if source_common is None or source_common.get("cancelled"):
            return Action("skip", key, target_id, reason="cancelled; its event is gone too", label=label,
                          merged=source_common, refresh_link=True)
        wanted = ctx.render(key, source_common)
        if wanted is None:
            ctx.needs_source.add(key)
            return Action("skip", key, target_id, reason="loading the booking to recreate its event")
        new_id = ctx.target_id_for(key)
        changes = {name: (None, value) for name, value in wanted.items()}
        return Action("create", key, new_id, changes, reason="its event vanished; recreating", label=label,
                      target_write="create", merged=dict(source_common))

    a_common = item.common if item else snapshot
    b_common = target.common if target else snapshot
    if a_common is None or b_common is None:  # no snapshot to stand in for an unseen side
        ctx.needs_source.add(key)
        return Action("skip", key, target_id, reason="loading the booking to compare it", label=label)
    if target is not None and target.cancelled:
        b_common = {**a_common, "cancelled": True}  # a deleted event says only that it is deleted
    a_changed = adopt or (item is not None and item.hash != link.source_hash)
    b_changed = adopt or (target is not None and target.hash != link.target_hash)
    edit_beats_delete = _edit_beats_delete(ctx, target, snapshot, a_common, a_changed, adopt)
    if a_common.get("cancelled") and b_common.get("cancelled"):  # nothing of a cancelled pair matters
        refresh = adopt or a_changed or b_changed
        return Action("skip", key, target_id, reason="cancelled on both sides", label=label,
                      merged=dict(a_common), refresh_link=refresh)

    policy = {ctx.source_name: "source-wins", ctx.target_name: "target-wins"}.get(link.resolution or "", ctx.policy)
    merged, conflicts = merge(None if adopt else snapshot, a_common, b_common, ctx.directions, policy,
                              item.updated if item else None, target.updated if target else None)
    if edit_beats_delete:
        merged, conflicts = dict(a_common), {}
    if conflicts and policy == "manual" and ctx.directions == {"push", "pull"}:
        return Action("conflict", key, target_id, {name: (va, vb) for name, (va, vb) in conflicts.items()},
                      reason=f"changed on both sides; settle with `bsync resolve {key} --take {ctx.source_name}|{ctx.target_name}`",
                      label=label, conflict=conflicts)

    changes: dict[str, tuple[Any, Any]] = {}
    source_write: SourceWrite | None = None
    if ctx.pull:
        for name in COMMON_FIELDS:
            if merged.get(name) != a_common.get(name):
                changes[SOURCE_PREFIX + name] = (a_common.get(name), merged.get(name))
        if changes:
            source_write = "update"

    target_write: TargetWrite | None = None
    if ctx.push or merged != b_common:
        target_write, target_changes = _target_write(ctx, key, item, target, link, merged, b_common,
                                                     a_changed, b_changed)
        if target_write == "load":
            ctx.needs_source.add(key)
            return Action("skip", key, target_id, reason="loading the booking to update its event", label=label)
        changes.update(target_changes)
    if (ctx.push and ctx.records_target_ids and item is not None and not merged.get("cancelled")
            and item.recorded_target_id != target_id):
        changes[WRITEBACK_FIELD] = (item.recorded_target_id, target_id)
    if target_write is None and target is not None and target.key != key and not merged.get("cancelled"):
        target_write = "stamp"  # e.g. an import interrupted before the event was marked
        changes[ctx.terms.key_field] = (target.key, key)

    reason = _reason(ctx, conflicts, a_changed, b_changed, target_write, source_write, adopt)
    if edit_beats_delete:
        reason = f"changed in {ctx.source_label} after its event was deleted in {ctx.target_label}; recreating it"
    refresh = (snapshot != merged or link.source_hash != (item.hash if item else link.source_hash)
               or link.target_hash != (target.hash if target else link.target_hash) or adopt)
    if target_write == "remove":
        op: Op = "delete"
    elif target_write or source_write or WRITEBACK_FIELD in changes:
        op = "update"
    else:
        op = "skip"
        reason = "up to date" if not adopt else "adopting the existing event"
    return Action(op, key, target_id, changes, reason, label=label, target_write=target_write,
                  source_write=source_write, merged=merged if op != "skip" or refresh else None, refresh_link=refresh)


def _edit_beats_delete(ctx: _Ctx, target: TargetItem | None, snapshot: Mapping[str, Any] | None,
                       a_common: Mapping[str, Any], a_changed: bool, adopt: bool) -> bool:
    """Two-way: a live booking edited in the source since the last sync whose event was deleted
    in the target comes back with the edit, as a trashed page whose event was edited does.

    Cancelling it would lose the edit and tell the customer their (just moved) booking is off.
    """
    return (ctx.push and ctx.pull and not adopt and a_changed and target is not None and target.cancelled
            and snapshot is not None and not snapshot.get("cancelled") and not a_common.get("cancelled"))


def _target_write(ctx: _Ctx, key: str, item: SourceItem | None, target: TargetItem | None, link: Link,
                  merged: Mapping[str, Any], b_common: Mapping[str, Any], a_changed: bool, b_changed: bool,
                  ) -> tuple[Any, dict[str, tuple[Any, Any]]]:
    """What to write to the target so it shows ``merged`` ("load": the booking is needed first)."""
    was_cancelled = bool(b_common.get("cancelled"))
    if merged.get("cancelled"):
        return (None, {}) if was_cancelled else ("remove", _status_change(ctx, cancel=True))
    settled = merged == b_common and not was_cancelled
    if settled and not a_changed:
        if not (ctx.push and b_changed):
            return None, {}
        if target is not None and link.target_fields is not None and not _rendered_fields_changed(target, link):
            return None, {}  # the calendar changed only fields that flow back to the source
    wanted = ctx.render(key, merged)
    if wanted is None:
        return "load", {}
    if target is not None:
        changes = diff_fields(target.fields, wanted)
    elif link.target_fields is not None:  # unchanged since the last sync: compare with that
        changes = diff_fields(link.target_fields, wanted)
    elif ctx.target_hash(wanted) != link.target_hash:
        changes = {name: (None, value) for name, value in wanted.items()}
    else:
        changes = {}
    if was_cancelled:
        changes.update(_status_change(ctx, cancel=False))
        return "restore", changes
    return ("update" if changes else None), changes


def _status_change(ctx: _Ctx, *, cancel: bool) -> dict[str, tuple[Any, Any]]:
    """The change shown for cancelling (or restoring) a target item, in the target's words."""
    terms = ctx.terms
    pair = (terms.confirmed, terms.cancelled)
    return {terms.status: pair if cancel else pair[::-1]}


def _rendered_fields_changed(target: TargetItem, link: Link) -> bool:
    """Whether the target changed a field that only the source can render (e.g. description)."""
    before = link.target_fields or {}
    return any(value != before.get(name) for name, value in target.fields.items() if name not in COMMON_FIELDS)


def _reason(ctx: _Ctx, conflicts: Mapping[str, Any], a_changed: bool, b_changed: bool,
            target_write: Any, source_write: Any, adopt: bool) -> str:
    if adopt:
        return "adopting the existing event"
    if target_write == "restore":
        return "event was cancelled; restoring"
    if conflicts:
        return f"changed on both sides ({', '.join(conflicts)}); {ctx.policy}"
    if target_write == "remove":
        return f"cancelled in {ctx.source_label if a_changed or ctx.directions == {'push'} else ctx.target_label}"
    if source_write and not target_write:
        return f"changed in {ctx.target_label}"
    if target_write:
        return f"changed in {ctx.source_label}"
    return "recording the event id on the booking"


def _plan_unlinked_source(ctx: _Ctx, item: SourceItem, target: TargetItem | None) -> Action:
    if item.deleted:
        return Action("skip", item.key, None, reason=f"trashed in {ctx.source_label}", label=item.label)
    if target is not None:  # first sight of a pair that already exists on both sides: adopt
        pseudo = Link("", item.key, target.id, None, None, None, "", snapshot=None)
        return _plan_linked(ctx, item, target, pseudo, adopt=True)
    if item.common.get("cancelled"):
        return Action("skip", item.key, None, reason="cancelled; no event to remove", label=item.label)
    if not ctx.push:
        return Action("skip", item.key, None, reason=f"not on {ctx.target_label}; only pushing creates events",
                      label=item.label)
    wanted = ctx.render(item.key, item.common)
    target_id = ctx.target_id_for(item.key)
    changes = {name: (None, value) for name, value in (wanted or {}).items()}
    if ctx.records_target_ids:
        changes[WRITEBACK_FIELD] = (item.recorded_target_id, target_id)
    return Action("create", item.key, target_id, changes, reason="new booking", label=item.label,
                  target_write="create", merged=dict(item.common))


def _plan_source_deleted(ctx: _Ctx, key: str, target: TargetItem | None, link: Link) -> Action:
    """The booking is gone from the source (trashed or removed) while its link lives."""
    b_common = target.common if target is not None else link.snapshot
    b_changed = target is not None and target.hash != link.target_hash
    if ctx.pull and ctx.push and b_changed and not target.cancelled:
        # an update on one side beats a deletion on the other: the booking comes back
        changes = {SOURCE_PREFIX + name: (None, value) for name, value in target.common.items()}
        stamp = "stamp" if target.key != key else None
        return Action("update", key, link.target_key, changes, label=target.label, source_write="restore",
                      merged=dict(target.common), target_write=stamp,
                      reason=f"trashed in {ctx.source_label} but changed in {ctx.target_label}; restoring it")
    if not ctx.push:
        return Action("skip", key, link.target_key, reason=f"gone from {ctx.source_label}", label=_label(None, target))
    if target is None and ctx.target_complete or (b_common or {}).get("cancelled"):
        return Action("skip", key, link.target_key, refresh_link=True, tombstone=True,
                      reason=f"gone from {ctx.source_label}; its event is already gone")
    return Action("delete", key, link.target_key, changes=_status_change(ctx, cancel=True),
                  reason=f"no longer in {ctx.source_label} (removed or trashed)", target_write="remove",
                  tombstone=True, label=_label(None, target))


def _plan_unlinked_target(ctx: _Ctx, target: TargetItem, links: Mapping[str, Link],
                          source_complete: bool) -> Action | None:
    if target.key:
        link = links.get(target.key)
        if link is not None and link.tombstone:
            return None  # the event of a booking deleted earlier: settled
        if not source_complete:
            ctx.needs_source.add(target.key)
            return None
        return Action("skip", target.key, target.id, label=target.label,
                      reason=f"event claims booking {target.key}, which is not in {ctx.source_label}")
    if target.cancelled or not ctx.pull or not ctx.import_unmanaged:
        return None
    if target.series and ctx.import_recurring:
        return Action("skip", None, target.id, reason=SERIES_IMPORTED_BY_OCCURRENCE, label=target.label)
    if target.recurring and not ctx.import_recurring:
        return Action("skip", None, target.id, reason=RECURRING_NOT_IMPORTED, label=target.label)
    changes = {SOURCE_PREFIX + name: (None, value) for name, value in target.common.items()}
    return Action("create", None, target.id, changes, reason=f"new event in {ctx.target_label}; importing",
                  label=target.label, source_write="create", target_write="stamp", merged=dict(target.common))


def _expects_live_event(link: Link) -> bool:
    """A link whose booking was live when last synced: losing its event would remove a booking."""
    return not link.tombstone and not (link.snapshot or {}).get("cancelled")


def _safety_halt(plan: Plan, live_sources: int, ended: Collection[str], links: Mapping[str, Link],
                 targets: Mapping[str, TargetItem], failures: Sequence[RecordFailure],
                 max_delete: Callable[[int], float], past: Collection[str], *, source_complete: bool, target_complete: bool,
                 source_label: str, target_label: str, target_id_setting: str, target_noun: str) -> str | None:
    """Why the plan must not run without --force, or None.

    Symmetric, like vdirsyncer's empty-storage guard: either side read empty (or with every
    linked item gone) while bookings are linked, or a plan that removes more than
    ``max_delete`` allows on either side (events cancelled in the target, bookings cancelled in
    the source), means a wrong id or a wiped store far more often than a real mass cancellation.
    One removal never halts, so a business with a single booking can still cancel it.
    ``live_sources`` counts the source items not deleted; ``ended`` holds the keys of those
    deleted or cancelled.
    """
    mapped = 0
    live: list[tuple[str, str]] = []  # (booking, event) ids, not the links: those may be built on access
    for link in links.values():
        mapped += not link.tombstone
        if _expects_live_event(link):
            live.append((link.source_key, link.target_key))
    if len(live) > 1 and source_complete and not live_sources and not failures:
        return (f"{source_label} returned no bookings while {len(live)} are linked to events; refusing to "
                f"remove their events (check the database id and the integration's access)")
    live = [ids for ids in live if ids[0] not in ended and ids[0] not in past]  # both sides agree (or left alone)
    if len(live) > 1 and all(_event_gone(targets.get(target_key), target_complete) for _, target_key in live):
        return (f"{target_label} returned none of the {target_noun} linked to {len(live)} bookings (all deleted "
                f"or missing): was it wiped, or is {target_id_setting} wrong?")
    allowed = max_delete(mapped)
    removed_events = plan.count("delete")
    if removed_events > 1 and removed_events > allowed:
        return (f"the plan would remove {removed_events} of {mapped} mapped events in {target_label}, more than "
                f"max_delete allows ({allowed:g})")
    cancelled_bookings = sum(1 for a in plan.actions if _cancels_source(a))
    if cancelled_bookings > 1 and cancelled_bookings > allowed:
        return (f"the plan would cancel {cancelled_bookings} of {mapped} mapped bookings in {source_label}, more "
                f"than max_delete allows ({allowed:g})")
    return None


def _event_gone(target: TargetItem | None, target_complete: bool) -> bool:
    """Whether this read shows the event deleted: reported cancelled, or absent from a full read."""
    return target.cancelled if target is not None else target_complete


def _cancels_source(action: Action) -> bool:
    """Whether the action cancels a booking on the source (the source-side removal of a booking)."""
    old, new = action.changes.get(SOURCE_PREFIX + "cancelled", (None, None))
    return bool(new) and not old
