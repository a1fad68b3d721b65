"""Running the notification pass: read the ledger, plan with :mod:`bsync.notices.plan`, send once.

Used by ``bsync remind`` (notices and reminders) and at the end of ``bsync sync`` (notices
only), so a booking that appears, moves or is cancelled is told to its customer whichever
way it arrived (Notion, Google, Cal.com, Sesami: all of them end up in the ledger, Notion
today).  The ledger is reached only through what it offers (its reads, ``name``, ``scope``
and ``overlap``); each channel's carrier comes from :data:`bsync.notices.channels.CARRIERS`.

Exactly once: before each send a ``notifications`` row in state ``intent`` and a journal
intent are committed; after it, both are marked done in one transaction.  A row still in
``intent`` at the next run means the run died between send and record: the message is
reported as *uncertain* and not resent (``--resend-uncertain`` does, ``--dismiss-uncertain``
records it as delivered).

Reads: notices look at pages edited since the last pass (the first pass reads everything
and records the existing bookings as a baseline, so switching notifications on does not
email every customer); reminders query the bookings starting within the longest lead.
"""

from __future__ import annotations

import json
from contextlib import ExitStack
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Callable

from bsync import registry
from bsync.config import Settings
from bsync.core.model import Booking
from bsync.core.runs import RunCounts, open_store, recorded_run, retry_policy
from bsync.core.store import Store
from bsync.core.timeutil import now_utc, parse_duration, parse_instant
from bsync.ledger.base import BookingLedger
from bsync.errors import AuthError, BsyncError, ConfigError, DeliveryUncertain, RemoteError, RemoteUnavailableError
from bsync.notices.channels import CARRIERS, Attachment, Email, SmsSender
from bsync.notices.messages import Templates, booking_fields, one_line
from bsync.notices.plan import (REMINDER_KIND, Message, NoticePlan, mask, parse_quiet_hours, plan_notices,
                                plan_reminders, plan_uncertain)

CURSOR_PROVIDER = "notify"


@dataclass
class NotifySummary(RunCounts):
    """What a notification pass did (``--json`` prints :meth:`as_json`)."""

    command: str
    sent: int = 0
    deferred: int = 0
    skipped: int = 0
    suppressed: int = 0
    uncertain: int = 0
    found_sent: int = 0  # uncertain messages the provider lists as sent, now recorded so

    def as_json(self) -> dict[str, Any]:
        return {"pair": self.command, "total": self.total, "sent": self.sent, "deferred": self.deferred,
                "skipped": self.skipped, "suppressed": self.suppressed, "uncertain": self.uncertain,
                "found_sent": self.found_sent,
                "errors": self.errors, "requests": self.requests, "failures": self.failures}

    @property
    def exit_code(self) -> int:
        return 1 if self.uncertain else super().exit_code


@dataclass
class NotifyResult:
    plan: NoticePlan
    summary: NotifySummary | None  # None for --plan


def notifications_enabled(settings: Settings) -> bool:
    """Whether ``bsync sync`` should send notices when it has finished."""
    n = settings.notifications
    if not n.after_sync or not n.kinds or getattr(settings, registry.LEDGER.section) is None:
        return False
    return any(CARRIERS[channel].config(settings) is not None for channel in n.channels)


def check_templates(settings: Settings) -> None:
    """Check the notification setup now (ConfigError naming the key): every configured
    template loads, and every notice channel has its section, so a `bsync sync` with a
    broken setup stops before it changes anything rather than after."""
    configured = {channel: carrier for channel, carrier in CARRIERS.items() if carrier.config(settings) is not None}
    if settings.notifications.kinds and configured:
        _require_channels(settings, list(settings.notifications.channels), "notifications.channels")
    for channel, carrier in configured.items():
        Templates(channel, carrier.config(settings).templates, section=carrier.section)


def _require_channels(settings: Settings, channels: list[str], key: str) -> None:
    for channel in channels:
        if CARRIERS[channel].config(settings) is None:
            section = CARRIERS[channel].section
            raise ConfigError(f"{key} includes {channel!r}, which needs a [{section}] section",
                              hint=f"add [{section}] (see config.example.toml) or remove {channel!r} from {key}")


