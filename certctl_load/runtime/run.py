"""One run's state in one Locust process: the agreed start, the agents to hand out, the samples."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gevent.event import Event

from certctl_load.k6.metrics import MetricStore
from certctl_load.model.config import RunConfig

if TYPE_CHECKING:
    import ssl

    from certctl_load.runtime.judge import Outcome
    from certctl_load.runtime.recorder import Recorder

# The schedule starts this long after the fleet is spawned, so every agent is waiting on it
# with its connection open (opening one takes about 0.1 ms of the generator's time).
SCHEDULE_LEAD_S = 0.25
CONNECT_LEAD_PER_AGENT_S = 0.0001


def schedule_lead(agents: int, minimum: float = SCHEDULE_LEAD_S) -> float:
    """How long after the fleet is spawned its schedule starts, for ``agents`` in one process."""
    return max(minimum, agents * CONNECT_LEAD_PER_AGENT_S)


# k6's gracefulStop: requests in flight at the end of the run get this long to finish.
GRACEFUL_STOP_S = 30.0


@dataclass(frozen=True)
class AgentGrant:
    """An agent a user may hold: its 0-based index, and from when its slots are the user's own
    (0: all of them; a user taking over a lost or stopped agent starts at its next slot)."""

    index: int
    resume_at: float = 0.0


class Storm:
    """Per-process state of a storm; created at test start, replaced at the next."""

    def __init__(self, config: RunConfig) -> None:
        self.config = config
        self.store = MetricStore()
        self.t0: float | None = None
        self.started_at = time.time()
        self._scheduled = Event()
        self._grants: deque[AgentGrant] = deque()
        self._grants_available = Event()
        self.inflight = 0
        self.last_response_at = 0.0
        self.agents_running = 0
        self.waiting_for_agents = 0
        self.harness_errors = 0
        self.recorders: dict[str, Recorder] = {}
        self.ssl_context: ssl.SSLContext | None = None
        self.outcome: Outcome | None = None
        self.stop_reason: str | None = None  # stopped early: the target is not ready (exit 2)
        self.abort_reason: str | None = None  # stopped by an abortOnFail threshold (exit 99)
        self.incidents: list[str] = []
        # Set when this process stops on its own: agents send no new beat.
        self.closing = False
        self.interrupted = False  # stopped by a signal
        # Called when a user finds no agent to hold (a worker then asks the master for more).
        self.on_starved: Callable[[int], None] | None = None

    @property
    def end(self) -> float | None:
        """When the last slot of the run lies (slots strictly before it are sent)."""
        return None if self.t0 is None else self.t0 + self.config.duration_s

    def start_schedule(self, t0: float, grants: Iterable[AgentGrant]) -> None:
        """Fix t0 and the agents this process's users will hold; wakes every waiting agent."""
        self.t0 = t0
        self.give_agents(grants)
        self._scheduled.set()

    def give_agents(self, grants: Iterable[AgentGrant]) -> None:
        self._grants.extend(grants)
        if self._grants:
            self._grants_available.set()

    def wait_for_schedule(self) -> float:
        """Block (killably) until t0 is known; returns it."""
        self._scheduled.wait()
        assert self.t0 is not None
        return self.t0

    def claim_agent(self) -> AgentGrant:
        """The next agent no other user holds (blocks, killably, until one is granted)."""
        while not self._grants:
            self._grants_available.clear()
            self.waiting_for_agents += 1
            try:
                if self.on_starved is not None:
                    self.on_starved(self.waiting_for_agents)
                self._grants_available.wait()
            finally:
                self.waiting_for_agents -= 1
        self.agents_running += 1
        return self._grants.popleft()

    def release_agent(self, grant: AgentGrant) -> None:
        """A stopped user's agent goes back to the pool, for a user spawned later to take over."""
        self.agents_running -= 1
        self._grants.append(grant)

    def schedule_over(self, now: float) -> bool:
        """True once the run's last slot has passed."""
        return self.end is not None and now >= self.end

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
