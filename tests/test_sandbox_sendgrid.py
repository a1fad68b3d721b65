"""The SendGrid sandbox, driven by the real ``sendgrid`` package, so bsync's email code meets the wire
format (status codes, error envelope, exception classes) it will meet in production."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import sendgrid
from python_http_client.exceptions import (
    BadRequestsError,
    ForbiddenError,
    HTTPError,
    TooManyRequestsError,
    UnauthorizedError,
)
from sendgrid.helpers.mail import Attachment, Mail

from bsync.sandbox.sendgrid import SendGridSandbox

MESSAGE_ID = re.compile(r"^[A-Za-z0-9_-]{22}$")


@pytest.fixture(scope="module")
def _server() -> Iterator[SendGridSandbox]:
    with SendGridSandbox() as server:
        yield server


@pytest.fixture
def srv(_server: SendGridSandbox) -> SendGridSandbox:
    _server.reset()
    return _server


@pytest.fixture
def sg(srv: SendGridSandbox) -> sendgrid.SendGridAPIClient:
    client = sendgrid.SendGridAPIClient(api_key="sandbox-token", host=srv.url)
    client.client.timeout = 5
    return client


def mail(**changes: Any) -> dict[str, Any]:
    """A valid request body; ``changes`` replace top-level keys (None removes one)."""
    body: dict[str, Any] = {
        "personalizations": [{"to": [{"email": "jamie@example.com", "name": "Jamie"}],
                              "custom_args": {"booking": "b1"}}],
        "from": {"email": "salon@example.com", "name": "Salon"},
        "subject": "Your booking",
        "content": [{"type": "text/plain", "value": "See you soon"},
                    {"type": "text/html", "value": "<p>See you soon</p>"}],
        "custom_args": {"source": "bsync"},
    }
    for key, value in changes.items():
        if value is None:
            body.pop(key, None)
        else:
            body[key] = value
    return body


def errors_of(exc: HTTPError) -> list[dict[str, Any]]:
    return json.loads(exc.body)["errors"]


def test_send_is_accepted_with_a_message_id(srv: SendGridSandbox, sg: sendgrid.SendGridAPIClient) -> None:
    response = sg.send(mail())
    assert response.status_code == 202
    assert response.body == b""
    message_id = response.headers["X-Message-Id"]
    assert MESSAGE_ID.match(message_id)
    [message] = srv.messages
    assert message["message_id"] == message_id
    assert message["to"] == ["jamie@example.com"]
    assert message["subject"] == "Your booking"
    assert [c["type"] for c in message["content"]] == ["text/plain", "text/html"]
    assert message["custom_args"] == {"source": "bsync", "booking": "b1"}
    assert message["sandbox_mode"] is False
    assert message["received_at"].tzinfo is not None


def test_each_send_gets_a_new_message_id(sg: sendgrid.SendGridAPIClient) -> None:
    first = sg.send(mail()).headers["X-Message-Id"]
    assert sg.send(mail()).headers["X-Message-Id"] != first


def test_sandbox_mode_answers_200_and_delivers_nothing(srv: SendGridSandbox,
                                                      sg: sendgrid.SendGridAPIClient) -> None:
    response = sg.send(mail(mail_settings={"sandbox_mode": {"enable": True}}))
    assert response.status_code == 200
    assert srv.messages == []
    assert [m["sandbox_mode"] for m in srv.sandbox_messages] == [True]
    assert srv.count("POST", "/v3/mail/send") == 1


def test_sandbox_mode_flag_must_be_a_boolean(sg: sendgrid.SendGridAPIClient) -> None:
    with pytest.raises(BadRequestsError) as caught:
        sg.send(mail(mail_settings={"sandbox_mode": {"enable": "true"}}))
    assert errors_of(caught.value) == [{
        "message": "The sandbox mode enable param should be a boolean value.",
        "field": "mail_settings.sandbox_mode.enable",
        "help": "http://sendgrid.com/docs/API_Reference/Web_API_v3/Mail/errors.html"
                "#message.mail_settings.sandbox_mode.enable"}]


def _body(edit: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    body = mail()
    edit(body)
    return body


INVALID: list[tuple[str, Callable[[dict[str, Any]], None], str, str]] = [
    ("no personalizations", lambda b: b.update(personalizations=[]),
     "personalizations", "must have at least one personalization"),
    ("1001 personalizations", lambda b: b.update(personalizations=[{"to": [{"email": f"c{i}@example.com"}]}
                                                                    for i in range(1001)]),
     "personalizations", "limited to 1000 personalizations"),
    ("no to array", lambda b: b["personalizations"][0].pop("to"),
     "personalizations.0.to", "The to array is required"),
    ("to without email", lambda b: b["personalizations"][0].update(to=[{"name": "Jamie"}]),
     "personalizations.0.to.0.email", "The to email parameter is required."),
    ("invalid to", lambda b: b["personalizations"][0].update(to=[{"email": "jamie@"}]),
     "personalizations.0.to.0.email", "Does not contain a valid address."),
    ("email not a string", lambda b: b["personalizations"][0].update(to=[{"email": ["a@b.com"]}]),
     "personalizations.0.to.0.email", "Invalid type. Expected: string, given: array."),
    ("duplicate recipient", lambda b: b["personalizations"][0].update(bcc=[{"email": "Jamie@example.com"}]),
     "personalizations.0", "first duplicate instance of [Jamie@example.com]"),
    ("no from", lambda b: b.pop("from"), "from.email", "The from object must be provided"),
    ("invalid from", lambda b: b.update({"from": {"email": "Salon"}}),
     "from.email", "The from email does not contain a valid address."),
    ("no subject", lambda b: b.pop("subject"), "subject", "The subject is required."),
    ("no content", lambda b: b.pop("content"), "content",
     "Unless a valid template_id is provided, the content parameter is required."),
    ("html before plain", lambda b: b["content"].reverse(), "content", "text/plain needs to be first"),
    ("two plain parts", lambda b: b["content"].append({"type": "text/plain", "value": "again"}),
     "content", "may only be provided once"),
    ("empty content value", lambda b: b["content"][0].update(value=""),
     "content.0.value", "at least one character in length"),
    ("attachment not base64", lambda b: b.update(attachments=[{"content": "not base64!",
                                                               "filename": "a.txt"}]),
     "attachments.0.content", "The attachment content must be base64 encoded."),
    ("attachment without filename", lambda b: b.update(attachments=[{"content": "aGk="}]),
     "attachments.0.filename", "filename is required."),
    ("custom arg not a string", lambda b: b.update(custom_args={"n": 1}),
     "custom_args", "must be strings"),
]


@pytest.mark.parametrize(("edit", "field", "text"), [case[1:] for case in INVALID],
                         ids=[case[0] for case in INVALID])
def test_invalid_requests_are_400s_naming_the_field(srv: SendGridSandbox, sg: sendgrid.SendGridAPIClient,
                                                   edit: Callable[[dict[str, Any]], None], field: str,
                                                   text: str) -> None:
    with pytest.raises(BadRequestsError) as caught:
        sg.send(_body(edit))
    errors = errors_of(caught.value)
    assert any(e["field"] == field and text in e["message"] for e in errors), errors
    assert all(set(e) == {"message", "field", "help"} for e in errors)
    assert srv.messages == []


def test_every_wrong_field_is_reported_at_once(sg: sendgrid.SendGridAPIClient) -> None:
    body = mail(**{"from": {"email": "nobody"}})
    body["personalizations"][0]["to"] = [{"email": "nobody"}]
    with pytest.raises(BadRequestsError) as caught:
        sg.send(body)
    assert [e["field"] for e in errors_of(caught.value)] == ["from.email", "personalizations.0.to.0.email"]


def test_sandbox_mode_still_validates(sg: sendgrid.SendGridAPIClient) -> None:
    with pytest.raises(BadRequestsError):
        sg.send(mail(subject=None, mail_settings={"sandbox_mode": {"enable": True}}))


def test_template_send_needs_neither_subject_nor_content(srv: SendGridSandbox,
                                                        sg: sendgrid.SendGridAPIClient) -> None:
    body = mail(subject=None, content=None, template_id="d-0123456789abcdef")
    body["personalizations"][0]["dynamic_template_data"] = {"pet": "Rex"}
    assert sg.send(body).status_code == 202
    [message] = srv.messages
    assert message["template_id"] == "d-0123456789abcdef"
    assert message["dynamic_template_data"] == {"pet": "Rex"}
    assert message["subject"] is None


def test_mail_helper_with_attachment(srv: SendGridSandbox, sg: sendgrid.SendGridAPIClient) -> None:
    invite = b"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n"
    message = Mail(from_email="salon@example.com", to_emails="jamie@example.com", subject="Invite",
                   plain_text_content="See attached", html_content="<p>See attached</p>")
    message.attachment = Attachment(file_content=base64.b64encode(invite).decode(),
                                    file_name="invite.ics", file_type="text/calendar; method=REQUEST",
                                    disposition="attachment")
    assert sg.send(message).status_code == 202
    [attachment] = srv.messages[0]["attachments"]
    assert attachment["data"] == invite
    assert attachment["filename"] == "invite.ics"


def test_one_entry_per_personalization(srv: SendGridSandbox, sg: sendgrid.SendGridAPIClient) -> None:
    body = mail()
    body["personalizations"].append({"to": [{"email": "alex@example.com"}], "subject": "Hi Alex"})
    message_id = sg.send(body).headers["X-Message-Id"]
    assert [(m["to"], m["subject"], m["message_id"]) for m in srv.messages] == [
        (["jamie@example.com"], "Your booking", message_id), (["alex@example.com"], "Hi Alex", message_id)]
    assert [m["to"] for m in srv.messages_to("ALEX@example.com")] == [["alex@example.com"]]


def test_wrong_key_is_401(srv: SendGridSandbox) -> None:
    client = sendgrid.SendGridAPIClient(api_key="SG.wrong", host=srv.url)
    with pytest.raises(UnauthorizedError) as caught:
        client.send(mail())
    assert errors_of(caught.value) == [{"message": "The provided authorization grant is invalid, "
                                                   "expired, or revoked", "field": None, "help": None}]


def test_missing_authorization_header_is_401(srv: SendGridSandbox) -> None:
    response = httpx.post(f"{srv.url}/v3/mail/send", json=mail(), timeout=5)
    assert response.status_code == 401
    assert response.json() == {"errors": [{"field": None, "message": "authorization required"}]}


def test_registered_key_is_accepted(srv: SendGridSandbox) -> None:
    srv.add_api_key("SG.live-key")
    assert sendgrid.SendGridAPIClient(api_key="SG.live-key", host=srv.url).send(mail()).status_code == 202


def test_rejected_address_fails_later_sends(srv: SendGridSandbox, sg: sendgrid.SendGridAPIClient) -> None:
    srv.reject_address("JAMIE@example.com")
    with pytest.raises(BadRequestsError) as caught:
        sg.send(mail())
    assert [(e["field"], e["message"]) for e in errors_of(caught.value)] == [
        ("personalizations.0.to.0.email", "Does not contain a valid address.")]
    body = mail()
    body["personalizations"][0]["to"] = [{"email": "alex@example.com"}]
    assert sg.send(body).status_code == 202


def test_rejected_address_with_another_status(srv: SendGridSandbox, sg: sendgrid.SendGridAPIClient) -> None:
    srv.reject_address("jamie@example.com", status=403)
    with pytest.raises(ForbiddenError):
        sg.send(mail())


def test_injected_429_uses_sendgrid_body(srv: SendGridSandbox, sg: sendgrid.SendGridAPIClient) -> None:
    srv.set_faults(fail_rate=1.0, fail_statuses=[429])
    with pytest.raises(TooManyRequestsError) as caught:
        sg.send(mail())
    assert json.loads(caught.value.body) == {"errors": [{"field": None, "message": "too many requests"}]}
    assert caught.value.headers["X-RateLimit-Remaining"] == "0"
    assert srv.messages == []


def test_request_log_keeps_the_json_body(srv: SendGridSandbox, sg: sendgrid.SendGridAPIClient) -> None:
    sg.send(mail())
    logged = httpx.get(f"{srv.url}/_sandbox/requests", timeout=5).json()["requests"]
    assert [(r["method"], r["path"], r["status"]) for r in logged] == [("POST", "/v3/mail/send", 202)]
    assert logged[0]["json"]["personalizations"][0]["to"] == [{"email": "jamie@example.com", "name": "Jamie"}]


def test_scopes_is_a_cheap_authenticated_call(srv: SendGridSandbox, sg: sendgrid.SendGridAPIClient) -> None:
    response = sg.client.scopes.get()
    assert response.status_code == 200
    assert json.loads(response.body) == {"scopes": ["mail.send"]}
    assert int(response.headers["X-RateLimit-Remaining"]) < int(response.headers["X-RateLimit-Limit"])
    with pytest.raises(UnauthorizedError):
        sendgrid.SendGridAPIClient(api_key="nope", host=srv.url).client.scopes.get()


def test_reset_forgets_messages_keys_and_rejections(srv: SendGridSandbox, sg: sendgrid.SendGridAPIClient) -> None:
    srv.add_api_key("SG.k")
    srv.reject_address("jamie@example.com")
    srv.reset()
    assert sg.send(mail()).status_code == 202
    srv.clear_messages()
    assert srv.messages == []
    with pytest.raises(UnauthorizedError):
        sendgrid.SendGridAPIClient(api_key="SG.k", host=srv.url).send(mail())
