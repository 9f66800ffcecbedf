"""The trend fold's pause: how long one fold of pending samples into the histogram holds the event loop.

N lognormal samples (median 3 ms, sigma 1; fixed seed) go one by one through
``MetricStore.add_trend_key`` into one heartbeat series, as the recorder adds them; a full batch
folds inside the add that fills it. Prints the worst, p99 and median single fold in ms of CPU
(each fold timed; CPU, not wall time: on a shared machine another process may preempt any fold),
and CPU per sample in ns (a second, untimed pass: the adds with their folds, the last pending
samples counted). ``--batch`` overrides TREND_BATCH, to set sizes side by side.

    python bench/trend_fold_bench.py                  # the shipped batch
    python bench/trend_fold_bench.py --batch 16384    # the batch before 2026-12-01's fix
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from histogram_bench import TAGS, lognormal  # noqa: E402

from certctl_load.k6 import metrics  # noqa: E402
from certctl_load.k6.metrics import MetricStore  # noqa: E402
from certctl_load.k6.percentiles import percentile  # noqa: E402


def feed(samples: list[float]) -> MetricStore:
    """Every sample through the hot path, then the last pending ones counted."""
    store = MetricStore()
    key = store.trend_key("http_req_duration", TAGS)
    add = store.add_trend_key
    for value in samples:
        add(key, value)
    store.select("http_req_duration", {})
    return store


def fold_times_ms(samples: list[float]) -> list[float]:
    """Each fold's CPU time in ms, ascending (the fold timed from outside, wherever it is called)."""
    original = metrics._Trend.fold
    times: list[float] = []

    def timed(self: metrics._Trend) -> None:
        if not self.pending:
            return
        start = time.thread_time()
        original(self)
        times.append((time.thread_time() - start) * 1000)

    metrics._Trend.fold = timed  # type: ignore[method-assign]
    try:
        feed(samples)
    finally:
        metrics._Trend.fold = original  # type: ignore[method-assign]
    return sorted(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=metrics.TREND_BATCH, help="samples per fold")
    args = parser.parse_args()
    metrics.TREND_BATCH = args.batch
    samples = list(lognormal(args.samples))
    gc.freeze()  # as a run freezes what is alive before t0: no collection walks the samples list
    times = fold_times_ms(samples)
    start = time.process_time()
    store = feed(samples)
    cpu_s = time.process_time() - start
    count = store.trend("http_req_duration", {}).samples
    assert count == args.samples, (count, args.samples)
    print(
        f"samples {args.samples:,}; batch {args.batch}; folds {len(times)}; worst fold {times[-1]:.3f} ms; "
        f"p99 {percentile(times, 99):.3f} ms; median {percentile(times, 50):.3f} ms; "
        f"CPU {cpu_s / args.samples * 1e9:.0f} ns per sample"
    )


if __name__ == "__main__":
    main()
