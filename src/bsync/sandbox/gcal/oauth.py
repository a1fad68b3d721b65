"""Google's OAuth 2.0 server, and the bearer-token check every API call passes.

Google's authorization server lives on accounts.google.com and oauth2.googleapis.com; the
sandbox serves both on its own port, so one URL is all a config needs.  It knows one
registered "Desktop app" client (:attr:`OAuthServer.client_id`, :attr:`OAuthServer.client_secret`):

* the authorization endpoint (``GET /o/oauth2/auth``), where a user consents at once
  (``user_consents = False`` makes them deny) and is redirected to the loopback
  ``redirect_uri`` with a code; PKCE S256/plain;
* the token endpoint (``POST /token``) with the ``authorization_code``, ``refresh_token`` and
  service-account JWT-bearer grants, answering errors as Google does;
* Google's real 401 body and ``WWW-Authenticate`` header for a missing or bad bearer token;
* in-process helpers tests use to write client-secrets and service-account key files,
  expire access tokens and revoke refresh tokens.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import os
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote_plus, urlencode, urlsplit

from bsync.sandbox.base import JSON, Request, Response, route
from bsync.sandbox.gcal.api import GoogleApi

DEFAULT_SCOPE = "https://www.googleapis.com/auth/calendar"
STATIC_TOKEN = "sandbox-token"
DEFAULT_REFRESH_TOKEN = "sandbox-refresh-token"
ACCESS_TOKEN_LIFETIME = 3599  # seconds, as Google's token endpoint answers

# The registered OAuth client ("Desktop app"); sandbox/seed.py's token file uses the same one.
DEFAULT_CLIENT_ID = "sandbox-client.apps.googleusercontent.com"
DEFAULT_CLIENT_SECRET = "sandbox-client-secret"
DEFAULT_SERVICE_ACCOUNT = "bsync-sync@bsync-sandbox.iam.gserviceaccount.com"
AUTH_CODE_LIFETIME = 600      # seconds an authorization code stays redeemable
JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
# Audiences Google accepts in a service-account JWT (google-auth always sends the first).
GOOGLE_TOKEN_AUDIENCES = ("https://oauth2.googleapis.com/token", "https://www.googleapis.com/oauth2/v4/token",
                          "https://accounts.google.com/o/oauth2/token")
JWT_SKEW = 300                # seconds of clock skew tolerated on a service-account JWT
ONLINE_GRANT = "online:"      # grant of an access token issued without a refresh token
SERVICE_ACCOUNT_GRANT = "sa:"  # grant prefix of a service account's access tokens
# Scopes the authorization endpoint knows (Google's are URLs under /auth/, plus OpenID's).
_OPENID_SCOPES = {"openid", "email", "profile"}
_PKCE_RE = re.compile(r"^[A-Za-z0-9._~-]{43,128}$")
OOB_REDIRECT_URIS = {"urn:ietf:wg:oauth:2.0:oob", "urn:ietf:wg:oauth:2.0:oob:auto", "oob"}
MSG_OOB_BLOCKED = (
    "The out-of-band (OOB) flow has been blocked in order to keep users secure. Follow the "
    "Out-of-Band (OOB) flow migration guide linked in the developer docs below to migrate "
    "your app to an alternative method.")
MSG_JWT_TIMEFRAME = (
    "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. "
    "Check your iat and exp values in the JWT claim.")
MSG_NO_DELEGATION = (
    "Client is unauthorized to retrieve access tokens using this method, or client not "
    "authorized for any of the scopes requested.")

# 401 texts as Google's front end sends them (errors guide + observed bodies).
MSG_INVALID_CREDENTIALS = (
    "Request had invalid authentication credentials. Expected OAuth 2 access token, login "
    "cookie or other valid authentication credential. See "
    "https://developers.google.com/identity/sign-in/web/devconsole-project."
)
MSG_MISSING_CREDENTIALS = (
    "Request is missing required authentication credential. Expected OAuth 2 access token, "
    "login cookie or other valid authentication credential. See "
    "https://developers.google.com/identity/sign-in/web/devconsole-project."
)
WWW_AUTH_REALM = 'Bearer realm="https://accounts.google.com/"'
# Paths that take no bearer token: OAuth's own endpoints.
_UNAUTHENTICATED_PATHS = ("/token", "/o/oauth2/auth", "/o/oauth2/v2/auth")


def _token_error(error: str, description: str, status: int = 400) -> Response:
    """The token endpoint's error body (RFC 6749 §5.2), as oauth2.googleapis.com sends it."""
    return Response(status, {"error": error, "error_description": description})


