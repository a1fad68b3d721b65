"""DavProxy: the caldav client, through the proxy, to a real Radicale (and Xandikos).  The
proxy must be invisible to the client (same answers as the server gives directly), record
every request, and fail requests on command without the server ever seeing them."""

from __future__ import annotations

import socket
from datetime import datetime, timezone

import caldav
import httpx
import pytest
from caldav.lib import error as dav_error

from bsync.sandbox.davproxy import DavProxy

EVENT = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//bsync tests//EN
BEGIN:VEVENT
UID:{uid}
DTSTAMP:20261101T000000Z
DTSTART:20261201T100000Z
DTEND:20261201T110000Z
SUMMARY:{summary}
END:VEVENT
END:VCALENDAR
"""


def client(server, url):
    return caldav.DAVClient(url=url, username=server.username, password=server.password)


def direct(server, method, url, **kw):
    return httpx.request(method, url, auth=(server.username, server.password), **kw)


@pytest.fixture(params=["radicale", "xandikos"])
def server(request):
    """Each real server the suite runs: the proxy must be transparent in front of both."""
    return request.getfixturevalue(request.param)


def test_a_caldav_session_through_the_proxy_reaches_the_server_and_every_request_is_recorded(server):
    with DavProxy(server.url) as proxy, client(server, proxy.url + "/") as dav:
        calendar = dav.get_principal().make_calendar(name="proxied", cal_id=f"proxied-{server.kind}")
        event = calendar.add_event(EVENT.format(uid="rex@bsync", summary="Rex"), no_overwrite=True,
                                   increase_seqno=False)
        # Every URL the client learnt from the answers stays on the proxy: no absolute URL
        # of the server's own leaked through (nothing needed rewriting).
        assert str(calendar.url).startswith(proxy.url) and str(event.url).startswith(proxy.url)
        found = calendar.search(start=datetime(2026, 11, 1, tzinfo=timezone.utc),
                                end=datetime(2027, 1, 1, tzinfo=timezone.utc), event=True)
        assert [str(e.url) for e in found] == [str(event.url)]
        event.icalendar_component["summary"] = "Rex (moved)"
        event.save(increase_seqno=False)
        methods = proxy.counts_by_method()
        assert methods["MKCALENDAR"] == 1 and methods["PUT"] == 2 and methods["REPORT"] >= 1
        assert len(proxy.requests) == sum(methods.values()) == proxy.count()

        # It is on the server: read directly, not through the proxy.
        upstream = server.url.rstrip("/") + event.url.path
        answer = direct(server, "GET", upstream)
        assert answer.status_code == 200 and "SUMMARY:Rex (moved)" in answer.text

        [create] = [r for r in proxy.requests if r.method == "PUT"][:1]
        assert create.json["headers"]["if-none-match"] == "*" and "UID:rex@bsync" in create.json["body"]
        assert all("authorization" not in r.json["headers"] for r in proxy.requests)


def test_answers_come_back_as_the_server_gave_them(radicale, caldav_calendar):
    with DavProxy(radicale.url) as proxy:
        resource = caldav_calendar + "same%40bsync.ics"
        put = direct(radicale, "PUT", proxy.proxied(resource), content=EVENT.format(uid="same@bsync", summary="x"),
                     headers={"Content-Type": "text/calendar", "If-None-Match": "*"})
        assert put.status_code == 201 and put.headers["etag"]
        again = direct(radicale, "PUT", proxy.proxied(resource), content=EVENT.format(uid="same@bsync", summary="y"),
                       headers={"Content-Type": "text/calendar", "If-None-Match": "*"})
        assert again.status_code == 412  # the precondition reached the server
        via, straight = (direct(radicale, "GET", url) for url in (proxy.proxied(resource), resource))
        assert via.status_code == straight.status_code == 200
        assert via.content == straight.content and via.headers["etag"] == straight.headers["etag"] == put.headers["etag"]
        assert via.headers["content-type"] == straight.headers["content-type"]
        body = '<?xml version="1.0"?><propfind xmlns="DAV:"><prop><getetag/><resourcetype/></prop></propfind>'
        via, straight = (direct(radicale, "PROPFIND", url, headers={"Depth": "1"}, content=body)
                         for url in (proxy.proxied(caldav_calendar), caldav_calendar))
        assert via.status_code == straight.status_code == 207 and via.content == straight.content
        assert via.headers["dav"] == straight.headers["dav"]
        refused = httpx.request("PROPFIND", proxy.proxied(caldav_calendar), auth=(radicale.username, "wrong"))
        assert refused.status_code == 401 and refused.headers["www-authenticate"].startswith("Basic")
        deleted = direct(radicale, "DELETE", proxy.proxied(resource))
        assert deleted.status_code == 200 and direct(radicale, "GET", resource).status_code == 404
        assert [(r.method, r.status) for r in proxy.requests] == [
            ("PUT", 201), ("PUT", 412), ("GET", 200), ("PROPFIND", 207), ("PROPFIND", 401), ("DELETE", deleted.status_code)]


def test_after_n_requests_the_proxy_fails_every_request_without_forwarding_it(radicale, caldav_calendar):
    with DavProxy(radicale.url) as proxy, client(radicale, proxy.proxied(caldav_calendar)) as dav:
        calendar = dav.calendar(url=proxy.proxied(caldav_calendar))
        calendar.add_event(EVENT.format(uid="one@bsync", summary="one"), increase_seqno=False)
        proxy.set_faults(fail_after_n=0)
        with pytest.raises(dav_error.DAVError):
            calendar.add_event(EVENT.format(uid="two@bsync", summary="two"), increase_seqno=False)
        assert {r.status for r in proxy.requests[-1:]} == {500}
        assert direct(radicale, "GET", caldav_calendar + "two%40bsync.ics").status_code == 404  # never reached it
        proxy.set_faults()
        calendar.add_event(EVENT.format(uid="two@bsync", summary="two"), increase_seqno=False)
        assert direct(radicale, "GET", caldav_calendar + "two%40bsync.ics").status_code == 200


def test_faults_and_the_request_log_over_http_and_reset(radicale, caldav_calendar):
    with DavProxy(radicale.url) as proxy:
        assert httpx.post(f"{proxy.url}/_sandbox/faults", json={"fail_after_n": 1}).status_code == 200
        first = direct(radicale, "PROPFIND", proxy.proxied(caldav_calendar), headers={"Depth": "0"})
        second = direct(radicale, "PROPFIND", proxy.proxied(caldav_calendar), headers={"Depth": "0"})
        assert (first.status_code, second.status_code) == (207, 500)
        log = httpx.get(f"{proxy.url}/_sandbox/requests").json()["requests"]
        assert [(r["method"], r["status"], r["json"]["headers"]) for r in log] == [
            ("PROPFIND", 207, {"depth": "0"}), ("PROPFIND", 500, {"depth": "0"})]
        proxy.reset()
        assert proxy.requests == [] and proxy.faults.fail_after_n is None
        assert direct(radicale, "PROPFIND", proxy.proxied(caldav_calendar), headers={"Depth": "0"}).status_code == 207


def test_a_server_that_is_gone_is_a_bad_gateway():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    with DavProxy(f"http://127.0.0.1:{closed}/") as proxy:
        answer = httpx.request("PROPFIND", f"{proxy.url}/alice/", headers={"Depth": "0"})
        assert answer.status_code == 502 and "did not answer" in answer.text
        assert [(r.method, r.status) for r in proxy.requests] == [("PROPFIND", 502)]


def test_proxied_maps_a_server_url_onto_the_proxy(radicale):
    with DavProxy(radicale.url) as proxy:
        assert proxy.proxied(radicale.url + "alice/cal/") == proxy.url + "/alice/cal/"
        with pytest.raises(ValueError):
            proxy.proxied("http://elsewhere.example/alice/")
