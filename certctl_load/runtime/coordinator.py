"""Locust's distributed mode: one fleet, one schedule and one exact verdict across workers.

The master deals agent ids to workers through Locust's custom messages (interleaved, so
every worker's beats spread over the whole interval), agrees t0, and merges the workers'
exact samples (streamed with every worker report, then a final flush once each worker is
drained). A lost worker's agents are logged, their missed beats counted as dropped, and,
when Locust re-deals its users, handed to the new users from the slot where they stopped.
A worker whose configuration is bad says so before it takes an agent; the master then sends
no plan and refuses the run. Locust itself is reached only through :class:`WorkerLink`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import gevent

from certctl_load.model import fleet
from certctl_load.model.calls import call_schedules, with_interval
from certctl_load.model.schedule import AgentSchedule
from certctl_load.runtime.generator import Health
from certctl_load.runtime.run import GRACEFUL_STOP_S, AgentGrant, Run, Shape, schedule_lead

logger = logging.getLogger("certctl_load")

PLAN = "certctl_plan"
GRANT = "certctl_grant"
NEED = "certctl_need"
FLUSH = "certctl_flush"
FINAL = "certctl_final"
REFUSED = "certctl_refused"
CONNECTED = "certctl_connected"
START = "certctl_start"
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


@dataclass(frozen=True)
class WorkerNode:
    """A worker as the master's runner sees it."""

    id: str
    index: int
    host: str
    users: int
    missing: bool


class WorkerLink(Protocol):
    """The master's line to its workers (Locust's MasterRunner, adapted in the plugin)."""

    def workers(self) -> Sequence[WorkerNode]:
        """Every connected worker."""
        ...

    def send(self, message: str, data: Any, worker: str | None = None) -> None:
        """Send ``message`` to one worker, or to all when ``worker`` is None."""
        ...


@dataclass
class _WorkerState:
    agents: set[int] = field(default_factory=set)
    last_heard: float = 0.0
    final: bool = False
    running: int = 0
    waiting: int = 0
    errors: int = 0
    connected: bool = False
    lost: bool = False
    name: str = ""  # "worker <index> (<host>)"
    health: Health | None = None
    hold: tuple[int, int] = (0, 0)  # requests sent and completed in the hold, so far
    # agent index -> from when another user may take it over (set when the worker is lost)
    resume_at: dict[int, float] = field(default_factory=dict)


