"""The connect phase: the fleet opening its keep-alive connections before t0, at a bounded
concurrency, reported on its own (never in ``http_req_duration``).

Each agent records its connections' outcomes once; the phase is complete when every agent this
process holds has. A master merges its workers' phases. More than 1% of the fleet failing to
connect stops the run before any heartbeat (exit 2), naming the error kinds.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from certctl_load.k6.percentiles import percentile

# More than this fraction of the fleet failing to connect stops the run: the target is not ready.
MAX_FAILED_FRACTION = 0.01

ConnectOutcome = tuple[float, str | None]
"""One connection's opening: seconds it took, and the error kind (None when it opened)."""


class ConnectPhase:
    """The outcomes of the agents' connects in one process (or, merged, the whole fleet)."""

    def __init__(self, agents: int) -> None:
        self.agents = agents  # how many agents are to connect
        self.recorded = 0
        self.failed_agents = 0
        self.errors: Counter[str] = Counter()
        self.durations_ms: list[float] = []
        self.started_at: float | None = None
        self.finished_at: float | None = None

    @property
    def complete(self) -> bool:
        return self.recorded >= self.agents

    def begin(self, now: float) -> None:
        """An agent starts connecting (the first start is the phase's)."""
        if self.started_at is None:
            self.started_at = now

    def record(self, outcomes: Sequence[ConnectOutcome], now: float) -> None:
        """One agent's connections, opened or failed; an agent fails when any of them did."""
        self.recorded += 1
        self.finished_at = now
        kinds = [kind for _, kind in outcomes if kind is not None]
        self.failed_agents += bool(kinds)
        self.errors.update(kinds)
        self.durations_ms.extend(seconds * 1000.0 for seconds, _ in outcomes)

    def to_wire(self) -> dict[str, Any]:
        """This phase as plain data for the master."""
        return {
            "agents": self.agents,
            "recorded": self.recorded,
            "failed_agents": self.failed_agents,
            "errors": dict(self.errors),
            "durations_ms": self.durations_ms,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
        }

    def merge(self, wire: Mapping[str, Any]) -> None:
        """Add a worker's phase (its agents were counted in ``agents`` already)."""
        self.recorded += wire["recorded"]
        self.failed_agents += wire["failed_agents"]
        self.errors.update(wire["errors"])
        self.durations_ms.extend(wire["durations_ms"])
        started, finished = wire["started_at"], wire["finished_at"]
        if started is not None:
            self.started_at = started if self.started_at is None else min(self.started_at, started)
        if finished is not None:
            self.finished_at = finished if self.finished_at is None else max(self.finished_at, finished)

    def failure(self, fleet_size: int) -> str | None:
        """The one line that stops the run when more than 1% of the fleet could not connect."""
        if self.failed_agents <= MAX_FAILED_FRACTION * fleet_size:
            return None
        kinds = ", ".join(f"{kind} {count}" for kind, count in self.errors.most_common())
        share = self.failed_agents / fleet_size
        return (
            f"stopped before the first heartbeat: {self.failed_agents} of {fleet_size} agents ({share:.1%}) "
            f"could not connect ({kinds}); more than {MAX_FAILED_FRACTION:.0%} of the fleet"
        )

    def summary(self) -> dict[str, Any]:
        """The phase for people and the summary JSON: agents connected, how long the fleet took,
        connect time p50/p95/max, errors by kind."""
        ordered = sorted(self.durations_ms)
        took = (
            None
            if self.started_at is None or self.finished_at is None
            else self.finished_at - self.started_at
        )
        return {
            "agents": self.agents,
            "connected": self.recorded - self.failed_agents,
            "failed": self.failed_agents,
            "took_s": took,
            "p50_ms": percentile(ordered, 50) if ordered else None,
            "p95_ms": percentile(ordered, 95) if ordered else None,
            "max_ms": ordered[-1] if ordered else None,
            "errors": dict(self.errors.most_common()),
        }
