"""jslib textSummary's layout and number formatting, and the verdict table printed after it."""

import re
from pathlib import Path

import pytest

from certctl_load.k6.metrics import MetricStore
from certctl_load.k6.thresholds import evaluate, parse_thresholds
from certctl_load.reporting.summary import CheckCount, build_summary
from certctl_load.reporting.text_summary import (
    humanize_bytes,
    humanize_duration,
    humanize_value,
    js_string,
    js_to_fixed,
    render_text_summary,
)
from certctl_load.reporting.verdict_table import render_verdict_table

# shared/ lies beside the checkout (../shared/reference); the check is skipped where it does not.
PARITY = Path(__file__).resolve().parents[2] / "shared" / "reference" / "k6-parity.md"
STATS = ["avg", "min", "med", "p(95)", "p(99)", "max"]
# The sample's lines, as in k6-parity.md (there indented by 4 more spaces for Markdown).
COLS = "avg=412.18µs min=229.54µs med=344.09µs p(95)=682.17µs p(99)=1.48ms   max=9.98ms"
SAMPLE = [
    "     http_req_duration..............: " + COLS,
    "     ✓ { scenario:agent_storm }.....: " + COLS,
    "     http_req_failed................: 0.00%   ✓ 0         ✗ 3341",
    "     ✓ { scenario:agent_storm }.....: 0.00%   ✓ 0         ✗ 3341",
    "     http_reqs......................: 3341    167.04125/s",
]
DURATION = {"avg": 0.41218, "min": 0.22954, "med": 0.34409, "p(95)": 0.68217, "p(99)": 1.48901, "max": 9.988}
FAILED = {"rate": 0, "passes": 0, "fails": 3341}


def trend(values, thresholds=None):
    metric = {"type": "trend", "contains": "time", "values": values}
    return {**metric, "thresholds": thresholds} if thresholds else metric


def sample_data():
    """The sample run's numbers, plus the metrics the trimmed sample left out that set its widths."""
    return {
        "root_group": {
            "name": "",
            "path": "",
            "id": "",
            "groups": [],
            "checks": [{"name": "heartbeat 2xx", "passes": 3341, "fails": 0}],
        },
        "options": {"summaryTrendStats": STATS, "summaryTimeUnit": "", "noColor": False},
        "state": {},
        "metrics": {
            "http_reqs": {
                "type": "counter",
                "contains": "default",
                "values": {"count": 3341, "rate": 167.04125},
            },
            "http_req_duration": trend(DURATION),
            "http_req_duration{scenario:agent_storm}": trend(
                DURATION, {"p(99)<1000": {"ok": True}, "p(95)<500": {"ok": True}}
            ),
            "http_req_duration{expected_response:true}": trend(DURATION),
            "http_req_failed": {"type": "rate", "contains": "default", "values": FAILED},
            "http_req_failed{scenario:agent_storm}": {
                "type": "rate",
                "contains": "default",
                "values": FAILED,
                "thresholds": {"rate<0.001": {"ok": True}},
            },
            "checks": {
                "type": "rate",
                "contains": "default",
                "values": {"rate": 1, "passes": 3341, "fails": 0},
            },
            "data_received": {
                "type": "counter",
                "contains": "data",
                "values": {"count": 1102530, "rate": 55126.5},
            },
            "http_req_connecting": trend(
                {"avg": 0.0102, "min": 0, "med": 0, "p(95)": 0, "p(99)": 0.17375, "max": 1.2}
            ),
            "vus": {"type": "gauge", "contains": "default", "values": {"value": 1, "min": 0, "max": 3}},
        },
    }


def rendered_lines(data, **kwargs):
    return [line.rstrip() for line in render_text_summary(data, **kwargs).split("\n")]


def test_the_sample_in_the_parity_notes_is_what_this_module_prints():
    if PARITY.is_file():  # the notes' own copy of the sample, to catch a drift between the two
        text = PARITY.read_text(encoding="utf-8")
        notes = [line[4:] for line in text.splitlines() if line.startswith("         ") and "....:" in line]
        assert notes == SAMPLE
    lines = rendered_lines(sample_data())
    shown = [line for line in lines if line in SAMPLE]
    assert shown == SAMPLE


