"""Properties of the notification planner over random histories (pure, no HTTP).

A booking is created, moved, re-staffed, cancelled and re-opened at random while
`bsync remind` runs at random times (and some runs die between sending and recording).
Whatever happens: nothing is sent twice, no reminder goes out in quiet hours, after the
start or for a cancelled booking, and every change notice carries a higher SEQUENCE
than the last message the customer got about that booking.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from bsync.core.model import Booking, Customer, Status
from bsync.notices.plan import plan_notices, plan_reminders, plan_uncertain, quiet_until

WARSAW = ZoneInfo("Europe/Warsaw")
T0 = datetime(2026, 3, 25, 9, 0, tzinfo=timezone.utc)  # a DST change (29 March) is within reach
LEADS = {"24h": timedelta(hours=24), "2h": timedelta(hours=2)}
QUIET = (time(21, 0), time(8, 0))
WINDOW = timedelta(minutes=15)

edits = st.one_of(
    st.tuples(st.just("move"), st.integers(-48, 96)),          # hours from now to the new start
    st.tuples(st.just("staff"), st.sampled_from(["Anna", "Ben"])),
    st.tuples(st.just("cancel"), st.just(0)),
    st.tuples(st.just("reopen"), st.just(0)),
    st.tuples(st.just("notes"), st.just(0)),
)
# How a run ends: normally, killed between the k-th send and its record, or the k-th send
# refused for good (a 400: that message fails, the run goes on) or SendGrid down (the
# message fails retryably and the run stops, as RemoteUnavailableError does).
endings = st.one_of(st.none(), st.tuples(st.sampled_from(["die", "refused", "down"]), st.integers(0, 2)))
# Each step: minutes later, an edit, whether remind runs, and how that run ends.
steps = st.lists(st.tuples(st.integers(5, 600), edits, st.booleans(), endings), min_size=1, max_size=25)


class Ledger:
    """The notifications table, as the notifier keeps it (unique on booking × kind × lead × channel)."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str, str, str], dict] = {}
        self.delivered: list[tuple[datetime, object]] = []  # (when, message) the customer received

    def view(self) -> dict[str, list[dict]]:
        out: dict[str, list[dict]] = {}
        for row in self.rows.values():
            out.setdefault(row["booking_key"], []).append(row)
        return out

    def apply(self, messages, now: datetime, *, ending: tuple[str, int] | None) -> None:
        sends = 0
        how, at = ending or ("", -1)
        for m in messages:
            if m.op == "suppress":
                self.rows.setdefault(m.ident, self._row(m, "suppressed", now))
            if m.op != "send":
                continue
            assert m.ident not in self.rows or self.rows[m.ident]["state"] == "failed", f"planned twice: {m.ident}"
            self.rows[m.ident] = self._row(m, "intent", now)
            if at == sends and how in ("refused", "down"):
                self.rows[m.ident].update(state="failed", retryable=int(how == "down"))
                if how == "down":
                    return
                sends += 1
                continue
            self.delivered.append((now, m))
            if at == sends and how == "die":  # killed between sending and recording: the row stays "intent"
                return
            sends += 1
            self.rows[m.ident]["state"] = "sent"
            self.rows[m.ident]["sent_at"] = now.isoformat()

    @staticmethod
    def _row(m, state: str, now: datetime) -> dict:
        return {"booking_key": m.booking_key, "kind": m.kind, "lead": m.lead, "channel": m.channel, "state": state,
                "recipient": m.recipient, "sequence": m.sequence, "fingerprint": m.fingerprint,
                "start": m.booking.start.isoformat() if m.booking else None, "sent_at": None, "retryable": 0}


@settings(max_examples=150, deadline=None)
@given(steps, st.integers(1, 72))
def test_nothing_twice_nothing_in_quiet_hours_sequences_grow(history, first_start_h):
    booking = Booking(key="notion:p", title="Rex", start=T0 + timedelta(hours=first_start_h),
                      end=T0 + timedelta(hours=first_start_h + 1), timezone="Europe/Warsaw",
                      status=Status.SCHEDULED, customer=Customer("Jane", "jane@example.com", "+48600100200"),
                      staff="Anna")
    ledger = Ledger()
    now = T0
    for minutes, (edit, value), runs, ending in history:
        now += timedelta(minutes=minutes)
        if edit == "move":
            start = now + timedelta(hours=value)
            booking = replace(booking, start=start, end=start + timedelta(hours=1))
        elif edit == "staff":
            booking = replace(booking, staff=value)
        elif edit == "cancel":
            booking = replace(booking, status=Status.CANCELLED)
        elif edit == "reopen":
            booking = replace(booking, status=Status.SCHEDULED)
        else:
            booking = replace(booking, notes=f"note {minutes}")
        if not runs:
            continue
        view = ledger.view()
        messages = plan_uncertain(view, {booking.key: booking}, resend=False, now=now)
        messages += plan_notices([booking], view, now=now, kinds=("confirmation", "change", "cancellation"),
                                 channels=("email",))
        messages += plan_reminders([booking], view, now=now, leads=LEADS, channels=("email", "sms"),
                                   window=WINDOW, quiet=QUIET, tz=WARSAW)
        assert len({m.ident for m in messages if m.op == "send"}) == len([m for m in messages if m.op == "send"])
        ledger.apply(messages, now, ending=ending)

    sent = [m.ident for _, m in ledger.delivered]
    assert len(sent) == len(set(sent)), "a message went out twice"
    last_sequence = -1
    for when, m in ledger.delivered:
        if m.kind == "reminder":
            assert quiet_until(when, QUIET, WARSAW) is None, "a reminder in quiet hours"
            assert m.booking.start > when and m.booking.status is Status.SCHEDULED
            assert when + WINDOW >= m.booking.start - LEADS[m.lead_label], "a reminder before its lead"
        else:
            assert m.sequence > last_sequence, "an invitation that doesn't supersede the previous one"
            last_sequence = m.sequence
