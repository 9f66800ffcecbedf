"""A run's life cycle in-process, under a fake clock: phases, exit-code precedence, cut short, early
stop, abort timing, dealing agents to workers, lost beats, worker errors and refusals; then the
same life cycle driven by Locust's own LocalRunner against an in-process target."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import gevent
import pytest
from helpers import FakeClock, in_process_target
from locust.env import Environment
from locust.event import EventHook, Events
from locust.runners import LocalRunner

from certctl_load import exitcodes
from certctl_load.k6.thresholds import ThresholdResult
from certctl_load.model.config import RunConfig, resolve_config
from certctl_load.plugin.harness import Harness
from certctl_load.plugin.shape import StormShape
from certctl_load.plugin.user import CertctlAgent
from certctl_load.runtime.call_loop import agent_loops, schedule_loops
from certctl_load.runtime.connect_phase import ConnectPhase
from certctl_load.runtime.coordinator import (
    FINAL,
    FLUSH,
    GRANT,
    PLAN,
    START,
    Coordinator,
    WorkerNode,
    apply_plan,
    apply_start,
    deal_agents,
    hand_over_on_exit,
    wait_until_drained,
    worker_report,
)
from certctl_load.runtime.generator import Health, judge_health
from certctl_load.runtime.httpclient import Exchange
from certctl_load.runtime.judge import exit_code_for
from certctl_load.runtime.run import GRACEFUL_STOP_S, AgentGrant, Phase, Run

T0 = 1_000.0
TOKEN = "lifecycle-token"


def config_for(
    tmp_path: Path, *, fleet: int = 10, interval: str = "2s", run_time: int = 6, **extra: Any
) -> RunConfig:
    options = SimpleNamespace(
        fleet_size=str(fleet),
        heartbeat_interval=interval,
        run_time=run_time,
        results_dir=str(tmp_path / "results"),
        **extra,
    )
    return resolve_config(options, {"CERTCTL_TOKEN": TOKEN}, "http://127.0.0.1:9")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0 - 1.0)


@pytest.fixture
def run(tmp_path: Path, clock: FakeClock) -> Run:
    return Run(config_for(tmp_path), EventHook(), clock=clock)


def beat(run: Run, status: int = 200) -> None:
    """One heartbeat recorded as an agent's loop records it."""
    run.recorders["heartbeat"].record(Exchange(status, 0.002, 0.0, 100, 50, None), late=False)


# Phases and the end ------------------------------------------------------------------------------


def test_a_run_moves_from_spawning_through_running_and_draining_to_finished(run, clock):
    assert run.phase() is Phase.SPAWNING
    run.start_schedule(T0, [AgentGrant(i) for i in range(10)])
    clock.now = T0 + 1
    assert run.phase() is Phase.RUNNING
    clock.now = T0 + 6
    assert run.phase() is Phase.DRAINING
    beat(run)
    run.finish(clock.now)
    assert run.phase() is Phase.FINISHED


def test_draining_waits_for_requests_in_flight_up_to_the_graceful_stop(run):
    run.start_schedule(T0, [])
    run.inflight = 1
    assert not run.is_drained(T0 + 6)
    assert run.is_drained(T0 + 6 + GRACEFUL_STOP_S)
    run.inflight = 0
    assert run.is_drained(T0 + 6)


def test_a_run_judged_before_its_schedule_is_over_was_cut_short(run, clock):
    run.start_schedule(T0, [])
    beat(run)
    assert run.finish(T0 + 3).exit_code == exitcodes.INTERRUPTED


def test_a_run_judged_after_its_schedule_passes_and_is_judged_once(run):
    run.start_schedule(T0, [])
    beat(run)
    outcome = run.finish(T0 + 6.5)
    assert outcome.exit_code == exitcodes.OK
    beat(run, 500)
    assert run.finish(T0 + 7) is outcome


def test_a_run_without_any_heartbeat_cannot_pass(run):
    run.start_schedule(T0, [])
    assert run.finish(T0 + 6.5).exit_code == exitcodes.THRESHOLDS_CROSSED


def ok_result() -> list[ThresholdResult]:
    return []


