"""``bsync resolve``: find the conflict the user means and record which side wins.

People copy what they have at hand: the key from ``bsync status`` (``notion:<page id>``),
the bare page id (with or without dashes, as Notion's "Copy link" and API differ), or the
page's URL.  All name the same booking; a unique prefix of eight or more characters does
too.  Anything else fails with the list of open conflicts to pick from.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

from bsync import registry
from bsync.config import Settings
from bsync.core.store import RunLock, Store
from bsync.errors import UsageError

MIN_PREFIX = 8
_HEX32 = re.compile(r"[0-9a-f]{32}")


def resolve_conflict(settings: Settings, given: str, take: str) -> str:
    """Mark the conflict ``given`` names as settled by ``take``'s values; return its key.

    Conflicts of every calendar's pair are searched; ``take`` names the ledger or that
    pair's calendar.  The next sync applies it.  A conflict already settled may be settled
    again (the other way) until then.
    """
    check_side(take)
    with RunLock(settings.state_path), Store.open(settings.state_path) as store:
        calendars = {registry.link_pair(name): name for name in registry.CALENDARS}
        open_keys = [link.source_key for pair in calendars for link in store.conflicts(pair)]
        keys = {key: pair for pair in calendars for key in store.conflict_keys(pair)}
        key = match_key(given, sorted(keys), open_keys)
        pair = keys[key]
        check_side(take, calendars[pair])
        link = store.links_get(pair, key)
        assert link is not None and link.conflict is not None  # conflict_keys lists only those
        store.set_conflict(pair, key, {**link.conflict, "take": take})
    return key


def sides(calendar: str | None = None) -> tuple[str, ...]:
    """What ``--take`` may name: the ledger, and the calendar (any registered one if not known)."""
    return (registry.LEDGER.name, *([calendar] if calendar else registry.CALENDARS))


def check_side(take: str, calendar: str | None = None) -> None:
    """``--take`` names a side of the pair, or the command stops before touching anything."""
    allowed = sides(calendar)
    if take not in allowed:
        choices = " or ".join(f"'{side}'" for side in allowed)
        raise UsageError(f"--take {take!r}: must be {choices}" if len(allowed) == 2
                         else f"--take {take!r}: must be one of {choices}")


def match_key(given: str, keys: list[str], open_keys: list[str]) -> str:
    """The one key in ``keys`` that ``given`` names (full key, page id, URL or a prefix).

    ``open_keys`` (the unsettled ones) are listed in the error when nothing or several match.
    """
    text = given.strip()
    if text in keys:
        return text
    wanted = page_id_of(text)
    matches = [key for key in keys if _bare(key) == wanted]
    if not matches and len(wanted) >= MIN_PREFIX:
        matches = [key for key in keys if _bare(key).startswith(wanted)]
    if len(matches) == 1:
        return matches[0]
    listing = ", ".join(open_keys) if open_keys else "none"
    what = "matches several conflicts" if matches else "is not an open conflict"
    raise UsageError(f"{given!r} {what}; open conflicts: {listing}",
                     hint="give one of those keys, its Notion page id or the page's URL "
                          "(`bsync status` lists them)")


def page_id_of(text: str) -> str:
    """The Notion page id in a key, id or URL, lower-case without dashes (else the text,
    normalised the same way, for prefix matching)."""
    text = text.strip()
    if "://" in text:
        parts = urlsplit(text)
        peeked = parse_qs(parts.query).get("p")  # a page opened over its database: ?v=<view>&p=<page>
        candidates = _HEX32.findall((peeked[0] if peeked else parts.path).replace("-", "").lower())
        if candidates:
            return candidates[-1]  # the id ends the slug: /Workspace/Rex-Grooming-<id>
    return _bare(text)


def _bare(key: str) -> str:
    """``notion:1A2B-…`` → ``1a2b…``: the id part without its system prefix and dashes."""
    return key.split(":", 1)[-1].replace("-", "").lower()
