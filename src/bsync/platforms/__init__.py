"""Booking platforms (Cal.com, Sesami, ...): their webhooks, pulls and the inbox that turns
stored deliveries into local bookings, which the platform pairs then put into the ledger.
Each platform is one module and one entry in :data:`bsync.registry.PLATFORMS`.
"""
