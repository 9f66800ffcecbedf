"""Exact trend statistics as k6 computes them: avg, min, max, med, count and p(N) over every sample."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from certctl_load.errors import ConfigError

NAMED_STATS = ("avg", "min", "med", "max", "count")
_PERCENTILE = re.compile(r"p\(((?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)\)")


def parse_percentile_stat(text: str) -> float | None:
    """N for ``p(N)`` with 0 <= N <= 100 (fractions allowed, no spaces, as k6); None for anything else."""
    match = _PERCENTILE.fullmatch(text)
    if match is None:
        return None
    value = float(match.group(1))
    return value if value <= 100 else None


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """k6's percentile (Hyndman-Fan type 7, numpy's "linear") of ascending values; 0 when there are none."""
    if not 0 <= p <= 100:
        raise ValueError(f"percentile {p!r} is outside 0..100")
    n = len(sorted_values)
    if n == 0:
        return 0.0
    if n == 1:
        return sorted_values[0]
    i = p / 100 * (n - 1)
    lower = math.floor(i)
    upper = min(math.ceil(i), n - 1)
    low = sorted_values[lower]
    return low + (sorted_values[upper] - low) * (i - lower)


def _unknown_stat(stat: str) -> ConfigError:
    return ConfigError(
        f"unknown trend stat {stat!r} (use avg, min, med, max, count or p(N) with 0 <= N <= 100)"
    )


def validate_trend_stats(stats: Sequence[str]) -> None:
    """Raise ConfigError naming the first stat that is not avg, min, med, max, count or p(N)."""
    for stat in stats:
        if stat not in NAMED_STATS and parse_percentile_stat(stat) is None:
            raise _unknown_stat(stat)


def trend_stat(sorted_values: Sequence[float], stat: str, *, total: float | None = None) -> float:
    """One stat of ascending values (``total``: their sum, if known); every stat of no values is 0, as k6."""
    n = len(sorted_values)
    if stat == "count":
        return n
    if stat == "med":
        return percentile(sorted_values, 50)
    if stat in ("avg", "min", "max"):
        if n == 0:
            return 0.0
        if stat == "avg":
            return (math.fsum(sorted_values) if total is None else total) / n
        return sorted_values[0] if stat == "min" else sorted_values[-1]
    p = parse_percentile_stat(stat)
    if p is None:
        raise _unknown_stat(stat)
    return percentile(sorted_values, p)


def trend_stats(
    sorted_values: Sequence[float], stats: Sequence[str], *, total: float | None = None
) -> dict[str, float]:
    """The named stats of ascending values, in the order asked; ConfigError on an unknown stat name."""
    validate_trend_stats(stats)
    return {stat: trend_stat(sorted_values, stat, total=total) for stat in stats}
