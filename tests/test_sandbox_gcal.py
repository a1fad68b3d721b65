"""The Google Calendar sandbox, driven by the real google-api-python-client over loopback."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone

import google.auth.exceptions
import google.oauth2.credentials
import httpx
import pytest
from googleapiclient.discovery import build
from googleapiclient.errors import BatchError, HttpError
from googleapiclient.http import BatchHttpRequest

from bsync.sandbox.base import SandboxApiError
from bsync.sandbox.gcal import GoogleCalendarSandbox

RFC3339_MS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


def timed(event_id: str | None, start: str, end: str, **extra) -> dict:
    body = {"summary": "Haircut", "start": {"dateTime": start}, "end": {"dateTime": end}, **extra}
    if event_id:
        body["id"] = event_id
    return body


def service(srv: GoogleCalendarSandbox, credentials=None):
    if credentials is None:
        credentials = google.oauth2.credentials.Credentials(token="sandbox-token")
    return build("calendar", "v3", credentials=credentials,
                 client_options={"api_endpoint": srv.url + "/calendar/v3/"},
                 static_discovery=True, cache_discovery=False)


def failure(call) -> tuple[int, str, HttpError]:
    with pytest.raises(HttpError) as info:
        call.execute()
    err = info.value
    return err.resp.status, err.error_details[0]["reason"], err


def list_all(svc, cal: str, **params) -> tuple[list[dict], list[dict]]:
    """Follow nextPageToken; returns (items, pages without items)."""
    items, pages, token = [], [], None
    while True:
        page = svc.events().list(calendarId=cal, pageToken=token, **params).execute()
        items.extend(page["items"])
        pages.append({k: v for k, v in page.items() if k != "items"} | {"n": len(page["items"])})
        token = page.get("nextPageToken")
        if not token:
            return items, pages


@pytest.fixture
def srv():
    with GoogleCalendarSandbox() as server:
        yield server


@pytest.fixture
def svc(srv):
    return service(srv)


@pytest.fixture
def cal(srv):
    return srv.calendar_id


# -- insert / get -------------------------------------------------------------------------------

def test_insert_with_client_id_and_get(svc, cal):
    created = svc.events().insert(calendarId=cal, body=timed(
        "bkng00001", "2024-05-01T12:00:00.000+02:00", "2024-05-01T13:00:00+02:00",
        description="Wash & cut", extendedProperties={"private": {"bsync_key": "notion:1"}},
    )).execute()
    got = svc.events().get(calendarId=cal, eventId="bkng00001").execute()
    assert got == created
    assert got["kind"] == "calendar#event"
    assert got["id"] == "bkng00001"
    assert got["status"] == "confirmed"
    assert got["iCalUID"] == "bkng00001@google.com"
    assert got["sequence"] == 0
    assert got["etag"].startswith('"') and got["etag"].endswith('"')
    assert RFC3339_MS.match(got["created"]) and RFC3339_MS.match(got["updated"])
    assert got["creator"] == {"email": cal, "self": True}
    assert got["organizer"]["email"] == cal and got["organizer"]["self"] is True
    assert got["reminders"] == {"useDefault": True}
    assert got["eventType"] == "default"
    assert got["htmlLink"].startswith("https://www.google.com/calendar/event?eid=")
    # Google renders dateTime in the calendar's zone (UTC here), not as it was sent.
    assert got["start"] == {"dateTime": "2024-05-01T10:00:00Z"}
    assert got["end"] == {"dateTime": "2024-05-01T11:00:00Z"}
    assert got["extendedProperties"] == {"private": {"bsync_key": "notion:1"}}
    for absent in ("location", "attendees", "transparency", "recurrence"):
        assert absent not in got


def test_insert_without_id_generates_base32hex(svc, cal):
    ev = svc.events().insert(calendarId=cal, body=timed(
        None, "2024-05-01T10:00:00Z", "2024-05-01T11:00:00Z")).execute()
    assert re.fullmatch(r"[a-v0-9]{5,1024}", ev["id"])


def test_event_time_zone_is_kept_and_used_for_rendering(svc, cal):
    ev = svc.events().insert(calendarId=cal, body={
        "id": "tevent01", "start": {"dateTime": "2024-01-10T09:00:00", "timeZone": "Europe/Berlin"},
        "end": {"dateTime": "2024-01-10T10:00:00", "timeZone": "Europe/Berlin"}}).execute()
    assert ev["start"] == {"dateTime": "2024-01-10T09:00:00+01:00", "timeZone": "Europe/Berlin"}
    listed = svc.events().list(calendarId=cal, timeZone="America/New_York").execute()["items"][0]
    assert listed["start"]["dateTime"] == "2024-01-10T09:00:00+01:00"
    plain = svc.events().insert(calendarId=cal, body=timed(
        "tevent02", "2024-01-10T09:00:00Z", "2024-01-10T10:00:00Z")).execute()
    assert plain["start"] == {"dateTime": "2024-01-10T09:00:00Z"}
    got = svc.events().get(calendarId=cal, eventId="tevent02", timeZone="Europe/Berlin").execute()
    assert got["start"] == {"dateTime": "2024-01-10T10:00:00+01:00"}


@pytest.mark.parametrize("bad_id", ["ABCDEF", "abcd", "abcdw1", "abc-def", "a_bcde", "a" * 1025])
def test_insert_invalid_id_is_400(svc, cal, bad_id):
    status, reason, err = failure(svc.events().insert(calendarId=cal, body=timed(
        bad_id, "2024-05-01T10:00:00Z", "2024-05-01T11:00:00Z")))
    assert (status, reason) == (400, "invalid")
    assert err.error_details[0]["message"] == "Invalid resource id value."


def test_insert_duplicate_id_is_409(svc, cal):
    body = timed("dup000001", "2024-05-01T10:00:00Z", "2024-05-01T11:00:00Z")
    svc.events().insert(calendarId=cal, body=body).execute()
    status, reason, err = failure(svc.events().insert(calendarId=cal, body=body))
    assert (status, reason) == (409, "duplicate")
    assert err.error_details[0]["message"] == "The requested identifier already exists."
    body = json.loads(err.content)
    assert body["error"]["code"] == 409
    assert body["error"]["errors"][0]["domain"] == "global"


def test_unknown_calendar_and_event_are_404(svc, cal):
    assert failure(svc.events().get(calendarId=cal, eventId="nosuchevent"))[:2] == (404, "notFound")
    assert failure(svc.events().patch(calendarId=cal, eventId="nosuchevent",
                                      body={"summary": "x"}))[:2] == (404, "notFound")
    assert failure(svc.events().delete(calendarId=cal, eventId="nosuchevent"))[:2] == (404, "notFound")
    assert failure(svc.events().list(calendarId="nobody@example.com"))[:2] == (404, "notFound")
    assert failure(svc.events().insert(calendarId="nobody@example.com", body=timed(
        None, "2024-05-01T10:00:00Z", "2024-05-01T11:00:00Z")))[:2] == (404, "notFound")


def test_primary_is_an_alias_of_the_first_calendar(srv, svc, cal):
    svc.events().insert(calendarId="primary", body=timed(
        "viaprimar1", "2024-05-01T10:00:00Z", "2024-05-01T11:00:00Z")).execute()
    assert srv.get_event(cal, "viaprimar1")["organizer"]["email"] == cal
    assert svc.calendars().get(calendarId="primary").execute()["id"] == cal


# -- validation ---------------------------------------------------------------------------------

def test_time_range_empty(svc, cal):
    status, reason, err = failure(svc.events().insert(calendarId=cal, body=timed(
        None, "2024-05-01T11:00:00Z", "2024-05-01T10:00:00Z")))
    assert (status, reason) == (400, "timeRangeEmpty")
    assert err.error_details[0]["message"] == "The specified time range is empty."
    assert err.error_details[0]["domain"] == "calendar"


@pytest.mark.parametrize("body,reason,message", [
    ({}, "required", "Missing end time."),
    ({"end": {"dateTime": "2024-05-01T10:00:00Z"}}, "required", "Missing start time."),
    ({"start": {"date": "2024-05-01"}, "end": {"dateTime": "2024-05-01T10:00:00Z"}}, "invalid",
     "Start and end times must either both be date or both be dateTime."),
    ({"start": {"dateTime": "2024-05-01T10:00:00"}, "end": {"dateTime": "2024-05-01T11:00:00"}},
     "required", "Missing time zone definition for start time."),
    ({"start": {"dateTime": "2024-05-01T10:00:00", "timeZone": "Mars/Olympus"},
      "end": {"dateTime": "2024-05-01T11:00:00Z"}}, "invalid",
     "Invalid time zone definition for start time."),
    ({"start": {"date": "2024-05-02"}, "end": {"date": "2024-05-02"}}, "timeRangeEmpty",
     "The specified time range is empty."),
])
def test_start_end_validation(svc, cal, body, reason, message):
    status, got_reason, err = failure(svc.events().insert(calendarId=cal, body=body))
    assert (status, got_reason) == (400, reason)
    assert err.error_details[0]["message"] == message


def test_all_day_event(srv, svc, cal):
    ev = svc.events().insert(calendarId=cal, body={
        "id": "dateevnt1", "summary": "Closed", "start": {"date": "2024-05-01"},
        "end": {"date": "2024-05-02"}}).execute()
    assert ev["start"] == {"date": "2024-05-01"} and ev["end"] == {"date": "2024-05-02"}
    assert "dateTime" not in ev["start"]
    listed = svc.events().list(calendarId=cal, timeMin="2024-05-01T12:00:00Z").execute()["items"]
    assert [e["id"] for e in listed] == ["dateevnt1"]
    assert svc.events().list(calendarId=cal, timeMin="2024-05-02T00:00:00Z").execute()["items"] == []


# -- delete / cancelled / restore ---------------------------------------------------------------

def test_delete_lifecycle(srv, svc, cal):
    body = timed("lifeevent1", "2024-05-01T10:00:00Z", "2024-05-01T11:00:00Z", location="Salon")
    svc.events().insert(calendarId=cal, body=body).execute()
    assert svc.events().delete(calendarId=cal, eventId="lifeevent1").execute() == ""
    assert srv.requests[-1].method == "DELETE" and srv.requests[-1].status == 204

    got = svc.events().get(calendarId=cal, eventId="lifeevent1").execute()
    assert got["status"] == "cancelled"
    assert got["summary"] == "Haircut"  # the organizer's copy keeps its details

    status, reason, err = failure(svc.events().delete(calendarId=cal, eventId="lifeevent1"))
    assert (status, reason) == (410, "deleted")
    assert err.error_details[0]["message"] == "Resource has been deleted"

    assert failure(svc.events().insert(calendarId=cal, body=body))[:2] == (409, "duplicate")

    restored = svc.events().patch(calendarId=cal, eventId="lifeevent1",
                                  body={"status": "confirmed"}).execute()
    assert restored["status"] == "confirmed"
    assert restored["location"] == "Salon"
    assert [e["id"] for e in svc.events().list(calendarId=cal).execute()["items"]] == ["lifeevent1"]


def test_update_replaces_and_needs_explicit_status_to_restore(svc, cal):
    first = svc.events().insert(calendarId=cal, body=timed(
        "update0001", "2024-05-01T10:00:00Z", "2024-05-01T11:00:00Z", description="old",
        extendedProperties={"private": {"a": "1", "b": "2"}})).execute()
    got = svc.events().get(calendarId=cal, eventId="update0001").execute()
    got.pop("description")
    got["summary"] = "Colour"
    got["extendedProperties"] = {"private": {"a": "1"}}
    got["start"] = {"dateTime": "2024-05-01T12:00:00Z"}
    got["end"] = {"dateTime": "2024-05-01T13:00:00Z"}
    updated = svc.events().update(calendarId=cal, eventId="update0001", body=got).execute()
    assert updated["summary"] == "Colour"
    assert "description" not in updated
    assert updated["extendedProperties"] == {"private": {"a": "1"}}
    assert updated["created"] == first["created"] and updated["iCalUID"] == first["iCalUID"]
    assert updated["etag"] != first["etag"]
    assert updated["sequence"] == 1  # start/end moved

    svc.events().delete(calendarId=cal, eventId="update0001").execute()
    body = timed(None, "2024-05-01T12:00:00Z", "2024-05-01T13:00:00Z")
    still = svc.events().update(calendarId=cal, eventId="update0001", body=body).execute()
    assert still["status"] == "cancelled"
    back = svc.events().update(calendarId=cal, eventId="update0001",
                               body=body | {"status": "confirmed"}).execute()
    assert back["status"] == "confirmed"


# -- patch ---------------------------------------------------------------------------------------

def test_patch_merges_extended_properties_and_replaces_arrays(srv, svc, cal):
    first = svc.events().insert(calendarId=cal, body=timed(
        "patch00001", "2024-05-01T10:00:00Z", "2024-05-01T11:00:00Z",
        extendedProperties={"private": {"a": "1", "b": "2"}, "shared": {"s": "x"}},
        attendees=[{"email": "ann@example.com"}, {"email": "bob@example.com"}])).execute()
    srv.clock = lambda: datetime(2030, 1, 1, tzinfo=timezone.utc)
    patched = svc.events().patch(calendarId=cal, eventId="patch00001", body={
        "extendedProperties": {"private": {"b": None, "c": "3"}},
        "attendees": [{"email": "cat@example.com"}]}).execute()
    assert patched["extendedProperties"] == {"private": {"a": "1", "c": "3"}, "shared": {"s": "x"}}
    assert patched["attendees"] == [{"email": "cat@example.com", "responseStatus": "needsAction"}]
    assert patched["summary"] == "Haircut"
    assert patched["start"] == first["start"]
    assert patched["etag"] != first["etag"]
    assert patched["updated"] == "2030-01-01T00:00:00.000Z"
    assert patched["sequence"] == 0  # time did not change

    moved = svc.events().patch(calendarId=cal, eventId="patch00001", body={
        "start": {"dateTime": "2024-05-01T10:30:00Z"}}).execute()
    assert moved["sequence"] == 1
    status, reason, _ = failure(svc.events().patch(calendarId=cal, eventId="patch00001", body={
        "start": {"date": "2024-05-01"}, "end": {"date": "2024-05-02"}}))
    assert (status, reason) == (400, "invalid")  # merged start holds date AND dateTime
    allday = svc.events().patch(calendarId=cal, eventId="patch00001", body={
        "start": {"date": "2024-05-01", "dateTime": None},
        "end": {"date": "2024-05-02", "dateTime": None}}).execute()
    assert allday["start"] == {"date": "2024-05-01"}


def test_if_match_precondition(svc, cal):
    ev = svc.events().insert(calendarId=cal, body=timed(
        "ifmatch001", "2024-05-01T10:00:00Z", "2024-05-01T11:00:00Z")).execute()
    req = svc.events().patch(calendarId=cal, eventId="ifmatch001", body={"summary": "a"})
    req.headers["If-Match"] = ev["etag"]
    newer = req.execute()
    stale = svc.events().patch(calendarId=cal, eventId="ifmatch001", body={"summary": "b"})
    stale.headers["If-Match"] = ev["etag"]
    assert failure(stale)[:2] == (412, "conditionNotMet")
    assert svc.events().get(calendarId=cal, eventId="ifmatch001").execute()["etag"] == newer["etag"]


# -- list ------------------------------------------------------------------------------------------

def test_list_pagination_over_600_events(srv, svc, cal):
    for i in range(600):
        srv.insert_event(cal, timed(f"page{i:06d}", "2024-05-01T10:00:00Z", "2024-05-01T11:00:00Z"))
    items, pages = list_all(svc, cal, maxResults=250)
    assert [p["n"] for p in pages] == [250, 250, 100]
    ids = [e["id"] for e in items]
    assert len(ids) == len(set(ids)) == 600
    for page in pages[:-1]:
        assert "nextPageToken" in page and "nextSyncToken" not in page
    assert "nextSyncToken" in pages[-1] and "nextPageToken" not in pages[-1]
    last = pages[-1]
    assert last["kind"] == "calendar#events" and last["accessRole"] == "owner"
    assert last["timeZone"] == "UTC" and last["defaultReminders"] == []
    assert RFC3339_MS.match(last["updated"])
    # the default page size is 250 and the largest 2500
    assert len(svc.events().list(calendarId=cal).execute()["items"]) == 250
    assert len(svc.events().list(calendarId=cal, maxResults=5000).execute()["items"]) == 600


def test_show_deleted(srv, svc, cal):
    for i in range(3):
        srv.insert_event(cal, timed(f"seen{i:05d}", "2024-05-01T10:00:00Z", "2024-05-01T11:00:00Z"))
    svc.events().delete(calendarId=cal, eventId="seen00001").execute()
    visible = svc.events().list(calendarId=cal).execute()["items"]
    assert [e["id"] for e in visible] == ["seen00000", "seen00002"]
    everything = svc.events().list(calendarId=cal, showDeleted=True).execute()["items"]
    assert [(e["id"], e["status"]) for e in everything] == [
        ("seen00000", "confirmed"), ("seen00001", "cancelled"), ("seen00002", "confirmed")]
    assert everything[1]["summary"] == "Haircut"


def test_private_extended_property_filter(srv, svc, cal):
    for i, (key, shop) in enumerate([("k1", "north"), ("k2", "north"), ("k1", "south")]):
        srv.insert_event(cal, timed(f"prop{i:05d}", "2024-05-01T10:00:00Z", "2024-05-01T11:00:00Z",
                                    extendedProperties={"private": {"bsync_key": key, "shop": shop},
                                                        "shared": {"tag": key}}))
    found = svc.events().list(calendarId=cal, privateExtendedProperty="bsync_key=k1").execute()
    assert [e["id"] for e in found["items"]] == ["prop00000", "prop00002"]
    both = svc.events().list(calendarId=cal,
                             privateExtendedProperty=["bsync_key=k1", "shop=south"]).execute()
    assert [e["id"] for e in both["items"]] == ["prop00002"]
    shared = svc.events().list(calendarId=cal, sharedExtendedProperty="tag=k2").execute()
    assert [e["id"] for e in shared["items"]] == ["prop00001"]
    assert svc.events().list(calendarId=cal,
                             sharedExtendedProperty="bsync_key=k2").execute()["items"] == []


def test_time_min_and_time_max_bounds(srv, svc, cal):
    spans = {"earl00001": ("08:00", "09:00"), "touch0001": ("09:00", "10:00"),
             "inside001": ("10:30", "11:00"), "after0001": ("12:00", "13:00")}
    for eid, (a, b) in spans.items():
        srv.insert_event(cal, timed(eid, f"2024-05-01T{a}:00Z", f"2024-05-01T{b}:00Z"))
    got = svc.events().list(calendarId=cal, timeMin="2024-05-01T09:00:00Z",
                            timeMax="2024-05-01T12:00:00Z").execute()["items"]
    # timeMin is exclusive on the end, timeMax exclusive on the start
    assert [e["id"] for e in got] == ["touch0001", "inside001"]
    got = svc.events().list(calendarId=cal, timeMin="2024-05-01T11:00:00+02:00").execute()["items"]
    assert [e["id"] for e in got] == ["touch0001", "inside001", "after0001"]
    status, reason, _ = failure(svc.events().list(
        calendarId=cal, timeMin="2024-05-02T00:00:00Z", timeMax="2024-05-01T00:00:00Z"))
    assert (status, reason) == (400, "timeRangeEmpty")
    assert failure(svc.events().list(calendarId=cal, timeMin="2024-05-01T09:00:00"))[:2] == \
        (400, "badRequest")


def test_order_by(srv, svc, cal):
    srv.insert_event(cal, timed("order0001", "2024-05-03T10:00:00Z", "2024-05-03T11:00:00Z"))
    srv.insert_event(cal, timed("order0002", "2024-05-01T10:00:00Z", "2024-05-01T11:00:00Z"))
    srv.insert_event(cal, timed("order0003", "2024-05-02T10:00:00Z", "2024-05-02T11:00:00Z"))
    status, reason, err = failure(svc.events().list(calendarId=cal, orderBy="startTime"))
    assert (status, reason) == (400, "invalid")
    assert "ordering is not available" in err.error_details[0]["message"]
    by_start = svc.events().list(calendarId=cal, orderBy="startTime", singleEvents=True,
                                 maxResults=2).execute()
    assert [e["id"] for e in by_start["items"]] == ["order0002", "order0003"]
    rest = svc.events().list(calendarId=cal, orderBy="startTime", singleEvents=True, maxResults=2,
                             pageToken=by_start["nextPageToken"]).execute()
    assert [e["id"] for e in rest["items"]] == ["order0001"]
    svc.events().patch(calendarId=cal, eventId="order0001", body={"summary": "x"}).execute()
    by_updated = svc.events().list(calendarId=cal, orderBy="updated").execute()
    assert [e["id"] for e in by_updated["items"]] == ["order0002", "order0003", "order0001"]


# -- incremental sync ------------------------------------------------------------------------------

def test_sync_token_returns_changes_and_deletions(srv, svc, cal):
    for i in range(4):
        srv.insert_event(cal, timed(f"snc{i:06d}", "2024-05-01T10:00:00Z", "2024-05-01T11:00:00Z"))
    items, pages = list_all(svc, cal)
    token = pages[-1]["nextSyncToken"]

    quiet = svc.events().list(calendarId=cal, syncToken=token).execute()
    assert quiet["items"] == [] and "nextSyncToken" in quiet

    svc.events().patch(calendarId=cal, eventId="snc000001", body={"summary": "Moved"}).execute()
    svc.events().delete(calendarId=cal, eventId="snc000002").execute()
    svc.events().insert(calendarId=cal, body=timed(
        "snc000009", "2024-05-02T10:00:00Z", "2024-05-02T11:00:00Z")).execute()

    changed = svc.events().list(calendarId=cal, syncToken=token).execute()
    by_id = {e["id"]: e for e in changed["items"]}
    assert set(by_id) == {"snc000001", "snc000002", "snc000009"}
    assert by_id["snc000001"]["summary"] == "Moved"
    # deleted events come back as cancelled tombstones (only the id is guaranteed)
    assert by_id["snc000002"]["status"] == "cancelled"
    assert "summary" not in by_id["snc000002"]
    assert "nextSyncToken" in changed and "nextPageToken" not in changed

    again = svc.events().list(calendarId=cal, syncToken=changed["nextSyncToken"]).execute()
    assert again["items"] == []
    with_details = svc.events().list(calendarId=cal, syncToken=token, showDeleted=True).execute()
    assert {e["id"]: e for e in with_details["items"]}["snc000002"]["summary"] == "Haircut"


def test_sync_token_paged_and_same_millisecond_writes(srv, svc, cal):
    frozen = datetime(2025, 1, 1, 12, 0, tzinfo=timezone.utc)
    srv.clock = lambda: frozen  # every write below lands in the same millisecond
    srv.insert_event(cal, timed("base00001", "2024-05-01T10:00:00Z", "2024-05-01T11:00:00Z"))
    token = svc.events().list(calendarId=cal).execute()["nextSyncToken"]
    for i in range(7):
        srv.insert_event(cal, timed(f"burst{i:04d}", "2024-05-01T10:00:00Z", "2024-05-01T11:00:00Z"))
    seen, page_token, pages = [], None, 0
    while True:
        page = svc.events().list(calendarId=cal, syncToken=token, maxResults=3,
                                 pageToken=page_token).execute()
        pages += 1
        seen += [e["id"] for e in page["items"]]
        page_token = page.get("nextPageToken")
        if not page_token:
            assert "nextSyncToken" in page
            break
        assert "nextSyncToken" not in page
    assert pages == 3
    assert seen == [f"burst{i:04d}" for i in range(7)]


@pytest.mark.parametrize("param,value", [
    ("timeMin", "2024-05-01T00:00:00Z"), ("timeMax", "2024-05-01T00:00:00Z"),
    ("updatedMin", "2024-05-01T00:00:00Z"), ("privateExtendedProperty", "a=b"),
    ("sharedExtendedProperty", "a=b"), ("orderBy", "updated"), ("q", "hair"),
    ("iCalUID", "x@google.com"),
])
def test_sync_token_rejects_filters(svc, cal, param, value):
    token = svc.events().list(calendarId=cal).execute()["nextSyncToken"]
    status, _, _ = failure(svc.events().list(calendarId=cal, syncToken=token, **{param: value}))
    assert status == 400


def test_expired_or_unknown_sync_token_is_410(srv, svc, cal):
    token = svc.events().list(calendarId=cal).execute()["nextSyncToken"]
    srv.expire_sync_tokens()
    status, reason, err = failure(svc.events().list(calendarId=cal, syncToken=token))
    assert (status, reason) == (410, "fullSyncRequired")
    assert err.error_details[0]["message"] == \
        "Sync token is no longer valid, a full sync is required."
    assert failure(svc.events().list(calendarId=cal, syncToken="bm9wZQ=="))[:2] == \
        (410, "fullSyncRequired")


def test_updated_min_includes_deleted(srv, svc, cal):
    srv.clock = lambda: datetime(2025, 1, 1, tzinfo=timezone.utc)
    srv.insert_event(cal, timed("old000001", "2024-05-01T10:00:00Z", "2024-05-01T11:00:00Z"))
    srv.insert_event(cal, timed("gone00001", "2024-05-01T10:00:00Z", "2024-05-01T11:00:00Z"))
    srv.clock = lambda: datetime(2025, 2, 1, tzinfo=timezone.utc)
    srv.delete_event(cal, "gone00001")
    got = svc.events().list(calendarId=cal, updatedMin="2025-01-15T00:00:00Z").execute()["items"]
    assert [(e["id"], e["status"]) for e in got] == [("gone00001", "cancelled")]


# -- auth ------------------------------------------------------------------------------------------

def test_bad_or_missing_token_is_401(srv, cal):
    url = f"{srv.url}/calendar/v3/calendars/{cal}/events"
    resp = httpx.get(url, headers={"Authorization": "Bearer not-a-token"})
    assert resp.status_code == 401
    assert resp.headers["WWW-Authenticate"].startswith('Bearer realm="https://accounts.google.com/"')
    assert 'error="invalid_token"' in resp.headers["WWW-Authenticate"]
    error = resp.json()["error"]
    assert error["code"] == 401 and error["status"] == "UNAUTHENTICATED"
    assert error["message"].startswith("Request had invalid authentication credentials.")
    assert error["errors"][0]["reason"] == "authError"
    assert error["errors"][0]["message"] == "Invalid Credentials"
    missing = httpx.get(url)
    assert missing.status_code == 401
    assert missing.json()["error"]["errors"][0]["reason"] == "required"
    # the real client, holding a token the server does not know and no way to refresh it
    creds = google.oauth2.credentials.Credentials(token="not-a-token")
    with pytest.raises(google.auth.exceptions.RefreshError):
        service(srv, creds).events().list(calendarId=cal).execute()
    assert srv.requests[-1].status == 401


def refreshable(srv, refresh_token="sandbox-refresh-token", token=None):
    return google.oauth2.credentials.Credentials(
        token=token, refresh_token=refresh_token, token_uri=srv.url + "/token",
        client_id="x", client_secret="y")


def test_refresh_flow_and_revocation(srv, cal):
    creds = refreshable(srv)
    svc = service(srv, creds)
    assert svc.events().list(calendarId=cal).execute()["kind"] == "calendar#events"
    assert srv.count("POST", "/token") == 1
    assert creds.token and creds.token != "sandbox-token" and creds.token in srv.access_tokens

    # a stale access token is refreshed on 401 by the client's AuthorizedHttp
    stale = refreshable(srv, token="stale-token")
    service(srv, stale).events().list(calendarId=cal).execute()
    assert srv.count("POST", "/token") == 2

    srv.revoke_refresh_token("sandbox-refresh-token")
    with pytest.raises(google.auth.exceptions.RefreshError) as info:
        service(srv, refreshable(srv)).events().list(calendarId=cal).execute()
    assert "invalid_grant" in str(info.value)
    resp = httpx.post(srv.url + "/token", data={
        "grant_type": "refresh_token", "refresh_token": "sandbox-refresh-token",
        "client_id": "x", "client_secret": "y"})
    assert resp.status_code == 400
    assert resp.json() == {"error": "invalid_grant",
                           "error_description": "Token has been expired or revoked."}
    # access tokens issued from a revoked refresh token stop working too
    old = httpx.get(f"{srv.url}/calendar/v3/calendars/{cal}/events",
                    headers={"Authorization": f"Bearer {creds.token}"})
    assert old.status_code == 401


def test_issued_access_token_expires_on_the_sandbox_clock(srv, cal):
    creds = refreshable(srv)
    svc = service(srv, creds)
    svc.events().list(calendarId=cal).execute()
    first = creds.token
    body = httpx.post(srv.url + "/token", data={
        "grant_type": "refresh_token", "refresh_token": "sandbox-refresh-token",
        "client_id": "x", "client_secret": "y"}).json()
    assert body["expires_in"] == 3599 and body["token_type"] == "Bearer" and body["scope"]
    srv.clock = lambda: datetime.now(timezone.utc) + timedelta(hours=2)
    resp = httpx.get(f"{srv.url}/calendar/v3/calendars/{cal}/events",
                     headers={"Authorization": f"Bearer {first}"})
    assert resp.status_code == 401
    svc.events().list(calendarId=cal).execute()  # the client refreshes on the 401
    assert creds.token != first


# -- freeBusy -------------------------------------------------------------------------------------

def test_freebusy(srv, svc, cal):
    berlin = srv.add_calendar("staff@example.com", "Europe/Berlin")
    for eid, a, b in [("fb0000001", "09:00", "10:00"), ("fb0000002", "09:30", "11:00"),
                      ("fb0000003", "13:00", "14:00"), ("fb0000004", "07:00", "08:30")]:
        srv.insert_event(cal, timed(eid, f"2024-05-01T{a}:00Z", f"2024-05-01T{b}:00Z"))
    srv.insert_event(cal, timed("fbfree001", "2024-05-01T15:00:00Z", "2024-05-01T16:00:00Z",
                                transparency="transparent"))
    srv.insert_event(cal, timed("fbgone001", "2024-05-01T16:00:00Z", "2024-05-01T17:00:00Z"))
    srv.delete_event(cal, "fbgone001")
    srv.insert_event(berlin, {"id": "fbdate001", "start": {"date": "2024-05-02"},
                              "end": {"date": "2024-05-03"}})
    result = svc.freebusy().query(body={
        "timeMin": "2024-05-01T08:00:00Z", "timeMax": "2024-05-03T00:00:00Z",
        "items": [{"id": cal}, {"id": berlin}, {"id": "nobody@example.com"}]}).execute()
    assert result["kind"] == "calendar#freeBusy"
    assert result["timeMin"] == "2024-05-01T08:00:00.000Z"
    assert result["calendars"][cal]["busy"] == [
        {"start": "2024-05-01T08:00:00Z", "end": "2024-05-01T08:30:00Z"},
        {"start": "2024-05-01T09:00:00Z", "end": "2024-05-01T11:00:00Z"},
        {"start": "2024-05-01T13:00:00Z", "end": "2024-05-01T14:00:00Z"}]
    # the all-day event blocks 2 May in Berlin: 1 May 22:00Z to 2 May 22:00Z
    assert result["calendars"][berlin]["busy"] == [
        {"start": "2024-05-01T22:00:00Z", "end": "2024-05-02T22:00:00Z"}]
    assert result["calendars"]["nobody@example.com"] == {
        "errors": [{"domain": "global", "reason": "notFound"}], "busy": []}
    local = svc.freebusy().query(body={
        "timeMin": "2024-05-01T08:00:00Z", "timeMax": "2024-05-01T09:00:00Z",
        "timeZone": "Europe/Berlin", "items": [{"id": cal}]}).execute()
    assert local["calendars"][cal]["busy"] == [
        {"start": "2024-05-01T10:00:00+02:00", "end": "2024-05-01T10:30:00+02:00"}]


def test_freebusy_validation(svc, cal):
    assert failure(svc.freebusy().query(body={
        "timeMin": "2024-05-02T00:00:00Z", "timeMax": "2024-05-01T00:00:00Z",
        "items": [{"id": cal}]}))[:2] == (400, "timeRangeEmpty")
    assert failure(svc.freebusy().query(body={
        "timeMax": "2024-05-01T00:00:00Z", "items": [{"id": cal}]}))[0] == 400
    assert failure(svc.freebusy().query(body={
        "timeMin": "2024-05-01T00:00:00", "timeMax": "2024-05-02T00:00:00",
        "items": [{"id": cal}]}))[:2] == (400, "badRequest")


def post_freebusy(srv, body: dict) -> httpx.Response:
    """freeBusy over plain HTTP, so the test sees Google's exact body, not a client's reading."""
    return httpx.post(srv.url + "/calendar/v3/freeBusy", json=body,
                      headers={"Authorization": "Bearer sandbox-token"})


def test_freebusy_refuses_a_range_over_90_days_with_googles_body(srv, cal):
    start = datetime(2026, 10, 1, tzinfo=timezone.utc)
    ok = post_freebusy(srv, {"timeMin": start.isoformat(), "timeMax": (start + timedelta(days=90)).isoformat(),
                             "items": [{"id": cal}]})
    assert ok.status_code == 200 and ok.json()["calendars"][cal] == {"busy": []}
    over = post_freebusy(srv, {"timeMin": start.isoformat(),
                               "timeMax": (start + timedelta(days=90, minutes=1)).isoformat(),
                               "items": [{"id": cal}]})
    assert over.status_code == 400
    assert over.json() == {"error": {
        "errors": [{"domain": "calendar", "reason": "timeRangeTooLong",
                    "message": "The requested time range is too long.",
                    "locationType": "parameter", "location": "timeMax"}],
        "code": 400, "message": "The requested time range is too long."}}
    a_year = post_freebusy(srv, {"timeMin": "2026-01-01T00:00:00Z", "timeMax": "2027-01-01T00:00:00Z",
                                 "items": [{"id": cal}]})
    assert a_year.status_code == 400 and a_year.json()["error"]["errors"][0]["reason"] == "timeRangeTooLong"


def test_freebusy_answers_50_calendars_and_refuses_the_51st_per_calendar(srv, cal):
    ids = [cal] + [srv.add_calendar(f"staff-{i:02d}@example.com") for i in range(50)]
    srv.insert_event(ids[50], timed("fb0000051", "2026-05-01T09:00:00Z", "2026-05-01T10:00:00Z"))
    srv.insert_event(ids[49], timed("fb0000050", "2026-05-01T09:00:00Z", "2026-05-01T10:00:00Z"))
    window = {"timeMin": "2026-05-01T00:00:00Z", "timeMax": "2026-05-02T00:00:00Z"}
    answer = post_freebusy(srv, {**window, "items": [{"id": c} for c in ids]})
    assert answer.status_code == 200  # the refusal is per calendar, inside a 200
    calendars = answer.json()["calendars"]
    assert set(calendars) == set(ids)
    assert all("errors" not in calendars[c] for c in ids[:50])
    assert calendars[ids[49]]["busy"] == [{"start": "2026-05-01T09:00:00Z", "end": "2026-05-01T10:00:00Z"}]
    # the 51st is busy, but Google only says it won't answer for it: empty busy is not "free"
    assert calendars[ids[50]] == {"errors": [{"domain": "usageLimits", "reason": "tooManyCalendarsRequested"}],
                                  "busy": []}
    # calendarExpansionMax lowers the limit; exactly 50 calendars are all answered
    fewer = post_freebusy(srv, {**window, "calendarExpansionMax": 2, "items": [{"id": c} for c in ids[:3]]})
    assert [("errors" in v) for v in fewer.json()["calendars"].values()] == [False, False, True]
    fifty = post_freebusy(srv, {**window, "items": [{"id": c} for c in ids[:50]]}).json()["calendars"]
    assert len(fifty) == 50 and not any("errors" in v for v in fifty.values())
    bad = post_freebusy(srv, {**window, "calendarExpansionMax": 0, "items": [{"id": cal}]})
    assert bad.status_code == 400 and bad.json()["error"]["errors"][0]["location"] == "calendarExpansionMax"


# -- faults and recording -------------------------------------------------------------------------

def test_fail_after_n_answers_500_with_google_envelope(srv, svc, cal):
    assert httpx.post(srv.url + "/_sandbox/faults", json={"fail_after_n": 1}).status_code == 200
    svc.events().list(calendarId=cal).execute()
    status, reason, err = failure(svc.events().list(calendarId=cal))
    assert (status, reason) == (500, "backendError")
    body = json.loads(err.content)["error"]
    assert body["code"] == 500 and body["errors"][0]["domain"] == "global"
    httpx.post(srv.url + "/_sandbox/faults", json={})
    svc.events().list(calendarId=cal).execute()


def test_rate_limit_429_has_retry_after(srv, svc, cal):
    srv.set_faults(fail_rate=1.0, fail_statuses=[429], seed=1)
    status, reason, err = failure(svc.events().list(calendarId=cal))
    assert (status, reason) == (429, "rateLimitExceeded")
    assert err.error_details[0]["domain"] == "usageLimits"
    assert err.resp["retry-after"] == "1"
    srv.set_faults(rate_limit_per_s=1)
    svc.events().list(calendarId=cal).execute()
    status, reason, err = failure(svc.events().list(calendarId=cal))
    assert (status, reason) == (429, "rateLimitExceeded") and int(err.resp["retry-after"]) >= 1


def test_requests_are_recorded(srv, svc, cal):
    svc.events().insert(calendarId=cal, body=timed(
        "record001", "2024-05-01T10:00:00Z", "2024-05-01T11:00:00Z")).execute()
    svc.events().list(calendarId=cal, privateExtendedProperty="a=b").execute()
    failure(svc.events().get(calendarId=cal, eventId="missing01"))
    log = httpx.get(srv.url + "/_sandbox/requests").json()["requests"]
    assert [(r["method"], r["status"]) for r in log] == [("POST", 200), ("GET", 200), ("GET", 404)]
    assert log[0]["json"]["id"] == "record001"
    assert log[0]["path"] == "/calendar/v3/calendars/bsync-demo%40group.calendar.google.com/events"
    assert log[1]["query"]["privateExtendedProperty"] == ["a=b"]
    assert srv.count("POST", "/events") == 1
    assert srv.count("GET") == 2
    assert srv.counts_by_method() == {"POST": 1, "GET": 2}


def test_reset_and_in_process_helpers(srv, svc, cal):
    ev = srv.insert_event(cal, timed("helper001", "2024-05-01T10:00:00Z", "2024-05-01T11:00:00Z"))
    ev["summary"] = "mutated copy"
    assert srv.get_event(cal, "helper001")["summary"] == "Haircut"
    assert srv.get_event(cal, "nosuch001") is None
    with pytest.raises(SandboxApiError) as info:
        srv.insert_event(cal, timed("helper001", "2024-05-01T10:00:00Z", "2024-05-01T11:00:00Z"))
    assert info.value.status == 409
    with pytest.raises(SandboxApiError):
        srv.insert_event(cal, timed("BAD", "2024-05-01T10:00:00Z", "2024-05-01T11:00:00Z"))
    srv.delete_event(cal, "helper001")
    with pytest.raises(SandboxApiError) as info:
        srv.delete_event(cal, "helper001")
    assert info.value.status == 410
    assert srv.event_count() == 0 and srv.event_count(include_deleted=True) == 1
    assert [e["status"] for e in srv.list_events(cal)] == ["cancelled"]
    assert srv.list_events(cal, include_deleted=False) == []
    assert srv.requests == []  # helpers are not recorded

    assert httpx.post(srv.url + "/_sandbox/reset").status_code == 200
    assert srv.event_count(include_deleted=True) == 0
    svc.events().insert(calendarId=cal, body=timed(
        "helper001", "2024-05-01T10:00:00Z", "2024-05-01T11:00:00Z")).execute()


# -- batch endpoint --------------------------------------------------------------------------------


class Collector:
    """A batch callback keeping (request_id, response, exception) in callback order."""

    def __init__(self):
        self.calls: list[tuple[str, object, HttpError | None]] = []

    def __call__(self, request_id, response, exception):
        self.calls.append((request_id, response, exception))

    def by_id(self) -> dict:
        return {rid: (resp, exc) for rid, resp, exc in self.calls}


def new_batch(srv, collector):
    return BatchHttpRequest(callback=collector, batch_uri=srv.url + "/batch/calendar/v3")


def raw_batch(srv, parts: list[str], *, boundary="b0undary", token="sandbox-token",
              content_type=None) -> httpx.Response:
    """POST a hand-written batch (CRLF wire format, as in Google's guide)."""
    body = "".join(f"--{boundary}\r\n{part}\r\n" for part in parts) + f"--{boundary}--\r\n"
    headers = {"Content-Type": content_type or f"multipart/mixed; boundary={boundary}"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return httpx.post(srv.url + "/batch/calendar/v3", content=body.encode(), headers=headers)


def http_part(request_line: str, content_id: str | None = None, headers=(), body: str = "") -> str:
    mime = "Content-Type: application/http\r\n"
    if content_id:
        mime += f"Content-ID: {content_id}\r\n"
    inner = "".join(f"{h}\r\n" for h in headers)
    return f"{mime}\r\n{request_line}\r\n{inner}\r\n{body}"


def parse_multipart(resp: httpx.Response) -> list[tuple[str, int, dict, str]]:
    """(Content-ID, inner status, inner headers, inner body) of each part of a batch answer."""
    match = re.fullmatch(r"multipart/mixed; boundary=(\S+)", resp.headers["content-type"])
    assert match, resp.headers["content-type"]
    boundary = match.group(1)
    chunks = resp.text.split(f"--{boundary}")
    assert chunks[0] == "" and chunks[-1] == "--\r\n"
    out = []
    for chunk in chunks[1:-1]:
        mime, _, http = chunk.removeprefix("\r\n").removesuffix("\r\n").partition("\r\n\r\n")
        mime_headers = dict(line.split(": ", 1) for line in mime.split("\r\n"))
        assert mime_headers["Content-Type"] == "application/http"
        head, _, body = http.partition("\r\n\r\n")
        status_line, *lines = head.split("\r\n")
        inner_headers = dict(line.split(": ", 1) for line in lines)
        assert int(inner_headers["Content-Length"]) == len(body.encode())
        out.append((mime_headers["Content-ID"], int(status_line.split(" ")[1]), inner_headers, body))
    return out


def test_batch_of_50_inserts_is_one_http_request(srv, svc, cal):
    got = Collector()
    batch = new_batch(srv, got)
    for i in range(50):
        batch.add(svc.events().insert(calendarId=cal, body=timed(
            f"batch{i:05d}", "2024-05-01T10:00:00Z", "2024-05-01T11:00:00Z")), request_id=f"r{i}")
    batch.execute()

    assert [rid for rid, _, _ in got.calls] == [f"r{i}" for i in range(50)]
    assert all(exc is None for _, _, exc in got.calls)
    assert [resp["id"] for _, resp, _ in got.calls] == [f"batch{i:05d}" for i in range(50)]
    assert got.calls[7][1] == srv.get_event(cal, "batch00007")  # the full resource, as insert answers
    assert srv.event_count(cal) == 50

    # one HTTP request went over the wire; its 50 calls are recorded too, marked as batched
    assert srv.count() == 1 and srv.count("POST", "/batch/calendar/v3") == 1
    assert srv.counts_by_method() == {"POST": 1}
    assert srv.count("POST", "/events") == 0
    assert srv.count("POST", "/events", include_batched=True) == 50
    assert srv.count(include_batched=True) == 51
    log = httpx.get(srv.url + "/_sandbox/requests").json()["requests"]
    inner, outer = log[:50], log[50]
    assert outer == {"method": "POST", "path": "/batch/calendar/v3", "query": {}, "json": None,
                     "status": 200, "batch": False}
    assert all(r["batch"] and r["method"] == "POST" and r["status"] == 200 for r in inner)
    assert inner[0]["path"] == "/calendar/v3/calendars/bsync-demo%40group.calendar.google.com/events"
    assert inner[0]["json"]["id"] == "batch00000" and inner[0]["query"] == {"alt": ["json"]}


def test_batch_duplicate_fails_only_its_part_with_the_plain_409(srv, svc, cal):
    body = timed("dupbatch1", "2024-05-01T10:00:00Z", "2024-05-01T11:00:00Z")
    svc.events().insert(calendarId=cal, body=body).execute()
    _, _, plain = failure(svc.events().insert(calendarId=cal, body=body))

    got = Collector()
    batch = new_batch(srv, got)
    batch.add(svc.events().insert(calendarId=cal, body=timed(
        "okbatch01", "2024-05-01T12:00:00Z", "2024-05-01T13:00:00Z")), request_id="good-1")
    batch.add(svc.events().insert(calendarId=cal, body=body), request_id="dup")
    batch.add(svc.events().insert(calendarId=cal, body=timed(
        "okbatch02", "2024-05-01T14:00:00Z", "2024-05-01T15:00:00Z")), request_id="good-2")
    batch.execute()  # the outer answer is 200: nothing raises

    results = got.by_id()
    assert results["good-1"][0]["id"] == "okbatch01" and results["good-1"][1] is None
    assert results["good-2"][0]["id"] == "okbatch02" and results["good-2"][1] is None
    response, err = results["dup"]
    assert response is None and isinstance(err, HttpError)
    assert err.resp.status == 409 and err.error_details[0]["reason"] == "duplicate"
    assert json.loads(err.content) == json.loads(plain.content)  # same body as without batch
    assert srv.event_count(cal) == 3
    assert [(r.status, r.batch) for r in srv.requests[-4:]] == [
        (200, True), (409, True), (200, True), (200, False)]


def test_batch_patch_delete_and_inner_errors_match_plain_calls(srv, svc, cal):
    for eid in ("bpatch001", "bdelete01", "bgone0001"):
        srv.insert_event(cal, timed(eid, "2024-05-01T10:00:00Z", "2024-05-01T11:00:00Z"))
    srv.delete_event(cal, "bgone0001")
    _, _, plain_410 = failure(svc.events().delete(calendarId=cal, eventId="bgone0001"))
    _, _, plain_404 = failure(svc.events().get(calendarId=cal, eventId="nosuch001"))
    _, _, plain_400 = failure(svc.events().patch(calendarId=cal, eventId="bpatch001", body={
        "start": {"date": "2024-05-01"}, "end": {"date": "2024-05-02"}}))

    got = Collector()
    batch = new_batch(srv, got)
    batch.add(svc.events().patch(calendarId=cal, eventId="bpatch001",
                                 body={"summary": "Patched", "location": "Salon"}), request_id="patch")
    batch.add(svc.events().delete(calendarId=cal, eventId="bdelete01"), request_id="delete")
    batch.add(svc.events().delete(calendarId=cal, eventId="bgone0001"), request_id="gone")
    batch.add(svc.events().get(calendarId=cal, eventId="nosuch001"), request_id="missing")
    batch.add(svc.events().patch(calendarId=cal, eventId="bpatch001", body={
        "start": {"date": "2024-05-01"}, "end": {"date": "2024-05-02"}}), request_id="invalid")
    batch.execute()

    results = got.by_id()
    patched, err = results["patch"]
    assert err is None and patched["summary"] == "Patched" and patched["location"] == "Salon"
    assert patched == srv.get_event(cal, "bpatch001")
    assert results["delete"] == ("", None)  # 204, as events().delete().execute() returns
    assert srv.get_event(cal, "bdelete01")["status"] == "cancelled"
    for rid, plain in (("gone", plain_410), ("missing", plain_404), ("invalid", plain_400)):
        response, err = results[rid]
        assert response is None and err.resp.status == plain.resp.status
        assert json.loads(err.content) == json.loads(plain.content)
    assert [(r.method, r.status) for r in srv.requests if r.batch] == [
        ("PATCH", 200), ("DELETE", 204), ("DELETE", 410), ("GET", 404), ("PATCH", 400)]


def test_batch_wire_format(srv, cal):
    path = f"/calendar/v3/calendars/{cal.replace('@', '%40')}/events"
    resp = raw_batch(srv, [
        http_part(f"POST {path} HTTP/1.1", "<item1:12930812@barnyard.example.com>",
                  ["Content-Type: application/json"],
                  json.dumps(timed("parts0001", "2024-05-01T10:00:00Z", "2024-05-01T11:00:00Z"))),
        http_part(f"DELETE {path}/parts0001 HTTP/1.1", "<item2>"),
        http_part(f"GET {path}/parts0001?fields=id"),  # no Content-ID, no HTTP version
        http_part("GET /calendar/v3/nowhere HTTP/1.1", "<item4>"),
        http_part("POST /token HTTP/1.1", "<item5>"),  # only this API's calls go through a batch
    ])
    assert resp.status_code == 200
    parts = parse_multipart(resp)
    assert [(cid, status) for cid, status, _, _ in parts] == [
        ("<response-item1:12930812@barnyard.example.com>", 200), ("<response-item2>", 204),
        ("response-", 200), ("<response-item4>", 404), ("<response-item5>", 404)]
    assert json.loads(parts[0][3])["id"] == "parts0001"
    assert parts[0][2]["Content-Type"] == "application/json; charset=UTF-8"
    assert parts[1][3] == "" and "Content-Type" not in parts[1][2]
    assert json.loads(parts[2][3])["status"] == "cancelled"
    assert json.loads(parts[3][3])["error"]["errors"][0]["reason"] == "notFound"


def test_batch_over_1000_calls_is_400_and_runs_nothing(srv, cal):
    path = f"/calendar/v3/calendars/{cal.replace('@', '%40')}/events"
    resp = raw_batch(srv, [http_part(f"GET {path}/x{i:08d} HTTP/1.1", f"<{i}>") for i in range(1001)])
    assert resp.status_code == 400
    error = resp.json()["error"]
    assert error["code"] == 400 and error["errors"][0]["reason"] == "badRequest"
    assert "1000" in error["message"]
    assert [(r.path, r.status, r.batch) for r in srv.requests] == [("/batch/calendar/v3", 400, False)]
    # the client library refuses to build such a batch in the first place
    batch = BatchHttpRequest(batch_uri=srv.url + "/batch/calendar/v3")
    get = service(srv).events().get(calendarId=cal, eventId="x00000000")
    for i in range(1000):
        batch.add(get, request_id=str(i))
    with pytest.raises(BatchError, match=r"maximum calls\(1000\)"):
        batch.add(get, request_id="1000")


def test_batch_auth_is_checked_per_call(srv, cal):
    path = f"/calendar/v3/calendars/{cal.replace('@', '%40')}/events"
    plain = httpx.get(srv.url + path, headers={"Authorization": "Bearer not-a-token"})
    # a bad outer token applies to the calls that carry none: 200 outside, 401 inside
    resp = raw_batch(srv, [http_part(f"GET {path} HTTP/1.1", "<a>"),
                           http_part(f"GET {path} HTTP/1.1", "<b>",
                                     ["Authorization: Bearer sandbox-token"])], token="not-a-token")
    assert resp.status_code == 200
    (_, s1, h1, b1), (_, s2, _, _) = parse_multipart(resp)
    assert (s1, s2) == (401, 200)  # a call's own Authorization header wins
    assert json.loads(b1) == plain.json()
    assert h1["WWW-Authenticate"] == plain.headers["WWW-Authenticate"]
    # no outer token at all: the calls' own headers are enough
    resp = raw_batch(srv, [http_part(f"GET {path} HTTP/1.1", "<c>",
                                     ["Authorization: Bearer sandbox-token"])], token=None)
    assert [status for _, status, _, _ in parse_multipart(resp)] == [200]

    # the real client, holding a token the server does not know: every call answers 401, the
    # client tries to refresh and cannot; nothing was written
    body = timed("authbat01", "2024-05-01T10:00:00Z", "2024-05-01T11:00:00Z")
    bad = service(srv, google.oauth2.credentials.Credentials(token="not-a-token"))
    batch = new_batch(srv, Collector())
    batch.add(bad.events().insert(calendarId=cal, body=body))
    with pytest.raises(google.auth.exceptions.RefreshError):
        batch.execute()
    assert [(r.status, r.batch) for r in srv.requests[-2:]] == [(401, True), (200, False)]
    assert srv.event_count(cal) == 0

    # with a refresh token, it refreshes on the inner 401 and resends only those calls
    got = Collector()
    stale = service(srv, refreshable(srv, token="stale-token"))
    batch = new_batch(srv, got)
    batch.add(stale.events().insert(calendarId=cal, body=body), request_id="ins")
    batch.execute()
    assert got.calls[0][0] == "ins" and got.calls[0][1]["id"] == "authbat01"
    assert srv.count("POST", "/token") == 1
    assert [(r.path.rsplit("/", 1)[-1], r.status, r.batch) for r in srv.requests[-5:]] == [
        ("events", 401, True), ("v3", 200, False), ("token", 200, False),
        ("events", 200, True), ("v3", 200, False)]


@pytest.mark.parametrize("content_type,body,detail", [
    ("multipart/mixed;", "--x\r\n\r\n--x--\r\n", "multipart/mixed with a boundary"),
    ("application/json", "{}", "multipart/mixed with a boundary"),
    ("multipart/mixed; boundary=x", "", "0 items"),
    ("multipart/mixed; boundary=x", "--x--\r\n", "0 items"),
    ("multipart/mixed; boundary=x",
     "--x\r\nContent-Type: application/http\r\n\r\nGET /calendar/v3/calendars/a/events\r\n",
     "no close delimiter"),
    ("multipart/mixed; boundary=x",
     "--x\r\nContent-Type: text/plain\r\n\r\nGET /calendar/v3/calendars/a/events\r\n--x--",
     "application/http"),
    ("multipart/mixed; boundary=x",
     "--x\r\nContent-Type: application/http\r\n\r\nnot a request line\r\n--x--", "request line"),
    ("multipart/mixed; boundary=x", "--x\r\nContent-Type: application/http\r\n\r\n"
     "GET https://www.googleapis.com/calendar/v3/calendars/a/events\r\n--x--", "request line"),
    ("multipart/mixed; boundary=x", "--x\r\nContent-Type: application/http\r\nno colon\r\n\r\n"
     "GET /calendar/v3/calendars/a/events\r\n--x--", "header"),
])
def test_malformed_batch_is_400(srv, content_type, body, detail):
    resp = httpx.post(srv.url + "/batch/calendar/v3", content=body.encode(), headers={
        "Content-Type": content_type, "Authorization": "Bearer sandbox-token"})
    assert resp.status_code == 400
    error = resp.json()["error"]
    assert error["code"] == 400 and error["status"] == "INVALID_ARGUMENT"
    assert error["errors"] == [{"domain": "global", "reason": "badRequest",
                                "message": error["message"]}]
    assert error["message"].startswith("Failed to parse batch request, error: ")
    assert detail in error["message"]
    assert error["message"].endswith(f"Received batch body: ({len(body.encode())}) bytes redacted")
    assert not any(r.batch for r in srv.requests)


def test_batch_faults_per_call_and_on_the_envelope(srv, svc, cal):
    def run(prefix: str) -> list[int]:
        got = Collector()
        batch = new_batch(srv, got)
        for i in range(5):
            batch.add(svc.events().insert(calendarId=cal, body=timed(
                f"{prefix}{i:04d}", "2024-05-01T10:00:00Z", "2024-05-01T11:00:00Z")))
        batch.execute()
        return [exc.resp.status if exc else 200 for _, _, exc in got.calls]

    # each call counts as one API call (Google counts a batch of n as n requests); the
    # envelope itself does not, so fail_after_n=3 lets exactly three calls through
    srv.set_faults(fail_after_n=3)
    assert run("fltaa") == [200, 200, 200, 500, 500]
    assert srv.event_count(cal) == 3
    srv.set_faults(rate_limit_per_s=2)
    statuses = run("fltbb")
    assert statuses[:2] == [200, 200] and set(statuses[2:]) == {429}
    assert [r.status for r in srv.requests[-6:]] == [200, 200, 429, 429, 429, 200]

    srv.batch_part_faults = False  # faults on the envelope only
    srv.set_faults(fail_after_n=1)
    assert run("fltcc") == [200] * 5
    with pytest.raises(HttpError) as info:  # the second envelope fails as a whole
        run("fltdd")
    assert info.value.resp.status == 500 and srv.requests[-1].status == 500
    assert srv.event_count(cal) == 3 + 2 + 5


# -- recurring events -------------------------------------------------------------------------

def weekly(summary: str, start: str, end: str, *rules: str, zone: str = "Europe/Warsaw", **extra) -> dict:
    """A recurring timed event in ``zone`` (Google requires the zone on a recurring event)."""
    return {"summary": summary, "start": {"dateTime": start, "timeZone": zone},
            "end": {"dateTime": end, "timeZone": zone}, "recurrence": list(rules), **extra}


def busy(svc, cal: str, lo: str, hi: str) -> list[tuple[str, str]]:
    answer = svc.freebusy().query(body={"timeMin": lo, "timeMax": hi, "items": [{"id": cal}]}).execute()
    return [(b["start"], b["end"]) for b in answer["calendars"][cal]["busy"]]


def test_a_daily_series_is_busy_on_each_day_and_listed_as_instances(srv):
    svc, cal = service(srv), srv.calendar_id
    series = svc.events().insert(calendarId=cal, body=weekly(
        "Lunch", "2026-06-01T12:00:00", "2026-06-01T13:00:00", "RRULE:FREQ=DAILY;COUNT=3")).execute()
    assert busy(svc, cal, "2026-06-02T00:00:00Z", "2026-06-03T00:00:00Z") == [
        ("2026-06-02T10:00:00Z", "2026-06-02T11:00:00Z")]
    items, _ = list_all(svc, cal, singleEvents=True, orderBy="startTime")
    assert [i["id"] for i in items] == [f"{series['id']}_2026060{d}T100000Z" for d in (1, 2, 3)]
    second = items[1]
    assert second["recurringEventId"] == series["id"] and "recurrence" not in second
    assert second["originalStartTime"] == {"dateTime": "2026-06-02T12:00:00+02:00", "timeZone": "Europe/Warsaw"}
    assert second["start"] == {"dateTime": "2026-06-02T12:00:00+02:00", "timeZone": "Europe/Warsaw"}
    assert svc.events().get(calendarId=cal, eventId=second["id"]).execute() == second
    assert failure(svc.events().get(calendarId=cal, eventId=series["id"] + "_20260604T100000Z"))[0] == 404
    plain, _ = list_all(svc, cal)  # without singleEvents the series is one event
    assert [i["id"] for i in plain] == [series["id"]] and plain[0]["recurrence"] == ["RRULE:FREQ=DAILY;COUNT=3"]
    window, _ = list_all(svc, cal, singleEvents=True, timeMin="2026-06-02T10:30:00Z",
                         timeMax="2026-06-03T00:00:00Z")
    assert [i["id"] for i in window] == [second["id"]]
    paged, pages = list_all(svc, cal, singleEvents=True, maxResults=1)
    assert [i["id"] for i in paged] == [i["id"] for i in items] and len(pages) == 3


@pytest.mark.parametrize("first, last, before, after", [
    ("2026-03-19", "2026-04-02", "08:00", "07:00"),   # spring forward, 29 March 2026
    ("2026-10-15", "2026-10-29", "07:00", "08:00"),   # fall back, 25 October 2026
])
def test_a_weekly_series_stays_at_local_nine_across_the_dst_change(srv, first, last, before, after):
    svc, cal = service(srv), srv.calendar_id
    svc.events().insert(calendarId=cal, body=weekly(
        "Staff meeting", f"{first}T09:00:00", f"{first}T10:00:00", "RRULE:FREQ=WEEKLY;COUNT=3")).execute()
    items, _ = list_all(svc, cal, singleEvents=True, orderBy="startTime")
    assert [i["start"]["dateTime"][11:19] for i in items] == ["09:00:00"] * 3
    spans = busy(svc, cal, f"{first}T00:00:00Z", f"{last}T23:00:00Z")
    assert [s[11:16] for s, _ in spans] == [before, before, after]  # UTC moves, local time doesn't


def test_exdate_and_rdate_shape_the_occurrences(srv):
    svc, cal = service(srv), srv.calendar_id
    svc.events().insert(calendarId=cal, body=weekly(
        "Lunch", "2026-06-01T12:00:00", "2026-06-01T13:00:00", "RRULE:FREQ=DAILY;COUNT=3",
        "EXDATE;TZID=Europe/Warsaw:20260602T120000", "RDATE:20260610T100000Z")).execute()
    items, _ = list_all(svc, cal, singleEvents=True, orderBy="startTime")
    assert [i["start"]["dateTime"][:10] for i in items] == ["2026-06-01", "2026-06-03", "2026-06-10"]
    assert busy(svc, cal, "2026-06-02T00:00:00Z", "2026-06-03T00:00:00Z") == []


def test_a_moved_and_a_cancelled_occurrence_override_their_instances(srv):
    svc, cal = service(srv), srv.calendar_id
    series = svc.events().insert(calendarId=cal, body=weekly(
        "Lunch", "2026-06-01T12:00:00", "2026-06-01T13:00:00", "RRULE:FREQ=DAILY;COUNT=3")).execute()
    sid = series["id"]
    moved = svc.events().patch(calendarId=cal, eventId=f"{sid}_20260602T100000Z", body={
        "start": {"dateTime": "2026-06-02T15:00:00", "timeZone": "Europe/Warsaw"},
        "end": {"dateTime": "2026-06-02T16:00:00", "timeZone": "Europe/Warsaw"}}).execute()
    assert moved["recurringEventId"] == sid and moved["originalStartTime"]["dateTime"] == "2026-06-02T12:00:00+02:00"
    svc.events().delete(calendarId=cal, eventId=f"{sid}_20260603T100000Z").execute()

    items, _ = list_all(svc, cal, singleEvents=True, orderBy="startTime")
    assert [(i["id"], i["start"]["dateTime"]) for i in items] == [
        (f"{sid}_20260601T100000Z", "2026-06-01T12:00:00+02:00"),
        (f"{sid}_20260602T100000Z", "2026-06-02T15:00:00+02:00")]
    with_deleted, _ = list_all(svc, cal, singleEvents=True, showDeleted=True)
    assert [i["status"] for i in with_deleted if i["id"].endswith("0603T100000Z")] == ["cancelled"]
    instances = svc.events().instances(calendarId=cal, eventId=sid).execute()["items"]
    assert [i["start"]["dateTime"] for i in instances] == ["2026-06-01T12:00:00+02:00", "2026-06-02T15:00:00+02:00"]
    everything = svc.events().instances(calendarId=cal, eventId=sid, showDeleted=True).execute()["items"]
    assert [i["status"] for i in everything] == ["confirmed", "confirmed", "cancelled"]
    assert busy(svc, cal, "2026-06-01T00:00:00Z", "2026-06-04T00:00:00Z") == [
        ("2026-06-01T10:00:00Z", "2026-06-01T11:00:00Z"), ("2026-06-02T13:00:00Z", "2026-06-02T14:00:00Z")]
    plain, _ = list_all(svc, cal)  # the moved exception is an event of its own; cancelled ones hide
    assert [i["id"] for i in plain] == [sid, moved["id"]]
    svc.events().delete(calendarId=cal, eventId=sid).execute()  # the whole series goes
    assert list_all(svc, cal, singleEvents=True)[0] == []
    assert busy(svc, cal, "2026-06-01T00:00:00Z", "2026-06-04T00:00:00Z") == []


def test_transparent_series_are_free_and_all_day_series_are_busy(srv):
    svc, cal = service(srv), srv.calendar_id
    svc.events().insert(calendarId=cal, body=weekly(
        "Reminder", "2026-06-01T08:00:00", "2026-06-01T09:00:00", "RRULE:FREQ=DAILY",
        transparency="transparent")).execute()
    svc.events().insert(calendarId=cal, body={
        "summary": "Closed", "start": {"date": "2026-06-01"}, "end": {"date": "2026-06-02"},
        "recurrence": ["RRULE:FREQ=WEEKLY;BYDAY=MO;UNTIL=20260630"]}).execute()
    assert busy(svc, cal, "2026-06-07T00:00:00Z", "2026-06-16T00:00:00Z") == [
        ("2026-06-08T00:00:00Z", "2026-06-09T00:00:00Z"), ("2026-06-15T00:00:00Z", "2026-06-16T00:00:00Z")]
    closed = [i for i in list_all(svc, cal, singleEvents=True, timeMin="2026-06-01T00:00:00Z",
                                  timeMax="2026-07-31T00:00:00Z")[0] if i["summary"] == "Closed"]
    assert [i["start"]["date"] for i in closed] == ["2026-06-01", "2026-06-08", "2026-06-15", "2026-06-22",
                                                    "2026-06-29"]
    assert closed[0]["id"].endswith("_20260601") and closed[0]["originalStartTime"] == {"date": "2026-06-01"}


def test_a_recurring_event_needs_a_zone_and_readable_rules(srv):
    svc, cal = service(srv), srv.calendar_id
    no_zone = timed(None, "2026-06-01T12:00:00Z", "2026-06-01T13:00:00Z", recurrence=["RRULE:FREQ=DAILY"])
    assert failure(svc.events().insert(calendarId=cal, body=no_zone))[:2] == (400, "required")
    bad = weekly("x", "2026-06-01T12:00:00", "2026-06-01T13:00:00", "RRULE:FREQ=SOMETIMES")
    assert failure(svc.events().insert(calendarId=cal, body=bad))[:2] == (400, "invalid")
    assert failure(svc.events().list(calendarId=cal, orderBy="startTime"))[0] == 400


def test_instances_of_an_endless_series_page_and_filter(srv):
    svc, cal = service(srv), srv.calendar_id
    sid = svc.events().insert(calendarId=cal, body=weekly(
        "Standup", "2026-06-01T09:00:00", "2026-06-01T09:15:00", "RRULE:FREQ=WEEKLY;BYDAY=MO,WE")).execute()["id"]
    starts, token = [], None
    while True:
        page = svc.events().instances(calendarId=cal, eventId=sid, timeMin="2026-06-01T00:00:00Z",
                                      timeMax="2026-06-15T00:00:00Z", maxResults=2, pageToken=token).execute()
        starts += [i["start"]["dateTime"][:10] for i in page["items"]]
        token = page.get("nextPageToken")
        if not token:
            break
    assert starts == ["2026-06-01", "2026-06-03", "2026-06-08", "2026-06-10"]
    [one] = svc.events().instances(calendarId=cal, eventId=sid,
                                   originalStart="2026-06-08T09:00:00+02:00").execute()["items"]
    assert one["id"] == f"{sid}_20260608T070000Z"
    assert failure(svc.events().instances(calendarId=cal, eventId="nosuchevent1"))[0] == 404
