"""A token bucket: ``rate`` events per second on average, bursts up to ``burst``.

Time comes from a monotonic clock in seconds: the bucket's own when it is given one,
otherwise the class's, ``time.monotonic``. Tests that need to cross a refill without
waiting for it replace the class's clock with one they advance (``TokenBucket.clock``).
"""

from __future__ import annotations

import time
from collections.abc import Callable


class TokenBucket:
    clock: Callable[[], float] = staticmethod(time.monotonic)

    def __init__(self, rate: float, burst: float, clock: Callable[[], float] | None = None) -> None:
        self.rate = rate
        self.burst = burst
        if clock is not None:
            self.clock = clock
        self.tokens = burst
        self.updated = self.clock()

    def take(self, n: float = 1.0) -> bool:
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= n:
            self.tokens -= n
            return True
        return False
