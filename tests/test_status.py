"""`bsync status` answers "did last night's sync work?" on healthy and broken setups, and
two overlapping runs never both write."""

from __future__ import annotations

import subprocess
import sys
import threading
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from bsync.sandbox.seed import booking_properties
from bsync.ops.reconcile import KINDS
from bsync.ops.status import expected_from_history, last_drift, prometheus_text
from bsync.core.store import Store

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


def test_drift_gauges_cover_every_kind_and_escape_what_the_state_db_says():
    commands = {"reconcile": {"last": {"id": 7, "started_at": "2026-01-01T00:00:00+00:00", "exit_code": 1,
                                       "finished_at": None,
                                       "summary": {"counts": {"orphan_event": 2, 'odd"\nkind': 1, "bad": "1\nx"}}},
                              "last_success": None}}
    data = {"commands": commands, "drift": last_drift(commands), "links": {}, "journal": {}, "conflicts": [],
            "inbox": {"backlog": 0}, "notifications": {"counts": {}}, "google_token": None}
    lines = prometheus_text(data).splitlines()
    drift = [line for line in lines if line.startswith("bsync_drift_findings{")]
    assert 'bsync_drift_findings{kind="orphan_event"} 2' in drift
    assert 'bsync_drift_findings{kind="odd\\"\\nkind"} 1' in drift  # escaped, one line
    assert not any("bad" in line for line in drift)  # not a number: no sample
    assert len(drift) == len(KINDS) + 1  # every kind, 0 when not found
    assert "# TYPE bsync_drift_findings gauge" in lines


def test_next_run_is_guessed_from_the_usual_daily_time():
    tz = ZoneInfo("Europe/Warsaw")
    starts = [datetime(2026, 11, d, 6, m, tzinfo=tz) for d, m in ((20, 0), (21, 2), (22, 1))]
    now = datetime(2026, 11, 22, 12, 0, tzinfo=tz)
    at, source = expected_from_history(starts, now, tz)
    assert at == datetime(2026, 11, 23, 6, 1, tzinfo=tz) and "usual time" in source
    # syncs by hand or started by webhooks on those days don't hide the daily one
    noisy = starts + [datetime(2026, 11, 21, 1, 30, tzinfo=tz), datetime(2026, 11, 22, 9, 45, tzinfo=tz)]
    assert expected_from_history(noisy, now, tz)[0] == datetime(2026, 11, 23, 6, 1, tzinfo=tz)
    # a morning and an evening cron: the next one due
    twice = starts + [datetime(2026, 11, d, 18, 0, tzinfo=tz) for d in (20, 21, 22)]
    assert expected_from_history(twice, now, tz)[0] == datetime(2026, 11, 22, 18, 0, tzinfo=tz)
    # a midnight timer firing at 23:59 one night and 00:01 the next: 2 minutes apart, not 23 hours
    midnight = [datetime(2026, 11, 20, 23, 59, tzinfo=tz), datetime(2026, 11, 22, 0, 1, tzinfo=tz),
                datetime(2026, 11, 23, 0, 0, tzinfo=tz)]
    assert expected_from_history(midnight, now + timedelta(days=1), tz)[0] == datetime(2026, 11, 24, 0, 0, tzinfo=tz)


def test_when_the_next_run_cant_be_known_status_says_why():
    tz = ZoneInfo("Europe/Warsaw")
    now = datetime(2026, 11, 22, 12, 0, tzinfo=tz)
    at, why = expected_from_history([datetime(2026, 11, 21, 6, tzinfo=tz), datetime(2026, 11, 22, 6, tzinfo=tz)],
                                    now, tz)
    assert at is None and "2 day(s)" in why and "three" in why
    irregular = [datetime(2026, 11, 20, 6, tzinfo=tz), datetime(2026, 11, 21, 9, tzinfo=tz),
                 datetime(2026, 11, 22, 6, tzinfo=tz)]
    at, why = expected_from_history(irregular, now, tz)
    assert at is None and "no start time within 15 minutes" in why


def test_next_run_from_the_systemd_timer_is_in_the_business_timezone(bsync, sandbox, monkeypatch):
    monkeypatch.setattr("bsync.ops.status._systemd_next", lambda: "@1796101200")  # 2026-12-01T05:00Z
    result = bsync("status", "--json")
    assert result.json["next_run"] == {"at": "2026-12-01T06:00:00+01:00", "source": "systemd bsync.timer"}
    assert "Tue 01 Dec 06:00 Europe/Warsaw (systemd bsync.timer)" in bsync("status").stdout


def insert_run(store, command: str, started: datetime) -> None:
    store.db.execute("INSERT INTO runs (command, started_at, finished_at, exit_code, summary) VALUES (?, ?, ?, 0, '{}')",
                     [command, started.astimezone(timezone.utc).isoformat(timespec="seconds"),
                      started.astimezone(timezone.utc).isoformat(timespec="seconds")])


