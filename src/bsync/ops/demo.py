"""``bsync demo``: the whole flow on the loopback sandbox, narrated (SPEC §1)."""

from __future__ import annotations

import shutil
import tempfile
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.table import Table

from bsync import render
from bsync.config import load_config
from bsync.errors import BsyncError
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


def _writes(sandbox: Sandbox) -> int:
    """Write requests the sandbox saw (Notion's query POST is a read)."""
    total = 0
    for server in (sandbox.notion, sandbox.google):
        for r in server.requests:
            if r.method in ("PATCH", "PUT", "DELETE") or (
                    r.method == "POST" and not r.path.endswith(("/query", "/token"))):
                total += 1
    return total


def _calendar_table(sandbox: Sandbox, tz: ZoneInfo) -> Table:
    table = Table(title="Google Calendar (sandbox) now holds", title_justify="left")
    for col in ("when (local)", "title", "status"):
        table.add_column(col)
    events = sandbox.google.list_events(sandbox.google.calendar_id, include_deleted=True)
    for event in sorted(events, key=lambda e: (e["start"].get("dateTime") or e["start"].get("date"))):
        start = event["start"]
        if "date" in start:
            when = f"{start['date']} (all day)"
        else:
            when = datetime.fromisoformat(start["dateTime"]).astimezone(tz).strftime("%a %d %b %H:%M %Z")
        style = "dim strike" if event.get("status") == "cancelled" else ""
        table.add_row(when, f"[{style}]{event.get('summary', '')}[/]" if style else event.get("summary", ""),
                      event.get("status", ""))
    return table


def _calendar_edits(sandbox: Sandbox, day: Any, luna_page: str, tz: ZoneInfo) -> None:
    """What a stylist does on their phone: move an event, add one (through the real API)."""
    from bsync.calendars.gcal import event_id_for

    base = f"{sandbox.google.url}/calendar/v3/calendars/{sandbox.google.calendar_id}/events"
    headers = {"Authorization": "Bearer sandbox-token"}
    start = datetime(day.year, day.month, day.day, 11, tzinfo=tz)
    httpx.patch(f"{base}/{event_id_for('notion:' + luna_page)}", headers=headers, json={
        "start": {"dateTime": start.isoformat(), "timeZone": DEMO_TIMEZONE},
        "end": {"dateTime": (start + timedelta(hours=1)).isoformat(), "timeZone": DEMO_TIMEZONE}}).raise_for_status()
    walk_in = datetime(day.year, day.month, day.day, 13, tzinfo=tz)
    httpx.post(base, headers=headers, json={
        "summary": "Walk-in: Coco – nail trim", "description": "Booked at the desk",
        "start": {"dateTime": walk_in.isoformat(), "timeZone": DEMO_TIMEZONE},
        "end": {"dateTime": (walk_in + timedelta(minutes=30)).isoformat(), "timeZone": DEMO_TIMEZONE}}).raise_for_status()


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


def run_demo(console: Console, *, keep: Path | None = None) -> None:
    tz = ZoneInfo(DEMO_TIMEZONE)
    folder = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="bsync-demo-"))
    try:
        with Sandbox() as sandbox:
            today = datetime.now(tz).date()
            pages = seed_demo(sandbox.notion, today)
            config_path = write_sandbox_config(sandbox, folder, notify=True)
            settings = load_config(config_path)
            console.rule("[bold]bsync demo")
            console.print(f"Sandbox Notion at {sandbox.notion.url}, Google Calendar at {sandbox.google.url}")
            console.print(f"Seeded {len(pages)} bookings (one cancelled, one without a date). Config: {config_path}\n")

            console.rule("1. bsync sync --plan   (prints the plan, writes nothing anywhere)")
            result = run_sync(settings, plan_only=True)
            render.print_plan(console, result.plan, tz=tz)
            console.print(f"[dim]state DB exists after --plan: {settings.state_path.exists()}; "
                          f"sandbox write requests: {_writes(sandbox)}[/]\n")

            console.rule("2. bsync sync   (applies exactly that plan)")
            sandbox.clear_requests()
            _sync(console, settings)
            console.print(_calendar_table(sandbox, tz))
            console.print(f"[dim]emails sent on the first run: {len(sandbox.sendgrid.messages)} "
                          f"(existing bookings are recorded, not emailed)[/]\n")

            console.rule("3. bsync sync again   (nothing changed, so nothing is written)")
            sandbox.clear_requests()
            result = run_sync(settings)
            render.print_summary(console, result.summary)
            console.print(f"[dim]sandbox write requests during the rerun: {_writes(sandbox)}[/]\n")

            console.rule("4. An admin moves Rex to 14:00 and cancels Mia in Notion")
            day = today + timedelta(days=1)
            sandbox.notion.update_page(pages["rex"], properties=booking_properties(
                "Rex – full groom", start=datetime(day.year, day.month, day.day, 14, tzinfo=tz),
                end=datetime(day.year, day.month, day.day, 15, 30, tzinfo=tz), time_zone=DEMO_TIMEZONE))
            sandbox.notion.update_page(pages["mia"], properties={"Status": {"status": {"name": "Cancelled"}}})
            result = run_sync(settings, plan_only=True)
            render.print_plan(console, result.plan, tz=tz)
            _sync(console, settings)
            console.print(_calendar_table(sandbox, tz))
            console.print(_outbox_table(sandbox, 0))

            console.rule("5. In Google Calendar, Luna is moved to 11:00 and a walk-in is added")
            _calendar_edits(sandbox, today + timedelta(days=2), pages["luna"], tz)
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
