"""Which provider carries each message channel, and what a carrier must offer.

:data:`CARRIERS` is the one place a channel is tied to a provider: email goes through
SendGrid and SMS through Twilio today.  Another email or SMS provider is its module (a
class built from its config section and the retry policy, following :class:`EmailSender`
or :class:`SmsSender`), its config section, and its entry here; the notification pass
(:mod:`bsync.notices.send`) and the template checks only ask this module.

The records an email is made of (:class:`Email`, :class:`Attachment`) live here, not in the
SendGrid adapter, because every email carrier takes the same ones.  A carrier's module is
imported only when a run sends on its channel, so ``bsync sync`` without notifications
never loads the SendGrid client.
"""

from __future__ import annotations

import importlib
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True)
class Email:
    """One email as bsync composes it; the carrier turns it into its API's request."""

    to: str
    to_name: str | None
    subject: str | None
    text: str
    html: str | None = None
    template_id: str | None = None  # a provider-side template (SendGrid ``d-…``); subject/text come from it
    template_data: dict[str, str] | None = None
    attachments: tuple[Attachment, ...] = ()
    custom_args: dict[str, str] = field(default_factory=dict)
    categories: tuple[str, ...] = ()


class EmailSender(Protocol):
    """An email carrier.  ``send`` raises :class:`~bsync.errors.DeliveryUncertain` when the
    email may have gone out (never retried), :class:`~bsync.errors.RemoteError` when this
    message was refused, and Auth/RemoteUnavailable errors for the whole channel."""

    requests: int

    def send(self, email: Email) -> str | None: ...  # the provider's message id

    def close(self) -> None: ...


class SmsSender(Protocol):
    """An SMS carrier: the same outcomes as :class:`EmailSender`, and it can be asked
    afterwards whether an uncertain message went out (``find_sent``)."""

    requests: int

    def send(self, to: str, body: str) -> str | None: ...  # the provider's message id

    def find_sent(self, to: str, since: datetime, *, known: Collection[str] = ()) -> str | None: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class Carrier:
    """The provider of one channel: its config section (``[sendgrid]``: credentials and
    ``templates``; an email carrier's also ``from_email``/``from_name``, the invitation's
    organizer), its name for people, and the class that sends, as ``module:Class``."""

    section: str
    label: str
    sender: str

    def config(self, settings: Any) -> Any:
        """The carrier's config section, or None when it is not configured."""
        return getattr(settings, self.section, None)

    def build(self, settings: Any, policy: Any) -> Any:
        """The sender, built from its section and the run's retry policy."""
        module, _, name = self.sender.partition(":")
        return getattr(importlib.import_module(module), name)(self.config(settings), policy)


CARRIERS: dict[str, Carrier] = {
    "email": Carrier("sendgrid", "SendGrid", "bsync.notices.sendgrid:SendGridMailer"),
    "sms": Carrier("twilio", "Twilio", "bsync.notices.twilio:TwilioSms"),
}
"""Channel -> its carrier, in the order senders are built and templates checked."""
