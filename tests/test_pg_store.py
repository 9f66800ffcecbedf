"""PgAgentStore: certctl's heartbeat statements against a real PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from helpers import poll_until
from pgcluster import (
    REPO_ROOT,
    PgCluster,
    create_certctl_database,
    execute_sql,
    fetch_rows,
    throwaway_cluster,
)

from certctl_load.errors import ConfigError
from certctl_load.model.fleet import agent_id, heartbeat_metadata
from certctl_load.target.pg_store import PgAgentStore
from certctl_load.target.store import RETIRED_REASON, HeartbeatOutcome

pytestmark = pytest.mark.e2e

FLEET, RETIRED = 20, 2
APPLICATION = "certctl-load target"
# Every UPDATE of agents, in order, with the values it wrote.
LOG_UPDATES = """
CREATE TABLE agent_updates (
    n serial PRIMARY KEY, id text, status text, last_heartbeat_at timestamptz, version text
);
CREATE FUNCTION log_agent_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO agent_updates (id, status, last_heartbeat_at, version)
    VALUES (NEW.id, NEW.status, NEW.last_heartbeat_at, NEW.version);
    RETURN NEW;
END $$;
CREATE TRIGGER log_agent_update AFTER UPDATE ON agents FOR EACH ROW EXECUTE FUNCTION log_agent_update();
"""


@pytest.fixture
def store(pg_dsn: str) -> Iterator[PgAgentStore]:
    """A store over a fleet of 20 agents, the last 2 retired, with every later UPDATE logged."""
    pg_store = PgAgentStore(pg_dsn, fleet_size=FLEET, retired=RETIRED, pool_size=3)
    execute_sql(pg_dsn, LOG_UPDATES)
    yield pg_store
    pg_store.close()


def row(dsn: str, agent: str) -> dict[str, Any]:
    (found,) = fetch_rows(dsn, "SELECT * FROM agents WHERE id = %s", (agent,))
    return found


def updates(dsn: str) -> list[dict[str, Any]]:
    return fetch_rows(dsn, "SELECT id, status, last_heartbeat_at, version FROM agent_updates ORDER BY n")


def store_connections(dsn: str) -> int:
    query = (
        "SELECT count(*) AS n FROM pg_stat_activity"
        " WHERE application_name = %s AND datname = current_database()"
    )
    return fetch_rows(dsn, query, (APPLICATION,))[0]["n"]


def test_construction_seeds_the_fleet_and_retires_the_last_agents(store: PgAgentStore, pg_dsn: str) -> None:
    retired = fetch_rows(
        pg_dsn, "SELECT id, retired_reason FROM agents WHERE retired_at IS NOT NULL ORDER BY id"
    )
    assert retired == [{"id": agent_id(g), "retired_reason": RETIRED_REASON} for g in (19, 20)]
    assert fetch_rows(pg_dsn, "SELECT count(*) AS n FROM agents WHERE id LIKE 'ag-loadtest-%%'") == [
        {"n": FLEET}
    ]


def test_a_heartbeat_is_recorded_with_one_update(store: PgAgentStore, pg_dsn: str) -> None:
    before = row(pg_dsn, agent_id(1))
    metadata = {**heartbeat_metadata(1), "version": "2.2.0", "ip_address": "10.0.0.1"}
    assert store.heartbeat(agent_id(1), metadata) is HeartbeatOutcome.RECORDED
    after = row(pg_dsn, agent_id(1))
    assert after["last_heartbeat_at"] > before["last_heartbeat_at"]
    assert (after["version"], after["ip_address"]) == ("2.2.0", "10.0.0.1")
    assert [update["id"] for update in updates(pg_dsn)] == [agent_id(1)]


def test_empty_or_missing_metadata_keeps_the_stored_values(store: PgAgentStore, pg_dsn: str) -> None:
    before = row(pg_dsn, agent_id(2))
    assert (
        store.heartbeat(agent_id(2), {"os": "plan9", "version": "", "hostname": ""})
        is HeartbeatOutcome.RECORDED
    )
    after = row(pg_dsn, agent_id(2))
    assert after["os"] == "plan9"
    for column in ("hostname", "architecture", "ip_address", "version"):
        assert after[column] == before[column], column


def test_an_unknown_agent_is_not_found_and_nothing_is_written(store: PgAgentStore, pg_dsn: str) -> None:
    assert store.heartbeat("ag-loadtest-99999", heartbeat_metadata(99999)) is HeartbeatOutcome.NOT_FOUND
    assert updates(pg_dsn) == []


def test_a_retired_agent_is_retired_and_nothing_is_written(store: PgAgentStore, pg_dsn: str) -> None:
    before = row(pg_dsn, agent_id(20))
    assert store.heartbeat(agent_id(20), heartbeat_metadata(20)) is HeartbeatOutcome.RETIRED
    assert row(pg_dsn, agent_id(20)) == before
    assert updates(pg_dsn) == []


@pytest.mark.parametrize("status", ["Offline", "online", "Degraded"])
def test_a_non_online_agent_gets_certctls_second_update(
    store: PgAgentStore, pg_dsn: str, status: str
) -> None:
    execute_sql(pg_dsn, "UPDATE agents SET status = %s WHERE id = %s", (status, agent_id(3)))
    execute_sql(pg_dsn, "TRUNCATE agent_updates")
    before = row(pg_dsn, agent_id(3))
    assert store.heartbeat(agent_id(3), {"version": "9.9.9"}) is HeartbeatOutcome.RECORDED
    first, second = updates(pg_dsn)
    assert (first["status"], first["version"]) == (status, "9.9.9")
    assert first["last_heartbeat_at"] > before["last_heartbeat_at"]
    # certctl's Update writes back the row read before the heartbeat, status Online.
    assert second == {
        "id": agent_id(3),
        "status": "Online",
        "last_heartbeat_at": before["last_heartbeat_at"],
        "version": before["version"],
    }
    assert row(pg_dsn, agent_id(3)) == {**before, "status": "Online"}


@pytest.mark.parametrize(
    ("column", "limit"), [("hostname", 255), ("os", 100), ("ip_address", 45), ("version", 50)]
)
def test_a_value_over_its_column_limit_is_an_error(
    store: PgAgentStore, pg_dsn: str, column: str, limit: int
) -> None:
    before = row(pg_dsn, agent_id(4))
    assert store.heartbeat(agent_id(4), {column: "x" * (limit + 1)}) is HeartbeatOutcome.ERROR
    assert row(pg_dsn, agent_id(4)) == before
    assert store.heartbeat(agent_id(4), {column: "x" * limit}) is HeartbeatOutcome.RECORDED
    assert row(pg_dsn, agent_id(4))[column] == "x" * limit


def test_a_null_metadata_column_is_an_error_like_certctls_row_scan(store: PgAgentStore, pg_dsn: str) -> None:
    execute_sql(pg_dsn, "UPDATE agents SET os = NULL WHERE id = %s", (agent_id(5),))
    execute_sql(pg_dsn, "TRUNCATE agent_updates")
    assert store.heartbeat(agent_id(5), heartbeat_metadata(5)) is HeartbeatOutcome.ERROR
    assert updates(pg_dsn) == []


def test_a_database_error_is_an_error(store: PgAgentStore, pg_dsn: str) -> None:
    execute_sql(pg_dsn, "ALTER TABLE agents RENAME TO agents_elsewhere")
    assert store.heartbeat(agent_id(1), heartbeat_metadata(1)) is HeartbeatOutcome.ERROR
    assert store.agent_exists(agent_id(1)) is None
    assert store.is_ready()


def test_get_agent_and_agent_exists(store: PgAgentStore) -> None:
    agent = store.get_agent(agent_id(19))
    assert agent is not None
    assert agent["id"] == agent_id(19) and agent["retired_reason"] == RETIRED_REASON
    assert agent["retired_at"].endswith("Z") and agent["last_heartbeat_at"].endswith("Z")
    assert agent["os"] == "linux"
    assert store.get_agent("nobody") is None
    assert store.agent_exists(agent_id(19)) is True
    assert store.agent_exists(agent_id(1)) is True
    assert store.agent_exists("nobody") is False


def test_serial_heartbeats_reuse_one_connection_and_close_releases_it(
    store: PgAgentStore, pg_dsn: str
) -> None:
    for g in range(1, 11):
        assert store.heartbeat(agent_id(g), heartbeat_metadata(g)) is HeartbeatOutcome.RECORDED
    assert store_connections(pg_dsn) == 1
    store.close()
    poll_until(lambda: store_connections(pg_dsn) == 0, 10.0)
    assert store.heartbeat(agent_id(1), heartbeat_metadata(1)) is HeartbeatOutcome.ERROR
    assert not store.is_ready()


GEVENT_STORM = """
from gevent import monkey

