"""Notion bookings database as a booking source, on the official ``notion-client``.

Targets the data-source model (Notion-Version 2025-09-03): the database's data source is
discovered with ``GET /v1/databases/{id}`` unless configured, pages are read with
``POST /v1/data_sources/{id}/query`` following ``next_cursor`` to the end, and the Google
event id is written back into the ``calendar_event_id`` property.
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from datetime import date, datetime, timedelta, timezone
from typing import Any, Callable, Collection, Iterator, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpx
import notion_client
from notion_client.errors import APIResponseError, HTTPResponseError, RequestTimeoutError

from bsync.config import NotionConfig
from bsync.errors import AuthError, ConfigError, RecordError, RemoteError
from bsync.core.model import (EMAIL_RE, Booking, Customer, Status, booking_common, parse_when, shared, validate_booking,
                          when_value)
from bsync.core.plan import Failure, TargetItem
from bsync.core.contracts import SourceRead, WriteResult
from bsync.core.retry import CallFailure
from bsync.core.ratelimit import Pacer
from bsync.core.retry import RetryPolicy, call
from bsync.core.timeutil import allday_dates, allday_span, parse_instant

T = TypeVar("T")
log = logging.getLogger(__name__)

TRANSIENT_CODES = {"rate_limited", "internal_server_error", "service_unavailable", "gateway_timeout",
                   "service_overload", "database_connection_unavailable", "conflict_error"}
AUTH_CODES = {"unauthorized", "restricted_resource"}
PAGE_SIZE = 100  # the API's maximum
DRAFT_REASON = "no date yet"
TEXT_LIMIT = 2000  # UTF-16 code units in one text object's content (Notion's request size limits)
TRUNCATED_MARK = "…"


def fit_text(text: str | None, limit: int = TEXT_LIMIT) -> str | None:
    """``text`` cut to what one Notion text object may hold, ending in "…" when cut.

    Notion answers a longer one with a 400 validation_error, so a booking titled by a
    customer on Cal.com at length would otherwise fail on every run; cut, it still reaches
    Notion and the calendar (and the summary says it was cut).  Notion counts UTF-16 code
    units, as JavaScript does, so a cut never splits a surrogate pair.
    """
    if text is None or len(text) <= limit // 2 or _utf16_len(text) <= limit:
        return text
    units = text.encode("utf-16-le")[: (limit - _utf16_len(TRUNCATED_MARK)) * 2]
    return units.decode("utf-16-le", errors="ignore") + TRUNCATED_MARK


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


# Property types each mapped field can be read from (and, where bsync writes it, written to).
TEXT_TYPES = frozenset({"rich_text", "select", "status", "email", "phone_number", "url", "number", "formula"})
WRITABLE_TEXT = frozenset({"rich_text", "select", "url"})
PROPERTY_TYPES: dict[str, frozenset[str]] = {
    "title": frozenset({"title"}),
    "start": frozenset({"date"}),
    "end": frozenset({"date"}),
    "status": frozenset({"status", "select"}),
    "email": frozenset({"email", "rich_text"}),
    "phone": frozenset({"phone_number", "rich_text"}),
    "calendar_event_id": WRITABLE_TEXT,
    "source": WRITABLE_TEXT,
    "external_id": WRITABLE_TEXT,
    "timezone": WRITABLE_TEXT,
    "notifications": TEXT_TYPES | {"checkbox"},
}
"""Fields not listed (customer_name, service, staff, notes, location) take any text-like type."""

_TYPE_NAMES = {"date": "a date", "title": "a title", "status": "a status", "select": "a select",
               "email": "an email", "rich_text": "a text", "phone_number": "a phone number", "url": "a URL",
               "number": "a number", "formula": "a formula", "checkbox": "a checkbox"}


def property_type_problem(field_name: str, prop_name: str, schema: dict[str, Any]) -> str | None:
    """Why ``[notion.properties] field = "prop"`` can't work with this database, or None.

    Checked once, before any page is read: a misspelt or mistyped mapping would otherwise
    make every page fail with a misleading per-record reason ("no date").
    """
    where = f"[notion.properties] {field_name} = {json.dumps(prop_name, ensure_ascii=False)}"
    if prop_name not in schema:
        return f"{where}: no such property in the database (properties: {', '.join(sorted(schema))})"
    kind = schema[prop_name].get("type")
    allowed = PROPERTY_TYPES.get(field_name, TEXT_TYPES)
    if kind in allowed:
        return None
    wanted = " or ".join(_TYPE_NAMES.get(k, k) for k in sorted(allowed, key=lambda k: (k != "rich_text", k)))
    return f"{where} is {_TYPE_NAMES.get(kind, f'a {kind}')} property; it must be {wanted}"


class NotReady(RecordError):
    """A page that is a draft (no date yet, in a status that doesn't need one): skipped, not failed."""


def classify(exc: BaseException) -> CallFailure | None:
    """Judge a notion-client / httpx exception for the retry policy."""
    if isinstance(exc, APIResponseError):
        retry_after = _retry_after(exc.headers)
        code = getattr(exc.code, "value", exc.code)
        if code in AUTH_CODES:
            return CallFailure("auth", f"Notion refused the token ({code}: {exc})", status=exc.status)
        if code in TRANSIENT_CODES:
            return CallFailure("transient", f"Notion {exc.status} {code}", retry_after, exc.status)
        return CallFailure("permanent", f"Notion {exc.status} {code}: {exc}", status=exc.status)
    if isinstance(exc, RequestTimeoutError):
        return CallFailure("transient", "Notion request timed out")
    if isinstance(exc, HTTPResponseError):
        kind = "transient" if exc.status >= 500 or exc.status == 429 else "permanent"
        return CallFailure(kind, f"Notion HTTP {exc.status}", _retry_after(exc.headers), exc.status)
    if isinstance(exc, httpx.TransportError):
        return CallFailure("transient", f"cannot reach Notion: {type(exc).__name__}: {exc}")
    return None


def _retry_after(headers: Any) -> float | None:
    try:
        value = headers.get("retry-after") if headers is not None else None
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _plain_text(items: list[dict[str, Any]] | None) -> str:
    return "".join(item.get("plain_text") or item.get("text", {}).get("content", "") for item in items or [])


def read_property_text(prop: dict[str, Any] | None) -> str | None:
    """The value of a text-like property (title, rich_text, select, status, email, ...) or None."""
    if prop is None:
        return None
    kind = prop.get("type")
    value = prop.get(kind) if kind else None
    if kind in ("title", "rich_text"):
        text = _plain_text(value).strip()
        return text or None
    if kind in ("select", "status"):
        return value.get("name") if value else None
    if kind in ("email", "phone_number", "url"):
        return value or None
    if kind == "number":
        return None if value is None else str(value)
    if kind == "formula" and value:
        return read_property_text({"type": value.get("type"), value.get("type"): value.get(value.get("type"))})
    return None


OPT_OUT_WORDS = frozenset({"off", "no", "false", "none", "opt-out", "opt out", "opted out", "opted-out",
                           "stop", "unsubscribed", "never"})


def opted_out(prop: dict[str, Any] | None) -> bool:
    """Whether an opt-out property says "send nothing": a checked checkbox, or a select or
    text whose value is one of :data:`OPT_OUT_WORDS` ("off", "no", "stop", ...)."""
    if not prop:
        return False
    if prop.get("type") == "checkbox":
        return bool(prop.get("checkbox"))
    value = read_property_text(prop)
    return value is not None and value.strip().lower() in OPT_OUT_WORDS


def text_value(kind: str, text: str | None) -> dict[str, Any]:
    """The write-format value for a text-like property of type ``kind``."""
    if kind in ("title", "rich_text"):
        return {kind: [] if not text else [{"type": "text", "text": {"content": text}}]}
    if kind in ("select", "status"):
        return {kind: None if not text else {"name": text}}
    if kind in ("email", "phone_number", "url"):
        return {kind: text or None}
    raise ConfigError(f"notion: cannot write text into a {kind!r} property")


class NotionSource:
    """Reads bookings from one Notion data source."""

    name = "notion"
    label = "Notion"

    def __init__(self, config: NotionConfig, default_timezone: str, policy: RetryPolicy,
                 *, default_duration: timedelta = timedelta(hours=1),
                 date_required: Collection[str] = ("Confirmed",)) -> None:
        self.config = config
        self.props = config.properties
        self.default_timezone = default_timezone
        self.default_duration = default_duration
        self.date_required = frozenset(date_required)  # status options whose pages must have a date
        self.policy = policy
        self.client = notion_client.Client(
            auth=config.token.get_secret_value(), base_url=config.base_url,
            notion_version=config.version, timeout_ms=int(config.timeout_s * 1000), retry=False,
            logger=logging.getLogger("bsync.notion"))
        self.requests = 0  # HTTP requests sent, for the run summary
        self.pacer = Pacer(config.requests_per_second)
        self.client.client.event_hooks["request"].append(self._before_request)
        self._data_source_id = config.data_source_id
        self._schema: dict[str, Any] | None = None  # property name -> {"type": ...}
        self._pages: dict[str, str] = {}  # booking key -> page id

    def _before_request(self, request: httpx.Request) -> None:
        """Runs before every HTTP request, retries included: pace it and count it."""
        self.pacer.wait()
        self.requests += 1

    def _call(self, fn: Callable[[], T], what: str) -> T:
        return call(fn, classify=classify, policy=self.policy, what=what)

    # -- discovery ------------------------------------------------------------------------
    def data_source_id(self) -> str:
        """The configured data source, or the database's only one (discovered once)."""
        if self._data_source_id:
            return self._data_source_id
        database_id = self.config.database_id
        try:
            database = self._call(lambda: self.client.databases.retrieve(database_id=database_id),
                                  f"Notion: reading database {database_id}")
        except Exception as exc:
            raise self._explain_not_found(exc, f"database {database_id}") from None
        sources = database.get("data_sources") or []
        if not sources:
            raise ConfigError(f"notion.database_id {database_id}: the database has no data source "
                              f"(is notion.version at least 2025-09-03?)")
        if len(sources) > 1:
            names = ", ".join(f"{s.get('name')!r}={s['id']}" for s in sources)
            raise ConfigError(f"notion.database_id {database_id} has {len(sources)} data sources ({names}); "
                              f"set notion.data_source_id to the bookings one")
        self._data_source_id = sources[0]["id"]
        return self._data_source_id

    def use_cache(self, cache: dict[str, Any] | None) -> None:
        """Reuse a data source id and schema found by an earlier run (saves two requests a run)."""
        if cache and cache.get("database_id") == self.config.database_id and not self.config.data_source_id:
            self._data_source_id = cache["data_source_id"]
            self._schema = cache["schema"]
            if not self._valid_cache():  # the config changed since: check against the live schema
                self._schema = None

    def cache(self) -> dict[str, Any]:
        """What :meth:`use_cache` takes: the discovered data source and property types."""
        return {"database_id": self.config.database_id, "data_source_id": self.data_source_id(),
                "schema": {name: {"type": prop.get("type")} for name, prop in self.schema().items()}}

    def schema(self) -> dict[str, Any]:
        """Property name -> property schema of the data source, checked against the config."""
        if self._schema is None:
            ds_id = self.data_source_id()
            try:
                data_source = self._call(lambda: self.client.data_sources.retrieve(data_source_id=ds_id),
                                         f"Notion: reading data source {ds_id}")
            except Exception as exc:
                raise self._explain_not_found(exc, f"data source {ds_id}") from None
            schema = data_source.get("properties") or {}
            self._check_mapping(schema)
            self._schema = schema
        return self._schema

    def _check_mapping(self, schema: dict[str, Any]) -> None:
        """ConfigError (exit 2) naming the first mapped property that is missing or mistyped."""
        for field_name, prop_name in self.props.model_dump().items():
            if prop_name is not None and (problem := property_type_problem(field_name, prop_name, schema)):
                raise ConfigError(problem, hint="fix [notion.properties] in the config to match the database")

    def _valid_cache(self) -> bool:
        """Whether the cached schema still fits the config (else it is read again, then checked)."""
        try:
            self._check_mapping(self._schema or {})
        except ConfigError:
            return False
        return True

    def _explain_not_found(self, exc: Exception, what: str) -> Exception:
        not_found = (isinstance(exc, APIResponseError) and exc.code == "object_not_found") or (
            isinstance(exc, RemoteError) and "object_not_found" in str(exc))
        if not_found:
            return AuthError(f"Notion: {what} was not found or is not shared with the integration",
                             hint="open the database in Notion, then ••• → Connections → add your integration")
        return exc

    # -- reading --------------------------------------------------------------------------
    def iter_pages(self, filter: dict[str, Any] | None = None) -> Iterator[dict[str, Any]]:
        """Every page of the data source, following ``next_cursor`` until ``has_more`` is false."""
        ds_id = self.data_source_id()
        cursor: str | None = None
        while True:
            body: dict[str, Any] = {"page_size": PAGE_SIZE}
            if cursor:
                body["start_cursor"] = cursor
            if filter:
                body["filter"] = filter
            page = self._call(lambda: self.client.data_sources.query(data_source_id=ds_id, **body),
                              "Notion: querying bookings")
            yield from page.get("results", [])
            cursor = page.get("next_cursor")
            if not page.get("has_more") or not cursor:
                return

    def read_bookings(self, since: datetime | None = None) -> SourceRead:
        """Bookings (all, or those edited at or after ``since``) and per-page failures.

        Trashed pages are not returned by queries; a full read is how their absence shows.
        """
        filter = None
        if since is not None:
            filter = {"timestamp": "last_edited_time",
                      "last_edited_time": {"on_or_after": since.astimezone(timezone.utc).isoformat()}}
        return self._read(filter)

    def _read(self, filter: dict[str, Any] | None) -> SourceRead:
        """The bookings (and per-page failures) of every live page matching ``filter``."""
        self.schema()
        out = SourceRead([])
        for page in self.iter_pages(filter):
            if page.get("object") != "page" or page.get("in_trash") or page.get("archived"):
                continue
            self._collect(page, out)
        return out

    def read_bookings_starting(self, start: datetime, end: datetime) -> SourceRead:
        """Bookings whose date property starts in [start, end) (the reminder horizon).

        One filtered query instead of a full read.  The filter is inclusive of start and
        exclusive of end; all-day dates are compared by Notion at midnight UTC, so callers
        should widen the range by a day for all-day bookings and filter precisely themselves.
        """
        prop = self.props.start
        return self._read({"and": [
            {"property": prop, "date": {"on_or_after": start.astimezone(timezone.utc).isoformat()}},
            {"property": prop, "date": {"before": end.astimezone(timezone.utc).isoformat()}},
        ]})

    def _collect(self, page: dict[str, Any], out: SourceRead) -> None:
        try:
            booking = self.page_to_booking(page)
        except NotReady as exc:
            out.drafts.append(Failure(f"notion:{exc.record_id}", exc.reason, self._title(page)))
            return
        except RecordError as exc:
            out.failures.append(Failure(exc.record_id, exc.reason, self._title(page)))
            return
        out.bookings.append(booking)  # its key names the page: nothing to remember in _pages

    def _title(self, page: dict[str, Any]) -> str:
        """The page's title as written (for naming a failed or draft page), or ""."""
        return (read_property_text(page.get("properties", {}).get(self.props.title)) or "")[:100]

    def fetch(self, key: str) -> tuple[Booking | None, bool, Failure | None]:
        """One page by booking key: (booking, trashed_or_gone, failure)."""
        page_id = key.split(":", 1)[1]
        try:
            page = self._call(lambda: self.client.pages.retrieve(page_id=page_id), f"Notion: reading page {page_id}")
        except RemoteError as exc:
            if "object_not_found" in str(exc):
                return None, True, None
            raise
        if page.get("in_trash") or page.get("archived"):
            return None, True, None
        out = SourceRead([])
        self._collect(page, out)
        return (out.bookings[0] if out.bookings else None), False, (out.failures[0] if out.failures else None)

    def find_by_target_id(self, target_id: str) -> Booking | None:
        """The booking whose calendar_event_id property holds ``target_id`` (resolves import intents)."""
        prop = self.props.calendar_event_id
        if prop is None:
            return None
        kind = self.schema()[prop]["type"]
        filter = {"property": prop, kind: {"equals": target_id}}
        out = SourceRead([])
        for page in self.iter_pages(filter):
            if not page.get("in_trash"):
                self._collect(page, out)
        return out.bookings[0] if out.bookings else None

    def page_to_booking(self, page: dict[str, Any]) -> Booking:
        """Map one Notion page to a Booking, or raise RecordError saying why not."""
        page_id = page["id"]
        props = page.get("properties", {})
        p = self.props

        def text(name: str | None) -> str | None:
            return read_property_text(props.get(name)) if name else None

        zone_name = shared(text(p.timezone)) or self.default_timezone
        try:
            zone = ZoneInfo(zone_name)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            raise RecordError(page_id, f"unknown timezone {zone_name!r} in property {p.timezone!r}") from None

        raw_status = text(p.status) if p.status else "Confirmed"
        if raw_status is None:
            raise RecordError(page_id, f"status property {p.status!r} is empty")
        status = self.config.status_map.get(raw_status)
        if status is None:
            raise RecordError(page_id, f"unknown status {raw_status!r} (map it in [notion.status_map]; "
                                       f"known: {', '.join(self.config.status_map)})")
        if not self._has_date(props):
            if raw_status not in self.date_required:
                raise NotReady(page_id, DRAFT_REASON)
            raise RecordError(page_id, f"no date in property {p.start!r}; a {raw_status!r} booking needs one "
                                       f"([sync] date_required)")
        start, end, all_day = self._read_when(page_id, props, zone)
        title = text(p.title) or ""
        booking = Booking(
            key=shared(f"notion:{page_id}"),
            title=shared(title),
            start=start,
            end=end,
            all_day=all_day,
            timezone=zone_name,
            status=Status(status),
            customer=Customer(text(p.customer_name), text(p.email), text(p.phone)),
            service=shared(text(p.service)),
            service_duration=None if all_day else int((end - start).total_seconds() // 60),
            staff=shared(text(p.staff)),
            notes=text(p.notes),
            location=text(p.location),
            links={"external_id": v} if (v := text(p.external_id)) else {},
            source=shared(text(p.source)) or "notion",
            updated_at=parse_instant(page["last_edited_time"]) if page.get("last_edited_time") else None,
            target_ids={"gcal": v} if (v := shared(text(p.calendar_event_id))) else {},
            notifications_off=opted_out(props.get(p.notifications)) if p.notifications else False,
        )
        return validate_booking(booking, page_id)

    def _has_date(self, props: dict[str, Any]) -> bool:
        when = (props.get(self.props.start) or {}).get("date")
        return bool(when and when.get("start"))

    def _read_when(self, page_id: str, props: dict[str, Any], zone: ZoneInfo) -> tuple[datetime, datetime, bool]:
        p = self.props
        start_prop = props.get(p.start) or {}
        when = start_prop.get("date")
        if not when or not when.get("start"):
            raise RecordError(page_id, f"no date in property {p.start!r}")
        start_text: str = when["start"]
        if p.end and p.end != p.start:
            end_when = (props.get(p.end) or {}).get("date") or {}
            end_text = end_when.get("start")
        else:
            end_text = when.get("end")
        try:
            if len(start_text) == 10:  # date only: an all-day booking; Notion's end date is inclusive
                first = date.fromisoformat(start_text)
                last = date.fromisoformat(end_text[:10]) if end_text else first
                if last < first:
                    raise RecordError(page_id, f"end {last} is before start {first}")
                start, end = allday_span(first, last, zone)
                return start, end, True
            start = parse_instant(start_text)
            if end_text is None:
                return start, start + self.default_duration, False
            if len(end_text) == 10:
                raise RecordError(page_id, "start has a time but end is a date only")
            end = parse_instant(end_text)
        except ValueError as exc:
            raise RecordError(page_id, f"unreadable date in {p.start!r}: {exc}") from None
        if end < start:
            raise RecordError(page_id, f"end {end_text} is before start {start_text}")
        return start, end, False

    # -- writing --------------------------------------------------------------------------
    def record_target_id(self, booking_key: str, target_id: str) -> None:
        """Write the Google event id into the page's calendar_event_id property."""
        prop = self.props.calendar_event_id
        if prop is None:
            return
        kind = self.schema()[prop]["type"]
        page_id = self._pages.get(booking_key) or booking_key.split(":", 1)[1]
        self._call(lambda: self.client.pages.update(page_id=page_id, properties={prop: text_value(kind, target_id)}),
                   f"Notion: writing the event id to page {page_id}")

    def status_name(self, cancelled: bool, current: str | None = None) -> str:
        """The Notion status option to write: the first one mapping to the wanted canonical status."""
        wanted = "cancelled" if cancelled else "scheduled"
        if current is not None and self.config.status_map.get(current) == wanted:
            return current
        for name, canonical in self.config.status_map.items():
            if canonical == wanted:
                return name
        raise ConfigError(f"notion.status_map has no option mapping to {wanted!r}")

    def common_properties(self, fields: dict[str, Any], zone_name: str | None) -> dict[str, Any]:
        """Write-format properties for common fields (title, start/end, location, cancelled)."""
        p, schema = self.props, self.schema()
        zone = ZoneInfo(zone_name or self.default_timezone)
        props: dict[str, Any] = {}
        if "title" in fields:
            props[p.title] = text_value("title", fit_text(fields["title"]))
        if "start" in fields or "end" in fields:
            props.update(self._when_properties(fields["start"], fields["end"], zone))
        if "location" in fields and p.location:
            props[p.location] = text_value(schema[p.location]["type"], fields["location"] or None)
        if "cancelled" in fields and p.status:
            props[p.status] = text_value(schema[p.status]["type"], self.status_name(fields["cancelled"]))
        return props

    def _when_properties(self, start: str, end: str, zone: ZoneInfo) -> dict[str, Any]:
        p = self.props
        start_at, all_day = parse_when(start, zone)
        end_at, _ = parse_when(end, zone)
        if all_day:  # Notion's end date is inclusive: the canonical exclusive end minus one day
            first, end_exclusive = allday_dates(start_at, end_at, zone)
            start_text, end_text = first.isoformat(), (end_exclusive - timedelta(days=1)).isoformat()
            if end_text <= start_text:
                end_text = None
            extra: dict[str, Any] = {}
        else:
            start_text = start_at.astimezone(zone).replace(tzinfo=None).isoformat(timespec="seconds")
            end_text = end_at.astimezone(zone).replace(tzinfo=None).isoformat(timespec="seconds")
            extra = {"time_zone": zone.key}
        if p.end and p.end != p.start:
            return {p.start: {"date": {"start": start_text, **extra}},
                    p.end: {"date": {"start": end_text or start_text, **extra}}}
        date: dict[str, Any] = {"start": start_text, **extra}
        if end_text:
            date["end"] = end_text
        return {p.start: {"date": date}}

    def update_common(self, key: str, fields: dict[str, Any], zone_name: str | None, *,
                      restore: bool = False) -> Booking | None:
        """Write common fields to the page (restoring it from the trash first if asked)."""
        page_id = self._pages.get(key) or key.split(":", 1)[1]
        body: dict[str, Any] = {"properties": self.common_properties(fields, zone_name)}
        if restore:
            body["in_trash"] = False
        try:
            page = self._call(lambda: self.client.pages.update(page_id=page_id, **body),
                              f"Notion: updating page {page_id}")
        except RemoteError as exc:
            # Trashed since we last looked (only a full read shows trash): the change comes
            # from the calendar, and an update beats a deletion, so the booking comes back.
            if restore or "archived" not in str(exc):
                raise
            log.info("page %s was trashed; restoring it with the calendar's change", page_id)
            body["in_trash"] = False
            page = self._call(lambda: self.client.pages.update(page_id=page_id, **body),
                              f"Notion: restoring page {page_id}")
        out = SourceRead([])
        self._collect(page, out)
        return out.bookings[0] if out.bookings else None

    def create_booking(self, fields: dict[str, Any], zone_name: str | None, *, target_id: str,
                       notes: str | None = None, source: str = "gcal", email: str | None = None) -> Booking | None:
        """Create a booking page for an event made in the calendar; it records the event id.

        ``email`` is the event's guest: the customer, so they get notices and reminders.
        """
        p, schema = self.props, self.schema()
        props = self.common_properties({**fields, "cancelled": bool(fields.get("cancelled"))}, zone_name)
        if p.calendar_event_id:
            props[p.calendar_event_id] = text_value(schema[p.calendar_event_id]["type"], target_id)
        if p.source:
            props[p.source] = text_value(schema[p.source]["type"], source)
        if p.notes and notes:
            props[p.notes] = text_value(schema[p.notes]["type"], fit_text(notes))
        if p.timezone and zone_name:
            props[p.timezone] = text_value(schema[p.timezone]["type"], zone_name)
        if p.email and email and EMAIL_RE.match(email):
            props[p.email] = text_value(schema[p.email]["type"], email)
        ds_id = self.data_source_id()
        page = self._call(lambda: self.client.pages.create(parent={"data_source_id": ds_id}, properties=props),
                          "Notion: creating a booking page")
        out = SourceRead([])
        self._collect(page, out)
        return out.bookings[0] if out.bookings else None

    # -- BRIDGE (i13-ops): i13-core defines from_settings/scope/close/overlap; drop this block at merge --
    overlap = timedelta(minutes=2)  # last_edited_time is rounded down to the minute

    @classmethod
    def from_settings(cls, settings: Any) -> "NotionSource":
        from bsync.core.runs import retry_policy

        notion = settings.require("notion")
        return cls(notion, settings.timezone, retry_policy(settings),
                   default_duration=timedelta(minutes=notion.default_duration_min),
                   date_required=settings.sync.date_required)

    @property
    def scope(self) -> str:
        return self.config.database_id or self.config.data_source_id

    def close(self) -> None:
        self.client.close()
    # -- end BRIDGE --


class NotionPages:
    """The bookings database as a *target*: platform bookings (Cal.com, Sesami) become pages.

    A page made for a platform booking records the platform in ``source`` and the booking's
    key in ``external_id``, so a page created by an interrupted run is found (and adopted)
    instead of created twice.  Notion chooses page ids, so a new page's id is only known
    after the create; bsync never deletes a page: a cancelled booking sets its status.
    """

    name = "notion"

    def __init__(self, source: NotionSource, platforms: list[str], link_properties: dict[str, str] | None = None) -> None:
        self.source = source
        self.platforms = platforms
        platform = ", ".join(platforms)
        self.link_properties = link_properties or {}
        self.props = source.props
        if self.props.source is None or self.props.external_id is None:
            raise ConfigError("notion.properties.source and notion.properties.external_id must be mapped "
                              f"to sync {platform} bookings into Notion")

    @property
    def requests(self) -> int:
        return self.source.requests

    def target_id_for(self, key: str) -> str:
        return f"notion:new:{key}"  # a placeholder: Notion assigns the id on create

    @staticmethod
    def fitted(booking: Booking) -> tuple[Booking, list[str]]:
        """The booking as a page can hold it (long texts cut, see :func:`fit_text`), and which
        fields were cut.  Wanted and written values both go through it, so a cut title
        compares equal to the page's and is not rewritten on every run."""
        c = booking.customer
        cut = {"title": fit_text(booking.title), "notes": fit_text(booking.notes),
               "location": fit_text(booking.location), "customer": fit_text(c.name)}
        before = {"title": booking.title, "notes": booking.notes, "location": booking.location, "customer": c.name}
        changed = [name for name in cut if cut[name] != before[name]]
        if not changed:
            return booking, []
        return replace(booking, title=cut["title"] or "", notes=cut["notes"], location=cut["location"],
                       customer=replace(c, name=cut["customer"])), changed

    def fields(self, booking: Booking) -> dict[str, Any]:
        """What bsync manages on a platform booking's page, normalised (compares page and booking)."""
        booking, _ = self.fitted(booking)
        c = booking.customer
        tz = booking.tz
        return {"title": booking.title, "start": when_value(booking.start, booking.all_day, tz),
                "end": when_value(booking.end, booking.all_day, tz), "status": booking.status.value,
                "customer": c.name, "email": c.email, "phone": c.phone, "service": booking.service,
                "staff": booking.staff, "notes": booking.notes, "location": booking.location,
                **{name: booking.links.get(key) for key, name in sorted(self.link_properties.items())
                   if name in self.source.schema()}}

    def wanted_fields(self, booking: Booking) -> dict[str, Any]:
        return self.fields(booking)

    def read_items(self) -> dict[str, TargetItem]:
        """Pages of this platform's bookings, keyed by page key."""
        schema = self.source.schema()
        kind = schema[self.props.source]["type"]
        filter: dict[str, Any] = {"or": [{"property": self.props.source, kind: {"equals": platform}}
                                         for platform in self.platforms]}
        items: dict[str, TargetItem] = {}
        for page in self.source.iter_pages(filter):
            if page.get("in_trash"):
                continue
            external = read_property_text(page["properties"].get(self.props.external_id))
            key = f"notion:{page['id']}"
            self.source._pages[key] = page["id"]
            try:
                booking = self.source.page_to_booking(page)
            except RecordError:  # a page someone broke: still ours, so it gets rewritten, not duplicated
                items[key] = TargetItem(key, external, {}, {}, "")
                continue
            fields = self.fields(replace(booking, links=self._page_links(page)))
            items[key] = TargetItem(key, external, booking_common(booking), fields, _hash(fields),
                                    label=booking.title)
        return items

    def _page_links(self, page: dict[str, Any]) -> dict[str, str]:
        props = page["properties"]
        return {key: v for key, name in self.link_properties.items()
                if (v := read_property_text(props.get(name))) is not None}

    def _properties(self, booking: Booking) -> dict[str, Any]:
        p, schema = self.props, self.source.schema()
        booking, _ = self.fitted(booking)
        props = self.source.common_properties(
            {**booking_common(booking)}, booking.timezone)
        if p.status:  # the full status, not only cancelled/active
            props[p.status] = text_value(schema[p.status]["type"], self._status_name(booking.status))
        values = {p.customer_name: booking.customer.name, p.email: booking.customer.email,
                  p.phone: booking.customer.phone, p.service: booking.service, p.staff: booking.staff,
                  p.notes: booking.notes, p.timezone: booking.timezone, p.source: booking.source,
                  p.external_id: booking.key,
                  **{name: booking.links.get(key) for key, name in self.link_properties.items()}}
        for name, value in values.items():
            if name and name in schema:
                props[name] = text_value(schema[name]["type"], value)
        return props

    def _status_name(self, status: Status) -> str:
        for name, canonical in self.source.config.status_map.items():
            if canonical == status.value:
                return name
        raise ConfigError(f"notion.status_map has no option mapping to {status.value!r}")

    def _result(self, page: dict[str, Any], note: str = "") -> WriteResult:
        booking = self.source.page_to_booking(page)
        fields = self.fields(replace(booking, links=self._page_links(page)))
        key = f"notion:{page['id']}"
        self.source._pages[key] = page["id"]
        return WriteResult(key, page.get("last_edited_time"), note, hash=_hash(fields),
                           item=TargetItem(key, booking.key, booking_common(booking), fields, _hash(fields)))

    def create(self, booking: Booking, target_id: str) -> WriteResult:
        ds_id = self.source.data_source_id()
        page = self.source._call(
            lambda: self.source.client.pages.create(parent={"data_source_id": ds_id},
                                                    properties=self._properties(booking)),
            f"Notion: creating the page of {booking.key}")
        return self._result(page, _cut_note(booking))

    def update(self, booking: Booking, target_id: str, *, restore: bool) -> WriteResult:
        page_id = target_id.split(":", 1)[1]
        body: dict[str, Any] = {"properties": self._properties(booking)}
        if restore:
            body["in_trash"] = False
        page = self.source._call(lambda: self.source.client.pages.update(page_id=page_id, **body),
                                 f"Notion: updating page {page_id}")
        return self._result(page, _cut_note(booking))

    def remove(self, target_id: str) -> WriteResult:
        """Bookings are never deleted from Notion: a cancelled one gets the Cancelled status."""
        page_id = target_id.split(":", 1)[1]
        prop = self.props.status
        props = {prop: text_value(self.source.schema()[prop]["type"], self._status_name(Status.CANCELLED))}
        page = self.source._call(lambda: self.source.client.pages.update(page_id=page_id, properties=props),
                                 f"Notion: cancelling page {page_id}")
        return self._result(page)

    def stamp(self, target_id: str, key: str) -> WriteResult:
        """Put the booking's key back on a page whose external id was cleared."""
        page_id = target_id.split(":", 1)[1]
        prop = self.props.external_id
        props = {prop: text_value(self.source.schema()[prop]["type"], key)}
        page = self.source._call(lambda: self.source.client.pages.update(page_id=page_id, properties=props),
                                 f"Notion: marking page {page_id}")
        return self._result(page)


def _cut_note(booking: Booking) -> str:
    """The summary note for a booking whose long texts were cut to fit Notion, or ""."""
    _, cut = NotionPages.fitted(booking)
    if not cut:
        return ""
    names = " and ".join(cut)
    return f"{names} truncated to Notion's {TEXT_LIMIT:,}-character limit (ends in {TRUNCATED_MARK!r})"


def _hash(fields: dict[str, Any]) -> str:
    import hashlib
    import json

    return hashlib.sha256(json.dumps(sorted(fields.items()), default=str).encode()).hexdigest()[:32]
