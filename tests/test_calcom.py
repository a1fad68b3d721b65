"""Cal.com: the pull (API v2) and the webhook receiver (`bsync serve`) against the sandbox,
over real HTTP: the Cal.com emulator, the Notion and Google emulators, and uvicorn."""

from __future__ import annotations

import json
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import httpx
import pytest
import uvicorn

from bsync.config import load_config
from bsync.calendars.gcal import event_id_for
from bsync.sandbox.seed import CALCOM_WEBHOOK_SECRET
from bsync.serve.app import Worker, create_app
from bsync.core.store import Store
from conftest import write_requests

UTC = timezone.utc
WAW = ZoneInfo("Europe/Warsaw")


def soon(days=2, hour=10):
    d = datetime.now(WAW) + timedelta(days=days)
    return d.replace(hour=hour, minute=0, second=0, microsecond=0)


def calcom_pages(sandbox):
    out = {}
    for page_id in sandbox.notion.pages:
        props = sandbox.notion.get_page(page_id)["properties"]
        if (props["Source"]["select"] or {}).get("name") == "calcom":
            out["".join(t["plain_text"] for t in props["External ID"]["rich_text"])] = props
    return out


def text(props, name):
    return "".join(t["plain_text"] for t in props[name]["rich_text"])


def pulled(bsync):
    result = bsync("sync", "pull", "calcom", "--json")
    assert result.exit_code == 0, result.stdout + result.stderr
    return result.json


def test_pull_creates_one_page_per_booking_with_metadata_links_and_settles(sandbox, bsync):
    a = sandbox.calcom.create_booking(start=soon(hour=10), metadata={"client_id": "C-17", "pet_id": "P-3"},
                                      attendee_name="Ola", attendee_email="ola@example.com")
    sandbox.calcom.create_booking(start=soon(hour=12))
    sandbox.calcom.create_booking(start=soon(hour=14), status="pending")
    summary = pulled(bsync)
    assert summary["created"] == 3
    pages = calcom_pages(sandbox)
    assert set(pages) == {f"calcom:{b['uid']}" for b in sandbox.calcom.bookings.values()}
    props = pages[f"calcom:{a['uid']}"]
    assert text(props, "Client ID") == "C-17" and text(props, "Pet ID") == "P-3"
    assert text(props, "Customer") == "Ola" and props["Email"]["email"] == "ola@example.com"
    assert datetime.fromisoformat(props["When"]["date"]["start"]) == soon(hour=10)
    sandbox.clear_requests()
    assert pulled(bsync)["created"] == 0
    assert write_requests(sandbox) == []
    assert sandbox.calcom.count("GET", "/v2/bookings") == 1  # incremental: afterUpdatedAt


def test_reschedule_moves_the_same_page_and_the_same_event(sandbox, bsync):
    booking = sandbox.calcom.create_booking(start=soon(hour=10))
    pulled(bsync)
    assert bsync("sync").exit_code == 0  # onward to the calendar
    [page_props] = calcom_pages(sandbox).values()
    [page_id] = [p for p in sandbox.notion.pages]
    new = sandbox.calcom.reschedule(booking["uid"], soon(hour=15))
    assert new["uid"] != booking["uid"]
    pulled(bsync)
    assert bsync("sync").exit_code == 0
    assert list(sandbox.notion.pages) == [page_id]  # the same page, no second one
    props = sandbox.notion.get_page(page_id)["properties"]
    assert datetime.fromisoformat(props["When"]["date"]["start"]) == soon(hour=15)
    assert text(props, "External ID") == f"calcom:{booking['uid']}"
    events = sandbox.google.list_events(sandbox.google.calendar_id, include_deleted=True)
    assert len(events) == 1 and events[0]["id"] == event_id_for(f"notion:{page_id}")
    assert datetime.fromisoformat(events[0]["start"]["dateTime"]) == soon(hour=15)


