"""Booking platforms behind one protocol (bsync.platforms.base.Platform), over real HTTP.

The registry alone decides which platforms exist: ``bsync serve``'s ``/webhooks/<name>``
routes, the inbox, ``bsync sync pull NAME``, doctor and availability ask it.  And Cal.com
has one booking mapper: the same booking is the same Booking whether a webhook or a pull
brought it.
"""

from __future__ import annotations

import hmac
import threading
import time
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Any, Mapping

import httpx
import pytest
import uvicorn

from bsync import registry
from bsync.config import Settings, load_config
from bsync.core.model import Booking, Customer, Status
from bsync.core.store import Store
from bsync.platforms import intake
from bsync.platforms.base import Platform
from bsync.platforms.calcom import CalcomPlatform
from bsync.platforms.inbox import process_inbox
from bsync.platforms.pairs import run_platform_pairs
from bsync.sandbox.seed import CALCOM_WEBHOOK_SECRET
from bsync.serve.app import create_app

UTC = timezone.utc


@pytest.fixture
def settings(bsync) -> Settings:
    settings = load_config(bsync.config)
    with Store.open(settings.state_path):
        pass
    return settings


@pytest.fixture
def serve(settings):
    """``bsync serve``'s app on uvicorn in a thread, without its worker: the test runs the
    inbox itself.  Built when first called, so a registry entry patched before counts."""
    servers: list[tuple[uvicorn.Server, threading.Thread]] = []

    def start() -> str:
        config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=0, log_level="warning")
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.01)
        servers.append((server, thread))
        return f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"

    yield start
    for server, thread in servers:
        server.should_exit = True
        thread.join(timeout=10)


# -- the registry and the protocol -----------------------------------------------------------


def test_every_registered_platform_is_a_platform_that_agrees_with_its_entry(settings):
    for name, entry in registry.PLATFORMS.items():
        cls = registry.load(entry)
        platform = registry.build(entry, settings)
        assert isinstance(platform, Platform), name
        assert (cls.name, cls.label, cls.section) == (name, entry.label, entry.section)
        platform.close()


def test_sync_pull_takes_exactly_the_pullable_platforms(bsync):
    for args in (("sesami",), ("nowhere",), (), ("calcom", "calcom")):
        result = bsync("sync", "pull", *args)
        assert result.exit_code == 2
        assert "`bsync sync pull` takes one platform that can be pulled: calcom" in result.stderr


# -- one Cal.com mapper ---------------------------------------------------------------------


@pytest.mark.parametrize("trigger", ["BOOKING_CREATED", "MEETING_ENDED"])
def test_a_booking_is_the_same_by_webhook_and_by_pull(sandbox, settings, serve, tmp_path, trigger):
    """Host and attendee in different zones, the phone only as the SMS number: the webhook
    (through serve, the inbox and the platform's apply) and the pull (API v2) agree."""
    now = datetime.now(UTC).replace(microsecond=0)
    start = now + timedelta(days=2) if trigger == "BOOKING_CREATED" else now - timedelta(minutes=61)
    booking = sandbox.calcom.create_booking(
        start=start, end=start + timedelta(hours=1), title="Full groom for Rex", metadata={"client_id": "C-7"},
        attendee_name="Ola", attendee_email="ola@example.com", attendee_time_zone="America/New_York",
        host={"name": "Anna", "timeZone": "Europe/Warsaw"}, responses={"smsReminderNumber": "+48600100300"})
    uid = booking["uid"]
    if trigger == "MEETING_ENDED":
        sandbox.calcom.end_meeting(uid)
    response = sandbox.calcom.deliver(f"{serve()}/webhooks/calcom", trigger, uid, CALCOM_WEBHOOK_SECRET)
    assert response.status_code == 202, response.text
    with Store.open(settings.state_path) as store:
        assert process_inbox(settings, store) == {"done": 1}
        by_webhook = store.load_booking(f"calcom:{uid}")

    platform = CalcomPlatform(settings)
    try:
        with Store.open(tmp_path / "pulled.db") as other:
            result = platform.pull(other, None)
            assert result.failures == [] and result.read_ok == {uid}
            by_pull = other.load_booking(f"calcom:{uid}")
    finally:
        platform.close()

    expected = Status.SCHEDULED if trigger == "BOOKING_CREATED" else Status.COMPLETED
    for b in (by_webhook, by_pull):
        assert (b.timezone, b.title, b.status) == ("Europe/Warsaw", "Full groom for Rex", expected)  # the host's zone
        assert b.customer == Customer("Ola", "ola@example.com", "+48600100300")
        assert b.links == {"calcom_uid": uid, "client_id": "C-7"} and b.staff == "Anna"
    # the same in every field but two: when each path saw it, and the service (API v2 carries
    # only the event type's slug; a booking webhook its title, a MEETING_* row neither)
    assert replace(by_webhook, updated_at=None, service=None) == replace(by_pull, updated_at=None, service=None)
    assert by_pull.service == booking["eventType"]["slug"]


