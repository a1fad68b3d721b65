"""A recording, fault-injecting reverse proxy in front of a real CalDAV server.

CalDAV is tested against real servers (Radicale, Xandikos), not an emulator: their quirks
are the point.  But a real server neither counts the requests it answers nor fails on
command, and the tests need both: "a no-change rerun costs at most 2 requests", and "a run
killed at any request converges".  :class:`DavProxy` sits between bsync and the server and
gives a real server what every emulator in this package has, from the same
:class:`~bsync.sandbox.base.SandboxServer`:

* every request (PROPFIND, REPORT, PUT, DELETE, MKCALENDAR, ...) is recorded and counted
  (``proxy.requests``, ``proxy.count("PUT")``, ``GET /_sandbox/requests``);
* faults are injected the same way (``set_faults(fail_after_n=...)``, ``latency_ms``,
  ``fail_rate``, or ``POST /_sandbox/faults``): a failed request never reaches the server
  and is answered 500, as the emulators answer it;
* everything else is forwarded to the server with its method, path, query, headers and body,
  and the server's status, headers and body come back unchanged.

Nothing is rewritten on the way.  Radicale and Xandikos answer with absolute paths
(``<href>/alice/cal/x.ics</href>``), never with their own origin, and send no ``Location``,
so a client pointed at the proxy stays on it (``tests/test_sandbox_davproxy.py`` checks
that against both servers).  The proxy asks the server for an unencoded body
(``Accept-Encoding: identity``) so what it passes on is exactly what the server sent (a
server that compresses anyway has its body passed on decoded, without ``Content-Encoding``).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import httpx

from bsync.sandbox.base import Request, Response, SandboxServer

#: Headers that belong to one connection, not to the message (RFC 9110 §7.6.1), plus the
#: ones the proxy's own HTTP stack writes: they are never passed on in either direction.
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-connection", "proxy-authenticate",
                        "proxy-authorization", "te", "trailer", "transfer-encoding", "upgrade", "host",
                        "content-length", "accept-encoding", "date", "server"})

#: Request headers worth keeping in the request log: what makes a WebDAV request conditional
#: or shapes its answer.  (The log never keeps ``Authorization``.)
RECORDED_HEADERS = ("depth", "if-match", "if-none-match", "content-type", "destination", "overwrite")


class DavProxy(SandboxServer):
    """A loopback reverse proxy to ``upstream`` (a CalDAV server's origin, e.g.
    ``http://127.0.0.1:5232``), recording and failing requests like an emulator.

    Point the client at :attr:`url` instead of the server; paths are the server's own, so a
    calendar at ``<upstream>/alice/cal/`` is at ``<proxy.url>/alice/cal/``.  Use
    :meth:`proxied` to turn a server URL into the proxy's.
    """

    name = "caldav"
    methods = ("GET", "HEAD", "OPTIONS", "PUT", "POST", "PATCH", "DELETE", "PROPFIND", "PROPPATCH",
               "REPORT", "MKCOL", "MKCALENDAR", "COPY", "MOVE", "LOCK", "UNLOCK", "ACL")

    def __init__(self, upstream: str, host: str = "127.0.0.1", port: int = 0, *, timeout_s: float = 30.0) -> None:
        parts = httpx.URL(upstream)
        self.upstream = f"{parts.scheme}://{parts.netloc.decode('ascii')}"  # the origin: paths pass through
        self.http = httpx.Client(timeout=timeout_s, follow_redirects=False)
        super().__init__(host, port)

    def stop(self) -> None:
        super().stop()
        self.http.close()

    def proxied(self, url: str) -> str:
        """The proxy's URL for ``url`` on the server (the same path, the proxy's origin)."""
        if not url.startswith(self.upstream):
            raise ValueError(f"{url} is not on the proxied server {self.upstream}")
        return self.url + url[len(self.upstream):]

    # -- SandboxServer ----------------------------------------------------------------
    def error(self, status: int, message: str, code: str | None = None, **details: str) -> Response:
        """A WebDAV server's plain error answer (an injected failure, or the server gone)."""
        return Response(status, f"{message}\n", content_type="text/plain; charset=utf-8")

    def recorded_body(self, request: Request) -> Any:
        """The conditional headers and the body as text (XML or iCalendar), so tests can read
        what was asked: ``r.json["headers"]["if-none-match"] == "*"``."""
        return {"headers": {name: request.headers[name] for name in RECORDED_HEADERS if name in request.headers},
                "body": request.body.decode("utf-8", "replace") if request.body else None}

    def not_found_route(self, request: Request) -> Response:
        """The proxy declares no route of its own: every API request is forwarded."""
        return self.forward(request)

    # -- forwarding -----------------------------------------------------------------
    def forward(self, request: Request) -> Response:
        """Send ``request`` to the server and give back its answer as it came; 502 when the
        server can't be reached (as a real reverse proxy answers)."""
        query = urlencode(request.query, doseq=True)
        headers = {name: value for name, value in request.headers.items() if name not in HOP_BY_HOP}
        headers["accept-encoding"] = "identity"  # a body the proxy passes on byte for byte
        try:
            answer = self.http.request(request.method, f"{self.upstream}{request.path}{'?' + query if query else ''}",
                                       headers=headers, content=request.body)
        except httpx.HTTPError as exc:
            return self.error(502, f"bad gateway: {self.upstream} did not answer ({type(exc).__name__}: {exc})")
        passed = {name: value for name, value in answer.headers.items()
                  if name not in HOP_BY_HOP and name not in ("content-type", "content-encoding")}
        return Response(answer.status_code, answer.content, passed, content_type=answer.headers.get("content-type"))
