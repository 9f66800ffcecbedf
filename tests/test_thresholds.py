"""k6's threshold grammar, validation and evaluation; and the duration parser its object form uses."""

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from certctl_load.errors import ConfigError
from certctl_load.k6.durations import parse_duration_seconds
from certctl_load.k6.metrics import METRICS, MetricStore
from certctl_load.k6.thresholds import (
    METHODS,
    OPERATORS,
    Expression,
    crossed_metrics,
    evaluate,
    parse_expression,
    parse_metric_key,
    parse_thresholds,
)

AGENT_STORM = {"scenario": "agent_storm", "status": "200", "expected_response": "true", "name": "heartbeat"}
METHOD_TEXTS = {
    "avg": "avg",
    "min": "min",
    "max": "max",
    "med": "med",
    "p": "p(95)",
    "count": "count",
    "rate": "rate",
    "value": "value",
}
TYPE_OF_METRIC = {
    "trend": "http_req_duration",
    "rate": "http_req_failed",
    "counter": "http_reqs",
    "gauge": "vus",
}


# Metric keys -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "name", "selector"),
    [
        ("http_req_duration", "http_req_duration", {}),
        ("http_req_duration{scenario:agent_storm}", "http_req_duration", {"scenario": "agent_storm"}),
        (
            "http_req_duration{ scenario : agent_storm , name:heartbeat }",
            "http_req_duration",
            {"scenario": "agent_storm", "name": "heartbeat"},
        ),
        ("http_req_failed{scenario:'agent_storm'}", "http_req_failed", {"scenario": "agent_storm"}),
        ('checks{check:"heartbeat 2xx"}', "checks", {"check": "heartbeat 2xx"}),
        (
            "http_reqs{status:200,expected_response:true}",
            "http_reqs",
            {"status": "200", "expected_response": "true"},
        ),
        ("http_req_duration{error:dial: i/o timeout}", "http_req_duration", {"error": "dial: i/o timeout"}),
    ],
)
def test_metric_keys(key, name, selector):
    assert parse_metric_key(key) == (name, selector)


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("http_req_latency", "unknown metric 'http_req_latency'"),
        ("http_req_latency{scenario:x}", "unknown metric 'http_req_latency'"),
        ("http_req_duration{url:/x}", "unknown tag 'url'"),
        ("http_req_duration{}", "malformed metric key"),
        ("http_req_duration{scenario}", "malformed metric key"),
        ("http_req_duration{scenario:}", "malformed metric key"),
        ("http_req_duration{:x}", "malformed metric key"),
        ("http_req_duration{scenario:a", "malformed metric key"),
        ("http_req_duration}scenario:a{", "malformed metric key"),
        ("http_req_duration{scenario:a}x", "malformed metric key"),
        ("http_req_duration{scenario:a,scenario:b}", "tag 'scenario' is given twice"),
    ],
)
def test_bad_metric_keys_name_the_key(key, message):
    with pytest.raises(ConfigError, match=message) as caught:
        parse_metric_key(key)
    assert repr(key) in str(caught.value)


# Expressions -----------------------------------------------------------------------------------


@pytest.mark.parametrize("op", list(OPERATORS))
@pytest.mark.parametrize("method", list(METHOD_TEXTS))
def test_every_method_with_every_operator(method, op):
    text = f"{METHOD_TEXTS[method]}{op}500"
    assert parse_expression(text) == Expression(method, 95.0 if method == "p" else None, op, 500.0, text)


