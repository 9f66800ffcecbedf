"""The load generator's own health: is the harness, not the server, the bottleneck?

Between t0 and the end of the schedule a lag probe (a greenlet sleeping 50 ms again and again)
records how late it wakes as ``generator_lag`` (ms) and the process's CPU is sampled every second
as ``generator_cpu`` (% of one core); from t0 to the end of the drain every garbage collection's
pause is timed as ``generator_gc`` (ms). With the late beats they decide whether the generator was
saturated (:func:`judge_health`). The collector is kept out of the schedule by
:class:`CollectorGuard`.
"""

from __future__ import annotations

import gc
import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import gevent

from certctl_load.k6.metrics import MetricStore
from certctl_load.timeline.timeline import Timeline

LAG_PROBE_INTERVAL_S = 0.050
CPU_SAMPLE_INTERVAL_S = 1.0
SWEEP_INTERVAL_S = 0.5
CPU_WINDOW_SAMPLES = 10  # CPU is judged over any 10 s
# Saturated, between t0 and the end of the schedule, when any of these is crossed; calibrated
# against the packets on the wire (docs/BENCHMARKS.md, "The generator's health").
MAX_LAG_P99_MS = 20.0
MAX_LATE_FRACTION = 0.01
# ... and late beats count only from this many on: in a small run one late beat (a single moment of
# the machine's) is over 1% without saying anything about the generator (1 of 80 in a CI test).
MIN_LATE_BEATS = 5
MAX_CPU_PCT = 90.0
REMEDY = "add processes (--processes N) or workers (--master and --worker)"
LAG_STATS = {"p50": "med", "p99": "p(99)", "max": "max"}


class CollectorGuard:
    """Keeps the cyclic garbage collector out of the schedule. What is alive once the fleet has
    joined (users, loops, connections, prebuilt requests) is frozen out of the collector's way, and
    again just before t0 (the agents' schedules); generation 2 is off for the run, and twice a
    second the young generation is swept (:meth:`sweep`). After the drain
    the thresholds come back, the frozen objects are scanned again and one collection runs. The
    steady state allocates no reference cycles per beat (tests/test_no_cycles.py), so the young
    collections that remain find little and take little."""

    def __init__(self) -> None:
        self._thresholds: tuple[int, int, int] | None = None

    def freeze(self) -> None:
        """Collect what is garbage now, then freeze the rest (may be called again)."""
        if self._thresholds is None:
            self._thresholds = gc.get_threshold()
            young, middle, _ = self._thresholds
            gc.set_threshold(young, middle, 1 << 30)
        gc.collect()
        gc.freeze()

    def sweep(self) -> None:
        """Collect the young generation, then freeze what survived (twice a second in the schedule).
        A young collection walks every tracked object allocated since the last freeze and still
        alive, and a fleet keeps about one of each of its sleeping agents' objects alive (their
        timers, waiters, buffers), renewed every beat: unswept, a young collection at 15,000 agents
        walked all of them (11 to 26 ms). Swept, it walks half a second's worth (swept every second
        it took a median 0.6 ms, at most 2.1 to 5.6 ms, in three wire runs), and cyclic garbage is
        collected before its objects are frozen."""
        if self._thresholds is not None:
            gc.collect(0)
            gc.freeze()

    def release(self) -> None:
        if self._thresholds is None:
            return
        gc.set_threshold(*self._thresholds)
        self._thresholds = None
        gc.unfreeze()
        gc.collect()


