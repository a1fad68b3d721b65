"""Which customer messages are due: a pure planner, like :mod:`bsync.core.plan` for sync.

Two kinds of messages:

* **notices** -- a confirmation when a booking first appears, a change notice when its
  time, service or staff changes, a cancellation notice when it is cancelled (and a new
  confirmation if it is re-opened);
* **reminders** -- one per configured lead ("24h", "2h") and channel, before the start.

The planner compares the bookings with the *ledger* (rows of the ``notifications`` table,
which is unique on booking × kind × lead × channel) and returns :class:`Message` entries
with an op: ``send``, ``defer`` (quiet hours, or a time in an open conflict: later, not dropped), ``skip`` (with the
reason: opted out, no address, superseded, ...), ``fail`` (the booking's address can't be
used, e.g. a phone that is no number: reported as an error until someone fixes it),
``suppress`` (recorded as not sent, e.g. bookings that existed before notifications were
switched on) or ``uncertain`` (an earlier
run died between sending and recording: it is not sent again unless asked).

The ``lead`` column identifies the occasion, so "never twice" is a unique index:

* notices: ``seq:N`` -- N is the iCalendar SEQUENCE of the invite, one higher per notice;
* reminders: ``24h@2026-11-24T09:00:00+00:00`` -- the lead and the start it was for, so a
  booking moved after its reminder went out gets a new one for the new time.

Nothing here does I/O; time comes in as ``now``.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any, Collection, Iterable, Mapping
from zoneinfo import ZoneInfo

from bsync.core.model import E164_RE, Booking, Status

NOTICE_KINDS = ("confirmation", "change", "cancellation")
"""Messages about the booking itself; ``[notifications] kinds`` and template keys name these."""
REMINDER_KIND = "reminder"
"""The one kind sent before a booking starts (per ``[reminders] leads``), not about a change."""
DELIVERED = ("sent", "intent", "suppressed")  # states that count as "the customer has (or had) it"

Row = Mapping[str, Any]


@dataclass(frozen=True)
class Message:
    """One planned message (or a decision not to send one), with the reason why."""

    op: str  # send | defer | skip | fail | suppress | uncertain
    kind: str  # confirmation | change | cancellation | reminder
    booking_key: str
    lead: str  # the ledger tag: "seq:N" or "<lead>@<start>"
    channel: str  # email | sms
    reason: str
    booking: Booking | None = None
    recipient: str | None = None
    sequence: int | None = None
    fingerprint: str = ""
    due_at: datetime | None = None  # when a deferred message may go
    previous_start: datetime | None = None  # for change notices: the time it moved from
    lead_label: str | None = None  # "24h" for reminders
    resend: bool = False  # an explicit resend of an uncertain message

    @property
    def ident(self) -> tuple[str, str, str, str]:
        return (self.booking_key, self.kind, self.lead, self.channel)


@dataclass
class NoticePlan:
    """The messages one notification pass decided on (named apart from the sync ``Plan``)."""

    messages: list[Message] = field(default_factory=list)

    def by_op(self, op: str) -> list[Message]:
        return [m for m in self.messages if m.op == op]

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for m in self.messages:
            out[m.op] = out.get(m.op, 0) + 1
        return out


# -- small pure helpers --------------------------------------------------------------------

def fingerprint(booking: Booking) -> str:
    """What a change notice is about: the time, the service and the staff member."""
    parts = (booking.start.isoformat(), booking.end.isoformat(), booking.all_day, booking.service or "",
             booking.staff or "")
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:16]


def e164(phone: str | None) -> str | None:
    """``+48 601-234-567`` -> ``+48601234567``; None when the number has no country code,
    because guessing one would text a stranger."""
    if not phone:
        return None
    digits = re.sub(r"[\s\-().]", "", phone)
    if digits.startswith("00"):
        digits = "+" + digits[2:]
    return digits if E164_RE.fullmatch(digits) else None


def recipient(booking: Booking, channel: str) -> tuple[str | None, str]:
    """The address for ``channel``, or None with the reason it can't be reached."""
    if channel == "email":
        return (booking.customer.email, "") if booking.customer.email else (None, "no email address")
    number = e164(booking.customer.phone)
    if number:
        return number, ""
    if booking.customer.phone:
        return None, f"phone {_shown(booking.customer.phone)!r} is not a valid number (write it as +CC…, " \
                     f"with its country code)"
    return None, "no phone number"


