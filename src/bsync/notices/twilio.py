"""SMS through Twilio's Messages API (``POST /2010-04-01/Accounts/{sid}/Messages.json``).

httpx rather than the ``twilio`` package: one form POST is all bsync needs, and httpx is
already a dependency.  Outcomes are classified like :mod:`bsync.notices.sendgrid`:
a per-message refusal (invalid or unsubscribed number: codes 21211, 21610, ...) fails that
message only; 401 is exit 4; 429 (code 20429, with Retry-After) and 5xx are retried; a
read timeout after the request went out is :class:`DeliveryUncertain`.

That uncertainty can be settled here, unlike email's: :meth:`TwilioSms.find_sent` lists
the Messages sent to the number since the attempt (``GET .../Messages.json`` with ``To``
and ``DateSent>``, as twilio-python's ``MessageList.page`` sends them).
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from bsync.config import TwilioConfig
from bsync.errors import DeliveryUncertain
from bsync.core.retry import CallFailure, RetryPolicy, call


def _describe(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return f"{response.status_code}: {response.text[:200]}"
    return f"{response.status_code}: {body.get('message')} (code {body.get('code')})"


def classify(exc: BaseException) -> CallFailure | None:
    if isinstance(exc, httpx.HTTPStatusError):
        response = exc.response
        status = response.status_code
        if status in (401, 403):
            return CallFailure("auth", f"Twilio refused the credentials ({_describe(response)})", status=status)
        if status == 429 or status >= 500:
            retry_after = response.headers.get("Retry-After")
            return CallFailure("transient", _describe(response), status=status,
                           retry_after=float(retry_after) if retry_after and retry_after.isdigit() else None)
        return CallFailure("permanent", f"Twilio refused the message ({_describe(response)})", status=status)
    if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)):
        return CallFailure("transient", f"cannot reach Twilio: {exc}")
    if isinstance(exc, (httpx.ReadTimeout, httpx.RemoteProtocolError)):  # a read (a send's is DeliveryUncertain)
        return CallFailure("transient", f"Twilio did not answer: {exc}")
    return None


class TwilioSms:
    """The SMS carrier (:class:`~bsync.notices.channels.SmsSender`): sends text messages,
    finds out afterwards whether an uncertain one went out; counts requests for the run summary."""

    def __init__(self, config: TwilioConfig, policy: RetryPolicy) -> None:
        self.config = config
        self.policy = policy
        self.client = httpx.Client(base_url=config.base_url.rstrip("/"), timeout=config.timeout_s,
                                   auth=(config.account_sid, config.auth_token.get_secret_value()))
        self.requests = 0

    def close(self) -> None:
        self.client.close()

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        self.requests += 1
        try:
            response = self.client.request(method, path, **kwargs)
        except (httpx.ReadTimeout, httpx.RemoteProtocolError) as exc:
            if method == "POST":
                raise DeliveryUncertain(f"Twilio: the connection broke after sending: {exc}") from None
            raise
        response.raise_for_status()
        return response

    def send(self, to: str, body: str) -> str | None:
        """Send one SMS; returns the Message SID."""
        form = {"To": to, "Body": body}
        if self.config.messaging_service_sid:
            form["MessagingServiceSid"] = self.config.messaging_service_sid
        else:
            form["From"] = self.config.from_number or ""
        path = f"/2010-04-01/Accounts/{self.config.account_sid}/Messages.json"
        response = call(lambda: self._request("POST", path, data=form), classify=classify, policy=self.policy,
                        what="Twilio")
        return response.json().get("sid")

    CLOCK_SLACK = timedelta(minutes=2)
    """How far Twilio's clock may be behind ours when comparing ``date_created`` with the
    moment bsync recorded that it was about to send."""

    def find_sent(self, to: str, since: datetime, *, known: Collection[str] = ()) -> str | None:
        """The SID of a message this account sent to ``to`` at or after ``since`` (the
        recorded intent), ignoring the SIDs in ``known`` (already recorded for other
        messages); the earliest such, or None.

        The ledger row identifies the attempt by number, sender and time: bsync sends one
        message at a time and commits the intent just before, so the first unrecorded
        message to that number after it is the one.  ``DateSent>`` is a GMT day, the
        finer cut is done here on ``date_created``.  A message Twilio still queues has no
        ``date_sent`` and is not listed: it stays uncertain until a later run finds it.
        """
        path: str | None = f"/2010-04-01/Accounts/{self.config.account_sid}/Messages.json"
        params: dict[str, str] | None = {"To": to, "DateSent>": since.astimezone(UTC).date().isoformat(),
                                         "PageSize": "50"}
        earliest = since - self.CLOCK_SLACK
        found: list[tuple[datetime, str]] = []
        while path:
            response = call(lambda path=path, params=params: self._request("GET", path, params=params),
                            classify=classify, policy=self.policy, what="Twilio")
            page = response.json()
            for message in page.get("messages") or []:
                created = parsedate_to_datetime(message["date_created"])
                if created >= earliest and message["sid"] not in known and self._from_us(message):
                    found.append((created, message["sid"]))
            older = [m for m in page.get("messages") or [] if parsedate_to_datetime(m["date_created"]) < earliest]
            path, params = (None if older else page.get("next_page_uri")), None  # newest first: the rest is older
        return min(found)[1] if found else None

    def _from_us(self, message: dict[str, Any]) -> bool:
        if message.get("direction") != "outbound-api":
            return False
        if self.config.messaging_service_sid:
            return message.get("messaging_service_sid") == self.config.messaging_service_sid
        return message.get("from") == self.config.from_number

    def check(self) -> str:
        """One cheap authenticated call (the account resource): its status."""
        path = f"/2010-04-01/Accounts/{self.config.account_sid}.json"
        response = call(lambda: self._request("GET", path), classify=classify, policy=self.policy, what="Twilio")
        return str(response.json().get("status"))
