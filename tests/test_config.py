from pathlib import Path

import pytest

from bsync.config import load_config
from bsync.errors import ConfigError

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
    settings = load_config(ROOT / "config.example.toml")
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
    ("[bogus]\nx = 1\n", "bogus"),
])
def test_bad_keys_fail_naming_the_key(tmp_path, extra, key):
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, MINIMAL + extra))
    assert key in str(info.value)


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
