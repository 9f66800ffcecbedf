"""Seeding certctl's ``agents`` table with the load-test fleet, and removing the fleet again.

:func:`seed_fleet` writes the same rows as ``seed/02_agent_fleet.sql`` (values from
:mod:`certctl_load.model.fleet`): one transaction, COPY into a temporary table, staged as
``loadtest_fleet`` with timestamps from the database's ``now()``, then the fleet upsert that script
runs too (``seed/agent_fleet_upsert.sql``), returning every seeded agent to its clean state. It never
deletes. :func:`unseed_fleet` deletes the load-test agents that nothing references and names the others.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from certctl_load.db.dsn import connect, describe_error, mask_dsn
from certctl_load.db.seed_files import FLEET_UPSERT, read_seed_sql
from certctl_load.errors import ConfigError, HarnessError
from certctl_load.model.fleet import DEFAULT_ID_PREFIX, SeedRow, seed_row

# Every column the seed writes; certctl-server's migrations create them all.
SEED_COLUMNS = (
    "id", "name", "hostname", "status", "last_heartbeat_at", "registered_at", "api_key_hash",
    "os", "architecture", "ip_address", "version", "retired_at", "retired_reason",
)  # fmt: skip
# A seeded id is the prefix followed by the zero-padded agent number; unseed removes only those.
_SEEDED_SUFFIX = "^[0-9]{5,}$"
_NAMES_SHOWN = 5

_CREATE_SEED_ROWS = """
CREATE TEMP TABLE loadtest_seed_rows (
    id text, name text, hostname text, status text, heartbeat_age_seconds integer,
    registered_age_days integer, api_key_hash text, os text, architecture text, ip_address text,
    version text
) ON COMMIT DROP
"""
_SEED_ROW_FIELDS = ", ".join(field.name for field in dataclasses.fields(SeedRow))
_COPY_SEED_ROWS = f"COPY loadtest_seed_rows ({_SEED_ROW_FIELDS}) FROM STDIN"
# The staging table the fleet upsert reads, timestamps computed as 02_agent_fleet.sql computes them.
_STAGE_FLEET = """
CREATE TEMP TABLE loadtest_fleet ON COMMIT DROP AS
SELECT id, name, hostname, status,
       now() - make_interval(secs => heartbeat_age_seconds) AS last_heartbeat_at,
       now() - make_interval(days => registered_age_days) AS registered_at,
       api_key_hash, os, architecture, ip_address, version
  FROM loadtest_seed_rows
"""
_TAKEN_NAMES = """
SELECT f.name, a.id FROM loadtest_fleet AS f JOIN agents AS a ON a.name = f.name AND a.id <> f.id
ORDER BY f.id
"""
_REFERENCING_KEYS = """
SELECT n.nspname, r.relname, c.conrelid::regclass::text,
       ARRAY(SELECT a.attname FROM unnest(c.conkey) WITH ORDINALITY AS k(attnum, ord)
               JOIN pg_attribute AS a ON a.attrelid = c.conrelid AND a.attnum = k.attnum ORDER BY k.ord),
       ARRAY(SELECT a.attname FROM unnest(c.confkey) WITH ORDINALITY AS k(attnum, ord)
               JOIN pg_attribute AS a ON a.attrelid = c.confrelid AND a.attnum = k.attnum ORDER BY k.ord)
  FROM pg_constraint AS c
  JOIN pg_class AS r ON r.oid = c.conrelid
  JOIN pg_namespace AS n ON n.oid = r.relnamespace
 WHERE c.contype = 'f' AND c.confrelid = 'agents'::regclass
 ORDER BY 3
