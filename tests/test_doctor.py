"""``bsync doctor`` checks (library level) against the sandbox: healthy and broken setups."""

from __future__ import annotations

import json
import os
import re
import socket
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest

from bsync.ops import doctor
from bsync.ops.doctor import (
    Check,
    check_names,
    exit_code,
    format_check,
    run_checks,
    skew_check,
    state_check,
)
from bsync.sandbox.seed import write_sandbox_config
from bsync.core.store import SCHEMA_VERSION, Store
from conftest import copy_example


def by_name(checks: list[Check]) -> dict[str, Check]:
    assert [c.name for c in checks] == list(check_names())  # one line per check, always in this order
    return {c.name: c for c in checks}


def set_key(config: Path, section: str, key: str, value: str) -> None:
    """Replace ``key = …`` inside ``[section]`` of the TOML file (the value is TOML text)."""
    text = config.read_text()
    pattern = re.compile(rf"(^\[{re.escape(section)}\]\n(?:(?!\[).*\n)*?){re.escape(key)} = .*$", re.MULTILINE)
    new, count = pattern.subn(lambda m: f"{m.group(1)}{key} = {value}", text)
    assert count == 1, f"{section}.{key} not found"
    config.write_text(new)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def setup(bsync):
    """A full config (SendGrid and Twilio too) and a state DB made by one sync."""
    bsync.options = {"notify": True}
    bsync.configure()
    assert bsync("sync").exit_code == 0
    assert bsync.state_path.exists()
    return bsync


def test_healthy_setup_is_all_ok(setup):
    checks = run_checks(setup.config)
    # CalDAV runs on a real server, not in the sandbox: its section is absent here (see test_caldav_backend)
    assert {c.name: c.status for c in checks} == {name: "skip" if name == "caldav calendar" else "ok"
                                                  for name in check_names()}, \
        "\n".join(map(format_check, checks))
    assert exit_code(checks) == 0
    assert not Path(f"{setup.state_path}-wal").exists()  # the read-only check leaves no WAL files behind
    lines = by_name(checks)
    assert "Europe/Warsaw" in lines["timezone"].detail and "UTC+0" in lines["timezone"].detail
    assert f"schema version {SCHEMA_VERSION}" in lines["state db"].detail
    assert "mail.send" in lines["sendgrid"].detail
    assert "active" in lines["twilio"].detail
    text = json.dumps([c.as_json() for c in checks])
    assert "sandbox-token" not in text and setup.sandbox.twilio.auth_token not in text
    assert set(checks[0].as_json()) == {"name", "status", "detail", "hint"}


def test_absent_sections_are_skipped_and_a_missing_state_db_only_warns(bsync):
    checks = by_name(run_checks(bsync.config))  # default config: no [sendgrid]/[twilio], no sync yet
    assert checks["sendgrid"].status == "skip" and "[sendgrid]" in checks["sendgrid"].detail
    assert checks["twilio"].status == "skip"
    assert checks["state db"].status == "warn" and "first sync" in checks["state db"].detail
    assert checks["notion"].status == "ok"
    assert exit_code(checks.values()) == 0


def test_wrong_notion_token_fails_only_notion(setup):
    set_key(setup.config, "notion", "token", '"secret_wrong_doctor_token"')
    checks = by_name(run_checks(setup.config))
    notion = checks["notion"]
    assert notion.status == "fail"
    assert "token" in notion.detail and "unauthorized" in notion.detail
    assert notion.hint and "[notion] token" in notion.hint
    assert "secret_wrong_doctor_token" not in json.dumps([c.as_json() for c in checks.values()])
    # the other providers are still checked
    assert checks["google calendar"].status == "ok" and checks["sendgrid"].status == "ok"
    assert exit_code(checks.values()) == 1


def test_database_not_shared_with_the_integration(setup):
    set_key(setup.config, "notion", "database_id", '"0f0f0f0f-1111-2222-3333-444444444444"')
    notion = by_name(run_checks(setup.config))["notion"]
    assert notion.status == "fail"
    assert "not shared with the integration" in notion.detail
    assert notion.hint and "Connections" in notion.hint


def test_bad_timezone_fails_the_config_check_and_skips_the_rest(bsync):
    config = write_sandbox_config(bsync.sandbox, bsync.folder, timezone="Mars/Olympus_Mons")
    checks = run_checks(config)
    assert checks[0].name == "config" and checks[0].status == "fail"
    assert "'timezone'" in checks[0].detail and "Mars/Olympus_Mons" in checks[0].detail
    assert [c.status for c in checks[1:]] == ["skip"] * (len(check_names()) - 1)
    assert exit_code(checks) == 1


