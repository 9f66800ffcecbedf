"""A throwaway PostgreSQL cluster for tests and benchmarks: initdb, start, stop, remove.

The cluster lives in a temporary directory, listens only on 127.0.0.1 on a free port, and
trusts the login role ``certctl`` (which still has a password, so that the DSNs tests hand
around carry one to be masked). PostgreSQL refuses to run as root, so when we are root the
server commands run as the ``postgres`` OS user.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from helpers import free_port
from psycopg.rows import dict_row

REPO_ROOT = Path(__file__).resolve().parents[1]
SCHEMA_SQL = REPO_ROOT / "seed" / "00_agents_schema.sql"
FLEET_SQL = REPO_ROOT / "seed" / "02_agent_fleet.sql"

USER = "certctl"
PASSWORD = "Sekr3t-Pw-4-tests"
HOST = "127.0.0.1"
SERVER_OS_USER = "postgres"
SERVER_BINARIES = ("initdb", "pg_ctl", "postgres")

# One agent that is not a load-test agent, referenced by a deployment target (certctl's FK: RESTRICT).
PROD_AGENT_ID = "ag-prod-1"
PROD_TARGET_ID = "tgt-prod-1"
CERTCTL_FIXTURE_SQL = f"""
CREATE TABLE deployment_targets (
    id TEXT PRIMARY KEY,
    name VARCHAR(255) NOT NULL,
    type VARCHAR(255) NOT NULL,
    agent_id TEXT NOT NULL REFERENCES agents(id) ON DELETE RESTRICT,
    enabled BOOLEAN NOT NULL DEFAULT true,
    retired_at TIMESTAMPTZ,
    retired_reason TEXT
);
INSERT INTO agents (id, name, hostname, status, last_heartbeat_at, registered_at, api_key_hash,
                    os, architecture, ip_address, version)
VALUES ('{PROD_AGENT_ID}', 'prod-agent-1', 'web-1.prod.example.com', 'Online', now() - interval '7 seconds',
        now() - interval '400 days', 'c0ffee', 'linux', 'amd64', '192.0.2.10', '2.0.3');
INSERT INTO deployment_targets (id, name, type, agent_id) VALUES ('{PROD_TARGET_ID}', 'web-1 nginx', 'NGINX',
                                                                  '{PROD_AGENT_ID}');
"""

# Durability off, UTC sessions (so that "now minus k days" never crosses a DST change).
TEST_SETTINGS: Mapping[str, str] = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "timezone": "UTC",
}
# Stock durability, for benchmarks that should look like a real server.
DURABLE_SETTINGS: Mapping[str, str] = {"timezone": "UTC"}


def find_bindir() -> Path | None:
    """The directory holding initdb, pg_ctl and postgres: ``pg_config --bindir`` first, then the
    highest version under /usr/lib/postgresql; None when PostgreSQL's server is not installed."""
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        result = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        if result.returncode == 0:
            candidates.append(Path(result.stdout.strip()))
    installed = Path("/usr/lib/postgresql").glob("*/bin")
    candidates += sorted(installed, key=_major_version, reverse=True)
    for bindir in candidates:
        if all((bindir / name).is_file() for name in SERVER_BINARIES):
            return bindir
    return None


def _major_version(bindir: Path) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", bindir.parent.name))


class ServerCommandError(RuntimeError):
    """initdb or pg_ctl failed; the message carries its stderr."""


