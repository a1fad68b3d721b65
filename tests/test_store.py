import os
import sqlite3
import stat
import subprocess
import sys
import threading
import time

import pytest

from bsync.errors import LockHeldError, StateError
from bsync.core.store import SCHEMA_VERSION, RunLock, Store, _state_error


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_state_db_is_private_wal_and_migrated(tmp_path):
    path = tmp_path / "sub" / "state.db"
    with Store.open(path) as store:
        assert store.schema_version() == SCHEMA_VERSION
        assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert {"links", "cursors", "runs", "journal", "bookings", "inbox", "notifications"} <= set(store.db.table_names())
        store.save_link("p", "n:1", "ev1", source_hash="h")
    assert mode(path) == 0o600
    with Store.open(path) as store:  # reopening applies nothing twice
        assert store.schema_version() == SCHEMA_VERSION
        assert store.links("p")["n:1"].target_key == "ev1"


def test_readonly_copy_never_touches_the_file(tmp_path):
    path = tmp_path / "state.db"
    with Store.open(path) as store:
        store.save_link("p", "n:1", "ev1")
    before = path.read_bytes()
    with Store.open_readonly(path) as store:
        store.save_link("p", "n:2", "ev2")
        store.start_run("x")
        assert set(store.links("p")) == {"n:1", "n:2"}
    assert path.read_bytes() == before
    with Store.open_readonly(tmp_path / "absent.db") as store:
        assert store.links("p") == {}
    assert not (tmp_path / "absent.db").exists()


def test_link_map_reads_the_db_as_it_is_looked_at(tmp_path):
    """store.link_map() holds no rows: lookups and iteration read the DB, so a 100,000-link state
    is never in memory at once, and the map shows the run's own writes."""
    with Store.open(tmp_path / "s.db") as store:
        store.save_link("p", "n:2", "ev2", snapshot={"title": "Two"}, target_fields={"title": "Two"})
        store.save_link("p", "n:1", "ev1", tombstone=True)
        store.save_link("other", "n:3", "ev3")
        assert set(store.links("p")) == {"n:1", "n:2"}  # the plain dict, for small uses
        links = store.link_map("p")
        assert len(links) == 2 and "n:1" in links and "n:3" not in links
        assert list(links) == ["n:1", "n:2"] and [k for k, _ in links.items()] == ["n:1", "n:2"]
        assert links["n:2"].snapshot == {"title": "Two"} and links.get("n:3") is None
        assert links.target_keys() == {"ev1", "ev2"} and links.target_keys(live_only=True) == {"ev2"}
        with pytest.raises(KeyError):
            links["n:3"]
        store.save_link("p", "n:4", "ev4")  # written after the map was made: it shows
        assert links["n:4"].target_key == "ev4" and len(links) == 3
        store.delete_link("p", "n:2")
        assert "n:2" not in links and [link.source_key for link in links.values()] == ["n:1", "n:4"]


def test_link_unique_on_both_sides(tmp_path):
    with Store.open(tmp_path / "s.db") as store:
        store.save_link("p", "n:1", "ev1")
        store.save_link("p", "n:2", "ev1")  # the event now belongs to n:2
        assert set(store.links("p")) == {"n:2"}


def test_journal_done_settles_earlier_intents(tmp_path):
    with Store.open(tmp_path / "s.db") as store:
        old = store.journal_intent(1, "p", "create", "n:1", "ev1")
        new = store.journal_intent(2, "p", "create", "n:1", "ev1")
        store.journal_done(new, "p", "n:1")
        assert store.journal_counts() == {"done": 2}
        assert old != new


def test_lock_is_exclusive_across_processes(tmp_path):
    state = tmp_path / "state.db"
    with RunLock(state):
        code = ("import sys; from bsync.core.store import RunLock; from bsync.errors import LockHeldError\n"
                f"try:\n    RunLock({str(state)!r}).acquire()\nexcept LockHeldError as e:\n    print(e); sys.exit(3)\n")
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert proc.returncode == 3 and "holds the lock" in proc.stdout and f"pid {os.getpid()}" in proc.stdout
    RunLock(state).acquire().release()  # free again once released
    assert mode(str(state) + ".lock") == 0o600


def _count_from_another_process(path, table="cursors"):
    code = f"import sqlite3; print(sqlite3.connect({str(path)!r}).execute('SELECT COUNT(*) FROM {table}').fetchone()[0])"
    return int(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)