monkey.patch_all()
import sys, time
import gevent
from certctl_load.target.pg_store import PgAgentStore
from certctl_load.target.store import HeartbeatOutcome

store = PgAgentStore(sys.argv[1], pool_size=3)
start = time.monotonic()
jobs = [gevent.spawn(store.heartbeat, f"ag-loadtest-{g:05d}", {}) for g in range(1, 7)]
gevent.joinall(jobs)
elapsed = time.monotonic() - start
assert [job.value for job in jobs] == [HeartbeatOutcome.RECORDED] * 6, [job.value for job in jobs]
print(f"{elapsed:.3f}")
sys.stdout.flush()
input()  # the test counts the pool's connections, then lets the process end
"""


def test_heartbeats_from_greenlets_share_the_pool_concurrently(store: PgAgentStore, pg_dsn: str) -> None:
    # Each heartbeat's UPDATE takes 0.4 s: 6 of them over 3 connections take about 0.8 s, not 2.4 s.
    execute_sql(
        pg_dsn,
        "CREATE FUNCTION slow() RETURNS trigger LANGUAGE plpgsql"
        " AS $$ BEGIN PERFORM pg_sleep(0.4); RETURN NEW; END $$;"
        "CREATE TRIGGER slow BEFORE UPDATE ON agents FOR EACH ROW EXECUTE FUNCTION slow()",
    )
    with subprocess.Popen(
        [sys.executable, "-c", GEVENT_STORM, pg_dsn],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO_ROOT,
    ) as storm:  # fmt: skip
        assert storm.stdout is not None and storm.stdin is not None
        elapsed = storm.stdout.readline()
        connections = store_connections(pg_dsn)
        _, errors = storm.communicate("\n", timeout=60)
    assert storm.returncode == 0, errors
    assert float(elapsed) < 1.8
    assert connections == 3
    assert len(updates(pg_dsn)) == 6


def test_bad_construction_arguments_are_config_errors(pg_dsn: str) -> None:
    with pytest.raises(ConfigError):
        PgAgentStore(pg_dsn, fleet_size=5, retired=6)
    with pytest.raises(ConfigError):
        PgAgentStore(pg_dsn, retired=1)
    with pytest.raises(ConfigError):
        PgAgentStore(pg_dsn, pool_size=0)


@pytest.fixture(scope="module")
def private_cluster(pg_cluster: PgCluster) -> Iterator[PgCluster]:
    """A second, short-lived cluster this module may stop and start."""
    with throwaway_cluster(pg_cluster.bindir) as cluster:
        yield cluster


def test_readiness_follows_the_server_and_the_store_reconnects(private_cluster: PgCluster) -> None:
    dsn = create_certctl_database(private_cluster, "restarts")
    store = PgAgentStore(dsn, fleet_size=5, pool_size=2)
    try:
        assert store.is_ready()
        assert store.heartbeat(agent_id(1), heartbeat_metadata(1)) is HeartbeatOutcome.RECORDED
        private_cluster.stop()
        try:
            assert not store.is_ready()
            assert store.heartbeat(agent_id(1), heartbeat_metadata(1)) is HeartbeatOutcome.ERROR
            assert store.agent_exists(agent_id(1)) is None
        finally:
            private_cluster.start()
        assert store.is_ready()
        assert store.heartbeat(agent_id(2), heartbeat_metadata(2)) is HeartbeatOutcome.RECORDED
    finally:
        store.close()


def test_a_restart_between_heartbeats_costs_no_error(private_cluster: PgCluster) -> None:
    dsn = create_certctl_database(private_cluster, "stale")
    store = PgAgentStore(dsn, fleet_size=5, pool_size=1)
    try:
        assert store.heartbeat(agent_id(1), heartbeat_metadata(1)) is HeartbeatOutcome.RECORDED
        private_cluster.stop()
        private_cluster.start()
        assert store.heartbeat(agent_id(1), heartbeat_metadata(1)) is HeartbeatOutcome.RECORDED
    finally:
        store.close()
