"""The listening socket of ``bsync serve``, bound before anything else starts.

Binding it here rather than inside uvicorn turns a bad or busy address into one line and
exit code 2 (a setup problem: pick another port or stop the other process) instead of a
traceback, or uvicorn's own exit 3, which bsync uses for "another run holds the lock".
"""

from __future__ import annotations

import errno
import socket

from bsync.errors import UsageError

WHERE = "--port or [server] port"


def check_port(port: int) -> int:
    """A TCP port a server can be asked to listen on: 1–65535."""
    if not 1 <= port <= 65535:
        raise UsageError(f"port {port}: port must be 1–65535 ({WHERE})",
                         hint="e.g. --port 8080; keep it above 1023 unless bsync runs with the privilege to bind it")
    return port


def listening_socket(host: str, port: int) -> socket.socket:
    """A bound, listening TCP socket on ``host:port`` (IPv6 when the host has a colon).

    SO_REUSEADDR, as uvicorn sets it, lets a restarted receiver rebind at once while old
    connections linger in TIME_WAIT; a port some process is *listening* on still fails.
    """
    check_port(port)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise _bind_error(exc, host, port) from None
    sock.set_inheritable(True)
    return sock


def _bind_error(exc: OSError, host: str, port: int) -> UsageError:
    address = f"{host}:{port}"
    if exc.errno == errno.EADDRINUSE:
        return UsageError(f"cannot listen on {address}: the port is already in use",
                          hint=f"stop the process using it (`ss -ltnp 'sport = :{port}'` shows it), "
                               f"or choose another with {WHERE}")
    if exc.errno == errno.EACCES:
        return UsageError(f"cannot listen on {address}: permission denied",
                          hint=f"ports below 1024 need privileges; use a higher one ({WHERE}) behind the proxy")
    if exc.errno == errno.EADDRNOTAVAIL or isinstance(exc, socket.gaierror):
        return UsageError(f"cannot listen on {address}: this machine has no such address ({exc.strerror or exc})",
                          hint="use 127.0.0.1 (behind a reverse proxy), 0.0.0.0, or an address of this machine "
                               "(--host or [server] host)")
    return UsageError(f"cannot listen on {address}: {exc.strerror or exc}",
                      hint="check --host and --port ([server] host and port)")
