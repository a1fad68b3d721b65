"""What every webhook receiver shares: the typed errors, and pure helpers to check and read a body.

Each platform's ``verify``/``parse`` (and the ledger's Notion change notifications) are
built from these, so every provider answers a bad delivery the same way.  Pure: no I/O.
A parser takes the raw request body (bytes, exactly as received), header values,
configuration values and "now", and either returns a frozen delivery or raises one of the
errors below.  The HTTP receiver (``bsync serve``) maps errors to status codes with
``err.http_status`` and logs ``err.reason``; reasons never contain secrets, tokens or
signatures, only field names and (short) offending values.

Order of calls in a receiver::

    check_size(body)                       # before buffering more than MAX_BODY
    platform.verify(body, headers)         # authenticate the exact bytes...
    delivery = platform.parse(body, now, replay_window=...)   # ...then parse them
    if already_seen(delivery.delivery_id): return 200   # dedupe is the receiver's job

HTTP mapping (``http_status`` on each error class):

* ``SignatureError`` 401: missing/bad signature, or no secret configured (we never accept
  unsigned deliveries; configure the secret).
* ``MalformedError`` 400: not JSON, or a field missing / of the wrong type / unknown value.
* ``TooLargeError`` 413: body over ``MAX_BODY``.
* ``ReplayError`` 409: the delivery's own timestamp is outside the replay window (too old,
  or further in the future than the allowed clock skew).  409 rather than 400 so a stale or
  replayed delivery stands apart from a broken one in logs and metrics (and it matches
  ``bsync serve``).  A *duplicate* delivery (same ``delivery_id`` seen before) is not an
  error at all: acknowledge it 200.
* ``UnsupportedError`` 200: well-formed, authentic, but of a kind bsync doesn't know
  (e.g. a Cal.com trigger added after this was written).  Acknowledge so the sender
  doesn't retry, and log the reason.

Documented-but-unhandled kinds (Cal.com ``BOOKING_PAID``, Notion ``comment.created``, …)
are *not* errors: they parse to a delivery with ``actionable=False``.

Sources for the wire facts are in /work/shared/api-notes (core-apis.md §3, platform-apis.md
§5) and the Notion webhook reference (developers.notion.com/reference/webhooks and
/reference/webhooks-events-delivery).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bsync.errors import BsyncError, ConfigError
from bsync.core.model import Status
from bsync.core.timeutil import to_utc

MAX_BODY = 1024 * 1024
"""Largest body accepted (1 MiB).  Real deliveries are a few KiB."""

DEFAULT_MAX_SKEW = timedelta(minutes=5)
"""How far in the future a delivery timestamp may be (sender clock ahead of ours)."""


# --------------------------------------------------------------------------- errors


class WebhookError(BsyncError):
    """Base of webhook errors.  ``reason`` is short and safe to log; ``http_status`` is the
    answer the receiver should give."""

    http_status = 400

    def __init__(self, reason: str, *, hint: str | None = None) -> None:
        super().__init__(reason, hint=hint)
        self.reason = reason


class SignatureError(WebhookError):
    http_status = 401


class MalformedError(WebhookError):
    http_status = 400


class TooLargeError(WebhookError):
    http_status = 413


class ReplayError(WebhookError):
    http_status = 409


class UnsupportedError(WebhookError):
    """Authentic and well-formed, but nothing bsync knows how to act on: acknowledge it."""

    http_status = 200


# --------------------------------------------------------------------------- shared helpers


def check_size(body: bytes) -> None:
    """Raise TooLargeError when the body is over MAX_BODY."""
    if len(body) > MAX_BODY:
        raise TooLargeError(f"body is {len(body)} bytes; the limit is {MAX_BODY}")


def show(value: Any, limit: int = 60) -> str:
    """A short repr of an offending value, safe to put in a reason."""
    shown = repr(value)
    return shown if len(shown) <= limit else shown[: limit - 1] + "…"


def span(delta: timedelta) -> str:
    """``1d 2h 3m``: a time span as a reason shows it."""
    seconds = int(abs(delta).total_seconds())
    days, seconds = divmod(seconds, 86400)
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    parts = [f"{n}{unit}" for n, unit in ((days, "d"), (hours, "h"), (minutes, "m"), (seconds, "s")) if n]
    return " ".join(parts) or "0s"


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def load_object(body: bytes, source: str) -> dict[str, Any]:
    """The body as a JSON object (size, UTF-8 and JSON checked), or MalformedError naming ``source``."""
    check_size(body)
    try:
        decoded = bytes(body).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedError(f"{source} body is not UTF-8 (bad byte at offset {exc.start})") from None
    try:
        data = json.loads(decoded, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise MalformedError(f"{source} body is not valid JSON: {exc.msg} at line {exc.lineno} "
                             f"column {exc.colno}") from None
    except RecursionError:
        raise MalformedError(f"{source} body is nested too deeply") from None
    except ValueError as exc:
        raise MalformedError(f"{source} body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise MalformedError(f"{source} body must be a JSON object, got {type(data).__name__}")
    return data


def obj(data: Mapping[str, Any], key: str, where: str, *, required: bool = True) -> dict[str, Any]:
    """An object field (``{}`` when absent and not required)."""
    value = data.get(key)
    if value is None:
        if required:
            raise MalformedError(f"{where}.{key} is missing")
        return {}
    if not isinstance(value, dict):
        raise MalformedError(f"{where}.{key} must be an object, got {type(value).__name__}")
    return value


def text(data: Mapping[str, Any], key: str, where: str, *, required: bool = False) -> str | None:
    """A string field; None/""/whitespace count as absent."""
    value = data.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise MalformedError(f"{where}.{key} is missing or empty")
        return None
    if not isinstance(value, str):
        raise MalformedError(f"{where}.{key} must be a string, got {type(value).__name__}")
    return value


def ident(data: Mapping[str, Any], key: str, where: str) -> str:
    """An id that may arrive as a string or an integer."""
    value = data.get(key)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    found = text(data, key, where, required=True)
    assert found is not None
    return found.strip()


def instant(value: Any, where: str) -> datetime:
    """An ISO 8601 timestamp carrying an offset, as an aware UTC datetime."""
    if not isinstance(value, str) or not value.strip():
        raise MalformedError(f"{where} must be an ISO 8601 timestamp string, got {show(value)}")
    try:
        parsed = datetime.fromisoformat(value.strip())  # Python >= 3.11 reads "Z" and fractions
    except ValueError:
        raise MalformedError(f"{where} is not an ISO 8601 timestamp: {show(value)}") from None
    if parsed.tzinfo is None:
        raise MalformedError(f"{where} has no UTC offset: {show(value)}")
    try:
        return to_utc(parsed)
    except OverflowError:
        raise MalformedError(f"{where} is out of range: {show(value)}") from None


def zone(name: str, where: str) -> str:
    """An IANA zone name from a delivery, or MalformedError."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: over-long names, directories
        raise MalformedError(f"{where} is not a known IANA timezone: {show(name)}") from None
    return name


