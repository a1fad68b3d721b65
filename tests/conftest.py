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
from bsync.sandbox import Sandbox
from bsync.sandbox.seed import write_sandbox_config


def write_requests(sandbox: Sandbox) -> list[tuple[str, str, str]]:
    """Every write request the sandbox saw (Notion's query POST is a read; /token is OAuth)."""
    out = []
    for server in (sandbox.notion, sandbox.google):
        for r in server.requests:
            if r.batch:
                continue  # counted through its batch request
            if r.method in ("PATCH", "PUT", "DELETE") or (
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


def converges_after_dying_at_every_call(sandbox: Sandbox, bsync: "Bsync", server: str, *, setup: Any, state: Any,
                                        expected: Any, args: tuple[str, ...] = ("sync",), stride: int = 1) -> int:
    """For k = 0, stride, 2·stride, …: ``server`` answers only k more calls, then fails every
    later one.  Each interrupted run must exit 5, the next run must reach ``expected``
    (``state(sandbox)``), and a run after that must write nothing.  Stops at the first k past
    the run's last call; returns how many crash points were tried."""
    k = tried = 0
    while True:
        sandbox.reset()
        (bsync.folder / "state.db").unlink(missing_ok=True)
        bsync.configure()
        setup(sandbox, bsync)
        getattr(sandbox, server).set_faults(fail_after_n=k)
        interrupted = bsync(*args)
        getattr(sandbox, server).set_faults()
        if interrupted.exit_code == 0:
            return tried  # k is past the run's last call: every earlier point has been tried
        assert interrupted.exit_code == 5, (k, interrupted.stderr)
        recovered = bsync(*args)
        assert recovered.exit_code == 0, (k, recovered.stderr)
        assert state(sandbox) == expected, f"diverged when {server} failed after call {k}"
        sandbox.clear_requests()
        assert bsync(*args[:1], *[a for a in args[1:] if a != "--force"]).exit_code == 0
        assert write_requests(sandbox) == [], f"not settled after a failure at {server} call {k}"
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
        self.configure()

    def configure(self, **sync: Any) -> Path:
        self.config = write_sandbox_config(self.sandbox, self.folder, sync={**self.defaults, **sync} or None,
                                           **self.options)
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
    from caldav_servers import radicale_server

    with radicale_server() as server:
        yield server


@pytest.fixture(scope="session")
def xandikos():
    """One real Xandikos for the session (no auth): a ``caldav_servers.CalDAVServer``."""
    from caldav_servers import xandikos_server

    with xandikos_server() as server:
        yield server


@pytest.fixture
def caldav_calendar(radicale) -> str:
    """The URL of a new, empty calendar collection on the session's Radicale (one per test),
    ending in ``/``; its credentials are ``radicale.username`` / ``radicale.password``."""
    return radicale.new_calendar()
