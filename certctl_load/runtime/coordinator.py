"""Locust's distributed mode: one fleet, one schedule and one exact verdict across workers.

The master deals agent ids to workers through Locust's custom messages (interleaved, so
every worker's beats spread over the whole interval), agrees t0, and merges the workers'
exact samples (streamed with every worker report, then a final flush once each worker is
drained). A lost worker's agents are logged, their missed beats counted as dropped, and,
when Locust re-deals its users, handed to the new users from the slot where they stopped.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from typing import Any

import gevent

from certctl_load.model import fleet
from certctl_load.model.calls import call_schedules, with_interval
from certctl_load.model.schedule import AgentSchedule
from certctl_load.runtime.run import GRACEFUL_STOP_S, AgentGrant, Storm, schedule_lead

logger = logging.getLogger("certctl_load")

PLAN = "certctl_plan"
GRANT = "certctl_grant"
NEED = "certctl_need"
FLUSH = "certctl_flush"
FINAL = "certctl_final"
REPORT_KEY = "certctl"
# Workers need a moment to receive the plan before the first slot.
DISTRIBUTED_LEAD_S = 0.75
# After the grace period, a worker that never sent its final data is given up on.
FINAL_WAIT_S = GRACEFUL_STOP_S + 5.0


def deal_agents(user_counts: dict[str, int], order: list[str]) -> dict[str, list[int]]:
    """Deal agent indexes 0..sum-1 round-robin over workers in ``order``, each up to its user count.

    With counts that differ by at most one (as Locust deals users), worker w of W holds
    w, w+W, w+2W, ...: its agents' slots spread evenly over the whole interval.
    """
    remaining = {worker: user_counts.get(worker, 0) for worker in order}
    dealt: dict[str, list[int]] = {worker: [] for worker in order}
    index = 0
    total = sum(remaining.values())
    while index < total:
        for worker in order:
            if remaining[worker] > 0:
                dealt[worker].append(index)
                remaining[worker] -= 1
                index += 1
    return dealt


@dataclass
class _WorkerState:
    agents: set[int] = field(default_factory=set)
    last_heard: float = 0.0
    final: bool = False
    running: int = 0
    inflight: int = 0
    waiting: int = 0
    lost: bool = False
    # agent index -> from when another user may take it over (set when the worker is lost)
    resume_at: dict[int, float] = field(default_factory=dict)


class Coordinator:
    """The master's view of the fleet across workers."""

    def __init__(self, storm: Storm, runner: Any) -> None:
        self.storm = storm
        self.runner = runner
        self.workers: dict[str, _WorkerState] = {}
        self.orphans: dict[int, int] = {}  # agent index -> first slot no live user holds
        self.flushed = False

    # Start -----------------------------------------------------------------------------------

    def plan(self) -> None:
        """Deal the fleet to the spawned workers and send each its agents and t0."""
        storm, runner = self.storm, self.runner
        counts = {
            node.id: sum(node.user_classes_count.values())
            for node in runner.clients.values()
            if node.user_classes_count
        }
        order = sorted(counts, key=runner.get_worker_index)
        dealt = deal_agents(counts, order)
        config = storm.config
        t0 = time.time() + schedule_lead(max(map(len, dealt.values()), default=0), DISTRIBUTED_LEAD_S)
        storm.t0 = t0
        now = time.time()
        for worker, agents in dealt.items():
            self.workers[worker] = _WorkerState(agents=set(agents), last_heard=now)
            runner.send_message(
                PLAN,
                {
                    "t0": t0,
                    "fleet_size": config.fleet_size,
                    "intervals": {call.name: call.interval_s for call in config.calls},
                    "duration_s": config.duration_s,
                    "agents": agents,
                },
                client_id=worker,
            )
        logger.info("fleet of %d agents dealt to %d workers; t0 agreed", config.fleet_size, len(dealt))

    # Data ------------------------------------------------------------------------------------

    def on_report(self, worker: str, data: dict[str, Any], *, final: bool = False) -> None:
        state = self.workers.setdefault(worker, _WorkerState())
        self.storm.store.merge(data["delta"])
        # The worker's own clock when it took the samples: everything before is in them.
        state.last_heard = max(state.last_heard, data["taken_at"])
        state.running = data["running"]
        state.inflight = data["inflight"]
        state.waiting = data["waiting"]
        self.storm.last_response_at = max(self.storm.last_response_at, data["last_response_at"])
        if final:
            state.final = True
        self.storm.agents_running = sum(s.running for s in self.workers.values() if not s.lost)

    def on_need(self, worker: str, waiting: int) -> None:
        """A worker has users without an agent (Locust re-dealt a lost worker's users)."""
        self.workers.setdefault(worker, _WorkerState()).waiting = waiting
        self.hand_out_orphans()

    def hand_out_orphans(self) -> None:
        """Orphaned agents go to live workers' waiting users, from the slot where they stopped."""
        for worker, state in self.workers.items():
            if state.lost or not state.waiting or not self.orphans:
                continue
            grants = sorted(self.orphans.items())[: state.waiting]  # (agent index, resume_at)
            for index, _ in grants:
                del self.orphans[index]
            state.agents.update(index for index, _ in grants)
            state.waiting -= len(grants)
            self.runner.send_message(GRANT, {"grants": grants}, client_id=worker)
            logger.info("%d orphaned agents handed to worker %s", len(grants), worker)

    # Losses ----------------------------------------------------------------------------------

    def check_workers(self) -> None:
        """Notice workers Locust has dropped or marked missing; orphan their agents."""
        live = {node.id for node in self.runner.clients.values() if node.state != "missing"}
        for worker, state in self.workers.items():
            if state.lost or worker in live or not state.agents:
                continue
            state.lost = True
            self._orphan(worker, state)
        self.hand_out_orphans()

    def _schedules(self, index: int) -> list[tuple[str, AgentSchedule]]:
        storm = self.storm
        config = storm.config
        assert storm.t0 is not None
        schedules = call_schedules(index, config.fleet_size, config.calls, storm.t0, config.duration_s)
        return [(call.name, schedule) for call, schedule in zip(config.calls, schedules, strict=True)]

    def _orphan(self, worker: str, state: _WorkerState) -> None:
        """Its agents may be taken over from their next slot: the master cannot know whether the
        lost worker sent anything since it was last heard of, so nothing earlier is sent twice."""
        storm = self.storm
        assert storm.t0 is not None
        now = time.time()
        agents = sorted(state.agents)
        for index in agents:
            state.resume_at[index] = now
            self.orphans[index] = now
        config = storm.config
        shown = ", ".join(fleet.agent_id(i + 1, config.scenario.id_prefix) for i in agents[:5])
        more = f" and {len(agents) - 5} more" if len(agents) > 5 else ""
        incident = (
            f"worker {worker} was lost: its {len(agents)} agents ({shown}{more}) stopped beating "
            f"{state.last_heard - storm.t0:.1f}s into the run"
        )
        storm.incidents.append(incident)
        logger.error("%s", incident)

    def lost_beats(self) -> dict[str, int]:
        """Per call, slots of lost workers' agents with no sample: after the worker was last heard
        of, until another user took the agent over (or the run's end, if no one did)."""
        totals: dict[str, int] = {call.name: 0 for call in self.storm.config.calls}
        for state in self.workers.values():
            for index, resume_at in state.resume_at.items():
                for name, schedule in self._schedules(index):
                    taken_over = index not in self.orphans
                    until = schedule.first_at_or_after(resume_at) if taken_over else schedule.slot_count()
                    since = schedule.first_at_or_after(state.last_heard)
                    totals[name] += max(0, min(until, schedule.slot_count()) - since)
        return totals

    # End -------------------------------------------------------------------------------------

    def is_drained(self, now: float) -> bool:
        """Past the end, every live worker has sent its final data (or the wait ran out)."""
        end = self.storm.end
        if end is None or now < end:
            return False
        if not self.flushed:
            self.flushed = True
            self.runner.send_message(FLUSH, None)
        pending = [w for w, s in self.workers.items() if not s.final and not s.lost]
        return not pending or now >= end + FINAL_WAIT_S


