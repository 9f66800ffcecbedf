"""Trend memory follows distinct values, not requests; so do deltas; evaluation stays fast."""

import math
import random
import time
import tracemalloc
from array import array

import msgpack

from certctl_load.k6.metrics import MetricStore
from certctl_load.k6.thresholds import evaluate, parse_thresholds

OK = {"scenario": "agent_storm", "name": "heartbeat", "status": "200", "expected_response": "true"}
SHIPPED = {"http_req_duration{scenario:agent_storm}": ["p(99)<1000", "p(95)<500"]}
N = 500_000


def lognormal(n, seed=5):
    rng = random.Random(seed)
    return array("d", (rng.lognormvariate(math.log(3), 1) for _ in range(n)))


def store_of(values):
    store = MetricStore()
    key = store.series_key("http_req_duration", OK)
    for value in values:
        store.add_trend_key(key, value)
    return store


def retained(values):
    """Bytes the store holds once every sample is counted, as tracemalloc sees them."""
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    store = store_of(values)
    assert store.select("http_req_duration", {}).samples == len(values)
    size = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    return size


def test_repeated_values_cost_a_small_fraction_of_a_byte_per_sample():
    assert retained(lognormal(N)) < 0.5 * N


def test_distinct_values_never_cost_more_than_the_raw_array_did():
    n, a = 250_000, 7_777_777  # a coprime to both spans: i * a % span is distinct for every i < span
    spread = array("d", ((100_000 + i * a % 59_900_000 + 0.25) / 1000 for i in range(n)))
    consecutive = array("d", ((i * a % n + 0.25) / 1000 for i in range(n)))
    assert retained(spread) < 8 * n
    assert retained(consecutive) < 1.5 * n


def test_a_delta_is_as_long_as_the_distinct_values():
    worker = MetricStore()
    worker.add_trend("http_req_duration", 1.0, OK)
    worker.take_delta()  # from here on, deltas carry only what is new
    for value in lognormal(N):
        worker.add_trend("http_req_duration", round(value, 1), OK)  # 0.1 ms steps: few distinct
    delta = worker.take_delta()
    [[*_, micros, counts]] = delta["trend"]
    assert sum(counts) == N and len(micros) == len(set(micros)) < 3000
    assert len(msgpack.packb(delta)) < N  # under 1 byte per sample (raw floats: 9 each)


def test_the_shipped_thresholds_are_evaluated_fast():
    store = store_of(lognormal(N))
    thresholds = parse_thresholds(SHIPPED)
    evaluate(thresholds, store, 300.0)  # counts the pending samples
    start = time.perf_counter()
    results = evaluate(thresholds, store, 300.0)
    assert time.perf_counter() - start < 0.2
    assert [r.ok for r in results] == [True, True]
