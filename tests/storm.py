"""Running the real ``locust`` command against a real target, and reading what the target saw."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from helpers import poll_until, read_request_log  # read_request_log: bench/common.py imports it here

ROOT = Path(__file__).resolve().parent.parent
LOCUSTFILE = ROOT / "locustfile.py"


@dataclass
class StormRun:
    code: int
    stdout: str
    stderr: str
    results_dir: Path

    def summary(self, stem: str = "agent-storm") -> dict:
        return json.loads((self.results_dir / f"summary-{stem}.json").read_text())

    def text_summary(self, stem: str = "agent-storm") -> str:
        return (self.results_dir / f"summary-{stem}.txt").read_text()


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This environment without the harness's own variables, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOCUST_", "K6_", "CERTCTL_"))}
    env.update(extra or {})
    return env


def fleet_options(fleet: int, interval_s: float, run_s: float, *extra: str) -> list[str]:
    """The harness's options for ``fleet`` agents beating every ``interval_s`` for ``run_s``."""
    return [
        "--fleet-size", str(fleet), "--heartbeat-interval", f"{interval_s:g}", "--run-time", f"{run_s:g}s",
        *extra,
    ]  # fmt: skip


def storm_command(host: str | None, results_dir: Path, *args: str, preflight: bool = False) -> list[str]:
    """``locust -f locustfile.py --headless`` with the harness's options (preflight skipped unless
    asked for, so a test's request log holds heartbeats only)."""
    command = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless"]
    command += ["--results-dir", str(results_dir), *args]
    if not preflight:
        command.append("--skip-preflight")
    if host:
        command += ["--host", host]
    return command


def run_storm(
    host: str | None,
    results_dir: Path,
    *args: str,
    env: dict[str, str] | None = None,
    timeout: float = 180,
    preflight: bool = False,
) -> StormRun:
    """Run a storm to its end (see storm_command)."""
    command = storm_command(host, results_dir, *args, preflight=preflight)
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=timeout, env=clean_env(env), cwd=ROOT
    )
    return StormRun(done.returncode, done.stdout, done.stderr, results_dir)


def start_storm(host: str, results_dir: Path, *args: str) -> subprocess.Popen[str]:
    """Start a storm (see storm_command) without waiting for it."""
    return subprocess.Popen(
        storm_command(host, results_dir, *args),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env(),
        cwd=ROOT,
    )


def wait_for_heartbeats(
    log_path: Path, count: int, timeout_s: float = 60, process: subprocess.Popen | None = None
) -> None:
    """Poll the target's request log until it holds ``count`` heartbeats (``process`` still running)."""

    def enough() -> bool:
        if log_path.exists() and len(heartbeats(read_request_log(log_path))) >= count:
            return True
        assert process is None or process.poll() is None, f"locust exited early with {process.returncode}"
        return False

    poll_until(enough, timeout_s, message=f"fewer than {count} heartbeats within {timeout_s:g} s")


def heartbeats(log: list[dict]) -> list[dict]:
    return [r for r in log if r["method"] == "POST" and r["path"].endswith("/heartbeat")]


def beats_by_agent(log: list[dict]) -> dict[str, list[float]]:
    by_agent: dict[str, list[float]] = defaultdict(list)
    for record in heartbeats(log):
        by_agent[record["agent"]].append(record["t"])
    return {agent: sorted(times) for agent, times in by_agent.items()}


def per_agent_intervals(log: list[dict]) -> list[float]:
    gaps: list[float] = []
    for times in beats_by_agent(log).values():
        gaps += [b - a for a, b in zip(times, times[1:], strict=False)]
    return gaps


def per_second_counts(log: list[dict], skip_first_s: float) -> list[int]:
    """Requests per whole second after ``skip_first_s`` from the first beat, last partial second dropped."""
    times = sorted(r["t"] for r in heartbeats(log))
    start = times[0] + skip_first_s
    counts: dict[int, int] = defaultdict(int)
    for t in times:
        if t >= start:
            counts[int(t - start)] += 1
    if not counts:
        return []
    last = max(counts)
    return [counts[s] for s in range(last)]


def coefficient_of_variation(values: list[int]) -> float:
    return statistics.pstdev(values) / statistics.mean(values)
