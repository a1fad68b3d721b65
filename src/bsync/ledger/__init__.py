"""The booking ledger, the source of truth: Notion today (notion), plus Notion as the
target of platform bookings (notion_pages).  See :class:`bsync.ledger.base.BookingLedger`.
"""
