"""Customer notifications end to end: real sendgrid package and httpx against the sandbox.

Bookings arrive from Notion, Google Calendar and Cal.com; `bsync sync` sends notices,
`bsync remind` sends reminders; the SendGrid and Twilio emulators record what went out.
"""

from __future__ import annotations

import json
import os
import pty
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import icalendar
import pytest

from bsync.sandbox.seed import booking_properties

WAW = ZoneInfo("Europe/Warsaw")
DAY = date.today() + timedelta(days=3)


def at(h, m=0, day=DAY, tz=WAW):
    return datetime(day.year, day.month, day.day, h, m, tzinfo=tz)


@pytest.fixture
def bsync(bsync):
    bsync.options = {"notify": True}
    bsync.configure()
    return bsync


def add(sandbox, title="Rex – full groom", start=None, end=None, email="jane@example.com",
        phone="+48 600 100 200", **kw):
    start = start or at(14)
    props = booking_properties(title, start=start, end=end or start + timedelta(hours=1), customer="Jane Doe",
                               email=email, phone=phone, service="Full groom", staff="Anna",
                               time_zone="Europe/Warsaw", **kw)
    return sandbox.notion.create_page(props)["id"]


def emails(sandbox, to=None):
    return sandbox.sendgrid.messages_to(to) if to else list(sandbox.sendgrid.messages)


def invite(message) -> icalendar.Calendar:
    [attachment] = message["attachments"]
    return icalendar.Calendar.from_ical(attachment["data"])


def notifications(bsync) -> list[dict]:
    db = sqlite3.connect(bsync.state_path)
    db.row_factory = sqlite3.Row
    return [dict(r) for r in db.execute("SELECT * FROM notifications ORDER BY booking_key, kind, lead")]


# -- notices after sync ----------------------------------------------------------------------

def test_first_sync_emails_nobody_then_a_new_booking_gets_a_confirmation_with_an_invite(bsync, sandbox):
    add(sandbox, "Existing booking", email="old@example.com")
    assert bsync("sync").exit_code == 0
    assert emails(sandbox) == []
    assert [r["state"] for r in notifications(bsync)] == ["suppressed"]

    page = add(sandbox, "Rex – full groom", start=at(14, 30))
    result = bsync("sync")
    assert result.exit_code == 0, result.stdout + result.stderr
    [mail] = emails(sandbox)
    assert mail["to"] == ["jane@example.com"] and mail["subject"].startswith("Booking confirmed: Rex")
    assert mail["custom_args"]["bsync_key"] == f"notion:{page}"
    cal = invite(mail)
    assert cal["METHOD"] == "REQUEST"
    [event] = cal.walk("VEVENT")
    assert event["SEQUENCE"] == 0
    assert event["DTSTART"].params["TZID"] == "Europe/Warsaw"
    assert event.decoded("DTSTART") == at(14, 30)  # imports as the right local time
    assert bsync("sync").exit_code == 0
    assert len(emails(sandbox)) == 1  # a re-run sends nothing again


@pytest.mark.parametrize("command", [("remind", "--notify-existing"), ("sync", "--notify-existing")])
def test_notify_existing_confirms_what_was_there(bsync, sandbox, command):
    add(sandbox)
    result = bsync(*command)
    assert result.exit_code == 0, result.stdout
    assert [m["subject"].split(":")[0] for m in emails(sandbox)] == ["Booking confirmed"]
    assert bsync(*command).exit_code == 0
    assert len(emails(sandbox)) == 1


