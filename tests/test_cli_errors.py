"""Broken surroundings end a command with one clear error line, a hint and a documented
exit code, never a traceback (issue 11 §9).  Each condition is produced for real and the
CLI runs as a process through its console entry point (``bsync.cli.main``), where the
last-resort net lives."""

from __future__ import annotations

import errno
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest

from bsync.core.failures import boundary_error
from bsync.core.store import Store
from bsync import registry

LINK_PAIR = registry.link_pair("gcal")

AS_ROOT = os.geteuid() == 0


def bsync_process(bsync, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m bsync.cli ARGS --config <the test config>``, as a user's shell runs it."""
    return subprocess.run([sys.executable, "-m", "bsync.cli", *args, "--config", str(bsync.config)],
                          capture_output=True, text=True, timeout=120, check=False)


def assert_one_clear_error(proc: subprocess.CompletedProcess[str], code: int, *needles: str) -> str:
    """Exit ``code``; exactly one ``error:`` line on stderr, naming every needle; a hint
    line; no traceback and nothing on stdout.  Returns the error line."""
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == code, (proc.returncode, proc.stderr)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, proc.stderr
    for needle in needles:
        assert needle in errors[0], (needle, errors[0])
    assert any(line.startswith("hint:") for line in proc.stderr.splitlines()), proc.stderr
    assert proc.stdout == ""
    return errors[0]


@contextmanager
def unwritable(path: Path) -> Iterator[None]:
    """Make ``path`` (file or folder) unwritable for this process, for real.

    chmod is enough for a normal user; root ignores modes, so there the immutable flag
    (chattr +i) does it, which root too must respect.  Skips only when neither applies.
    """
    if not AS_ROOT:
        mode = path.stat().st_mode
        path.chmod(0o500 if path.is_dir() else 0o400)
        try:
            yield
        finally:
            path.chmod(mode)
        return
    if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode:
        pytest.skip("running as root, where only chattr +i makes a path unwritable, and it is unavailable here")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)


def test_a_state_folder_that_is_not_writable(bsync, tmp_path):
    folder = tmp_path / "locked"
    folder.mkdir()
    with unwritable(folder):
        proc = bsync_process(bsync, "resolve", "notion:abc", "--take", "notion", "--state", str(folder / "state.db"))
    assert_one_clear_error(proc, 2, str(folder))
    assert list(folder.iterdir()) == []


def test_a_state_db_file_that_is_read_only(bsync, tmp_path):
    state = tmp_path / "state.db"
    with Store.open(state) as store:  # an open conflict, so that `resolve` has something to write
        store.save_link(LINK_PAIR, "notion:abc", "gcal:abc", conflict={"fields": {"title": ["a", "b"]}})
    before = state.read_bytes()
    with unwritable(state):
        proc = bsync_process(bsync, "resolve", "notion:abc", "--take", "notion", "--state", str(state))
    assert_one_clear_error(proc, 2, str(state))
    assert state.read_bytes() == before


def test_state_pointing_at_a_directory(bsync, tmp_path):
    proc = bsync_process(bsync, "resolve", "notion:abc", "--take", "notion", "--state", str(tmp_path))
    line = assert_one_clear_error(proc, 2, str(tmp_path), "is a directory")
    assert "Is a directory" not in line  # said once, in words, not as errno text


def test_a_state_file_of_garbage(bsync, tmp_path):
    state = tmp_path / "state.db"
    state.write_bytes(os.urandom(8192))
    before = state.read_bytes()
    for command in (["status"], ["resolve", "notion:abc", "--take", "gcal"]):
        proc = bsync_process(bsync, *command, "--state", str(state))
        assert_one_clear_error(proc, 2, str(state), "is damaged")
    assert state.read_bytes() == before  # never "repaired" by overwriting


