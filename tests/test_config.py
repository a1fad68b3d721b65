import os
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bsync.cli import app
from bsync.config import is_placeholder, load_config
from bsync.errors import ConfigError
from conftest import copy_example

ROOT = Path(__file__).resolve().parent.parent

MINIMAL = """
timezone = "Europe/Warsaw"
[notion]
token = "secret_abc123"
database_id = "db"
[google]
calendar_id = "cal@example.com"
token_file = "tok.json"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bsync.toml"
    path.write_text(text)
    return path


def test_example_config_is_valid_and_documents_every_key():
    settings = load_config(ROOT / "config.example.toml", allow_placeholders=True)
    assert settings.timezone == "Europe/Warsaw"
    assert settings.notion.properties.calendar_event_id == "Calendar Event ID"
    text = (ROOT / "config.example.toml").read_text()
    for section in (settings.notion, settings.google, settings.sync):
        for name in type(section).model_fields:
            documented = f"{name} =" in text or f"[{type(settings).__name__}" in text
            table = f"[notion.{name}]" in text
            assert documented or table, name


def test_relative_paths_are_relative_to_the_config_file(tmp_path):
    settings = load_config(write(tmp_path, MINIMAL))
    assert settings.google.token_file == tmp_path / "tok.json"


def test_env_overrides_file(tmp_path, monkeypatch):
    monkeypatch.setenv("BSYNC_NOTION__BASE_URL", "http://127.0.0.1:9999")
    monkeypatch.setenv("BSYNC_SYNC__DELETE_POLICY", "delete")
    settings = load_config(write(tmp_path, MINIMAL))
    assert settings.notion.base_url == "http://127.0.0.1:9999"
    assert settings.sync.delete_policy == "delete"


@pytest.mark.parametrize("extra, key", [
    ("[notion.properties]\ntitel = 'Name'\n", "notion.properties.titel"),
    ("[sync]\ndelete_policy = 'purge'\n", "sync.delete_policy"),
    ("[sync]\nmax_delete = 'lots'\n", "sync.max_delete"),
    ("[sync]\npairs = ['gcal-to-mars']\n", "sync.pairs"),
    ("[sync]\nhistory = 'forever'\n", "sync.history"),
    ("[sync]\ntrash_window = 'two weeks'\n", "sync.trash_window"),
    ("[sync]\nrecurring_ahead = 'forever'\n", "sync.recurring_ahead"),
    ("[bogus]\nx = 1\n", "bogus"),
])
def test_bad_keys_fail_naming_the_key(tmp_path, extra, key):
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, MINIMAL + extra))
    assert key in str(info.value)


def test_history_and_trash_window_defaults_and_all(tmp_path):
    sync = load_config(write(tmp_path, MINIMAL)).sync
    assert sync.history_delta == timedelta(days=30) and sync.trash_window_delta == timedelta(days=14)
    sync = load_config(write(tmp_path, MINIMAL + "[sync]\nhistory = 'ALL'\ntrash_window = '0'\n")).sync
    assert sync.history_delta is None and sync.trash_window_delta == timedelta(0)


def test_missing_required_key_is_named(tmp_path):
    with pytest.raises(ConfigError, match="'notion.token'"):
        load_config(write(tmp_path, MINIMAL.replace('token = "secret_abc123"\n', "")))


def test_unknown_timezone_is_named(tmp_path):
    with pytest.raises(ConfigError, match="'timezone'.*Mars/Base"):
        load_config(write(tmp_path, MINIMAL.replace("Europe/Warsaw", "Mars/Base")))


def test_old_notion_version_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="notion.version"):
        load_config(write(tmp_path, MINIMAL.replace('database_id = "db"', 'database_id = "db"\nversion = "2022-06-28"')))


def test_secret_never_shows(tmp_path):
    settings = load_config(write(tmp_path, MINIMAL))
    assert "secret_abc123" not in repr(settings) and "secret_abc123" not in str(settings.model_dump())
    assert settings.notion.token.get_secret_value() == "secret_abc123"


def test_missing_config_file_says_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("BSYNC_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    with pytest.raises(ConfigError, match="no config file found"):
        load_config(None)


def test_date_required_defaults_to_confirmed_and_must_name_status_options(tmp_path):
    assert load_config(write(tmp_path, MINIMAL)).sync.date_required == ["Confirmed"]
    own_map = MINIMAL + '[notion.status_map]\n"Booked" = "scheduled"\n'
    assert load_config(write(tmp_path, own_map)).sync.date_required == ["Confirmed"]  # the default never errs
    chosen = own_map + '[sync]\ndate_required = ["Booked"]\n'
    assert load_config(write(tmp_path, chosen)).sync.date_required == ["Booked"]
    with pytest.raises(ConfigError, match=r"sync.date_required: unknown status 'Confirmd'; known .*Pending"):
        load_config(write(tmp_path, MINIMAL + '[sync]\ndate_required = ["Confirmd"]\n'))


def test_the_copied_example_is_refused_naming_every_example_value(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_config(copy_example(tmp_path))
    assert "still the example value: notion.token, notion.database_id, google.calendar_id" in str(info.value)
    assert "BSYNC_NOTION__TOKEN" in info.value.hint


def test_optional_sections_switched_on_from_the_example_name_their_placeholders(tmp_path):
    config = copy_example(tmp_path, uncomment=("calcom", "sendgrid", "twilio"))
    settings = load_config(config, allow_placeholders=True)
    assert settings.calcom and settings.sendgrid and settings.twilio  # the uncommenting worked
    with pytest.raises(ConfigError) as info:
        load_config(config)
    for key in ("calcom.api_key", "calcom.webhook_secret", "sendgrid.api_key", "twilio.account_sid",
                "twilio.auth_token"):
        assert key in str(info.value)


def test_own_values_from_the_environment_replace_the_placeholders(tmp_path, monkeypatch):
    monkeypatch.setenv("BSYNC_NOTION__TOKEN", "ntn_4151real")
    monkeypatch.setenv("BSYNC_NOTION__DATABASE_ID", "1a2b3c4d5e6f40718293a4b5c6d7e8f9")
    monkeypatch.setenv("BSYNC_GOOGLE__CALENDAR_ID", "salon@group.calendar.google.com")
    assert load_config(copy_example(tmp_path)).notion.token.get_secret_value() == "ntn_4151real"


@pytest.mark.parametrize("value, example", [
    ("secret_...", True), ("SG.xxxx", True), ("cal_live_...", True), ("sk_live_…", True), ("...", True),
    ("secret_xxx", True), ("change-me", True), (" XXXX ", True),
    ("secret_abc123", False), ("sandbox-token", False), ("SG.abc.def-xxx", False), ("x", False),
    ("ntn_xxx9", False), ("", False),
])
def test_placeholder_values(value, example):
    assert is_placeholder(value) is example


def test_a_config_path_that_is_a_directory_says_so(tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match=f"config path {tmp_path} \\(from --config\\) is a directory") as info:
        load_config(tmp_path)
    assert str(tmp_path / "bsync.toml") in info.value.hint
    monkeypatch.setenv("BSYNC_CONFIG", str(tmp_path))
    with pytest.raises(ConfigError, match=r"from \$BSYNC_CONFIG\) is a directory"):
        load_config(None)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_an_unreadable_config_is_one_clear_error(tmp_path):
    path = write(tmp_path, MINIMAL)
    path.chmod(0)
    with pytest.raises(ConfigError, match="cannot read config .*Permission denied"):
        load_config(path)


def test_sync_with_the_copied_example_fails_fast_naming_the_key(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    copy_example(tmp_path)
    result = CliRunner().invoke(app, ["sync"])
    assert result.exit_code == 2
    assert "still the example value: notion.token" in result.stderr
    assert not (tmp_path / "state").exists()  # stopped before touching anything


def test_a_data_source_id_left_as_an_elision_is_named(tmp_path):
    with pytest.raises(ConfigError, match="still the example value: notion.data_source_id"):
        load_config(write(tmp_path, MINIMAL.replace('database_id = "db"', 'data_source_id = "..."')))
