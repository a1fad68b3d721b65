"""What every part of the Google emulator shares: its clock, Google's error envelope, and
the small request-parsing rules all endpoints apply the same way.

:class:`GoogleApi` is the base the parts (:mod:`.events`, :mod:`.freebusy`, :mod:`.oauth`,
:mod:`.batch`) build on, so an error raised anywhere (a :class:`SandboxApiError`) is answered
in the one envelope Google's front end uses, and "now" is one replaceable clock.
"""

from __future__ import annotations

import base64
import json
from datetime import datetime, timezone
from typing import Callable

from bsync.sandbox.base import JSON, Request, Response, SandboxApiError, SandboxServer
from bsync.sandbox.gcal.times import to_utc

API = "/calendar/v3"

_DEFAULT_REASONS = {
    400: "badRequest", 401: "authError", 403: "forbidden", 404: "notFound",
    405: "badRequest", 409: "duplicate", 410: "deleted", 412: "conditionNotMet",
    429: "rateLimitExceeded",
}
_CALENDAR_DOMAIN_REASONS = {"timeRangeEmpty", "timeRangeTooLong", "fullSyncRequired", "updatedMinTooLongAgo",
                            "forbiddenForNonOrganizer"}
_USAGE_DOMAIN_REASONS = {"rateLimitExceeded", "userRateLimitExceeded", "quotaExceeded"}


def bad_request() -> SandboxApiError:
    return SandboxApiError(400, "Bad Request", "badRequest")


def invalid_param(name: str, message: str = "Invalid Value") -> SandboxApiError:
    return SandboxApiError(400, message, "invalid", location=name, location_type="parameter")


def json_body(request: Request) -> JSON:
    """The request's JSON object; an empty body is ``{}``, anything else a 400 parseError."""
    if not request.body:
        return {}
    try:
        body = json.loads(request.body)
    except ValueError:
        raise SandboxApiError(400, "Parse Error", "parseError") from None
    if not isinstance(body, dict):
        raise SandboxApiError(400, "Parse Error", "parseError")
    return body


def flag(request: Request, name: str) -> bool | None:
    """A boolean query parameter (``true``/``1``/``false``/``0``); None when absent."""
    value = request.arg(name)
    if value is None or value == "":
        return None
    low = value.lower()
    if low in ("true", "1"):
        return True
    if low in ("false", "0"):
        return False
    raise invalid_param(name, f"Invalid boolean value: '{value}'.")


def b64(data: bytes) -> str:
    """URL-safe base64 without padding (page tokens, ``htmlLink`` eids)."""
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class GoogleApi(SandboxServer):
    """The emulator's front end: its clock and Google's legacy (apiary) error envelope."""

    name = "google"

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        #: Zero-arg callable returning the sandbox's "now" (aware UTC); tests may replace it.
        self.clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)
        super().__init__(host, port)

    def now(self) -> datetime:
        return to_utc(self.clock())

    def error(self, status: int, message: str, code: str | None = None, *,
              domain: str | None = None, location: str | None = None,
              location_type: str | None = None) -> Response:
        """Google's legacy (apiary) error envelope; ``code`` is the ``reason``."""
        reason = code or _DEFAULT_REASONS.get(status, "backendError" if status >= 500 else "badRequest")
        if domain is None:
            domain = ("calendar" if reason in _CALENDAR_DOMAIN_REASONS
                      else "usageLimits" if reason in _USAGE_DOMAIN_REASONS else "global")
        item: JSON = {"domain": domain, "reason": reason, "message": message}
        if location_type:
            item["locationType"] = location_type
        if location:
            item["location"] = location
        return Response(status, {"error": {"errors": [item], "code": status, "message": message}})

    def not_found_route(self, request: Request) -> Response:
        return self.error(404, "Not Found", "notFound")
