"""The reference target's fleet in SQLite (stdlib ``sqlite3``), written by certctl's own statements.

One autocommit connection, used from the server's greenlets in turn: a statement never yields,
so each call is atomic with respect to the others. Timestamps are stored as RFC 3339 UTC text,
the form ``get_agent`` returns.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import sqlite3
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from certctl_load.errors import ConfigError
from certctl_load.model.fleet import DEFAULT_ID_PREFIX, SEED_STATUS, seed_row
from certctl_load.target.store import METADATA_LIMITS, RETIRED_REASON, HeartbeatOutcome

log = logging.getLogger(__name__)

# certctl's agents table (column types as certctl declares them; SQLite does not enforce lengths).
_SCHEMA = """
CREATE TABLE IF NOT EXISTS agents (
    id TEXT PRIMARY KEY,
    name VARCHAR(255) NOT NULL UNIQUE,
    hostname VARCHAR(255) NOT NULL,
    status VARCHAR(50) NOT NULL DEFAULT 'offline',
    last_heartbeat_at TIMESTAMPTZ,
    registered_at TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP,
    api_key_hash VARCHAR(255) NOT NULL,
    os VARCHAR(100) DEFAULT '',
    architecture VARCHAR(100) DEFAULT '',
    ip_address VARCHAR(45) DEFAULT '',
    version VARCHAR(50) DEFAULT '',
    retired_at TIMESTAMPTZ,
    retired_reason TEXT
);
CREATE INDEX IF NOT EXISTS idx_agents_status ON agents (status);
CREATE INDEX IF NOT EXISTS idx_agents_hostname ON agents (hostname);
CREATE INDEX IF NOT EXISTS idx_agents_last_heartbeat_at ON agents (last_heartbeat_at);
CREATE INDEX IF NOT EXISTS idx_agents_os ON agents (os);
CREATE INDEX IF NOT EXISTS idx_agents_architecture ON agents (architecture);
CREATE INDEX IF NOT EXISTS idx_agents_retired_at ON agents (retired_at) WHERE retired_at IS NOT NULL;
"""
# As the project's seeding does: insert, or return an existing row to its clean seeded state.
_SEED = """
INSERT INTO agents (id, name, hostname, status, last_heartbeat_at, registered_at, api_key_hash,
                    os, architecture, ip_address, version)
VALUES (:id, :name, :hostname, :status, :last_heartbeat_at, :registered_at, :api_key_hash,
        :os, :architecture, :ip_address, :version)
ON CONFLICT (id) DO UPDATE SET
    name = excluded.name, hostname = excluded.hostname, status = excluded.status,
    last_heartbeat_at = excluded.last_heartbeat_at, api_key_hash = excluded.api_key_hash,
    os = excluded.os, architecture = excluded.architecture, ip_address = excluded.ip_address,
    version = excluded.version, retired_at = NULL, retired_reason = NULL
"""
_RETIRE = "UPDATE agents SET retired_at = ?, retired_reason = ? WHERE id = ?"
# certctl's AgentRepository.Get: by id, retired rows included.
_SELECT_AGENT = "SELECT * FROM agents WHERE id = ?"
# certctl's AgentRepository.UpdateHeartbeat: each metadata column kept when the new value is ''.
_UPDATE_HEARTBEAT = """
UPDATE agents SET
    last_heartbeat_at = :now,
    hostname = CASE WHEN :hostname = '' THEN hostname ELSE :hostname END,
    os = CASE WHEN :os = '' THEN os ELSE :os END,
    architecture = CASE WHEN :architecture = '' THEN architecture ELSE :architecture END,
    ip_address = CASE WHEN :ip_address = '' THEN ip_address ELSE :ip_address END,
    version = CASE WHEN :version = '' THEN version ELSE :version END
 WHERE id = :id AND retired_at IS NULL
"""
# certctl's AgentRepository.Update with the row read before the heartbeat and status Online:
# it writes back the pre-heartbeat timestamp and metadata (a quirk kept on purpose).
_UPDATE_AGENT = """
UPDATE agents SET
    name = :name, hostname = :hostname, status = :status, last_heartbeat_at = :last_heartbeat_at,
    api_key_hash = :api_key_hash, os = :os, architecture = :architecture,
    ip_address = :ip_address, version = :version
 WHERE id = :id