class PgCluster:
    """One initdb'd cluster in a temporary directory; see :func:`throwaway_cluster`."""

    def __init__(self, bindir: Path, settings: Mapping[str, str] = TEST_SETTINGS) -> None:
        self.bindir = bindir
        self.settings = dict(settings)
        self.root = Path(tempfile.mkdtemp(prefix="certctl-load-pg-"))
        self.datadir = self.root / "data"
        self.logfile = self.root / "server.log"
        self.port = 0
        self._as_root = os.geteuid() == 0
        if self._as_root:
            shutil.chown(self.root, SERVER_OS_USER, SERVER_OS_USER)

    def dsn(self, dbname: str = "postgres") -> str:
        """A URL DSN for ``dbname`` as the ``certctl`` role, password included."""
        return f"postgresql://{USER}:{PASSWORD}@{HOST}:{self.port}/{dbname}"

    def binary(self, name: str) -> str:
        """The path of one of the cluster's client or server programs (``psql``, ``pg_ctl``, ...)."""
        return str(self.bindir / name)

    def init(self) -> None:
        """initdb: superuser ``certctl``, trust authentication (:meth:`start` sets the password)."""
        self._run_as_server(
            self.binary("initdb"), "--pgdata", str(self.datadir), "--username", USER, "--auth", "trust",
            "--encoding", "UTF8", "--locale", "C", "--no-sync",
        )  # fmt: skip

    def start(self, attempts: int = 3) -> None:
        """Start and wait until ready: on the port of an earlier start if any (so DSNs handed out
        stay valid across a restart), else on a free one; another if a concurrent process grabbed it."""
        for attempt in range(1, attempts + 1):
            if attempt > 1 or not self.port:
                self.port = free_port()
            self._write_settings()
            try:
                self._pg_ctl("start", "--log", str(self.logfile), "--wait", "--timeout", "60")
                break
            except ServerCommandError:
                if attempt == attempts:
                    raise ServerCommandError(f"PostgreSQL did not start; log:\n{self.log_tail()}") from None
        with psycopg.connect(self.dsn(), autocommit=True) as conn:  # trusted, but DSNs carry a password
            conn.execute(f"ALTER ROLE {USER} PASSWORD '{PASSWORD}'")

    def stop(self) -> None:
        """Stop the server (fast shutdown) and wait for it to exit."""
        self._pg_ctl("stop", "--mode", "fast", "--wait", "--timeout", "60")

    def is_running(self) -> bool:
        return (self.datadir / "postmaster.pid").exists()

    def remove(self) -> None:
        """Stop the server if it runs, then delete the cluster's directory."""
        try:
            if self.is_running():
                self.stop()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.logfile.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no server log)"

    def create_database(self, name: str, template: str = "template1") -> str:
        """CREATE DATABASE ``name`` from ``template``; returns its DSN."""
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        return self.dsn(name)

    def drop_database(self, name: str) -> None:
        """DROP DATABASE ``name``, ending any session still connected to it."""
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def _write_settings(self) -> None:
        settings = {
            **self.settings,
            "listen_addresses": f"'{HOST}'",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.root}'",
        }
        # postgresql.auto.conf is read last, so rewriting it on each start replaces earlier values.
        auto_conf = self.datadir / "postgresql.auto.conf"
        auto_conf.write_text("".join(f"{key} = {value}\n" for key, value in settings.items()))
        if self._as_root:
            shutil.chown(auto_conf, SERVER_OS_USER, SERVER_OS_USER)

    def _pg_ctl(self, *args: str) -> None:
        self._run_as_server(self.binary("pg_ctl"), "--pgdata", str(self.datadir), *args)

    def _run_as_server(self, *command: str) -> None:
        if self._as_root:
            command = ("runuser", "-u", SERVER_OS_USER, "--", *command)
        result = subprocess.run(command, capture_output=True, text=True, check=False, cwd=self.root)
        if result.returncode != 0:
            raise ServerCommandError(f"{' '.join(command)} failed: {result.stderr.strip()}")


@contextmanager
def throwaway_cluster(bindir: Path, settings: Mapping[str, str] = TEST_SETTINGS) -> Iterator[PgCluster]:
    """A running cluster, stopped and deleted on exit, also when startup or the body fails."""
    cluster = PgCluster(bindir, settings)
    try:
        cluster.init()
        cluster.start()
        yield cluster
    finally:
        cluster.remove()


def fetch_rows(dsn: str, query: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    """Run one query and return its rows as dicts."""
    with psycopg.connect(dsn, row_factory=dict_row) as conn:
        return conn.execute(query, params).fetchall()


def execute_sql(dsn: str, statements: str, params: tuple[Any, ...] | None = None) -> None:
    """Run and commit SQL; without params it may hold several statements."""
    with psycopg.connect(dsn) as conn:
        conn.execute(statements, params)


def create_certctl_database(cluster: PgCluster, name: str) -> str:
    """A database like one certctl-server has migrated (its ``agents`` table, ``deployment_targets``)
    holding one production agent :data:`PROD_AGENT_ID` that a deployment target references; its DSN."""
    dsn = cluster.create_database(name)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(SCHEMA_SQL.read_text())
        conn.execute(CERTCTL_FIXTURE_SQL)
    return dsn


def run_psql_file(
    cluster: PgCluster, dsn: str, path: Path, **variables: str
) -> subprocess.CompletedProcess[str]:
    """Run a SQL file with the real ``psql`` client (``-v name=value`` for each variable); not checked."""
    command = [cluster.binary("psql"), "-X", "-q", "-d", dsn]
    command += [f"--variable={name}={value}" for name, value in variables.items()]
    return subprocess.run([*command, "-f", str(path)], capture_output=True, text=True, check=False)
