"""The wire-truth bench: a harness storm captured on loopback with tcpdump, its latency as the wire
saw it beside the harness's own figures.

    python bench/wire_truth.py [--fleet 5000 --interval 30 --run-time 90 --processes 1 --runs 1]

Needs tcpdump (Debian's package) and root: it captures lo. Per run: fresh reference target(s) on
127.0.0.1, tcpdump capturing the target port's data-carrying segments, one ``locust`` storm with the
bench-only request trace on; then, per request, wire latency = the response's first packet - the
request's first packet, beside the harness's http_req_duration from the trace, for the whole run and
per 5 s window, and the generator's own health from the summary. Prints markdown tables (and, with
``--keep``, each run's figures as ``run-N/figures.json`` for ``saturation_calibration.py``). Exits 1
when the kernel dropped packets, a storm failed or timed out, or the capture, the trace and the
summary are missing or disagree on the count.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import importlib.metadata
import json
import math
import os
import platform
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from common import Usage, bench_main, child_env, fmt, harness_command, run_measured, start_targets
from pcap import Capture, Pairing, PcapError, pair_exchanges, read_capture

from certctl_load import exitcodes
from certctl_load.k6.percentiles import percentile

TRACE_ENV = "CERTCTL_LOAD_REQUEST_TRACE"  # certctl_load.model.config.REQUEST_TRACE_ENV
PERCENTS = (50.0, 95.0, 99.0, 99.9)
LATE_S = 0.010  # a beat sent this long after its slot is late
WINDOW_S = 5.0
SNAPLEN = 160
BUFFER_KIB = 65536
TCPDUMP_READY_S = 10.0
TCPDUMP_STOP_S = 10.0
# Start-up, the fleet's spawn and the 30 s graceful stop on top of the run.
TIMEOUT_MARGIN_S = 120.0
# The storm ran: clean, thresholds crossed, or inconclusive (saturated and crossed): a verdict on
# the target or the generator, not on the measurement.
STORM_RAN = (exitcodes.OK, exitcodes.THRESHOLDS_CROSSED, exitcodes.INCONCLUSIVE)
# A window with fewer requests on either side is left out of the worst-window figures.
MIN_WINDOW_REQUESTS = 100
SATURATED_LINE = "the load generator was saturated"
_TCPDUMP_COUNT = re.compile(
    r"^(\d+) packets? (captured|received by filter|dropped by kernel|dropped by interface)$"
)


@dataclass(frozen=True)
class CaptureStats:
    """tcpdump's closing counts (``dropped by interface`` is printed only when the OS reports it)."""

    captured: int
    received: int
    dropped_by_kernel: int
    dropped_by_interface: int


def tcpdump_stats(stderr: str) -> CaptureStats:
    """The counts in tcpdump's closing stderr lines; ValueError if they are missing."""
    counts = {m[2]: int(m[1]) for line in stderr.splitlines() if (m := _TCPDUMP_COUNT.match(line.strip()))}
    missing = [name for name in ("captured", "received by filter", "dropped by kernel") if name not in counts]
    if missing:
        raise ValueError(f"tcpdump printed no '{missing[0]}' count: {stderr.strip()[-300:]!r}")
    return CaptureStats(
        counts["captured"],
        counts["received by filter"],
        counts["dropped by kernel"],
        counts.get("dropped by interface", 0),
    )


def tcpdump_command(port: int, pcap: Path) -> list[str]:
    """Capture lo's segments to or from ``port`` that carry data (PSH set), nanosecond timestamps."""
    return [
        "tcpdump", "-i", "lo", "-s", str(SNAPLEN), "-B", str(BUFFER_KIB), "--time-stamp-precision=nano",
        "-w", str(pcap), f"tcp port {port} and tcp[tcpflags] & tcp-push != 0",
    ]  # fmt: skip


