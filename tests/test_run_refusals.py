"""A run refused before any load (a run time of zero or less, a worker with a bad configuration),
and harness errors on workers reaching the master's exit code: real locust processes."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from helpers import free_port, poll_until, read_request_log
from storm import LOCUSTFILE, ROOT, clean_env, heartbeats, run_storm
from target_process import running_target

from certctl_load import exitcodes

pytestmark = pytest.mark.e2e

BAD_WORKER_ENV = {"CERTCTL_TOKEN": "two\nlines"}
BAD_WORKER_LINE = "environment CERTCTL_TOKEN contains a line break"


@pytest.mark.parametrize(
    ("run_time", "line"),
    [("0s", "--run-time=0 must be positive"), ("-5s", "--run-time='-5s' must be positive")],
)
def test_a_run_time_of_zero_or_less_exits_104_before_any_request(tmp_path, run_time, line):
    log_path = tmp_path / "requests.jsonl"
    with running_target("--fleet-size", "10", request_log=log_path) as target:
        run = run_storm(
            target.url, tmp_path / "results", "--fleet-size", "10", f"--run-time={run_time}", timeout=60
        )
    assert run.code == exitcodes.INVALID_CONFIG, run.stderr[-2000:]
    assert line in run.stderr
    assert heartbeats(read_request_log(log_path)) == []


FAULTY_LOCUSTFILE = """
from certctl_load.locustfile import CertctlAgent, StormShape
from certctl_load.runtime.call_loop import CallLoop

_beat = CallLoop.beat


def beat_then_fail(self):
    _beat(self)
    raise RuntimeError("a fault in the harness")


CallLoop.beat = beat_then_fail
"""


def test_harness_errors_on_workers_count_in_the_masters_exit_code(tmp_path):
    locustfile = tmp_path / "faulty_locustfile.py"
    locustfile.write_text(FAULTY_LOCUSTFILE)
    with running_target("--fleet-size", "20") as target:
        port = str(free_port())
        command = [sys.executable, "-m", "locust", "-f", str(locustfile), "--headless", "--skip-preflight"]
        command += ["--host", target.url, "--results-dir", str(tmp_path / "results"), "--processes", "2"]
        command += ["--master-bind-port", port, "--master-port", port]
        command += ["--fleet-size", "20", "--heartbeat-interval", "1", "--run-time", "4s"]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, env=clean_env(), cwd=ROOT)
    assert done.returncode == exitcodes.HARNESS_ERROR, done.stdout[-2000:] + done.stderr[-2000:]
    assert "a fault in the harness" in done.stderr


def locust_process(*args: str, env: dict[str, str] | None = None, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), *args],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        env=clean_env(env),
        cwd=ROOT,
    )


def worker(port: int, log: Path) -> subprocess.Popen[bytes]:
    args = ("--worker", "--master-host", "127.0.0.1", "--master-port", str(port))
    return locust_process(*args, env=BAD_WORKER_ENV, log=log)


def stop(*processes: subprocess.Popen[bytes]) -> None:
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_a_worker_with_a_bad_configuration_refuses_a_headless_run(tmp_path):
    log_path = tmp_path / "requests.jsonl"
    port = free_port()
    with running_target("--fleet-size", "10", request_log=log_path) as target:
        master = locust_process(
            "--master", "--headless", "--expect-workers", "1", "--master-bind-host", "127.0.0.1",
            "--master-bind-port", str(port), "--host", target.url, "--skip-preflight",
            "--results-dir", str(tmp_path / "results"), "--fleet-size", "10", "--heartbeat-interval", "1",
            "--run-time", "5s",
            log=tmp_path / "master.log",
        )  # fmt: skip
        bad = worker(port, tmp_path / "worker.log")
        try:
            master_code = master.wait(timeout=60)
            worker_code = bad.wait(timeout=30)
        finally:
            stop(master, bad)
    output = (tmp_path / "master.log").read_text()
    assert master_code == exitcodes.INVALID_CONFIG, output[-3000:]
    assert f"worker 0 ({socket.gethostname()}): {BAD_WORKER_LINE}" in output
    assert worker_code == 0
    assert heartbeats(read_request_log(log_path)) == []
    assert not (tmp_path / "results" / "summary-agent-storm.json").exists()


def test_a_worker_with_a_bad_configuration_refuses_a_run_from_the_web_ui(tmp_path):
    log_path = tmp_path / "requests.jsonl"
    port, web_port = free_port(), free_port()
    with running_target("--fleet-size", "10", request_log=log_path) as target:
        master = locust_process(
            "--master", "--master-bind-host", "127.0.0.1", "--master-bind-port", str(port),
            "--web-host", "127.0.0.1", "--web-port", str(web_port), "--host", target.url,
            "--skip-preflight", "--results-dir", str(tmp_path / "results"), "--fleet-size", "10",
            "--heartbeat-interval", "1", "--run-time", "5s",
            log=tmp_path / "master.log",
        )  # fmt: skip
        bad = worker(port, tmp_path / "worker.log")
        ui = f"http://127.0.0.1:{web_port}"
        try:

            def workers_connected() -> int:
                assert master.poll() is None, (tmp_path / "master.log").read_text()[-3000:]
                try:
                    return len(requests.get(f"{ui}/stats/requests", timeout=5).json()["workers"])
                except requests.ConnectionError:
                    return 0

            poll_until(workers_connected, 60, 0.2, "the worker never connected")
            started = requests.post(f"{ui}/swarm", data={"user_count": "10", "spawn_rate": "10"}, timeout=10)
            assert started.json()["success"] is True

            def judged() -> dict | None:
                live = requests.get(f"{ui}/certctl/live", timeout=5).json()
                return live if live["state"] == "finished" else None

            live = poll_until(judged, 60, 0.2, "the run was never judged")
            assert live["outcome"]["exit_code"] == exitcodes.INVALID_CONFIG
            assert live["outcome"]["verdict"].startswith("refused")
            assert live["stop_reason"] == f"worker 0 ({socket.gethostname()}): {BAD_WORKER_LINE}"
            assert requests.get(f"{ui}/", timeout=5).status_code == 200  # the web UI stays up
            assert master.poll() is None
        finally:
            stop(master, bad)
    assert heartbeats(read_request_log(log_path)) == []