def unusable_address(booking: Booking, channel: str) -> bool:
    """Whether the booking *has* an address for ``channel`` that can't be used (a phone
    like "call me maybe"): a data error to report, unlike a missing one, which is a skip."""
    return channel == "sms" and bool(booking.customer.phone) and e164(booking.customer.phone) is None


def _shown(phone: str) -> str:
    """A bad phone value as it may be printed: text that is no number ("call me maybe")
    as is, so the owner can find it; something nearly a number masked like any number."""
    return mask(phone) if sum(c.isdigit() for c in phone) >= 7 else phone


def mask(address: str | None) -> str:
    """``jane.doe@example.com`` -> ``ja***@example.com``; ``+48601234567`` -> ``+48*******567``."""
    if not address:
        return ""
    if "@" in address:
        local, _, domain = address.partition("@")
        return f"{local[:2]}***@{domain}"
    return address[:3] + "*" * max(len(address) - 6, 1) + address[-3:]


def reminder_tag(label: str, start: datetime) -> str:
    return f"{label}@{start.isoformat()}"


def parse_quiet_hours(text: str | None) -> tuple[time, time] | None:
    if not text:
        return None
    first, _, last = text.partition("-")
    return time.fromisoformat(first), time.fromisoformat(last)


def quiet_until(now: datetime, quiet: tuple[time, time] | None, tz: ZoneInfo) -> datetime | None:
    """When the quiet hours containing ``now`` end (aware), or None if ``now`` is not in them.

    The range is local business time and may wrap past midnight ("21:00-08:00").
    """
    if quiet is None or quiet[0] == quiet[1]:
        return None
    local = now.astimezone(tz)
    first, last = quiet
    t = local.time()
    inside = (first <= t < last) if first < last else (t >= first or t < last)
    if not inside:
        return None
    day = local.date() if (first < last or t < last) else local.date() + timedelta(days=1)
    return datetime.combine(day, last, tz)


def _rows(ledger: Mapping[str, list[Row]], key: str, channel: str, kinds: Iterable[str]) -> list[Row]:
    wanted = set(kinds)
    return [r for r in ledger.get(key, ()) if r["channel"] == channel and r["kind"] in wanted]


def _seq(row: Row) -> int:
    return int(row["sequence"] or 0)