def config_zone(name: str) -> str:
    """An IANA zone name from the config, or ConfigError."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError, OSError):
        raise ConfigError(f"default_timezone {name!r} is not a known IANA timezone") from None
    return name


def check_fresh(when: datetime, now: datetime, window: timedelta, skew: timedelta, what: str) -> None:
    """ReplayError unless ``when`` lies within ``window`` before ``now`` and ``skew`` after it."""
    if window <= timedelta(0) or skew < timedelta(0):
        raise ValueError("replay_window must be positive and max_skew not negative")
    now = to_utc(now)
    if when < now - window:
        raise ReplayError(f"{what} {when.isoformat()} is {span(now - when)} old, outside the "
                          f"{span(window)} replay window")
    if when > now + skew:
        raise ReplayError(f"{what} {when.isoformat()} is {span(when - now)} in the future "
                          f"(at most {span(skew)} of clock skew is allowed)")


def _hmac_hex(secret: str, body: bytes) -> bytes:
    return hmac.new(secret.encode("utf-8"), bytes(body), hashlib.sha256).hexdigest().encode("ascii")


_HEX64 = re.compile(r"[0-9a-f]{64}")


def compare_hex(body: bytes, provided: str, secret: str, name: str) -> None:
    """Check a hex HMAC-SHA256 of the body in constant time; SignatureError naming header ``name``."""
    candidate = provided.strip().lower()
    if not _HEX64.fullmatch(candidate):
        raise SignatureError(f"{name} is not a 64-digit hex HMAC-SHA256")
    if not hmac.compare_digest(_hmac_hex(secret, body), candidate.encode("ascii")):
        raise SignatureError(f"{name} does not match the body")


def normalise(value: str) -> str:
    """A status word as status tables key it: lower case, ``_`` for spaces and dashes."""
    return value.strip().lower().replace("-", "_").replace(" ", "_")


def status_table(entries: Mapping[str, Status | str], name: str) -> dict[str, Status]:
    """A configured status map as a lookup table (ConfigError naming a bad value)."""
    table: dict[str, Status] = {}
    for key, value in entries.items():
        try:
            table[normalise(key)] = Status(value)
        except ValueError:
            raise ConfigError(f"{name}[{key!r}] = {value!r} is not one of "
                              f"{', '.join(s.value for s in Status)}") from None
    return table


def lookup_status(value: Any, table: Mapping[str, Status], what: str) -> Status:
    """The canonical status of a platform's status word, or MalformedError naming it."""
    if not isinstance(value, str) or not value.strip():
        raise MalformedError(f"{what} must be a non-empty string, got {show(value)}")
    try:
        return table[normalise(value)]
    except KeyError:
        raise MalformedError(f"unknown {what} {show(value)} (known: {', '.join(sorted(table))})") from None


