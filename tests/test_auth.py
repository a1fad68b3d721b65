"""Google sign-in end to end: google-auth-oauthlib's installed-app flow against the sandbox's
authorization and token endpoints, the token file it leaves, refresh during runs, a revoked
refresh token (exit 4), token_info's warnings, and the service-account path."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from google.oauth2 import service_account

from bsync.calendars.google_auth import (
    OBTAINED_AT_KEY,
    UserCredentials,
    auth_url_instructions,
    authorize_installed_app,
    load_credentials,
    redirect_port,
    token_info,
)
from bsync.config import GoogleConfig, load_config
from bsync.errors import AuthError, ConfigError, UsageError
from bsync.calendars.gcal import GoogleCalendarTarget, event_id_for
from bsync.core.retry import RetryPolicy
from bsync.sandbox.gcal import DEFAULT_REFRESH_TOKEN
from bsync.sandbox.seed import booking_properties

CLIENT_SECRETS = "client_secret.json"


class Browser:
    """Plays the user's browser: opens the authorization URL and follows Google's redirect
    to the flow's loopback server, from a thread, as a real browser would."""

    def __init__(self) -> None:
        self.url: str | None = None
        self.final: httpx.Response | None = None
        self.error: BaseException | None = None
        self._thread: threading.Thread | None = None

    def __call__(self, url: str) -> None:
        self.url = url
        self._thread = threading.Thread(target=self._visit, daemon=True)
        self._thread.start()

    def _visit(self) -> None:
        try:
            self.final = httpx.get(self.url, follow_redirects=True, timeout=10)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.error = exc

    def join(self) -> None:
        if self._thread is not None:
            self._thread.join(10)


def google_config(bsync, **changes) -> GoogleConfig:
    """The [google] section of the test's config, with credentials_file = the sandbox's client."""
    secrets_path = bsync.sandbox.google.write_client_secrets(bsync.folder / CLIENT_SECRETS)
    google = load_config(bsync.config).google
    return google.model_copy(update={"credentials_file": secrets_path, **changes})


def sign_in(bsync, **kwargs) -> tuple[GoogleConfig, Browser]:
    config = google_config(bsync)
    browser = Browser()
    authorize_installed_app(config, open_browser=False, port=0, timeout_s=10, on_url=browser, **kwargs)
    browser.join()
    assert browser.error is None
    return config, browser


def token_json(config: GoogleConfig) -> dict:
    return json.loads(Path(config.token_file).read_text())