class Senders:
    """The channel carriers (:data:`~bsync.notices.channels.CARRIERS`) and their templates,
    built only for the channels in use (so ``bsync sync`` without notifications never loads
    a carrier's client)."""

    def __init__(self, settings: Settings, channels: set[str]) -> None:
        policy = retry_policy(settings)
        email = CARRIERS["email"].config(settings)  # its sender is the invitation's organizer
        self.business = settings.notifications.business_name or (
            email.from_name if email else None) or "Your appointment"
        self.by_channel: dict[str, Any] = {}
        self.templates: dict[str, Templates] = {}
        for channel, carrier in CARRIERS.items():
            if channel in channels:
                self.by_channel[channel] = carrier.build(settings, policy)
                self.templates[channel] = Templates(channel, carrier.config(settings).templates,
                                                    section=carrier.section)
        self.organizer = email.from_email if email else None
        self.organizer_name = email.from_name if email else None

    @property
    def sms(self) -> Any:
        """The SMS carrier, or None when no SMS goes out in this run."""
        return self.by_channel.get("sms")

    @property
    def requests(self) -> int:
        return sum(sender.requests for sender in self.by_channel.values())

    def close(self) -> None:
        for sender in self.by_channel.values():
            sender.close()

    def send(self, message: Message, now: datetime) -> str | None:
        from bsync.notices.ics import booking_invite, ics_content_type, ics_filename

        booking = message.booking
        assert booking is not None and message.recipient is not None
        left = booking.start - now if message.kind == REMINDER_KIND else None
        values = booking_fields(booking, business=self.business, left=left, previous_start=message.previous_start)
        rendered = self.templates[message.channel].render(message.kind, values)
        if message.channel == "sms":
            return self.by_channel["sms"].send(message.recipient, rendered.text)
        attachments: tuple[Any, ...] = ()
        if message.kind != REMINDER_KIND and message.sequence is not None:
            method = "CANCEL" if message.kind == "cancellation" else "REQUEST"
            data = booking_invite(booking, method=method, sequence=message.sequence,
                                  organizer_email=self.organizer, organizer_name=self.organizer_name, stamp=now)
            attachments = (Attachment(ics_filename(method), ics_content_type(method), data),)
        to_name = one_line(booking.customer.name) if booking.customer.name else None  # a header: one line
        email = Email(to=message.recipient, to_name=to_name, subject=rendered.subject,
                      text=rendered.text, html=rendered.html, template_id=rendered.template_id,
                      template_data=dict(rendered.data) if rendered.data is not None else None,
                      attachments=attachments, categories=("bsync", message.kind),
                      custom_args={"bsync_key": booking.key, "bsync_kind": message.kind,
                                   "bsync_lead": message.lead})
        return self.by_channel["email"].send(email)


