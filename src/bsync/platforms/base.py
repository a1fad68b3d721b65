"""The contract every booking platform (Cal.com, Sesami, ...) fulfils, and nothing else.

A platform is where customers book: bsync receives its webhooks, may pull its changes, and
turns both into canonical :class:`~bsync.core.model.Booking` rows of the local ``bookings``
table (keyed ``<name>:<id>``), which the platform pair then puts into the ledger.  The
pipeline (``bsync serve``'s routes, the inbox, ``bsync sync pull``, ``doctor``,
availability) asks :data:`bsync.registry.PLATFORMS` for the platforms and speaks only this
protocol, so a new platform is its module, its sandbox, its tests and one registry entry:

* signed webhooks plus a changed-since API (Cal.com; Mindbody next): everything below;
* webhook-only (Sesami; Vagaro with its static token): ``pull`` returns None and
  ``check_name`` is None (bsync never calls it, so doctor has nothing to ask);
* poll-only (Phorest): ``unconfigured`` always gives a reason, so its route answers 404
  and ``verify``/``parse`` are never called.

What the receiver guarantees in return: ``verify`` sees the exact raw bytes, before any
parsing; the raw body of an accepted delivery is what the inbox stores, and ``apply`` gets
it re-parsed from there (so a crash between the 2xx and the work loses nothing, and a
parser fix applies to deliveries already stored); a delivery whose ``delivery_id`` was seen
before is acknowledged and not stored again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal, Protocol, runtime_checkable

from bsync.core.model import Status
from bsync.core.plan import Failure
from bsync.core.store import Store

Outcome = Literal["done", "ignored"]
"""What applying a delivery did: changed (or confirmed) a booking, or had nothing to act on."""

PULL_CURSOR_SCOPE = "updated"
"""Every pull cursor is stored as ``(platform name, "updated")``: the platform's own
changed-since mark, opaque to everyone else (``bsync status`` shows its age)."""


class Delivery(Protocol):
    """One parsed webhook delivery: a frozen value, platform-specific beyond these two."""

    @property
    def delivery_id(self) -> str:
        """The dedupe key: the same for every re-send of the same event (built from the
        sender's own event id or fields that never change on a retry), different for two
        events.  Never derived from the arrival time."""
        ...

    @property
    def actionable(self) -> bool:
        """False for documented kinds bsync has no use for: stored, acknowledged, ignored."""
        ...


@dataclass
class PullResult:
    """What one pull read: the records that failed, the ids read valid (a failure recorded on
    an earlier pull is settled when its id is read valid again), and the cursor to store for
    the next pull (taken before the first request, or the newest change seen, so nothing
    changed during the pull is skipped)."""

    cursor: str
    failures: list[Failure] = field(default_factory=list)
    read_ok: set[str] = field(default_factory=set)


@runtime_checkable
class Platform(Protocol):
    """A booking platform, built by the registry from the whole config: ``Cls(settings)``.

    Construction is cheap and never fails or talks to the network, whatever the config
    holds (the receiver builds every registered platform at start-up); what a method needs
    from the config it checks when called (``ConfigError`` naming the section).
    """

    name: str
    """Key prefix of its bookings (``calcom:<uid>``), its inbox provider name, its route
    ``/webhooks/<name>``, its cursor and record-issue scope.  Equal to its registry key."""

    label: str
    """What people call it in messages (``Cal.com``)."""

    section: str
    """The config table it is configured in (``calcom``; Sesami's secret is in ``server``)."""

    check_name: str | None
    """The ``bsync doctor`` line :meth:`check` fills (``cal.com``); None when bsync never
    calls the platform (webhook-only): no line at all."""

    statuses: Mapping[str, Status]
    """The platform's status vocabulary, as :func:`~bsync.platforms.intake.normalise`
    keys it, to canonical statuses.  Both its webhooks and its pull read through this one
    table, so a status word means the same whichever way a booking arrives."""

    requests: int
    """HTTP requests made so far (pulls, checks), for run summaries."""

    def unconfigured(self) -> str | None:
        """Why the config can't receive this platform's webhooks (``no [calcom] section``),
        or None.  The route answers 404 with it, before reading the body."""
        ...

    def verify(self, body: bytes, headers: Mapping[str, str]) -> None:
        """Authenticate the exact raw bytes, or raise ``SignatureError`` (401).

        ``headers`` is case-insensitive.  Compare secrets and signatures in constant time
        (``hmac.compare_digest``); with no secret configured refuse everything, never
        accept unsigned deliveries; refuse bodies over ``MAX_BODY`` (``TooLargeError``).
        Reasons never contain the secret or the signature.
        """
        ...

    def parse(self, body: bytes, now: datetime, *, replay_window: timedelta) -> Delivery:
        """The verified body as a delivery: pure (no I/O, no clock but ``now``), so the inbox
        can re-parse a stored body at any time and get the same delivery.

        Refuse a delivery whose own timestamp lies outside ``replay_window`` before
        ``now`` (or beyond a small clock skew after it) with ``ReplayError``; the inbox
        re-parses with an unbounded window (the check was made on arrival).  Errors are
        :class:`~bsync.platforms.intake.WebhookError` subclasses and nothing else, whatever
        the body holds: a receiver never answers 500.
        """
        ...

    def apply(self, store: Store, delivery: Delivery) -> Outcome:
        """Act on one delivery: save the booking it carries under the platform's key.
        Idempotent (applying twice changes nothing), and order-tolerant: a delivery older
        than what is stored never overwrites it (``Store.save_booking`` compares
        ``updated_at``; rules such as "a meeting that ended keeps its no-show" live here)."""
        ...

    def pull(self, store: Store, cursor: str | None) -> PullResult | None:
        """Save every booking changed since ``cursor`` (None: all of them) with
        ``store.save_booking``; None for a platform that can't be pulled (webhook-only).
        A record that can't be read is a failure in the result, never an exception; an
        unreachable or refusing API raises (``RemoteUnavailableError``, ``AuthError``)."""
        ...

    def link_properties(self) -> Mapping[str, str]:
        """``Booking.links`` keys this platform fills → the ledger property holding each
        (Cal.com's ``[calcom] link_metadata``); empty when it fills none."""
        ...

    def check(self) -> str:
        """``bsync doctor``'s check: one cheap authenticated request; the detail line when
        it worked, else the typed error (with a ``hint`` saying what to fix)."""
        ...

    def close(self) -> None:
        """Release the HTTP client, if one was opened."""
        ...
