"""The reference target as a process: its listening line, request log, signals, TLS, API keys,
SQLite file and PostgreSQL backends."""

from __future__ import annotations

import http.client
import re
import signal
import sqlite3
import ssl
import time
from pathlib import Path

import pytest
import requests
from helpers import read_request_log
from target_process import running_target

from certctl_load.model import fleet
from certctl_load.target import tls

pytestmark = pytest.mark.e2e

AUTH = {"Authorization": "Bearer load-test-token"}


def test_port_0_listens_on_a_free_port_and_says_where(tmp_path):
    with running_target("--fleet-size", "1") as target:
        assert re.fullmatch(r"certctl-load target listening on http://127\.0\.0\.1:(\d+)", target.banner)
        assert target.banner.endswith(f":{target.port}") and target.port > 0
        assert requests.get(f"{target.url}/health", timeout=10).status_code == 200
        limits = Path(f"/proc/{target.process.pid}/limits").read_text()
        soft, hard = re.search(r"Max open files\s+(\S+)\s+(\S+)", limits).groups()
        assert soft == hard  # raised to the hard limit
        with (
            pytest.raises(RuntimeError, match="exited with code 1") as failure,
            running_target("--port", str(target.port)),
        ):
            pass
    assert f"cannot listen on 127.0.0.1:{target.port}" in str(failure.value)


def test_reuse_port_lets_several_targets_share_a_port_and_its_connections(tmp_path):
    logs = [tmp_path / "first.jsonl", tmp_path / "second.jsonl"]
    shared = ("--fleet-size", "5", "--reuse-port")
    with (
        running_target(*shared, request_log=logs[0]) as first,
        running_target(*shared, "--port", str(first.port), request_log=logs[1]) as second,
    ):
        assert second.port == first.port
        served = 0
        # The kernel hashes each new connection to one listener: within 200, both get some.
        while served < 200 and not all(path.exists() and path.read_text() for path in logs):
            conn = http.client.HTTPConnection("127.0.0.1", first.port, timeout=10)
            conn.request("GET", "/health")
            assert conn.getresponse().status == 200
            conn.close()
            served += 1
    assert all(read_request_log(path) for path in logs), f"one target got none of {served} connections"
    assert sum(len(read_request_log(path)) for path in logs) == served


def test_the_request_log_has_a_flushed_line_per_request_while_running(tmp_path):
    log_path = tmp_path / "requests.jsonl"
    with running_target("--fleet-size", "3", request_log=log_path) as target:
        conn = http.client.HTTPConnection("127.0.0.1", target.port, timeout=10)
        conn.connect()
        client = "{}:{}".format(*conn.sock.getsockname())
        calls = [
            ("POST", f"/api/v1/agents/{fleet.agent_id(2)}/heartbeat?trace=1", AUTH, 200),
            ("GET", "/health", {}, 200),
            ("POST", "/api/v1/agents/ag-nobody/heartbeat", AUTH, 404),
            ("POST", f"/api/v1/agents/{fleet.agent_id(1)}/heartbeat", {}, 401),
        ]
        measured = []
        for method, path, headers, status in calls:
            before = time.time()
            conn.request(method, path, body=b"{}" if method == "POST" else None, headers=headers)
            response = conn.getresponse()
            response.read()
            measured.append((before, (time.time() - before) * 1000))
            assert response.status == status
            log = read_request_log(log_path)  # no waiting: the line is flushed before the response is sent
            assert len(log) == len(measured)
        conn.close()
    assert [list(record) for record in log] == [
        ["t", "method", "path", "agent", "status", "server_ms", "client"]
    ] * 4
    expected_agents = [fleet.agent_id(2), None, "ag-nobody", fleet.agent_id(1)]
    for record, (method, path, _, status), agent, (before, client_ms) in zip(
        log, calls, expected_agents, measured, strict=True
    ):
        assert (record["method"], record["path"], record["status"]) == (
            method,
            path.partition("?")[0],
            status,
        )
        assert record["agent"] == agent
        assert record["client"] == client
        assert before <= record["t"] <= before + client_ms / 1000
        assert 0 <= record["server_ms"] <= client_ms


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_it_cleanly_with_the_log_complete(tmp_path, sig):
    log_path = tmp_path / "requests.jsonl"
    with running_target("--fleet-size", "3", request_log=log_path) as target:
        idle = requests.Session()  # an idle keep-alive connection must not hold up the stop
        assert idle.get(f"{target.url}/health", timeout=10).status_code == 200
        started = time.monotonic()
        assert target.stop(sig) == 0
        assert time.monotonic() - started < 1.5
        assert target.stderr() == ""
    assert [record["path"] for record in read_request_log(log_path)] == ["/health"]
    assert log_path.read_text().endswith("\n")


def test_tls_with_a_made_certificate_verified_by_its_ca(tmp_path):
    ca = tmp_path / "ca.pem"
    with running_target("--fleet-size", "2", "--tls", "--tls-ca-out", str(ca)) as target:
        assert target.url.startswith("https://127.0.0.1:")
        context = ssl.create_default_context(cafile=str(ca))
        context.verify_flags |= ssl.VERIFY_X509_STRICT
        for host in ("127.0.0.1", "localhost"):
            conn = http.client.HTTPSConnection(host, target.port, context=context, timeout=10)
            conn.request("POST", f"/api/v1/agents/{fleet.agent_id(1)}/heartbeat", body=b"{}", headers=AUTH)
            assert conn.getresponse().status == 200
            assert conn.sock.version() == "TLSv1.3"
            conn.close()
        with pytest.raises(ssl.SSLCertVerificationError):
            http.client.HTTPSConnection("127.0.0.1", target.port, timeout=10).request("GET", "/health")
        assert requests.get(f"{target.url}/health", verify=str(ca), timeout=10).status_code == 200


