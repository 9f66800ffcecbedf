"""Bounded memory end to end (issue 17): a fast storm for 30 s and for 150 s, the harness's RSS
sampled every second, process by process.

    python bench/memory_soak.py [--fleet 2000 --interval 1 --run-times 30,150 --processes 1 --targets 1]

Per run: fresh reference targets on 127.0.0.1 without a request log (``--targets K`` share one port
with ``--reuse-port``), one ``locust`` storm (no request trace), and every second VmRSS and VmHWM
of the harness's process and, with ``--processes``, of each worker (from /proc/PID/status), and the
targets' CPU. t0 is read from the harness's log: the local run's ``fleet ... spawned`` line plus
the connect phase (``generator.connect.took_s``) plus its 0.25 s lead, or the master's ``t0 agreed``
line plus 0.75 s. Prints markdown tables: counts (http_reqs + dropped = the fleet's slots), the
generator block, RSS at t0+30 s and t0+150 s, max − min over [t0+30 s, t0+150 s], and each
process's peak in the shortest run against the longest ("at" a moment: the last sample at or before
it). Every sample is written to ``run-N-Ts/rss-PID.txt``. Exits 1 when a storm failed, the counts
are not exact, or a figure is over ``--limit-mb`` (3 MB).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import re
import statistics
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
from common import Usage, bench_main, child_env, fmt, harness_command, run_measured, start_targets

from certctl_load import exitcodes
from certctl_load.model.schedule import expected_beats
from certctl_load.runtime.coordinator import DISTRIBUTED_LEAD_S
from certctl_load.runtime.run import SCHEDULE_LEAD_S
from certctl_load.target.process import RunningTarget

SAMPLE_EVERY_S = 1.0
TIMEOUT_MARGIN_S = 120.0  # start-up, connect, drain and stop on top of the run
WINDOW_S = (30.0, 150.0)  # RSS from t0 + 30 s to t0 + 150 s
CPU_WINDOW = 10  # the targets' busiest 10 samples
STORM_RAN = (exitcodes.OK, exitcodes.THRESHOLDS_CROSSED, exitcodes.INCONCLUSIVE)
_LOG_TIME = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})\]")
_LOCAL_START = "agents spawned;"
_DISTRIBUTED_START = "every worker's agents connected; t0 agreed"


@dataclass
class Series:
    """One process's samples: (Unix time, VmRSS KB, VmHWM KB)."""

    name: str
    pid: int
    samples: list[tuple[float, int, int]] = field(default_factory=list)

    def rss_at(self, moment: float) -> int | None:
        """The last sample at or before ``moment`` (within two sampling periods), KB."""
        earlier = [rss for at, rss, _ in self.samples if moment - 2 * SAMPLE_EVERY_S <= at <= moment]
        return earlier[-1] if earlier else None

    def spread(self, start: float, end: float) -> tuple[int, int] | None:
        """(min, max) RSS KB of the samples in [start, end]; None without any."""
        values = [rss for at, rss, _ in self.samples if start <= at <= end]
        return (min(values), max(values)) if values else None

    @property
    def peak_kb(self) -> int:
        """The kernel's high-water mark at the last sample (VmHWM), or the largest RSS sampled."""
        return max([hwm for _, _, hwm in self.samples] + [rss for _, rss, _ in self.samples], default=0)

    def every(self, t0: float, step_s: float) -> str:
        """RSS MB at t0, t0 + step, ... (the last sample at or before each)."""
        cells, moment = [], t0
        last = self.samples[-1][0] if self.samples else t0
        while moment <= last:
            rss = self.rss_at(moment)
            cells.append("-" if rss is None else f"{rss / 1024:.1f}")
            moment += step_s
        return " ".join(cells)