def test_change_and_cancellation_notices_carry_a_growing_sequence(bsync, sandbox):
    bsync("sync")
    page = add(sandbox)
    bsync("sync")
    sandbox.notion.update_page(page, {"When": {"date": {"start": at(16).isoformat(), "end": at(17).isoformat()}}})
    assert bsync("sync").exit_code == 0
    sandbox.notion.update_page(page, {"Status": {"status": {"name": "Cancelled"}}})
    assert bsync("sync").exit_code == 0
    confirmation, change, cancellation = emails(sandbox)
    assert change["subject"].startswith("Booking changed") and "14:00" in change["content"][0]["value"]
    assert cancellation["subject"].startswith("Booking cancelled")
    uids = set()
    for mail, method, sequence in ((confirmation, "REQUEST", 0), (change, "REQUEST", 1), (cancellation, "CANCEL", 2)):
        cal = invite(mail)
        [event] = cal.walk("VEVENT")
        assert (cal["METHOD"], event["SEQUENCE"]) == (method, sequence)
        uids.add(str(event["UID"]))
    assert len(uids) == 1  # one booking, one UID: calendars update the same event
    assert event.decoded("DTSTART") == at(16)
    assert str(event["STATUS"]) == "CANCELLED"


def test_a_booking_made_in_google_calendar_is_confirmed_to_its_attendee(bsync, sandbox):
    bsync("sync")
    base = f"{sandbox.google.url}/calendar/v3/calendars/{sandbox.google.calendar_id}/events"
    httpx.post(base, headers={"Authorization": "Bearer sandbox-token"}, json={
        "summary": "Walk-in: Bella", "start": {"dateTime": at(11).isoformat()}, "end": {"dateTime": at(12).isoformat()},
        "attendees": [{"email": "walkin@example.com"}]}).raise_for_status()
    result = bsync("sync")
    assert result.exit_code == 0, result.stdout
    sent = emails(sandbox, "walkin@example.com")
    if not sent:  # imports may leave attendees out of the customer fields; then nobody is emailed
        pytest.skip("Google imports carry no customer email")
    assert sent[0]["subject"].startswith("Booking confirmed: Walk-in")


def test_a_calcom_booking_is_confirmed_once_even_after_its_webhook_and_a_pull(bsync, sandbox):
    bsync("sync")
    sandbox.calcom.create_booking(title="Consultation", start=at(9).astimezone(ZoneInfo("UTC")),
                                  attendee_email="cal@example.com", attendee_name="Cal User")
    assert bsync("sync", "pull", "calcom").exit_code == 0
    assert bsync("sync").exit_code == 0
    assert bsync("sync", "pull", "calcom").exit_code == 0
    [mail] = emails(sandbox, "cal@example.com")
    assert mail["subject"].startswith("Booking confirmed")


@pytest.mark.parametrize("take, hour", [("gcal", 17), ("notion", 16)])
def test_no_notice_while_the_time_is_in_an_open_conflict_then_one_with_the_resolved_time(bsync, sandbox, take, hour,
                                                                                         monkeypatch):
    from bsync.calendars.gcal import event_id_for
    from conftest import FakeClock
    from test_two_way import Calendar

    clock = FakeClock(datetime.now(ZoneInfo("UTC")))  # Notion's edit times and the notice pass's cursor
    monkeypatch.setattr(sandbox.notion, "clock", clock)
    monkeypatch.setattr("bsync.notices.send.now_utc", clock)
    bsync.configure(conflict="manual")
    bsync("sync")
    page = add(sandbox, start=at(14), phone=None)
    assert bsync("sync").exit_code == 0
    clock.advance(hours=1)
    sandbox.notion.update_page(page, {"When": {"date": {"start": at(16).isoformat(), "end": at(17).isoformat()}}})
    Calendar(sandbox).move(event_id_for(f"notion:{page}"), at(17), at(18))
    clock.advance(minutes=10)  # the sync that finds the conflict runs a while after the edit
    assert bsync("sync", "--json").json["conflicts"] == 1
    clock.advance(hours=1)  # `--take notion` then edits no page: the pass must still read this one
    assert len(emails(sandbox)) == 1  # the confirmation only: neither side's time is told yet
    plan = bsync("remind", "--plan", "--json").json["messages"]
    assert [(m["op"], m["reason"].split(":")[0]) for m in plan if m["kind"] == "change"] == [
        ("defer", "time in an open conflict")]
    assert bsync("remind").exit_code == 0 and len(emails(sandbox)) == 1
    assert bsync("resolve", f"notion:{page}", "--take", take).exit_code == 0
    assert bsync("sync").exit_code == 0
    confirmation, change = emails(sandbox)
    assert change["subject"].startswith("Booking changed") and f"{hour}:00" in change["subject"]
    assert invite(change).walk("VEVENT")[0].decoded("DTSTART") == at(hour)
    assert bsync("sync").exit_code == 0 and bsync("remind").exit_code == 0
    assert len(emails(sandbox)) == 2


