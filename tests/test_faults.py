"""Faults: a target that dies, stalls, fails or refuses; every request counted, every verdict honest.

Each test runs the real ``locust`` against the reference target and checks the harness's summaries
against the target's own request log.
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path

import pytest
from helpers import read_request_log
from storm import (
    StormRun,
    beats_by_agent,
    fleet_options,
    heartbeats,
    per_agent_intervals,
    run_storm,
    wait_for_heartbeats,
)
from target_process import running_target

from certctl_load import exitcodes
from certctl_load.model.schedule import expected_beats
from certctl_load.reporting.breakdown import HINTS

pytestmark = pytest.mark.e2e

NETWORK_KINDS = {"connection_refused", "connection_reset", "closed_before_response"}
KILL_AFTER_S = 8


def write_scenario(directory: Path, body: str) -> str:
    path = directory / "scenario.yaml"
    path.write_text(f"name: agent_storm\n{body}")
    return str(path)


def metric(run: StormRun, key: str) -> dict:
    return run.summary()["metrics"][key]["values"]


def counter(run: StormRun, key: str) -> int:
    """A counter's count; 0 when the summary leaves it out for want of samples."""
    entry = run.summary()["metrics"].get(key)
    return entry["values"]["count"] if entry else 0


def failures_by_kind(run: StormRun) -> dict[str, int]:
    return {row["kind"]: row["count"] for row in run.summary()["failures"]}


def test_a_target_killed_mid_run_fails_every_later_beat(tmp_path):
    """SIGKILL ~8 s into a 20 s run: the harness goes on to the end, counting each refused beat as
    failed, and its successes are exactly the 200s the target logged (a response the target logged
    but could not send before it died would show here as one success too few)."""
    fleet, interval_s, run_s = 50, 1.0, 20
    log_path = tmp_path / "requests.jsonl"
    with running_target("--fleet-size", str(fleet), request_log=log_path) as target:

        def kill_mid_run() -> None:
            wait_for_heartbeats(log_path, int(KILL_AFTER_S * fleet / interval_s), timeout_s=60)
            target.stop(signal.SIGKILL)

        killer = threading.Thread(target=kill_mid_run)
        killer.start()
        run = run_storm(target.url, tmp_path / "results", *fleet_options(fleet, 1, run_s))
        killer.join()
        assert target.process.returncode == -signal.SIGKILL, "the target was not killed during the run"
    logged = heartbeats(read_request_log(log_path))
    server_successes = sum(1 for r in logged if r["status"] == 200)

    assert run.code == exitcodes.THRESHOLDS_CROSSED, run.stderr[-3000:]
    summary = run.summary()
    total = metric(run, "http_reqs")["count"]
    failed = metric(run, "http_req_failed")
    assert failed["fails"] == server_successes  # k6's rate: "fails" counts the successful requests
    assert failed["passes"] == total - server_successes
    assert summary["state"]["testRunDurationMs"] >= run_s * 1000
    assert summary["state"]["interrupted"] is False
    assert total + counter(run, "dropped_iterations") == expected_beats(fleet, interval_s, run_s)
    failures = failures_by_kind(run)
    assert set(failures) <= NETWORK_KINDS and failures.get("connection_refused", 0) > 0
    assert sum(failures.values()) == total - server_successes
    assert total - server_successes >= (run_s - KILL_AFTER_S - 4) * fleet / interval_s  # 4 s to spare
    assert HINTS["connection_refused"] in run.text_summary()
    assert HINTS["connection_refused"] in run.stdout