def proc_status(pid: int) -> tuple[int, int] | None:
    """(VmRSS, VmHWM) in KB from /proc/PID/status; None once the process is gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    try:
        return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])
    except (KeyError, ValueError, IndexError):
        return None


class Sampler:
    """Called every second with the harness's process tree: records each process's memory and the
    targets' CPU (% of one core since the previous sample)."""

    def __init__(self, targets: Sequence[RunningTarget], processes: int) -> None:
        self.root_name = "master" if processes > 1 else "harness"
        self.series: dict[int, Series] = {}
        self._targets = [psutil.Process(t.process.pid) for t in targets]
        self._target_cpu: tuple[float, float] | None = None
        self.target_cpu_pct: list[float] = []

    def __call__(self, processes: Sequence[psutil.Process]) -> None:
        now = datetime.datetime.now(datetime.UTC).timestamp()
        for process in processes:
            status = proc_status(process.pid)
            if status is None:
                continue
            if process.pid not in self.series:
                name = self.root_name if not self.series else f"worker process {len(self.series)}"
                self.series[process.pid] = Series(name, process.pid)
            self.series[process.pid].samples.append((now, *status))
        cpu = 0.0
        for target in self._targets:
            with contextlib.suppress(psutil.Error):
                times = target.cpu_times()
                cpu += times.user + times.system
        if self._target_cpu is not None:
            then, before = self._target_cpu
            self.target_cpu_pct.append(100.0 * (cpu - before) / max(now - then, 1e-9))
        self._target_cpu = (now, cpu)

    def busiest_target_pct(self) -> float | None:
        """The targets' summed CPU over their busiest CPU_WINDOW samples, % of one core."""
        values = self.target_cpu_pct
        if len(values) < CPU_WINDOW:
            return None
        return max(statistics.mean(values[i : i + CPU_WINDOW]) for i in range(len(values) - CPU_WINDOW + 1))


def log_time(line: str) -> float | None:
    """The Unix time of a Locust log line (its local-time stamp)."""
    match = _LOG_TIME.match(line)
    if match is None:
        return None
    return datetime.datetime.strptime(match[1], "%Y-%m-%d %H:%M:%S,%f").timestamp()


def find_t0(log: Path, summary: dict[str, Any] | None) -> float | None:
    """t0 from the harness's log (see the module's docstring); None when the line is missing."""
    lines = log.read_text(errors="replace").splitlines()
    agreed = next((line for line in lines if _DISTRIBUTED_START in line), None)
    if agreed is not None:  # a master: t0 is agreed once every worker has connected
        at = log_time(agreed)
        return None if at is None else at + DISTRIBUTED_LEAD_S
    spawned = next((line for line in lines if _LOCAL_START in line), None)
    at = None if spawned is None else log_time(spawned)
    if at is None:
        return None
    connect = ((summary or {}).get("generator") or {}).get("connect") or {}
    return at + float(connect.get("took_s") or 0.0) + SCHEDULE_LEAD_S


@dataclass(frozen=True)
class Options:
    fleet: int
    interval_s: float
    processes: int
    targets: int
    limit_kb: int
    everything: bool = False


@dataclass
class RunResult:
    run_time_s: float
    started: str
    usage: Usage
    summary: dict[str, Any] | None
    t0: float | None
    series: list[Series]
    target_cpu_pct: float | None
    expected: int

    @property
    def requests(self) -> int | None:
        if self.summary is None:
            return None
        return int(self.summary["metrics"].get("http_reqs", {}).get("values", {}).get("count", 0))

    @property
    def dropped(self) -> int:
        metrics = (self.summary or {}).get("metrics", {})
        return int(metrics.get("dropped_iterations", {}).get("values", {}).get("count", 0))

    @property
    def counts_exact(self) -> bool:
        return self.requests is not None and self.requests + self.dropped == self.expected


# The shipped thresholds, plus windowed ones on both metrics (the windows' ring of one-second
# histograms), for a storm with every per-second figure on; with --out json as well.
EVERYTHING_SCENARIO = """name: agent_storm
thresholds:
  "http_req_duration{scenario:agent_storm}":
    - p(99)<1000
    - p(95)<500
    - {threshold: "p(95)<500", window: "10s"}
    - {threshold: "p(99)<1000", window: "20s"}
  "http_req_failed{scenario:agent_storm}":
    - rate<0.001
    - {threshold: "rate<0.001", window: "10s"}
"""