def test_opted_out_customers_get_nothing(bsync, sandbox):
    bsync("sync")
    add(sandbox, notifications="off")
    assert bsync("sync").exit_code == 0
    assert emails(sandbox) == []
    assert [r["error"] for r in notifications(bsync) if r["state"] == "suppressed"][-1] == "customer opted out"


# -- reminders --------------------------------------------------------------------------------

def test_reminders_at_both_leads_by_email_and_sms_once_each(bsync, sandbox):
    bsync("sync")
    add(sandbox, start=at(15))
    bsync("sync")
    sandbox.sendgrid.clear_messages()
    day_before = (at(15) - timedelta(hours=24, minutes=5)).isoformat()
    result = bsync("remind", "--now", day_before)
    assert result.exit_code == 0, result.stdout
    assert [m["subject"].split(":")[0] for m in emails(sandbox)] == ["Reminder"]
    [sms] = sandbox.twilio.messages
    assert sms["to"] == "+48600100200" and "reminder" in sms["body"]
    assert bsync("remind", "--now", day_before).exit_code == 0
    assert len(emails(sandbox)) == 1 and len(sandbox.twilio.messages) == 1
    result = bsync("remind", "--now", (at(15) - timedelta(hours=2)).isoformat(), "--json")
    assert result.json["sent"] == 2
    assert "in 2 hours" in emails(sandbox)[-1]["content"][0]["value"]


def test_a_once_a_day_run_sends_the_24h_reminder_saying_the_real_time_left(bsync, sandbox):
    bsync("sync")
    add(sandbox, start=at(15), phone=None)
    bsync("sync")
    sandbox.sendgrid.clear_messages()
    result = bsync("remind", "--window", "24h", "--now", (at(15) - timedelta(hours=26)).isoformat(), "--json")
    assert result.exit_code == 0 and result.json["sent"] == 1, result.stdout
    assert "a reminder of your booking in 26 hours." in emails(sandbox)[0]["content"][0]["value"]
    assert [r["lead"].split("@")[0] for r in notifications(bsync) if r["kind"] == "reminder"] == ["24h"]
    result = bsync("remind", "--window", "24h", "--now", (at(15) - timedelta(hours=2)).isoformat(), "--json")
    assert result.json["sent"] == 1
    assert "a reminder of your booking in 2 hours." in emails(sandbox)[1]["content"][0]["value"]


def test_a_title_with_a_line_break_adds_no_header_and_no_sms_line(bsync, sandbox):
    bsync("sync")
    add(sandbox, "Rex\r\nBcc: evil@example.com", start=at(15))
    assert bsync("sync").exit_code == 0
    [mail] = emails(sandbox)
    sent = [r.json for r in sandbox.sendgrid.requests if r.path == "/v3/mail/send"][0]
    assert sent["subject"] == mail["subject"] and mail["subject"].startswith("Booking confirmed: Rex Bcc: evil@")
    assert not set("\r\n") & set(sent["subject"]) and "bcc" not in sent["personalizations"][0]
    assert bsync("remind", "--now", (at(15) - timedelta(hours=2)).isoformat()).exit_code == 0
    [sms] = sandbox.twilio.messages
    assert "Rex Bcc: evil@example.com" in sms["body"] and not set("\r\n") & set(sms["body"])


