"""Booking platforms (Cal.com; Sesami through webhooks) into the local store, then into Notion.

``bsync sync pull calcom`` reads Cal.com bookings changed since the last pull into the
local ``bookings`` table (keyed so a reschedule chain stays one booking), then runs the
``calcom-to-notion`` pair: each platform booking gets a Notion page, which the
Notion <-> Google Calendar pairs then put on the calendar.  Webhook deliveries land in the
same table, so pull and push converge on one booking.
"""

from __future__ import annotations

from contextlib import ExitStack
from datetime import datetime, timedelta
from typing import Any, Callable

from bsync.core.apply import ApplyContext, apply_plan
from bsync.config import Settings
from bsync.errors import RecordError
from bsync.core.model import Booking, apply_common, booking_common
from bsync.core.plan import Action, Plan, plan_sync
from bsync.core.records import RecordFailure as Failure, SourceItem, booking_label
from bsync.platforms.calcom_api import CalcomSource
from bsync.ledger.notion import NotionSource
from bsync.ledger.notion_pages import NotionPages
from bsync.core.store import Store
from bsync.core.runs import PairResult, open_store, recorded_run, retry_policy
from bsync.core.timeutil import now_utc, parse_instant

CALCOM_TO_NOTION = "calcom-to-notion"
PLATFORM_LINKS = "platforms+notion"  # every platform's bookings and their Notion pages
PLATFORMS = ("calcom", "sesami")
PULL_OVERLAP = timedelta(minutes=5)


def calcom_key(store: Store, uid: str, from_uid: str | None = None, to_uid: str | None = None) -> str:
    """The bsync key of a Cal.com booking: the key of its reschedule chain, wherever first seen."""
    key = None
    for candidate in (uid, from_uid, to_uid):
        if candidate and (key := store.alias("calcom", candidate)):
            break
    key = key or f"calcom:{uid}"
    for candidate in (uid, from_uid, to_uid):
        if candidate:
            store.set_alias("calcom", candidate, key)
    return key


def record_calcom_booking(store: Store, source: CalcomSource, data: dict[str, Any]) -> Booking | None:
    """Store one API v2 booking locally; None when it is the superseded half of a reschedule."""
    uid = str(data.get("uid"))
    key = calcom_key(store, uid, data.get("rescheduledFromUid"), data.get("rescheduledToUid"))
    if data.get("rescheduledToUid") and str(data.get("status", "")).lower() == "cancelled":
        return None  # its successor (same key) carries the booking
    booking = source.to_booking(data, key)
    store.save_booking(booking)
    return booking


class LocalSource:
    """The local bookings table as a pair's source: nothing to write back (links record it)."""

    label = "Cal.com"

    def record_target_id(self, booking_key: str, target_id: str) -> None:
        return None


def run_calcom_pull(settings: Settings, **kwargs: Any) -> PairResult:
    """Pull Cal.com into the local store, then make Notion hold a page per booking."""
    settings.require("calcom")
    result = run_platform_pairs(settings, pull=True, **kwargs)
    assert result is not None
    return result


def run_platform_pairs(settings: Settings, *, pull: bool = False, plan_only: bool = False, force: bool = False,
                       full: bool = False, on_plan: Callable[[Plan], None] | None = None,
                       on_action: Callable[[Action], None] | None = None) -> PairResult | None:
    """Optionally pull Cal.com, then give every platform booking (Cal.com, Sesami) its Notion page."""
    calcom = settings.calcom
    settings.require("notion")
    with ExitStack() as stack:
        store = open_store(stack, settings, plan_only)
        if not pull and not any(store.load_bookings(p) for p in PLATFORMS):
            return None
        source = CalcomSource(calcom, settings.timezone, retry_policy(settings)) if calcom and pull else None
        if source is not None:
            stack.callback(source.close)
        notion = NotionSource.from_settings(settings)
        with recorded_run(store, "sync pull calcom" if pull else "platforms", CALCOM_TO_NOTION,
                          plan_only=plan_only,
                          requests=lambda: (source.requests if source else 0) + notion.requests) as record:
            started = now_utc()
            failures: list[Failure] = []
            newest = None
            read_ok: set[str] = set()
            complete = full or store.cursor("calcom", "updated") is None
            if source is not None:
                failures, newest, read_ok = _pull(store, source, None if full else store.cursor("calcom", "updated"))
                failures += _carried_failures(store, failures, read_ok, complete)
            pages = NotionPages(notion, list(PLATFORMS), calcom.link_metadata if calcom else {})
            plan, bookings, targets = _plan(store, pages, failures)
            if on_plan is not None:
                on_plan(plan)
            if plan_only:
                return PairResult(plan, None)
            record.halt_unless_forced(plan, force)
            ctx = ApplyContext(store, PLATFORM_LINKS, record.run_id, LocalSource(), pages, bookings, targets,
                               settings.timezone, dead_after=settings.sync.dead_after)
            record.summary = apply_plan(plan, ctx, on_action=on_action)
            if source is not None:
                store.save_record_issues("calcom", [(_calcom_issue_key(f.id), "failure", f.title, f.reason)
                                                    for f in failures], cleared=read_ok, clear_unlisted=complete)
                store.set_cursor("calcom", "updated", (newest or started).isoformat())
        return PairResult(plan, record.summary)


