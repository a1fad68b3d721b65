"""Configuration: one TOML file plus ``BSYNC_<SECTION>__<KEY>`` environment overrides (SPEC §2).

Loading fails fast with :class:`~bsync.errors.ConfigError` naming the offending key, so a
cron job with a typo stops at once instead of half-syncing.  Tokens are ``SecretStr`` and
never appear in output.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (BaseModel, ConfigDict, Field, SecretStr, ValidationError, create_model, field_validator,
                      model_validator)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict
from pydantic_settings import TomlConfigSettingsSource

from datetime import timedelta

from bsync import registry
from bsync.errors import ConfigError
from bsync.core.model import E164_RE, EMAIL_RE
from bsync.notices.plan import NOTICE_KINDS, REMINDER_KIND
from bsync.core.timeutil import parse_duration

DEFAULT_STATUS_MAP = {  # the first name mapping to a status is the one bsync writes
    "Confirmed": "scheduled",
    "Pending": "scheduled",
    "In progress": "in_progress",
    "Completed": "completed",
    "Cancelled": "cancelled",
    "No-show": "no_show",
}


def _known(values: Any, allowed: tuple[str, ...], what: str) -> Any:
    """Every value must be one of ``allowed`` (config lists and table keys)."""
    for value in values:
        if value not in allowed:
            raise ValueError(f"unknown {what} {value!r}; known: {', '.join(allowed)}")
    return values


def _check_base_url(value: str) -> str:
    if not re.match(r"^https?://[^/\s]+", value):
        raise ValueError(f"must be an http(s) URL, got {value!r}")
    return value.rstrip("/")


class Section(BaseModel):
    """A config table: unknown keys are errors, values are validated on assignment.

    Every provider's ``base_url`` (for the sandbox, proxies, regional endpoints) is checked
    here, once: an http(s) URL, kept without its trailing slash.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    example_ids: ClassVar[Mapping[str, str | None]] = {}
    """Identifiers judged like secrets (see :func:`placeholder_keys`), with the well-formed
    value config.example.toml shows for each (nobody's real one), if any."""

    @field_validator("base_url", check_fields=False)
    @classmethod
    def _base_url(cls, value: str) -> str:
        return _check_base_url(value)


class NotionProperties(Section):
    """Canonical booking field -> Notion property name.  Leave a field out to not map it."""

    title: str = "Name"
    start: str = "When"
    end: str | None = "When"  # same property as start: the date's end is used
    status: str | None = "Status"
    customer_name: str | None = "Customer"
    email: str | None = "Email"
    phone: str | None = "Phone"
    service: str | None = "Service"
    staff: str | None = "Staff"
    notes: str | None = "Notes"
    location: str | None = "Location"
    timezone: str | None = "Timezone"
    calendar_event_id: str | None = "Calendar Event ID"
    source: str | None = "Source"
    external_id: str | None = "External ID"
    # Opt-out: a select/text property whose value "off" (or no, false, opt-out, stop,
    # unsubscribed) means "send this customer nothing"; a checkbox counts as opted out when
    # checked.  None = nobody has opted out.
    notifications: str | None = None


class NotionConfig(Section):
    example_ids = {"database_id": "0123456789abcdef0123456789abcdef", "data_source_id": None}

    token: SecretStr
    database_id: str | None = None
    data_source_id: str | None = None
    base_url: str = "https://api.notion.com"
    version: str = "2025-09-03"
    timeout_s: float = Field(default=30.0, gt=0)
    default_duration_min: int = Field(default=60, gt=0, le=24 * 60)
    requests_per_second: float = Field(default=3.0, ge=0)
    properties: NotionProperties = Field(default_factory=NotionProperties)
    status_map: dict[str, Literal["scheduled", "in_progress", "completed", "cancelled", "no_show"]] = (
        Field(default_factory=lambda: dict(DEFAULT_STATUS_MAP)))


    @field_validator("version")
    @classmethod
    def _data_source_version(cls, value: str) -> str:
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value) or value < "2025-09-03":
            raise ValueError(f"bsync needs the data-source API: a Notion-Version of 2025-09-03 or later, got {value!r}")
        return value

    @model_validator(mode="after")
    def _needs_a_database(self) -> "NotionConfig":
        if not self.database_id and not self.data_source_id:
            raise ValueError("set database_id (or data_source_id)")
        return self