def test_a_stalled_target_costs_dropped_beats_not_a_burst(tmp_path):
    """Every response is held 4 s: durations include the hold, beats that fell due while an agent
    waited are dropped and counted (sent + dropped == slots), and no agent catches up in a burst."""
    fleet, interval_s, run_s, stall_s = 40, 1.0, 16, 4.0
    log_path = tmp_path / "requests.jsonl"
    with running_target(
        "--fleet-size", str(fleet), "--stall-at", "7", "--stall-for", f"{stall_s:g}", request_log=log_path
    ) as target:
        run = run_storm(target.url, tmp_path / "results", *fleet_options(fleet, 1, run_s))
    logged = heartbeats(read_request_log(log_path))
    held = [r for r in logged if r["server_ms"] > 0.5 * stall_s * 1000]
    assert len(held) >= fleet, "the stall window did not fall inside the run"

    assert run.code == exitcodes.THRESHOLDS_CROSSED, run.stderr[-3000:]  # p(95)<500 cannot hold
    sent = metric(run, "http_reqs")["count"]
    dropped = counter(run, "dropped_iterations")
    assert sent == len(logged) and all(r["status"] == 200 for r in logged)
    assert sent + dropped == expected_beats(fleet, interval_s, run_s)
    assert dropped >= fleet * (stall_s / interval_s - 2)
    assert metric(run, "http_req_duration")["max"] >= 0.8 * stall_s * 1000
    assert len(beats_by_agent(logged)) == fleet
    assert min(per_agent_intervals(logged)) > 0.5 * interval_s


def test_failed_requests_keep_their_measured_durations(tmp_path):
    """A quarter of the heartbeats answer 500 after 50 ms: their durations are recorded as measured,
    tagged expected_response:false, so a threshold on successes alone counts exactly the 200s."""
    scenario = write_scenario(
        tmp_path,
        "summary_trend_stats: [min, max, count]\n"
        "thresholds:\n"
        '  "http_req_duration{expected_response:true}": ["p(95)<1000"]\n'
        '  "http_req_duration{expected_response:false}": ["min>=50"]\n',
    )
    log_path = tmp_path / "requests.jsonl"
    with running_target(
        "--fleet-size", "40", "--error-fraction", "0.25", "--latency-ms", "50", request_log=log_path
    ) as target:
        run = run_storm(target.url, tmp_path / "results", *fleet_options(40, 1, 6, "--scenario", scenario))
    statuses = [r["status"] for r in heartbeats(read_request_log(log_path))]

    assert run.code == exitcodes.OK, run.stdout[-3000:] + run.stderr[-3000:]
    successes = metric(run, "http_req_duration{expected_response:true}")
    failures = metric(run, "http_req_duration{expected_response:false}")
    assert successes["count"] == statuses.count(200) > 0
    assert failures["count"] == statuses.count(500) == len(statuses) // 4
    assert failures["min"] >= 50
    assert failures_by_kind(run) == {"500": statuses.count(500)}


def test_a_timed_out_request_records_the_time_waited(tmp_path):
    """A stall longer than the request timeout: each timeout is a failure whose duration is the
    timeout (k6 would record 0 ms), broken down as ``timeout``."""
    scenario = write_scenario(
        tmp_path,
        "request_timeout: 1s\n"
        "summary_trend_stats: [min, max, count]\n"
        "thresholds:\n"
        '  "http_req_duration{expected_response:false}": ["min>=900"]\n',
    )
    log_path = tmp_path / "requests.jsonl"
    with running_target(
        "--fleet-size", "10", "--stall-at", "6", "--stall-for", "3", request_log=log_path
    ) as target:
        run = run_storm(target.url, tmp_path / "results", *fleet_options(10, 1, 12, "--scenario", scenario))
    assert run.code == exitcodes.OK, run.stdout[-3000:] + run.stderr[-3000:]
    timeouts = failures_by_kind(run).get("timeout", 0)
    assert timeouts >= 10
    assert counter(run, "http_reqs") + counter(run, "dropped_iterations") == expected_beats(10, 1.0, 12)
    failed = metric(run, "http_req_duration{expected_response:false}")
    assert failed["count"] == timeouts
    assert failed["min"] >= 900 and failed["max"] < 3000
    assert HINTS["timeout"] in run.stdout


