"""The real agent's profile: several calls per agent, each on its own cadence, judged per call."""

from __future__ import annotations

import statistics
from collections import defaultdict
from pathlib import Path

import pytest
import yaml
from helpers import read_request_log
from storm import ROOT, run_storm
from target_process import running_target

from certctl_load.errors import ConfigError
from certctl_load.model.calls import call_schedules, expected_slots
from certctl_load.model.scenario import load_scenario, parse_scenario

FLEET = 60


def test_the_shipped_agent_fleet_scenario_is_the_real_agent():
    scenario = load_scenario(ROOT / "scenarios" / "agent_fleet.yaml")
    calls = {call.name: call for call in scenario.calls}
    assert (calls["heartbeat"].method, calls["heartbeat"].interval_s) == ("POST", 60.0)
    assert (calls["work_poll"].method, calls["work_poll"].path) == ("GET", "/api/v1/agents/{id}/work")
    assert calls["work_poll"].interval_s == 30.0 and calls["work_poll"].body is None
    keys = {t.metric_key for t in scenario.thresholds}
    assert {"http_req_duration{name:heartbeat}", "http_req_duration{name:work_poll}"} <= keys


def test_agents_start_spread_over_the_longest_interval_with_one_of_each_call_at_start():
    calls = load_scenario(ROOT / "scenarios" / "agent_fleet.yaml").calls
    heartbeat, work_poll = call_schedules(3, 6, calls, 100.0, 300.0)
    assert heartbeat.start == work_poll.start == 130.0  # 3 * 60 s / 6
    assert (heartbeat.interval, work_poll.interval) == (60.0, 30.0)
    assert expected_slots(6, calls, 300.0) == {"heartbeat": 30, "work_poll": 57}


@pytest.mark.parametrize(
    ("calls", "message"),
    [
        ([{"name": "hb", "path": "/x", "interval": "0s"}], "calls[1]: key 'interval' has value '0s'"),
        ([{"name": "hb", "path": "x", "interval": "1s"}], "calls[1]: key 'path' has value 'x'"),
        ([{"name": "hb", "method": "FETCH", "path": "/x", "interval": 1}], "key 'method' has value 'FETCH'"),
        ([{"name": "hb", "path": "/x", "interval": 1, "every": 2}], "unknown key 'every'"),
        ([{"name": "a", "path": "/x", "interval": 1}, {"name": "a", "path": "/y", "interval": 1}], "unique"),
        ([], "key 'calls' has value []"),
    ],
)
def test_bad_calls_are_config_errors_naming_the_value(calls, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_scenario({"calls": calls}, "s.yaml")


def scaled_agent_fleet(tmp_path: Path, extra_call: dict | None = None, slow_heartbeats: bool = False) -> Path:
    """The shipped profile with its intervals divided by 10 (6 s heartbeat, 3 s work poll)."""
    document = yaml.safe_load((ROOT / "scenarios" / "agent_fleet.yaml").read_text())
    for call in document["calls"]:
        call["interval"] = {"60s": "6s", "30s": "3s"}[call["interval"]]
    if extra_call:
        document["calls"].append(extra_call)
    path = tmp_path / "agent_fleet.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def beats_per_agent(log: list[dict], suffix: str, method: str) -> dict[str, list[float]]:
    beats: dict[str, list[float]] = defaultdict(list)
    for record in log:
        if record["method"] == method and record["path"].endswith(suffix) and record["agent"]:
            beats[record["agent"]].append(record["t"])
    return beats


def assert_cadence(beats: dict[str, list[float]], interval: float, expected_total: int) -> None:
    assert len(beats) == FLEET
    assert sum(len(times) for times in beats.values()) == expected_total
    gaps = [b - a for times in beats.values() for a, b in zip(times, times[1:], strict=False)]
    assert abs(statistics.median(gaps) - interval) < 0.03 * interval and min(gaps) > 0.8 * interval


@pytest.mark.e2e
def test_every_agent_heartbeats_and_polls_on_its_own_two_cadences(tmp_path):
    scenario = scaled_agent_fleet(
        tmp_path,
        extra_call={"name": "agent_info", "method": "GET", "path": "/api/v1/agents/{id}", "interval": "4s"},
    )
    log_path = tmp_path / "requests.jsonl"
    with running_target("--fleet-size", str(FLEET), request_log=log_path) as target:
        run = run_storm(
            target.url,
            tmp_path / "results",
            "--scenario",
            str(scenario),
            "--fleet-size",
            str(FLEET),
            "--run-time",
            "13s",
        )
    assert run.code == 0, run.stderr[-3000:]
    log = read_request_log(log_path)
    calls = load_scenario(scenario).calls
    expected = expected_slots(FLEET, calls, 13.0)
    heartbeats = beats_per_agent(log, "/heartbeat", "POST")
    polls = beats_per_agent(log, "/work", "GET")
    infos = {a: t for a, t in beats_per_agent(log, "", "GET").items()}
    infos = {a: [t for t in times if t not in set(polls.get(a, []))] for a, times in infos.items()}
    assert_cadence(heartbeats, 6.0, expected["heartbeat"])
    assert_cadence(polls, 3.0, expected["work_poll"])
    assert_cadence(infos, 4.0, expected["agent_info"])
    # One of each call as the agent starts: its first heartbeat and first poll go together.
    assert all(abs(heartbeats[a][0] - polls[a][0]) < 0.25 for a in heartbeats)
    summary = run.summary(stem="agent-fleet")
    metrics = summary["metrics"]
    for name, count in expected.items():
        assert metrics[f"http_reqs{{name:{name}}}"]["values"]["count"] == count
        assert f"http_req_duration{{name:{name}}}" in metrics
    assert {check["name"] for check in summary["root_group"]["checks"]} == {
        "heartbeat 2xx",
        "work_poll 2xx",
        "agent_info 2xx",
    }
    assert "{ name:work_poll }" in run.text_summary(stem="agent-fleet")


@pytest.mark.e2e
def test_per_call_thresholds_decide_the_exit_code(tmp_path):
    """Slow heartbeats (the target slows heartbeats only) fail the heartbeat's threshold alone."""
    scenario = scaled_agent_fleet(tmp_path)
    with running_target(
        "--fleet-size",
        str(FLEET),
        "--slow-fraction",
        "0.2",
        "--slow-ms",
        "600",
        request_log=tmp_path / "requests.jsonl",
    ) as target:
        run = run_storm(
            target.url,
            tmp_path / "results",
            "--scenario",
            str(scenario),
            "--fleet-size",
            str(FLEET),
            "--run-time",
            "7s",
        )
    assert run.code == 99, run.stderr[-3000:]
    metrics = run.summary(stem="agent-fleet")["metrics"]
    assert metrics["http_req_duration{name:heartbeat}"]["thresholds"]["p(95)<500"] == {"ok": False}
    assert metrics["http_req_duration{name:work_poll}"]["thresholds"]["p(95)<500"] == {"ok": True}
    assert "thresholds on metrics 'http_req_duration{name:heartbeat}' have been crossed" in run.stdout
