"""The metric registry and the sample store: selection, exact merging, cheap adds."""

import json
import math
import random
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from certctl_load.k6.metrics import (
    KNOWN_TAGS,
    METRICS,
    CounterAggregate,
    GaugeAggregate,
    MetricStore,
    RateAggregate,
    TrendAggregate,
)
from certctl_load.k6.percentiles import percentile

OK = {"scenario": "agent_storm", "name": "heartbeat", "status": "200", "expected_response": "true"}
FAILED = {"scenario": "agent_storm", "name": "heartbeat", "status": "503", "expected_response": "false"}
OTHER = {"scenario": "other", "name": "heartbeat", "status": "200", "expected_response": "true"}


def test_the_registry_matches_k6():
    types = {name: (d.type, d.contains) for name, d in METRICS.items()}
    assert types == {
        "http_req_duration": ("trend", "time"),
        "http_req_connecting": ("trend", "time"),
        "http_req_failed": ("rate", "default"),
        "http_reqs": ("counter", "default"),
        "iterations": ("counter", "default"),
        "dropped_iterations": ("counter", "default"),
        "late_iterations": ("counter", "default"),
        "checks": ("rate", "default"),
        "vus": ("gauge", "default"),
        "vus_max": ("gauge", "default"),
        "data_sent": ("counter", "data"),
        "data_received": ("counter", "data"),
        "generator_lag": ("trend", "time"),
        "generator_cpu": ("gauge", "default"),
        "generator_gc": ("trend", "time"),
    }
    assert set(KNOWN_TAGS) == {"scenario", "name", "method", "status", "expected_response", "check", "error"}


def test_a_selector_takes_every_series_containing_its_pairs():
    store = MetricStore()
    for value, tags in [(3.0, OK), (1.0, OK), (9.0, FAILED), (2.0, OTHER)]:
        store.add_trend("http_req_duration", value, tags)

    def trend(selector):
        aggregate = store.select("http_req_duration", selector)
        return aggregate.samples, aggregate.total, aggregate.percentiles([0, 50, 100])

    assert trend({}) == (4, 15.0, [1.0, 2.5, 9.0])
    assert trend({"scenario": "agent_storm"}) == (3, 13.0, [1.0, 3.0, 9.0])
    assert trend({"expected_response": "true"}) == (3, 6.0, [1.0, 2.0, 3.0])
    assert trend({"scenario": "agent_storm", "status": "503"}) == (1, 9.0, [9.0, 9.0, 9.0])
    assert trend({"status": "404"}) == (0, 0.0, [0.0, 0.0, 0.0])
    assert store.select("http_req_connecting", {}).samples == 0


def test_rates_count_nonzero_samples_as_passes_as_k6_does():
    store = MetricStore()
    for tags, failed in [(OK, False)] * 3 + [(FAILED, True)]:
        store.add_rate("http_req_failed", failed, tags)
    failed = store.select("http_req_failed", {"scenario": "agent_storm"})
    assert failed == RateAggregate(passes=1, fails=3)
    assert (failed.rate, failed.samples) == (0.25, 4)
    assert store.select("http_req_failed", {"scenario": "none"}).rate == 0.0


def test_counters_sum_and_gauges_keep_last_min_max():
    store = MetricStore()
    store.add_counter("data_sent", 120, OK)
    store.add_counter("data_sent", 80, FAILED)
    assert store.select("data_sent", {}) == CounterAggregate(count=200, samples=2)
    assert store.select("dropped_iterations", {}) == CounterAggregate(count=0, samples=0)
    for value in (5, 50, 20):
        store.set_gauge("vus", value, {})
    assert store.select("vus", {}) == GaugeAggregate(value=20, min=5, max=50, samples=3)
    assert store.select("vus_max", {}) == GaugeAggregate(0.0, 0.0, 0.0, 0)


def test_a_gauge_over_several_series_reports_the_value_set_last():
    store = MetricStore()
    store.set_gauge("vus", 7, {"scenario": "a"})
    store.set_gauge("vus", 3, {"scenario": "b"})
    store.set_gauge("vus", 9, {"scenario": "a"})
    assert store.select("vus", {}) == GaugeAggregate(value=9, min=3, max=9, samples=3)


def test_fast_paths_use_reusable_keys():
    store = MetricStore()
    key = store.series_key("http_req_duration", OK)
    assert store.series_key("http_req_duration", dict(reversed(OK.items()))) is key
    store.add_trend_key(key, 2.0)
    store.add_trend_key(key, 1.0)
    rate = store.series_key("checks", {"check": "heartbeat 2xx"})
    store.add_rate_key(rate, True)
    counter = store.series_key("http_reqs", OK)
    store.add_counter_key(counter, 1)
    gauge = store.series_key("vus", {})
    store.set_gauge_key(gauge, 4)
    assert store.select("http_req_duration", OK).percentiles([0, 100]) == [1.0, 2.0]
    assert store.select("checks", {}).passes == 1
    assert store.select("http_reqs", {}).count == 1
    assert store.select("vus", {}).value == 4


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda s: s.series_key("http_req_latency", {}), "unknown metric 'http_req_latency'"),
        (lambda s: s.add_trend("http_req_duration", 1.0, {"url": "/x"}), "unknown tag 'url'"),
        (lambda s: s.add_trend("http_reqs", 1.0, {}), "'http_reqs' is a counter, not a trend"),
        (lambda s: s.add_rate("vus", True, {}), "'vus' is a gauge, not a rate"),
        (lambda s: s.select("nope", {}), "unknown metric 'nope'"),
    ],
)
def test_programming_errors_are_value_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call(MetricStore())


