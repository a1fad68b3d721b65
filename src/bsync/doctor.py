"""``bsync doctor``: is this setup able to sync?  One line per check, exit 1 if any fails.

Checks, in order: the config loads; the business timezone; the state DB (integrity,
migrations, file mode); each configured provider with one cheap authenticated call;
the Google token's freshness; the machine's clock against a provider's ``Date`` header.

Each check is independent: a provider that refuses our token or cannot be reached fails
its own line and the others still run.  Remote calls use a short retry policy and capped
timeouts, so a dead remote fails within seconds instead of after a sync's full backoff.
Nothing here writes to a remote; the only local write is the Google token file when the
check had to refresh the access token (as any run would).  No secret ever appears in a
line: config secrets are redacted from every message, URLs are shown by host only.
"""

from __future__ import annotations

import os
import re
import sqlite3
import stat
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, Callable, Iterable
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel, SecretStr

from bsync.auth import REAUTH_COMMAND, token_info
from bsync.config import Settings, find_config_file, load_config
from bsync.errors import AuthError, BsyncError, ConfigError, RemoteError, RemoteUnavailableError
from bsync.providers.calcom import CalcomSource
from bsync.providers.sendgrid import SendGridMailer
from bsync.providers.twilio import TwilioSms
from bsync.retry import RetryPolicy
from bsync.store import SCHEMA_VERSION
from bsync.sync import build_gcal_target, build_notion_source

OK, WARN, FAIL, SKIP = "ok", "warn", "fail", "skip"
_RANK = {SKIP: 0, OK: 1, WARN: 2, FAIL: 3}

CHECK_NAMES = ("config", "timezone", "state db", "notion", "google calendar", "google token", "cal.com",
               "sendgrid", "twilio", "clock")
PROVIDERS = ("notion", "google", "calcom", "sendgrid", "twilio")

DOCTOR_POLICY = RetryPolicy(max_retries=1, base_delay=0.2, max_delay=1.0)
DOCTOR_TIMEOUT_S = 10.0  # per request; a configured timeout above this is capped for doctor
CLOCK_TIMEOUT_S = 5.0
CLOCK_WARN = timedelta(seconds=30)
CLOCK_FAIL = timedelta(minutes=5)
MAX_DETAIL = 400  # characters; a remote's error text can be long

UNREACHABLE_HINT = ("check the network, the section's base_url and the provider's status page; "
                    "the other checks are unaffected")


@dataclass(frozen=True)
class Check:
    """One line of doctor output."""

    name: str
    status: str  # ok | warn | fail | skip
    detail: str  # one line, never a secret
    hint: str | None = None  # what to do next

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "detail": self.detail, "hint": self.hint}


def exit_code(checks: Iterable[Check]) -> int:
    """1 when any check failed, else 0 (warnings don't fail the doctor)."""
    return 1 if any(check.status == FAIL for check in checks) else 0


def format_check(check: Check) -> str:
    """``FAIL  notion           <detail> — <hint>``: the one text line for a check."""
    line = f"{check.status.upper():<5} {check.name:<16} {check.detail}"
    return f"{line} — {check.hint}" if check.hint else line


# -- running -------------------------------------------------------------------------------------

def run_checks(config_path: Path | None, *, state_path: Path | None = None,
               now: datetime | None = None) -> list[Check]:
    """Every check, in :data:`CHECK_NAMES` order.

    ``now`` is the time token ages and zone offsets are judged at (default: now); the clock
    check always uses the real clock, since it compares it with a server's.
    """
    now = (now or datetime.now(UTC)).astimezone(UTC)
    try:
        path = find_config_file(config_path)
        settings = load_config(path, state_path=state_path)
    except ConfigError as exc:
        first = Check("config", FAIL, _one_line(str(exc)), exc.hint or "fix the key named above (see config.example.toml)")
        return [first] + [Check(name, SKIP, "not checked: the config did not load") for name in CHECK_NAMES[1:]]

    secrets = _secrets(settings)
    fast = _doctor_settings(settings)
    checks = [
        _config_check(path, settings),
        _guard("timezone", lambda: timezone_check(settings, now)),
        _guard("state db", lambda: state_check(settings.state_path)),
        _provider("notion", "notion", settings, lambda: _notion_check(fast), NOTION_HINTS),
        _provider("google calendar", "google", settings, lambda: _google_check(fast), GOOGLE_HINTS),
        _provider("google token", "google", settings, lambda: google_token_check(settings, now), GOOGLE_HINTS),
        _provider("cal.com", "calcom", settings, lambda: _calcom_check(fast), CALCOM_HINTS),
        _provider("sendgrid", "sendgrid", settings, lambda: _sendgrid_check(fast), SENDGRID_HINTS),
        _provider("twilio", "twilio", settings, lambda: _twilio_check(fast), TWILIO_HINTS),
        _guard("clock", lambda: clock_check(settings)),
    ]
    return [_clean(check, secrets) for check in checks]


def _doctor_settings(settings: Settings) -> Settings:
    """A copy whose retry policy is :data:`DOCTOR_POLICY` and whose timeouts are capped."""
    sync = settings.sync.model_copy(update={"max_retries": DOCTOR_POLICY.max_retries,
                                            "retry_base_delay": DOCTOR_POLICY.base_delay,
                                            "retry_max_delay": DOCTOR_POLICY.max_delay})
    update: dict[str, Any] = {"sync": sync}
    for name in PROVIDERS:
        section = getattr(settings, name)
        if section is not None and section.timeout_s > DOCTOR_TIMEOUT_S:
            update[name] = section.model_copy(update={"timeout_s": DOCTOR_TIMEOUT_S})
    return settings.model_copy(update=update)


@dataclass(frozen=True)
class _Hints:
    auth: str
    refused: str  # a 4xx other than auth (e.g. a 404 for a wrong id)


NOTION_HINTS = _Hints(
    auth="check [notion] token (or $BSYNC_NOTION__TOKEN): the integration's internal secret from "
         "https://www.notion.so/my-integrations",
    refused="check [notion] database_id / data_source_id and notion.version")
GOOGLE_HINTS = _Hints(
    auth=f"run `{REAUTH_COMMAND}` to sign in again, and check that the account can edit the calendar",
    refused="check [google] calendar_id (Google Calendar → Settings → Integrate calendar → Calendar ID) "
            "and that the signed-in account can see that calendar")
CALCOM_HINTS = _Hints(
    auth="check [calcom] api_key (or $BSYNC_CALCOM__API_KEY): Cal.com → Settings → Developer → API keys",
    refused="check [calcom] api_version and base_url")
SENDGRID_HINTS = _Hints(
    auth="check [sendgrid] api_key (or $BSYNC_SENDGRID__API_KEY): SendGrid → Settings → API Keys; "
         "it needs the Mail Send permission",
    refused="check [sendgrid] base_url")
TWILIO_HINTS = _Hints(
    auth="check [twilio] account_sid and auth_token (or $BSYNC_TWILIO__AUTH_TOKEN): Twilio console → Account Info",
    refused="check [twilio] account_sid and base_url")


