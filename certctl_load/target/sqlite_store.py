"""The reference target's fleet in SQLite (stdlib ``sqlite3``), written by certctl's own statements.

One autocommit connection, used from the server's greenlets in turn: a statement never yields,
so each call is atomic with respect to the others. The schema and the fleet upsert are the seed
files' (``seed_files``); SQLite gets certctl's ``now()`` as a function giving RFC 3339 UTC text,
the form timestamps are stored in and ``get_agent`` returns.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import sqlite3
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from certctl_load.db.seed_files import AGENTS_SCHEMA, FLEET_UPSERT, read_seed_sql
from certctl_load.errors import ConfigError
from certctl_load.model.fleet import DEFAULT_ID_PREFIX, SeedRow, seed_row
from certctl_load.target.store import RETIRED_REASON, AgentStatements, Dialect, HeartbeatOutcome, rfc3339

log = logging.getLogger(__name__)

# SQLite does not enforce VARCHAR lengths: the heartbeat checks them.
_STATEMENTS = AgentStatements(Dialect(named_param=":{}", error=sqlite3.Error, enforces_varchar_lengths=False))
# The staging table the fleet upsert reads, dropped once it has.
_STAGED_COLUMNS = (
    "id", "name", "hostname", "status", "last_heartbeat_at", "registered_at", "api_key_hash",
    "os", "architecture", "ip_address", "version",
)  # fmt: skip
_CREATE_STAGING = f"CREATE TEMP TABLE loadtest_fleet ({', '.join(_STAGED_COLUMNS)})"
_STAGE_ROW = f"INSERT INTO loadtest_fleet VALUES ({', '.join(':' + column for column in _STAGED_COLUMNS)})"
_DROP_STAGING = "DROP TABLE loadtest_fleet"
_RETIRE = "UPDATE agents SET retired_at = now(), retired_reason = ? WHERE id = ?"


def _now() -> str:
    """certctl's ``now()`` for SQLite."""
    return rfc3339(datetime.now(UTC))


def _dict_row(cursor: sqlite3.Cursor, values: tuple[Any, ...]) -> dict[str, Any]:
    """A row as a dict, as psycopg's ``dict_row`` gives it."""
    return {column[0]: value for column, value in zip(cursor.description, values, strict=True)}


def _staged_row(row: SeedRow, now: datetime) -> dict[str, Any]:
    """A seed row as the fleet upsert reads it: the ages as timestamps before ``now``."""
    values = dataclasses.asdict(row)
    values["last_heartbeat_at"] = rfc3339(now - timedelta(seconds=values.pop("heartbeat_age_seconds")))
    values["registered_at"] = rfc3339(now - timedelta(days=values.pop("registered_age_days")))
    return values


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
            self._db.row_factory = _dict_row
            self._db.create_function("now", 0, _now)
            if path:
                self._db.execute("PRAGMA busy_timeout = 5000")
                self._db.execute("PRAGMA journal_mode = WAL")
                self._db.execute("PRAGMA synchronous = OFF")
            self._db.executescript(read_seed_sql(AGENTS_SCHEMA))
            self._seed(fleet_size, retired, prefix)
        except sqlite3.Error as error:
            raise ConfigError(f"cannot set up the SQLite fleet in {path or 'memory'}: {error}") from None

    def _seed(self, fleet_size: int, retired: int, prefix: str) -> None:
        now = datetime.now(UTC)
        rows = [_staged_row(seed_row(g, prefix), now) for g in range(1, fleet_size + 1)]
        with self._db:
            self._db.execute("BEGIN")
            self._db.execute(_CREATE_STAGING)
            self._db.executemany(_STAGE_ROW, rows)
            self._db.execute(read_seed_sql(FLEET_UPSERT))
            self._db.execute(_DROP_STAGING)
            self._db.executemany(
                _RETIRE, [(RETIRED_REASON, row["id"]) for row in rows[fleet_size - retired :]]
            )

    def heartbeat(self, agent_id: str, metadata: Mapping[str, str]) -> HeartbeatOutcome:
        try:
            return _STATEMENTS.heartbeat(self._db, agent_id, metadata)
        except sqlite3.Error as error:
            log.debug("heartbeat for %s failed: %s", agent_id, error)
            return HeartbeatOutcome.ERROR

    def get_agent(self, agent_id: str) -> dict[str, Any] | None:
        row: dict[str, Any] | None = self._db.execute(_STATEMENTS.select_agent, {"id": agent_id}).fetchone()
        return row

    def agent_exists(self, agent_id: str) -> bool | None:
        try:
            return self._db.execute(_STATEMENTS.agent_exists, {"id": agent_id}).fetchone() is not None
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
