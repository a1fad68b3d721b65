"""Google credentials: the token file, ``bsync auth google`` and what doctor/status say about it.

Two kinds of credentials work with ``[google]``:

* **An authorized-user token** (``token_file``), made by :func:`authorize_installed_app`:
  the installed-app ("Desktop app") OAuth flow of google-auth-oauthlib.  A loopback server
  on this machine receives Google's redirect, so with ``--no-browser`` the URL can be opened
  on another machine as long as the port is forwarded (``ssh -L PORT:localhost:PORT host``).
  Google blocked the old copy-the-code ("out-of-band") flow in 2022 and the library no
  longer has it.  The file holds a refresh token; access tokens are refreshed during runs
  and the refreshed one is written back (mode 0600, atomically).
* **A service-account key** (``credentials_file`` with ``"type": "service_account"``), for
  Workspace calendars shared with the account.  It needs no ``bsync auth google`` step.

Refresh tokens lapse: Google revokes them when the user removes the app's access, after
six months unused, and, for an OAuth app whose publishing status is "Testing", seven days
after they were issued.  We can't see the publishing status, so :func:`token_info` warns
from day six; a token older than seven days that still works belongs to a published app
(or one Google doesn't limit) and is fine.  A refused refresh token (``invalid_grant``)
fails the run with exit 4 and a message naming ``bsync auth google``.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import stat
import sys
import tempfile
import webbrowser
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

import google.auth.exceptions
from google.oauth2 import credentials as user_credentials
from google.oauth2 import service_account

from bsync.calendars.base import Verdict
from bsync.config import GoogleConfig
from bsync.errors import AuthError, ConfigError, RemoteUnavailableError, UsageError

SCOPES = ["https://www.googleapis.com/auth/calendar"]
GOOGLE_AUTH_URI = "https://accounts.google.com/o/oauth2/auth"
REAUTH_COMMAND = "bsync auth google"
OBTAINED_AT_KEY = "bsync_obtained_at"
"""Extra key in the token file: when the refresh token was issued (google-auth ignores it)."""
TESTING_TOKEN_LIFETIME = timedelta(days=7)
"""How long Google keeps a refresh token of an OAuth app in "Testing" publishing status."""
WARN_AFTER = timedelta(days=6)
CLIENT_SECRETS_HINT = (
    "create an OAuth client ID of type 'Desktop app' in Google Cloud Console (APIs & Services → "
    "Credentials), download its JSON and set [google] credentials_file to it; then run "
    f"`{REAUTH_COMMAND}`")
SUCCESS_PAGE = "bsync can now use your Google Calendar. You may close this window."

TokenKind = Literal["authorized_user", "service_account", "missing", "invalid"]


# -- loading and saving -------------------------------------------------------------------------

class UserCredentials(user_credentials.Credentials):
    """Authorized-user credentials whose refresh failures say how to recover.

    A refresh token Google no longer accepts (``invalid_grant``) or a deleted OAuth client
    (``invalid_client``) is turned into a :class:`google.auth.exceptions.RefreshError` whose
    message names ``bsync auth google``; callers classify it as an auth failure (exit 4).
    """

    token_file: Path | None = None

    def refresh(self, request: Any) -> None:
        try:
            super().refresh(request)
        except google.auth.exceptions.RefreshError as exc:
            raise explain_refresh_error(exc, self.token_file) from exc


def explain_refresh_error(exc: google.auth.exceptions.RefreshError,
                          token_file: Path | None = None) -> google.auth.exceptions.RefreshError:
    """``exc`` with what to do appended, for the refusals only a new sign-in fixes."""
    data = exc.args[1] if len(exc.args) > 1 and isinstance(exc.args[1], dict) else {}
    message = str(exc.args[0]) if exc.args else str(exc)
    error = data.get("error") or message.partition(":")[0].strip()
    where = f" in {token_file}" if token_file else ""
    if error == "invalid_grant":
        advice = (f"Google no longer accepts the refresh token{where}: it was revoked, or it lapsed "
                  "(Google expires the tokens of OAuth apps left in 'Testing' 7 days after they are "
                  f"issued, and tokens unused for 6 months); run `{REAUTH_COMMAND}` to sign in again")
    elif error in ("invalid_client", "unauthorized_client", "deleted_client"):
        advice = ("Google no longer accepts the OAuth client this token was issued to (deleted, or "
                  "its secret was reset); download the client secrets again to [google] "
                  f"credentials_file and run `{REAUTH_COMMAND}`")
    else:
        return exc
    return google.auth.exceptions.RefreshError(f"{message} — {advice}", *exc.args[1:],
                                               retryable=exc.retryable)


def load_credentials(config: GoogleConfig) -> Any:
    """Credentials from ``token_file`` (authorized user JSON) or a service-account ``credentials_file``."""
    if config.token_file is not None and config.token_file.exists():
        try:
            creds = UserCredentials.from_authorized_user_file(str(config.token_file), SCOPES)
        except (ValueError, KeyError) as exc:
            raise ConfigError(f"google.token_file {config.token_file} is not a usable token: {exc}",
                              hint=f"run `{REAUTH_COMMAND}` to create it again") from None
        # google-auth pins Google's token endpoint when loading; use the configured one.  The
        # copy with_token_uri makes drops the access token's expiry: keep it, or a stale token
        # is sent (and refused) before it is refreshed.
        expiry = creds.expiry
        creds = creds.with_token_uri(config.token_uri)
        creds.expiry = expiry
        creds.token_file = Path(config.token_file)
        return creds
    if config.credentials_file is not None and config.credentials_file.exists():
        info = _read_json(config.credentials_file, "google.credentials_file")
        if info.get("type") == "service_account":
            return _service_account(config, info)
        raise ConfigError(f"google.token_file is missing ({config.token_file}); "
                          f"google.credentials_file holds OAuth client secrets, not a token",
                          hint=f"run `{REAUTH_COMMAND}` to authorise bsync")
    raise ConfigError("google: neither google.token_file nor google.credentials_file exists",
                      hint=f"set [google] token_file (from `{REAUTH_COMMAND}`) or a service-account credentials_file")


def _service_account(config: GoogleConfig, info: dict[str, Any]) -> Any:
    try:
        creds = service_account.Credentials.from_service_account_info(info, scopes=SCOPES)
    except (ValueError, KeyError) as exc:
        raise ConfigError(f"google.credentials_file {config.credentials_file} is not a usable "
                          f"service-account key: {exc}") from None
    if "token_uri" in config.model_fields_set:  # an explicit endpoint (a proxy, the sandbox) wins
        creds = creds.with_token_uri(config.token_uri)
    return creds


def save_credentials(config: GoogleConfig, creds: Any, *, obtained_at: datetime | None = None) -> None:
    """Persist user credentials to ``token_file``: mode 0600, written atomically.

    ``obtained_at`` is when the refresh token was issued; without it the value already in
    the file is kept (a refresh doesn't renew the refresh token), unless Google handed out
    a different refresh token, which is then dated now.
    """
    if config.token_file is None or not isinstance(creds, user_credentials.Credentials):
        return
    path = Path(config.token_file)
    data: dict[str, Any] = {"type": "authorized_user", **json.loads(creds.to_json())}
    if obtained_at is None:
        previous = _peek_json(path)
        if previous.get("refresh_token") == creds.refresh_token:
            if previous.get(OBTAINED_AT_KEY):
                data[OBTAINED_AT_KEY] = previous[OBTAINED_AT_KEY]
        elif previous:
            data[OBTAINED_AT_KEY] = _iso(datetime.now(UTC))
    else:
        data[OBTAINED_AT_KEY] = _iso(obtained_at)
    write_private_file(path, json.dumps(data, indent=2) + "\n")


def write_private_file(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` atomically; the file is 0600 from its first byte."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _read_json(path: Path, key: str) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{key} {path} can't be read: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise ConfigError(f"{key} {path} is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{key} {path} is not a JSON object")
    return data


def _peek_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _parse_instant(text: Any, *, naive_is_utc: bool = True) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC) if naive_is_utc else None
    return moment.astimezone(UTC)


# -- what doctor and status show ----------------------------------------------------------------

@dataclass(frozen=True)
class TokenInfo:
    """The Google credentials bsync would use, and anything about them worth a warning."""

    kind: TokenKind
    path: Path | None                      # token_file, or the service-account key
    mode: int | None = None                # permission bits of that file
    mode_ok: bool | None = None            # no access for group/others (None: not checked)
    obtained_at: datetime | None = None    # when the refresh token was issued (UTC)
    age: timedelta | None = None
    access_expiry: datetime | None = None  # expiry of the stored access token (UTC)
    has_refresh_token: bool = False
    scopes: tuple[str, ...] = ()
    client_id: str | None = None
    account: str | None = None             # the service account's e-mail
    error: str | None = None               # why kind is "missing" or "invalid"
    warnings: tuple[str, ...] = field(default_factory=tuple)

    @property
    def warning(self) -> str | None:
        """All warnings as one string, or None."""
        return " ".join(self.warnings) or None

    @property
    def lapses_at(self) -> datetime | None:
        """When the refresh token lapses if its OAuth app is in "Testing" status."""
        return self.obtained_at + TESTING_TOKEN_LIFETIME if self.obtained_at else None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (for ``--json``); secrets are never part of it."""
        return {
            "kind": self.kind,
            "path": str(self.path) if self.path else None,
            "mode": f"{self.mode:04o}" if self.mode is not None else None,
            "mode_ok": self.mode_ok,
            "obtained_at": _iso(self.obtained_at) if self.obtained_at else None,
            "age_seconds": int(self.age.total_seconds()) if self.age is not None else None,
            "access_expiry": _iso(self.access_expiry) if self.access_expiry else None,
            "has_refresh_token": self.has_refresh_token,
            "scopes": list(self.scopes),
            "client_id": self.client_id,
            "account": self.account,
            "error": self.error,
            "warnings": list(self.warnings),
        }

    def describe(self) -> str:
        """One line for doctor/status, e.g. ``OAuth token …/google-token.json, issued 2 days ago``."""
        if self.kind == "service_account":
            return f"service account {self.account} ({self.path})"
        if self.kind != "authorized_user":
            return f"{self.kind}: {self.error}"
        parts = [f"OAuth token {self.path}"]
        if self.obtained_at is not None and self.age is not None:
            parts.append(f"issued {self.obtained_at:%Y-%m-%d %H:%M} UTC ({format_age(self.age)} ago)")
        else:
            parts.append("issue date unknown")
        if not self.has_refresh_token:
            parts.append("no refresh token")
        return ", ".join(parts)


def format_age(age: timedelta) -> str:
    """``6d 12h``, ``3h 5m``, ``40s``: coarse and short."""
    seconds = max(0, int(age.total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m"
    return f"{seconds}s"


def _mode(path: Path) -> tuple[int | None, bool | None]:
    if os.name == "nt":  # POSIX permission bits mean nothing there
        return None, None
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return None, None
    return mode, not mode & 0o077


def _mode_warning(path: Path, mode: int | None, mode_ok: bool | None) -> list[str]:
    if mode_ok is False and mode is not None:
        return [f"{path} can be read by other users (mode {mode:04o}); run `chmod 600 {path}`."]
    return []


def token_info(config: GoogleConfig, now: datetime | None = None) -> TokenInfo:
    """Inspect the credentials :func:`load_credentials` would use; never calls Google."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    token_file = Path(config.token_file) if config.token_file is not None else None
    if token_file is not None and token_file.exists():
        return _user_token_info(token_file, now)
    creds_file = Path(config.credentials_file) if config.credentials_file is not None else None
    if creds_file is not None and creds_file.exists():
        data = _peek_json(creds_file)
        if data.get("type") == "service_account":
            mode, mode_ok = _mode(creds_file)
            missing = [k for k in ("client_email", "private_key", "token_uri") if not data.get(k)]
            return TokenInfo(kind="invalid" if missing else "service_account", path=creds_file,
                             mode=mode, mode_ok=mode_ok, account=data.get("client_email"),
                             client_id=data.get("client_id"), scopes=tuple(SCOPES),
                             error=f"service-account key lacks {', '.join(missing)}" if missing else None,
                             warnings=tuple(_mode_warning(creds_file, mode, mode_ok)))
        if not data:
            return TokenInfo(kind="invalid", path=creds_file,
                             error=f"google.credentials_file {creds_file} is not a JSON object")
    if token_file is None:
        error = "google.token_file is not set and there is no service-account credentials_file"
    else:
        error = f"no token at {token_file}; run `{REAUTH_COMMAND}`"
    return TokenInfo(kind="missing", path=token_file, error=error)


def _user_token_info(path: Path, now: datetime) -> TokenInfo:
    mode, mode_ok = _mode(path)
    warnings = _mode_warning(path, mode, mode_ok)
    data = _peek_json(path)
    missing = [k for k in ("refresh_token", "client_id", "client_secret") if k not in data]
    if not data or missing:
        what = "is not a JSON object" if not data else f"lacks {', '.join(missing)}"
        return TokenInfo(kind="invalid", path=path, mode=mode, mode_ok=mode_ok,
                         error=f"google.token_file {path} {what}; run `{REAUTH_COMMAND}`",
                         warnings=tuple(warnings))
    obtained_at = _parse_instant(data.get(OBTAINED_AT_KEY))
    age = now - obtained_at if obtained_at is not None else None
    has_refresh = bool(data.get("refresh_token"))
    if not has_refresh:
        warnings.append(f"{path} holds no refresh token, so it stops working when the access "
                        f"token expires; run `{REAUTH_COMMAND}`.")
    elif age is not None and WARN_AFTER <= age < TESTING_TOKEN_LIFETIME:
        assert obtained_at is not None
        lapse = obtained_at + TESTING_TOKEN_LIFETIME
        warnings.append(
            f"The Google token was issued {format_age(age)} ago; if your OAuth app is in Testing, "
            f"this token lapses 7 days after it was issued ({lapse:%Y-%m-%d %H:%M} UTC); "
            f"publish the app or re-run `{REAUTH_COMMAND}`.")
    scopes = data.get("scopes") or ()
    if isinstance(scopes, str):
        scopes = scopes.split()
    return TokenInfo(kind="authorized_user", path=path, mode=mode, mode_ok=mode_ok,
                     obtained_at=obtained_at, age=age,
                     access_expiry=_parse_instant(data.get("expiry")) if data.get("token") else None,
                     has_refresh_token=has_refresh, scopes=tuple(scopes),
                     client_id=data.get("client_id"), warnings=tuple(warnings))


class GoogleToken:
    """``[google]``'s saved sign-in as a :class:`~bsync.calendars.base.StoredCredentials`: the
    registry names :data:`GOOGLE_TOKEN`, so doctor and status ask it without knowing Google."""

    check_name = "google token"
    status_key = "google_token"
    age_help = f"Age of the Google refresh token (from `{REAUTH_COMMAND}`)."

    def judge(self, config: GoogleConfig, now: datetime) -> Verdict:
        """Fail without usable credentials or with an expired access token that can't be
        refreshed; warn before a testing app's token lapses or when others can read it."""
        info = token_info(config, now)
        if info.kind in ("missing", "invalid"):
            return Verdict("fail", info.error or info.kind,
                           f"run `{REAUTH_COMMAND}` (or set [google] credentials_file to a service-account key)")
        if info.kind == "authorized_user" and not info.has_refresh_token and (
                info.access_expiry is None or info.access_expiry <= now):
            return Verdict("fail", f"{info.describe()}; its access token has expired", f"run `{REAUTH_COMMAND}`")
        if info.warnings:
            return Verdict("warn", info.describe(), info.warning)
        return Verdict("ok", info.describe())

    def report(self, config: GoogleConfig, now: datetime) -> dict[str, Any]:
        return token_info(config, now).as_dict()


GOOGLE_TOKEN = GoogleToken()


# -- bsync auth google ----------------------------------------------------------------------------

def browser_available() -> bool:
    """Whether :mod:`webbrowser` can open a browser here (no: a server over SSH)."""
    try:
        webbrowser.get()
    except webbrowser.Error:
        return False
    return True


def redirect_port(auth_url: str) -> int | None:
    """The local port Google will redirect to, read from an authorization URL."""
    redirect = parse_qs(urlsplit(auth_url).query).get("redirect_uri", [""])[0]
    try:
        return urlsplit(redirect).port
    except ValueError:
        return None


def auth_url_instructions(auth_url: str, *, browser_opened: bool) -> str:
    """What to tell the user while :func:`authorize_installed_app` waits for the browser."""
    port = redirect_port(auth_url)
    if browser_opened:
        return ("Sign in to Google in the browser window that just opened. If none did, open this URL:\n\n"
                f"    {auth_url}\n")
    lines = ["Open this URL in a browser and allow access:", "", f"    {auth_url}", ""]
    if port is not None:
        lines += [f"bsync is waiting for Google to send the browser back to http://localhost:{port}/.",
                  "If that browser runs on another machine, forward the port from it first:", "",
                  f"    ssh -L {port}:localhost:{port} USER@THIS-HOST", ""]
    return "\n".join(lines)


def _is_loopback_url(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@contextlib.contextmanager
def _plain_http_allowed(urls: list[str]) -> Iterator[None]:
    """Let oauthlib talk plain http to loopback endpoints (the sandbox) for the flow's duration.

    oauthlib refuses non-https token endpoints unless ``OAUTHLIB_INSECURE_TRANSPORT`` is
    set; real Google endpoints are https, so the variable is only set for loopback ones.
    """
    plain = [u for u in urls if urlsplit(u).scheme == "http"]
    for url in plain:
        if not _is_loopback_url(url):
            raise ConfigError(f"{url}: OAuth endpoints must use https (plain http only on loopback)")
    if not plain or os.environ.get("OAUTHLIB_INSECURE_TRANSPORT"):
        yield
        return
    os.environ["OAUTHLIB_INSECURE_TRANSPORT"] = "1"
    try:
        yield
    finally:
        os.environ.pop("OAUTHLIB_INSECURE_TRANSPORT", None)


def _client_config(config: GoogleConfig) -> dict[str, Any]:
    """The installed-app client of ``credentials_file``, with bsync's endpoints filled in."""
    path = config.credentials_file
    if path is None:
        raise ConfigError("google.credentials_file is not set; `bsync auth google` needs the OAuth "
                          "client secrets of a 'Desktop app' client", hint=CLIENT_SECRETS_HINT)
    if not Path(path).exists():
        raise ConfigError(f"google.credentials_file {path} does not exist", hint=CLIENT_SECRETS_HINT)
    data = _read_json(Path(path), "google.credentials_file")
    if data.get("type") == "service_account":
        raise UsageError(
            f"google.credentials_file {path} is a service-account key ({data.get('client_email')}); "
            "service accounts need no `bsync auth google` step",
            hint=f"share the calendar with {data.get('client_email')} (or grant it domain-wide delegation "
                 "on Workspace) and run bsync directly; to sign in as a user instead, point "
                 "credentials_file at a 'Desktop app' OAuth client")
    if data.get("type") == "authorized_user":
        raise ConfigError(f"google.credentials_file {path} is a token, not OAuth client secrets",
                          hint=f"set it as [google] token_file instead, or {CLIENT_SECRETS_HINT}")
    if "installed" not in data:
        kind = "a 'Web application' OAuth client" if "web" in data else "not an OAuth client secrets file"
        raise ConfigError(f"google.credentials_file {path} is {kind}; the sign-in needs a 'Desktop app' client",
                          hint=CLIENT_SECRETS_HINT)
    client = dict(data["installed"])
    missing = [k for k in ("client_id", "client_secret") if not client.get(k)]
    if missing:
        raise ConfigError(f"google.credentials_file {path} lacks {', '.join(missing)}", hint=CLIENT_SECRETS_HINT)
    client["auth_uri"] = client.get("auth_uri") or GOOGLE_AUTH_URI
    client["token_uri"] = config.token_uri
    return {"installed": client}


def authorize_installed_app(config: GoogleConfig, *, open_browser: bool = True, host: str = "localhost",
                            port: int = 0, timeout_s: float | None = 300,
                            on_url: Callable[[str], None] | None = None) -> TokenInfo:
    """Sign in with Google (installed-app flow) and store a refreshable token in ``token_file``.

    Starts a one-shot server on ``host:port`` (0 = a free port) for Google's redirect, then
    opens the authorization URL in a browser (``open_browser``, when one is available) and
    hands the URL to ``on_url`` (default: instructions printed to stderr).  Waits at most
    ``timeout_s`` seconds (None: forever) for the redirect, exchanges the code (with PKCE)
    for tokens, and writes ``token_file`` (0600, atomically) including when it was issued.

    Raises ConfigError/UsageError (exit 2) for unusable settings, AuthError (exit 4) when
    the sign-in fails or is refused, RemoteUnavailableError (exit 5) when Google's token
    endpoint can't be reached.
    """
    from google_auth_oauthlib.flow import InstalledAppFlow, WSGITimeoutError
    from oauthlib.oauth2.rfc6749 import errors as oauth_errors
    from requests.exceptions import RequestException

    if config.token_file is None:
        raise ConfigError("google.token_file is not set; `bsync auth google` stores the token there",
                          hint='add token_file = "google-token.json" to [google] (relative to the config file)')
    if not 0 <= port <= 65535:
        raise UsageError(f"port {port} is not a TCP port")
    client_config = _client_config(config)
    client = client_config["installed"]
    browser = open_browser and browser_available()
    request_timeout = config.timeout_s

    class _Flow(InstalledAppFlow):
        def authorization_url(self, **kwargs: Any) -> tuple[str, str]:
            url, state = super().authorization_url(**kwargs)
            if on_url is not None:
                on_url(url)
            else:
                print(auth_url_instructions(url, browser_opened=browser), file=sys.stderr, flush=True)
            return url, state

        def fetch_token(self, **kwargs: Any) -> Any:
            kwargs.setdefault("timeout", request_timeout)
            return super().fetch_token(**kwargs)

    flow = _Flow.from_client_config(client_config, scopes=SCOPES)
    waited = f"{timeout_s:g} s" if timeout_s is not None else "ever"
    try:
        with _plain_http_allowed([client["auth_uri"], client["token_uri"]]):
            creds = flow.run_local_server(
                host=host, port=port, open_browser=browser, authorization_prompt_message="",
                success_message=SUCCESS_PAGE, timeout_seconds=timeout_s,
                access_type="offline", prompt="consent")
    except WSGITimeoutError:
        raise AuthError(f"no answer from the browser within {waited}; nothing was stored",
                        hint=f"run `{REAUTH_COMMAND}` again and finish signing in; with --no-browser, "
                             "forward the port before opening the URL") from None
    except oauth_errors.AccessDeniedError:
        raise AuthError("access was denied in the browser; nothing was stored",
                        hint=f"run `{REAUTH_COMMAND}` again and choose Allow") from None
    except oauth_errors.MismatchingStateError:
        raise AuthError("the browser came back with a different sign-in attempt (state mismatch)",
                        hint=f"run `{REAUTH_COMMAND}` again and use the newest URL") from None
    except oauth_errors.MissingCodeError:
        raise AuthError("the local server got a request without an authorization code",
                        hint=f"run `{REAUTH_COMMAND}` again and open only the URL it prints") from None
    except oauth_errors.InvalidClientError as exc:
        raise AuthError(f"Google rejected the OAuth client: {exc.error}: {exc.description}",
                        hint=f"credentials_file may be outdated (client deleted or secret reset); "
                             f"{CLIENT_SECRETS_HINT}") from None
    except oauth_errors.OAuth2Error as exc:
        raise AuthError(f"Google refused the sign-in: {exc.error}: {exc.description or ''}".rstrip(": "),
                        hint=f"run `{REAUTH_COMMAND}` again") from None
    except Warning as exc:  # oauthlib: the granted scopes differ from the requested ones
        raise AuthError(f"Google did not grant the calendar access bsync asked for ({exc})",
                        hint=f"run `{REAUTH_COMMAND}` again and allow access to Google Calendar") from None
    except RequestException as exc:
        raise RemoteUnavailableError(f"cannot reach Google's token endpoint {client['token_uri']}: {exc}",
                                     hint="check the network, then run the sign-in again") from None
    except OSError as exc:  # the local server could not listen
        raise UsageError(f"cannot listen on {host}:{port} for Google's redirect: {exc.strerror or exc}",
                         hint="pick another port (or 0 for any free one)") from None
    if not creds.refresh_token:
        raise AuthError("Google returned no refresh token, so bsync could not refresh access later; "
                        "nothing was stored",
                        hint="remove bsync's access at https://myaccount.google.com/connections, then run "
                             f"`{REAUTH_COMMAND}` again")
    granted = set(creds.granted_scopes or SCOPES)
    if not set(SCOPES) <= granted:
        raise AuthError(f"Google granted {sorted(granted)}, not the calendar access bsync needs",
                        hint=f"run `{REAUTH_COMMAND}` again and allow access to Google Calendar")
    now = datetime.now(UTC)
    save_credentials(config, creds, obtained_at=now)
    return token_info(config, now)
