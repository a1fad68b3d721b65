"""``bsync doctor``: is this setup able to sync?  One line per check, exit 1 if any fails.

Checks, in order: the config loads; the business timezone; the state DB (integrity,
migrations, file mode); each configured provider with one cheap authenticated call (each
registered calendar and platform through its own ``check()``), and a calendar's saved
sign-in when it can lapse (the Google token's freshness); the machine's clock against a
provider's ``Date`` header.

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
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel, SecretStr

from bsync.config import Settings, find_config_file, load_config, placeholder_error, placeholder_keys
from bsync.errors import (
    AuthError,
    BsyncError,
    ConfigError,
    RemoteError,
    RemoteUnavailableError,
)
from bsync.core.failures import STATE_REBUILD_HINT
from bsync.notices.sendgrid import SendGridMailer
from bsync.notices.twilio import TwilioSms
from bsync.core.retry import RetryPolicy
from bsync.core.store import SCHEMA_VERSION
from bsync import registry
from bsync.ledger.notion import NotionSource

OK, WARN, FAIL, SKIP = "ok", "warn", "fail", "skip"
_RANK = {SKIP: 0, OK: 1, WARN: 2, FAIL: 3}


def checked_backends() -> tuple[registry.Entry, ...]:
    """The registered calendars, then the platforms bsync calls (a webhook-only platform has
    no ``check_name``: nothing to ask).  Asked at each run: the registry may have grown."""
    return (*registry.CALENDARS.values(),
            *(entry for entry in registry.PLATFORMS.values() if registry.load(entry).check_name is not None))


def _backend_lines(entry: registry.Entry) -> tuple[str, ...]:
    """The lines an entry fills: its check's, then its saved sign-in's (a calendar's, if it has one)."""
    credentials = registry.credentials(entry)
    return (registry.load(entry).check_name, *((credentials.check_name,) if credentials is not None else ()))


def check_names() -> tuple[str, ...]:
    """Every line of the output, in order."""
    return ("config", "timezone", "state db", "notion",
            *(name for entry in checked_backends() for name in _backend_lines(entry)), "sendgrid", "twilio", "clock")


def provider_sections() -> tuple[str, ...]:
    """The sections of the providers doctor calls: their timeouts are capped, their hosts
    asked for the time, and the config line lists those present."""
    return tuple(dict.fromkeys((registry.LEDGER.section, *(entry.section for entry in checked_backends()),
                                "sendgrid", "twilio")))


DOCTOR_POLICY = RetryPolicy(max_retries=1, base_delay=0.2, max_delay=1.0)
DOCTOR_TIMEOUT_S = 10.0  # per request; a configured timeout above this is capped for doctor
CLOCK_TIMEOUT_S = 5.0
CLOCK_WARN = timedelta(seconds=30)
CLOCK_FAIL = timedelta(minutes=5)
MAX_DETAIL = 600  # characters; a remote's error text can be long

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
    """Every check, in :func:`check_names` order.

    ``now`` is the time token ages and zone offsets are judged at (default: now); the clock
    check always uses the real clock, since it compares it with a server's.
    """
    now = (now or datetime.now(UTC)).astimezone(UTC)
    try:
        path = find_config_file(config_path)
        settings = load_config(path, state_path=state_path, allow_placeholders=True)
    except ConfigError as exc:
        first = Check("config", FAIL, _one_line(str(exc)), exc.hint or "fix the key named above (see config.example.toml)")
        return [first] + [Check(name, SKIP, "not checked: the config did not load") for name in check_names()[1:]]

    secrets = _secrets(settings)
    fast = _doctor_settings(settings)
    examples = placeholder_keys(settings)

    checks = [
        _config_check(path, settings, examples),
        _guard("timezone", lambda: timezone_check(settings, now)),
        _guard("state db", lambda: state_check(settings.state_path)),
        _provider("notion", "notion", settings, lambda: _notion_check(fast), NOTION_HINTS, examples),
        *(check for entry in checked_backends() for check in _backend_checks(entry, settings, fast, examples, now)),
        _provider("sendgrid", "sendgrid", settings, lambda: _sendgrid_check(fast), SENDGRID_HINTS, examples),
        _provider("twilio", "twilio", settings, lambda: _twilio_check(fast), TWILIO_HINTS, examples),
        _guard("clock", lambda: clock_check(settings)),
    ]
    return [_clean(check, secrets) for check in checks]


def _doctor_settings(settings: Settings) -> Settings:
    """A copy whose retry policy is :data:`DOCTOR_POLICY` and whose timeouts are capped."""
    sync = settings.sync.model_copy(update={"max_retries": DOCTOR_POLICY.max_retries,
                                            "retry_base_delay": DOCTOR_POLICY.base_delay,
                                            "retry_max_delay": DOCTOR_POLICY.max_delay})
    update: dict[str, Any] = {"sync": sync}
    for name in provider_sections():
        section = getattr(settings, name)
        if section is not None and getattr(section, "timeout_s", 0) > DOCTOR_TIMEOUT_S:
            update[name] = section.model_copy(update={"timeout_s": DOCTOR_TIMEOUT_S})
    return settings.model_copy(update=update)


@dataclass(frozen=True)
class _Hints:
    auth: str
    refused: str  # a 4xx other than auth (e.g. a 404 for a wrong id)


NOT_SHARED_HINT = ("open the database in Notion, then ••• → Connections → add your integration "
                   "(and check [notion] database_id)")
NOTION_HINTS = _Hints(
    auth="check [notion] token (or $BSYNC_NOTION__TOKEN): the integration's internal secret from "
         "https://www.notion.so/my-integrations",
    refused="check [notion] database_id / data_source_id and notion.version")
SENDGRID_HINTS = _Hints(
    auth="check [sendgrid] api_key (or $BSYNC_SENDGRID__API_KEY): SendGrid → Settings → API Keys; "
         "it needs the Mail Send permission",
    refused="check [sendgrid] base_url")
TWILIO_HINTS = _Hints(
    auth="check [twilio] account_sid and auth_token (or $BSYNC_TWILIO__AUTH_TOKEN): Twilio console → Account Info",
    refused="check [twilio] account_sid and base_url")


def _provider(name: str, section: str, settings: Settings, fn: Callable[[], Check], hints: _Hints | None,
              examples: list[str]) -> Check:
    """One provider's check; not attempted while its section still holds example values
    (calling the real API with ``secret_...`` only yields a 401 or a DNS error)."""
    if getattr(settings, section) is None:
        return Check(name, SKIP, f"not configured (no [{section}] section)")
    unfilled = [key for key in examples if key.split(".")[0] == section]
    if unfilled:
        return Check(name, FAIL, f"not checked: still the example value: {', '.join(unfilled)}",
                     f"put your own value in {', '.join(unfilled)}, or delete the [{section}] section")
    return _guard(name, fn, hints)


def _guard(name: str, fn: Callable[[], Check], hints: _Hints | None = None) -> Check:
    """Run one check; whatever it raises becomes its failing line, never the others'."""
    try:
        return fn()
    except AuthError as exc:
        return Check(name, FAIL, str(exc), exc.hint or (hints.auth if hints else None))
    except RemoteUnavailableError as exc:
        return Check(name, FAIL, str(exc), UNREACHABLE_HINT)
    except RemoteError as exc:
        return Check(name, FAIL, str(exc), exc.hint or (hints.refused if hints else None))
    except BsyncError as exc:  # ConfigError and the rest name the key and carry their own hint
        return Check(name, FAIL, str(exc), exc.hint)
    except (httpx.TransportError, OSError) as exc:  # not classified by the provider (e.g. a read timeout)
        return Check(name, FAIL, f"cannot reach the remote: {type(exc).__name__}: {exc}", UNREACHABLE_HINT)
    except Exception as exc:  # noqa: BLE001 - one broken check must not hide the others
        return Check(name, FAIL, f"unexpected {type(exc).__name__}: {exc}",
                     "this looks like a bug in bsync; please report it with this line")


def _host(url: str) -> str:
    """``host[:port]`` of a URL: never its user info, path or query."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    return f"{host}:{parts.port}" if parts.port else host


# -- config and timezone -------------------------------------------------------------------------

def _config_check(path: Path, settings: Settings, examples: list[str]) -> Check:
    if examples:
        error = placeholder_error(path, examples)
        return Check("config", FAIL, str(error), error.hint)
    present = [name for name in provider_sections() if getattr(settings, name) is not None]
    sections = ", ".join(f"[{name}]" for name in present) or "no provider sections"
    from bsync.notices.send import check_templates

    try:
        check_templates(settings)  # message templates are config too: a typo stops every run
    except ConfigError as exc:
        return Check("config", FAIL, _one_line(str(exc)), exc.hint or "fix the template named above")
    try:
        mode = path.stat().st_mode & 0o777
    except OSError:
        mode = 0
    if mode & 0o077:
        return Check("config", WARN, f"{path} is valid ({sections}) but readable by others (mode {mode:04o}); "
                                     f"it holds tokens", f"chmod 600 {path} (or move the tokens to BSYNC_* variables)")
    return Check("config", OK, f"{path} is valid ({sections})")


def timezone_check(settings: Settings, now: datetime) -> Check:
    """The business zone resolves; its offset now, and the machine's zone as information."""
    zone = settings.tz
    local = now.astimezone(zone)
    machine = now.astimezone()
    detail = f"{settings.timezone} is UTC{_offset(local.utcoffset())} now ({local.tzname()})"
    machine_name = _machine_zone()
    if machine_name == settings.timezone:
        detail += "; this machine uses the same zone"
    elif machine_name is None and machine.utcoffset() == local.utcoffset():
        detail += "; this machine has the same UTC offset now"
    else:
        detail += (f"; this machine: {machine_name or machine.tzname()} (UTC{_offset(machine.utcoffset())}), "
                   "not used: bsync works in the configured zone")
    return Check("timezone", OK, detail)


def _offset(delta: timedelta | None) -> str:
    minutes = int((delta or timedelta(0)).total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    hours, mins = divmod(abs(minutes), 60)
    return f"{sign}{hours:02d}:{mins:02d}"


def _machine_zone() -> str | None:
    """The machine's IANA zone name when it can be told ($TZ, /etc/localtime), else None."""
    tz = os.environ.get("TZ", "").lstrip(":")
    if tz and "/" in tz and not tz.startswith("/"):
        return tz
    try:
        target = os.path.realpath("/etc/localtime")
    except OSError:
        return None
    marker = "zoneinfo/"
    return target.split(marker, 1)[1] if marker in target else None


# -- state DB ------------------------------------------------------------------------------------

def state_check(path: Path) -> Check:
    """Integrity, schema version against this bsync's migrations, and mode 0600."""
    path = Path(path)
    if not path.exists():
        parent = next((p for p in path.parents if p.exists()), None)
        if parent is not None and not os.access(parent, os.W_OK):
            return Check("state db", FAIL, f"{path} does not exist and {parent} is not writable",
                         "set state_path to a folder this user can write to")
        return Check("state db", WARN, f"{path} does not exist yet; it is created on the first sync")
    if not path.is_file():
        return Check("state db", FAIL, f"{path} is not a file", "set state_path to a file path")

    problems: list[tuple[str, str, str | None]] = []  # (status, text, hint)
    loose = [(p, stat.S_IMODE(p.stat().st_mode)) for p in _db_files(path)]
    loose = [(p, mode) for p, mode in loose if os.name != "nt" and mode & 0o077]
    if loose:
        files = ", ".join(f"{p.name} is {mode:04o}" for p, mode in loose)
        problems.append((FAIL, f"readable by other users ({files}); it holds customer names and emails",
                         "chmod 600 " + " ".join(str(p) for p, _ in loose)))

    version: int | None = None
    try:
        integrity, version = _inspect_db(path)
    except sqlite3.DatabaseError as exc:
        problems.insert(0, (FAIL, f"not a usable SQLite database ({exc})", STATE_REBUILD_HINT.format(path=path)))
        integrity = None
    if integrity is not None and integrity != "ok":
        problems.insert(0, (FAIL, f"integrity_check: {integrity}", STATE_REBUILD_HINT.format(path=path)))
    elif version is not None and version > SCHEMA_VERSION:
        newer = f"schema version {version} was made by a newer bsync (this one knows {SCHEMA_VERSION})"
        problems.append((FAIL, newer, "upgrade bsync, or point state_path at another file"))
    elif version is not None and version < SCHEMA_VERSION:
        problems.append((WARN, f"schema version {version} of {SCHEMA_VERSION}; migrated on the next run", None))

    if not problems:
        return Check("state db", OK, f"{path}: integrity ok, schema version {version}, mode 0600")
    status = max((p[0] for p in problems), key=_RANK.__getitem__)
    hints = [p[2] for p in problems if p[2]]
    return Check("state db", status, f"{path}: " + "; ".join(p[1] for p in problems),
                 "; ".join(hints) if hints else None)


def _db_files(path: Path) -> list[Path]:
    """The DB and its WAL companions that exist (they hold the same data)."""
    return [p for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")) if p.exists()]


def _inspect_db(path: Path) -> tuple[str, int]:
    """(integrity_check result, schema version) read through a read-only connection.

    Without a ``-wal`` file (no run open, none crashed) everything is in the main file and
    it is opened ``immutable``: a plain read-only open of a WAL database would leave new
    ``-wal``/``-shm`` files behind.  With one, the WAL's content counts, so it is read too.
    """
    mode = "ro" if Path(f"{path}-wal").exists() else "ro&immutable=1"
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode={mode}", uri=True)
    try:
        rows = conn.execute("PRAGMA integrity_check").fetchall()
        integrity = "; ".join(str(row[0]) for row in rows[:5])
        if integrity != "ok":
            return integrity, 0
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "schema_migrations" not in tables:
            return integrity, 0
        return integrity, conn.execute("SELECT MAX(version) FROM schema_migrations").fetchone()[0] or 0
    finally:
        conn.close()


# -- providers -----------------------------------------------------------------------------------

def _notion_check(settings: Settings) -> Check:
    notion = settings.notion
    source = NotionSource.from_settings(settings)
    where = f"database {notion.database_id}" if notion.database_id else f"data source {notion.data_source_id}"
    try:
        schema = source.schema()  # the database, then its data source; checks every mapped property
    except RemoteError as exc:
        if "object_not_found" not in str(exc):
            raise
        # NotionSource words this itself only for the raw client error; the retry wrapper
        # has already turned it into a RemoteError by then, so say it here.
        raise AuthError(f"Notion: {where} was not found or is not shared with the integration "
                        f"(404 object_not_found)", hint=NOT_SHARED_HINT) from None
    finally:
        source.close()
    return Check("notion", OK, f"token accepted; {where} is shared with the integration "
                               f"({len(schema)} properties, every mapped one present) at {_host(notion.base_url)}")


def _backend_checks(entry: registry.Entry, settings: Settings, fast: Settings, examples: list[str],
                    now: datetime) -> list[Check]:
    """A calendar's or a platform's own check (its hints ride on the errors it raises), then
    the calendar's saved sign-in, judged locally whatever the rest of its section holds."""
    name = registry.load(entry).check_name

    def check() -> Check:
        backend = registry.build(entry, fast)
        try:
            detail = backend.check()
        finally:
            backend.close()  # keeps a refreshed access token, as a sync would
        base_url = getattr(getattr(fast, entry.section), "base_url", None)
        return Check(name, OK, f"{detail} at {_host(base_url)}" if base_url else detail)

    checks = [_provider(name, entry.section, settings, check, None, examples)]
    credentials = registry.credentials(entry)
    if credentials is not None:
        def judge() -> Check:
            verdict = credentials.judge(getattr(settings, entry.section), now)
            return Check(credentials.check_name, verdict.status, verdict.detail, verdict.hint)

        checks.append(_provider(credentials.check_name, entry.section, settings, judge, None, []))
    return checks


def _sendgrid_check(settings: Settings) -> Check:
    sendgrid = settings.sendgrid
    scopes = SendGridMailer(sendgrid, DOCTOR_POLICY).check()
    if "mail.send" not in scopes:
        return Check("sendgrid", FAIL, f"API key accepted but it lacks the mail.send scope "
                                       f"({len(scopes)} scope(s)), so every email would be refused",
                     "give the key the Mail Send permission (SendGrid → Settings → API Keys → Edit)")
    return Check("sendgrid", OK, f"API key accepted with mail.send at {_host(sendgrid.base_url)}; "
                                 f"sender {sendgrid.from_email}")


def _twilio_check(settings: Settings) -> Check:
    twilio = settings.twilio
    sms = TwilioSms(twilio, DOCTOR_POLICY)
    try:
        status = sms.check()
    finally:
        sms.close()
    if status != "active":
        return Check("twilio", FAIL, f"account {twilio.account_sid} is {status!r}, not active",
                     "Twilio sends nothing from a suspended or closed account; see the Twilio console")
    return Check("twilio", OK, f"account {twilio.account_sid} is active at {_host(twilio.base_url)}")


# -- clock ---------------------------------------------------------------------------------------

def clock_check(settings: Settings) -> Check:
    """Compare this machine's clock with the ``Date`` header of the first configured provider that answers."""
    urls = list(dict.fromkeys(url for name in provider_sections()
                              if (url := getattr(getattr(settings, name), "base_url", None))))
    if not urls:
        return Check("clock", SKIP, "no provider configured to compare the clock with")
    tried: list[str] = []
    for url in urls:
        host = _host(url)
        try:
            before = datetime.now(UTC)
            response = httpx.get(url, timeout=CLOCK_TIMEOUT_S, follow_redirects=False)
            after = datetime.now(UTC)
        except httpx.HTTPError as exc:
            tried.append(f"{host}: {type(exc).__name__}")
            continue
        dates = response.headers.get_list("date")
        if not dates:
            tried.append(f"{host}: no Date header")
            continue
        return skew_check(dates[0], before + (after - before) / 2, source=host)
    return Check("clock", WARN, "could not read a server's clock (" + "; ".join(tried) + ")",
                 "make sure this machine keeps its clock synchronised (NTP)")


def skew_check(server_date_header: str, now: datetime, *, source: str = "the server") -> Check:
    """Judge the difference between ``now`` (this machine) and a server's HTTP ``Date``.

    Over :data:`CLOCK_WARN` warns; over :data:`CLOCK_FAIL` fails: Google refuses
    service-account sign-ins whose issue time is off, and webhook deliveries are judged
    against the replay window by their timestamps, so minutes of drift break both.
    """
    try:
        server = parsedate_to_datetime(server_date_header)
    except (TypeError, ValueError, IndexError):
        return Check("clock", WARN, f"{source} sent an unreadable Date header ({server_date_header[:40]!r})")
    if server.tzinfo is None:  # "-0000" means UTC with no zone information
        server = server.replace(tzinfo=UTC)
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    skew = (now - server).total_seconds()
    size = abs(skew)
    direction = "ahead of" if skew > 0 else "behind"
    hint = "turn on time synchronisation (e.g. `timedatectl set-ntp true`, chrony or ntpd)"
    if size > CLOCK_FAIL.total_seconds():
        return Check("clock", FAIL,
                     f"this machine's clock is {_span(size)} {direction} {source}: Google refuses "
                     "service-account sign-ins and webhook deliveries fall outside their replay window "
                     f"when clocks differ by more than {_span(CLOCK_FAIL.total_seconds())}", hint)
    if size > CLOCK_WARN.total_seconds():
        return Check("clock", WARN, f"this machine's clock is {_span(size)} {direction} {source} "
                                    f"(tolerated up to {_span(CLOCK_FAIL.total_seconds())})", hint)
    return Check("clock", OK, f"in step with {source} (within {max(1, round(size))} s)")


def _span(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    if seconds < 172800:
        return f"{seconds // 3600} h {seconds % 3600 // 60} min"
    return f"{seconds // 86400} days"


# -- keeping lines short and secret-free ---------------------------------------------------------

def _secrets(settings: Settings) -> list[str]:
    """Every SecretStr value in the config, longest first (so a prefix can't hide a longer one)."""
    found: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, SecretStr):
            secret = value.get_secret_value()
            if len(secret) >= 4:
                found.append(secret)
        elif isinstance(value, BaseModel):
            for name in type(value).model_fields:
                walk(getattr(value, name, None))
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, (list, tuple)):
            for item in value:
                walk(item)

    walk(settings)
    return sorted(set(found), key=len, reverse=True)


_USERINFO = re.compile(r"(?<=://)[^/@\s]+@")


def _redact(text: str | None, secrets: list[str]) -> str | None:
    if text is None:
        return None
    for secret in secrets:
        text = text.replace(secret, "***")
    return _USERINFO.sub("***@", text)


def _one_line(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_DETAIL else text[:MAX_DETAIL - 1] + "…"


def _clean(check: Check, secrets: list[str]) -> Check:
    detail = _one_line(_redact(check.detail, secrets) or "")
    hint = _redact(check.hint, secrets)
    return replace(check, detail=detail, hint=_one_line(hint) if hint else None)
