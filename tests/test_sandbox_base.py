"""What every emulator shares (sandbox/base.py): the HTTP framing of its answers."""

from __future__ import annotations

import http.client
from urllib.parse import urlsplit

import pytest


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
