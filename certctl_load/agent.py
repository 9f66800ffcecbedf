"""One Locust user is one certctl agent: its own id, its own connection, its own slots."""

from __future__ import annotations

import json
import time
from typing import Any

from locust import User, task

from certctl_load import fleet
from certctl_load.httpclient import Connection, build_request
from certctl_load.recorder import Recorder
from certctl_load.schedule import AgentSchedule, after_response, agent_schedule, on_wake
from certctl_load.storm import AgentGrant, Storm

# How long an agent whose run is over sleeps; Locust kills it when the run stops.
_IDLE_S = 3600.0


def heartbeat_request(storm: Storm, agent_number: int) -> bytes:
    """The agent's heartbeat request, built once: certctl's seed values as the body."""
    config = storm.config
    agent_id = fleet.agent_id(agent_number, config.scenario.id_prefix)
    body = json.dumps(fleet.heartbeat_metadata(agent_number), separators=(",", ":")).encode()
    headers = {
        "Authorization": f"Bearer {config.token}",
        "Content-Type": "application/json",
        "User-Agent": "certctl-load",
    }
    return build_request(config.endpoint, "POST", f"/api/v1/agents/{agent_id}/heartbeat", headers, body)


class CertctlAgent(User):
    """A certctl agent heartbeating on the fleet's absolute schedule."""

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        self.storm: Storm = environment.certctl_storm
        self.recorder: Recorder = self.storm.recorder
        self.grant: AgentGrant | None = None
        self.schedule: AgentSchedule | None = None
        self.next_slot = 0
        self.request_bytes = b""
        self.connection: Connection | None = None

    def _join_fleet(self) -> None:
        storm = self.storm
        t0 = storm.wait_for_schedule()
        self.grant = storm.claim_agent()
        config = storm.config  # read after the schedule: a distributed plan may have set it
        self.schedule = agent_schedule(
            self.grant.index, config.fleet_size, config.heartbeat_interval_s, t0, config.duration_s
        )
        self.next_slot = self.grant.first_slot
        self.request_bytes = heartbeat_request(storm, self.grant.index + 1)
        self.connection = Connection(
            config.endpoint,
            ssl_context=storm.ssl_context,
            timeout_s=config.scenario.request_timeout_s,
            keep_alive=config.scenario.connection == "keep-alive",
        )

    def wait_time(self) -> float:
        """Seconds until this agent's next slot (Locust can kill the user during this wait)."""
        if self.schedule is None:
            self._join_fleet()
        assert self.schedule is not None
        if self.next_slot >= self.schedule.slot_count():
            return _IDLE_S
        return max(0.0, self.schedule.slot_time(self.next_slot) - time.time())

    @task
    def heartbeat(self) -> None:
        schedule = self.schedule
        if schedule is None:
            return  # Locust runs a task at spawn; the agent's first slot comes from wait_time.
        wake = on_wake(schedule, self.next_slot, time.time())
        self.recorder.dropped(wake.dropped)
        storm = self.storm
        if wake.slot >= schedule.slot_count() or storm.closing:
            self.next_slot = wake.slot
            return
        assert self.connection is not None
        storm.inflight += 1
        try:
            exchange = self.connection.request(self.request_bytes)
        finally:
            storm.inflight -= 1
        finished = time.time()
        storm.last_response_at = max(storm.last_response_at, finished)
        self.recorder.record(exchange, late=wake.late)
        self.next_slot, dropped = after_response(schedule, wake.slot, finished)
        self.recorder.dropped(dropped)

    def on_stop(self) -> None:
        if self.connection is not None:
            self.connection.close()
        if self.grant is not None:
            self.storm.release_agent(AgentGrant(self.grant.index, self.next_slot))
