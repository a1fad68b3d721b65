"""An event resource from a request body: which fields a client may write, how they are
validated, and how the stored resource is built and rendered back.

Google validates ``events.insert``, ``patch`` and ``update`` bodies alike; keeping the rules
here, apart from the store (:mod:`.events`), lets one read them in one place.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from bsync.sandbox.base import JSON, SandboxApiError
from bsync.sandbox.gcal.api import b64
from bsync.sandbox.gcal.model import FIELD_ORDER, Calendar, Event
from bsync.sandbox.gcal.recurrence import series_of
from bsync.sandbox.gcal.times import (
    find_zone,
    format_local,
    format_ms,
    midnight,
    parse_date,
    parse_rfc3339,
    to_utc,
)

EVENT_ID_RE = re.compile(r"^[a-v0-9]{5,1024}$")

# Event fields a client may write.  Read-only ones (kind, etag, htmlLink, created, updated,
# creator, organizer, hangoutLink, locked, recurringEventId) and id/iCalUID outside of insert
# are ignored, so a read-modify-write round trip works as it does against Google.
WRITABLE = (
    "summary", "description", "location", "colorId", "start", "end", "endTimeUnspecified",
    "recurrence", "originalStartTime", "transparency", "visibility", "sequence", "attendees",
    "attendeesOmitted", "extendedProperties", "gadget", "anyoneCanAddSelf",
    "guestsCanInviteOthers", "guestsCanModify", "guestsCanSeeOtherGuests", "privateCopy",
    "reminders", "source", "attachments", "conferenceData", "eventType", "status",
    "workingLocationProperties", "outOfOfficeProperties", "focusTimeProperties",
    "birthdayProperties", "eventLabelId",
)
_ENUMS = {
    "status": ("confirmed", "tentative", "cancelled"),
    "transparency": ("opaque", "transparent"),
    "visibility": ("default", "public", "private", "confidential"),
    "eventType": ("default", "birthday", "focusTime", "fromGmail", "outOfOffice",
                  "workingLocation"),
}


@dataclass
class When:
    """A validated ``start`` or ``end``: the instant, and the value as Google renders it back."""

    all_day: bool
    instant: datetime
    rendered: JSON
    own_zone: bool


def merge_patch(target: Any, patch: Any) -> Any:
    """Google patch semantics: objects merge recursively, null deletes, arrays and scalars
    replace.  Never mutates ``target`` (stored resources are shared with responses)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def strip_nulls(value: Any) -> Any:
    """A full-replace body: null means absent."""
    if isinstance(value, dict):
        return {k: strip_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [strip_nulls(v) for v in value]
    return value


def etag(now: datetime, change: int) -> str:
    return f'"{int(now.timestamp() * 1000)}{change % 1_000_000:06d}"'


def client_sequence(fields: JSON, default: int) -> int:
    """Pop the client's ``sequence`` from ``fields`` (``default`` when absent), validated."""
    value = fields.pop("sequence", None)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise SandboxApiError(400, "Invalid sequence value.", "invalid")
    return value


def writable_fields(body: JSON, attachments: bool, conference: int) -> JSON:
    """Keep the writable fields of a request body and validate their shapes."""
    fields = {k: copy.deepcopy(v) for k, v in body.items() if k in WRITABLE}
    if not attachments:
        fields.pop("attachments", None)
    if conference < 1:
        fields.pop("conferenceData", None)
    for name, allowed in _ENUMS.items():
        if name in fields and fields[name] not in allowed:
            raise SandboxApiError(400, "Invalid Value", "invalid")
    for name in ("summary", "description", "location", "colorId"):
        if name in fields and not isinstance(fields[name], str):
            raise SandboxApiError(400, "Invalid Value", "invalid")
    if "extendedProperties" in fields:
        ext = fields["extendedProperties"]
        if not isinstance(ext, dict):
            raise SandboxApiError(400, "Invalid Value", "invalid")
        clean: JSON = {}
        for scope in ("private", "shared"):
            props = ext.get(scope)
            if props is None:
                continue
            if not isinstance(props, dict) or not all(
                    isinstance(k, str) and isinstance(v, str) for k, v in props.items()):
                raise SandboxApiError(400, "Invalid Value", "invalid")
            if props:
                clean[scope] = props
        if clean:
            fields["extendedProperties"] = clean
        else:
            del fields["extendedProperties"]
    if "attendees" in fields:
        attendees = fields["attendees"]
        if not isinstance(attendees, list):
            raise SandboxApiError(400, "Invalid Value", "invalid")
        normalized = []
        for attendee in attendees:
            email = attendee.get("email") if isinstance(attendee, dict) else None
            if not isinstance(email, str) or "@" not in email or email.startswith("@"):
                raise SandboxApiError(400, "Invalid attendee email.", "invalid")
            item = dict(attendee)
            item.setdefault("responseStatus", "needsAction")
            normalized.append(item)
        fields["attendees"] = normalized
    if "recurrence" in fields and not (isinstance(fields["recurrence"], list) and all(
            isinstance(r, str) for r in fields["recurrence"])):
        raise SandboxApiError(400, "Invalid recurrence rule.", "invalid")
    return fields


def compose(cal: Calendar, event_id: str, fields: JSON, *, created: datetime,
            updated: datetime, sequence: int, ical_uid: str) -> tuple[JSON, tuple[When, When]]:
    """Validate start/end and build the stored (read-format) resource."""
    # Google reports a missing end first (an empty body answers "Missing end time.").
    if not fields.get("end"):
        raise SandboxApiError(400, "Missing end time.", "required")
    if not fields.get("start"):
        raise SandboxApiError(400, "Missing start time.", "required")
    start = _when("start", fields["start"], cal.tz)
    end = _when("end", fields["end"], cal.tz)
    if start.all_day != end.all_day:
        raise SandboxApiError(400, "Start and end times must either both be date or both "
                                   "be dateTime.", "invalid")
    if end.instant < start.instant or (start.all_day and end.instant <= start.instant):
        raise SandboxApiError(400, "The specified time range is empty.", "timeRangeEmpty",
                              location="timeMax", location_type="parameter")
    fields["start"], fields["end"] = start.rendered, end.rendered
    if fields.get("recurrence"):
        # "For recurring events this field is required and specifies the time zone in which
        # the recurrence is expanded" (EventDateTime.timeZone).
        if not start.all_day and "timeZone" not in start.rendered:
            raise SandboxApiError(400, "Missing time zone definition for start time.", "required")
        try:
            series_of(cal, fields, start.instant, end.instant, start.all_day)
        except (ValueError, TypeError):
            raise SandboxApiError(400, "Invalid recurrence rule.", "invalid") from None
    fields.pop("sequence", None)
    if "attendees" in fields:
        for attendee in fields["attendees"]:
            if attendee["email"].lower() == cal.id.lower():
                attendee.setdefault("organizer", True)
                attendee.setdefault("self", True)
    eid = b64(f"{event_id} {cal.id}".encode())
    values: JSON = dict(fields)
    values.update({
        "kind": "calendar#event", "etag": "", "id": event_id,
        "htmlLink": f"https://www.google.com/calendar/event?eid={eid}",
        "created": format_ms(created), "updated": format_ms(updated),
        "creator": {"email": cal.id, "self": True},
        "organizer": {"email": cal.id, "displayName": cal.summary, "self": True},
        "iCalUID": ical_uid, "sequence": sequence,
    })
    if cal.summary == cal.id:
        del values["organizer"]["displayName"]
    values.setdefault("reminders", {"useDefault": True})
    values.setdefault("eventType", "default")
    resource = {k: values[k] for k in FIELD_ORDER if k in values}
    return resource, (start, end)


def _when(which: str, value: Any, cal_tz: ZoneInfo) -> When:
    if not isinstance(value, dict):
        raise SandboxApiError(400, f"Invalid {which} time.", "invalid")
    zone_name = value.get("timeZone")
    zone = None
    if zone_name is not None:
        zone = find_zone(zone_name)
        if zone is None:
            raise SandboxApiError(400, f"Invalid time zone definition for {which} time.",
                                  "invalid")
    has_date, has_dt = value.get("date") is not None, value.get("dateTime") is not None
    if has_date == has_dt:
        if not has_date:
            raise SandboxApiError(400, f"Missing {which} time.", "required")
        raise SandboxApiError(400, f"Invalid {which} time.", "invalid")
    if has_date:
        day = parse_date(value["date"])
        if day is None:
            raise SandboxApiError(400, f"Invalid {which} time.", "invalid")
        rendered: JSON = {"date": day.isoformat()}
        if zone_name is not None:
            rendered["timeZone"] = zone_name
        return When(True, midnight(day, cal_tz), rendered, zone is not None)
    raw = value["dateTime"]
    dt = parse_rfc3339(raw, offset_required=False, tz=zone)
    if dt is None:
        if isinstance(raw, str) and parse_rfc3339(raw, offset_required=False, tz=cal_tz):
            raise SandboxApiError(400, f"Missing time zone definition for {which} time.",
                                  "required")
        raise SandboxApiError(400, f"Invalid {which} time.", "invalid")
    dt = to_utc(dt.replace(microsecond=0))
    rendered = {"dateTime": format_local(dt, zone or cal_tz)}
    if zone_name is not None:
        rendered["timeZone"] = zone_name
    return When(False, dt, rendered, zone is not None)


def _tombstone(ev: Event) -> JSON:
    r = ev.resource
    return {"kind": r["kind"], "etag": r["etag"], "id": r["id"], "status": "cancelled"}


def render(ev: Event, cal: Calendar, tz: ZoneInfo, *, full: bool) -> JSON:
    """The resource as sent; only re-rendered when a ``timeZone`` parameter asks for it."""
    if ev.cancelled and not full:
        return _tombstone(ev)
    r = ev.resource
    if tz is cal.tz or tz == cal.tz or ev.all_day:
        return r
    out = dict(r)
    for key, instant in (("start", ev.start), ("end", ev.end)):
        if "timeZone" not in r[key]:
            out[key] = {"dateTime": format_local(instant, tz)}
    return out

