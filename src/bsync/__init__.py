"""bsync: keep bookings in sync across Notion, Google Calendar and booking platforms."""

__version__ = "0.1.0"