def run_notifications(settings: Settings, *, command: str = "remind", notices: bool = True, reminders: bool = True,
                      plan_only: bool = False, window: str | None = None, resend_uncertain: bool = False,
                      dismiss_uncertain: bool = False, notify_existing: bool = False, now: datetime | None = None,
                      on_plan: Callable[[NoticePlan], None] | None = None,
                      on_message: Callable[[Message], None] | None = None,
                      confirm_resend: Callable[[list[Message]], bool] | None = None,
                      report_bad_pages: bool = True) -> NotifyResult:
    """Plan and (unless ``plan_only``) send the due notices and reminders.

    ``confirm_resend`` is asked, before anything is sent, whether the uncertain *emails*
    ``resend_uncertain`` would send again may go (they were probably delivered: SendGrid
    can't be asked); those it declines stay uncertain.

    ``report_bad_pages`` off: pages that can't be read as bookings are left to the sync
    that just reported them (the notices after a sync), instead of being reported twice.
    """
    settings.require(registry.LEDGER.section)
    n, r = settings.notifications, settings.reminders
    notice_channels = list(n.channels) if notices and n.kinds else []
    reminder_channels = list(r.channels) if reminders else []
    if notices and n.kinds:
        _require_channels(settings, notice_channels, "notifications.channels")
    if reminders:
        _require_channels(settings, reminder_channels, "reminders.channels")
    now = now or now_utc()
    window_delta = parse_duration(window if window is not None else r.window)
    leads = {label: parse_duration(label) for label in r.leads}
    with ExitStack() as stack:
        # Templates are checked before anything is read: a typo fails the run (and --plan) at once.
        senders = Senders(settings, set(notice_channels) | set(reminder_channels))
        stack.callback(senders.close)
        store = open_store(stack, settings, plan_only)
        source: BookingLedger = registry.build(registry.LEDGER, settings)
        stack.callback(source.close)
        with recorded_run(store, command, command, plan_only=plan_only,
                          requests=lambda: source.requests + senders.requests) as record:
            scope = source.scope
            cache = store.cursor(source.name, f"{scope}:schema")
            if cache:
                source.use_cache(json.loads(cache))
            bookings: dict[str, Booking] = {}
            failures: list[dict[str, str]] = []
            baseline = False
            started = now_utc()
            if notice_channels:
                cursor = store.cursor(CURSOR_PROVIDER, f"{scope}:edited")
                baseline = cursor is None and not notify_existing
                since = None if cursor is None else parse_instant(cursor) - source.overlap
                read = source.read_bookings(since)
                bookings.update((b.key, b) for b in read.bookings)
                failures += [{"id": f.id, "reason": f.reason} for f in read.failures]
            if reminder_channels and leads:
                horizon = max(leads.values()) + window_delta
                read = source.read_bookings_starting(now - timedelta(days=1), now + horizon + timedelta(days=1))
                bookings.update((b.key, b) for b in read.bookings)
                seen = {f["id"] for f in failures}
                failures += [{"id": f.id, "reason": f.reason} for f in read.failures if f.id not in seen]
            intent_keys = store.notification_keys("intent")
            if resend_uncertain:
                for key in sorted(intent_keys - set(bookings)):
                    booking, _gone, _failure = source.fetch(key)
                    if booking is not None:
                        bookings[key] = booking
            ledger = store.notifications_for(sorted(set(bookings) | intent_keys))
            found_sent = 0 if plan_only or senders.sms is None else _settle_uncertain_sms(ledger, store, senders.sms)
            plan = NoticePlan()
            if not dismiss_uncertain:
                plan.messages += plan_uncertain(ledger, bookings, resend=resend_uncertain, now=now)
            held: set[str] = set()
            if notice_channels:
                held = times_in_open_conflict(store)
                plan.messages += plan_notices(bookings.values(), ledger, now=now, kinds=n.kinds,
                                              channels=notice_channels, baseline=baseline, held=held)
            if reminder_channels:
                plan.messages += plan_reminders(bookings.values(), ledger, now=now, leads=leads,
                                                channels=reminder_channels, window=window_delta,
                                                quiet=parse_quiet_hours(r.quiet_hours), tz=settings.tz)
            if plan_only:
                return NotifyResult(plan, None)
            if confirm_resend is not None:
                _confirm_email_resends(plan, confirm_resend)
            if on_plan is not None:
                on_plan(plan)
            summary = NotifySummary(command, total=len(plan.messages), found_sent=found_sent)
            record.summary = summary
            for failure in failures if report_bad_pages else ():
                summary.fail(failure["id"], failure["reason"])
            if dismiss_uncertain:
                summary.suppressed += store.dismiss_uncertain()
            _deliver(plan, store, senders, summary, record.run_id, now, on_message)
            waiting = any(m.op == "defer" and m.booking_key in held for m in plan.messages)
            if notice_channels and summary.halted is None and not waiting:
                # while a notice waits for a conflict, the pass keeps reading from the older
                # cursor: `resolve --take notion` edits no page, and the notice would be lost
                store.set_cursor(CURSOR_PROVIDER, f"{scope}:edited", started.isoformat())
            return NotifyResult(plan, summary)
    raise AssertionError("unreachable")


CONFLICT_TIME_FIELDS = frozenset({"start", "end", "cancelled"})
"""Conflicting fields that change what a notice tells the customer: when and whether."""


def times_in_open_conflict(store: Store) -> set[str]:
    """Keys of bookings whose time or cancellation is in an open (unresolved) sync conflict
    with any calendar."""
    return {link.source_key for calendar in registry.CALENDARS
            for link in store.conflicts(registry.link_pair(calendar))
            if CONFLICT_TIME_FIELDS & set((link.conflict or {}).get("fields") or {})}