@pytest.mark.parametrize(
    ("flags", "code"),
    [
        ({"interrupted": True, "refused": True, "stopped_early": True, "errors": 1}, exitcodes.INTERRUPTED),
        ({"refused": True, "stopped_early": True, "errors": 1}, exitcodes.INVALID_CONFIG),
        ({"stopped_early": True, "errors": 1, "fleet_lost": True}, exitcodes.TARGET_NOT_READY),
        ({"errors": 1, "fleet_lost": True, "saturated": True, "dropped": 1}, exitcodes.HARNESS_ERROR),
        ({"fleet_lost": True, "saturated": True, "dropped": 1}, exitcodes.THRESHOLDS_CROSSED),
        ({"saturated": True, "dropped": 1, "aborted": True}, exitcodes.INCONCLUSIVE),
        ({"saturated": True}, exitcodes.OK),
        ({"aborted": True}, exitcodes.THRESHOLDS_CROSSED),
        ({}, exitcodes.OK),
    ],
)
def test_exit_codes_take_precedence_highest_first(flags, code):
    arguments = {"interrupted": False, "errors": 0, "stopped_early": False, **flags}
    assert exit_code_for(ok_result(), 10, **arguments) == code


# Stopping early ----------------------------------------------------------------------------------


def test_a_burst_of_429_early_on_stops_the_run_and_exits_2(run):
    run.start_schedule(T0, [])
    for _ in range(12):
        beat(run, 429)
    reason = run.stop_reason_now(T0 + 2)
    assert reason is not None and "429" in reason
    assert run.finish(T0 + 2).exit_code == exitcodes.TARGET_NOT_READY


def test_abort_on_fail_is_checked_every_2_s_after_its_delay(tmp_path, clock):
    scenario = tmp_path / "abort.yaml"
    scenario.write_text(
        "name: agent_storm\nthresholds:\n  http_req_duration:\n"
        "    - {threshold: 'p(95)<1', abortOnFail: true, delayAbortEval: 3s}\n"
    )
    run = Run(config_for(tmp_path, scenario=str(scenario)), EventHook(), clock=clock)
    run.start_schedule(T0, [])
    beat(run)  # 2 ms: over the 1 ms limit
    assert run.stop_reason_now(T0 + 0.5) is None  # checked (not yet due); the next check is at 2 s
    assert run.stop_reason_now(T0 + 3.5) is not None  # checked at 3.5 s: past the delay
    assert run.finish(T0 + 3.5).exit_code == exitcodes.THRESHOLDS_CROSSED


def test_abort_checks_keep_their_2_s_cadence(tmp_path, clock):
    scenario = tmp_path / "abort.yaml"
    scenario.write_text(
        "name: agent_storm\nthresholds:\n  http_req_duration: [{threshold: 'p(95)<1', abortOnFail: true}]\n"
    )
    run = Run(config_for(tmp_path, scenario=str(scenario)), EventHook(), clock=clock)
    run.start_schedule(T0, [])
    assert run.stop_reason_now(T0 + 0.1) is None  # checked with no sample: passes
    beat(run)
    assert run.stop_reason_now(T0 + 1.9) is None  # not checked again before 2.1 s
    assert run.stop_reason_now(T0 + 2.1) is not None


# The master and its workers ----------------------------------------------------------------------


class FakeLink:
    """The coordinator's line to workers, recording every message."""

    def __init__(self, nodes: Sequence[WorkerNode]) -> None:
        self.nodes = list(nodes)
        self.sent: list[tuple[str, Any, str | None]] = []

    def workers(self) -> Sequence[WorkerNode]:
        return self.nodes

    def send(self, message: str, data: Any, worker: str | None = None) -> None:
        self.sent.append((message, data, worker))


def nodes(*users: int) -> list[WorkerNode]:
    return [WorkerNode(f"host{i}_abc{i}", i, f"host{i}", count, False) for i, count in enumerate(users)]


def test_agents_are_dealt_round_robin_in_worker_order():
    assert deal_agents({"a": 3, "b": 2}, ["a", "b"]) == {"a": [0, 2, 4], "b": [1, 3]}
    assert deal_agents({"a": 0, "b": 2}, ["b", "a"]) == {"b": [0, 1], "a": []}


def connected_phase(agents: int, failed: int = 0) -> dict[str, Any]:
    """A worker's connect phase as it sends it: ``failed`` of its ``agents`` refused."""
    phase = ConnectPhase(agents)
    for n in range(agents):
        phase.record([(0.001, "connection_refused" if n < failed else None)], T0)
    return phase.to_wire()


def planned(run: Run, link: FakeLink) -> Coordinator:
    """A coordinator whose plan went out and whose workers all reported their agents connected."""
    coordinator = Coordinator(run, link)
    coordinator.plan()
    for node in link.nodes:
        coordinator.on_connected(node.id, connected_phase(node.users))
    return coordinator


