"""Trend samples in bounded memory: record, evaluate and size the MetricStore over fixed distributions.

For each distribution, N samples (default 10 million, fixed seeds) go through
``MetricStore.add_trend_key`` into one series tagged as the recorder tags a heartbeat; then the
shipped thresholds on ``http_req_duration{scenario:agent_storm}`` (scenarios/agent_storm.yaml) are
evaluated twice: first (counting the last pending samples) and again (the abortOnFail check every
2 s). The store's memory is what tracemalloc sees it retain, measured in a second, traced run;
"raw array('d')" is what the samples took before (8 bytes each, plus a sorted list of boxed floats
from the first evaluation on). "before" sorts the raw values and takes the same percentiles, as the
store did. |Δ| is the largest difference between a percentile and the same one over the raw floats.
The hot path is timed with timeit, before (``key.values.append(value)``) and after, without and
with the batches counted. Prints a markdown table for docs/BENCHMARKS.md.

    python bench/histogram_bench.py                  # 10 million samples per distribution
    python bench/histogram_bench.py --samples 1000000 --skip-before
"""

from __future__ import annotations

import argparse
import gc
import math
import os
import platform
import random
import sys
import time
import timeit
import tracemalloc
from array import array
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import msgpack
import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from certctl_load.k6.histogram import Histogram  # noqa: E402
from certctl_load.k6.metrics import TREND_BATCH, MetricStore, TrendAggregate  # noqa: E402
from certctl_load.k6.percentiles import percentile  # noqa: E402
from certctl_load.k6.thresholds import Threshold, evaluate, parse_thresholds  # noqa: E402

TAGS = {
    "scenario": "agent_storm",
    "name": "heartbeat",
    "method": "POST",
    "status": "200",
    "expected_response": "true",
}
TREND_KEY = "http_req_duration{scenario:agent_storm}"
MEDIAN_MS, SIGMA = 3.0, 1.0


def lognormal(n: int, tail: float = 0.0) -> array[float]:
    """Lognormal ms (median 3, sigma 1); with ``tail``, that share uniform over 0.1 to 60 s instead."""
    rng = random.Random(20261201)
    mu = math.log(MEDIAN_MS)
    if not tail:
        return array("d", (rng.lognormvariate(mu, SIGMA) for _ in range(n)))
    return array(
        "d",
        (
            rng.uniform(100, 60_000) if rng.random() < tail else rng.lognormvariate(mu, SIGMA)
            for _ in range(n)
        ),
    )


def distinct(n: int, span_us: int, first_us: int = 0) -> array[float]:
    """``n`` distinct microseconds spread evenly over at least ``span_us`` (i * a mod span, a coprime
    to it), in that scattered order, each a quarter of a µs past the whole one."""
    a = 7_777_777  # 7 * 239 * 4649
    span_us = max(span_us, n)
    while math.gcd(a, span_us) != 1:
        span_us += 1
    return array("d", ((first_us + i * a % span_us + 0.25) / 1000 for i in range(n)))


DISTRIBUTIONS: dict[str, Callable[[int], array[float]]] = {
    "lognormal (median 3 ms, σ 1)": lognormal,
    "lognormal + 1 % uniform 0.1-60 s": lambda n: lognormal(n, 0.01),
    "all distinct, spread over 0.1-60 s": lambda n: distinct(n, 59_900_000, 100_000),
    "all distinct, consecutive µs": lambda n: distinct(n, n),
}


def shipped_thresholds() -> list[Threshold]:
    spec = yaml.safe_load((REPO_ROOT / "scenarios" / "agent_storm.yaml").read_text())["thresholds"]
    return parse_thresholds({TREND_KEY: spec[TREND_KEY]})


def record(data: array[float]) -> tuple[MetricStore, float]:
    store = MetricStore()
    key = store.series_key("http_req_duration", TAGS)
    add = store.add_trend_key
    start = time.perf_counter()
    for value in data:
        add(key, value)
    return store, time.perf_counter() - start


def retained_bytes(data: array[float]) -> tuple[int, int]:
    """What the store holds after recording ``data`` and counting every sample; and the traced peak."""
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    store, _ = record(data)
    store.select("http_req_duration", {})  # counts the pending samples
    gc.collect()
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del store
    return current - base, peak - base


