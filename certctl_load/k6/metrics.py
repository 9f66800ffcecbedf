"""k6's metric registry and an exact, mergeable store of every metric's samples, grouped by tag set.

Trend samples are kept at microsecond resolution (see :mod:`certctl_load.k6.histogram`): memory
follows the distinct values, not the requests, and so do the worker-to-master deltas.
"""

from __future__ import annotations

import itertools
import math
from array import array
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from certctl_load.k6.histogram import Histogram, values_at
from certctl_load.k6.percentiles import percentile, percentile_ranks, trend_stats_of

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
    # The load generator's own health (not k6 metrics): how late a probe sleeping 50 ms wakes,
    # the process's CPU in % of one core, each garbage collection's pause.
    "generator_lag": MetricDef("trend", "time"),
    "generator_cpu": MetricDef("gauge"),
    "generator_gc": MetricDef("trend", "time"),
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


# Raw trend samples wait in a buffer this long (4 KB) before they are counted into the histogram,
# inside the add that fills it: a fold of 512 takes about 0.3 ms (bench/trend_fold_bench.py), where
# one of 16,384 (more repeats counted at once, 50 % distinct µs against 97 %) held the loop 6-9 ms.
TREND_BATCH = 512


class _Trend(_Series):
    __slots__ = ("pending", "histogram", "unsent")

    def __init__(self, name: str, tags: TagTuple) -> None:
        super().__init__(name, tags)
        self.pending = array("d")
        self.histogram = Histogram()
        self.unsent: Histogram | None = None  # what take_delta has not sent yet, once it is called

    def fold(self) -> None:
        """Count the pending samples into the histogram (and the unsent one); ValueError, after
        counting the others, when a sample is not a finite number of ms."""
        values = self.pending
        if not values:
            return
        self.pending = array("d")
        also = () if self.unsent is None else (self.unsent,)
        try:
            self.histogram.add_values(values, *also)
        except (OverflowError, ValueError):
            finite = array("d", [value for value in values if math.isfinite(value * 1000.0)])
            if finite:
                self.histogram.add_values(finite, *also)
            bad = next(value for value in values if not math.isfinite(value * 1000.0))
            raise ValueError(f"trend {self.name!r}: sample {bad!r} ms is not a finite duration") from None


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


TrendKey = _Trend
CounterKey = _Counter
RateKey = _Rate
GaugeKey = _Gauge
SeriesKey = _Trend | _Rate | _Counter | _Gauge
"""An opaque handle on one series, from ``MetricStore.series_key``, for the ``*_key`` fast paths."""

_SERIES_CLASSES: dict[str, type[SeriesKey]] = {
    "trend": _Trend,
    "rate": _Rate,
    "counter": _Counter,
    "gauge": _Gauge,
}
_S = TypeVar("_S", _Trend, _Rate, _Counter, _Gauge)


class _AtRanks:
    """The few ascending values a percentile reads, by rank, out of ``n``."""

    __slots__ = ("n", "values")

    def __init__(self, n: int, values: dict[int, int]) -> None:
        self.n, self.values = n, values

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, rank: int, /) -> int:
        return self.values[rank]


