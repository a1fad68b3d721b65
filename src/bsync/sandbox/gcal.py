"""Loopback emulator of the Google Calendar API v3 (the part bsync uses).

The real ``google-api-python-client`` is pointed at it with
``client_options={"api_endpoint": server.url + "/calendar/v3/"}``.  Wire format and
semantics follow the discovery document shipped with the client
(``discovery_cache/documents/calendar.v3.json``) and Google's published error guide:

* ``events.insert / get / patch / update / delete / list`` and ``freebusy.query``;
  ``calendars.get`` for completeness;
* client-chosen event ids (base32hex, 5-1024 chars) that are never freed: a deleted
  event stays readable as ``status: "cancelled"``, re-inserting its id is a 409,
  deleting it again is a 410;
* ``events.list`` paging, filters and incremental sync with ``syncToken``.  Tokens are
  built on a monotonically increasing change counter, never on wall time, so writes
  landing in the same millisecond are never missed;
* ``freebusy.query``'s limits: a range over 90 days is a 400 ``timeRangeTooLong``, calendars
  past the 50th (``calendarExpansionMax``) get a per-calendar ``tooManyCalendarsRequested``
  error inside the 200 (sources and guesses in ``_check_freebusy_span`` and
  ``_refuse_calendars_beyond_limit``); groups (``groupExpansionMax``) are not emulated;
* Google's error envelope, its real 401 body and ``WWW-Authenticate`` header;
* Google's OAuth 2.0 server for one registered "Desktop app" client (:attr:`client_id`,
  :attr:`client_secret`): the authorization endpoint (``GET /o/oauth2/auth``, where a user
  consents at once and is redirected to the loopback ``redirect_uri`` with a code; PKCE
  S256/plain), and the token endpoint (``POST /token``) with the ``authorization_code``,
  ``refresh_token`` and service-account JWT-bearer grants, answering errors as Google does;
* the batch endpoint (``POST /batch/calendar/v3``, the discovery ``batchPath``) in Google's
  ``multipart/mixed`` wire format, so ``googleapiclient.http.BatchHttpRequest`` works.  The
  answer is a 200 whose parts carry each call's own status; every call goes through the
  same fault injection, auth check and handlers as a plain request, and is recorded with
  ``batch=True`` (see :meth:`GoogleCalendarSandbox.batch`).

Recurring events (expanded with python-dateutil's ``rruleset``, in the zone of the series'
``start.timeZone``, so a 09:00 Europe/Warsaw series stays at 09:00 local across DST):

* sourced (discovery document / Calendar reference): ``singleEvents=true`` lists occurrences
  instead of series; ``orderBy=startTime`` needs it (400 otherwise); ``timeMin``/``timeMax``
  filter occurrences by their own end/start; an occurrence carries ``recurringEventId`` and
  ``originalStartTime`` and no ``recurrence``; ``start.timeZone`` is required on a recurring
  timed event; ``events.instances`` lists one series' occurrences (cancelled ones only with
  ``showDeleted``); a cancelled exception keeps id, ``recurringEventId`` and
  ``originalStartTime``;
* widely observed [2°]: occurrence ids are ``<id>_<YYYYMMDDTHHMMSSZ>`` (original start in UTC)
  for timed series and ``<id>_<YYYYMMDD>`` for all-day ones (kuzmoyev/google-calendar-simple-api
  #52 shows the form; Google announced in 2025 that instance ids change format from Q3 2026
  and must be treated as opaque, phw198/OutlookGoogleCalendarSync#2205, so bsync never parses
  them); writing or deleting an occurrence by that id (the documented "retrieve the instance,
  update the instance" flow) turns it into an exception of its own (listed as a separate event
  without ``singleEvents``), which then overrides the occurrence in lists, instances and
  freeBusy;
* guesses [?]: at most ``MAX_INSTANCES`` occurrences per series when no ``timeMax`` bounds the
  expansion; ``instances`` of a one-off event is an empty list and answers no sync token;
  deleting a series cancels its exceptions too (each reported by an incremental list);
  RDATE/EXDATE date values mean that day at the series' start time.

Stored event resources are immutable: every write builds a new dict (copy-on-write), so
list responses reference them directly instead of deep-copying thousands of events, and
the JSON encoding that happens after the lock is released never sees a half-made write.
"""

from __future__ import annotations

import base64
import copy
import email.message
import hashlib
import html
import json
import os
import re
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from http import HTTPStatus
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator
from urllib.parse import parse_qs, quote, unquote, unquote_plus, urlencode, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil.rrule import rruleset, rrulestr

from bsync.sandbox.base import JSON, RecordedRequest, Request, Response, SandboxServer, route

API = "/calendar/v3"
DEFAULT_CALENDAR_ID = "bsync-demo@group.calendar.google.com"
DEFAULT_CALENDAR_SUMMARY = "bsync demo"
DEFAULT_SCOPE = "https://www.googleapis.com/auth/calendar"
STATIC_TOKEN = "sandbox-token"
DEFAULT_REFRESH_TOKEN = "sandbox-refresh-token"
ACCESS_TOKEN_LIFETIME = 3599  # seconds, as Google's token endpoint answers

# The registered OAuth client ("Desktop app"); sandbox/seed.py's token file uses the same one.
DEFAULT_CLIENT_ID = "sandbox-client.apps.googleusercontent.com"
DEFAULT_CLIENT_SECRET = "sandbox-client-secret"
DEFAULT_SERVICE_ACCOUNT = "bsync-sync@bsync-sandbox.iam.gserviceaccount.com"
AUTH_CODE_LIFETIME = 600      # seconds an authorization code stays redeemable
JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
# Audiences Google accepts in a service-account JWT (google-auth always sends the first).
GOOGLE_TOKEN_AUDIENCES = ("https://oauth2.googleapis.com/token", "https://www.googleapis.com/oauth2/v4/token",
                          "https://accounts.google.com/o/oauth2/token")
JWT_SKEW = 300                # seconds of clock skew tolerated on a service-account JWT
ONLINE_GRANT = "online:"      # grant of an access token issued without a refresh token
SERVICE_ACCOUNT_GRANT = "sa:"  # grant prefix of a service account's access tokens
# Scopes the authorization endpoint knows (Google's are URLs under /auth/, plus OpenID's).
_OPENID_SCOPES = {"openid", "email", "profile"}
_PKCE_RE = re.compile(r"^[A-Za-z0-9._~-]{43,128}$")
OOB_REDIRECT_URIS = {"urn:ietf:wg:oauth:2.0:oob", "urn:ietf:wg:oauth:2.0:oob:auto", "oob"}
MSG_OOB_BLOCKED = (
    "The out-of-band (OOB) flow has been blocked in order to keep users secure. Follow the "
    "Out-of-Band (OOB) flow migration guide linked in the developer docs below to migrate "
    "your app to an alternative method.")
MSG_JWT_TIMEFRAME = (
    "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. "
    "Check your iat and exp values in the JWT claim.")
MSG_NO_DELEGATION = (
    "Client is unauthorized to retrieve access tokens using this method, or client not "
    "authorized for any of the scopes requested.")

MAX_RESULTS_DEFAULT = 250
MAX_RESULTS_LIMIT = 2500

BATCH_PATH = "/batch/calendar/v3"  # the discovery document's batchPath
# Paths that take no bearer token: OAuth's own endpoints, and the batch (authorised per call).
_UNAUTHENTICATED_PATHS = ("/token", "/o/oauth2/auth", "/o/oauth2/v2/auth", BATCH_PATH)
MAX_BATCH_CALLS = 1000             # "You're limited to 1000 calls in a single batch request."

# 401 texts as Google's front end sends them (errors guide + observed bodies).
MSG_INVALID_CREDENTIALS = (
    "Request had invalid authentication credentials. Expected OAuth 2 access token, login "
    "cookie or other valid authentication credential. See "
    "https://developers.google.com/identity/sign-in/web/devconsole-project."
)
MSG_MISSING_CREDENTIALS = (
    "Request is missing required authentication credential. Expected OAuth 2 access token, "
    "login cookie or other valid authentication credential. See "
    "https://developers.google.com/identity/sign-in/web/devconsole-project."
)
WWW_AUTH_REALM = 'Bearer realm="https://accounts.google.com/"'

_DEFAULT_REASONS = {
    400: "badRequest", 401: "authError", 403: "forbidden", 404: "notFound",
    405: "badRequest", 409: "duplicate", 410: "deleted", 412: "conditionNotMet",
    429: "rateLimitExceeded",
}
_CALENDAR_DOMAIN_REASONS = {"timeRangeEmpty", "timeRangeTooLong", "fullSyncRequired", "updatedMinTooLongAgo",
                            "forbiddenForNonOrganizer"}
# freeBusy limits (see _check_freebusy_span and _refuse_calendars_beyond_limit for sources).
FREEBUSY_MAX_SPAN = timedelta(days=90)
FREEBUSY_MAX_CALENDARS = 50
_USAGE_DOMAIN_REASONS = {"rateLimitExceeded", "userRateLimitExceeded", "quotaExceeded"}

_EVENT_ID_RE = re.compile(r"^[a-v0-9]{5,1024}$")
_DATE_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
_DATETIME_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})?$")

# Event fields a client may write.  Read-only ones (kind, etag, htmlLink, created, updated,
# creator, organizer, hangoutLink, locked, recurringEventId) and id/iCalUID outside of insert
# are ignored, so a read-modify-write round trip works as it does against Google.
_WRITABLE = (
    "summary", "description", "location", "colorId", "start", "end", "endTimeUnspecified",
    "recurrence", "originalStartTime", "transparency", "visibility", "sequence", "attendees",
    "attendeesOmitted", "extendedProperties", "gadget", "anyoneCanAddSelf",
    "guestsCanInviteOthers", "guestsCanModify", "guestsCanSeeOtherGuests", "privateCopy",
    "reminders", "source", "attachments", "conferenceData", "eventType", "status",
    "workingLocationProperties", "outOfOfficeProperties", "focusTimeProperties",
    "birthdayProperties", "eventLabelId",
)
# Output order of an event resource (Google's own order, roughly).
_FIELD_ORDER = (
    "kind", "etag", "id", "status", "htmlLink", "created", "updated", "summary", "description",
    "location", "colorId", "creator", "organizer", "start", "end", "endTimeUnspecified",
    "recurrence", "recurringEventId", "originalStartTime", "transparency", "visibility", "iCalUID",
    "sequence",
    "attendees", "attendeesOmitted", "extendedProperties", "gadget", "anyoneCanAddSelf",
    "guestsCanInviteOthers", "guestsCanModify", "guestsCanSeeOtherGuests", "privateCopy",
    "reminders", "source", "attachments", "conferenceData", "eventType",
    "workingLocationProperties", "outOfOfficeProperties", "focusTimeProperties",
    "birthdayProperties", "eventLabelId",
)
_ENUMS = {
    "status": ("confirmed", "tentative", "cancelled"),
    "transparency": ("opaque", "transparent"),
    "visibility": ("default", "public", "private", "confidential"),
    "eventType": ("default", "birthday", "focusTime", "fromGmail", "outOfOffice",
                  "workingLocation"),
}
_SYNC_EXCLUSIVE = ("iCalUID", "orderBy", "privateExtendedProperty", "q",
                   "sharedExtendedProperty", "timeMin", "timeMax", "updatedMin")