def test_the_plan_deals_the_agents_and_t0_follows_once_every_worker_has_connected(run, clock):
    link = FakeLink(list(reversed(nodes(5, 5))))  # Locust's order is not the workers' index order
    coordinator = Coordinator(run, link)
    coordinator.plan()
    plans = {worker: data for message, data, worker in link.sent if message == PLAN}
    assert plans["host0_abc0"]["agents"] == [0, 2, 4, 6, 8]
    assert plans["host1_abc1"]["agents"] == [1, 3, 5, 7, 9]
    assert {plan["t0"] for plan in plans.values()} == {None}
    assert run.phase() is Phase.CONNECTING
    coordinator.on_connected("host1_abc1", connected_phase(5))
    assert run.t0 is None  # one worker is still connecting
    coordinator.on_connected("host0_abc0", connected_phase(5))
    [start] = [data for message, data, _ in link.sent if message == START]
    assert run.t0 == start["t0"] and run.t0 > clock.now
    assert run.connect is not None and run.connect.summary()["connected"] == 10


def test_a_fleet_of_which_more_than_1_percent_cannot_connect_stops_before_t0_with_exit_2(run):
    link = FakeLink(nodes(5, 5))
    coordinator = Coordinator(run, link)
    coordinator.plan()
    coordinator.on_connected("host0_abc0", connected_phase(5, failed=1))
    coordinator.on_connected("host1_abc1", connected_phase(5))
    assert run.t0 is None and [message for message, _, _ in link.sent if message == START] == []
    reason = run.stop_reason_now(T0)
    assert reason is not None and "1 of 10 agents" in reason and "connection_refused 1" in reason
    assert run.finish(T0).exit_code == exitcodes.TARGET_NOT_READY


def test_without_a_connect_phase_the_plan_carries_t0(tmp_path, clock):
    scenario = tmp_path / "first_beat.yaml"
    scenario.write_text("name: agent_storm\nconnect: at-first-beat\n")
    run = Run(config_for(tmp_path, scenario=str(scenario)), EventHook(), clock=clock)
    link = FakeLink(nodes(5, 5))
    Coordinator(run, link).plan()
    plans = [data for message, data, _ in link.sent if message == PLAN]
    assert {plan["t0"] for plan in plans} == {run.t0} and run.t0 is not None


def test_a_worker_takes_its_step_from_the_plan_and_never_changes_its_configuration(tmp_path, clock):
    master = Run(config_for(tmp_path, fleet=10, interval="2s"), EventHook(), clock=clock)
    link = FakeLink(nodes(5, 5))
    planned(master, link)
    worker = Run(config_for(tmp_path, fleet=3, interval="9s"), EventHook(), clock=clock)
    configured = worker.config
    apply_plan(worker, link.sent[0][1])
    assert worker.t0 is None  # it connects first
    apply_start(worker, next(data for message, data, _ in link.sent if message == START))
    assert worker.config is configured
    assert worker.step is not None and (worker.step.fleet_size, worker.step.duration_s) == (10, 6.0)
    assert worker.step.calls[0].interval_s == 2.0
    assert [worker.claim_agent().index for _ in range(5)] == [0, 2, 4, 6, 8]


def test_a_lost_workers_missed_beats_count_as_dropped_and_fail_the_run(run, clock):
    link = FakeLink(nodes(5, 5))
    coordinator = planned(run, link)
    assert run.t0 is not None
    clock.now = run.t0 + 2.0
    coordinator.on_report("host1_abc1", worker_report_at(clock.now))
    link.nodes[1] = WorkerNode("host1_abc1", 1, "host1", 5, True)  # Locust marked it missing
    coordinator.check_workers()
    assert len(run.incidents) == 1 and "host1_abc1" in run.incidents[0]
    # Slots of its 5 agents (1 s interval spacing of 2 s / 10) from 2 s to the end at 6 s: 2 each.
    assert coordinator.lost_beats() == {"heartbeat": 10}
    for _ in range(20):
        beat(run)
    clock.now = run.t0 + 6.5
    outcome = run.finish(clock.now, lost_beats=coordinator.lost_beats())
    assert outcome.exit_code == exitcodes.THRESHOLDS_CROSSED


