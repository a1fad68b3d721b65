"""A client-side pacer so bsync stays under an API's average rate instead of bouncing off 429s.

Notion documents an average of three requests per second per integration; pacing at that
rate costs a first sync of 1,000 bookings about six minutes, while hitting the limit
would cost the same plus a Retry-After wait per refusal, and could exhaust the retries.
"""

from __future__ import annotations

import threading
import time
from typing import Callable


class Pacer:
    """Spaces calls at least ``1 / rate`` seconds apart (``rate`` <= 0: no pacing)."""

    def __init__(self, rate: float, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self._clock = clock
        self._sleep = sleep
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> float:
        """Block until the next call may go; return how long it waited."""
        if not self.interval:
            return 0.0
        with self._lock:
            now = self._clock()
            delay = max(0.0, self._next - now)
            self._next = max(now, self._next) + self.interval
        if delay:
            self._sleep(delay)
        return delay