def worker_report(storm: Storm) -> dict[str, Any]:
    """What a worker sends the master: the exact samples since its last report, and its status."""
    return {
        "taken_at": time.time(),
        "delta": storm.store.take_delta(),
        "running": storm.agents_running,
        "inflight": storm.inflight,
        "waiting": storm.waiting_for_agents,
        "last_response_at": storm.last_response_at,
    }


def apply_plan(storm: Storm, plan: dict[str, Any]) -> None:
    """A worker takes the master's plan: the fleet's shape, t0 and its own agents."""
    config = storm.config
    calls = config.calls
    for name, interval in plan["intervals"].items():
        calls = with_interval(calls, name, interval)
    storm.config = replace(config, fleet_size=plan["fleet_size"], duration_s=plan["duration_s"], calls=calls)
    storm.start_schedule(plan["t0"], [AgentGrant(index) for index in plan["agents"]])


def apply_grant(storm: Storm, grant: dict[str, Any]) -> None:
    storm.give_agents(AgentGrant(index, resume_at) for index, resume_at in grant["grants"])


def wait_until_drained(storm: Storm, timeout_s: float) -> None:
    """Wait (cooperatively) until no request is in flight, or ``timeout_s`` passed."""
    deadline = time.time() + timeout_s
    while storm.inflight and time.time() < deadline:
        gevent.sleep(0.01)


def send_final_when_drained(storm: Storm, runner: Any) -> None:
    """Once nothing is in flight (or the grace period ran out), send the master the last samples."""

    def wait_and_send() -> None:
        wait_until_drained(storm, GRACEFUL_STOP_S)
        runner.send_message(FINAL, worker_report(storm))

    gevent.spawn(wait_and_send)


def hand_over_on_exit(storm: Storm, runner: Any) -> None:
    """A worker stopping on its own (SIGTERM, Ctrl-C): send no new beat, let those in flight
    finish briefly, then give the master every sample, so another worker can take over."""
    storm.closing = True
    wait_until_drained(storm, 5.0)
    runner.send_message(FINAL, worker_report(storm))
