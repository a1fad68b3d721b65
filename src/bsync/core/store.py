"""The local state store (SPEC §5): links, cursors, runs, journal, on SQLite via sqlite-utils.

Why each choice:

* WAL + ``synchronous=NORMAL``: one commit per remote write stays cheap, and a crash
  loses at most the last uncommitted write, which the remote-idempotent design recovers.
* Files are created 0600: the DB holds customer names and emails.
* A separate lock file (``flock``) serialises runs; cron and a human can't overlap.
* ``Store.open_readonly`` copies the DB into memory, so ``--plan`` can run the same code
  as apply while the file's bytes stay exactly as they were.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import sqlite3
import stat
import threading
import uuid
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, Iterator, Mapping

import sqlite_utils

from bsync.errors import LockHeldError, StateError
from bsync.core.failures import state_error as _state_error  # one classifier, shared with the CLI
from bsync.core.model import shared
from bsync.core.records import Link
from bsync.core.timeutil import now_utc

MIGRATIONS: list[tuple[int, str, str]] = [
    (1, "initial schema", """
        CREATE TABLE links (
            pair TEXT NOT NULL,
            source_key TEXT NOT NULL,
            target_key TEXT NOT NULL,
            source_version TEXT,
            target_version TEXT,
            content_hash TEXT,
            synced_at TEXT NOT NULL,
            tombstone INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (pair, source_key),
            UNIQUE (pair, target_key)
        );
        CREATE TABLE bookings (
            key TEXT PRIMARY KEY,
            source TEXT NOT NULL,
            data TEXT NOT NULL,
            updated_at TEXT
        );
        CREATE TABLE cursors (
            provider TEXT NOT NULL,
            scope TEXT NOT NULL,
            value TEXT,
            updated_at TEXT NOT NULL,
            PRIMARY KEY (provider, scope)
        );
        CREATE TABLE runs (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            command TEXT NOT NULL,
            started_at TEXT NOT NULL,
            finished_at TEXT,
            exit_code INTEGER,
            summary TEXT
        );
        CREATE TABLE journal (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            run_id INTEGER,
            pair TEXT,
            action TEXT NOT NULL,
            key TEXT NOT NULL,
            target_id TEXT,
            state TEXT NOT NULL CHECK (state IN ('intent', 'done', 'failed', 'dead')),
            attempts INTEGER NOT NULL DEFAULT 1,
            error TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        CREATE INDEX journal_state ON journal (state);
        CREATE INDEX journal_key ON journal (key);
        CREATE TABLE inbox (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            provider TEXT NOT NULL,
            delivery_id TEXT NOT NULL UNIQUE,
            received_at TEXT NOT NULL,
            verified INTEGER NOT NULL,
            payload TEXT,
            status TEXT,
            error TEXT
        );
        CREATE TABLE notifications (
            booking_key TEXT NOT NULL,
            kind TEXT NOT NULL,
            lead TEXT NOT NULL DEFAULT '',
            channel TEXT NOT NULL,
            sent_at TEXT,
            provider_message_id TEXT,
            UNIQUE (booking_key, kind, lead, channel)
        );
    """),
]

MIGRATIONS.append((2, "two-way sync: snapshots, target hashes, conflicts", """
        UPDATE links SET pair = 'notion+gcal' WHERE pair = 'notion-to-gcal';
        ALTER TABLE links ADD COLUMN target_hash TEXT;
        ALTER TABLE links ADD COLUMN snapshot TEXT;
        ALTER TABLE links ADD COLUMN conflict TEXT;
        ALTER TABLE links ADD COLUMN target_fields TEXT
    """))

MIGRATIONS.append((3, "platform bookings: aliases (a rescheduled Cal.com booking keeps its key)", """
        CREATE TABLE aliases (
            provider TEXT NOT NULL,
            external_id TEXT NOT NULL,
            key TEXT NOT NULL,
            PRIMARY KEY (provider, external_id)
        );
        CREATE INDEX inbox_status ON inbox (status)
    """))

MIGRATIONS.append((4, "notifications: exactly-once states, recipients, iCalendar sequence", """
        ALTER TABLE notifications ADD COLUMN state TEXT NOT NULL DEFAULT 'sent';
        ALTER TABLE notifications ADD COLUMN recipient TEXT;
        ALTER TABLE notifications ADD COLUMN sequence INTEGER;
        ALTER TABLE notifications ADD COLUMN fingerprint TEXT;
        ALTER TABLE notifications ADD COLUMN start TEXT;
        ALTER TABLE notifications ADD COLUMN run_id INTEGER;
        ALTER TABLE notifications ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE notifications ADD COLUMN error TEXT;
        ALTER TABLE notifications ADD COLUMN retryable INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE notifications ADD COLUMN updated_at TEXT;
        CREATE INDEX notifications_state ON notifications (state)
    """))

MIGRATIONS.append((5, "records that failed to read, or are drafts, until a read finds them valid", """
        CREATE TABLE record_issues (
            source TEXT NOT NULL,
            key TEXT NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('failure', 'draft')),
            title TEXT,
            reason TEXT NOT NULL,
            first_seen TEXT NOT NULL,
            last_seen TEXT NOT NULL,
            PRIMARY KEY (source, key)
        )
    """))

SCHEMA_VERSION = MIGRATIONS[-1][0]
NOTIFICATION_COLUMNS = ("booking_key, kind, lead, channel, state, recipient, sequence, fingerprint, start, "
                        "sent_at, provider_message_id, run_id, attempts, error, retryable, updated_at")
LINK_COLUMNS = ("pair, source_key, target_key, source_version, target_version, content_hash, synced_at, "
                "tombstone, target_hash, snapshot, conflict, target_fields")


class LinkMap(Mapping[str, Link]):
    """A pair's links, keyed by source key, read from the DB when looked at.

    Why not a dict: at 100,000 bookings the links with their parsed snapshots take over
    200 MB, and a sync or reconcile already holds the bookings and events read.  Looking one
    up is a primary-key query; iterating streams the rows, so only the links in use at a
    time are in memory.  It shows the DB as it is at each look (a run's own writes included),
    like the dict read again would.
    """

    __slots__ = ("_db", "_pair")

    def __init__(self, db: Any, pair: str) -> None:
        self._db = db
        self._pair = pair

    def __getitem__(self, source_key: str) -> Link:
        row = self._db.execute(f"SELECT {LINK_COLUMNS} FROM links WHERE pair = ? AND source_key = ?",
                               [self._pair, source_key]).fetchone()
        if row is None:
            raise KeyError(source_key)
        return Link.from_row(row)

    def __contains__(self, source_key: object) -> bool:
        return self._db.execute("SELECT 1 FROM links WHERE pair = ? AND source_key = ?",
                                [self._pair, source_key]).fetchone() is not None

    def __iter__(self) -> Iterator[str]:
        return (row[0] for row in self._db.execute(
            "SELECT source_key FROM links WHERE pair = ? ORDER BY source_key", [self._pair]).fetchall())

    def __len__(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM links WHERE pair = ?", [self._pair]).fetchone()[0]

    def values(self) -> Iterator[Link]:  # type: ignore[override]
        """Every link, built one row at a time (in source key order)."""
        for row in self._db.execute(f"SELECT {LINK_COLUMNS} FROM links WHERE pair = ? ORDER BY source_key",
                                    [self._pair]):
            yield Link.from_row(row)

    def items(self) -> Iterator[tuple[str, Link]]:  # type: ignore[override]
        """(source key, link) pairs, in source key order, built one row at a time."""
        return ((link.source_key, link) for link in self.values())

    def target_keys(self, *, live_only: bool = False) -> set[str]:
        """The linked target ids (only of non-tombstone links with ``live_only``), without the links."""
        where = " AND tombstone = 0" if live_only else ""
        return {shared(row[0]) for row in self._db.execute(f"SELECT target_key FROM links WHERE pair = ?{where}",
                                                           [self._pair])}


def _now() -> str:
    return now_utc().isoformat(timespec="seconds")


class Store:
    """Access to the state DB.  Use :meth:`open` for runs and :meth:`open_readonly` for plans.

    Connection policy: a Store is one SQLite connection, used by one thread at a time (the
    receiver serialises its request threads on one Store under a lock; the worker and every
    command open their own).  SQLite alone touches the file: never ``os.open``/``os.close``
    it, because closing any descriptor of a file drops every POSIX lock this process holds
    on it, and another process would then checkpoint and delete the WAL under our
    connections (SQLite's "How To Corrupt", §2.2).  Waits for a busy DB are SQLite's own
    (``busy_timeout``); migrations re-check the version inside their write transaction, so
    two processes opening a fresh DB at once apply each migration once.
    """

    BUSY_TIMEOUT_MS = 30_000  # a sync's transactions are short; a slow CI machine is not

    def __init__(self, db: sqlite_utils.Database, path: Path | None) -> None:
        self.db = db
        self.path = path

    # -- opening ------------------------------------------------------------------------
    @classmethod
    def open(cls, path: Path) -> "Store":
        """Open (creating 0600 if needed) and migrate the state DB at ``path``.

        Raises :class:`StateError` (exit 2) when the path is a directory, can't be created
        or written, is damaged, the disk is full, or a newer bsync wrote it.
        """
        path = Path(path)
        if path.is_dir():
            raise StateError(f"state_path {path} is a directory",
                             hint=f"point --state (or state_path) at a file, e.g. {path / 'state.db'}")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StateError(f"can't create the state folder {path.parent} ({exc.strerror})",
                             hint="create it, or point --state at a writable place") from None
        conn: sqlite3.Connection | None = None
        try:
            conn = cls._connect_private(path)
            conn.execute("PRAGMA synchronous=NORMAL")
            store = cls(sqlite_utils.Database(conn), path)
            store.migrate()
        except (sqlite3.Error, OSError) as exc:
            if conn is not None:
                conn.close()
            raise _state_error(path, exc) from None
        except BaseException:
            if conn is not None:
                conn.close()
            raise
        return store

    @classmethod
    def _connect_private(cls, path: Path) -> sqlite3.Connection:
        """A WAL connection to ``path``; a new file (and its -wal/-shm, which SQLite gives the
        database file's mode) is created 0600 by SQLite itself, under umask 077."""
        created = not path.exists()
        old_umask = os.umask(0o077) if created else None
        try:
            conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False,
                                   timeout=cls.BUSY_TIMEOUT_MS / 1000)
            try:
                conn.execute(f"PRAGMA busy_timeout={cls.BUSY_TIMEOUT_MS}")
                conn.execute("PRAGMA journal_mode=WAL")
            except BaseException:
                conn.close()
                raise
        finally:
            if old_umask is not None:
                os.umask(old_umask)
        if stat.S_IMODE(path.stat().st_mode) & 0o077:
            os.chmod(path, 0o600)  # by path: no descriptor of ours is opened or closed
        return conn

    @classmethod
    def open_readonly(cls, path: Path) -> "Store":
        """An in-memory copy of the DB (empty when the file does not exist yet).

        Everything written to it vanishes on close; the file is never opened for writing.
        Without a -wal file nobody has the DB open, so it is read ``immutable`` (a plain
        read-only open of a WAL database would create -wal/-shm files, and --plan must write
        nothing anywhere); if a writer appeared during the copy, it is taken again through
        SQLite's locks (``mode=ro``).
        """
        memory = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        path = Path(path)
        if path.is_dir():
            raise StateError(f"state_path {path} is a directory",
                             hint=f"point --state (or state_path) at a file, e.g. {path / 'state.db'}")
        if path.exists():
            try:
                cls._copy_into(path, memory)
            except (sqlite3.Error, OSError) as exc:
                memory.close()
                raise _state_error(path, exc) from None
        store = cls(sqlite_utils.Database(memory), None)
        store.refuse_newer_schema(path)
        store.migrate()
        return store

    @staticmethod
    def _copy_into(path: Path, memory: sqlite3.Connection) -> None:
        wal = Path(f"{path}-wal")

        def stamp() -> tuple[bool, int, int]:
            st = path.stat()
            return wal.exists(), st.st_mtime_ns, st.st_size

        before = stamp()
        for mode in (("ro&immutable=1", "ro") if not before[0] else ("ro",)):
            source = sqlite3.connect(f"file:{path}?mode={mode}", uri=True, timeout=Store.BUSY_TIMEOUT_MS / 1000)
            try:
                source.backup(memory)
            finally:
                source.close()
            if mode == "ro" or stamp() == before:
                return

    @classmethod
    def memory(cls) -> "Store":
        conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        store = cls(sqlite_utils.Database(conn), None)
        store.migrate()
        return store

    def close(self) -> None:
        self.db.conn.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- migrations -----------------------------------------------------------------------
    def schema_version(self) -> int:
        if "schema_migrations" not in self.db.table_names():
            return 0
        row = self.db.execute("SELECT MAX(version) FROM schema_migrations").fetchone()
        return row[0] or 0

    def migrate(self) -> None:
        """Apply the numbered migrations this DB has not seen, each in one transaction.

        The version is read again inside each write transaction, so processes that open a
        new DB at the same moment apply every migration once.  A DB from a newer bsync is
        refused before anything is written.
        """
        self.refuse_newer_schema()
        if self.schema_version() >= SCHEMA_VERSION:
            return
        self.db.execute("CREATE TABLE IF NOT EXISTS schema_migrations "
                        "(version INTEGER PRIMARY KEY, name TEXT, applied_at TEXT)")
        for version, name, sql in MIGRATIONS:
            with self.transaction():
                if version <= self.schema_version():
                    continue
                for statement in filter(str.strip, sql.split(";")):
                    self.db.execute(statement)
                self.db.execute("INSERT INTO schema_migrations VALUES (?, ?, ?)", [version, name, _now()])

    def refuse_newer_schema(self, where: Path | None = None) -> None:
        current = self.schema_version()
        if current > SCHEMA_VERSION:
            where = where or self.path or "the state DB"
            raise StateError(f"state DB was written by a newer bsync (schema {current} > {SCHEMA_VERSION}): "
                             f"upgrade bsync or use another --state ({where}); nothing was written")

    @contextmanager
    def transaction(self) -> Iterator[None]:
        conn = self.db.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    # -- links ----------------------------------------------------------------------------
    def links(self, pair: str) -> dict[str, Link]:
        """All links of a pair, keyed by source key (see :meth:`link_map` for a full read)."""
        return dict(self.link_map(pair).items())

    def link_map(self, pair: str) -> LinkMap:
        """All links of a pair, read from the DB as they are looked at (while the store is open).

        What a run over every booking uses: the links are never all in memory at once.
        """
        return LinkMap(self.db, pair)

    def links_get(self, pair: str, source_key: str) -> Link | None:
        row = self.db.execute(f"SELECT {LINK_COLUMNS} FROM links WHERE pair = ? AND source_key = ?",
                              [pair, source_key]).fetchone()
        return Link.from_row(row) if row else None

    def link_counts(self) -> dict[str, int]:
        """Live (non-tombstone) links per pair."""
        return {pair: count for pair, count in self.db.execute(
            "SELECT pair, COUNT(*) FROM links WHERE tombstone = 0 GROUP BY pair").fetchall()}

    def conflicts(self, pair: str) -> list[Link]:
        return [link for link in self.links(pair).values() if link.conflict and not link.resolution]

    def conflict_keys(self, pair: str) -> set[str]:
        """Source keys of links with a conflict, open or resolved."""
        return {row[0] for row in self.db.execute(
            "SELECT source_key FROM links WHERE pair = ? AND conflict IS NOT NULL", [pair])}

    def set_conflict(self, pair: str, source_key: str, conflict: dict[str, Any] | None) -> None:
        self.db.execute("UPDATE links SET conflict = ? WHERE pair = ? AND source_key = ?",
                        [json.dumps(conflict) if conflict else None, pair, source_key])

    def save_link(self, pair: str, source_key: str, target_key: str, *, source_version: str | None = None,
                  target_version: str | None = None, source_hash: str | None = None,
                  tombstone: bool = False, target_hash: str | None = None,
                  snapshot: dict[str, Any] | None = None, conflict: dict[str, Any] | None = None,
                  target_fields: dict[str, Any] | None = None) -> None:
        """Record that ``source_key`` corresponds to ``target_key`` (replacing older rows for either)."""
        args = [pair, source_key, target_key, source_version, target_version, source_hash, _now(),
                int(tombstone), target_hash, json.dumps(snapshot) if snapshot is not None else None,
                json.dumps(conflict) if conflict else None,
                json.dumps(target_fields) if target_fields is not None else None]
        try:
            self.db.execute(self._UPSERT_LINK, args)  # one statement in the common case
        except sqlite3.IntegrityError:  # the target belonged to another source key: move it
            with self.transaction():
                self.db.execute("DELETE FROM links WHERE pair = ? AND target_key = ? AND source_key != ?",
                                [pair, target_key, source_key])
                self.db.execute(self._UPSERT_LINK, args)

    _UPSERT_LINK = (
        f"INSERT INTO links ({LINK_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (pair, source_key) DO UPDATE SET target_key = excluded.target_key, "
        "source_version = excluded.source_version, target_version = excluded.target_version, "
        "content_hash = excluded.content_hash, synced_at = excluded.synced_at, "
        "tombstone = excluded.tombstone, target_hash = excluded.target_hash, "
        "snapshot = excluded.snapshot, conflict = excluded.conflict, target_fields = excluded.target_fields")

    # -- platform bookings ------------------------------------------------------------------
    def delete_link(self, pair: str, source_key: str) -> int:
        """Forget a mapping row (reconcile: one that points at nothing on either side)."""
        return self.db.execute("DELETE FROM links WHERE pair = ? AND source_key = ?", [pair, source_key]).rowcount

    def alias(self, provider: str, external_id: str) -> str | None:
        row = self.db.execute("SELECT key FROM aliases WHERE provider = ? AND external_id = ?",
                              [provider, external_id]).fetchone()
        return row[0] if row else None

    def set_alias(self, provider: str, external_id: str, key: str) -> None:
        self.db.execute("INSERT INTO aliases (provider, external_id, key) VALUES (?, ?, ?) "
                        "ON CONFLICT (provider, external_id) DO UPDATE SET key = excluded.key",
                        [provider, external_id, key])

    def save_booking(self, booking: Any) -> bool:
        """Store a platform booking's canonical copy; False when it was already stored as is."""
        from bsync.core.model import booking_to_json

        from bsync.core.model import booking_from_json

        data = booking_to_json(booking)
        row = self.db.execute("SELECT data FROM bookings WHERE key = ?", [booking.key]).fetchone()
        if row and row[0] == data:
            return False
        if row:  # an older state (a late webhook, a pull racing one) never overwrites a newer one
            stored = booking_from_json(row[0])
            if stored.updated_at and booking.updated_at and booking.updated_at < stored.updated_at:
                return False
        self.db.execute("INSERT INTO bookings (key, source, data, updated_at) VALUES (?, ?, ?, ?) "
                        "ON CONFLICT (key) DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at",
                        [booking.key, booking.source, data, _now()])
        return True

    def load_booking(self, key: str) -> Any:
        from bsync.core.model import booking_from_json

        row = self.db.execute("SELECT data FROM bookings WHERE key = ?", [key]).fetchone()
        return booking_from_json(row[0]) if row else None

    def load_bookings(self, source: str) -> list[Any]:
        from bsync.core.model import booking_from_json

        return [booking_from_json(row[0]) for row in
                self.db.execute("SELECT data FROM bookings WHERE source = ? ORDER BY key", [source])]

    # -- webhook inbox ----------------------------------------------------------------------
    def inbox_add(self, provider: str, delivery_id: str, *, verified: bool, payload: str,
                  status: str = "pending", error: str | None = None) -> bool:
        """Store a delivery durably; False when this delivery id was stored before (a duplicate)."""
        cursor = self.db.execute(
            "INSERT INTO inbox (provider, delivery_id, received_at, verified, payload, status, error) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (delivery_id) DO NOTHING",
            [provider, delivery_id, _now(), int(verified), payload, status, error])
        return cursor.rowcount == 1

    REJECTED_KEPT = 1000  # unverified deliveries kept for the admin to look at (newest)
    REJECTED_PREFIX = 512  # bytes of an unverified body kept, beside its size and sha256

    def inbox_reject(self, provider: str, body: bytes, reason: str) -> None:
        """Keep a trace of a delivery that failed verification, never its whole body:
        anyone can post, so what is kept per post and in all is bounded."""
        summary = json.dumps({"size": len(body), "sha256": hashlib.sha256(body).hexdigest(),
                              "prefix": body[:self.REJECTED_PREFIX].decode("utf-8", errors="replace")})
        with self.transaction():
            self.inbox_add(provider, f"unverified:{uuid.uuid4()}", verified=False, payload=summary,
                           status="rejected", error=reason)
            self.db.execute("DELETE FROM inbox WHERE status = 'rejected' AND id <= (SELECT id FROM inbox "
                            "WHERE status = 'rejected' ORDER BY id DESC LIMIT 1 OFFSET ?)", [self.REJECTED_KEPT])

    def inbox_prune(self, older_than: datetime) -> int:
        """Forget processed, ignored and rejected deliveries received before ``older_than``
        (pending and failed ones are kept whatever their age: they are work not yet done)."""
        return self.db.execute("DELETE FROM inbox WHERE status IN ('done', 'ignored', 'rejected') "
                               "AND received_at < ?", [older_than.isoformat(timespec="seconds")]).rowcount

    def inbox_oldest_pending(self) -> str | None:
        """When the oldest delivery still to act on arrived (``received_at``), or None."""
        row = self.db.execute("SELECT MIN(received_at) FROM inbox WHERE verified = 1 "
                              "AND status IN ('pending', 'failed')").fetchone()
        return row[0] if row else None

    def inbox_pending(self, limit: int = 500) -> list[dict[str, Any]]:
        return list(self.db.query("SELECT id, provider, delivery_id, payload, status FROM inbox "
                                  "WHERE verified = 1 AND status IN ('pending', 'failed') ORDER BY id LIMIT ?",
                                  [limit]))

    def inbox_set(self, entry_id: int, status: str, error: str | None = None) -> None:
        self.db.execute("UPDATE inbox SET status = ?, error = ? WHERE id = ?", [status, error, entry_id])

    def inbox_oldest_backlog(self) -> str | None:
        """When the oldest delivery of the backlog arrived: pending, failed, or with no status
        at all, as :meth:`inbox_counts` reports them (status's backlog), or None."""
        return self.db.execute("SELECT MIN(received_at) FROM inbox WHERE status IN ('pending', 'failed') "
                               "OR status IS NULL").fetchone()[0]

    def inbox_counts(self) -> dict[str, int]:
        return {status: n for status, n in
                self.db.execute("SELECT status, COUNT(*) FROM inbox GROUP BY status").fetchall()}

    # -- cursors --------------------------------------------------------------------------
    def cursor(self, provider: str, scope: str) -> str | None:
        row = self.db.execute("SELECT value FROM cursors WHERE provider = ? AND scope = ?",
                              [provider, scope]).fetchone()
        return row[0] if row else None

    def set_cursor(self, provider: str, scope: str, value: str | None) -> None:
        self.db.execute("INSERT INTO cursors (provider, scope, value, updated_at) VALUES (?, ?, ?, ?) "
                        "ON CONFLICT (provider, scope) DO UPDATE SET value = excluded.value, "
                        "updated_at = excluded.updated_at", [provider, scope, value, _now()])

    def cursors(self) -> list[dict[str, Any]]:
        return list(self.db.query("SELECT provider, scope, value, updated_at FROM cursors ORDER BY provider, scope"))

    # -- record issues (failing records and drafts) ---------------------------------------
    def record_issues(self, source: str | None = None) -> dict[str, dict[str, Any]]:
        """Source records a read reported as failing or as drafts, by key, oldest first.

        They stay here until a later read sees the record valid (or gone), so an incremental
        run that doesn't re-read a broken record still reports it.
        """
        where, args = ("WHERE source = ?", [source]) if source else ("", [])
        rows = self.db.query(f"SELECT source, key, kind, title, reason, first_seen, last_seen FROM record_issues "
                             f"{where} ORDER BY first_seen, key", args)
        return {row["key"]: row for row in rows}

    def save_record_issues(self, source: str, issues: list[tuple[str, str, str, str]], *,
                           cleared: set[str], clear_unlisted: bool) -> None:
        """Record ``issues`` ((key, kind, title, reason); first_seen is kept) and forget the
        ``cleared`` keys, or, after a complete read, every key not in ``issues``."""
        now = _now()
        listed = {key for key, *_ in issues}
        with self.transaction():
            for key, kind, title, reason in issues:
                self.db.execute(
                    "INSERT INTO record_issues (source, key, kind, title, reason, first_seen, last_seen) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (source, key) DO UPDATE SET kind = excluded.kind, "
                    "title = excluded.title, reason = excluded.reason, last_seen = excluded.last_seen",
                    [source, key, kind, title, reason, now, now])
            stale = set(self.record_issues(source)) - listed if clear_unlisted else cleared - listed
            for key in sorted(stale):
                self.db.execute("DELETE FROM record_issues WHERE source = ? AND key = ?", [source, key])

    # -- runs -----------------------------------------------------------------------------
    def start_run(self, command: str) -> int:
        cursor = self.db.execute("INSERT INTO runs (command, started_at) VALUES (?, ?)", [command, _now()])
        return int(cursor.lastrowid)

    def finish_run(self, run_id: int, exit_code: int, summary: Any) -> None:
        self.db.execute("UPDATE runs SET finished_at = ?, exit_code = ?, summary = ? WHERE id = ?",
                        [_now(), exit_code, json.dumps(summary, default=str), run_id])

    def recent_runs(self, limit: int = 10) -> list[dict[str, Any]]:
        rows = list(self.db.query(
            "SELECT id, command, started_at, finished_at, exit_code, summary FROM runs "
            "ORDER BY id DESC LIMIT ?", [limit]))
        for row in rows:
            row["summary"] = json.loads(row["summary"]) if row["summary"] else None
        return rows

    def run_history(self, limit: int) -> list[dict[str, Any]]:
        """The last ``limit`` runs, newest first, without their summaries: a summary can hold a
        long failure list, so a reader that wants only a few loads them with :meth:`run_summary`."""
        return list(self.db.query("SELECT id, command, started_at, finished_at, exit_code FROM runs "
                                  "ORDER BY id DESC LIMIT ?", [limit]))

    def run_summary(self, run_id: int) -> Any:
        """The summary a run finished with (None: still running, killed, or no such run)."""
        row = self.db.execute("SELECT summary FROM runs WHERE id = ?", [run_id]).fetchone()
        return json.loads(row[0]) if row and row[0] else None

    def run_starts(self, command: str, since: str) -> list[dict[str, Any]]:
        """``command`` and ``started_at`` of the runs of ``command`` or one of its forms
        (``sync`` and ``sync notion-to-gcal``) started at or after ``since``, oldest first."""
        return list(self.db.query("SELECT command, started_at FROM runs WHERE started_at >= ? AND "
                                  "(command = ? OR command LIKE ?) ORDER BY id", [since, command, f"{command} %"]))

    # -- journal --------------------------------------------------------------------------
    def journal_intent(self, run_id: int | None, pair: str, action: str, key: str,
                       target_id: str | None) -> int:
        """Record, before a remote write, that we are about to do it."""
        now = _now()
        cursor = self.db.execute(
            "INSERT INTO journal (run_id, pair, action, key, target_id, state, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, 'intent', ?, ?)", [run_id, pair, action, key, target_id, now, now])
        return int(cursor.lastrowid)

    def journal_done(self, entry_id: int, pair: str, key: str) -> None:
        """Mark the write done, and settle older unfinished entries for the same key."""
        now = _now()
        self.db.execute("UPDATE journal SET state = 'done', error = NULL, updated_at = ? WHERE id = ?",
                        [now, entry_id])
        self.db.execute("UPDATE journal SET state = 'done', error = 'settled by entry ' || ?, "
                        "updated_at = ? WHERE pair = ? AND key = ? AND state IN ('intent', 'failed') "
                        "AND id < ?", [entry_id, now, pair, key, entry_id])

    def journal_failed(self, entry_id: int, error: str, *, dead_after: int = 0) -> str:
        """Mark the write failed, folding earlier failures of the same write into it.

        After ``dead_after`` failed attempts (over runs) it becomes ``dead``: no longer tried
        until ``bsync retry``.  Returns the new state.
        """
        row = self.db.execute("SELECT pair, key, action FROM journal WHERE id = ?", [entry_id]).fetchone()
        earlier = self.db.execute(
            "SELECT COALESCE(MAX(attempts), 0) FROM journal WHERE pair IS ? AND key = ? AND action = ? "
            "AND state IN ('failed', 'dead') AND id < ?", [row[0], row[1], row[2], entry_id]).fetchone()[0]
        attempts = earlier + 1
        state = "dead" if dead_after and attempts >= dead_after else "failed"
        with self.transaction():
            self.db.execute("DELETE FROM journal WHERE pair IS ? AND key = ? AND action = ? "
                            "AND state IN ('failed', 'dead') AND id < ?", [row[0], row[1], row[2], entry_id])
            self.db.execute("UPDATE journal SET state = ?, error = ?, attempts = ?, updated_at = ? WHERE id = ?",
                            [state, error, attempts, _now(), entry_id])
        return state

    def unfinished(self, pair: str, key: str, action: str) -> bool:
        """Whether an earlier run began this write and did not finish it."""
        return self.db.execute("SELECT 1 FROM journal WHERE pair = ? AND key = ? AND action = ? "
                               "AND state IN ('intent', 'failed', 'dead') LIMIT 1", [pair, key, action]).fetchone() is not None

    def journal_keys(self, state: str, pair: str | None = None) -> set[str]:
        """Keys with journal entries in ``state`` (only those of ``pair`` when given)."""
        sql = "SELECT DISTINCT key FROM journal WHERE state = ?" + (" AND pair = ?" if pair else "")
        return {row[0] for row in self.db.execute(sql, [state, pair] if pair else [state])}

    def revive_dead(self) -> int:
        """Make dead entries failed again with a fresh attempt count (``bsync retry``)."""
        cursor = self.db.execute("UPDATE journal SET state = 'failed', attempts = 0, updated_at = ? "
                                 "WHERE state = 'dead'", [_now()])
        return cursor.rowcount

    def journal_counts(self, *, sync_only: bool = False) -> dict[str, int]:
        """Entries per state; ``sync_only`` leaves out notification sends (the notifications
        table reports those, and `bsync retry` is not how they are retried)."""
        where = " WHERE pair IS NOT 'notify'" if sync_only else ""
        return {state: count for state, count in
                self.db.execute(f"SELECT state, COUNT(*) FROM journal{where} GROUP BY state").fetchall()}

    def journal_entries(self, states: tuple[str, ...] = ("intent", "failed", "dead"),
                        limit: int = 50, *, sync_only: bool = False) -> list[dict[str, Any]]:
        marks = ", ".join("?" for _ in states)
        extra = " AND pair IS NOT 'notify'" if sync_only else ""
        return list(self.db.query(
            f"SELECT id, run_id, pair, action, key, target_id, state, attempts, error, updated_at "
            f"FROM journal WHERE state IN ({marks}){extra} ORDER BY id DESC LIMIT ?", [*states, limit]))


    # -- notifications ----------------------------------------------------------------------
    def notifications_for(self, keys: list[str] | None = None) -> dict[str, list[dict[str, Any]]]:
        """Notification rows by booking key (all of them, or those of ``keys``)."""
        out: dict[str, list[dict[str, Any]]] = {}
        if keys is None:
            rows = self.db.query(f"SELECT {NOTIFICATION_COLUMNS} FROM notifications")
        else:
            rows = (row for chunk in range(0, len(keys), 500)
                    for row in self.db.query(
                        f"SELECT {NOTIFICATION_COLUMNS} FROM notifications WHERE booking_key IN "
                        f"({', '.join('?' for _ in keys[chunk:chunk + 500])})", keys[chunk:chunk + 500]))
        for row in rows:
            out.setdefault(row["booking_key"], []).append(row)
        return out

    def notification_intent(self, run_id: int | None, *, booking_key: str, kind: str, lead: str, channel: str,
                            recipient: str, sequence: int | None, fingerprint: str, start: str) -> int:
        """Record, before sending, that this message is about to go out; returns its journal entry.

        The row is unique on (booking_key, kind, lead, channel): a row that exists already
        (a retry of a failed send, or an explicit resend of an uncertain one) is reused.
        """
        now = _now()
        with self.transaction():
            entry = self.journal_intent(run_id, "notify", kind, booking_key, f"{lead}/{channel}")
            self.db.execute(
                "INSERT INTO notifications (booking_key, kind, lead, channel, state, recipient, sequence, "
                "fingerprint, start, run_id, attempts, updated_at) VALUES (?, ?, ?, ?, 'intent', ?, ?, ?, ?, ?, 1, ?) "
                "ON CONFLICT (booking_key, kind, lead, channel) DO UPDATE SET state = 'intent', "
                "recipient = excluded.recipient, sequence = excluded.sequence, fingerprint = excluded.fingerprint, "
                "start = excluded.start, run_id = excluded.run_id, attempts = attempts + 1, error = NULL, "
                "retryable = 0, updated_at = excluded.updated_at",
                [booking_key, kind, lead, channel, recipient, sequence, fingerprint, start, run_id, now])
        return entry

    def notification_sent(self, entry: int, *, booking_key: str, kind: str, lead: str, channel: str,
                          message_id: str | None) -> None:
        now = _now()
        with self.transaction():
            self.db.execute("UPDATE notifications SET state = 'sent', sent_at = ?, provider_message_id = ?, "
                            "error = NULL, updated_at = ? WHERE booking_key = ? AND kind = ? AND lead = ? "
                            "AND channel = ?", [now, message_id, now, booking_key, kind, lead, channel])
            self.journal_done(entry, "notify", booking_key)

    def notification_failed(self, entry: int, error: str, *, retryable: bool, booking_key: str, kind: str,
                            lead: str, channel: str) -> None:
        with self.transaction():
            self.db.execute("UPDATE notifications SET state = 'failed', error = ?, retryable = ?, updated_at = ? "
                            "WHERE booking_key = ? AND kind = ? AND lead = ? AND channel = ?",
                            [error, int(retryable), _now(), booking_key, kind, lead, channel])
            self.db.execute("UPDATE journal SET state = 'failed', error = ?, updated_at = ? WHERE id = ?",
                            [error, _now(), entry])

    def notification_suppressed(self, *, booking_key: str, kind: str, lead: str, channel: str, sequence: int | None,
                                fingerprint: str, start: str, reason: str) -> None:
        """A message deliberately not sent (the first run's existing bookings): later changes
        still get notices, numbered after it."""
        self.db.execute(
            "INSERT OR IGNORE INTO notifications (booking_key, kind, lead, channel, state, sequence, fingerprint, "
            "start, error, updated_at) VALUES (?, ?, ?, ?, 'suppressed', ?, ?, ?, ?, ?)",
            [booking_key, kind, lead, channel, sequence, fingerprint, start, reason, _now()])

    def notification_found_sent(self, *, booking_key: str, kind: str, lead: str, channel: str,
                                message_id: str) -> None:
        """An uncertain message that the provider lists as sent: record it as sent, with the
        provider's id, and settle the interrupted run's journal intent for it."""
        now = _now()
        with self.transaction():
            self.db.execute("UPDATE notifications SET state = 'sent', sent_at = COALESCE(sent_at, ?), "
                            "provider_message_id = ?, error = 'uncertain; found sent at the provider', "
                            "updated_at = ? WHERE booking_key = ? AND kind = ? AND lead = ? AND channel = ? "
                            "AND state = 'intent'", [now, message_id, now, booking_key, kind, lead, channel])
            self.db.execute("UPDATE journal SET state = 'done', error = 'uncertain; found sent', updated_at = ? "
                            "WHERE pair = 'notify' AND action = ? AND key = ? AND target_id = ? AND state = 'intent'",
                            [now, kind, booking_key, f"{lead}/{channel}"])

    def notification_keys(self, state: str) -> set[str]:
        return {row[0] for row in self.db.execute("SELECT DISTINCT booking_key FROM notifications WHERE state = ?",
                                                  [state])}

    def dismiss_uncertain(self) -> int:
        """Record every uncertain message as delivered (the admin checked it went out)."""
        now = _now()
        with self.transaction():
            cursor = self.db.execute("UPDATE notifications SET state = 'sent', sent_at = COALESCE(sent_at, ?), "
                                     "error = 'uncertain; dismissed as delivered', updated_at = ? "
                                     "WHERE state = 'intent'", [now, now])
            self.db.execute("UPDATE journal SET state = 'done', error = 'uncertain; dismissed', updated_at = ? "
                            "WHERE pair = 'notify' AND state = 'intent'", [now])
        return cursor.rowcount

    def notifications_needing_attention(self, limit: int = 20) -> list[dict[str, Any]]:
        """Uncertain (still ``intent``: the run died mid-send) and failed notifications, newest first."""
        return list(self.db.query(
            "SELECT booking_key, kind, lead, channel, state, error, updated_at FROM notifications "
            "WHERE state = 'intent' OR (state = 'failed') ORDER BY updated_at DESC LIMIT ?", [limit]))

    def notification_counts(self) -> dict[str, int]:
        return {state: n for state, n in
                self.db.execute("SELECT state, COUNT(*) FROM notifications GROUP BY state").fetchall()}


class RunLock:
    """An exclusive lock next to the state DB (``<state>.lock``) that serialises runs.

    Holding it is what makes two runs (cron and a human, or the receiver's worker and
    cron) unable to overlap.  The kernel releases it when the process dies, so a killed run
    never leaves a stale lock behind.  ``wait=False`` (commands) fails at once with
    :class:`LockHeldError`; ``wait=True`` (the receiver's worker) blocks until it is free.

    Re-entrant within one thread: a pipeline that holds the lock can call a sync that
    takes it again.  Another thread of the same process contends like another process
    (``flock`` locks belong to the open file description, not the process).
    """

    _held: dict[tuple[str, int], list[int]] = {}  # (lock path, thread) -> [fd, depth]
    _held_lock = threading.Lock()

    def __init__(self, state_path: Path, *, wait: bool = False) -> None:
        self.path = Path(str(state_path) + ".lock")
        self.wait = wait
        self._key: tuple[str, int] | None = None

    def acquire(self) -> "RunLock":
        key = (os.path.abspath(self.path), threading.get_ident())
        with self._held_lock:
            if key in self._held:
                self._held[key][1] += 1
                self._key = key
                return self
        old_umask = os.umask(0o077)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600)
        except OSError as exc:
            raise StateError(f"can't create the run lock {self.path} ({exc.strerror})",
                             hint="make the state folder writable, or point --state at a writable place") from None
        finally:
            os.umask(old_umask)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if self.wait else fcntl.LOCK_NB))
        except BlockingIOError:
            holder = os.read(fd, 200).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise LockHeldError(f"another bsync run holds the lock {self.path} ({holder})",
                                hint="wait for it to finish; the lock is released when that process exits") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} since {datetime.now().astimezone().isoformat(timespec='seconds')}".encode(), 0)
        with self._held_lock:
            self._held[key] = [fd, 1]
        self._key = key
        return self

    def release(self) -> None:
        if self._key is None:
            return
        with self._held_lock:
            entry = self._held[self._key]
            entry[1] -= 1
            if entry[1] == 0:
                del self._held[self._key]
                fcntl.flock(entry[0], fcntl.LOCK_UN)
                os.close(entry[0])
        self._key = None

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