def test_next_run_is_known_after_three_daily_syncs_among_webhook_syncs_and_calcom_pulls(bsync, sandbox, monkeypatch):
    """The daily 06:10 sync, on a machine where `bsync serve` also syncs after every webhook
    and cron pulls Cal.com every 10 minutes: dozens of runs a day must not hide it."""
    monkeypatch.setattr("bsync.ops.status._systemd_next", lambda: None)  # whatever this machine's systemd says
    today = datetime.now(WAW).date()
    with Store.open(bsync.state_path) as store:
        for back in (3, 2, 1):
            day = datetime(today.year, today.month, today.day, tzinfo=WAW) - timedelta(days=back)
            insert_run(store, "sync", day.replace(hour=6, minute=10))
            for hour in range(24):
                if back == 1:
                    insert_run(store, "sync", day.replace(hour=hour, minute=35))
                    insert_run(store, "sync", day.replace(hour=hour, minute=45))
                for minute in range(0, 60, 10):
                    insert_run(store, "sync pull calcom", day.replace(hour=hour, minute=minute))
    result = bsync("status", "--json")
    now = datetime.now(WAW)
    expected = now.replace(hour=6, minute=10, second=0, microsecond=0)
    expected += timedelta(days=1) if expected <= now else timedelta(0)
    assert datetime.fromisoformat(result.json["next_run"]["at"]) == expected
    assert "06:10" in bsync("status").stdout


def test_times_are_shown_in_the_business_timezone_with_its_name(bsync, sandbox):
    add(sandbox)
    assert bsync("sync").exit_code == 0
    with Store.open_readonly(bsync.state_path) as store:
        started = datetime.fromisoformat(store.recent_runs(1)[0]["started_at"])
    text = bsync("status").stdout
    assert "Europe/Warsaw" in text
    assert f"{started.astimezone(WAW):%a %d %b %H:%M}" in text
    assert f"{started:%Y-%m-%d %H:%M}" not in text  # not UTC
    assert "unknown: syncs ran on 1 day(s)" in text  # the next run: why it can't be known yet


def test_steps_of_a_sync_are_shown_as_part_of_it(bsync, sandbox):
    bsync.options = {"notify": True}
    bsync.configure()
    add(sandbox)
    assert bsync("sync").exit_code == 0
    result = bsync("status", "--json")
    assert result.json["commands"]["notify"]["part_of"] == "sync" and "part_of" not in result.json["commands"]["sync"]
    text = bsync("status").stdout
    assert "notify (part of sync)" in text
    assert text.index("sync") < text.index("notify (part of sync)")  # nested under the sync


def test_status_shows_the_last_reconcile_and_metrics_export_its_findings(bsync, sandbox, tmp_path):
    assert bsync("sync").exit_code == 0
    add(sandbox, "Not synced yet")
    assert bsync("reconcile").exit_code == 1
    result = bsync("status", "--json")
    last = result.json["commands"]["reconcile"]["last"]
    assert last["exit_code"] == 1 and last["summary"]["counts"] == {"missing_event": 1}
    assert result.json["drift"]["counts"] == {"missing_event": 1}
    assert "1 missing_event" in bsync("status").stdout

    path = tmp_path / "bsync.prom"
    quiet = bsync("status", "--metrics", str(path))
    assert quiet.exit_code == 0 and quiet.stdout == ""  # for cron: silent
    text = path.read_text()
    assert "# TYPE bsync_drift_findings gauge" in text and "# HELP bsync_drift_findings " in text
    assert 'bsync_drift_findings{kind="missing_event"} 1' in text
    assert 'bsync_drift_findings{kind="orphan_event"} 0' in text  # every kind, so alerts see it clear
    assert 'bsync_last_run_exit_code{command="reconcile"} 1' in text
    both = bsync("status", "--metrics", str(path), "--json")
    assert both.json["drift"]["counts"] == {"missing_event": 1}  # --json still prints, as asked


def test_every_command_that_touches_the_systems_records_a_run_and_looking_records_none(bsync, sandbox):
    from bsync import registry

    LINK_PAIR = registry.link_pair("gcal")

    bsync.options = {"notify": True}
    bsync.configure()
    add(sandbox)

    def commands() -> list[str]:
        with Store.open_readonly(bsync.state_path) as store:
            return [r["command"] for r in reversed(store.recent_runs(100))]

    assert bsync("sync").exit_code == 0
    before = commands()
    for looking in (("sync", "--plan"), ("reconcile", "--fix", "--plan"), ("remind", "--plan"), ("status",),
                    ("status", "--json"), ("doctor",)):
        bsync(*looking)
        assert commands() == before, looking
    with Store.open(bsync.state_path) as store:
        store.save_link(LINK_PAIR, "notion:conflicted", "ev1", conflict={"fields": {"title": ["a", "b"]}})
    for doing, recorded in ((("reconcile",), "reconcile"), (("remind",), "remind"),
                            (("sync", "pull", "calcom"), "sync pull calcom"),
                            (("resolve", "notion:conflicted", "--take", "notion"), "resolve"),
                            (("retry",), "retry")):
        seen = len(commands())
        assert bsync(*doing).exit_code in (0, 1), doing
        assert recorded in commands()[seen:], doing
    with Store.open_readonly(bsync.state_path) as store:
        [resolve] = [r for r in store.recent_runs(100) if r["command"] == "resolve"]
        assert resolve["exit_code"] == 0 and resolve["summary"] == {"key": "notion:conflicted", "take": "notion"}


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