def run_once(options: Options, run_time_s: float, workdir: Path) -> RunResult:
    """One storm on fresh targets, the harness's memory sampled every second."""
    workdir.mkdir(parents=True)
    started = datetime.datetime.now(datetime.UTC).strftime("%H:%M:%S UTC")
    with start_targets(options.fleet, options.targets) as targets:
        command = harness_command(
            targets[0].url, workdir / "results", fleet=options.fleet, interval_s=options.interval_s,
            run_time_s=run_time_s, processes=options.processes,
        )  # fmt: skip
        if options.everything:
            scenario = workdir / "scenario.yaml"
            scenario.write_text(EVERYTHING_SCENARIO)
            command += ["--scenario", str(scenario), "--out", f"json={workdir / 'samples.json.gz'}"]
        sampler = Sampler(targets, options.processes)
        log = workdir / "locust.log"
        usage = run_measured(
            command, env=child_env(), cwd=workdir, output=log, timeout_s=run_time_s + TIMEOUT_MARGIN_S,
            on_sample=sampler, sample_every_s=SAMPLE_EVERY_S,
        )  # fmt: skip
    path = workdir / "results" / "summary-agent-storm.json"
    summary = json.loads(path.read_text()) if path.is_file() else None
    return RunResult(
        run_time_s=run_time_s,
        started=started,
        usage=usage,
        summary=summary,
        t0=find_t0(log, summary),
        series=list(sampler.series.values()),
        target_cpu_pct=sampler.busiest_target_pct(),
        expected=expected_beats(options.fleet, options.interval_s, run_time_s),
    )


def _mb(kb: int | None) -> str:
    return "n/a" if kb is None else f"{kb / 1024:.1f}"


def generator_cells(block: dict[str, Any]) -> list[str]:
    gc = block["gc"]
    generations = " / ".join(str(gc.get("by_generation", {}).get(str(g), 0)) for g in range(3))
    return [
        "yes" if block["saturated"] else "no", "; ".join(block["reasons"]) or "-",
        f"{block['lag_ms']['p99']:.2f}", f"{block['cpu_pct']:.1f}", f"{gc['count']} ({generations})",
        f"{gc['max_ms']:.2f}", f"{block['late_fraction']:.4%}",
    ]  # fmt: skip


def report(results: Sequence[RunResult], options: Options) -> list[str]:
    """Print the tables; returns the failures."""
    failures: list[str] = []
    print(
        "\n| run time s | started | locust exit | http_reqs + dropped = expected slots | exact "
        "| saturated | reasons | lag p99 ms | CPU % busiest 10 s | gc count (gen 0 / 1 / 2) | gc max ms "
        "| late fraction | targets' CPU % busiest 10 s | harness CPU s (user+sys) | peak RSS MB (tree) |"
    )
    print("|" + " --- |" * 15)
    for result in results:
        block = (result.summary or {}).get("generator")
        cells = [
            f"{result.run_time_s:g}", result.started, f"{result.usage.returncode}"
            + (" (killed)" if result.usage.timed_out else ""),
            f"{fmt(result.requests, 'd')} + {result.dropped} = {result.expected}",
            "yes" if result.counts_exact else "NO",
            *(generator_cells(block) if block else ["n/a"] * 7), fmt(result.target_cpu_pct, ".1f"),
            f"{result.usage.cpu_s:.1f}", _mb(result.usage.peak_rss_kb),
        ]  # fmt: skip
        print("| " + " | ".join(cells) + " |")
        for worker in (block or {}).get("workers", []):
            cells = [f"  {worker['worker']}", *[""] * 4, *generator_cells(worker), "", "", ""]
            print("| " + " | ".join(cells) + " |")
        if result.usage.timed_out or result.usage.returncode not in STORM_RAN:
            failures.append(f"{result.run_time_s:g} s run: locust exited {result.usage.returncode}")
        if not result.counts_exact:
            failures.append(f"{result.run_time_s:g} s run: http_reqs + dropped != {result.expected}")
        if result.t0 is None:
            failures.append(f"{result.run_time_s:g} s run: no t0 line in the harness's log")
    start, end = WINDOW_S
    print(
        f"\n| run time s | process | RSS t0+{start:g} s MB | RSS t0+{end:g} s MB "
        f"| max − min over [t0+{start:g}, t0+{end:g}] MB | peak (VmHWM) MB | RSS every 10 s from t0, MB |"
    )
    print("|" + " --- |" * 7)
    for result in results:
        for series in result.series:
            t0 = result.t0
            at_start = series.rss_at(t0 + start) if t0 is not None else None
            at_end = series.rss_at(t0 + end) if t0 is not None else None
            whole = t0 is not None and result.run_time_s >= end  # the run covers the window
            spread = series.spread(t0 + start, t0 + end) if whole and t0 is not None else None
            width = None if spread is None else spread[1] - spread[0]
            cells = [
                f"{result.run_time_s:g}", f"{series.name} (pid {series.pid})", _mb(at_start), _mb(at_end),
                "n/a" if width is None else f"{width / 1024:.2f}", _mb(series.peak_kb),
                series.every(t0, 10.0) if t0 is not None else "n/a",
            ]  # fmt: skip
            print("| " + " | ".join(cells) + " |")
            if width is not None and width > options.limit_kb:
                failures.append(f"{series.name}: RSS moved {width / 1024:.2f} MB over the window")
    if len(results) > 1:
        short, long = min(results, key=lambda r: r.run_time_s), max(results, key=lambda r: r.run_time_s)
        print(
            f"\n| process | peak, {short.run_time_s:g} s run MB | peak, {long.run_time_s:g} s run MB "
            "| difference MB |"
        )
        print("|" + " --- |" * 4)
        for a, b in zip(short.series, long.series, strict=False):
            difference = b.peak_kb - a.peak_kb
            print(f"| {a.name} | {_mb(a.peak_kb)} | {_mb(b.peak_kb)} | {difference / 1024:+.2f} |")
            if abs(difference) > options.limit_kb:
                failures.append(f"{a.name}: peak differs by {difference / 1024:+.2f} MB between the runs")
    return failures


