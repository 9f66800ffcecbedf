"""Shared by the benches: run a load generator as a measured child process, read what it reported,
and read what the reference target logged."""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO_ROOT), str(REPO_ROOT / "tests")]

from storm import (  # noqa: E402  (tests/storm.py: the request-log readers the e2e tests use)
    beats_by_agent,
    coefficient_of_variation,
    heartbeats,
    per_second_counts,
    read_request_log,
)

from certctl_load.k6.percentiles import percentile  # noqa: E402
from certctl_load.target.process import RunningTarget, start_target  # noqa: E402

LOCUSTFILE = REPO_ROOT / "locustfile.py"
STORM_TREND = "http_req_duration{scenario:agent_storm}"
# A gap shorter than this share of the interval counts as beating more than once per interval.
BURST_SHARE = 0.9
_SAMPLE_EVERY_S = 0.25
_KILL_GRACE_S = 10.0
_PR_SET_CHILD_SUBREAPER = 36


@dataclass(frozen=True)
class Checkout:
    """A harness to run: a checkout's root (its ``locustfile.py``) and the python of its venv."""

    root: Path
    python: str

    @property
    def locustfile(self) -> Path:
        return self.root / "locustfile.py"


CURRENT = Checkout(REPO_ROOT, sys.executable)


def other_checkout(root: Path) -> Checkout:
    """The checkout at ``root`` with its ``.venv``; SystemExit (one line) when either is missing."""
    root = root.resolve()
    python = root / ".venv" / "bin" / "python"
    if not (root / "locustfile.py").is_file():
        raise SystemExit(f"{root}: no locustfile.py (not a certctl-load checkout)")
    if not python.is_file():
        raise SystemExit(f"{root}: no .venv/bin/python (python3 -m venv .venv && .venv/bin/pip install -e .)")
    return Checkout(root, str(python))


@dataclass(frozen=True)
class Usage:
    """A finished child: exit code, user+sys CPU of it and the children it reaped, peak memory."""

    returncode: int
    cpu_s: float  # the child's, its reaped children's and its orphans' (reaped here)
    peak_rss_kb: int  # ru_maxrss, or the sampled peak of the whole tree's summed RSS when larger
    wall_s: float
    timed_out: bool


@dataclass(frozen=True)
class Reported:
    """What the load generator itself reported: request count and latency percentiles in ms."""

    requests: int
    p50: float
    p95: float
    p99: float


@dataclass(frozen=True)
class ServerView:
    """What the target's request log shows about the heartbeats it received."""

    requests: int
    agents: int
    gaps: tuple[float, ...]  # every agent's intervals between consecutive beats, ascending, in s
    bursty_agents: int  # agents with a gap shorter than BURST_SHARE of the interval
    per_second: tuple[int, ...]  # requests per whole second after the first interval
    server_ms: tuple[float, ...]  # ascending

    def gap(self, p: float) -> float | None:
        return percentile(self.gaps, p) if self.gaps else None

    def server_p(self, p: float) -> float:
        return percentile(self.server_ms, p)

    @property
    def offered_rate(self) -> float | None:
        return statistics.mean(self.per_second) if self.per_second else None

    @property
    def cv(self) -> float | None:
        return coefficient_of_variation(list(self.per_second)) if len(self.per_second) > 1 else None


def _raise_open_files() -> None:
    """In the child before exec: the soft open-file limit up to the hard one."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def child_env(extra: Mapping[str, str] | None = None, root: Path = REPO_ROOT) -> dict[str, str]:
    """This environment without LOCUST_/K6_/CERTCTL_ settings, the checkout at ``root`` importable
    (ahead of any other), plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOCUST_", "K6_", "CERTCTL_"))}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), env.get("PYTHONPATH")]))
    env.update(extra or {})
    return env


