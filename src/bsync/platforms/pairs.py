"""Platform bookings into the ledger: the optional pull, then one pair for every platform.

``bsync sync pull NAME`` asks the platform ``NAME`` (a pullable entry of
:data:`bsync.registry.PLATFORMS`) for bookings changed since its cursor, which it stores in
the local ``bookings`` table; webhook deliveries land in the same table (through the
inbox), so pull and push converge on one booking.  Then the platform pair gives every
platform booking, of every registered platform, its ledger page (Notion), which the
ledger <-> calendar pairs then put on the calendar.  Nothing here knows a platform by name.
"""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import replace
from typing import Any, Callable

from bsync import registry
from bsync.core.apply import ApplyContext, apply_plan
from bsync.config import Settings
from bsync.core.model import Booking, apply_common, booking_common
from bsync.core.plan import WRITEBACK_FIELD, Action, Failure, Plan, SourceItem, plan_sync
from bsync.ledger.notion import NotionPages, _hash
from bsync.core.store import Store
from bsync.core.sync import booking_label, build_notion_source
from bsync.core.runs import PairResult, open_store, recorded_run
from bsync.platforms.base import PULL_CURSOR_SCOPE, Platform
from bsync.core.timeutil import now_utc

PLATFORM_LINKS = "platforms+notion"  # every platform's bookings and their Notion pages
PLATFORMS_PAIR = registry.platform_pair("platforms")  # the platforms step, all platforms at once: platforms-to-notion


class LocalSource:
    """The local bookings table as a pair's source: nothing to write back (links record it)."""

    label = "the platforms"

    def record_target_id(self, booking_key: str, target_id: str) -> None:
        return None


def run_platform_pull(settings: Settings, name: str, **kwargs: Any) -> PairResult:
    """Pull platform ``name`` into the local store, then make the ledger hold a page per booking."""
    settings.require(registry.PLATFORMS[name].section)
    result = run_platform_pairs(settings, pull=name, **kwargs)
    assert result is not None
    return result


def run_platform_pairs(settings: Settings, *, pull: str | None = None, plan_only: bool = False, force: bool = False,
                       full: bool = False, on_plan: Callable[[Plan], None] | None = None,
                       on_action: Callable[[Action], None] | None = None) -> PairResult | None:
    """Optionally pull platform ``pull``, then give every platform booking its ledger page.

    None when there was nothing to do (no pull, no platform booking stored)."""
    settings.require("notion")
    with ExitStack() as stack:
        store = open_store(stack, settings, plan_only)
        if pull is None and not any(store.load_bookings(p) for p in registry.PLATFORMS):
            return None
        platforms: list[Platform] = [registry.build(entry, settings) for entry in registry.PLATFORMS.values()]
        for platform in platforms:
            stack.callback(platform.close)
        pulled = next((p for p in platforms if p.name == pull), None)
        notion = build_notion_source(settings)
        pair = registry.platform_pair(pull) if pull else PLATFORMS_PAIR
        with recorded_run(store, f"sync pull {pull}" if pull else "platforms", pair, plan_only=plan_only,
                          requests=lambda: (pulled.requests if pulled else 0) + notion.requests) as record:
            started = now_utc()
            failures: list[Failure] = []
            read_ok: set[str] = set()
            cursor = None if full else store.cursor(pull, PULL_CURSOR_SCOPE) if pulled else None
            result = pulled.pull(store, cursor) if pulled else None
            if pulled is not None and result is not None:
                read_ok = {_issue_key(pulled, uid) for uid in result.read_ok}
                failures = result.failures + _carried_failures(store, pulled, result.failures, read_ok,
                                                               complete=cursor is None)
            links: dict[str, str] = {}
            for platform in platforms:
                links.update(platform.link_properties())
            pages = NotionPages(notion, list(registry.PLATFORMS), links)
            plan, bookings, targets = _plan(store, pages, failures, pair)
            if on_plan is not None:
                on_plan(plan)
            if plan_only:
                return PairResult(plan, None)
            record.halt_unless_forced(plan, force)
            ctx = ApplyContext(store, PLATFORM_LINKS, record.run_id, LocalSource(), pages, bookings, targets,
                               settings.timezone, dead_after=settings.sync.dead_after)
            record.summary = apply_plan(plan, ctx, on_action=on_action)
            if pulled is not None and result is not None:
                store.save_record_issues(pulled.name, [(_issue_key(pulled, f.id), "failure", f.title, f.reason)
                                                       for f in failures],
                                         cleared=read_ok, clear_unlisted=cursor is None)
                store.set_cursor(pulled.name, PULL_CURSOR_SCOPE, result.cursor or started.isoformat())
        return PairResult(plan, record.summary)


def _issue_key(platform: Platform, record_id: str) -> str:
    """A platform record's key in the record-issue list (``calcom:<uid>``), as ``status`` shows it."""
    return f"{platform.name}:{record_id}"


def _carried_failures(store: Store, platform: Platform, failures: list[Failure], read_ok: set[str],
                      *, complete: bool) -> list[Failure]:
    """Records that failed on an earlier pull and were not read again since: an incremental
    pull only sees records changed after the cursor, so they would otherwise vanish from the
    summary (and the exit code) while still broken.  A complete pull sees every record, so
    what it doesn't report again is fixed or gone."""
    if complete:
        return []
    seen = read_ok | {_issue_key(platform, f.id) for f in failures}
    return [Failure(key.split(":", 1)[1], row["reason"], row["title"] or "")
            for key, row in store.record_issues(platform.name).items() if key not in seen]


def _plan(store: Store, pages: NotionPages, failures: list[Failure],
          pair: str) -> tuple[Plan, dict[str, Booking], dict]:
    bookings = {b.key: b for platform in registry.PLATFORMS for b in store.load_bookings(platform)}
    links = store.links(PLATFORM_LINKS)
    targets = pages.read_items()
    sources = [SourceItem(b.key, booking_common(b), b.content_hash(),
                          recorded_target_id=links[b.key].target_key if b.key in links else None,
                          label=booking_label(b)) for b in bookings.values()]

    def render(key: str, merged: dict[str, Any]) -> Any:
        booking = bookings.get(key)
        return pages.fields(apply_common(booking, merged)) if booking else None

    plan = plan_sync(pair, sources, links, targets, directions={"push"}, render=render,
                     target_hash=_hash, target_id_for=pages.target_id_for, failures=failures,
                     source_label="the platforms", target_label="Notion", import_unmanaged=False)
    # a booking's page records its key: nothing to write back on the source side
    plan.actions = [_without_writeback(a) for a in plan.actions]
    return plan, bookings, targets


def _without_writeback(action: Action) -> Action:
    if WRITEBACK_FIELD not in action.changes:
        return action
    changes = {k: v for k, v in action.changes.items() if k != WRITEBACK_FIELD}
    if action.op == "update" and not action.target_write and not action.source_write:
        return replace(action, op="skip", changes=changes, reason="up to date", refresh_link=True)
    return replace(action, changes=changes)
