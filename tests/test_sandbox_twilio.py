"""The Twilio sandbox, driven over httpx with form posts and Basic auth (the way bsync calls Twilio),
so the SMS code meets Twilio's resource shape, error codes and segment counting."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import pytest

from bsync.sandbox import Sandbox
from bsync.sandbox.twilio import (
    DEFAULT_ACCOUNT_SID,
    TwilioSandbox,
    sms_encoding,
    sms_segments,
)

SID = DEFAULT_ACCOUNT_SID
MESSAGES = f"/2010-04-01/Accounts/{SID}/Messages.json"
FROM = "+15005550006"
TO = "+447700900123"
SERVICE = "MG" + "a" * 32


@pytest.fixture(scope="module")
def _server() -> Iterator[TwilioSandbox]:
    with TwilioSandbox() as server:
        yield server


@pytest.fixture
def srv(_server: TwilioSandbox) -> TwilioSandbox:
    _server.reset()
    return _server


@pytest.fixture
def http(srv: TwilioSandbox) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=srv.url, auth=(SID, "sandbox-token"), timeout=5) as client:
        yield client


def send(http: httpx.Client, **form: Any) -> httpx.Response:
    data = {"To": TO, "From": FROM, "Body": "See you at 10:00"}
    data.update(form)
    return http.post(MESSAGES, data={k: v for k, v in data.items() if v is not None})


def assert_twilio_error(response: httpx.Response, status: int, code: int) -> dict[str, Any]:
    assert response.status_code == status
    body = response.json()
    assert body["code"] == code
    assert body["status"] == status
    assert body["more_info"] == f"https://www.twilio.com/docs/errors/{code}"
    return body


def test_create_answers_201_with_a_message_resource(srv: TwilioSandbox, http: httpx.Client) -> None:
    response = send(http)
    assert response.status_code == 201
    message = response.json()
    assert re.fullmatch(r"SM[0-9a-f]{32}", message["sid"])
    assert list(message) == sorted(message)
    assert {k: message[k] for k in ("account_sid", "to", "from", "body", "status", "num_segments",
                                    "num_media", "direction", "api_version", "price", "error_code",
                                    "error_message", "messaging_service_sid")} == {
        "account_sid": SID, "to": TO, "from": FROM, "body": "See you at 10:00", "status": "queued",
        "num_segments": "1", "num_media": "0", "direction": "outbound-api", "api_version": "2010-04-01",
        "price": None, "error_code": None, "error_message": None, "messaging_service_sid": None}
    base = f"/2010-04-01/Accounts/{SID}/Messages/{message['sid']}"
    assert message["uri"] == f"{base}.json"
    assert message["subresource_uris"] == {"media": f"{base}/Media.json"}
    created = parsedate_to_datetime(message["date_created"])
    assert abs((datetime.now(UTC) - created).total_seconds()) < 60
    assert message["date_created"].endswith(" +0000")
    assert srv.messages == [message]


def test_messaging_service_send_is_accepted(http: httpx.Client) -> None:
    message = send(http, From=None, MessagingServiceSid=SERVICE).json()
    assert (message["status"], message["num_segments"], message["from"], message["messaging_service_sid"]) == (
        "accepted", "0", None, SERVICE)


@pytest.mark.parametrize(("body", "encoding", "segments"), [
    ("a" * 160, "GSM-7", 1), ("a" * 161, "GSM-7", 2), ("a" * 306, "GSM-7", 2), ("a" * 307, "GSM-7", 3),
    ("€" * 80, "GSM-7", 1), ("€" * 81, "GSM-7", 2), ("é" * 160, "GSM-7", 1),
    ("ł" * 70, "UCS-2", 1), ("ł" * 71, "UCS-2", 2), ("ł" * 134, "UCS-2", 2), ("ł" * 135, "UCS-2", 3),
    ("😀" * 35, "UCS-2", 1), ("😀" * 36, "UCS-2", 2),
])
def test_segments(http: httpx.Client, body: str, encoding: str, segments: int) -> None:
    assert (sms_encoding(body), sms_segments(body)) == (encoding, segments)
    assert send(http, Body=body).json()["num_segments"] == str(segments)


@pytest.mark.parametrize(("form", "code", "message"), [
    ({"To": None}, 21604, "A 'To' phone number is required."),
    ({"Body": None}, 21602, "Message body is required."),
    ({"From": None}, 21603, "A 'From' phone number is required."),
    ({"To": "07700900123"}, 21211, "Invalid 'To' Phone Number: 0770090XXXX"),
    ({"To": "+15005550001"}, 21211, "Invalid 'To' Phone Number: +1500555XXXX"),
    ({"To": "+15005550004"}, 21610, "Attempt to send to unsubscribed recipient"),
    ({"From": "+15005550007"}, 21606, ("The 'From' phone number provided (+15005550007) is not a valid "
                                       "message-capable Twilio phone number for this destination.")),
    ({"From": "not a number!"}, 21212, ("The 'From' number not a number! is not a valid phone number, "
                                        "shortcode, or alphanumeric sender ID.")),
    ({"Body": "x" * 1601}, 21617, "The concatenated message body exceeds the 1600 character limit."),
])
def test_refusals(srv: TwilioSandbox, http: httpx.Client, form: dict[str, Any], code: int,
                  message: str) -> None:
    response = send(http, **form)
    body = assert_twilio_error(response, 400, code)
    assert body["message"] == message
    assert list(body) == ["code", "message", "more_info", "status"]
    assert srv.messages == []


def test_unsubscribed_recipient(srv: TwilioSandbox, http: httpx.Client) -> None:
    srv.unsubscribe(TO)
    assert_twilio_error(send(http), 400, 21610)
    srv.resubscribe(TO)
    assert send(http).status_code == 201


@pytest.mark.parametrize("code", [21211, 21610, 21612, 21614])
def test_rejected_number(srv: TwilioSandbox, http: httpx.Client, code: int) -> None:
    srv.reject_number(TO, code)
    assert_twilio_error(send(http), 400, code)
    assert send(http, To="+447700900456").status_code == 201


def test_wrong_token_is_20003(srv: TwilioSandbox) -> None:
    response = httpx.post(srv.url + MESSAGES, data={"To": TO, "From": FROM, "Body": "x"},
                          auth=(SID, "wrong"), timeout=5)
    body = assert_twilio_error(response, 401, 20003)
    assert (body["message"], body["detail"]) == ("Authenticate", "Your AccountSid or AuthToken was incorrect.")
    assert response.headers["www-authenticate"] == 'Basic realm="Twilio API"'
    assert_twilio_error(httpx.get(f"{srv.url}/2010-04-01/Accounts/{SID}.json", timeout=5), 401, 20003)


def test_other_account_in_the_path(srv: TwilioSandbox, http: httpx.Client) -> None:
    other = "AC" + "1" * 32
    assert_twilio_error(http.post(f"/2010-04-01/Accounts/{other}/Messages.json", data={"To": TO}), 401, 20003)
    body = assert_twilio_error(http.post("/2010-04-01/Accounts/null/Messages.json", data={"To": TO}), 404, 20404)
    assert body["message"] == "The requested resource /2010-04-01/Accounts/null/Messages.json was not found"


def test_fetch_message_and_unknown_sid(http: httpx.Client) -> None:
    created = send(http).json()
    assert http.get(created["uri"]).json() == created
    missing = f"/2010-04-01/Accounts/{SID}/Messages/SM{'0' * 32}.json"
    body = assert_twilio_error(http.get(missing), 404, 20404)
    assert body["message"] == f"The requested resource {missing} was not found"


def test_account_fetch(http: httpx.Client) -> None:
    account = http.get(f"/2010-04-01/Accounts/{SID}.json").json()
    assert (account["sid"], account["status"], account["type"]) == (SID, "active", "Full")
    assert account["uri"] == f"/2010-04-01/Accounts/{SID}.json"
    assert parsedate_to_datetime(account["date_created"]).tzinfo is not None


def test_request_log_keeps_the_form(srv: TwilioSandbox, http: httpx.Client) -> None:
    http.post(MESSAGES, data={"To": TO, "From": FROM, "Body": "Hi",
                              "MediaUrl": ["https://x.test/a.png", "https://x.test/b.png"]})
    logged = http.get("/_sandbox/requests").json()["requests"]
    assert [(r["method"], r["path"], r["status"]) for r in logged] == [("POST", MESSAGES, 201)]
    assert logged[0]["json"] == {"To": TO, "From": FROM, "Body": "Hi",
                                 "MediaUrl": ["https://x.test/a.png", "https://x.test/b.png"]}
    assert srv.messages[0]["num_media"] == "2"


def test_injected_429(srv: TwilioSandbox, http: httpx.Client) -> None:
    srv.set_faults(fail_rate=1.0, fail_statuses=[429])
    response = send(http)
    body = assert_twilio_error(response, 429, 20429)
    assert body["message"] == "Too Many Requests"
    assert int(response.headers["retry-after"]) >= 1
    assert srv.messages == []


def test_messages_to(srv: TwilioSandbox, http: httpx.Client) -> None:
    send(http, Body="one")
    send(http, To="+447700900456", Body="two")
    assert [m["body"] for m in srv.messages_to(TO)] == ["one"]
    srv.clear_messages()
    assert srv.messages_to(TO) == []


def test_custom_account_and_senders() -> None:
    sid = "AC" + "b" * 32
    with TwilioSandbox(account_sid=sid, auth_token="tok", from_numbers=["+15550100"]) as server:
        response = httpx.post(f"{server.url}/2010-04-01/Accounts/{sid}/Messages.json",
                              data={"To": TO, "From": "+15550100", "Body": "x"}, auth=(sid, "tok"), timeout=5)
    assert response.status_code == 201


def test_sandbox_describes_both_emulators(sandbox: Sandbox) -> None:
    described = sandbox.describe()
    assert (described["sendgrid"], described["twilio"]) == (sandbox.sendgrid.url, sandbox.twilio.url)
    assert sandbox.twilio in sandbox.servers and sandbox.sendgrid in sandbox.servers


def test_list_filters_by_to_and_date_sent_newest_first_and_pages(srv: TwilioSandbox, http: httpx.Client) -> None:
    srv.clock = lambda: datetime(2026, 11, 23, 23, 59, 59, tzinfo=UTC)
    send(http, Body="yesterday")
    srv.mark_sent()
    srv.clock = lambda: datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
    for body in ("one", "two", "three"):
        send(http, Body=body)
    send(http, To="+447700900456", Body="someone else")
    srv.mark_sent()
    send(http, Body="still queued")

    def bodies(**params: str) -> list[str]:
        return [m["body"] for m in http.get(MESSAGES, params=params).json()["messages"]]

    assert bodies(To=TO) == ["still queued", "three", "two", "one", "yesterday"]
    assert bodies(To=TO, **{"DateSent>": "2026-11-24"}) == ["three", "two", "one"]  # queued: not sent yet
    assert bodies(To=TO, **{"DateSent<": "2026-11-23"}) == ["yesterday"]
    assert bodies(To=TO, DateSent="2026-11-23") == ["yesterday"]
    assert bodies(**{"DateSent>": "2026-11-24T08:00:00Z", "To": "+447700900456"}) == ["someone else"]
    first = http.get(MESSAGES, params={"To": TO, "PageSize": "2"}).json()
    assert ([m["body"] for m in first["messages"]], first["page"], first["page_size"], first["start"]) == (
        ["still queued", "three"], 0, 2, 0)
    assert first["previous_page_uri"] is None and first["uri"].startswith(MESSAGES)
    second = http.get(first["next_page_uri"]).json()
    assert [m["body"] for m in second["messages"]] == ["two", "one"]
    last = http.get(second["next_page_uri"]).json()
    assert [m["body"] for m in last["messages"]] == ["yesterday"] and last["next_page_uri"] is None
    sent = [m for m in srv.messages if m["status"] == "sent"]
    assert all(parsedate_to_datetime(m["date_sent"]).tzinfo is not None for m in sent) and len(sent) == 5
    assert_twilio_error(http.get(MESSAGES, params={"DateSent>": "yesterday"}), 400, 20001)
