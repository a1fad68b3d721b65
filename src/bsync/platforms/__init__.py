"""Booking platforms (Cal.com, Sesami, ...): where customers book, feeding the ledger.

``base`` is the contract (:class:`~bsync.platforms.base.Platform`); each platform is one
module (``calcom``, ``sesami``) and one entry in :data:`bsync.registry.PLATFORMS`.
``intake`` holds what every webhook parser shares; ``inbox`` acts on stored deliveries
through the registry; ``pairs`` pulls a platform and puts every platform booking into the
ledger.  Nothing outside a platform's own module knows it by name.
"""
