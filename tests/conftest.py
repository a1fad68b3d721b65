"""Shared fixtures: one sandbox per test session (reset before each test) and a CLI runner."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from bsync.cli import app
from bsync.sandbox import Sandbox, SandboxServer
from bsync.sandbox.seed import write_sandbox_config


WRITE_METHODS = ("PATCH", "PUT", "DELETE", "MKCALENDAR", "MKCOL", "PROPPATCH", "COPY", "MOVE")  # WebDAV's too


def write_requests(sandbox: Sandbox, *others: SandboxServer) -> list[tuple[str, str, str]]:
    """Every write request the sandbox saw, and ``others`` (a DavProxy in front of a real
    CalDAV server); Notion's query POST is a read, /token is OAuth, PROPFIND and REPORT read."""
    out = []
    for server in (sandbox.notion, sandbox.google, *others):
        for r in server.requests:
            if r.batch:
                continue  # counted through its batch request
            if r.method in WRITE_METHODS or (
                    r.method == "POST" and not r.path.endswith(("/query", "/token"))):
                out.append((server.name, r.method, r.path))
    return out


def copy_example(tmp_path: Path, *, uncomment: tuple[str, ...] = ()) -> Path:
    """config.example.toml as `cp config.example.toml bsync.toml` makes it, optionally with
    the commented-out optional sections named in ``uncomment`` switched on as the file says."""
    lines, section = [], None
    for line in (Path(__file__).resolve().parent.parent / "config.example.toml").read_text().splitlines():
        table = re.match(r"# \[([a-z.]+)\]$", line)
        if table:
            section = table.group(1).split(".")[0]
        elif line.startswith("[") or not line.strip():
            section = None
        if section in uncomment and re.match(r"# (\[|[a-z_]+ = )", line):
            line = line[2:]
        lines.append(line)
    path = tmp_path / "bsync.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


