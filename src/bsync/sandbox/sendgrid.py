"""Loopback emulator of SendGrid's v3 Mail Send API (``POST /v3/mail/send``) plus ``GET /v3/scopes``.

bsync sends booking notices through SendGrid; this server answers like the real API so the
notice code can be exercised end to end (with the real ``sendgrid`` package pointed at
``SendGridAPIClient(host=server.url)``) and what was "delivered" can be inspected in-process:
:attr:`SendGridSandbox.messages`, :meth:`messages_to`, :meth:`reject_address`,
:meth:`clear_messages`.  Those helpers are neither HTTP nor recorded.

Sources ("[doc]" official docs, "[obs]" a body the live API returned, quoted in a public issue
or log; "[2°]" a third-party mock or article; "[?]" an emulator choice):

* Status codes -- errors page (``sendgrid/docs`` ``API_Reference/Web_API_v3/Mail/errors.md``
  and its successor ``twilio.com/docs/sendgrid/api-reference/mail-send/errors``) [doc]: 202
  queued, 200 "valid but not queued" (sandbox mode only), 400/401/413/429/500.
* Sandbox mode -- ``mail_settings.sandbox_mode.enable: true`` validates the request like a real
  send and answers **200** instead of 202; nothing is delivered [doc] (sandbox-mode page).
  The enable flag must be a JSON boolean, else 400 "The sandbox mode enable param should be a
  boolean value." [doc].  Here a sandbox send is recorded in the request log and kept in
  :attr:`sandbox_messages`, never in :attr:`messages`.  Whether the real 200 carries an
  ``X-Message-Id`` is not documented; this emulator sends none [?].
* Success -- 202, empty body, ``Content-Type: text/plain; charset=utf-8``, ``X-Message-Id``
  (22 URL-safe base64 characters such as ``LrnZRsWQTPy-ItZ3IJR2vQ``) [obs] (sendgrid-python
  #245, sendgrid-ruby #81).  One id per request; each personalization becomes one entry of
  :attr:`messages` carrying that id.
* Error envelope -- ``{"errors":[{"message","field","help"}]}``, several errors at once when
  several fields are wrong (``from.email`` before ``personalizations.0.to.0.email``) [obs].
  Messages, fields and ``help`` anchors used here, each seen in a live response [obs]:
  "The personalizations field is required and must have at least one personalization."
  (``personalizations``, ``#-Personalizations-Errors``); "The to array is required for all
  personalization objects, and must have at least one email object with a valid email
  address." (``personalizations.N.to``); "The to email parameter is required." and "Does not
  contain a valid address." (``personalizations.N.to.M.email``, ``#message.personalizations.to``);
  "The from email does not contain a valid address." (``from.email``, ``#message.from``);
  "Invalid type. Expected: string, given: array." (type errors); the duplicate-recipient
  message (field ``personalizations.N``, ``#message.recipient-errors``); "If present,
  text/plain and text/html may only be provided once." (drupal sendgrid_integration MR 47;
  field ``content`` and ``help: null`` from a third-party mock [2°]).
  From the docs' error tables [doc], with fields/anchors following the same pattern [?]: the
  missing-``from`` text (its double spaces as the live API sends them [2°]), the subject and
  content requirements, the RFC 1341 content-order rule, attachment ``content``/``filename``/
  ``disposition`` rules, the 1000-personalization limit, categories and custom-args rules.
  Missing ``from``/``subject``/``content`` texts as in yKanazawa/sendgrid-dev's recordings [2°].
* Auth -- ``Authorization: Bearer <key>``; an unknown key answers 401 ``{"errors":[{"message":
  "The provided authorization grant is invalid, expired, or revoked","field":null,
  "help":null}]}`` [obs] (body "the live API returned for a revoked key"); no header at all
  answers ``{"errors":[{"field":null,"message":"authorization required"}]}`` [obs, 2016].
  Accepted: ``sandbox-token`` and keys registered with :meth:`add_api_key`.
* Rate limits -- the rate-limits page says every Web API response carries
  ``X-RateLimit-Limit/-Remaining/-Reset`` and shows the 429 body ``{"errors":[{"field":null,
  "message":"too many requests"}]}`` [doc]; but live ``/v3/mail/send`` responses quoted in
  issues carry none of them [obs], and the 600 req/min default excludes mail/send [doc,
  changelog 2019-10-10].  **Choice:** ``GET /v3/scopes`` carries them (limit 600 per minute);
  mail/send carries them only on a 429.  Injected 429s also carry the base server's
  ``Retry-After`` (SendGrid documents none) [?].
* ``GET /v3/scopes`` -- ``{"scopes": [...]}``; the list is the constructor's ``scopes``
  (default ``["mail.send"]``, what a restricted "Mail Send" key holds) [?].

Emulator choices [?]: :meth:`reject_address` makes later sends fail with
"Does not contain a valid address." on that recipient's field (the real API accepts a
suppressed address with 202 and drops it later; a synchronous failure is what tests need);
unknown routes answer 404 ``{"errors":[{"field":null,"message":"resource not found"}]}``;
attachment base64 may contain line breaks; address syntax is ``local@domain.tld`` without
spaces, at most 320 characters; ``send_at``, ``asm``, ``headers`` and tracking settings are
accepted without validation; the 20 MB size limit is not enforced.
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
import re
import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from bsync.sandbox.base import JSON, Request, Response, SandboxServer, route

STATIC_TOKEN = "sandbox-token"
HELP = "http://sendgrid.com/docs/API_Reference/Web_API_v3/Mail/errors.html"
JSON_TYPE = "application/json"
TEXT_TYPE = "text/plain; charset=utf-8"
SCOPES_RATE_LIMIT = 600  # per minute, the documented v3 default

MSG_BAD_GRANT = "The provided authorization grant is invalid, expired, or revoked"
MSG_NO_AUTH = "authorization required"
MSG_NO_PERSONALIZATIONS = ("The personalizations field is required and must have at least one "
                           "personalization.")
MSG_TOO_MANY_PERSONALIZATIONS = ("The personalization block is limited to 1000 personalizations per "
                                 "API request. You have provided {n} personalizations. Please "
                                 "consider splitting this into multiple requests and resending "
                                 "your request.")
MSG_TOO_MANY_RECIPIENTS = "There is a limit of 1000 total recipients (to + cc + bcc) per request."
MSG_TO_ARRAY = ("The to array is required for all personalization objects, and must have at least "
                "one email object with a valid email address.")
MSG_TO_EMAIL_REQUIRED = "The to email parameter is required."
MSG_INVALID_ADDRESS = "Does not contain a valid address."
MSG_DUPLICATE = ("Each email address in the personalization block should be unique between to, cc, "
                 "and bcc. We found the first duplicate instance of [{email}] in the {field} field.")
MSG_FROM_REQUIRED = ("The from object must be provided for every email send. It is an object that "
                     "requires the email parameter, but may also contain a name parameter.  e.g. "
                     '{"email" : "example@example.com"}  or {"email" : "example@example.com", '
                     '"name" : "Example Recipient"}.')
MSG_FROM_INVALID = "The from email does not contain a valid address."
MSG_SUBJECT_REQUIRED = ("The subject is required. You can get around this requirement if you use a "
                        "template with a subject defined or if every personalization has a subject "
                        "defined.")
MSG_SUBJECT_EMPTY = "The subject of your email must be a string at least one character in length."
MSG_CONTENT_REQUIRED = ("Unless a valid template_id is provided, the content parameter is required. "
                        "There must be at least one defined content block. We typically suggest "
                        "both text/plain and text/html blocks are included, but only one block is "
                        "required.")
MSG_CONTENT_TYPE = "A content type is required, this tells email clients how to display the email."
MSG_CONTENT_VALUE = "The content value must be a string at least one character in length."
MSG_CONTENT_ONCE = "If present, text/plain and text/html may only be provided once."
MSG_CONTENT_ORDER = ("Following RFC 1341, section 7.2, if either text/html or text/plain are to be "
                     "sent in your email: text/plain needs to be first, followed by text/html, "
                     "followed by any other content.")
MSG_ATTACHMENT_EMPTY = "The attachment content must be a string at least one character in length."
MSG_ATTACHMENT_BASE64 = "The attachment content must be base64 encoded."
MSG_FILENAME_REQUIRED = "filename is required."
MSG_DISPOSITION = ('The disposition of your attachment can be either "inline" or "attachment". '
                   "You provided {value}.")
MSG_CATEGORIES_TYPE = "Categories must be an array of strings."
MSG_CATEGORIES_COUNT = ("There is a limit of 10 categories for each email that is sent. You "
                        "provided {n} categories.")
MSG_CATEGORIES_UNIQUE = ("The categories must be a unique list, and you have included {value} more "
                         "than once.")
MSG_CUSTOM_ARGS = "All values of custom arguments object must be strings"
MSG_SANDBOX_BOOL = "The sandbox mode enable param should be a boolean value."
MSG_BAD_REQUEST = "Bad Request"

_EMAIL_RE = re.compile(r"^[^@\s<>()\[\],;:\"]+@[^@\s<>()\[\],;:\"]+\.[^@\s<>()\[\],;:\".]{2,}$")
_BASE64_RE = re.compile(r"^[A-Za-z0-9+/]*={0,2}$")
_GENERIC_MESSAGES = {401: MSG_BAD_GRANT, 404: "resource not found", 405: "method not allowed",
                     429: "too many requests", 500: "internal server error",
                     502: "bad gateway", 503: "service unavailable", 504: "gateway timeout"}


def _json(status: int, body: JSON, headers: dict[str, str] | None = None) -> Response:
    """A JSON response serialised compactly, as SendGrid's servers do."""
    return Response(status, json.dumps(body, separators=(",", ":")).encode(), headers=headers or {},
                    content_type=JSON_TYPE)


