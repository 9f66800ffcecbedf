"""The capacity search, pure: its options, the path it takes, each step's verdict from a storm's
summary, the result, its lines and files."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from certctl_load import exitcodes
from certctl_load.capacity.junit import render_capacity_junit
from certctl_load.capacity.options import search_options
from certctl_load.capacity.result import Found, report_data, search_result, step_line
from certctl_load.capacity.search import bracket, next_fleet
from certctl_load.capacity.step import StepResult, Verdict, judge_step
from certctl_load.cli.main import main
from certctl_load.errors import ConfigError


def summary(
    p95=12.0, p99=20.0, failed=0.0, dropped=0, sent=1000, completed=1000, saturated=False, crossed=()
):
    """A storm's summary JSON as the harness writes it, with the figures a step is judged on."""
    duration = {"type": "trend", "contains": "time", "values": {"p(95)": p95, "p(99)": p99}}
    duration["thresholds"] = {"p(95)<500": {"ok": p95 < 500}, "p(99)<1000": {"ok": p99 < 1000}}
    metrics = {
        "http_req_duration": duration,
        "http_req_failed": {
            "type": "rate",
            "values": {"rate": failed},
            "thresholds": {"rate<0.001": {"ok": failed < 0.001}},
        },
        "dropped_iterations": {"type": "counter", "values": {"count": dropped}},
    }
    reasons = ["generator_lag p99 35.0 ms > 20 ms"] if saturated else []
    lag = {"p99": 35.0 if saturated else 0.4}
    return {
        "metrics": metrics,
        "hold": {"from_s": 10, "duration_s": 20, "sent": sent, "completed": completed},
        "generator": {"saturated": saturated, "reasons": reasons, "lag_ms": lag},
        "state": {},
    }  # fmt: skip


def simulate(options, ceiling: int) -> list[StepResult]:
    """The search against a server that holds every fleet up to ``ceiling``."""
    steps: list[StepResult] = []
    while (fleet := next_fleet(options, [(s.fleet, s.passed) for s in steps])) is not None:
        held = fleet <= ceiling
        step = judge_step(
            len(steps) + 1, fleet, fleet / 10, exit_code=0 if held else 99,
            summary=summary(p95=5 if held else 612), first=not steps,
        )  # fmt: skip
        steps.append(step)
    return steps


def test_the_issue_s_path_expands_then_bisects_to_within_the_tolerance():
    options = search_options(interval_s=10, start_fleet="500")
    steps = simulate(options, ceiling=3300)
    assert [s.fleet for s in steps] == [500, 1000, 2000, 4000, 3000, 3500, 3250, 3375]
    result = search_result(options, steps, heartbeat_interval_s=10)
    assert result.result is Found.FOUND and result.converged and result.exit_code == exitcodes.OK
    assert (result.max_fleet, result.max_rate, result.first_failing_fleet) == (3250, 325.0, 3375)
    assert result.line == (
        "capacity: 3,250 agents (325 heartbeats/s at 10 s) within the thresholds; "
        "3,375 failed p(95)<500 at 612 ms"
    )
    assert result.to_json()["steps"][3]["verdict"] == "fail"


def test_options_default_from_the_interval_and_bad_values_name_themselves():
    options = search_options(interval_s=30)
    assert (options.start_fleet, options.growth, options.tolerance, options.max_steps) == (100, 2.0, 0.05, 12)
    assert (options.warmup_s, options.hold_s) == (30, 60)
    assert search_options(interval_s=30, warmup="1m", hold="90s").hold_s == 90
    odd = search_options(interval_s=2.5)  # a step runs whole seconds (Locust's --run-time): hold rounds up
    assert (odd.warmup_s, odd.hold_s, odd.run_time_s) == (2.5, 5.5, 8)
    bad = [
        ({"growth": "1"}, "--growth='1' must be more than 1"),
        ({"growth": "x"}, "--growth='x' is not a number"),
        ({"tolerance": "1"}, "--tolerance='1'"),
        ({"tolerance": "0"}, "--tolerance='0'"),
        ({"start_fleet": "0"}, "--start-fleet='0'"),
        ({"start_fleet": "500", "max_fleet": "400"}, "--max-fleet='400' is below --start-fleet"),
        ({"max_steps": "two"}, "--max-steps='two'"),
        ({"warmup": "10x"}, "--warmup='10x'"),
        ({"hold": "0s"}, "--hold='0s' must be positive"),
    ]
    for values, message in bad:
        with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace("?", r"\?")):
            search_options(interval_s=30, **values)


