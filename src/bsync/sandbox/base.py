"""The loopback HTTP server every sandbox API is built on.

Each emulated API (Notion, Google Calendar, ...) subclasses :class:`SandboxServer`,
declares its routes with :func:`route`, and implements its own auth check and error
body.  This module owns what all of them share, so it exists once:

* a threaded HTTP/1.1 server on a loopback port (keep-alive, like the real APIs);
* recording of every API request (method, path, query, JSON body, status), readable
  in-process (``server.requests``) and over HTTP (``GET /_sandbox/requests``);
* ``POST /_sandbox/reset`` and ``POST /_sandbox/faults`` (SPEC §7);
* fault injection: ``latency_ms``, ``fail_after_n``, ``rate_limit_per_s`` and
  ``fail_rate`` (with ``fail_statuses``), answered with each API's own error body;
* :class:`SandboxApiError`, which a handler (or an in-process helper sharing its
  validation) raises to answer with the API's own error body;
* the pieces a batch endpoint needs to run the calls it carries like requests of their own
  (:meth:`SandboxServer.dispatch_batched`, :meth:`SandboxServer.refund_api_call`).

``/_sandbox/*`` requests are neither recorded nor counted.
"""

from __future__ import annotations

import json
import random
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import parse_qs, urlsplit

JSON = dict[str, Any]