@pytest.mark.parametrize(
    ("text", "method", "percentile", "op", "value"),
    [
        ("p(99.9)<1000", "p", 99.9, "<", 1000.0),
        ("p(0)>=0", "p", 0.0, ">=", 0.0),
        ("p(100)<=1e3", "p", 100.0, "<=", 1000.0),
        ("  p(95) <  500 ", "p", 95.0, "<", 500.0),
        ("\tavg\t>\t-1.5\n", "avg", None, ">", -1.5),
        ("rate<0.001", "rate", None, "<", 0.001),
        ("rate < .5", "rate", None, "<", 0.5),
        ("count>=+10", "count", None, ">=", 10.0),
        ("value===3", "value", None, "===", 3.0),
        ("med!=-0", "med", None, "!=", 0.0),
    ],
)
def test_expression_details(text, method, percentile, op, value):
    assert parse_expression(text) == Expression(method, percentile, op, value, text)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("p(95)<<500", "'<500' is not a number"),
        ("p(101)<5", "unknown method 'p\\(101\\)'"),
        ("p(-1)<5", "unknown method 'p\\(-1\\)'"),
        ("p95<5", "unknown method 'p95'"),
        ("rate<", "'' is not a number"),
        ("p(95)", "no operator"),
        ("p(95)=500", "no operator"),
        ("p(95)=>500", "unknown method 'p\\(95\\)='"),
        ("<500", "unknown method ''"),
        ("average<500", "unknown method 'average'"),
        ("p( 95 )<500", "unknown method 'p\\( 95 \\)'"),
        ("avg<500ms", "'500ms' is not a number"),
        ("avg<nan", "'nan' is not a number"),
        ("", "no operator"),
    ],
)
def test_malformed_expressions_name_the_expression(text, message):
    with pytest.raises(ConfigError, match=message) as caught:
        parse_expression(text)
    assert repr(text) in str(caught.value)
    assert "\n" not in str(caught.value)


method_text = st.sampled_from(["avg", "min", "max", "med", "count", "rate", "value"]) | st.builds(
    lambda n: f"p({n:g})", st.floats(0, 100, allow_nan=False)
)
number = st.integers(-(10**9), 10**9).map(str) | st.floats(-1e9, 1e9, allow_nan=False).map(repr)
space = st.sampled_from(["", " ", "  ", "\t"])


@settings(max_examples=300, deadline=None)
@given(method_text, st.sampled_from(list(OPERATORS)), number, space, space, space, space)
def test_valid_expressions_round_trip(method, op, value, s1, s2, s3, s4):
    text = f"{s1}{method}{s2}{op}{s3}{value}{s4}"
    expression = parse_expression(text)
    assert (expression.method_text(), expression.op, expression.value, expression.text) == (
        method if not method.startswith("p(") else f"p({float(method[2:-1]):g})",
        op,
        float(value),
        text,
    )
    assert (
        parse_expression(f"{expression.method_text()}{expression.op}{value}").percentile
        == expression.percentile
    )


@settings(max_examples=500, deadline=None)
@given(
    st.text(alphabet=st.sampled_from(list("pavgmindcoutrelx()0123456789.<>=!-+e {}:,'\"µ\n")), max_size=30)
    | st.text(max_size=30)
)
def test_random_text_parses_or_is_a_config_error(text):
    try:
        expression = parse_expression(text)
    except ConfigError as error:
        assert "\n" not in str(error)
    else:
        assert math.isfinite(expression.value)
        assert expression.op in OPERATORS


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.text(max_size=40) | st.sampled_from(["http_req_duration{scenario:a}", "vus"]),
        st.lists(st.text(max_size=15) | st.builds(dict, threshold=st.text(max_size=10)), max_size=3)
        | st.text(max_size=5)
        | st.none(),
        max_size=3,
    )
)
def test_random_threshold_specs_parse_or_are_config_errors(spec):
    try:
        parse_thresholds(spec)
    except ConfigError as error:
        assert "\n" not in str(error)


# Whole threshold specs -------------------------------------------------------------------------


@pytest.mark.parametrize("op", list(OPERATORS))
@pytest.mark.parametrize("metric_type", list(TYPE_OF_METRIC))
@pytest.mark.parametrize("method", list(METHOD_TEXTS))
def test_methods_must_fit_the_metric_type(method, metric_type, op):
    metric = TYPE_OF_METRIC[metric_type]
    spec = {metric: [f"{METHOD_TEXTS[method]}{op}1"]}
    if method in METHODS[metric_type]:
        [threshold] = parse_thresholds(spec)
        assert (threshold.metric, threshold.expression.method) == (metric, method)
    else:
        with pytest.raises(ConfigError, match=f"does not apply to a {metric_type} metric") as caught:
            parse_thresholds(spec)
        assert repr(metric) in str(caught.value) and repr(spec[metric][0]) in str(caught.value)


