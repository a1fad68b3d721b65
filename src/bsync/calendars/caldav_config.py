"""The ``[caldav]`` config section: which CalDAV calendar bsync writes, and how it signs in.

Kept apart from :mod:`bsync.calendars.caldav` because every command loads the config and
so imports this module: it must stay light (no ``caldav`` client import; see
:mod:`bsync.registry`).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator

from bsync.config import Section


class CalDAVConfig(Section):
    """``url`` is the server's root (``https://cloud.example.com/remote.php/dav/``) or a
    calendar collection's URL; ``calendar`` picks the calendar under the root (its display
    name, or its collection URL) and is ignored when ``url`` already is one.  ``password``
    is an app password for iCloud and Fastmail (their account password is refused)."""

    example_ids = {"url": "https://cloud.example.com/remote.php/dav/"}

    url: str
    username: str
    password: SecretStr
    calendar: str | None = None
    timeout_s: float = Field(default=30.0, gt=0)

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"must be an http(s) URL, got {value!r}")
        return value if value.endswith("/") else value + "/"  # a collection: relative hrefs resolve under it
