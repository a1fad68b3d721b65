"""Loopback emulators of the APIs bsync talks to, for tests, benchmarks and ``bsync demo``.

``with Sandbox() as sb:`` starts every emulator on a free loopback port;
``sb.notion.url``, ``sb.google.url``, ``sb.calcom.url``, ``sb.sendgrid.url`` and ``sb.twilio.url``
are the exact values for each provider's ``base_url``.
"""

from __future__ import annotations

from typing import Any

from bsync.sandbox.base import Faults, RecordedRequest, Request, Response, SandboxApiError, SandboxServer, route
from bsync.sandbox.calcom import CalcomSandbox
from bsync.sandbox.gcal import GoogleCalendarSandbox
from bsync.sandbox.notion import NotionSandbox
from bsync.sandbox.sendgrid import SendGridSandbox
from bsync.sandbox.twilio import TwilioSandbox

__all__ = ["Sandbox", "NotionSandbox", "GoogleCalendarSandbox", "CalcomSandbox", "SendGridSandbox",
           "TwilioSandbox", "SandboxServer", "SandboxApiError", "Faults", "Request", "Response",
           "RecordedRequest", "route"]


class Sandbox:
    """All emulators together; ports are free ones unless ``port_base`` is given."""

    def __init__(self, host: str = "127.0.0.1", port_base: int | None = None) -> None:
        def port(offset: int) -> int:
            return 0 if port_base is None else port_base + offset

        self.notion = NotionSandbox(host, port(0))
        self.google = GoogleCalendarSandbox(host, port(1))
        self.calcom = CalcomSandbox(host, port(2))
        self.sendgrid = SendGridSandbox(host, port(3))
        self.twilio = TwilioSandbox(host, port(4))
        self.servers: list[SandboxServer] = [self.notion, self.google, self.calcom, self.sendgrid,
                                             self.twilio]

    def start(self) -> "Sandbox":
        for server in self.servers:
            server.start()
        return self

    def stop(self) -> None:
        for server in self.servers:
            server.stop()

    def __enter__(self) -> "Sandbox":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def reset(self) -> None:
        for server in self.servers:
            server.reset()

    def clear_requests(self) -> None:
        for server in self.servers:
            server.clear_requests()

    def describe(self) -> dict[str, Any]:
        """The JSON line of ``python -m bsync.sandbox`` (SPEC §7)."""
        return {
            "notion": self.notion.url,
            "notion_database_id": self.notion.database_id,
            "google": self.google.url,
            "google_calendar_id": self.google.calendar_id,
            "calcom": self.calcom.url,
            "sendgrid": self.sendgrid.url,
            "twilio": self.twilio.url,
        }
