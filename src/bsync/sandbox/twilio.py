"""Loopback emulator of Twilio's 2010-04-01 REST API for SMS: send, list and fetch messages, fetch the account.

bsync sends booking texts with a form-encoded ``POST .../Messages.json`` (over httpx); this
server answers like Twilio so that code can be tested end to end, and keeps what was "sent"
in-process: :attr:`TwilioSandbox.messages`, :meth:`messages_to`, :meth:`unsubscribe`,
:meth:`reject_number`.  Those helpers are neither HTTP nor recorded.  The request log keeps each
form body as a dict (single values unwrapped; repeated keys such as ``MediaUrl`` stay lists).

Sources ("[doc]" Twilio docs, "[src]" twilio-python's generated test fixtures, "[obs]" a body
the live API returned, quoted in a public issue or log, "[2°]" secondary, "[?]" guess):

* Resource shapes -- ``tests/integration/api/v2010/account/test_message.py`` and
  ``test_account.py`` in twilio/twilio-python [src]: keys in alphabetical order, RFC 2822 dates
  (``Thu, 30 Jul 2015 20:12:31 +0000``), ``num_segments``/``num_media`` as strings, ``uri`` and
  ``subresource_uris.media``; the account carries ``auth_token``, ``owner_account_sid``,
  ``status: active``, ``type: Full``.  A new message is ``queued``; one sent through a
  Messaging Service is ``accepted`` with ``num_segments: "0"`` and ``from: null`` until a sender
  is picked [doc] (Message resource: "num_segments is initially 0").  ``price`` and
  ``date_sent`` stay null until the in-process :meth:`TwilioSandbox.mark_sent` (the carrier took
  it: ``sent``), which stands in for the seconds real Twilio takes.
* Listing -- ``GET .../Messages.json`` filters ``To``, ``From``, ``DateSent``, ``DateSent<``,
  ``DateSent>`` (the keys twilio-python's ``MessageList.page`` sends) and pages with
  ``PageSize``/``Page`` [src]; a date is ``YYYY-MM-DD`` in GMT, the ``<``/``>`` forms meaning
  "on or before"/"on or after" that day [doc] (ReadMessageOptions); an ISO instant is also
  taken [?].  Newest first [doc].  The page keys are those of ``test_read_full_response``
  without the deprecated ``num_pages``/``total``/``last_page_uri`` [src]; the live API pages
  with a ``PageToken`` in ``next_page_uri`` rather than a bare ``Page`` [?].
* Segments -- GSM-7 (GSM 03.38 basic set; ``^{}\\[~]|€`` and form feed count twice) 160 per
  single / 153 per part, otherwise UCS-2 counted in UTF-16 units 70 / 67 [doc] (SMS character
  limit glossary).  Smart encoding is not modelled; an extension character is never moved to
  the next part as handsets do, so a count can differ by one at a part boundary [?].
* Error body -- ``{"code", "message", "more_info": "https://www.twilio.com/docs/errors/<code>",
  "status"}`` [obs].  Texts [obs]: 21604 "A 'To' phone number is required.", 21603 "A 'From'
  phone number is required.", 21602 "Message body is required.", 21610 "Attempt to send to
  unsubscribed recipient", 21617 "The concatenated message body exceeds the 1600 character
  limit.", 21212 "The 'From' number X is not a valid phone number, shortcode, or alphanumeric
  sender ID.", 20404 "The requested resource <path> was not found", 20429 "Too Many Requests",
  20003 "Authenticate" with ``detail`` "Your AccountSid or AuthToken was incorrect." (401).
  21211 uses the current wording "Invalid 'To' Phone Number: +1555555XXXX" (last four digits
  masked) [obs, 2025 logs]; the older "The 'To' number X is not a valid phone number." is gone.
  21606 uses "The 'From' phone number provided (X) is not a valid message-capable Twilio
  phone number for this destination." [obs, 2025].
* Bad ``From`` -- only the constructor's ``from_numbers`` (default ``["+15005550006"]``, the
  magic "valid sender" of Twilio's test credentials [doc]) are owned: any other well-formed
  number answers 21606, as test credentials do for every unowned number [doc, test-credentials
  page via twilio_magic_values]; a value that is neither E.164 nor an alphanumeric sender ID
  answers 21212.  21659 ("'From' X is not a Twilio phone number or Short Code country
  mismatch") is what live accounts often answer instead; this emulator does not use it [?].
  ``MessagingServiceSid`` must look like ``MG`` + 32 hex, else 21701 (text guessed) [?].
* Magic ``To`` numbers of the test credentials [doc]: ``+15005550001`` answers 21211 and
  ``+15005550004`` answers 21610.  Other ``To`` values must be E.164 (``+`` and 7-15 digits);
  real Twilio may also accept a national number it can complete from the ``From`` country [?].
* Auth -- HTTP Basic ``AccountSid:AuthToken`` (API-key SIDs are not modelled).  Missing or wrong
  credentials: 401 20003 with ``WWW-Authenticate: Basic realm="Twilio API"`` [?: header recalled].
  A path AccountSid that is not ``AC`` + 32 hex answers 404 20404 whatever the credentials
  (``/Accounts/null/Messages.json`` [obs]); a well-formed SID other than the authenticated
  account answers 401 20003 (the docs only say such access is refused) [?].
* Faults -- injected 429 is 20429 plus the base server's ``Retry-After``; 500/502/503/504 use
  codes 20500/20500/20503/20504 with the reason phrase [?].  405 is 20004 "Method not allowed".
  Without the ``.json`` suffix the real API answers XML; here such paths are a 20404.
* :meth:`reject_number` codes: 21211 and 21610 as above, 21612 "The 'To' phone number: X, is
  not currently reachable using the 'From' phone number: Y via SMS." [obs], 21614 "'To' number
  is not a valid mobile number" (the error page's title) [?].
"""

