"""A loopback emulator of the Notion API, faithful to the wire format bsync relies on.

One bookings database holding one data source, kept in memory.  The behaviour follows the
public API as documented (sources in ``/work/shared/api-notes/core-apis.md`` §1):

* ``Notion-Version`` is required (400 ``missing_version``); ``Authorization: Bearer
  sandbox-token`` is required (401 ``unauthorized`` "API token is invalid.").
* Version split: ``2025-09-03`` and later (``2026-03-11``) have data sources —
  ``GET /v1/databases/{id}`` returns the container with ``data_sources`` and no schema,
  ``GET /v1/data_sources/{id}`` the schema, ``POST /v1/data_sources/{id}/query`` the rows, and
  the old ``POST /v1/databases/{id}/query`` is 400 ``invalid_request_url``.  Up to
  ``2022-06-28`` the database carries the schema, ``/v1/databases/{id}/query`` works and every
  ``/v1/data_sources/...`` URL is 400 ``invalid_request_url``.  ``2026-03-11`` drops ``archived``.
* ``created_time`` / ``last_edited_time`` are rounded down to the minute, in responses and in
  timestamp filters and sorts (``clock`` is injectable so tests can move time).
* Dates: with ``time_zone`` the local start/end are rendered with the zone's offset folded in
  and ``time_zone: null``; an offset given on write is kept (``Z`` is rendered ``+00:00``); a
  datetime without offset is UTC; a date stays a date.
* Query results without ``sorts`` come in creation order (oldest first, ties by creation
  sequence) — real Notion documents no default, this one is stable under concurrent inserts.
  ``next_cursor`` is the id of the first page of the next batch, as Notion's are.

Page ids are deterministic (uuid5 of the creation sequence) so demo output is stable.
"""

from __future__ import annotations

import copy
import json
import re
import uuid
from bisect import bisect_left
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import Any, Callable, Iterable
from urllib.parse import unquote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bsync.sandbox.base import JSON, Request, Response, SandboxApiError, SandboxServer, route

__all__ = ["NotionSandbox", "NotionPage", "SANDBOX_TOKEN", "SCHEMA"]

SANDBOX_TOKEN = "sandbox-token"
LEGACY_VERSIONS = frozenset({"2021-05-11", "2021-05-13", "2021-08-16", "2022-02-22", "2022-06-28"})
DATA_SOURCE_VERSIONS = frozenset({"2025-09-03", "2026-03-11"})
NO_ARCHIVED_VERSIONS = frozenset({"2026-03-11"})

_NS = uuid.uuid5(uuid.NAMESPACE_URL, "https://bsync.invalid/sandbox/notion")
_SHARE_HINT = "Make sure the relevant pages and databases are shared with your integration."
_INVALID_URL = "Invalid request URL."
_UTC = timezone.utc

_ERROR_CODES = {
    400: "validation_error", 401: "unauthorized", 403: "restricted_resource",
    404: "object_not_found", 409: "conflict_error", 429: "rate_limited",
    500: "internal_server_error", 503: "service_unavailable", 504: "gateway_timeout",
    529: "service_overload",
}
_BAD_GATEWAY = (b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
                b"<center><h1>502 Bad Gateway</h1></center>\r\n</body>\r\n</html>\r\n")

# Value types a page property write may carry (the "Fix one:" list of Notion's validator).
_VALUE_TYPES = ("title", "rich_text", "number", "url", "select", "multi_select", "people",
                "email", "phone_number", "date", "checkbox", "relation", "files", "status")
# Filter condition keys.
_FILTER_TYPES = ("title", "rich_text", "number", "checkbox", "select", "multi_select", "status",
                 "date", "people", "files", "url", "email", "phone_number", "relation",
                 "created_by", "created_time", "last_edited_by", "last_edited_time", "formula",
                 "unique_id", "rollup", "verification")
# Which filter keys each schema type accepts.
_FILTER_COMPAT = {
    "title": ("title", "rich_text"), "rich_text": ("rich_text",), "email": ("email",),
    "phone_number": ("phone_number",), "select": ("select",), "status": ("status",),
    "date": ("date",),
}
_TEXT_OPS = ("equals", "does_not_equal", "contains", "does_not_contain", "starts_with",
             "ends_with", "is_empty", "is_not_empty")
_OPTION_OPS = ("equals", "does_not_equal", "is_empty", "is_not_empty")
_DATE_OPS = ("equals", "before", "after", "on_or_before", "on_or_after", "is_empty",
             "is_not_empty", "past_week", "past_month", "past_year", "next_week", "next_month",
             "next_year")
_RELATIVE_DAYS = {"past_week": -7, "past_month": -30, "past_year": -365,
                  "next_week": 7, "next_month": 30, "next_year": 365}
_ANNOTATIONS = {"bold": False, "italic": False, "strikethrough": False, "underline": False,
                "code": False, "color": "default"}
_COLORS = ("default", "gray", "brown", "orange", "yellow", "green", "blue", "purple", "pink", "red")

# name, type, property id (url-encoded like Notion's), options [(name, color)]
SCHEMA: tuple[tuple[str, str, str, tuple[tuple[str, str], ...]], ...] = (
    ("Name", "title", "title", ()),
    ("When", "date", "%3DvQm", ()),
    ("Status", "status", "Zt%3Cl", (("Pending", "gray"), ("Confirmed", "blue"),
                                   ("In progress", "yellow"), ("Completed", "green"),
                                   ("Cancelled", "red"), ("No-show", "orange"))),
    ("Customer", "rich_text", "c%7Dqb", ()),
    ("Email", "email", "%40eMl", ()),
    ("Phone", "phone_number", "pH%3F_", ()),
    ("Service", "select", "sVc%5D", (("Bath", "blue"), ("Haircut", "purple"),
                                     ("Nail trim", "pink"), ("Full groom", "green"),
                                     ("Consultation", "gray"))),
    ("Staff", "select", "%5BstF", (("Anna", "orange"), ("Ben", "brown"), ("Chloe", "yellow"))),
    ("Notes", "rich_text", "nT%3Bs", ()),
    ("Location", "rich_text", "L%60oc", ()),
    ("Timezone", "rich_text", "tZ%7Cn", ()),
    ("Calendar Event ID", "rich_text", "cE%3Ai", ()),
    ("Source", "select", "%3ESrc", (("notion", "default"), ("gcal", "blue"),
                                    ("calcom", "purple"), ("sesami", "green"))),
    ("External ID", "rich_text", "x%25Id", ()),
    ("Client ID", "rich_text", "c%3AId", ()),
    ("Pet ID", "rich_text", "p%3AId", ()),
    ("Notifications", "select", "n%3FtF", (("on", "green"), ("off", "gray"))),
)
# Status groups: group name, color, option names.
_STATUS_GROUPS = (("To-do", "gray", ("Pending", "Confirmed")),
                  ("In progress", "blue", ("In progress",)),
                  ("Complete", "green", ("Completed", "Cancelled", "No-show")))


