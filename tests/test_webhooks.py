"""bsync.platforms.calcom, .sesami and bsync.ledger.notion_webhook: signature checks and payload parsing, pure (no HTTP).

Payloads follow the documented shapes: Cal.com webhooks v2021-10-20 (docs/developing/guides/
automation/webhooks.mdx; MEETING_* bodies are the flat booking row scheduleTrigger.ts
stringifies), Notion's webhook reference (handshake, X-Notion-Signature, event shape), and
bsync's own Sesami relay contract.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bsync.errors import BsyncError, ConfigError
from bsync.core.model import Status
from bsync.core.timeutil import UTC
from bsync.ledger.notion_webhook import notion_verification_token, parse_notion, verify_notion
from bsync.platforms.calcom import CALCOM_STATUS, calcom_status, parse_calcom, verify_calcom
from bsync.platforms.intake import (
    MAX_BODY,
    MalformedError,
    ReplayError,
    SignatureError,
    TooLargeError,
    UnsupportedError,
    WebhookError,
    check_size,
)
from bsync.platforms.sesami import parse_sesami, sesami_status, verify_sesami

NOW = datetime(2026, 3, 28, 12, 0, 5, tzinfo=UTC)
WINDOW = timedelta(minutes=10)
SECRET = "whsec-test-1234"


def sign(body: bytes, secret: str = SECRET) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def raw(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


# --------------------------------------------------------------------------- Cal.com fixtures


def calcom_payload(**over: Any) -> dict[str, Any]:
    p: dict[str, Any] = {
        "bookerUrl": "https://app.cal.com",
        "title": "Cut & colour between Salon Jo and Ann Lee",
        "startTime": "2026-03-29T09:00:00Z",
        "endTime": "2026-03-29T10:30:00Z",
        "additionalNotes": "Allergic to ammonia",
        "type": "cut-colour",
        "description": "Allergic to ammonia",
        "eventTypeId": 7,
        "organizer": {"id": 1, "name": "Jo Stylist", "email": "jo@salon.example", "username": "jo",
                      "timeZone": "Europe/London", "language": {"locale": "en"}, "timeFormat": "h:mma",
                      "utcOffset": 0},
        "attendees": [
            {"email": "ann@example.com", "name": "Ann Lee", "firstName": "Ann", "lastName": "Lee",
             "timeZone": "Europe/Paris", "phoneNumber": "+447700900123", "language": {"locale": "en"},
             "utcOffset": 60},
            {"email": "guest@example.com", "name": "Guest", "timeZone": "UTC", "language": {"locale": "en"}},
        ],
        "responses": {"name": {"label": "your_name", "value": "Ann Lee", "isHidden": False},
                      "email": {"label": "email_address", "value": "ann@example.com", "isHidden": False}},
        "location": "12 High Street",
        "iCalUID": "abc@cal.com",
        "iCalSequence": 0,
        "uid": "bk-new-1",
        "eventTitle": "Cut & colour",
        "eventDescription": "",
        "price": 0,
        "currency": "gbp",
        "length": 90,
        "bookingId": 91,
        "metadata": {"videoCallUrl": "https://cal.com/video/x", "client_id": "C-17", "pet_id": 4},
        "status": "ACCEPTED",
    }
    p.update(over)
    return p


def calcom_body(trigger: str, payload: dict[str, Any] | None = None,
                created: str = "2026-03-28T12:00:00.000Z") -> bytes:
    return raw({"triggerEvent": trigger, "createdAt": created,
                "payload": calcom_payload() if payload is None else payload})


def meeting_body(trigger: str, **over: Any) -> bytes:
    """The flat MEETING_STARTED/ENDED body: the booking row, no payload wrapper."""
    row: dict[str, Any] = {
        "triggerEvent": trigger, "id": 91, "uid": "bk-new-1", "idempotencyKey": "0000-1111",
        "userId": 1, "userPrimaryEmail": "jo@salon.example", "eventTypeId": 7,
        "title": "Cut & colour between Salon Jo and Ann Lee", "description": "Allergic to ammonia",
        "customInputs": {}, "responses": {"name": {"label": "your_name", "value": "Ann Lee"}},
        "startTime": "2026-03-28T10:30:00.000Z", "endTime": "2026-03-28T12:00:00.000Z",
        "location": "12 High Street",
        "createdAt": "2026-03-01T09:45:00.000Z",  # when the booking was made, weeks ago
        "updatedAt": "2026-03-28T12:00:01.000Z",
        "status": "ACCEPTED", "paid": False, "rescheduled": None, "fromReschedule": None,
        "metadata": {"client_id": "C-17"}, "iCalUID": "abc@cal.com", "iCalSequence": 0, "noShowHost": False,
        "user": {"email": "jo@salon.example", "name": "Jo Stylist", "timeZone": "Europe/London",
                 "username": "jo"},
        "attendees": [{"id": 101, "email": "ann@example.com", "name": "Ann Lee", "timeZone": "Europe/Paris",
                       "phoneNumber": None, "locale": "en", "bookingId": 91, "noShow": False}],
        "payment": [], "references": [],
    }
    row.update(over)
    return raw(row)


def parse(body: bytes, **kw: Any):
    kw.setdefault("replay_window", WINDOW)
    kw.setdefault("link_metadata", ["client_id", "pet_id"])
    kw.setdefault("default_timezone", "America/New_York")
    return parse_calcom(body, kw.pop("now", NOW), **kw)


# --------------------------------------------------------------------------- size, errors


def test_errors_are_bsync_errors_with_http_statuses():
    assert [e.http_status for e in (SignatureError, MalformedError, TooLargeError, ReplayError,
                                    UnsupportedError)] == [401, 400, 413, 409, 200]
    err = MalformedError("x is missing")
    assert isinstance(err, BsyncError) and err.reason == "x is missing"


def test_check_size_allows_exactly_max_and_rejects_one_more():
    check_size(b"x" * MAX_BODY)
    with pytest.raises(TooLargeError, match=str(MAX_BODY + 1)):
        check_size(b"x" * (MAX_BODY + 1))


def test_oversize_is_rejected_by_verify_and_parse():
    big = b"{" + b" " * MAX_BODY + b"}"
    with pytest.raises(TooLargeError):
        verify_calcom(big, sign(big), SECRET)
    with pytest.raises(TooLargeError):
        parse(big)
    with pytest.raises(TooLargeError):
        parse_notion(big, NOW, replay_window=WINDOW)
    with pytest.raises(TooLargeError):
        parse_sesami(big, NOW, replay_window=WINDOW, default_timezone="UTC")


# --------------------------------------------------------------------------- Cal.com signatures


def test_calcom_valid_signature_passes_and_case_of_hex_does_not_matter():
    body = calcom_body("BOOKING_CREATED")
    verify_calcom(body, sign(body), SECRET)
    verify_calcom(body, sign(body).upper(), SECRET)
    verify_calcom(body, f" {sign(body)}\t", SECRET)


@pytest.mark.parametrize("header, match", [
    (None, "missing X-Cal-Signature-256"),
    ("", "missing X-Cal-Signature-256"),
    ("no-secret-provided", "no secret"),
    ("abc123", "64-digit hex"),
    ("z" * 64, "64-digit hex"),
    ("é" * 64, "64-digit hex"),
    ("0" * 64, "does not match"),
])
def test_calcom_bad_headers(header, match):
    with pytest.raises(SignatureError, match=match):
        verify_calcom(calcom_body("BOOKING_CREATED"), header, SECRET)


def test_calcom_wrong_secret_and_altered_body():
    body = calcom_body("BOOKING_CREATED")
    with pytest.raises(SignatureError, match="does not match"):
        verify_calcom(body, sign(body, "another-secret"), SECRET)
    tampered = body.replace(b"bk-new-1", b"bk-new-2")
    assert len(tampered) == len(body) and sum(a != b for a, b in zip(body, tampered)) == 1
    with pytest.raises(SignatureError, match="does not match"):
        verify_calcom(tampered, sign(body), SECRET)
    with pytest.raises(SignatureError):
        verify_calcom(body + b" ", sign(body), SECRET)


@pytest.mark.parametrize("secret", [None, ""])
def test_calcom_without_configured_secret_refuses_everything(secret):
    body = calcom_body("BOOKING_CREATED")
    with pytest.raises(SignatureError, match="no Cal.com webhook secret is configured") as info:
        verify_calcom(body, sign(body), secret)
    assert info.value.hint


def test_signature_reasons_never_contain_secret_or_signatures():
    body = calcom_body("BOOKING_CREATED")
    good, forged = sign(body), sign(body, "x")
    for header in (forged, "nope", None, "no-secret-provided", good[:-1] + ("1" if good.endswith("0") else "0")):
        with pytest.raises(SignatureError) as info:
            verify_calcom(body, header, SECRET)
        text = f"{info.value.reason} {info.value.hint or ''}".lower()
        assert SECRET.lower() not in text and good not in text and forged not in text


# --------------------------------------------------------------------------- Cal.com parsing


def test_booking_created_maps_to_canonical_booking():
    d = parse(calcom_body("BOOKING_CREATED"))
    assert (d.trigger, d.uid, d.actionable, d.previous_uid, d.request_reschedule, d.no_show) == (
        "BOOKING_CREATED", "bk-new-1", True, None, False, None)
    assert d.delivery_id == "BOOKING_CREATED:bk-new-1:2026-03-28T12:00:00.000Z"
    assert d.created_at == datetime(2026, 3, 28, 12, 0, tzinfo=UTC)
    b = d.booking
    assert b is not None
    assert b.key == "calcom:bk-new-1" and b.source == "calcom"
    assert b.title == "Cut & colour between Salon Jo and Ann Lee"
    assert b.status is Status.SCHEDULED
    assert b.timezone == "Europe/London"  # organizer first
    assert (b.customer.name, b.customer.email, b.customer.phone) == ("Ann Lee", "ann@example.com", "+447700900123")
    assert b.service == "Cut & colour" and b.service_duration == 90
    assert b.staff == "Jo Stylist"
    assert b.notes == "Allergic to ammonia"
    assert b.location == "12 High Street"
    assert b.links == {"client_id": "C-17", "pet_id": "4"}
    assert b.updated_at == d.created_at


def test_dst_start_end_with_non_utc_organizer_timezone():
    # Europe/London springs forward at 01:00 UTC on 2026-03-29: the local wall time of a
    # 09:00Z booking is 09:00 GMT the day before and 10:00 BST that day.
    before = parse(calcom_body("BOOKING_CREATED", calcom_payload(
        startTime="2026-03-28T09:00:00Z", endTime="2026-03-28T10:30:00Z"))).booking
    after = parse(calcom_body("BOOKING_CREATED", calcom_payload(
        startTime="2026-03-29T10:00:00+01:00", endTime="2026-03-29T11:30:00+01:00"))).booking
    london = ZoneInfo("Europe/London")
    assert before.start == datetime(2026, 3, 28, 9, 0, tzinfo=UTC) and before.start.utcoffset() == timedelta(0)
    assert after.start == datetime(2026, 3, 29, 9, 0, tzinfo=UTC) and after.end == datetime(2026, 3, 29, 10, 30, tzinfo=UTC)
    assert before.start.astimezone(london).hour == 9 and after.start.astimezone(london).hour == 10
    assert after.start.astimezone(after.tz).utcoffset() == timedelta(hours=1)
    assert after.end - after.start == timedelta(minutes=90)
    # a booking spanning the switch keeps its real length (90 min), not its wall-clock span
    across = parse(calcom_body("BOOKING_CREATED", calcom_payload(
        startTime="2026-03-29T00:30:00Z", endTime="2026-03-29T02:00:00Z"))).booking
    assert across.end - across.start == timedelta(minutes=90)
    assert across.start.astimezone(london).strftime("%H:%M") == "00:30"
    assert across.end.astimezone(london).strftime("%H:%M") == "03:00"


def test_timezone_falls_back_to_attendee_then_default():
    p = calcom_payload()
    del p["organizer"]["timeZone"]
    assert parse(calcom_body("BOOKING_CREATED", p)).booking.timezone == "Europe/Paris"
    p["attendees"] = []
    b = parse(calcom_body("BOOKING_CREATED", p)).booking
    assert b.timezone == "America/New_York" and b.customer.name == "Ann Lee"  # name from responses
    with pytest.raises(MalformedError, match="Mars/Base"):
        parse(calcom_body("BOOKING_CREATED", calcom_payload(organizer={"name": "Jo", "timeZone": "Mars/Base"})))
    for bad in ("Europe", "A" * 5000):  # a zoneinfo directory; a name too long for the filesystem
        with pytest.raises(MalformedError, match="IANA timezone"):
            parse(calcom_body("BOOKING_CREATED", calcom_payload(organizer={"name": "Jo", "timeZone": bad})))
    with pytest.raises(ConfigError, match="Nowhere/Land"):
        parse(calcom_body("BOOKING_CREATED"), default_timezone="Nowhere/Land")


def test_booking_rescheduled_links_previous_uid():
    p = calcom_payload(uid="bk-new-2", rescheduleId=91, rescheduleUid="bk-old-1",
                       rescheduleStartTime="2026-03-27T09:00:00Z", rescheduleEndTime="2026-03-27T10:30:00Z",
                       rescheduledBy="ann@example.com")
    d = parse(calcom_body("BOOKING_RESCHEDULED", p))
    assert (d.uid, d.previous_uid) == ("bk-new-2", "bk-old-1")
    assert d.booking.key == "calcom:bk-new-2" and d.booking.status is Status.SCHEDULED
    assert d.booking.start == datetime(2026, 3, 29, 9, tzinfo=UTC)


def test_booking_cancelled_with_request_reschedule():
    p = calcom_payload(status="CANCELLED", cancellationReason="Host asked to move it",
                       cancelledBy="jo@salon.example", requestReschedule=True)
    d = parse(calcom_body("BOOKING_CANCELLED", p))
    assert d.request_reschedule is True and d.booking.status is Status.CANCELLED and d.previous_uid is None
    plain = parse(calcom_body("BOOKING_CANCELLED", calcom_payload(status="CANCELLED", requestReschedule=False)))
    assert plain.request_reschedule is False and plain.booking.status is Status.CANCELLED
    # the trigger decides even if the status field lags behind
    assert parse(calcom_body("BOOKING_CANCELLED", calcom_payload(status="ACCEPTED"))).booking.status is Status.CANCELLED
    with pytest.raises(MalformedError, match="requestReschedule"):
        parse(calcom_body("BOOKING_CANCELLED", calcom_payload(status="CANCELLED", requestReschedule="yes")))


def test_requested_and_rejected():
    assert parse(calcom_body("BOOKING_REQUESTED", calcom_payload(status="PENDING"))).booking.status is Status.SCHEDULED
    assert parse(calcom_body("BOOKING_REJECTED", calcom_payload(status="REJECTED"))).booking.status is Status.CANCELLED


def test_meeting_ended_flat_shape_is_completed_and_checked_against_end_time():
    d = parse(meeting_body("MEETING_ENDED"))
    assert d.uid == "bk-new-1" and d.actionable
    # createdAt of the flat body is the booking's (weeks old): not a replay
    assert d.delivery_id == "MEETING_ENDED:bk-new-1:2026-03-01T09:45:00.000Z"
    b = d.booking
    assert b.status is Status.COMPLETED
    assert b.staff == "Jo Stylist" and b.timezone == "Europe/London"  # from "user" in the flat row
    assert b.customer.email == "ann@example.com" and b.links == {"client_id": "C-17"}
    assert b.updated_at == datetime(2026, 3, 28, 12, 0, 1, tzinfo=UTC)
    # the scheduled moment (endTime) is what must be fresh
    with pytest.raises(ReplayError, match="MEETING_ENDED endTime"):
        parse(meeting_body("MEETING_ENDED", startTime="2026-03-20T10:00:00Z", endTime="2026-03-20T11:00:00Z"))


def test_meeting_started_flat_shape_is_in_progress():
    d = parse(meeting_body("MEETING_STARTED", startTime="2026-03-28T12:00:00Z", endTime="2026-03-28T13:30:00Z"))
    assert d.booking.status is Status.IN_PROGRESS


def test_no_show_updated_carries_uid_and_flag_but_no_booking():
    body = calcom_body("BOOKING_NO_SHOW_UPDATED", {
        "message": "ann@example.com marked as no-show",
        "attendees": [{"email": "ann@example.com", "noShow": True}],
        "bookingUid": "bk-new-1", "bookingId": 91})
    d = parse(body)
    assert (d.uid, d.booking, d.no_show, d.actionable) == ("bk-new-1", None, True, True)
    assert d.delivery_id.startswith("BOOKING_NO_SHOW_UPDATED:bk-new-1:")
    unmarked = parse(calcom_body("BOOKING_NO_SHOW_UPDATED", {
        "attendees": [{"email": "ann@example.com", "noShow": False}], "bookingUid": "bk-new-1"}))
    assert unmarked.no_show is False
    with pytest.raises(MalformedError, match=r"attendees\[0\].noShow"):
        parse(calcom_body("BOOKING_NO_SHOW_UPDATED", {"attendees": [{"email": "a@b.co"}], "bookingUid": "x"}))


@pytest.mark.parametrize("trigger, payload, uid", [
    ("BOOKING_PAID", calcom_payload(paymentId=500), "bk-new-1"),
    ("RECORDING_READY", {"uid": "bk-new-1", "downloadLink": "https://app.cal.com/rec"}, "bk-new-1"),
    ("AFTER_GUESTS_CAL_VIDEO_NO_SHOW", {"bookingUid": "bk-9", "attendees": []}, "bk-9"),
    ("FORM_SUBMITTED", {"formId": "f-1", "responses": {}}, None),
    ("OOO_CREATED", {"oooEntry": {"id": 1}}, None),
    ("PING", {"type": "Test", "title": "Test trigger event"}, None),
])
def test_documented_but_unhandled_triggers_parse_as_not_actionable(trigger, payload, uid):
    d = parse(calcom_body(trigger, payload))
    assert (d.trigger, d.uid, d.booking, d.actionable) == (trigger, uid, None, False)
    assert d.delivery_id == f"{trigger}:{uid or '-'}:2026-03-28T12:00:00.000Z"


def test_unknown_trigger_is_unsupported():
    with pytest.raises(UnsupportedError, match="BOOKING_TELEPORTED"):
        parse(calcom_body("BOOKING_TELEPORTED"))


def test_calcom_replay_and_future_skew():
    parse(calcom_body("BOOKING_CREATED", created="2026-03-28T11:50:06Z"))  # just inside 10 min
    with pytest.raises(ReplayError, match=r"createdAt .* 2h .* old, outside the 10m replay window"):
        parse(calcom_body("BOOKING_CREATED", created="2026-03-28T10:00:00Z"))
    parse(calcom_body("BOOKING_CREATED", created="2026-03-28T12:04:00Z"))  # clock skew tolerated
    with pytest.raises(ReplayError, match="in the future"):
        parse(calcom_body("BOOKING_CREATED", created="2026-03-28T12:30:00Z"))
    with pytest.raises(ReplayError):
        parse(calcom_body("BOOKING_CREATED", created="2026-03-28T12:01:00Z"), max_skew=timedelta(0))


@pytest.mark.parametrize("body, match", [
    (b"{not json", "not valid JSON"),
    (b"", "not valid JSON"),
    (b"\xff\xfe{}", "not UTF-8"),
    (b"[1, 2]", "must be a JSON object"),
    (b'{"triggerEvent": "BOOKING_CREATED", "createdAt": NaN}', "NaN"),
    (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    (raw({"createdAt": "2026-03-28T12:00:00Z", "payload": {}}), "triggerEvent is missing"),
    (raw({"triggerEvent": "BOOKING_CREATED", "payload": calcom_payload()}), "createdAt is missing"),
    (raw({"triggerEvent": "BOOKING_CREATED", "createdAt": "yesterday", "payload": {}}), "createdAt is not an ISO"),
    (raw({"triggerEvent": "BOOKING_CREATED", "createdAt": "2026-03-28T12:00:00", "payload": {}}), "no UTC offset"),
    (raw({"triggerEvent": "BOOKING_CREATED", "createdAt": "2026-03-28T12:00:00Z"}), "payload is missing"),
    (raw({"triggerEvent": "BOOKING_CREATED", "createdAt": "2026-03-28T12:00:00Z", "payload": [1]}),
     "payload must be an object"),
    (calcom_body("BOOKING_CREATED", calcom_payload(uid="")), "payload.uid is missing"),
    (calcom_body("BOOKING_CREATED", calcom_payload(title=None, eventTitle=None)), "payload.title"),
    (calcom_body("BOOKING_CREATED", calcom_payload(startTime=None)), "payload.startTime"),
    (calcom_body("BOOKING_CREATED", calcom_payload(endTime="2026-03-29T08:00:00Z")), "before startTime"),
    (calcom_body("BOOKING_CREATED", calcom_payload(status="TELEPORTED")), "'TELEPORTED'"),
    (calcom_body("BOOKING_CREATED", calcom_payload(title=42)), "payload.title must be a string"),
    (calcom_body("BOOKING_CREATED", calcom_payload(attendees="ann")), "attendees must be a list"),
    (calcom_body("BOOKING_CREATED", calcom_payload(metadata={"client_id": {"x": 1}})), "metadata.client_id"),
    (calcom_body("BOOKING_CREATED", calcom_payload(endTime="2026-03-29T09:00:00Z")),
     "startTime/endTime: suspicious time: zero length"),
    (calcom_body("BOOKING_CREATED", calcom_payload(endTime="2036-03-29T09:00:00Z")),
     "suspicious time: lasts 3653 days"),
    (calcom_body("BOOKING_CREATED", calcom_payload(startTime="1900-03-29T09:00:00Z", endTime="1900-03-29T10:00:00Z")),
     "suspicious time: starts in year 1900"),
])
def test_calcom_malformed(body, match):
    with pytest.raises(MalformedError, match=match):
        parse(body)


def test_metadata_links_only_listed_keys_and_skip_empty():
    d = parse(calcom_body("BOOKING_CREATED", calcom_payload(metadata={"client_id": "", "pet_id": 12, "other": "x"})))
    assert d.booking.links == {"pet_id": "12"}
    assert parse(calcom_body("BOOKING_CREATED"), link_metadata=[]).booking.links == {}
    assert parse(calcom_body("BOOKING_CREATED", calcom_payload(metadata=None))).booking.links == {}


# --------------------------------------------------------------------------- the one status table


@pytest.mark.parametrize("value, expected", [
    ("ACCEPTED", Status.SCHEDULED), ("accepted", Status.SCHEDULED), ("Accepted", Status.SCHEDULED),
    ("PENDING", Status.SCHEDULED), ("pending", Status.SCHEDULED),
    ("CANCELLED", Status.CANCELLED), ("cancelled", Status.CANCELLED),
    ("REJECTED", Status.CANCELLED), ("rejected", Status.CANCELLED),
    ("MEETING_ENDED", Status.COMPLETED), ("meeting ended", Status.COMPLETED),
    ("no-show", Status.NO_SHOW), ("NO_SHOW", Status.NO_SHOW),
])
def test_calcom_status_any_case(value, expected):
    assert calcom_status(value) is expected


def test_calcom_status_unknown_names_value():
    with pytest.raises(MalformedError, match="'teleported'"):
        calcom_status("teleported")
    with pytest.raises(MalformedError):
        calcom_status("")


def test_webhook_uppercase_and_api_lowercase_go_through_the_same_table():
    up = parse(calcom_body("BOOKING_CREATED", calcom_payload(status="PENDING"))).booking.status
    low = parse(calcom_body("BOOKING_CREATED", calcom_payload(status="pending"))).booking.status
    assert up is low is calcom_status("pending") is CALCOM_STATUS["pending"]
    with pytest.raises(TypeError):
        CALCOM_STATUS["pending"] = Status.CANCELLED  # read-only


def test_status_map_overrides_the_table():
    d = parse(calcom_body("BOOKING_REQUESTED", calcom_payload(status="PENDING")), status_map={"PENDING": "cancelled"})
    assert d.booking.status is Status.CANCELLED
    with pytest.raises(ConfigError, match="bogus"):
        parse(calcom_body("BOOKING_CREATED"), status_map={"accepted": "bogus"})


# --------------------------------------------------------------------------- Sesami


def sesami_body(event_type: str = "booking.created", **booking_over: Any) -> bytes:
    booking: dict[str, Any] = {
        "id": "64f1c0ffee",
        "customer": {"name": "Bea Cruz", "email": "bea@example.com", "phone": "+15550100"},
        "service": {"name": "Blow-dry", "duration": 45, "staff_member": "Kim"},
        "appointment_time": "2026-03-29T14:00:00+01:00",
        "status": "confirmed",
        "notes": "Curly hair",
    }
    booking.update(booking_over)
    return raw({"event_type": event_type, "booking": booking, "shop": {"domain": "salon.myshopify.com"},
                "timestamp": "2026-03-28T12:00:00Z"})


def sparse(body: bytes, **kw: Any):
    return parse_sesami(body, kw.pop("now", NOW), replay_window=WINDOW,
                        default_timezone=kw.pop("default_timezone", "Europe/London"), **kw)


def test_sesami_signature():
    body = sesami_body()
    verify_sesami(body, sign(body), SECRET)
    with pytest.raises(SignatureError, match="does not match"):
        verify_sesami(body, sign(body, "other"), SECRET)
    with pytest.raises(SignatureError, match="does not match"):
        verify_sesami(body.replace(b"Kim", b"Kit"), sign(body), SECRET)
    with pytest.raises(SignatureError, match="missing x-sesami-signature"):
        verify_sesami(body, None, SECRET)
    with pytest.raises(SignatureError, match="hex"):
        verify_sesami(body, "sha256=" + sign(body), SECRET)  # bare hex only
    with pytest.raises(SignatureError, match="no Sesami webhook secret"):
        verify_sesami(body, sign(body), None)


def test_sesami_created_maps_to_booking():
    d = sparse(sesami_body())
    assert d.delivery_id == "booking.created:64f1c0ffee:2026-03-28T12:00:00Z"
    assert (d.event_type, d.booking_id, d.shop_domain) == ("booking.created", "64f1c0ffee", "salon.myshopify.com")
    b = d.booking
    assert b.key == "sesami:64f1c0ffee" and b.source == "sesami"
    assert b.start == datetime(2026, 3, 29, 13, 0, tzinfo=UTC)
    assert b.end == datetime(2026, 3, 29, 13, 45, tzinfo=UTC)
    assert b.start.astimezone(b.tz).hour == 14  # BST on 29 March
    assert b.timezone == "Europe/London" and b.status is Status.SCHEDULED
    assert b.title == "Blow-dry — Bea Cruz" and b.service == "Blow-dry" and b.service_duration == 45
    assert (b.customer.name, b.customer.email, b.customer.phone) == ("Bea Cruz", "bea@example.com", "+15550100")
    assert b.staff == "Kim" and b.notes == "Curly hair"


@pytest.mark.parametrize("value, expected", [
    ("confirmed", Status.SCHEDULED), ("pending", Status.SCHEDULED), ("in-progress", Status.IN_PROGRESS),
    ("IN-PROGRESS", Status.IN_PROGRESS), ("completed", Status.COMPLETED), ("cancelled", Status.CANCELLED),
    ("Confirmed", Status.SCHEDULED),
])
def test_sesami_status_table(value, expected):
    assert sesami_status(value) is expected
    assert sparse(sesami_body("booking.updated", status=value)).booking.status is expected


def test_sesami_unknown_status_and_cancel_event():
    with pytest.raises(MalformedError, match="'teleported'"):
        sparse(sesami_body("booking.updated", status="teleported"))
    d = sparse(sesami_body("booking.cancelled", status="confirmed"))
    assert d.booking.status is Status.CANCELLED and d.event_type == "booking.cancelled"
    assert sparse(sesami_body("booking.canceled", status="canceled")).event_type == "booking.cancelled"
    with pytest.raises(UnsupportedError, match="booking.teleported"):
        sparse(sesami_body("booking.teleported"))


def test_sesami_duration_as_numeric_string_and_integer_id():
    d = sparse(sesami_body(id=12345, service={"name": "Trim", "duration": "30"}))
    assert d.booking.key == "sesami:12345" and d.booking.end - d.booking.start == timedelta(minutes=30)
    assert d.booking.staff is None and d.booking.title == "Trim — Bea Cruz"


@pytest.mark.parametrize("over, match", [
    ({"appointment_time": "2026-03-29 14:00"}, "no UTC offset"),
    ({"appointment_time": None}, "booking.appointment_time"),
    ({"service": {"name": "Trim", "duration": 0}}, "duration"),
    ({"service": {"name": "Trim", "duration": 10**9}}, "duration"),
    ({"service": {"name": "Trim", "duration": 30.5}}, "duration"),
    ({"appointment_time": "9999-12-31T23:59:59-01:00"}, "out of range"),
    ({"service": {"name": "Trim"}}, "duration"),
    ({"service": {"duration": 30}}, "booking.service.name"),
    ({"status": None}, "booking.status is missing"),
    ({"id": ""}, "booking.id"),
    ({"appointment_time": "1900-03-29T14:00:00+02:00"},
     "booking.appointment_time: suspicious time: starts in year 1900"),
])
def test_sesami_malformed(over, match):
    with pytest.raises(MalformedError, match=match):
        sparse(sesami_body("booking.updated", **over))


def test_sesami_replay_and_junk():
    with pytest.raises(ReplayError, match="old"):
        sparse(sesami_body(), now=NOW + timedelta(hours=1))
    with pytest.raises(ReplayError, match="future"):
        sparse(sesami_body(), now=NOW - timedelta(hours=1))
    with pytest.raises(MalformedError, match="not valid JSON"):
        sparse(b"event_type=booking.created")
    with pytest.raises(MalformedError, match="body.booking is missing"):
        sparse(raw({"event_type": "booking.created", "timestamp": "2026-03-28T12:00:00Z"}))


# --------------------------------------------------------------------------- Notion

TOKEN = "secret_tMrlL1qK5vuQAh1b6cZGhFChZTSYJlce98V0pYn7yBl"


def notion_event(type_: str = "page.properties_updated", **over: Any) -> dict[str, Any]:
    e: dict[str, Any] = {
        "id": "1782edd6-a853-4d4a-b02c-9c8c16f28e53",
        "timestamp": "2026-03-28T11:59:05.379Z",
        "workspace_id": "13950b26-c203-4f3b-b97d-93ec06319565",
        "workspace_name": "Salon",
        "subscription_id": "29d75c0d-5546-4414-8459-7b7a92f1fc4b",
        "integration_id": "0ef2e755-4912-8096-91c1-00376a88a5ca",
        "type": type_,
        "authors": [{"id": "c7c11cca-1d73-471d-9b6e-bdef51470190", "type": "person"}],
        "attempt_number": 1,
        "entity": {"id": "153104cd-477e-809d-8dc4-ff2d96ae3090", "type": "page"},
        "data": {"parent": {"id": "0ef104cd-477e-80e1-8571-cfd10e92339a", "type": "database",
                            "data_source_id": "ds-1"},
                 "updated_properties": ["XGe%40", "title"]},
    }
    e.update(over)
    return e


def nparse(body: bytes, **kw: Any):
    return parse_notion(body, kw.pop("now", NOW), replay_window=kw.pop("replay_window", timedelta(hours=25)), **kw)


def test_notion_handshake_token():
    body = raw({"verification_token": TOKEN})
    assert notion_verification_token(body) == TOKEN
    assert notion_verification_token(raw(notion_event())) is None
    assert notion_verification_token(b"not json") is None
    assert notion_verification_token(b"[]") is None
    with pytest.raises(MalformedError, match="verification_token"):
        notion_verification_token(raw({"verification_token": "\x1b[31mevil"}))
    with pytest.raises(MalformedError, match="verification_token"):
        notion_verification_token(raw({"verification_token": 5}))
    with pytest.raises(MalformedError, match="notion_verification_token"):
        nparse(body)  # a handshake is not an event


def test_notion_signature():
    body = raw(notion_event())
    header = "sha256=" + sign(body, TOKEN)
    verify_notion(body, header, TOKEN)
    with pytest.raises(SignatureError, match="does not match"):
        verify_notion(body, "sha256=" + sign(body, "secret_other"), TOKEN)
    with pytest.raises(SignatureError, match="does not match"):
        verify_notion(body.replace(b"Salon", b"Salom"), header, TOKEN)
    with pytest.raises(SignatureError, match="sha256=<hex>"):
        verify_notion(body, sign(body, TOKEN), TOKEN)  # the prefix is required
    with pytest.raises(SignatureError, match="missing X-Notion-Signature"):
        verify_notion(body, None, TOKEN)
    with pytest.raises(SignatureError, match="handshake"):
        verify_notion(body, header, None)


def test_notion_properties_updated():
    d = nparse(raw(notion_event()))
    assert d.delivery_id == "1782edd6-a853-4d4a-b02c-9c8c16f28e53"
    assert (d.type, d.page_id, d.entity_type) == ("page.properties_updated", "153104cd-477e-809d-8dc4-ff2d96ae3090", "page")
    assert (d.parent_id, d.parent_type) == ("0ef104cd-477e-80e1-8571-cfd10e92339a", "database")
    assert d.updated_properties == ("XGe%40", "title")
    assert (d.deleted, d.actionable, d.attempt_number) == (False, True, 1)
    assert d.timestamp == datetime(2026, 3, 28, 11, 59, 5, 379000, tzinfo=UTC)
    assert d.workspace_id and d.subscription_id and d.integration_id


@pytest.mark.parametrize("type_, deleted, actionable", [
    ("page.created", False, True), ("page.content_updated", False, True), ("page.deleted", True, True),
    ("page.undeleted", False, True), ("page.moved", False, True), ("page.locked", False, False),
])
def test_notion_page_events(type_, deleted, actionable):
    d = nparse(raw(notion_event(type_, data={"parent": {"id": "p-1", "type": "page"}})))
    assert (d.deleted, d.actionable, d.parent_id, d.updated_properties) == (deleted, actionable, "p-1", ())


def test_notion_non_page_and_unknown_events():
    d = nparse(raw(notion_event("comment.created", entity={"id": "c-1", "type": "comment"})))
    assert (d.page_id, d.actionable, d.entity_id) == (None, False, "c-1")
    d = nparse(raw(notion_event("data_source.schema_updated", entity={"id": "ds-1", "type": "database"})))
    assert d.actionable is False
    with pytest.raises(UnsupportedError, match="page.teleported"):
        nparse(raw(notion_event("page.teleported")))


def test_notion_retry_keeps_id_and_window_must_cover_redelivery():
    retry = notion_event(attempt_number=5, timestamp="2026-03-27T13:00:00Z")  # 23 h later
    d = nparse(raw(retry))
    assert d.delivery_id == notion_event()["id"] and d.attempt_number == 5
    with pytest.raises(ReplayError, match="old"):
        nparse(raw(retry), replay_window=timedelta(hours=1))
    with pytest.raises(ReplayError, match="future"):
        nparse(raw(notion_event(timestamp="2026-03-28T13:00:00Z")))


@pytest.mark.parametrize("over, match", [
    ({"id": None}, "body.id is missing"),
    ({"entity": None}, "body.entity is missing"),
    ({"entity": {"type": "page"}}, "entity.id"),
    ({"timestamp": "now"}, "timestamp is not an ISO"),
    ({"attempt_number": "1"}, "attempt_number"),
    ({"data": {"updated_properties": "title"}}, "updated_properties"),
])
def test_notion_malformed(over, match):
    with pytest.raises(MalformedError, match=match):
        nparse(raw(notion_event(**over)))
    with pytest.raises(MalformedError, match="not valid JSON"):
        nparse(b'{"id": ')


# --------------------------------------------------------------------------- robustness

_json = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
                     max_leaves=6)


def _mutate(doc: dict[str, Any], path: list[str], value: Any) -> dict[str, Any]:
    node = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return doc


_CALCOM_PATHS = [["triggerEvent"], ["createdAt"], ["payload"], *[["payload", k] for k in calcom_payload()],
                 ["payload", "organizer", "timeZone"], ["payload", "organizer", "name"]]
_SESAMI_PATHS = [["event_type"], ["timestamp"], ["booking"], ["shop"], ["booking", "id"], ["booking", "customer"],
                 ["booking", "service"], ["booking", "appointment_time"], ["booking", "status"], ["booking", "notes"],
                 ["booking", "service", "duration"], ["booking", "service", "name"]]
_NOTION_PATHS = [[k] for k in notion_event()] + [["data", "parent"], ["entity", "id"], ["entity", "type"]]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(which=st.sampled_from(["calcom", "meeting", "sesami", "notion"]), index=st.integers(0, 200), value=_json)
def test_any_field_of_any_type_gives_a_result_or_a_webhook_error(which, index, value):
    """A receiver must never 500: whatever a field holds, the answer is a delivery or a WebhookError."""
    if which == "calcom":
        doc, paths = json.loads(calcom_body("BOOKING_CREATED")), _CALCOM_PATHS
    elif which == "meeting":
        doc = json.loads(meeting_body("MEETING_ENDED"))
        paths = [[k] for k in doc]
    elif which == "sesami":
        doc, paths = json.loads(sesami_body()), _SESAMI_PATHS
    else:
        doc, paths = notion_event(), _NOTION_PATHS
    body = raw(_mutate(doc, paths[index % len(paths)], value))
    try:
        if which in ("calcom", "meeting"):
            parse(body)
        elif which == "sesami":
            sparse(body)
        else:
            nparse(body)
    except WebhookError:
        pass
