"""Deliberate slowness and failure: heartbeat latency, slow and failing heartbeats, a stall window.

Every wait is a cooperative gevent sleep to an absolute deadline, so the server's own time for
a delayed request is the requested delay, not the delay plus timer slack.
"""

from __future__ import annotations

import time
from fractions import Fraction

import gevent


def sleep_until(deadline: float) -> None:
    """Sleep cooperatively until ``time.perf_counter()`` reaches ``deadline``."""
    loop = gevent.get_hub().loop
    while (remaining := deadline - time.perf_counter()) > 0:
        loop.update_now()  # the loop's cached clock may lag: timers would fire early
        gevent.sleep(remaining)


class EvenSpread:
    """Picks a deterministic, evenly spread ``fraction`` of a sequence of events.

    Event n (0-based) is picked when floor((n+1)·F) > floor(n·F), computed exactly, so any
    N consecutive events from the first hold exactly floor(N·F) picks.
    """

    def __init__(self, fraction: Fraction) -> None:
        if not 0 <= fraction <= 1:
            raise ValueError(f"a fraction must be between 0 and 1, got {fraction}")
        self._numerator = fraction.numerator
        self._denominator = fraction.denominator
        self._next = 0

    def pick(self) -> bool:
        """Whether the next event is picked."""
        n = self._next
        self._next = n + 1
        return (n + 1) * self._numerator // self._denominator > n * self._numerator // self._denominator


class HeartbeatTiming:
    """How long each heartbeat takes on the server: ``latency_s``, or ``slow_s`` for an evenly
    spread fraction of them (replacing, not adding to, the latency)."""

    def __init__(self, latency_s: float = 0.0, slow: EvenSpread | None = None, slow_s: float = 0.0) -> None:
        self._latency_s = latency_s
        self._slow = slow
        self._slow_s = slow_s

    def next_duration(self) -> float:
        """The duration of the next heartbeat, in seconds (0 when it needs no delay)."""
        if self._slow is not None and self._slow.pick():
            return self._slow_s
        return self._latency_s


class StallWindow:
    """Holds every response that is ready in [start, start + duration) seconds after ``arm()``
    until the window ends."""

    def __init__(self, start_s: float, duration_s: float) -> None:
        self._start_s = start_s
        self._duration_s = duration_s
        self._begins = self._ends = float("inf")

    def arm(self) -> None:
        """Start counting: call when the server becomes ready."""
        now = time.perf_counter()
        self._begins = now + self._start_s
        self._ends = self._begins + self._duration_s

    def hold(self) -> None:
        """Wait for the window's end when now is inside it."""
        if self._begins <= time.perf_counter() < self._ends:
            sleep_until(self._ends)