def test_opening_the_store_twice_in_one_process_keeps_the_other_connections_locks(tmp_path):
    """Issue 11 §1: a second Store.open in a process used to open and close the DB file
    itself, which drops every POSIX lock the process holds on it; the next process to close
    its connection then deleted the WAL under ours, and what we wrote after that was lost."""
    path = tmp_path / "state.db"
    first = Store.open(path)
    first.set_cursor("x", "before", "1")
    Store.open(path).close()  # the receiver's worker opening its own connection
    assert _count_from_another_process(path) == 1  # another process opens and closes
    for i in range(50):
        first.set_cursor("x", f"after-{i}", "1")
    assert _count_from_another_process(path) == 51
    first.close()
    assert _count_from_another_process(path) == 51
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_processes_opening_a_new_db_at_once_migrate_it_once(tmp_path):
    path = tmp_path / "state.db"
    code = f"from bsync.core.store import Store; Store.open({str(path)!r}).close()"
    procs = [subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True) for _ in range(6)]
    errors = [p.communicate()[1] for p in procs]
    assert [p.returncode for p in procs] == [0] * 6, errors
    with Store.open(path) as store:
        versions = [v for (v,) in store.db.execute("SELECT version FROM schema_migrations")]
        assert mode(path) == 0o600 and mode(f"{path}-wal") == 0o600 and mode(f"{path}-shm") == 0o600
    assert versions == list(range(1, SCHEMA_VERSION + 1))


def test_a_db_from_a_newer_bsync_is_refused_before_anything_is_written(tmp_path):
    path = tmp_path / "state.db"
    with Store.open(path) as store:
        store.db.execute("INSERT INTO schema_migrations VALUES (?, 'from the future', 'x')", [SCHEMA_VERSION + 3])
        store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    before = path.read_bytes()
    for opener in (Store.open, Store.open_readonly):
        with pytest.raises(StateError) as caught:
            opener(path)
        assert caught.value.exit_code == 2
        assert str(caught.value).startswith(f"state DB was written by a newer bsync (schema {SCHEMA_VERSION + 3} > "
                                            f"{SCHEMA_VERSION}): upgrade bsync or use another --state")
    assert path.read_bytes() == before


def test_unusable_state_paths_are_state_errors_that_say_what_to_do(tmp_path):
    with pytest.raises(StateError, match="is a directory") as caught:
        Store.open(tmp_path)
    assert "state.db" in caught.value.hint
    with pytest.raises(StateError, match="is a directory"):
        Store.open_readonly(tmp_path)
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"not sqlite at all " * 300)
    for opener in (Store.open, Store.open_readonly):
        with pytest.raises(StateError, match="is damaged") as caught:
            opener(garbage)
        assert f"mv {garbage}" in caught.value.hint
    (tmp_path / "file").write_text("a file where a folder should be")
    with pytest.raises(StateError, match="can't create the state folder"):
        Store.open(tmp_path / "file" / "state.db")


def test_a_full_disk_is_a_state_error_and_loses_nothing_written_before(tmp_path):
    """SQLite's own SQLITE_FULL, produced for real with max_page_count."""
    path = tmp_path / "state.db"
    with Store.open(path) as store:
        store.set_cursor("keep", "me", "1")
        pages = store.db.execute("PRAGMA page_count").fetchone()[0]
        store.db.execute(f"PRAGMA max_page_count={pages}")
        with pytest.raises(sqlite3.OperationalError, match="full") as caught:
            store.db.execute("INSERT INTO bookings (key, source, data) VALUES ('k', 's', ?)", ["x" * 100_000])
        error = _state_error(path, caught.value)
    assert error.exit_code == 2 and "no space left" in str(error) and "free some disk space" in error.hint
    with Store.open(path) as store:
        assert store.cursor("keep", "me") == "1"


def test_run_lock_is_reentrant_in_a_thread_and_exclusive_between_threads(tmp_path):
    state = tmp_path / "state.db"
    outer = RunLock(state).acquire()
    with RunLock(state):  # the serve worker's pipeline calling run_sync
        pass
    seen: list[str] = []

    def other_thread():
        try:
            RunLock(state).acquire()
        except LockHeldError:
            seen.append("held")
        waited = RunLock(state, wait=True).acquire()  # blocks until the outer lock goes
        seen.append("acquired")
        waited.release()

    thread = threading.Thread(target=other_thread)
    thread.start()
    time.sleep(0.3)
    assert seen == ["held"]  # still waiting: the nested release did not free the lock
    outer.release()
    thread.join(timeout=5)
    assert seen == ["held", "acquired"]
