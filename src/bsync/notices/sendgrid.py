"""Email through SendGrid's v3 Mail Send API, with the official ``sendgrid`` package.

SendGrid has no idempotency key, so "never twice" is the caller's job (the notifications
ledger).  This adapter's part is to say precisely what happened to each send:

* accepted (202, or 200 under ``sandbox_mode``) -> the ``X-Message-Id``;
* refused for this message (400: bad address, bad body) -> :class:`RemoteError`, the
  other messages still go;
* 401/403 -> :class:`AuthError` (exit 4), 429/5xx/connection refused -> retried with
  backoff (honouring ``X-RateLimit-Reset``/``Retry-After``), then exit 5;
* the connection broke after the request went out (read timeout) ->
  :class:`DeliveryUncertain`: not retried, because it may have been delivered.
"""

from __future__ import annotations

import base64
import json
import time
import urllib.error
from typing import Any

import sendgrid
from python_http_client import exceptions as http_errors

from bsync.config import SendGridConfig
from bsync.errors import DeliveryUncertain
from bsync.core.retry import CallFailure, RetryPolicy, call
from bsync.notices.channels import Email


def _errors_text(body: Any) -> str:
    try:
        errors = json.loads(body or b"{}").get("errors") or []
    except (ValueError, AttributeError):
        return (body or b"").decode(errors="replace")[:200] if isinstance(body, bytes) else str(body)[:200]
    return "; ".join(f"{e.get('message')}" + (f" ({e['field']})" if e.get("field") else "") for e in errors)


def _retry_after(headers: Any) -> float | None:
    if headers is None:
        return None
    value = headers.get("Retry-After")
    if value:
        try:
            return float(value)
        except ValueError:
            return None
    reset = headers.get("X-RateLimit-Reset")
    if reset:
        try:
            return max(0.0, float(reset) - time.time())
        except ValueError:
            return None
    return None


def _is_read_timeout(exc: object) -> bool:
    return isinstance(exc, TimeoutError)  # socket.timeout is an alias of it


def classify(exc: BaseException) -> CallFailure | None:
    if isinstance(exc, http_errors.HTTPError):
        status = exc.status_code
        text = _errors_text(exc.body)
        if status in (401, 403):
            return CallFailure("auth", f"SendGrid refused the API key ({status}: {text})", status=status)
        if status == 429 or status >= 500:
            return CallFailure("transient", f"{status}: {text}", retry_after=_retry_after(exc.headers), status=status)
        return CallFailure("permanent", f"SendGrid refused the message ({status}: {text})", status=status)
    if isinstance(exc, urllib.error.URLError) and not _is_read_timeout(exc.reason):
        return CallFailure("transient", f"cannot reach SendGrid: {exc.reason}")
    return None


class SendGridMailer:
    """The email carrier (:class:`~bsync.notices.channels.EmailSender`): sends
    :class:`~bsync.notices.channels.Email` messages; counts requests for the run summary."""

    def __init__(self, config: SendGridConfig, policy: RetryPolicy) -> None:
        self.config = config
        self.policy = policy
        self.client = sendgrid.SendGridAPIClient(api_key=config.api_key.get_secret_value(), host=config.base_url)
        self.client.client.timeout = config.timeout_s
        self.requests = 0

    def body(self, email: Email) -> dict[str, Any]:
        """The Mail Send JSON (text/plain before text/html, as SendGrid requires)."""
        to: dict[str, str] = {"email": email.to}
        if email.to_name:
            to["name"] = email.to_name
        personalization: dict[str, Any] = {"to": [to]}
        if email.template_data is not None:
            personalization["dynamic_template_data"] = email.template_data
        sender: dict[str, str] = {"email": self.config.from_email}
        if self.config.from_name:
            sender["name"] = self.config.from_name
        body: dict[str, Any] = {"personalizations": [personalization], "from": sender}
        if self.config.reply_to:
            body["reply_to"] = {"email": self.config.reply_to}
        if email.template_id:
            body["template_id"] = email.template_id
        else:
            body["subject"] = email.subject
            body["content"] = [{"type": "text/plain", "value": email.text}]
            if email.html:
                body["content"].append({"type": "text/html", "value": email.html})
        if email.attachments:
            body["attachments"] = [{"content": base64.b64encode(a.data).decode(), "type": a.content_type,
                                    "filename": a.filename, "disposition": "attachment"} for a in email.attachments]
        if email.custom_args:
            body["custom_args"] = email.custom_args
        if email.categories:
            body["categories"] = list(email.categories)
        if self.config.sandbox_mode:
            body["mail_settings"] = {"sandbox_mode": {"enable": True}}
        return body

    def send(self, email: Email) -> str | None:
        """Send one email; returns SendGrid's message id."""
        body = self.body(email)

        def attempt() -> Any:
            self.requests += 1
            try:
                return self.client.send(body)
            except urllib.error.URLError as exc:
                if _is_read_timeout(exc.reason):
                    raise DeliveryUncertain(f"SendGrid: the connection broke after sending: {exc.reason}") from None
                raise
            except TimeoutError as exc:
                raise DeliveryUncertain(f"SendGrid: no answer within {self.config.timeout_s:g}s: {exc}") from None

        response = call(attempt, classify=classify, policy=self.policy, what="SendGrid")
        headers = getattr(response, "headers", None)
        return headers.get("X-Message-Id") if headers is not None else None

    def check(self) -> list[str]:
        """One cheap authenticated call (``GET /v3/scopes``): the key's scopes."""
        def attempt() -> Any:
            self.requests += 1
            return self.client.client.scopes.get()

        response = call(attempt, classify=classify, policy=self.policy, what="SendGrid")
        return list(json.loads(response.body or b"{}").get("scopes", []))

    def close(self) -> None:
        """Nothing to release: the client opens a connection per request."""