def test_tls_with_a_given_certificate_and_key(tmp_path):
    files = tls.write_self_signed(tmp_path)
    with running_target(
        "--fleet-size", "2", "--tls-cert", str(files.cert), "--tls-key", str(files.key)
    ) as target:
        assert requests.get(f"{target.url}/health", verify=str(files.ca), timeout=10).status_code == 200


def test_api_keys_come_from_token_or_the_environment_and_are_never_shown(tmp_path):
    log_path = tmp_path / "requests.jsonl"
    check = "/api/v1/auth/check"
    with running_target(
        "--fleet-size", "1", "--token", " first-key , second-key,", request_log=log_path
    ) as target:
        users = [
            requests.get(target.url + check, headers={"Authorization": f"Bearer {key}"}, timeout=10)
            for key in ("first-key", "second-key", "load-test-token")
        ]
        shown = target.banner + target.stderr()
    assert [response.status_code for response in users] == [200, 200, 401]
    assert [response.json()["user"] for response in users[:2]] == ["legacy-key-0", "legacy-key-1"]
    env = {"CERTCTL_AUTH_SECRET": "env-key"}
    with running_target("--fleet-size", "1", env=env) as target:
        assert (
            requests.get(target.url + check, headers={"Authorization": "Bearer env-key"}).status_code == 200
        )
        assert requests.get(target.url + check, headers=AUTH).status_code == 401
        shown += target.banner + target.stderr()
    shown += log_path.read_text()
    assert not any(key in shown for key in ("first-key", "second-key", "env-key"))


def test_sqlite_file_fleet_flips_status_and_reports_database_errors(tmp_path):
    """Another process edits the SQLite file under the running target, as certctl's reaper or an
    outage would: a heartbeat sets an Offline agent Online (writing back the pre-heartbeat
    timestamp, certctl's quirk), and a missing table makes heartbeats 500 and /ready 503."""
    path = tmp_path / "fleet.sqlite"
    with (
        running_target("--fleet-size", "5", "--sqlite-path", str(path)) as target,
        requests.Session() as session,
    ):
        agent_url = f"{target.url}/api/v1/agents/{fleet.agent_id(3)}"
        with sqlite3.connect(path, isolation_level=None) as db:
            db.execute("UPDATE agents SET status = 'Offline' WHERE id = ?", (fleet.agent_id(3),))
            offline = session.get(agent_url, headers=AUTH).json()
            assert offline["status"] == "Offline"
            assert (
                session.post(f"{agent_url}/heartbeat", json={"version": "9.0"}, headers=AUTH).status_code
                == 200
            )
            online = session.get(agent_url, headers=AUTH).json()
            assert online["status"] == "Online"
            assert (online["last_heartbeat_at"], online["version"]) == (offline["last_heartbeat_at"], "2.1.0")
            assert (
                session.post(f"{agent_url}/heartbeat", json={"version": "9.0"}, headers=AUTH).status_code
                == 200
            )
            assert session.get(agent_url, headers=AUTH).json()["version"] == "9.0"  # Online: one UPDATE only

            db.execute("ALTER TABLE agents RENAME TO agents_away")
            ready = session.get(f"{target.url}/ready")
            failed = session.post(f"{agent_url}/heartbeat", json={}, headers=AUTH)
            work = session.get(f"{agent_url}/work", headers=AUTH)
            db.execute("ALTER TABLE agents_away RENAME TO agents")
        assert (ready.status_code, ready.json()) == (503, {"status": "not_ready", "db": "unreachable"})
        assert (failed.status_code, failed.json()["message"]) == (500, "Failed to record heartbeat")
        assert (work.status_code, work.json()["message"]) == (500, "Failed to get pending work")
        assert session.get(f"{target.url}/ready").status_code == 200
        assert session.post(f"{agent_url}/heartbeat", json={}, headers=AUTH).status_code == 200


def test_an_unreachable_database_is_a_startup_error_without_the_password():
    dsn = "postgresql://certctl:Hush-Secret-9@127.0.0.1:1/certctl"
    for args, env in (((f"--dsn={dsn}",), None), ((), {"CERTCTL_DATABASE_URL": dsn})):
        with pytest.raises(RuntimeError, match="exited with code") as failure, running_target(*args, env=env):
            pass
        assert "Hush-Secret-9" not in str(failure.value)
        assert "127.0.0.1" in str(failure.value)


def test_the_postgresql_store_serves_the_same_contract(pg_dsn):
    with (
        running_target("--fleet-size", "10", "--retired", "1", "--dsn", pg_dsn) as target,
        requests.Session() as s,
    ):
        beat = f"{target.url}/api/v1/agents/{{}}/heartbeat"
        assert (
            s.post(beat.format(fleet.agent_id(1)), json={"version": "9.1"}, headers=AUTH).status_code == 200
        )
        assert s.post(beat.format(fleet.agent_id(10)), json={}, headers=AUTH).status_code == 410
        assert s.post(beat.format("ag-nobody"), json={}, headers=AUTH).status_code == 404
        row = s.get(f"{target.url}/api/v1/agents/{fleet.agent_id(1)}", headers=AUTH).json()
        assert row["version"] == "9.1"
        assert s.get(f"{target.url}/ready").json() == {"status": "ready", "db": "reachable"}
