"""Window arithmetic and one windowed threshold's online verdict: its worst window and where it lies."""

from __future__ import annotations

import math

from certctl_load.k6.thresholds import Threshold, ThresholdResult, holds


def window_starts(duration_s: float, window_s: int) -> list[int]:
    """The starts, in whole seconds since t0, of the windows [k, k + W) that fit in the run, plus
    the one ending with the run's last (partial) second."""
    whole = math.floor(duration_s)
    starts = list(range(0, whole - window_s + 1))
    last = math.ceil(duration_s) - window_s
    if last >= 0 and (not starts or starts[-1] != last):
        starts.append(last)
    return starts


def window_ending_at(second: int, duration_s: float, window_s: int) -> int | None:
    """The start of the window whose last second is ``second``, or None when no window ends there."""
    start = second + 1 - window_s
    if start < 0:
        return None
    fits = start + window_s <= math.floor(duration_s)
    last = second + 1 == math.ceil(duration_s)
    return start if fits or last else None


class WindowVerdict:
    """One windowed threshold, judged window by window; keeps only the worst window (no data first,
    then a crossed one, by how far) and its start."""

    __slots__ = ("threshold", "judged", "worst", "worst_start", "ok", "_rank")

    def __init__(self, threshold: Threshold) -> None:
        assert threshold.window_s is not None
        self.threshold = threshold
        self.judged = 0
        self.worst: float | None = None
        self.worst_start: int | None = None
        self.ok = True
        self._rank: tuple[int, float] | None = None

    def observe(self, start: int, value: float | None) -> None:
        """One window's value (None: no data, which fails)."""
        self.judged += 1
        expression = self.threshold.expression
        passed = value is not None and holds(expression, value)
        if value is None:
            rank = (2, 0.0)
        else:
            badness = (
                value if expression.op in ("<", "<=") else -value if expression.op in (">", ">=") else 0.0
            )
            rank = (0 if passed else 1, badness)
        if self._rank is None or rank > self._rank:
            self._rank, self.worst, self.worst_start = rank, value, start
        self.ok = self.ok and passed

    def result(self) -> ThresholdResult:
        return ThresholdResult(self.threshold, self.worst, self.ok, self.worst_start)