def _confirm_email_resends(plan: NoticePlan, confirm: Callable[[list[Message]], bool]) -> None:
    """Keep the planned email resends only if ``confirm`` agrees; otherwise they stay uncertain."""
    emails = [m for m in plan.messages if m.resend and m.channel == "email"]
    if not emails or confirm(emails):
        return
    declined = {id(m) for m in emails}
    plan.messages = [replace(m, op="uncertain", resend=False, reason="not resent: the resend was not confirmed")
                     if id(m) in declined else m for m in plan.messages]


def _settle_uncertain_sms(ledger: dict[str, list[dict[str, Any]]], store: Store, sms: SmsSender) -> int:
    """Ask the SMS carrier (Twilio) about each uncertain SMS and record those it lists as sent (in the store
    and in ``ledger``, which the planner reads next); returns how many.

    Why: a run killed between Twilio's answer and the ledger update left the row in
    ``intent``; resending blindly duplicated the text every time it had gone out."""
    known = {row["provider_message_id"] for rows in ledger.values() for row in rows if row["provider_message_id"]}
    found = 0
    for key, rows in ledger.items():
        for index, row in enumerate(rows):
            if row["state"] != "intent" or row["channel"] != "sms" or not row["recipient"] or not row["updated_at"]:
                continue
            sid = sms.find_sent(row["recipient"], parse_instant(row["updated_at"]), known=known)
            if sid is None:
                continue
            store.notification_found_sent(booking_key=key, kind=row["kind"], lead=row["lead"], channel="sms",
                                          message_id=sid)
            rows[index] = {**row, "state": "sent", "provider_message_id": sid,
                           "sent_at": row["sent_at"] or row["updated_at"]}
            known.add(sid)
            found += 1
    return found


def _deliver(plan: NoticePlan, store: Store, senders: Senders, summary: NotifySummary, run_id: int | None,
             now: datetime, on_message: Callable[[Message], None] | None) -> None:
    for message in plan.messages:
        if message.op == "send":
            _send_one(message, store, senders, summary, run_id, now)
        elif message.op == "suppress":
            store.notification_suppressed(booking_key=message.booking_key, kind=message.kind, lead=message.lead,
                                          channel=message.channel, sequence=message.sequence,
                                          fingerprint=message.fingerprint, start=_start(message),
                                          reason=message.reason)
            summary.suppressed += 1
        elif message.op == "defer":
            summary.deferred += 1
        elif message.op == "skip":
            summary.skipped += 1
        elif message.op == "fail":
            title = message.booking.title if message.booking is not None else ""
            summary.fail(message.booking_key, f"{title!r}: {message.kind} by {message.channel} not sent: "
                                              f"{message.reason}")
        elif message.op == "uncertain":
            summary.uncertain += 1
            summary.failures.append({"id": message.booking_key,
                                     "reason": f"{message.kind} {message.lead} by {message.channel} to "
                                               f"{mask(message.recipient)}: uncertain ({message.reason})"})
        if on_message is not None:
            on_message(message)


def _start(message: Message) -> str:
    return message.booking.start.isoformat() if message.booking is not None else ""


def _send_one(message: Message, store: Store, senders: Senders, summary: NotifySummary, run_id: int | None,
              now: datetime) -> None:
    ident = dict(booking_key=message.booking_key, kind=message.kind, lead=message.lead, channel=message.channel)
    entry = store.notification_intent(run_id, recipient=message.recipient or "", sequence=message.sequence,
                                      fingerprint=message.fingerprint, start=_start(message), **ident)
    what = f"{message.kind} ({message.lead}) by {message.channel} to {mask(message.recipient)}"
    try:
        message_id = senders.send(message, now)
    except DeliveryUncertain as exc:
        summary.uncertain += 1
        summary.failures.append({"id": message.booking_key, "reason": f"{what}: uncertain: {exc}"})
        return
    except RemoteError as exc:
        store.notification_failed(entry, str(exc), retryable=False, **ident)
        summary.fail(message.booking_key, f"{what}: {exc}")
        return
    except (AuthError, RemoteUnavailableError) as exc:
        store.notification_failed(entry, str(exc), retryable=True, **ident)
        summary.fail(message.booking_key, f"{what}: {exc}")
        raise
    except BsyncError:
        raise
    store.notification_sent(entry, message_id=message_id, **ident)
    summary.sent += 1