def test_a_stopping_workers_later_report_still_ends_its_samples_where_it_closed(run, clock, tmp_path):
    """SIGTERM on a worker: it closes, hands its samples over (FINAL), and Locust's stats reporter
    may still send one report before the process ends. Every slot of its agents from the close
    until another worker takes them over is counted as lost, once."""
    link = FakeLink(nodes(5, 5))
    coordinator = planned(run, link)
    assert run.t0 is not None
    worker = Run(config_for(tmp_path), EventHook(), clock=clock)
    apply_plan(worker, next(data for message, data, to in link.sent if (message, to) == (PLAN, "host1_abc1")))
    apply_start(worker, next(data for message, data, _ in link.sent if message == START))
    sent: list[tuple[str, Any]] = []
    clock.now = run.t0 + 2.1
    hand_over_on_exit(worker, lambda message, data: sent.append((message, data)))
    clock.now = run.t0 + 2.5
    later = worker_report(worker)  # the stats reporter's timer fired while Locust stopped the users
    [(message, final)] = sent
    assert message == FINAL
    coordinator.on_report("host1_abc1", final, final=True)
    coordinator.on_report("host1_abc1", later)
    link.nodes = link.nodes[:1]  # the worker's quit message: Locust forgets it and re-deals its users
    clock.now = run.t0 + 3.2
    coordinator.on_need("host0_abc0", 5)
    coordinator.check_workers()
    [grant] = [data for message, data, _ in link.sent if message == GRANT]
    assert [index for index, _ in grant["grants"]] == [1, 3, 5, 7, 9]
    # Its agents' slots lie 0.2, 0.6, 1.0, 1.4 and 1.8 s into each 2 s interval: between the close
    # at 2.1 s and the takeover at 3.2 s, those at 2.2, 2.6 and 3.0 s were not sent.
    assert coordinator.lost_beats() == {"heartbeat": 3}


def dropped(run: Run) -> float:
    return run.store.counter("dropped_iterations", {}).count


def test_an_agent_woken_after_the_close_drops_its_slot_due_before_it_and_sends_nothing_more(run, clock):
    run.start_schedule(T0, [AgentGrant(i) for i in range(10)])
    assert run.step is not None
    [loop] = agent_loops(run, 3)
    schedule_loops([loop], run.step, 3, 0.0)  # agent 3 of 10 beats 0.6 s into each 2 s interval
    loop.next_slot = 1
    clock.now = T0 + 2.7
    run.close()
    clock.now = T0 + 2.71  # its slot at 2.6 s was due before the close; it wakes only now
    loop.beat()  # no request: the loop's connection was never opened
    assert dropped(run) == 1
    assert loop.seconds_to_next(clock.now) is None  # no slot left: it waits, it does not spin
    clock.now = T0 + 4.7
    loop.beat()
    assert dropped(run) == 1  # the slot at 4.6 s, after the close, is not this worker's


def test_the_drain_lets_the_agents_already_due_run_first_even_with_nothing_in_flight(run):
    due: list[str] = []
    gevent.spawn_later(0, due.append, "woke")  # an agent whose slot has come, not yet woken
    run.close()
    wait_until_drained(run, 5.0)
    assert due == ["woke"]


HEALTHY = judge_health(
    {"p50": 0.1, "p99": 0.5, "max": 2.0}, 30.0, {"count": 0, "max_ms": 0.0, "total_ms": 0.0}, 0, 10
)


@pytest.mark.parametrize(
    ("late", "beats", "saturated"), [(1, 80, False), (4, 80, False), (5, 80, True), (5, 500, False)]
)
def test_late_beats_saturate_from_five_and_over_one_percent(late: int, beats: int, saturated: bool) -> None:
    health = judge_health({"p99": 0.5}, 30.0, {"count": 0, "max_ms": 0.0, "total_ms": 0.0}, late, beats)
    assert health.saturated is saturated
    assert any("late beats" in reason for reason in health.reasons) is saturated


def worker_report_at(now: float, errors: int = 0, health: Health = HEALTHY) -> dict[str, Any]:
    return {
        "taken_at": now, "delta": {}, "running": 5, "waiting": 0, "errors": errors, "last_response_at": now,
        "health": health.to_json(),
    }  # fmt: skip


def test_harness_errors_on_workers_fail_the_run_with_exit_1(run, clock):
    coordinator = planned(run, FakeLink(nodes(5, 5)))
    assert run.t0 is not None
    for _ in range(20):
        beat(run)
    coordinator.on_report("host0_abc0", worker_report_at(run.t0 + 1, errors=2))
    coordinator.on_report("host0_abc0", worker_report_at(run.t0 + 2, errors=3))  # a running total
    assert coordinator.worker_errors == 3
    outcome = run.finish(run.t0 + 6.5, worker_errors=coordinator.worker_errors)
    assert outcome.exit_code == exitcodes.HARNESS_ERROR


def test_a_worker_report_carries_its_harness_errors(run):
    run.harness_errors = 4
    assert worker_report(run)["errors"] == 4