def mode_of(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def add_booking(sandbox, title="Rex – groom"):
    tz = UTC
    start = datetime(2026, 12, 1, 10, tzinfo=tz)
    page = sandbox.notion.create_page(booking_properties(title, start=start, end=start + timedelta(hours=1)))
    return page["id"]


def event_of(sandbox, page_id):
    return sandbox.google.get_event(sandbox.google.calendar_id, event_id_for(f"notion:{page_id}"))


# -- the installed-app flow ---------------------------------------------------------------------

def test_installed_app_flow_stores_a_refreshable_token_0600(sandbox, bsync):
    srv = sandbox.google
    before = datetime.now(UTC).replace(microsecond=0)
    config, browser = sign_in(bsync)

    # the browser went to the sandbox's authorization endpoint and back to the loopback server
    query = parse_qs(urlsplit(browser.url).query)
    assert browser.url.startswith(srv.url + "/o/oauth2/auth?")
    assert query["client_id"] == [srv.client_id] and query["response_type"] == ["code"]
    assert query["access_type"] == ["offline"] and query["prompt"] == ["consent"]
    assert query["code_challenge_method"] == ["S256"]  # google-auth-oauthlib sends PKCE by default
    assert query["redirect_uri"][0].startswith("http://localhost:")
    assert browser.final.status_code == 200 and "close this window" in browser.final.text
    assert urlsplit(str(browser.final.url)).port == redirect_port(browser.url)

    path = Path(config.token_file)
    assert mode_of(path) == 0o600
    data = token_json(config)
    assert data["type"] == "authorized_user"
    assert data["refresh_token"] in srv.refresh_tokens and data["refresh_token"] != DEFAULT_REFRESH_TOKEN
    assert data["client_id"] == srv.client_id and data["token"] in srv.access_tokens
    assert data["scopes"] == ["https://www.googleapis.com/auth/calendar"]
    obtained = datetime.fromisoformat(data[OBTAINED_AT_KEY])
    assert before <= obtained <= datetime.now(UTC)
    assert not list(path.parent.glob(".google-token.json.*"))  # no temp file left behind
    assert [(r.method, r.path, r.status) for r in srv.requests] == [
        ("GET", "/o/oauth2/auth", 302), ("POST", "/token", 200)]

    info = token_info(config)
    assert info.kind == "authorized_user" and info.has_refresh_token and info.mode_ok
    assert info.warning is None and info.age < timedelta(minutes=1)

    # the stored token works: as a raw bearer token, through load_credentials, and for a sync
    events = f"{srv.url}/calendar/v3/calendars/{srv.calendar_id}/events"
    assert httpx.get(events, headers={"Authorization": f"Bearer {data['token']}"}).status_code == 200
    creds = load_credentials(config)
    assert isinstance(creds, UserCredentials) and creds.token_uri == f"{srv.url}/token"
    target = GoogleCalendarTarget(config, RetryPolicy(max_retries=0))
    assert target.events.list(calendarId=srv.calendar_id).execute()["kind"] == "calendar#events"
    page = add_booking(sandbox)
    result = bsync("sync", "notion-to-gcal")
    assert result.exit_code == 0, result.stderr
    assert event_of(sandbox, page)["summary"] == "Rex – groom"
    assert srv.count("POST", "/token") == 1  # the stored access token was still good


def test_expired_access_token_refreshes_during_a_run_and_is_persisted(sandbox, bsync):
    srv = sandbox.google
    config, _ = sign_in(bsync)
    first = token_json(config)

    # Google expired the access token early (the client still thinks it is good): 401, refresh
    srv.expire_access_tokens()
    add_booking(sandbox, "First")
    assert bsync("sync", "notion-to-gcal").exit_code == 0
    second = token_json(config)
    assert second["token"] != first["token"] and second["token"] in srv.access_tokens
    assert second["refresh_token"] == first["refresh_token"]
    assert second[OBTAINED_AT_KEY] == first[OBTAINED_AT_KEY]  # a refresh is not a new sign-in
    assert mode_of(Path(config.token_file)) == 0o600
    refreshes = [r for r in srv.requests if r.path == "/token"]
    assert len(refreshes) == 2 and refreshes[-1].status == 200

    # the stored expiry has passed: the client refreshes before sending anything
    stale = dict(second, expiry="2000-01-01T00:00:00Z")
    Path(config.token_file).write_text(json.dumps(stale))
    srv.clear_requests()
    add_booking(sandbox, "Second")
    assert bsync("sync", "notion-to-gcal").exit_code == 0
    assert srv.requests[0].path == "/token"
    assert all(r.status != 401 for r in srv.requests)
    third = token_json(config)
    assert third["token"] not in (first["token"], second["token"])
    assert datetime.fromisoformat(third["expiry"].rstrip("Z")) > datetime.now(UTC).replace(tzinfo=None)


def test_revoked_refresh_token_exits_4_naming_the_command(sandbox, bsync):
    srv = sandbox.google
    config, _ = sign_in(bsync)
    refresh = token_json(config)["refresh_token"]
    srv.revoke_refresh_token(refresh)  # also kills the access tokens issued from it
    add_booking(sandbox)
    result = bsync("sync", "notion-to-gcal")
    assert result.exit_code == 4
    assert "invalid_grant" in result.stderr and "bsync auth google" in result.stderr
    assert refresh not in result.stdout + result.stderr


def test_seeded_token_revoked_also_names_the_command(sandbox, bsync):
    """The same message for a token file not made by this bsync (e.g. 7-day Testing expiry)."""
    sandbox.google.revoke_refresh_token(DEFAULT_REFRESH_TOKEN)
    add_booking(sandbox)
    result = bsync("sync", "notion-to-gcal")
    assert result.exit_code == 4
    assert "Token has been expired or revoked" in result.stderr
    assert "bsync auth google" in result.stderr


def test_auth_url_instructions_name_the_port_to_forward(sandbox, bsync):
    config = google_config(bsync)
    before = Path(config.token_file).read_text()
    seen: list[tuple[str, str]] = []

    def nobody_opens_it(url: str) -> None:
        seen.append((url, auth_url_instructions(url, browser_opened=False)))

    with pytest.raises(AuthError, match="no answer from the browser") as info:
        authorize_installed_app(config, open_browser=False, timeout_s=0.3, on_url=nobody_opens_it)
    assert info.value.exit_code == 4
    [(url, text)] = seen
    port = redirect_port(url)
    assert port and url in text and f"ssh -L {port}:localhost:{port}" in text
    assert Path(config.token_file).read_text() == before


@pytest.mark.parametrize("change, message", [
    ("deny", "access was denied"),
    ("no_refresh", "no refresh token"),
    ("bad_secret", "invalid_client"),
])
def test_failed_sign_in_is_an_auth_error_and_keeps_the_old_token(sandbox, bsync, change, message):
    srv = sandbox.google
    config = google_config(bsync)
    before = Path(config.token_file).read_text()
    if change == "deny":
        srv.user_consents = False
    elif change == "no_refresh":
        srv.issue_refresh_tokens = False
    else:
        client = json.loads(Path(config.credentials_file).read_text())
        client["installed"]["client_secret"] = "not-the-secret"
        Path(config.credentials_file).write_text(json.dumps(client))
    browser = Browser()
    with pytest.raises(AuthError, match=message) as info:
        authorize_installed_app(config, open_browser=False, timeout_s=10, on_url=browser)
    browser.join()
    assert info.value.exit_code == 4 and "bsync auth google" in (info.value.hint or "") + str(info.value)
    assert Path(config.token_file).read_text() == before


def test_unusable_credentials_file_is_a_config_error(sandbox, bsync, tmp_path):
    with pytest.raises(ConfigError, match="credentials_file is not set") as info:
        authorize_installed_app(google_config(bsync, credentials_file=None), open_browser=False)
    assert "Desktop app" in info.value.hint
    with pytest.raises(ConfigError, match="does not exist"):
        authorize_installed_app(google_config(bsync, credentials_file=tmp_path / "nope.json"))
    web = tmp_path / "web.json"
    web.write_text(json.dumps({"web": {"client_id": "x", "client_secret": "y"}}))
    with pytest.raises(ConfigError, match="Web application"):
        authorize_installed_app(google_config(bsync, credentials_file=web))
    key = sandbox.google.write_service_account_key(tmp_path / "sa.json")
    with pytest.raises(UsageError, match="service accounts need no `bsync auth google` step") as info:
        authorize_installed_app(google_config(bsync, credentials_file=key))
    assert sandbox.google.requests == []


# -- token_info -----------------------------------------------------------------------------------

def write_token(path: Path, *, obtained_at: datetime | None, mode: int = 0o600, **extra) -> None:
    data = {"type": "authorized_user", "refresh_token": "r", "client_id": "c", "client_secret": "s",
            **extra}
    if obtained_at is not None:
        data[OBTAINED_AT_KEY] = obtained_at.isoformat().replace("+00:00", "Z")
    path.write_text(json.dumps(data))
    os.chmod(path, mode)


def test_token_info_warns_before_the_testing_expiry(tmp_path):
    now = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    path = tmp_path / "token.json"
    config = GoogleConfig(calendar_id="c", token_file=path)

    write_token(path, obtained_at=now - timedelta(days=6, hours=12))
    info = token_info(config, now)
    assert info.kind == "authorized_user" and info.age == timedelta(days=6, hours=12)
    assert info.lapses_at == datetime(2026, 11, 21, 0, 0, tzinfo=UTC)
    assert len(info.warnings) == 1
    assert "if your OAuth app is in Testing" in info.warning
    assert "2026-11-21 00:00 UTC" in info.warning and "bsync auth google" in info.warning
    assert info.as_dict()["age_seconds"] == int(timedelta(days=6, hours=12).total_seconds())
    assert "6d 12h ago" in info.describe()

    for age in (timedelta(days=5), timedelta(days=30)):  # young, or older than 7 days yet working
        write_token(path, obtained_at=now - age)
        assert token_info(config, now).warnings == ()
    write_token(path, obtained_at=None)  # a token file written by something else: no date known
    info = token_info(config, now)
    assert info.obtained_at is None and info.age is None and info.warnings == ()


def test_token_info_warns_about_a_readable_token_file(tmp_path):
    path = tmp_path / "token.json"
    write_token(path, obtained_at=datetime.now(UTC), mode=0o644, token="ya29.x",
                expiry="2026-11-20T13:00:00Z")
    info = token_info(GoogleConfig(calendar_id="c", token_file=path))
    assert info.mode == 0o644 and info.mode_ok is False
    assert f"chmod 600 {path}" in info.warning
    assert info.access_expiry == datetime(2026, 11, 20, 13, 0, tzinfo=UTC)
    assert info.as_dict()["mode"] == "0644"


def test_token_info_missing_and_invalid(tmp_path):
    path = tmp_path / "token.json"
    info = token_info(GoogleConfig(calendar_id="c", token_file=path))
    assert info.kind == "missing" and "bsync auth google" in info.error
    path.write_text('{"client_id": "c"}')
    info = token_info(GoogleConfig(calendar_id="c", token_file=path))
    assert info.kind == "invalid" and "refresh_token" in info.error
    with pytest.raises(ConfigError, match="not a usable token"):
        load_credentials(GoogleConfig(calendar_id="c", token_file=path))


# -- service accounts ---------------------------------------------------------------------------

def test_service_account_works_without_a_token_file(sandbox, bsync):
    srv = sandbox.google
    key = srv.write_service_account_key(bsync.folder / "sa.json")
    assert mode_of(key) == 0o600
    config = google_config(bsync, credentials_file=key, token_file=bsync.folder / "absent.json")

    creds = load_credentials(config)
    assert isinstance(creds, service_account.Credentials)
    info = token_info(config)
    assert info.kind == "service_account" and info.account == json.loads(key.read_text())["client_email"]
    assert info.warnings == ()
    target = GoogleCalendarTarget(config, RetryPolicy(max_retries=0))
    assert target.events.list(calendarId=srv.calendar_id).execute()["kind"] == "calendar#events"
    grant = [r for r in srv.requests if r.path == "/token"]
    assert len(grant) == 1 and grant[0].status == 200

    # the CLI with only a service-account key in [google]
    text = bsync.config.read_text().replace('token_file = "google-token.json"', 'credentials_file = "sa.json"')
    bsync.config.write_text(text)
    (bsync.folder / "google-token.json").unlink()
    page = add_booking(sandbox)
    result = bsync("sync", "notion-to-gcal")
    assert result.exit_code == 0, result.stderr
    assert event_of(sandbox, page) is not None
    assert not (bsync.folder / "google-token.json").exists()

    # a deleted key: Google refuses the JWT, exit 4
    srv.remove_service_account(info.account)
    srv.expire_access_tokens()
    add_booking(sandbox, "Another")
    result = bsync("sync", "notion-to-gcal")
    assert result.exit_code == 4 and "Invalid JWT Signature" in result.stderr


# -- the sandbox's OAuth endpoints, as Google answers ---------------------------------------------

def authorize(srv, *, verifier: str | None = "v" * 50, redirect="http://127.0.0.1:9/cb", **extra) -> httpx.Response:
    params = {"client_id": srv.client_id, "redirect_uri": redirect, "response_type": "code",
              "scope": "https://www.googleapis.com/auth/calendar", "state": "s1", "access_type": "offline",
              **extra}
    if verifier is not None:
        digest = hashlib.sha256(verifier.encode()).digest()
        params |= {"code_challenge": base64.urlsafe_b64encode(digest).decode().rstrip("="),
                   "code_challenge_method": "S256"}
    return httpx.get(srv.url + "/o/oauth2/auth", params=params)


def code_from(response: httpx.Response) -> str:
    assert response.status_code == 302, response.text
    query = parse_qs(urlsplit(response.headers["location"]).query)
    assert query["state"] == ["s1"]
    return query["code"][0]


def exchange(srv, code, *, verifier: str | None = "v" * 50, secret=None, redirect="http://127.0.0.1:9/cb"):
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect,
            "client_id": srv.client_id, "client_secret": secret or srv.client_secret}
    if verifier is not None:
        form["code_verifier"] = verifier
    return httpx.post(srv.url + "/token", data=form)


