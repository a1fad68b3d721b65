"""What every emulator shares (sandbox/base.py): the HTTP framing of its answers."""

from __future__ import annotations

import http.client
from urllib.parse import urlsplit

import httpx
import pytest

from bsync.sandbox.base import Request, Response, SandboxApiError, SandboxServer, route


@pytest.mark.parametrize("name", ["notion", "google", "calcom", "sendgrid", "twilio"])
def test_every_emulator_answers_with_exactly_one_date_header(sandbox, name):
    """http.server's send_response already writes Date; a second one from our code made
    every answer carry two, which strict clients reject.  Read the raw header list (not a
    dict that would fold duplicates)."""
    server = getattr(sandbox, name)
    url = urlsplit(server.url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=5)
    try:
        for path in ("/", "/no/such/route"):
            conn.request("GET", path)
            response = conn.getresponse()
            response.read()
            dates = [value for key, value in response.getheaders() if key.lower() == "date"]
            assert len(dates) == 1, (name, path, response.getheaders())
            assert dates[0].endswith(" GMT")
    finally:
        conn.close()


class _Shop(SandboxServer):
    """A minimal API: one route that refuses with a typed error, one that succeeds."""

    name = "shop"

    def error(self, status: int, message: str, code: str | None = None, **details: str) -> Response:
        return Response(status, {"status": status, "message": message, "code": code, **details})

    @route("POST", "/items/{item_id}")
    def add_item(self, request: Request) -> Response:
        if request.params["item_id"] == "taken":
            raise SandboxApiError(409, "Item exists.", "duplicate", field="item_id")
        return Response(200, {"id": request.params["item_id"]})


def test_a_raised_api_error_is_answered_with_the_apis_own_error_body():
    with _Shop() as shop:
        response = httpx.post(shop.url + "/items/taken")
        assert response.status_code == 409
        assert response.json() == {"status": 409, "message": "Item exists.", "code": "duplicate",
                                   "field": "item_id"}
        assert [(r.path, r.status) for r in shop.requests] == [("/items/taken", 409)]
    assert str(SandboxApiError(409, "Item exists.", "duplicate")) == "409 duplicate: Item exists."
    assert str(SandboxApiError(404, "Gone.")) == "404: Gone."


def test_a_batched_call_runs_like_a_request_and_is_recorded_as_batched():
    shop = _Shop()
    try:
        shop.set_faults(fail_after_n=1)
        call = Request("POST", "/items/a1", {}, {}, b"")
        assert shop.dispatch_batched(call).status == 200           # the one call allowed
        shop.refund_api_call()                                      # ... given back
        assert shop.dispatch_batched(call).status == 200
        assert shop.dispatch_batched(call).status == 500           # faults apply per call
        assert shop.dispatch_batched(call, inject_faults=False).status == 200
        assert shop.dispatch_batched(call, inject_faults=False, routable=False).status == 404
        assert [(r.status, r.batch) for r in shop.requests] == [
            (200, True), (200, True), (500, True), (200, True), (404, True)]
        assert shop.count() == 0 and shop.count(include_batched=True) == 5
    finally:
        shop.stop()
