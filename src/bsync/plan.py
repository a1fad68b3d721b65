"""The pure planner: source items + links + target items -> actions.  No I/O, no providers.

Like vdirsyncer's sync algorithm, it only sees provider-neutral records:

* :class:`SourceItem` - what the source wants the target to look like (``wanted``, already
  rendered by the target adapter into comparable fields), whether it should exist at all
  (``active``), and the target id the source has recorded for it (``recorded_target_id``).
* :class:`TargetItem` - the target's current fields, its ``bsync_key`` and whether it is
  deleted/cancelled.
* :class:`~bsync.store.Link` - what the last run matched.

The same inputs always give the same plan, so ``--plan`` shows exactly what apply will do.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Callable, Literal, Mapping, Sequence

from bsync.store import Link

Op = Literal["create", "update", "delete", "skip", "conflict"]

WRITEBACK_FIELD = "source.target_id"
"""The pseudo-field in ``changes`` meaning "store the target id on the source record"."""


@dataclass(frozen=True)
class SourceItem:
    key: str
    wanted: Mapping[str, Any]
    active: bool
    recorded_target_id: str | None = None
    version: str | None = None
    content_hash: str | None = None
    label: str = ""  # for people: e.g. "Rex – groom, Tue 24 Nov 10:00"


@dataclass(frozen=True)
class TargetItem:
    id: str
    key: str | None
    fields: Mapping[str, Any]
    deleted: bool = False
    version: str | None = None


@dataclass(frozen=True)
class Action:
    op: Op
    source_id: str
    target_id: str | None
    changes: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    reason: str = ""
    restore: bool = False  # the target exists but is cancelled: bring it back
    adopt: bool = False  # the target exists but no link records it yet
    label: str = ""  # human description of the booking, for tables (not part of the JSON)
    refresh_link: bool = False  # skip, but the link's stored hash is stale or missing

    @property
    def target_changes(self) -> dict[str, tuple[Any, Any]]:
        return {k: v for k, v in self.changes.items() if k != WRITEBACK_FIELD}

    @property
    def writeback(self) -> bool:
        return WRITEBACK_FIELD in self.changes

    @property
    def writes_remote(self) -> bool:
        return self.op in ("create", "delete") or (self.op == "update" and bool(self.changes))

    def as_json(self) -> dict[str, Any]:
        return {"op": self.op, "source_id": self.source_id, "target_id": self.target_id,
                "changes": {k: list(v) for k, v in self.changes.items()}, "reason": self.reason}


@dataclass(frozen=True)
class Failure:
    id: str
    reason: str


@dataclass
class Plan:
    pair: str
    actions: list[Action]
    failures: list[Failure] = field(default_factory=list)
    halt: str | None = None  # why apply must not run without --force

    def count(self, op: Op) -> int:
        return sum(1 for a in self.actions if a.op == op)

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"pair": self.pair, "actions": [a.as_json() for a in self.actions]}
        if self.failures:
            out["failures"] = [{"id": f.id, "reason": f.reason} for f in self.failures]
        if self.halt:
            out["halt"] = self.halt
        return out


def diff_fields(current: Mapping[str, Any], wanted: Mapping[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Field-level changes turning ``current`` into ``wanted`` (only wanted's fields count)."""
    return {name: (current.get(name), value) for name, value in wanted.items()
            if current.get(name) != value}


def plan_push(
    pair: str,
    sources: Sequence[SourceItem],
    links: Mapping[str, Link],
    targets: Mapping[str, TargetItem],
    *,
    target_id_for: Callable[[str], str],
    failures: Sequence[Failure] = (),
    max_delete: Callable[[int], float] = lambda mapped: mapped * 0.5,
    source_label: str = "source",
) -> Plan:
    """Plan a one-way push making the target follow the source.

    Records that failed to parse are listed in ``failures``; their links are left alone
    (a record we could not read is not a record that was deleted).
    """
    actions: list[Action] = []
    seen: set[str] = set()
    failed = {f.id for f in failures}

    for item in sources:
        seen.add(item.key)
        link = links.get(item.key)
        target_id = _choose_target_id(item, link, targets, target_id_for)
        target = targets.get(target_id)
        action = _plan_item(item, link, target, target_id, source_label)
        actions.append(replace(action, label=item.label) if item.label else action)

    for key, link in sorted(links.items()):
        if key in seen or link.tombstone or key in failed or key.split(":", 1)[-1] in failed:
            continue
        target = targets.get(link.target_key)
        if target is None or target.deleted:
            actions.append(Action("skip", key, link.target_key, refresh_link=True,
                                  reason=f"gone from {source_label}; its event is already gone"))
        else:
            actions.append(Action("delete", key, link.target_key,
                                  changes={"status": ("confirmed", "cancelled")},
                                  reason=f"no longer in {source_label} (removed or trashed)"))

    plan = Plan(pair, actions, list(failures))
    plan.halt = _safety_halt(plan, sources, links, failures, max_delete, source_label)
    return plan


def _choose_target_id(item: SourceItem, link: Link | None, targets: Mapping[str, TargetItem],
                      target_id_for: Callable[[str], str]) -> str:
    if link is not None:
        return link.target_key
    recorded = item.recorded_target_id
    if recorded and recorded in targets and targets[recorded].key == item.key:
        return recorded
    return target_id_for(item.key)


def _plan_item(item: SourceItem, link: Link | None, target: TargetItem | None, target_id: str,
               source_label: str) -> Action:
    writeback: dict[str, tuple[Any, Any]] = {}
    if item.active and item.recorded_target_id != target_id:
        writeback[WRITEBACK_FIELD] = (item.recorded_target_id, target_id)

    if not item.active:
        if target is None or target.deleted:
            return Action("skip", item.key, target_id if target else None,
                          reason="cancelled; no event to remove")
        return Action("delete", item.key, target_id, changes={"status": ("confirmed", "cancelled")},
                      reason=f"cancelled in {source_label}")

    if target is None:
        changes = {name: (None, value) for name, value in item.wanted.items()}
        reason = "new booking" if link is None else "its event vanished; recreating"
        return Action("create", item.key, target_id, {**changes, **writeback}, reason)

    changes = diff_fields(target.fields, item.wanted)
    if target.deleted:
        changes["status"] = ("cancelled", "confirmed")
        return Action("update", item.key, target_id, {**changes, **writeback},
                      reason="event was cancelled; restoring", restore=True, adopt=link is None)
    if link is None:
        return Action("update" if changes or writeback else "skip", item.key, target_id,
                      {**changes, **writeback}, reason="adopting the existing event", adopt=True,
                      refresh_link=True)
    if changes or writeback:
        reason = f"changed in {source_label}" if changes else "recording the event id on the booking"
        return Action("update", item.key, target_id, {**changes, **writeback}, reason)
    return Action("skip", item.key, target_id, reason="up to date",
                  refresh_link=link.content_hash != item.content_hash or link.target_key != target_id)


def _safety_halt(plan: Plan, sources: Sequence[SourceItem], links: Mapping[str, Link],
                 failures: Sequence[Failure], max_delete: Callable[[int], float],
                 source_label: str) -> str | None:
    mapped = sum(1 for link in links.values() if not link.tombstone)
    if mapped and not sources and not failures:
        return (f"{source_label} returned no bookings while {mapped} are mapped; refusing to remove "
                f"their events (check the database id and the integration's access)")
    deletes = plan.count("delete")
    allowed = max_delete(mapped)
    if deletes > 1 and deletes > allowed:
        return (f"the plan would remove {deletes} of {mapped} mapped events, more than "
                f"max_delete allows ({allowed:g})")
    return None
