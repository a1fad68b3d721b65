"""What escapes a command at the process boundary, said as one line with what to do next.

Library code raises typed :mod:`bsync.errors`.  An ``sqlite3.Error`` or ``OSError`` that
still gets out (the disk filled mid-run, the file system went read-only, a page of the
state DB turned out malformed) is translated here, once, so the user sees the state DB's
path and a fix instead of a traceback.  Nothing is lost in any of these cases: every
remote write is journalled before it is made, so the next run picks up where this stopped.
"""

from __future__ import annotations

import errno
import shutil
import sqlite3
from pathlib import Path

from bsync.errors import BsyncError, LockHeldError, RemoteUnavailableError, StateError

RERUN = "then run again: nothing is lost, the next run picks up where this one stopped"
STATE_REBUILD_HINT = (
    "move it aside (`mv {path} {path}.broken`); the next `bsync sync` creates a new one and re-links "
    "the existing events and pages instead of duplicating them (run history, the retry journal and "
    "the record of sent notifications are lost)")

_FULL = (errno.ENOSPC, errno.EDQUOT)
FULL_BELOW = 64 * 1024  # bytes free under which a disk I/O error is put down to a full disk
_READ_ONLY = (errno.EROFS, errno.EACCES, errno.EPERM)


def boundary_error(exc: BaseException, state_path: Path | None) -> BsyncError:
    """The typed error for an ``sqlite3.Error`` or ``OSError`` no command caught."""
    state = str(state_path) if state_path is not None else "the state DB"
    if isinstance(exc, sqlite3.Error):
        return _sqlite_error(exc, state)
    assert isinstance(exc, OSError)
    if isinstance(exc, (ConnectionError, TimeoutError)) and not exc.filename:
        return RemoteUnavailableError(f"a connection failed: {exc.strerror or exc}",
                                      hint=f"check the network and the providers' base_url; {RERUN}")
    where = str(exc.filename) if exc.filename else state
    if where == str(state_path):
        where = f"state DB {where}"
    reason = exc.strerror or str(exc)
    if exc.errno in _FULL:
        return StateError(f"no space left for {where} ({reason})",
                          hint=f"free space on that disk (`df -h {Path(exc.filename or state).parent}`), {RERUN}")
    if exc.errno in _READ_ONLY:
        return StateError(f"cannot write {where}: {reason}",
                          hint=f"make it (and its folder) writable for this user, or point state_path / "
                               f"--state at a writable place; {RERUN}")
    if exc.errno == errno.EISDIR:
        return StateError(f"{where} is a directory, not a file",
                          hint=f"give a file path, e.g. --state {Path(exc.filename or state) / 'state.db'}")
    return StateError(f"{where}: {reason}", hint=f"fix the problem named above, {RERUN}")


def _nearly_full(folder: Path) -> bool:
    """Whether the file system holding ``folder`` has (next to) no space left: SQLite
    reports some writes that hit a full disk (the WAL's) as a plain "disk I/O error"."""
    try:
        return shutil.disk_usage(folder).free < FULL_BELOW
    except OSError:
        return False


def _sqlite_error(exc: sqlite3.Error, state: str) -> BsyncError:
    text = str(exc)
    lowered = text.lower()
    if "disk is full" in lowered or ("disk i/o error" in lowered and _nearly_full(Path(state).parent)):
        return StateError(f"state DB {state}: the disk is full ({text})",
                          hint=f"free space on its disk (`df -h {Path(state).parent}`), {RERUN}")
    if "readonly" in lowered or "read-only" in lowered:
        return StateError(f"state DB {state} is read-only ({text})",
                          hint=f"make the file and its folder writable for this user "
                               f"(`ls -l {state}`, `lsattr {state}` for the immutable flag); {RERUN}")
    if "unable to open database file" in lowered:
        return StateError(f"cannot open state DB {state} ({text})",
                          hint="make sure its folder exists and is writable for this user (SQLite adds "
                               f"-wal and -shm files beside it); {RERUN}")
    if "locked" in lowered or "busy" in lowered:
        return LockHeldError(f"state DB {state} stayed locked by another process ({text})",
                             hint="run again when it is done; a process stuck for minutes is worth a look "
                                  "(`fuser` on the file)")
    if isinstance(exc, sqlite3.DatabaseError) and ("malformed" in lowered or "not a database" in lowered):
        return StateError(f"state DB {state} is damaged ({text})", hint=STATE_REBUILD_HINT.format(path=state))
    return StateError(f"state DB {state}: {text}",
                      hint=f"`bsync doctor` checks it; if it is damaged, {STATE_REBUILD_HINT.format(path=state)}")
