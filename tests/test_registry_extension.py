"""A new calendar or platform is its module, its sandbox, its tests and one registry entry.

Here each is a test-only class with its own config model, registered by one entry (and
``rebuild_settings``, which a real entry gets at import): its ``[section]`` loads into typed
settings from TOML and ``BSYNC_<SECTION>__<KEY>``, a wrong key fails naming it, its pairs
are valid, ``bsync doctor`` gives it its lines, and ``bsync status`` its sign-in's age,
with no other edit.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Mapping

import pytest
from pydantic import SecretStr

from bsync import config, registry
from bsync.calendars.base import Verdict
from bsync.config import Section, load_config
from bsync.core.model import Status
from bsync.core.store import Store
from bsync.errors import AuthError, ConfigError
from bsync.ops.doctor import check_names, run_checks
from bsync.ops.status import collect_status, prometheus_text

# -- the test-only calendar: its config model, its class, its saved sign-in ---------------------


class FakeCalConfig(Section):
    """``[fakecal]``: what a CalDAV-like calendar needs."""

    example_ids = {"calendar": "your-calendar"}

    url: str
    calendar: str
    username: str
    password: SecretStr
    token_file: Path | None = None
    base_url: str = "https://dav.example.com"
    timeout_s: float = 30.0


class FakeCal:
    """As much of a :class:`~bsync.calendars.base.CalendarBackend` as doctor calls."""

    name = "fakecal"
    label = "FakeCal"
    check_name = "fakecal"

    def __init__(self, config: FakeCalConfig) -> None:
        self.config = config

    @classmethod
    def from_settings(cls, settings: Any) -> "FakeCal":
        return cls(settings.require("fakecal"))

    def check(self) -> str:
        if self.config.password.get_secret_value() == "wrong":
            raise AuthError("FakeCal: 401 unauthorized", hint="check [fakecal] password")
        return f"calendar {self.config.calendar!r} is readable"

    def close(self) -> None:
        return None


class FakeToken:
    """The calendar's saved sign-in (a :class:`~bsync.calendars.base.StoredCredentials`)."""

    check_name = "fakecal token"
    status_key = "fakecal_token"
    age_help = "Age of the FakeCal token."

    def judge(self, config: FakeCalConfig, now: datetime) -> Verdict:
        if config.token_file is None or not config.token_file.exists():
            return Verdict("fail", f"no token at {config.token_file}", "run `fakecal login`")
        return Verdict("ok", f"token {config.token_file}")

    def report(self, config: FakeCalConfig, now: datetime) -> dict[str, Any]:
        return {"age_seconds": 3600}


FAKE_TOKEN = FakeToken()

# -- the test-only platform ----------------------------------------------------------------------


class FakePlatConfig(Section):
    """``[fakeplat]``: what a Mindbody-like platform needs."""

    api_key: SecretStr
    site_id: int
    base_url: str = "https://api.fakeplat.example"
    timeout_s: float = 30.0


class FakePlat:
    """As much of a :class:`~bsync.platforms.base.Platform` as this test calls."""

    name = "fakeplat"
    label = "FakePlat"
    section = "fakeplat"
    check_name = "fakeplat"
    statuses = {"booked": Status.SCHEDULED}
    requests = 0

    def __init__(self, settings: Any) -> None:
        self.settings = settings

    def unconfigured(self) -> str | None:
        return None if self.settings.fakeplat is not None else "no [fakeplat] section"

    def link_properties(self) -> Mapping[str, str]:
        return {}

    def check(self) -> str:
        return f"site {self.settings.require('fakeplat').site_id} answers"

    def close(self) -> None:
        return None


CALENDAR = registry.Entry("fakecal", "calendar", "fakecal", "FakeCal", f"{__name__}:FakeCal.from_settings",
                          config=f"{__name__}:FakeCalConfig", credentials=f"{__name__}:FAKE_TOKEN")
PLATFORM = registry.Entry("fakeplat", "platform", "fakeplat", "FakePlat", f"{__name__}:FakePlat",
                          config=f"{__name__}:FakePlatConfig")