from __future__ import annotations

import base64
import binascii
import copy
import math
import re
import secrets
from collections.abc import Callable
from datetime import UTC, date, datetime
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any
from urllib.parse import parse_qs, urlencode

from bsync.sandbox.base import JSON, Request, Response, SandboxServer, route

API_VERSION = "2010-04-01"
DEFAULT_ACCOUNT_SID = "AC" + "0" * 30 + "5b"
DEFAULT_AUTH_TOKEN = "sandbox-token"
DEFAULT_FROM_NUMBERS = ("+15005550006",)
CONTENT_TYPE = "application/json; charset=utf-8"
MAX_BODY = 1600

_SID_RE = re.compile(r"^AC[0-9a-f]{32}$")
_SERVICE_RE = re.compile(r"^MG[0-9a-f]{32}$")
_E164_RE = re.compile(r"^\+[1-9]\d{6,14}$")
_ALPHANUMERIC_RE = re.compile(r"^(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}$")
_MAGIC_TO = {"+15005550001": 21211, "+15005550004": 21610}

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà")
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")

_SERVER_ERRORS = {500: (20500, "Internal Server Error"), 502: (20500, "Bad Gateway"),
                  503: (20503, "Service Unavailable"), 504: (20504, "Gateway Timeout")}


def sms_encoding(body: str) -> str:
    """``"GSM-7"`` when every character is in the GSM 03.38 default alphabet, else ``"UCS-2"``."""
    return "GSM-7" if all(c in GSM7_BASIC or c in GSM7_EXTENSION for c in body) else "UCS-2"


def sms_segments(body: str) -> int:
    """How many SMS parts ``body`` takes (GSM-7 160/153, UCS-2 70/67 per single/part)."""
    if sms_encoding(body) == "GSM-7":
        units = sum(2 if c in GSM7_EXTENSION else 1 for c in body)
        single, part = 160, 153
    else:
        units = len(body.encode("utf-16-le")) // 2
        single, part = 70, 67
    if units <= single:
        return 1
    return math.ceil(units / part)


def _mask(number: str) -> str:
    """Twilio's log-safe form: the last four characters replaced by ``XXXX``."""
    return number[:-4] + "XXXX" if len(number) > 4 else number


