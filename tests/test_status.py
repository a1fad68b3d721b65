"""`bsync status` answers "did last night's sync work?" on healthy and broken setups, and
two overlapping runs never both write."""

from __future__ import annotations

import subprocess
import sys
import threading
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from bsync.sandbox.seed import booking_properties
from bsync.status import expected_from_history, prometheus_text
from bsync.store import Store

WAW = ZoneInfo("Europe/Warsaw")


def add(sandbox, title="Rex – groom", days=3):
    start = datetime.now(WAW).replace(hour=10, minute=0, second=0, microsecond=0) + timedelta(days=days)
    return sandbox.notion.create_page(booking_properties(title, start=start, end=start + timedelta(hours=1)))["id"]


def test_healthy_status_shows_the_last_run_per_command_and_success(bsync, sandbox):
    add(sandbox)
    assert bsync("sync").exit_code == 0
    result = bsync("status", "--json")
    assert result.exit_code == 0
    sync = result.json["commands"]["sync"]
    assert sync["last"]["exit_code"] == 0 and sync["last_success"]["id"] == sync["last"]["id"]
    assert sync["last"]["summary"]["created"] == 1
    assert result.json["links"] == {"notion+gcal": 1}
    assert result.json["inbox"]["backlog"] == 0 and result.json["conflicts"] == []
    assert all(c["age_s"] is not None and c["age_s"] < 60 for c in result.json["cursors"])
    text = bsync("status").stdout
    assert "Last run per command" in text and "this one" in text


def test_a_failed_night_shows_the_error_and_the_last_success(bsync, sandbox):
    add(sandbox)
    assert bsync("sync").exit_code == 0
    bsync.config.write_text(bsync.config.read_text().replace('token = "sandbox-token"', 'token = "wrong-token"', 1))
    assert bsync("sync").exit_code == 4
    bsync.config.write_text(bsync.config.read_text().replace('token = "wrong-token"', 'token = "sandbox-token"', 1))
    result = bsync("status", "--json")
    sync = result.json["commands"]["sync"]
    assert sync["last"]["exit_code"] == 4 and "Notion" in sync["last"]["summary"]["error"]
    assert sync["last_success"]["id"] < sync["last"]["id"]
    assert "wrong-token" not in result.stdout


def test_broken_setups_fail_fast_with_what_to_do(bsync, sandbox, tmp_path):
    bsync("sync")
    bsync.state_path.write_bytes(b"this is not sqlite" * 100)
    result = bsync("status")
    assert result.exit_code == 2 and "is damaged" in result.stderr and "mv " in result.stderr
    bsync.config.write_text(bsync.config.read_text().replace('timezone = "Europe/Warsaw"', 'timezone = "Mars/Olympus"'))
    result = bsync("status")
    assert result.exit_code == 2 and "timezone" in result.stderr


def test_inbox_backlog_uncertain_notifications_and_dead_writes_are_visible(bsync, sandbox):
    bsync("sync")
    with Store.open(bsync.state_path) as store:
        store.inbox_add("calcom", "d-1", verified=True, payload="{}")
        entry = store.journal_intent(None, "notion+gcal", "update", "notion:x", "ev")
        store.journal_failed(entry, "boom", dead_after=1)
        store.notification_intent(None, booking_key="notion:y", kind="reminder", lead="2h@x", channel="email",
                                  recipient="a@example.com", sequence=None, fingerprint="f", start="x")
    result = bsync("status", "--json")
    assert result.json["inbox"]["backlog"] == 1
    assert result.json["journal"]["dead"] == 1
    assert result.json["notifications"]["counts"]["intent"] == 1
    text = bsync("status").stdout
    assert "bsync retry" in text and "resend-uncertain" in text