def row(name: str, n: int, thresholds: list[Threshold], before: bool) -> list[str]:
    data = DISTRIBUTIONS[name](n)
    store, record_s = record(data)
    start = time.perf_counter()
    results = evaluate(thresholds, store, 300.0)
    first_s = time.perf_counter() - start
    start = time.perf_counter()
    again = evaluate(thresholds, store, 300.0)
    again_s = time.perf_counter() - start
    assert [r.value for r in again] == [r.value for r in results]
    aggregate = store.select("http_req_duration", {"scenario": "agent_storm"})
    assert isinstance(aggregate, TrendAggregate)
    distinct_us = sum(1 for h in aggregate.histograms for _ in h.items())
    delta_mb = len(msgpack.packb(store.take_delta())) / 1e6
    by_p = {r.threshold.expression.percentile: r for r in results}
    p95, p99 = by_p[95.0], by_p[99.0]
    before_s = deviation = "-"
    if before:
        start = time.perf_counter()
        ordered = sorted(data)
        raw = [percentile(ordered, 95), percentile(ordered, 99)]
        before_s = f"{time.perf_counter() - start:.2f}"
        deviation = f"{max(abs(a - b) for a, b in zip(raw, [p95.value, p99.value], strict=True)) * 1000:.3f}"
        del ordered
    del store, aggregate
    retained, peak = retained_bytes(data)
    verdict = ", ".join("PASS" if r.ok else "FAIL" for r in (p95, p99))
    return [
        name,
        f"{n:,}",
        f"{distinct_us:,}",
        f"{record_s:.2f} ({record_s / n * 1e9:.0f})",
        f"{first_s * 1000:.1f} / {again_s * 1000:.1f}",
        f"{p95.value:.3f} / {p99.value:.3f}",
        verdict,
        deviation,
        f"{retained / 1e6:.2f} ({retained / n:.2f})",
        f"{peak / 1e6:.1f}",
        f"{data.itemsize * len(data) / 1e6:.0f}",
        f"{delta_mb:.2f}",
        before_s,
    ]


class _OldKey:
    __slots__ = ("values",)

    def __init__(self) -> None:
        self.values = array("d")


class _OldStore:
    def add_trend_key(self, key: _OldKey, value: float) -> None:
        """The store's hot path before: every sample appended to the series' array."""
        key.values.append(value)


def hot_path_ns(repeat: int) -> dict[str, float]:
    """ns per call, best of ``repeat`` (interleaved: the machine's speed drifts): one value within a
    batch (nothing counted), and a loop over 1M lognormal samples (batches counted, loop included)."""
    old, old_key = _OldStore(), _OldKey()
    store = MetricStore()
    key = store.series_key("http_req_duration", TAGS)
    data = lognormal(1_000_000)
    cases = {
        "before: add(key, 3.14)": ("add(k, 3.141592)", old.add_trend_key, old_key, TREND_BATCH - 1),
        "after: add(key, 3.14), within a batch": (
            "add(k, 3.141592)",
            store.add_trend_key,
            key,
            TREND_BATCH - 1,
        ),
        "before: for v in data: add(key, v)": ("for v in data: add(k, v)", old.add_trend_key, old_key, 1),
        "after: for v in data: add(key, v), batches counted": (
            "for v in data: add(k, v)",
            store.add_trend_key,
            key,
            1,
        ),
    }
    best = dict.fromkeys(cases, math.inf)
    for _ in range(repeat):
        for label, (stmt, add, k, number) in cases.items():
            old_key.values, key.pending, key.histogram = array("d"), array("d"), Histogram()
            seconds = timeit.timeit(stmt, globals={"add": add, "k": k, "data": data}, number=number)
            calls = number if number > 1 else len(data)
            best[label] = min(best[label], seconds / calls * 1e9)
    return best


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.partition(":")[2].strip()
    return platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=10_000_000)
    parser.add_argument("--skip-before", action="store_true", help="no sort of the raw values")
    parser.add_argument("--hot-repeat", type=int, default=7)
    args = parser.parse_args()
    thresholds = shipped_thresholds()
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(
        f"{now}; nproc {len(os.sched_getaffinity(0))}; {cpu_model()}; Python "
        f"{platform.python_version()}; load average {load}; thresholds "
        f"{', '.join(t.expression.text for t in thresholds)} on {TREND_KEY}; batch {TREND_BATCH}\n"
    )
    header = [
        "distribution",
        "samples",
        "distinct µs",
        "record s (ns/sample)",
        "evaluate first / again ms",
        "p(95) / p(99) ms",
        "verdict p95, p99",
        "max \\|Δ\\| vs raw µs",  # escaped: a markdown table cell
        "store MB (B/sample)",
        "peak MB",
        "raw array('d') MB",
        "full delta msgpack MB",
        "before: sort s",
    ]
    print("| " + " | ".join(header) + " |")
    print("|" + " --- |" * len(header))
    for name in DISTRIBUTIONS:
        print("| " + " | ".join(row(name, args.samples, thresholds, not args.skip_before)) + " |", flush=True)
    print(f"\n| add_trend_key | ns per call (best of {args.hot_repeat}, timeit) |\n| --- | --- |")
    for label, ns in hot_path_ns(args.hot_repeat).items():
        print(f"| {label} | {ns:.0f} |")
    print(f"\nload average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
