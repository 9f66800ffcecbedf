"""The rows both seeders write (seed/02_agent_fleet.sql through psql, and seeding.seed_fleet)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from pgcluster import FLEET_SQL, PROD_AGENT_ID, PgCluster, execute_sql, fetch_rows, run_psql_file

from certctl_load.db.seeding import seed_fleet
from certctl_load.model.fleet import agent_id, seed_row

pytestmark = pytest.mark.e2e

Seeder = Callable[[str, int], None]
TIMESTAMPS = ("last_heartbeat_at", "registered_at")
DB_CLOCK_TOLERANCE = timedelta(seconds=60)


def seed_with_psql(cluster: PgCluster, dsn: str, fleet: int) -> None:
    result = run_psql_file(cluster, dsn, FLEET_SQL, fleet=str(fleet))
    assert result.returncode == 0, result.stderr


@pytest.fixture(params=["psql", "seed_fleet"])
def seed(request: pytest.FixtureRequest, pg_cluster: PgCluster) -> Seeder:
    """Each seeder in turn: the SQL file through psql, then the Python function."""
    if request.param == "psql":
        return lambda dsn, fleet: seed_with_psql(pg_cluster, dsn, fleet)
    return seed_with_function


def seed_with_function(dsn: str, fleet: int) -> None:
    assert seed_fleet(dsn, fleet) >= fleet


def agent_row(dsn: str, agent: str) -> dict[str, Any]:
    (row,) = fetch_rows(dsn, "SELECT * FROM agents WHERE id = %s", (agent,))
    return row


def loadtest_count(dsn: str) -> int:
    return fetch_rows(dsn, "SELECT count(*) AS n FROM agents WHERE id LIKE 'ag-loadtest-%%'")[0]["n"]


def db_now(dsn: str) -> datetime:
    return fetch_rows(dsn, "SELECT now() AS now")[0]["now"]


def seed_instant(row: dict[str, Any], g: int) -> datetime:
    """The now() of the transaction that wrote agent g's heartbeat timestamp."""
    return row["last_heartbeat_at"] + timedelta(seconds=seed_row(g).heartbeat_age_seconds)


def assert_seed_state(row: dict[str, Any], g: int, seeded_at: datetime) -> None:
    """Agent g's row is exactly the seed's: strings, Online and unretired, heartbeat (g mod 60) s
    before the seeding transaction; registered (g mod 90 + 1) days before some seeding transaction."""
    expected = seed_row(g)
    assert row["id"] == expected.id
    for column in (
        "name",
        "hostname",
        "status",
        "api_key_hash",
        "os",
        "architecture",
        "ip_address",
        "version",
    ):
        assert row[column] == getattr(expected, column), column
    assert row["retired_at"] is None and row["retired_reason"] is None
    assert seed_instant(row, g) == seeded_at
    registered_at = row["registered_at"] + timedelta(days=expected.registered_age_days)
    assert abs(registered_at - seeded_at) < DB_CLOCK_TOLERANCE


@pytest.mark.parametrize("g", [10, 257, 5000])
def test_rows_are_certctls_seed_rows(seed: Seeder, pg_dsn: str, g: int) -> None:
    seed(pg_dsn, 5000)
    row = agent_row(pg_dsn, agent_id(g))
    seeded_at = seed_instant(agent_row(pg_dsn, agent_id(1)), 1)
    assert abs(db_now(pg_dsn) - seeded_at) < DB_CLOCK_TOLERANCE
    assert_seed_state(row, g, seeded_at)
    assert row["registered_at"] + timedelta(days=seed_row(g).registered_age_days) == seeded_at
    assert loadtest_count(pg_dsn) == 5000


def test_no_metadata_column_is_null(seed: Seeder, pg_dsn: str) -> None:
    seed(pg_dsn, 500)
    nulls = fetch_rows(
        pg_dsn,
        "SELECT id FROM agents WHERE num_nulls(os, architecture, ip_address, version) > 0",
    )
    assert nulls == []


