"""Calendar backends: where bookings become events and where busy time is read.

Each backend implements :class:`bsync.calendars.base.CalendarBackend` and has one entry in
:data:`bsync.registry.CALENDARS`; Google Calendar (gcal, with its OAuth in google_auth) today.
"""
