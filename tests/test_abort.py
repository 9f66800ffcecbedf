"""k6's abortOnFail: a threshold checked during the run stops it, with summaries and exit 99."""

from __future__ import annotations

import pytest
from helpers import read_request_log
from storm import heartbeats, run_storm
from target_process import running_target

from certctl_load.k6.abort import abort_reason
from certctl_load.k6.metrics import MetricStore
from certctl_load.k6.thresholds import parse_thresholds

SPEC = {"http_req_duration": [{"threshold": "p(95)<10", "abortOnFail": True, "delayAbortEval": "3s"}]}


def store_with(durations: list[float]) -> MetricStore:
    store = MetricStore()
    for value in durations:
        store.add_trend("http_req_duration", value, {"scenario": "agent_storm"})
    return store


def test_a_crossed_abort_threshold_waits_for_its_delay():
    thresholds = parse_thresholds(SPEC)
    slow = store_with([50.0] * 20)
    assert abort_reason(thresholds, slow, 2.9) is None
    reason = abort_reason(thresholds, slow, 3.1)
    assert reason is not None and "'p(95)<10'" in reason and "abortOnFail" in reason


def test_thresholds_without_abort_on_fail_never_abort():
    thresholds = parse_thresholds({"http_req_duration": ["p(95)<10"]})
    assert abort_reason(thresholds, store_with([50.0] * 20), 100.0) is None


@pytest.mark.e2e
def test_an_abort_on_fail_threshold_stops_the_storm_early(tmp_path):
    scenario = tmp_path / "abort.yaml"
    scenario.write_text(
        "name: agent_storm\nthresholds:\n  http_req_duration:\n"
        '    - {threshold: "p(95)<10", abortOnFail: true, delayAbortEval: "3s"}\n'
    )
    log_path = tmp_path / "requests.jsonl"
    with running_target("--fleet-size", "50", "--latency-ms", "40", request_log=log_path) as target:
        run = run_storm(
            target.url,
            tmp_path / "results",
            "--scenario",
            str(scenario),
            "--fleet-size",
            "50",
            "--heartbeat-interval",
            "1",
            "--run-time",
            "60s",
        )
    assert run.code == 99, run.stderr[-2000:]
    beats = heartbeats(read_request_log(log_path))
    assert max(r["t"] for r in beats) - min(r["t"] for r in beats) < 15
    summary = run.summary()
    assert "abortOnFail" in summary["state"]["stopReason"]
    assert summary["state"]["interrupted"] is False
    assert summary["metrics"]["http_req_duration"]["thresholds"] == {"p(95)<10": {"ok": False}}
