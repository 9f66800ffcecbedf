"""One second's samples of one metric key (metric and selector), exact and mergeable, and the k6
aggregate of a window of them."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from certctl_load.k6.histogram import Histogram
from certctl_load.k6.metrics import (
    METRICS,
    Aggregate,
    CounterAggregate,
    GaugeAggregate,
    RateAggregate,
    TrendAggregate,
)


class Part:
    """A second's samples of one key: a trend's histogram, a rate's passes and total, a counter's sum
    and samples, a gauge's last value (by when it was set), extremes and samples."""

    __slots__ = ("kind", "histogram", "passes", "total", "sum", "samples", "value", "low", "high", "at")

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.histogram = Histogram() if kind == "trend" else None
        self.passes = self.total = self.samples = 0
        self.sum = 0.0
        self.value = self.at = 0.0
        self.low, self.high = math.inf, -math.inf

    @classmethod
    def of(cls, metric: str) -> Part:
        return cls(METRICS[metric].type)

    def add_values(self, values: Sequence[float]) -> None:
        """Samples: trend values, counter increments, rate samples (non-zero passes)."""
        if not values:
            return
        if self.histogram is not None:
            self.histogram.add_values(values)
        elif self.kind == "rate":
            self.passes += sum(1 for value in values if value)
            self.total += len(values)
        else:
            self.sum += math.fsum(values)
            self.samples += len(values)

    def set_gauge(self, value: float, at: float) -> None:
        if not self.samples or at >= self.at:
            self.value, self.at = value, at
        self.low, self.high = min(self.low, value), max(self.high, value)
        self.samples += 1

    @property
    def empty(self) -> bool:
        if self.histogram is not None:
            return not self.histogram.count
        return not (self.total or self.samples)

    def to_wire(self) -> list[Any]:
        if self.histogram is not None:
            return self.histogram.to_wire()
        if self.kind == "rate":
            return [self.passes, self.total]
        if self.kind == "counter":
            return [self.sum, self.samples]
        return [self.value, self.at, self.low, self.high, self.samples]

    def add_wire(self, wire: Sequence[Any]) -> None:
        """Another process's part of the same key and second."""
        if self.histogram is not None:
            self.histogram.add_wire(wire)
        elif self.kind == "rate":
            self.passes += wire[0]
            self.total += wire[1]
        elif self.kind == "counter":
            self.sum += wire[0]
            self.samples += wire[1]
        elif wire[4]:
            value, at, low, high, samples = wire
            if not self.samples or at >= self.at:
                self.value, self.at = value, at
            self.low, self.high = min(self.low, low), max(self.high, high)
            self.samples += samples


def window_aggregate(kind: str, parts: Sequence[Part]) -> Aggregate | None:
    """The k6 aggregate of a window's parts of one key; None when it holds no sample (no data; a
    counter always has a count, 0 when nothing was added)."""
    full = [part for part in parts if not part.empty]
    if kind == "counter":
        return CounterAggregate(math.fsum(p.sum for p in full), sum(p.samples for p in full))
    if not full:
        return None
    if kind == "trend":
        histograms = tuple(p.histogram for p in full if p.histogram is not None)
        return TrendAggregate(
            sum(h.count for h in histograms),
            math.fsum(x for h in histograms for x in h.parts),
            min(h.low for h in histograms),
            max(h.high for h in histograms),
            histograms,
        )
    if kind == "rate":
        passes = sum(p.passes for p in full)
        return RateAggregate(passes, sum(p.total for p in full) - passes)
    last = max(full, key=lambda p: p.at)
    return GaugeAggregate(
        last.value, min(p.low for p in full), max(p.high for p in full), sum(p.samples for p in full)
    )
