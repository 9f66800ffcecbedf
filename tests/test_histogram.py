"""Trend samples at microsecond resolution: exact percentiles, raw min/max/sum, exact merges, page layout."""

import json
import math
import random
from array import array
from collections import Counter

import msgpack
import numpy
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from certctl_load.k6 import metrics
from certctl_load.k6.histogram import PAGE, Histogram, sum_parts, values_at, widened
from certctl_load.k6.metrics import TREND_BATCH, MetricStore
from certctl_load.k6.percentiles import percentile

OK = {"scenario": "agent_storm", "name": "heartbeat", "status": "200", "expected_response": "true"}
FAILED = {"scenario": "agent_storm", "name": "heartbeat", "status": "503", "expected_response": "false"}
OTHER = {"scenario": "other", "name": "heartbeat", "status": "200", "expected_response": "true"}
TAG_SETS = [OK, FAILED, OTHER]
PERCENTS = [0, 0.1, 1, 25, 50, 90, 95, 99, 99.9, 99.99, 100]

durations = st.floats(min_value=0, max_value=60_000, allow_nan=False)
# Heavy tails: most samples a few ms, some far out (up to a 60 s timeout), plus exact repeats.
heavy_tailed = st.lists(
    st.one_of(
        st.floats(min_value=0.05, max_value=20, allow_nan=False),
        st.floats(min_value=20, max_value=60_000, allow_nan=False),
        st.sampled_from([0.0, 0.001, 0.0005, 0.0015, 3.0, 496.0, 504.0, 59_999.9995]),
    ),
    max_size=300,
)
sample_sets = st.one_of(st.just([]), st.lists(durations, min_size=1, max_size=1), heavy_tailed)
percent = st.floats(min_value=0, max_value=100, allow_nan=False)


def store_of(values, tag_choices=None):
    store = MetricStore()
    for i, value in enumerate(values):
        tags = TAG_SETS[tag_choices[i] % 3] if tag_choices else OK
        store.add_trend("http_req_duration", value, tags)
    return store


def micros(values):
    """The samples as the store counts them: whole microseconds."""
    return sorted(round(value * 1000) for value in values)


def bits(values):
    return [float(value).hex() for value in values]


@settings(max_examples=300, deadline=None)
@given(sample_sets, st.lists(percent, max_size=5), st.lists(st.integers(0, 2), min_size=300, max_size=300))
def test_percentiles_are_type_7_over_the_microseconds_and_the_rest_is_raw(values, extra, tag_choices):
    store = store_of(values, tag_choices)
    aggregate = store.select("http_req_duration", {})
    ps = PERCENTS + extra
    us = micros(values)
    got = aggregate.percentiles(ps)
    assert got == [percentile(us, p) / 1000 for p in ps]
    assert got == [aggregate.percentile(p) for p in ps]
    if us:
        expected = [float(numpy.percentile(us, p, method="linear")) / 1000 for p in ps]
        assert got == pytest.approx(expected, rel=1e-12, abs=1e-12 * max(us[-1], 1) / 1000)
    assert aggregate.samples == len(values)
    assert aggregate.total == math.fsum(values)  # bit for bit: math.fsum of the raw values
    assert (aggregate.min, aggregate.max) == ((min(values), max(values)) if values else (0.0, 0.0))
    assert aggregate.avg == (math.fsum(values) / len(values) if values else 0.0)


@settings(max_examples=100, deadline=None)
@given(sample_sets, st.lists(st.integers(0, 2), min_size=300, max_size=300))
def test_a_selector_takes_the_samples_of_every_matching_series(values, tag_choices):
    store = store_of(values, tag_choices)
    for selector, tag_sets in [
        ({"scenario": "agent_storm"}, (0, 1)),
        ({"expected_response": "true"}, (0, 2)),
        ({"status": "503"}, (1,)),
        ({"status": "404"}, ()),
    ]:
        chosen = [v for i, v in enumerate(values) if tag_choices[i] % 3 in tag_sets]
        aggregate = store.select("http_req_duration", selector)
        assert aggregate.samples == len(chosen)
        assert aggregate.total == math.fsum(chosen)
        assert aggregate.percentiles(PERCENTS) == [percentile(micros(chosen), p) / 1000 for p in PERCENTS]