class CollectorPauses:
    """Every garbage collection while installed, timed through ``gc.callbacks`` into the store's
    ``generator_gc`` and into this process's own tally."""

    def __init__(self, store: MetricStore, timeline: Timeline | None = None) -> None:
        self._store = store
        self._timeline = timeline
        self._key = store.trend_key("generator_gc", {})
        self._started = 0.0
        self.count = 0
        self.by_generation: dict[int, int] = {}
        self.max_ms = 0.0
        self.total_ms = 0.0

    def __call__(self, phase: str, info: Mapping[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        pause_ms = (time.perf_counter() - self._started) * 1000.0
        generation = int(info["generation"])
        self.count += 1
        self.by_generation[generation] = self.by_generation.get(generation, 0) + 1
        self.max_ms = max(self.max_ms, pause_ms)
        self.total_ms += pause_ms
        self._store.add_trend_key(self._key, pause_ms)
        if self._timeline is not None:
            self._timeline.samples.append((time.time(), "generator_gc", pause_ms))

    def install(self) -> None:
        if self not in gc.callbacks:
            gc.callbacks.append(self)

    def remove(self) -> None:
        if self in gc.callbacks:
            gc.callbacks.remove(self)

    def figures(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "max_ms": self.max_ms,
            "total_ms": self.total_ms,
            "by_generation": {str(g): n for g, n in sorted(self.by_generation.items())},
        }


class _Periodic:
    """A greenlet calling ``tick`` every ``interval_s`` until stopped."""

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self._greenlet: gevent.Greenlet | None = None

    def start(self) -> None:
        if self._greenlet is None:
            self._greenlet = gevent.spawn(self._run)

    def stop(self) -> None:
        if self._greenlet is not None:
            self._greenlet.kill(block=False)
            self._greenlet = None

    def _run(self) -> None:
        raise NotImplementedError


class CollectorSweep(_Periodic):
    """Sweeps the guard's young generation every ``interval_s`` (:meth:`CollectorGuard.sweep`)."""

    def __init__(self, guard: CollectorGuard, interval_s: float = SWEEP_INTERVAL_S) -> None:
        super().__init__(interval_s)
        self._guard = guard

    def _run(self) -> None:
        while True:
            gevent.sleep(self.interval_s)
            self._guard.sweep()


class LagProbe(_Periodic):
    """Sleeps ``interval_s`` again and again and records how late it wakes (ms): in the store, for
    thresholds over the whole fleet, and in a store of this process's own."""

    def __init__(
        self, store: MetricStore, timeline: Timeline | None = None, interval_s: float = LAG_PROBE_INTERVAL_S
    ) -> None:
        super().__init__(interval_s)
        self._timeline = timeline
        self.own = MetricStore()
        self._keys = (
            (store, store.trend_key("generator_lag", {})),
            (self.own, self.own.trend_key("generator_lag", {})),
        )

    def _run(self) -> None:
        interval, keys = self.interval_s, self._keys
        while True:
            expected = time.perf_counter() + interval
            gevent.sleep(interval)
            lag_ms = max(0.0, (time.perf_counter() - expected) * 1000.0)
            for store, key in keys:
                store.add_trend_key(key, lag_ms)
            if self._timeline is not None:
                self._timeline.samples.append((time.time(), "generator_lag", lag_ms))

    def figures(self) -> dict[str, float]:
        """This process's lag p50, p99 and max (ms)."""
        stats = self.own.trend("generator_lag", {}).stats(list(LAG_STATS.values()))
        return {name: stats[stat] for name, stat in LAG_STATS.items()}


class CpuMeter(_Periodic):
    """This process's CPU as % of one core every second, as the gauge ``generator_cpu``; keeps
    the busiest full 10 s."""

    def __init__(self, store: MetricStore, timeline: Timeline | None = None) -> None:
        super().__init__(CPU_SAMPLE_INTERVAL_S)
        self._store = store
        self._timeline = timeline
        self._recent: deque[float] = deque(maxlen=CPU_WINDOW_SAMPLES)
        self.busiest_pct = 0.0

    def observe(self, pct: float) -> None:
        """One second's CPU: the gauge, and the busiest full 10 s window so far."""
        self._store.set_gauge("generator_cpu", pct, {})
        if self._timeline is not None:
            self._timeline.samples.append((time.time(), "generator_cpu", pct))
        self._recent.append(pct)
        if len(self._recent) == CPU_WINDOW_SAMPLES:
            self.busiest_pct = max(self.busiest_pct, sum(self._recent) / CPU_WINDOW_SAMPLES)

    def _run(self) -> None:
        wall, cpu = time.perf_counter(), time.process_time()
        while True:
            gevent.sleep(self.interval_s)
            now_wall, now_cpu = time.perf_counter(), time.process_time()
            self.observe(100.0 * (now_cpu - cpu) / max(now_wall - wall, 1e-9))
            wall, cpu = now_wall, now_cpu


@dataclass(frozen=True)
class Health:
    """One process's (or the whole fleet's) generator figures, and the verdict on them."""

    saturated: bool
    reasons: tuple[str, ...]
    lag_ms: Mapping[str, float]
    cpu_pct: float
    gc: Mapping[str, Any]
    late_fraction: float

    def line(self) -> str:
        """The one line naming the generator's figures and the remedy."""
        return f"the load generator was saturated ({'; '.join(self.reasons)}); {REMEDY}"

    def to_json(self) -> dict[str, Any]:
        return {
            "saturated": self.saturated,
            "reasons": list(self.reasons),
            "lag_ms": dict(self.lag_ms),
            "cpu_pct": self.cpu_pct,
            "gc": dict(self.gc),
            "late_fraction": self.late_fraction,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Health:
        return cls(
            data["saturated"],
            tuple(data["reasons"]),
            data["lag_ms"],
            data["cpu_pct"],
            data["gc"],
            data["late_fraction"],
        )


def judge_health(
    lag_ms: Mapping[str, float],
    cpu_busiest_pct: float,
    gc_figures: Mapping[str, Any],
    late: float,
    beats: float,
) -> Health:
    """Saturated when lag p99 > 20 ms, late beats > 1% of beats (5 at least), or CPU > 90% of a core
    in any 10 s."""
    late_fraction = late / beats if beats else 0.0
    reasons = []
    if lag_ms.get("p99", 0.0) > MAX_LAG_P99_MS:
        reasons.append(f"generator_lag p99 {lag_ms['p99']:.1f} ms > {MAX_LAG_P99_MS:g} ms")
    if late_fraction > MAX_LATE_FRACTION and late >= MIN_LATE_BEATS:
        reasons.append(f"late beats {late_fraction:.2%} > {MAX_LATE_FRACTION:.0%}")
    if cpu_busiest_pct > MAX_CPU_PCT:
        reasons.append(f"CPU {cpu_busiest_pct:.0f}% of a core over 10 s > {MAX_CPU_PCT:g}%")
    return Health(bool(reasons), tuple(reasons), lag_ms, cpu_busiest_pct, gc_figures, late_fraction)


def fleet_health(
    own: Health, workers: Mapping[str, Health], lag_ms: Mapping[str, float], late_fraction: float
) -> Health:
    """A master's view: saturated when it or any worker was; the fleet's merged lag and late
    fraction, the busiest process's CPU, the collections of every process."""
    everyone: Iterable[tuple[str, Health]] = [("master", own), *workers.items()]
    reasons = tuple(f"{name}: {reason}" for name, health in everyone for reason in health.reasons)
    healths = [own, *workers.values()]
    by_generation: dict[str, int] = {}
    for health in healths:
        for generation, count in health.gc.get("by_generation", {}).items():
            by_generation[generation] = by_generation.get(generation, 0) + count
    gc_figures = {
        "count": sum(h.gc["count"] for h in healths),
        "max_ms": max(h.gc["max_ms"] for h in healths),
        "total_ms": sum(h.gc["total_ms"] for h in healths),
        "by_generation": dict(sorted(by_generation.items())),
    }
    return Health(bool(reasons), reasons, lag_ms, max(h.cpu_pct for h in healths), gc_figures, late_fraction)