def test_sandbox_code_exchange_and_google_errors(sandbox):
    srv = sandbox.google
    code = code_from(authorize(srv))
    ok = exchange(srv, code)
    assert ok.status_code == 200
    body = ok.json()
    assert list(body) == ["access_token", "expires_in", "refresh_token", "scope", "token_type"]
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3599 and "id_token" not in body
    again = exchange(srv, code)  # codes are single-use
    assert (again.status_code, again.json()) == (400, {"error": "invalid_grant", "error_description": "Bad Request"})

    wrong_secret = exchange(srv, code_from(authorize(srv)), secret="nope")
    assert (wrong_secret.status_code, wrong_secret.json()["error"]) == (401, "invalid_client")
    assert wrong_secret.json()["error_description"] == "Unauthorized"
    bad_verifier = exchange(srv, code_from(authorize(srv)), verifier="w" * 50)
    assert bad_verifier.json() == {"error": "invalid_grant", "error_description": "Invalid code verifier."}
    no_verifier = exchange(srv, code_from(authorize(srv)), verifier=None)
    assert no_verifier.json() == {"error": "invalid_grant", "error_description": "Missing code verifier."}
    moved = exchange(srv, code_from(authorize(srv)), redirect="http://127.0.0.1:10/cb")
    assert moved.json() == {"error": "redirect_uri_mismatch", "error_description": "Bad Request"}
    plain = exchange(srv, code_from(authorize(srv, verifier=None)), verifier=None)
    assert plain.status_code == 200

    # the issued refresh token is bound to the client: right secret refreshes, wrong one is 401
    refresh = body["refresh_token"]
    form = {"grant_type": "refresh_token", "refresh_token": refresh, "client_id": srv.client_id}
    assert httpx.post(srv.url + "/token", data=form | {"client_secret": srv.client_secret}).status_code == 200
    assert httpx.post(srv.url + "/token", data=form | {"client_secret": "nope"}).status_code == 401