def _json_type(value: Any) -> str:
    """JSON Schema's name for the type of ``value``, as SendGrid's type errors spell it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _type_error(expected: str, value: Any) -> str:
    return f"Invalid type. Expected: {expected}, given: {_json_type(value)}."


def is_valid_address(email: str) -> bool:
    """The address syntax this emulator accepts (``local@domain.tld``, at most 320 characters)."""
    return len(email) <= 320 and bool(_EMAIL_RE.match(email))


def _decode_base64(text: str) -> bytes | None:
    compact = re.sub(r"[\r\n]", "", text)
    if len(compact) % 4 or not _BASE64_RE.match(compact):
        return None
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        return None


class _Errors:
    """The ``errors`` list of one 400, in the order the checks run."""

    def __init__(self) -> None:
        self.items: list[JSON] = []

    def add(self, message: str, field: str | None, anchor: str | None) -> None:
        self.items.append({"message": message, "field": field,
                           "help": f"{HELP}#{anchor}" if anchor else None})

    def __bool__(self) -> bool:
        return bool(self.items)


class SendGridSandbox(SandboxServer):
    """SendGrid v3 ``POST /v3/mail/send`` and ``GET /v3/scopes``."""

    name = "sendgrid"

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *,
                 scopes: list[str] | None = None) -> None:
        #: Zero-arg callable returning "now" (aware UTC) for ``received_at``; tests may replace it.
        self.clock: Callable[[], datetime] = lambda: datetime.now(UTC)
        self.scopes: list[str] = list(scopes) if scopes is not None else ["mail.send"]
        super().__init__(host, port)

    def reset_state(self) -> None:
        with self.lock:
            self.api_keys: set[str] = set()
            #: One entry per personalization of every accepted (202) send.
            self.messages: list[JSON] = []
            #: The same entries for sends made with sandbox mode on (answered 200, not delivered).
            self.sandbox_messages: list[JSON] = []
            self._rejected: dict[str, int] = {}
            self._window: tuple[int, int] = (0, 0)  # (minute, requests) for X-RateLimit-*

    # -- in-process helpers (not HTTP, not recorded) -------------------------------------------
    def add_api_key(self, key: str) -> str:
        """Accept ``key`` as a valid API key (besides ``sandbox-token``)."""
        if not isinstance(key, str) or not key:
            raise ValueError("an API key is a non-empty string")
        with self.lock:
            self.api_keys.add(key)
        return key

    def messages_to(self, email: str) -> list[JSON]:
        """Copies of the delivered messages with ``email`` among their to/cc/bcc (case-insensitive)."""
        wanted = email.lower()
        with self.lock:
            return [copy.deepcopy(m) for m in self.messages
                    if wanted in (a.lower() for a in (*m["to"], *m["cc"], *m["bcc"]))]

    def reject_address(self, email: str, status: int = 400) -> None:
        """Make later sends to ``email`` fail with ``status`` and "Does not contain a valid address."."""
        if not 400 <= status <= 499:
            raise ValueError("status must be a 4xx")
        with self.lock:
            self._rejected[email.lower()] = status

    def clear_messages(self) -> None:
        with self.lock:
            self.messages.clear()
            self.sandbox_messages.clear()

    # -- errors and auth -------------------------------------------------------------------------
    def error(self, status: int, message: str, code: str | None = None) -> Response:
        """SendGrid's envelope for errors without a field (auth, rate limit, server faults)."""
        if message.startswith(("Injected", "Rate limited")) or status == 405:
            message = _GENERIC_MESSAGES.get(status, message)  # injected faults speak SendGrid
        response = _json(status, {"errors": [{"field": None, "message": message}]})
        if status == 429:
            response.headers.update(self._rate_headers(remaining=0))
        return response

    def not_found_route(self, request: Request) -> Response:
        return self.error(404, "resource not found")

    def check_auth(self, request: Request) -> Response | None:
        header = request.headers.get("authorization")
        if header is None:
            return self.error(401, MSG_NO_AUTH)
        key = header[len("Bearer "):] if header.startswith("Bearer ") else ""
        with self.lock:
            if key == STATIC_TOKEN or key in self.api_keys:
                return None
        return _json(401, {"errors": [{"message": MSG_BAD_GRANT, "field": None, "help": None}]})

    def _rate_headers(self, *, remaining: int | None = None) -> dict[str, str]:
        minute = int(time.time() // 60)
        with self.lock:
            if remaining is None:
                start, used = self._window
                used = used + 1 if start == minute else 1
                self._window = (minute, used)
                remaining = max(0, SCOPES_RATE_LIMIT - used)
        return {"X-RateLimit-Limit": str(SCOPES_RATE_LIMIT),
                "X-RateLimit-Remaining": str(remaining),
                "X-RateLimit-Reset": str((minute + 1) * 60)}

    # -- routes ----------------------------------------------------------------------------------
    @route("GET", "/v3/scopes")
    def get_scopes(self, request: Request) -> Response:
        return _json(200, {"scopes": list(self.scopes)}, self._rate_headers())

    @route("POST", "/v3/mail/send")
    def mail_send(self, request: Request) -> Response:
        body = request.json
        if not isinstance(body, dict):
            return _json(400, {"errors": [{"message": MSG_BAD_REQUEST, "field": None, "help": None}]})
        errors = _validate(body)
        if errors:
            return _json(400, {"errors": errors.items})
        rejection = self._rejections(body)
        if rejection is not None:
            return rejection
        sandbox = ((body.get("mail_settings") or {}).get("sandbox_mode") or {}).get("enable") is True
        message_id = secrets.token_urlsafe(16)
        entries = _entries(body, message_id, self.clock(), sandbox)
        if sandbox:
            self.sandbox_messages.extend(entries)
            return Response(200, None, content_type=TEXT_TYPE)
        self.messages.extend(entries)
        return Response(202, None, headers={"X-Message-Id": message_id}, content_type=TEXT_TYPE)

    def _rejections(self, body: JSON) -> Response | None:
        errors = _Errors()
        status = 400
        for i, personalization in enumerate(body["personalizations"]):
            for kind in ("to", "cc", "bcc"):
                for j, recipient in enumerate(personalization.get(kind) or []):
                    rejected = self._rejected.get(recipient["email"].lower())
                    if rejected is not None:
                        status = rejected
                        errors.add(MSG_INVALID_ADDRESS, f"personalizations.{i}.{kind}.{j}.email",
                                   f"message.personalizations.{kind}")
        if not errors:
            return None
        return _json(status, {"errors": errors.items})


# -- validation --------------------------------------------------------------------------------

def _validate(body: JSON) -> _Errors:
    errors = _Errors()
    _check_from(body, errors)
    _check_personalizations(body, errors)
    _check_subject(body, errors)
    _check_content(body, errors)
    _check_attachments(body, errors)
    _check_categories(body, errors)
    _check_custom_args(body.get("custom_args"), "custom_args", errors)
    _check_mail_settings(body, errors)
    return errors


def _check_from(body: JSON, errors: _Errors) -> None:
    sender = body.get("from")
    if sender is not None and not isinstance(sender, dict):
        errors.add(_type_error("object", sender), "from", "message.from")
        return
    email = (sender or {}).get("email")
    if email is None or email == "":
        errors.add(MSG_FROM_REQUIRED, "from.email", "message.from")
    elif not isinstance(email, str):
        errors.add(_type_error("string", email), "from.email", "message.from")
    elif not is_valid_address(email):
        errors.add(MSG_FROM_INVALID, "from.email", "message.from")


def _check_personalizations(body: JSON, errors: _Errors) -> None:
    personalizations = body.get("personalizations")
    if personalizations is not None and not isinstance(personalizations, list):
        errors.add(_type_error("array", personalizations), "personalizations", "-Personalizations-Errors")
        return
    if not personalizations:
        errors.add(MSG_NO_PERSONALIZATIONS, "personalizations", "-Personalizations-Errors")
        return
    if len(personalizations) > 1000:
        errors.add(MSG_TOO_MANY_PERSONALIZATIONS.format(n=len(personalizations)), "personalizations",
                   "message.personalizations")
        return
    total = 0
    for i, personalization in enumerate(personalizations):
        if not isinstance(personalization, dict):
            errors.add(_type_error("object", personalization), f"personalizations.{i}",
                       "message.personalizations")
            continue
        total += _check_personalization(i, personalization, errors)
        if "subject" in personalization and personalization["subject"] in ("", None):
            errors.add(MSG_SUBJECT_EMPTY, f"personalizations.{i}.subject",
                       "message.personalizations.subject")
        _check_custom_args(personalization.get("custom_args"), f"personalizations.{i}.custom_args", errors)
    if total > 1000:
        errors.add(MSG_TOO_MANY_RECIPIENTS, "personalizations", "message.personalizations")


def _check_personalization(i: int, personalization: JSON, errors: _Errors) -> int:
    """Check one personalization's recipients; return how many there are."""
    to = personalization.get("to")
    if not isinstance(to, list) or not to:
        errors.add(MSG_TO_ARRAY, f"personalizations.{i}.to", "message.personalizations.to")
    seen: set[str] = set()
    count = 0
    for kind in ("to", "cc", "bcc"):
        recipients = personalization.get(kind)
        if recipients is None or (kind == "to" and not isinstance(recipients, list)):
            continue
        if not isinstance(recipients, list):
            errors.add(_type_error("array", recipients), f"personalizations.{i}.{kind}",
                       f"message.personalizations.{kind}")
            continue
        for j, recipient in enumerate(recipients):
            field = f"personalizations.{i}.{kind}.{j}.email"
            anchor = f"message.personalizations.{kind}"
            email = recipient.get("email") if isinstance(recipient, dict) else None
            if not isinstance(recipient, dict):
                errors.add(_type_error("object", recipient), f"personalizations.{i}.{kind}.{j}", anchor)
            elif email is None or email == "":
                errors.add(MSG_TO_EMAIL_REQUIRED if kind == "to" else MSG_INVALID_ADDRESS, field, anchor)
            elif not isinstance(email, str):
                errors.add(_type_error("string", email), field, anchor)
            elif not is_valid_address(email):
                errors.add(MSG_INVALID_ADDRESS, field, anchor)
            elif email.lower() in seen:
                errors.add(MSG_DUPLICATE.format(email=email, field=f"personalizations.{i}.{kind}"),
                           f"personalizations.{i}", "message.recipient-errors")
            else:
                seen.add(email.lower())
            count += 1
    return count


def _check_subject(body: JSON, errors: _Errors) -> None:
    if body.get("template_id"):
        return  # the template may define the subject
    subject = body.get("subject")
    if "subject" in body and not isinstance(subject, str):
        errors.add(_type_error("string", subject), "subject", "message.subject")
        return
    if subject == "":
        errors.add(MSG_SUBJECT_EMPTY, "subject", "message.subject")
        return
    if subject:
        return
    personalizations = body.get("personalizations")
    if isinstance(personalizations, list) and personalizations and all(
            isinstance(p, dict) and isinstance(p.get("subject"), str) and p["subject"]
            for p in personalizations):
        return
    errors.add(MSG_SUBJECT_REQUIRED, "subject", "message.subject")


def _check_content(body: JSON, errors: _Errors) -> None:
    content = body.get("content")
    if content is not None and not isinstance(content, list):
        errors.add(_type_error("array", content), "content", "message.content")
        return
    if not content:
        if not body.get("template_id"):
            errors.add(MSG_CONTENT_REQUIRED, "content", "message.content")
        return
    types: list[str] = []
    for i, block in enumerate(content):
        if not isinstance(block, dict):
            errors.add(_type_error("object", block), f"content.{i}", "message.content")
            continue
        kind, value = block.get("type"), block.get("value")
        if not isinstance(kind, str) or not kind:
            errors.add(MSG_CONTENT_TYPE, f"content.{i}.type", "message.content.type")
        else:
            types.append(kind.lower())
        if not isinstance(value, str) or not value:
            errors.add(MSG_CONTENT_VALUE, f"content.{i}.value", "message.content.value")
    if types.count("text/plain") > 1 or types.count("text/html") > 1:
        errors.add(MSG_CONTENT_ONCE, "content", None)
        return
    expected = [t for t in ("text/plain", "text/html") if t in types]
    if types[:len(expected)] != expected:
        errors.add(MSG_CONTENT_ORDER, "content", "message.content.value")


def _check_attachments(body: JSON, errors: _Errors) -> None:
    attachments = body.get("attachments")
    if attachments is None:
        return
    if not isinstance(attachments, list):
        errors.add(_type_error("array", attachments), "attachments", "message.attachments")
        return
    for i, attachment in enumerate(attachments):
        if not isinstance(attachment, dict):
            errors.add(_type_error("object", attachment), f"attachments.{i}", "message.attachments")
            continue
        content = attachment.get("content")
        if not isinstance(content, str) or not content:
            errors.add(MSG_ATTACHMENT_EMPTY, f"attachments.{i}.content", "message.attachments.content")
        elif _decode_base64(content) is None:
            errors.add(MSG_ATTACHMENT_BASE64, f"attachments.{i}.content", "message.attachments.content")
        filename = attachment.get("filename")
        if filename is None or filename == "":
            errors.add(MSG_FILENAME_REQUIRED, f"attachments.{i}.filename", "message.attachments.filename")
        elif not isinstance(filename, str):
            errors.add("The filename of your attachment must be a string.", f"attachments.{i}.filename",
                       "message.attachments.filename")
        disposition = attachment.get("disposition")
        if disposition is not None and disposition not in ("inline", "attachment"):
            errors.add(MSG_DISPOSITION.format(value=disposition), f"attachments.{i}.disposition",
                       "message.attachments.disposition")


def _check_categories(body: JSON, errors: _Errors) -> None:
    categories = body.get("categories")
    if categories is None:
        return
    if not isinstance(categories, list) or not all(isinstance(c, str) for c in categories):
        errors.add(MSG_CATEGORIES_TYPE, "categories", "message.categories")
        return
    if len(categories) > 10:
        errors.add(MSG_CATEGORIES_COUNT.format(n=len(categories)), "categories", "message.categories")
    for category in categories:
        if categories.count(category) > 1:
            errors.add(MSG_CATEGORIES_UNIQUE.format(value=category), "categories", "message.categories")
            break


def _check_custom_args(custom_args: Any, field: str, errors: _Errors) -> None:
    if custom_args is None:
        return
    anchor = "message.personalizations.custom_args" if field != "custom_args" else "message.custom_args"
    if not isinstance(custom_args, dict):
        errors.add(_type_error("object", custom_args), field, anchor)
        return
    if not all(isinstance(v, str) for v in custom_args.values()):
        errors.add(MSG_CUSTOM_ARGS, field, anchor)


def _check_mail_settings(body: JSON, errors: _Errors) -> None:
    settings = body.get("mail_settings")
    if settings is None:
        return
    if not isinstance(settings, dict):
        errors.add(_type_error("object", settings), "mail_settings", "message.mail_settings")
        return
    sandbox = settings.get("sandbox_mode")
    if sandbox is None:
        return
    if not isinstance(sandbox, dict) or not isinstance(sandbox.get("enable"), bool):
        errors.add(MSG_SANDBOX_BOOL, "mail_settings.sandbox_mode.enable",
                   "message.mail_settings.sandbox_mode.enable")


# -- what a validated send becomes ---------------------------------------------------------------

def _entries(body: JSON, message_id: str, received_at: datetime, sandbox: bool) -> list[JSON]:
    """One delivered-message entry per personalization of a valid request."""
    sender = body["from"]
    attachments = [{**copy.deepcopy(a), "data": _decode_base64(a["content"])}
                   for a in body.get("attachments") or []]
    entries = []
    for index, p in enumerate(body["personalizations"]):
        entries.append({
            "message_id": message_id,
            "personalization": index,
            "from": sender["email"],
            "from_name": sender.get("name"),
            "reply_to": (body.get("reply_to") or {}).get("email"),
            "to": [r["email"] for r in p.get("to") or []],
            "cc": [r["email"] for r in p.get("cc") or []],
            "bcc": [r["email"] for r in p.get("bcc") or []],
            "subject": p.get("subject") or body.get("subject"),
            "content": copy.deepcopy(body.get("content") or []),
            "attachments": copy.deepcopy(attachments),
            "custom_args": {**(body.get("custom_args") or {}), **(p.get("custom_args") or {})},
            "template_id": body.get("template_id"),
            "dynamic_template_data": copy.deepcopy(p.get("dynamic_template_data")),
            "categories": list(body.get("categories") or []),
            "send_at": p.get("send_at", body.get("send_at")),
            "received_at": received_at,
            "sandbox_mode": sandbox,
        })
    return entries