def _parse(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


# -- notices -------------------------------------------------------------------------------

def plan_notices(bookings: Iterable[Booking], ledger: Mapping[str, list[Row]], *, now: datetime,
                 kinds: Iterable[str], channels: Iterable[str], baseline: bool = False,
                 held: Collection[str] = ()) -> list[Message]:
    """Confirmation, change and cancellation notices the bookings call for.

    ``baseline`` marks the first pass over a business's bookings: their confirmations are
    recorded as suppressed instead of sent, so switching notifications on never emails the
    whole customer list; later changes to those bookings still get change notices.

    ``held``: keys of bookings whose time (or cancellation) is in an open sync conflict
    (``conflict = "manual"``).  Their notices are deferred: telling the customer Notion's
    side, then the other side after ``bsync resolve``, sends two notices, one of them wrong.
    """
    enabled = set(kinds)
    out: list[Message] = []
    for booking in bookings:
        for channel in channels:
            message = _notice_for(booking, _rows(ledger, booking.key, channel, NOTICE_KINDS), channel, now,
                                  enabled, baseline, booking.key in held)
            if message is not None:
                out.append(message)
    return out


def _notice_for(booking: Booking, rows: list[Row], channel: str, now: datetime, enabled: set[str],
                baseline: bool, held: bool) -> Message | None:
    delivered = [r for r in rows if r["state"] in DELIVERED]
    last = max(delivered, key=_seq) if delivered else None
    print_ = fingerprint(booking)
    upcoming = booking.end > now
    scheduled = booking.status is Status.SCHEDULED
    previous_start = None
    if last is None:
        if not (scheduled and upcoming):
            return None
        kind, why = "confirmation", "new booking"
    elif last["kind"] == "cancellation":
        if not (scheduled and upcoming):
            return None
        kind, why = "confirmation", "re-opened after its cancellation"
    elif booking.status is Status.CANCELLED:
        if not upcoming:
            return None
        kind, why = "cancellation", "cancelled"
    elif scheduled and upcoming and last["fingerprint"] != print_:
        kind, why = "change", "time, service or staff changed"
        previous_start = _parse(last["start"])
    else:
        return None

    newest = max(rows, key=_seq) if rows else None
    if newest is not None and newest["state"] == "failed" and newest["kind"] == kind:
        sequence = _seq(newest)  # the failed notice is retried with today's content
    else:
        sequence = _seq(newest) + 1 if newest is not None else 0
    base = dict(kind=kind, booking_key=booking.key, lead=f"seq:{sequence}", channel=channel, booking=booking,
                sequence=sequence, fingerprint=print_, previous_start=previous_start)
    if baseline and last is None:
        return Message("suppress", reason="existed before notifications were on (--notify-existing sends it)",
                       **base)
    if kind not in enabled:
        return Message("suppress", reason=f"{kind} notices are off ([notifications] kinds)", **base)
    if held:
        return Message("defer", reason=f"time in an open conflict: sent once `bsync resolve {booking.key}` "
                                       "and a sync settle it", **base)
    address, why_not = recipient(booking, channel)
    if newest is not None and newest["state"] == "failed" and newest["kind"] == kind \
            and not newest["retryable"] and newest["recipient"] == address and newest["fingerprint"] == print_:
        return None  # refused for good (bad address); tried again when the address or booking changes
    if booking.notifications_off:
        return Message("suppress", reason="customer opted out", **base)
    if address is None:
        return Message("fail" if unusable_address(booking, channel) else "skip", reason=why_not, **base)
    return Message("send", reason=why, recipient=address, **base)


# -- reminders -----------------------------------------------------------------------------

def plan_reminders(bookings: Iterable[Booking], ledger: Mapping[str, list[Row]], *, now: datetime,
                   leads: Mapping[str, timedelta], channels: Iterable[str], window: timedelta,
                   quiet: tuple[time, time] | None, tz: ZoneInfo) -> list[Message]:
    """Reminders due now: for each lead whose time (start − lead) falls before now + window.

    A run every ``window`` therefore sends each reminder up to ``window`` early, never late.
    When several leads are due at once, only the one whose time is nearest ``now`` goes
    (:func:`nearest_lead`); longer leads are superseded by it, and shorter ones are left to
    a later run.  A lead is also skipped when the customer got a confirmation or change
    notice after that lead's time had come (it already told them).
    """
    out: list[Message] = []
    ordered = sorted(leads.items(), key=lambda item: item[1])
    for booking in bookings:
        if booking.status is not Status.SCHEDULED or booking.start <= now:
            continue
        due = [(label, delta) for label, delta in ordered if now + window >= booking.start - delta]
        if not due:
            continue
        chosen = nearest_lead(due, booking.start, now)
        due = [(label, delta) for label, delta in due if delta >= chosen[1]]
        for channel in channels:
            out.extend(_reminders_for(booking, due, ledger, channel, now, quiet, tz))
    return out


def nearest_lead(due: list[tuple[str, timedelta]], start: datetime, now: datetime) -> tuple[str, timedelta]:
    """The due lead whose time (start − lead) is nearest ``now``: the one to send.

    Why not simply the shortest: with a wide window (a once-a-day ``--window 24h``) both
    the 24h and the 2h lead of a booking 26 h ahead fall inside it, and the shortest
    would send "2h" a day early and never the 24h one.  The nearest is the 24h (due in
    2 h); the 2h one's time is the next daily run.  When every lead's time has passed (a
    booking made at short notice) the nearest is the shortest, as before.
    """
    return min(due, key=lambda item: (abs(start - item[1] - now), item[1]))


def _reminders_for(booking: Booking, due: list[tuple[str, timedelta]], ledger: Mapping[str, list[Row]],
                   channel: str, now: datetime, quiet: tuple[time, time] | None, tz: ZoneInfo) -> list[Message]:
    rows = {r["lead"]: r for r in _rows(ledger, booking.key, channel, (REMINDER_KIND,))}
    notices = [r for r in _rows(ledger, booking.key, channel, ("confirmation", "change"))
               if r["state"] == "sent" and r["sent_at"] and r["fingerprint"] == fingerprint(booking)]
    address, why_not = recipient(booking, channel)
    chosen = due[0][0]  # plan_reminders keeps the chosen lead and the longer ones it supersedes
    out = []
    for label, delta in due:
        tag = reminder_tag(label, booking.start)
        row = rows.get(tag)
        if row is not None and (row["state"] in DELIVERED or (not row["retryable"] and row["recipient"] == address)):
            continue  # sent, being resolved as uncertain, or refused for good
        base = dict(kind=REMINDER_KIND, booking_key=booking.key, lead=tag, channel=channel, booking=booking,
                    fingerprint=fingerprint(booking), lead_label=label)
        if label != chosen:
            out.append(Message("skip", reason=f"superseded by the {chosen} reminder", **base))
            continue
        told = [r for r in notices if _parse(r["sent_at"]) >= booking.start - delta]
        if told:
            out.append(Message("skip", reason=f"the {told[-1]['kind']} notice went out within the {label} lead",
                               **base))
            continue
        if booking.notifications_off:
            out.append(Message("skip", reason="customer opted out", **base))
            continue
        if address is None:
            out.append(Message("fail" if unusable_address(booking, channel) else "skip", reason=why_not, **base))
            continue
        until = quiet_until(now, quiet, tz)
        if until is not None:
            if until >= booking.start:
                out.append(Message("skip", reason=f"quiet hours last until {until:%H:%M}, after the start",
                                   recipient=address, **base))
            else:
                out.append(Message("defer", reason=f"quiet hours: deferred to {until:%H:%M}", recipient=address,
                                   due_at=until, **base))
            continue
        out.append(Message("send", reason=f"{label} before the start", recipient=address, **base))
    return out


# -- uncertain -----------------------------------------------------------------------------

UNCERTAIN_HINTS = {
    "email": "an earlier run stopped after SendGrid accepted it or while it answered: it was probably "
             "delivered (SendGrid offers no lookup to check); `bsync remind --dismiss-uncertain` records it "
             "as delivered, `bsync remind --resend-uncertain --yes` sends it again, a duplicate if it arrived",
    "sms": "an earlier run stopped between sending and recording and Twilio lists no such text sent (yet); "
           "`bsync remind` asks again, `bsync remind --resend-uncertain` sends it again",
}
"""What to tell the owner about an uncertain message, per channel: Twilio can be asked
(the notifier does before planning), SendGrid cannot."""


def plan_uncertain(ledger: Mapping[str, list[Row]], bookings: Mapping[str, Booking], *, resend: bool,
                   now: datetime) -> list[Message]:
    """Messages an earlier run began to send and never recorded: maybe sent, maybe not.

    They are reported, not resent: a duplicate is worse than asking.  With ``resend`` (the
    explicit ``--resend-uncertain``) those still relevant are sent again.
    """
    out = []
    for key, rows in sorted(ledger.items()):
        for row in rows:
            if row["state"] != "intent":
                continue
            booking = bookings.get(key)
            base = dict(kind=row["kind"], booking_key=key, lead=row["lead"], channel=row["channel"],
                        booking=booking, recipient=row["recipient"], sequence=row["sequence"],
                        fingerprint=row["fingerprint"] or "", previous_start=None,
                        lead_label=row["lead"].split("@", 1)[0] if row["kind"] == REMINDER_KIND else None)
            if not resend:
                out.append(Message("uncertain", reason=UNCERTAIN_HINTS.get(row["channel"], UNCERTAIN_HINTS["sms"]),
                                   **base))
            elif booking is None:
                out.append(Message("uncertain", reason="its booking is no longer in Notion; not resent", **base))
            elif row["kind"] == REMINDER_KIND and (booking.start <= now or booking.status is not Status.SCHEDULED
                                               or reminder_tag(base["lead_label"], booking.start) != row["lead"]):
                out.append(Message("uncertain", reason="the booking has since moved, started or been cancelled; "
                                   "not resent", **base))
            else:
                base["fingerprint"] = fingerprint(booking)
                out.append(Message("send", reason="resending an uncertain message (--resend-uncertain)",
                                   resend=True, **base))
    return out