def test_cancel_reaches_notion_without_deleting_the_page(sandbox, bsync):
    one = sandbox.calcom.create_booking(start=soon(hour=9))
    pulled(bsync)
    sandbox.calcom.cancel(one["uid"], reason="sick pet")
    pulled(bsync)
    pages = calcom_pages(sandbox)
    assert pages[f"calcom:{one['uid']}"]["Status"]["status"]["name"] == "Cancelled"
    assert len(sandbox.notion.pages) == 1


def test_bad_api_key_exits_4(sandbox, bsync):
    bsync.config.write_text(bsync.config.read_text().replace('api_key = "sandbox-token"', 'api_key = "cal_live_nope"'))
    result = bsync("sync", "pull", "calcom")
    assert result.exit_code == 4 and "Cal.com refused the API key" in result.stderr
    assert "cal_live_nope" not in result.stderr


# -- the receiver -------------------------------------------------------------------------
@pytest.fixture
def receiver(sandbox, bsync):
    """`bsync serve`'s app on uvicorn in a thread, with its inbox worker."""
    settings = load_config(bsync.config)
    with Store.open(settings.state_path):
        pass
    worker = Worker(settings, debounce_s=0.05)
    worker.start()
    config = uvicorn.Config(create_app(settings, worker=worker), host="127.0.0.1", port=0, log_level="warning",
                            limit_concurrency=2000, backlog=2048)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield type("Receiver", (), {"url": f"http://127.0.0.1:{port}", "settings": settings, "worker": worker})
    server.should_exit = True
    thread.join(timeout=10)
    worker.stop()


