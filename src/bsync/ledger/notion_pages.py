"""The Notion bookings database as the *target* of platform pairs: platform bookings
(Cal.com, Sesami) become pages.

The ledger itself (:class:`bsync.ledger.notion.NotionSource`) reads and writes bookings as
the source of truth; this class writes the pages a platform's bookings need, through the
ledger's public client calls, and compares them with what the planner wants.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from typing import Any, Mapping

from bsync.core.model import Booking, Status, booking_common, when_value
from bsync.core.records import TargetItem, TargetOp, TargetTerms, WriteResult
from bsync.errors import ConfigError, RecordError
from bsync.ledger.notion import TEXT_LIMIT, TRUNCATED_MARK, NotionSource, fit_text, read_property_text, text_value


def fields_hash(fields: Mapping[str, Any]) -> str:
    """Hash of a page's projection: equal hashes mean nothing bsync manages changed."""
    return hashlib.sha256(json.dumps(sorted(fields.items()), default=str).encode()).hexdigest()[:32]


class NotionPages:
    """The bookings database as a *target*: platform bookings (Cal.com, Sesami) become pages.

    A page made for a platform booking records the platform in ``source`` and the booking's
    key in ``external_id``, so a page created by an interrupted run is found (and adopted)
    instead of created twice.  Notion chooses page ids, so a new page's id is only known
    after the create; bsync never deletes a page: a cancelled booking sets its status.
    """

    def __init__(self, ledger: NotionSource, platforms: list[str], link_properties: dict[str, str] | None = None) -> None:
        self.ledger = ledger
        self.name, self.label = ledger.name, ledger.label
        self.terms = TargetTerms()  # how a plan shows a page's status change and re-marking
        self.platforms = platforms
        platform = ", ".join(platforms)
        self.link_properties = link_properties or {}
        self.props = ledger.props
        if self.props.source is None or self.props.external_id is None:
            raise ConfigError("notion.properties.source and notion.properties.external_id must be mapped "
                              f"to sync {platform} bookings into Notion")

    @property
    def requests(self) -> int:
        return self.ledger.requests

    def target_id_for(self, key: str) -> str:
        return f"{self.name}:new:{key}"  # a placeholder: Notion assigns the id on create

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
                   if name in self.ledger.schema()}}

    def fields_hash(self, fields: Mapping[str, Any]) -> str:
        return fields_hash(fields)

    def read_items(self) -> dict[str, TargetItem]:
        """Pages of this platform's bookings, keyed by page key."""
        schema = self.ledger.schema()
        kind = schema[self.props.source]["type"]
        filter: dict[str, Any] = {"or": [{"property": self.props.source, kind: {"equals": platform}}
                                         for platform in self.platforms]}
        items: dict[str, TargetItem] = {}
        for page in self.ledger.iter_pages(filter):
            if page.get("in_trash"):
                continue
            external = read_property_text(page["properties"].get(self.props.external_id))
            key = self.ledger.page_key(page["id"])
            try:
                booking = self.ledger.page_to_booking(page)
            except RecordError:  # a page someone broke: still ours, so it gets rewritten, not duplicated
                items[key] = TargetItem(key, external, {}, {}, "")
                continue
            fields = self.fields(replace(booking, links=self._page_links(page)))
            items[key] = TargetItem(key, external, booking_common(booking), fields, fields_hash(fields),
                                    label=booking.title)
        return items

    def _page_links(self, page: dict[str, Any]) -> dict[str, str]:
        props = page["properties"]
        return {key: v for key, name in self.link_properties.items()
                if (v := read_property_text(props.get(name))) is not None}

    def _properties(self, booking: Booking) -> dict[str, Any]:
        p, schema = self.props, self.ledger.schema()
        booking, _ = self.fitted(booking)
        props = self.ledger.common_properties(
            {**booking_common(booking)}, booking.timezone)
        if p.status:  # the full status, not only cancelled/active
            props[p.status] = text_value(schema[p.status]["type"], self.ledger.status_name(booking.status))
        values = {p.customer_name: booking.customer.name, p.email: booking.customer.email,
                  p.phone: booking.customer.phone, p.service: booking.service, p.staff: booking.staff,
                  p.notes: booking.notes, p.timezone: booking.timezone, p.source: booking.source,
                  p.external_id: booking.key,
                  **{name: booking.links.get(key) for key, name in self.link_properties.items()}}
        for name, value in values.items():
            if name and name in schema:
                props[name] = text_value(schema[name]["type"], value)
        return props

    def _result(self, page: dict[str, Any], note: str = "") -> WriteResult:
        booking = self.ledger.page_to_booking(page)
        fields = self.fields(replace(booking, links=self._page_links(page)))
        key = self.ledger.page_key(page["id"])
        return WriteResult(key, page.get("last_edited_time"), note, hash=fields_hash(fields),
                           item=TargetItem(key, booking.key, booking_common(booking), fields, fields_hash(fields)))

    def create(self, booking: Booking, target_id: str) -> WriteResult:
        page = self.ledger.create_page(self._properties(booking), f"Notion: creating the page of {booking.key}")
        return self._result(page, _cut_note(booking))

    def update(self, booking: Booking, target_id: str, *, restore: bool) -> WriteResult:
        page_id = self.ledger.page_id(target_id)
        body: dict[str, Any] = {"properties": self._properties(booking)}
        if restore:
            body["in_trash"] = False
        page = self.ledger.update_page(page_id, f"Notion: updating page {page_id}", **body)
        return self._result(page, _cut_note(booking))

    def write(self, op: TargetOp) -> WriteResult:
        """One write, as the applier asks it of any target."""
        if op.kind == "create":
            assert op.booking is not None
            return self.create(op.booking, op.target_id)
        if op.kind in ("update", "restore"):
            assert op.booking is not None
            return self.update(op.booking, op.target_id, restore=op.kind == "restore")
        if op.kind == "remove":
            return self.remove(op.target_id)
        if op.kind == "stamp":
            assert op.key is not None
            return self.stamp(op.target_id, op.key)
        raise ValueError(f"unknown write {op.kind!r}")

    def remove(self, target_id: str) -> WriteResult:
        """Bookings are never deleted from Notion: a cancelled one gets the Cancelled status."""
        page_id = self.ledger.page_id(target_id)
        prop = self.props.status
        props = {prop: text_value(self.ledger.schema()[prop]["type"], self.ledger.status_name(Status.CANCELLED))}
        page = self.ledger.update_page(page_id, f"Notion: cancelling page {page_id}", properties=props)
        return self._result(page)

    def stamp(self, target_id: str, key: str) -> WriteResult:
        """Put the booking's key back on a page whose external id was cleared."""
        page_id = self.ledger.page_id(target_id)
        prop = self.props.external_id
        props = {prop: text_value(self.ledger.schema()[prop]["type"], key)}
        page = self.ledger.update_page(page_id, f"Notion: marking page {page_id}", properties=props)
        return self._result(page)


def _cut_note(booking: Booking) -> str:
    """The summary note for a booking whose long texts were cut to fit Notion, or ""."""
    _, cut = NotionPages.fitted(booking)
    if not cut:
        return ""
    names = " and ".join(cut)
    return f"{names} truncated to Notion's {TEXT_LIMIT:,}-character limit (ends in {TRUNCATED_MARK!r})"
