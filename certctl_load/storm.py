"""One run's state in one Locust process: the agreed start, the agents to hand out, the samples."""

from __future__ import annotations

import time
from collections import deque
from typing import TYPE_CHECKING

from gevent.event import Event

from certctl_load.config import RunConfig
from certctl_load.metrics import MetricStore

if TYPE_CHECKING:
    import ssl

    from certctl_load.finalize import Outcome
    from certctl_load.recorder import Recorder

# The schedule starts this long after the fleet is spawned, so every agent is waiting on it.
SCHEDULE_LEAD_S = 0.25
# k6's gracefulStop: requests in flight at the end of the run get this long to finish.
GRACEFUL_STOP_S = 30.0


class Storm:
    """Per-process state of a storm; created at test start, replaced at the next."""

    def __init__(self, config: RunConfig) -> None:
        self.config = config
        self.store = MetricStore()
        self.t0: float | None = None
        self.started_at = time.time()
        self._scheduled = Event()
        self._agents: deque[int] = deque()
        self._agents_available = Event()
        self.inflight = 0
        self.last_response_at = 0.0
        self.agents_running = 0
        self.harness_errors = 0
        self.recorder: Recorder
        self.ssl_context: ssl.SSLContext | None = None
        self.outcome: Outcome | None = None
        self.stop_reason: str | None = None

    @property
    def end(self) -> float | None:
        """When the last slot of the run lies (slots strictly before it are sent)."""
        return None if self.t0 is None else self.t0 + self.config.duration_s

    def start_schedule(self, t0: float, agent_indexes: range | list[int]) -> None:
        """Fix t0 and the agents this process's users will hold; wakes every waiting agent."""
        self.t0 = t0
        self.give_agents(agent_indexes)
        self._scheduled.set()

    def give_agents(self, agent_indexes: range | list[int]) -> None:
        self._agents.extend(agent_indexes)
        if self._agents:
            self._agents_available.set()

    def wait_for_schedule(self) -> float:
        """Block (killably) until t0 is known; returns it."""
        self._scheduled.wait()
        assert self.t0 is not None
        return self.t0

    def claim_agent(self) -> int:
        """The next agent index no other user of this process holds (blocks until one is free)."""
        while not self._agents:
            self._agents_available.clear()
            self._agents_available.wait()
        self.agents_running += 1
        return self._agents.popleft()

    def release_agent(self, agent_index: int) -> None:
        """A stopped user's agent goes back to the pool, for a user spawned later to take over."""
        self.agents_running -= 1
        self.give_agents([agent_index])

    def is_drained(self, now: float) -> bool:
        """True once the run's end has passed and no request is in flight (or the grace ran out)."""
        end = self.end
        if end is None or now < end:
            return False
        return self.inflight == 0 or now >= end + GRACEFUL_STOP_S

    def test_run_duration_s(self, now: float) -> float:
        """From t0 to the later of the run's end and the last response (at least the duration)."""
        if self.t0 is None:
            return max(now - self.started_at, 0.0)
        return max(self.config.duration_s, min(now, self.last_response_at) - self.t0)