def test_reseeding_is_idempotent(seed: Seeder, pg_dsn: str) -> None:
    seed(pg_dsn, 300)
    before = {row["id"]: row for row in fetch_rows(pg_dsn, "SELECT * FROM agents")}
    seed(pg_dsn, 300)
    after = {row["id"]: row for row in fetch_rows(pg_dsn, "SELECT * FROM agents")}
    assert loadtest_count(pg_dsn) == 300
    assert after.keys() == before.keys()
    reseeded_at = seed_instant(after[agent_id(1)], 1)
    for g in range(1, 301):
        old, new = before[agent_id(g)], after[agent_id(g)]
        assert {k: v for k, v in new.items() if k != "last_heartbeat_at"} == {
            k: v for k, v in old.items() if k != "last_heartbeat_at"
        }
        assert_seed_state(new, g, reseeded_at)


def test_reseed_repairs_an_offline_and_a_retired_agent(seed: Seeder, pg_dsn: str) -> None:
    seed(pg_dsn, 300)
    offline, retired = agent_id(7), agent_id(8)
    execute_sql(
        pg_dsn,
        "UPDATE agents SET status = 'Offline', last_heartbeat_at = now() - interval '1 hour', os = 'plan9',"
        " version = '1.0.0', hostname = 'moved.example.test', api_key_hash = 'other' WHERE id = %s",
        (offline,),
    )
    execute_sql(
        pg_dsn,
        "UPDATE agents SET retired_at = now(), retired_reason = 'decommissioned', name = 'renamed-8'"
        " WHERE id = %s",
        (retired,),
    )
    seed(pg_dsn, 300)
    seeded_at = seed_instant(agent_row(pg_dsn, agent_id(1)), 1)
    assert_seed_state(agent_row(pg_dsn, offline), 7, seeded_at)
    assert_seed_state(agent_row(pg_dsn, retired), 8, seeded_at)


def test_production_agent_and_its_target_are_untouched(seed: Seeder, pg_dsn: str) -> None:
    agent_before = agent_row(pg_dsn, PROD_AGENT_ID)
    targets_before = fetch_rows(pg_dsn, "SELECT * FROM deployment_targets")
    seed(pg_dsn, 300)
    seed(pg_dsn, 300)
    assert agent_row(pg_dsn, PROD_AGENT_ID) == agent_before
    assert fetch_rows(pg_dsn, "SELECT * FROM deployment_targets") == targets_before
    assert fetch_rows(pg_dsn, "SELECT count(*) AS n FROM agents")[0]["n"] == 301


def test_a_smaller_fleet_leaves_the_extra_rows(seed: Seeder, pg_dsn: str) -> None:
    seed(pg_dsn, 300)
    extra_before = agent_row(pg_dsn, agent_id(300))
    seed(pg_dsn, 100)
    assert loadtest_count(pg_dsn) == 300
    assert agent_row(pg_dsn, agent_id(300)) == extra_before


def test_large_fleet_numbers_six_digit_agents_in_full(seed: Seeder, pg_dsn: str) -> None:
    seed(pg_dsn, 100_000)
    assert loadtest_count(pg_dsn) == 100_000
    seeded_at = seed_instant(agent_row(pg_dsn, agent_id(1)), 1)
    assert_seed_state(agent_row(pg_dsn, "ag-loadtest-100000"), 100_000, seeded_at)
    assert_seed_state(agent_row(pg_dsn, "ag-loadtest-99999"), 99_999, seeded_at)
    distinct = fetch_rows(
        pg_dsn, "SELECT count(DISTINCT name) AS names, count(DISTINCT hostname) AS hosts FROM agents"
    )
    assert distinct == [{"names": 100_001, "hosts": 100_001}]


def test_the_file_and_the_function_write_the_same_rows(
    pg_cluster: PgCluster, pg_database_factory: Callable[..., str]
) -> None:
    by_file, by_function = pg_database_factory(), pg_database_factory()
    seed_with_psql(pg_cluster, by_file, 1000)
    assert seed_fleet(by_function, 1000) == 1000
    query = "SELECT * FROM agents ORDER BY id"
    file_rows, function_rows = fetch_rows(by_file, query), fetch_rows(by_function, query)
    assert [row["id"] for row in file_rows] == [row["id"] for row in function_rows]
    for from_file, from_function in zip(file_rows, function_rows, strict=True):
        assert from_file.keys() == from_function.keys()
        for column, value in from_file.items():
            if column in TIMESTAMPS and from_file["id"] != PROD_AGENT_ID:
                assert abs(value - from_function[column]) < DB_CLOCK_TOLERANCE, (from_file["id"], column)
            else:
                assert value == from_function[column], (from_file["id"], column)