class FakeClock:
    """A clock the sandboxes' ``clock`` attribute can be set to: time moves only when told."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


def converges_after_dying_at_every_call(sandbox: Sandbox, bsync: "Bsync", server: str | SandboxServer, *,
                                        setup: Any, state: Any, expected: Any, args: tuple[str, ...] = ("sync",),
                                        stride: int = 1, others: tuple[SandboxServer, ...] = ()) -> int:
    """For k = 0, stride, 2·stride, …: ``server`` (a sandbox's name, or a server such as a
    DavProxy) answers only k more calls, then fails every later one.  Each interrupted run
    must exit 5, the next run must reach ``expected`` (``state(sandbox)``), and a run after
    that must write nothing, to the sandbox nor to ``others`` (servers outside the sandbox
    bundle, reset with it).  Stops at the first k past the run's last call; returns how many
    crash points were tried."""
    faulty = getattr(sandbox, server) if isinstance(server, str) else server
    k = tried = 0
    while True:
        sandbox.reset()
        for other in others:
            other.reset()
        (bsync.folder / "state.db").unlink(missing_ok=True)
        bsync.configure()
        setup(sandbox, bsync)
        faulty.set_faults(fail_after_n=k)
        interrupted = bsync(*args)
        faulty.set_faults()
        if interrupted.exit_code == 0:
            return tried  # k is past the run's last call: every earlier point has been tried
        assert interrupted.exit_code == 5, (k, interrupted.stderr)
        recovered = bsync(*args)
        assert recovered.exit_code == 0, (k, recovered.stderr)
        assert state(sandbox) == expected, f"diverged when {faulty.name} failed after call {k}"
        sandbox.clear_requests()
        for other in others:
            other.clear_requests()
        assert bsync(*args[:1], *[a for a in args[1:] if a != "--force"]).exit_code == 0
        assert write_requests(sandbox, *others) == [], f"not settled after a failure at {faulty.name} call {k}"
        tried += 1
        k += stride


@pytest.fixture(scope="session")
def _sandbox():
    with Sandbox() as sb:
        yield sb


@pytest.fixture
def sandbox(_sandbox):
    _sandbox.reset()
    yield _sandbox
    _sandbox.reset()


@dataclass
class Result:
    exit_code: int
    stdout: str
    stderr: str

    @property
    def json(self) -> Any:
        return json.loads(self.stdout)


class Bsync:
    """Runs the real CLI in-process against the sandbox, with a config in a temp folder."""

    def __init__(self, sandbox: Sandbox, folder: Path) -> None:
        self.sandbox = sandbox
        self.folder = folder
        self.defaults: dict[str, Any] = {}  # [sync] keys every configure() starts from
        self.options: dict[str, Any] = {}  # other write_sandbox_config arguments (notify=True, ...)
        self.caldav: dict[str, str] | None = None  # a [caldav] section to add (see the bsync_caldav fixture)
        self.configure()

    def configure(self, **sync: Any) -> Path:
        self.config = write_sandbox_config(self.sandbox, self.folder, sync={**self.defaults, **sync} or None,
                                           **self.options)
        if self.caldav:
            table = "".join(f"{key} = {json.dumps(value)}\n" for key, value in self.caldav.items())
            self.config.write_text(self.config.read_text() + "\n[caldav]\n" + table)
        return self.config

    @property
    def state_path(self) -> Path:
        return self.folder / "state.db"

    def __call__(self, *args: str) -> Result:
        runner = CliRunner()
        result = runner.invoke(app, [*args, "--config", str(self.config)], catch_exceptions=False)
        return Result(result.exit_code, result.stdout, result.stderr)


@pytest.fixture
def bsync(sandbox, tmp_path) -> Bsync:
    return Bsync(sandbox, tmp_path)


# -- CalDAV: real servers (tests/caldav_servers.py) ----------------------------------------------
@pytest.fixture(scope="session")
def radicale():
    """One real Radicale for the session (htpasswd auth): a ``caldav_servers.CalDAVServer``."""
    from bsync.sandbox.caldav_servers import radicale_server

    with radicale_server() as server:
        yield server


@pytest.fixture(scope="session")
def xandikos():
    """One real Xandikos for the session (no auth): a ``caldav_servers.CalDAVServer``."""
    from bsync.sandbox.caldav_servers import xandikos_server

    with xandikos_server() as server:
        yield server


@pytest.fixture
def caldav_calendar(radicale) -> str:
    """The URL of a new, empty calendar collection on the session's Radicale (one per test),
    ending in ``/``; its credentials are ``radicale.username`` / ``radicale.password``."""
    return radicale.new_calendar()


# -- CalDAV through the recording proxy (bsync.sandbox.davproxy) -----------------------------------
@pytest.fixture(scope="session")
def _radicale_proxy(radicale):
    from bsync.sandbox.davproxy import DavProxy

    with DavProxy(radicale.url) as proxy:
        yield proxy


@pytest.fixture
def radicale_proxy(_radicale_proxy):
    """A :class:`~bsync.sandbox.davproxy.DavProxy` in front of the session's Radicale, its
    request log and faults cleared before and after each test: point a client at
    ``radicale_proxy.proxied(caldav_calendar)`` to count and fail its requests."""
    _radicale_proxy.reset()
    yield _radicale_proxy
    _radicale_proxy.reset()


@pytest.fixture
def bsync_caldav(bsync, radicale, caldav_calendar) -> Bsync:
    """The CLI runner with a ``[caldav]`` section naming a new, empty calendar on the session's
    Radicale (``bsync.caldav["url"]``), and ``[sync] pairs`` set to the CalDAV pairs (the
    two-way sync with it): Notion is still the sandbox's, Google is configured but not synced."""
    bsync.caldav = {"url": caldav_calendar, "username": radicale.username, "password": radicale.password}
    bsync.defaults["pairs"] = ["notion-to-caldav", "caldav-to-notion"]
    bsync.configure()
    return bsync


@pytest.fixture
def bsync_caldav_proxied(bsync_caldav, radicale_proxy, caldav_calendar) -> Bsync:
    """:func:`bsync_caldav` with ``[caldav] url`` naming the calendar through ``radicale_proxy``,
    so every request bsync sends to Radicale is recorded and can be failed."""
    bsync_caldav.caldav["url"] = radicale_proxy.proxied(caldav_calendar)
    bsync_caldav.configure()
    return bsync_caldav
