"""``bsync demo``: the whole flow on the loopback sandbox, narrated (SPEC §1), on Google's
emulator or (``--calendar caldav``) a real Radicale it starts (:mod:`bsync.ops.demo_calendars`)."""

from __future__ import annotations

import shutil
import tempfile
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from zoneinfo import ZoneInfo

from rich.console import Console
from rich.table import Table

from bsync import registry, render
from bsync.config import load_config
from bsync.errors import BsyncError, UsageError
from bsync.ops.demo_calendars import DEMO_CALENDARS, WRITE_METHODS, DemoCalendar
from bsync.sandbox import Sandbox
from bsync.sandbox.seed import DEMO_TIMEZONE, booking_properties, seed_demo, write_sandbox_config
from bsync.core.store import Store
from bsync.platforms.pairs import run_platform_pull
from bsync.notices.send import run_notifications
from bsync.notices.plan import mask
from bsync.ops.reconcile import run_reconcile
from bsync.ops.status import collect_status
from bsync.core.pipeline import CalendarStep, NoticeStep, run_pipeline
from bsync.core.sync import run_sync
from bsync.core.timeutil import now_utc


def _writes(sandbox: Sandbox, calendar: DemoCalendar) -> int:
    """Write requests Notion and the calendar saw (Notion's query POST is a read)."""
    notion = sum(1 for r in sandbox.notion.requests if r.method in WRITE_METHODS or (
        r.method == "POST" and not r.path.endswith(("/query", "/token"))))
    return notion + calendar.write_requests()


def _clear_requests(sandbox: Sandbox, calendar: DemoCalendar) -> None:
    sandbox.clear_requests()
    calendar.clear_requests()


def _calendar_table(calendar: DemoCalendar, tz: ZoneInfo) -> Table:
    table = Table(title=f"{calendar.title} now holds", title_justify="left")
    for col in ("when (local)", "title", "status"):
        table.add_column(col)
    for when, title, status in calendar.events(tz):
        cancelled = status == "cancelled"
        table.add_row(when, f"[dim strike]{title}[/]" if cancelled else title, status)
    return table


def _calendar_edits(calendar: DemoCalendar, day: Any, tz: ZoneInfo) -> None:
    """What a stylist does on their phone: move an event, add one (through the calendar's own API)."""
    start = datetime(day.year, day.month, day.day, 11, tzinfo=tz)
    calendar.move("Luna – bath", start, start + timedelta(hours=1))
    walk_in = datetime(day.year, day.month, day.day, 13, tzinfo=tz)
    calendar.add("Walk-in: Coco – nail trim", "Booked at the desk", walk_in, walk_in + timedelta(minutes=30))


def _notion_table(sandbox: Sandbox, tz: ZoneInfo) -> Table:
    table = Table(title="Notion (sandbox) bookings now", title_justify="left")
    for col in ("when (local)", "title", "status", "source"):
        table.add_column(col)
    rows = []
    for page_id in sandbox.notion.pages:
        props = sandbox.notion.get_page(page_id)["properties"]
        when = (props["When"].get("date") or {}).get("start")
        if when is None:
            label = "—"
        elif len(when) == 10:
            label = f"{when} (all day)"
        else:
            label = datetime.fromisoformat(when).astimezone(tz).strftime("%a %d %b %H:%M %Z")
        title = "".join(t["plain_text"] for t in props["Name"]["title"])
        status = (props["Status"].get("status") or {}).get("name", "")
        source = (props["Source"].get("select") or {}).get("name", "")
        rows.append((when or "", label, title, status, source))
    for row in sorted(rows):
        table.add_row(*row[1:])
    return table


def _sync(console: Console, settings: Any) -> None:
    """`bsync sync`: the pipeline the CLI runs, showing the calendar sync and the notices it sent."""
    for step in run_pipeline(settings).steps:
        if isinstance(step, CalendarStep):
            render.print_summary(console, step.result.summary)
        elif isinstance(step, NoticeStep):
            render.print_notify_summary(console, step.result.summary)


def _outbox_table(sandbox: Sandbox, since: int) -> Table:
    table = Table(title="Emails and texts sent (SendGrid and Twilio sandboxes)", title_justify="left")
    for col in ("to", "subject / text", "attachment"):
        table.add_column(col)
    for message in sandbox.sendgrid.messages[since:]:
        table.add_row(mask(message["to"][0]), message["subject"] or "",
                      ", ".join(a["filename"] for a in message["attachments"]))
    for message in sandbox.twilio.messages:
        table.add_row(mask(message["to"]), message["body"], "")
    return table


