"""The Notion bookings database as the booking ledger (the source of truth), on the official
``notion-client``: a :class:`bsync.ledger.base.BookingLedger`.

Targets the data-source model (Notion-Version 2025-09-03): the database's data source is
discovered with ``GET /v1/databases/{id}`` unless configured, pages are read with
``POST /v1/data_sources/{id}/query`` following ``next_cursor`` to the end, and the calendar
event's id is written back into the ``calendar_event_id`` property.  Platform bookings
written *into* the database are :mod:`bsync.ledger.notion_pages`.
"""

from __future__ import annotations

import json
import logging
from datetime import date, datetime, timedelta, timezone
from typing import Any, Callable, Collection, Iterator, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpx
import notion_client
from notion_client.errors import APIResponseError, HTTPResponseError, RequestTimeoutError

from bsync import registry
from bsync.config import NotionConfig, Settings
from bsync.errors import AuthError, ConfigError, RecordError, RemoteError
from bsync.core.model import EMAIL_RE, Booking, Customer, Status, parse_when, shared, validate_booking
from bsync.core.records import RecordFailure, SourceRead
from bsync.core.ratelimit import Pacer
from bsync.core.retry import CallFailure, RetryPolicy, call
from bsync.core.runs import retry_policy
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
EDITED_OVERLAP = timedelta(minutes=2)  # last_edited_time is rounded down to the minute


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
    """The bookings of one Notion data source: read them, and write back what the calendar
    changed or made.

    ``calendar`` names the calendar whose event ids the ``calendar_event_id`` property holds
    (it becomes the key of ``Booking.target_ids``): one property, one calendar, the one
    :func:`bsync.registry.synced_calendar` names.  With two calendars the other's items are
    linked through the state DB alone (their ids follow from the booking key anyway), so its
    runs never overwrite the property.  ``overlap``: how far before the last
    run an incremental read starts, since ``last_edited_time`` is rounded down to the minute
    (unchanged pages read twice are recognised by their content hash).
    """

    name = "notion"
    label = "Notion"
    overlap = EDITED_OVERLAP

    def __init__(self, config: NotionConfig, default_timezone: str, policy: RetryPolicy,
                 *, default_duration: timedelta = timedelta(hours=1),
                 date_required: Collection[str] = ("Confirmed",), calendar: str | None = None) -> None:
        self.config = config
        self.calendar = calendar or next(iter(registry.CALENDARS))
        self.props = config.properties
        self.default_timezone = default_timezone
        self.default_duration = default_duration
        self.date_required = frozenset(date_required)  # status options whose pages must have a date
        self.policy = policy
        self.client = notion_client.Client(
            auth=config.token.get_secret_value(), base_url=config.base_url,
            notion_version=config.version, timeout_ms=int(config.timeout_s * 1000), retry=False,
            logger=logging.getLogger("bsync.notion"))
        self._requests = 0  # HTTP requests sent, for the run summary
        self.pacer = Pacer(config.requests_per_second)
        self.client.client.event_hooks["request"].append(self._before_request)
        self._data_source_id = config.data_source_id
        self._schema: dict[str, Any] | None = None  # property name -> {"type": ...}

    @classmethod
    def from_settings(cls, settings: Settings, calendar: str | None = None) -> "NotionSource":
        """The ledger of ``[notion]``, with the run's retry policy and ``[sync]`` draft rules."""
        notion = settings.require("notion")
        return cls(notion, settings.timezone, retry_policy(settings),
                   default_duration=timedelta(minutes=notion.default_duration_min),
                   date_required=settings.sync.date_required,
                   calendar=calendar or registry.synced_calendar(settings.sync.pairs))

    @property
    def requests(self) -> int:
        """HTTP requests sent so far, retries included."""
        return self._requests

    @property
    def scope(self) -> str:
        """The key cursors are stored under: the database, or the data source given."""
        return self.config.database_id or self.config.data_source_id

    def close(self) -> None:
        self.client.close()

    def _before_request(self, request: httpx.Request) -> None:
        """Runs before every HTTP request, retries included: pace it and count it."""
        self.pacer.wait()
        self._requests += 1

    def call(self, fn: Callable[[], T], what: str) -> T:
        """Run one notion-client call under the retry policy (``what`` names it in errors)."""
        return call(fn, classify=classify, policy=self.policy, what=what)

    @staticmethod
    def page_id(key: str) -> str:
        """The page id a booking key (``notion:<page id>``) names."""
        return key.split(":", 1)[1]

    def page_key(self, page_id: str) -> str:
        """The booking key of a page."""
        return f"{self.name}:{page_id}"

    def create_page(self, properties: dict[str, Any], what: str) -> dict[str, Any]:
        """Create a page in the bookings data source (``what`` names it in errors)."""
        ds_id = self.data_source_id()
        return self.call(lambda: self.client.pages.create(parent={"data_source_id": ds_id}, properties=properties),
                         what)

    def update_page(self, page_id: str, what: str, **body: Any) -> dict[str, Any]:
        """PATCH one page (properties, ``in_trash``), retried per the policy."""
        return self.call(lambda: self.client.pages.update(page_id=page_id, **body), what)

    # -- discovery ------------------------------------------------------------------------
    def data_source_id(self) -> str:
        """The configured data source, or the database's only one (discovered once)."""
        if self._data_source_id:
            return self._data_source_id
        database_id = self.config.database_id
        try:
            database = self.call(lambda: self.client.databases.retrieve(database_id=database_id),
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
                data_source = self.call(lambda: self.client.data_sources.retrieve(data_source_id=ds_id),
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
            page = self.call(lambda: self.client.data_sources.query(data_source_id=ds_id, **body),
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
            out.drafts.append(RecordFailure(self.page_key(exc.record_id), exc.reason, self._title(page)))
            return
        except RecordError as exc:
            out.failures.append(RecordFailure(exc.record_id, exc.reason, self._title(page)))
            return
        out.bookings.append(booking)

    def _title(self, page: dict[str, Any]) -> str:
        """The page's title as written (for naming a failed or draft page), or ""."""
        return (read_property_text(page.get("properties", {}).get(self.props.title)) or "")[:100]

    def fetch(self, key: str) -> tuple[Booking | None, bool, RecordFailure | None]:
        """One page by booking key: (booking, trashed_or_gone, failure)."""
        page_id = self.page_id(key)
        try:
            page = self.call(lambda: self.client.pages.retrieve(page_id=page_id), f"Notion: reading page {page_id}")
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
            key=shared(self.page_key(page_id)),
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
            source=shared(text(p.source)) or self.name,
            updated_at=parse_instant(page["last_edited_time"]) if page.get("last_edited_time") else None,
            target_ids={self.calendar: v} if (v := shared(text(p.calendar_event_id))) else {},
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
        """Write the calendar event's id into the page's calendar_event_id property (if mapped)."""
        prop = self.props.calendar_event_id
        if prop is None:
            return
        kind = self.schema()[prop]["type"]
        page_id = self.page_id(booking_key)
        self.update_page(page_id, f"Notion: writing the event id to page {page_id}",
                         properties={prop: text_value(kind, target_id)})

    def status_name(self, status: Status) -> str:
        """The Notion status option to write for a canonical status: the first one
        ``[notion.status_map]`` maps to it."""
        for name, canonical in self.config.status_map.items():
            if canonical == status.value:
                return name
        raise ConfigError(f"notion.status_map has no option mapping to {status.value!r}")

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
            props[p.status] = text_value(schema[p.status]["type"],
                                         self.status_name(Status.CANCELLED if fields["cancelled"] else Status.SCHEDULED))
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
        page_id = self.page_id(key)
        body: dict[str, Any] = {"properties": self.common_properties(fields, zone_name)}
        if restore:
            body["in_trash"] = False
        try:
            page = self.update_page(page_id, f"Notion: updating page {page_id}", **body)
        except RemoteError as exc:
            # Trashed since we last looked (only a full read shows trash): the change comes
            # from the calendar, and an update beats a deletion, so the booking comes back.
            if restore or "archived" not in str(exc):
                raise
            log.info("page %s was trashed; restoring it with the calendar's change", page_id)
            body["in_trash"] = False
            page = self.update_page(page_id, f"Notion: restoring page {page_id}", **body)
        out = SourceRead([])
        self._collect(page, out)
        return out.bookings[0] if out.bookings else None

    def create_booking(self, fields: dict[str, Any], zone_name: str | None, *, target_id: str,
                       origin: str, notes: str | None = None, email: str | None = None) -> Booking | None:
        """Create a booking page for an event made in the calendar ``origin`` (written into the
        ``source`` property); it records the event id.

        ``email`` is the event's guest: the customer, so they get notices and reminders.
        """
        p, schema = self.props, self.schema()
        props = self.common_properties({**fields, "cancelled": bool(fields.get("cancelled"))}, zone_name)
        if p.calendar_event_id:
            props[p.calendar_event_id] = text_value(schema[p.calendar_event_id]["type"], target_id)
        if p.source:
            props[p.source] = text_value(schema[p.source]["type"], origin)
        if p.notes and notes:
            props[p.notes] = text_value(schema[p.notes]["type"], fit_text(notes))
        if p.timezone and zone_name:
            props[p.timezone] = text_value(schema[p.timezone]["type"], zone_name)
        if p.email and email and EMAIL_RE.match(email):
            props[p.email] = text_value(schema[p.email]["type"], email)
        page = self.create_page(props, "Notion: creating a booking page")
        out = SourceRead([])
        self._collect(page, out)
        return out.bookings[0] if out.bookings else None
