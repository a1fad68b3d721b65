"""Running a sync pair: read both sides, plan, and (unless planning) apply under the lock.

This is the library entry point the CLI, ``bsync demo`` and the tests call; it knows which
providers make up a pair, and nothing about how results are shown.
"""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass
from datetime import timedelta
from typing import Callable

from bsync.apply import Summary, apply_plan
from bsync.config import Settings
from bsync.errors import BsyncError, SafetyHaltError
from bsync.model import Booking
from bsync.plan import Action, Plan, SourceItem, plan_push
from bsync.providers.gcal import GoogleCalendarTarget
from bsync.providers.notion import NotionSource
from bsync.retry import RetryPolicy
from bsync.store import RunLock, Store

NOTION_TO_GCAL = "notion-to-gcal"


@dataclass
class PairResult:
    plan: Plan
    summary: Summary | None  # None for --plan


def retry_policy(settings: Settings) -> RetryPolicy:
    s = settings.sync
    return RetryPolicy(max_retries=s.max_retries, base_delay=s.retry_base_delay, max_delay=s.retry_max_delay)


def build_notion_source(settings: Settings) -> NotionSource:
    notion = settings.require("notion")
    return NotionSource(notion, settings.timezone, retry_policy(settings),
                        default_duration=timedelta(minutes=notion.default_duration_min))


def build_gcal_target(settings: Settings) -> GoogleCalendarTarget:
    google = settings.require("google")
    return GoogleCalendarTarget(google, retry_policy(settings), delete_policy=settings.sync.delete_policy,
                                invite_customer=google.invite_customer)


def booking_label(booking: Booking) -> str:
    """``Rex – groom · Tue 24 Nov 10:00`` in the booking's own timezone."""
    local = booking.start.astimezone(booking.tz)
    when = local.strftime("%a %d %b") if booking.all_day else local.strftime("%a %d %b %Y %H:%M %Z")
    return f"{booking.title} · {when}"


def plan_notion_to_gcal(source: NotionSource, target: GoogleCalendarTarget, store: Store,
                        settings: Settings) -> tuple[Plan, dict]:
    """Read Notion, the calendar and the links; return the plan and the bookings by key."""
    read = source.read_bookings()
    targets = target.read_items()
    links = store.links(NOTION_TO_GCAL)
    items = [SourceItem(key=b.key, wanted=target.wanted_fields(b), active=b.active,
                        recorded_target_id=b.target_ids.get("gcal"),
                        version=b.updated_at.isoformat() if b.updated_at else None,
                        content_hash=b.content_hash(), label=booking_label(b))
             for b in read.bookings]
    plan = plan_push(NOTION_TO_GCAL, items, links, targets, target_id_for=target.target_id_for,
                     failures=read.failures, max_delete=settings.sync.max_delete_allowed,
                     source_label=source.label)
    return plan, {b.key: b for b in read.bookings}


def run_notion_to_gcal(settings: Settings, *, plan_only: bool = False, force: bool = False,
                       on_plan: Callable[[Plan], None] | None = None,
                       on_action: Callable[[Action], None] | None = None) -> PairResult:
    """Sync Notion bookings to Google Calendar (or only plan it, writing nothing anywhere)."""
    command = f"sync {NOTION_TO_GCAL}"
    with ExitStack() as stack:
        if plan_only:
            store = stack.enter_context(Store.open_readonly(settings.state_path))
        else:
            stack.enter_context(RunLock(settings.state_path))
            store = stack.enter_context(Store.open(settings.state_path))
        run_id = None if plan_only else store.start_run(command)
        source = target = None
        summary: Summary | None = None
        try:
            source = build_notion_source(settings)
            target = build_gcal_target(settings)
            plan, bookings = plan_notion_to_gcal(source, target, store, settings)
            if on_plan is not None:
                on_plan(plan)
            if plan_only:
                return PairResult(plan, None)
            if plan.halt and not force:
                summary = Summary(NOTION_TO_GCAL, total=len(plan.actions), halted=plan.halt)
                raise SafetyHaltError(f"safety halt: {plan.halt}; nothing was written",
                                      hint="check the source; if the plan is right, run again with --force")
            summary = apply_plan(plan, bookings, source, target, store, run_id, on_action=on_action)
            return PairResult(plan, summary)
        except BsyncError as exc:
            if run_id is not None:
                payload = (summary.as_json() if summary else {"pair": NOTION_TO_GCAL})
                payload["error"] = str(exc)
                store.finish_run(run_id, exc.exit_code, payload)
            raise
        finally:
            requests = (source.requests if source else 0) + (target.requests if target else 0)
            if summary is not None:
                summary.requests = requests
            if target is not None and not plan_only:
                target.close()
            if run_id is not None and summary is not None and not summary.halted:
                store.finish_run(run_id, summary.exit_code, summary.as_json())


PAIR_RUNNERS = {NOTION_TO_GCAL: run_notion_to_gcal}
