"""certctl's rate limiter: a token bucket per client IP address, checked before authentication."""

from __future__ import annotations

import time
from collections.abc import Callable


class RateLimiter:
    """``rate`` tokens per second, at most ``burst`` saved up; each request spends one.

    A bucket starts full, as certctl's does, and every client IP address has its own.
    """

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("a rate limiter needs a positive rate and a burst of at least 1")
        self._rate = rate
        self._burst = float(burst)
        self._clock = clock
        self._buckets: dict[str, list[float]] = {}  # ip -> [tokens, last refill]

    def allow(self, ip: str) -> bool:
        """Spend a token of ``ip``'s bucket; False when it has none left."""
        now = self._clock()
        bucket = self._buckets.get(ip)
        if bucket is None:
            bucket = self._buckets[ip] = [self._burst, now]
        tokens = min(self._burst, bucket[0] + (now - bucket[1]) * self._rate)
        bucket[1] = now
        if tokens < 1:
            bucket[0] = tokens
            return False
        bucket[0] = tokens - 1
        return True
