"""k6's metric registry and an exact, mergeable store of every sample, grouped by tag set."""

from __future__ import annotations

import itertools
import math
from array import array
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

MetricType = Literal["counter", "gauge", "rate", "trend"]
Contains = Literal["default", "time", "data"]


@dataclass(frozen=True)
class MetricDef:
    """A metric's k6 type and what its values measure."""

    type: MetricType
    contains: Contains = "default"


METRICS: dict[str, MetricDef] = {
    "http_req_duration": MetricDef("trend", "time"),
    "http_req_connecting": MetricDef("trend", "time"),
    "http_req_failed": MetricDef("rate"),
    "http_reqs": MetricDef("counter"),
    "iterations": MetricDef("counter"),
    "dropped_iterations": MetricDef("counter"),
    # Beats sent more than 10 ms after their slot (not a k6 metric).
    "late_iterations": MetricDef("counter"),
    "checks": MetricDef("rate"),
    "vus": MetricDef("gauge"),
    "vus_max": MetricDef("gauge"),
    "data_sent": MetricDef("counter", "data"),
    "data_received": MetricDef("counter", "data"),
}

# error: the network error kind or the status class, for breakdowns.
KNOWN_TAGS = frozenset({"scenario", "name", "method", "status", "expected_response", "check", "error"})

TagTuple = tuple[tuple[str, str], ...]


class _Series:
    """The samples of one metric with one exact tag set."""

    __slots__ = ("name", "tags", "_tag_map")

    def __init__(self, name: str, tags: TagTuple) -> None:
        self.name = name
        self.tags = tags
        self._tag_map = dict(tags)

    def matches(self, selector: Mapping[str, str]) -> bool:
        tag_map = self._tag_map
        return all(tag_map.get(key) == value for key, value in selector.items())

    def wire_tags(self) -> list[list[str]]:
        return [[key, value] for key, value in self.tags]


class _Trend(_Series):
    __slots__ = ("values", "sent", "sorted")

    def __init__(self, name: str, tags: TagTuple) -> None:
        super().__init__(name, tags)
        self.values = array("d")
        self.sent = 0
        self.sorted: list[float] = []

    def sorted_values(self) -> list[float]:
        """All values ascending (kept as a list: array conversions cost more than they save)."""
        done = len(self.sorted)
        if done == 0:
            self.sorted = sorted(self.values)
        elif done != len(self.values):
            merged = self.sorted + sorted(self.values[done:])
            merged.sort()  # two sorted runs: a linear merge
            self.sorted = merged
        return self.sorted


class _Rate(_Series):
    __slots__ = ("passes", "total", "sent_passes", "sent_total")

    def __init__(self, name: str, tags: TagTuple) -> None:
        super().__init__(name, tags)
        self.passes = self.total = self.sent_passes = self.sent_total = 0


class _Counter(_Series):
    __slots__ = ("sum", "samples", "sent_sum", "sent_samples")

    def __init__(self, name: str, tags: TagTuple) -> None:
        super().__init__(name, tags)
        self.sum: float = 0
        self.samples = 0
        self.sent_sum: float = 0
        self.sent_samples = 0


class _Gauge(_Series):
    __slots__ = ("value", "min", "max", "samples", "seq", "sent_samples", "delta_min", "delta_max")

    def __init__(self, name: str, tags: TagTuple) -> None:
        super().__init__(name, tags)
        self.value = self.min = self.max = 0.0
        self.delta_min = self.delta_max = 0.0
        self.samples = self.seq = self.sent_samples = 0


SeriesKey = _Trend | _Rate | _Counter | _Gauge
"""An opaque handle on one series, from ``MetricStore.series_key``, for the ``*_key`` fast paths."""

_SERIES_CLASSES: dict[str, type[SeriesKey]] = {
    "trend": _Trend,
    "rate": _Rate,
    "counter": _Counter,
    "gauge": _Gauge,
}


@dataclass(frozen=True)
class TrendAggregate:
    """Every sample of a selection, ascending (read-only: the store caches it), and their exact sum."""

    values: Sequence[float]
    total: float

    @property
    def samples(self) -> int:
        return len(self.values)


@dataclass(frozen=True)
class RateAggregate:
    """passes counts the non-zero samples (for http_req_failed: the FAILED requests, as in k6)."""

    passes: int
    fails: int

    @property
    def samples(self) -> int:
        return self.passes + self.fails

    @property
    def rate(self) -> float:
        """passes / samples; 0 when there are no samples."""
        total = self.passes + self.fails
        return self.passes / total if total else 0.0