def test_every_stat_of_a_selection_follows_k6():
    store = store_of([3.0, 1.0, 9.0, 2.0, 0.0004])
    stats = store.select("http_req_duration", {}).stats(["count", "avg", "min", "med", "p(75)", "max"])
    assert stats == {"count": 5, "avg": 15.0004 / 5, "min": 0.0004, "med": 2.0, "p(75)": 3.0, "max": 9.0}
    assert MetricStore().select("http_req_duration", {}).stats(["avg", "min", "med", "p(99)", "count"]) == {
        "avg": 0.0,
        "min": 0.0,
        "med": 0.0,
        "p(99)": 0.0,
        "count": 0,
    }


def test_a_verdict_differs_from_raw_floats_only_within_a_microsecond_of_the_limit():
    for p95_ms, ok in [(496.0, True), (504.0, False), (499.9994, True), (500.0004, False), (499.9996, False)]:
        store = store_of([1.0] * 90 + [p95_ms] * 10)  # ranks 94 and 95: p95_ms
        (p95,) = store.select("http_req_duration", {}).percentiles([95])
        assert (p95 < 500) == ok, p95_ms


def test_a_selection_is_a_view_read_before_more_samples_are_counted():
    store = store_of([1.0])
    aggregate = store.select("http_req_duration", {})
    for _ in range(TREND_BATCH):
        store.add_trend("http_req_duration", 2.0, OK)
    with pytest.raises(RuntimeError, match="select again"):
        aggregate.percentile(50)
    assert store.select("http_req_duration", {}).percentile(50) == 2.0


def test_a_sample_that_is_not_a_finite_duration_is_a_value_error_and_the_others_count():
    store = MetricStore()
    for value in (1.0, math.nan, 2.0, math.inf, 1e306):
        store.add_trend("http_req_duration", value, OK)
    with pytest.raises(ValueError, match="sample nan ms is not a finite duration"):
        store.select("http_req_duration", {})
    aggregate = store.select("http_req_duration", {})
    assert (aggregate.samples, aggregate.total, aggregate.percentile(100)) == (2, 3.0, 2.0)


# Exact merges ----------------------------------------------------------------------------------


def snapshot(store):
    """Everything a store knows about its trends, as bits: per series and per selection."""
    result = {}
    for selector in [{}, {"scenario": "agent_storm"}, {"expected_response": "true"}, {"status": "503"}]:
        aggregate = store.select("http_req_duration", selector)
        result[tuple(selector.items())] = (
            aggregate.samples,
            bits([aggregate.total, aggregate.min, aggregate.max, *aggregate.percentiles(PERCENTS)]),
        )
    for tags in TAG_SETS:
        (histogram,) = store.select("http_req_duration", tags).histograms or (Histogram(),)
        result[tuple(tags.items())] = (
            histogram.count,
            bits([histogram.low, histogram.high, *histogram.parts]),
            list(histogram.items()),
        )
    return result


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(st.one_of(durations, st.floats(0.0, 5.0)), st.integers(0, 2), st.integers(0, 3)),
        max_size=400,
    ),
    st.sampled_from([json, msgpack]),
)
def test_a_store_merged_from_workers_equals_one_store_bit_for_bit(steps, wire):
    """Each step: a sample, its tag set, and the worker that takes it (3: that worker reports first)."""
    single, workers, master = MetricStore(), [MetricStore() for _ in range(3)], MetricStore()
    for value, tags, worker in steps:
        single.add_trend("http_req_duration", value, TAG_SETS[tags])
        workers[worker % 3].add_trend("http_req_duration", value, TAG_SETS[tags])
        if worker == 3:  # a report mid-run, through the wire format
            master.merge(wire.loads(wire.dumps(workers[0].take_delta())))
    for worker in workers:
        master.merge(wire.loads(wire.dumps(worker.take_delta())))
        assert worker.take_delta() == {"trend": [], "rate": [], "counter": [], "gauge": []}
    assert snapshot(master) == snapshot(single)
    assert snapshot(workers[0]) == snapshot(store_of_steps(steps, 0))