class TwilioSandbox(SandboxServer):
    """Twilio REST API 2010-04-01: Messages (create, fetch) and Account (fetch)."""

    name = "twilio"

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *,
                 account_sid: str = DEFAULT_ACCOUNT_SID, auth_token: str = DEFAULT_AUTH_TOKEN,
                 from_numbers: list[str] | tuple[str, ...] = DEFAULT_FROM_NUMBERS,
                 friendly_name: str = "bsync sandbox") -> None:
        if not _SID_RE.match(account_sid):
            raise ValueError("account_sid must be 'AC' followed by 32 lower-case hex digits")
        self.account_sid = account_sid
        self.auth_token = auth_token
        #: Senders this account owns; any other ``From`` answers 21606.
        self.from_numbers: set[str] = set(from_numbers)
        self.friendly_name = friendly_name
        #: Zero-arg callable returning "now" (aware UTC); tests may replace it.
        self.clock: Callable[[], datetime] = lambda: datetime.now(UTC)
        self.created_at = datetime.now(UTC).replace(microsecond=0)
        super().__init__(host, port)

    def reset_state(self) -> None:
        with self.lock:
            #: Every created Message resource, oldest first (live objects: copy before changing).
            self.messages: list[JSON] = []
            self._unsubscribed: set[str] = set()
            self._rejected: dict[str, int] = {}

    # -- in-process helpers (not HTTP, not recorded) -------------------------------------------
    def messages_to(self, number: str) -> list[JSON]:
        """Copies of the messages sent to ``number``."""
        with self.lock:
            return [copy.deepcopy(m) for m in self.messages if m["to"] == number]

    def unsubscribe(self, number: str) -> None:
        """``number`` texted STOP: later sends to it answer 21610."""
        with self.lock:
            self._unsubscribed.add(number)

    def resubscribe(self, number: str) -> None:
        """``number`` texted START again."""
        with self.lock:
            self._unsubscribed.discard(number)

    def reject_number(self, number: str, code: int = 21211) -> None:
        """Make later sends to ``number`` fail with ``code`` (21211, 21610, 21612 or 21614)."""
        if code not in (21211, 21610, 21612, 21614):
            raise ValueError("code must be one of 21211, 21610, 21612, 21614")
        with self.lock:
            self._rejected[number] = code

    def clear_messages(self) -> None:
        with self.lock:
            self.messages.clear()

    def mark_sent(self) -> None:
        """The carrier took every queued or accepted message: status ``sent``, ``date_sent`` now.

        Real Twilio does this within seconds of the create; the emulator waits to be told,
        so a test decides whether a lookup finds a message as sent or still queued."""
        with self.lock:
            now = format_datetime(self.clock().astimezone(UTC).replace(microsecond=0))
            for message in self.messages:
                if message["status"] in ("queued", "accepted"):
                    message.update(status="sent", date_sent=now, date_updated=now)

    # -- errors, auth, recording ---------------------------------------------------------------
    def twilio_error(self, status: int, code: int, message: str, **extra: Any) -> Response:
        body = {"code": code, **extra, "message": message,
                "more_info": f"https://www.twilio.com/docs/errors/{code}", "status": status}
        return Response(status, body, content_type=CONTENT_TYPE)

    def error(self, status: int, message: str, code: str | None = None) -> Response:
        """Errors raised by the base server (faults, unknown methods, emulator bugs)."""
        if status == 429:
            return self.twilio_error(429, 20429, "Too Many Requests")
        if status == 405:
            return self.twilio_error(405, 20004, "Method not allowed")
        if status == 404:
            return self.twilio_error(404, 20404, message)
        number, phrase = _SERVER_ERRORS.get(status, (20500, "Internal Server Error"))
        if message.startswith("sandbox error"):
            phrase = message
        return self.twilio_error(status, number, phrase)

    def not_found_route(self, request: Request) -> Response:
        return self._not_found(request)

    def _not_found(self, request: Request) -> Response:
        return self.twilio_error(404, 20404, f"The requested resource {request.path} was not found")

    def _authenticate_error(self) -> Response:
        response = self.twilio_error(401, 20003, "Authenticate",
                                     detail="Your AccountSid or AuthToken was incorrect.")
        response.headers["WWW-Authenticate"] = 'Basic realm="Twilio API"'
        return response

    def check_auth(self, request: Request) -> Response | None:
        match = re.match(rf"^/{API_VERSION}/Accounts/([^/]+?)(?:\.json$|/)", request.path)
        if match and not _SID_RE.match(match.group(1)):
            return self._not_found(request)  # whatever the credentials
        if _basic_credentials(request) != (self.account_sid, self.auth_token):
            return self._authenticate_error()
        if match and match.group(1) != self.account_sid:
            return self._authenticate_error()
        return None

    def recorded_body(self, request: Request) -> Any:
        """Form bodies are logged as a dict; anything else as the base server logs it."""
        if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            return _form(request)
        return super().recorded_body(request)

    # -- routes ----------------------------------------------------------------------------------
    @route("GET", "/2010-04-01/Accounts/{account_sid}.json")
    def fetch_account(self, request: Request) -> Response:
        if request.params["account_sid"] != self.account_sid:
            return self._not_found(request)
        return Response(200, self._account(), content_type=CONTENT_TYPE)

    @route("POST", "/2010-04-01/Accounts/{account_sid}/Messages.json")
    def create_message(self, request: Request) -> Response:
        if request.params["account_sid"] != self.account_sid:
            return self._not_found(request)
        form = _form(request)
        to, sender, body = _one(form, "To"), _one(form, "From"), _one(form, "Body")
        service = _one(form, "MessagingServiceSid")
        media = _many(form, "MediaUrl")
        refusal = self._refusal(to, sender, service, body, media)
        if refusal is not None:
            return refusal
        message = self._new_message(to or "", sender, service, body or "", len(media))
        self.messages.append(message)
        return Response(201, copy.deepcopy(message), content_type=CONTENT_TYPE)

    @route("GET", "/2010-04-01/Accounts/{account_sid}/Messages.json")
    def list_messages(self, request: Request) -> Response:
        """Newest first, filtered by ``To``, ``From`` and ``DateSent`` / ``DateSent<`` /
        ``DateSent>``, paged by ``PageSize`` (default 50, at most 1000) and ``Page``."""
        if request.params["account_sid"] != self.account_sid:
            return self._not_found(request)
        filters: list[Callable[[JSON], bool]] = []
        for key, field in (("To", "to"), ("From", "from")):
            value = request.arg(key)
            if value is not None:
                filters.append(lambda m, field=field, value=value: m[field] == value)
        for key in ("DateSent", "DateSent<", "DateSent>"):
            value = request.arg(key)
            if value is None:
                continue
            bound = _date_filter(value)
            if bound is None:
                return self.twilio_error(400, 20001, f"Invalid {key}: {value}")  # [?] wording
            filters.append(lambda m, key=key, bound=bound: _sent_matches(m, key, bound))
        try:
            size = min(max(int(request.arg("PageSize") or 50), 1), 1000)
            page = max(int(request.arg("Page") or 0), 0)
        except ValueError:
            return self.twilio_error(400, 20001, "Invalid paging parameter")  # [?] wording
        with self.lock:
            found = [copy.deepcopy(m) for m in reversed(self.messages) if all(f(m) for f in filters)]
        chunk = found[page * size:(page + 1) * size]
        base = f"/{API_VERSION}/Accounts/{self.account_sid}/Messages.json"
        kept = [(k, v) for k, vs in request.query.items() if k not in ("Page", "PageSize", "PageToken")
                for v in vs]

        def uri(number: int) -> str:
            return f"{base}?{urlencode([*kept, ('PageSize', size), ('Page', number)])}"

        more = (page + 1) * size < len(found)
        return Response(200, {
            "end": page * size + max(len(chunk) - 1, 0), "first_page_uri": uri(0), "messages": chunk,
            "next_page_uri": uri(page + 1) if more else None, "page": page, "page_size": size,
            "previous_page_uri": uri(page - 1) if page > 0 else None, "start": page * size, "uri": uri(page),
        }, content_type=CONTENT_TYPE)

    @route("GET", "/2010-04-01/Accounts/{account_sid}/Messages/{sid}.json")
    def fetch_message(self, request: Request) -> Response:
        for message in self.messages:
            if message["sid"] == request.params["sid"] and request.params["account_sid"] == self.account_sid:
                return Response(200, copy.deepcopy(message), content_type=CONTENT_TYPE)
        return self._not_found(request)

    # -- message creation ------------------------------------------------------------------------
    def _refusal(self, to: str | None, sender: str | None, service: str | None, body: str | None,
                 media: list[str]) -> Response | None:
        """The 400 Twilio answers for this send, or None when it is accepted."""
        if not to:
            return self.twilio_error(400, 21604, "A 'To' phone number is required.")
        if not body and not media:
            return self.twilio_error(400, 21602, "Message body is required.")
        if body and len(body) > MAX_BODY:
            return self.twilio_error(400, 21617, "The concatenated message body exceeds the "
                                                 "1600 character limit.")
        if not sender and not service:
            return self.twilio_error(400, 21603, "A 'From' phone number is required.")
        if service and not _SERVICE_RE.match(service):
            return self.twilio_error(400, 21701, f"The Messaging Service Sid {service} is invalid.")
        if sender:
            if not (_E164_RE.match(sender) or _ALPHANUMERIC_RE.match(sender)):
                return self.twilio_error(400, 21212, f"The 'From' number {sender} is not a valid phone "
                                                     "number, shortcode, or alphanumeric sender ID.")
            if sender not in self.from_numbers:
                return self.twilio_error(400, 21606, f"The 'From' phone number provided ({sender}) is "
                                                     "not a valid message-capable Twilio phone number "
                                                     "for this destination.")
        code = self._rejected.get(to) or _MAGIC_TO.get(to)
        if code is None and not _E164_RE.match(to):
            code = 21211
        if code is None and to in self._unsubscribed:
            code = 21610
        if code is None:
            return None
        return self.twilio_error(400, code, _recipient_message(code, to, sender or service or ""))

    def _new_message(self, to: str, sender: str | None, service: str | None, body: str,
                     num_media: int) -> JSON:
        sid = "SM" + secrets.token_hex(16)
        now = format_datetime(self.clock().astimezone(UTC).replace(microsecond=0))
        base = f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{sid}"
        via_service = service is not None and sender is None
        return {
            "account_sid": self.account_sid,
            "api_version": API_VERSION,
            "body": body,
            "date_created": now,
            "date_sent": None,
            "date_updated": now,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": sender,
            "messaging_service_sid": service,
            "num_media": str(num_media),
            "num_segments": "0" if via_service else str(sms_segments(body)),
            "price": None,
            "price_unit": "USD",
            "sid": sid,
            "status": "accepted" if via_service else "queued",
            "subresource_uris": {"media": f"{base}/Media.json"},
            "to": to,
            "uri": f"{base}.json",
        }

    def _account(self) -> JSON:
        base = f"/{API_VERSION}/Accounts/{self.account_sid}"
        created = format_datetime(self.created_at)
        return {
            "auth_token": self.auth_token,
            "date_created": created,
            "date_updated": created,
            "friendly_name": self.friendly_name,
            "owner_account_sid": self.account_sid,
            "sid": self.account_sid,
            "status": "active",
            "subresource_uris": {"messages": f"{base}/Messages.json",
                                 "balance": f"{base}/Balance.json"},
            "type": "Full",
            "uri": f"{base}.json",
        }


