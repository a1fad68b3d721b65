"""Logging for a person at a terminal and for unattended runs (cron, systemd timers).

:func:`configure_logging` installs two handlers on the root logger:

* **stderr**, for the person (or cron's mail, or the journal): ``LEVEL logger: message``
  at WARNING, INFO with ``-v``, DEBUG with ``-vv``, ERROR only with ``--quiet``.
  ``bsync.notion`` (notion-client logs every refused attempt as a warning; bsync reports
  the outcome itself) shows ERROR only unless ``-v``.
* **a rotating file** (``--log-file``), for the morning after: INFO at least (DEBUG with
  ``-vv``) whatever ``--quiet`` says, so a quiet cron run still leaves a trail.  Text
  lines carry an ISO 8601 UTC timestamp and the pid; ``--log-format json`` writes one JSON
  object per line instead (``ts``, ``level``, ``logger``, ``msg``, ``pid``, every
  ``extra=`` and :func:`log_context` field, ``exc``).  Libraries only add their warnings
  to the file unless ``-v``, so the file is bsync's own story and not one line per
  HTTP request.

Every handler redacts: tokens that look like secrets (Bearer and Basic credentials,
SendGrid, Cal.com, Notion and Google keys, ``access_token=``-style values, passwords in
URLs) and every value given to :func:`register_secret` are replaced with ``***`` in the
message, the traceback and the extra fields before anything is written.

Calling :func:`configure_logging` again replaces the handlers it installed before (they
are marked) and leaves every other handler, pytest's included, alone.
"""

from __future__ import annotations

import base64
import binascii
import contextvars
import json
import logging
import logging.handlers
import os
import re
import sys
import threading
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

from bsync.errors import ConfigError

__all__ = [
    "MASK",
    "bind_log_context",
    "clear_secrets",
    "configure_logging",
    "log_context",
    "new_run_id",
    "redact",
    "register_secret",
    "register_secrets_from",
]

MASK = "***"
STDERR_FORMAT = "%(levelname)s %(name)s: %(message)s"
MIN_SECRET_LENGTH = 6
"""Shorter registered values are ignored: masking them would garble ordinary words."""

_INSTALLED = "_bsync_logs_handler"  # attribute marking the handlers this module installed
_REDACTED = "_bsync_redacted"  # attribute marking a record whose text was already redacted

# LogRecord's own attributes: everything else on a record came from extra= or log_context()
_RECORD_ATTRS = frozenset(vars(logging.LogRecord("x", logging.INFO, "x", 0, "x", None, None))) | {
    "message", "asctime", "taskName",
    "color_message",  # uvicorn's ANSI-coloured copy of the message
}


# -- redaction ---------------------------------------------------------------------------

_SECRET_KEYS = (r"access_token|refresh_token|id_token|client_secret|api_?key|password|passwd|private_key|"
                r"token|secret|webhook_secret|sync_token|auth_token|verification_token")


def _basic_credentials(match: re.Match[str]) -> str:
    """``Basic <base64>`` is masked when it decodes to ``user:password``."""
    token = match.group(2)
    try:
        decoded = base64.b64decode(token + "=" * (-len(token) % 4), validate=True)
    except (binascii.Error, ValueError):
        return match.group(0)
    return f"{match.group(1)} {MASK}" if b":" in decoded else match.group(0)


