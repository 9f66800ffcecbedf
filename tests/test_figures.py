"""Figures for people: the one unit table the report, the web UI and the pages' charts format by."""

from __future__ import annotations

import math

import pytest

from certctl_load.k6.metrics import MetricStore
from certctl_load.k6.thresholds import evaluate, parse_thresholds
from certctl_load.reporting.figures import NO_VALUE, UNITS, format_duration, format_figure, units_json
from certctl_load.reporting.verdict_table import measured_figure


@pytest.mark.parametrize(
    ("value", "unit", "shown"),
    [
        (5.731792119991037, "ms", "5.73 ms"),
        (0.0, "percent", "0.00 %"),
        (0.001, "percent", "0.10 %"),
        (1.0, "percent", "100.00 %"),
        (166.66666666666666, "rate", "166.67 /s"),
        (1000.0, "count", "1000"),
        (3.0, "count", "3"),
        (0.0774531364440918, "seconds", "0.08 s"),
        (4.2137517259658885, "cpu", "4 % of a core"),
        (2.5, "number", "2.50"),
        (None, "ms", NO_VALUE),
        (math.nan, "percent", NO_VALUE),
    ],
)
def test_each_unit_shows_its_figure(value, unit, shown):
    assert format_figure(value, unit) == shown


def test_an_unknown_unit_is_a_programming_error():
    with pytest.raises(KeyError):
        format_figure(1.0, "furlongs")


def test_durations_are_written_as_configured():
    assert [format_duration(s) for s in (30.0, 0.5, 90, 1.25)] == ["30 s", "0.5 s", "90 s", "1.25 s"]


def test_the_pages_get_the_same_table():
    table = units_json()
    assert set(table) == set(UNITS)
    assert table["percent"] == {"decimals": 2, "suffix": " %", "scale": 100.0}
    assert table["ms"] == {"decimals": 2, "suffix": " ms", "scale": 1.0}


def test_measured_thresholds_read_in_their_metrics_units():
    store = MetricStore()
    tags = {"scenario": "s"}
    for ms in (1.0, 2.0, 3.0):
        store.add_trend("http_req_duration", ms, tags)
        store.add_rate("http_req_failed", ms == 3.0, tags)
        store.add_counter("http_reqs", 1, tags)
    spec = {
        "http_req_duration": ["p(95)<500"],
        "http_req_failed": ["rate<0.5"],
        "http_reqs": ["count>1", "rate>0"],
        "iterations": ["count>0"],
    }
    results = evaluate(parse_thresholds(spec), store, 2.0)
    assert [measured_figure(result) for result in results] == [
        "2.90 ms",
        "33.33 %",
        "3",
        "1.50 /s",
        "0",
    ]
