"""``certctl-load seed`` and ``certctl-load unseed`` as a user runs them (a subprocess)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from helpers import free_port
from pgcluster import PASSWORD, REPO_ROOT, execute_sql, fetch_rows

from certctl_load.db.dsn import ENV_VAR, mask_dsn
from certctl_load.exitcodes import HARNESS_ERROR, INVALID_CONFIG, OK
from certctl_load.model.fleet import agent_id

pytestmark = pytest.mark.e2e


def certctl_load(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environ = {key: value for key, value in os.environ.items() if key != ENV_VAR}
    result = subprocess.run(
        [sys.executable, "-m", "certctl_load.cli", *args],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env={**environ, **(env or {})},
        timeout=120,
        check=False,
    )
    assert PASSWORD not in result.stdout + result.stderr
    return result


def test_seed_prints_one_line_with_the_masked_dsn(pg_dsn: str) -> None:
    result = certctl_load("seed", "--dsn", pg_dsn, "--fleet-size", "50")
    assert result.returncode == OK, result.stderr
    assert result.stdout == f"seeded: 50 load-test agents (prefix ag-loadtest-) in DB {mask_dsn(pg_dsn)}\n"
    assert "certctl:***@127.0.0.1" in result.stdout
    assert fetch_rows(pg_dsn, "SELECT count(*) AS n FROM agents WHERE id LIKE 'ag-loadtest-%%'") == [
        {"n": 50}
    ]


def test_seed_reads_the_dsn_from_the_environment_and_mentions_extra_rows(pg_dsn: str) -> None:
    assert certctl_load("seed", "--fleet-size", "30", env={ENV_VAR: pg_dsn}).returncode == OK
    result = certctl_load("seed", "--fleet-size", "20", "--id-prefix", "ag-loadtest-", env={ENV_VAR: pg_dsn})
    assert result.returncode == OK, result.stderr
    assert result.stdout.startswith(
        "seeded: 20 load-test agents (prefix ag-loadtest-) in DB postgresql://certctl:***@"
    )
    assert "; 30 rows carry the prefix" in result.stdout


def test_seed_without_a_database_is_a_config_error() -> None:
    result = certctl_load("seed", "--fleet-size", "5")
    assert result.returncode == INVALID_CONFIG
    assert result.stderr == f"certctl-load seed: no database given: pass --dsn or set {ENV_VAR}\n"


def test_seed_refuses_a_fleet_of_zero(pg_dsn: str) -> None:
    result = certctl_load("seed", "--dsn", pg_dsn, "--fleet-size", "0")
    assert result.returncode == 2
    assert "must be at least 1" in result.stderr


def test_seed_against_a_database_without_agents_table(pg_empty_dsn: str) -> None:
    result = certctl_load("seed", "--dsn", pg_empty_dsn, "--fleet-size", "5")
    assert result.returncode == HARNESS_ERROR
    assert result.stderr.startswith(f"certctl-load seed: no agents table in {mask_dsn(pg_empty_dsn)}: ")
    assert result.stderr.count("\n") == 1


def test_seed_against_an_unreachable_server() -> None:
    dsn = f"postgresql://certctl:{PASSWORD}@127.0.0.1:{free_port()}/certctl"
    result = certctl_load("seed", "--dsn", dsn, "--fleet-size", "5")
    assert result.returncode == HARNESS_ERROR
    assert result.stderr.startswith(
        f"certctl-load seed: cannot connect to {mask_dsn(dsn)}: connection failed"
    )


def test_unseed_names_referenced_agents_and_removes_the_rest(pg_dsn: str) -> None:
    certctl_load("seed", "--dsn", pg_dsn, "--fleet-size", "10")
    execute_sql(
        pg_dsn,
        "INSERT INTO deployment_targets (id, name, type, agent_id) VALUES ('t9', 'x', 'NGINX', %s)",
        (agent_id(9),),
    )
    result = certctl_load("unseed", "--dsn", pg_dsn)
    assert result.returncode == OK, result.stderr
    assert result.stderr == f"warning: kept {agent_id(9)}: referenced by deployment_targets\n"
    assert result.stdout == (
        f"unseeded: removed 9 load-test agents (prefix ag-loadtest-) from DB {mask_dsn(pg_dsn)}; "
        "kept 1 referenced by other tables\n"
    )


def test_unseed_fails_when_every_load_test_agent_is_referenced(pg_dsn: str) -> None:
    certctl_load("seed", "--dsn", pg_dsn, "--fleet-size", "1")
    execute_sql(
        pg_dsn,
        "INSERT INTO deployment_targets (id, name, type, agent_id) VALUES ('t1', 'x', 'NGINX', %s)",
        (agent_id(1),),
    )
    result = certctl_load("unseed", "--dsn", pg_dsn)
    assert result.returncode == HARNESS_ERROR
    assert result.stderr.splitlines() == [
        f"warning: kept {agent_id(1)}: referenced by deployment_targets",
        f"certctl-load unseed: removed no load-test agents (prefix ag-loadtest-) from DB {mask_dsn(pg_dsn)}: "
        "all 1 are referenced by other tables",
    ]


def test_unseed_with_nothing_to_do_succeeds(pg_dsn: str) -> None:
    result = certctl_load("unseed", "--dsn", pg_dsn)
    assert result.returncode == OK, result.stderr
    assert result.stdout.startswith("unseeded: removed 0 load-test agents")
