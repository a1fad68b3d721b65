"""The demo, the sandbox launcher and the CLI's help: what a newcomer sees first."""

import json
import os
import subprocess
import sys

import httpx
from typer.testing import CliRunner

from bsync.cli import app


def test_demo_runs_the_whole_flow_and_exits_0():
    result = CliRunner().invoke(app, ["demo"])
    assert result.exit_code == 0, result.stdout + result.stderr
    out = result.stdout
    assert "Plan for notion<->gcal" in out
    assert "Walk-in: Coco" in out and "gcal" in out  # imported from the calendar
    assert "Online booking: Nala" in out and "calcom" in out  # pulled from Cal.com
    assert "free 60-minute slots" in out
    assert "5 created" in out
    assert "sandbox write requests during the rerun: 0" in out
    assert "1 draft skipped: no date yet" in out  # Bella (Pending) is a draft, not a failure
    assert "demo finished" in out


def test_sandbox_module_prints_urls_and_serves_until_stopped():
    proc = subprocess.Popen([sys.executable, "-m", "bsync.sandbox", "--seed", "demo"],
                            stdout=subprocess.PIPE, text=True)
    try:
        info = json.loads(proc.stdout.readline())
        assert {"notion", "notion_database_id", "google", "google_calendar_id"} <= set(info)
        headers = {"Authorization": "Bearer sandbox-token", "Notion-Version": "2025-09-03"}
        db = httpx.get(f"{info['notion']}/v1/databases/{info['notion_database_id']}", headers=headers).json()
        ds = db["data_sources"][0]["id"]
        pages = httpx.post(f"{info['notion']}/v1/data_sources/{ds}/query", headers=headers, json={}).json()
        assert len(pages["results"]) == 7
        # faults: a body replaces the previous faults; {} clears them
        assert httpx.post(f"{info['notion']}/_sandbox/faults", json={"fail_after_n": 0}).status_code == 200
        assert httpx.get(f"{info['notion']}/v1/pages/{pages['results'][0]['id']}", headers=headers).status_code == 500
        httpx.post(f"{info['notion']}/_sandbox/faults", json={})
        assert httpx.get(f"{info['notion']}/v1/pages/{pages['results'][0]['id']}", headers=headers).status_code == 200
        log = httpx.get(f"{info['notion']}/_sandbox/requests").json()["requests"]
        assert [r["status"] for r in log[-2:]] == [500, 200]
        assert not any(r["path"].startswith("/_sandbox") for r in log)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert proc.returncode == 0


def test_help_explains_commands_and_exit_codes():
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "Exit codes" in result.stdout and "sync" in result.stdout and "status" in result.stdout
    result = CliRunner().invoke(app, ["sync", "--help"])
    words = " ".join(result.stdout.replace("│", " ").split())
    assert "--plan" in words and "write nothing anywhere" in words


def test_refreshed_google_token_is_persisted_privately(sandbox, bsync):
    from bsync.sandbox.seed import seed_demo
    from datetime import date

    seed_demo(sandbox.notion, date(2026, 11, 23))
    bsync("sync")
    token = json.loads((bsync.folder / "google-token.json").read_text())
    assert token["token"] and token["refresh_token"] == "sandbox-refresh-token"
    assert os.stat(bsync.folder / "google-token.json").st_mode & 0o777 == 0o600
    assert sandbox.google.count("POST", "/token") == 1
    sandbox.clear_requests()
    bsync("sync")  # the stored access token is reused, not refreshed again
    assert sandbox.google.count("POST", "/token") == 0