def wait_for(predicate, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def inbox(bsync):
    with Store.open_readonly(bsync.state_path) as store:
        return list(store.db.query("SELECT provider, delivery_id, verified, status FROM inbox ORDER BY id"))


def test_signed_delivery_is_stored_then_reaches_notion_and_the_calendar(sandbox, bsync, receiver):
    booking = sandbox.calcom.create_booking(start=soon(hour=10), metadata={"client_id": "C-9"})
    response = sandbox.calcom.deliver(f"{receiver.url}/webhooks/calcom", "BOOKING_CREATED", booking["uid"],
                                      CALCOM_WEBHOOK_SECRET)
    assert response.status_code == 202
    assert wait_for(lambda: f"calcom:{booking['uid']}" in calcom_pages(sandbox))
    assert wait_for(lambda: sandbox.google.event_count(sandbox.google.calendar_id) == 1)
    body = sandbox.calcom.deliveries[-1]["body"]  # Cal.com retrying the same delivery
    again = httpx.post(f"{receiver.url}/webhooks/calcom", content=body, headers={
        "X-Cal-Signature-256": sandbox.calcom.sign(body, CALCOM_WEBHOOK_SECRET), "Content-Type": "application/json"})
    assert again.status_code == 200 and again.json()["status"] == "duplicate"
    assert [r["status"] for r in inbox(bsync)] == ["done"]


@pytest.mark.parametrize("secret, mutate, status", [
    ("wrong-secret", None, 401),
    (None, None, 401),  # "no-secret-provided"
    (CALCOM_WEBHOOK_SECRET, lambda body: body.replace(b'"', b"'", 1), 401),  # one byte changed after signing
])
def test_bad_signatures_are_refused_and_kept_unverified(sandbox, bsync, receiver, secret, mutate, status):
    booking = sandbox.calcom.create_booking(start=soon())
    body = sandbox.calcom.encode_body(sandbox.calcom.webhook_payload("BOOKING_CREATED", booking["uid"]))
    signature = sandbox.calcom.sign(body, secret) if secret else "no-secret-provided"
    sent = mutate(body) if mutate else body
    r = httpx.post(f"{receiver.url}/webhooks/calcom", content=sent,
                   headers={"X-Cal-Signature-256": signature, "Content-Type": "application/json"})
    assert r.status_code == status
    rows = inbox(bsync)
    assert len(rows) == 1 and rows[0]["verified"] == 0 and rows[0]["status"] == "rejected"
    time.sleep(0.2)
    assert calcom_pages(sandbox) == {}


def test_missing_signature_malformed_oversize_and_replay(sandbox, bsync, receiver):
    url = f"{receiver.url}/webhooks/calcom"
    assert httpx.post(url, content=b"{}").status_code == 401
    bad = b"{not json"
    assert httpx.post(url, content=bad, headers={"X-Cal-Signature-256": sandbox.calcom.sign(bad, CALCOM_WEBHOOK_SECRET)}).status_code == 400
    huge = b"{" + b" " * (1024 * 1024 + 10) + b"}"
    assert httpx.post(url, content=huge, headers={"X-Cal-Signature-256": "x"}).status_code == 413
    booking = sandbox.calcom.create_booking(start=soon())
    sandbox.calcom.clock = lambda: datetime.now(UTC) - timedelta(hours=2)  # a delivery signed 2 h ago, replayed
    r = sandbox.calcom.deliver(url, "BOOKING_CREATED", booking["uid"], CALCOM_WEBHOOK_SECRET)
    sandbox.calcom.clock = lambda: datetime.now(UTC)
    assert r.status_code == 409 and "old" in r.text


def test_webhook_and_pull_of_the_same_change_converge_in_either_order(sandbox, bsync, receiver):
    first = sandbox.calcom.create_booking(start=soon(hour=9))
    second = sandbox.calcom.create_booking(start=soon(hour=13))
    # first: webhook, then pull; second: pull, then webhook
    sandbox.calcom.deliver(f"{receiver.url}/webhooks/calcom", "BOOKING_CREATED", first["uid"], CALCOM_WEBHOOK_SECRET)
    assert wait_for(lambda: f"calcom:{first['uid']}" in calcom_pages(sandbox))
    receiver.worker.stopped.set()  # no more background runs: the CLI below holds the lock alone
    receiver.worker.wake.set()
    receiver.worker.thread.join(timeout=10)
    pulled(bsync)
    sandbox.calcom.deliver(f"{receiver.url}/webhooks/calcom", "BOOKING_CREATED", second["uid"], CALCOM_WEBHOOK_SECRET)
    assert bsync("sync").exit_code == 0  # processes the inbox left by the receiver
    pages = calcom_pages(sandbox)
    assert set(pages) == {f"calcom:{first['uid']}", f"calcom:{second['uid']}"}
    assert sandbox.google.event_count(sandbox.google.calendar_id) == 2


def test_delivery_stored_before_a_crash_is_processed_by_the_next_sync(sandbox, bsync, receiver):
    receiver.worker.stopped.set()  # the receiver "dies" right after storing
    receiver.worker.wake.set()
    receiver.worker.thread.join(timeout=10)
    booking = sandbox.calcom.create_booking(start=soon(hour=16))
    assert sandbox.calcom.deliver(f"{receiver.url}/webhooks/calcom", "BOOKING_CREATED", booking["uid"],
                                  CALCOM_WEBHOOK_SECRET).status_code == 202
    assert [r["status"] for r in inbox(bsync)] == ["pending"]
    result = bsync("sync")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert [r["status"] for r in inbox(bsync)] == ["done"]
    assert f"calcom:{booking['uid']}" in calcom_pages(sandbox)


def test_burst_of_signed_deliveries_from_concurrent_clients(sandbox, bsync, receiver):
    receiver.worker.stopped.set()  # measure the receiver alone
    receiver.worker.wake.set()
    receiver.worker.thread.join(timeout=10)
    n = 1000
    uids = [sandbox.calcom.create_booking(start=soon(days=3 + i % 20, hour=8 + i % 9))["uid"] for i in range(n)]
    bodies = [sandbox.calcom.encode_body(sandbox.calcom.webhook_payload("BOOKING_CREATED", uid)) for uid in uids]
    url = f"{receiver.url}/webhooks/calcom"
    local = threading.local()
    signed = [(body, sandbox.calcom.sign(body, CALCOM_WEBHOOK_SECRET)) for body in bodies]

    def send(item):
        body, signature = item
        if not hasattr(local, "client"):  # each concurrent client keeps its connection
            local.client = httpx.Client(timeout=30)
        return local.client.post(url, content=body, headers={
            "X-Cal-Signature-256": signature, "Content-Type": "application/json"}).status_code

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=32) as pool:
        statuses = list(pool.map(send, signed + signed[:100]))  # 100 repeats
    elapsed = time.perf_counter() - started
    assert statuses[:n].count(202) == n and statuses[n:].count(200) == 100
    rows = inbox(bsync)
    assert len(rows) == n and len({r["delivery_id"] for r in rows}) == n
    print(f"\n{n + 100} deliveries in {elapsed:.2f} s: {(n + 100) / elapsed:.0f} deliveries/s")
    assert httpx.get(f"{receiver.url}/healthz").json()["inbox"] == {"pending": n}


