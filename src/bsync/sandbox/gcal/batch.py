"""Google's batch endpoint (``POST /batch/calendar/v3``, the discovery ``batchPath``).

Its wire format is ``multipart/mixed``, so ``googleapiclient.http.BatchHttpRequest`` works.
The answer is a 200 whose parts carry each call's own status; every call goes through the
same fault injection, auth check and handlers as a plain request, and is recorded with
``batch=True`` (see :meth:`BatchEndpoint.batch`).
"""

from __future__ import annotations

import email.message
import re
import secrets
from dataclasses import dataclass
from http import HTTPStatus
from urllib.parse import parse_qs, urlsplit

from bsync.sandbox.base import Request, Response, route
from bsync.sandbox.gcal.api import API, GoogleApi

BATCH_PATH = "/batch/calendar/v3"  # the discovery document's batchPath
MAX_BATCH_CALLS = 1000             # "You're limited to 1000 calls in a single batch request."

# -- wire format ------------------------------------------------------------------------------
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

class BatchEndpoint(GoogleApi):
    """``POST /batch/calendar/v3``: many API calls in one HTTP request."""

    #: Whether injected faults (``fail_after_n``, ``rate_limit_per_s``, ``fail_rate``) are also
    #: decided per inner call of a batch, each counting as one API call (Google counts a batch
    #: of n as n requests against quota and answers rate-limit errors per part).  The batch
    #: request itself is always subject to them, like any request reaching the front end.
    batch_part_faults: bool = True

    def check_auth(self, request: Request) -> Response | None:
        # A batch is authorised call by call: the outer Authorization header is applied to
        # inner calls that carry none, and a bad token makes each of them answer 401.
        if request.path == BATCH_PATH:
            return None
        return super().check_auth(request)

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
            self.refund_api_call()
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
        """Run one inner call as the base runs a request (recorded with ``batch=True``)."""
        target = urlsplit(call.target)
        # The outer request's query parameters and headers (but not its Content-* ones) apply
        # to every call; the call's own values win.
        query = {k: list(v) for k, v in outer.query.items()}
        query.update(parse_qs(target.query, keep_blank_values=True))
        headers = {k: v for k, v in outer.headers.items() if not k.startswith("content-")}
        headers.update(call.headers)
        inner = Request(method=call.method, path=target.path, query=query, headers=headers,
                        body=call.body)
        # All calls must go to this API (no /token, no nested batch, no /_sandbox).
        return self.dispatch_batched(inner, inject_faults=self.batch_part_faults,
                                     routable=inner.path.startswith(API + "/"))
