"""Where the reference target keeps its fleet: the interface every backend implements, and the
heartbeat statements every backend runs (:class:`AgentStatements`, over a driver's :class:`Connection`).
"""

from __future__ import annotations

import enum
import logging
import string
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from certctl_load.model.fleet import SEED_STATUS

log = logging.getLogger(__name__)

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
# certctl scans these into Go strings: a NULL fails the row scan and the heartbeat answers 500.
_SCANNED_AS_STRING = ("os", "architecture", "ip_address", "version")
# certctl's domain.AgentStatusOnline, which the seed writes too.
_ONLINE = SEED_STATUS

# certctl's AgentRepository statements; {name} is a named parameter, written in the driver's style.
# Get: by id, retired rows included.
_SELECT_AGENT = """
SELECT id, name, hostname, status, last_heartbeat_at, registered_at, api_key_hash,
       os, architecture, ip_address, version, retired_at, retired_reason
  FROM agents WHERE id = {id}
"""
_AGENT_EXISTS = "SELECT 1 FROM agents WHERE id = {id}"
# UpdateHeartbeat: each metadata column kept when the new value is ''.
_UPDATE_HEARTBEAT = """
UPDATE agents SET
    last_heartbeat_at = now(),
    hostname = CASE WHEN {hostname} = '' THEN hostname ELSE {hostname} END,
    os = CASE WHEN {os} = '' THEN os ELSE {os} END,
    architecture = CASE WHEN {architecture} = '' THEN architecture ELSE {architecture} END,
    ip_address = CASE WHEN {ip_address} = '' THEN ip_address ELSE {ip_address} END,
    version = CASE WHEN {version} = '' THEN version ELSE {version} END
 WHERE id = {id} AND retired_at IS NULL
"""
# Update, called with the row read before the heartbeat and status Online: it writes back the
# pre-heartbeat timestamp and metadata (a quirk kept on purpose).
_UPDATE_AGENT = """
UPDATE agents SET
    name = {name}, hostname = {hostname}, status = {status}, last_heartbeat_at = {last_heartbeat_at},
    api_key_hash = {api_key_hash}, os = {os}, architecture = {architecture},
    ip_address = {ip_address}, version = {version}
 WHERE id = {id}
"""


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


def rfc3339(moment: datetime) -> str:
    """``moment`` as ``get_agent`` gives timestamps: RFC 3339 in UTC, ``Z`` for the offset."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


class Cursor(Protocol):
    """The part of a DB-API cursor (psycopg's, sqlite3's) that the heartbeat reads."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> dict[str, Any] | None: ...


class Connection(Protocol):
    """The part of a DB-API connection that the heartbeat uses; rows come back as dicts."""

    def execute(self, statement: str, params: Mapping[str, Any], /) -> Cursor: ...


@dataclass(frozen=True)
class Dialect:
    """What differs between the backends' drivers. The time is ``now()`` in both: PostgreSQL's own,
    and in SQLite a function the SQLite store registers."""

    named_param: str  # the parameter {} as the driver writes it: "%({})s" (psycopg), ":{}" (sqlite3)
    error: type[Exception]  # the driver's base error class
    enforces_varchar_lengths: bool  # False: the heartbeat checks METADATA_LIMITS itself


class AgentStatements:
    """certctl's statements on the agents table in one driver's dialect, and the heartbeat that runs them."""

    def __init__(self, dialect: Dialect) -> None:
        self._dialect = dialect
        self.select_agent = _in_style(_SELECT_AGENT, dialect)
        self.agent_exists = _in_style(_AGENT_EXISTS, dialect)
        self._update_heartbeat = _in_style(_UPDATE_HEARTBEAT, dialect)
        self._update_agent = _in_style(_UPDATE_AGENT, dialect)

    def heartbeat(self, conn: Connection, agent_id: str, metadata: Mapping[str, str]) -> HeartbeatOutcome:
        """certctl's AgentService.HeartbeatWithContext on ``conn``, statement for statement (the contract
        of :meth:`AgentStore.heartbeat`). The driver's errors propagate, but for the status UPDATE's:
        certctl logs that one and still answers 200."""
        agent = conn.execute(self.select_agent, {"id": agent_id}).fetchone()
        if agent is None:
            return HeartbeatOutcome.NOT_FOUND
        if any(agent[column] is None for column in _SCANNED_AS_STRING):
            return HeartbeatOutcome.ERROR
        if agent["retired_at"] is not None:
            return HeartbeatOutcome.RETIRED
        values = {column: metadata.get(column, "") for column in METADATA_LIMITS}
        if not self._dialect.enforces_varchar_lengths and _over_a_limit(values):
            return HeartbeatOutcome.ERROR  # as when PostgreSQL refuses the UPDATE: value too long
        if conn.execute(self._update_heartbeat, {"id": agent_id, **values}).rowcount == 0:
            return HeartbeatOutcome.NOT_FOUND
        if agent["status"] != _ONLINE:
            self._set_online(conn, agent)
        return HeartbeatOutcome.RECORDED

    def _set_online(self, conn: Connection, agent: Mapping[str, Any]) -> None:
        try:
            conn.execute(self._update_agent, {**agent, "status": _ONLINE})
        except self._dialect.error as error:
            log.error("failed to update agent status for %s: %s", agent["id"], error)


def _in_style(template: str, dialect: Dialect) -> str:
    """``template`` with each ``{name}`` field written as the driver's named parameter."""
    names = {field for _, field, _, _ in string.Formatter().parse(template) if field}
    return template.format_map({name: dialect.named_param.format(name) for name in names})


def _over_a_limit(values: Mapping[str, str]) -> bool:
    return any(len(values[column]) > limit for column, limit in METADATA_LIMITS.items())