def sign(body: bytes, secret: str) -> str:
    import hashlib
    import hmac

    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@pytest.fixture
def configured(sandbox, bsync):
    """The receiver's optional parts switched on: Sesami, Notion webhooks, POST /sync."""
    with bsync.config.open("a") as f:
        f.write('\n[server]\nsync_token = "admin-token"\nsesami_secret = "sesami-secret"\n'
                'notion_verification_token = "secret_notion_verify"\n')
    return bsync


def test_cal_com_reschedule_cancel_and_meeting_ended_webhooks(sandbox, configured, receiver):
    url = f"{receiver.url}/webhooks/calcom"
    booking = sandbox.calcom.create_booking(start=soon(hour=10))
    assert sandbox.calcom.deliver(url, "BOOKING_CREATED", booking["uid"], CALCOM_WEBHOOK_SECRET).status_code == 202
    assert wait_for(lambda: f"calcom:{booking['uid']}" in calcom_pages(sandbox))
    new = sandbox.calcom.reschedule(booking["uid"], soon(hour=15))
    assert sandbox.calcom.deliver(url, "BOOKING_RESCHEDULED", new["uid"], CALCOM_WEBHOOK_SECRET).status_code == 202

    def moved():
        props = calcom_pages(sandbox).get(f"calcom:{booking['uid']}")
        return props and datetime.fromisoformat(props["When"]["date"]["start"]) == soon(hour=15)
    assert wait_for(moved)
    assert len(sandbox.notion.pages) == 1  # the same booking, not a second one
    sandbox.calcom.cancel(new["uid"], request_reschedule=True)
    assert sandbox.calcom.deliver(url, "BOOKING_CANCELLED", new["uid"], CALCOM_WEBHOOK_SECRET).status_code == 202
    assert wait_for(lambda: calcom_pages(sandbox)[f"calcom:{booking['uid']}"]["Status"]["status"]["name"] == "Cancelled")
    assert wait_for(lambda: sandbox.google.list_events(sandbox.google.calendar_id)[0]["status"] == "cancelled")


def test_sesami_delivery_becomes_a_booking(sandbox, configured, receiver):
    start = soon(hour=11)
    body = json.dumps({"event_type": "booking.created", "timestamp": datetime.now(UTC).isoformat(),
                       "shop": {"domain": "salon.myshopify.com"},
                       "booking": {"id": "S-1", "appointment_time": start.isoformat(), "status": "confirmed",
                                   "customer": {"name": "Kasia", "email": "kasia@example.com", "phone": "+48 500"},
                                   "service": {"name": "Bath", "duration": 45, "staff_member": "Anna"},
                                   "notes": "first visit"}}).encode()
    url = f"{receiver.url}/webhooks/sesami"
    assert httpx.post(url, content=body, headers={"x-sesami-signature": "0" * 64}).status_code == 401
    r = httpx.post(url, content=body, headers={"x-sesami-signature": sign(body, "sesami-secret")})
    assert r.status_code == 202

    def page():
        for page_id in sandbox.notion.pages:
            props = sandbox.notion.get_page(page_id)["properties"]
            if (props["Source"]["select"] or {}).get("name") == "sesami":
                return props
    assert wait_for(lambda: page() is not None)
    props = page()
    assert text(props, "External ID") == "sesami:S-1" and text(props, "Customer") == "Kasia"
    assert datetime.fromisoformat(props["When"]["date"]["end"]) == start + timedelta(minutes=45)