def machine_line() -> str:
    model = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")), "unknown",
    )  # fmt: skip
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"{now}; nproc {os.cpu_count()}; {model}; Python {platform.python_version()}; "
        f"kernel {platform.release()}; load average {load}"
    )


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fleet", type=int, default=2000, help="agents (default 2000)")
    parser.add_argument("--interval", type=float, default=1.0, help="heartbeat interval, s (default 1)")
    parser.add_argument(
        "--run-times", default="30,150", help="comma-separated run times, s, run in order (default 30,150)"
    )
    parser.add_argument("--processes", type=int, default=1, help="Locust's --processes (default 1: none)")
    parser.add_argument(
        "--targets", type=int, default=1, help="reference targets sharing the port (--reuse-port; default 1)"
    )
    parser.add_argument("--limit-mb", type=float, default=3.0, help="allowed RSS movement, MB (default 3)")
    parser.add_argument(
        "--everything",
        action="store_true",
        help="windowed thresholds (10 s, 20 s) and k6's JSON output (--out json=...gz) on as well",
    )
    parser.add_argument("--keep", metavar="DIR", help="keep every run's files under DIR")
    args = parser.parse_args(argv)
    try:
        args.run_times = [float(x) for x in args.run_times.split(",") if x]
    except ValueError:
        parser.error(f"--run-times {args.run_times!r}: expected seconds, comma-separated")
    if not args.run_times or min(args.run_times) <= 0 or args.fleet < 1 or args.interval <= 0:
        parser.error("--fleet, --interval and every --run-times value must be more than 0")
    return args


def run_all(args: argparse.Namespace, argv: Sequence[str], workdir: Path) -> int:
    options = Options(
        args.fleet, args.interval, args.processes, args.targets, int(args.limit_mb * 1024), args.everything
    )
    print(machine_line())
    print(f"command: python bench/memory_soak.py {' '.join(argv)}")
    print(
        f"{options.fleet} agents every {options.interval_s:g} s ({options.fleet / options.interval_s:g}/s), "
        f"{options.processes} process(es), {options.targets} target(s) without a request log",
        flush=True,
    )
    results = []
    for number, run_time_s in enumerate(args.run_times, 1):
        results.append(run_once(options, run_time_s, workdir / f"run-{number}-{run_time_s:g}s"))
        print(f"run {number}: {run_time_s:g} s done, locust exit {results[-1].usage.returncode}", flush=True)
    failures = report(results, options)
    print()
    print("\n".join(f"FAIL: {failure}" for failure in failures) or "PASS: counts exact, memory flat")
    for number, result in enumerate(results, 1):  # every sample, for a second look
        for series in result.series:
            lines = [f"# unix_s vm_rss_kb vm_hwm_kb; t0 {result.t0}"]
            lines += [f"{at:.3f} {rss} {hwm}" for at, rss, hwm in series.samples]
            name = f"run-{number}-{result.run_time_s:g}s/rss-{series.pid}.txt"
            (workdir / name).write_text("\n".join(lines) + "\n")
    return 1 if failures else 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    return bench_main("memory_soak", lambda workdir: run_all(args, argv, workdir), args.keep)


if __name__ == "__main__":
    sys.exit(main())