@pytest.fixture
def registered():
    """The two entries, as if written in bsync.registry; gone again afterwards."""
    registry.CALENDARS["fakecal"] = CALENDAR
    registry.PLATFORMS["fakeplat"] = PLATFORM
    config.rebuild_settings()
    try:
        yield
    finally:
        del registry.CALENDARS["fakecal"], registry.PLATFORMS["fakeplat"]
        config.rebuild_settings()


from test_pipeline import CONFIG as BASE  # notion and google, the built-in sections

FAKECAL = """
[fakecal]
url = "https://dav.example.com/cal/"
calendar = "salon"
username = "anna"
password = "hunter22"
token_file = "fakecal-token.json"
"""

FAKEPLAT = """
[fakeplat]
api_key = "fp_live_123456"
site_id = 42
"""


def write(folder: Path, text: str) -> Path:
    path = folder / "bsync.toml"
    path.write_text(text)
    return path


# -- config --------------------------------------------------------------------------------------

def test_a_registered_sections_load_typed_from_toml_with_relative_paths_resolved(tmp_path, registered):
    settings = load_config(write(tmp_path, BASE + FAKECAL + FAKEPLAT))
    assert isinstance(settings.fakecal, FakeCalConfig) and isinstance(settings.fakeplat, FakePlatConfig)
    assert (settings.fakecal.calendar, settings.fakecal.password.get_secret_value()) == ("salon", "hunter22")
    assert settings.fakecal.token_file == tmp_path / "fakecal-token.json"  # relative to the config file
    assert settings.fakeplat.site_id == 42  # typed: the TOML integer stays one
    assert "hunter22" not in repr(settings.fakecal)


def test_environment_overrides_reach_a_registered_section(tmp_path, registered, monkeypatch):
    monkeypatch.setenv("BSYNC_FAKECAL__PASSWORD", "from-the-environment")
    monkeypatch.setenv("BSYNC_FAKEPLAT__API_KEY", "fp_env_key")
    monkeypatch.setenv("BSYNC_FAKEPLAT__SITE_ID", "7")
    settings = load_config(write(tmp_path, BASE + FAKECAL))  # [fakeplat] only in the environment
    assert settings.fakecal.password.get_secret_value() == "from-the-environment"
    assert settings.fakecal.calendar == "salon"
    assert (settings.fakeplat.api_key.get_secret_value(), settings.fakeplat.site_id) == ("fp_env_key", 7)


@pytest.mark.parametrize(("extra", "message"), [
    ('colour = "red"\n', "unknown key 'fakecal.colour'"),
    ('base_url = "ftp://dav.example.com"\n', "key 'fakecal.base_url': must be an http(s) URL"),
])
def test_a_wrong_key_in_a_registered_section_fails_naming_it(tmp_path, registered, extra, message):
    with pytest.raises(ConfigError, match="fakecal") as caught:
        load_config(write(tmp_path, BASE + FAKECAL + extra))
    assert message in str(caught.value)


def test_a_missing_key_and_a_mistyped_one_are_named(tmp_path, registered):
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, BASE + FAKEPLAT.replace("site_id = 42", 'site_id = "forty-two"')))
    assert "key 'fakeplat.site_id'" in str(caught.value)
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, BASE + FAKECAL.replace('username = "anna"\n', "")))
    assert "missing required key 'fakecal.username'" in str(caught.value)


