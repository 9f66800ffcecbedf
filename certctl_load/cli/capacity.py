"""``certctl-load capacity``: the largest fleet the target serves within the scenario's thresholds.

Each step is one headless ``locust`` run (a fresh fleet) with the step's fleet, the storm's options
passed through and ``--warmup``; its summaries go to ``capacity-<stem>/step-NN-<fleet>/`` in the
results directory and the step is judged from them (``certctl_load.capacity``). The token reaches
each storm through the environment (``CERTCTL_TOKEN``), never its command line.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import gevent
from gevent.event import Event

from certctl_load import exitcodes
from certctl_load.capacity.junit import render_capacity_junit
from certctl_load.capacity.options import SearchOptions, search_options
from certctl_load.capacity.result import SearchResult, report_data, search_over, search_result, step_line
from certctl_load.capacity.search import next_fleet
from certctl_load.capacity.step import JUDGED_CODES, StepResult, judge_step
from certctl_load.model.config import RunConfig, resolve_config
from certctl_load.model.values import whole_number
from certctl_load.reporting.capacity_report import capacity_report_path, write_capacity_report
from certctl_load.reporting.charts import live_marks
from certctl_load.reporting.files import ensure_writable_dir, write_atomically

HELP = (
    "Search for the largest fleet the target serves within the scenario's thresholds at its heartbeat "
    "interval: steps of growing fleets, then bisection"
)
LOCUSTFILE = Path(__file__).resolve().parents[1] / "locustfile.py"
# Set per step by the search, or meaningless for it: never passed on from the environment.
STEP_ENVIRONMENT = (
    "LOCUST_FLEET_SIZE", "LOCUST_RUN_TIME", "LOCUST_WARMUP", "LOCUST_OUT", "LOCUST_RESULTS_DIR",
    "K6_AGENT_FLEET", "K6_AGENT_RATE", "K6_OUT",
)  # fmt: skip
_ERROR_LINE = re.compile(r"/ERROR/certctl_load: (?P<line>.*)$")


STORM_OPTIONS = (
    ("--host", "URL", "target (default: $LOCUST_HOST, $CERTCTL_BASE, https://certctl-server:8443)"),
    ("--scenario", "PATH", "scenario file (default: $LOCUST_SCENARIO, else agent_storm)"),
    ("--heartbeat-interval", "D", "one agent's heartbeat interval (default: the scenario's)"),
    ("--results-dir", "DIR", "where results go (default: $LOCUST_RESULTS_DIR, else results/)"),
    ("--ca-bundle", "PATH", "CA that verifies the target"),
    ("--source-addresses", "IP[,IP...]", "local addresses agents connect from"),
    ("--processes", "N", "Locust's distributed mode on this machine: N worker processes"),
)
SEARCH_OPTIONS = (
    ("--start-fleet", "N", "the first step's fleet (default 100)"),
    ("--growth", "G", "each step's fleet times G until one fails (more than 1; default 2)"),
    ("--max-fleet", "N", "the largest fleet tried (default 100,000)"),
    ("--tolerance", "F", "bisect until within this fraction of the failing fleet (default 0.05)"),
    ("--max-steps", "N", "at most N steps (default 12)"),
    ("--warmup", "D", "each step's warm-up, sent but not judged (default: one interval)"),
    ("--hold", "D", "each step's judged hold, after the warm-up (default: two intervals)"),
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    storm = parser.add_argument_group("the storm (as for locust; LOCUST_* and CERTCTL_* environment too)")
    for flag, metavar, text in STORM_OPTIONS:
        storm.add_argument(flag, metavar=metavar, help=text)
    storm.add_argument("--insecure", action="store_true", help="skip TLS verification")
    storm.add_argument("--skip-preflight", action="store_true", help="no checks before each step")
    storm.add_argument("-f", "--locustfile", metavar="PATH", help="locustfile (default: the harness's own)")
    search = parser.add_argument_group("the search")
    for flag, metavar, text in SEARCH_OPTIONS:
        search.add_argument(flag, metavar=metavar, help=text)


def _environment() -> dict[str, str]:
    return {key: value for key, value in os.environ.items() if key not in STEP_ENVIRONMENT}


def storm_config(args: argparse.Namespace, environ: dict[str, str]) -> RunConfig:
    """The storm's configuration as the first step's locust will resolve it: every bad storm
    option is refused here, before any step."""
    options = SimpleNamespace(
        scenario=args.scenario or environ.get("LOCUST_SCENARIO"),
        fleet_size=None,
        heartbeat_interval=args.heartbeat_interval or environ.get("LOCUST_HEARTBEAT_INTERVAL"),
        run_time=None,
        results_dir=args.results_dir or os.environ.get("LOCUST_RESULTS_DIR"),
        insecure=args.insecure or environ.get("LOCUST_INSECURE", "").lower() in ("1", "true"),
        ca_bundle=args.ca_bundle or environ.get("LOCUST_CA_BUNDLE"),
        skip_preflight=args.skip_preflight,
        source_addresses=args.source_addresses or environ.get("LOCUST_SOURCE_ADDRESSES"),
        out=None,
    )
    return resolve_config(options, environ, args.host or environ.get("LOCUST_HOST"))


def step_command(
    args: argparse.Namespace,
    config: RunConfig,
    fleet: int,
    search: SearchOptions,
    where: Path,
    processes: int | None,
) -> list[str]:
    """The headless locust command of one step (no secret on it)."""
    command = [sys.executable, "-m", "locust", "-f", args.locustfile or str(LOCUSTFILE), "--headless"]
    command += ["--host", config.host, "--fleet-size", str(fleet), "--results-dir", str(where)]
    command += ["--run-time", f"{search.run_time_s}s", "--warmup", f"{search.warmup_s!r}s"]
    command += ["--only-summary", "--scenario", str(config.scenario.source)]
    if args.heartbeat_interval:
        command += ["--heartbeat-interval", args.heartbeat_interval]
    if config.insecure:
        command.append("--insecure")
    if config.ca_bundle:
        command += ["--ca-bundle", config.ca_bundle]
    if config.skip_preflight:
        command.append("--skip-preflight")
    if config.source_addresses:
        command += ["--source-addresses", ",".join(config.source_addresses)]
    if processes is not None:
        command += ["--processes", str(processes)]
    return command


def _error_lines(log: Path) -> str:
    """The storm's own error lines (its log), for a step that did not run to its end."""
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return ""
    lines = [match["line"] for line in text.splitlines() if (match := _ERROR_LINE.search(line))]
    return "; ".join(lines[:3])


