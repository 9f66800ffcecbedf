"""``certctl-load demo``: a real, scaled storm against the built-in reference target."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from certctl_load.target.process import start_target

HELP = "Run a short storm (a few hundred agents) against the built-in reference target"
LOCUSTFILE = Path(__file__).resolve().parents[1] / "locustfile.py"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--fleet-size", type=int, default=300, help="agents in the fleet (default 300)")
    parser.add_argument("--heartbeat-interval", default="5s", help="one agent's interval (default 5s)")
    parser.add_argument("--run-time", default="20s", help="how long the storm lasts (default 20s)")
    parser.add_argument("--results-dir", default="results", help="where summaries go (default results/)")


def run(args: argparse.Namespace) -> int:
    results_dir = Path(args.results_dir)
    results_dir.mkdir(parents=True, exist_ok=True)
    with start_target(
        ["--fleet-size", str(args.fleet_size)], request_log=results_dir / "demo-target-requests.jsonl"
    ) as target:
        print(f"reference target at {target.url} with {args.fleet_size} seeded agents", flush=True)
        command = [
            sys.executable,
            "-m",
            "locust",
            "-f",
            str(LOCUSTFILE),
            "--headless",
            "--host",
            target.url,
            "--fleet-size",
            str(args.fleet_size),
            "--heartbeat-interval",
            args.heartbeat_interval,
            "--run-time",
            args.run_time,
            "--results-dir",
            str(results_dir),
            "--only-summary",
        ]
        code = subprocess.call(command)
    verdict = "PASSED" if code == 0 else f"FAILED (exit code {code})"
    print(f"demo storm {verdict}; summaries in {results_dir}/", flush=True)
    return code