@dataclass(frozen=True, eq=False)
class TrendAggregate:
    """A selection's samples: count, exact sum, min and max of the raw values, and percentiles over
    whole microseconds (a view of the store: read it before the store takes more samples)."""

    samples: int
    total: float
    min: float
    max: float
    histograms: tuple[Histogram, ...] = field(default=(), repr=False)

    @property
    def avg(self) -> float:
        """total / samples; 0 when there are none."""
        return self.total / self.samples if self.samples else 0.0

    def percentiles(self, ps: Sequence[float]) -> list[float]:
        """k6's p(N) in ms for each N in ``ps``: type 7 over the samples' microseconds, / 1000."""
        n = self.samples
        if sum(h.count for h in self.histograms) != n:
            raise RuntimeError("the store took more samples since this selection: select again")
        ranks = sorted({rank for p in ps for rank in percentile_ranks(p, n)[:2]}) if n > 1 else list(range(n))
        view = _AtRanks(n, dict(zip(ranks, values_at(self.histograms, ranks), strict=True)))
        return [percentile(view, p) / 1000 for p in ps]

    def percentile(self, p: float) -> float:
        """k6's p(``p``) in ms."""
        return self.percentiles([p])[0]

    def stats(self, stats: Sequence[str]) -> dict[str, float]:
        """The named stats (avg, min, med, max, count, p(N)) in ms, in the order asked, as k6."""
        return trend_stats_of(
            stats,
            count=self.samples,
            total=self.total,
            low=self.min,
            high=self.max,
            percentiles=self.percentiles,
        )


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

    def trend_key(self, name: str, tags: Mapping[str, str]) -> _Trend:
        """series_key for a trend (ValueError for a metric of another type)."""
        return self._typed_key(name, tags, _Trend)

    def counter_key(self, name: str, tags: Mapping[str, str]) -> _Counter:
        """series_key for a counter (ValueError for a metric of another type)."""
        return self._typed_key(name, tags, _Counter)

    def rate_key(self, name: str, tags: Mapping[str, str]) -> _Rate:
        """series_key for a rate (ValueError for a metric of another type)."""
        return self._typed_key(name, tags, _Rate)

    def add_trend_key(self, key: _Trend, value: float) -> None:
        """Fast path of add_trend."""
        pending = key.pending
        pending.append(value)
        if len(pending) >= TREND_BATCH:
            key.fold()

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
        self.add_trend_key(self._typed_key(name, tags, _Trend), value)

    def add_rate(self, name: str, nonzero: bool, tags: Mapping[str, str]) -> None:
        """One rate sample: counted in passes when non-zero."""
        self.add_rate_key(self._typed_key(name, tags, _Rate), nonzero)

    def add_counter(self, name: str, value: float, tags: Mapping[str, str]) -> None:
        """Add ``value`` to a counter."""
        self.add_counter_key(self._typed_key(name, tags, _Counter), value)

    def set_gauge(self, name: str, value: float, tags: Mapping[str, str]) -> None:
        """Set a gauge: it keeps the last value and the extremes."""
        self.set_gauge_key(self._typed_key(name, tags, _Gauge), value)

    def _typed_key(self, name: str, tags: Mapping[str, str], kind: type[_S]) -> _S:
        key = self.series_key(name, tags)
        if not isinstance(key, kind):
            wanted = next(t for t, cls in _SERIES_CLASSES.items() if cls is kind)
            raise ValueError(f"metric {name!r} is a {METRICS[name].type}, not a {wanted}")
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
            return self._trend([s for s in chosen if isinstance(s, _Trend)])
        if metric_type == "rate":
            rates = [s for s in chosen if isinstance(s, _Rate)]
            passes = sum(s.passes for s in rates)
            return RateAggregate(passes, sum(s.total for s in rates) - passes)
        if metric_type == "counter":
            counters = [s for s in chosen if isinstance(s, _Counter)]
            return CounterAggregate(
                sum(s.sum for s in counters),
                sum(s.samples for s in counters),
            )
        seen = [s for s in chosen if isinstance(s, _Gauge) and s.samples]
        if not seen:
            return GaugeAggregate(0.0, 0.0, 0.0, 0)
        last = max(seen, key=lambda s: s.seq)
        return GaugeAggregate(
            last.value, min(s.min for s in seen), max(s.max for s in seen), sum(s.samples for s in seen)
        )

    def trend(self, name: str, selector: Mapping[str, str]) -> TrendAggregate:
        """select() for a trend metric."""
        return _expect(self.select(name, selector), TrendAggregate, name)

    def counter(self, name: str, selector: Mapping[str, str]) -> CounterAggregate:
        """select() for a counter metric."""
        return _expect(self.select(name, selector), CounterAggregate, name)

    def rate(self, name: str, selector: Mapping[str, str]) -> RateAggregate:
        """select() for a rate metric."""
        return _expect(self.select(name, selector), RateAggregate, name)

    def counts_by(self, name: str, tag: str, selector: Mapping[str, str]) -> dict[str, float]:
        """A counter's sums split by the value of ``tag`` (series without it are left out)."""
        if METRICS.get(name, MetricDef("trend", "default")).type != "counter":
            raise ValueError(f"metric {name!r} is not a counter")
        counts: dict[str, float] = {}
        for series in self._by_name[name]:
            tags = dict(series.tags)
            if isinstance(series, _Counter) and tag in tags and series.matches(selector):
                counts[tags[tag]] = counts.get(tags[tag], 0.0) + series.sum
        return counts

    @staticmethod
    def _trend(chosen: list[_Trend]) -> TrendAggregate:
        for series in chosen:
            series.fold()
        histograms = tuple(series.histogram for series in chosen if series.histogram.count)
        if not histograms:
            return TrendAggregate(0, 0.0, 0.0, 0.0)
        return TrendAggregate(
            sum(h.count for h in histograms),
            math.fsum(itertools.chain.from_iterable(h.parts for h in histograms)),
            min(h.low for h in histograms),
            max(h.high for h in histograms),
            histograms,
        )

    # Distributed mode ------------------------------------------------------------------------

    def take_delta(self) -> dict[str, Any]:
        """Everything added (or merged) since the last call, as plain JSON/msgpack-safe data."""
        delta: dict[str, list[Any]] = {"trend": [], "rate": [], "counter": [], "gauge": []}
        for series in self._series.values():
            if isinstance(series, _Trend):
                series.fold()
                unsent = series.histogram if series.unsent is None else series.unsent
                if unsent.count:
                    delta["trend"].append([series.name, series.wire_tags(), *unsent.to_wire()])
                series.unsent = Histogram()
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
        for name, tags, *wire in delta.get("trend", ()):
            trend = self._merge_key(name, tags, _Trend)
            trend.histogram.add_wire(wire)
            if trend.unsent is not None:
                trend.unsent.add_wire(wire)
        for name, tags, passes, total in delta.get("rate", ()):
            rate = self._merge_key(name, tags, _Rate)
            rate.passes += passes
            rate.total += total
        for name, tags, total, samples in delta.get("counter", ()):
            counter = self._merge_key(name, tags, _Counter)
            counter.sum += total
            counter.samples += samples
        for name, tags, value, low, high, samples in delta.get("gauge", ()):
            self._set_gauge(self._merge_key(name, tags, _Gauge), value, low, high, samples)

    def _merge_key(self, name: str, tags: Sequence[Sequence[str]], kind: type[_S]) -> _S:
        return self._typed_key(name, {key: value for key, value in tags}, kind)


_A = TypeVar("_A", TrendAggregate, CounterAggregate, RateAggregate)


def _expect(aggregate: Aggregate, kind: type[_A], name: str) -> _A:
    if not isinstance(aggregate, kind):
        raise ValueError(f"metric {name!r} is a {METRICS[name].type}, not what was asked for")
    return aggregate