def test_bad_options_exit_104_naming_the_value_before_any_step(tmp_path, capsys):
    code = main(["capacity", "--results-dir", str(tmp_path), "--growth", "0.5"])
    assert code == exitcodes.INVALID_CONFIG
    assert "certctl-load capacity: --growth='0.5' must be more than 1" in capsys.readouterr().err
    assert main(["capacity", "--results-dir", str(tmp_path), "--heartbeat-interval", "soon"]) == 104
    assert main(["capacity", "--results-dir", str(tmp_path), "--processes", "none"]) == 104
    assert list(tmp_path.iterdir()) == []


def test_a_cap_that_holds_is_at_least_and_a_failing_start_is_start_fails():
    options = search_options(interval_s=10, start_fleet=100, max_fleet=700)
    steps = simulate(options, ceiling=10_000)
    assert [s.fleet for s in steps] == [100, 200, 400, 700]
    result = search_result(options, steps, heartbeat_interval_s=10)
    assert (result.result, result.converged, result.max_fleet, result.first_failing_fleet) == (
        Found.AT_LEAST, True, 700, None,
    )  # fmt: skip
    assert result.line.startswith("capacity: at least 700 agents (70 heartbeats/s at 10 s)")
    assert "--max-fleet 700 reached" in result.line and result.exit_code == exitcodes.OK
    start_fails = search_result(options, simulate(options, ceiling=50), heartbeat_interval_s=10)
    assert start_fails.result is Found.START_FAILS and start_fails.exit_code == exitcodes.THRESHOLDS_CROSSED
    assert len(start_fails.steps) == 1 and start_fails.max_fleet is None and start_fails.max_rate is None
    assert "lower --start-fleet" in start_fails.line


def test_steps_running_out_before_the_tolerance_give_the_bracket_unconverged():
    options = search_options(interval_s=10, start_fleet=500, max_steps=6)
    result = search_result(options, simulate(options, ceiling=3300), heartbeat_interval_s=10)
    assert len(result.steps) == 6 and result.result is Found.FOUND and not result.converged
    assert result.exit_code == exitcodes.OK and (result.max_fleet, result.first_failing_fleet) == (3000, 3500)
    assert "not converged" in result.line and "between 3,000 and 3,500" in result.line


def test_a_step_fails_on_a_threshold_a_dropped_beat_or_a_server_that_did_not_keep_up():
    def verdict(**figures):
        return judge_step(2, 400, 40.0, exit_code=0, summary=summary(**figures), first=False)

    assert verdict().verdict is Verdict.PASS
    assert verdict(p99=1200).reasons == ("p(99)<1000 at 1,200 ms",)
    assert verdict(failed=0.005).reasons == ("http_req_failed rate<0.001 at 0.50%",)
    assert verdict(dropped=1).reasons == ("dropped==0 at 1 beats dropped in the hold",)
    late = verdict(sent=1000, completed=985)
    assert (
        late.verdict is Verdict.FAIL and "985 of 1,000 requests sent in the hold completed" in late.reasons[0]
    )
    assert verdict(sent=1000, completed=990).verdict is Verdict.PASS
    assert verdict(sent=0, completed=0).reasons == ("sent>0 at no request sent in the hold",)