def _calcom_issue_key(uid: str) -> str:
    return f"calcom:{uid}"


def _carried_failures(store: Store, failures: list[Failure], read_ok: set[str], complete: bool) -> list[Failure]:
    """Cal.com bookings that failed on an earlier pull and were not read again since: an
    incremental pull only sees bookings updated after the cursor, so they would otherwise
    vanish from the summary (and the exit code) while still broken.  A complete pull sees
    every booking, so what it doesn't report again is fixed or gone."""
    if complete:
        return []
    seen = read_ok | {_calcom_issue_key(f.id) for f in failures}
    return [Failure(key.split(":", 1)[1], row["reason"], row["title"] or "")
            for key, row in store.record_issues("calcom").items() if key not in seen]


def _pull(store: Store, source: CalcomSource, cursor: str | None) -> tuple[list[Failure], datetime | None, set[str]]:
    """Store every Cal.com booking changed since ``cursor``: (failures, newest update, keys read valid)."""
    after = parse_instant(cursor) - PULL_OVERLAP if cursor else None
    failures: list[Failure] = []
    read_ok: set[str] = set()
    newest: datetime | None = None
    for data in source.iter_bookings(after):
        try:
            record_calcom_booking(store, source, data)
            read_ok.add(_calcom_issue_key(str(data.get("uid"))))
            if data.get("rescheduledFromUid"):  # a valid successor settles its predecessor's failure
                read_ok.add(_calcom_issue_key(str(data["rescheduledFromUid"])))
        except RecordError as exc:
            failures.append(Failure(exc.record_id, exc.reason, str(data.get("title") or "")[:100]))
        if data.get("updatedAt"):
            updated = parse_instant(data["updatedAt"])
            newest = updated if newest is None or updated > newest else newest
    return failures, newest, read_ok


def _plan(store: Store, pages: NotionPages, failures: list[Failure]) -> tuple[Plan, dict[str, Booking], dict]:
    bookings = {b.key: b for platform in PLATFORMS for b in store.load_bookings(platform)}
    links = store.links(PLATFORM_LINKS)
    targets = pages.read_items()
    sources = [SourceItem(b.key, booking_common(b), b.content_hash(),
                          recorded_target_id=links[b.key].target_key if b.key in links else None,
                          label=booking_label(b)) for b in bookings.values()]

    def render(key: str, merged: dict[str, Any]) -> Any:
        booking = bookings.get(key)
        return pages.fields(apply_common(booking, merged)) if booking else None

    plan = plan_sync(CALCOM_TO_NOTION, sources, links, targets, directions={"push"}, render=render,
                     target_hash=pages.fields_hash, target_id_for=pages.target_id_for, failures=failures,
                     source_label="the platforms", target_label="Notion", import_unmanaged=False)
    # a booking's page records its key: nothing to write back on the source side
    plan.actions = [_without_writeback(a) for a in plan.actions]
    return plan, bookings, targets


def _without_writeback(action: Action) -> Action:
    from dataclasses import replace

    from bsync.core.plan import WRITEBACK_FIELD

    if WRITEBACK_FIELD not in action.changes:
        return action
    changes = {k: v for k, v in action.changes.items() if k != WRITEBACK_FIELD}
    if action.op == "update" and not action.target_write and not action.source_write:
        return replace(action, op="skip", changes=changes, reason="up to date", refresh_link=True)
    return replace(action, changes=changes)
