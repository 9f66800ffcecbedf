"""Where the reference target keeps its fleet: the interface every backend implements."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any, Protocol

# certctl's metadata columns and their VARCHAR limits; a longer value makes certctl answer 500.
METADATA_LIMITS: Mapping[str, int] = {
    "hostname": 255,
    "os": 100,
    "architecture": 100,
    "ip_address": 45,
    "version": 50,
}
# The retired_reason a backend writes for the agents it retires when seeding (``--retired``).
RETIRED_REASON = "certctl-load: retired at seed"


class HeartbeatOutcome(enum.Enum):
    """What certctl's heartbeat handler decides, mapped to a status by the server."""

    RECORDED = 200
    NOT_FOUND = 404
    RETIRED = 410
    ERROR = 500


class AgentStore(Protocol):
    """A fleet backend. Implementations must be safe to call from many greenlets."""

    def heartbeat(self, agent_id: str, metadata: Mapping[str, str]) -> HeartbeatOutcome:
        """certctl's per-heartbeat statements: SELECT the row (retired included); missing: NOT_FOUND;
        retired: RETIRED with nothing written; UPDATE last_heartbeat_at = now() and each non-empty
        metadata value WHERE id = $1 AND retired_at IS NULL (zero rows: NOT_FOUND); when status is not
        exactly 'Online', a second UPDATE sets it; a metadata value over its column limit or a database
        error: ERROR."""
        ...

    def get_agent(self, agent_id: str) -> dict[str, Any] | None:
        """The agent's row as JSON-ready values (retired agents included), or None when unknown."""
        ...

    def agent_exists(self, agent_id: str) -> bool | None:
        """True/False for a known/unknown agent (retired agents count as known); None on a database error."""
        ...

    def is_ready(self) -> bool:
        """True when the database answers."""
        ...

    def close(self) -> None: ...