def _read_summary(path: Path) -> dict[str, Any] | None:
    try:
        summary: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return summary


class Search:
    """One search: its steps as they run, its signals, its files."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.environ = _environment()
        self.config = storm_config(args, self.environ)
        self.interval_s = max(call.interval_s for call in self.config.calls)
        self.options = search_options(
            interval_s=self.interval_s,
            start_fleet=args.start_fleet,
            growth=args.growth,
            max_fleet=args.max_fleet,
            tolerance=args.tolerance,
            max_steps=args.max_steps,
            warmup=args.warmup,
            hold=args.hold,
        )
        self.processes = whole_number(args.processes, "--processes") if args.processes else None
        self.stem = self.config.scenario.file_stem
        self.results_dir = self.config.results_dir
        self.steps_dir = self.results_dir / f"capacity-{self.stem}"
        self.json_path = self.results_dir / f"capacity-{self.stem}.json"
        self.junit_path = self.results_dir / f"junit-capacity-{self.stem}.xml"
        self.report_path = capacity_report_path(self.results_dir, self.stem)
        self.steps: list[StepResult] = []
        self.child: subprocess.Popen[bytes] | None = None
        self.interrupted = False
        self.wake = Event()

    def on_signal(self, number: int) -> None:
        """SIGINT or SIGTERM: the running step's storm gets it (and writes its summaries), no
        step follows."""
        self.interrupted = True
        self.wake.set()
        child = self.child
        if child is not None and child.poll() is None:
            child.send_signal(number)

    def run(self) -> int:
        ensure_writable_dir(self.results_dir)
        handlers = [gevent.signal_handler(n, self.on_signal, n) for n in (signal.SIGINT, signal.SIGTERM)]
        try:
            while not self.interrupted and not search_over(self.options, self.steps):
                fleet = next_fleet(self.options, [(s.fleet, s.passed) for s in self.steps])
                assert fleet is not None
                if self.steps:  # nothing in flight (the last storm has exited): one quiet interval
                    self.wake.wait(self.interval_s)
                    if self.interrupted:
                        break
                step = self.run_step(len(self.steps) + 1, fleet)
                self.steps.append(step)
                print(step_line(step), flush=True)
                self.write(self.result())
        finally:
            for handler in handlers:
                handler.cancel()
        result = self.result()
        self.write(result)
        print(result.line, flush=True)
        files = f"{self.json_path} {self.report_path} {self.junit_path}"
        print(f"capacity: {files} (steps in {self.steps_dir}/)", flush=True)
        return result.exit_code

    def run_step(self, number: int, fleet: int) -> StepResult:
        where = self.steps_dir / f"step-{number:02d}-{fleet}"
        where.mkdir(parents=True, exist_ok=True)
        log = where / "locust.log"
        command = step_command(self.args, self.config, fleet, self.options, where, self.processes)
        with log.open("wb") as output:
            self.child = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT, env=self.environ,
                start_new_session=True,  # a terminal's Ctrl-C reaches the search, which forwards it once
            )  # fmt: skip
            if self.interrupted:
                self.child.send_signal(signal.SIGTERM)
            code = self.child.wait()
        self.child = None
        if self.interrupted and code not in JUDGED_CODES:  # stopped by the signal, with or without summaries
            code = exitcodes.INTERRUPTED
        summary_path = where / f"summary-{self.stem}.json"
        summary = _read_summary(summary_path)
        rate = fleet / self.config.heartbeat_interval_s
        step = judge_step(
            number, fleet, rate, exit_code=code, summary=summary, first=number == 1, message=_error_lines(log)
        )
        timeline = where / f"timeline-{self.stem}.json"
        return dataclasses.replace(
            step, results_dir=str(where), timeline=str(timeline) if timeline.exists() else None
        )

    def result(self) -> SearchResult:
        return search_result(
            self.options,
            self.steps,
            heartbeat_interval_s=self.config.heartbeat_interval_s,
            interrupted=self.interrupted,
        )

    def write(self, result: SearchResult) -> None:
        write_atomically(self.json_path, json.dumps(result.to_json(), indent=2) + "\n")
        write_atomically(self.junit_path, render_capacity_junit(self.config.scenario.name, result))
        scenario = self.config.scenario
        marks = live_marks(scenario.thresholds)  # the latency thresholds' limits
        write_capacity_report(self.results_dir, self.stem, report_data(result), marks, scenario.name)


def run(args: argparse.Namespace) -> int:
    return Search(args).run()
