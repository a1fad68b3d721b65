"""Notion's webhooks: the ledger's change notifications, checked and parsed.  Pure: no I/O.

Not a booking platform: a Notion event only says that a page changed (fetch the page for
its state), so the inbox marks it done and the next ledger <-> calendar run reads what
changed.  ``bsync serve`` receives it on ``/webhooks/notion``, beside the platform routes,
with the same errors and helpers (:mod:`bsync.platforms.intake`).  Wire facts:
developers.notion.com/reference/webhooks and /reference/webhooks-events-delivery.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from bsync.platforms import intake
from bsync.platforms.intake import MalformedError, SignatureError, UnsupportedError

NOTION_REDELIVERY_SPAN = timedelta(hours=24)
"""Notion retries a failed delivery up to 8 times, the last about 24 h after the event, and
an event's ``timestamp`` is when it *occurred*, not when it was sent.  A Notion
``replay_window`` shorter than this (plus a little) drops late retries."""


@dataclass(frozen=True, slots=True)
class NotionDelivery:
    """One Notion event.  Events are signals: fetch the page for its current state.
    ``page_id`` is the entity id when the entity is a page (else None)."""

    delivery_id: str
    type: str
    timestamp: datetime
    entity_id: str
    entity_type: str
    page_id: str | None
    parent_id: str | None
    parent_type: str | None
    deleted: bool
    attempt_number: int | None
    workspace_id: str | None
    subscription_id: str | None
    integration_id: str | None
    updated_properties: tuple[str, ...] = ()
    actionable: bool = True


NOTION_SIGNATURE_HEADER = "X-Notion-Signature"

NOTION_EVENT_TYPES = frozenset({
    "page.content_updated", "page.created", "page.deleted", "page.locked", "page.moved",
    "page.properties_updated", "page.undeleted", "page.unlocked",
    "database.content_updated", "database.created", "database.deleted", "database.moved",
    "database.schema_updated", "database.undeleted",
    "data_source.content_updated", "data_source.created", "data_source.deleted", "data_source.moved",
    "data_source.schema_updated", "data_source.undeleted",
    "comment.created", "comment.deleted", "comment.updated",
})
"""Event types Notion documents.  Unknown ones raise UnsupportedError."""

NOTION_PAGE_EVENTS = frozenset({"page.created", "page.properties_updated", "page.content_updated",
                                "page.moved", "page.deleted", "page.undeleted"})
"""Events that can change a booking row: re-fetch the page (or mark it gone)."""

_TOKEN = re.compile(r"[A-Za-z0-9_\-.~+/=]{1,512}")


def notion_verification_token(body: bytes) -> str | None:
    """The ``verification_token`` of Notion's one-time subscription handshake, else None.

    Notion POSTs ``{"verification_token": "secret_…"}`` once when the subscription is
    created (again on "Resend token"); the operator pastes it into Notion's Verify form, and
    it then keys every event's signature.  The handshake is unsigned, so anyone can send
    one: the receiver must show/store it only while no token is stored (or on an explicit
    operator action), never replace a stored token automatically.  The token is checked to
    be plain printable characters so displaying it is safe.
    """
    intake.check_size(body)
    try:
        data = json.loads(bytes(body).decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    if not isinstance(data, dict) or "verification_token" not in data or "type" in data:
        return None
    token = data["verification_token"]
    if not isinstance(token, str) or not _TOKEN.fullmatch(token):
        raise MalformedError("verification_token must be 1-512 printable token characters")
    return token


def verify_notion(body: bytes, header: str | None, token: str | None) -> None:
    """Check ``X-Notion-Signature: sha256=<hex HMAC-SHA256 of the raw body keyed with the
    verification token>``.  No stored token → SignatureError (finish the handshake first)."""
    intake.check_size(body)
    if not token:
        raise SignatureError("no Notion verification token is stored; complete the subscription handshake",
                             hint="Notion sends the token once; paste it into bsync's config")
    if header is None or not header.strip():
        raise SignatureError(f"missing {NOTION_SIGNATURE_HEADER} header")
    scheme, sep, digest = header.strip().partition("=")
    if not sep or scheme.lower() != "sha256":
        raise SignatureError(f"{NOTION_SIGNATURE_HEADER} must look like 'sha256=<hex>'")
    intake.compare_hex(body, digest, token, NOTION_SIGNATURE_HEADER)


def parse_notion(body: bytes, now: datetime, *, replay_window: timedelta,
                 max_skew: timedelta = intake.DEFAULT_MAX_SKEW) -> NotionDelivery:
    """Parse a (verified) Notion event.  ``timestamp`` is when the event happened; Notion
    retries for ~24 h (see NOTION_REDELIVERY_SPAN), and the same event keeps its ``id``
    across retries (``attempt_number`` 1-8), so dedupe on ``delivery_id``."""
    data = intake.load_object(body, "Notion")
    if "verification_token" in data and "type" not in data:
        raise MalformedError("this is Notion's one-time verification request, not an event; "
                             "handle it with notion_verification_token()")
    event_id = intake.text(data, "id", "body", required=True)
    event_type = intake.text(data, "type", "body", required=True)
    assert event_id is not None and event_type is not None
    if event_type not in NOTION_EVENT_TYPES:
        raise UnsupportedError(f"unknown Notion event type {intake.show(event_type)}")
    timestamp = intake.instant(data.get("timestamp"), "timestamp")
    intake.check_fresh(timestamp, now, replay_window, max_skew, "timestamp")

    entity = intake.obj(data, "entity", "body")
    entity_id = intake.text(entity, "id", "entity", required=True)
    entity_type = intake.text(entity, "type", "entity", required=True)
    assert entity_id is not None and entity_type is not None
    event_data = intake.obj(data, "data", "body", required=False)
    parent = intake.obj(event_data, "parent", "data", required=False)

    attempt = data.get("attempt_number")
    if attempt is not None and (isinstance(attempt, bool) or not isinstance(attempt, int) or attempt < 1):
        raise MalformedError(f"attempt_number must be a positive integer, got {intake.show(attempt)}")
    props = event_data.get("updated_properties") or []
    if not isinstance(props, list) or not all(isinstance(p, str) for p in props):
        raise MalformedError("data.updated_properties must be a list of property ids")

    is_page = entity_type == "page"
    return NotionDelivery(
        delivery_id=event_id, type=event_type, timestamp=timestamp, entity_id=entity_id,
        entity_type=entity_type, page_id=entity_id if is_page else None,
        parent_id=intake.text(parent, "id", "data.parent"), parent_type=intake.text(parent, "type", "data.parent"),
        deleted=event_type == "page.deleted", attempt_number=attempt,
        workspace_id=intake.text(data, "workspace_id", "body"), subscription_id=intake.text(data, "subscription_id", "body"),
        integration_id=intake.text(data, "integration_id", "body"), updated_properties=tuple(props),
        actionable=is_page and event_type in NOTION_PAGE_EVENTS)
