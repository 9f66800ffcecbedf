"""Beats the schedule offers in each second: agent i of N makes each call at i*L/N + k*T (L the
longest interval), for every slot before the run's duration (see model/schedule.py)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction


def offered_in_second(fleet_size: int, intervals: Sequence[float], duration_s: float, second: int) -> int:
    """How many slots of the whole fleet fall in [second, second + 1) since t0."""
    if fleet_size < 1 or not intervals:
        return 0
    longest = Fraction(max(intervals))
    n = fleet_size
    low, high = Fraction(second), min(Fraction(second + 1), Fraction(duration_s))
    total = 0
    for interval in map(Fraction, intervals):
        first_k = max(0, math.ceil((low - longest) / interval))
        k = first_k
        while k * interval < high:
            # agents whose offset i*L/N lies in [low - kT, high - kT)
            start = max(low - k * interval, Fraction(0))
            end = high - k * interval
            below_end = min(max(math.ceil(end * n / longest), 0), n)
            below_start = min(max(math.ceil(start * n / longest), 0), n)
            total += max(0, below_end - below_start)
            k += 1
    return total