class GoogleConfig(Section):
    example_ids = {"calendar_id": "yourbusiness@group.calendar.google.com"}

    calendar_id: str
    credentials_file: Path | None = None
    token_file: Path | None = None
    base_url: str = "https://www.googleapis.com"
    token_uri: str = "https://oauth2.googleapis.com/token"
    send_updates: Literal["all", "externalOnly", "none"] = "none"
    invite_customer: bool = True
    timeout_s: float = Field(default=30.0, gt=0)

    @field_validator("base_url", "token_uri")
    @classmethod
    def _url(cls, value: str) -> str:
        return _check_base_url(value)


class CalcomConfig(Section):
    api_key: SecretStr
    base_url: str = "https://api.cal.com"
    api_version: str = "2024-08-13"
    webhook_secret: SecretStr | None = None
    # booking metadata key -> Notion property name (rich text), e.g. {client_id = "Client ID"}
    link_metadata: dict[str, str] = Field(default_factory=dict)
    page_size: int = Field(default=100, ge=1, le=250)
    timeout_s: float = Field(default=30.0, gt=0)


class ServerConfig(Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    sync_token: SecretStr | None = None  # bearer token for POST /sync
    sesami_secret: SecretStr | None = None
    notion_verification_token: SecretStr | None = None
    replay_window: str = "10m"
    run_sync_after_webhook: bool = True
    stale_after: str = "5m"  # /healthz is 503 once the oldest pending delivery is older than this
    inbox_retention: str = "30d"  # processed and rejected deliveries are forgotten after this

    @field_validator("replay_window", "stale_after", "inbox_retention")
    @classmethod
    def _duration(cls, value: str) -> str:
        parse_duration(value)
        return value


CHANNELS = ("email", "sms")


def _check_quiet_hours(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d", value.strip()):
        raise ValueError("must look like '21:00-08:00' (local business time; may wrap past midnight)")
    return value.strip()


class SenderSection(Section):
    """What every message channel's section has: its own templates and a timeout.

    ``templates``: kind (confirmation, change, cancellation, reminder) -> a file path, or
    for SendGrid a dynamic template id ``d-…`` (see :mod:`bsync.notices.messages`).
    """

    templates: dict[str, str] = Field(default_factory=dict)
    timeout_s: float = Field(default=30.0, gt=0)

    @field_validator("templates")
    @classmethod
    def _kinds(cls, value: dict[str, str]) -> dict[str, str]:
        return _known(value, (*NOTICE_KINDS, REMINDER_KIND), "template kind")


class SendGridConfig(SenderSection):
    api_key: SecretStr
    from_email: str
    from_name: str | None = None
    reply_to: str | None = None
    base_url: str = "https://api.sendgrid.com"
    sandbox_mode: bool = False  # SendGrid validates but delivers nothing (answers 200)

    @field_validator("from_email")
    @classmethod
    def _email(cls, value: str) -> str:
        if not EMAIL_RE.match(value):
            raise ValueError(f"{value!r} is not an email address")
        return value


class TwilioConfig(SenderSection):
    example_ids = {"account_sid": "AC" + "0" * 32}

    account_sid: str
    auth_token: SecretStr
    from_number: str | None = None  # E.164, e.g. "+15005550006"
    messaging_service_sid: str | None = None  # instead of from_number
    base_url: str = "https://api.twilio.com"

    @field_validator("account_sid")
    @classmethod
    def _sid(cls, value: str) -> str:
        if not re.fullmatch(r"AC[0-9a-fA-F]{32}", value):
            raise ValueError("must be 'AC' followed by 32 hex digits (Twilio console → Account Info)")
        return value

    @field_validator("from_number")
    @classmethod
    def _e164(cls, value: str | None) -> str | None:
        if value is not None and not E164_RE.fullmatch(value):
            raise ValueError(f"{value!r} is not an E.164 number like '+15005550006'")
        return value

    @model_validator(mode="after")
    def _sender(self) -> "TwilioConfig":
        if not self.from_number and not self.messaging_service_sid:
            raise ValueError("set from_number or messaging_service_sid")
        return self


class NotificationsConfig(Section):
    """Notices sent when a booking appears, changes or is cancelled."""

    kinds: list[str] = Field(default_factory=lambda: list(NOTICE_KINDS))  # [] turns notices off
    channels: list[str] = Field(default_factory=lambda: ["email"])
    after_sync: bool = True  # `bsync sync` sends due notices when it has finished
    business_name: str | None = None  # default: [sendgrid] from_name

    @field_validator("kinds")
    @classmethod
    def _kinds(cls, value: list[str]) -> list[str]:
        return _known(value, NOTICE_KINDS, "kind")

    @field_validator("channels")
    @classmethod
    def _channels(cls, value: list[str]) -> list[str]:
        return _check_channels(value)


def _check_channels(value: list[str]) -> list[str]:
    return _known(value, CHANNELS, "channel")


class RemindersConfig(Section):
    leads: list[str] = Field(default_factory=lambda: ["24h", "2h"])
    channels: list[str] = Field(default_factory=lambda: ["email"])
    quiet_hours: str | None = "21:00-08:00"  # business timezone; reminders wait, never dropped
    window: str = "15m"  # how often `bsync remind` runs: a reminder may go this much early

    @field_validator("leads")
    @classmethod
    def _leads(cls, value: list[str]) -> list[str]:
        for lead in value:
            if parse_duration(lead) <= timedelta(0):
                raise ValueError(f"lead {lead!r} must be longer than 0")
        if len({parse_duration(lead) for lead in value}) != len(value):
            raise ValueError("two leads are the same length")
        return value

    @field_validator("channels")
    @classmethod
    def _channels(cls, value: list[str]) -> list[str]:
        return _check_channels(value)

    @field_validator("quiet_hours")
    @classmethod
    def _quiet(cls, value: str | None) -> str | None:
        return _check_quiet_hours(value)

    @field_validator("window")
    @classmethod
    def _window(cls, value: str) -> str:
        parse_duration(value)
        return value


DEFAULT_HOURS = {"mon": ["09:00-17:00"], "tue": ["09:00-17:00"], "wed": ["09:00-17:00"],
                 "thu": ["09:00-17:00"], "fri": ["09:00-17:00"], "sat": ["10:00-14:00"], "sun": []}
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class AvailabilityConfig(Section):
    duration: int = Field(default=60, gt=0, le=24 * 60)  # minutes
    step: int | None = Field(default=None, gt=0, le=24 * 60)  # minutes; default = duration
    buffer_before: int = Field(default=0, ge=0, le=24 * 60)
    buffer_after: int = Field(default=0, ge=0, le=24 * 60)
    min_notice: str = "2h"
    max_advance: str = "90d"
    calendars: list[str] = Field(default_factory=list)  # default: [google] calendar_id
    hours: dict[str, list[str]] = Field(default_factory=lambda: dict(DEFAULT_HOURS))
    overrides: dict[str, list[str]] = Field(default_factory=dict)

    @field_validator("min_notice", "max_advance")
    @classmethod
    def _duration(cls, value: str) -> str:
        parse_duration(value)
        return value

    @field_validator("hours")
    @classmethod
    def _weekdays(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        unknown = set(value) - set(WEEKDAYS)
        if unknown:
            raise ValueError(f"unknown weekday(s) {sorted(unknown)}; use {', '.join(WEEKDAYS)}")
        return value

    @field_validator("overrides")
    @classmethod
    def _dates(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        from datetime import date

        for day in value:
            try:
                date.fromisoformat(day)
            except ValueError:
                raise ValueError(f"override {day!r} is not a YYYY-MM-DD date") from None
        return value


class SyncConfig(Section):
    # Default: the two-way sync with each configured calendar (see Settings._default_pairs).
    pairs: list[str] = Field(default_factory=list)
    conflict: Literal["source-wins", "newest-wins", "manual"] = "source-wins"
    delete_policy: Literal["cancel", "delete"] = "cancel"
    max_delete: str = "50%"
    import_unmanaged: bool = True
    # Occurrences of a recurring series made in the calendar become bookings, one each, from
    # today to now + recurring_ahead (a daily series never means endless bookings).
    import_recurring: bool = False
    recurring_ahead: str = "90d"
    full_every: str = "24h"
    # Incremental runs also read the bookings starting within this window ahead, so a page
    # trashed in Notion frees its slot on the next run instead of the next full read.
    trash_window: str = "14d"
    # Bookings that ended before now - history are left alone (not created, not written
    # back); "all" syncs every booking however old.
    history: str = "30d"
    dead_after: int = Field(default=3, ge=1, le=100)
    max_retries: int = Field(default=4, ge=0, le=20)
    retry_base_delay: float = Field(default=0.5, ge=0)
    retry_max_delay: float = Field(default=30.0, ge=0)
    # Notion status options whose pages must have a date; a page without one in any other
    # status is a draft: skipped with "no date yet", not an error.
    date_required: list[str] = Field(default_factory=lambda: ["Confirmed"])

    @field_validator("pairs")
    @classmethod
    def _known_pairs(cls, value: list[str]) -> list[str]:
        return _known(value, registry.all_pairs(), "pair")  # asked now: the registry may have grown

    @field_validator("max_delete")
    @classmethod
    def _max_delete(cls, value: str) -> str:
        value = str(value).strip()
        if not re.fullmatch(r"\d+(\.\d+)?%|\d+", value):
            raise ValueError("must be a percentage like '50%' or a count like '20'")
        return value

    @field_validator("full_every", "recurring_ahead", "trash_window")
    @classmethod
    def _duration(cls, value: str) -> str:
        parse_duration(value)
        return value

    @field_validator("history")
    @classmethod
    def _history(cls, value: str) -> str:
        if str(value).strip().lower() == "all":
            return "all"
        try:
            parse_duration(value)
        except ValueError:
            raise ValueError(f"must be a duration like '30d' or \"all\", not {value!r}") from None
        return value

    @property
    def full_every_delta(self) -> timedelta:
        return parse_duration(self.full_every)

    @property
    def recurring_ahead_delta(self) -> timedelta:
        return parse_duration(self.recurring_ahead)

    @property
    def trash_window_delta(self) -> timedelta:
        return parse_duration(self.trash_window)

    @property
    def history_delta(self) -> timedelta | None:
        """How far back bookings are synced; None for "all"."""
        return None if self.history == "all" else parse_duration(self.history)

    def max_delete_allowed(self, mapped: int) -> float:
        """How many deletions a plan may contain before the safety halt trips."""
        if self.max_delete.endswith("%"):
            return mapped * float(self.max_delete[:-1]) / 100
        return float(self.max_delete)


class SettingsBase(BaseSettings):
    """What the whole configuration checks and offers; :func:`settings_model` gives it its
    fields (the registry's provider sections among them) and makes ``Settings``."""

    model_config = SettingsConfigDict(env_prefix="BSYNC_", env_nested_delimiter="__",
                                      extra="forbid", validate_assignment=True)

    @field_validator("timezone", check_fields=False)  # the field comes with settings_model()
    @classmethod
    def _valid_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            raise ValueError(f"unknown IANA timezone {value!r} (e.g. 'Europe/Warsaw')") from None
        return value

    @model_validator(mode="after")
    def _default_pairs(self) -> "SettingsBase":
        """Without ``[sync] pairs``, sync both ways with every calendar that has its section
        (the first registered one, Google, when none has: its run then names the missing section)."""
        if "pairs" not in self.sync.model_fields_set:
            calendars = [name for name, entry in registry.CALENDARS.items()
                         if getattr(self, entry.section, None) is not None] or list(registry.CALENDARS)[:1]
            pairs = [pair for name in calendars for pair in (registry.push_pair(name), registry.pull_pair(name))]
            self.sync.pairs = pairs
            self.sync.model_fields_set.discard("pairs")
        return self

    @model_validator(mode="after")
    def _date_required_are_statuses(self) -> "SettingsBase":
        """``[sync] date_required`` names Notion status options: each must be in the status map."""
        if self.notion is not None and "date_required" in self.sync.model_fields_set:  # the default may not apply
            known = self.notion.status_map
            for name in self.sync.date_required:
                if name not in known:
                    raise ValueError(f"sync.date_required: unknown status {name!r}; "
                                     f"known (notion.status_map): {', '.join(known)}")
        return self

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def require(self, section: str) -> Any:
        """The section, or a ConfigError naming it when the config has none."""
        value = getattr(self, section)
        if value is None:
            raise ConfigError(f"config: section [{section}] is required for this command",
                              hint=f"add a [{section}] table (see config.example.toml)")
        return value


def provider_sections() -> dict[str, type[BaseModel]]:
    """``[section]`` -> its model, for every registry entry with a section of its own (the
    ledger's, each calendar's, each platform's), in registry order."""
    sections: dict[str, type[BaseModel]] = {}
    for entry in registry.entries():
        model = registry.config_model(entry)
        if model is not None:
            sections.setdefault(entry.section, model)
    return sections


def settings_model() -> type[SettingsBase]:
    """The ``Settings`` class: bsync's own keys and sections, and an optional section per
    registry entry, declared as real fields so each is typed, validated at load (an unknown
    key fails naming it) and read from ``BSYNC_<SECTION>__<KEY>`` (pydantic-settings reads
    the environment only for declared fields).  The order is the order of checks and messages."""
    fields: dict[str, Any] = {
        "timezone": (str, ...),
        "state_path": (Path, Field(default_factory=lambda: default_state_path())),
        **{section: (model | None, None) for section, model in provider_sections().items()},
        "sendgrid": (SendGridConfig | None, None),
        "twilio": (TwilioConfig | None, None),
        "notifications": (NotificationsConfig, Field(default_factory=NotificationsConfig)),
        "reminders": (RemindersConfig, Field(default_factory=RemindersConfig)),
        "server": (ServerConfig, Field(default_factory=ServerConfig)),
        "availability": (AvailabilityConfig, Field(default_factory=AvailabilityConfig)),
        "sync": (SyncConfig, Field(default_factory=SyncConfig)),
    }
    return create_model("Settings", __base__=SettingsBase, __module__=__name__,
                        __doc__="The whole configuration.  Build it with :func:`load_config`.", **fields)


_settings: type[SettingsBase] | None = None


def settings_class() -> type[SettingsBase]:
    """``Settings``, made on first use rather than at import: a provider's config model may
    live in a module that imports ``bsync.config`` (for ``Section``), and that module may be
    imported first; by the time anyone asks for ``Settings`` both are complete."""
    global _settings
    if _settings is None:
        _settings = settings_model()
    return _settings


def rebuild_settings() -> type[SettingsBase]:
    """Declare the sections of entries registered since ``Settings`` was made (a test's);
    :func:`load_config` uses the new class.  Modules that imported ``Settings`` by name keep
    the old one, which is fine for annotations: build settings through :func:`load_config`."""
    global _settings
    _settings = None
    return settings_class()


if TYPE_CHECKING:  # for annotations: the generated class has SettingsBase's interface and the sections
    Settings = SettingsBase


def __getattr__(name: str) -> Any:
    """``bsync.config.Settings`` (and ``from bsync.config import Settings``): see :func:`settings_class`."""
    if name == "Settings":
        return settings_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def default_state_path() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "bsync" / "state.db"


def find_config_file(explicit: str | Path | None) -> Path:
    """Resolve the config file by SPEC §2's order: --config, $BSYNC_CONFIG, ./bsync.toml, XDG."""
    if explicit:
        path = Path(explicit).expanduser()
        _refuse_directory(path, "--config")
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist",
                              hint="check the path, or copy config.example.toml there and edit it")
        return path
    candidates = []
    if os.environ.get("BSYNC_CONFIG"):
        candidates.append(Path(os.environ["BSYNC_CONFIG"]).expanduser())
        _refuse_directory(candidates[0], "$BSYNC_CONFIG")
    candidates.append(Path("bsync.toml"))
    xdg = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    candidates.append(Path(xdg) / "bsync" / "config.toml")
    for path in candidates:
        if path.is_file():
            return path
    raise ConfigError("no config file found (looked at: " + ", ".join(map(str, candidates)) + ")",
                      hint="copy config.example.toml to bsync.toml and edit it, or pass --config")


def _refuse_directory(path: Path, given_by: str) -> None:
    """A folder where the config file was expected is a mistake worth naming as such
    ("does not exist" would send the user looking for a file that is there)."""
    if path.is_dir():
        raise ConfigError(f"config path {path} (from {given_by}) is a directory, not a file",
                          hint=f"give the file itself, e.g. {path / 'bsync.toml'}")


# -- values still as in config.example.toml ------------------------------------------------------

_PLACEHOLDER = re.compile(r"(?:[A-Za-z]+[_.])*(?:\.{3}|…|x{3,}|X{3,}|\*{3,})")
"""A secret written as an elision, with or without a vendor prefix: ``secret_...``,
``SG.xxxx``, ``cal_live_...``, ``sk_live_…``, ``...``."""
_PLACEHOLDER_WORDS = {"change-me", "changeme", "your-token", "your-api-key"}


def is_placeholder(value: str) -> bool:
    """Whether a secret or id is still an example value rather than a real one."""
    value = value.strip()
    return value.lower() in _PLACEHOLDER_WORDS or _PLACEHOLDER.fullmatch(value) is not None


def placeholder_keys(settings: "Settings") -> list[str]:
    """Dotted keys (``notion.token``) whose value is still the example's placeholder.

    A config copied from config.example.toml and not yet edited would otherwise run against
    the real APIs with ``secret_...`` and fail with 401s or DNS errors that don't say why.
    Only secrets and each section's ``example_ids`` are judged: other example values are
    working defaults.
    """
    found: list[str] = []

    def walk(model: BaseModel, prefix: str) -> None:
        examples = getattr(model, "example_ids", {})
        for name in type(model).model_fields:
            value, key = getattr(model, name), f"{prefix}{name}"
            if isinstance(value, SecretStr) and is_placeholder(value.get_secret_value()):
                found.append(key)
            elif isinstance(value, str) and name in examples and (value == examples[name] or is_placeholder(value)):
                found.append(key)
            elif isinstance(value, BaseModel):
                walk(value, f"{key}.")

    walk(settings, "")
    return found


def placeholder_error(config_file: Path | str, keys: list[str]) -> ConfigError:
    """The one message for keys still holding config.example.toml's values."""
    env = "BSYNC_" + keys[0].upper().replace(".", "__")
    return ConfigError(f"config {config_file}: still the example value: {', '.join(keys)}",
                       hint=f"replace each with your own (or set it in the environment, e.g. {env}); "
                            f"delete a section you don't use")


def _format_validation_error(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        key = ".".join(str(part) for part in err["loc"]) or "(top level)"
        if err["type"] == "extra_forbidden":
            lines.append(f"unknown key {key!r}")
        elif err["type"] == "missing":
            lines.append(f"missing required key {key!r}")
        else:
            msg = err["msg"].removeprefix("Value error, ")
            lines.append(f"key {key!r}: {msg}")
    return "; ".join(lines)


def load_config(path: str | Path | None = None, *, state_path: str | Path | None = None,
                allow_placeholders: bool = False) -> Settings:
    """Load and validate the configuration; raise ConfigError naming the first bad keys.

    Relative paths in the file (state_path, google.token_file, ...) are relative to the
    file's folder, so a cron job started elsewhere finds the same files.  Secrets still as
    in config.example.toml are an error (``allow_placeholders`` lets ``doctor`` load the
    file anyway, to report them next to its other checks).
    """
    config_file = find_config_file(path)

    settings_cls = settings_class()

    class _FileSettings(settings_cls):
        @classmethod
        def settings_customise_sources(cls, settings_cls: type[BaseSettings],
                                       init_settings: PydanticBaseSettingsSource,
                                       env_settings: PydanticBaseSettingsSource,
                                       dotenv_settings: PydanticBaseSettingsSource,
                                       file_secret_settings: PydanticBaseSettingsSource,
                                       ) -> tuple[PydanticBaseSettingsSource, ...]:
            return (init_settings, env_settings,
                    TomlConfigSettingsSource(settings_cls, toml_file=config_file))

    overrides: dict[str, Any] = {}
    if state_path is not None:
        overrides["state_path"] = Path(state_path)
    try:
        loaded = _FileSettings(**overrides)
    except ValidationError as exc:
        raise ConfigError(f"config {config_file}: {_format_validation_error(exc)}") from None
    except ValueError as exc:  # TOML syntax errors and similar
        raise ConfigError(f"config {config_file}: {exc}") from None
    except OSError as exc:  # unreadable (permissions), vanished, or an I/O error
        raise ConfigError(f"cannot read config {config_file}: {exc.strerror or exc}",
                          hint="check the file's permissions (bsync needs to read it)") from None
    settings = settings_cls.model_construct(**{name: getattr(loaded, name) for name in settings_cls.model_fields})
    _resolve_relative_paths(settings, config_file.parent)
    if not allow_placeholders and (keys := placeholder_keys(settings)):
        raise placeholder_error(config_file, keys)
    return settings


def _resolve_relative_paths(settings: Settings, base: Path) -> None:
    """``state_path`` and every path-typed key of a section (``google.token_file``, ...)."""
    if not settings.state_path.is_absolute():
        settings.state_path = base / settings.state_path
    for name in type(settings).model_fields:
        section = getattr(settings, name)
        if not isinstance(section, BaseModel):
            continue
        for key in type(section).model_fields:
            value = getattr(section, key)
            if isinstance(value, Path) and not value.expanduser().is_absolute():
                setattr(section, key, base / value)
            elif isinstance(value, Path):
                setattr(section, key, value.expanduser())
    for section in (settings.sendgrid, settings.twilio):
        if section is None:
            continue
        for kind, value in section.templates.items():
            if not value.startswith("d-") and not Path(value).expanduser().is_absolute():
                section.templates[kind] = str(base / value)
