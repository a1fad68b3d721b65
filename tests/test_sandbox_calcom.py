"""The Cal.com sandbox, driven by raw httpx over loopback (Cal.com ships no Python client)."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import threading
from datetime import datetime, timedelta, timezone
from typing import Any, Iterator

import httpx
import pytest
from conftest import FakeClock

from bsync.sandbox.base import Request, Response, SandboxServer, route
from bsync.sandbox.calcom import CalcomSandbox

UTC = timezone.utc
V2 = {"Authorization": "Bearer sandbox-token", "cal-api-version": "2024-08-13"}
ISO_MS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def srv(clock: FakeClock) -> Iterator[CalcomSandbox]:
    with CalcomSandbox(seed=7) as server:
        server.clock = clock
        yield server


@pytest.fixture
def http(srv: CalcomSandbox) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=srv.url, headers=V2, timeout=5) as client:
        yield client


def assert_error(resp: httpx.Response, status: int, code: str, message: str | None = None) -> dict:
    assert resp.status_code == status
    assert resp.headers["content-type"] == "application/json; charset=utf-8"
    body = resp.json()
    assert set(body) == {"status", "timestamp", "path", "error"}
    assert body["status"] == "error"
    assert ISO_MS.match(body["timestamp"])
    assert body["error"]["code"] == code
    if message is not None:
        assert body["error"]["message"] == message
    return body


def list_all(http: httpx.Client, **params: Any) -> list[dict]:
    out, skip = [], 0
    while True:
        page = http.get("/v2/bookings", params={**params, "skip": skip}).json()
        out.extend(page["data"])
        if not page["pagination"]["hasNextPage"]:
            return out
        skip += page["pagination"]["itemsPerPage"]


# -- booking object -------------------------------------------------------------------------------

def test_booking_object_shape(srv, http):
    made = srv.create_booking(start="2026-11-24T09:00:00Z", attendee_name="Ana Lima",
                              attendee_email="ana@example.com", guests=["bo@example.com"],
                              metadata={"source": "bsync"}, location="Salon, 1 High St")
    data = http.get(f"/v2/bookings/{made['uid']}").json()
    assert data["status"] == "success"
    b = data["data"]
    assert b == made
    assert re.fullmatch(r"[1-9a-km-zA-HJ-NP-Z]{22}", b["uid"])
    assert b["id"] == 1 and b["status"] == "accepted"
    assert (b["start"], b["end"], b["duration"]) == ("2026-11-24T09:00:00.000Z",
                                                     "2026-11-24T09:45:00.000Z", 45)
    assert b["createdAt"] == b["updatedAt"] == "2026-11-20T08:00:00.000Z"
    assert b["cancellationReason"] == "" and b["cancelledByEmail"] == ""
    assert b["rescheduledByEmail"] is None and b["rating"] is None
    assert "rescheduledFromUid" not in b and "rescheduledToUid" not in b
    assert b["eventType"] == {"id": 1001, "slug": "haircut"} and b["eventTypeId"] == 1001
    assert b["location"] == b["meetingUrl"] == "Salon, 1 High St"
    assert b["hosts"][0].keys() == {"id", "name", "email", "displayEmail", "username", "timeZone"}
    assert [a["email"] for a in b["attendees"]] == ["ana@example.com", "bo@example.com"]
    assert b["attendees"][0] == {"name": "Ana Lima", "email": "ana@example.com",
                                 "displayEmail": "ana@example.com", "timeZone": "Europe/London",
                                 "language": "en", "absent": False}
    assert b["attendees"][1]["name"] == ""  # guests are attendee rows without a name
    assert b["guests"] == ["bo@example.com"]
    assert b["bookingFieldsResponses"]["displayEmail"] == "ana@example.com"
    assert b["bookingFieldsResponses"]["displayGuests"] == ["bo@example.com"]
    assert b["metadata"] == {"source": "bsync"}
    assert b["icsUid"] == f"{b['uid']}@Cal.com"
    assert b["title"] == "Haircut between Alex Stylist and Ana Lima"
    assert srv.get(b["uid"]) == b and srv.bookings[b["uid"]] == b and srv.booking_count() == 1
    assert srv.get("missing") is None


def test_get_unknown_uid_is_404(http):
    body = assert_error(http.get("/v2/bookings/nope"), 404, "NotFoundException",
                        "Booking with uid=nope was not found in the database")
    assert body["path"] == "/v2/bookings/nope"
    assert body["error"]["details"] == {"message": "Booking with uid=nope was not found in the database",
                                        "error": "Not Found", "statusCode": 404}


def test_uids_are_seeded(clock):
    def uids(server: CalcomSandbox) -> list[str]:
        return [server.create_booking()["uid"] for _ in range(3)]

    a, b = CalcomSandbox(seed=42), CalcomSandbox(seed=42)
    try:
        first = uids(a)
        assert first == uids(b) and len(set(first)) == 3
        a.reset()
        assert uids(a) == first  # reset restarts the sequence
        assert [a.get(u)["id"] for u in first] == [1, 2, 3]
    finally:
        a.stop()
        b.stop()


# -- list + pagination ----------------------------------------------------------------------------

def test_pagination_over_600_bookings(srv, http):
    for i in range(600):
        srv.create_booking(start=T0 + timedelta(days=1, minutes=30 * i))
    first = http.get("/v2/bookings", params={"take": 250}).json()
    assert len(first["data"]) == 250
    assert first["pagination"] == {"returnedItems": 250, "totalItems": 600, "itemsPerPage": 250,
                                   "remainingItems": 350, "currentPage": 1, "totalPages": 3,
                                   "hasNextPage": True, "hasPreviousPage": False}
    last = http.get("/v2/bookings", params={"take": 250, "skip": 500}).json()
    assert len(last["data"]) == 100
    assert last["pagination"] == {"returnedItems": 100, "totalItems": 600, "itemsPerPage": 250,
                                  "remainingItems": 0, "currentPage": 3, "totalPages": 3,
                                  "hasNextPage": False, "hasPreviousPage": True}
    beyond = http.get("/v2/bookings", params={"take": 250, "skip": 900}).json()
    assert beyond["data"] == [] and beyond["pagination"]["currentPage"] == 3
    assert beyond["pagination"]["returnedItems"] == 0

    default = http.get("/v2/bookings").json()  # take defaults to 100
    assert len(default["data"]) == 100 and default["pagination"]["itemsPerPage"] == 100

    everything = list_all(http, take=250)
    assert len(everything) == 600 and len({b["uid"] for b in everything}) == 600
    starts = [b["start"] for b in everything]
    assert starts == sorted(starts)  # no status, no sort: startTime asc


def test_empty_list_pagination(http):
    body = http.get("/v2/bookings").json()
    assert body == {"status": "success", "data": [], "pagination": {
        "returnedItems": 0, "totalItems": 0, "itemsPerPage": 100, "remainingItems": 0,
        "currentPage": 0, "totalPages": 0, "hasNextPage": False, "hasPreviousPage": False}}


@pytest.mark.parametrize("params, prop, constraints", [
    ({"take": "251"}, "take", {"max": "take must not be greater than 250"}),
    ({"take": "0"}, "take", {"min": "take must not be less than 1"}),
    ({"take": "abc"}, "take", {"max": "take must not be greater than 250",
                               "min": "take must not be less than 1",
                               "isNumber": "take must be a number conforming to the specified constraints"}),
    ({"skip": "-1"}, "skip", {"min": "skip must not be less than 0"}),
    ({"status": "upcoming,soon"}, "status",
     {"isEnum": "Invalid status. Allowed are upcoming, recurring, past, cancelled, unconfirmed"}),
    ({"afterUpdatedAt": "yesterday"}, "afterUpdatedAt",
     {"isIso8601": "fromDate must be a valid ISO 8601 date."}),
    ({"beforeEnd": "2026-02-30"}, "beforeEnd", {"isIso8601": "toDate must be a valid ISO 8601 date."}),
    ({"sortUpdatedAt": "up"}, "sortUpdatedAt", {"isEnum": 'SortCreated must be either "asc" or "desc".'}),
    ({"eventTypeId": "1.5"}, "eventTypeId", {"isInt": "eventTypeId must be an integer number"}),
])
def test_list_query_validation(http, params, prop, constraints):
    body = assert_error(http.get("/v2/bookings", params=params), 400, "BadRequestException",
                        "Bad Request Exception")
    assert body["error"]["details"] == {"errors": [
        {"property": prop, "children": [], "constraints": constraints}]}
    assert body["path"].startswith("/v2/bookings?")


def test_take_over_250_is_rejected_but_250_is_fine(srv, http):
    srv.create_booking()
    assert http.get("/v2/bookings", params={"take": 250}).status_code == 200
    assert_error(http.get("/v2/bookings", params={"take": 300}), 400, "BadRequestException")


def test_incremental_reads_with_after_updated_at(srv, http, clock):
    made = [srv.create_booking(start=T0 + timedelta(days=2, hours=i)) for i in range(5)]
    clock.advance(hours=1)
    watermark = "2026-11-20T09:00:00.000Z"
    assert http.get("/v2/bookings", params={"afterUpdatedAt": watermark}).json()["data"] == []

    clock.advance(minutes=5)
    srv.cancel(made[3]["uid"], "client ill")
    clock.advance(minutes=5)
    new = srv.reschedule(made[1]["uid"], T0 + timedelta(days=3))
    clock.advance(minutes=5)
    srv.mark_no_show(made[4]["uid"], ["jamie@example.com"])  # attendee rows only: no bump
    srv.mark_no_show(made[0]["uid"], host=True)              # booking row: bump

    page = http.get("/v2/bookings", params={"afterUpdatedAt": watermark,
                                            "sortUpdatedAt": "asc"}).json()
    seen = [(b["uid"], b["updatedAt"]) for b in page["data"]]
    assert seen == [(made[3]["uid"], "2026-11-20T09:05:00.000Z"),
                    (made[1]["uid"], "2026-11-20T09:10:00.000Z"),
                    (new["uid"], "2026-11-20T09:10:00.000Z"),
                    (made[0]["uid"], "2026-11-20T09:15:00.000Z")]
    assert page["pagination"]["totalItems"] == 4
    assert {b["uid"]: b["status"] for b in page["data"]}[made[3]["uid"]] == "cancelled"

    # the bound is inclusive: the next poll from the last updatedAt sees that booking again
    again = http.get("/v2/bookings", params={"afterUpdatedAt": "2026-11-20T09:15:00Z",
                                             "sortUpdatedAt": "desc"}).json()["data"]
    assert [b["uid"] for b in again] == [made[0]["uid"]]
    before = http.get("/v2/bookings", params={"beforeUpdatedAt": "2026-11-20T09:05:00+00:00"}).json()
    assert before["pagination"]["totalItems"] == 3  # two untouched (one no-show) + the cancel


def test_status_filters(srv, http, clock):
    past = srv.create_booking(start=T0 - timedelta(days=1))
    upcoming = srv.create_booking(start=T0 + timedelta(days=1))
    pending = srv.create_booking(start=T0 + timedelta(days=2), status="pending")
    cancelled = srv.create_booking(start=T0 + timedelta(days=3))
    srv.cancel(cancelled["uid"])
    rejected = srv.create_booking(start=T0 + timedelta(days=4), status="rejected")

    def uids(status: str) -> list[str]:
        return [b["uid"] for b in http.get("/v2/bookings", params={"status": status}).json()["data"]]

    assert uids("past") == [past["uid"]]
    assert uids("upcoming") == [upcoming["uid"], pending["uid"]]  # pending counts as upcoming
    assert uids("unconfirmed") == [pending["uid"]]
    assert uids("cancelled") == [rejected["uid"], cancelled["uid"]]  # cancelled: start desc
    assert uids("recurring") == []
    assert sorted(uids("past,cancelled")) == sorted([past["uid"], cancelled["uid"], rejected["uid"]])
    everything = http.get("/v2/bookings").json()["data"]
    assert len(everything) == 5  # no status: no status filter
    assert {b["status"] for b in everything} == {"accepted", "pending", "cancelled", "rejected"}
    clock.advance(days=2)  # the upcoming one is now in the past
    assert set(uids("past")) == {past["uid"], upcoming["uid"]}


def test_other_filters_and_sorts(srv, http):
    a = srv.create_booking(start="2026-11-21T10:00:00Z", attendee_email="x+y@example.com",
                           attendee_name="Xena Y")
    b = srv.create_booking(start="2026-11-22T10:00:00Z", event_type_id=2002,
                           event_type_slug="colour", duration=90)
    c = srv.create_booking(start="2026-11-23T10:00:00Z")

    def uids(**params: Any) -> list[str]:
        resp = http.get("/v2/bookings", params=params)
        assert resp.status_code == 200, resp.text
        return [x["uid"] for x in resp.json()["data"]]

    # an unencoded "+" arrives as a space; Cal.com turns inner whitespace back into "+"
    assert uids(attendeeEmail="x y@example.com") == [a["uid"]]
    assert uids(attendeeEmail="x+y@example.com") == [a["uid"]]
    assert uids(attendeeName="Xena Y") == [a["uid"]]
    assert uids(bookingUid=c["uid"]) == [c["uid"]]
    assert uids(eventTypeId=2002) == [b["uid"]]
    assert uids(eventTypeIds="1001,2002", sortStart="desc") == [c["uid"], b["uid"], a["uid"]]
    assert uids(afterStart="2026-11-22T10:00:00Z") == [b["uid"], c["uid"]]
    assert uids(beforeEnd="2026-11-22T11:30:00Z") == [a["uid"], b["uid"]]
    assert uids(sortEnd="desc") == [c["uid"], b["uid"], a["uid"]]
    assert uids(sortCreated="desc", sortStart="asc") == [a["uid"], b["uid"], c["uid"]]  # start wins
    assert http.get("/v2/bookings", params={"bookingUid": b["uid"]}).json()["data"][0]["duration"] == 90
    body = assert_error(http.get("/v2/bookings", params={"eventTypeIds": "999"}), 400, "TRPCError",
                        "Bad request: Please check your request data and try again")
    assert "details" not in body["error"]


# -- versions and auth ----------------------------------------------------------------------------

def test_missing_api_version_falls_back_to_the_legacy_handler(srv, http):
    for i in range(12):
        srv.create_booking(start=T0 + timedelta(days=1, hours=i))
    resp = http.get("/v2/bookings", params={"take": 250, "afterUpdatedAt": "2030-01-01T00:00:00Z"},
                    headers={"cal-api-version": ""})
    assert resp.status_code == 200
    body = resp.json()
    assert body["status"] == "success" and "pagination" not in body
    data = body["data"]
    assert set(data) == {"bookings", "recurringInfo", "totalCount", "nextCursor"}
    assert len(data["bookings"]) == 10 and data["totalCount"] == 12 and data["nextCursor"] == 10
    entry = data["bookings"][0]
    assert entry["status"] == "ACCEPTED" and "startTime" in entry and "start" not in entry
    nxt = http.get("/v2/bookings", params={"cursor": 10}, headers={"cal-api-version": "2024-04-15"})
    assert len(nxt.json()["data"]["bookings"]) == 2 and nxt.json()["data"]["nextCursor"] is None

    uid = entry["uid"]
    legacy_get = httpx.get(f"{srv.url}/v2/bookings/{uid}")  # the legacy get has no guards
    assert legacy_get.status_code == 200 and legacy_get.json()["data"]["startTime"]
    assert_error(httpx.get(f"{srv.url}/v2/bookings/nope"), 404, "NotFoundException",
                 "Booking with UID=nope does not exist.")
    assert_error(http.get("/v2/bookings", headers={"cal-api-version": "2024-09-04"}), 404,
                 "NotFoundException", "Cannot GET /v2/bookings")


def test_auth(srv, http):
    made = srv.create_booking()
    url = f"{srv.url}/v2/bookings"
    version = {"cal-api-version": "2024-08-13"}

    bad = assert_error(httpx.get(url, headers={**version, "Authorization": "Bearer cal_live_nope"}),
                       401, "UnauthorizedException",
                       "ApiAuthStrategy - api key - Your api key is not valid")
    assert bad["path"] == "/v2/bookings"
    assert bad["error"]["details"] == {"message": "ApiAuthStrategy - api key - Your api key is not valid",
                                       "error": "Unauthorized", "statusCode": 401}
    assert_error(httpx.get(url, headers=version), 403, "ForbiddenException",
                 "PermissionsGuard - no authentication provided. Provide either authorization bearer "
                 "token containing managed user access token or oAuth client id in 'x-cal-client-id' "
                 "header.")
    assert_error(httpx.get(url, headers={**version, "Authorization": "Bearer junk"}), 403,
                 "ForbiddenException", "PermissionsGuard - no oAuth client found for access token=junk")

    key = srv.add_api_key("cal_test_0123456789abcdef")
    ok = httpx.get(url, headers={**version, "Authorization": f"Bearer {key}"})
    assert ok.status_code == 200 and ok.json()["data"][0]["uid"] == made["uid"]
    with pytest.raises(ValueError):
        srv.add_api_key("sk_live_123")

    one = f"{url}/{made['uid']}"
    assert httpx.get(one, headers=version).status_code == 200  # OptionalApiAuthGuard
    assert_error(httpx.get(one, headers={**version, "Authorization": "Bearer cal_live_nope"}), 401,
                 "UnauthorizedException")
    assert_error(httpx.get(one, headers={**version, "Authorization": "Bearer junk"}), 401,
                 "UnauthorizedException", "ApiAuthStrategy - access token - Invalid Access Token.")

    srv.reset()
    assert httpx.get(url, headers={**version, "Authorization": f"Bearer {key}"}).status_code == 401


def test_unknown_routes_and_methods_answer_nest_404(http):
    assert_error(http.get("/v2/slots"), 404, "NotFoundException", "Cannot GET /v2/slots")
    assert_error(http.delete("/v2/bookings/abc"), 404, "NotFoundException",
                 "Cannot DELETE /v2/bookings/abc")


# -- reschedule, cancel, no-show ------------------------------------------------------------------

def test_reschedule_links_both_bookings(srv, http, clock):
    old = srv.create_booking(start="2026-11-24T09:00:00Z")
    clock.advance(hours=2)
    new = srv.reschedule(old["uid"], "2026-11-25T14:00:00Z", by_email="jamie@example.com",
                         reason="clash")
    assert new["uid"] != old["uid"] and new["id"] == old["id"] + 1
    assert (new["start"], new["end"]) == ("2026-11-25T14:00:00.000Z", "2026-11-25T14:45:00.000Z")
    assert new["rescheduledFromUid"] == old["uid"] and new["status"] == "accepted"
    assert new["reschedulingReason"] == "clash"
    assert new["icsUid"] == old["icsUid"]

    old_now = http.get(f"/v2/bookings/{old['uid']}").json()["data"]
    assert old_now["status"] == "cancelled"
    assert old_now["rescheduledToUid"] == new["uid"]
    assert old_now["rescheduledByEmail"] == "jamie@example.com"
    assert old_now["updatedAt"] == new["updatedAt"] == new["createdAt"] == "2026-11-20T10:00:00.000Z"
    assert http.get(f"/v2/bookings/{new['uid']}").json()["data"]["rescheduledByEmail"] == "jamie@example.com"
    with pytest.raises(ValueError, match="rescheduled already"):
        srv.reschedule(old["uid"], "2026-11-26T09:00:00Z")
    assert srv.booking_count() == 2 and srv.booking_count("cancelled") == 1


def test_cancel_and_request_reschedule(srv):
    a = srv.create_booking()
    b = srv.create_booking()
    out = srv.cancel(a["uid"], "client ill", by_email="jamie@example.com")
    assert (out["status"], out["cancellationReason"], out["cancelledByEmail"]) == (
        "cancelled", "client ill", "jamie@example.com")
    with pytest.raises(ValueError):
        srv.cancel(a["uid"])
    asked = srv.cancel(b["uid"], "stylist off sick", request_reschedule=True)
    assert asked["status"] == "cancelled" and "rescheduledToUid" not in asked
    assert asked["cancelledByEmail"] == "alex@salon.example"


def test_no_show_and_meeting_end(srv):
    b = srv.create_booking()
    marked = srv.mark_no_show(b["uid"], ["jamie@example.com"])
    assert marked["attendees"][0]["absent"] is True and marked["absentHost"] is False
    assert marked["updatedAt"] == b["updatedAt"]
    assert srv.end_meeting(b["uid"])["status"] == "accepted"
    with pytest.raises(KeyError):
        srv.end_meeting("nope")


# -- webhooks -------------------------------------------------------------------------------------

def test_webhook_payload_booking_created(srv, clock):
    b = srv.create_booking(start="2026-11-24T09:00:00Z", metadata={"k": "v"})
    clock.advance(seconds=1.5)
    body = srv.webhook_payload("BOOKING_CREATED", b["uid"])
    assert set(body) == {"triggerEvent", "createdAt", "payload"}
    assert body["triggerEvent"] == "BOOKING_CREATED" and body["createdAt"] == "2026-11-20T08:00:01.500Z"
    p = body["payload"]
    assert p["status"] == "ACCEPTED" and p["uid"] == b["uid"] and p["bookingId"] == b["id"]
    assert (p["startTime"], p["endTime"]) == ("2026-11-24T09:00:00Z", "2026-11-24T09:45:00Z")
    assert p["type"] == "haircut" and p["eventTypeId"] == 1001 and p["length"] == 45
    assert p["organizer"]["email"] == "alex@salon.example" and p["organizer"]["utcOffset"] == 0
    assert p["attendees"][0]["email"] == "jamie@example.com"
    assert p["attendees"][0]["language"] == {"locale": "en"}
    assert p["responses"]["email"]["value"] == "jamie@example.com"
    assert p["metadata"] == {"k": "v"} and p["iCalUID"] == b["icsUid"]
    assert srv.webhook_payload("BOOKING_REQUESTED", b["uid"])["payload"]["status"] == "PENDING"
    with pytest.raises(ValueError):
        srv.webhook_payload("BOOKING_CONFIRMED", b["uid"])  # no such trigger in Cal.com


def test_webhook_payload_rescheduled(srv):
    old = srv.create_booking(start="2026-11-24T09:00:00Z")
    new = srv.reschedule(old["uid"], "2026-11-25T14:00:00Z", by_email="jamie@example.com")
    p = srv.webhook_payload("BOOKING_RESCHEDULED", new["uid"])["payload"]
    assert p["status"] == "ACCEPTED"
    assert p["uid"] == new["uid"] and p["bookingId"] == new["id"]
    assert p["rescheduleUid"] == old["uid"] and p["rescheduleId"] == old["id"]
    assert (p["rescheduleStartTime"], p["rescheduleEndTime"]) == ("2026-11-24T09:00:00Z",
                                                                  "2026-11-24T09:45:00Z")
    assert p["rescheduledBy"] == "jamie@example.com"
    assert p["iCalSequence"] == 1 and p["iCalUID"] == old["icsUid"]
    with pytest.raises(ValueError):
        srv.webhook_payload("BOOKING_RESCHEDULED", old["uid"])


def test_webhook_payload_cancelled(srv):
    a = srv.create_booking()
    srv.cancel(a["uid"], "client ill", by_email="jamie@example.com")
    p = srv.webhook_payload("BOOKING_CANCELLED", a["uid"])["payload"]
    assert p["status"] == "CANCELLED" and p["requestReschedule"] is False
    assert p["cancellationReason"] == "client ill" and p["cancelledBy"] == "jamie@example.com"

    b = srv.create_booking()
    srv.cancel(b["uid"], "stylist off sick", request_reschedule=True)
    p = srv.webhook_payload("BOOKING_CANCELLED", b["uid"])["payload"]
    assert p["requestReschedule"] is True and p["status"] == "CANCELLED"
    assert "rescheduleUid" not in p
    overridden = srv.webhook_payload("BOOKING_CANCELLED", a["uid"], cancellationReason="x")
    assert overridden["payload"]["cancellationReason"] == "x"


def test_webhook_payload_meeting_ended_is_flat(srv):
    b = srv.create_booking()
    srv.end_meeting(b["uid"])
    body = srv.webhook_payload("MEETING_ENDED", b["uid"])
    assert "payload" not in body
    assert body["triggerEvent"] == "MEETING_ENDED"
    assert body["uid"] == b["uid"] and body["id"] == b["id"] and body["status"] == "ACCEPTED"
    assert body["startTime"] == b["start"] and body["createdAt"] == b["createdAt"]
    assert body["attendees"][0]["noShow"] is False and body["user"]["email"] == "alex@salon.example"
    wrapped = srv.webhook_payload("MEETING_ENDED", b["uid"], meeting_envelope=True)
    assert wrapped["payload"]["uid"] == b["uid"] and set(wrapped) == {"triggerEvent", "createdAt", "payload"}


def test_webhook_payload_no_show_updated(srv):
    b = srv.create_booking()
    srv.mark_no_show(b["uid"], ["jamie@example.com"])
    p = srv.webhook_payload("BOOKING_NO_SHOW_UPDATED", b["uid"])["payload"]
    assert p == {"bookingUid": b["uid"], "bookingId": b["id"],
                 "attendees": [{"email": "jamie@example.com", "noShow": True}],
                 "message": "jamie@example.com marked as no-show"}


def test_sign_known_answer():
    body = b'{"triggerEvent":"BOOKING_CREATED","payload":{"uid":"abc"}}'
    expected = hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert CalcomSandbox.sign(body, "s3cret") == expected
    assert CalcomSandbox.sign(body, "s3cret") != CalcomSandbox.sign(body + b" ", "s3cret")
    assert re.fullmatch(r"[0-9a-f]{64}", expected)


class Receiver(SandboxServer):
    """A subscriber endpoint that keeps what it received, byte for byte."""

    name = "receiver"

    def reset_state(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []

    @route("POST", "/hook")
    def hook(self, request: Request) -> Response:
        self.received.append((dict(request.headers), request.body))
        return Response(200, {"ok": True})


def test_deliver_posts_a_signed_body(srv):
    b = srv.create_booking(attendee_name="Zoë Ünal")
    with Receiver() as receiver:
        resp = srv.deliver(receiver.url + "/hook", "BOOKING_CREATED", b["uid"], "whsec")
        assert resp.status_code == 200
        headers, raw = receiver.received[-1]
        assert headers["content-type"] == "application/json"
        assert headers["x-cal-webhook-version"] == "2021-10-20"
        expected = hmac.new(b"whsec", raw, hashlib.sha256).hexdigest()
        assert headers["x-cal-signature-256"] == expected
        body = json.loads(raw)
        assert body["triggerEvent"] == "BOOKING_CREATED" and body["payload"]["uid"] == b["uid"]
        assert body["payload"]["attendees"][0]["name"] == "Zoë Ünal"
        assert b" " not in raw.split(b'"title"')[0]  # compact JSON.stringify separators

        srv.deliver(receiver.url + "/hook", "MEETING_ENDED", b["uid"], None)
        headers, raw = receiver.received[-1]
        assert headers["x-cal-signature-256"] == "no-secret-provided"
        assert json.loads(raw)["triggerEvent"] == "MEETING_ENDED"
        assert [d["status"] for d in srv.deliveries] == [200, 200]
        assert srv.deliveries[0]["body"] == receiver.received[0][1]


def test_deliver_does_not_follow_redirects(srv):
    class Redirector(SandboxServer):
        name = "redirector"

        @route("POST", "/hook")
        def hook(self, request: Request) -> Response:
            return Response(307, b"", {"Location": "/elsewhere"})

    b = srv.create_booking()
    with Redirector() as server:
        assert srv.deliver(server.url + "/hook", "BOOKING_CREATED", b["uid"], "s").status_code == 307


# -- faults and recording -------------------------------------------------------------------------

def test_faults_answer_in_calcom_shape(srv, http):
    srv.create_booking()
    ok = http.post("/_sandbox/faults", json={"fail_rate": 1.0, "fail_statuses": [503], "seed": 1})
    assert ok.status_code == 200
    assert_error(http.get("/v2/bookings"), 503, "ServiceUnavailableException")

    http.post("/_sandbox/faults", json={"rate_limit_per_s": 1})
    statuses = [http.get("/v2/bookings").status_code for _ in range(3)]
    assert statuses[0] == 200 and 429 in statuses
    limited = http.get("/v2/bookings")
    body = assert_error(limited, 429, "ThrottlerException")
    assert int(limited.headers["Retry-After"]) >= 1
    assert body["error"]["details"] == body["error"]["message"]

    http.post("/_sandbox/faults", json={"fail_after_n": 1})
    assert http.get("/v2/bookings").status_code == 200
    assert_error(http.get("/v2/bookings"), 500, "InternalServerErrorException")

    http.post("/_sandbox/faults", json={})
    assert http.get("/v2/bookings").status_code == 200
    recorded = http.get("/_sandbox/requests").json()["requests"]
    assert recorded[-1]["path"] == "/v2/bookings" and recorded[-1]["status"] == 200
    assert srv.count("GET", "/v2/bookings") == len(recorded)


def test_reset_over_http_forgets_bookings(srv, http):
    srv.create_booking()
    assert http.post("/_sandbox/reset").json() == {"ok": True}
    assert srv.booking_count() == 0 and srv.requests == []


def test_concurrent_reads_while_writing(srv):
    stop = threading.Event()

    def writer() -> None:
        for _ in range(3000):
            if stop.is_set():
                return
            srv.create_booking()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        with httpx.Client(base_url=srv.url, headers=V2) as client:
            for _ in range(10):
                assert client.get("/v2/bookings", params={"take": 250}).status_code == 200
    finally:
        stop.set()
        thread.join()
