"""Free slots: the pure slot arithmetic (slots) and the query that gathers working hours,
busy time from the calendars and what bsync knows locally (query).
"""
