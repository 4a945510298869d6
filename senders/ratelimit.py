"""Pacing: at most N sends a second from one dispatcher (the total is workers × N).

:class:`Pacer` is a token bucket holding one token (a strict pacer): the first send
goes at once, each later one waits until ``1/rate`` seconds after the previous slot.
Slots are computed from a fixed start (``start + n / rate``) rather than by adding
intervals, so floating-point error does not accumulate: 50 sends at 10 a second take
exactly 4.9 seconds. After an idle spell the schedule restarts, so unused time is not
saved up into a burst. Clock and sleep are injectable, so tests run in simulated time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class Pacer:
    """Spaces calls to :meth:`wait` at most ``rate_per_second`` a second.

    A rate of 0 or less means no limit. ``clock`` is a monotonic clock in seconds and
    ``sleep`` sleeps for the given seconds (a fake pair may advance a simulated clock).
    Thread-safe: several threads sharing one pacer share its rate.
    """

    def __init__(
        self,
        rate_per_second: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.rate = float(rate_per_second)
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._start: float | None = None  # when the current run of slots began
        self._count = 0  # slots handed out since then

    def _slot(self, n: int) -> float:
        assert self._start is not None
        return self._start + n / self.rate

    def wait(self) -> float:
        """Block until the next send may go; return the seconds waited."""
        if self.rate <= 0:
            return 0.0
        with self._lock:  # reserve a slot; sleep outside the lock
            now = self._clock()
            if self._start is None or now > self._slot(self._count):
                # Idle since the last slot (or first call): start a new schedule now.
                self._start, self._count = now, 0
            due = self._slot(self._count)
            self._count += 1
        delay = max(0.0, due - now)
        if delay > 0:
            self._sleep(delay)
        return delay

    def reset(self) -> None:
        """Forget the schedule (the next call goes at once)."""
        with self._lock:
            self._start, self._count = None, 0
