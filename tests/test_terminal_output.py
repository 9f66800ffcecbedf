"""What a CI log reader sees: the verdict table and the summary paths are the last lines of the
log (stdout and stderr together), after Locust's own shutdown tables, and no warning about the
spawn rate the harness chose."""

from __future__ import annotations

import subprocess

import pytest
from storm import ROOT, clean_env, fleet_options, storm_command
from target_process import running_target

pytestmark = pytest.mark.e2e


def test_the_verdict_and_the_paths_are_the_last_lines_of_the_log(tmp_path):
    with running_target("--fleet-size", "150") as target:
        command = storm_command(target.url, tmp_path / "results", *fleet_options(150, 1.0, 4))
        done = subprocess.run(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=120,
            env=clean_env(),
            cwd=ROOT,
        )
    log = done.stdout
    assert done.returncode == 0, log[-3000:]
    lines = [line for line in log.splitlines() if line.strip()]
    assert lines[-1].startswith("report: ") and lines[-1].endswith("timeline-agent-storm.json)")
    assert "report-agent-storm.html (per second: " in lines[-1]
    assert lines[-2].startswith("summaries: ") and lines[-2].endswith("junit-agent-storm.xml")
    assert lines[-3] == "all 3 thresholds passed"
    assert lines[-7].startswith("threshold ") and lines[-7].split()[-1] == "verdict"
    assert log.rindex("Response time percentiles") < log.rindex(lines[-7])
    assert "spawn rate is very high" not in log  # 150 agents spawn at once, on purpose