@dataclass(frozen=True)
class CounterAggregate:
    """count is the sum of the added values (k6's count); samples how many were added."""

    count: float
    samples: int


@dataclass(frozen=True)
class GaugeAggregate:
    """The last value set and the extremes; all 0 when never set."""

    value: float
    min: float
    max: float
    samples: int


Aggregate = TrendAggregate | RateAggregate | CounterAggregate | GaugeAggregate


class MetricStore:
    """All samples of a run in one process; mergeable exactly across processes via take_delta/merge."""

    def __init__(self) -> None:
        self._series: dict[tuple[str, TagTuple], SeriesKey] = {}
        self._by_name: dict[str, list[SeriesKey]] = {name: [] for name in METRICS}
        self._gauge_seq = itertools.count(1)
        # trend series selected together -> (their lengths when cached, the aggregate)
        self._trend_cache: dict[tuple[int, ...], tuple[tuple[int, ...], TrendAggregate]] = {}

    # Adding samples --------------------------------------------------------------------------

    def series_key(self, name: str, tags: Mapping[str, str]) -> SeriesKey:
        """A reusable handle on the series of ``name`` with exactly ``tags`` (created when new)."""
        tag_tuple = tuple(sorted(tags.items()))
        series = self._series.get((name, tag_tuple))
        if series is None:
            if name not in METRICS:
                raise ValueError(f"unknown metric {name!r}")
            unknown = set(tags) - KNOWN_TAGS
            if unknown:
                raise ValueError(f"unknown tag {sorted(unknown)[0]!r} on metric {name!r}")
            series = _SERIES_CLASSES[METRICS[name].type](name, tag_tuple)
            self._series[(name, tag_tuple)] = series
            self._by_name[name].append(series)
        return series

    def add_trend_key(self, key: _Trend, value: float) -> None:
        """Fast path of add_trend."""
        key.values.append(value)

    def add_rate_key(self, key: _Rate, nonzero: bool) -> None:
        """Fast path of add_rate."""
        key.total += 1
        if nonzero:
            key.passes += 1

    def add_counter_key(self, key: _Counter, value: float) -> None:
        """Fast path of add_counter."""
        key.sum += value
        key.samples += 1

    def set_gauge_key(self, key: _Gauge, value: float) -> None:
        """Fast path of set_gauge."""
        self._set_gauge(key, value, value, value, 1)

    def add_trend(self, name: str, value: float, tags: Mapping[str, str]) -> None:
        """One trend sample (time trends in ms)."""
        self.add_trend_key(self._typed_key(name, tags, "trend"), value)

    def add_rate(self, name: str, nonzero: bool, tags: Mapping[str, str]) -> None:
        """One rate sample: counted in passes when non-zero."""
        self.add_rate_key(self._typed_key(name, tags, "rate"), nonzero)

    def add_counter(self, name: str, value: float, tags: Mapping[str, str]) -> None:
        """Add ``value`` to a counter."""
        self.add_counter_key(self._typed_key(name, tags, "counter"), value)

    def set_gauge(self, name: str, value: float, tags: Mapping[str, str]) -> None:
        """Set a gauge: it keeps the last value and the extremes."""
        self.set_gauge_key(self._typed_key(name, tags, "gauge"), value)

    def _typed_key(self, name: str, tags: Mapping[str, str], metric_type: str) -> SeriesKey:
        key = self.series_key(name, tags)
        if METRICS[name].type != metric_type:
            raise ValueError(f"metric {name!r} is a {METRICS[name].type}, not a {metric_type}")
        return key

    def _set_gauge(self, series: _Gauge, value: float, low: float, high: float, samples: int) -> None:
        if series.samples:
            series.min = min(series.min, low)
            series.max = max(series.max, high)
        else:
            series.min, series.max = low, high
        if series.samples == series.sent_samples:
            series.delta_min, series.delta_max = low, high
        else:
            series.delta_min = min(series.delta_min, low)
            series.delta_max = max(series.delta_max, high)
        series.value = value
        series.samples += samples
        series.seq = next(self._gauge_seq)

    # Reading ---------------------------------------------------------------------------------

    def select(self, name: str, selector: Mapping[str, str]) -> Aggregate:
        """Every sample of ``name`` whose tags contain all of ``selector``'s pairs, aggregated by type."""
        if name not in METRICS:
            raise ValueError(f"unknown metric {name!r}")
        chosen = [series for series in self._by_name[name] if series.matches(selector)]
        metric_type = METRICS[name].type
        if metric_type == "trend":
            return self._trend(chosen)
        if metric_type == "rate":
            passes = sum(s.passes for s in chosen)
            return RateAggregate(passes, sum(s.total for s in chosen) - passes)
        if metric_type == "counter":
            return CounterAggregate(
                sum(s.sum for s in chosen),
                sum(s.samples for s in chosen),
            )
        seen: list[_Gauge] = [s for s in chosen if s.samples]
        if not seen:
            return GaugeAggregate(0.0, 0.0, 0.0, 0)
        last = max(seen, key=lambda s: s.seq)
        return GaugeAggregate(
            last.value, min(s.min for s in seen), max(s.max for s in seen), sum(s.samples for s in seen)
        )

    def counts_by(self, name: str, tag: str, selector: Mapping[str, str]) -> dict[str, float]:
        """A counter's sums split by the value of ``tag`` (series without it are left out)."""
        if METRICS.get(name, MetricDef("trend", "default")).type != "counter":
            raise ValueError(f"metric {name!r} is not a counter")
        counts: dict[str, float] = {}
        for series in self._by_name[name]:
            tags = dict(series.tags)
            if tag in tags and series.matches(selector):
                counts[tags[tag]] = counts.get(tags[tag], 0.0) + series.sum
        return counts

    def _trend(self, chosen: list[_Trend]) -> TrendAggregate:
        cache_key = tuple(id(series) for series in chosen)
        lengths = tuple(len(series.values) for series in chosen)
        cached = self._trend_cache.get(cache_key)
        if cached is not None and cached[0] == lengths:
            return cached[1]
        if len(chosen) == 1:
            values = chosen[0].sorted_values()
        else:
            values = []
            for series in chosen:
                values.extend(series.sorted_values())
            values.sort()  # concatenated sorted runs: Timsort merges them
        # fsum is order-free, and far faster over the raw arrays than over the scattered sorted floats.
        total = math.fsum(itertools.chain.from_iterable(series.values for series in chosen))
        aggregate = TrendAggregate(values, total)
        self._trend_cache[cache_key] = (lengths, aggregate)
        return aggregate

    # Distributed mode ------------------------------------------------------------------------

    def take_delta(self) -> dict[str, Any]:
        """Everything added (or merged) since the last call, as plain JSON/msgpack-safe data."""
        delta: dict[str, list[Any]] = {"trend": [], "rate": [], "counter": [], "gauge": []}
        for series in self._series.values():
            if isinstance(series, _Trend):
                if len(series.values) > series.sent:
                    delta["trend"].append(
                        [series.name, series.wire_tags(), series.values[series.sent :].tolist()]
                    )
                    series.sent = len(series.values)
            elif isinstance(series, _Rate):
                if series.total > series.sent_total:
                    passes = series.passes - series.sent_passes
                    delta["rate"].append(
                        [series.name, series.wire_tags(), passes, series.total - series.sent_total]
                    )
                    series.sent_passes, series.sent_total = series.passes, series.total
            elif isinstance(series, _Counter):
                if series.samples > series.sent_samples:
                    delta["counter"].append(
                        [
                            series.name,
                            series.wire_tags(),
                            series.sum - series.sent_sum,
                            series.samples - series.sent_samples,
                        ]
                    )
                    series.sent_sum, series.sent_samples = series.sum, series.samples
            elif isinstance(series, _Gauge) and series.samples > series.sent_samples:
                delta["gauge"].append(
                    [
                        series.name,
                        series.wire_tags(),
                        series.value,
                        series.delta_min,
                        series.delta_max,
                        series.samples - series.sent_samples,
                    ]
                )
                series.sent_samples = series.samples
        return delta

    def merge(self, delta: Mapping[str, Any]) -> None:
        """Add another store's take_delta() exactly; a merged gauge's value counts as set now."""
        for name, tags, values in delta.get("trend", ()):
            self._merge_key(name, tags).values.extend(values)
        for name, tags, passes, total in delta.get("rate", ()):
            series = self._merge_key(name, tags)
            series.passes += passes
            series.total += total
        for name, tags, total, samples in delta.get("counter", ()):
            series = self._merge_key(name, tags)
            series.sum += total
            series.samples += samples
        for name, tags, value, low, high, samples in delta.get("gauge", ()):
            self._set_gauge(self._merge_key(name, tags), value, low, high, samples)

    def _merge_key(self, name: str, tags: Sequence[Sequence[str]]) -> SeriesKey:
        return self.series_key(name, {key: value for key, value in tags})
