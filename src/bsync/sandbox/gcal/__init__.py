"""Loopback emulator of the Google Calendar API v3 (the part bsync uses).

The real ``google-api-python-client`` is pointed at it with
``client_options={"api_endpoint": server.url + "/calendar/v3/"}``.  Wire format and
semantics follow the discovery document shipped with the client
(``discovery_cache/documents/calendar.v3.json``) and Google's published error guide.

One server, one port, built from one part per concern; each module's docstring says what
it emulates and which behaviour is sourced or guessed:

* :mod:`.api`: the clock and Google's error envelope every part answers with;
* :mod:`.events`: ``calendars.get`` and ``events.insert / get / patch / update / delete /
  list / instances`` over the calendar store, sync and page tokens; with :mod:`.model` (the
  stored state), :mod:`.resource` (request body to stored resource), :mod:`.recurrence`
  (series expansion) and :mod:`.times` (RFC 3339);
* :mod:`.freebusy`: ``freebusy.query`` and its limits;
* :mod:`.oauth`: Google's OAuth 2.0 server (authorization and token endpoints, PKCE,
  service-account JWTs) and the bearer-token check on every call;
* :mod:`.batch`: the ``multipart/mixed`` batch endpoint, whose calls run like requests of
  their own.
"""

from __future__ import annotations

from bsync.sandbox.gcal.batch import BatchEndpoint
from bsync.sandbox.gcal.freebusy import FreeBusyApi
from bsync.sandbox.gcal.oauth import DEFAULT_REFRESH_TOKEN, OAuthServer

__all__ = ["GoogleCalendarSandbox", "DEFAULT_REFRESH_TOKEN"]


class GoogleCalendarSandbox(BatchEndpoint, OAuthServer, FreeBusyApi):
    """In-memory Google Calendar API v3 on a loopback port.

    The parts are cooperative subclasses of one :class:`~.api.GoogleApi` server: each adds
    its routes (found by the ``route`` decorator on any class in the MRO), resets its own
    state in ``reset_state`` before calling ``super()``, and the batch endpoint exempts
    itself from the bearer-token check before deferring to OAuth's.
    """
