"""Exact trend statistics as k6 computes them: avg, min, max, med, count and p(N) over every sample."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from typing import Protocol

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


class Ascending(Protocol):
    """Values in ascending order, read by 0-based rank (a sorted list, or only the ranks needed)."""

    def __len__(self) -> int: ...

    def __getitem__(self, rank: int, /) -> float: ...


def _check_percent(p: float) -> None:
    if not 0 <= p <= 100:
        raise ValueError(f"percentile {p!r} is outside 0..100")


def percentile_ranks(p: float, n: int) -> tuple[int, int, float]:
    """The ranks type 7 interpolates between for ``n`` >= 2 values, and the weight of the upper one."""
    _check_percent(p)
    i = p / 100 * (n - 1)
    lower = math.floor(i)
    return lower, min(math.ceil(i), n - 1), i - lower


def percentile(sorted_values: Ascending, p: float) -> float:
    """k6's percentile (Hyndman-Fan type 7, numpy's "linear") of ascending values; 0 when there are none."""
    _check_percent(p)
    n = len(sorted_values)
    if n == 0:
        return 0.0
    if n == 1:
        return sorted_values[0]
    lower, upper, weight = percentile_ranks(p, n)
    low = sorted_values[lower]
    return low + (sorted_values[upper] - low) * weight


def _unknown_stat(stat: str) -> ConfigError:
    return ConfigError(
        f"unknown trend stat {stat!r} (use avg, min, med, max, count or p(N) with 0 <= N <= 100)"
    )


def validate_trend_stats(stats: Sequence[str]) -> None:
    """Raise ConfigError naming the first stat that is not avg, min, med, max, count or p(N)."""
    for stat in stats:
        if stat not in NAMED_STATS and parse_percentile_stat(stat) is None:
            raise _unknown_stat(stat)


def trend_stats_of(
    stats: Sequence[str],
    *,
    count: int,
    total: float,
    low: float,
    high: float,
    percentiles: Callable[[list[float]], list[float]],
) -> dict[str, float]:
    """The named stats, in the order asked, of samples given by their count, sum, extremes and a
    function from percents to percentiles; every stat of no samples is 0, as k6. ConfigError on an
    unknown stat name."""
    validate_trend_stats(stats)
    named: dict[str, float] = {"count": count, "avg": total / count if count else 0.0}
    named["min"], named["max"] = (low, high) if count else (0.0, 0.0)
    asked = [50.0 if stat == "med" else parse_percentile_stat(stat) for stat in stats if stat not in named]
    found = iter(percentiles([p for p in asked if p is not None]))
    return {stat: named[stat] if stat in named else next(found) for stat in stats}


def trend_stats(
    sorted_values: Sequence[float], stats: Sequence[str], *, total: float | None = None
) -> dict[str, float]:
    """The named stats of ascending values (``total``: their sum, if known), as trend_stats_of."""
    n = len(sorted_values)
    return trend_stats_of(
        stats,
        count=n,
        total=math.fsum(sorted_values) if total is None else total,
        low=sorted_values[0] if n else 0.0,
        high=sorted_values[-1] if n else 0.0,
        percentiles=lambda ps: [percentile(sorted_values, p) for p in ps],
    )


def trend_stat(sorted_values: Sequence[float], stat: str, *, total: float | None = None) -> float:
    """One stat of ascending values, as trend_stats."""
    return trend_stats(sorted_values, [stat], total=total)[stat]