def _token_response(body: JSON) -> Response:
    return Response(200, body, {"Cache-Control": "no-cache, no-store, max-age=0, must-revalidate",
                                "Pragma": "no-cache"})


def _is_loopback_redirect(uri: str) -> bool:
    """Whether ``uri`` is a loopback redirect a desktop client may use (any port and path)."""
    try:
        parts = urlsplit(uri)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return False
    return (parts.scheme == "http" and parts.hostname in ("127.0.0.1", "::1", "localhost")
            and not parts.fragment)


def _known_scope(scope: str) -> bool:
    return scope in _OPENID_SCOPES or (scope.startswith("https://www.googleapis.com/auth/")
                                       and len(scope) > len("https://www.googleapis.com/auth/"))


def _pkce_challenge(verifier: str, method: str) -> str:
    """RFC 7636 §4.2: S256 is BASE64URL(SHA256(verifier)) without padding; plain is the verifier."""
    if method == "plain":
        return verifier
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).decode().rstrip("=")


def _unb64url(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError) as exc:
        raise ValueError(str(exc)) from None


def _rs256_valid(public_key: Any, signing_input: str, signature: bytes) -> bool:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    try:
        public_key.verify(signature, signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def _write_json(path: Path, data: JSON) -> Path:
    """Write a credentials file with mode 0600."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle, indent=2)
    os.chmod(path, 0o600)
    return path


@dataclass
class _AuthCode:
    """An authorization code and the request it answers."""

    client_id: str
    redirect_uri: str
    scope: str
    challenge: str | None
    method: str | None
    offline: bool        # a refresh token comes with it
    expires: datetime
    used: bool = False


@dataclass
class _ServiceAccount:
    email: str
    public_key: Any      # cryptography RSAPublicKey
    delegation: bool     # domain-wide delegation granted (JWTs may carry ``sub``)


class OAuthServer(GoogleApi):
    """The authorization and token endpoints, and the access tokens they issue."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        #: The one registered OAuth client ("Desktop app" type).
        self.client_id = DEFAULT_CLIENT_ID
        self.client_secret = DEFAULT_CLIENT_SECRET
        super().__init__(host, port)

    def reset_state(self) -> None:
        super().reset_state()
        with self.lock:
            self.refresh_tokens: set[str] = {DEFAULT_REFRESH_TOKEN}
            # access token -> (expiry, grant: the refresh token it came from, ONLINE_GRANT,
            # or SERVICE_ACCOUNT_GRANT + email)
            self.access_tokens: dict[str, tuple[datetime, str]] = {}
            self._auth_codes: dict[str, _AuthCode] = {}
            self._refresh_grants: dict[str, _AuthCode] = {}  # refresh token -> its grant
            self._consented: set[str] = set()                # clients the user has approved
            self._service_accounts: dict[str, _ServiceAccount] = {}
            #: False: the user clicks "Cancel" (the redirect carries error=access_denied).
            self.user_consents = True
            #: False: no refresh token is ever issued (as Google does when re-authorising
            #: without prompt=consent).
            self.issue_refresh_tokens = True

    # -- bearer tokens on API calls ----------------------------------------------------------
    def check_auth(self, request: Request) -> Response | None:
        """Google's 401 for a call without a live bearer token (OAuth's own endpoints need none)."""
        if request.path in _UNAUTHENTICATED_PATHS:
            return None
        header = request.headers.get("authorization", "").strip()
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            body = {"error": {
                "code": 401, "message": MSG_MISSING_CREDENTIALS,
                "errors": [{"message": "Login Required.", "domain": "global", "reason": "required",
                            "location": "Authorization", "locationType": "header"}],
                "status": "UNAUTHENTICATED"}}
            return Response(401, body, {"WWW-Authenticate": WWW_AUTH_REALM})
        with self.lock:
            if self._token_valid(token):
                return None
        body = {"error": {
            "code": 401, "message": MSG_INVALID_CREDENTIALS,
            "errors": [{"message": "Invalid Credentials", "domain": "global", "reason": "authError",
                        "location": "Authorization", "locationType": "header"}],
            "status": "UNAUTHENTICATED"}}
        return Response(401, body, {"WWW-Authenticate": WWW_AUTH_REALM + ', error="invalid_token"'})

    def _token_valid(self, token: str) -> bool:
        if token == STATIC_TOKEN:
            return True
        entry = self.access_tokens.get(token)
        if entry is None:
            return False
        expiry, grant = entry
        if grant.startswith(SERVICE_ACCOUNT_GRANT):
            live = grant[len(SERVICE_ACCOUNT_GRANT):] in self._service_accounts
        else:
            live = grant == ONLINE_GRANT or grant in self.refresh_tokens
        return live and self.now() < expiry

    def revoke_refresh_token(self, token: str) -> None:
        """Revoke a refresh token and every access token issued from it."""
        with self.lock:
            self.refresh_tokens.discard(token)
            for access, (_, refresh) in list(self.access_tokens.items()):
                if refresh == token:
                    del self.access_tokens[access]

    # -- authorization endpoint ------------------------------------------------------------------
    def _auth_page(self, status: int, error: str, message: str) -> Response:
        """The error page Google's authorization endpoint shows instead of redirecting.

        Google answers a bad client or redirect URI with a page ("Error 400:
        redirect_uri_mismatch"), never with a redirect, since the redirect target is untrusted.
        """
        body = (f"<!doctype html><title>Error {status}: {error}</title>"
                f"<h1>Error {status}: {error}</h1><p>{html.escape(message)}</p>")
        return Response(status, body, content_type="text/html; charset=utf-8")

    @route("GET", "/o/oauth2/auth")
    def oauth_authorize(self, request: Request) -> Response:
        return self._authorize(request)

    @route("GET", "/o/oauth2/v2/auth")
    def oauth_authorize_v2(self, request: Request) -> Response:
        return self._authorize(request)

    def _authorize(self, request: Request) -> Response:
        client_id = request.arg("client_id")
        if not client_id:
            return self._auth_page(400, "invalid_request", "Missing required parameter: client_id")
        if client_id != self.client_id:
            return self._auth_page(401, "invalid_client", "The OAuth client was not found.")
        redirect_uri = request.arg("redirect_uri")
        if not redirect_uri:
            return self._auth_page(400, "invalid_request", "Missing required parameter: redirect_uri")
        if redirect_uri in OOB_REDIRECT_URIS:
            return self._auth_page(400, "invalid_request", MSG_OOB_BLOCKED)
        if not _is_loopback_redirect(redirect_uri):
            return self._auth_page(400, "redirect_uri_mismatch", (
                f"The redirect URI in the request, {redirect_uri}, does not match the ones "
                "authorized for the OAuth client. A desktop client may only redirect to a "
                "loopback address: http://127.0.0.1:PORT, http://[::1]:PORT or "
                "http://localhost:PORT."))
        state = request.arg("state")

        def back(**params: str) -> Response:
            """Send the browser to the redirect URI (RFC 6749 §4.1.2), state first as Google does."""
            query = urlencode(({"state": state} if state is not None else {}) | params)
            location = redirect_uri + ("&" if "?" in redirect_uri else "?") + query
            return Response(302, b"", {"Location": location}, content_type="text/html; charset=utf-8")

        def refuse(error: str, description: str | None = None) -> Response:
            return back(error=error, **({"error_description": description} if description else {}))

        response_type = request.arg("response_type")
        if not response_type:
            return refuse("invalid_request", "Missing required parameter: response_type")
        if response_type != "code":
            return refuse("unsupported_response_type", f"Invalid response_type: {response_type}")
        scopes = (request.arg("scope") or "").split()
        if not scopes:
            return refuse("invalid_request", "Missing required parameter: scope")
        unknown = [s for s in scopes if not _known_scope(s)]
        if unknown:
            return refuse("invalid_scope", f"Some requested scopes were invalid. {{invalid={unknown}}}")
        access_type = request.arg("access_type") or "online"
        if access_type not in ("online", "offline"):
            return refuse("invalid_request", f"Invalid access_type: {access_type}")
        prompt = set((request.arg("prompt") or "").split())
        if not prompt <= {"none", "consent", "select_account"} or ("none" in prompt and len(prompt) > 1):
            return refuse("invalid_request", f"Invalid prompt: {request.arg('prompt')}")
        challenge = request.arg("code_challenge")
        method = request.arg("code_challenge_method")
        if method is not None and not challenge:
            return refuse("invalid_request", "Missing code_challenge.")
        if challenge is not None:
            method = method or "plain"
            if method not in ("S256", "plain"):
                return refuse("invalid_request", f"Invalid code_challenge_method: {method}")
            if not _PKCE_RE.match(challenge):
                return refuse("invalid_request", "Invalid code_challenge.")
        if not self.user_consents:
            return refuse("access_denied")
        granted_before = client_id in self._consented
        if "none" in prompt and not granted_before:
            return refuse("consent_required")
        self._consented.add(client_id)
        # Google hands out a refresh token for offline access on the first consent, and again
        # only when the consent screen is shown (prompt=consent).
        offline = (access_type == "offline" and self.issue_refresh_tokens
                   and ("consent" in prompt or not granted_before))
        code = "4/0A" + secrets.token_urlsafe(60)
        scope = " ".join(dict.fromkeys(scopes))
        self._auth_codes[code] = _AuthCode(
            client_id=client_id, redirect_uri=redirect_uri, scope=scope, challenge=challenge,
            method=method, offline=offline, expires=self.now() + timedelta(seconds=AUTH_CODE_LIFETIME))
        return back(code=code, scope=scope)

    # -- token endpoint --------------------------------------------------------------------------
    def _client_credentials(self, request: Request, form: dict[str, str]) -> tuple[str | None, str | None]:
        """client_id and client_secret from HTTP Basic (client_secret_basic) or the form body."""
        header = request.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "basic" and value.strip():
            try:
                decoded = base64.b64decode(value.strip()).decode("utf-8")
            except (ValueError, UnicodeDecodeError):
                return None, None
            user, _, password = decoded.partition(":")
            return unquote_plus(user), unquote_plus(password)
        return form.get("client_id"), form.get("client_secret")

    def _client_error(self, client_id: str, secret: str | None) -> Response | None:
        if client_id != self.client_id:
            return _token_error("invalid_client", "The OAuth client was not found.", 401)
        if secret != self.client_secret:
            return _token_error("invalid_client", "Unauthorized", 401)
        return None

    def _issue_access_token(self, grant: str) -> str:
        access = "ya29.sandbox-" + secrets.token_urlsafe(24)
        self.access_tokens[access] = (self.now() + timedelta(seconds=ACCESS_TOKEN_LIFETIME), grant)
        return access

    @route("POST", "/token")
    def oauth_token(self, request: Request) -> Response:
        form = {k: v[0] for k, v in parse_qs(request.body.decode("utf-8", "replace"),
                                              keep_blank_values=True).items()}
        grant = form.get("grant_type")
        if grant == "refresh_token":
            return self._refresh_grant(request, form)
        if grant == "authorization_code":
            return self._code_grant(request, form)
        if grant == JWT_BEARER_GRANT:
            return self._jwt_grant(form)
        return _token_error("unsupported_grant_type", f"Invalid grant_type: {grant or ''}")

    def _refresh_grant(self, request: Request, form: dict[str, str]) -> Response:
        client_id, secret = self._client_credentials(request, form)
        if not client_id:
            return _token_error("invalid_request", "Could not determine client ID from request.")
        refresh = form.get("refresh_token")
        if not refresh:
            return _token_error("invalid_request", "Missing required parameter: refresh_token")
        # Refresh tokens from the authorization endpoint are bound to the sandbox's client;
        # the seeded DEFAULT_REFRESH_TOKEN predates it and takes any client credentials.
        bound = self._refresh_grants.get(refresh)
        if bound is not None:
            failed = self._client_error(client_id, secret)
            if failed is not None:
                return failed
        if refresh not in self.refresh_tokens:
            return _token_error("invalid_grant", "Token has been expired or revoked.")
        access = self._issue_access_token(refresh)
        scope = bound.scope if bound is not None else form.get("scope") or DEFAULT_SCOPE
        return _token_response({"access_token": access, "expires_in": ACCESS_TOKEN_LIFETIME,
                                "scope": scope, "token_type": "Bearer"})

    def _code_grant(self, request: Request, form: dict[str, str]) -> Response:
        client_id, secret = self._client_credentials(request, form)
        if not client_id:
            return _token_error("invalid_request", "Could not determine client ID from request.")
        failed = self._client_error(client_id, secret)
        if failed is not None:
            return failed
        code = form.get("code")
        if not code:
            return _token_error("invalid_request", "Missing required parameter: code")
        entry = self._auth_codes.get(code)
        if entry is None or entry.used or entry.client_id != client_id or self.now() >= entry.expires:
            return _token_error("invalid_grant", "Bad Request")
        entry.used = True  # single use, even when the exchange below fails
        redirect_uri = form.get("redirect_uri")
        if not redirect_uri:
            return _token_error("invalid_request", "Missing parameter: redirect_uri")
        if redirect_uri != entry.redirect_uri:
            return _token_error("redirect_uri_mismatch", "Bad Request")
        verifier = form.get("code_verifier")
        if entry.challenge is None:
            if verifier:
                return _token_error("invalid_grant", "code_verifier or verifier is not needed.")
        elif not verifier:
            return _token_error("invalid_grant", "Missing code verifier.")
        elif _pkce_challenge(verifier, entry.method or "plain") != entry.challenge:
            return _token_error("invalid_grant", "Invalid code verifier.")
        body: JSON = {}
        if entry.offline:
            refresh = "1//0" + secrets.token_urlsafe(72)
            self.refresh_tokens.add(refresh)
            self._refresh_grants[refresh] = entry
            body["access_token"] = self._issue_access_token(refresh)
        else:  # an online grant: the access token lives until it expires
            body["access_token"] = self._issue_access_token(ONLINE_GRANT)
        body["expires_in"] = ACCESS_TOKEN_LIFETIME
        if entry.offline:
            body["refresh_token"] = refresh
        body["scope"] = entry.scope
        body["token_type"] = "Bearer"
        return _token_response(body)

    def _jwt_grant(self, form: dict[str, str]) -> Response:
        """The service-account grant (RFC 7523): an RS256 JWT signed with the account's key."""
        assertion = form.get("assertion")
        if not assertion:
            return _token_error("invalid_request", "Missing required parameter: assertion")
        try:
            head_b64, claims_b64, sig_b64 = assertion.split(".")
            header = json.loads(_unb64url(head_b64))
            claims = json.loads(_unb64url(claims_b64))
            signature = _unb64url(sig_b64)
        except ValueError:
            return _token_error("invalid_grant", "Invalid JWT Signature.")
        if not isinstance(header, dict) or not isinstance(claims, dict) or header.get("alg") != "RS256":
            return _token_error("invalid_grant", "Invalid JWT Signature.")
        account = self._service_accounts.get(str(claims.get("iss")))
        if account is None or not _rs256_valid(account.public_key, f"{head_b64}.{claims_b64}", signature):
            return _token_error("invalid_grant", "Invalid JWT Signature.")
        now = self.now().timestamp()
        iat, exp = claims.get("iat"), claims.get("exp")
        if (not isinstance(iat, (int, float)) or not isinstance(exp, (int, float))
                or iat > now + JWT_SKEW or exp < now - JWT_SKEW or exp - iat > 3600):
            return _token_error("invalid_grant", MSG_JWT_TIMEFRAME)
        if claims.get("aud") not in (*GOOGLE_TOKEN_AUDIENCES, self.url + "/token"):
            return _token_error("invalid_grant", "Invalid JWT: Failed audience check.")
        if not claims.get("scope"):
            return _token_error("invalid_scope", "Invalid OAuth scope or ID token audience provided.")
        if claims.get("sub") and not account.delegation:
            return _token_error("unauthorized_client", MSG_NO_DELEGATION, 401)
        access = self._issue_access_token(SERVICE_ACCOUNT_GRANT + account.email)
        return _token_response({"access_token": access, "expires_in": ACCESS_TOKEN_LIFETIME,
                                "token_type": "Bearer"})

    # -- in-process OAuth helpers ---------------------------------------------------------------
    def expire_access_tokens(self) -> None:
        """Make every access token issued so far expired (the next use answers 401)."""
        with self.lock:
            past = self.now() - timedelta(seconds=1)
            for access, (_, grant) in list(self.access_tokens.items()):
                self.access_tokens[access] = (past, grant)

    def client_secrets(self) -> JSON:
        """An "installed" (Desktop app) OAuth client, as Google Cloud Console downloads it."""
        return {"installed": {
            "client_id": self.client_id,
            "project_id": "bsync-sandbox",
            "auth_uri": self.url + "/o/oauth2/auth",
            "token_uri": self.url + "/token",
            "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
            "client_secret": self.client_secret,
            "redirect_uris": ["http://localhost"],
        }}

    def write_client_secrets(self, path: str | os.PathLike[str]) -> Path:
        """Write :meth:`client_secrets` to ``path`` (what ``[google] credentials_file`` names)."""
        return _write_json(Path(path), self.client_secrets())

    def add_service_account(self, email: str, public_key_pem: bytes, *, delegation: bool = False) -> None:
        """Accept JWTs from ``email`` signed with the key of ``public_key_pem``.

        ``delegation`` allows domain-wide delegation (a ``sub`` claim), as a Workspace
        admin grants it.
        """
        from cryptography.hazmat.primitives.serialization import load_pem_public_key

        with self.lock:
            self._service_accounts[email] = _ServiceAccount(email, load_pem_public_key(public_key_pem), delegation)

    def remove_service_account(self, email: str) -> None:
        """Delete the account's key: its JWTs and access tokens stop working."""
        with self.lock:
            self._service_accounts.pop(email, None)

    def write_service_account_key(self, path: str | os.PathLike[str],
                                  email: str = DEFAULT_SERVICE_ACCOUNT, *, delegation: bool = False) -> Path:
        """Create a service account with a fresh RSA key and write its JSON key file (0600)."""
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        private_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption()).decode()
        public_pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo)
        self.add_service_account(email, public_pem, delegation=delegation)
        return _write_json(Path(path), {
            "type": "service_account",
            "project_id": "bsync-sandbox",
            "private_key_id": secrets.token_hex(20),
            "private_key": private_pem,
            "client_email": email,
            "client_id": str(secrets.randbelow(10**21)),
            "auth_uri": self.url + "/o/oauth2/auth",
            "token_uri": self.url + "/token",
            "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
            "client_x509_cert_url": "https://www.googleapis.com/robot/v1/metadata/x509/" + quote(email),
            "universe_domain": "googleapis.com",
        })

