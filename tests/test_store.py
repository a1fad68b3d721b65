import os
import stat
import subprocess
import sys


from bsync.store import SCHEMA_VERSION, RunLock, Store


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_state_db_is_private_wal_and_migrated(tmp_path):
    path = tmp_path / "sub" / "state.db"
    with Store.open(path) as store:
        assert store.schema_version() == SCHEMA_VERSION
        assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert {"links", "cursors", "runs", "journal", "bookings", "inbox", "notifications"} <= set(store.db.table_names())
        store.save_link("p", "n:1", "ev1", content_hash="h")
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
        code = ("import sys; from bsync.store import RunLock; from bsync.errors import LockHeldError\n"
                f"try:\n    RunLock({str(state)!r}).acquire()\nexcept LockHeldError as e:\n    print(e); sys.exit(3)\n")
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert proc.returncode == 3 and "holds the lock" in proc.stdout and f"pid {os.getpid()}" in proc.stdout
    RunLock(state).acquire().release()  # free again once released
    assert mode(str(state) + ".lock") == 0o600
