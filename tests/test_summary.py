"""The handleSummary data object: k6's shape, sub-metrics for thresholds, exact values, and its speed."""

import hashlib
import json
import random
import time

from certctl_load.k6.metrics import MetricStore
from certctl_load.k6.percentiles import trend_stats
from certctl_load.k6.thresholds import evaluate, parse_thresholds
from certctl_load.reporting.summary import CheckCount, build_summary

STATS = ["avg", "min", "med", "p(95)", "p(99)", "max"]
OK = {
    "scenario": "agent_storm",
    "name": "heartbeat",
    "method": "POST",
    "status": "200",
    "expected_response": "true",
}
FAILED = {**OK, "status": "0", "expected_response": "false", "error": "connection refused"}
K6_THRESHOLDS = {
    "http_req_duration{scenario:agent_storm}": ["p(99)<1000", "p(95)<500"],
    "http_req_failed{scenario:agent_storm}": ["rate<0.001"],
}


def record(store, duration_ms, tags, sent=300, received=120):
    failed = tags["expected_response"] == "false"
    store.add_trend("http_req_duration", duration_ms, tags)
    store.add_trend("http_req_connecting", 0.0, tags)
    store.add_rate("http_req_failed", failed, tags)
    store.add_counter("http_reqs", 1, tags)
    store.add_counter("iterations", 1, {"scenario": "agent_storm"})
    store.add_counter("data_sent", sent, tags)
    store.add_counter("data_received", received, tags)
    store.add_rate("checks", not failed, {"scenario": "agent_storm", "check": "heartbeat 2xx"})


def summarize(store, spec=K6_THRESHOLDS, duration_ms=20_000.0, **kwargs):
    results = evaluate(parse_thresholds(spec), store, duration_ms / 1000)
    checks = store.select("checks", {"check": "heartbeat 2xx"})
    return build_summary(
        store,
        results,
        trend_stats=STATS,
        duration_ms=duration_ms,
        checks=[CheckCount("heartbeat 2xx", checks.passes, checks.fails)],
        **kwargs,
    )


def test_the_shape_is_k6s():
    store = MetricStore()
    record(store, 0.5, OK)
    store.set_gauge("vus", 3, {})
    summary = summarize(store, is_stdout_tty=True, extra_state={"workers": 2})
    assert list(summary) == ["root_group", "options", "state", "metrics"]
    assert summary["root_group"] == {
        "name": "",
        "path": "",
        "id": "d41d8cd98f00b204e9800998ecf8427e",
        "groups": [],
        "checks": [
            {
                "name": "heartbeat 2xx",
                "path": "::heartbeat 2xx",
                "id": hashlib.md5(b"::heartbeat 2xx").hexdigest(),
                "passes": 1,
                "fails": 0,
            }
        ],
    }
    assert summary["options"] == {"summaryTrendStats": STATS, "summaryTimeUnit": "", "noColor": False}
    assert summary["state"] == {
        "isStdOutTTY": True,
        "isStdErrTTY": False,
        "testRunDurationMs": 20000,
        "interrupted": False,
        "workers": 2,
    }
    assert json.loads(json.dumps(summary)) == summary