@pytest.mark.parametrize(
    ("target_args", "env", "status"),
    [
        (["--fleet-size", "100", "--rate-limit", "20", "--rate-burst", "20"], None, "429"),
        (["--fleet-size", "100"], {"CERTCTL_TOKEN": "wrong-token"}, "401"),
        (["--fleet-size", "10"], None, "404"),
    ],
    ids=["429-rate-limited", "401-wrong-token", "404-not-seeded"],
)
def test_a_target_that_cannot_take_the_storm_stops_it_early(tmp_path, target_args, env, status):
    """100 agents at 100/s meet 429, 401 or 404 early in a 60 s run: failed, broken down with the hint
    everywhere, stopped within seconds with exit 2 (by design: the target is not ready for a storm)."""
    log_path = tmp_path / "requests.jsonl"
    with running_target(*target_args, request_log=log_path) as target:
        run = run_storm(target.url, tmp_path / "results", *fleet_options(100, 1, 60), env=env)
    logged = heartbeats(read_request_log(log_path))

    assert run.code == exitcodes.TARGET_NOT_READY, run.stderr[-3000:]
    assert max(r["t"] for r in logged) - min(r["t"] for r in logged) < 15
    summary = run.summary()
    assert f"answered {status}" in summary["state"]["stopReason"]
    assert_broken_down(run, status, sum(1 for r in logged if r["status"] == int(status)))


@pytest.mark.parametrize(
    ("target_args", "status", "expected"),
    [(["--retired", "10"], "410", 10 * 6), (["--error-fraction", "0.2"], "500", 300 // 5)],
    ids=["410-retired", "500-server-error"],
)
def test_retired_agents_and_server_errors_run_to_the_end(tmp_path, target_args, status, expected):
    """410 (retired agents, preflight skipped) and 5xx are failures, not a reason to stop: the run
    goes to its end and crosses its http_req_failed threshold (exit 99)."""
    log_path = tmp_path / "requests.jsonl"
    with running_target("--fleet-size", "50", *target_args, request_log=log_path) as target:
        run = run_storm(target.url, tmp_path / "results", *fleet_options(50, 1, 6))
    logged = heartbeats(read_request_log(log_path))

    assert run.code == exitcodes.THRESHOLDS_CROSSED, run.stderr[-3000:]
    assert metric(run, "http_reqs")["count"] == len(logged) == expected_beats(50, 1.0, 6)
    assert run.summary()["state"]["testRunDurationMs"] >= 6000
    assert sum(1 for r in logged if r["status"] == int(status)) == expected
    assert failures_by_kind(run) == {status: expected}
    assert_broken_down(run, status, expected)


def assert_broken_down(run: StormRun, status: str, server_count: int) -> None:
    """The status's failures, as counted, with its hint: in the JSON ``failures``, the .txt and stdout.

    The count may fall short of the target's only by requests in flight when an early stop killed them.
    """
    hint = HINTS.get(status) or HINTS["500"]
    rows = run.summary()["failures"]
    assert sum(row["count"] for row in rows) == metric(run, "http_req_failed")["passes"]
    row = next(row for row in rows if row["kind"] == status)
    assert row["hint"] == hint
    assert 0 < row["count"] <= server_count
    line = next(line for line in run.text_summary().splitlines() if line.strip().startswith(f"HTTP {status}"))
    assert str(row["count"]) in line and hint in line
    assert line in run.stdout


def test_an_unwritable_results_directory_is_a_config_error_before_any_request(tmp_path):
    """--results-dir under a regular file (chmod cannot stop root): exit 104, not one request sent."""
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    log_path = tmp_path / "requests.jsonl"
    with running_target("--fleet-size", "10", request_log=log_path) as target:
        run = run_storm(target.url, blocker / "results", *fleet_options(10, 1, 3))
        logged = read_request_log(log_path)
    assert run.code == exitcodes.INVALID_CONFIG
    assert "not writable" in run.stderr and str(blocker / "results") in run.stderr
    assert logged == []