def test_notion_webhook_handshake_signature_and_events(sandbox, configured, receiver, caplog):
    url = f"{receiver.url}/webhooks/notion"
    attacker = "secret_attackerChoseThis0123456789"
    with caplog.at_level(logging.INFO, logger="bsync.serve.app"):
        # the first token posted is an attacker's: logged for the admin, never trusted
        assert httpx.post(url, json={"verification_token": attacker}).status_code == 200
        assert httpx.post(url, json={"verification_token": "secret_notion_verify"}).status_code == 200
    logged = [r.getMessage() for r in caplog.records if "verification token received" in r.getMessage()]
    assert len(logged) == 2 and attacker in logged[0] and "matches" in logged[1]
    with Store.open_readonly(configured.state_path) as store:
        assert store.cursors() == [] and store.inbox_counts() == {}
    page = sandbox.notion.create_page({"Name": {"title": [{"text": {"content": "Rex"}}]},
                                       "When": {"date": {"start": soon(hour=9).isoformat()}},
                                       "Status": {"status": {"name": "Confirmed"}}})
    event = json.dumps({"id": "evt-1", "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
                        "workspace_id": "w", "subscription_id": "s", "integration_id": "i", "type": "page.created",
                        "entity": {"id": page["id"], "type": "page"},
                        "data": {"parent": {"id": sandbox.notion.data_source_id, "type": "data_source"}},
                        "attempt_number": 1}).encode()
    assert httpx.post(url, content=event, headers={"X-Notion-Signature": "sha256=" + "0" * 64}).status_code == 401
    forged = {"X-Notion-Signature": "sha256=" + sign(event, attacker)}  # signed with the attacker's token
    assert httpx.post(url, content=event, headers=forged).status_code == 401
    r = httpx.post(url, content=event, headers={"X-Notion-Signature": "sha256=" + sign(event, "secret_notion_verify")})
    assert r.status_code == 202
    assert wait_for(lambda: sandbox.google.event_count(sandbox.google.calendar_id) == 1)  # the change reached the calendar


def test_post_sync_needs_the_bearer_token_and_returns_the_summary(sandbox, configured, receiver):
    sandbox.notion.create_page({"Name": {"title": [{"text": {"content": "Rex"}}]},
                                "When": {"date": {"start": soon(hour=9).isoformat()}},
                                       "Status": {"status": {"name": "Confirmed"}}})
    receiver.worker.stopped.set()
    receiver.worker.wake.set()
    receiver.worker.thread.join(timeout=10)
    assert httpx.post(f"{receiver.url}/sync").status_code == 401
    assert httpx.post(f"{receiver.url}/sync", headers={"Authorization": "Bearer wrong"}).status_code == 401
    r = httpx.post(f"{receiver.url}/sync", headers={"Authorization": "Bearer admin-token"}, timeout=30)
    assert r.status_code == 200 and r.json()["sync"]["created"] == 1
    health = httpx.get(f"{receiver.url}/healthz")
    assert health.json()["last_run"]["exit_code"] == 0
    # the worker was stopped above: the receiver says so rather than "ok"
    assert health.status_code == 503 and health.json()["problems"] == ["the inbox worker is not running"]


def test_meeting_ended_marks_the_booking_completed_by_webhook_and_by_pull(sandbox, configured, receiver):
    url = f"{receiver.url}/webhooks/calcom"
    past_start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=61)  # ended a minute ago
    done = sandbox.calcom.create_booking(start=past_start, end=past_start + timedelta(hours=1))
    assert sandbox.calcom.deliver(url, "BOOKING_CREATED", done["uid"], CALCOM_WEBHOOK_SECRET).status_code == 202
    assert wait_for(lambda: f"calcom:{done['uid']}" in calcom_pages(sandbox))
    sandbox.calcom.end_meeting(done["uid"])
    assert sandbox.calcom.deliver(url, "MEETING_ENDED", done["uid"], CALCOM_WEBHOOK_SECRET).status_code == 202
    assert wait_for(lambda: calcom_pages(sandbox)[f"calcom:{done['uid']}"]["Status"]["status"]["name"] == "Completed")


