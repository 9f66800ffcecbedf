"""``certctl-load demo``: the README's first command, end to end."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from helpers import read_request_log
from storm import beats_by_agent, clean_env

pytestmark = pytest.mark.e2e


def test_the_demo_runs_a_real_storm_against_the_reference_target_and_passes(tmp_path):
    results = tmp_path / "results"
    done = subprocess.run(
        [sys.executable, "-m", "certctl_load.cli", "demo", "--results-dir", str(results), "--run-time", "8s"],
        capture_output=True, text=True, timeout=180, env=clean_env(), cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "demo storm PASSED" in done.stdout
    assert "all 3 thresholds passed" in done.stdout
    summary = json.loads((results / "summary-agent-storm.json").read_text())
    log = read_request_log(results / "demo-target-requests.jsonl")
    by_agent = beats_by_agent(log)
    assert len(by_agent) == 300
    assert summary["metrics"]["http_reqs"]["values"]["count"] == sum(len(t) for t in by_agent.values())
    assert (results / "summary-agent-storm.txt").exists() and (results / "junit-agent-storm.xml").exists()