@contextlib.contextmanager
def tcpdump(command: Sequence[str], stderr_path: Path) -> Iterator[None]:
    """Run tcpdump until the block ends (SIGINT, then SIGKILL after TCPDUMP_STOP_S); yields once it
    prints that it is listening. RuntimeError if it exits or stays silent first."""
    with stderr_path.open("wb") as sink:
        process = subprocess.Popen(
            list(command), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=sink,
            start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + TCPDUMP_READY_S
        while b"listening on" not in stderr_path.read_bytes():
            if process.poll() is not None or time.monotonic() > deadline:
                text = stderr_path.read_text(errors="replace").strip().replace("\n", "; ")
                state = f"exited {process.returncode}" if process.returncode is not None else "is silent"
                raise RuntimeError(f"tcpdump {state} before listening: {text or 'no output'}")
            time.sleep(0.05)
        yield
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(TCPDUMP_STOP_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@dataclass(frozen=True, slots=True)
class Traced:
    """One line of the harness's request trace (times in Unix seconds)."""

    slot_s: float
    sent_s: float
    duration_ms: float

    @property
    def late(self) -> bool:
        return self.sent_s - self.slot_s > LATE_S


def read_trace(paths: Iterable[Path]) -> list[Traced]:
    """Every request in the trace files (``<agent> <slot> <send> <end> <duration ms> <status>``)."""
    traced = []
    for path in paths:
        for line in path.read_text().splitlines():
            _, slot, sent, _, duration, _ = line.split()
            traced.append(Traced(float(slot), float(sent), float(duration)))
    return traced


@dataclass(frozen=True)
class Stats:
    """Count, type-7 p50/p95/p99/p99.9 and max of some latencies in ms (no figures when empty)."""

    count: int
    figures: tuple[float, ...]  # one per PERCENTS, then max

    @classmethod
    def of(cls, values: Iterable[float]) -> Stats:
        ordered = sorted(values)
        if not ordered:
            return cls(0, ())
        return cls(len(ordered), (*(percentile(ordered, p) for p in PERCENTS), ordered[-1]))

    def figure(self, index: int) -> float | None:
        return self.figures[index] if self.count else None

    def p95_p99_max(self) -> str:
        return " / ".join(fmt(self.figure(i), ".3f") for i in (1, 2, 4))


@dataclass(frozen=True)
class Row:
    """One line of a run's table: the harness's and the wire's latencies over the same span."""

    label: str
    harness: Stats
    wire: Stats
    late: int  # the harness's late beats

    @classmethod
    def of(cls, label: str, traced: Sequence[Traced], wire_ms: Iterable[float]) -> Row:
        harness = Stats.of(t.duration_ms for t in traced)
        return cls(label, harness, Stats.of(wire_ms), sum(t.late for t in traced))


def compare(traced: Sequence[Traced], pairing: Pairing, window_s: float) -> list[Row]:
    """The whole run, then every ``window_s`` window from the first request (the harness's by send
    time, the wire's by the request's first packet)."""
    wire = [(e.request_ns / 1e9, e.latency_ms) for e in pairing.exchanges]
    origin = min([*(t.sent_s for t in traced), *(at for at, _ in wire[:1])], default=0.0)
    harness_windows: dict[int, list[Traced]] = defaultdict(list)
    for t in traced:
        harness_windows[math.floor((t.sent_s - origin) / window_s)].append(t)
    wire_windows: dict[int, list[float]] = defaultdict(list)
    for at, latency in wire:
        wire_windows[math.floor((at - origin) / window_s)].append(latency)
    rows = [Row.of("whole run", traced, (ms for _, ms in wire))]
    for index in sorted(set(harness_windows) | set(wire_windows)):
        label = f"{index * window_s:g}-{(index + 1) * window_s:g}"
        rows.append(Row.of(label, harness_windows.get(index, []), wire_windows.get(index, [])))
    return rows


def _cell(harness: Stats, wire: Stats, index: int) -> str:
    h, w = harness.figure(index), wire.figure(index)
    delta = "n/a" if h is None or w is None else f"{h - w:+.3f}"
    return f"{fmt(h, '.3f')} / {fmt(w, '.3f')} / {delta}"


STAT_NAMES = [*(f"p{p:g}" for p in PERCENTS), "max"]
TABLE_HEADER = (
    "| window s | requests harness / wire | late beats | "
    + " | ".join(f"{name} ms harness / wire / Δ" for name in STAT_NAMES)
    + " |"
)
TABLE_SEPARATOR = "|" + " --- |" * (3 + len(STAT_NAMES))


def table_line(row: Row) -> str:
    cells = [row.label, f"{row.harness.count} / {row.wire.count}", str(row.late)]
    cells += [_cell(row.harness, row.wire, i) for i in range(len(STAT_NAMES))]
    return "| " + " | ".join(cells) + " |"


@dataclass(frozen=True)
class Generator:
    """The summary's ``generator`` block (one process's, the fleet's, or a worker's)."""

    name: str
    saturated: bool
    reasons: tuple[str, ...]
    lag_p99_ms: float
    cpu_pct: float  # busiest 10 s, % of one core
    gc_count: int
    gc_max_ms: float
    gc_by_generation: dict[str, int]
    late_fraction: float

    @classmethod
    def of(cls, name: str, block: dict[str, Any]) -> Generator:
        gc = block["gc"]
        return cls(
            name, bool(block["saturated"]), tuple(block["reasons"]), float(block["lag_ms"]["p99"]),
            float(block["cpu_pct"]), int(gc["count"]), float(gc["max_ms"]),
            {str(g): int(n) for g, n in gc.get("by_generation", {}).items()}, float(block["late_fraction"]),
        )  # fmt: skip

    def generations(self) -> str:
        """Collections by generation, ``gen0 / gen1 / gen2``."""
        return " / ".join(str(self.gc_by_generation.get(str(g), 0)) for g in range(3))

    def cells(self) -> list[str]:
        return [
            self.name, "yes" if self.saturated else "no", "; ".join(self.reasons) or "-",
            f"{self.lag_p99_ms:.2f}", f"{self.cpu_pct:.1f}", f"{self.gc_count} ({self.generations()})",
            f"{self.gc_max_ms:.2f}", f"{self.late_fraction:.4%}",
        ]  # fmt: skip


GENERATOR_HEADER = (
    "| process | saturated | reasons | lag p99 ms | CPU % busiest 10 s | gc count (gen 0 / 1 / 2) "
    "| gc max ms | late fraction |"
)
GENERATOR_SEPARATOR = "|" + " --- |" * 8


@dataclass(frozen=True)
class SummaryFigures:
    """The harness summary's own http_reqs, http_req_duration p95/p99/max in ms, dropped beats and
    generator block (with each worker's under ``--processes``)."""

    requests: int
    p95: float
    p99: float
    max: float
    dropped: int
    generator: Generator | None
    workers: tuple[Generator, ...]
    raw_generator: dict[str, Any]

    def p95_p99_max(self) -> str:
        return f"{self.p95:.3f} / {self.p99:.3f} / {self.max:.3f}"


def summary_figures(path: Path) -> SummaryFigures | None:
    if not path.is_file():
        return None
    summary = json.loads(path.read_text())
    metrics = summary["metrics"]
    values = metrics["http_req_duration"]["values"]
    requests = metrics.get("http_reqs", {}).get("values", {}).get("count", 0)
    dropped = metrics.get("dropped_iterations", {}).get("values", {}).get("count", 0)
    block = summary.get("generator")
    generator = Generator.of("whole run", block) if block else None
    workers = tuple(Generator.of(w["worker"], w) for w in (block or {}).get("workers", []))
    return SummaryFigures(
        int(requests), values["p(95)"], values["p(99)"], values["max"], int(dropped), generator, workers,
        block or {},
    )  # fmt: skip


def saturation_line(log: Path) -> str | None:
    """The harness's own line saying the generator was saturated, if it printed one."""
    if not log.is_file():
        return None
    lines = (line.strip() for line in log.read_text(errors="replace").splitlines())
    return next((line for line in lines if SATURATED_LINE in line), None)


@dataclass(frozen=True)
class Delta:
    """Harness - wire of one statistic: over the whole run, and the worst 5 s window."""

    stat: str
    whole: float | None  # the trace's
    summary: float | None  # the summary's (p95, p99 only)
    worst: float | None
    worst_window: str

    @property
    def judged(self) -> float | None:
        """The larger of the whole-run (trace and summary) and worst-window figures."""
        values = [v for v in (self.whole, self.summary, self.worst) if v is not None]
        return max(values) if values else None


def deltas(rows: Sequence[Row], summary: SummaryFigures | None) -> list[Delta]:
    """p50 ... max: Δ over the whole run (the trace's and the summary's) and in the worst window
    holding at least MIN_WINDOW_REQUESTS requests on both sides."""
    whole = rows[0]
    windows = [r for r in rows[1:] if min(r.harness.count, r.wire.count) >= MIN_WINDOW_REQUESTS]
    by_summary = {1: summary.p95, 2: summary.p99} if summary else {}
    result = []
    for index, name in enumerate(STAT_NAMES):
        wire = whole.wire.figure(index)
        harness = whole.harness.figure(index)
        whole_delta = None if harness is None or wire is None else harness - wire
        summary_delta = by_summary[index] - wire if index in by_summary and wire is not None else None
        worst, label = None, "-"
        for row in windows:
            h, w = row.harness.figure(index), row.wire.figure(index)
            if h is not None and w is not None and (worst is None or h - w > worst):
                worst, label = h - w, row.label
        result.append(Delta(name, whole_delta, summary_delta, worst, label))
    return result


DELTA_HEADER = (
    "| statistic | Δ whole run, trace ms | Δ whole run, summary ms | worst 5 s window Δ ms (window) "
    "| judged: the largest ms |"
)
DELTA_SEPARATOR = "|" + " --- |" * 5


def delta_line(delta: Delta) -> str:
    cells = [
        delta.stat, fmt(delta.whole, "+.3f"), fmt(delta.summary, "+.3f"),
        f"{fmt(delta.worst, '+.3f')} ({delta.worst_window})", fmt(delta.judged, "+.3f"),
    ]  # fmt: skip
    return "| " + " | ".join(cells) + " |"


@dataclass(frozen=True)
class RunResult:
    number: int
    started: str
    usage: Usage
    stats: CaptureStats
    capture: Capture
    pairing: Pairing
    traced: list[Traced]
    summary: SummaryFigures | None
    rows: list[Row]
    saturation: str | None  # the harness's saturated line

    @property
    def deltas(self) -> list[Delta]:
        return deltas(self.rows, self.summary)

    def figures(self, options: Options) -> dict[str, Any]:
        """This run's figures for ``figures.json`` (read by saturation_calibration.py)."""
        whole, summary = self.rows[0], self.summary
        return {
            "run": self.number,
            "started": self.started,
            "fleet": options.fleet,
            "interval_s": options.interval_s,
            "run_time_s": options.run_time_s,
            "processes": options.processes,
            "targets": options.targets,
            "exit": self.usage.returncode,
            "timed_out": self.usage.timed_out,
            "failures": self.failures(),
            "requests": {"summary": summary.requests if summary else None, "trace": whole.harness.count,
                         "wire": whole.wire.count},
            "late_beats_trace": whole.late,
            "dropped": summary.dropped if summary else None,
            "trace_ms": dict(zip(STAT_NAMES, whole.harness.figures, strict=False)),
            "wire_ms": dict(zip(STAT_NAMES, whole.wire.figures, strict=False)),
            "summary_ms": {"p95": summary.p95, "p99": summary.p99, "max": summary.max} if summary else None,
            "delta_ms": {d.stat: {"whole": d.whole, "summary": d.summary, "worst_window": d.worst,
                                  "window": d.worst_window} for d in self.deltas},
            "generator": summary.raw_generator if summary else None,
            "saturation_line": self.saturation,
        }  # fmt: skip

    def failures(self) -> list[str]:
        usage, stats = self.usage, self.stats
        problems = []
        if usage.timed_out or usage.returncode not in STORM_RAN:
            problems.append(
                f"locust exited {usage.returncode}{' (timed out, killed)' if usage.timed_out else ''}"
            )
        if stats.dropped_by_kernel or stats.dropped_by_interface:
            problems.append(
                f"tcpdump: {stats.dropped_by_kernel} packets dropped by kernel, "
                f"{stats.dropped_by_interface} by interface: the wire figures are incomplete"
            )
        if self.capture.records != stats.captured:
            problems.append(
                f"the pcap holds {self.capture.records} records, tcpdump captured {stats.captured}"
            )
        wire, traced = len(self.pairing.exchanges), len(self.traced)
        summary = self.summary.requests if self.summary else None
        if summary is None:
            problems.append("the harness wrote no summary JSON")
        if not wire or wire != traced or summary not in (None, traced):
            problems.append(
                f"request counts differ or are 0: summary {summary or 'n/a'}, trace {traced}, wire {wire}"
            )
        return [f"run {self.number}: {problem}" for problem in problems]


@dataclass(frozen=True)
class Options:
    fleet: int
    interval_s: float
    run_time_s: float
    processes: int
    targets: int
    source_addresses: str | None


def run_once(options: Options, number: int, workdir: Path) -> RunResult:
    """One storm on fresh targets, captured; its trace and capture read and compared."""
    workdir.mkdir(parents=True)
    started = datetime.datetime.now(datetime.UTC).strftime("%H:%M:%S UTC")
    pcap = workdir / "run.pcap"
    tcpdump_stderr = workdir / "tcpdump.stderr"
    with start_targets(options.fleet, options.targets) as targets:
        host, port = urlsplit(targets[0].url).hostname or "", targets[0].port
        command = harness_command(
            targets[0].url, workdir / "results", fleet=options.fleet, interval_s=options.interval_s,
            run_time_s=options.run_time_s, processes=options.processes,
        )  # fmt: skip
        if options.source_addresses:
            command += ["--source-addresses", options.source_addresses]
        env = child_env({TRACE_ENV: str(workdir / "trace")})
        with tcpdump(tcpdump_command(port, pcap), tcpdump_stderr):
            usage = run_measured(
                command, env=env, cwd=workdir, output=workdir / "locust.log",
                timeout_s=options.run_time_s + TIMEOUT_MARGIN_S,
            )  # fmt: skip
    stats = tcpdump_stats(tcpdump_stderr.read_text(errors="replace"))
    capture = read_capture(pcap)
    pairing = pair_exchanges(capture.segments, (host, port))
    traced = read_trace(sorted(workdir.glob("trace.*")))
    rows = compare(traced, pairing, WINDOW_S)
    return RunResult(
        number=number,
        started=started,
        usage=usage,
        stats=stats,
        capture=capture,
        pairing=pairing,
        traced=traced,
        summary=summary_figures(workdir / "results" / "summary-agent-storm.json"),
        rows=rows,
        saturation=saturation_line(workdir / "locust.log"),
    )


def report_run(result: RunResult, options: Options, runs: int) -> None:
    usage, stats, pairing, summary = result.usage, result.stats, result.pairing, result.summary
    print(
        f"\n#### Run {result.number} of {runs}, {result.started}: {options.fleet} agents every "
        f"{options.interval_s:g} s for {options.run_time_s:g} s, {options.processes} process(es), "
        f"{options.targets} target(s)\n"
    )
    print(
        f"locust exit {usage.returncode}{' (timed out, killed)' if usage.timed_out else ''}, "
        f"wall {usage.wall_s:.1f} s; tcpdump: {stats.captured} captured, {stats.received} received by "
        f"filter, {stats.dropped_by_kernel} dropped by kernel; pcap: {result.capture.records} records, "
        f"{result.capture.skipped} skipped; wire: {len(pairing.exchanges)} requests paired, "
        f"{pairing.unanswered} unanswered, {pairing.unsolicited} unsolicited server segments"
    )
    if summary is not None:
        print(
            f"harness summary: http_reqs {summary.requests}, http_req_duration p95 / p99 / max "
            f"{summary.p95_p99_max()} ms (the trace's: {result.rows[0].harness.p95_p99_max()} ms)"
        )
    whole = result.rows[0]
    share = whole.late / whole.harness.count if whole.harness.count else 0.0
    print(
        f"late beats (sent > {LATE_S * 1000:g} ms after the slot, trace): {whole.late} ({share:.4%})"
        + (f"; dropped (summary): {summary.dropped}" if summary is not None else "")
    )
    print(f"saturated line: {result.saturation or 'none printed'}\n")
    if summary is not None and summary.generator is not None:
        print(GENERATOR_HEADER, GENERATOR_SEPARATOR, sep="\n")
        for generator in (summary.generator, *summary.workers):
            print("| " + " | ".join(generator.cells()) + " |")
        print()
    print(DELTA_HEADER, DELTA_SEPARATOR, sep="\n")
    for delta in result.deltas:
        print(delta_line(delta))
    print()
    print(TABLE_HEADER, TABLE_SEPARATOR, sep="\n")
    for row in result.rows:
        print(table_line(row))
    sys.stdout.flush()


def report_runs(results: Sequence[RunResult]) -> None:
    print(
        "\n| run | started | locust exit | requests summary / trace / wire | late beats "
        "| summary p95 / p99 / max ms | trace p95 / p99 / max ms | wire p95 / p99 / max ms "
        "| packets captured / dropped by kernel |"
    )
    print("|" + " --- |" * 9)
    for result in results:
        whole, summary = result.rows[0], result.summary
        harness, wire = whole.harness, whole.wire
        cells = [
            str(result.number), result.started, str(result.usage.returncode),
            f"{summary.requests if summary else 'n/a'} / {harness.count} / {wire.count}", str(whole.late),
            summary.p95_p99_max() if summary else "n/a", harness.p95_p99_max(), wire.p95_p99_max(),
            f"{result.stats.captured} / {result.stats.dropped_by_kernel}",
        ]  # fmt: skip
        print("| " + " | ".join(cells) + " |")
    print(
        "\n| run | saturated | reasons | lag p99 ms | CPU % busiest 10 s | gc count (gen 0 / 1 / 2) "
        "| gc max ms | late fraction | Δ p95 / p99 / p99.9 ms (largest of whole run and worst window) |"
    )
    print("|" + " --- |" * 9)
    for result in results:
        summary = result.summary
        generator = summary.generator if summary else None
        cells = generator.cells()[1:] if generator else ["n/a"] * 7
        judged = " / ".join(fmt(d.judged, "+.3f") for d in result.deltas[1:4])
        print("| " + " | ".join([str(result.number), *cells, judged]) + " |")


def machine_lines(argv: Sequence[str]) -> list[str]:
    """When and where: date, nproc, CPU, versions, load average; then the bench's command."""
    model = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")), "unknown",
    )  # fmt: skip
    tcpdump_version = subprocess.run(
        ["tcpdump", "--version"], capture_output=True, text=True, timeout=10
    ).stdout.splitlines()[:1]
    parts = [
        datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        f"nproc {os.cpu_count()}",
        model,
        f"Python {platform.python_version()}",
        f"Locust {importlib.metadata.version('locust')}",
        *tcpdump_version,
        f"kernel {platform.release()}",
        "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg()),
    ]
    return ["; ".join(parts), f"command: {shlex.join(['python', 'bench/wire_truth.py', *argv])}"]


def _positive(kind: type[int] | type[float]) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"{text} is not more than 0")
        return value

    return parse


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    count, seconds = _positive(int), _positive(float)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fleet", type=count, default=5000, help="agents (default 5000)")
    parser.add_argument("--interval", type=seconds, default=30.0, help="heartbeat interval, s (default 30)")
    parser.add_argument("--run-time", type=seconds, default=90.0, help="each storm, s (default 90)")
    parser.add_argument("--processes", type=count, default=1, help="Locust's --processes (default 1: none)")
    parser.add_argument("--runs", type=count, default=1, help="storms in a row (default 1)")
    parser.add_argument(
        "--reuse-port-targets", type=count, default=1, metavar="K",
        help="reference target processes sharing the port (--reuse-port; default 1)",
    )  # fmt: skip
    parser.add_argument(
        "--source-addresses", metavar="A,B,...",
        help="the harness's --source-addresses (127.0.0.x), for more connections than one address has ports",
    )  # fmt: skip
    parser.add_argument("--keep", metavar="DIR", help="keep every run's files (pcap, trace, logs) under DIR")
    args = parser.parse_args(argv)
    if args.keep and Path(args.keep).exists() and any(Path(args.keep).iterdir()):
        parser.error(f"--keep {args.keep} is not empty")
    if shutil.which("tcpdump") is None:
        parser.error("tcpdump not found: apt-get install tcpdump (and run the bench as root)")
    return args


def run_all(args: argparse.Namespace, argv: Sequence[str], workdir: Path) -> int:
    options = Options(
        fleet=args.fleet, interval_s=args.interval, run_time_s=args.run_time, processes=args.processes,
        targets=args.reuse_port_targets, source_addresses=args.source_addresses,
    )  # fmt: skip
    print("\n".join(machine_lines(argv)), flush=True)
    results = []
    for number in range(1, args.runs + 1):
        results.append(run_once(options, number, workdir / f"run-{number}"))
        report_run(results[-1], options, args.runs)
        figures = results[-1].figures(options)
        (workdir / f"run-{number}" / "figures.json").write_text(json.dumps(figures, indent=1) + "\n")
    report_runs(results)
    failures = [failure for result in results for failure in result.failures()]
    print()
    print("\n".join(f"FAIL: {failure}" for failure in failures) or "PASS: every storm ran, no packet dropped")
    return 1 if failures else 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    return bench_main(
        "wire_truth",
        lambda workdir: run_all(args, argv, workdir),
        args.keep,
        (RuntimeError, PcapError, ValueError, OSError),
    )


if __name__ == "__main__":
    sys.exit(main())