def store_of_steps(steps, worker):
    store = MetricStore()
    for value, tags, w in steps:
        if w % 3 == worker:
            store.add_trend("http_req_duration", value, TAG_SETS[tags])
    return store


def test_a_delta_carries_only_what_is_new_and_as_many_values_as_are_distinct():
    worker, master = MetricStore(), MetricStore()
    for i in range(100_000):
        worker.add_trend("http_req_duration", (2.0, 3.0, 3.0001, 600.0)[i % 4], OK)
    [[name, tags, count, low, high, parts, us, counts]] = worker.take_delta()["trend"]
    assert (name, tags) == ("http_req_duration", sorted([list(p) for p in OK.items()]))
    assert (count, low, high, parts) == (100_000, 2.0, 600.0, sum_parts([2.0, 3.0, 3.0001, 600.0] * 25_000))
    assert (us, counts) == ([2000, 3000, 600_000], [25_000, 50_000, 25_000])  # 3.0001 ms counts at 3000 µs
    worker.add_trend("http_req_duration", 7.0, OK)
    [[*_, second_us, second_counts]] = worker.take_delta()["trend"]
    assert (second_us, second_counts) == ([7000], [1])
    master.merge(json.loads(json.dumps({"trend": [[name, tags, count, low, high, parts, us, counts]]})))
    master.merge({"trend": [["http_req_duration", tags, 1, 7.0, 7.0, [7.0], [7000], [1]]]})
    aggregate = master.select("http_req_duration", {})
    assert (aggregate.samples, aggregate.max, aggregate.percentile(100)) == (100_001, 600.0, 600.0)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(min_value=-1e300, max_value=1e300, allow_nan=False), max_size=60), st.randoms())
def test_sum_parts_depend_only_on_the_exact_sum(values, rng):
    parts = sum_parts(values)
    assert math.fsum(parts) == math.fsum(values)
    shuffled = values[:]
    rng.shuffle(shuffled)
    cut = rng.randint(0, len(values))
    assert sum_parts(sum_parts(shuffled[:cut]) + sum_parts(shuffled[cut:])) == parts


# Page layout -----------------------------------------------------------------------------------


def expanded(histogram):
    return [us for us, n in histogram.items() for _ in range(n)]


def test_a_page_turns_dense_past_a_dense_pages_size_in_entries_and_widens_its_counters_as_they_grow():
    histogram = Histogram()
    entries = PAGE // 4  # 4 bytes each: as large as a dense page of bytes
    histogram.add(((us, 1) for us in range(0, 2 * entries, 2)), entries, 0.0, 1.0, [1.0])
    assert (list(histogram.dense), list(histogram.sparse)) == ([], [0])
    histogram.add([(1, 300)], 300, 0.001, 0.001, [0.3])
    assert (list(histogram.dense), histogram.dense[0].typecode) == ([0], "H")
    histogram.add([(1, 70_000), (PAGE + 5, 2**21)], 70_000 + 2**21, 0.001, 1.0, [70.0, 8600.0])
    assert (histogram.dense[0].typecode, histogram.dense[1].typecode) == ("I", "I")
    assert list(histogram.items())[:2] == [(0, 1), (1, 70_300)]
    assert histogram.page_count(0) == entries + 70_300 and histogram.page_count(1) == 2**21
    us = expanded(histogram)
    ranks = [0, 1, 70_301, len(us) - 1]
    assert values_at([histogram], ranks) == [us[r] for r in ranks]