def _become_subreaper() -> None:
    """Orphans of our children become our children, so their CPU can be collected: Locust 2.47's
    master exits without reaping its ``--processes`` workers (its WNOHANG wait drops live ones)."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER) failed")


def process_tree(root: psutil.Process) -> list[psutil.Process]:
    """``root`` and its descendants (empty once ``root`` is gone)."""
    try:
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return []


def _sample_tree(processes: Sequence[psutil.Process], seen: set[int]) -> int:
    """The summed RSS of ``processes`` in KB; adds their pids to ``seen``."""
    total = 0
    for process in processes:
        seen.add(process.pid)
        with contextlib.suppress(psutil.Error):
            total += process.memory_info().rss // 1024
    return total


def _reap_orphans(pids: set[int], deadline: float) -> tuple[float, int]:
    """Wait (until ``deadline``, then SIGKILL) for those of ``pids`` that became our children;
    returns their CPU seconds and largest ru_maxrss. Pids reaped by their parent are skipped."""
    cpu_s, maxrss = 0.0, 0
    for pid in pids:
        try:
            while (result := os.wait4(pid, os.WNOHANG))[0] == 0:
                if time.monotonic() >= deadline:
                    os.kill(pid, signal.SIGKILL)
                    result = os.wait4(pid, 0)
                    break
                time.sleep(0.05)
        except ChildProcessError:
            continue
        usage = result[2]
        cpu_s += usage.ru_utime + usage.ru_stime
        maxrss = max(maxrss, usage.ru_maxrss)
    return cpu_s, maxrss


def run_measured(
    command: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: Path,
    output: Path,
    timeout_s: float,
    on_sample: Callable[[Sequence[psutil.Process]], None] | None = None,
    sample_every_s: float = _SAMPLE_EVERY_S,
) -> Usage:
    """Run ``command`` (stdout and stderr to ``output``) to its end or ``timeout_s``, then SIGTERM
    and SIGKILL to its process group (at once if this process is interrupted); CPU and ru_maxrss
    come from ``os.wait4``. Every ``sample_every_s`` the process tree is sampled (and handed to
    ``on_sample``, the command's process first)."""
    _become_subreaper()
    started = time.monotonic()
    with output.open("wb") as sink:
        process = subprocess.Popen(
            list(command), cwd=cwd, env=dict(env), stdin=subprocess.DEVNULL, stdout=sink,
            stderr=subprocess.STDOUT, preexec_fn=_raise_open_files, start_new_session=True,
        )  # fmt: skip
    root = psutil.Process(process.pid)
    descendants: set[int] = set()
    peak_tree_kb = 0
    deadline = started + timeout_s
    signals = [signal.SIGTERM, signal.SIGKILL]
    timed_out = False
    try:
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            processes = process_tree(root)
            peak_tree_kb = max(peak_tree_kb, _sample_tree(processes, descendants))
            if on_sample is not None and processes:
                on_sample(processes)
            if time.monotonic() >= deadline and signals:
                timed_out = True
                os.killpg(process.pid, signals.pop(0))
                deadline = time.monotonic() + _KILL_GRACE_S
            time.sleep(sample_every_s)
    except BaseException:  # interrupted (Ctrl-C, SIGTERM): the child's session must not outlive us
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        raise
    process.returncode = os.waitstatus_to_exitcode(status)
    descendants.discard(process.pid)
    orphans_cpu_s, orphans_maxrss = _reap_orphans(descendants, time.monotonic() + _KILL_GRACE_S)
    return Usage(
        returncode=process.returncode,
        cpu_s=usage.ru_utime + usage.ru_stime + orphans_cpu_s,
        peak_rss_kb=max(usage.ru_maxrss, orphans_maxrss, peak_tree_kb),
        wall_s=time.monotonic() - started,
        timed_out=timed_out,
    )


def summary_reported(path: Path) -> Reported | None:
    """From a k6-shaped summary JSON (the harness's, or k6's handleSummary data); None if missing."""
    if not path.is_file():
        return None
    metrics = json.loads(path.read_text())["metrics"]
    trend = metrics.get(STORM_TREND, {}).get("values", {})
    requests = metrics.get("http_reqs", {}).get("values", {}).get("count", 0)
    return Reported(int(requests), trend.get("med", 0.0), trend.get("p(95)", 0.0), trend.get("p(99)", 0.0))


def read_server_view(log_paths: Sequence[Path], interval_s: float) -> ServerView:
    """The heartbeats in the targets' request logs; per-second counts skip the first interval."""
    log = [record for path in log_paths for record in read_request_log(path)]
    beats = heartbeats(log)
    by_agent = beats_by_agent(log)
    gaps_by_agent = [[b - a for a, b in zip(t, t[1:], strict=False)] for t in by_agent.values()]
    bursty = sum(1 for gaps in gaps_by_agent if gaps and min(gaps) < BURST_SHARE * interval_s)
    return ServerView(
        requests=len(beats),
        agents=len(by_agent),
        gaps=tuple(sorted(g for gaps in gaps_by_agent for g in gaps)),
        bursty_agents=bursty,
        per_second=tuple(per_second_counts(log, skip_first_s=interval_s)) if beats else (),
        server_ms=tuple(sorted(r["server_ms"] for r in beats)),
    )


def harness_command(
    url: str,
    results_dir: Path,
    *,
    fleet: int,
    interval_s: float,
    run_time_s: float,
    processes: int = 1,
    checkout: Checkout = CURRENT,
) -> list[str]:
    """``locust -f locustfile.py --headless`` with the harness's options (no preflight), run by the
    checkout's python from its locustfile (default: this tree's)."""
    command = [
        checkout.python, "-m", "locust", "-f", str(checkout.locustfile), "--headless", "--host", url,
        "--fleet-size", str(fleet), "--heartbeat-interval", f"{interval_s:g}",
        "--run-time", f"{run_time_s:g}s", "--results-dir", str(results_dir), "--skip-preflight",
    ]  # fmt: skip
    if processes > 1:
        command += ["--processes", str(processes)]
    return command


def cpu_warned(output: Path) -> bool:
    """Whether Locust logged its CPU warning (local runner or a worker) in ``output``."""
    text = output.read_text(errors="replace")
    return "CPU usage above" in text or "exceeded cpu threshold" in text


def fmt(value: float | None, spec: str = ".2f") -> str:
    return "n/a" if value is None else format(value, spec)


def _stop_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds through every context manager: children are stopped


def bench_main(
    name: str,
    run_all: Callable[[Path], int],
    keep: str | None,
    errors: tuple[type[BaseException], ...] = (RuntimeError, OSError),
) -> int:
    """A bench's ``main``: SIGTERM stops its children as Ctrl-C does; ``run_all`` works in ``keep``
    (kept) or a temporary directory; an expected error is one line on stderr and exit 1."""
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    try:
        if keep:
            return run_all(Path(keep).resolve())
        with tempfile.TemporaryDirectory(prefix=f"{name.replace('_', '-')}-") as tmp:
            return run_all(Path(tmp))
    except errors as error:
        print(f"{name}: {error}", file=sys.stderr)
        return 1


@contextlib.contextmanager
def start_targets(fleet: int, count: int) -> Iterator[list[RunningTarget]]:
    """``count`` reference targets without a request log on one loopback port (``--reuse-port``
    when more than one)."""
    args = ["--fleet-size", str(fleet)] + (["--reuse-port"] if count > 1 else [])
    with contextlib.ExitStack() as stack:
        first = stack.enter_context(start_target(args))
        others = [
            stack.enter_context(start_target([*args, "--port", str(first.port)])) for _ in range(count - 1)
        ]
        yield [first, *others]