def test_the_whole_layout():
    assert rendered_lines(sample_data()) == [
        "     ✓ heartbeat 2xx",
        "",
        "     checks.........................: 100.00% ✓ 3341      ✗ 0",
        "     data_received..................: 1.1 MB  55 kB/s",
        "     http_req_connecting............: "
        "avg=10.2µs   min=0s       med=0s       p(95)=0s       p(99)=173.75µs max=1.2ms",
        SAMPLE[0],
        "       { expected_response:true }...: " + COLS,
        *SAMPLE[1:],
        "     vus............................: 1       min=0       max=3",
    ]


def test_failed_checks_and_thresholds_are_crossed():
    data = sample_data()
    data["root_group"]["checks"] = [{"name": "heartbeat 2xx", "passes": 3300, "fails": 41}]
    data["metrics"]["http_req_failed{scenario:agent_storm}"]["thresholds"] = {"rate<0.001": {"ok": False}}
    data["metrics"]["http_req_duration{scenario:agent_storm}"]["thresholds"]["p(95)<500"] = {"ok": False}
    lines = rendered_lines(data)
    assert lines[:3] == ["     ✗ heartbeat 2xx", "      ↳  98% — ✓ 3300 / ✗ 41", ""]
    assert sum(line.startswith("     ✗ { scenario:agent_storm }") for line in lines) == 2


def test_colors_wrap_values_without_changing_the_layout():
    plain = render_text_summary(sample_data())
    colored = render_text_summary(sample_data(), colors=True)
    assert "\x1b[36m412.18µs\x1b[0m" in colored
    assert "\x1b[32m✓\x1b[0m { scenario:agent_storm }" in colored
    assert re.sub(r"\x1b\[[0-9;]*m", "", colored) == plain


def test_indent_and_groups():
    data = sample_data()
    data["root_group"]["groups"] = [
        {"name": "fleet", "groups": [], "checks": [{"name": "nested", "passes": 1, "fails": 0}]}
    ]
    lines = render_text_summary(data, indent="→").split("\n")
    assert lines[:6] == ["→    ✓ heartbeat 2xx", "", "→    █ fleet", "", "→      ✓ nested", ""]
    assert lines[6].startswith("→    checks....")


@pytest.mark.parametrize(
    ("ms", "text"),
    [
        (0, "0s"),
        (0.0005, "500ns"),
        (0.41218, "412.18µs"),
        (0.229549, "229.54µs"),
        (1.48901, "1.48ms"),
        (9.988, "9.98ms"),
        (999.999, "999.99ms"),
        (1000, "1s"),
        (1500, "1.5s"),
        (59999, "59.99s"),
        (60000, "1m0s"),
        (61500, "1m1s"),
        (3_600_000, "1h0m0s"),
        (90_061_000, "25h1m1s"),
    ],
)
def test_durations_in_the_largest_fitting_unit(ms, text):
    assert humanize_duration(ms) == text


def test_a_fixed_time_unit():
    assert humanize_duration(1.48901, "ms") == "1.49ms"
    assert humanize_duration(1.48901, "us") == "1489.01µs"
    assert humanize_duration(1489.01, "s") == "1.49s"


@pytest.mark.parametrize(
    ("count", "text"),
    [
        (0, "0 B"),
        (5, "5 B"),
        (999, "999 B"),
        (1000, "1.0 kB"),
        (55126.5, "55 kB"),
        (1102530, "1.1 MB"),
        (999960, "1000 kB"),
        (12_345_678_901, "12 GB"),
    ],
)
def test_bytes(count, text):
    assert humanize_bytes(count) == text


def test_rates_are_truncated_and_plain_numbers_keep_six_decimals():
    rate = {"type": "rate", "contains": "default"}
    counter = {"type": "counter", "contains": "default"}
    assert humanize_value(0.99999, rate) == "99.99%"
    assert humanize_value(0.000299, rate) == "0.02%"
    assert humanize_value(1, rate) == "100.00%"
    assert humanize_value(167.04125, counter) == "167.04125"
    assert humanize_value(1 / 3, counter) == "0.333333"
    assert humanize_value(3341, counter) == "3341"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0, "0"),
        (-0.0, "0"),
        (3341.0, "3341"),
        (0.1, "0.1"),
        (1e21, "1e+21"),
        (1.5e-7, "1.5e-7"),
        (0.000001, "0.000001"),
        (123456789012345680000, "123456789012345680000"),
        (-2.5, "-2.5"),
    ],
)
def test_javascript_number_strings(value, text):
    assert js_string(value) == text


