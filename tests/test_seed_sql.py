"""The SQL files under seed/, run with the real psql client."""

from __future__ import annotations

import pytest
from pgcluster import FLEET_SQL, PROD_AGENT_ID, SCHEMA_SQL, PgCluster, execute_sql, fetch_rows, run_psql_file

pytestmark = pytest.mark.e2e

AGENT_INDEXES = {
    "agents_pkey": "(id)",
    "agents_name_key": "(name)",
    "idx_agents_status": "(status)",
    "idx_agents_hostname": "(hostname)",
    "idx_agents_last_heartbeat_at": "(last_heartbeat_at)",
    "idx_agents_os": "(os)",
    "idx_agents_architecture": "(architecture)",
    "idx_agents_retired_at": "(retired_at) WHERE (retired_at IS NOT NULL)",
}
# certctl's agents table: column -> (type, nullable, default).
AGENT_COLUMNS = {
    "id": ("text", "NO", None),
    "name": ("character varying(255)", "NO", None),
    "hostname": ("character varying(255)", "NO", None),
    "status": ("character varying(50)", "NO", "'offline'::character varying"),
    "last_heartbeat_at": ("timestamp with time zone", "YES", None),
    "registered_at": ("timestamp with time zone", "NO", "now()"),
    "api_key_hash": ("character varying(255)", "NO", None),
    "os": ("character varying(100)", "YES", "''::character varying"),
    "architecture": ("character varying(100)", "YES", "''::character varying"),
    "ip_address": ("character varying(45)", "YES", "''::character varying"),
    "version": ("character varying(50)", "YES", "''::character varying"),
    "retired_at": ("timestamp with time zone", "YES", None),
    "retired_reason": ("text", "YES", None),
}


def loadtest_count(dsn: str) -> int:
    return fetch_rows(dsn, "SELECT count(*) AS n FROM agents WHERE id LIKE 'ag-loadtest-%%'")[0]["n"]


def test_without_a_fleet_variable_it_seeds_5000_and_says_so(pg_cluster: PgCluster, pg_dsn: str) -> None:
    result = run_psql_file(pg_cluster, pg_dsn, FLEET_SQL)
    assert result.returncode == 0, result.stderr
    assert "NOTICE:  agent-storm seed: 5000 agents rows present" in result.stderr
    assert loadtest_count(pg_dsn) == 5000


def test_the_fleet_variable_sets_the_size(pg_cluster: PgCluster, pg_dsn: str) -> None:
    result = run_psql_file(pg_cluster, pg_dsn, FLEET_SQL, fleet="42")
    assert result.returncode == 0, result.stderr
    assert "agent-storm seed: 42 agents rows present" in result.stderr
    assert loadtest_count(pg_dsn) == 42


def test_a_taken_name_stops_the_seed_before_anything_is_written(pg_cluster: PgCluster, pg_dsn: str) -> None:
    execute_sql(pg_dsn, "UPDATE agents SET name = 'loadtest-agent-00003' WHERE id = %s", (PROD_AGENT_ID,))
    result = run_psql_file(pg_cluster, pg_dsn, FLEET_SQL, fleet="10")
    assert result.returncode != 0
    assert (
        "1 load-test agent name(s) already used by other agents: loadtest-agent-00003 (held by ag-prod-1)"
        in (result.stderr)
    )
    assert loadtest_count(pg_dsn) == 0


def test_a_bad_fleet_value_fails_cleanly(pg_cluster: PgCluster, pg_dsn: str) -> None:
    result = run_psql_file(pg_cluster, pg_dsn, FLEET_SQL, fleet="5000; DROP TABLE agents")
    assert result.returncode != 0
    assert "invalid input syntax for type integer" in result.stderr
    assert loadtest_count(pg_dsn) == 0


def test_the_fleet_file_fails_without_an_agents_table(pg_cluster: PgCluster, pg_empty_dsn: str) -> None:
    result = run_psql_file(pg_cluster, pg_empty_dsn, FLEET_SQL, fleet="10")
    assert result.returncode != 0
    assert 'relation "agents" does not exist' in result.stderr


def test_the_schema_file_creates_certctls_agents_table_and_can_rerun(
    pg_cluster: PgCluster, pg_empty_dsn: str
) -> None:
    for _ in range(2):
        result = run_psql_file(pg_cluster, pg_empty_dsn, SCHEMA_SQL)
        assert result.returncode == 0, result.stderr
    columns = fetch_rows(
        pg_empty_dsn,
        "SELECT column_name, format_type(a.atttypid, a.atttypmod) AS type, is_nullable, column_default"
        " FROM information_schema.columns AS c"
        " JOIN pg_attribute AS a ON a.attrelid = 'agents'::regclass AND a.attname = c.column_name"
        " WHERE c.table_name = 'agents' ORDER BY c.ordinal_position",
    )
    assert {
        c["column_name"]: (c["type"], c["is_nullable"], c["column_default"]) for c in columns
    } == AGENT_COLUMNS
    indexes = fetch_rows(
        pg_empty_dsn, "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'agents'"
    )
    assert {i["indexname"]: i["indexdef"].split(" USING btree ")[1] for i in indexes} == AGENT_INDEXES
    unique = {index["indexname"] for index in indexes if index["indexdef"].startswith("CREATE UNIQUE INDEX")}
    assert unique == {"agents_pkey", "agents_name_key"}


def test_the_schema_file_leaves_a_migrated_database_alone(pg_cluster: PgCluster, pg_dsn: str) -> None:
    before = fetch_rows(pg_dsn, "SELECT * FROM agents")
    result = run_psql_file(pg_cluster, pg_dsn, SCHEMA_SQL)
    assert result.returncode == 0, result.stderr
    assert fetch_rows(pg_dsn, "SELECT * FROM agents") == before