def test_a_sparse_page_merges_what_batches_appended():
    histogram = Histogram()
    for _ in range(3):
        histogram.add([(7, 2), (PAGE + 3, 1), (5, 1)], 4, 0.0, 1.0, [])
    assert list(histogram.sparse) == [0, 1] and list(histogram.sparse[0]) == [
        9,
        *[7 << 18 | 2, 5 << 18 | 1] * 3,
    ]
    assert list(histogram.items()) == [(5, 3), (7, 6), (PAGE + 3, 3)]
    assert histogram.page_count(0) == 9
    assert values_at([histogram], [0, 2, 3, 8, 9, 11]) == [5, 5, 7, 7, PAGE + 3, PAGE + 3]


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.tuples(st.integers(-3 * PAGE, 40 * PAGE), st.integers(1, 300)), max_size=200),
    st.lists(st.tuples(st.integers(-3 * PAGE, 40 * PAGE), st.integers(1, 300)), max_size=200),
)
def test_counts_and_ranks_are_exact_whatever_the_layout(first, second):
    a, b = Histogram(), Histogram()
    a.add(first, sum(n for _, n in first), 0.0, 0.0, [])
    b.add(second, sum(n for _, n in second), 0.0, 0.0, [])
    expected = Counter()
    for us, n in first + second:
        expected[us] += n
    merged = Histogram()
    for part in (a, b):
        if part.count:
            merged.add_wire(json.loads(json.dumps(part.to_wire())))
    assert list(merged.items()) == sorted(expected.items())
    us = sorted(expected.elements())
    ranks = sorted(random.Random(len(us)).choices(range(len(us)), k=5)) if us else []
    assert values_at([a, b], ranks) == values_at([merged], ranks) == [us[r] for r in ranks]


def test_a_widened_page_keeps_every_counter_exactly():
    page = array("B", (offset % 256 for offset in range(PAGE)))
    for typecode in "HIQ":
        counters = list(page)
        page = widened(page)
        assert (page.typecode, list(page)) == (typecode, counters)
        page[7] = 2 ** (8 * page.itemsize) - 1  # the largest counter of this width survives the next
    assert page[7] == 2**64 - 1


def test_dense_pages_hold_at_most_a_byte_per_microsecond_until_a_counter_passes_255():
    histogram = Histogram()
    histogram.add(((us, 1) for us in range(3 * PAGE)), 3 * PAGE, 0.0, 12.287, [])
    assert histogram.sparse == {} and [page.typecode for page in histogram.dense.values()] == ["B"] * 3
    assert [page.itemsize * len(page) for page in histogram.dense.values()] == [PAGE] * 3


def test_merging_is_exact_across_many_batches_and_reports():
    rng = random.Random(11)
    single, workers, master = MetricStore(), [MetricStore() for _ in range(3)], MetricStore()
    for i in range(100 * TREND_BATCH):
        value = rng.lognormvariate(math.log(3), 1) if rng.random() < 0.99 else rng.uniform(100, 60_000)
        tags = TAG_SETS[rng.randrange(3)]
        single.add_trend("http_req_duration", value, tags)
        workers[i % 3].add_trend("http_req_duration", value, tags)
        if rng.random() < 1 / 1000:
            worker = rng.choice(workers)
            master.merge(msgpack.unpackb(msgpack.packb(worker.take_delta())))
    for worker in workers:
        master.merge(msgpack.unpackb(msgpack.packb(worker.take_delta())))
    assert snapshot(master) == snapshot(single)


def test_the_batch_a_fold_takes_changes_nothing_a_store_reports(monkeypatch):
    rng = random.Random(5)
    values = [rng.lognormvariate(math.log(3), 1) for _ in range(60_000)] + [rng.uniform(100, 60_000)]
    stores = []
    for batch in (16384, 512, 7):
        monkeypatch.setattr(metrics, "TREND_BATCH", batch)
        store = MetricStore()
        for value in values:
            store.add_trend("http_req_duration", value, OK)
        stores.append(snapshot(store))
    assert stores[0] == stores[1] == stores[2]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.floats(min_value=5e-324, max_value=1e300), min_size=1, max_size=60))
def test_a_grain_only_skips_the_pass_that_finds_nothing_left(values):
    assert sum_parts(values, math.ulp(min(values))) == sum_parts(values)