def test_sandbox_authorization_endpoint_errors(sandbox):
    srv = sandbox.google
    unknown = httpx.get(srv.url + "/o/oauth2/auth", params={"client_id": "who", "redirect_uri": "http://127.0.0.1/"})
    assert unknown.status_code == 401 and "invalid_client" in unknown.text
    remote = authorize(srv, redirect="https://example.com/cb")
    assert remote.status_code == 400 and "redirect_uri_mismatch" in remote.text
    oob = authorize(srv, redirect="urn:ietf:wg:oauth:2.0:oob")
    assert oob.status_code == 400 and "out-of-band" in oob.text
    scope = authorize(srv, scope="https://example.com/everything")
    assert parse_qs(urlsplit(scope.headers["location"]).query)["error"] == ["invalid_scope"]
    srv.user_consents = False
    denied = authorize(srv)
    assert parse_qs(urlsplit(denied.headers["location"]).query) == {"state": ["s1"], "error": ["access_denied"]}


def test_cli_auth_google_no_browser_prints_the_url_and_stores_the_token(sandbox, bsync):
    """`bsync auth google --no-browser` as a user over SSH runs it: read the URL it prints,
    open it elsewhere, and the command finishes on its own with the token stored."""
    import re
    import subprocess
    import sys

    bsync.sandbox.google.write_client_secrets(bsync.folder / CLIENT_SECRETS)
    text = bsync.config.read_text().replace('token_file = "google-token.json"',
                                            f'token_file = "new-token.json"\ncredentials_file = "{CLIENT_SECRETS}"')
    bsync.config.write_text(text)
    proc = subprocess.Popen([sys.executable, "-m", "bsync.cli", "auth", "google", "--no-browser", "--timeout", "20",
                             "--config", str(bsync.config)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = None
    for line in proc.stderr:
        found = re.search(r"https?://\S+/o/oauth2/\S+", line)
        if found:
            url = found.group(0)
            break
    assert url, "no sign-in URL printed"
    httpx.get(url, follow_redirects=True, timeout=10)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "stored a refreshable token" in out
    token = bsync.folder / "new-token.json"
    assert mode_of(token) == 0o600 and json.loads(token.read_text())["refresh_token"]