@pytest.mark.parametrize(
    ("value", "places", "text"),
    [
        (0.125, 2, "0.13"),
        (1.005, 2, "1.00"),
        (2.5, 0, "3"),
        (-2.5, 0, "-3"),
        (-0.0, 2, "0.00"),
        (1e21, 2, "1e+21"),
    ],
)
def test_javascript_to_fixed(value, places, text):
    assert js_to_fixed(value, places) == text


def test_a_summary_built_from_a_store_renders():
    store = MetricStore()
    tags = {"scenario": "agent_storm", "status": "200", "expected_response": "true"}
    for value in (0.3, 0.4, 250.0):
        store.add_trend("http_req_duration", value, tags)
        store.add_rate("http_req_failed", False, tags)
        store.add_counter("http_reqs", 1, tags)
    results = evaluate(
        parse_thresholds({"http_req_duration{scenario:agent_storm}": ["p(95)<100"]}), store, 2.0
    )
    data = build_summary(
        store, results, trend_stats=STATS, duration_ms=2000.0, checks=[CheckCount("c", 3, 0)]
    )
    lines = rendered_lines(data)
    assert lines[0] == "     ✓ c"
    cols = "avg=83.56ms min=300µs med=400µs p(95)=225.03ms p(99)=245ms max=250ms"
    assert lines[2:] == [
        "     http_req_duration..............: " + cols,
        "       { expected_response:true }...: " + cols,
        "     ✗ { scenario:agent_storm }.....: " + cols,
        "     http_req_failed................: 0.00% ✓ 0   ✗ 3",
        "     http_reqs......................: 3     1.5/s",
    ]


# Verdict table ---------------------------------------------------------------------------------


def results_for(spec, store, duration_s=10.0):
    return evaluate(parse_thresholds(spec), store, duration_s)


def test_a_passing_verdict():
    store = MetricStore()
    for value in (0.25, 0.5, 1.489):
        store.add_trend("http_req_duration", value, {"scenario": "agent_storm"})
        store.add_rate("http_req_failed", False, {"scenario": "agent_storm"})
    spec = {
        "http_req_duration{scenario:agent_storm}": ["p(99)<1000", "p(95)<500"],
        "http_req_failed{scenario:agent_storm}": ["rate<0.001"],
        "http_reqs": ["rate<=0", "count==0"],
    }
    assert render_verdict_table(results_for(spec, store)).split("\n") == [
        "threshold                                expression  measured  verdict",
        "http_req_duration{scenario:agent_storm}  p(99)<1000  1.469ms   PASS",
        "http_req_duration{scenario:agent_storm}  p(95)<500   1.390ms   PASS",
        "http_req_failed{scenario:agent_storm}    rate<0.001  0         PASS",
        "http_reqs                                rate<=0     0/s       PASS",
        "http_reqs                                count==0    0         PASS",
        "all 5 thresholds passed",
    ]


def test_a_failing_verdict_uses_k6s_wording():
    store = MetricStore()
    store.add_trend("http_req_duration", 506.25, {"scenario": "agent_storm"})
    store.set_gauge("vus", 5, {})
    spec = {
        "vus": ["value<5"],
        "http_req_duration{scenario:agent_storm}": ["p(95)<500"],
        "http_req_failed": ["rate<0.001"],
    }
    lines = render_verdict_table(results_for(spec, store)).split("\n")
    assert lines[1:] == [
        "vus                                      value<5     5           FAIL",
        "http_req_duration{scenario:agent_storm}  p(95)<500   506.250ms   FAIL",
        "http_req_failed                          rate<0.001  no samples  PASS",
        "thresholds on metrics 'http_req_duration{scenario:agent_storm}, vus' have been crossed",
    ]


def test_one_or_no_thresholds():
    store = MetricStore()
    assert render_verdict_table(results_for({"http_req_failed": ["rate<0.001"]}, store)).endswith(
        "the 1 threshold passed"
    )
    assert render_verdict_table([]) == "thresholds: none defined"
