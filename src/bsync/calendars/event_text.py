"""What every calendar backend writes and compares alike, whatever its API: the text of a
booking's event and the hash of an event's comparable projection.

Google and CalDAV events show a booking the same way, so a business moving from one to the
other (or keeping both) sees the same description, and each backend's ``fields_hash`` means
the same thing: equal hashes, nothing bsync manages changed.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Mapping

from bsync.core.model import Booking


def describe(booking: Booking) -> str:
    """The event description: who, what, with whom, and the notes."""
    lines = []
    if booking.customer.name:
        lines.append(f"Customer: {booking.customer.name}")
    if booking.customer.phone:
        lines.append(f"Phone: {booking.customer.phone}")
    if booking.customer.email:
        lines.append(f"Email: {booking.customer.email}")
    if booking.service:
        lines.append(f"Service: {booking.service}")
    if booking.staff:
        lines.append(f"Staff: {booking.staff}")
    if booking.notes:
        lines.extend(["", booking.notes])
    return "\n".join(lines)


def fields_hash(fields: Mapping[str, Any], cancelled: bool = False) -> str:
    """Hash of an event's projection: equal hashes mean nothing bsync manages changed."""
    blob = json.dumps([sorted(fields.items()), cancelled], default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]