def test_a_phone_that_is_no_number_is_reported_and_the_email_still_goes(bsync, sandbox):
    bsync("sync")
    page = add(sandbox, "Maybe", start=at(15), phone="call me maybe")
    bsync("sync")
    sandbox.sendgrid.clear_messages()
    result = bsync("remind", "--now", (at(15) - timedelta(hours=2)).isoformat(), "--json")
    assert result.exit_code == 1 and result.json["sent"] == 1
    [failure] = result.json["failures"]
    assert failure["id"] == f"notion:{page}" and "'Maybe'" in failure["reason"]
    assert "phone 'call me maybe' is not a valid number" in failure["reason"]
    assert len(emails(sandbox)) == 1 and sandbox.twilio.messages == []


def test_quiet_hours_defer_a_reminder_until_morning(bsync, sandbox):
    bsync("sync")
    add(sandbox, start=at(7, 30))
    bsync("sync")
    sandbox.sendgrid.clear_messages()
    night = (at(7, 30) - timedelta(hours=24)).isoformat()
    result = bsync("remind", "--now", night, "--json")
    assert result.json["deferred"] == 2 and result.json["sent"] == 0
    morning = (at(8, 0) - timedelta(hours=24)).isoformat()
    assert bsync("remind", "--now", morning).exit_code == 0
    assert [m["subject"].split(":")[0] for m in emails(sandbox)] == ["Reminder"]


def test_missing_address_is_reported_and_others_still_go(bsync, sandbox):
    bsync("sync")
    add(sandbox, "No phone", start=at(15), phone=None)
    bsync("sync")
    result = bsync("remind", "--now", (at(15) - timedelta(hours=2)).isoformat(), "--plan", "--json")
    assert {(m["channel"], m["op"], m["reason"]) for m in result.json["messages"] if m["lead"].startswith("2h")} == {
        ("email", "send", "2h before the start"), ("sms", "skip", "no phone number")}
    assert "no phone" in bsync("remind", "--now", (at(15) - timedelta(hours=2)).isoformat(), "--plan", "-v").stdout
    result = bsync("remind", "--now", (at(15) - timedelta(hours=2)).isoformat(), "--json")
    assert result.exit_code == 0 and result.json["sent"] == 1 and result.json["skipped"] >= 1


def test_a_moved_booking_gets_a_reminder_for_its_new_time_and_a_cancelled_one_none(bsync, sandbox):
    bsync("sync")
    page = add(sandbox, start=at(15))
    gone = add(sandbox, "Cancelled later", start=at(15), email="gone@example.com", phone=None)
    bsync("sync")
    bsync("remind", "--now", (at(15) - timedelta(hours=2)).isoformat())
    sandbox.notion.update_page(page, {"When": {"date": {"start": at(17).isoformat(), "end": at(18).isoformat()}}})
    sandbox.notion.update_page(gone, {"Status": {"status": {"name": "Cancelled"}}})
    bsync("sync")
    sandbox.sendgrid.clear_messages()
    result = bsync("remind", "--now", (at(17) - timedelta(hours=2)).isoformat(), "--json")
    assert result.exit_code == 0
    assert [m["to"] for m in emails(sandbox)] == [["jane@example.com"]]


def test_plan_lists_masked_recipients_and_changes_nothing(bsync, sandbox):
    bsync("sync")
    add(sandbox, start=at(15))
    bsync("sync")
    sandbox.clear_requests()
    before = notifications(bsync)
    result = bsync("remind", "--now", (at(15) - timedelta(hours=2)).isoformat(), "--plan", "--json")
    assert result.exit_code == 0
    sends = [m for m in result.json["messages"] if m["op"] == "send"]
    assert {(m["channel"], m["to"]) for m in sends} == {("email", "ja***@example.com"), ("sms", "+48******200")}
    assert "jane@example.com" not in result.stdout
    assert sandbox.sendgrid.requests == [] and sandbox.twilio.requests == []
    assert notifications(bsync) == before


# -- failures -----------------------------------------------------------------------------------