_PATTERNS: tuple[tuple[re.Pattern[str], Any], ...] = (
    # an Authorization header in any spelling: "Authorization: Bearer x", {'authorization': 'x'}
    (re.compile(r"(?i)\b((?:proxy-)?authorization[\"']?\s*[:=]\s*[\"']?)((?:bearer|basic|token)\s+)?"
                r"[^\s\"',;}\]]+"), rf"\1\2{MASK}"),
    (re.compile(r"\b(Bearer)\s+[A-Za-z0-9\-._~+/]+=*"), rf"\1 {MASK}"),
    (re.compile(r"\b(Basic)\s+([A-Za-z0-9+/]{4,}={0,2})(?![A-Za-z0-9+/=])"), _basic_credentials),
    # user:password@ in URLs
    (re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://[^\s/:@]+:)[^\s/@]+@"), rf"\1{MASK}@"),
    # vendor key shapes
    (re.compile(r"\bSG\.[A-Za-z0-9_\-]{16,}(?:\.[A-Za-z0-9_\-]{16,})?"), f"SG.{MASK}"),
    (re.compile(r"\b(cal_(?:live_|test_)?)[A-Za-z0-9]{16,}"), rf"\1{MASK}"),
    (re.compile(r"\b(secret_|ntn_)[A-Za-z0-9]{16,}"), rf"\1{MASK}"),
    (re.compile(r"\bya29\.[A-Za-z0-9_\-.]+"), f"ya29.{MASK}"),
    (re.compile(r"\b1//[A-Za-z0-9_\-]{16,}"), f"1//{MASK}"),
    (re.compile(r"\bGOCSPX-[A-Za-z0-9_\-]{8,}"), f"GOCSPX-{MASK}"),
    (re.compile(r"\bAIza[A-Za-z0-9_\-]{30,}"), f"AIza{MASK}"),
    # key=value in query strings and form bodies
    (re.compile(rf"(?i)\b((?:{_SECRET_KEYS})=)[^&\s\"'#,;]+"), rf"\1{MASK}"),
    # "key": "value" in JSON and 'key': 'value' in Python reprs
    (re.compile(rf"(?i)(\"(?:{_SECRET_KEYS})\"\s*:\s*\")(?:\\.|[^\"\\])*\""), rf'\1{MASK}"'),
    (re.compile(rf"(?i)('(?:{_SECRET_KEYS})'\s*:\s*')(?:\\.|[^'\\])*'"), rf"\1{MASK}'"),
)

_secrets_lock = threading.Lock()
_secrets: set[str] = set()
_secrets_re: re.Pattern[str] | None = None


def register_secret(value: Any) -> None:
    """Mask ``value`` wherever it appears in a log line from now on (this process).

    Takes a string or anything with ``get_secret_value()`` (pydantic's ``SecretStr``);
    ``None`` and values shorter than :data:`MIN_SECRET_LENGTH` are ignored.  The value's
    URL-encoded and JSON-escaped spellings are masked too.
    """
    global _secrets_re
    if value is None:
        return
    if hasattr(value, "get_secret_value"):
        value = value.get_secret_value()
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    if not isinstance(value, str):
        raise TypeError(f"register_secret() takes a str or SecretStr, not {type(value).__name__}")
    from urllib.parse import quote, quote_plus

    variants = {value, value.strip(), quote(value, safe=""), quote_plus(value), json.dumps(value)[1:-1]}
    variants = {v for v in variants if len(v.strip()) >= MIN_SECRET_LENGTH}
    if not variants:
        return
    with _secrets_lock:
        if variants <= _secrets:
            return
        _secrets.update(variants)
        # longest first, so a secret containing another is masked whole
        _secrets_re = re.compile("|".join(re.escape(s) for s in sorted(_secrets, key=len, reverse=True)))


def register_secrets_from(obj: Any) -> None:
    """Register every ``SecretStr`` found in a pydantic model (e.g. the loaded ``Settings``),
    walking nested models, dicts and lists."""
    if obj is None:
        return
    if hasattr(obj, "get_secret_value"):
        register_secret(obj)
        return
    fields = getattr(type(obj), "model_fields", None)
    if isinstance(fields, Mapping):
        for name in fields:
            register_secrets_from(getattr(obj, name, None))
    elif isinstance(obj, Mapping):
        for item in obj.values():
            register_secrets_from(item)
    elif isinstance(obj, (list, tuple, set, frozenset)):
        for item in obj:
            register_secrets_from(item)


def clear_secrets() -> None:
    """Forget every registered secret (for tests)."""
    global _secrets_re
    with _secrets_lock:
        _secrets.clear()
        _secrets_re = None


def redact(text: str) -> str:
    """``text`` with registered secrets and anything that looks like a credential masked."""
    if not text:
        return text
    registered = _secrets_re
    if registered is not None:
        text = registered.sub(MASK, text)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


_SECRET_KEY = re.compile(rf"(?i)(?:{_SECRET_KEYS})")


def _redact_value(value: Any, key: str | None = None) -> Any:
    """A JSON-ready copy of an extra field's value with every string redacted, and every
    string under a secret-looking key (``token``, ``refresh_token``, …) masked whole."""
    if isinstance(value, str):
        return MASK if key is not None and _SECRET_KEY.fullmatch(key) else redact(value)
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, Mapping):
        return {redact(str(k)): _redact_value(v, str(k)) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_redact_value(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return redact(str(value))


def _redact_revealing(text: str, reveal: Any) -> str:
    """``redact(text)``, except for ``reveal``: a value a log line exists to show (a Notion
    verification token the admin must copy).  A value registered as a secret (from the
    config) is masked all the same."""
    if not isinstance(reveal, str) or len(reveal) < MIN_SECRET_LENGTH or reveal not in text:
        return redact(text)
    registered = _secrets_re
    if registered is not None and registered.fullmatch(reveal):
        return redact(text)
    marker = "\x00bsync-reveal\x00"
    return redact(text.replace(reveal, marker)).replace(marker, reveal)


class RedactingFilter(logging.Filter):
    """Replaces a record's message, traceback and string extras with redacted text.

    The record is rewritten in place (``msg`` becomes the final message and ``args`` is
    emptied), once: other handlers see the redacted text too.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, _REDACTED, False):
            return True
        try:
            message = record.getMessage()
        except (TypeError, ValueError, KeyError):  # arguments that don't fit the format: keep both
            message = f"{record.msg!s} {record.args!r}"
        record.msg, record.args = _redact_revealing(message, record.__dict__.pop("reveal", None)), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        for key, value in list(vars(record).items()):
            if key not in _RECORD_ATTRS and isinstance(value, str):
                setattr(record, key, _redact_value(value, key))
        setattr(record, _REDACTED, True)
        return True


# -- context -----------------------------------------------------------------------------

_context: contextvars.ContextVar[Mapping[str, Any]] = contextvars.ContextVar(
    "bsync_log_context", default=MappingProxyType({}))


def _check_fields(fields: Mapping[str, Any]) -> None:
    for key in fields:
        if not key.isidentifier() or key.startswith("_") or key in _RECORD_ATTRS:
            raise ValueError(f"log context field {key!r} clashes with a LogRecord attribute or is not a name")


@contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Add ``fields`` (e.g. ``run_id``, ``command``, ``pair``) to every record logged inside.

    Nested contexts add to (and may override) the outer one; leaving restores it.  Based on
    ``contextvars``: asyncio tasks inherit it, new threads start without it.  A field
    given as ``extra=`` on the log call wins over the context.
    """
    _check_fields(fields)
    token = _context.set(MappingProxyType({**_context.get(), **fields}))
    try:
        yield
    finally:
        _context.reset(token)


def bind_log_context(**fields: Any) -> None:
    """Like :func:`log_context` without a ``with`` block: the fields stay bound for the rest
    of the current thread (or task).  For the CLI, which binds ``run_id`` and ``command``
    once per invocation; a later bind replaces the fields it names."""
    _check_fields(fields)
    _context.set(MappingProxyType({**_context.get(), **fields}))


def new_run_id() -> str:
    """A short random id that tells one run's log lines from another's."""
    return uuid.uuid4().hex[:12]


class ContextFilter(logging.Filter):
    """Copies the :func:`log_context` fields onto each record (``extra=`` fields win)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in _context.get().items():
            if key not in vars(record):
                setattr(record, key, value)
        return True


# -- formatting --------------------------------------------------------------------------

def _rfc3339(created: float) -> str:
    """``2026-11-20T06:00:00.123Z``."""
    return datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _extra_fields(record: logging.LogRecord) -> dict[str, Any]:
    return {key: value for key, value in vars(record).items()
            if key not in _RECORD_ATTRS and not key.startswith("_")}


def _exception_text(formatter: logging.Formatter, record: logging.LogRecord) -> str:
    if record.exc_info and not record.exc_text:
        record.exc_text = formatter.formatException(record.exc_info)
    parts = [record.exc_text] if record.exc_text else []
    if record.stack_info:
        parts.append(formatter.formatStack(record.stack_info))
    return "\n".join(parts)


class StderrFormatter(logging.Formatter):
    """``LEVEL logger: message`` (and the traceback), redacted."""

    def __init__(self) -> None:
        super().__init__(STDERR_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class TextFileFormatter(logging.Formatter):
    """``2026-11-20T06:00:00.123Z [4242] INFO bsync.core.apply: message  run_id=… command=sync``."""

    def format(self, record: logging.LogRecord) -> str:
        record.message = record.getMessage()
        line = f"{_rfc3339(record.created)} [{record.process}] {record.levelname} {record.name}: {record.message}"
        fields = _extra_fields(record)
        if fields:
            line += "  " + " ".join(f"{key}={self._value(key, value)}" for key, value in fields.items())
        trace = _exception_text(self, record)
        if trace:
            line += "\n" + trace
        return redact(line)

    @staticmethod
    def _value(key: str, value: Any) -> str:
        value = _redact_value(value, key)
        if isinstance(value, str):
            return value if value and not re.search(r"[\s\"'=]", value) else json.dumps(value, ensure_ascii=False)
        return json.dumps(value, ensure_ascii=False, default=str)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``ts``, ``level``, ``logger``, ``msg``, ``pid``, the extra
    and context fields, then ``exc`` (traceback) when there is one."""

    CORE = ("ts", "level", "logger", "msg", "pid")

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": _rfc3339(record.created),
            "level": record.levelname,
            "logger": record.name,
            "msg": redact(record.getMessage()),
            "pid": record.process,
        }
        for key, value in _extra_fields(record).items():
            out[f"{key}_" if key in self.CORE or key == "exc" else key] = _redact_value(value, key)
        trace = _exception_text(self, record)
        if trace:
            out["exc"] = redact(trace)
        return json.dumps(out, ensure_ascii=False, default=str)


# -- handlers ----------------------------------------------------------------------------

class _LevelFloor(logging.Filter):
    """Per-logger minimum levels: the longest matching prefix in ``floors`` wins, else ``default``."""

    def __init__(self, default: int, floors: Mapping[str, int]) -> None:
        super().__init__()
        self.default = default
        self.floors = dict(sorted(floors.items(), key=lambda item: len(item[0]), reverse=True))
        self._cache: dict[str, int] = {}

    def level_for(self, name: str) -> int:
        level = self._cache.get(name)
        if level is None:
            level = next((floor for prefix, floor in self.floors.items()
                          if name == prefix or name.startswith(prefix + ".")), self.default)
            self._cache[name] = level
        return level

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= self.level_for(record.name)

    @property
    def lowest(self) -> int:
        return min([self.default, *self.floors.values()])


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the time of the call (test runners swap it)."""

    def __init__(self) -> None:
        logging.Handler.__init__(self)

    @property
    def stream(self) -> Any:  # type: ignore[override]
        return sys.stderr


class _NotShownAlready(logging.Filter):
    """Keeps off stderr what the CLI has printed there already (``extra={"printed": True}``):
    the error a command ends with goes to the log file once and to the terminal once."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(record, "printed", False)


def _private_opener(path: str, flags: int) -> int:
    return os.open(path, flags, 0o600)


class PrivateRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """A RotatingFileHandler whose files (the live one and each new one after a rollover)
    are created with mode 0600: logs name customers."""

    def _open(self) -> Any:
        return open(self.baseFilename, self.mode, encoding=self.encoding, errors=self.errors,
                    opener=_private_opener)


def _uninstall_handlers() -> None:
    """Remove (and close) the handlers an earlier :func:`configure_logging` installed."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, _INSTALLED, False):
            root.removeHandler(handler)
            handler.close()


def _open_log_file(path: Path, max_bytes: int, backups: int) -> PrivateRotatingFileHandler:
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))
        return PrivateRotatingFileHandler(path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"--log-file {path}: {exc.strerror or exc}",
                          hint="give a path in a folder bsync may write to") from None


def configure_logging(*, verbose: int = 0, quiet: bool = False, log_file: Path | str | None = None,
                      log_format: Literal["text", "json"] = "text", max_bytes: int = 5_000_000,
                      backups: int = 5) -> None:
    """Set up logging for one bsync invocation; safe to call again (handlers are replaced).

    ``log_format`` applies to ``log_file`` when one is given, otherwise to stderr.  The file
    rotates when it would grow past ``max_bytes``, keeping ``backups`` older files
    (``bsync.log.1`` … ``.N``); ``max_bytes=0`` never rotates.  Raises ConfigError (exit 2)
    when the file can't be created.
    """
    if log_format not in ("text", "json"):
        raise ValueError(f"log_format must be 'text' or 'json', not {log_format!r}")
    if max_bytes < 0 or backups < 0 or (max_bytes > 0 and backups < 1):
        raise ValueError("max_bytes must be >= 0 and, when rotating, backups >= 1")

    stderr_level = (logging.ERROR if quiet else logging.DEBUG if verbose >= 2 else
                    logging.INFO if verbose == 1 else logging.WARNING)
    notion_level = (logging.ERROR if quiet or verbose <= 0 else
                    logging.DEBUG if verbose >= 2 else logging.INFO)
    stderr = _StderrHandler()
    stderr.addFilter(_NotShownAlready())
    stderr.setFormatter(JsonFormatter() if log_format == "json" and log_file is None else StderrFormatter())
    floors = [_LevelFloor(stderr_level, {"bsync.notion": notion_level})]
    handlers: list[logging.Handler] = [stderr]

    if log_file is not None:
        own_level = logging.DEBUG if verbose >= 2 else logging.INFO
        library_level = own_level if verbose >= 1 else logging.WARNING
        handler = _open_log_file(Path(log_file).expanduser(), max_bytes, backups if max_bytes else 0)
        handler.setFormatter(JsonFormatter() if log_format == "json" else TextFileFormatter())
        floors.append(_LevelFloor(library_level, {"bsync": own_level, "bsync.notion": library_level}))
        handlers.append(handler)

    _uninstall_handlers()
    root = logging.getLogger()
    for handler, floor in zip(handlers, floors):
        handler.addFilter(floor)
        handler.addFilter(ContextFilter())
        handler.addFilter(RedactingFilter())
        setattr(handler, _INSTALLED, True)
        root.addHandler(handler)
    root.setLevel(min(floor.lowest for floor in floors))
    # The floors above decide what bsync.notion shows; its own level must not filter first.
    logging.getLogger("bsync.notion").setLevel(logging.NOTSET)
