"""Interrupts: SIGINT or SIGTERM ~8 s into a 60 s run stops the storm within seconds, writes both
summaries (atomically) with the data so far, marked interrupted, and exits 105."""

from __future__ import annotations

import json
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import read_request_log
from storm import heartbeats, start_storm, wait_for_heartbeats
from target_process import running_target

from certctl_load import exitcodes

pytestmark = pytest.mark.e2e

FLEET = 50
INTERVAL_S = 1.0
LATENCY_MS = 100  # 50 beats/s of 100 ms each: about 5 requests are in flight at any moment
SIGNAL_AFTER_BEATS = int(8 * FLEET / INTERVAL_S)
STOP_WITHIN_S = 10.0


@dataclass
class Interrupted:
    """One interrupted run: the harness's exit, output and results, and what the target logged."""

    code: int
    stdout: str
    stderr: str
    stop_latency_s: float
    results_dir: Path
    received: list[dict]

    def summary(self) -> dict:
        return json.loads((self.results_dir / "summary-agent-storm.json").read_text())


def most_in_flight(beats: list[dict]) -> int:
    """The most heartbeats the target was serving at once."""
    starts = [(r["t"], 1) for r in beats]
    ends = [(r["t"] + r["server_ms"] / 1000.0, -1) for r in beats]
    level = peak = 0
    for _, change in sorted(starts + ends):
        level += change
        peak = max(peak, level)
    return peak


@pytest.fixture(
    scope="module",
    params=[
        signal.SIGINT,
        signal.SIGTERM,
    ],
    ids=["SIGINT", "SIGTERM"],
)
def interrupted(request, tmp_path_factory) -> Interrupted:
    """A 60 s storm of 50 agents (1 s interval, 100 ms server latency) signalled after 400 beats."""
    workdir = tmp_path_factory.mktemp(request.param.name)
    log_path = workdir / "requests.jsonl"
    results_dir = workdir / "results"
    with running_target(
        "--fleet-size", str(FLEET), "--latency-ms", str(LATENCY_MS), request_log=log_path
    ) as target:
        args = ["--fleet-size", str(FLEET), "--heartbeat-interval", f"{INTERVAL_S:g}", "--run-time", "60s"]
        process = start_storm(target.url, results_dir, *args)
        try:
            wait_for_heartbeats(log_path, SIGNAL_AFTER_BEATS, timeout_s=60, process=process)
            signalled_at = time.monotonic()
            process.send_signal(request.param)
            stdout, stderr = process.communicate(timeout=STOP_WITHIN_S * 3)
            stop_latency_s = time.monotonic() - signalled_at
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate()
    return Interrupted(
        process.returncode,
        stdout,
        stderr,
        stop_latency_s,
        results_dir,
        heartbeats(read_request_log(log_path)),
    )


def test_the_run_stops_within_seconds_with_exit_105(interrupted):
    assert interrupted.code == exitcodes.INTERRUPTED, interrupted.stderr[-3000:]
    assert interrupted.stop_latency_s < STOP_WITHIN_S


def test_both_summaries_and_the_report_are_written_atomically_with_the_data_so_far(interrupted):
    names = {path.name for path in interrupted.results_dir.iterdir()}
    assert {"summary-agent-storm.json", "summary-agent-storm.txt", "report-agent-storm.html"} <= names
    assert [name for name in names if name.startswith(".") or name.endswith(".tmp")] == []
    summary = interrupted.summary()
    assert summary["state"]["interrupted"] is True
    assert summary["metrics"]["http_reqs"]["values"]["count"] >= SIGNAL_AFTER_BEATS
    assert "http_reqs" in (interrupted.results_dir / "summary-agent-storm.txt").read_text()
    assert "http_reqs" in interrupted.stdout
    report = (interrupted.results_dir / "report-agent-storm.html").read_text()
    assert (
        '<span id="certctl-verdict" class="verdict tone-warn" title="interrupted">interrupted</span>'
        in report
    )


def test_the_timeline_is_written_with_every_request_so_far(interrupted):
    timeline = json.loads((interrupted.results_dir / "timeline-agent-storm.json").read_text())
    counted = interrupted.summary()["metrics"]["http_reqs"]["values"]["count"]
    assert sum(row["sent"] for row in timeline["rows"]) == counted


def test_the_summary_misses_at_most_the_requests_in_flight(interrupted):
    """Every request the summary counts reached the target and was answered 200; those it misses
    can only be ones in flight when the harness stopped."""
    counted = interrupted.summary()["metrics"]["http_reqs"]["values"]["count"]
    assert all(r["status"] == 200 for r in interrupted.received)
    assert 0 <= len(interrupted.received) - counted <= most_in_flight(interrupted.received)


def test_requests_in_flight_at_the_signal_are_finished_and_counted(interrupted):
    counted = interrupted.summary()["metrics"]["http_reqs"]["values"]["count"]
    assert counted == len(interrupted.received)