"""
# certctl scans these into Go strings: a NULL fails the row scan and the heartbeat answers 500.
_SCANNED_AS_STRING = ("os", "architecture", "ip_address", "version")


def _timestamp(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


class SqliteAgentStore:
    """An AgentStore over certctl's ``agents`` table in SQLite (in memory unless ``path`` is given).

    The fleet (agents 1..``fleet_size`` with ids ``prefix`` + number) is seeded at construction
    with certctl's seed values, and the last ``retired`` agents are retired.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        fleet_size: int,
        retired: int = 0,
        prefix: str = DEFAULT_ID_PREFIX,
    ) -> None:
        if fleet_size < 0 or not 0 <= retired <= fleet_size:
            raise ConfigError(f"retired agents must be between 0 and the fleet size {fleet_size}")
        try:
            self._db = sqlite3.connect(path or ":memory:", isolation_level=None)
            self._db.row_factory = sqlite3.Row
            if path:
                self._db.execute("PRAGMA busy_timeout = 5000")
                self._db.execute("PRAGMA journal_mode = WAL")
                self._db.execute("PRAGMA synchronous = OFF")
            self._db.executescript(_SCHEMA)
            self._seed(fleet_size, retired, prefix)
        except sqlite3.Error as error:
            raise ConfigError(f"cannot set up the SQLite fleet in {path or 'memory'}: {error}") from None

    def _seed(self, fleet_size: int, retired: int, prefix: str) -> None:
        now = datetime.now(UTC)
        rows = []
        for g in range(1, fleet_size + 1):
            values = dataclasses.asdict(seed_row(g, prefix))
            heartbeat_age = timedelta(seconds=values.pop("heartbeat_age_seconds"))
            registered_age = timedelta(days=values.pop("registered_age_days"))
            values["last_heartbeat_at"] = _timestamp(now - heartbeat_age)
            values["registered_at"] = _timestamp(now - registered_age)
            rows.append(values)
        retired_at = _timestamp(now)
        with self._db:
            self._db.execute("BEGIN")
            self._db.executemany(_SEED, rows)
            self._db.executemany(
                _RETIRE, [(retired_at, RETIRED_REASON, row["id"]) for row in rows[fleet_size - retired :]]
            )

    def heartbeat(self, agent_id: str, metadata: Mapping[str, str]) -> HeartbeatOutcome:
        try:
            agent = self._db.execute(_SELECT_AGENT, (agent_id,)).fetchone()
            if agent is None:
                return HeartbeatOutcome.NOT_FOUND
            if any(agent[column] is None for column in _SCANNED_AS_STRING):
                return HeartbeatOutcome.ERROR
            if agent["retired_at"] is not None:
                return HeartbeatOutcome.RETIRED
            values = {column: metadata.get(column, "") for column in METADATA_LIMITS}
            if any(len(values[column]) > limit for column, limit in METADATA_LIMITS.items()):
                return HeartbeatOutcome.ERROR  # PostgreSQL refuses the UPDATE: value too long
            now = _timestamp(datetime.now(UTC))
            if self._db.execute(_UPDATE_HEARTBEAT, {"id": agent_id, "now": now, **values}).rowcount == 0:
                return HeartbeatOutcome.NOT_FOUND
            if agent["status"] != SEED_STATUS:
                try:
                    self._db.execute(_UPDATE_AGENT, {**dict(agent), "status": SEED_STATUS})
                except sqlite3.Error as error:  # certctl logs this one and still answers 200
                    log.error("failed to update agent status for %s: %s", agent_id, error)
            return HeartbeatOutcome.RECORDED
        except sqlite3.Error as error:
            log.debug("heartbeat for %s failed: %s", agent_id, error)
            return HeartbeatOutcome.ERROR

    def get_agent(self, agent_id: str) -> dict[str, Any] | None:
        row = self._db.execute(_SELECT_AGENT, (agent_id,)).fetchone()
        return None if row is None else dict(row)

    def agent_exists(self, agent_id: str) -> bool | None:
        try:
            return self._db.execute("SELECT 1 FROM agents WHERE id = ?", (agent_id,)).fetchone() is not None
        except sqlite3.Error:
            return None

    def is_ready(self) -> bool:
        try:
            self._db.execute("SELECT 1 FROM agents LIMIT 1").fetchall()
        except sqlite3.Error:
            return False
        return True

    def close(self) -> None:
        self._db.close()
