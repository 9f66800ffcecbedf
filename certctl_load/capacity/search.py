"""The search over fleet sizes: expand by the growth factor from the start fleet until a step
fails or the cap is reached, then bisect (midpoints floored) between the largest passing and the
smallest failing fleet until they are within the tolerance or the steps run out."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from certctl_load.capacity.options import SearchOptions


@dataclass(frozen=True)
class Bracket:
    """What the conclusive steps so far say: the largest fleet that passed and the smallest that
    failed (None when none did)."""

    passed: int | None
    failed: int | None

    def within(self, tolerance: float) -> bool:
        """The ceiling is known to within ``tolerance`` of the failing fleet (or to one agent)."""
        if self.passed is None or self.failed is None:
            return False
        gap = self.failed - self.passed
        return gap <= 1 or gap <= tolerance * self.failed


def bracket(steps: Sequence[tuple[int, bool]]) -> Bracket:
    """The bracket from ``(fleet, passed)`` steps. A pass above a failure (noise) keeps the
    smallest failure, and the largest pass below it."""
    failed = min((fleet for fleet, ok in steps if not ok), default=None)
    passes = [fleet for fleet, ok in steps if ok and (failed is None or fleet < failed)]
    return Bracket(max(passes, default=None), failed)


def next_fleet(options: SearchOptions, steps: Sequence[tuple[int, bool]]) -> int | None:
    """The next step's fleet after ``steps`` (``(fleet, passed)``, in order), or None when the
    search is over: the start fleet failed, the cap passed, the bracket is within the tolerance,
    or ``max_steps`` have run."""
    if not steps:
        return options.start_fleet
    if len(steps) >= options.max_steps:
        return None
    found = bracket(steps)
    if found.passed is None:
        return None  # the start fleet (or everything tried) failed
    if found.failed is None:
        if found.passed >= options.max_fleet:
            return None
        grown = max(found.passed + 1, math.floor(found.passed * options.growth))
        return min(grown, options.max_fleet)
    if found.within(options.tolerance):
        return None
    return (found.passed + found.failed) // 2
