"""Exact trend statistics: k6's type-7 percentiles, checked against numpy and literal values."""

import math

import numpy
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from certctl_load.errors import ConfigError
from certctl_load.k6.percentiles import parse_percentile_stat, percentile, trend_stat, trend_stats

finite = st.floats(min_value=-1e9, max_value=1e9, allow_nan=False, allow_infinity=False)
percent = st.floats(min_value=0, max_value=100, allow_nan=False)


@pytest.mark.parametrize(
    ("values", "p", "expected"),
    [
        ([], 50, 0.0),
        ([], 99.9, 0.0),
        ([7.5], 0, 7.5),
        ([7.5], 99, 7.5),
        ([1.0, 2.0, 3.0, 4.0], 50, 2.5),
        ([1.0, 2.0, 3.0, 4.0], 0, 1.0),
        ([1.0, 2.0, 3.0, 4.0], 100, 4.0),
        ([1.0, 2.0, 3.0, 4.0], 25, 1.75),
        ([float(v) for v in range(1, 101)], 95, 95.05),
        ([float(v) for v in range(1, 101)], 99, 99.01),
        ([float(v) for v in range(1, 1001)], 99.9, 999.001),
        ([10.0, 10.0, 10.0, 500.0], 95, 426.5),
    ],
)
def test_literal_percentiles(values, p, expected):
    assert percentile(values, p) == pytest.approx(expected, rel=1e-14, abs=0)


def test_the_formula_is_k6s_step_by_step():
    values = [0.229, 0.344, 0.412, 0.682, 1.489, 9.988]
    i = 95 / 100 * (len(values) - 1)  # 4.75
    expected = values[4] + (values[5] - values[4]) * (i - 4)
    assert percentile(values, 95) == expected


@settings(max_examples=300, deadline=None)
@given(st.lists(finite, min_size=1, max_size=200), percent)
def test_percentile_matches_numpy_linear(values, p):
    values.sort()
    expected = float(numpy.percentile(values, p, method="linear"))
    scale = max(abs(values[0]), abs(values[-1]), 1.0)
    assert percentile(values, p) == pytest.approx(expected, rel=1e-12, abs=1e-12 * scale)


@settings(max_examples=200, deadline=None)
@given(st.lists(finite, min_size=1, max_size=200), percent, percent)
def test_percentile_is_bounded_and_monotonic(values, p, q):
    values.sort()
    low, high = sorted((p, q))
    assert values[0] <= percentile(values, low) <= percentile(values, high) <= values[-1]


@settings(max_examples=200, deadline=None)
@given(st.lists(finite, min_size=2, max_size=200))
def test_ranks_that_fall_on_a_sample_return_it(values):
    values.sort()
    n = len(values)
    assert percentile(values, 0) == values[0]
    assert percentile(values, 100) == values[-1]
    middle = values[(n - 1) // 2]
    assert percentile(values, 50) == (middle if n % 2 else middle + (values[n // 2] - middle) * 0.5)


def test_out_of_range_percentile_is_a_value_error():
    with pytest.raises(ValueError):
        percentile([1.0], 100.5)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("p(95)", 95.0),
        ("p(99.9)", 99.9),
        ("p(0)", 0.0),
        ("p(100)", 100.0),
        ("p(100.0)", 100.0),
        ("p(.5)", 0.5),
        ("p(9.99e1)", 99.9),
    ],
)
def test_percentile_stat_names(text, expected):
    assert parse_percentile_stat(text) == expected


@pytest.mark.parametrize(
    "text",
    ["p(101)", "p(100.01)", "p(-1)", "p95", "p( 95)", "P(95)", "p()", "p(9 5)", "avg", "p(1e3)", "p(-0)"],
)
def test_not_percentile_stat_names(text):
    assert parse_percentile_stat(text) is None


def test_trend_stats_keeps_the_order_asked_and_is_exact():
    values = sorted([0.1] * 10 + [1e16, 1.0, -1e16])
    stats = trend_stats(values, ["max", "count", "avg", "min", "med", "p(99.9)", "p(0)"])
    assert list(stats) == ["max", "count", "avg", "min", "med", "p(99.9)", "p(0)"]
    assert stats["count"] == 13
    assert stats["avg"] == math.fsum(values) / 13 == 2.0 / 13  # fsum: no cancellation error
    assert (stats["min"], stats["max"], stats["p(0)"]) == (-1e16, 1e16, -1e16)
    assert stats["med"] == 0.1


def test_every_stat_of_no_samples_is_zero():
    assert trend_stats([], ["avg", "min", "med", "max", "p(95)", "count"]) == {
        "avg": 0.0,
        "min": 0.0,
        "med": 0.0,
        "max": 0.0,
        "p(95)": 0.0,
        "count": 0,
    }


@pytest.mark.parametrize("stat", ["p95", "mean", "p(101)", "P(95)", "", "p(95) "])
def test_unknown_stats_are_config_errors_naming_them(stat):
    with pytest.raises(ConfigError, match=repr(stat).replace("(", r"\(").replace(")", r"\)")):
        trend_stats([], ["avg", stat])
    with pytest.raises(ConfigError):
        trend_stat([1.0], stat)