def test_pull_marks_meetings_that_have_ended_completed(sandbox, bsync):
    past_start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)
    booking = sandbox.calcom.create_booking(start=past_start, end=past_start + timedelta(hours=1))
    pulled(bsync)
    assert calcom_pages(sandbox)[f"calcom:{booking['uid']}"]["Status"]["status"]["name"] == "Completed"


def test_no_show_webhook_marks_the_booking(sandbox, configured, receiver):
    """An attendee no-show doesn't bump Cal.com's updatedAt, so only the webhook tells."""
    url = f"{receiver.url}/webhooks/calcom"
    booking = sandbox.calcom.create_booking(start=soon(hour=10))
    assert sandbox.calcom.deliver(url, "BOOKING_CREATED", booking["uid"], CALCOM_WEBHOOK_SECRET).status_code == 202
    assert wait_for(lambda: f"calcom:{booking['uid']}" in calcom_pages(sandbox))
    sandbox.calcom.mark_no_show(booking["uid"], [booking["attendees"][0]["email"]])
    assert sandbox.calcom.deliver(url, "BOOKING_NO_SHOW_UPDATED", booking["uid"], CALCOM_WEBHOOK_SECRET).status_code == 202
    assert wait_for(lambda: calcom_pages(sandbox)[f"calcom:{booking['uid']}"]["Status"]["status"]["name"] == "No-show")


def test_title_over_notions_limit_is_truncated_reported_and_settles(sandbox, bsync):
    long_title = "Rex 🐕 full groom, " + "please be gentle " * 300  # ~5,100 characters, with a surrogate pair
    booking = sandbox.calcom.create_booking(start=soon(hour=10), title=long_title)
    summary = pulled(bsync)
    [note] = summary["notes"]
    assert "title truncated to Notion's 2,000-character limit" in note["note"]
    [props] = calcom_pages(sandbox).values()
    title = "".join(t["plain_text"] for t in props["Name"]["title"])
    assert len(title.encode("utf-16-le")) // 2 == 2000 and title.endswith("…")
    assert long_title.startswith(title[:-1])
    sandbox.clear_requests()
    again = pulled(bsync)
    assert again["updated"] == 0 and write_requests(sandbox) == []  # the cut title is not rewritten every run
    assert bsync("sync").exit_code == 0
    [event] = sandbox.google.list_events(sandbox.google.calendar_id, include_deleted=False)
    assert event["summary"] == title and f"calcom:{booking['uid']}" in calcom_pages(sandbox)


def test_delivery_with_a_title_over_notions_limit_still_reaches_notion_and_the_calendar(sandbox, bsync, receiver):
    booking = sandbox.calcom.create_booking(start=soon(hour=11), title="Luna " + "x" * 2500)
    response = sandbox.calcom.deliver(f"{receiver.url}/webhooks/calcom", "BOOKING_CREATED", booking["uid"],
                                      CALCOM_WEBHOOK_SECRET)
    assert response.status_code == 202
    assert wait_for(lambda: f"calcom:{booking['uid']}" in calcom_pages(sandbox))
    assert wait_for(lambda: sandbox.google.event_count(sandbox.google.calendar_id) == 1)
    props = calcom_pages(sandbox)[f"calcom:{booking['uid']}"]
    title = "".join(t["plain_text"] for t in props["Name"]["title"])
    assert len(title) == 2000 and title.startswith("Luna xxx") and title.endswith("…")
    assert [r["status"] for r in inbox(bsync)] == ["done"]


