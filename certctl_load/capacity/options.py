"""The capacity search's options, checked: every bad value is a ConfigError naming it (exit 104)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from certctl_load.errors import ConfigError
from certctl_load.model.values import positive_duration, real_number, whole_number

DEFAULT_START_FLEET = 100
DEFAULT_GROWTH = 2.0
DEFAULT_MAX_FLEET = 100_000
DEFAULT_TOLERANCE = 0.05
DEFAULT_MAX_STEPS = 12
WARMUP_INTERVALS = 1  # default --warmup: one heartbeat interval
HOLD_INTERVALS = 2  # default --hold: two intervals


@dataclass(frozen=True)
class SearchOptions:
    """How the search runs: fleets from ``start_fleet`` times ``growth`` up to ``max_fleet``, then
    bisection until the bracket is within ``tolerance`` or ``max_steps`` have run; each step warms
    up ``warmup_s`` and is judged on the ``hold_s`` after it; ``interval_s`` apart (quiet) between
    steps."""

    start_fleet: int
    growth: float
    max_fleet: int
    tolerance: float
    max_steps: int
    warmup_s: float
    hold_s: float
    interval_s: float  # the scenario's longest interval

    @property
    def run_time_s(self) -> int:
        """A step's whole run time: warm-up and hold (whole seconds, as Locust's --run-time takes)."""
        return round(self.warmup_s + self.hold_s)


def search_options(
    *,
    interval_s: float,
    start_fleet: object = None,
    growth: object = None,
    max_fleet: object = None,
    tolerance: object = None,
    max_steps: object = None,
    warmup: object = None,
    hold: object = None,
) -> SearchOptions:
    """The checked options (None: the default) for a scenario whose longest interval is ``interval_s``."""
    start = DEFAULT_START_FLEET if start_fleet is None else whole_number(start_fleet, "--start-fleet")
    grow = DEFAULT_GROWTH if growth is None else real_number(growth, "--growth", positive=True)
    if grow <= 1:
        raise ConfigError(f"--growth={growth!r} must be more than 1")
    cap = max(DEFAULT_MAX_FLEET, start) if max_fleet is None else whole_number(max_fleet, "--max-fleet")
    if cap < start:
        raise ConfigError(f"--max-fleet={max_fleet!r} is below --start-fleet ({start})")
    tol = DEFAULT_TOLERANCE if tolerance is None else real_number(tolerance, "--tolerance", positive=True)
    if not 0 < tol < 1:
        raise ConfigError(f"--tolerance={tolerance!r} must be a fraction between 0 and 1 (such as 0.05)")
    steps = DEFAULT_MAX_STEPS if max_steps is None else whole_number(max_steps, "--max-steps")
    warmup_s = WARMUP_INTERVALS * interval_s if warmup is None else positive_duration(warmup, "--warmup")
    hold_s = HOLD_INTERVALS * interval_s if hold is None else positive_duration(hold, "--hold")
    # A step's run time is warm-up + hold in whole seconds (Locust's --run-time): the hold takes the rest.
    hold_s = math.ceil(warmup_s + hold_s - 1e-9) - warmup_s
    return SearchOptions(start, grow, cap, tol, steps, warmup_s, hold_s, interval_s)