"""


@dataclass(frozen=True)
class UnseedResult:
    """What :func:`unseed_fleet` did: rows removed, and (agent id, referencing table) pairs it kept."""

    removed: int
    blocked: list[tuple[str, str]]


def seed_fleet(dsn: str, fleet_size: int, prefix: str = DEFAULT_ID_PREFIX) -> int:
    """Upsert agents 1..fleet_size in their seed state; returns how many ids carry ``prefix`` afterwards.

    Only ids ``prefix`` + number are written; existing ones are returned to the seed's clean state
    (``registered_at`` kept); extra rows from an earlier, larger seed are left alone.
    """
    _check_prefix(prefix)
    if fleet_size < 1:
        raise ConfigError(f"the fleet size must be at least 1, got {fleet_size}")
    masked = mask_dsn(dsn)
    with connect(dsn) as conn:
        try:
            with conn.transaction():
                _require_agents_table(conn, masked, SEED_COLUMNS)
                _stage_fleet(conn, fleet_size, prefix)
                _refuse_taken_names(conn, masked)
                conn.execute(read_seed_sql(FLEET_UPSERT))
                return _count_prefixed(conn, prefix)
        except psycopg.Error as error:
            raise HarnessError(f"seeding {masked} failed: {describe_error(error, dsn)}") from None


def unseed_fleet(dsn: str, prefix: str = DEFAULT_ID_PREFIX) -> UnseedResult:
    """Delete the seeded agents (ids ``prefix`` + 5 or more digits) that no row of another table
    references, in one transaction; the referenced ones are kept and reported, whatever the foreign
    key's ON DELETE action, so that rows of other tables are never deleted or changed."""
    _check_prefix(prefix)
    masked = mask_dsn(dsn)
    with connect(dsn) as conn:
        try:
            with conn.transaction():
                _require_agents_table(conn, masked, ("id",))
                blocked = _referenced_agents(conn, prefix)
                removed = conn.execute(
                    "DELETE FROM agents WHERE starts_with(id, %s) AND substr(id, length(%s) + 1) ~ %s"
                    " AND NOT id = ANY(%s::text[])",
                    (prefix, prefix, _SEEDED_SUFFIX, sorted({agent for agent, _ in blocked})),
                ).rowcount
        except psycopg.Error as error:
            raise HarnessError(f"unseeding {masked} failed: {describe_error(error, dsn)}") from None
    return UnseedResult(removed=removed, blocked=blocked)


def _check_prefix(prefix: str) -> None:
    if not prefix:
        raise ConfigError("the agent id prefix must not be empty")


def _require_agents_table(conn: psycopg.Connection[Any], masked: str, columns: tuple[str, ...]) -> None:
    found = conn.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass('agents') AND attnum > 0"
        " AND NOT attisdropped"
    ).fetchall()
    present = {name for (name,) in found}
    if not present:
        raise HarnessError(
            f"no agents table in {masked}: certctl-server's migrations create it; "
            "start certctl-server once against this database, then run this again"
        )
    missing = [column for column in columns if column not in present]
    if missing:
        raise HarnessError(
            f"the agents table in {masked} lacks column(s) {', '.join(missing)}: "
            "start an up-to-date certctl-server once against this database (its migrations add them)"
        )


def _stage_fleet(conn: psycopg.Connection[Any], fleet_size: int, prefix: str) -> None:
    """Fill the fleet upsert's staging table ``loadtest_fleet`` with agents 1..fleet_size."""
    conn.execute(_CREATE_SEED_ROWS)
    with conn.cursor() as cursor, cursor.copy(_COPY_SEED_ROWS) as copy:
        for g in range(1, fleet_size + 1):
            copy.write_row(dataclasses.astuple(seed_row(g, prefix)))
    conn.execute(_STAGE_FLEET)


def _refuse_taken_names(conn: psycopg.Connection[Any], masked: str) -> None:
    taken = conn.execute(_TAKEN_NAMES).fetchall()
    if taken:
        shown = ", ".join(f"{name} (held by {holder})" for name, holder in taken[:_NAMES_SHOWN])
        more = f" and {len(taken) - _NAMES_SHOWN} more" if len(taken) > _NAMES_SHOWN else ""
        raise HarnessError(
            f"{len(taken)} load-test agent name(s) already used by other agents in {masked}: "
            f"{shown}{more}; rename or remove those agents, nothing was written"
        )


def _count_prefixed(conn: psycopg.Connection[Any], prefix: str) -> int:
    (count,) = conn.execute("SELECT count(*) FROM agents WHERE starts_with(id, %s)", (prefix,)).fetchall()[0]
    return int(count)


def _referenced_agents(conn: psycopg.Connection[Any], prefix: str) -> list[tuple[str, str]]:
    """(agent id, table) for each seeded agent that a row of ``table`` references."""
    blocked: list[tuple[str, str]] = []
    for schema, table, shown_name, columns, referenced in conn.execute(_REFERENCING_KEYS).fetchall():
        match = sql.SQL(" AND ").join(
            sql.SQL("r.{} = a.{}").format(sql.Identifier(column), sql.Identifier(target))
            for column, target in zip(columns, referenced, strict=True)
        )
        query = sql.SQL(
            "SELECT a.id FROM agents AS a WHERE starts_with(a.id, %s) AND substr(a.id, length(%s) + 1) ~ %s"
            " AND EXISTS (SELECT 1 FROM {table} AS r WHERE {match})"
        ).format(table=sql.Identifier(schema, table), match=match)
        rows = conn.execute(query, (prefix, prefix, _SEEDED_SUFFIX)).fetchall()
        blocked += [(agent, shown_name) for (agent,) in rows]
    return sorted(blocked)