def test_sendgrid_429_and_5xx_are_retried(bsync, sandbox):
    bsync("sync")
    add(sandbox)
    original = sandbox.sendgrid.dispatch
    answers = iter([429, 503])

    def flaky(request):
        status = next(answers, None) if request.path == "/v3/mail/send" else None
        if status is not None:
            response = sandbox.sendgrid.error(status, "injected")
            response.headers["Retry-After"] = "0"
            return response
        return original(request)

    sandbox.sendgrid.dispatch = flaky
    try:
        result = bsync("sync")
    finally:
        del sandbox.sendgrid.dispatch
    assert result.exit_code == 0, result.stdout + result.stderr
    assert len(emails(sandbox)) == 1


def test_a_refused_address_fails_that_booking_only(bsync, sandbox):
    bsync("sync")
    sandbox.sendgrid.reject_address("bounce@example.com")
    bad = add(sandbox, "Bad address", email="bounce@example.com")
    add(sandbox, "Good address", start=at(16))
    result = bsync("sync", "--json")
    assert result.exit_code == 1
    assert result.json["errors"] == 0 and result.json["notifications"]["errors"] == 1  # scripts see why
    assert result.json["notifications"]["failures"][0]["id"] == f"notion:{bad}"
    assert [m["to"] for m in emails(sandbox)] == [["jane@example.com"]]
    [row] = [r for r in notifications(bsync) if r["booking_key"] == f"notion:{bad}"]
    assert row["state"] == "failed" and row["retryable"] == 0
    assert bsync("remind").exit_code == 0  # not retried while the address is the same
    assert len(emails(sandbox)) == 1