def _recipient_message(code: int, to: str, sender: str) -> str:
    if code == 21211:
        return f"Invalid 'To' Phone Number: {_mask(to)}"
    if code == 21610:
        return "Attempt to send to unsubscribed recipient"
    if code == 21612:
        return (f"The 'To' phone number: {to}, is not currently reachable using the 'From' phone "
                f"number: {sender} via SMS.")
    return "'To' number is not a valid mobile number"


def _date_filter(value: str) -> datetime | date | None:
    """A ``DateSent`` value: ``YYYY-MM-DD`` (the documented GMT day) or an ISO 8601 instant
    ending in ``Z`` (what twilio-python sends for a datetime) [?: accepted by the live API]."""
    try:
        if "T" in value:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
        return date.fromisoformat(value)
    except ValueError:
        return None


def _sent_matches(message: JSON, key: str, bound: datetime | date) -> bool:
    """Whether ``message`` passes one DateSent filter; a message not sent yet (``date_sent``
    null: queued) passes none [?]."""
    if not message["date_sent"]:
        return False
    sent = parsedate_to_datetime(message["date_sent"])
    value: datetime | date = sent if isinstance(bound, datetime) else sent.date()
    if key == "DateSent<":
        return value <= bound  # type: ignore[operator]
    if key == "DateSent>":
        return value >= bound  # type: ignore[operator]
    return value == bound


def _basic_credentials(request: Request) -> tuple[str, str] | None:
    header = request.headers.get("authorization", "")
    if not header.startswith("Basic "):
        return None
    try:
        user, _, password = base64.b64decode(header[6:], validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return user, password


def _form(request: Request) -> dict[str, Any]:
    """The form body, single values unwrapped (repeated keys stay lists)."""
    try:
        parsed = parse_qs(request.body.decode(), keep_blank_values=True)
    except UnicodeDecodeError:
        return {}
    return {key: values[0] if len(values) == 1 else values for key, values in parsed.items()}


def _one(form: dict[str, Any], key: str) -> str | None:
    value = form.get(key)
    if isinstance(value, list):
        return value[0] if value else None
    return value


def _many(form: dict[str, Any], key: str) -> list[str]:
    value = form.get(key)
    if value is None:
        return []
    return value if isinstance(value, list) else [value]
