"""The real CalDAV servers the tests start live in :mod:`bsync.sandbox.caldav_servers` (the
demo and the bench start them too); this name is kept for the tests that import it."""

from bsync.sandbox.caldav_servers import (  # noqa: F401
    RADICALE_PASSWORD, RADICALE_USER, CalDAVServer, free_port, radicale_server, xandikos_server)
