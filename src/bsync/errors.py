"""Typed errors.  Each carries the process exit code of SPEC §3, so the CLI maps them in one place."""

from __future__ import annotations


class BsyncError(Exception):
    """Base of every error bsync raises on purpose."""

    exit_code = 1
    hint: str | None = None

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        if hint is not None:
            self.hint = hint


class ConfigError(BsyncError):
    """Bad or missing configuration; the message names the key."""

    exit_code = 2


class UsageError(BsyncError):
    exit_code = 2


class StateError(BsyncError):
    """The state DB can't be used as it is: a directory, unwritable, damaged, full, or from a
    newer bsync.  Nothing was written; the message names the path and what to do."""

    exit_code = 2


class LockHeldError(BsyncError):
    """Another bsync run holds the state lock."""

    exit_code = 3


class AuthError(BsyncError):
    """A provider rejected our credentials."""

    exit_code = 4


class RemoteUnavailableError(BsyncError):
    """A remote stayed unreachable (or kept failing) after bounded retries."""

    exit_code = 5


class SafetyHaltError(BsyncError):
    """The plan looked destructive (mass deletion, empty source); nothing was written."""

    exit_code = 1


class RemoteError(BsyncError):
    """A remote refused one request for a reason that retrying won't fix (a 4xx)."""

    exit_code = 1


class RecordError(BsyncError):
    """One source record can't be turned into a booking; the rest still sync."""

    def __init__(self, record_id: str, reason: str) -> None:
        super().__init__(f"{record_id}: {reason}")
        self.record_id = record_id
        self.reason = reason


class DeliveryUncertain(BsyncError):
    """A message may or may not have gone out (the connection broke after it was sent).

    Never retried automatically: a reminder sent twice is worse than one reported as
    uncertain and resent on request (`bsync remind --resend-uncertain`).
    """

    exit_code = 1
