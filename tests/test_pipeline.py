"""Pair names come from the registry: a calendar registered there is a valid pair in the
config, in `bsync sync`'s help and arguments, and in the pipeline, with no other edit."""

from pathlib import Path

import pytest
from typer.testing import CliRunner

from bsync import registry
from bsync.cli import app
from bsync.config import load_config
from bsync.core.pipeline import select_pairs
from bsync.errors import ConfigError, UsageError

CONFIG = """
timezone = "Europe/Warsaw"
state_path = "state.db"
[notion]
token = "secret_abc123"
database_id = "db"
[google]
calendar_id = "cal@example.com"
token_file = "tok.json"
"""


@pytest.fixture
def caldav(monkeypatch):
    """A calendar backend registered the way the next issue will register CalDAV."""
    monkeypatch.setitem(registry.CALENDARS, "caldav",
                        registry.Entry("caldav", "calendar", "caldav", "CalDAV", "tests.fake:CalDav.from_settings"))


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bsync.toml"
    path.write_text(text)
    return path


def words(text: str) -> str:
    return " ".join(text.replace("│", " ").split())


def test_a_registered_calendar_makes_its_pairs_valid_config(tmp_path, caldav):
    settings = load_config(write(tmp_path, CONFIG + '[sync]\npairs = ["notion-to-caldav", "caldav-to-notion"]\n'))
    assert settings.sync.pairs == ["notion-to-caldav", "caldav-to-notion"]
    default = load_config(write(tmp_path, CONFIG))  # a calendar without its section is not synced by default
    assert default.sync.pairs == ["notion-to-gcal", "gcal-to-notion"]


def test_an_unregistered_calendar_pair_is_a_config_error_listing_the_known_ones(tmp_path):
    with pytest.raises(ConfigError, match="sync.pairs") as caught:
        load_config(write(tmp_path, CONFIG + '[sync]\npairs = ["notion-to-outlook"]\n'))
    assert "notion-to-gcal, gcal-to-notion, notion-to-caldav, caldav-to-notion, calcom-to-notion" in str(caught.value)


def test_the_sync_command_lists_and_accepts_a_registered_calendars_pairs(tmp_path, caldav):
    help_text = "".join(CliRunner().invoke(app, ["sync", "--help"]).stdout.split())  # wrapped at any hyphen
    assert "Known:notion-to-gcal,gcal-to-notion,notion-to-caldav,caldav-to-notion,calcom-to-notion." in help_text
    config = write(tmp_path, CONFIG)
    result = CliRunner().invoke(app, ["sync", "notion-to-caldav", "caldav-to-notion", "bogus", "--config", str(config)])
    assert result.exit_code == 2
    assert ("unknown pair 'bogus'; known pairs: notion-to-gcal, gcal-to-notion, notion-to-caldav, caldav-to-notion, "
            "calcom-to-notion (and `pull calcom`)") in words(result.stderr)
    assert "'notion-to-caldav'" not in result.stderr


def test_pairs_are_sorted_into_the_pipelines_steps(caldav):
    chosen = select_pairs(["gcal-to-notion", "calcom-to-notion", "notion-to-caldav", "notion-to-gcal", "gcal-to-notion"])
    assert chosen.pulls == ("calcom",)
    assert chosen.calendars == {"gcal": ["gcal-to-notion", "notion-to-gcal"], "caldav": ["notion-to-caldav"]}


def test_a_webhook_only_platform_has_no_pair():
    assert "sesami-to-notion" not in registry.all_pairs()
    with pytest.raises(UsageError, match="unknown pair 'sesami-to-notion'"):
        select_pairs(["sesami-to-notion"])


def test_a_delivery_that_fails_keeps_every_run_at_exit_1_a_pull_included(sandbox, bsync):
    from bsync.core.store import Store

    with Store.open(bsync.state_path) as store:
        store.inbox_add("calcom", "delivery-1", verified=True, payload="{}")  # no booking in it: it fails
    for command in (("sync", "pull", "calcom"), ("sync",), ("retry",)):
        result = bsync(*command)
        assert result.exit_code == 1, (command, result.stdout, result.stderr)
        assert "inbox: 1 failed" in result.stdout, command
    assert bsync("sync", "--plan").exit_code == 0  # a plan acts on no delivery


def test_the_passes_a_command_runs_are_recorded_as_part_of_it(sandbox, bsync):
    from datetime import date

    from bsync.sandbox.seed import seed_demo

    seed_demo(sandbox.notion, date.today())
    assert bsync("sync").exit_code == 0
    assert bsync("retry").exit_code == 0
    runs = bsync("status", "--json", "--runs", "3").json["runs"]
    retry, sync = [r for r in runs if r["command"] == "retry"][0], runs[0]
    assert sync["command"] == "sync" and sync["part_of"] == "retry"
    assert sync["summary"]["part_of"] == {"command": "retry", "run": retry["id"]}
    first = [r for r in bsync("status", "--json", "--runs", "10").json["runs"] if r["id"] < retry["id"]]
    assert first[0]["command"] == "sync" and "part_of" not in first[0]  # a sync of its own
