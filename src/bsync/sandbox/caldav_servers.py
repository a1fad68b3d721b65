"""Real CalDAV servers on loopback: Radicale (htpasswd auth) and Xandikos (no auth).

CalDAV is tested against real servers rather than an emulator of ours: each server's quirks
(what it does with ``If-None-Match: *``, sync tokens, free-busy REPORTs) are the point.  The
tests, ``bsync demo --calendar caldav`` and ``bench/caldav.py`` start them from here (the
servers come with the test extras; :func:`require` says how to install them).  Each
context manager starts the server as a child process on a free 127.0.0.1 port with its
storage in a temporary folder, waits until it answers HTTP, yields a :class:`CalDAVServer`, and
terminates the process (by its own pid) at exit.

* :func:`radicale_server`: ``python -m radicale --config <file>``, htpasswd ``plain`` auth with
  one user, ``owner_only`` rights, no delay after a failed login (the 401 tests stay fast).
  A fresh Radicale account has no calendar: :meth:`CalDAVServer.new_calendar` makes one.
* :func:`xandikos_server`: ``python -m xandikos.web --defaults``.  Xandikos checks no
  password over plain HTTP (its ``--htpasswd`` needs ``--autocert``), so any username and
  password are accepted; a 401 test must use Radicale.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import niquests

RADICALE_USER = "alice"
RADICALE_PASSWORD = "s3cret-app-password"


@dataclass(frozen=True)
class CalDAVServer:
    """A running CalDAV server: ``url`` is its root (what ``[caldav] url`` names), with the
    credentials it accepts and the principal path calendars are made under."""

    kind: str  # "radicale" | "xandikos"
    url: str
    username: str
    password: str
    principal_path: str  # "/alice/" on Radicale, "/user/" on Xandikos

    def new_calendar(self, name: str | None = None) -> str:
        """Make an empty calendar collection (MKCALENDAR through the caldav client) and return
        its URL, ending in ``/``.  Unique per call, so each test starts from an empty calendar."""
        import caldav

        cal_id = name or f"cal-{uuid.uuid4().hex[:12]}"
        with caldav.DAVClient(url=self.url, username=self.username, password=self.password) as client:
            principal = client.get_principal()
            calendar = principal.make_calendar(name=cal_id, cal_id=cal_id)
            return str(calendar.url)


def require(module: str = "radicale") -> None:
    """UsageError with the install command when the server's package is missing (it is in
    the test extras, not in bsync's own dependencies)."""
    import importlib.util

    from bsync.errors import UsageError

    if importlib.util.find_spec(module) is None:
        raise UsageError(f"the {module} package is not installed",
                         hint="install the test extras: pip install '.[test]' (or: pip install " + module + ")")


def use_caldav(config: Path, url: str, username: str, password: str, *, timeout_s: float = 10) -> None:
    """Rewrite a sandbox ``bsync.toml`` (``seed.write_sandbox_config``) for a business whose
    calendar is CalDAV: its ``[google]`` section becomes ``[caldav]`` naming ``url``.  The
    ``[sync] pairs`` are the caller's to set."""
    text = config.read_text()
    start = text.index("[google]\n")
    end = text.index("\n[", start) + 1
    section = "\n".join(["[caldav]", f'url = "{url}"', f'username = "{username}"', f'password = "{password}"',
                         f"timeout_s = {timeout_s}", "", ""])
    config.write_text(text[:start] + section + text[end:])


def free_port() -> int:
    """A loopback port nobody listens on now (the server binds it a moment later)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_until_answering(proc: subprocess.Popen, url: str, timeout_s: float = 30.0) -> None:
    """Poll ``url`` until the server answers any HTTP status; fail if the process died."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"CalDAV server exited with {proc.returncode} before answering {url}")
        try:
            niquests.request("OPTIONS", url, timeout=2)
            return
        except Exception:  # noqa: BLE001 - not listening yet
            time.sleep(0.1)
    raise RuntimeError(f"CalDAV server did not answer {url} within {timeout_s}s")


@contextlib.contextmanager
def _running(cmd: list[str], url: str, log: Path) -> Iterator[None]:
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            _wait_until_answering(proc, url)
            yield
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@contextlib.contextmanager
def radicale_server(username: str = RADICALE_USER, password: str = RADICALE_PASSWORD) -> Iterator[CalDAVServer]:
    """A Radicale on a free loopback port: htpasswd plain auth with one user, owner_only
    rights, filesystem storage in a temporary folder."""
    with tempfile.TemporaryDirectory(prefix="bsync-radicale-") as tmp:
        folder = Path(tmp)
        port = free_port()
        (folder / "users").write_text(f"{username}:{password}\n")
        config = folder / "config.ini"
        config.write_text(
            "[server]\n"
            f"hosts = 127.0.0.1:{port}\n"
            "[auth]\n"
            "type = htpasswd\n"
            f"htpasswd_filename = {folder / 'users'}\n"
            "htpasswd_encryption = plain\n"
            "delay = 0\n"
            "[rights]\n"
            "type = owner_only\n"
            "[storage]\n"
            f"filesystem_folder = {folder / 'collections'}\n"
            "[logging]\n"
            "level = warning\n"
        )
        url = f"http://127.0.0.1:{port}/"
        with _running([sys.executable, "-m", "radicale", "--config", str(config)], url, folder / "radicale.log"):
            yield CalDAVServer("radicale", url, username, password, f"/{username}/")


@contextlib.contextmanager
def xandikos_server() -> Iterator[CalDAVServer]:
    """A Xandikos on a free loopback port with its default calendar and address book.  It
    has no authentication here (any credentials pass): see the module docstring."""
    with tempfile.TemporaryDirectory(prefix="bsync-xandikos-") as tmp:
        folder = Path(tmp)
        port = free_port()
        url = f"http://127.0.0.1:{port}/"
        cmd = [sys.executable, "-m", "xandikos.web", "--defaults", "-d", str(folder / "data"),
               "--state-dir", str(folder / "state"), "-l", "127.0.0.1", "-p", str(port),
               "--current-user-principal", "/user/", "--no-detect-systemd"]
        with _running(cmd, url, folder / "xandikos.log"):
            yield CalDAVServer("xandikos", url, "user", "unused", "/user/")
