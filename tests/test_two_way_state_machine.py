"""A hypothesis state machine: random edits on both sides (Notion and Google Calendar)
interleaved with syncs.  After every sync: both sides agree, every mapped booking exists
on both sides (or is settled as deleted), nothing is duplicated, and a second sync writes
nothing."""

from __future__ import annotations

import os
import tempfile
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, consumes, rule
from typer.testing import CliRunner

from bsync.cli import app
from bsync.sandbox import Sandbox
from bsync.sandbox.seed import booking_properties, write_sandbox_config
from bsync.core.store import Store

WAW = ZoneInfo("Europe/Warsaw")
BASE = date.today() + timedelta(days=3)
TITLES = ["Rex", "Mia", "Luna", "Coco"]

_SANDBOX: Sandbox | None = None


def shared_sandbox() -> Sandbox:
    global _SANDBOX
    if _SANDBOX is None:
        _SANDBOX = Sandbox().start()
    return _SANDBOX


def slot(day: int, hour: int) -> tuple[datetime, datetime]:
    d = BASE + timedelta(days=day)
    start = datetime(d.year, d.month, d.day, hour, tzinfo=WAW)
    return start, start + timedelta(hours=1)


class TwoWaySync(RuleBasedStateMachine):
    pages = Bundle("pages")
    events = Bundle("events")

    def __init__(self) -> None:
        super().__init__()
        self.sb = shared_sandbox()
        self.sb.reset()
        self.folder = Path(tempfile.mkdtemp(prefix="bsync-sm-"))
        self.config = write_sandbox_config(self.sb, self.folder)
        self.base = f"{self.sb.google.url}/calendar/v3/calendars/{self.sb.google.calendar_id}/events"
        self.headers = {"Authorization": "Bearer sandbox-token"}
        self.synced_once = False

    def bsync(self, *args: str):
        return CliRunner().invoke(app, [*args, "--config", str(self.config)], catch_exceptions=False)

    # -- edits in Notion ------------------------------------------------------------------
    @rule(target=pages, title=st.sampled_from(TITLES), day=st.integers(0, 2), hour=st.integers(8, 17))
    def notion_create(self, title, day, hour):
        start, end = slot(day, hour)
        return self.sb.notion.create_page(booking_properties(title, start=start, end=end,
                                                             time_zone="Europe/Warsaw"))["id"]

    @rule(page=pages, title=st.sampled_from(TITLES), day=st.integers(0, 2), hour=st.integers(8, 17))
    def notion_edit(self, page, title, day, hour):
        if self.sb.notion.get_page(page)["in_trash"]:
            return
        start, end = slot(day, hour)
        self.sb.notion.update_page(page, properties=booking_properties(title, start=start, end=end,
                                                                        time_zone="Europe/Warsaw"))

    @rule(page=pages, status=st.sampled_from(["Cancelled", "Confirmed"]))
    def notion_status(self, page, status):
        if not self.sb.notion.get_page(page)["in_trash"]:
            self.sb.notion.update_page(page, properties={"Status": {"status": {"name": status}}})

    @rule(page=consumes(pages))
    def notion_trash(self, page):
        self.sb.notion.update_page(page, in_trash=True)

    # -- edits in the calendar --------------------------------------------------------------
    @rule(target=events, title=st.sampled_from(TITLES), day=st.integers(0, 2), hour=st.integers(8, 17))
    def calendar_create(self, title, day, hour):
        start, end = slot(day, hour)
        r = httpx.post(self.base, headers=self.headers, json={
            "summary": f"{title} (walk-in)", "start": {"dateTime": start.isoformat()},
            "end": {"dateTime": end.isoformat()}})
        r.raise_for_status()
        return r.json()["id"]

    @rule(day=st.integers(0, 2), hour=st.integers(8, 17), data=st.data())
    def calendar_move(self, day, hour, data):
        live = [e for e in self.sb.google.list_events(self.sb.google.calendar_id, include_deleted=False)]
        if not live:
            return
        event = data.draw(st.sampled_from(sorted(live, key=lambda e: e["id"])))
        start, end = slot(day, hour)
        httpx.patch(f"{self.base}/{event['id']}", headers=self.headers, json={
            "start": {"dateTime": start.isoformat()}, "end": {"dateTime": end.isoformat()}}).raise_for_status()

    @rule(data=st.data())
    def calendar_delete(self, data):
        live = [e for e in self.sb.google.list_events(self.sb.google.calendar_id, include_deleted=False)]
        if live:
            event = data.draw(st.sampled_from(sorted(live, key=lambda e: e["id"])))
            httpx.delete(f"{self.base}/{event['id']}", headers=self.headers).raise_for_status()

    # -- syncing ----------------------------------------------------------------------------
    @rule(full=st.booleans())
    def sync(self, full):
        args = ["sync", "--force"] + (["--full"] if full else [])
        result = self.bsync(*args)
        assert result.exit_code == 0, result.stdout + result.stderr
        self.sb.clear_requests()
        again = self.bsync(*args)
        assert again.exit_code == 0, again.stdout + again.stderr
        written = [(s.name, r.method, r.path) for s in (self.sb.notion, self.sb.google) for r in s.requests
                   if r.method in ("PATCH", "PUT", "DELETE")
                   or (r.method == "POST" and not r.path.endswith(("/query", "/token")))]
        assert written == [], f"a second sync wrote {written}"
        self.synced_once = True
        self.check_agreement(full)

    def check_agreement(self, full: bool) -> None:
        with Store.open_readonly(self.folder / "state.db") as store:
            links = store.links("notion+gcal")
        seen_events = set()
        for key, link in links.items():
            assert link.target_key not in seen_events, "two bookings mapped to one event"
            seen_events.add(link.target_key)
            page = self.sb.notion.get_page(key.split(":", 1)[1])
            event = self.sb.google.get_event(self.sb.google.calendar_id, link.target_key)
            assert event is not None, f"mapped event {link.target_key} does not exist"
            if link.tombstone:
                assert event["status"] == "cancelled"
                continue
            if page["in_trash"]:
                assert not full, "a full sync left a trashed booking mapped"
                continue
            props = page["properties"]
            cancelled = props["Status"]["status"]["name"] == "Cancelled"
            assert cancelled == (event["status"] == "cancelled"), (key, props["Status"], event["status"])
            if cancelled:
                continue
            title = "".join(t["plain_text"] for t in props["Name"]["title"])
            assert title == event["summary"]
            when = props["When"]["date"]
            assert datetime.fromisoformat(when["start"]) == datetime.fromisoformat(event["start"]["dateTime"])
            assert datetime.fromisoformat(when["end"]) == datetime.fromisoformat(event["end"]["dateTime"])
        live = self.sb.google.list_events(self.sb.google.calendar_id, include_deleted=False)
        for event in live:  # every live event is a mapped booking (walk-ins get imported)
            assert event["id"] in seen_events, f"event {event['id']} ({event.get('summary')}) is not mapped"

    def teardown(self) -> None:
        self.sb.reset()


TwoWaySync.TestCase.settings = settings(
    max_examples=int(os.environ.get("BSYNC_SM_EXAMPLES", "40")), stateful_step_count=10, deadline=None,
    suppress_health_check=list(HealthCheck))
test_two_way_state_machine = TwoWaySync.TestCase