def remind_killed_after(server, path: str, bsync, now: str) -> None:
    """Run `bsync remind` in a process that ``server`` SIGKILLs right after it accepts the
    first request to ``path``: the message went out, bsync never heard so."""
    proc: subprocess.Popen | None = None
    original = server.dispatch

    def kill_after_accepting(request):
        response = original(request)
        if request.path == path and response.status in (200, 201, 202) and proc is not None:
            os.kill(proc.pid, signal.SIGKILL)  # bsync dies before it hears the answer
            time.sleep(0.2)
        return response

    server.dispatch = kill_after_accepting
    try:
        proc = subprocess.Popen([sys.executable, "-m", "bsync.cli", "remind", "--now", now, "--config",
                                 str(bsync.config)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        proc.wait(timeout=60)
    finally:
        del server.dispatch
    assert proc.returncode == -signal.SIGKILL


def uncertain_reminder_email(bsync, sandbox) -> str:
    """A booking whose 2 h reminder email SendGrid accepted from a `bsync remind` killed before
    it could record it; returns that run's --now."""
    bsync("sync")
    add(sandbox, start=at(15), phone=None)
    bsync("sync")
    sandbox.sendgrid.clear_messages()
    now = (at(15) - timedelta(hours=2)).isoformat()
    remind_killed_after(sandbox.sendgrid, "/v3/mail/send", bsync, now)
    return now


def test_killed_between_send_and_record_is_uncertain_not_resent(bsync, sandbox, tmp_path):
    now = uncertain_reminder_email(bsync, sandbox)
    assert len(emails(sandbox)) == 1
    result = bsync("remind", "--now", now)
    assert result.exit_code == 1 and "uncertain" in result.stdout
    assert len(emails(sandbox)) == 1  # not sent twice
    [reason] = [f["reason"] for f in bsync("remind", "--now", now, "--json").json["failures"]]
    assert "probably delivered" in reason and "--resend-uncertain --yes" in reason
    result = bsync("remind", "--now", now, "--resend-uncertain")  # no terminal to ask at: needs --yes
    assert result.exit_code == 2 and "add --yes" in result.stderr
    assert len(emails(sandbox)) == 1
    result = bsync("remind", "--now", now, "--resend-uncertain", "--yes")
    assert result.exit_code == 0, result.stdout
    assert len(emails(sandbox)) == 2
    assert bsync("remind", "--now", now).exit_code == 0


@pytest.mark.parametrize("answer, resent, code", [(b"n\n", 0, 1), (b"y\n", 1, 0)])
def test_resending_an_uncertain_email_asks_at_a_terminal(bsync, sandbox, answer, resent, code):
    now = uncertain_reminder_email(bsync, sandbox)
    controller, terminal = pty.openpty()
    try:
        proc = subprocess.Popen([sys.executable, "-m", "bsync.cli", "remind", "--now", now, "--resend-uncertain",
                                 "--config", str(bsync.config)], stdin=terminal, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        os.write(controller, answer)
        out, _err = proc.communicate(timeout=60)
    finally:
        os.close(controller)
        os.close(terminal)
    assert b"probably delivered" in out and b"Send again?" in out
    assert proc.returncode == code
    assert len(emails(sandbox)) == 1 + resent


def test_a_killed_sms_send_that_twilio_lists_as_sent_is_recorded_not_resent(bsync, sandbox):
    bsync("sync")
    add(sandbox, start=at(15), email=None)
    bsync("sync")
    now = (at(15) - timedelta(hours=2)).isoformat()
    remind_killed_after(sandbox.twilio, f"/2010-04-01/Accounts/{sandbox.twilio.account_sid}/Messages.json", bsync, now)
    [sms] = sandbox.twilio.messages
    assert [r["state"] for r in notifications(bsync) if r["kind"] == "reminder"] == ["intent"]
    sandbox.twilio.mark_sent()  # seconds later the carrier has it
    result = bsync("remind", "--now", now, "--json")
    assert result.exit_code == 0, result.stdout
    assert (result.json["found_sent"], result.json["sent"], result.json["uncertain"]) == (1, 0, 0)
    assert len(sandbox.twilio.messages) == 1  # not sent twice
    [row] = [r for r in notifications(bsync) if r["kind"] == "reminder"]
    assert (row["state"], row["provider_message_id"]) == ("sent", sms["sid"])
    assert bsync("remind", "--now", now).exit_code == 0 and len(sandbox.twilio.messages) == 1


def test_a_killed_sms_send_twilio_does_not_list_stays_uncertain(bsync, sandbox):
    bsync("sync")
    add(sandbox, start=at(15), email=None, phone="+48 600 100 203")
    add(sandbox, "Other", start=at(15), email=None, phone="+48 600 100 204")
    bsync("sync")
    now = (at(15) - timedelta(hours=2)).isoformat()
    remind_killed_after(sandbox.twilio, f"/2010-04-01/Accounts/{sandbox.twilio.account_sid}/Messages.json", bsync, now)
    [sms] = sandbox.twilio.messages
    waiting = "+48600100204" if sms["to"] == "+48600100203" else "+48600100203"
    sandbox.twilio.clear_messages()  # Twilio has no record of it (or it is still queued)
    result = bsync("remind", "--now", now, "--json")
    assert result.exit_code == 1 and result.json["uncertain"] == 1 and result.json["found_sent"] == 0
    assert "Twilio lists no such text" in result.json["failures"][0]["reason"]
    assert [m["to"] for m in sandbox.twilio.messages] == [waiting]  # the other one still went


# -- the webhook receiver -------------------------------------------------------------------------

from test_calcom import CALCOM_WEBHOOK_SECRET, receiver, soon, wait_for  # noqa: E402,F401  (fixture)


def test_a_webhook_booking_is_confirmed_by_the_receiver_within_seconds(sandbox, bsync, receiver):
    bsync("sync")  # the first pass records the (empty) baseline
    booking = sandbox.calcom.create_booking(start=soon(hour=10), attendee_email="hook@example.com")
    response = sandbox.calcom.deliver(f"{receiver.url}/webhooks/calcom", "BOOKING_CREATED", booking["uid"],
                                      CALCOM_WEBHOOK_SECRET)
    assert response.status_code == 202
    assert wait_for(lambda: len(emails(sandbox, "hook@example.com")) == 1)
    assert emails(sandbox, "hook@example.com")[0]["subject"].startswith("Booking confirmed")


def test_a_sesami_booking_from_the_inbox_is_confirmed(bsync, sandbox):
    """Sesami deliveries land in the inbox (the receiver verified them); the next sync puts
    the booking in Notion and confirms it to the customer."""
    from datetime import timezone

    from bsync.core.store import Store

    bsync("sync")
    now = datetime.now(timezone.utc).replace(microsecond=0)
    body = {"event_type": "booking.created", "timestamp": now.isoformat().replace("+00:00", "Z"),
            "shop": {"domain": "salon.myshopify.com"},
            "booking": {"id": "ses-42", "customer": {"name": "Bea Cruz", "email": "bea@example.com"},
                        "service": {"name": "Bath", "duration": 45, "staff_member": "Anna"},
                        "appointment_time": at(12).isoformat(), "status": "confirmed"}}
    with Store.open(bsync.state_path) as store:
        store.inbox_add("sesami", "ses-42:created", verified=True, payload=json.dumps(body))
    result = bsync("sync")
    assert result.exit_code == 0, result.stdout + result.stderr
    [mail] = emails(sandbox, "bea@example.com")
    assert mail["subject"].startswith("Booking confirmed")


def test_a_send_that_times_out_after_going_out_is_uncertain_and_never_retried(bsync, sandbox):
    bsync.config.write_text(bsync.config.read_text().replace(
        'from_name = "Paws & Claws Grooming"', 'from_name = "Paws & Claws Grooming"\ntimeout_s = 0.5'))
    bsync("sync")
    add(sandbox)
    sandbox.sendgrid.set_faults(latency_ms=1200)  # SendGrid accepts it, but answers too late
    try:
        result = bsync("sync")
    finally:
        sandbox.sendgrid.set_faults()
    assert wait_for(lambda: len(emails(sandbox)) == 1)  # the slow answer finishes server-side
    assert result.exit_code == 1 and "uncertain" in result.stdout
    assert len(emails(sandbox)) == 1
    assert len([r for r in sandbox.sendgrid.requests if r.path == "/v3/mail/send"]) == 1  # no automatic retry
    assert bsync("sync").exit_code == 1  # still reported, still not resent
    assert len(emails(sandbox)) == 1
    assert bsync("remind", "--dismiss-uncertain").exit_code == 0
    assert bsync("status", "--json").json["notifications"]["counts"].get("intent") is None


# -- templates --------------------------------------------------------------------------------------

def test_own_templates_from_files_and_sendgrid_dynamic_templates(bsync, sandbox):
    (bsync.folder / "confirm.txt").write_text("Subject: See you $date, $customer_name!\n\n"
                                              "$title at $time with $staff. Reply to change it.\n")
    (bsync.folder / "confirm.html").write_text("<h1>$title</h1><p>$when</p>")
    (bsync.folder / "reminder-sms.txt").write_text("Paws: $title in $lead ($time).")
    text = bsync.config.read_text()
    text = text.replace("[twilio]\n", '[sendgrid.templates]\nconfirmation = "confirm.txt"\n'
                                      'cancellation = "d-0123456789abcdef0123456789abcdef"\n\n[twilio]\n')
    text = text.replace("[reminders]\n", '[twilio.templates]\nreminder = "reminder-sms.txt"\n\n[reminders]\n')
    bsync.config.write_text(text)
    bsync("sync")
    page = add(sandbox, "Rex <groomed> & co", start=at(15))
    assert bsync("sync").exit_code == 0
    [mail] = emails(sandbox)
    assert mail["subject"] == f"See you {at(15):%A %d %B %Y}, Jane Doe!"
    assert mail["content"][0]["value"].startswith("Rex <groomed> & co at 15:00 with Anna.")
    assert mail["content"][1] == {"type": "text/html", "value": f"<h1>Rex &lt;groomed&gt; &amp; co</h1><p>"
                                  f"{at(15):%A %d %B %Y} 15:00</p>"}
    sandbox.notion.update_page(page, {"Status": {"status": {"name": "Cancelled"}}})
    assert bsync("sync").exit_code == 0
    cancel = [r.json for r in sandbox.sendgrid.requests if r.path == "/v3/mail/send"][-1]
    assert cancel["template_id"] == "d-0123456789abcdef0123456789abcdef" and "content" not in cancel
    assert cancel["personalizations"][0]["dynamic_template_data"]["title"] == "Rex <groomed> & co"
    add(sandbox, "Bella", start=at(16), email=None)
    bsync("sync")
    assert bsync("remind", "--now", (at(16) - timedelta(hours=2)).isoformat()).exit_code == 0
    assert sandbox.twilio.messages[-1]["body"] == "Paws: Bella in 2 hours (16:00)."


def test_a_template_typo_fails_fast_naming_the_key(bsync, sandbox):
    (bsync.folder / "confirm.txt").write_text("Subject: Hi $custmer_name\n\nBody\n")
    bsync.config.write_text(bsync.config.read_text().replace(
        "[twilio]\n", '[sendgrid.templates]\nconfirmation = "confirm.txt"\n\n[twilio]\n'))
    add(sandbox)
    sandbox.clear_requests()
    for command in (("sync",), ("remind",), ("remind", "--plan")):
        result = bsync(*command)
        assert result.exit_code == 2
        assert "sendgrid.templates.confirmation" in result.stderr and "custmer_name" in result.stderr
    assert sandbox.notion.requests == [] and emails(sandbox) == []  # stopped before doing anything


def test_a_revoked_sendgrid_key_stops_with_exit_4_and_nothing_is_lost(bsync, sandbox):
    bsync("sync")
    add(sandbox)
    bsync.config.write_text(bsync.config.read_text().replace('api_key = "sandbox-token"\nfrom_email',
                                                             'api_key = "SG.revoked"\nfrom_email'))
    result = bsync("sync")
    assert result.exit_code == 4 and "SendGrid refused the API key" in result.stderr
    assert "SG.revoked" not in result.stderr
    bsync.config.write_text(bsync.config.read_text().replace('api_key = "SG.revoked"', 'api_key = "sandbox-token"'))
    assert bsync("sync").exit_code == 0  # the confirmation is still due, and goes now
    assert len(emails(sandbox)) == 1


def test_twilio_429_is_retried_and_an_unsubscribed_number_fails_alone(bsync, sandbox):
    bsync("sync")
    add(sandbox, "Texted", start=at(15), email=None, phone="+48 600 100 201")
    add(sandbox, "Said STOP", start=at(15, 30), email=None, phone="+48 600 100 202")
    bsync("sync")
    sandbox.twilio.unsubscribe("+48600100202")
    original = sandbox.twilio.dispatch
    answers = iter([429])

    def busy_once(request):
        if request.method == "POST" and next(answers, None):
            response = sandbox.twilio.error(429, "Too Many Requests")
            response.headers["Retry-After"] = "0"
            return response
        return original(request)

    sandbox.twilio.dispatch = busy_once
    try:
        result = bsync("remind", "--now", (at(15) - timedelta(hours=2)).isoformat(), "--json")
    finally:
        del sandbox.twilio.dispatch
    assert result.exit_code == 1
    assert result.json["sent"] == 1 and result.json["errors"] == 1
    assert "21610" in result.json["failures"][0]["reason"]
    assert [m["to"] for m in sandbox.twilio.messages] == ["+48600100201"]


def test_a_notice_channel_without_its_section_stops_sync_before_it_writes(bsync, sandbox):
    text = bsync.config.read_text()
    start, end = text.index("[twilio]"), text.index("[reminders]")
    bsync.config.write_text(text[:start] + "[notifications]\nchannels = [\"email\", \"sms\"]\n\n" + text[end:])
    add(sandbox)
    result = bsync("sync")
    assert result.exit_code == 2 and "notifications.channels" in result.stderr and "[twilio]" in result.stderr
    assert sandbox.google.event_count(sandbox.google.calendar_id) == 0


@pytest.mark.parametrize("option, value", [("--window", "soon"), ("--now", "tomorrow")])
def test_bad_remind_options_are_usage_errors_naming_the_option(bsync, sandbox, option, value):
    result = bsync("remind", option, value)
    assert result.exit_code == 2 and result.stderr.startswith(f"error: {option} '{value}'")