def test_a_model_in_the_providers_own_module_may_be_imported_before_bsync_config(tmp_path):
    """The registry's rule: the model's module imports ``bsync.config`` for ``Section``, and
    a fresh process that imports that module first still gets ``[fakecal]`` declared."""
    (tmp_path / "fakecal_config.py").write_text(textwrap.dedent("""
        from bsync.config import Section

        class FakeCalConfig(Section):
            calendar: str
    """))
    (tmp_path / "run.py").write_text(textwrap.dedent("""
        import sys
        from bsync import registry
        registry.CALENDARS["fakecal"] = registry.Entry(
            "fakecal", "calendar", "fakecal", "FakeCal", "nowhere:Cal.from_settings",
            config="fakecal_config:FakeCalConfig")  # as if written in registry.py
        import fakecal_config  # first: it imports bsync.config, which must not need it yet
        from bsync.config import load_config
        print(type(load_config(sys.argv[1]).fakecal).__name__, "googleapiclient" in sys.modules)
    """))
    write(tmp_path, BASE + '[fakecal]\ncalendar = "salon"\n')
    env = {"PYTHONPATH": f"{tmp_path}:{Path(config.__file__).parents[1]}", "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, str(tmp_path / "run.py"), str(tmp_path / "bsync.toml")],
                            capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["FakeCalConfig", "False"]  # and no calendar client was loaded


def test_an_unregistered_section_is_an_unknown_key(tmp_path):
    with pytest.raises(ConfigError, match="unknown key 'fakecal'"):
        load_config(write(tmp_path, BASE + FAKECAL))


def test_a_registered_sections_example_ids_are_judged_like_secrets(tmp_path, registered):
    path = write(tmp_path, BASE + FAKECAL.replace('"salon"', '"your-calendar"').replace('"hunter22"', '"..."'))
    with pytest.raises(ConfigError, match="still the example value: fakecal.calendar, fakecal.password"):
        load_config(path)
    assert load_config(path, allow_placeholders=True).fakecal.calendar == "your-calendar"


# -- pairs ---------------------------------------------------------------------------------------

def test_the_registered_calendar_and_platform_have_valid_pairs(tmp_path, registered):
    pairs = ["notion-to-fakecal", "fakecal-to-notion", "fakeplat-to-notion"]
    settings = load_config(write(tmp_path, BASE + FAKECAL + FAKEPLAT + f"[sync]\npairs = {pairs}\n"))
    assert settings.sync.pairs == pairs
    default = load_config(write(tmp_path, BASE + FAKECAL))  # both calendars configured: both synced
    assert default.sync.pairs == ["notion-to-gcal", "gcal-to-notion", "notion-to-fakecal", "fakecal-to-notion"]


# -- doctor and status ---------------------------------------------------------------------------

def test_doctor_gives_the_registered_calendar_and_platform_their_lines(bsync, registered):
    names = check_names()
    assert names[names.index("caldav calendar") + 1:][:3] == ("fakecal", "fakecal token", "cal.com")
    assert names.index("fakeplat") < names.index("sendgrid")

    checks = {c.name: c for c in run_checks(bsync.config)}
    assert list(checks) == list(names)
    assert checks["fakecal"].status == "skip" and checks["fakecal"].detail == "not configured (no [fakecal] section)"
    assert checks["fakeplat"].status == "skip"

    bsync.config.write_text(bsync.config.read_text() + FAKECAL + FAKEPLAT)
    checks = {c.name: c for c in run_checks(bsync.config)}
    assert "[fakecal]" in checks["config"].detail and "[fakeplat]" in checks["config"].detail
    assert (checks["fakecal"].status, checks["fakecal"].detail) == (
        "ok", "calendar 'salon' is readable at dav.example.com")
    assert checks["fakecal token"].status == "fail" and checks["fakecal token"].hint == "run `fakecal login`"
    assert (checks["fakeplat"].status, checks["fakeplat"].detail) == ("ok", "site 42 answers at api.fakeplat.example")
    assert checks["google calendar"].status == "ok"  # the others are unchanged

    (bsync.folder / "fakecal-token.json").write_text("{}")
    bsync.config.write_text(bsync.config.read_text().replace('"hunter22"', '"wrong"'))
    checks = {c.name: c for c in run_checks(bsync.config)}
    assert checks["fakecal"].status == "fail" and checks["fakecal"].hint == "check [fakecal] password"
    assert checks["fakecal token"].status == "ok"


def test_status_shows_the_registered_calendars_sign_in(tmp_path, registered):
    settings = load_config(write(tmp_path, BASE + FAKECAL))
    now = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    with Store.open(settings.state_path) as store:
        data = collect_status(settings, store, now)
    assert data["fakecal_token"] == {"age_seconds": 3600}
    assert "google_token" in data  # Google's is still there, under its own key
    assert "\nbsync_fakecal_token_age_seconds 3600\n" in prometheus_text(data)
    assert "# HELP bsync_fakecal_token_age_seconds Age of the FakeCal token." in prometheus_text(data)


def test_the_registry_is_as_it_was_after_the_test():
    assert "fakecal" not in config.Settings.model_fields and "fakecal" not in registry.CALENDARS
