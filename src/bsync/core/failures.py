"""What SQLite or the OS said about the state DB, as one line with what to do next.

One classifier for two callers: :meth:`bsync.core.store.Store.open` (and ``open_readonly``),
which turn a failure to open or migrate into a :class:`~bsync.errors.StateError`, and
the CLI's entry point, which catches an ``sqlite3.Error`` or ``OSError`` that escaped a
command mid-run (the disk filled, the file system went read-only, a damaged page was
read).  Either way the user sees the path and a fix instead of a traceback, and nothing is
lost: every remote write is journalled before it is made, so the next run picks up where
this one stopped.
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
FULL_BELOW = 64 * 1024  # bytes free under which a disk I/O error is put down to a full disk

_FULL = (errno.ENOSPC, errno.EDQUOT)
_READ_ONLY = (errno.EROFS, errno.EACCES, errno.EPERM)


def state_error(path: Path | str, exc: BaseException) -> BsyncError:
    """The typed error for ``exc`` (an ``sqlite3.Error`` or ``OSError``) met using the state
    DB at ``path``: a StateError (exit 2), or LockHeldError (exit 3) when another process
    kept the DB locked past the busy timeout."""
    path = Path(path)
    text = str(exc)
    lowered = text.lower()
    code = getattr(exc, "errno", None)
    if isinstance(exc, sqlite3.DatabaseError) and ("not a database" in lowered or "malformed" in lowered):
        return StateError(f"state DB {path} is damaged ({text})", hint=STATE_REBUILD_HINT.format(path=path))
    if "disk is full" in lowered or code in _FULL or ("disk i/o error" in lowered and _nearly_full(path.parent)):
        return StateError(f"no space left for the state DB {path} ({exc.strerror if code in _FULL else text}); "
                          "the last write was rolled back",
                          hint=f"free some disk space (`df -h {path.parent}`) and run the command again: nothing is lost")
    if code == errno.EISDIR:
        return StateError(f"state DB {path} is a directory, not a file",
                          hint=f"point --state (or state_path) at a file, e.g. {path / 'state.db'}")
    if "readonly" in lowered or "read-only" in lowered or code in _READ_ONLY:
        return StateError(f"state DB {path} can't be written ({getattr(exc, 'strerror', None) or text})",
                          hint="make the file and its folder writable by this user (and not immutable: "
                               "lsattr/chattr -i), or point --state at a writable place")
    if "locked" in lowered:
        return LockHeldError(f"state DB {path} stayed locked by another process ({text})",
                             hint="run again when it is done; a process stuck for minutes is worth a look "
                                  f"(`fuser {path}`)")
    if "unable to open" in lowered:
        return StateError(f"state DB {path} can't be opened ({text})",
                          hint="check that its folder exists and is writable by this user (SQLite adds "
                               "-wal and -shm files beside it), or point --state at a writable place")
    return StateError(f"state DB {path}: {getattr(exc, 'strerror', None) or text}",
                      hint=f"`bsync doctor` checks the file, its folder and the free disk space; {RERUN}")


def boundary_error(exc: BaseException, state_path: Path | None) -> BsyncError:
    """The typed error for an ``sqlite3.Error`` or ``OSError`` no command caught.

    A broken connection is a remote's problem (exit 5); an OSError naming another file
    (a token, a template, a log) is about that file; the rest concerns the state DB.
    """
    if isinstance(exc, (ConnectionError, TimeoutError)) and not getattr(exc, "filename", None):
        return RemoteUnavailableError(f"a connection failed: {getattr(exc, 'strerror', None) or exc}",
                                      hint=f"check the network and the providers' base_url; {RERUN}")
    filename = getattr(exc, "filename", None)
    if isinstance(exc, OSError) and filename and (state_path is None or not _same_db(Path(filename), state_path)):
        return StateError(f"{filename}: {exc.strerror or exc}",
                          hint=f"check that file, its folder's permissions and the free disk space; {RERUN}")
    return state_error(state_path if state_path is not None else Path("state.db"), exc)


def _same_db(path: Path, state_path: Path) -> bool:
    """Whether ``path`` is the state DB or one of its companions (-wal, -shm, .lock)."""
    return str(path).startswith(str(state_path))


def _nearly_full(folder: Path) -> bool:
    """Whether the file system holding ``folder`` has (next to) no space left: SQLite
    reports some writes that hit a full disk (the WAL's) as a plain "disk I/O error"."""
    try:
        return shutil.disk_usage(folder).free < FULL_BELOW
    except OSError:
        return False