def _bad(message: str, code: str | None = None) -> SandboxApiError:
    return SandboxApiError(400, message, code)


# -- small helpers ----------------------------------------------------------------------------
def _js(value: Any) -> str:
    """A value as Notion's validator quotes it."""
    return json.dumps(value, ensure_ascii=False)


def _utf16_len(text: str) -> int:
    """Length as Notion (JavaScript) counts it: UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


_HEX32 = re.compile(r"^[0-9a-fA-F]{32}$")


def _norm_id(raw: Any) -> str | None:
    """A Notion id with or without dashes, as the dashed lower-case form (None if not an id)."""
    if not isinstance(raw, str):
        return None
    s = raw.replace("-", "")
    if not _HEX32.match(s):
        return None
    s = s.lower()
    return f"{s[:8]}-{s[8:12]}-{s[12:16]}-{s[16:20]}-{s[20:]}"


def _minute(dt: datetime) -> datetime:
    return dt.astimezone(_UTC).replace(second=0, microsecond=0)


def _fmt_ts(dt: datetime) -> str:
    """A created/last-edited timestamp: UTC, rounded down to the minute, ``.000Z``."""
    return _minute(dt).strftime("%Y-%m-%dT%H:%M:00.000Z")


def _fmt_dt(dt: datetime) -> str:
    """A date-property datetime: milliseconds and a numeric offset (``+00:00`` for UTC)."""
    off = int(dt.utcoffset().total_seconds())  # type: ignore[union-attr]
    sign = "+" if off >= 0 else "-"
    hours, minutes = divmod(abs(off) // 60, 60)
    return f"{dt:%Y-%m-%dT%H:%M:%S}.{dt.microsecond // 1000:03d}{sign}{hours:02d}:{minutes:02d}"


_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _parse_iso(value: Any) -> date | datetime | None:
    """An ISO 8601 date or datetime (possibly naive), or None if it is not one."""
    if not isinstance(value, str) or len(value) < 10 or value[4:5] != "-":
        return None
    try:
        if _DATE_ONLY.match(value):
            return date.fromisoformat(value)
        return datetime.fromisoformat(value)
    except ValueError:
        return None


class _Rev:
    """Reverses the order of a sort-key component (descending sorts)."""

    __slots__ = ("v",)

    def __init__(self, v: Any) -> None:
        self.v = v

    def __lt__(self, other: "_Rev") -> bool:
        return other.v < self.v

    def __gt__(self, other: "_Rev") -> bool:
        return other.v > self.v

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Rev) and self.v == other.v

    def __hash__(self) -> int:
        return hash(self.v)


# -- stored values ----------------------------------------------------------------------------
@dataclass(frozen=True)
class _Text:
    items: tuple[JSON, ...]  # rich text objects in read format
    plain: str


_EMPTY_TEXT = _Text((), "")


@dataclass(frozen=True)
class _DateValue:
    start: str
    end: str | None
    instant: datetime  # start as an aware instant (a date is midnight UTC)
    day: date  # the start's calendar date as written/rendered

    def render(self) -> JSON:
        return {"start": self.start, "end": self.end, "time_zone": None}


@dataclass(eq=False)
class NotionPage:
    """A page as the sandbox stores it (``NotionSandbox.pages`` maps id to these)."""

    id: str
    seq: int
    data_source_id: str
    created: datetime  # exact; rendered rounded down to the minute
    edited: datetime
    values: dict[str, Any]  # property name -> stored value
    in_trash: bool = False
    icon: Any = None
    cover: Any = None
    _rendered: dict[str, JSON] | None = field(default=None, repr=False)
    _url: str | None = field(default=None, repr=False)

    @property
    def created_minute(self) -> datetime:
        return _minute(self.created)

    @property
    def edited_minute(self) -> datetime:
        return _minute(self.edited)

    @property
    def title(self) -> str:
        return self.value("Name") or ""

    def value(self, name: str) -> Any:
        """A property's plain value: text, option name, email/phone string, or the date dict."""
        v = self.values.get(name)
        if isinstance(v, _Text):
            return v.plain
        if isinstance(v, _DateValue):
            return v.render()
        if isinstance(v, dict):  # select / status option
            return v["name"]
        return v