def test_metrics_file_for_the_textfile_collector(bsync, sandbox, tmp_path):
    add(sandbox)
    bsync("sync")
    path = tmp_path / "textfile" / "bsync.prom"
    assert bsync("status", "--metrics", str(path)).exit_code == 0
    text = path.read_text()
    assert 'bsync_last_success_timestamp_seconds{command="sync"}' in text
    assert 'bsync_last_run_exit_code{command="sync"} 0' in text
    assert 'bsync_links{pair="notion+gcal"} 1' in text
    for line in text.splitlines():  # every sample line is "name{labels} number"
        if not line.startswith("#"):
            float(line.rsplit(" ", 1)[1])


def test_prometheus_escapes_labels():
    data = {"commands": {'we"ird': {"last": {"started_at": "2026-01-01T00:00:00+00:00", "finished_at": None,
                                             "exit_code": None, "summary": None}, "last_success": None}},
            "links": {}, "journal": {}, "conflicts": [], "inbox": {"backlog": 0},
            "notifications": {"counts": {}}, "google_token": None}
    text = prometheus_text(data)
    assert 'command="we\\"ird"' in text and 'bsync_last_run_exit_code{command="we\\"ird"} -1' in text


def test_next_run_is_guessed_from_the_usual_daily_time():
    tz = ZoneInfo("Europe/Warsaw")
    starts = [datetime(2026, 11, d, 6, m, tzinfo=tz) for d, m in ((20, 0), (21, 2), (22, 1))]
    now = datetime(2026, 11, 22, 12, 0, tzinfo=tz)
    assert expected_from_history(starts, now, tz) == datetime(2026, 11, 23, 6, 1, tzinfo=tz)
    irregular = [datetime(2026, 11, 20, 6, tzinfo=tz), datetime(2026, 11, 21, 9, tzinfo=tz),
                 datetime(2026, 11, 22, 6, tzinfo=tz)]
    assert expected_from_history(irregular, now, tz) is None


def test_two_overlapping_syncs_one_runs_the_other_exits_3_and_writes_nothing(bsync, sandbox):
    for i in range(3):
        add(sandbox, f"Booking {i}")
    entered, release = threading.Event(), threading.Event()
    original = sandbox.google.dispatch

    def gate(request):  # the first run stops at its first Google call, holding the lock
        entered.set()
        release.wait(30)
        return original(request)

    sandbox.google.dispatch = gate
    cmd = [sys.executable, "-m", "bsync.cli", "sync", "--config", str(bsync.config)]
    try:
        first = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert entered.wait(30), "the first run never reached Google"
        requests_before = len(sandbox.notion.requests) + len(sandbox.google.requests)
        second = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
        requests_during = len(sandbox.notion.requests) + len(sandbox.google.requests) - requests_before
    finally:
        release.set()
        del sandbox.google.dispatch
    _, first_err = first.communicate(timeout=60)
    assert second.returncode == 3
    assert "another bsync run" in second.stderr.lower() or "holds the lock" in second.stderr
    assert requests_during == 0  # the second run asked and changed nothing
    assert first.returncode == 0, first_err
    assert sandbox.google.event_count(sandbox.google.calendar_id) == 3
    with Store.open_readonly(bsync.state_path) as store:
        assert [r["command"] for r in store.recent_runs(10)].count("sync") == 1


def test_log_file_keeps_the_trail_of_an_unattended_run(bsync, sandbox, tmp_path):
    import json

    log = tmp_path / "logs" / "bsync.log"
    add(sandbox)
    assert bsync("sync", "-q", "--log-file", str(log), "--log-format", "json").exit_code == 0
    bsync.config.write_text(bsync.config.read_text().replace('token = "sandbox-token"', 'token = "secret_abc123XYZ"', 1))
    result = bsync("sync", "-q", "--log-file", str(log), "--log-format", "json")
    assert result.exit_code == 4
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert oct(log.stat().st_mode & 0o777) == "0o600"
    errors = [line for line in lines if line["level"] == "ERROR"]
    assert errors and errors[-1]["command"] == "sync" and "exit 4" in errors[-1]["msg"]
    assert len({line["run_id"] for line in lines}) >= 1
    assert "secret_abc123XYZ" not in log.read_text() and "secret_abc123XYZ" not in result.stderr
    assert result.stderr.count("error:") == 1  # printed once, not echoed by the log handler too