def test_the_k6_script_thresholds_and_the_object_form():
    thresholds = parse_thresholds(
        {
            "http_req_duration{ scenario : agent_storm }": [
                "p(99)<1000",
                {"threshold": "p(95)<500", "abortOnFail": True, "delayAbortEval": "10s"},
            ],
            "http_req_failed{scenario:agent_storm}": ["rate<0.001"],
            "http_reqs": [{"threshold": "count>0"}],
        }
    )
    assert [(t.metric_key, t.expression.text, t.abort_on_fail, t.delay_abort_eval_s) for t in thresholds] == [
        ("http_req_duration{scenario:agent_storm}", "p(99)<1000", False, 0.0),
        ("http_req_duration{scenario:agent_storm}", "p(95)<500", True, 10.0),
        ("http_req_failed{scenario:agent_storm}", "rate<0.001", False, 0.0),
        ("http_reqs", "count>0", False, 0.0),
    ]
    assert thresholds[0].selector == {"scenario": "agent_storm"}


@pytest.mark.parametrize(
    ("spec", "needles"),
    [
        ({"http_req_duration": ["p(95)<<500"]}, ["'http_req_duration'", "'p(95)<<500'"]),
        ({"http_req_duration": ["p(101)<5"]}, ["'http_req_duration'", "'p(101)<5'"]),
        ({"http_req_duration": ["p95<5"]}, ["'http_req_duration'", "'p95<5'"]),
        ({"http_req_failed": ["rate<"]}, ["'http_req_failed'", "'rate<'"]),
        ({"http_req_failed": ["p(95)<5"]}, ["'http_req_failed'", "'p(95)<5'", "rate metric"]),
        ({"http_req_latency": ["p(95)<500"]}, ["'http_req_latency'", "unknown metric"]),
        ({"http_req_duration{url:x}": ["p(95)<500"]}, ["'http_req_duration{url:x}'", "unknown tag 'url'"]),
        ({"vus": [{"threshold": "value<5", "abortOnFial": True}]}, ["'vus'", "unknown key 'abortOnFial'"]),
        ({"vus": [{"abortOnFail": True}]}, ["'vus'", "no 'threshold' key"]),
        (
            {"vus": [{"threshold": "value<5", "abortOnFail": "yes"}]},
            ["'vus'", "'value<5'", "abortOnFail 'yes'"],
        ),
        ({"vus": [{"threshold": "value<5", "delayAbortEval": "soon"}]}, ["'vus'", "'value<5'", "'soon'"]),
        ({"vus": [{"threshold": 5}]}, ["'vus'", "5 is not a string"]),
        ({"vus": "value<5"}, ["'vus'", "expected a list of expressions"]),
        ({"vus": [5]}, ["'vus'", "expression 5 must be a string"]),
        ({5: ["value<5"]}, ["threshold metric 5 is not a string"]),
    ],
)
def test_bad_thresholds_are_one_line_config_errors(spec, needles):
    with pytest.raises(ConfigError) as caught:
        parse_thresholds(spec)
    message = str(caught.value)
    assert "\n" not in message
    for needle in needles:
        assert needle in message


# Evaluation ------------------------------------------------------------------------------------


def judge(spec, store, duration_s=10.0):
    return [
        (r.threshold.expression.text, r.value, r.ok)
        for r in evaluate(parse_thresholds(spec), store, duration_s)
    ]


def test_trend_thresholds_use_exact_percentiles_in_ms():
    store = MetricStore()
    for value in [100.0] * 18 + [500.0, 500.0]:  # p(95) = 500 exactly (i = 18.05 between two 500s)
        store.add_trend("http_req_duration", value, AGENT_STORM)
    store.add_trend("http_req_duration", 9999.0, {"scenario": "other"})
    results = judge(
        {
            "http_req_duration{scenario:agent_storm}": [
                "p(95)<500",
                "p(95)<=500",
                "p(95)==500",
                "p(95)===500",
                "p(95)!=500",
                "avg<140.1",
                "max>499",
                "min>=100",
                "med<100",
                "p(99.9)>499.9",
            ]
        },
        store,
    )
    assert results == [
        ("p(95)<500", 500.0, False),
        ("p(95)<=500", 500.0, True),
        ("p(95)==500", 500.0, True),
        ("p(95)===500", 500.0, True),
        ("p(95)!=500", 500.0, False),
        ("avg<140.1", 140.0, True),
        ("max>499", 500.0, True),
        ("min>=100", 100.0, True),
        ("med<100", 100.0, False),
        ("p(99.9)>499.9", 500.0, True),
    ]
    assert judge({"http_req_duration": ["max<9999"]}, store) == [("max<9999", 9999.0, False)]


