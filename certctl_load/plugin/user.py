"""One Locust user is one certctl agent: its own id, its own connections, its own slots.

The agent's first call (the heartbeat, in the storm) runs in the user's own greenlet,
paced by Locust's ``wait_time``; any further call of the scenario runs in a greenlet of
its own, so one call in flight never holds another back.
"""

from __future__ import annotations

import time
from typing import Any

import gevent
from locust import User, task

from certctl_load.model import fleet
from certctl_load.model.calls import CallSpec, call_schedules
from certctl_load.model.schedule import AgentSchedule, after_response, on_wake
from certctl_load.runtime.httpclient import Connection, build_request
from certctl_load.runtime.recorder import Recorder
from certctl_load.runtime.run import AgentGrant, Storm

# How long an agent whose run is over sleeps; Locust kills it when the run stops.
_IDLE_S = 3600.0


def call_request(storm: Storm, call: CallSpec, agent_number: int) -> bytes:
    """The request bytes of one call for one agent, built once and sent on every beat."""
    config = storm.config
    agent_id = fleet.agent_id(agent_number, config.scenario.id_prefix)
    body = call.request_body(agent_number)
    headers = {"Authorization": f"Bearer {config.token}", "User-Agent": "certctl-load"}
    if body:
        headers["Content-Type"] = "application/json"
    return build_request(config.endpoint, call.method, call.path.replace("{id}", agent_id), headers, body)


class CallLoop:
    """One call of one agent: its schedule, its connection, its drop and lateness accounting."""

    __slots__ = ("storm", "recorder", "schedule", "request", "next_slot", "connection")

    def __init__(
        self,
        storm: Storm,
        recorder: Recorder,
        schedule: AgentSchedule,
        request: bytes,
        first_slot: int,
        source_address: str | None = None,
    ) -> None:
        config = storm.config
        self.storm = storm
        self.recorder = recorder
        self.schedule = schedule
        self.request = request
        self.next_slot = first_slot
        self.connection = Connection(
            config.endpoint,
            ssl_context=storm.ssl_context,
            timeout_s=config.scenario.request_timeout_s,
            keep_alive=config.scenario.connection == "keep-alive",
            source_address=source_address,
        )

    def seconds_to_next(self, now: float) -> float | None:
        """How long until the next slot; None once the run has no slot left for this call."""
        if self.next_slot >= self.schedule.slot_count():
            return None
        return max(0.0, self.schedule.slot_time(self.next_slot) - now)

    def beat(self) -> None:
        """Send the request due now (dropping slots missed while unable to send), record it."""
        schedule, storm = self.schedule, self.storm
        wake = on_wake(schedule, self.next_slot, time.time())
        self.recorder.dropped(wake.dropped)
        if wake.slot >= schedule.slot_count() or storm.closing:
            self.next_slot = wake.slot
            return
        storm.inflight += 1
        try:
            exchange = self.connection.request(self.request)
        finally:
            storm.inflight -= 1
        finished = time.time()
        storm.last_response_at = max(storm.last_response_at, finished)
        self.recorder.record(exchange, late=wake.late)
        self.next_slot, dropped = after_response(schedule, wake.slot, finished)
        self.recorder.dropped(dropped)

    def run_forever(self) -> None:
        """The loop of a secondary call, in its own greenlet until the run ends or the user stops."""
        while (wait := self.seconds_to_next(time.time())) is not None:
            gevent.sleep(wait)
            self.beat()


class CertctlAgent(User):
    """A certctl agent making its scenario's calls on the fleet's absolute schedule."""

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        self.storm: Storm = environment.certctl_storm
        self.grant: AgentGrant | None = None
        self.loops: list[CallLoop] = []
        self._side_greenlets: tuple[gevent.Greenlet, ...] = ()

    def _join_fleet(self) -> None:
        storm = self.storm
        t0 = storm.wait_for_schedule()
        self.grant = storm.claim_agent()
        config = storm.config  # read after the schedule: a distributed plan may have set it
        schedules = call_schedules(self.grant.index, config.fleet_size, config.calls, t0, config.duration_s)
        sources = config.source_addresses
        source = sources[self.grant.index % len(sources)] if sources else None
        for call, schedule in zip(config.calls, schedules, strict=True):
            request = call_request(storm, call, self.grant.index + 1)
            first_slot = schedule.first_at_or_after(self.grant.resume_at)
            recorder = storm.recorders[call.name]
            self.loops.append(CallLoop(storm, recorder, schedule, request, first_slot, source))
        for loop in self.loops:
            loop.connection.warm_up()
        self._side_greenlets = tuple(gevent.spawn(loop.run_forever) for loop in self.loops[1:])

    def wait_time(self) -> float:
        """Seconds until the first call's next slot (Locust can kill the user during this wait)."""
        if not self.loops:
            self._join_fleet()
        wait = self.loops[0].seconds_to_next(time.time())
        return _IDLE_S if wait is None else wait

    @task
    def first_call(self) -> None:
        if self.loops:  # Locust runs a task at spawn; the agent's first slot comes from wait_time.
            self.loops[0].beat()

    def on_stop(self) -> None:
        gevent.killall(self._side_greenlets)
        for loop in self.loops:
            loop.connection.close()
        if self.grant is not None:
            self.storm.release_agent(AgentGrant(self.grant.index, resume_at=time.time()))