class Coordinator:
    """The master's view of the fleet across workers."""

    def __init__(self, run: Run, link: WorkerLink) -> None:
        self.run = run
        self.link = link
        self.workers: dict[str, _WorkerState] = {}
        self.orphans: dict[int, float] = {}  # agent index -> from when no live user holds it
        self.flushed = False

    def worker_health(self) -> dict[str, Health]:
        """Each worker's last reported generator health, by its name."""
        return {s.name or w: s.health for w, s in self.workers.items() if s.health is not None}

    @property
    def worker_errors(self) -> int:
        """Harness errors the workers reported (exceptions in their users)."""
        return sum(state.errors for state in self.workers.values())

    # Start -----------------------------------------------------------------------------------

    def plan(self) -> None:
        """Deal the fleet to the spawned workers and send each its agents and t0 (none when the
        run was refused: no heartbeat anywhere)."""
        run = self.run
        if run.refusal is not None:
            return
        nodes = sorted((node for node in self.link.workers() if node.users), key=lambda node: node.index)
        dealt = deal_agents({node.id: node.users for node in nodes}, [node.id for node in nodes])
        config = run.config
        now = run.clock()
        run.prepare(
            Shape(config.fleet_size, config.duration_s, config.calls), (), connecting_agents=config.fleet_size
        )
        t0 = None
        if run.connect is None:  # no connect phase: t0 now, leaving the workers time to build their loops
            t0 = now + schedule_lead(max(map(len, dealt.values()), default=0), DISTRIBUTED_LEAD_S)
            run.start_at(t0)
        names = {node.id: f"worker {node.index} ({node.host})" for node in nodes}
        run.timeline.expect(dealt)
        for worker, agents in dealt.items():
            self.workers[worker] = _WorkerState(agents=set(agents), last_heard=now, name=names[worker])
            plan = {
                "t0": t0,
                "fleet_size": config.fleet_size,
                "intervals": {call.name: call.interval_s for call in config.calls},
                "duration_s": config.duration_s,
                "agents": agents,
                "samples": config.out is not None,  # k6's JSON output: stream every raw sample
            }
            self.link.send(PLAN, plan, worker)
        agreed = "t0 agreed" if t0 is not None else "t0 once every worker has connected its agents"
        logger.info("fleet of %d agents dealt to %d workers; %s", config.fleet_size, len(dealt), agreed)

    def on_connected(self, worker: str, phase: Mapping[str, Any] | None) -> None:
        """A worker's agents are ready (connected, with its connect phase); once every live worker's
        are, t0 is agreed and sent, or the run stops when the fleet could not connect."""
        state = self.workers.setdefault(worker, _WorkerState())
        state.connected = True
        if phase is not None and self.run.connect is not None:
            self.run.connect.merge(phase)
        self._start_when_connected()

    def _start_when_connected(self) -> None:
        run = self.run
        if run.t0 is not None or run.connect is None or run.stop_reason is not None:
            return
        if any(s.agents and not s.connected and not s.lost for s in self.workers.values()):
            return
        run.stop_reason = run.connect.failure(run.config.fleet_size)
        if run.stop_reason is not None:
            return
        t0 = run.clock() + DISTRIBUTED_LEAD_S
        run.start_at(t0)
        self.link.send(START, {"t0": t0})
        logger.info("every worker's agents connected; t0 agreed")

    def on_refused(self, worker: str, line: str) -> str:
        """A worker's configuration is bad: the run is refused with the worker named; returns the line."""
        node = next((node for node in self.link.workers() if node.id == worker), None)
        where = f"worker {node.index} ({node.host})" if node is not None else f"worker {worker}"
        refusal = f"{where}: {line}"
        self.run.refuse(refusal)
        return refusal

    # Data ------------------------------------------------------------------------------------

    def on_report(self, worker: str, data: dict[str, Any], *, final: bool = False) -> None:
        run = self.run
        state = self.workers.setdefault(worker, _WorkerState())
        run.store.merge(data["delta"])
        if "timeline" in data:
            run.timeline.merge(worker, data["timeline"])
        samples = data.get("samples")
        if samples is not None and run.samples is not None:
            run.samples.merge(samples)
        # The worker's own clock when it took the samples: everything before is in them.
        state.last_heard = max(state.last_heard, data["taken_at"])
        state.running = data["running"]
        state.waiting = data["waiting"]
        state.errors = max(state.errors, data["errors"])
        state.health = Health.from_json(data["health"])
        run.last_response_at = max(run.last_response_at, data["last_response_at"])
        sent, completed = data["hold"]
        state.hold = (sent, completed)
        run.hold_sent = sum(s.hold[0] for s in self.workers.values())
        run.hold_completed = sum(s.hold[1] for s in self.workers.values())
        if final:
            state.final = True
        run.agents_running = sum(s.running for s in self.workers.values() if not s.lost)

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
            self.link.send(GRANT, {"grants": grants}, worker)
            logger.info("%d orphaned agents handed to worker %s", len(grants), worker)

    # Losses ----------------------------------------------------------------------------------

    def check_workers(self) -> None:
        """Notice workers Locust has dropped or marked missing; orphan their agents."""
        live = {node.id for node in self.link.workers() if not node.missing}
        for worker, state in self.workers.items():
            if state.lost or worker in live or not state.agents:
                continue
            state.lost = True
            self.run.timeline.forget(worker)  # its seconds hold the fleet's back no more
            self._orphan(worker, state)
        self.hand_out_orphans()
        self._start_when_connected()

    def _schedules(self, index: int) -> list[tuple[str, AgentSchedule]]:
        step = self.run.step
        assert step is not None
        schedules = call_schedules(index, step.fleet_size, step.calls, step.t0, step.duration_s)
        return [(call.name, schedule) for call, schedule in zip(step.calls, schedules, strict=True)]

    def _orphan(self, worker: str, state: _WorkerState) -> None:
        """Its agents may be taken over from their next slot: the master cannot know whether the
        lost worker sent anything since it was last heard of, so nothing earlier is sent twice."""
        run = self.run
        now = run.clock()
        t0 = now if run.t0 is None else run.t0  # lost while the fleet was connecting: from t0
        agents = sorted(state.agents)
        for index in agents:
            state.resume_at[index] = now
            self.orphans[index] = now
        shown = ", ".join(fleet.agent_id(i + 1, run.config.scenario.id_prefix) for i in agents[:5])
        more = f" and {len(agents) - 5} more" if len(agents) > 5 else ""
        incident = (
            f"worker {worker} was lost: its {len(agents)} agents ({shown}{more}) stopped beating "
            f"{state.last_heard - t0:.1f}s into the run"
        )
        run.incidents.append(incident)
        logger.error("%s", incident)

    def lost_beats(self) -> dict[str, int]:
        """Per call, slots of lost workers' agents with no sample: after the worker was last heard
        of, until another user took the agent over (or the run's end, if no one did)."""
        totals: dict[str, int] = {call.name: 0 for call in self.run.config.calls}
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
        end = self.run.end
        if end is None or now < end:
            return False
        if not self.flushed:
            self.flushed = True
            self.link.send(FLUSH, None)
        pending = [w for w, s in self.workers.items() if not s.final and not s.lost]
        return not pending or now >= end + FINAL_WAIT_S