# Query parameters that do not shape the result set (left out of the page-token check).
_NEUTRAL_PARAMS = {"pageToken", "maxResults", "alt", "fields", "prettyPrint", "quotaUser", "key",
                   "userIp", "oauth_token", "access_token", "callback", "upload_protocol",
                   "uploadType", "$.xgafv", "alwaysIncludeEmail", "maxAttendees"}


class SandboxApiError(Exception):
    """A Calendar API error; raised by in-process helpers, turned into a response over HTTP."""

    def __init__(self, status: int, message: str, reason: str | None = None, *,
                 domain: str | None = None, location: str | None = None,
                 location_type: str | None = None) -> None:
        super().__init__(f"{status} {reason or ''}: {message}")
        self.status = status
        self.message = message
        self.reason = reason
        self.domain = domain
        self.location = location
        self.location_type = location_type


def _bad_request() -> SandboxApiError:
    return SandboxApiError(400, "Bad Request", "badRequest")


def _invalid_param(name: str, message: str = "Invalid Value") -> SandboxApiError:
    return SandboxApiError(400, message, "invalid", location=name, location_type="parameter")


def _check_freebusy_span(time_min: datetime, time_max: datetime) -> None:
    """Refuse a freeBusy range longer than 90 days, as Google does.

    Sourced [2°]: the message "The requested time range is too long." with reason
    ``timeRangeTooLong`` in a 400 (Cal.com's PRs calcom/cal.diy#11696 and #11962, which
    name the 90-day maximum, and other projects quoting the body they got).  Guessed [?]:
    that exactly 90 days is still accepted (Cal.com splits into 90-day pieces), that the
    span is elapsed time rather than calendar days, the ``calendar`` domain and the
    ``timeMax`` location (copied from ``timeRangeEmpty``).
    """
    if time_max - time_min > FREEBUSY_MAX_SPAN:
        raise SandboxApiError(400, "The requested time range is too long.", "timeRangeTooLong",
                              location="timeMax", location_type="parameter")


def _refuse_calendars_beyond_limit(items: list[Any], calendars: JSON, limit: int) -> None:
    """Answer every calendar past the first ``limit`` with Google's per-calendar
    ``tooManyCalendarsRequested`` error instead of its busy time (still inside the 200).

    Sourced [src]: ``calendarExpansionMax`` "Maximum value is 50", and the reason
    ``tooManyCalendarsRequested`` ("The number of calendars requested is too large for a
    single query") among ``calendars.(key).errors[]`` (discovery document).  Guessed [?]:
    that the first ``limit`` calendars are still answered (the field's wording, "maximal
    number of calendars for which FreeBusy information is to be provided") and the
    ``usageLimits`` domain.  Either way a client must read each calendar's ``errors``:
    an empty ``busy`` next to an error does not mean free.
    """
    seen: list[str] = []
    for item in items:
        if item["id"] not in seen:
            seen.append(item["id"])
    for cal_id in seen[limit:]:
        calendars[cal_id] = {"errors": [{"domain": "usageLimits", "reason": "tooManyCalendarsRequested"}],
                             "busy": []}


# -- OAuth helpers ---------------------------------------------------------------------------

def _token_error(error: str, description: str, status: int = 400) -> Response:
    """The token endpoint's error body (RFC 6749 §5.2), as oauth2.googleapis.com sends it."""
    return Response(status, {"error": error, "error_description": description})


def _token_response(body: JSON) -> Response:
    return Response(200, body, {"Cache-Control": "no-cache, no-store, max-age=0, must-revalidate",
                                "Pragma": "no-cache"})


def _is_loopback_redirect(uri: str) -> bool:
    """Whether ``uri`` is a loopback redirect a desktop client may use (any port and path)."""
    try:
        parts = urlsplit(uri)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return False
    return (parts.scheme == "http" and parts.hostname in ("127.0.0.1", "::1", "localhost")
            and not parts.fragment)


def _known_scope(scope: str) -> bool:
    return scope in _OPENID_SCOPES or (scope.startswith("https://www.googleapis.com/auth/")
                                       and len(scope) > len("https://www.googleapis.com/auth/"))


def _pkce_challenge(verifier: str, method: str) -> str:
    """RFC 7636 §4.2: S256 is BASE64URL(SHA256(verifier)) without padding; plain is the verifier."""
    if method == "plain":
        return verifier
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).decode().rstrip("=")


def _unb64url(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError) as exc:
        raise ValueError(str(exc)) from None


