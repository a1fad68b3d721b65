"""Seeding the sandbox and writing a config that points bsync at it.

Shared by ``bsync demo``, the tests and the benchmarks, so all three exercise the same
setup a user would write by hand.
"""

from __future__ import annotations

import json
import os
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

DEMO_TIMEZONE = "Europe/Warsaw"
CALCOM_WEBHOOK_SECRET = "sandbox-webhook-secret"


def text(value: str) -> dict[str, Any]:
    return {"rich_text": [{"type": "text", "text": {"content": value}}]}


def booking_properties(title: str, *, start: datetime | date | None, end: datetime | date | None = None,
                       status: str = "Confirmed", customer: str | None = None, email: str | None = None,
                       phone: str | None = None, service: str | None = None, staff: str | None = None,
                       notes: str | None = None, timezone: str | None = None,
                       time_zone: str | None = None, notifications: str | None = None) -> dict[str, Any]:
    """Notion write-format properties for a booking page of the sandbox's schema.

    ``time_zone`` sends the date the way Notion's UI does (local time + zone name);
    otherwise datetimes go with their offset.
    """
    props: dict[str, Any] = {"Name": {"title": [{"type": "text", "text": {"content": title}}]},
                             "Status": {"status": {"name": status}}}
    if start is not None:
        def fmt(value: datetime | date) -> str:
            if isinstance(value, datetime) and time_zone:
                return value.astimezone(ZoneInfo(time_zone)).replace(tzinfo=None).isoformat(timespec="seconds")
            return value.isoformat()

        when: dict[str, Any] = {"start": fmt(start)}
        if end is not None:
            when["end"] = fmt(end)
        if time_zone and isinstance(start, datetime):
            when["time_zone"] = time_zone
        props["When"] = {"date": when}
    if customer:
        props["Customer"] = text(customer)
    if email:
        props["Email"] = {"email": email}
    if phone:
        props["Phone"] = {"phone_number": phone}
    if service:
        props["Service"] = {"select": {"name": service}}
    if staff:
        props["Staff"] = {"select": {"name": staff}}
    if notes:
        props["Notes"] = text(notes)
    if timezone:
        props["Timezone"] = text(timezone)
    if notifications:
        props["Notifications"] = {"select": {"name": notifications}}
    return props


def seed_demo(notion: Any, today: date, tz_name: str = DEMO_TIMEZONE) -> dict[str, str]:
    """Sample bookings: valid ones, an all-day one, one in another zone, one cancelled, one malformed.

    Returns a name -> page id map so the demo can edit specific bookings.
    """
    tz = ZoneInfo(tz_name)
    d1, d2 = today + timedelta(days=1), today + timedelta(days=2)

    def at(day: date, hour: int, minute: int = 0) -> datetime:
        return datetime(day.year, day.month, day.day, hour, minute, tzinfo=tz)

    pages = {
        "rex": booking_properties("Rex – full groom", start=at(d1, 10), end=at(d1, 11, 30), customer="Jan Kowalski",
                                  email="jan@example.com", phone="+48 600 100 200", service="Full groom",
                                  staff="Anna", notes="Nervous with clippers", time_zone=tz_name),
        "mia": booking_properties("Mia – nail trim", start=at(d1, 12), end=at(d1, 12, 30), status="Pending",
                                  customer="Ola Nowak", email="ola@example.com", service="Nail trim", staff="Ben",
                                  time_zone=tz_name),
        "luna": booking_properties("Luna – bath", start=at(d2, 9), end=at(d2, 10), customer="Piotr Wiśniewski",
                                   service="Bath", staff="Chloe"),
        "workshop": booking_properties("Grooming workshop (salon closed)", start=d2 + timedelta(days=5),
                                       end=d2 + timedelta(days=6), staff="Anna"),
        "video": booking_properties("Video consultation – Buddy", start=at(d2, 16), end=at(d2, 16, 30),
                                    customer="Emily Carter", email="emily@example.com", service="Consultation",
                                    timezone="America/New_York", time_zone="America/New_York"),
        "max": booking_properties("Max – haircut", start=at(d1, 15), end=at(d1, 16), status="Cancelled",
                                  customer="Anna Zielińska", service="Haircut", staff="Ben"),
        "bella": booking_properties("Bella – consultation (no date yet)", start=None, status="Pending",
                                    customer="Marek Lewandowski", service="Consultation"),
    }
    return {name: notion.create_page(props)["id"] for name, props in pages.items()}