def test_a_saturated_generator_makes_a_failing_step_inconclusive_never_the_server_s_failure():
    failing = judge_step(3, 800, 80.0, exit_code=3, summary=summary(p95=700, saturated=True), first=False)
    assert failing.verdict is Verdict.INCONCLUSIVE
    assert failing.reasons[0] == (
        "the load generator could not carry 800 agents (generator_lag p99 35.0 ms > 20 ms); "
        "add processes (--processes N) or workers (--master and --worker)"
    )
    passing = judge_step(2, 400, 40.0, exit_code=0, summary=summary(saturated=True), first=False)
    assert passing.verdict is Verdict.PASS  # as a storm's verdict: it stands, its figures upper bounds
    options = search_options(interval_s=10, start_fleet=200)
    first = judge_step(1, 200, 20.0, exit_code=0, summary=summary(), first=True)
    result = search_result(options, [first, passing, failing], heartbeat_interval_s=10)
    assert result.result is Found.INCONCLUSIVE and result.exit_code == exitcodes.INCONCLUSIVE
    assert result.line.startswith("capacity: inconclusive: the load generator could not carry 800 agents")
    assert result.line.endswith("; the server held 400 agents") and result.max_fleet == 400
    junit = ET.fromstring(render_capacity_junit("agent_storm", result))
    assert junit.get("errors") == "2" and junit.get("failures") == "0"
    assert "add processes" in step_line(failing)


def test_a_target_not_ready_stops_the_first_step_and_fails_a_later_one():
    stopped = {"state": {"stopReason": "stopped early: 12 of the first 20 heartbeats answered 429; ..."}}
    first = judge_step(1, 100, 10.0, exit_code=2, summary={**summary(), **stopped}, first=True)
    assert first.verdict is Verdict.NOT_READY
    options = search_options(interval_s=10)
    result = search_result(options, [first], heartbeat_interval_s=10)
    assert result.exit_code == exitcodes.TARGET_NOT_READY
    assert result.line == f"capacity: the target is not ready: {stopped['state']['stopReason']}"
    preflight = judge_step(
        1, 100, 10.0, exit_code=2, summary=None, first=True, message="preflight: /health ..."
    )
    assert preflight.verdict is Verdict.NOT_READY and preflight.reasons == ("preflight: /health ...",)
    later = judge_step(4, 800, 80.0, exit_code=2, summary={**summary(), **stopped}, first=False)
    assert later.verdict is Verdict.FAIL and later.reasons[0].startswith("stopped early: 12 of the first 20")


def test_the_step_line_and_the_report_data_carry_every_figure():
    step = judge_step(
        4, 4000, 400.0, exit_code=99, summary=summary(p95=2310, p99=2950, completed=746), first=False
    )
    line = step_line(step)
    assert line.startswith(
        "step 4: 4,000 agents, 400 heartbeats/s: p95 2,310.0 ms, p99 2,950.0 ms, errors 0.00%"
    )
    assert (
        "dropped 0, completed/sent 746/1,000 (74.6%), generator lag p99 0.4 ms: FAIL: p(95)<500 at 2,310 ms"
        in line
    )
    options = search_options(interval_s=10, start_fleet=4000)
    data = report_data(search_result(options, [step], heartbeat_interval_s=10))
    assert data["steps"] == [
        {"step": 4, "fleet": 4000, "rate": 400.0, "p95_ms": 2310, "p99_ms": 2950, "error_rate": 0.0,
         "dropped": 0, "sent": 1000, "completed": 746, "completed_per_s": 746 / 20,
         "generator_lag_p99_ms": 0.4, "verdict": "fail", "reasons": list(step.reasons),
         "timeline": None}
    ]  # fmt: skip
    assert (data["result"], data["converged"], data["exit_code"]) == ("start_fails", False, 99)


def test_steps_running_out_while_growing_give_at_least_unconverged_and_noise_keeps_the_lowest_failure():
    options = search_options(interval_s=10, start_fleet=100, max_steps=2)
    result = search_result(options, simulate(options, ceiling=10_000), heartbeat_interval_s=10)
    assert (result.result, result.converged, result.max_fleet) == (Found.AT_LEAST, False, 200)
    assert "the steps ran out (--max-steps 2)" in result.line
    noisy = bracket([(100, True), (200, False), (300, True), (150, True)])
    assert (noisy.passed, noisy.failed) == (150, 200)