def test_failing_calcom_booking_stays_reported_until_a_pull_reads_it_valid(sandbox, bsync):
    an_hour_ago = datetime.now(timezone.utc) - timedelta(hours=1)
    bad = sandbox.calcom.create_booking(title="Odd – decade", start=soon(hour=9),
                                        end=soon(hour=9) + timedelta(days=3650), updated_at=an_hour_ago)
    sandbox.calcom.create_booking(start=soon(hour=12))
    first = bsync("sync", "pull", "calcom", "--json")
    assert first.exit_code == 1
    [failure] = first.json["failures"]
    assert failure["id"] == bad["uid"] and failure["title"] == "Odd – decade"
    assert "suspicious time" in failure["reason"]
    second = bsync("sync", "pull", "calcom", "--json")  # incremental: the bad booking is not read again
    assert second.exit_code == 1 and second.json["failures"] == [failure]
    failing = bsync("status", "--json").json["records"]["failing"]
    assert [(r["id"], r["title"]) for r in failing] == [(f"calcom:{bad['uid']}", "Odd – decade")]
    # fixed: a sane time, under a new uid in the same reschedule chain
    sandbox.calcom.reschedule(bad["uid"], start=soon(hour=15), end=soon(hour=16))
    assert pulled(bsync)["failures"] == []
    assert bsync("status", "--json").json["records"]["failing"] == []
    assert len(calcom_pages(sandbox)) == 2


# -- the receiver under hostile input and failure (issue 11 §1, §6) --------------------------
def stop_worker(receiver):
    receiver.worker.stopped.set()
    receiver.worker.wake.set()
    receiver.worker.thread.join(timeout=10)


def db_bytes(path) -> int:
    import sqlite3

    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path.stat().st_size


def test_unsigned_floods_keep_a_bounded_trace_not_the_bodies(sandbox, bsync, receiver):
    stop_worker(receiver)
    before = db_bytes(bsync.state_path)
    body = b'{"triggerEvent": "BOOKING_CREATED", "pad": "' + b"x" * (1024 * 1024 - 64) + b'"}'
    assert len(body) <= 1024 * 1024
    local = threading.local()

    def post(_):
        if not hasattr(local, "client"):
            local.client = httpx.Client(timeout=60)
        return local.client.post(f"{receiver.url}/webhooks/calcom", content=body,
                                 headers={"X-Cal-Signature-256": "0" * 64}).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(post, range(1000)))
    assert statuses == [401] * 1000
    grown = db_bytes(bsync.state_path) - before
    print(f"\n1,000 unsigned 1 MiB posts grew the state DB by {grown / 1024:.0f} KiB")
    assert grown < 5 * 1024 * 1024
    with Store.open_readonly(bsync.state_path) as store:
        rows = list(store.db.query("SELECT payload, error FROM inbox WHERE status = 'rejected'"))
    assert len(rows) == Store.REJECTED_KEPT  # the newest are kept for the admin
    kept = json.loads(rows[-1]["payload"])
    import hashlib

    assert kept == {"size": len(body), "sha256": hashlib.sha256(body).hexdigest(),
                    "prefix": body[:Store.REJECTED_PREFIX].decode()}


def test_healthz_is_503_with_the_reason_when_a_delivery_waits_too_long(sandbox, bsync, receiver):
    from bsync.core.store import RunLock

    long_run = RunLock(bsync.state_path).acquire()  # a long cron sync: the worker waits for it
    try:
        booking = sandbox.calcom.create_booking(start=soon(hour=11))
        sandbox.calcom.deliver(f"{receiver.url}/webhooks/calcom", "BOOKING_CREATED", booking["uid"],
                               CALCOM_WEBHOOK_SECRET)
        fresh = httpx.get(f"{receiver.url}/healthz")
        assert fresh.status_code == 200 and fresh.json()["inbox"] == {"pending": 1}
        with Store.open(bsync.state_path) as store:  # it arrived six minutes ago and is still pending
            store.db.execute("UPDATE inbox SET received_at = ?",
                             [(datetime.now(UTC) - timedelta(minutes=6)).isoformat(timespec="seconds")])
        stale = httpx.get(f"{receiver.url}/healthz")
        assert stale.status_code == 503
        assert stale.json()["problems"] == ["the oldest pending delivery is 6m old (stale_after 5m)"]
    finally:
        long_run.release()
    assert wait_for(lambda: httpx.get(f"{receiver.url}/healthz").status_code == 200)  # the worker caught up
    assert [r["status"] for r in inbox(bsync)] == ["done"]


