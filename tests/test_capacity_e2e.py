"""``certctl-load capacity`` end to end: real locust steps against the reference target, whose
``--capacity R`` gives the answer the search must find; a cap that holds; a starved generator;
SIGTERM. Short intervals keep every search to well under a minute."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import poll_until
from storm import ROOT, clean_env
from target_process import running_target
from test_generator_health import STARVING_LOCUSTFILE

from certctl_load import exitcodes

pytestmark = pytest.mark.e2e

SECRET = "s3cret-capacity-token"


def capacity_command(url: str, results: Path, *options: str) -> list[str]:
    command = [
        sys.executable,
        "-m",
        "certctl_load.cli",
        "capacity",
        "--host",
        url,
        "--results-dir",
        str(results),
    ]
    return [*command, "--heartbeat-interval", "1s", *options]


def search(url: str, results: Path, *options: str, timeout: float = 150) -> subprocess.CompletedProcess[str]:
    env = clean_env({"CERTCTL_TOKEN": SECRET})
    return subprocess.run(
        capacity_command(url, results, *options),
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=ROOT,
    )


def result_of(results: Path) -> dict:
    return json.loads((results / "capacity-agent-storm.json").read_text())


def test_the_search_finds_the_target_s_capacity_within_five_percent_below_it(tmp_path):
    results = tmp_path / "results"
    with running_target("--fleet-size", "400", "--capacity", "200", "--token", SECRET) as target:
        done = search(target.url, results, "--start-fleet", "150")  # 200 heartbeats/s: 200 agents at 1 s
    assert done.returncode == exitcodes.OK, done.stdout + done.stderr[-3000:]
    found = result_of(results)
    assert found["result"] == "found" and found["converged"] is True
    assert 190 <= found["max_fleet"] <= 200 and found["max_rate"] == found["max_fleet"]
    assert 200 < found["first_failing_fleet"] <= 1.05 * 200 + 1 and len(found["steps"]) <= 8
    assert found["interval_s"] == 1 and [s["fleet"] for s in found["steps"]][:2] == [150, 300]
    lines = done.stdout.splitlines()
    assert [line.split(":")[0] for line in lines[: len(found["steps"])]] == [
        f"step {n}" for n in range(1, len(found["steps"]) + 1)
    ]
    assert found["line"] in lines and found["line"].startswith(f"capacity: {found['max_fleet']} agents")
    for step in found["steps"]:  # each step's own storm, summaries apart from any storm's
        assert (Path(step["results_dir"]) / "summary-agent-storm.json").exists()
    assert not (results / "summary-agent-storm.json").exists()
    junit = (results / "junit-capacity-agent-storm.xml").read_text()
    assert 'failures="0" errors="0"' in junit
    written = [path.read_text(errors="replace") for path in results.rglob("*") if path.is_file()]
    assert all(SECRET not in text for text in [*written, done.stdout, done.stderr])


def test_a_target_that_holds_the_cap_gives_at_least(tmp_path):
    results = tmp_path / "results"
    with running_target("--fleet-size", "200", "--token", SECRET) as target:
        done = search(target.url, results, "--start-fleet", "50", "--max-fleet", "200")
    assert done.returncode == exitcodes.OK, done.stdout + done.stderr[-3000:]
    found = result_of(results)
    assert (found["result"], found["max_fleet"], found["first_failing_fleet"]) == ("at_least", 200, None)
    assert [s["fleet"] for s in found["steps"]] == [50, 100, 200]
    assert all(s["verdict"] == "pass" and s["sent"] == s["completed"] > 0 for s in found["steps"])
    assert "capacity: at least 200 agents (200 heartbeats/s at 1 s) within the thresholds" in done.stdout


def test_a_starved_generator_makes_the_search_inconclusive_naming_what_to_add(tmp_path):
    locustfile = tmp_path / "starving_locustfile.py"
    locustfile.write_text(STARVING_LOCUSTFILE)
    results = tmp_path / "results"
    with running_target("--fleet-size", "50", "--error-fraction", "0.5", "--token", SECRET) as target:
        done = search(target.url, results, "--start-fleet", "50", "-f", str(locustfile))
    assert done.returncode == exitcodes.INCONCLUSIVE, done.stdout + done.stderr[-3000:]
    found = result_of(results)
    assert found["result"] == "inconclusive" and found["max_fleet"] is None
    [step] = found["steps"]
    assert step["verdict"] == "inconclusive" and step["generator_saturated"] is True
    line = found["line"]
    assert line.startswith(
        "capacity: inconclusive: the load generator could not carry 50 agents (generator_lag p99"
    )
    assert "add processes (--processes N) or workers" in line and line in done.stdout


def test_a_target_not_ready_at_the_first_step_exits_2_with_its_line(tmp_path):
    refused = search("http://127.0.0.1:1", tmp_path / "refused")  # nothing listens on port 1
    assert refused.returncode == exitcodes.TARGET_NOT_READY, refused.stdout + refused.stderr[-3000:]
    assert "capacity: the target is not ready: preflight: http://127.0.0.1:1 refused" in refused.stdout
    with running_target("--fleet-size", "100", "--rate-limit", "5", "--token", SECRET) as target:
        limited = search(target.url, tmp_path / "limited", "--start-fleet", "100")
    assert limited.returncode == exitcodes.TARGET_NOT_READY, limited.stdout + limited.stderr[-3000:]
    [step] = result_of(tmp_path / "limited")["steps"]
    assert step["verdict"] == "not_ready" and "answered 429" in step["reasons"][0]


def test_sigterm_stops_the_search_with_the_steps_so_far_written(tmp_path):
    results = tmp_path / "results"
    with running_target("--fleet-size", "800", "--token", SECRET) as target:
        process = subprocess.Popen(
            capacity_command(target.url, results, "--start-fleet", "50"),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=clean_env({"CERTCTL_TOKEN": SECRET}), cwd=ROOT,
        )  # fmt: skip
        try:
            path = results / "capacity-agent-storm.json"
            poll_until(lambda: path.exists() and result_of(results)["steps"], 60, message="no step written")
            step_two = results / "capacity-agent-storm" / "step-02-100" / "locust.log"
            poll_until(  # inside the second step's storm
                lambda: step_two.exists() and "fleet of 100 agents spawned" in step_two.read_text(),
                30,
                message="the second step did not start",
            )
            process.send_signal(signal.SIGTERM)
            stdout, stderr = process.communicate(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    assert process.returncode == exitcodes.INTERRUPTED, stdout + stderr[-3000:]
    found = result_of(results)
    assert found["interrupted"] is True and found["exit_code"] == exitcodes.INTERRUPTED
    assert found["steps"][0]["verdict"] == "pass" and found["steps"][-1]["verdict"] == "interrupted"
    assert found["line"].startswith("capacity: interrupted after 1 judged steps") and found["line"] in stdout
    report = results / "report-capacity-agent-storm.html"  # rewritten after the interrupt, named last
    page = report.read_text()
    assert SECRET not in page and "<td>1</td><td>50</td>" in page and "; interrupted (exit code 105)" in page
    assert stdout.splitlines()[-1].startswith(f"capacity: {results / 'capacity-agent-storm.json'} {report} ")


def test_a_distributed_step_runs_one_global_schedule_over_locust_s_workers(tmp_path):
    results = tmp_path / "results"
    with running_target("--fleet-size", "100", "--token", SECRET) as target:
        done = search(target.url, results, "--start-fleet", "100", "--max-fleet", "100", "--processes", "2")
    assert done.returncode == exitcodes.OK, done.stdout + done.stderr[-3000:]
    [step] = result_of(results)["steps"]
    assert step["verdict"] == "pass" and step["sent"] == step["completed"] == 200  # 100 agents, 2 s of hold
    summary = json.loads((Path(step["results_dir"]) / "summary-agent-storm.json").read_text())
    assert len(summary["generator"]["workers"]) == 2
    assert summary["metrics"]["http_reqs"]["values"]["count"] == 200
