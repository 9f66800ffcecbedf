"""The reference target's fleet in PostgreSQL, written by certctl's own per-heartbeat statements.

Meant for a gevent-monkey-patched process (psycopg picks its gevent-friendly wait function when
``select`` is patched before psycopg is imported, as ``certctl_load.cli.main`` does). Connections are
autocommit, opened on demand, at most ``pool_size`` of them, shared through a gevent queue.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from typing import Any, TypeVar

import gevent.queue
import psycopg
from psycopg.rows import dict_row

from certctl_load.db.dsn import connect, describe_error, mask_dsn
from certctl_load.db.seeding import seed_fleet
from certctl_load.errors import ConfigError, HarnessError
from certctl_load.model import fleet
from certctl_load.model.fleet import DEFAULT_ID_PREFIX
from certctl_load.target.store import RETIRED_REASON, AgentStatements, Dialect, HeartbeatOutcome, rfc3339

log = logging.getLogger(__name__)
T = TypeVar("T")

CONNECT_TIMEOUT_S = 5
# PostgreSQL refuses an over-long value itself, as it does for certctl.
_STATEMENTS = AgentStatements(
    Dialect(named_param="%({})s", error=psycopg.Error, enforces_varchar_lengths=True)
)


class _ConnectionPool:
    """At most ``size`` autocommit connections, opened on demand. The queue holds one item per slot:
    an idle connection, or None for a slot whose connection is not open; last in, first out, so
    that the most recently used connection is reused and no more are opened than the load needs."""

    def __init__(self, dsn: str, size: int) -> None:
        self._dsn = dsn
        self._slots: gevent.queue.LifoQueue[psycopg.Connection[Any] | None] = gevent.queue.LifoQueue()
        for _ in range(size):
            self._slots.put(None)
        self._closed = False

    @contextmanager
    def connection(self, *, fresh: bool = False) -> Iterator[tuple[psycopg.Connection[Any], bool]]:
        """A connection and whether it was reused from an earlier call; ``fresh`` opens a new one."""
        if self._closed:
            raise psycopg.InterfaceError("the agent store is closed")
        conn = self._slots.get()
        try:
            if conn is not None and (fresh or conn.closed):
                conn.close()
                conn = None
            reused = conn is not None
            if conn is None:
                conn = psycopg.connect(
                    self._dsn,
                    autocommit=True,
                    row_factory=dict_row,
                    connect_timeout=CONNECT_TIMEOUT_S,
                    application_name="certctl-load target",
                )
            yield conn, reused
        finally:
            if conn is not None and (conn.broken or self._closed):
                conn.close()
                conn = None
            self._slots.put(conn)

    def close(self) -> None:
        """Close the idle connections now, the busy ones when they come back."""
        self._closed = True
        idle = [self._slots.get_nowait() for _ in range(self._slots.qsize())]
        for conn in idle:
            if conn is not None:
                conn.close()
            self._slots.put(None)


class PgAgentStore:
    """An AgentStore over certctl's ``agents`` table (see ``store.AgentStore`` for each method's contract).

    With ``fleet_size``, the fleet is seeded at construction (``seeding.seed_fleet``) and the last
    ``retired`` agents are retired. ``get_agent`` raises psycopg.Error when the database fails.
    """

    def __init__(
        self,
        dsn: str,
        *,
        fleet_size: int | None = None,
        retired: int = 0,
        prefix: str = DEFAULT_ID_PREFIX,
        pool_size: int = 10,
    ) -> None:
        if pool_size < 1:
            raise ConfigError(f"the connection pool needs at least 1 connection, got {pool_size}")
        if fleet_size is None and retired:
            raise ConfigError("retired agents need a fleet size to seed")
        if fleet_size is not None:
            if not 0 <= retired <= fleet_size:
                raise ConfigError(f"retired agents must be between 0 and the fleet size {fleet_size}")
            seed_fleet(dsn, fleet_size, prefix)
            _retire(dsn, [fleet.agent_id(g, prefix) for g in range(fleet_size - retired + 1, fleet_size + 1)])
        self._dsn = dsn
        self._pool = _ConnectionPool(dsn, pool_size)

    def heartbeat(self, agent_id: str, metadata: Mapping[str, str]) -> HeartbeatOutcome:
        try:
            return self._with_connection(lambda conn: _STATEMENTS.heartbeat(conn, agent_id, metadata))
        except psycopg.Error as error:
            log.debug("heartbeat for %s failed: %s", agent_id, describe_error(error, self._dsn))
            return HeartbeatOutcome.ERROR

    def get_agent(self, agent_id: str) -> dict[str, Any] | None:
        row = self._with_connection(
            lambda conn: conn.execute(_STATEMENTS.select_agent, {"id": agent_id}).fetchone()
        )
        if row is None:
            return None
        return {key: _json_ready(value) for key, value in row.items()}

    def agent_exists(self, agent_id: str) -> bool | None:
        try:
            return self._with_connection(
                lambda conn: conn.execute(_STATEMENTS.agent_exists, {"id": agent_id}).fetchone() is not None
            )
        except psycopg.Error:
            return None

    def is_ready(self) -> bool:
        try:
            return self._with_connection(lambda conn: conn.execute("SELECT 1").fetchone() is not None)
        except psycopg.Error:
            return False

    def close(self) -> None:
        self._pool.close()

    def _with_connection(self, work: Callable[[psycopg.Connection[Any]], T]) -> T:
        """``work`` on a pooled connection; when a reused connection turns out dead (the server
        restarted since), once more on a new one, as Go's database/sql does."""
        with self._pool.connection() as (conn, reused):
            try:
                return work(conn)
            except psycopg.OperationalError:
                if not (reused and conn.broken):
                    raise
        with self._pool.connection(fresh=True) as (conn, _):
            return work(conn)


def _retire(dsn: str, agent_ids: list[str]) -> None:
    if not agent_ids:
        return
    try:
        with connect(dsn, autocommit=True) as conn:
            conn.execute(
                "UPDATE agents SET retired_at = now(), retired_reason = %s WHERE id = ANY(%s::text[])",
                (RETIRED_REASON, agent_ids),
            )
    except psycopg.Error as error:
        reason = describe_error(error, dsn)
        raise HarnessError(f"retiring agents in {mask_dsn(dsn)} failed: {reason}") from None


def _json_ready(value: Any) -> Any:
    """Timestamps as RFC 3339 UTC strings; everything else as stored."""
    if isinstance(value, datetime):
        return rfc3339(value)
    return value