def test_healthz_reports_a_failing_worker_and_the_worker_heals_by_itself(sandbox, bsync, receiver):
    receiver.worker.RETRY_DELAYS = (0.2,)
    sandbox.notion.set_faults(fail_after_n=0, fail_statuses=[503])  # Notion is down
    booking = sandbox.calcom.create_booking(start=soon(hour=12))
    assert sandbox.calcom.deliver(f"{receiver.url}/webhooks/calcom", "BOOKING_CREATED", booking["uid"],
                                  CALCOM_WEBHOOK_SECRET).status_code == 202
    assert wait_for(lambda: httpx.get(f"{receiver.url}/healthz").status_code == 503)
    problems = httpx.get(f"{receiver.url}/healthz").json()["problems"]
    assert len(problems) == 1 and problems[0].startswith("the inbox worker failed:") and "Notion" in problems[0]
    sandbox.notion.set_faults()  # Notion is back: no new delivery is needed for the booking to get through
    assert wait_for(lambda: f"calcom:{booking['uid']}" in calcom_pages(sandbox), timeout=30)
    assert wait_for(lambda: httpx.get(f"{receiver.url}/healthz").status_code == 200)


def test_processed_deliveries_are_forgotten_after_the_retention(sandbox, bsync):
    old = (datetime.now(UTC) - timedelta(days=31)).isoformat(timespec="seconds")
    with Store.open(bsync.state_path) as store:
        for status in ("done", "ignored", "rejected", "pending"):
            store.inbox_add("calcom", f"old-{status}", verified=status != "rejected", payload="{}", status=status)
        store.inbox_add("calcom", "recent-done", verified=True, payload="{}", status="done")
        store.db.execute("UPDATE inbox SET received_at = ? WHERE delivery_id LIKE 'old-%'", [old])
    sandbox.calcom.set_faults()
    result = bsync("sync")
    assert "3 pruned" in result.stdout
    with Store.open_readonly(bsync.state_path) as store:
        left = {row["delivery_id"] for row in store.db.query("SELECT delivery_id FROM inbox")}
    assert left == {"old-pending", "recent-done"}  # a pending delivery is work still to do, whatever its age


def test_the_sms_reminder_number_is_the_phone_when_the_attendee_has_none(sandbox, bsync, receiver):
    texted = sandbox.calcom.create_booking(start=soon(hour=10), attendee_email="sms@example.com",
                                           responses={"smsReminderNumber": "+48600100300"})
    both = sandbox.calcom.create_booking(start=soon(hour=12), responses={"smsReminderNumber": "+48600100301"},
                                         attendees=[{"name": "Ola", "email": "ola@example.com",
                                                     "timeZone": "Europe/Warsaw", "phoneNumber": "+48600100302"}])
    assert texted["bookingFieldsResponses"]["smsReminderNumber"] == "+48600100300"  # the API v2 object
    pulled(bsync)
    pages = calcom_pages(sandbox)
    assert pages[f"calcom:{texted['uid']}"]["Phone"]["phone_number"] == "+48600100300"
    assert pages[f"calcom:{both['uid']}"]["Phone"]["phone_number"] == "+48600100302"  # the attendee's wins
    hooked = sandbox.calcom.create_booking(start=soon(hour=14), attendee_email="hook@example.com",
                                           responses={"smsReminderNumber": "+48600100303"})
    response = sandbox.calcom.deliver(f"{receiver.url}/webhooks/calcom", "BOOKING_CREATED", hooked["uid"],
                                      CALCOM_WEBHOOK_SECRET)
    assert response.status_code == 202
    assert json.loads(sandbox.calcom.deliveries[-1]["body"])["payload"]["smsReminderNumber"] == "+48600100303"
    assert wait_for(lambda: f"calcom:{hooked['uid']}" in calcom_pages(sandbox))
    assert calcom_pages(sandbox)[f"calcom:{hooked['uid']}"]["Phone"]["phone_number"] == "+48600100303"