Send = Callable[[str, Any], None]
"""A worker's line to the master: ``send(message, data)``."""


def worker_report(run: Run, *, final: bool = False) -> dict[str, Any]:
    """What a worker sends the master: the exact samples since its last report, its timeline's
    seconds since then (``final``: its last), and its status; with k6's JSON output, the raw
    samples too. ``taken_at``: the worker answers (sent, or counted as dropped) for every slot
    before it: now, or, once the run is closed, the moment it closed (a report after the
    hand-over must not claim the slots no one sent since)."""
    report = {
        "taken_at": run.clock() if run.closed_at is None else run.closed_at,
        "delta": run.store.take_delta(),
        "timeline": run.timeline.take_delta(run.clock(), done=final),
        "running": run.agents_running,
        "waiting": run.waiting_for_agents,
        "errors": run.harness_errors,
        "health": run.health().to_json(),
        "last_response_at": run.last_response_at,
        "hold": [run.hold_sent, run.hold_completed],
    }
    if run.samples is not None:
        report["samples"] = run.samples.take()
    return report


def apply_plan(run: Run, plan: dict[str, Any]) -> None:
    """A worker takes the master's plan: the fleet's shape, its own agents and t0 (which, when the
    fleet connects first, comes later with START)."""
    calls = run.config.calls
    for name, interval in plan["intervals"].items():
        calls = with_interval(calls, name, interval)
    run.keep_samples(bool(plan.get("samples")))
    run.timeline.worker = True  # the master judges the windows
    run.prepare(Shape(plan["fleet_size"], plan["duration_s"], calls), [AgentGrant(i) for i in plan["agents"]])
    if plan["t0"] is not None:
        run.start_at(plan["t0"])


def apply_start(run: Run, start: dict[str, Any]) -> None:
    """A worker takes the t0 its master agreed once the whole fleet had connected."""
    if run.t0 is None:
        run.start_at(start["t0"])


def apply_grant(run: Run, grant: dict[str, Any]) -> None:
    run.give_agents(AgentGrant(index, resume_at) for index, resume_at in grant["grants"])


def wait_until_drained(run: Run, timeout_s: float) -> None:
    """Wait (cooperatively) until no request is in flight, or ``timeout_s`` passed; at least one
    poll, so that agents already due when the run closed wake first and account for their slots."""
    deadline = run.clock() + timeout_s
    while True:
        gevent.sleep(0.01)
        if not run.inflight or run.clock() >= deadline:
            return


def send_final_when_drained(run: Run, send: Send) -> None:
    """Once nothing is in flight (or the grace period ran out), send the master the last samples."""

    def wait_and_send() -> None:
        wait_until_drained(run, GRACEFUL_STOP_S)
        run.wind_down()
        send(FINAL, worker_report(run, final=True))

    gevent.spawn(wait_and_send)


def hand_over_on_exit(run: Run, send: Send) -> None:
    """A worker stopping on its own (SIGTERM, Ctrl-C): send no new beat, let those in flight
    finish briefly, then give the master every sample, so another worker can take over."""
    run.close()  # no beat is sent from here on: the master counts later slots as lost
    wait_until_drained(run, 5.0)
    run.drained()
    send(FINAL, worker_report(run, final=True))
    run.wind_down()