def test_a_refusal_names_the_worker_sends_no_plan_and_exits_104(run, capsys):
    link = FakeLink(nodes(5, 5))
    coordinator = Coordinator(run, link)
    line = coordinator.on_refused("host1_abc1", "environment CERTCTL_TOKEN contains a line break")
    assert line == "worker 1 (host1): environment CERTCTL_TOKEN contains a line break"
    coordinator.plan()
    assert [message for message, _, _ in link.sent if message == PLAN] == []
    assert run.stop_reason_now(T0) == line
    outcome = run.finish(T0)
    assert (outcome.exit_code, outcome.json_path) == (exitcodes.INVALID_CONFIG, None)


def test_the_master_flushes_once_past_the_end_and_waits_for_every_final(run):
    link = FakeLink(nodes(5, 5))
    coordinator = planned(run, link)
    assert run.t0 is not None
    end = run.t0 + 6
    assert not coordinator.is_drained(end - 0.1)
    assert not coordinator.is_drained(end)
    assert not coordinator.is_drained(end + 1)
    assert [message for message, _, _ in link.sent].count(FLUSH) == 1
    coordinator.on_report("host0_abc0", worker_report_at(end), final=True)
    coordinator.on_report("host1_abc1", worker_report_at(end), final=True)
    assert coordinator.is_drained(end + 1)


# Driven by Locust's LocalRunner ------------------------------------------------------------------


@pytest.fixture
def target() -> Iterator[str]:
    with in_process_target(20, TOKEN) as url:
        yield url


def test_locusts_local_runner_drives_a_whole_run_to_its_verdict(tmp_path, target, monkeypatch):
    """The shape's ticks come from this test (Locust's own shape worker ticks once a second)."""
    monkeypatch.setenv("CERTCTL_TOKEN", TOKEN)
    options = SimpleNamespace(
        fleet_size="20", heartbeat_interval="0.1", run_time="0.5", results_dir=str(tmp_path / "results"),
        skip_preflight=True, headless=True, scenario=None, insecure=False, ca_bundle=None,
        source_addresses=None,
    )  # fmt: skip
    shape = StormShape()
    environment = Environment(
        user_classes=[CertctlAgent], shape_class=shape, events=Events(), parsed_options=options, host=target
    )
    runner = environment.create_local_runner()
    assert isinstance(runner, LocalRunner)
    harness = Harness.install(environment, runner)
    assert harness is not None
    with gevent.Timeout(20):
        while (tick := shape.tick()) is not None:
            if runner.user_count != tick[0]:
                runner.start(*tick)  # fires test_start, spawns the fleet, then spawning_complete
            gevent.sleep(0.05)
        runner.stop()  # test_stopping drains and stops the agents, test_stop judges
    run = harness.run
    assert run is not None and run.outcome is not None
    assert run.phase() is Phase.FINISHED
    assert environment.process_exit_code == exitcodes.OK
    assert run.store.select("http_reqs", {}).count == 100  # 20 agents, 5 slots each


SATURATED = judge_health(
    {"p50": 5.0, "p99": 45.0, "max": 80.0}, 95.0, {"count": 3, "max_ms": 2.0, "total_ms": 4.0}, 0, 10
)


def finish_with_a_saturated_worker(run: Run, status: int) -> Any:
    coordinator = planned(run, FakeLink(nodes(5, 5)))
    assert run.t0 is not None
    for _ in range(20):
        beat(run, status)
    coordinator.on_report("host0_abc0", worker_report_at(run.t0 + 5, health=SATURATED))
    coordinator.on_report("host1_abc1", worker_report_at(run.t0 + 5))
    return run.finish(run.t0 + 6.5, worker_health=coordinator.worker_health())


def test_a_crossed_threshold_while_a_worker_was_saturated_is_inconclusive(run, tmp_path, capsys):
    outcome = finish_with_a_saturated_worker(run, 500)
    assert outcome.exit_code == exitcodes.INCONCLUSIVE
    generator = json.loads(Path(outcome.json_path).read_text())["generator"]
    assert generator["saturated"] is True
    assert generator["reasons"][0].startswith("worker 0 (host0): generator_lag p99 45.0 ms")
    assert [worker["worker"] for worker in generator["workers"]] == ["worker 0 (host0)", "worker 1 (host1)"]
    junit = (tmp_path / "results" / "junit-agent-storm.xml").read_text()
    assert 'errors="1"' in junit and 'failures="0"' in junit and 'type="inconclusive"' in junit
    assert "inconclusive: the load generator was saturated" in capsys.readouterr().out


def test_thresholds_that_hold_while_the_generator_was_saturated_stand_with_a_line(run, capsys):
    outcome = finish_with_a_saturated_worker(run, 200)
    assert outcome.exit_code == exitcodes.OK
    assert "so the verdict stands (its figures are upper bounds)" in capsys.readouterr().out
