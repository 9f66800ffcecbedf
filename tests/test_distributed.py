"""Locust's distributed mode: one fleet, one schedule and one exact verdict across workers."""

from __future__ import annotations

import json
import signal
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import free_port, read_request_log
from storm import (
    LOCUSTFILE,
    ROOT,
    beats_by_agent,
    clean_env,
    coefficient_of_variation,
    fleet_options,
    heartbeats,
    per_second_counts,
    run_storm,
    wait_for_heartbeats,
)
from target_process import running_target

from certctl_load.k6.percentiles import percentile
from certctl_load.model import fleet
from certctl_load.model.schedule import expected_beats

pytestmark = pytest.mark.e2e

FLEET = 400
INTERVAL = 4.0
RUN_TIME = 12


def assert_one_fleet(log: list[dict], fleet_size: int, interval: float, run_time: float) -> None:
    """Every agent beats, on its own cadence, never twice in one interval; the offered rate is even."""
    by_agent = beats_by_agent(log)
    assert set(by_agent) == {fleet.agent_id(g) for g in range(1, fleet_size + 1)}
    assert sum(len(t) for t in by_agent.values()) == expected_beats(fleet_size, interval, run_time)
    gaps = [b - a for times in by_agent.values() for a, b in zip(times, times[1:], strict=False)]
    assert min(gaps) > 0.8 * interval
    assert abs(statistics.median(gaps) - interval) < 0.03 * interval
    counts = per_second_counts(log, skip_first_s=interval)
    assert coefficient_of_variation(counts) < 0.15


def test_processes_2_run_one_fleet_with_an_exact_verdict(tmp_path):
    log_path = tmp_path / "requests.jsonl"
    with running_target("--fleet-size", str(FLEET), request_log=log_path) as target:
        port = str(free_port())
        run = run_storm(
            target.url,
            tmp_path / "results",
            "--processes",
            "2",
            "--master-bind-port",
            port,
            "--master-port",
            port,
            *fleet_options(FLEET, INTERVAL, RUN_TIME),
        )
    log = read_request_log(log_path)
    assert run.code == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert_one_fleet(log, FLEET, INTERVAL, RUN_TIME)
    metrics = run.summary()["metrics"]
    assert metrics["http_reqs"]["values"]["count"] == len(heartbeats(log))
    duration = metrics["http_req_duration{scenario:agent_storm}"]["values"]
    server_p95 = percentile(sorted(r["server_ms"] for r in heartbeats(log)), 95)
    assert server_p95 <= duration["p(95)"] < server_p95 + 50


def start_worker(master_port: int, log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "locust",
            "-f",
            str(LOCUSTFILE),
            "--worker",
            "--master-host",
            "127.0.0.1",
            "--master-port",
            str(master_port),
        ],
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        env=clean_env(),
        cwd=ROOT,
    )


def run_master_and_workers(tmp_path: Path, target_url: str, *args: str, during=None):
    """An explicit master and two worker processes; ``during(workers)`` runs while the storm does."""
    port = free_port()
    results = tmp_path / "results"
    master = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "locust",
            "-f",
            str(LOCUSTFILE),
            "--master",
            "--headless",
            "--master-bind-host",
            "127.0.0.1",
            "--master-bind-port",
            str(port),
            "--expect-workers",
            "2",
            "--host",
            target_url,
            "--results-dir",
            str(results),
            "--skip-preflight",
            *args,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=clean_env(),
        cwd=ROOT,
    )
    workers = [start_worker(port, tmp_path / f"worker{n}.log") for n in range(2)]
    try:
        if during is not None:
            during(workers)
        output, _ = master.communicate(timeout=150)
        worker_codes = [worker.wait(timeout=30) for worker in workers]
    finally:
        for process in [master, *workers]:
            if process.poll() is None:
                process.kill()
    return master.returncode, output, worker_codes, results


def test_an_explicit_master_and_two_workers_run_one_fleet(tmp_path):
    log_path = tmp_path / "requests.jsonl"
    with running_target("--fleet-size", str(FLEET), request_log=log_path) as target:
        code, output, worker_codes, _ = run_master_and_workers(
            tmp_path,
            target.url,
            *fleet_options(FLEET, INTERVAL, RUN_TIME),
        )
    assert code == 0, output[-3000:]
    assert worker_codes == [0, 0]
    assert_one_fleet(read_request_log(log_path), FLEET, INTERVAL, RUN_TIME)


@pytest.mark.parametrize("kill_signal", [signal.SIGKILL, signal.SIGTERM], ids=["sigkill", "sigterm"])
def test_a_lost_worker_is_named_counted_and_fails_the_verdict(tmp_path, kill_signal):
    log_path = tmp_path / "requests.jsonl"
    interval, run_time = 2.0, 16

    def kill_one_worker(workers):
        wait_for_heartbeats(log_path, int(FLEET / interval * 4))
        workers[1].send_signal(kill_signal)

    with running_target("--fleet-size", str(FLEET), request_log=log_path) as target:
        code, output, _, results = run_master_and_workers(
            tmp_path,
            target.url,
            *fleet_options(FLEET, interval, run_time),
            during=kill_one_worker,
        )
    log = read_request_log(log_path)
    assert code == 99, output[-3000:]
    assert "was lost: its 200 agents (ag-loadtest-" in output
    summary = (results / "summary-agent-storm.json").read_text()
    metrics = json.loads(summary)["metrics"]
    dropped = metrics.get("dropped_iterations", {"values": {"count": 0}})["values"]["count"]
    sent = metrics["http_reqs"]["values"]["count"]
    expected = expected_beats(FLEET, interval, run_time)
    assert json.loads(summary)["state"]["incidents"]
    if kill_signal == signal.SIGKILL:
        # Whatever the killed worker sent after its last report (every 3 s) is lost with it.
        assert dropped > 0
        assert expected - 100 * 3.5 <= sent + dropped <= expected
        assert sent <= len(heartbeats(log))
    else:
        # A stopping worker hands over its last samples, and Locust re-deals its users at once:
        # they take over exactly the lost ids, from the slot where they stopped. The worker answers
        # for every slot before it closed (sent, or dropped when due but not yet woken), even in a
        # report after its hand-over; the master for every later one until the takeover: exact.
        assert sent + dropped == expected
        assert abs(sent - len(heartbeats(log))) <= 5
        last_beat = {agent: times[-1] for agent, times in beats_by_agent(log).items()}
        first = min(r["t"] for r in heartbeats(log))
        assert all(t > first + run_time - 2 * interval for t in last_beat.values())
        assert "orphaned agents handed to worker" in output