def _rs256_valid(public_key: Any, signing_input: str, signature: bytes) -> bool:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    try:
        public_key.verify(signature, signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def _write_json(path: Path, data: JSON) -> Path:
    """Write a credentials file with mode 0600."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle, indent=2)
    os.chmod(path, 0o600)
    return path


# -- time helpers ---------------------------------------------------------------------------

def _utc(dt: datetime) -> datetime:
    return dt.astimezone(timezone.utc)


def _ms(dt: datetime) -> str:
    """RFC3339 UTC with milliseconds, as Google renders created/updated."""
    dt = _utc(dt)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def _local(dt: datetime, tz: ZoneInfo) -> str:
    """RFC3339 in ``tz`` without fractional seconds; a zero offset is written ``Z``."""
    local = dt.astimezone(tz)
    offset = local.utcoffset() or timedelta(0)
    text = local.strftime("%Y-%m-%dT%H:%M:%S")
    if offset == timedelta(0):
        return text + "Z"
    total = int(offset.total_seconds())
    sign = "+" if total >= 0 else "-"
    total = abs(total)
    return f"{text}{sign}{total // 3600:02d}:{(total % 3600) // 60:02d}"


def _parse_rfc3339(text: Any, *, offset_required: bool = True,
                   tz: ZoneInfo | None = None) -> datetime | None:
    """Strict RFC3339 date-time; None when malformed.  Without an offset ``tz`` is used."""
    if not isinstance(text, str):
        return None
    m = _DATETIME_RE.match(text.strip())
    if not m:
        return None
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    frac, off = m.group(7), m.group(8)
    micro = int((frac[1:] + "000000")[:6]) if frac else 0
    try:
        naive = datetime(year, month, day, hour, minute, second, micro)
    except ValueError:
        return None
    if off is None:
        if offset_required or tz is None:
            return None
        return naive.replace(tzinfo=tz)
    if off in ("Z", "z"):
        return naive.replace(tzinfo=timezone.utc)
    sign = 1 if off[0] == "+" else -1
    hours, minutes = int(off[1:3]), int(off[4:6])
    if hours > 23 or minutes > 59:
        return None
    return naive.replace(tzinfo=timezone(sign * timedelta(hours=hours, minutes=minutes)))


def _parse_date(text: Any) -> date | None:
    if not isinstance(text, str):
        return None
    m = _DATE_RE.match(text)
    if not m:
        return None
    try:
        return date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except ValueError:
        return None


def _zone(name: Any) -> ZoneInfo | None:
    if not isinstance(name, str) or not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _midnight(d: date, tz: ZoneInfo) -> datetime:
    return datetime(d.year, d.month, d.day, tzinfo=tz).astimezone(timezone.utc)


# -- JSON helpers ---------------------------------------------------------------------------

def _merge_patch(target: Any, patch: Any) -> Any:
    """Google patch semantics: objects merge recursively, null deletes, arrays and scalars
    replace.  Never mutates ``target`` (stored resources are shared with responses)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _merge_patch(result.get(key), value)
    return result


def _strip_nulls(value: Any) -> Any:
    """A full-replace body: null means absent."""
    if isinstance(value, dict):
        return {k: _strip_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_strip_nulls(v) for v in value]
    return value


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# -- batch wire format ----------------------------------------------------------------------
#
# A batch request is ``multipart/mixed``; each part is ``Content-Type: application/http`` (plus an
# optional ``Content-ID``) followed by a whole HTTP request whose target is a path.  Clients write
# CRLF or bare LF line ends (google-api-python-client writes LF, but CRLF before the inner body)
# and fold long headers such as its ``Content-ID: <uuid + id>``, so both are accepted.

class _BatchParseError(ValueError):
    pass


@dataclass
class _BatchCall:
    content_id: str | None
    method: str
    target: str
    headers: dict[str, str]  # lower-cased names
    body: bytes


_BLANK_LINE = re.compile(r"\r?\n\r?\n")
_LINE_END = re.compile(r"\r?\n")
_REQUEST_LINE = re.compile(r"^([A-Za-z]+)[ \t]+(\S+)(?:[ \t]+HTTP/\d(?:\.\d)?)?[ \t]*$")


def _header_block(lines: list[str], what: str) -> dict[str, str]:
    """Header lines (unfolded as RFC 5322 says) -> lower-cased name: value."""
    headers: dict[str, str] = {}
    last: str | None = None
    for line in lines:
        if line[:1] in (" ", "\t"):
            if last is None:
                raise _BatchParseError(f"{what} starts with a continuation line")
            headers[last] += line
            continue
        name, sep, value = line.partition(":")
        name = name.strip().lower()
        if not sep or not name:
            raise _BatchParseError(f"{what} has a malformed header line")
        headers[name] = value
        last = name
    return {k: v.strip() for k, v in headers.items()}


def _batch_parts(content_type: str, raw: bytes) -> list[str]:
    """Split a multipart/mixed body into its parts (RFC 2046: the line end before a delimiter
    belongs to the delimiter; the preamble and epilogue are ignored)."""
    ctype = email.message.Message()
    ctype["content-type"] = content_type
    boundary = ctype.get_param("boundary") if ctype.get_content_type() == "multipart/mixed" else None
    if not isinstance(boundary, str) or not boundary:
        raise _BatchParseError("Content-Type must be multipart/mixed with a boundary")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _BatchParseError("body is not UTF-8") from None
    delimiter = re.compile(r"(?:\A|\r?\n)--" + re.escape(boundary) + r"(--)?[ \t]*(?:\r?\n|\Z)")
    parts: list[str] = []
    start: int | None = None
    for match in delimiter.finditer(text):
        if start is not None:
            parts.append(text[start:match.start()])
        if match.group(1):
            if not parts:
                raise _BatchParseError("0 items")
            return parts
        start = match.end()
    if start is None:
        raise _BatchParseError("0 items")
    raise _BatchParseError("multipart body has no close delimiter")


def _batch_call(part: str) -> _BatchCall:
    """One part: its MIME headers, a blank line, then the HTTP request it carries."""
    split = _BLANK_LINE.search(part)
    if split is None:
        raise _BatchParseError("part has no HTTP request")
    mime = _header_block(_LINE_END.split(part[:split.start()]), "part")
    if mime.get("content-type", "").split(";")[0].strip().lower() != "application/http":
        raise _BatchParseError("part Content-Type must be application/http")
    http = part[split.end():]
    split = _BLANK_LINE.search(http)
    head, body = (http[:split.start()], http[split.end():]) if split else (http, "")
    lines = _LINE_END.split(head.strip("\r\n"))
    request_line = _REQUEST_LINE.match(lines[0])
    if request_line is None or not request_line.group(2).startswith("/"):
        raise _BatchParseError("part has a malformed request line (the target must be a path)")
    return _BatchCall(content_id=mime.get("content-id"), method=request_line.group(1).upper(),
                      target=request_line.group(2), headers=_header_block(lines[1:], "request"),
                      body=body.encode("utf-8"))


def _response_content_id(content_id: str | None) -> str:
    """Google echoes ``<x>`` as ``<response-x>`` (and no id as a bare ``response-``)."""
    if not content_id:
        return "response-"
    if content_id.startswith("<") and content_id.endswith(">"):
        return f"<response-{content_id[1:-1]}>"
    return f"response-{content_id}"


# -- recurrence -------------------------------------------------------------------------------
# Google expands a series in the zone of its ``start.timeZone`` (required for recurring timed
# events), so a weekly 09:00 Europe/Warsaw event stays at 09:00 local across DST.  Expansion
# runs on naive wall-clock times with python-dateutil's rruleset; the zone is attached to each
# occurrence afterwards, which is exactly "same wall time, that day's offset".

MAX_INSTANCES = 730  # [guess] occurrences expanded per series when no timeMax bounds a query
_STAMP_DATE_RE = re.compile(r"^\d{8}$")
_STAMP_UTC_RE = re.compile(r"^\d{8}T\d{6}Z$")
_STAMP_LOCAL_RE = re.compile(r"^\d{8}T\d{6}$")
_UNTIL_UTC_RE = re.compile(r"UNTIL=(\d{8}T\d{6})Z", re.IGNORECASE)


@dataclass
class _Series:
    """A recurring event's rules, ready to expand: naive wall-clock times in ``zone``."""

    rules: rruleset
    zone: ZoneInfo
    duration: timedelta   # timed: end - start; all-day: whole days
    all_day: bool


def _wall(dt: datetime, zone: ZoneInfo) -> datetime:
    """An aware instant as a naive wall-clock time in ``zone`` (what the rules expand on)."""
    return dt.astimezone(zone).replace(tzinfo=None)


def _recurrence_dates(line: str, head: str, zone: ZoneInfo, at: time) -> list[datetime]:
    """The values of an RDATE/EXDATE line as naive wall-clock times in the series' zone.

    ``TZID=`` names the values' zone, a trailing ``Z`` means UTC, a bare date means that day
    at the series' start time.
    """
    params = dict(p.split("=", 1) for p in head.split(";")[1:] if "=" in p)
    value_zone = zone
    if "TZID" in params:
        value_zone = _zone(params["TZID"])
        if value_zone is None:
            raise ValueError(f"unknown TZID in {line!r}")
    out = []
    for raw in line.split(":", 1)[1].split(","):
        raw = raw.strip()
        if _STAMP_DATE_RE.match(raw):
            out.append(datetime.combine(datetime.strptime(raw, "%Y%m%d").date(), at))
        elif _STAMP_UTC_RE.match(raw):
            out.append(_wall(datetime.strptime(raw, "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc), zone))
        elif _STAMP_LOCAL_RE.match(raw):
            out.append(_wall(datetime.strptime(raw, "%Y%m%dT%H%M%S").replace(tzinfo=value_zone), zone))
        else:
            raise ValueError(f"bad date {raw!r} in {line!r}")
    return out


def _series_rules(recurrence: list[str], dtstart: datetime, zone: ZoneInfo) -> rruleset:
    """Build the rule set of a ``recurrence`` list (RRULE, EXRULE, RDATE, EXDATE lines).

    ``dtstart`` is naive wall-clock time in ``zone``; a UTC ``UNTIL`` is turned into that
    zone's wall time (dateutil wants UNTIL and DTSTART both naive or both aware).  Raises
    ValueError for a line it cannot read.
    """
    rules = rruleset()
    for line in recurrence:
        head = line.split(":", 1)[0]
        name = head.split(";", 1)[0].upper()
        if ":" not in line:
            raise ValueError(f"no value in {line!r}")
        if name in ("RRULE", "EXRULE"):
            text = _UNTIL_UTC_RE.sub(lambda m: "UNTIL=" + _wall(datetime.strptime(
                m.group(1), "%Y%m%dT%H%M%S").replace(tzinfo=timezone.utc), zone).strftime("%Y%m%dT%H%M%S"),
                line.split(":", 1)[1])
            rule = rrulestr(text, dtstart=dtstart)
            (rules.rrule if name == "RRULE" else rules.exrule)(rule)  # type: ignore[operator]
        elif name in ("RDATE", "EXDATE"):
            for value in _recurrence_dates(line, head, zone, dtstart.time()):
                (rules.rdate if name == "RDATE" else rules.exdate)(value)
        else:
            raise ValueError(f"unknown recurrence line {line!r}")
    return rules


def _instance_id(series_id: str, start: datetime, all_day: bool, zone: ZoneInfo) -> str:
    """Google's id of one occurrence: ``<id>_<YYYYMMDD>`` (all-day) or ``<id>_<UTC stamp>``."""
    if all_day:
        return f"{series_id}_{_wall(start, zone):%Y%m%d}"
    return f"{series_id}_{_utc(start):%Y%m%dT%H%M%SZ}"


# -- state ------------------------------------------------------------------------------------

@dataclass
class _Event:
    id: str
    index: int              # position in the calendar's creation order
    resource: JSON          # read format; replaced, never mutated, on each write
    change: int             # global change counter at the last write
    start: datetime         # UTC instant (all-day: midnight in the calendar's zone)
    end: datetime
    all_day: bool
    updated: datetime
    occurrence: int = 0     # an instance of a series: its original start (µs since epoch)

    @property
    def cancelled(self) -> bool:
        return self.resource.get("status") == "cancelled"


@dataclass
class _Calendar:
    id: str
    summary: str
    time_zone: str
    tz: ZoneInfo
    created: datetime
    updated: datetime
    change: int = 0
    events: dict[str, _Event] = field(default_factory=dict)
    order: list[_Event] = field(default_factory=list)
    ical_uids: dict[str, str] = field(default_factory=dict)


@dataclass
class _AuthCode:
    """An authorization code and the request it answers."""

    client_id: str
    redirect_uri: str
    scope: str
    challenge: str | None
    method: str | None
    offline: bool        # a refresh token comes with it
    expires: datetime
    used: bool = False


@dataclass
class _ServiceAccount:
    email: str
    public_key: Any      # cryptography RSAPublicKey
    delegation: bool     # domain-wide delegation granted (JWTs may carry ``sub``)


@dataclass
class _When:
    all_day: bool
    instant: datetime
    rendered: JSON
    own_zone: bool


class GoogleCalendarSandbox(SandboxServer):
    """In-memory Google Calendar API v3 on a loopback port."""

    name = "google"

    #: Whether injected faults (``fail_after_n``, ``rate_limit_per_s``, ``fail_rate``) are also
    #: decided per inner call of a batch, each counting as one API call (Google counts a batch
    #: of n as n requests against quota and answers rate-limit errors per part).  The batch
    #: request itself is always subject to them, like any request reaching the front end.
    batch_part_faults: bool = True

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        #: Zero-arg callable returning the sandbox's "now" (aware UTC); tests may replace it.
        self.clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)
        self.calendar_id = DEFAULT_CALENDAR_ID
        #: The one registered OAuth client ("Desktop app" type).
        self.client_id = DEFAULT_CLIENT_ID
        self.client_secret = DEFAULT_CLIENT_SECRET
        super().__init__(host, port)

    # -- state ------------------------------------------------------------------------------
    def reset_state(self) -> None:
        with self.lock:
            self._calendars: dict[str, _Calendar] = {}
            self._primary: str | None = None
            self._seq = 0                                   # global change counter
            self._sync_tokens: dict[str, tuple[str, int]] = {}
            self.refresh_tokens: set[str] = {DEFAULT_REFRESH_TOKEN}
            # access token -> (expiry, grant: the refresh token it came from, ONLINE_GRANT,
            # or SERVICE_ACCOUNT_GRANT + email)
            self.access_tokens: dict[str, tuple[datetime, str]] = {}
            self._auth_codes: dict[str, _AuthCode] = {}
            self._refresh_grants: dict[str, _AuthCode] = {}  # refresh token -> its grant
            self._consented: set[str] = set()                # clients the user has approved
            self._service_accounts: dict[str, _ServiceAccount] = {}
            #: False: the user clicks "Cancel" (the redirect carries error=access_denied).
            self.user_consents = True
            #: False: no refresh token is ever issued (as Google does when re-authorising
            #: without prompt=consent).
            self.issue_refresh_tokens = True
            #: Calendars one freeBusy request may name (Google: 50); tests lower it to make
            #: the emulator refuse a group bsync thought small enough.
            self.freebusy_max_calendars = FREEBUSY_MAX_CALENDARS
            self.add_calendar(self.calendar_id, "UTC", summary=DEFAULT_CALENDAR_SUMMARY)

    def _now(self) -> datetime:
        return _utc(self.clock())

    def add_calendar(self, calendar_id: str, time_zone: str = "UTC",
                     summary: str | None = None) -> str:
        """Create an empty calendar (the first one is also ``primary``)."""
        tz = _zone(time_zone)
        if tz is None:
            raise ValueError(f"unknown time zone {time_zone!r}")
        with self.lock:
            if calendar_id in self._calendars or calendar_id == "primary":
                raise ValueError(f"calendar {calendar_id!r} already exists")
            now = self._now()
            self._calendars[calendar_id] = _Calendar(
                id=calendar_id, summary=summary if summary is not None else calendar_id,
                time_zone=time_zone, tz=tz, created=now, updated=now)
            if self._primary is None:
                self._primary = calendar_id
        return calendar_id

    def _calendar(self, calendar_id: str) -> _Calendar:
        key = self._primary if calendar_id == "primary" else calendar_id
        cal = self._calendars.get(key or "")
        if cal is None:
            raise SandboxApiError(404, "Not Found", "notFound")
        return cal

    def _next_change(self) -> int:
        self._seq += 1
        return self._seq

    # -- errors and auth ---------------------------------------------------------------------
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

    def _api_error(self, exc: SandboxApiError) -> Response:
        return self.error(exc.status, exc.message, exc.reason, domain=exc.domain,
                          location=exc.location, location_type=exc.location_type)

    def not_found_route(self, request: Request) -> Response:
        return self.error(404, "Not Found", "notFound")

    def check_auth(self, request: Request) -> Response | None:
        # A batch is authorised call by call: the outer Authorization header is applied to
        # inner calls that carry none, and a bad token makes each of them answer 401.
        if request.path in _UNAUTHENTICATED_PATHS:
            return None
        header = request.headers.get("authorization", "").strip()
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            body = {"error": {
                "code": 401, "message": MSG_MISSING_CREDENTIALS,
                "errors": [{"message": "Login Required.", "domain": "global", "reason": "required",
                            "location": "Authorization", "locationType": "header"}],
                "status": "UNAUTHENTICATED"}}
            return Response(401, body, {"WWW-Authenticate": WWW_AUTH_REALM})
        with self.lock:
            if self._token_valid(token):
                return None
        body = {"error": {
            "code": 401, "message": MSG_INVALID_CREDENTIALS,
            "errors": [{"message": "Invalid Credentials", "domain": "global", "reason": "authError",
                        "location": "Authorization", "locationType": "header"}],
            "status": "UNAUTHENTICATED"}}
        return Response(401, body, {"WWW-Authenticate": WWW_AUTH_REALM + ', error="invalid_token"'})

    def _token_valid(self, token: str) -> bool:
        if token == STATIC_TOKEN:
            return True
        entry = self.access_tokens.get(token)
        if entry is None:
            return False
        expiry, grant = entry
        if grant.startswith(SERVICE_ACCOUNT_GRANT):
            live = grant[len(SERVICE_ACCOUNT_GRANT):] in self._service_accounts
        else:
            live = grant == ONLINE_GRANT or grant in self.refresh_tokens
        return live and self._now() < expiry

    def revoke_refresh_token(self, token: str) -> None:
        """Revoke a refresh token and every access token issued from it."""
        with self.lock:
            self.refresh_tokens.discard(token)
            for access, (_, refresh) in list(self.access_tokens.items()):
                if refresh == token:
                    del self.access_tokens[access]

    def expire_sync_tokens(self) -> None:
        """Invalidate every issued sync token (the next incremental list answers 410)."""
        with self.lock:
            self._sync_tokens.clear()

    # -- OAuth 2.0: authorization endpoint, token endpoint, service accounts --------------------
    # Google's authorization server lives on accounts.google.com and oauth2.googleapis.com; the
    # sandbox serves both on its own port, so one URL is all a config needs.  The user behind
    # the authorization endpoint consents at once (``user_consents = False`` makes them deny).

    def _auth_page(self, status: int, error: str, message: str) -> Response:
        """The error page Google's authorization endpoint shows instead of redirecting.

        Google answers a bad client or redirect URI with a page ("Error 400:
        redirect_uri_mismatch"), never with a redirect, since the redirect target is untrusted.
        """
        body = (f"<!doctype html><title>Error {status}: {error}</title>"
                f"<h1>Error {status}: {error}</h1><p>{html.escape(message)}</p>")
        return Response(status, body, content_type="text/html; charset=utf-8")

    @route("GET", "/o/oauth2/auth")
    def oauth_authorize(self, request: Request) -> Response:
        return self._authorize(request)

    @route("GET", "/o/oauth2/v2/auth")
    def oauth_authorize_v2(self, request: Request) -> Response:
        return self._authorize(request)

    def _authorize(self, request: Request) -> Response:
        client_id = request.arg("client_id")
        if not client_id:
            return self._auth_page(400, "invalid_request", "Missing required parameter: client_id")
        if client_id != self.client_id:
            return self._auth_page(401, "invalid_client", "The OAuth client was not found.")
        redirect_uri = request.arg("redirect_uri")
        if not redirect_uri:
            return self._auth_page(400, "invalid_request", "Missing required parameter: redirect_uri")
        if redirect_uri in OOB_REDIRECT_URIS:
            return self._auth_page(400, "invalid_request", MSG_OOB_BLOCKED)
        if not _is_loopback_redirect(redirect_uri):
            return self._auth_page(400, "redirect_uri_mismatch", (
                f"The redirect URI in the request, {redirect_uri}, does not match the ones "
                "authorized for the OAuth client. A desktop client may only redirect to a "
                "loopback address: http://127.0.0.1:PORT, http://[::1]:PORT or "
                "http://localhost:PORT."))
        state = request.arg("state")

        def back(**params: str) -> Response:
            """Send the browser to the redirect URI (RFC 6749 §4.1.2), state first as Google does."""
            query = urlencode(({"state": state} if state is not None else {}) | params)
            location = redirect_uri + ("&" if "?" in redirect_uri else "?") + query
            return Response(302, b"", {"Location": location}, content_type="text/html; charset=utf-8")

        def refuse(error: str, description: str | None = None) -> Response:
            return back(error=error, **({"error_description": description} if description else {}))

        response_type = request.arg("response_type")
        if not response_type:
            return refuse("invalid_request", "Missing required parameter: response_type")
        if response_type != "code":
            return refuse("unsupported_response_type", f"Invalid response_type: {response_type}")
        scopes = (request.arg("scope") or "").split()
        if not scopes:
            return refuse("invalid_request", "Missing required parameter: scope")
        unknown = [s for s in scopes if not _known_scope(s)]
        if unknown:
            return refuse("invalid_scope", f"Some requested scopes were invalid. {{invalid={unknown}}}")
        access_type = request.arg("access_type") or "online"
        if access_type not in ("online", "offline"):
            return refuse("invalid_request", f"Invalid access_type: {access_type}")
        prompt = set((request.arg("prompt") or "").split())
        if not prompt <= {"none", "consent", "select_account"} or ("none" in prompt and len(prompt) > 1):
            return refuse("invalid_request", f"Invalid prompt: {request.arg('prompt')}")
        challenge = request.arg("code_challenge")
        method = request.arg("code_challenge_method")
        if method is not None and not challenge:
            return refuse("invalid_request", "Missing code_challenge.")
        if challenge is not None:
            method = method or "plain"
            if method not in ("S256", "plain"):
                return refuse("invalid_request", f"Invalid code_challenge_method: {method}")
            if not _PKCE_RE.match(challenge):
                return refuse("invalid_request", "Invalid code_challenge.")
        if not self.user_consents:
            return refuse("access_denied")
        granted_before = client_id in self._consented
        if "none" in prompt and not granted_before:
            return refuse("consent_required")
        self._consented.add(client_id)
        # Google hands out a refresh token for offline access on the first consent, and again
        # only when the consent screen is shown (prompt=consent).
        offline = (access_type == "offline" and self.issue_refresh_tokens
                   and ("consent" in prompt or not granted_before))
        code = "4/0A" + secrets.token_urlsafe(60)
        scope = " ".join(dict.fromkeys(scopes))
        self._auth_codes[code] = _AuthCode(
            client_id=client_id, redirect_uri=redirect_uri, scope=scope, challenge=challenge,
            method=method, offline=offline, expires=self._now() + timedelta(seconds=AUTH_CODE_LIFETIME))
        return back(code=code, scope=scope)

    def _client_credentials(self, request: Request, form: dict[str, str]) -> tuple[str | None, str | None]:
        """client_id and client_secret from HTTP Basic (client_secret_basic) or the form body."""
        header = request.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "basic" and value.strip():
            try:
                decoded = base64.b64decode(value.strip()).decode("utf-8")
            except (ValueError, UnicodeDecodeError):
                return None, None
            user, _, password = decoded.partition(":")
            return unquote_plus(user), unquote_plus(password)
        return form.get("client_id"), form.get("client_secret")

    def _client_error(self, client_id: str, secret: str | None) -> Response | None:
        if client_id != self.client_id:
            return _token_error("invalid_client", "The OAuth client was not found.", 401)
        if secret != self.client_secret:
            return _token_error("invalid_client", "Unauthorized", 401)
        return None

    def _issue_access_token(self, grant: str) -> str:
        access = "ya29.sandbox-" + secrets.token_urlsafe(24)
        self.access_tokens[access] = (self._now() + timedelta(seconds=ACCESS_TOKEN_LIFETIME), grant)
        return access

    @route("POST", "/token")
    def oauth_token(self, request: Request) -> Response:
        form = {k: v[0] for k, v in parse_qs(request.body.decode("utf-8", "replace"),
                                              keep_blank_values=True).items()}
        grant = form.get("grant_type")
        if grant == "refresh_token":
            return self._refresh_grant(request, form)
        if grant == "authorization_code":
            return self._code_grant(request, form)
        if grant == JWT_BEARER_GRANT:
            return self._jwt_grant(form)
        return _token_error("unsupported_grant_type", f"Invalid grant_type: {grant or ''}")

    def _refresh_grant(self, request: Request, form: dict[str, str]) -> Response:
        client_id, secret = self._client_credentials(request, form)
        if not client_id:
            return _token_error("invalid_request", "Could not determine client ID from request.")
        refresh = form.get("refresh_token")
        if not refresh:
            return _token_error("invalid_request", "Missing required parameter: refresh_token")
        # Refresh tokens from the authorization endpoint are bound to the sandbox's client;
        # the seeded DEFAULT_REFRESH_TOKEN predates it and takes any client credentials.
        bound = self._refresh_grants.get(refresh)
        if bound is not None:
            failed = self._client_error(client_id, secret)
            if failed is not None:
                return failed
        if refresh not in self.refresh_tokens:
            return _token_error("invalid_grant", "Token has been expired or revoked.")
        access = self._issue_access_token(refresh)
        scope = bound.scope if bound is not None else form.get("scope") or DEFAULT_SCOPE
        return _token_response({"access_token": access, "expires_in": ACCESS_TOKEN_LIFETIME,
                                "scope": scope, "token_type": "Bearer"})

    def _code_grant(self, request: Request, form: dict[str, str]) -> Response:
        client_id, secret = self._client_credentials(request, form)
        if not client_id:
            return _token_error("invalid_request", "Could not determine client ID from request.")
        failed = self._client_error(client_id, secret)
        if failed is not None:
            return failed
        code = form.get("code")
        if not code:
            return _token_error("invalid_request", "Missing required parameter: code")
        entry = self._auth_codes.get(code)
        if entry is None or entry.used or entry.client_id != client_id or self._now() >= entry.expires:
            return _token_error("invalid_grant", "Bad Request")
        entry.used = True  # single use, even when the exchange below fails
        redirect_uri = form.get("redirect_uri")
        if not redirect_uri:
            return _token_error("invalid_request", "Missing parameter: redirect_uri")
        if redirect_uri != entry.redirect_uri:
            return _token_error("redirect_uri_mismatch", "Bad Request")
        verifier = form.get("code_verifier")
        if entry.challenge is None:
            if verifier:
                return _token_error("invalid_grant", "code_verifier or verifier is not needed.")
        elif not verifier:
            return _token_error("invalid_grant", "Missing code verifier.")
        elif _pkce_challenge(verifier, entry.method or "plain") != entry.challenge:
            return _token_error("invalid_grant", "Invalid code verifier.")
        body: JSON = {}
        if entry.offline:
            refresh = "1//0" + secrets.token_urlsafe(72)
            self.refresh_tokens.add(refresh)
            self._refresh_grants[refresh] = entry
            body["access_token"] = self._issue_access_token(refresh)
        else:  # an online grant: the access token lives until it expires
            body["access_token"] = self._issue_access_token(ONLINE_GRANT)
        body["expires_in"] = ACCESS_TOKEN_LIFETIME
        if entry.offline:
            body["refresh_token"] = refresh
        body["scope"] = entry.scope
        body["token_type"] = "Bearer"
        return _token_response(body)

    def _jwt_grant(self, form: dict[str, str]) -> Response:
        """The service-account grant (RFC 7523): an RS256 JWT signed with the account's key."""
        assertion = form.get("assertion")
        if not assertion:
            return _token_error("invalid_request", "Missing required parameter: assertion")
        try:
            head_b64, claims_b64, sig_b64 = assertion.split(".")
            header = json.loads(_unb64url(head_b64))
            claims = json.loads(_unb64url(claims_b64))
            signature = _unb64url(sig_b64)
        except ValueError:
            return _token_error("invalid_grant", "Invalid JWT Signature.")
        if not isinstance(header, dict) or not isinstance(claims, dict) or header.get("alg") != "RS256":
            return _token_error("invalid_grant", "Invalid JWT Signature.")
        account = self._service_accounts.get(str(claims.get("iss")))
        if account is None or not _rs256_valid(account.public_key, f"{head_b64}.{claims_b64}", signature):
            return _token_error("invalid_grant", "Invalid JWT Signature.")
        now = self._now().timestamp()
        iat, exp = claims.get("iat"), claims.get("exp")
        if (not isinstance(iat, (int, float)) or not isinstance(exp, (int, float))
                or iat > now + JWT_SKEW or exp < now - JWT_SKEW or exp - iat > 3600):
            return _token_error("invalid_grant", MSG_JWT_TIMEFRAME)
        if claims.get("aud") not in (*GOOGLE_TOKEN_AUDIENCES, self.url + "/token"):
            return _token_error("invalid_grant", "Invalid JWT: Failed audience check.")
        if not claims.get("scope"):
            return _token_error("invalid_scope", "Invalid OAuth scope or ID token audience provided.")
        if claims.get("sub") and not account.delegation:
            return _token_error("unauthorized_client", MSG_NO_DELEGATION, 401)
        access = self._issue_access_token(SERVICE_ACCOUNT_GRANT + account.email)
        return _token_response({"access_token": access, "expires_in": ACCESS_TOKEN_LIFETIME,
                                "token_type": "Bearer"})

    # -- in-process OAuth helpers ---------------------------------------------------------------
    def expire_access_tokens(self) -> None:
        """Make every access token issued so far expired (the next use answers 401)."""
        with self.lock:
            past = self._now() - timedelta(seconds=1)
            for access, (_, grant) in list(self.access_tokens.items()):
                self.access_tokens[access] = (past, grant)

    def client_secrets(self) -> JSON:
        """An "installed" (Desktop app) OAuth client, as Google Cloud Console downloads it."""
        return {"installed": {
            "client_id": self.client_id,
            "project_id": "bsync-sandbox",
            "auth_uri": self.url + "/o/oauth2/auth",
            "token_uri": self.url + "/token",
            "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
            "client_secret": self.client_secret,
            "redirect_uris": ["http://localhost"],
        }}

    def write_client_secrets(self, path: str | os.PathLike[str]) -> Path:
        """Write :meth:`client_secrets` to ``path`` (what ``[google] credentials_file`` names)."""
        return _write_json(Path(path), self.client_secrets())

    def add_service_account(self, email: str, public_key_pem: bytes, *, delegation: bool = False) -> None:
        """Accept JWTs from ``email`` signed with the key of ``public_key_pem``.

        ``delegation`` allows domain-wide delegation (a ``sub`` claim), as a Workspace
        admin grants it.
        """
        from cryptography.hazmat.primitives.serialization import load_pem_public_key

        with self.lock:
            self._service_accounts[email] = _ServiceAccount(email, load_pem_public_key(public_key_pem), delegation)

    def remove_service_account(self, email: str) -> None:
        """Delete the account's key: its JWTs and access tokens stop working."""
        with self.lock:
            self._service_accounts.pop(email, None)

    def write_service_account_key(self, path: str | os.PathLike[str],
                                  email: str = DEFAULT_SERVICE_ACCOUNT, *, delegation: bool = False) -> Path:
        """Create a service account with a fresh RSA key and write its JSON key file (0600)."""
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        private_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption()).decode()
        public_pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo)
        self.add_service_account(email, public_pem, delegation=delegation)
        return _write_json(Path(path), {
            "type": "service_account",
            "project_id": "bsync-sandbox",
            "private_key_id": secrets.token_hex(20),
            "private_key": private_pem,
            "client_email": email,
            "client_id": str(secrets.randbelow(10**21)),
            "auth_uri": self.url + "/o/oauth2/auth",
            "token_uri": self.url + "/token",
            "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
            "client_x509_cert_url": "https://www.googleapis.com/robot/v1/metadata/x509/" + quote(email),
            "universe_domain": "googleapis.com",
        })

    # -- request plumbing ----------------------------------------------------------------------
    def _call(self, fn: Callable[[], Response]) -> Response:
        try:
            return fn()
        except SandboxApiError as exc:
            return self._api_error(exc)

    @staticmethod
    def _body(request: Request) -> JSON:
        if not request.body:
            return {}
        try:
            body = json.loads(request.body)
        except ValueError:
            raise SandboxApiError(400, "Parse Error", "parseError") from None
        if not isinstance(body, dict):
            raise SandboxApiError(400, "Parse Error", "parseError")
        return body

    @staticmethod
    def _flag(request: Request, name: str) -> bool | None:
        value = request.arg(name)
        if value is None or value == "":
            return None
        low = value.lower()
        if low in ("true", "1"):
            return True
        if low in ("false", "0"):
            return False
        raise _invalid_param(name, f"Invalid boolean value: '{value}'.")

    @staticmethod
    def _params(request: Request) -> tuple[str, str | None]:
        cal = unquote(request.params["calendar_id"])
        event = request.params.get("event_id")
        return cal, (unquote(event) if event is not None else None)

    # -- calendars.get -------------------------------------------------------------------------
    @route("GET", API + "/calendars/{calendar_id}")
    def calendars_get(self, request: Request) -> Response:
        def run() -> Response:
            cal = self._calendar(self._params(request)[0])
            return Response(200, {
                "kind": "calendar#calendar", "etag": f'"{cal.change or 1}"', "id": cal.id,
                "summary": cal.summary, "timeZone": cal.time_zone,
                "conferenceProperties": {"allowedConferenceSolutionTypes": ["hangoutsMeet"]}})
        return self._call(run)

    # -- events: HTTP ----------------------------------------------------------------------------
    @route("POST", API + "/calendars/{calendar_id}/events")
    def events_insert(self, request: Request) -> Response:
        def run() -> Response:
            cal = self._calendar(self._params(request)[0])
            body = self._body(request)
            ev = self._insert(cal, body, attachments=bool(self._flag(request, "supportsAttachments")),
                              conference=self._conference_version(request))
            return Response(200, ev.resource)
        return self._call(run)

    @route("GET", API + "/calendars/{calendar_id}/events/{event_id}")
    def events_get(self, request: Request) -> Response:
        def run() -> Response:
            cal_id, event_id = self._params(request)
            cal = self._calendar(cal_id)
            ev, _ = self._stored_or_instance(cal, event_id)
            if_none = request.headers.get("if-none-match")
            if if_none and if_none.strip() in (ev.resource["etag"], "*"):
                return Response(304, None)
            tz = self._request_zone(request, cal)
            return Response(200, self._render(ev, cal, tz, full=True))
        return self._call(run)

    @route("PATCH", API + "/calendars/{calendar_id}/events/{event_id}")
    def events_patch(self, request: Request) -> Response:
        return self._modify(request, patch=True)

    @route("PUT", API + "/calendars/{calendar_id}/events/{event_id}")
    def events_update(self, request: Request) -> Response:
        return self._modify(request, patch=False)

    def _modify(self, request: Request, *, patch: bool) -> Response:
        """events.patch (merge) and events.update (full replace) share everything else."""
        def run() -> Response:
            cal_id, event_id = self._params(request)
            cal = self._calendar(cal_id)
            ev, instance = self._stored_or_instance(cal, event_id)
            self._check_if_match(request, ev)
            body = self._body(request)
            ev = self._write(cal, ev, body, patch=patch,
                             attachments=bool(self._flag(request, "supportsAttachments")),
                             conference=self._conference_version(request))
            if instance:  # writing one occurrence makes it an exception of its own
                self._adopt_instance(cal, ev)
            return Response(200, ev.resource)
        return self._call(run)

    @route("DELETE", API + "/calendars/{calendar_id}/events/{event_id}")
    def events_delete(self, request: Request) -> Response:
        def run() -> Response:
            cal_id, event_id = self._params(request)
            cal = self._calendar(cal_id)
            ev, instance = self._stored_or_instance(cal, event_id)
            self._check_if_match(request, ev)
            self._delete(cal, ev)
            if instance:  # a deleted occurrence is a cancelled exception
                self._adopt_instance(cal, ev)
            return Response(204, None)
        return self._call(run)

    @route("GET", API + "/calendars/{calendar_id}/events")
    def events_list(self, request: Request) -> Response:
        return self._call(lambda: Response(200, self._list(request)))

    @route("GET", API + "/calendars/{calendar_id}/events/{event_id}/instances")
    def events_instances(self, request: Request) -> Response:
        return self._call(lambda: Response(200, self._instances_page(request)))

    @route("POST", API + "/freeBusy")
    def freebusy_query(self, request: Request) -> Response:
        return self._call(lambda: Response(200, self._freebusy(self._body(request))))

    # -- batch ------------------------------------------------------------------------------------
    @route("POST", BATCH_PATH)
    def batch(self, request: Request) -> Response:
        """Google's batch endpoint: each part is dispatched like a request of its own (faults,
        auth, routing) and answered, in order, as one part of a multipart/mixed 200.

        * Auth is per call: the outer ``Authorization`` applies to calls without their own,
          and a bad token answers each call 401 inside a 200 (never an outer 401).
        * Faults hit the batch request as a whole (latency too, once) and, unless
          ``batch_part_faults`` is off, each call again; calls then count as API calls for
          ``fail_after_n`` and the rate limit, and the batch request itself does not.
        * Calls run in order, under the server lock.  Each is recorded with ``batch=True``
          as it completes, so they precede the batch request's own row, which the base
          appends once the whole answer is ready.
        * More than 1000 calls, or a body that is not well-formed multipart/mixed with
          application/http parts, is a 400 and runs nothing.
        """
        try:
            calls = [_batch_call(part) for part in
                     _batch_parts(request.headers.get("content-type", ""), request.body)]
        except _BatchParseError as exc:
            message = (f"Failed to parse batch request, error: {exc}. "
                       f"Received batch body: ({len(request.body)}) bytes redacted")
            response = self.error(400, message, "badRequest")
            response.body["error"]["status"] = "INVALID_ARGUMENT"
            return response
        if len(calls) > MAX_BATCH_CALLS:
            response = self.error(400, f"A batch request cannot contain more than "
                                       f"{MAX_BATCH_CALLS} calls (got {len(calls)}).", "badRequest")
            response.body["error"]["status"] = "INVALID_ARGUMENT"
            return response
        if self.batch_part_faults:
            # Its calls are counted one by one below, so give back what the base charged the
            # envelope (it got here, so it passed: one count and one token were taken).
            with self.lock:
                self._api_count -= 1
                if self.faults.rate_limit_per_s:
                    self._bucket_tokens = min(self.faults.rate_limit_per_s,
                                              self._bucket_tokens + 1)
        boundary = "batch_" + secrets.token_urlsafe(18)
        out: list[bytes] = []
        for call in calls:
            response = self._batch_dispatch(request, call)
            head = [f"--{boundary}", "Content-Type: application/http",
                    f"Content-ID: {_response_content_id(call.content_id)}", ""]
            try:
                phrase = HTTPStatus(response.status).phrase
            except ValueError:
                phrase = "Unknown"
            head.append(f"HTTP/1.1 {response.status} {phrase}")
            payload = response.encode()
            if payload or response.status not in (204, 304):
                head.append(f"Content-Type: {response.content_type}")
            head += [f"{key}: {value}" for key, value in response.headers.items()]
            head += [f"Content-Length: {len(payload)}", "", ""]
            out.append("\r\n".join(head).encode() + payload + b"\r\n")
        out.append(f"--{boundary}--\r\n".encode())
        return Response(200, b"".join(out), content_type=f"multipart/mixed; boundary={boundary}")

    def _batch_dispatch(self, outer: Request, call: _BatchCall) -> Response:
        """Run one inner call as the base runs a request, and record it with ``batch=True``."""
        target = urlsplit(call.target)
        # The outer request's query parameters and headers (but not its Content-* ones) apply
        # to every call; the call's own values win.
        query = {k: list(v) for k, v in outer.query.items()}
        query.update(parse_qs(target.query, keep_blank_values=True))
        headers = {k: v for k, v in outer.headers.items() if not k.startswith("content-")}
        headers.update(call.headers)
        inner = Request(method=call.method, path=target.path, query=query, headers=headers,
                        body=call.body)
        response = self._injected_fault() if self.batch_part_faults else None
        if response is None:
            response = self.check_auth(inner)
        if response is None:
            if inner.path.startswith(API + "/"):
                response = self._route(inner)
            else:  # all calls must go to this API (no /token, no nested batch, no /_sandbox)
                response = self.not_found_route(inner)
        response.body = response.encode()
        with self.lock:
            self.requests.append(RecordedRequest(inner.method, inner.path, inner.query,
                                                 inner.json, response.status, batch=True))
        return response

    @staticmethod
    def _conference_version(request: Request) -> int:
        value = request.arg("conferenceDataVersion")
        if value in (None, ""):
            return 0
        try:
            version = int(value)
        except ValueError:
            raise _invalid_param("conferenceDataVersion") from None
        if version not in (0, 1):
            raise _invalid_param("conferenceDataVersion")
        return version

    @staticmethod
    def _check_if_match(request: Request, ev: _Event) -> None:
        expected = request.headers.get("if-match")
        if expected and expected.strip() not in (ev.resource["etag"], "*"):
            raise SandboxApiError(412, "Precondition Failed", "conditionNotMet",
                                  location="If-Match", location_type="header")

    def _request_zone(self, request: Request, cal: _Calendar) -> ZoneInfo:
        name = request.arg("timeZone")
        if not name:
            return cal.tz
        tz = _zone(name)
        if tz is None:
            raise _invalid_param("timeZone")
        return tz

    # -- events: core -------------------------------------------------------------------------------
    @staticmethod
    def _event(cal: _Calendar, event_id: str | None) -> _Event:
        ev = cal.events.get(event_id or "")
        if ev is None:
            raise SandboxApiError(404, "Not Found", "notFound")
        return ev

    def _insert(self, cal: _Calendar, body: JSON, *, attachments: bool = False,
                conference: int = 0) -> _Event:
        event_id = body.get("id")
        if event_id is not None:
            if not isinstance(event_id, str) or not _EVENT_ID_RE.match(event_id):
                raise SandboxApiError(400, "Invalid resource id value.", "invalid")
            if event_id in cal.events:  # ids are never freed, not even by delete
                raise SandboxApiError(409, "The requested identifier already exists.", "duplicate")
        ical_uid = body.get("iCalUID")
        if ical_uid is not None:
            if not isinstance(ical_uid, str) or not ical_uid:
                raise SandboxApiError(400, "Invalid iCalUID value.", "invalid")
            if ical_uid in cal.ical_uids:
                raise SandboxApiError(409, "The requested identifier already exists.", "duplicate")
        fields = self._writable(_strip_nulls(body), attachments, conference)
        fields.setdefault("status", "confirmed")
        if event_id is None:
            event_id = base64.b32hexencode(uuid.uuid4().bytes).decode().lower().rstrip("=")
        now = self._now()
        resource, when = self._compose(cal, event_id, fields, created=now, updated=now,
                                       sequence=self._client_sequence(fields, 0),
                                       ical_uid=ical_uid or f"{event_id}@google.com")
        change = self._next_change()
        resource["etag"] = self._etag(now, change)
        ev = _Event(id=event_id, index=len(cal.order), resource=resource, change=change,
                    start=when[0].instant, end=when[1].instant, all_day=when[0].all_day,
                    updated=now)
        cal.events[event_id] = ev
        cal.order.append(ev)
        cal.ical_uids[resource["iCalUID"]] = event_id
        self._touch(cal, now, change)
        return ev

    def _write(self, cal: _Calendar, ev: _Event, body: JSON, *, patch: bool,
               attachments: bool = False, conference: int = 0) -> _Event:
        old = ev.resource
        if patch:
            current = {k: old[k] for k in _WRITABLE if k in old}
            changes = {k: v for k, v in body.items() if k in _WRITABLE and k != "eventType"}
            if not attachments:
                changes.pop("attachments", None)
            if conference < 1:
                changes.pop("conferenceData", None)
            fields = self._writable(_merge_patch(current, changes), True, 1)
        else:
            fields = self._writable(_strip_nulls(body), attachments, conference)
            if "status" not in fields:
                # A full replace without status resets it to the default, except that it does
                # not resurrect a deleted event: that takes an explicit status (conservative).
                fields["status"] = "cancelled" if old.get("status") == "cancelled" else "confirmed"
            if "eventType" in old:  # immutable after creation
                fields["eventType"] = old["eventType"]
        client_sequence = self._client_sequence(fields, 0)
        now = self._now()
        resource, when = self._compose(cal, ev.id, fields,
                                       created=_parse_rfc3339(old["created"]) or now,
                                       updated=now, sequence=0, ical_uid=old["iCalUID"])
        if old.get("recurringEventId"):  # an exception stays an occurrence of its series
            resource.pop("recurrence", None)
            resource["recurringEventId"] = old["recurringEventId"]
            resource["originalStartTime"] = old["originalStartTime"]
            resource = {k: resource[k] for k in _FIELD_ORDER if k in resource}
        timing_changed = ((when[0].all_day, when[0].instant, when[1].instant)
                          != (ev.all_day, ev.start, ev.end)
                          or resource.get("recurrence") != old.get("recurrence"))
        sequence = old.get("sequence", 0) + (1 if timing_changed else 0)
        resource["sequence"] = max(sequence, client_sequence)
        change = self._next_change()
        resource["etag"] = self._etag(now, change)
        ev.resource = resource
        ev.change = change
        ev.start, ev.end, ev.all_day = when[0].instant, when[1].instant, when[0].all_day
        ev.updated = now
        self._touch(cal, now, change)
        return ev

    def _delete(self, cal: _Calendar, ev: _Event) -> None:
        if ev.cancelled:
            raise SandboxApiError(410, "Resource has been deleted", "deleted")
        now = self._now()
        change = self._next_change()
        resource = dict(ev.resource)
        resource["status"] = "cancelled"
        resource["updated"] = _ms(now)
        resource["etag"] = self._etag(now, change)
        ev.resource = resource
        ev.change = change
        ev.updated = now
        self._touch(cal, now, change)
        if resource.get("recurrence"):  # the whole series goes: its exceptions too
            for other in list(cal.order):
                if other.resource.get("recurringEventId") == ev.id and not other.cancelled:
                    self._delete(cal, other)

    @staticmethod
    def _touch(cal: _Calendar, now: datetime, change: int) -> None:
        cal.change = change
        if now > cal.updated:
            cal.updated = now

    @staticmethod
    def _etag(now: datetime, change: int) -> str:
        return f'"{int(now.timestamp() * 1000)}{change % 1_000_000:06d}"'

    @staticmethod
    def _client_sequence(fields: JSON, default: int) -> int:
        value = fields.pop("sequence", None)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise SandboxApiError(400, "Invalid sequence value.", "invalid")
        return value

    def _writable(self, body: JSON, attachments: bool, conference: int) -> JSON:
        """Keep the writable fields of a request body and validate their shapes."""
        fields = {k: copy.deepcopy(v) for k, v in body.items() if k in _WRITABLE}
        if not attachments:
            fields.pop("attachments", None)
        if conference < 1:
            fields.pop("conferenceData", None)
        for name, allowed in _ENUMS.items():
            if name in fields and fields[name] not in allowed:
                raise SandboxApiError(400, "Invalid Value", "invalid")
        for name in ("summary", "description", "location", "colorId"):
            if name in fields and not isinstance(fields[name], str):
                raise SandboxApiError(400, "Invalid Value", "invalid")
        if "extendedProperties" in fields:
            ext = fields["extendedProperties"]
            if not isinstance(ext, dict):
                raise SandboxApiError(400, "Invalid Value", "invalid")
            clean: JSON = {}
            for scope in ("private", "shared"):
                props = ext.get(scope)
                if props is None:
                    continue
                if not isinstance(props, dict) or not all(
                        isinstance(k, str) and isinstance(v, str) for k, v in props.items()):
                    raise SandboxApiError(400, "Invalid Value", "invalid")
                if props:
                    clean[scope] = props
            if clean:
                fields["extendedProperties"] = clean
            else:
                del fields["extendedProperties"]
        if "attendees" in fields:
            attendees = fields["attendees"]
            if not isinstance(attendees, list):
                raise SandboxApiError(400, "Invalid Value", "invalid")
            normalized = []
            for attendee in attendees:
                email = attendee.get("email") if isinstance(attendee, dict) else None
                if not isinstance(email, str) or "@" not in email or email.startswith("@"):
                    raise SandboxApiError(400, "Invalid attendee email.", "invalid")
                item = dict(attendee)
                item.setdefault("responseStatus", "needsAction")
                normalized.append(item)
            fields["attendees"] = normalized
        if "recurrence" in fields and not (isinstance(fields["recurrence"], list) and all(
                isinstance(r, str) for r in fields["recurrence"])):
            raise SandboxApiError(400, "Invalid recurrence rule.", "invalid")
        return fields

    def _compose(self, cal: _Calendar, event_id: str, fields: JSON, *, created: datetime,
                 updated: datetime, sequence: int, ical_uid: str) -> tuple[JSON, tuple[_When, _When]]:
        """Validate start/end and build the stored (read-format) resource."""
        # Google reports a missing end first (an empty body answers "Missing end time.").
        if not fields.get("end"):
            raise SandboxApiError(400, "Missing end time.", "required")
        if not fields.get("start"):
            raise SandboxApiError(400, "Missing start time.", "required")
        start = self._when("start", fields["start"], cal.tz)
        end = self._when("end", fields["end"], cal.tz)
        if start.all_day != end.all_day:
            raise SandboxApiError(400, "Start and end times must either both be date or both "
                                       "be dateTime.", "invalid")
        if end.instant < start.instant or (start.all_day and end.instant <= start.instant):
            raise SandboxApiError(400, "The specified time range is empty.", "timeRangeEmpty",
                                  location="timeMax", location_type="parameter")
        fields["start"], fields["end"] = start.rendered, end.rendered
        if fields.get("recurrence"):
            # "For recurring events this field is required and specifies the time zone in which
            # the recurrence is expanded" (EventDateTime.timeZone).
            if not start.all_day and "timeZone" not in start.rendered:
                raise SandboxApiError(400, "Missing time zone definition for start time.", "required")
            try:
                self._series_of(cal, fields, start.instant, end.instant, start.all_day)
            except (ValueError, TypeError):
                raise SandboxApiError(400, "Invalid recurrence rule.", "invalid") from None
        fields.pop("sequence", None)
        if "attendees" in fields:
            for attendee in fields["attendees"]:
                if attendee["email"].lower() == cal.id.lower():
                    attendee.setdefault("organizer", True)
                    attendee.setdefault("self", True)
        eid = _b64(f"{event_id} {cal.id}".encode())
        values: JSON = dict(fields)
        values.update({
            "kind": "calendar#event", "etag": "", "id": event_id,
            "htmlLink": f"https://www.google.com/calendar/event?eid={eid}",
            "created": _ms(created), "updated": _ms(updated),
            "creator": {"email": cal.id, "self": True},
            "organizer": {"email": cal.id, "displayName": cal.summary, "self": True},
            "iCalUID": ical_uid, "sequence": sequence,
        })
        if cal.summary == cal.id:
            del values["organizer"]["displayName"]
        values.setdefault("reminders", {"useDefault": True})
        values.setdefault("eventType", "default")
        resource = {k: values[k] for k in _FIELD_ORDER if k in values}
        return resource, (start, end)

    @staticmethod
    def _when(which: str, value: Any, cal_tz: ZoneInfo) -> _When:
        if not isinstance(value, dict):
            raise SandboxApiError(400, f"Invalid {which} time.", "invalid")
        zone_name = value.get("timeZone")
        zone = None
        if zone_name is not None:
            zone = _zone(zone_name)
            if zone is None:
                raise SandboxApiError(400, f"Invalid time zone definition for {which} time.",
                                      "invalid")
        has_date, has_dt = value.get("date") is not None, value.get("dateTime") is not None
        if has_date == has_dt:
            if not has_date:
                raise SandboxApiError(400, f"Missing {which} time.", "required")
            raise SandboxApiError(400, f"Invalid {which} time.", "invalid")
        if has_date:
            day = _parse_date(value["date"])
            if day is None:
                raise SandboxApiError(400, f"Invalid {which} time.", "invalid")
            rendered: JSON = {"date": day.isoformat()}
            if zone_name is not None:
                rendered["timeZone"] = zone_name
            return _When(True, _midnight(day, cal_tz), rendered, zone is not None)
        raw = value["dateTime"]
        dt = _parse_rfc3339(raw, offset_required=False, tz=zone)
        if dt is None:
            if isinstance(raw, str) and _parse_rfc3339(raw, offset_required=False, tz=cal_tz):
                raise SandboxApiError(400, f"Missing time zone definition for {which} time.",
                                      "required")
            raise SandboxApiError(400, f"Invalid {which} time.", "invalid")
        dt = _utc(dt.replace(microsecond=0))
        rendered = {"dateTime": _local(dt, zone or cal_tz)}
        if zone_name is not None:
            rendered["timeZone"] = zone_name
        return _When(False, dt, rendered, zone is not None)

    @staticmethod
    def _tombstone(ev: _Event) -> JSON:
        r = ev.resource
        return {"kind": r["kind"], "etag": r["etag"], "id": r["id"], "status": "cancelled"}

    def _render(self, ev: _Event, cal: _Calendar, tz: ZoneInfo, *, full: bool) -> JSON:
        """The resource as sent; only re-rendered when a ``timeZone`` parameter asks for it."""
        if ev.cancelled and not full:
            return self._tombstone(ev)
        r = ev.resource
        if tz is cal.tz or tz == cal.tz or ev.all_day:
            return r
        out = dict(r)
        for key, instant in (("start", ev.start), ("end", ev.end)):
            if "timeZone" not in r[key]:
                out[key] = {"dateTime": _local(instant, tz)}
        return out

    # -- events.list ----------------------------------------------------------------------------
    def _list(self, request: Request) -> JSON:
        cal = self._calendar(self._params(request)[0])
        q = request.query
        sync_token = request.arg("syncToken")
        if sync_token is not None:
            for name in _SYNC_EXCLUSIVE:
                if q.get(name):
                    raise _invalid_param(name, f"The parameter {name} cannot be used together "
                                               f"with syncToken.")
        max_results = self._max_results(request)
        show_deleted = self._flag(request, "showDeleted")
        single_events = self._flag(request, "singleEvents")
        order_by = request.arg("orderBy")
        if order_by not in (None, "", "startTime", "updated"):
            raise _invalid_param("orderBy")
        if order_by == "startTime" and not single_events:
            raise SandboxApiError(400, "The requested ordering is not available for the "
                                       "particular query.", "invalid",
                                  location="orderBy", location_type="parameter")
        tz = self._request_zone(request, cal)
        time_min = self._time_param(request, "timeMin")
        time_max = self._time_param(request, "timeMax")
        updated_min = self._time_param(request, "updatedMin")
        if time_min and time_max and time_max <= time_min:
            raise SandboxApiError(400, "The specified time range is empty.", "timeRangeEmpty",
                                  location="timeMax", location_type="parameter")
        private = self._constraints(request, "privateExtendedProperty")
        shared = self._constraints(request, "sharedExtendedProperty")
        ical_uid = request.arg("iCalUID") or None
        terms = (request.arg("q") or "").lower().split()
        event_types = set(request.args("eventTypes")) - {""}

        since: int | None = None
        if sync_token is not None:
            entry = self._sync_tokens.get(sync_token)
            if entry is None or entry[0] != cal.id:
                raise SandboxApiError(410, "Sync token is no longer valid, a full sync is required.",
                                      "fullSyncRequired", location="syncToken",
                                      location_type="parameter")
            since = entry[1]

        fingerprint = self._fingerprint(cal, q)
        page_token = request.arg("pageToken")
        cursor: Any = None
        snapshot = self._seq
        if page_token:
            try:
                data = json.loads(_unb64(page_token))
                assert data["f"] == fingerprint
                cursor, snapshot = data["c"], int(data["s"])
            except Exception:
                raise _invalid_param("pageToken") from None

        incremental = since is not None or updated_min is not None
        details = bool(show_deleted)

        def keep(ev: _Event) -> bool:
            if since is not None and ev.change <= since:
                return False
            if updated_min is not None and ev.updated < updated_min:
                return False
            if ev.cancelled and not incremental and not show_deleted:
                return False
            if time_min is not None and ev.end <= time_min:
                return False
            if time_max is not None and ev.start >= time_max:
                return False
            r = ev.resource
            if ical_uid is not None and r["iCalUID"] != ical_uid:
                return False
            if event_types and r.get("eventType", "default") not in event_types:
                return False
            ext = r.get("extendedProperties") or {}
            for scope, wanted in (("private", private), ("shared", shared)):
                have = ext.get(scope) or {}
                if any(have.get(k) != v for k, v in wanted):
                    return False
            if terms:
                text = " ".join(str(r.get(k, "")) for k in ("summary", "description", "location"))
                text += " " + " ".join(f"{a.get('email', '')} {a.get('displayName', '')}"
                                       for a in r.get("attendees", []))
                text += " " + r["organizer"].get("email", "")
                text = text.lower()
                if not all(t in text for t in terms):
                    return False
            return True

        # Each order has a unique, stable key; a page token carries the last key served.
        # singleEvents: series are replaced by their occurrences (which share the series'
        # index and change), so keys add the occurrence's original start to stay unique.
        key: Callable[[_Event], Any]
        candidates: Iterable[_Event]
        pool: Iterable[_Event] = (self._single_events(cal, time_min, time_max) if single_events
                                  else cal.order)
        if since is not None or order_by == "updated":
            key = ((lambda ev: [ev.change, ev.index, ev.occurrence]) if single_events  # noqa: E731
                   else (lambda ev: ev.change))
            candidates = sorted((ev for ev in pool if keep(ev)), key=key)
        elif order_by == "startTime":
            key = lambda ev: [int(ev.start.timestamp() * 1_000_000), ev.index, ev.occurrence]  # noqa: E731
            candidates = sorted((ev for ev in pool if keep(ev)), key=key)
        elif single_events:
            key = lambda ev: [ev.index, ev.occurrence]  # noqa: E731
            candidates = sorted((ev for ev in pool if keep(ev)), key=key)
        else:
            key = lambda ev: ev.index  # noqa: E731
            start_at = cursor + 1 if isinstance(cursor, int) else 0
            candidates = (ev for ev in cal.order[start_at:] if keep(ev))

        items: list[JSON] = []
        last: Any = None
        more = False
        for ev in candidates:
            k = key(ev)
            if cursor is not None and not (k > cursor):
                continue
            if len(items) == max_results:
                more = True
                break
            items.append(self._render(ev, cal, tz, full=details or not ev.cancelled))
            last = k

        out: JSON = {
            "kind": "calendar#events",
            "etag": f'"p{cal.change:x}"',
            "summary": cal.summary,
            "updated": _ms(cal.updated),
            "timeZone": cal.time_zone,
            "accessRole": "owner",
            "defaultReminders": [],
        }
        if more:
            token = {"f": fingerprint, "c": last, "s": snapshot}
            out["nextPageToken"] = _b64(json.dumps(token, separators=(",", ":")).encode())
        else:
            out["nextSyncToken"] = self._issue_sync_token(cal, snapshot)
        out["items"] = items
        return out

    def _issue_sync_token(self, cal: _Calendar, seq: int) -> str:
        token = base64.b64encode(b"\x08" + secrets.token_bytes(17)).decode()
        self._sync_tokens[token] = (cal.id, seq)
        return token

    @staticmethod
    def _fingerprint(cal: _Calendar, query: dict[str, list[str]]) -> str:
        relevant = sorted((k, sorted(v)) for k, v in query.items() if k not in _NEUTRAL_PARAMS)
        return hashlib.sha1(json.dumps([cal.id, relevant]).encode()).hexdigest()[:16]

    @staticmethod
    def _max_results(request: Request) -> int:
        raw = request.arg("maxResults")
        if raw in (None, ""):
            return MAX_RESULTS_DEFAULT
        try:
            value = int(raw)
        except ValueError:
            raise _invalid_param("maxResults", f"Invalid value '{raw}'. Values must be within "
                                               f"the range: [1, {MAX_RESULTS_LIMIT}]") from None
        if value < 1:
            raise _invalid_param("maxResults", f"Invalid value '{raw}'. Values must be within "
                                               f"the range: [1, {MAX_RESULTS_LIMIT}]")
        return min(value, MAX_RESULTS_LIMIT)  # "the page size can never be larger than 2500"

    @staticmethod
    def _time_param(request: Request, name: str) -> datetime | None:
        raw = request.arg(name)
        if raw is None or raw == "":
            return None
        dt = _parse_rfc3339(raw)
        if dt is None:
            raise _bad_request()
        return _utc(dt)

    @staticmethod
    def _constraints(request: Request, name: str) -> list[tuple[str, str]]:
        out = []
        for raw in request.args(name):
            prop, sep, value = raw.partition("=")
            if not sep or not prop:
                raise _invalid_param(name)
            out.append((prop, value))
        return out

    # -- recurrence -------------------------------------------------------------------------------
    def _series_of(self, cal: _Calendar, resource: JSON, start: datetime, end: datetime,
                   all_day: bool) -> _Series:
        """The rules of a recurring event, expanded in its start zone (all-day: the calendar's)."""
        zone = (cal.tz if all_day else _zone(resource["start"].get("timeZone"))) or cal.tz
        if all_day:
            first = _wall(start, zone)
            duration = timedelta(days=(_wall(end, zone).date() - first.date()).days)
        else:
            first, duration = _wall(start, zone), end - start
        return _Series(_series_rules(resource["recurrence"], first, zone), zone, duration, all_day)

    def _occurrences(self, cal: _Calendar, series: _Event, lo: datetime | None,
                     hi: datetime | None) -> Iterator[_Event]:
        """The series' occurrences (as unsaved instances) whose original span meets [lo, hi).

        Without ``hi`` at most MAX_INSTANCES are produced, so an endless rule stays finite.
        """
        sr = self._series_of(cal, series.resource, series.start, series.end, series.all_day)
        after = _wall((lo or series.start) - sr.duration - timedelta(days=1), sr.zone)
        produced = 0
        for occ in sr.rules.xafter(after, inc=True):
            start = _utc(occ.replace(tzinfo=sr.zone))
            if hi is not None and start >= hi:
                break
            if sr.all_day:
                end = _midnight(occ.date() + sr.duration, sr.zone)
            else:
                end = start + sr.duration
            if lo is not None and end <= lo and start < lo:
                continue
            produced += 1
            if hi is None and produced > MAX_INSTANCES:
                break
            yield self._instance(cal, series, sr, start, end)

    def _instance(self, cal: _Calendar, series: _Event, sr: _Series, start: datetime,
                  end: datetime) -> _Event:
        """One occurrence as Google shows it: the series' fields at the occurrence's times,
        its own id, ``recurringEventId`` and ``originalStartTime``, no ``recurrence``."""
        r = series.resource
        iid = _instance_id(series.id, start, sr.all_day, sr.zone)
        out = {k: v for k, v in r.items() if k != "recurrence"}
        if sr.all_day:
            first = _wall(start, sr.zone).date()
            out["start"] = {**r["start"], "date": first.isoformat()}
            out["end"] = {**r["end"], "date": (first + sr.duration).isoformat()}
            out["originalStartTime"] = {"date": first.isoformat()}
        else:
            end_zone = _zone(r["end"].get("timeZone")) or sr.zone
            out["start"] = {**r["start"], "dateTime": _local(start, sr.zone)}
            out["end"] = {**r["end"], "dateTime": _local(end, end_zone)}
            out["originalStartTime"] = {"dateTime": _local(start, sr.zone),
                                        "timeZone": r["start"]["timeZone"]}
        out["id"] = iid
        out["recurringEventId"] = series.id
        out["htmlLink"] = "https://www.google.com/calendar/event?eid=" + _b64(f"{iid} {cal.id}".encode())
        resource = {k: out[k] for k in _FIELD_ORDER if k in out}
        return _Event(id=iid, index=series.index, resource=resource, change=series.change,
                      start=start, end=end, all_day=sr.all_day, updated=series.updated,
                      occurrence=int(start.timestamp() * 1_000_000))

    def _live_series(self, cal: _Calendar, event_id: str) -> _Event | None:
        ev = cal.events.get(event_id)
        if ev is None or ev.cancelled or not ev.resource.get("recurrence"):
            return None
        return ev

    def _single_events(self, cal: _Calendar, lo: datetime | None,
                       hi: datetime | None) -> Iterator[_Event]:
        """One-off events, exceptions, and each live series' other occurrences in [lo, hi).

        What ``singleEvents=true`` lists and freeBusy counts: a series itself never appears,
        and an occurrence that was modified or cancelled is replaced by its exception.
        Exceptions of a deleted series go with it.
        """
        for ev in cal.order:
            if ev.resource.get("recurrence"):
                if not ev.cancelled:
                    yield from (inst for inst in self._occurrences(cal, ev, lo, hi)
                                if inst.id not in cal.events)
            elif ev.resource.get("recurringEventId"):
                if self._live_series(cal, ev.resource["recurringEventId"]) is not None:
                    yield ev
            else:
                yield ev

    def _stored_or_instance(self, cal: _Calendar, event_id: str | None) -> tuple[_Event, bool]:
        """The stored event with this id, else the unsaved occurrence it names (``True``)."""
        ev = cal.events.get(event_id or "")
        if ev is not None:
            return ev, False
        series_id, sep, stamp = (event_id or "").rpartition("_")
        series = self._live_series(cal, series_id) if sep else None
        if series is not None:
            if _STAMP_DATE_RE.match(stamp):
                lo = _midnight(datetime.strptime(stamp, "%Y%m%d").date(), cal.tz)
            elif _STAMP_UTC_RE.match(stamp):
                lo = datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
            else:
                lo = None
            if lo is not None:
                for inst in self._occurrences(cal, series, lo, lo + timedelta(seconds=1)):
                    if inst.id == event_id:
                        return inst, True
        raise SandboxApiError(404, "Not Found", "notFound")

    @staticmethod
    def _adopt_instance(cal: _Calendar, ev: _Event) -> None:
        """Store a written occurrence as an exception (stays so, like every event id)."""
        ev.index = len(cal.order)
        cal.events[ev.id] = ev
        cal.order.append(ev)

    def _instances_page(self, request: Request) -> JSON:
        """events.instances: a series' occurrences in original-start order, exceptions in place.

        Cancelled occurrences only with ``showDeleted``; ``timeMin``/``timeMax`` filter on
        the occurrence's own times; paging by a token carrying the last original start.
        """
        cal_id, event_id = self._params(request)
        cal = self._calendar(cal_id)
        series = cal.events.get(event_id or "")
        if series is None:
            raise SandboxApiError(404, "Not Found", "notFound")
        if series.cancelled:
            raise SandboxApiError(410, "Resource has been deleted", "deleted")
        max_results = self._max_results(request)
        show_deleted = bool(self._flag(request, "showDeleted"))
        tz = self._request_zone(request, cal)
        time_min = self._time_param(request, "timeMin")
        time_max = self._time_param(request, "timeMax")
        original = self._time_param(request, "originalStart")
        cursor = None
        if request.arg("pageToken"):
            try:
                cursor = int(json.loads(_unb64(request.arg("pageToken") or ""))["o"])
            except Exception:
                raise _invalid_param("pageToken") from None
        rows: list[_Event] = []
        if series.resource.get("recurrence"):
            for inst in self._occurrences(cal, series, None, None):
                rows.append(cal.events.get(inst.id, inst))
        items: list[JSON] = []
        more = False
        last = None
        for ev in rows:
            if (cursor is not None and ev.occurrence <= cursor) or (ev.cancelled and not show_deleted):
                continue
            if (time_min is not None and ev.end <= time_min) or (time_max is not None and ev.start >= time_max):
                continue
            if original is not None and ev.occurrence != int(original.timestamp() * 1_000_000):
                continue
            if len(items) == max_results:
                more = True
                break
            items.append(self._render(ev, cal, tz, full=True))
            last = ev.occurrence
        out: JSON = {"kind": "calendar#events", "etag": f'"p{cal.change:x}"', "summary": cal.summary,
                     "updated": _ms(cal.updated), "timeZone": cal.time_zone, "accessRole": "owner",
                     "defaultReminders": []}
        if more:
            out["nextPageToken"] = _b64(json.dumps({"o": last}).encode())
        out["items"] = items
        return out

    # -- freeBusy ---------------------------------------------------------------------------------
    def _freebusy(self, body: JSON) -> JSON:
        for name in ("timeMin", "timeMax"):
            if not body.get(name):
                raise SandboxApiError(400, f"Missing {name} parameter.", "required",
                                      location=name, location_type="parameter")
        time_min = _parse_rfc3339(body["timeMin"])
        time_max = _parse_rfc3339(body["timeMax"])
        if time_min is None or time_max is None:
            raise _bad_request()
        time_min, time_max = _utc(time_min), _utc(time_max)
        if time_max <= time_min:
            raise SandboxApiError(400, "The specified time range is empty.", "timeRangeEmpty",
                                  location="timeMax", location_type="parameter")
        _check_freebusy_span(time_min, time_max)
        limit = self._freebusy_calendar_limit(body)
        tz: ZoneInfo = ZoneInfo("UTC")
        if body.get("timeZone"):
            zone = _zone(body["timeZone"])
            if zone is None:
                raise SandboxApiError(400, "Invalid Value", "invalid", location="timeZone",
                                      location_type="parameter")
            tz = zone
        items = body.get("items") or []
        if not isinstance(items, list):
            raise _bad_request()
        calendars: JSON = {}
        for item in items:
            cal_id = item.get("id") if isinstance(item, dict) else None
            if not isinstance(cal_id, str):
                raise _bad_request()
            key = self._primary if cal_id == "primary" else cal_id
            cal = self._calendars.get(key or "")
            if cal is None:
                calendars[cal_id] = {"errors": [{"domain": "global", "reason": "notFound"}],
                                     "busy": []}
                continue
            calendars[cal_id] = {"busy": [
                {"start": _local(s, tz), "end": _local(e, tz)}
                for s, e in self._busy(cal, time_min, time_max)]}
        _refuse_calendars_beyond_limit(items, calendars, limit)
        return {"kind": "calendar#freeBusy", "timeMin": _ms(time_min), "timeMax": _ms(time_max),
                "calendars": calendars}

    def _freebusy_calendar_limit(self, body: JSON) -> int:
        """How many calendars one freeBusy answers: ``calendarExpansionMax`` if the request
        sets a smaller one, else :attr:`freebusy_max_calendars` (Google's documented 50).
        [?] unverified: that a larger value is capped rather than refused, and that a
        non-integer or non-positive one is a 400 ``invalid``."""
        limit = self.freebusy_max_calendars
        asked = body.get("calendarExpansionMax")
        if asked is None:
            return limit
        if not isinstance(asked, int) or isinstance(asked, bool) or asked < 1:
            raise _invalid_param("calendarExpansionMax")
        return min(asked, limit)

    def _busy(self, cal: _Calendar, lo: datetime, hi: datetime) -> list[tuple[datetime, datetime]]:
        """Busy spans in [lo, hi): every occurrence of a series counts, its exceptions override."""
        spans = sorted(
            (max(ev.start, lo), min(ev.end, hi)) for ev in self._single_events(cal, lo, hi)
            if not ev.cancelled and ev.resource.get("transparency") != "transparent"
            and ev.start < hi and ev.end > lo and ev.end > ev.start)
        merged: list[tuple[datetime, datetime]] = []
        for start, end in spans:
            if merged and start <= merged[-1][1]:
                if end > merged[-1][1]:
                    merged[-1] = (merged[-1][0], end)
            else:
                merged.append((start, end))
        return merged

    # -- in-process helpers for tests (not HTTP, not recorded) --------------------------------
    def insert_event(self, calendar_id: str, body: JSON) -> JSON:
        """Insert like events.insert would (same validation; raises SandboxApiError)."""
        with self.lock:
            ev = self._insert(self._calendar(calendar_id), copy.deepcopy(body))
            return copy.deepcopy(ev.resource)

    def get_event(self, calendar_id: str, event_id: str) -> JSON | None:
        """The stored event (cancelled ones included, with details), or None."""
        with self.lock:
            ev = self._calendar(calendar_id).events.get(event_id)
            return copy.deepcopy(ev.resource) if ev else None

    def list_events(self, calendar_id: str, include_deleted: bool = True) -> list[JSON]:
        """All stored events of a calendar in creation order."""
        with self.lock:
            return [copy.deepcopy(ev.resource) for ev in self._calendar(calendar_id).order
                    if include_deleted or not ev.cancelled]

    def delete_event(self, calendar_id: str, event_id: str) -> None:
        """Delete like events.delete would (404 unknown, 410 already deleted)."""
        with self.lock:
            cal = self._calendar(calendar_id)
            self._delete(cal, self._event(cal, event_id))

    def event_count(self, calendar_id: str | None = None, include_deleted: bool = False) -> int:
        with self.lock:
            cals = [self._calendar(calendar_id)] if calendar_id else list(self._calendars.values())
            return sum(1 for cal in cals for ev in cal.order if include_deleted or not ev.cancelled)