def test_metrics_with_samples_sub_metrics_and_thresholds():
    store = MetricStore()
    for i in range(1, 3341):
        record(store, i / 1000, OK)
    record(store, 0.0, FAILED)  # a network error: status 0, a 0 ms duration sample, as in k6
    metrics = summarize(store)["metrics"]
    assert list(metrics) == sorted(metrics)
    assert set(metrics) == {
        "checks",
        "data_received",
        "data_sent",
        "http_req_connecting",
        "http_req_duration",
        "http_req_duration{expected_response:true}",
        "http_req_duration{scenario:agent_storm}",
        "http_req_failed",
        "http_req_failed{scenario:agent_storm}",
        "http_reqs",
        "iterations",
    }
    sub = metrics["http_req_duration{scenario:agent_storm}"]
    assert (sub["type"], sub["contains"]) == ("trend", "time")
    everything = sorted([i / 1000 for i in range(1, 3341)] + [0.0])
    assert sub["values"] == trend_stats(everything, STATS)
    assert list(sub["values"]) == STATS
    assert sub["thresholds"] == {"p(99)<1000": {"ok": True}, "p(95)<500": {"ok": True}}
    assert "thresholds" not in metrics["http_req_duration"]
    expected_ok = metrics["http_req_duration{expected_response:true}"]["values"]
    assert (
        expected_ok["min"] == 0.001
        and "thresholds" not in metrics["http_req_duration{expected_response:true}"]
    )
    failed = metrics["http_req_failed{scenario:agent_storm}"]
    assert failed == {
        "type": "rate",
        "contains": "default",
        "values": {"rate": 1 / 3341, "passes": 1, "fails": 3340},
        "thresholds": {"rate<0.001": {"ok": True}},
    }
    assert metrics["http_reqs"]["values"] == {"count": 3341, "rate": 3341 / 20}
    assert metrics["data_sent"] == {
        "type": "counter",
        "contains": "data",
        "values": {"count": 300 * 3341, "rate": 300 * 3341 / 20},
    }
    assert metrics["checks"]["values"] == {"rate": 3340 / 3341, "passes": 3340, "fails": 1}


def test_a_threshold_metric_without_samples_is_shown_with_zero_values():
    store = MetricStore()
    record(store, 2.0, OK)
    metrics = summarize(
        store,
        {
            "dropped_iterations{scenario:agent_storm}": ["count<1"],
            "http_req_duration{status:503}": ["p(95)<500"],
        },
    )["metrics"]
    assert metrics["dropped_iterations"]["values"] == {"count": 0, "rate": 0}
    assert metrics["dropped_iterations{scenario:agent_storm}"]["thresholds"] == {"count<1": {"ok": True}}
    assert metrics["http_req_duration{status:503}"]["values"] == dict.fromkeys(STATS, 0)
    assert "http_req_failed{scenario:agent_storm}" not in metrics


def test_threshold_keys_are_normalised_and_share_an_entry():
    store = MetricStore()
    record(store, 2.0, OK)
    spec = {
        "http_req_duration{ scenario : agent_storm }": ["p(95)<500"],
        "http_req_duration{scenario:agent_storm}": ["avg<1"],
        "http_reqs": ["count>0"],
    }
    metrics = summarize(store, spec)["metrics"]
    assert metrics["http_req_duration{scenario:agent_storm}"]["thresholds"] == {
        "p(95)<500": {"ok": True},
        "avg<1": {"ok": False},
    }
    assert metrics["http_reqs"]["thresholds"] == {"count>0": {"ok": True}}


def test_whole_numbers_are_written_as_k6_writes_them():
    store = MetricStore()
    record(store, 2.0, OK)
    text = json.dumps(summarize(store, duration_ms=1000.0)["metrics"]["http_req_failed"])
    assert '"rate": 0,' in text and '"fails": 1' in text


def test_final_evaluation_of_two_million_samples_is_fast():
    store = MetricStore()
    rng = random.Random(1)
    ok = store.series_key("http_req_duration", OK)
    failed = store.series_key("http_req_duration", FAILED)
    connecting = store.series_key("http_req_connecting", OK)
    add = store.add_trend_key
    for _ in range(2_000_000):
        add(ok, rng.random())
    for _ in range(2000):
        add(failed, 0.0)
        add(connecting, rng.random())
    start = time.perf_counter()
    summary = summarize(store, duration_ms=600_000.0)
    elapsed = time.perf_counter() - start
    assert summary["metrics"]["http_req_duration{scenario:agent_storm}"]["thresholds"]["p(95)<500"] == {
        "ok": True
    }
    assert elapsed < 2.0, f"final evaluation took {elapsed:.2f}s"