def run_demo(console: Console, *, keep: Path | None = None, calendar_name: str = "gcal") -> None:
    """The story of ``make demo``, on the calendar named (see :data:`DEMO_CALENDARS`)."""
    if calendar_name not in DEMO_CALENDARS:
        raise UsageError(f"--calendar {calendar_name!r}: the demo runs on {' or '.join(DEMO_CALENDARS)}")
    tz = ZoneInfo(DEMO_TIMEZONE)
    folder = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="bsync-demo-"))
    try:
        with Sandbox() as sandbox, DEMO_CALENDARS[calendar_name](sandbox) as calendar:
            today = datetime.now(tz).date()
            pages = seed_demo(sandbox.notion, today)
            pairs = {"pairs": [registry.push_pair(calendar.name), registry.pull_pair(calendar.name)]}
            config_path = write_sandbox_config(sandbox, folder, notify=True, sync=pairs)
            calendar.configure(config_path)
            settings = load_config(config_path)
            console.rule("[bold]bsync demo")
            console.print(f"Sandbox Notion at {sandbox.notion.url}, {calendar.title} at {calendar.url}")
            console.print(f"Seeded {len(pages)} bookings (one cancelled, one without a date). Config: {config_path}\n")

            console.rule("1. bsync sync --plan   (prints the plan, writes nothing anywhere)")
            result = run_sync(settings, plan_only=True)
            render.print_plan(console, result.plan, tz=tz)
            console.print(f"[dim]state DB exists after --plan: {settings.state_path.exists()}; "
                          f"sandbox write requests: {_writes(sandbox, calendar)}[/]\n")

            console.rule("2. bsync sync   (applies exactly that plan)")
            _clear_requests(sandbox, calendar)
            _sync(console, settings)
            console.print(_calendar_table(calendar, tz))
            console.print(f"[dim]emails sent on the first run: {len(sandbox.sendgrid.messages)} "
                          f"(existing bookings are recorded, not emailed)[/]\n")

            console.rule("3. bsync sync again   (nothing changed, so nothing is written)")
            _clear_requests(sandbox, calendar)
            result = run_sync(settings)
            render.print_summary(console, result.summary)
            console.print(f"[dim]sandbox write requests during the rerun: {_writes(sandbox, calendar)}[/]\n")

            console.rule("4. An admin moves Rex to 14:00 and cancels Mia in Notion")
            day = today + timedelta(days=1)
            sandbox.notion.update_page(pages["rex"], properties=booking_properties(
                "Rex – full groom", start=datetime(day.year, day.month, day.day, 14, tzinfo=tz),
                end=datetime(day.year, day.month, day.day, 15, 30, tzinfo=tz), time_zone=DEMO_TIMEZONE))
            sandbox.notion.update_page(pages["mia"], properties={"Status": {"status": {"name": "Cancelled"}}})
            result = run_sync(settings, plan_only=True)
            render.print_plan(console, result.plan, tz=tz)
            _sync(console, settings)
            console.print(_calendar_table(calendar, tz))
            console.print(_outbox_table(sandbox, 0))

            console.rule(f"5. In the {calendar.title}, Luna is moved to 11:00 and a walk-in is added")
            _calendar_edits(calendar, today + timedelta(days=2), tz)
            _sync(console, settings)
            console.print(_notion_table(sandbox, tz))

            console.rule("6. bsync sync pull calcom   (a client booked online on Cal.com)")
            start = datetime.combine(today + timedelta(days=3), datetime.min.time(), tz).replace(hour=10)
            sandbox.calcom.create_booking(start=start, duration=60, title="Online booking: Nala – full groom",
                                          attendee_name="Zofia Mazur", attendee_email="zofia@example.com",
                                          metadata={"client_id": "C-1042", "pet_id": "P-77"})
            pulled = run_platform_pull(settings, "calcom")
            render.print_summary(console, pulled.summary)
            sent_before = len(sandbox.sendgrid.messages)
            _sync(console, settings)
            console.print(_notion_table(sandbox, tz))
            console.print(_outbox_table(sandbox, sent_before))

            console.rule("7. bsync availability --date tomorrow   (free 60-minute slots)")
            from bsync.availability.query import availability

            free = availability(settings, [today + timedelta(days=1)])
            for table in render.availability_tables(free):
                console.print(table)

            morning = datetime.combine(today + timedelta(days=1), datetime.min.time(), tz).replace(hour=8)
            console.rule(f"8. bsync remind --plan --now '{morning:%a %H:%M}'   (tomorrow's reminders, nothing sent)")
            planned = run_notifications(settings, plan_only=True, now=morning)
            render.print_notify_plan(console, planned.plan, tz=tz)

            console.rule("9. bsync reconcile   (every system read in full and cross-checked)")
            render.print_drift(console, run_reconcile(settings).report)

            console.rule("10. bsync status")
            with Store.open_readonly(settings.state_path) as store:
                data = collect_status(settings, store, now_utc(), runs=5)
            for table in render.status_tables(data):
                console.print(table)
            console.print("[bold green]demo finished[/] — the booking with no date yet was skipped as a draft "
                          "(not an error) while every other booking synced.")
    except BsyncError:
        raise
    finally:
        if keep is None:
            shutil.rmtree(folder, ignore_errors=True)