def corrupt_table(state: Path, table: str) -> None:
    """Overwrite the root page of ``table`` in a real, migrated state DB with garbage: the
    file opens fine, the damage shows only when the command reads that table."""
    with sqlite3.connect(state) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = ?", [table]).fetchone()[0]
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    conn.close()
    with state.open("r+b") as f:
        f.seek((root - 1) * page_size)
        f.write(b"\xde\xad\xbe\xef" * (page_size // 4))


def test_a_state_db_found_malformed_mid_run(bsync, tmp_path):
    state = tmp_path / "state.db"
    Store.open(state).close()
    corrupt_table(state, "runs")
    proc = bsync_process(bsync, "status", "--state", str(state))
    assert_one_clear_error(proc, 2, str(state), "malformed")
    assert f"mv {state} {state}.broken" in proc.stderr  # the way out
    verbose = bsync_process(bsync, "status", "--state", str(state), "-v")
    assert verbose.returncode == 2 and "Traceback" in verbose.stderr  # -v keeps it for a bug report


def test_a_full_disk(bsync, tmp_path):
    """A real full disk: a 16 KiB tmpfs mounted in a private user+mount namespace (no root
    needed where unprivileged user namespaces are allowed); SQLite gets ENOSPC and says
    SQLITE_FULL ("database or disk is full")."""
    disk = tmp_path / "disk"
    disk.mkdir()
    probe = subprocess.run(["unshare", "-rm", "true"], capture_output=True) if shutil.which("unshare") else None
    if probe is None or probe.returncode:
        pytest.skip("no unshare -rm here (user namespaces off): cannot mount a small tmpfs without root")
    command = [sys.executable, "-m", "bsync.cli", "resolve", "notion:abc", "--take", "notion",
               "--state", str(disk / "state.db"), "--config", str(bsync.config)]
    script = f"mount -t tmpfs -o size=16k tmpfs {disk} && exec \"$@\""
    proc = subprocess.run(["unshare", "-rm", "sh", "-c", script, "sh", *command],
                          capture_output=True, text=True, timeout=120, check=False)
    assert_one_clear_error(proc, 2, f"no space left for the state DB {disk / 'state.db'}")
    assert "free some disk space" in proc.stderr


def test_serve_on_a_port_out_of_range(bsync):
    proc = bsync_process(bsync, "serve", "--port", "99999")
    assert_one_clear_error(proc, 2, "port must be 1–65535")


def test_serve_on_a_busy_port_exits_2_not_the_lock_code(bsync):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = bsync_process(bsync, "serve", "--port", str(port))
    assert_one_clear_error(proc, 2, f"127.0.0.1:{port}", "already in use")
    assert not bsync.state_path.exists()  # stopped before touching the state DB


def test_a_config_path_that_is_a_directory(bsync, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "bsync.cli", "status", "--config", str(tmp_path)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert_one_clear_error(proc, 2, str(tmp_path), "is a directory, not a file")
    assert "does not exist" not in proc.stderr


@pytest.mark.parametrize("exc, code, words", [
    (OSError(errno.ENOSPC, "No space left on device"), 2, "no space left for the state DB /s/state.db"),
    (OSError(errno.EROFS, "Read-only file system", "/s/state.db-wal"), 2, "state DB /s/state.db can't be written"),
    (OSError(errno.EACCES, "Permission denied", "/s/google-token.json"), 2, "/s/google-token.json: Permission denied"),
    (sqlite3.OperationalError("attempt to write a readonly database"), 2, "state DB /s/state.db can't be written"),
    (sqlite3.OperationalError("database is locked"), 3, "stayed locked by another process"),
    (sqlite3.DatabaseError("file is not a database"), 2, "state DB /s/state.db is damaged"),
    (IsADirectoryError(errno.EISDIR, "Is a directory", "/s/state.db"), 2, "state DB /s/state.db is a directory"),
    (ConnectionResetError(errno.ECONNRESET, "Connection reset by peer"), 5, "a connection failed"),
])
def test_what_escapes_a_command_is_named_with_its_exit_code(exc, code, words):
    error = boundary_error(exc, Path("/s/state.db"))
    assert error.exit_code == code and words in str(error) and error.hint