@dataclass
class Request:
    """An incoming API request, as handlers see it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names
    body: bytes
    params: dict[str, str] = field(default_factory=dict)  # path parameters

    @property
    def json(self) -> Any:
        """The parsed JSON body, or None when the body is empty or not JSON."""
        if not self.body:
            return None
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    def arg(self, name: str, default: str | None = None) -> str | None:
        """First value of a query parameter."""
        values = self.query.get(name)
        return values[0] if values else default

    def args(self, name: str) -> list[str]:
        """All values of a repeated query parameter."""
        return list(self.query.get(name, []))


@dataclass
class Response:
    status: int
    body: Any = None  # dict/list -> JSON, bytes/str -> sent as is
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str | None = "application/json; charset=UTF-8"  # None: no Content-Type header

    def encode(self) -> bytes:
        if self.body is None:
            return b""
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode()
        return json.dumps(self.body).encode()


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    json: Any
    status: int
    batch: bool = False  # an inner call of a batch request, not an HTTP request of its own

    def as_dict(self) -> JSON:
        return {"method": self.method, "path": self.path, "query": self.query,
                "json": self.json, "status": self.status, "batch": self.batch}


@dataclass
class Faults:
    """Faults to inject; a POST to ``/_sandbox/faults`` replaces them all."""

    rate_limit_per_s: float | None = None
    fail_rate: float = 0.0
    fail_statuses: list[int] = field(default_factory=lambda: [500])
    latency_ms: int = 0
    fail_after_n: int | None = None
    seed: int | None = None

    KEYS = ("rate_limit_per_s", "fail_rate", "fail_statuses", "latency_ms", "fail_after_n", "seed")

    @classmethod
    def from_json(cls, body: JSON) -> "Faults":
        unknown = set(body) - set(cls.KEYS)
        if unknown:
            raise ValueError(f"unknown fault keys: {sorted(unknown)}")
        faults = cls(**body)
        for status in faults.fail_statuses:
            if status not in (429, 500, 502, 503, 504):
                raise ValueError(f"fail_statuses may hold 429/500/502/503/504, not {status}")
        return faults


class SandboxApiError(Exception):
    """An API's error answer, raised where the emulator decides it.

    Handlers and the in-process helpers tests call (``insert_event``, ``create_page``, ...)
    share one validation path; over HTTP the server turns the raised error into the API's
    own body with its :meth:`SandboxServer.error`, in process the caller sees the exception.
    ``code`` is the API's error code (Notion's ``code``, Google's ``reason``); ``details``
    are further fields the API's error body carries (Google: ``domain``, ``location``,
    ``location_type``), passed to ``error`` as keyword arguments.
    """

    def __init__(self, status: int, message: str, code: str | None = None, **details: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.details = details

    def __str__(self) -> str:
        return f"{self.status} {self.code}: {self.message}" if self.code else f"{self.status}: {self.message}"


Handler = Callable[..., Response]


def route(method: str, pattern: str) -> Callable[[Handler], Handler]:
    """Declare a handler for ``method`` on a path pattern such as ``/v1/pages/{page_id}``.

    ``{name}`` matches one path segment and is passed in ``request.params``.
    """

    regex = "^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern) + "$"

    def decorate(fn: Handler) -> Handler:
        fn._sandbox_route = (method.upper(), re.compile(regex))  # type: ignore[attr-defined]
        return fn

    return decorate


class SandboxServer:
    """Base class of one emulated API served on a loopback port."""

    name = "sandbox"
    methods: tuple[str, ...] = ("GET", "POST", "PATCH", "PUT", "DELETE")  # the HTTP methods it answers

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.lock = threading.RLock()
        self.requests: list[RecordedRequest] = []
        self.faults = Faults()
        self._api_count = 0
        self._bucket_tokens = 0.0
        self._bucket_time = time.monotonic()
        self._random = random.Random()
        self._routes = [
            (getattr(fn, "_sandbox_route")[0], getattr(fn, "_sandbox_route")[1], name)
            for name in dir(type(self))
            if callable(fn := getattr(type(self), name, None)) and hasattr(fn, "_sandbox_route")
        ]
        self._httpd = ThreadingHTTPServer((host, port), self._make_handler())
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None
        self.reset_state()

    # -- to implement in subclasses -------------------------------------------------
    def reset_state(self) -> None:
        """Forget all emulated data (called at start and on reset)."""

    def check_auth(self, request: Request) -> Response | None:
        """Return the API's 401 response when the request is not authorised."""
        return None

    def error(self, status: int, message: str, code: str | None = None, **details: str) -> Response:
        """The API's own error body for ``status`` (``details``: see :class:`SandboxApiError`)."""
        return Response(status, {"error": message})

    def not_found_route(self, request: Request) -> Response:
        return self.error(404, f"no route for {request.method} {request.path}")

    def recorded_body(self, request: Request) -> Any:
        """What the request log keeps as the request body (the parsed JSON by default)."""
        return request.json

    # -- lifecycle --------------------------------------------------------------------
    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "SandboxServer":
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"sandbox-{self.name}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:  # shutdown() waits for a serve_forever that must be running
            self._httpd.shutdown()
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> "SandboxServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def reset(self) -> None:
        with self.lock:
            self.requests.clear()
            self.faults = Faults()
            self._api_count = 0
            self.reset_state()

    def set_faults(self, **faults: Any) -> None:
        """Replace the injected faults (no arguments clears them)."""
        with self.lock:
            self.faults = Faults.from_json(faults)
            self._api_count = 0
            self._bucket_tokens = self.faults.rate_limit_per_s or 0.0
            self._bucket_time = time.monotonic()
            self._random = random.Random(self.faults.seed)

    # -- request log ----------------------------------------------------------------
    def clear_requests(self) -> None:
        with self.lock:
            self.requests.clear()

    def count(self, method: str | None = None, path_contains: str | None = None, *,
              include_batched: bool = False) -> int:
        """How many recorded requests match ``method`` and contain ``path_contains``.

        Only HTTP requests that went over the wire are counted, unless ``include_batched``
        also counts the inner calls of batch requests.
        """
        with self.lock:
            return sum(1 for r in self.requests
                       if (include_batched or not r.batch)
                       and (method is None or r.method == method)
                       and (path_contains is None or path_contains in r.path))

    def counts_by_method(self) -> dict[str, int]:
        """HTTP requests that went over the wire, by method (batched inner calls excluded)."""
        out: dict[str, int] = {}
        with self.lock:
            for r in self.requests:
                if not r.batch:
                    out[r.method] = out.get(r.method, 0) + 1
        return out

    # -- dispatch -------------------------------------------------------------------
    def _control(self, request: Request) -> Response:
        tail = request.path[len("/_sandbox"):]
        if request.method == "GET" and tail == "/requests":
            with self.lock:
                return Response(200, {"requests": [r.as_dict() for r in self.requests]})
        if request.method == "POST" and tail == "/reset":
            self.reset()
            return Response(200, {"ok": True})
        if request.method == "POST" and tail == "/faults":
            body = request.json
            if not isinstance(body, dict):
                return Response(400, {"error": "faults body must be a JSON object"})
            try:
                self.set_faults(**body)
            except (TypeError, ValueError) as exc:
                return Response(400, {"error": str(exc)})
            return Response(200, {"ok": True})
        return Response(404, {"error": f"unknown sandbox control {request.method} {tail}"})

    def _injected_fault(self) -> Response | None:
        f = self.faults
        with self.lock:
            self._api_count += 1
            if f.fail_after_n is not None and self._api_count > f.fail_after_n:
                return self.error(500, "Injected failure (fail_after_n).")
            if f.rate_limit_per_s:
                now = time.monotonic()
                self._bucket_tokens = min(f.rate_limit_per_s,
                                          self._bucket_tokens + (now - self._bucket_time) * f.rate_limit_per_s)
                self._bucket_time = now
                if self._bucket_tokens < 1:
                    wait = max(1, int((1 - self._bucket_tokens) / f.rate_limit_per_s + 0.999))
                    resp = self.error(429, "Rate limited (injected).")
                    resp.headers["Retry-After"] = str(wait)
                    return resp
                self._bucket_tokens -= 1
            if f.fail_rate and self._random.random() < f.fail_rate:
                status = self._random.choice(f.fail_statuses)
                resp = self.error(status, f"Injected failure ({status}).")
                if status == 429:
                    resp.headers["Retry-After"] = "1"
                return resp
        return None

    def dispatch(self, request: Request) -> Response:
        if request.path.startswith("/_sandbox/"):
            return self._control(request)
        if self.faults.latency_ms:
            time.sleep(self.faults.latency_ms / 1000)
        response = self._injected_fault()
        if response is None:
            response = self.check_auth(request)
        if response is None:
            response = self._route(request)
        with self.lock:
            self.requests.append(RecordedRequest(request.method, request.path, request.query,
                                                 self.recorded_body(request), response.status))
        return response

    def dispatch_batched(self, request: Request, *, inject_faults: bool = True,
                         routable: bool = True) -> Response:
        """Run one call carried inside a batch request as :meth:`dispatch` runs a request.

        Faults (unless ``inject_faults`` is off: the call then counts for none of them), the
        auth check, then its handler, or the API's 404 when the batch may not carry it
        (``routable`` off).  The call is recorded with ``batch=True`` and its body comes
        back encoded, ready to be written into the batch answer.
        """
        response = self._injected_fault() if inject_faults else None
        if response is None:
            response = self.check_auth(request)
        if response is None:
            response = self._route(request) if routable else self.not_found_route(request)
        response.body = response.encode()
        with self.lock:
            self.requests.append(RecordedRequest(request.method, request.path, request.query,
                                                 self.recorded_body(request), response.status, batch=True))
        return response

    def refund_api_call(self) -> None:
        """Give back what fault injection charged a request that passed it: one call of
        ``fail_after_n`` and one rate-limit token (for a batch whose calls are charged one
        by one instead)."""
        with self.lock:
            self._api_count -= 1
            if self.faults.rate_limit_per_s:
                self._bucket_tokens = min(self.faults.rate_limit_per_s, self._bucket_tokens + 1)

    def _route(self, request: Request) -> Response:
        method_allowed = False
        for method, regex, name in self._routes:
            match = regex.match(request.path)
            if not match:
                continue
            if method != request.method:
                method_allowed = True
                continue
            request.params = match.groupdict()
            try:
                with self.lock:  # serialise while locked: handlers may return live state
                    response = getattr(self, name)(request)
                    response.body = response.encode()
                    return response
            except SandboxApiError as exc:
                return self.error(exc.status, exc.message, exc.code, **exc.details)
            except Exception as exc:  # an emulator bug must surface as a 500, not a hang
                return self.error(500, f"sandbox error: {type(exc).__name__}: {exc}")
        if method_allowed:
            return self.error(405, f"method {request.method} not allowed on {request.path}")
        return self.not_found_route(request)

    def _make_handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in two writes; with Nagle on, a keep-alive client
            # waits ~40 ms for a delayed ACK on every request.
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

            def _handle(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                request = Request(
                    method=self.command,
                    path=parts.path,
                    query=parse_qs(parts.query, keep_blank_values=True),
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=body,
                )
                response = server.dispatch(request)
                payload = response.encode()
                try:
                    self.send_response(response.status)
                    if response.content_type and (payload or response.status not in (204, 304)):
                        self.send_header("Content-Type", response.content_type)
                    for key, value in response.headers.items():
                        self.send_header(key, value)
                    self.send_header("Content-Length", str(len(payload)))
                    # No Date here: send_response already wrote one (with Server), and two
                    # Date headers are a protocol error some clients reject or fold.
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True  # the client gave up (e.g. its timeout)

        for method in server.methods:
            setattr(_Handler, f"do_{method}", _Handler._handle)
        return _Handler
