"""Issue 2's accuracy bench: one harness storm against the reference target, judged by the target's log.

    python bench/storm_accuracy.py [--fleet-size 1000 --heartbeat-interval 6 --run-time 30 --processes N]

Prints every agent's cadence, the offered rate and its per-second spread, the harness's counts and
percentiles beside the server's own, and the locust process's CPU and memory; then checks issue 2's
acceptance. Exits 0 when every check passes, 1 otherwise.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from common import (
    Reported,
    ServerView,
    Usage,
    child_env,
    fmt,
    harness_command,
    read_server_view,
    run_measured,
    summary_reported,
)

from certctl_load.target.process import start_target

MEDIAN_TOLERANCE = 0.01
MAX_CV = 0.02
P95_MARGIN_MS = 2.0
# Locust start-up, the fleet's spawn and the 30 s graceful stop on top of the run.
TIMEOUT_MARGIN_S = 120.0


@dataclass(frozen=True)
class Check:
    ok: bool
    text: str


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fleet-size", type=int, default=1000, help="agents (default 1000)")
    parser.add_argument("--heartbeat-interval", type=float, default=6.0, help="seconds (default 6)")
    parser.add_argument("--run-time", type=float, default=30.0, help="seconds (default 30)")
    parser.add_argument("--processes", type=int, default=1, help="Locust's --processes (default 1: none)")
    return parser.parse_args(argv)


def acceptance(
    args: argparse.Namespace, usage: Usage, view: ServerView, reported: Reported | None
) -> list[Check]:
    """Issue 2's checks."""
    interval = args.heartbeat_interval
    median = view.gap(50)
    cv = view.cv
    checks = [
        Check(usage.returncode == 0 and not usage.timed_out, f"locust exited {usage.returncode}"),
        Check(view.agents == args.fleet_size, f"agents beating: {view.agents} of {args.fleet_size}"),
        Check(
            median is not None and abs(median - interval) <= MEDIAN_TOLERANCE * interval,
            f"median interval {fmt(median, '.3f')} s within {MEDIAN_TOLERANCE:.0%} of {interval:g} s",
        ),
        Check(view.bursty_agents == 0, f"agents beating more than once per interval: {view.bursty_agents}"),
        Check(cv is not None and cv <= MAX_CV, f"per-second CV {fmt(cv, '.4f')} <= {MAX_CV}"),
    ]
    if reported is None:
        return [*checks, Check(False, "the harness wrote no summary JSON")]
    server_p95 = view.server_p(95)
    return [
        *checks,
        Check(
            reported.requests == view.requests,
            f"http_reqs {reported.requests} = server count {view.requests}",
        ),
        Check(
            server_p95 <= reported.p95 <= server_p95 + P95_MARGIN_MS,
            f"reported p95 {reported.p95:.3f} ms within [server p95 {server_p95:.3f}, +{P95_MARGIN_MS:g}] ms",
        ),
    ]


def report(args: argparse.Namespace, usage: Usage, view: ServerView, reported: Reported | None) -> None:
    interval = args.heartbeat_interval
    print(
        f"storm: {args.fleet_size} agents every {interval:g} s for {args.run_time:g} s, "
        f"{args.processes} process(es); locust exit code {usage.returncode}"
        + (" (timed out, killed)" if usage.timed_out else "")
    )
    print(
        f"agents:    {view.agents} of {args.fleet_size} beat; interval p1/p50/p99 "
        f"{fmt(view.gap(1), '.3f')}/{fmt(view.gap(50), '.3f')}/{fmt(view.gap(99), '.3f')} s; "
        f"beating more than once per interval: {view.bursty_agents}"
    )
    print(
        f"offered:   {fmt(view.offered_rate)}/s after the first {interval:g} s "
        f"(fleet/interval {args.fleet_size / interval:.2f}/s); per-second CV {fmt(view.cv, '.4f')}"
    )
    server = "/".join(f"{view.server_p(p):.3f}" for p in (50, 95, 99))
    if reported is None:
        print(f"requests:  no harness summary; server logged {view.requests}")
        print(f"latency:   server p50/p95/p99 {server} ms")
    else:
        print(f"requests:  http_reqs {reported.requests}, server logged {view.requests}")
        print(
            f"latency:   reported p50/p95/p99 {reported.p50:.3f}/{reported.p95:.3f}/{reported.p99:.3f} ms; "
            f"server {server} ms"
        )
    per_request = usage.cpu_s * 1000 / view.requests if view.requests else None
    print(
        f"cost:      CPU {usage.cpu_s:.2f} s user+sys (start-up included) = "
        f"{fmt(per_request, '.3f')} ms/request; "
        f"peak RSS {usage.peak_rss_kb / 1024:.1f} MB"
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="storm-accuracy-") as tmp:
        workdir = Path(tmp)
        log_path = workdir / "requests.jsonl"
        with start_target(["--fleet-size", str(args.fleet_size)], request_log=log_path) as target:
            command = harness_command(
                target.url, workdir / "results", fleet=args.fleet_size, interval_s=args.heartbeat_interval,
                run_time_s=args.run_time, processes=args.processes,
            )  # fmt: skip
            output = workdir / "locust.log"
            usage = run_measured(
                command, env=child_env(), cwd=workdir, output=output,
                timeout_s=args.run_time + TIMEOUT_MARGIN_S,
            )  # fmt: skip
        view = read_server_view([log_path], args.heartbeat_interval)
        reported = summary_reported(workdir / "results" / "summary-agent-storm.json")
        report(args, usage, view, reported)
        checks = acceptance(args, usage, view, reported)
        if usage.returncode != 0:
            print(output.read_text(errors="replace")[-3000:], file=sys.stderr)
    print("acceptance (issue 2):")
    for check in checks:
        print(f"  {'PASS' if check.ok else 'FAIL'}  {check.text}")
    return 0 if all(check.ok for check in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