def test_the_verdict_is_exact_just_around_the_limit():
    store = MetricStore()
    for value in [1.0] * 90 + [496.0, 506.0] * 5:
        store.add_trend("http_req_duration", value, AGENT_STORM)
    [(_, p95, ok)] = judge({"http_req_duration": ["p(95)<500"]}, store)
    assert 496.0 < p95 < 506.0 and ok == (p95 < 500)


def test_empty_metrics_follow_k6():
    store = MetricStore()
    assert judge({"http_req_failed": ["rate<0.001", "rate>0.5", "rate==1"]}, store) == [
        ("rate<0.001", None, True),
        ("rate>0.5", None, True),
        ("rate==1", None, True),
    ]
    assert judge({"http_req_duration": ["p(95)<500", "avg>0"]}, store) == [
        ("p(95)<500", 0.0, True),
        ("avg>0", 0.0, False),
    ]
    assert judge({"http_reqs": ["count>0", "rate<1"], "vus": ["value==0"]}, store) == [
        ("count>0", 0, False),
        ("rate<1", 0.0, True),
        ("value==0", 0.0, True),
    ]


def test_rates_counters_and_gauges():
    store = MetricStore()
    for failed in [True] + [False] * 999:
        store.add_rate("http_req_failed", failed, AGENT_STORM)
        store.add_counter("http_reqs", 1, AGENT_STORM)
    store.set_gauge("vus", 40, {})
    store.set_gauge("vus", 20, {})
    assert judge({"http_req_failed{scenario:agent_storm}": ["rate<0.001", "rate<=0.001"]}, store) == [
        ("rate<0.001", 0.001, False),
        ("rate<=0.001", 0.001, True),
    ]
    assert judge({"http_reqs": ["count==1000", "rate>=100"]}, store, duration_s=10.0) == [
        ("count==1000", 1000, True),
        ("rate>=100", 100.0, True),
    ]
    assert judge({"http_reqs": ["rate>0"]}, store, duration_s=0.0) == [("rate>0", 0.0, False)]
    assert judge({"vus": ["value<30"]}, store) == [("value<30", 20, True)]


def test_crossed_metrics_are_listed_once_and_sorted():
    store = MetricStore()
    store.add_trend("http_req_duration", 900.0, AGENT_STORM)
    store.add_rate("http_req_failed", True, AGENT_STORM)
    results = evaluate(
        parse_thresholds(
            {
                "http_req_failed": ["rate<0.1"],
                "http_req_duration{scenario:agent_storm}": ["p(95)<500", "p(99)<800"],
                "http_req_duration": ["p(95)<1000"],
            }
        ),
        store,
        1.0,
    )
    assert crossed_metrics(results) == ["http_req_duration{scenario:agent_storm}", "http_req_failed"]


# Durations -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("30s", 30.0),
        ("5m", 300.0),
        ("1h30m", 5400.0),
        ("1.5s", 1.5),
        ("500ms", 0.5),
        ("250us", 0.00025),
        ("250µs", 0.00025),
        ("250μs", 0.00025),
        ("1d", 86400.0),
        ("1d2h3m4s", 93784.0),
        ("10ns", 1e-8),
        ("0", 0.0),
        ("6", 6.0),
        (" 2.5 ", 2.5),
        ("0s", 0.0),
        (20, 20.0),
        (0.25, 0.25),
        ("1e3", 1000.0),
        ("-0", 0.0),
    ],
)
def test_durations(value, seconds):
    assert parse_duration_seconds(value) == pytest.approx(seconds, rel=1e-15)


@pytest.mark.parametrize(
    "value",
    [
        "",
        " ",
        "-5s",
        "-1",
        -3,
        "soon",
        "5 s",
        "5x",
        "s",
        "1h-30m",
        "nan",
        "inf",
        float("inf"),
        True,
        None,
        [5],
        "5sm",
        "1.2.3s",
        "--5s",
    ],
)
def test_bad_durations_are_config_errors_naming_the_value(value):
    with pytest.raises(ConfigError) as caught:
        parse_duration_seconds(value)
    assert repr(value) in str(caught.value)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=12) | st.integers() | st.floats())
def test_random_durations_parse_or_are_config_errors(value):
    try:
        seconds = parse_duration_seconds(value)
    except ConfigError:
        return
    assert math.isfinite(seconds) and seconds >= 0


def test_every_metric_type_has_methods():
    assert {d.type for d in METRICS.values()} == set(METHODS)
