"""One Locust user is one certctl agent: its own id, its own connections, its own slots.

The agent's first call (the heartbeat, in the storm) runs in the user's own greenlet, paced by
Locust's ``wait_time``; any further call of the scenario runs in a greenlet of its own, so one
call in flight never holds another back. The loops themselves are ``runtime.call_loop``'s.
"""

from __future__ import annotations

import gevent
from locust import User, task
from locust.env import Environment

from certctl_load.plugin.harness import harness_for
from certctl_load.runtime.call_loop import CallLoop, agent_loops, schedule_loops
from certctl_load.runtime.run import AgentGrant, Run

# How long an agent whose run is over (or refused) sleeps; Locust kills it when the run stops.
_IDLE_S = 3600.0


class CertctlAgent(User):
    """A certctl agent making its scenario's calls on the fleet's absolute schedule."""

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        self._run: Run | None = harness_for(environment).run
        self.grant: AgentGrant | None = None
        self.loops: list[CallLoop] = []
        self._side_greenlets: tuple[gevent.Greenlet, ...] = ()

    def _join_fleet(self, run: Run) -> None:
        """Claim an agent, build its loops, connect (when the fleet connects first), then wait for
        t0 and take the agent's slots."""
        self.grant = run.claim_agent()
        self.loops = agent_loops(run, self.grant.index)
        run.join([loop.connection for loop in self.loops])
        step = run.wait_for_schedule()
        schedule_loops(self.loops, step, self.grant.index, self.grant.resume_at)
        self._side_greenlets = tuple(gevent.spawn(loop.run_forever) for loop in self.loops[1:])

    def wait_time(self) -> float:
        """Seconds until the first call's next slot (Locust can kill the user during this wait)."""
        if self._run is None:  # this worker refused the run: it takes no agent
            return _IDLE_S
        if not self.loops:
            self._join_fleet(self._run)
        wait = self.loops[0].seconds_to_next(self._run.clock())
        return _IDLE_S if wait is None else wait

    @task
    def first_call(self) -> None:
        if self.loops:  # Locust runs a task at spawn; the agent's first slot comes from wait_time.
            self.loops[0].beat()

    def on_stop(self) -> None:
        gevent.killall(self._side_greenlets)
        for loop in self.loops:
            loop.connection.close()
        if self._run is not None and self.grant is not None:
            self._run.release_agent(AgentGrant(self.grant.index, resume_at=self._run.clock()))