# -- the server -------------------------------------------------------------------------------
class NotionSandbox(SandboxServer):
    """The Notion API on a loopback port: one bookings database with one data source.

    Public: ``url``, ``database_id``, ``data_source_id``, ``token``, ``clock``, ``pages``,
    ``create_page``, ``update_page``, ``get_page``, ``page_count``, ``schema``, plus the base
    class's request log, reset and fault injection.
    """

    name = "notion"

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, token: str = SANDBOX_TOKEN,
                 clock: Callable[[], datetime] | None = None) -> None:
        self.token = token
        #: zero-argument callable returning an aware UTC datetime; replace it to move time.
        self.clock: Callable[[], datetime] = clock or (lambda: datetime.now(_UTC))
        self.database_id = str(uuid.uuid5(_NS, "database/bookings"))
        self.data_source_id = str(uuid.uuid5(_NS, "data_source/bookings"))
        self.parent_page_id = str(uuid.uuid5(_NS, "page/salon"))
        self.bot_id = str(uuid.uuid5(_NS, "user/bot"))
        super().__init__(host, port)

    # -- state ------------------------------------------------------------------------------
    def reset_state(self) -> None:
        now = self._now()
        self.created_time = now
        self.pages: dict[str, NotionPage] = {}
        self._order: list[NotionPage] = []  # by seq; seq == index
        self._issued: dict[str, dict[str, tuple]] = {}  # cursor -> {sort signature: key}
        self._mutations = 0
        self._query_cache: dict[tuple, tuple[list[tuple], list[NotionPage]]] = {}
        self.schema: dict[str, JSON] = {}
        self._by_key: dict[str, JSON] = {}
        for pname, ptype, pid, options in SCHEMA:
            prop: JSON = {"id": pid, "name": pname, "type": ptype, "options": {}}
            for oname, color in options:
                self._add_option(prop, oname, color)
            self.schema[pname] = prop
            self._by_key[pname] = prop
            self._by_key[pid] = prop
            self._by_key[unquote(pid)] = prop

    def _now(self) -> datetime:
        now = self.clock()
        if now.tzinfo is None:
            raise ValueError("NotionSandbox.clock must return an aware datetime")
        return now.astimezone(_UTC)

    def _add_option(self, prop: JSON, name: str, color: str | None = None) -> JSON:
        if color is None:
            color = _COLORS[len(prop["options"]) % len(_COLORS)]
        option = {"id": str(uuid.uuid5(_NS, f"option/{prop['name']}/{name}")), "name": name,
                  "color": color}
        prop["options"][option["id"]] = option
        return option

    def _lookup(self, key: Any) -> JSON | None:
        if not isinstance(key, str):
            return None
        return self._by_key.get(key) or self._by_key.get(unquote(key))

    def _touch(self) -> None:
        self._mutations += 1
        self._query_cache.clear()

    # -- base-class hooks -------------------------------------------------------------------
    def check_auth(self, request: Request) -> Response | None:
        if request.headers.get("authorization", "") != f"Bearer {self.token}":
            return self.error(401, "API token is invalid.")
        version = request.headers.get("notion-version")
        if not version:
            return self.error(400, "Notion-Version header failed validation: Notion-Version header "
                                   "should be defined, instead was `undefined`.", "missing_version")
        if version not in LEGACY_VERSIONS and version not in DATA_SOURCE_VERSIONS:
            return self.error(400, f"Provided API version {version} is not supported. Use one "
                                   f"of: 2022-06-28, 2025-09-03, 2026-03-11.")
        return None

    def error(self, status: int, message: str, code: str | None = None) -> Response:
        if status == 502:  # what the proxy in front of the API sends
            return Response(502, _BAD_GATEWAY, content_type="text/html")
        if status == 405:  # Notion has no 405: a method it does not serve is an invalid URL
            status, code, message = 400, "invalid_request_url", _INVALID_URL
        request_id = str(uuid.uuid4())
        body = {"object": "error", "status": status,
                "code": code or _ERROR_CODES.get(status, "internal_server_error"),
                "message": message, "request_id": request_id}
        return Response(status, body, headers={"x-notion-request-id": request_id})

    def not_found_route(self, request: Request) -> Response:
        return self.error(400, _INVALID_URL, "invalid_request_url")

    # -- request helpers --------------------------------------------------------------------
    @staticmethod
    def _version(request: Request) -> str:
        return request.headers.get("notion-version", "")

    def _legacy(self, request: Request) -> bool:
        return self._version(request) in LEGACY_VERSIONS

    def _ok(self, body: JSON) -> Response:
        request_id = str(uuid.uuid4())
        body["request_id"] = request_id
        # Compact UTF-8 JSON, as the API sends it (and cheaper for 10,000-page reads).
        payload = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        return Response(200, payload, headers={"x-notion-request-id": request_id})

    @staticmethod
    def _body(request: Request) -> JSON:
        if not request.body or not request.body.strip():
            return {}
        try:
            data = json.loads(request.body)
        except ValueError:
            raise _bad("Error parsing JSON body.", "invalid_json") from None
        if not isinstance(data, dict):
            raise _bad(f"body failed validation: body should be an object, instead was `{_js(data)}`.")
        return data

    @staticmethod
    def _path_id(request: Request, name: str) -> str:
        raw = request.params[name]
        norm = _norm_id(raw)
        if norm is None:
            raise _bad(f"path failed validation: path.{name} should be a valid uuid, instead was "
                       f"`{_js(raw)}`.")
        return norm

    def _require_database(self, db_id: str) -> None:
        if db_id != self.database_id:
            raise SandboxApiError(404, f"Could not find database with ID: {db_id}. {_SHARE_HINT}")

    def _require_data_source(self, ds_id: str) -> None:
        if ds_id != self.data_source_id:
            raise SandboxApiError(404, f"Could not find data_source with ID: {ds_id}. {_SHARE_HINT}")

    def _require_page(self, page_id: str) -> NotionPage:
        page = self.pages.get(page_id)
        if page is None:
            raise SandboxApiError(404, f"Could not find page with ID: {page_id}. {_SHARE_HINT}")
        return page

    # -- rendering --------------------------------------------------------------------------
    def _user(self) -> JSON:
        return {"object": "user", "id": self.bot_id}

    def _schema_json(self) -> JSON:
        out: JSON = {}
        for pname, prop in self.schema.items():
            ptype = prop["type"]
            config: JSON = {}
            if ptype in ("select", "status"):
                config["options"] = [{**o, "description": None} for o in prop["options"].values()]
            if ptype == "status":
                by_name = {o["name"]: o["id"] for o in prop["options"].values()}
                config["groups"] = [
                    {"id": str(uuid.uuid5(_NS, f"group/{gname}")), "name": gname, "color": color,
                     "option_ids": [by_name[n] for n in names if n in by_name]}
                    for gname, color, names in _STATUS_GROUPS]
            out[pname] = {"id": prop["id"], "name": pname, "type": ptype, "description": None,
                          ptype: config}
        return out

    def _title_rt(self) -> list[JSON]:
        return [self._rich_text("Bookings")]

    @staticmethod
    def _rich_text(content: str, link: str | None = None,
                   annotations: JSON | None = None) -> JSON:
        return {"type": "text", "text": {"content": content, "link": {"url": link} if link else None},
                "annotations": dict(annotations or _ANNOTATIONS), "plain_text": content,
                "href": link}

    def _database_json(self, version: str) -> JSON:
        obj: JSON = {
            "object": "database", "id": self.database_id,
            "created_time": _fmt_ts(self.created_time), "last_edited_time": _fmt_ts(self.created_time),
            "created_by": self._user(), "last_edited_by": self._user(),
            "title": self._title_rt(), "description": [], "icon": None, "cover": None,
            "parent": {"type": "page_id", "page_id": self.parent_page_id},
            "is_inline": False, "in_trash": False, "is_locked": False,
            "url": f"https://www.notion.so/{self.database_id.replace('-', '')}", "public_url": None,
        }
        if version in LEGACY_VERSIONS:
            obj["properties"] = self._schema_json()
            obj["archived"] = False
        else:
            obj["data_sources"] = [{"id": self.data_source_id, "name": "Bookings"}]
            if version not in NO_ARCHIVED_VERSIONS:
                obj["archived"] = False
        return obj

    def _data_source_json(self, version: str) -> JSON:
        obj: JSON = {
            "object": "data_source", "id": self.data_source_id,
            "created_time": _fmt_ts(self.created_time), "last_edited_time": _fmt_ts(self.created_time),
            "created_by": self._user(), "last_edited_by": self._user(),
            "properties": self._schema_json(),
            "parent": {"type": "database_id", "database_id": self.database_id},
            "database_parent": {"type": "page_id", "page_id": self.parent_page_id},
            "title": self._title_rt(), "description": [], "icon": None, "cover": None,
            "in_trash": False, "is_inline": False,
            "url": f"https://www.notion.so/{self.data_source_id.replace('-', '')}", "public_url": None,
        }
        if version not in NO_ARCHIVED_VERSIONS:
            obj["archived"] = False
        return obj

    def _rendered_properties(self, page: NotionPage) -> dict[str, JSON]:
        if page._rendered is None:
            rendered: dict[str, JSON] = {}
            for pname, prop in self.schema.items():
                ptype = prop["type"]
                v = page.values.get(pname)
                if ptype in ("title", "rich_text"):
                    value: Any = list(v.items) if v else []
                elif ptype in ("select", "status"):
                    value = dict(v) if v else None
                elif ptype == "date":
                    value = v.render() if v else None
                else:
                    value = v
                rendered[pname] = {"id": prop["id"], "type": ptype, ptype: value}
            page._rendered = rendered
            slug = re.sub(r"[^A-Za-z0-9]+", "-", page.title).strip("-")
            hex_id = page.id.replace("-", "")
            page._url = f"https://www.notion.so/{slug}-{hex_id}" if slug else \
                f"https://www.notion.so/{hex_id}"
        return page._rendered

    def _page_json(self, page: NotionPage, version: str,
                   only: set[str] | None = None) -> JSON:
        props = self._rendered_properties(page)
        if only is not None:
            props = {k: v for k, v in props.items() if v["id"] in only or unquote(v["id"]) in only}
        if version in LEGACY_VERSIONS:
            parent: JSON = {"type": "database_id", "database_id": self.database_id}
        else:
            parent = {"type": "data_source_id", "data_source_id": page.data_source_id,
                      "database_id": self.database_id}
        obj: JSON = {
            "object": "page", "id": page.id,
            "created_time": _fmt_ts(page.created), "last_edited_time": _fmt_ts(page.edited),
            "created_by": self._user(), "last_edited_by": self._user(),
            "cover": page.cover, "icon": page.icon, "parent": parent,
        }
        if version not in NO_ARCHIVED_VERSIONS:
            obj["archived"] = page.in_trash
        obj["in_trash"] = page.in_trash
        obj["properties"] = props
        obj["url"] = page._url
        obj["public_url"] = None
        return obj

    # -- property writes --------------------------------------------------------------------
    def _prepare(self, raw: Any) -> tuple[dict[str, Any], list[tuple[JSON, str]]]:
        """Validate a write-format ``properties`` object like Notion does.

        Returns the stored values to set and the select options to create.  Shape errors
        ("body failed validation: …") come first, one at a time; then schema errors
        ("X is not a property that exists.", "X is expected to be T.", unknown options),
        all of them joined, as the real API reports them.
        """
        if raw is None:
            return {}, []
        if not isinstance(raw, dict):
            raise _bad(f"body failed validation: body.properties should be an object, instead was "
                       f"`{_js(raw)}`.")
        shaped: list[tuple[str, str, Any]] = []
        for key, value in raw.items():
            path = f"body.properties.{key}"
            if not isinstance(value, dict):
                raise _bad(f"body failed validation: {path} should be an object, instead was "
                           f"`{_js(value)}`.")
            candidates = [k for k in value if k in _VALUE_TYPES]
            if not candidates:
                raise _bad("body failed validation. Fix one: " + " ".join(
                    f"{path}.{t} should be defined, instead was `undefined`." for t in _VALUE_TYPES))
            tkey = value.get("type") if value.get("type") in candidates else candidates[0]
            shaped.append((key, tkey, self._shape(path, tkey, value[tkey])))

        errors: list[str] = []
        updates: dict[str, Any] = {}
        new_options: list[tuple[JSON, str]] = []
        for key, tkey, converted in shaped:
            prop = self._lookup(key)
            if prop is None:
                errors.append(f"{key} is not a property that exists.")
                continue
            if prop["type"] != tkey:
                errors.append(f"{key} is expected to be {prop['type']}.")
                continue
            if tkey in ("select", "status") and converted is not None:
                option = self._resolve_option(prop, converted, new_options)
                if isinstance(option, str):
                    errors.append(option)
                    continue
                converted = option
            updates[prop["name"]] = converted
        if errors:
            raise _bad(" ".join(errors))
        return updates, new_options

    def _resolve_option(self, prop: JSON, spec: JSON,
                        new_options: list[tuple[JSON, str]]) -> JSON | str:
        ptype = prop["type"]
        if spec.get("id") is not None:
            option = prop["options"].get(spec["id"])
            if option is None:
                return f"{prop['id']} is an invalid {ptype} option {_js(spec['id'])}."
            return option
        name = spec["name"]
        for option in prop["options"].values():
            if option["name"] == name:
                return option
        if ptype == "status":  # status options are not created by page writes
            return f"{prop['id']} is an invalid status option {_js(name)}."
        for pending_prop, pending_name in new_options:
            if pending_prop is prop and pending_name == name:
                break
        else:
            new_options.append((prop, name))
        # A placeholder resolved once the option exists (see _commit_options).
        return {"__new__": name}

    def _commit_options(self, updates: dict[str, Any], new_options: list[tuple[JSON, str]]) -> None:
        """Create the select options a valid write named, and put them in ``updates``."""
        created = {(prop["name"], name): self._add_option(prop, name) for prop, name in new_options}
        for pname, value in list(updates.items()):
            if isinstance(value, dict) and "__new__" in value:
                updates[pname] = created[(pname, value["__new__"])]

    def _shape(self, path: str, tkey: str, value: Any) -> Any:
        """Check one value's shape for its type key and convert it to the stored form."""
        p = f"{path}.{tkey}"
        if tkey in ("title", "rich_text"):
            return self._shape_text(p, value)
        if tkey in ("select", "status"):
            if value is None:
                return None
            if not isinstance(value, dict):
                raise _bad(f"body failed validation: {p} should be an object or `null`, instead was "
                           f"`{_js(value)}`.")
            if isinstance(value.get("id"), str):
                return {"id": value["id"]}
            name = value.get("name")
            if not isinstance(name, str):
                raise _bad(f"body failed validation. Fix one: {p}.id should be defined, instead was "
                           f"`undefined`. {p}.name should be defined, instead was `undefined`.")
            if _utf16_len(name) > 100:
                raise _bad(f"body failed validation: {p}.name.length should be ≤ `100`, instead was "
                           f"`{_utf16_len(name)}`.")
            if tkey == "select" and "," in name:
                raise _bad(f"Invalid select option, commas not allowed: {name}")
            return {"name": name}
        if tkey in ("email", "phone_number"):
            if value is None:
                return None
            if not isinstance(value, str):
                raise _bad(f"body failed validation: {p} should be a string or `null`, instead was "
                           f"`{_js(value)}`.")
            if _utf16_len(value) > 200:
                raise _bad(f"body failed validation: {p}.length should be ≤ `200`, instead was "
                           f"`{_utf16_len(value)}`.")
            return value or None
        if tkey == "date":
            return self._shape_date(p, value)
        return value  # other types: never match this schema; reported as "expected to be"

    @staticmethod
    def _shape_text(p: str, value: Any) -> _Text:
        if not isinstance(value, list):
            raise _bad(f"body failed validation: {p} should be an array, instead was `{_js(value)}`.")
        if len(value) > 100:
            raise _bad(f"body failed validation: {p}.length should be ≤ `100`, instead was "
                       f"`{len(value)}`.")
        items: list[JSON] = []
        for i, item in enumerate(value):
            ip = f"{p}[{i}]"
            if not isinstance(item, dict):
                raise _bad(f"body failed validation: {ip} should be an object, instead was "
                           f"`{_js(item)}`.")
            itype = item.get("type", "text")
            text = item.get("text")
            if itype != "text" or text is None:
                raise _bad(f"body failed validation: {ip}.text should be defined, instead was "
                           f"`undefined`.")
            if not isinstance(text, dict):
                raise _bad(f"body failed validation: {ip}.text should be an object, instead was "
                           f"`{_js(text)}`.")
            content = text.get("content")
            if not isinstance(content, str):
                raise _bad(f"body failed validation: {ip}.text.content should be a string, instead "
                           f"was `{_js(content) if 'content' in text else 'undefined'}`.")
            if _utf16_len(content) > 2000:
                raise _bad(f"body failed validation: {ip}.text.content.length should be ≤ `2000`, "
                           f"instead was `{_utf16_len(content)}`.")
            link = text.get("link")
            url = None
            if link is not None:
                if not isinstance(link, dict) or not isinstance(link.get("url"), str):
                    raise _bad(f"body failed validation: {ip}.text.link should be an object or "
                               f"`null`, instead was `{_js(link)}`.")
                url = link["url"]
            annotations = dict(_ANNOTATIONS)
            raw_ann = item.get("annotations")
            if raw_ann is not None:
                if not isinstance(raw_ann, dict):
                    raise _bad(f"body failed validation: {ip}.annotations should be an object, "
                               f"instead was `{_js(raw_ann)}`.")
                for k, v in raw_ann.items():
                    if k == "color" and isinstance(v, str):
                        annotations[k] = v
                    elif k in _ANNOTATIONS and k != "color" and isinstance(v, bool):
                        annotations[k] = v
                    else:
                        raise _bad(f"body failed validation: {ip}.annotations.{k} should be "
                                   f"{'a string' if k == 'color' else 'a boolean'}, instead was "
                                   f"`{_js(v)}`.")
            items.append(NotionSandbox._rich_text(content, url, annotations))
        if not items:
            return _EMPTY_TEXT
        return _Text(tuple(items), "".join(i["plain_text"] for i in items))

    @staticmethod
    def _shape_date(p: str, value: Any) -> _DateValue | None:
        if value is None:
            return None
        if not isinstance(value, dict):
            raise _bad(f"body failed validation: {p} should be an object or `null`, instead was "
                       f"`{_js(value)}`.")
        if "start" not in value:
            raise _bad(f"body failed validation: {p}.start should be defined, instead was "
                       f"`undefined`.")
        start_raw, end_raw, tz_name = value.get("start"), value.get("end"), value.get("time_zone")
        start = _parse_iso(start_raw)
        if start is None:
            raise _bad(f"body failed validation: {p}.start should be a valid ISO 8601 date string, "
                       f"instead was `{_js(start_raw)}`.")
        end = None
        if end_raw is not None:
            end = _parse_iso(end_raw)
            if end is None:
                raise _bad(f"body failed validation: {p}.end should be a valid ISO 8601 date string, "
                           f"`null`, or `undefined`, instead was `{_js(end_raw)}`.")
        zone: ZoneInfo | None = None
        if tz_name is not None:
            if not isinstance(tz_name, str):
                raise _bad(f"body failed validation: {p}.time_zone should be a string or `null`, "
                           f"instead was `{_js(tz_name)}`.")
            try:
                zone = ZoneInfo(tz_name)
            except (ZoneInfoNotFoundError, ValueError):
                raise _bad(f"body failed validation: {p}.time_zone should be a valid IANA time zone, "
                           f"instead was `{_js(tz_name)}`.") from None
            for label, v in (("start", start), ("end", end)):
                if v is None:
                    continue
                if not isinstance(v, datetime):
                    raise _bad(f"{p}.{label} must include a time when time_zone is provided, "
                               f"instead was `{_js(value.get(label))}`.")
                if v.tzinfo is not None:
                    raise _bad(f"{p}.{label} must not include a UTC offset when time_zone is "
                               f"provided, instead was `{_js(value.get(label))}`.")

        def norm(v: date | datetime) -> tuple[str, datetime, date]:
            if not isinstance(v, datetime):
                return v.isoformat(), datetime.combine(v, time(0), _UTC), v
            if zone is not None:
                v = v.replace(tzinfo=zone)
            elif v.tzinfo is None:
                v = v.replace(tzinfo=_UTC)
            return _fmt_dt(v), v, v.date()

        start_s, instant, day = norm(start)
        end_s = norm(end)[0] if end is not None else None
        return _DateValue(start_s, end_s, instant, day)

    # -- page operations (shared by HTTP and in-process helpers) ----------------------------
    def _create(self, parent_ds: str, raw_props: Any, icon: Any = None, cover: Any = None) -> NotionPage:
        updates, new_options = self._prepare(raw_props)
        self._commit_options(updates, new_options)
        now = self._now()
        seq = len(self._order)
        values: dict[str, Any] = {}
        for pname, prop in self.schema.items():
            values[pname] = _EMPTY_TEXT if prop["type"] in ("title", "rich_text") else None
        values.update(updates)
        page = NotionPage(id=str(uuid.uuid5(_NS, f"page/{seq}")), seq=seq, data_source_id=parent_ds,
                          created=now, edited=now, values=values, icon=icon, cover=cover)
        self.pages[page.id] = page
        self._order.append(page)
        self._touch()
        return page

    def _update(self, page: NotionPage, raw_props: Any = None, in_trash: bool | None = None,
                icon: Any = ..., cover: Any = ...) -> NotionPage:
        updates, new_options = self._prepare(raw_props)
        edits_content = bool(updates) or icon is not ... or cover is not ...
        if page.in_trash and in_trash is not False and edits_content:
            raise _bad("Can't edit block that is archived. You must unarchive the block before "
                       "editing.")
        self._commit_options(updates, new_options)
        if in_trash is not None:
            page.in_trash = in_trash
        page.values.update(updates)
        if icon is not ...:
            page.icon = icon
        if cover is not ...:
            page.cover = cover
        if edits_content or in_trash is not None:
            page.edited = self._now()
            page._rendered = None
            self._touch()
        return page

    def _parent_data_source(self, parent: Any, version: str) -> str:
        legacy = version in LEGACY_VERSIONS
        if parent is None:
            raise _bad("body failed validation: body.parent should be defined, instead was "
                       "`undefined`.")
        if not isinstance(parent, dict):
            raise _bad(f"body failed validation: body.parent should be an object, instead was "
                       f"`{_js(parent)}`.")
        kinds = ("database_id", "page_id") if legacy else ("data_source_id", "database_id", "page_id")
        kind = parent.get("type") if parent.get("type") in kinds and parent.get("type") in parent \
            else next((k for k in kinds if k in parent), None)
        if kind is None:
            raise _bad("body failed validation. Fix one: " + " ".join(
                f"body.parent.{k} should be defined, instead was `undefined`." for k in kinds))
        raw = parent[kind]
        norm = _norm_id(raw)
        if norm is None:
            raise _bad(f"body failed validation: body.parent.{kind} should be a valid uuid, instead "
                       f"was `{_js(raw)}`.")
        if kind == "data_source_id":
            self._require_data_source(norm)
            return norm
        if kind == "database_id":
            self._require_database(norm)
            return self.data_source_id  # a single-source database
        self._require_page(norm)
        raise _bad("The sandbox only creates pages in its bookings database; use a database "
                   "or data source parent.")

    # -- routes -----------------------------------------------------------------------------
    @route("GET", "/v1/users/me")
    def _users_me(self, request: Request) -> Response:
        return self._ok({"object": "user", "id": self.bot_id, "name": "bsync sandbox",
                         "avatar_url": None, "type": "bot",
                         "bot": {"owner": {"type": "workspace", "workspace": True},
                                 "workspace_name": "Sandbox salon"}})

    @route("GET", "/v1/databases/{database_id}")
    def _get_database(self, request: Request) -> Response:
        db_id = self._path_id(request, "database_id")
        self._require_database(db_id)
        return self._ok(self._database_json(self._version(request)))

    @route("POST", "/v1/databases/{database_id}/query")
    def _query_database(self, request: Request) -> Response:
        if not self._legacy(request):  # removed in 2025-09-03
            raise _bad(_INVALID_URL, "invalid_request_url")
        db_id = self._path_id(request, "database_id")
        self._require_database(db_id)
        return self._query(request, self.data_source_id)

    @route("GET", "/v1/data_sources/{data_source_id}")
    def _get_data_source(self, request: Request) -> Response:
        if self._legacy(request):
            raise _bad(_INVALID_URL, "invalid_request_url")
        ds_id = self._path_id(request, "data_source_id")
        self._require_data_source(ds_id)
        return self._ok(self._data_source_json(self._version(request)))

    @route("POST", "/v1/data_sources/{data_source_id}/query")
    def _query_data_source(self, request: Request) -> Response:
        if self._legacy(request):
            raise _bad(_INVALID_URL, "invalid_request_url")
        ds_id = self._path_id(request, "data_source_id")
        self._require_data_source(ds_id)
        return self._query(request, ds_id)

    @route("POST", "/v1/pages")
    def _post_page(self, request: Request) -> Response:
        version = self._version(request)
        body = self._body(request)
        ds_id = self._parent_data_source(body.get("parent"), version)
        page = self._create(ds_id, body.get("properties"), body.get("icon"), body.get("cover"))
        return self._ok(self._page_json(page, version))

    @route("GET", "/v1/pages/{page_id}")
    def _get_page(self, request: Request) -> Response:
        page = self._require_page(self._path_id(request, "page_id"))
        only = self._filter_properties(request)
        return self._ok(self._page_json(page, self._version(request), only))

    @route("PATCH", "/v1/pages/{page_id}")
    def _patch_page(self, request: Request) -> Response:
        version = self._version(request)
        page = self._require_page(self._path_id(request, "page_id"))
        body = self._body(request)
        trash: bool | None = None
        for key in ("archived", "in_trash"):  # in_trash wins when both are given
            if key not in body or body[key] is None:
                continue
            if key == "archived" and version in NO_ARCHIVED_VERSIONS:
                raise _bad("body failed validation: body.archived should be not present, instead "
                           "was `" + _js(body[key]) + "`. Use in_trash.")
            if not isinstance(body[key], bool):
                raise _bad(f"body failed validation: body.{key} should be a boolean or `undefined`, "
                           f"instead was `{_js(body[key])}`.")
            trash = body[key]
        page = self._update(page, body.get("properties"), trash,
                            body["icon"] if "icon" in body else ...,
                            body["cover"] if "cover" in body else ...)
        return self._ok(self._page_json(page, version))

    # -- query ------------------------------------------------------------------------------
    @staticmethod
    def _filter_properties(request: Request) -> set[str] | None:
        ids = request.args("filter_properties") + request.args("filter_properties[]")
        return set(ids) | {unquote(i) for i in ids} if ids else None

    def _query(self, request: Request, ds_id: str) -> Response:
        version = self._version(request)
        body = self._body(request)
        page_size = body.get("page_size", 100)
        if page_size is None:
            page_size = 100
        if isinstance(page_size, bool) or not isinstance(page_size, (int, float)) \
                or page_size != int(page_size):
            raise _bad(f"body failed validation: body.page_size should be a number or `undefined`, "
                       f"instead was `{_js(page_size)}`.")
        page_size = int(page_size)
        if page_size > 100:
            raise _bad(f"body failed validation: body.page_size should be ≤ `100`, instead was "
                       f"`{page_size}`.")
        if page_size < 1:
            raise _bad(f"body failed validation: body.page_size should be ≥ `1`, instead was "
                       f"`{page_size}`.")
        cursor = body.get("start_cursor")
        if cursor is not None and not isinstance(cursor, str):
            raise _bad(f"body failed validation: body.start_cursor should be a string or "
                       f"`undefined`, instead was `{_js(cursor)}`.")
        raw_filter = body.get("filter")
        pred = self._compile_filter(raw_filter, "body.filter") if raw_filter is not None else None
        raw_sorts = body.get("sorts") or []
        key_fn = self._compile_sorts(raw_sorts)
        signature = _js(raw_sorts) if raw_sorts else ""

        def match(p: NotionPage) -> bool:
            return (not p.in_trash and p.data_source_id == ds_id
                    and (pred is None or pred(p)))

        start_key: tuple | None = None
        if cursor is not None:
            issued = self._issued.get(cursor)
            if issued is None:
                raise _bad(f"The start_cursor provided is invalid: {cursor}")
            start_key = issued.get(signature)
            if start_key is None:  # issued for another ordering: resume at that page
                start_key = key_fn(self.pages[cursor]) if key_fn else (self.pages[cursor].seq,)

        batch: list[NotionPage] = []
        following: NotionPage | None = None
        if key_fn is None:
            # Creation order: walk forward from the cursor, O(page_size + skipped).
            for p in self._order[start_key[0] if start_key else 0:]:
                if match(p):
                    if len(batch) == page_size:
                        following = p
                        break
                    batch.append(p)
        else:
            cache_key = (self._mutations, ds_id, _js(raw_filter), signature)
            cached = self._query_cache.get(cache_key)
            if cached is None:
                keyed = sorted(((key_fn(p), p) for p in self._order if match(p)),
                               key=lambda kp: kp[0])
                cached = ([k for k, _ in keyed], [p for _, p in keyed])
                if len(self._query_cache) >= 8:
                    self._query_cache.clear()
                self._query_cache[cache_key] = cached
            keys, ordered = cached
            i = bisect_left(keys, start_key) if start_key is not None else 0
            batch = ordered[i:i + page_size]
            if i + page_size < len(ordered):
                following = ordered[i + page_size]

        next_cursor = None
        if following is not None:
            next_cursor = following.id
            self._issued.setdefault(next_cursor, {})[signature] = \
                key_fn(following) if key_fn else (following.seq,)
        only = self._filter_properties(request)
        kind = "page" if version in LEGACY_VERSIONS else "page_or_data_source"
        return self._ok({
            "object": "list",
            "results": [self._page_json(p, version, only) for p in batch],
            "next_cursor": next_cursor,
            "has_more": following is not None,
            "type": kind,
            kind: {},
        })

    # -- sorts ------------------------------------------------------------------------------
    def _compile_sorts(self, sorts: Any) -> Callable[[NotionPage], tuple] | None:
        if not isinstance(sorts, list):
            raise _bad(f"body failed validation: body.sorts should be an array, instead was "
                       f"`{_js(sorts)}`.")
        if not sorts:
            return None
        parts: list[tuple[Callable[[NotionPage], tuple[bool, Any]], bool]] = []
        for i, s in enumerate(sorts):
            p = f"body.sorts[{i}]"
            if not isinstance(s, dict):
                raise _bad(f"body failed validation: {p} should be an object, instead was `{_js(s)}`.")
            direction = s.get("direction")
            if direction not in ("ascending", "descending"):
                got = _js(direction) if "direction" in s else "undefined"
                raise _bad(f"body failed validation: {p}.direction should be `\"ascending\"` or "
                           f"`\"descending\"`, instead was `{got}`.")
            if "timestamp" in s:
                ts = s["timestamp"]
                if ts == "created_time":
                    getter = lambda pg: (False, pg.created_minute.timestamp())  # noqa: E731
                elif ts == "last_edited_time":
                    getter = lambda pg: (False, pg.edited_minute.timestamp())  # noqa: E731
                else:
                    raise _bad(f"body failed validation: {p}.timestamp should be "
                               f"`\"created_time\"` or `\"last_edited_time\"`, instead was `{_js(ts)}`.")
            elif "property" in s:
                prop = self._lookup(s["property"])
                if prop is None:
                    raise _bad(f"Could not find sort property with name or id: {s['property']}")
                getter = self._sort_getter(prop)
            else:
                raise _bad(f"body failed validation. Fix one: {p}.property should be defined, instead "
                           f"was `undefined`. {p}.timestamp should be defined, instead was `undefined`.")
            parts.append((getter, direction == "descending"))

        def key(page: NotionPage) -> tuple:
            out: list[Any] = []
            for getter, desc in parts:
                empty, v = getter(page)
                out.append(1 if empty else 0)  # empty values last in either direction
                out.append(_Rev(v) if desc else v)
            out.append(page.seq)
            return tuple(out)

        return key

    def _sort_getter(self, prop: JSON) -> Callable[[NotionPage], tuple[bool, Any]]:
        name, ptype = prop["name"], prop["type"]
        if ptype in ("title", "rich_text"):
            return lambda pg: ((t := pg.values[name].plain) == "", t.casefold())
        if ptype in ("email", "phone_number"):
            return lambda pg: ((t := pg.values[name] or "") == "", t.casefold())
        if ptype in ("select", "status"):
            def option_rank(pg: NotionPage) -> tuple[bool, Any]:
                o = pg.values[name]
                return (True, 0) if o is None else (False, list(prop["options"]).index(o["id"]))
            return option_rank
        if ptype == "date":
            return lambda pg: (True, 0.0) if (d := pg.values[name]) is None else \
                (False, d.instant.timestamp())
        return lambda pg: (True, 0)

    # -- filters ----------------------------------------------------------------------------
    def _compile_filter(self, f: Any, path: str) -> Callable[[NotionPage], bool]:
        if not isinstance(f, dict):
            raise _bad(f"body failed validation: {path} should be an object, instead was `{_js(f)}`.")
        for compound in ("and", "or"):
            if compound in f:
                items = f[compound]
                if not isinstance(items, list):
                    raise _bad(f"body failed validation: {path}.{compound} should be an array, "
                               f"instead was `{_js(items)}`.")
                preds = [self._compile_filter(x, f"{path}.{compound}[{i}]")
                         for i, x in enumerate(items)]
                if compound == "and":
                    return lambda pg: all(p(pg) for p in preds)
                return lambda pg: any(p(pg) for p in preds)
        if "timestamp" in f:
            ts = f["timestamp"]
            if ts not in ("created_time", "last_edited_time"):
                raise _bad(f"body failed validation: {path}.timestamp should be `\"created_time\"` "
                           f"or `\"last_edited_time\"`, instead was `{_js(ts)}`.")
            cond = f.get(ts)
            if cond is None:
                raise _bad(f"body failed validation: {path}.{ts} should be defined, instead was "
                           f"`undefined`.")
            if ts == "created_time":
                getter = lambda pg: (m := pg.created_minute, m.date())  # noqa: E731
            else:
                getter = lambda pg: (m := pg.edited_minute, m.date())  # noqa: E731
            return self._date_condition(getter, cond, f"{path}.{ts}")
        if "property" not in f:
            raise _bad(f"body failed validation. Fix one: {path}.property should be defined, instead "
                       f"was `undefined`. {path}.timestamp should be defined, instead was "
                       f"`undefined`. {path}.or should be defined, instead was `undefined`. "
                       f"{path}.and should be defined, instead was `undefined`.")
        prop = self._lookup(f["property"])
        if prop is None:
            raise _bad(f"Could not find property with name or id: {f['property']}.")
        ftypes = [k for k in f if k in _FILTER_TYPES]
        if not ftypes:
            raise _bad("body failed validation. Fix one: " + " ".join(
                f"{path}.{t} should be defined, instead was `undefined`." for t in _FILTER_TYPES))
        ftype = ftypes[0]
        ptype, name = prop["type"], prop["name"]
        if ftype not in _FILTER_COMPAT.get(ptype, ()):
            raise _bad("The property type in the database does not match the property type of the "
                       f"filter provided: database property {ptype} does not match filter {ftype}")
        cond = f[ftype]
        cpath = f"{path}.{ftype}"
        if ptype in ("title", "rich_text"):
            return self._text_condition(lambda pg: pg.values[name].plain, cond, cpath)
        if ptype in ("email", "phone_number"):
            return self._text_condition(lambda pg: pg.values[name] or "", cond, cpath)
        if ptype in ("select", "status"):
            return self._option_condition(lambda pg: pg.values[name], cond, cpath)
        return self._date_condition(
            lambda pg: None if (d := pg.values[name]) is None else (d.instant, d.day), cond, cpath)

    @staticmethod
    def _one_operator(cond: Any, path: str, ops: Iterable[str]) -> tuple[str, Any]:
        ops = tuple(ops)
        if not isinstance(cond, dict):
            raise _bad(f"body failed validation: {path} should be an object, instead was "
                       f"`{_js(cond)}`.")
        present = [k for k in cond if k in ops]
        if len(present) != 1 or len(cond) != 1:
            raise _bad("body failed validation. Fix one: " + " ".join(
                f"{path}.{op} should be defined, instead was `undefined`." for op in ops))
        op = present[0]
        arg = cond[op]
        if op in ("is_empty", "is_not_empty") and arg is not True:
            raise _bad(f"body failed validation: {path}.{op} should be `true`, instead was "
                       f"`{_js(arg)}`.")
        return op, arg

    def _text_condition(self, get: Callable[[NotionPage], str], cond: Any,
                        path: str) -> Callable[[NotionPage], bool]:
        op, arg = self._one_operator(cond, path, _TEXT_OPS)
        if op == "is_empty":
            return lambda pg: get(pg) == ""
        if op == "is_not_empty":
            return lambda pg: get(pg) != ""
        if not isinstance(arg, str):
            raise _bad(f"body failed validation: {path}.{op} should be a string, instead was "
                       f"`{_js(arg)}`.")
        if op == "equals":
            return lambda pg: get(pg) == arg
        if op == "does_not_equal":
            return lambda pg: get(pg) != arg
        needle = arg.casefold()  # substring operators ignore case, like the app's filters
        if op == "contains":
            return lambda pg: needle in get(pg).casefold()
        if op == "does_not_contain":
            return lambda pg: needle not in get(pg).casefold()
        if op == "starts_with":
            return lambda pg: get(pg).casefold().startswith(needle)
        return lambda pg: get(pg).casefold().endswith(needle)

    def _option_condition(self, get: Callable[[NotionPage], JSON | None], cond: Any,
                          path: str) -> Callable[[NotionPage], bool]:
        op, arg = self._one_operator(cond, path, _OPTION_OPS)
        if op == "is_empty":
            return lambda pg: get(pg) is None
        if op == "is_not_empty":
            return lambda pg: get(pg) is not None
        if not isinstance(arg, str):
            raise _bad(f"body failed validation: {path}.{op} should be a string, instead was "
                       f"`{_js(arg)}`.")
        if op == "equals":
            return lambda pg: (o := get(pg)) is not None and o["name"] == arg
        return lambda pg: (o := get(pg)) is None or o["name"] != arg

    def _date_condition(self, get: Callable[[NotionPage], tuple[datetime, date] | None],
                        cond: Any, path: str) -> Callable[[NotionPage], bool]:
        op, arg = self._one_operator(cond, path, _DATE_OPS)
        if op == "is_empty":
            return lambda pg: get(pg) is None
        if op == "is_not_empty":
            return lambda pg: get(pg) is not None
        if op in _RELATIVE_DAYS:
            if arg != {}:
                raise _bad(f"body failed validation: {path}.{op} should be an object, instead was "
                           f"`{_js(arg)}`.")
            now = self._now()
            lo, hi = sorted((now, now + timedelta(days=_RELATIVE_DAYS[op])))

            def relative(pg: NotionPage) -> bool:
                v = get(pg)
                return v is not None and lo <= v[0] <= hi
            return relative
        value = _parse_iso(arg)
        if value is None:
            raise _bad(f"body failed validation: {path}.{op} should be a valid ISO 8601 date "
                       f"string, instead was `{_js(arg)}`.")
        if isinstance(value, datetime):
            target: Any = value if value.tzinfo else value.replace(tzinfo=_UTC)
            index = 0  # compare instants
        else:
            target, index = value, 1  # compare calendar dates
        compare: Callable[[Any, Any], bool] = {
            "equals": lambda a, b: a == b, "before": lambda a, b: a < b,
            "after": lambda a, b: a > b, "on_or_before": lambda a, b: a <= b,
            "on_or_after": lambda a, b: a >= b,
        }[op]

        def check(pg: NotionPage) -> bool:
            v = get(pg)
            return v is not None and compare(v[index], target)
        return check

    # -- in-process helpers (not HTTP, not recorded) ---------------------------------------
    def create_page(self, properties: JSON | None = None,
                    parent_data_source_id: str | None = None) -> JSON:
        """Create a page from write-format ``properties``; returns it in read format.

        Validates exactly like ``POST /v1/pages`` and raises :class:`SandboxApiError`.
        """
        with self.lock:
            ds_id = self.data_source_id
            if parent_data_source_id is not None:
                ds_id = _norm_id(parent_data_source_id) or str(parent_data_source_id)
                self._require_data_source(ds_id)
            page = self._create(ds_id, properties or {})
            return copy.deepcopy(self._page_json(page, "2025-09-03"))

    def update_page(self, page_id: str, properties: JSON | None = None,
                    in_trash: bool | None = None) -> JSON:
        """Update like ``PATCH /v1/pages/{id}`` (partial properties, trash/restore)."""
        with self.lock:
            page = self._require_page(_norm_id(page_id) or str(page_id))
            self._update(page, properties, in_trash)
            return copy.deepcopy(self._page_json(page, "2025-09-03"))

    def get_page(self, page_id: str) -> JSON:
        """The page in read format (2025-09-03 shape), trashed or not."""
        with self.lock:
            page = self._require_page(_norm_id(page_id) or str(page_id))
            return copy.deepcopy(self._page_json(page, "2025-09-03"))

    def page_count(self, include_trashed: bool = False) -> int:
        """How many pages exist (by default only those not in the trash)."""
        with self.lock:
            return sum(1 for p in self._order if include_trashed or not p.in_trash)