# -- a new platform is one registry entry ------------------------------------------------------

ECHO_TOKEN = "echo-static-token"


@dataclass(frozen=True)
class EchoDelivery:
    delivery_id: str
    booking: Booking
    actionable: bool = True


class EchoPlatform:
    """A webhook-only platform as small as the protocol allows (think Vagaro): a static token
    in a header, a JSON body ``{id, version, title, start, minutes, status, name}``."""

    name = "echo"
    label = "Echo"
    section = "server"
    check_name = None
    statuses = {"booked": Status.SCHEDULED, "cancelled": Status.CANCELLED}
    requests = 0

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def unconfigured(self) -> str | None:
        return None

    def verify(self, body: bytes, headers: Mapping[str, str]) -> None:
        intake.check_size(body)
        if not hmac.compare_digest(headers.get("x-echo-token", "").encode(), ECHO_TOKEN.encode()):
            raise intake.SignatureError("x-echo-token does not match")

    def parse(self, body: bytes, now: datetime, *, replay_window: timedelta) -> EchoDelivery:
        data = intake.load_object(body, "Echo")
        ident = intake.ident(data, "id", "body")
        start = intake.instant(data.get("start"), "start")
        booking = Booking(key=f"{self.name}:{ident}", title=intake.text(data, "title", "body", required=True) or "",
                          start=start, end=start + timedelta(minutes=int(data.get("minutes") or 60)),
                          timezone=self.settings.timezone,
                          status=intake.lookup_status(data.get("status"), self.statuses, "Echo status"),
                          customer=Customer(intake.text(data, "name", "body"), None, None), source=self.name,
                          updated_at=intake.instant(data.get("at"), "at"))
        return EchoDelivery(f"{ident}:{data.get('version')}", booking)

    def apply(self, store: Store, delivery: Any) -> str:
        store.save_booking(delivery.booking)
        return "done"

    def pull(self, store: Store, cursor: str | None) -> None:
        return None

    def link_properties(self) -> Mapping[str, str]:
        return {}

    def check(self) -> str:
        raise NotImplementedError

    def close(self) -> None:
        return None


def test_a_platform_registered_in_one_entry_is_served_stored_applied_and_reaches_notion(
        sandbox, settings, serve, monkeypatch):
    monkeypatch.setitem(registry.PLATFORMS, "echo", registry.Entry(
        "echo", "platform", "server", "Echo", f"{__name__}:EchoPlatform", pullable=False))
    url = f"{serve()}/webhooks/echo"
    start = (datetime.now(UTC) + timedelta(days=3)).replace(hour=9, minute=0, second=0, microsecond=0)
    body = (f'{{"id": 41, "version": 1, "title": "Bath for Luna", "start": "{start.isoformat()}", '
            f'"minutes": 45, "status": "booked", "name": "Kasia", "at": "{datetime.now(UTC).isoformat()}"}}').encode()
    assert httpx.post(url, content=body, headers={"x-echo-token": "wrong"}).status_code == 401
    assert httpx.post(url, content=body, headers={"x-echo-token": ECHO_TOKEN}).status_code == 202
    assert httpx.post(url, content=body, headers={"x-echo-token": ECHO_TOKEN}).status_code == 200  # a re-send
    assert httpx.post(url, content=b"{", headers={"x-echo-token": ECHO_TOKEN}).status_code == 400

    with Store.open(settings.state_path) as store:
        assert process_inbox(settings, store) == {"done": 1}
        stored = store.load_booking("echo:41")
    assert (stored.title, stored.status, stored.end - stored.start) == ("Bath for Luna", Status.SCHEDULED,
                                                                         timedelta(minutes=45))
    result = run_platform_pairs(settings)
    assert result is not None and result.summary.created == 1
    titles = ["".join(t["plain_text"] for t in sandbox.notion.get_page(p)["properties"]["Name"]["title"])
              for p in sandbox.notion.pages]
    assert titles == ["Bath for Luna"]