def write_token_file(path: Path, token_uri: str) -> Path:
    """An authorized-user token file like ``bsync auth google`` writes, valid for the sandbox."""
    data = {"refresh_token": "sandbox-refresh-token", "client_id": "sandbox-client.apps.googleusercontent.com",
            "client_secret": "sandbox-client-secret", "token_uri": token_uri, "type": "authorized_user"}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle)
    return path


def write_sandbox_config(sandbox: Any, folder: Path, *, timezone: str = DEMO_TIMEZONE,
                         sync: dict[str, Any] | None = None, notion_token: str = "sandbox-token",
                         notion_rate: float = 0, notify: bool = False,
                         reminders: dict[str, Any] | None = None) -> Path:
    """Write ``bsync.toml`` (+ token file) in ``folder`` pointing at the running sandbox.

    Notion pacing is off by default (the sandbox has no limit unless a fault sets one).
    ``notify`` adds the SendGrid and Twilio sections (so `bsync sync` sends notices and
    `bsync remind` works) and the Notion opt-out property.
    """
    folder.mkdir(parents=True, exist_ok=True)
    write_token_file(folder / "google-token.json", f"{sandbox.google.url}/token")
    sync_settings = {"max_retries": 2, "retry_base_delay": 0.05, "retry_max_delay": 0.5, **(sync or {})}
    lines = [
        f'timezone = "{timezone}"',
        'state_path = "state.db"',
        "",
        "[notion]",
        f'token = "{notion_token}"',
        f'database_id = "{sandbox.notion.database_id}"',
        f'base_url = "{sandbox.notion.url}"',
        f"requests_per_second = {notion_rate}",
        *(["", "[notion.properties]", 'notifications = "Notifications"'] if notify else []),
        "",
        "[google]",
        f'calendar_id = "{sandbox.google.calendar_id}"',
        'token_file = "google-token.json"',
        f'base_url = "{sandbox.google.url}"',
        f'token_uri = "{sandbox.google.url}/token"',
        "",
        "[calcom]",
        'api_key = "sandbox-token"',
        f'base_url = "{sandbox.calcom.url}"',
        f'webhook_secret = "{CALCOM_WEBHOOK_SECRET}"',
        'link_metadata = { client_id = "Client ID", pet_id = "Pet ID" }',
        "",
        "[sync]",
    ]
    if notify:
        reminder_settings = {"leads": ["24h", "2h"], "channels": ["email", "sms"], **(reminders or {})}
        lines[-1:-1] = [
            "[sendgrid]",
            'api_key = "sandbox-token"',
            'from_email = "hello@pawsandclaws.example"',
            'from_name = "Paws & Claws Grooming"',
            f'base_url = "{sandbox.sendgrid.url}"',
            "",
            "[twilio]",
            f'account_sid = "{sandbox.twilio.account_sid}"',
            f'auth_token = "{sandbox.twilio.auth_token}"',
            f'from_number = "{sorted(sandbox.twilio.from_numbers)[0]}"',
            f'base_url = "{sandbox.twilio.url}"',
            "",
            "[reminders]",
            *(f"{key} = {json.dumps(value)}" for key, value in reminder_settings.items()),
            "",
        ]
    for key, value in sync_settings.items():
        lines.append(f"{key} = {json.dumps(value)}")
    path = folder / "bsync.toml"
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)  # it holds tokens, like a real one should
    return path