def test_sorted_values_stay_right_as_samples_keep_arriving():
    store = MetricStore()
    rng = random.Random(7)
    everything = []
    for _ in range(5):
        batch = [rng.uniform(0, 100) for _ in range(rng.randrange(0, 50))]
        for value in batch:
            store.add_trend("http_req_duration", value, rng.choice([OK, FAILED, OTHER]))
        everything.extend(batch)
        aggregate = store.select("http_req_duration", {})
        assert (aggregate.samples, aggregate.total) == (len(everything), math.fsum(everything))
        micros = sorted(round(value * 1000) for value in everything)
        assert aggregate.percentiles([0, 50, 99, 100]) == [
            percentile(micros, p) / 1000 for p in (0, 50, 99, 100)
        ]


# A random run: (metric, tag set, value) operations; the same operations dealt to several stores
# and merged must give exactly what one store gives.
TAG_SETS = [OK, FAILED, OTHER, {}]
operation = st.one_of(
    st.tuples(st.just("http_req_duration"), st.sampled_from(TAG_SETS), st.floats(0, 60000, allow_nan=False)),
    st.tuples(st.just("http_req_failed"), st.sampled_from(TAG_SETS), st.booleans()),
    st.tuples(st.just("data_sent"), st.sampled_from(TAG_SETS), st.integers(0, 10_000)),
    st.tuples(st.just("vus"), st.sampled_from(TAG_SETS), st.integers(0, 5000)),
)


def apply(store, op):
    name, tags, value = op
    kind = METRICS[name].type
    if kind == "trend":
        store.add_trend(name, value, tags)
    elif kind == "rate":
        store.add_rate(name, value, tags)
    elif kind == "counter":
        store.add_counter(name, value, tags)
    else:
        store.set_gauge(name, value, tags)


def snapshot(store):
    selectors = [{}, {"scenario": "agent_storm"}, {"expected_response": "true"}, {"status": "503"}]
    result = {}
    for name in ("http_req_duration", "http_req_failed", "data_sent"):
        for selector in selectors:
            aggregate = store.select(name, selector)
            if isinstance(aggregate, TrendAggregate):
                aggregate = (
                    aggregate.samples,
                    aggregate.stats(["avg", "min", "max", "med", "p(95)", "p(99.9)"]),
                )
            result[name, tuple(selector.items())] = aggregate
    gauge = store.select("vus", {})
    result["vus"] = (gauge.min, gauge.max, gauge.samples)
    return result


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(operation, st.integers(0, 2), st.booleans()), max_size=120))
def test_merged_deltas_equal_one_store_exactly(steps):
    single, workers, master = MetricStore(), [MetricStore() for _ in range(3)], MetricStore()
    for op, worker, flush in steps:
        apply(single, op)
        apply(workers[worker], op)
        if flush:  # a report goes out mid-run, through JSON as it would on the wire
            master.merge(json.loads(json.dumps(workers[worker].take_delta())))
    for worker in workers:
        master.merge(json.loads(json.dumps(worker.take_delta())))
        assert worker.take_delta() == {"trend": [], "rate": [], "counter": [], "gauge": []}
    assert snapshot(master) == snapshot(single)


def test_a_delta_carries_only_what_is_new_and_merging_it_is_exact():
    worker, master = MetricStore(), MetricStore()
    worker.add_trend("http_req_duration", 5.0, OK)
    worker.add_rate("http_req_failed", False, OK)
    worker.add_counter("http_reqs", 1, OK)
    worker.set_gauge("vus_max", 50, {})
    first = worker.take_delta()
    # [name, tags, count, min, max, sum parts, microseconds, their counts]
    assert first["trend"] == [
        ["http_req_duration", sorted([list(p) for p in OK.items()]), 1, 5.0, 5.0, [5.0], [5000], [1]]
    ]
    assert first["gauge"] == [["vus_max", [], 50, 50, 50, 1]]
    worker.add_trend("http_req_duration", 7.0, OK)
    worker.set_gauge("vus_max", 40, {})
    second = worker.take_delta()
    assert second["trend"][0][2:] == [1, 7.0, 7.0, [7.0], [7000], [1]]
    assert second["rate"] == [] and second["counter"] == []
    assert second["gauge"] == [["vus_max", [], 40, 40, 40, 1]]
    master.merge(first)
    master.merge(second)
    assert master.select("http_req_duration", {}).stats(["count", "min", "max"]) == {
        "count": 2,
        "min": 5.0,
        "max": 7.0,
    }
    assert master.select("vus_max", {}) == GaugeAggregate(value=40, min=40, max=50, samples=2)
    assert master.select("http_reqs", {}).count == 1


def test_adding_a_trend_sample_by_key_is_cheap():
    store = MetricStore()
    key = store.series_key("http_req_duration", OK)
    values = [random.random() for _ in range(200_000)]
    add = store.add_trend_key
    start = time.perf_counter()
    for value in values:
        add(key, value)
    per_add = (time.perf_counter() - start) / len(values)
    assert per_add < 5e-6
