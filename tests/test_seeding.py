"""seeding.seed_fleet and seeding.unseed_fleet beyond the row values: errors, prefixes, unseeding."""

from __future__ import annotations

import pytest
from helpers import free_port
from pgcluster import PASSWORD, PROD_AGENT_ID, SCHEMA_SQL, execute_sql, fetch_rows

from certctl_load.db.seeding import UnseedResult, seed_fleet, unseed_fleet
from certctl_load.errors import ConfigError, HarnessError
from certctl_load.model.fleet import agent_id


def agent_ids(dsn: str) -> list[str]:
    return [row["id"] for row in fetch_rows(dsn, "SELECT id FROM agents ORDER BY id")]


def add_agent(dsn: str, agent: str) -> None:
    execute_sql(
        dsn, "INSERT INTO agents (id, name, hostname, api_key_hash) VALUES (%s, %s, 'h', 'k')", (agent, agent)
    )


def assert_one_clean_line(message: str) -> None:
    assert "\n" not in message
    assert PASSWORD not in message
    assert "certctl:***@127.0.0.1" in message


@pytest.mark.e2e
def test_missing_agents_table_says_to_start_certctl_server_once(pg_empty_dsn: str) -> None:
    with pytest.raises(HarnessError) as raised:
        seed_fleet(pg_empty_dsn, 10)
    message = str(raised.value)
    assert_one_clean_line(message)
    assert message.startswith("no agents table in postgresql://certctl:***@127.0.0.1:")
    assert "start certctl-server once against this database" in message


@pytest.mark.e2e
def test_missing_columns_are_named(pg_empty_dsn: str) -> None:
    # certctl's table before migration 000015 added the retirement columns.
    execute_sql(pg_empty_dsn, SCHEMA_SQL.read_text())
    execute_sql(pg_empty_dsn, "ALTER TABLE agents DROP COLUMN retired_at, DROP COLUMN retired_reason")
    with pytest.raises(HarnessError) as raised:
        seed_fleet(pg_empty_dsn, 10)
    assert_one_clean_line(str(raised.value))
    assert "lacks column(s) retired_at, retired_reason" in str(raised.value)
    assert agent_ids(pg_empty_dsn) == []


@pytest.mark.e2e
def test_a_taken_name_is_reported_and_nothing_is_written(pg_dsn: str) -> None:
    execute_sql(pg_dsn, "UPDATE agents SET name = 'loadtest-agent-00002' WHERE id = %s", (PROD_AGENT_ID,))
    with pytest.raises(HarnessError) as raised:
        seed_fleet(pg_dsn, 10)
    assert_one_clean_line(str(raised.value))
    assert "1 load-test agent name(s) already used by other agents" in str(raised.value)
    assert "loadtest-agent-00002 (held by ag-prod-1)" in str(raised.value)
    assert agent_ids(pg_dsn) == [PROD_AGENT_ID]


def test_an_unreachable_server_is_one_masked_line() -> None:
    dsn = f"postgresql://certctl:{PASSWORD}@127.0.0.1:{free_port()}/certctl?connect_timeout=5"
    with pytest.raises(HarnessError) as raised:
        seed_fleet(dsn, 10)
    message = str(raised.value)
    assert_one_clean_line(message)
    assert message.startswith("cannot connect to postgresql://certctl:***@127.0.0.1:")
    assert "Connection refused" in message


def test_nonsense_sizes_and_prefixes_are_refused_before_connecting() -> None:
    unreachable = f"postgresql://certctl:{PASSWORD}@127.0.0.1:{free_port()}/certctl"
    with pytest.raises(ConfigError, match="at least 1"):
        seed_fleet(unreachable, 0)
    with pytest.raises(ConfigError, match="must not be empty"):
        seed_fleet(unreachable, 10, prefix="")
    with pytest.raises(ConfigError, match="must not be empty"):
        unseed_fleet(unreachable, prefix="")


@pytest.mark.e2e
def test_like_wildcards_in_the_prefix_are_literal(pg_dsn: str) -> None:
    add_agent(pg_dsn, "lt-x-00001")
    assert seed_fleet(pg_dsn, 3, prefix="lt_%-") == 3
    assert unseed_fleet(pg_dsn, prefix="lt_%-") == UnseedResult(removed=3, blocked=[])
    assert agent_ids(pg_dsn) == [PROD_AGENT_ID, "lt-x-00001"]


@pytest.mark.e2e
def test_unseed_removes_load_test_agents_and_names_the_referenced_ones(pg_dsn: str) -> None:
    seed_fleet(pg_dsn, 20)
    execute_sql(
        pg_dsn,
        "INSERT INTO deployment_targets (id, name, type, agent_id) VALUES ('tgt-lt-5', 'lt', 'NGINX', %s)",
        (agent_id(5),),
    )
    add_agent(pg_dsn, "ag-loadtest-special")
    prod_before = fetch_rows(pg_dsn, "SELECT * FROM agents WHERE id = %s", (PROD_AGENT_ID,))

    result = unseed_fleet(pg_dsn)

    assert result == UnseedResult(removed=19, blocked=[(agent_id(5), "deployment_targets")])
    assert agent_ids(pg_dsn) == [agent_id(5), "ag-loadtest-special", PROD_AGENT_ID]
    assert fetch_rows(pg_dsn, "SELECT * FROM agents WHERE id = %s", (PROD_AGENT_ID,)) == prod_before
    assert len(fetch_rows(pg_dsn, "SELECT * FROM deployment_targets")) == 2


@pytest.mark.e2e
def test_unseed_reports_every_referencing_table_whatever_its_delete_action(pg_dsn: str) -> None:
    seed_fleet(pg_dsn, 3)
    execute_sql(
        pg_dsn,
        "CREATE TABLE jobs (id TEXT PRIMARY KEY, agent_id TEXT REFERENCES agents(id) ON DELETE SET NULL);"
        'CREATE TABLE "Group Members" (agent TEXT REFERENCES agents(id) ON DELETE CASCADE);'
        "INSERT INTO jobs VALUES ('j1', 'ag-loadtest-00001');"
        "INSERT INTO \"Group Members\" VALUES ('ag-loadtest-00001'), ('ag-loadtest-00002')",
    )
    result = unseed_fleet(pg_dsn)
    assert result.removed == 1
    assert result.blocked == [
        (agent_id(1), '"Group Members"'),
        (agent_id(1), "jobs"),
        (agent_id(2), '"Group Members"'),
    ]
    assert fetch_rows(pg_dsn, "SELECT agent_id FROM jobs") == [{"agent_id": agent_id(1)}]


@pytest.mark.e2e
def test_unseed_without_an_agents_table_is_a_clear_error(pg_empty_dsn: str) -> None:
    with pytest.raises(HarnessError, match="no agents table"):
        unseed_fleet(pg_empty_dsn)


@pytest.mark.e2e
def test_seed_after_unseed_restores_the_fleet(pg_dsn: str) -> None:
    seed_fleet(pg_dsn, 50)
    assert unseed_fleet(pg_dsn).removed == 50
    assert seed_fleet(pg_dsn, 50) == 50