def test_missing_config_file_fails_the_config_check(tmp_path):
    checks = run_checks(tmp_path / "nope.toml")
    assert checks[0].status == "fail" and "does not exist" in checks[0].detail


def test_a_config_path_that_is_a_directory_is_named_as_one(tmp_path):
    checks = run_checks(tmp_path)
    assert checks[0].status == "fail" and "is a directory, not a file" in checks[0].detail


def test_the_copied_example_config_lists_the_example_values_instead_of_calling_out(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    checks = by_name(run_checks(copy_example(tmp_path, uncomment=("calcom", "sendgrid", "twilio"))))
    assert checks["config"].status == "fail"
    assert "still the example value: notion.token, notion.database_id, google.calendar_id" in checks["config"].detail
    assert checks["notion"].detail == "not checked: still the example value: notion.token, notion.database_id"
    assert checks["google calendar"].detail == "not checked: still the example value: google.calendar_id"
    assert checks["cal.com"].detail == "not checked: still the example value: calcom.api_key, calcom.webhook_secret"
    assert checks["sendgrid"].detail == "not checked: still the example value: sendgrid.api_key"
    assert checks["twilio"].detail == "not checked: still the example value: twilio.account_sid, twilio.auth_token"
    for name in ("notion", "google calendar", "cal.com", "sendgrid", "twilio"):
        assert checks[name].status == "fail" and "delete the [" in checks[name].hint
    assert checks["timezone"].status == "ok"  # the rest is still checked


def test_corrupted_state_db_fails_with_a_recovery_hint(setup):
    garbage = os.urandom(4096)
    setup.state_path.write_bytes(garbage)
    checks = by_name(run_checks(setup.config))
    state = checks["state db"]
    assert state.status == "fail" and "not a usable SQLite database" in state.detail
    assert state.hint and f"mv {setup.state_path}" in state.hint and "re-links" in state.hint
    assert setup.state_path.read_bytes() == garbage  # doctor never writes the DB
    assert checks["notion"].status == "ok"


def test_state_db_readable_by_others_fails_with_chmod_hint(setup):
    setup.state_path.chmod(0o644)
    state = by_name(run_checks(setup.config))["state db"]
    assert state.status == "fail" and "0644" in state.detail
    assert state.hint and f"chmod 600 {setup.state_path}" in state.hint


def test_state_db_schema_behind_warns_and_ahead_fails(tmp_path):
    path = tmp_path / "state.db"
    Store.open(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute("DELETE FROM schema_migrations WHERE version = ?", [SCHEMA_VERSION])
    check = state_check(path)
    assert check.status == "warn" and "migrated on the next run" in check.detail
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO schema_migrations VALUES (?, 'future', '')", [SCHEMA_VERSION + 5])
    check = state_check(path)
    assert check.status == "fail" and "newer bsync" in check.detail and check.hint


def test_revoked_google_refresh_token_names_the_reauth_command(setup):
    setup.sandbox.google.revoke_refresh_token("sandbox-refresh-token")
    setup.sandbox.google.expire_access_tokens()
    checks = by_name(run_checks(setup.config))
    google = checks["google calendar"]
    assert google.status == "fail"
    assert "bsync auth google" in google.detail + (google.hint or "")
    assert "sandbox-refresh-token" not in google.detail + (google.hint or "")
    assert checks["notion"].status == "ok"


def test_missing_google_token_file_fails_both_google_lines(setup):
    (setup.folder / "google-token.json").unlink()
    checks = by_name(run_checks(setup.config))
    assert checks["google calendar"].status == "fail"
    assert checks["google token"].status == "fail" and "bsync auth google" in checks["google token"].hint


def test_sendgrid_bad_key_and_missing_scope(setup, monkeypatch):
    set_key(setup.config, "sendgrid", "api_key", '"SG.wrong-doctor-key"')
    sendgrid = by_name(run_checks(setup.config))["sendgrid"]
    assert sendgrid.status == "fail" and "401" in sendgrid.detail
    assert sendgrid.hint and "[sendgrid] api_key" in sendgrid.hint
    assert "SG.wrong-doctor-key" not in sendgrid.detail

    set_key(setup.config, "sendgrid", "api_key", '"sandbox-token"')
    monkeypatch.setattr(setup.sandbox.sendgrid, "scopes", ["user.profile.read"])
    sendgrid = by_name(run_checks(setup.config))["sendgrid"]
    assert sendgrid.status == "fail" and "mail.send" in sendgrid.detail


def test_unreachable_remote_fails_fast_and_the_clock_uses_another(setup):
    set_key(setup.config, "notion", "base_url", f'"http://127.0.0.1:{free_port()}"')
    started = time.monotonic()
    checks = by_name(run_checks(setup.config))
    assert time.monotonic() - started < 5
    assert checks["notion"].status == "fail" and checks["notion"].hint and "network" in checks["notion"].hint
    assert checks["clock"].status == "ok" and str(setup.sandbox.google.url.rsplit(":", 1)[1]) in checks["clock"].detail


def test_unexpected_exception_is_one_failing_line_without_secrets(setup, monkeypatch):
    set_key(setup.config, "sendgrid", "api_key", '"SG.very-secret-key"')

    def boom(self):
        raise RuntimeError("kaput with SG.very-secret-key via https://user:pw@example.com/x")

    monkeypatch.setattr(doctor.SendGridMailer, "check", boom)
    checks = by_name(run_checks(setup.config))
    sendgrid = checks["sendgrid"]
    assert sendgrid.status == "fail" and "RuntimeError" in sendgrid.detail
    assert "SG.very-secret-key" not in sendgrid.detail and "user:pw" not in sendgrid.detail
    assert checks["twilio"].status == "ok"


# -- clock skew (pure) ---------------------------------------------------------------------------

NOW = datetime(2026, 3, 2, 12, 0, 0, tzinfo=UTC)


def http_date(moment: datetime) -> str:
    return format_datetime(moment, usegmt=True)


@pytest.mark.parametrize(("offset", "status"), [
    (timedelta(0), "ok"), (timedelta(seconds=20), "ok"), (timedelta(seconds=-29), "ok"),
    (timedelta(seconds=45), "warn"), (timedelta(minutes=-4), "warn"),
    (timedelta(minutes=6), "fail"), (timedelta(hours=-3), "fail"),
])
def test_skew_thresholds(offset, status):
    check = skew_check(http_date(NOW + offset), NOW, source="api.example.com")
    assert check.name == "clock" and check.status == status
    if status != "ok":
        assert "api.example.com" in check.detail and check.hint and "time sync" in check.hint


def test_skew_says_which_way_and_why():
    check = skew_check(http_date(NOW - timedelta(minutes=10)), NOW)
    assert "10 min ahead of" in check.detail and "replay window" in check.detail
    check = skew_check(http_date(NOW + timedelta(seconds=90)), NOW)
    assert "90 s behind" in check.detail


def test_unreadable_date_header_warns():
    assert skew_check("yesterday-ish", NOW).status == "warn"


def test_exit_code():
    assert exit_code([Check("a", "ok", ""), Check("b", "warn", ""), Check("c", "skip", "")]) == 0
    assert exit_code([Check("a", "ok", ""), Check("b", "fail", "", "do this")]) == 1
    assert format_check(Check("b", "fail", "broken", "do this")).startswith("FAIL  b")


def test_cli_doctor_one_line_per_check_and_exit_codes(bsync, sandbox):
    bsync("sync")
    result = bsync("doctor", "--json")
    assert result.exit_code == 0 and result.json["ok"] is True
    assert len(result.json["checks"]) == len(check_names())
    bsync.config.write_text(bsync.config.read_text().replace('token = "sandbox-token"', 'token = "nope"', 1))
    result = bsync("doctor")
    assert result.exit_code == 1
    [line] = [line for line in result.stdout.splitlines() if line.startswith("FAIL")]
    assert "notion" in line and "nope" not in result.stdout


def test_a_config_readable_by_others_is_a_warning(setup):
    os.chmod(setup.config, 0o644)
    [config] = [c for c in run_checks(setup.config) if c.name == "config"]
    assert config.status == "warn" and "chmod 600" in config.hint


def test_a_template_typo_fails_the_config_check(setup):
    (setup.config.parent / "confirm.txt").write_text("Subject: Hi $custmer_name\n\nBody\n")
    setup.config.write_text(setup.config.read_text().replace(
        "[twilio]\n", '[sendgrid.templates]\nconfirmation = "confirm.txt"\n\n[twilio]\n'))
    [config] = [c for c in run_checks(setup.config) if c.name == "config"]
    assert config.status == "fail" and "custmer_name" in config.detail
