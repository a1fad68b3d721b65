"""The notification planner: which message goes to whom, when, and why not (pure, no HTTP)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, time, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bsync.notices.messages import Templates, booking_fields, one_line, time_left
from bsync.core.model import Booking, Customer, Status
from bsync.notices.plan import (
    e164,
    fingerprint,
    mask,
    plan_notices,
    plan_reminders,
    plan_uncertain,
    quiet_until,
    reminder_tag,
)

UTC = timezone.utc
WARSAW = ZoneInfo("Europe/Warsaw")
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)  # 11:00 in Warsaw
LEADS = {"24h": timedelta(hours=24), "2h": timedelta(hours=2)}
QUIET = (time(21, 0), time(8, 0))


def booking(key: str = "notion:a", *, start: datetime | None = None, hours: float = 1, status: Status = Status.SCHEDULED,
            email: str | None = "jane@example.com", phone: str | None = "+48 600 100 200", **kw: Any) -> Booking:
    start = start or NOW + timedelta(days=2)
    return Booking(key=key, title="Rex – groom", start=start, end=start + timedelta(hours=hours),
                   timezone="Europe/Warsaw", status=status, customer=Customer("Jane", email, phone),
                   service="Full groom", staff="Anna", **kw)


def row(b: Booking, kind: str, *, lead: str | None = None, state: str = "sent", sequence: int | None = 0,
        channel: str = "email", sent_at: datetime | None = None, recipient: str | None = None,
        retryable: bool = False, print_: str | None = None) -> dict[str, Any]:
    return {"booking_key": b.key, "kind": kind, "lead": lead or f"seq:{sequence}", "channel": channel,
            "state": state, "recipient": recipient or b.customer.email, "sequence": sequence,
            "fingerprint": print_ or fingerprint(b), "start": b.start.isoformat(),
            "sent_at": (sent_at or NOW - timedelta(days=3)).isoformat() if state == "sent" else None,
            "provider_message_id": "m1", "attempts": 1, "error": None, "retryable": int(retryable)}


def notices(bookings: list[Booking], ledger: dict[str, list[dict[str, Any]]] | None = None, **kw: Any):
    kw.setdefault("kinds", ("confirmation", "change", "cancellation"))
    kw.setdefault("channels", ("email",))
    return plan_notices(bookings, ledger or {}, now=NOW, **kw)


def reminders(bookings: list[Booking], ledger: dict[str, list[dict[str, Any]]] | None = None, *,
              now: datetime = NOW, window: timedelta = timedelta(minutes=15), quiet=None, channels=("email",)):
    return plan_reminders(bookings, ledger or {}, now=now, leads=LEADS, channels=channels, window=window,
                          quiet=quiet, tz=WARSAW)


# -- notices -------------------------------------------------------------------------------

def test_a_new_booking_gets_a_confirmation_with_sequence_0():
    [m] = notices([booking()])
    assert (m.op, m.kind, m.lead, m.sequence, m.recipient) == ("send", "confirmation", "seq:0", 0, "jane@example.com")


def test_the_first_pass_records_existing_bookings_without_sending():
    [m] = notices([booking()], baseline=True)
    assert m.op == "suppress" and "--notify-existing" in m.reason


def test_past_and_cancelled_new_bookings_get_nothing():
    past = booking(start=NOW - timedelta(hours=3))
    assert notices([past, booking("notion:b", status=Status.CANCELLED)]) == []


def test_a_moved_booking_gets_a_change_notice_numbered_after_the_confirmation():
    b = booking()
    moved = replace(b, start=b.start + timedelta(hours=2), end=b.end + timedelta(hours=2))
    [m] = notices([moved], {b.key: [row(b, "confirmation")]})
    assert (m.op, m.kind, m.sequence, m.lead) == ("send", "change", 1, "seq:1")
    assert m.previous_start == b.start


def test_service_or_staff_change_is_a_change_but_notes_are_not():
    b = booking()
    ledger = {b.key: [row(b, "confirmation")]}
    assert notices([replace(b, notes="bring treats")], ledger) == []
    [m] = notices([replace(b, staff="Ben")], ledger)
    assert m.kind == "change"


def test_cancelling_sends_a_cancellation_and_reopening_a_new_confirmation():
    b = booking()
    [m] = notices([replace(b, status=Status.CANCELLED)], {b.key: [row(b, "confirmation")]})
    assert (m.kind, m.sequence) == ("cancellation", 1)
    ledger = {b.key: [row(b, "confirmation"), row(b, "cancellation", sequence=1)]}
    [m] = notices([b], ledger)
    assert (m.kind, m.sequence, m.reason) == ("confirmation", 2, "re-opened after its cancellation")


def test_nothing_new_nothing_sent():
    b = booking()
    assert notices([b], {b.key: [row(b, "confirmation")]}) == []


def test_an_uncertain_notice_counts_as_delivered():
    b = booking()
    assert notices([b], {b.key: [row(b, "confirmation", state="intent")]}) == []


def test_a_kind_switched_off_is_recorded_not_sent_so_later_changes_still_number_right():
    [m] = notices([booking()], kinds=("change", "cancellation"))
    assert m.op == "suppress" and "off" in m.reason


def test_opted_out_and_unreachable_customers():
    [m] = notices([booking(notifications_off=True)])
    assert (m.op, m.reason) == ("suppress", "customer opted out")
    [m] = notices([booking(email=None)])
    assert (m.op, m.reason) == ("skip", "no email address")


def test_a_refused_address_is_not_retried_until_it_changes():
    b = booking(email="bad@example.com")
    ledger = {b.key: [row(b, "confirmation", state="failed", retryable=False)]}
    assert notices([b], ledger) == []
    fixed = replace(b, customer=Customer("Jane", "jane@example.com"))
    [m] = notices([fixed], ledger)
    assert (m.op, m.kind, m.sequence, m.recipient) == ("send", "confirmation", 0, "jane@example.com")


def test_a_transient_failure_is_retried_with_the_same_sequence():
    b = booking()
    [m] = notices([b], {b.key: [row(b, "confirmation", state="failed", retryable=True)]})
    assert (m.op, m.sequence) == ("send", 0)


def test_a_booking_whose_time_is_in_an_open_conflict_gets_no_notice_until_it_is_settled():
    b = booking()
    moved = replace(b, start=b.start + timedelta(hours=2), end=b.end + timedelta(hours=2))
    ledger = {b.key: [row(b, "confirmation")]}
    [m] = notices([moved], ledger, held={b.key})
    assert (m.op, m.kind) == ("defer", "change") and m.reason.startswith("time in an open conflict")
    [m] = notices([replace(b, status=Status.CANCELLED)], ledger, held={b.key})
    assert (m.op, m.kind) == ("defer", "cancellation")
    [m] = notices([moved], ledger, held={"notion:other"})
    assert (m.op, m.kind) == ("send", "change")


def test_sms_notices_need_an_international_number():
    [m] = notices([booking(phone="600 100 200")], channels=("sms",))
    assert m.op == "fail" and "country code" in m.reason and "600 100 200" not in m.reason  # masked
    [m] = notices([booking()], channels=("sms",))
    assert m.recipient == "+48600100200"


def test_a_phone_that_is_no_number_is_a_failure_not_a_silent_skip():
    b = booking(phone="call me maybe", start=NOW + timedelta(hours=2))
    [m] = notices([b], channels=("sms",))
    assert (m.op, m.reason.split(" (")[0]) == ("fail", "phone 'call me maybe' is not a valid number")
    [email] = notices([b], channels=("email",))
    assert email.op == "send"  # the other channel still goes
    assert [(m.op, m.lead_label) for m in reminders([b], channels=("sms",)) if m.op != "skip"] == [("fail", "2h")]
    assert [m.op for m in notices([booking(phone=None)], channels=("sms",))] == ["skip"]  # none is no error


# -- reminders -----------------------------------------------------------------------------

def test_no_reminder_before_its_lead():
    assert reminders([booking(start=NOW + timedelta(hours=25))]) == []


def test_the_24h_reminder_within_the_window_and_keyed_by_start():
    b = booking(start=NOW + timedelta(hours=24, minutes=10))
    [m] = reminders([b])
    assert (m.op, m.kind, m.lead_label, m.lead) == ("send", "reminder", "24h", reminder_tag("24h", b.start))


def test_both_leads_due_sends_only_the_shortest():
    b = booking(start=NOW + timedelta(hours=1))
    ops = {m.lead_label: (m.op, m.reason) for m in reminders([b])}
    assert ops == {"2h": ("send", "2h before the start"), "24h": ("skip", "superseded by the 2h reminder")}


def test_a_sent_reminder_is_not_sent_again_but_a_moved_booking_gets_a_new_one():
    b = booking(start=NOW + timedelta(hours=24))
    ledger = {b.key: [row(b, "reminder", lead=reminder_tag("24h", b.start), sequence=None)]}
    assert reminders([b], ledger) == []
    moved = replace(b, start=b.start + timedelta(hours=3), end=b.end + timedelta(hours=3))
    [m] = reminders([moved], ledger, now=NOW + timedelta(hours=3))
    assert m.op == "send" and m.lead == reminder_tag("24h", moved.start)


def test_cancelled_and_started_bookings_get_no_reminder():
    assert reminders([booking(start=NOW + timedelta(hours=2), status=Status.CANCELLED)]) == []
    assert reminders([booking(start=NOW - timedelta(minutes=5))]) == []


def test_quiet_hours_defer_until_they_end():
    late = datetime(2026, 11, 23, 22, 30, tzinfo=WARSAW)  # 22:30 local
    b = booking(start=datetime(2026, 11, 24, 22, 20, tzinfo=WARSAW))
    [m] = reminders([b], now=late, quiet=QUIET)
    assert m.op == "defer" and m.due_at == datetime(2026, 11, 24, 8, 0, tzinfo=WARSAW)
    [m] = reminders([b], now=datetime(2026, 11, 24, 8, 0, tzinfo=WARSAW), quiet=QUIET)
    assert (m.op, m.lead_label) == ("send", "24h")  # deferred, not dropped


def test_quiet_hours_that_outlast_the_start_skip_with_a_reason():
    b = booking(start=datetime(2026, 11, 24, 7, 30, tzinfo=WARSAW))
    [m] = [m for m in reminders([b], now=datetime(2026, 11, 24, 6, 0, tzinfo=WARSAW), quiet=QUIET)
           if m.lead_label == "2h"]
    assert m.op == "skip" and "after the start" in m.reason


def test_opt_out_and_missing_address_are_reported():
    b = booking(start=NOW + timedelta(hours=2), notifications_off=True)
    assert [(m.op, m.reason) for m in reminders([b]) if m.lead_label == "2h"] == [("skip", "customer opted out")]
    b = booking(start=NOW + timedelta(hours=2), phone=None)
    assert [(m.op, m.reason) for m in reminders([b], channels=("sms",)) if m.lead_label == "2h"] == [
        ("skip", "no phone number")]


def test_a_confirmation_sent_inside_the_lead_stands_in_for_the_reminder():
    b = booking(start=NOW + timedelta(hours=20))
    ledger = {b.key: [row(b, "confirmation", sent_at=NOW - timedelta(hours=1))]}
    [m] = reminders([b], ledger)
    assert m.op == "skip" and "confirmation notice" in m.reason


def test_a_wide_window_sends_early_for_a_daily_cron():
    b = booking(start=NOW + timedelta(hours=40))
    [m] = reminders([b], window=timedelta(hours=24))
    assert (m.op, m.lead_label) == ("send", "24h")


def test_a_daily_run_26h_ahead_sends_the_24h_reminder_and_the_2h_one_the_next_day():
    b = booking(start=NOW + timedelta(hours=26))
    [m] = reminders([b], window=timedelta(hours=24))  # 2h is inside the window too, but its time is a day off
    assert (m.op, m.lead_label) == ("send", "24h")
    ledger = {b.key: [row(b, "reminder", lead=m.lead, sequence=None, sent_at=NOW)]}
    [m] = reminders([b], ledger, now=NOW + timedelta(hours=24), window=timedelta(hours=24))
    assert (m.op, m.lead_label) == ("send", "2h")


def test_a_daily_run_25h_ahead_catches_the_2h_reminder_up_on_the_next_run():
    b = booking(start=NOW + timedelta(hours=25))
    assert [m.lead_label for m in reminders([b], window=timedelta(hours=24))] == ["24h"]
    ledger = {b.key: [row(b, "reminder", lead=reminder_tag("24h", b.start), sequence=None, sent_at=NOW)]}
    [m] = reminders([b], ledger, now=NOW + timedelta(hours=23, minutes=30), window=timedelta(hours=24))
    assert (m.op, m.lead_label) == ("send", "2h")  # late by half an hour rather than a day early


# -- uncertain ------------------------------------------------------------------------------

def test_uncertain_messages_are_reported_not_resent():
    b = booking(start=NOW + timedelta(hours=20))
    ledger = {b.key: [row(b, "reminder", lead=reminder_tag("24h", b.start), state="intent", sequence=None)]}
    [m] = plan_uncertain(ledger, {b.key: b}, resend=False, now=NOW)
    assert m.op == "uncertain" and "--resend-uncertain" in m.reason
    [m] = plan_uncertain(ledger, {b.key: b}, resend=True, now=NOW)
    assert (m.op, m.resend, m.lead_label) == ("send", True, "24h")
    moved = replace(b, start=b.start + timedelta(hours=1), end=b.end + timedelta(hours=1))
    [m] = plan_uncertain(ledger, {b.key: moved}, resend=True, now=NOW)
    assert m.op == "uncertain" and "moved" in m.reason


# -- helpers -------------------------------------------------------------------------------

@pytest.mark.parametrize("local, expected", [
    (datetime(2026, 11, 23, 23, 0), datetime(2026, 11, 24, 8, 0)),
    (datetime(2026, 11, 23, 7, 0), datetime(2026, 11, 23, 8, 0)),
    (datetime(2026, 11, 23, 12, 0), None),
    (datetime(2026, 11, 23, 8, 0), None),
    (datetime(2026, 11, 23, 21, 0), datetime(2026, 11, 24, 8, 0)),
])
def test_quiet_hours_wrap_past_midnight(local, expected):
    got = quiet_until(local.replace(tzinfo=WARSAW), QUIET, WARSAW)
    assert got == (expected.replace(tzinfo=WARSAW) if expected else None)


def test_quiet_hours_across_the_dst_change_end_at_local_eight():
    before_change = datetime(2026, 10, 24, 23, 0, tzinfo=WARSAW)  # clocks go back that night
    assert quiet_until(before_change, QUIET, WARSAW) == datetime(2026, 10, 25, 8, 0, tzinfo=WARSAW)
    assert quiet_until(before_change, QUIET, WARSAW).utcoffset() == timedelta(hours=1)


def test_phone_numbers_and_masks():
    assert e164("+48 (600) 100-200") == "+48600100200"
    assert e164("0048 600 100 200") == "+48600100200"
    assert e164("600 100 200") is None
    assert mask("jane.doe@example.com") == "ja***@example.com"
    assert mask("+48600100200") == "+48******200"


# -- text ----------------------------------------------------------------------------------

@pytest.mark.parametrize("left, text", [(timedelta(minutes=45), "45 minutes"), (timedelta(hours=2), "2 hours"),
                                        (timedelta(hours=24, minutes=5), "24 hours"), (timedelta(hours=26), "26 hours"),
                                        (timedelta(hours=1), "60 minutes"), (timedelta(days=3, hours=2), "3 days")])
def test_the_reminder_says_the_real_time_left(left, text):
    assert time_left(left) == text
    b = booking(start=NOW + left)
    assert booking_fields(b, business="Paws", left=left)["lead"] == text


def test_control_characters_in_booking_text_never_reach_a_subject_or_an_sms():
    b = replace(booking(), title="Rex\r\nBcc: evil@example.com\t\x00\u2028x", notes="line 1\nline 2")
    assert one_line(b.title) == "Rex Bcc: evil@example.com x"
    values = booking_fields(b, business="Paws\nInc")
    email = Templates("email", {}, section="sendgrid").render("confirmation", values)
    sms = Templates("sms", {}, section="twilio").render("confirmation", values)
    for text in (email.subject, sms.text):
        assert not any(c in text for c in "\r\n\t\x00\u2028"), text
        assert "Rex Bcc: evil@example.com x" in text
    assert values["notes"] == "line 1\nline 2"  # an email body may keep the notes' lines
