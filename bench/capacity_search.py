"""The capacity search at full length against a known answer (issue 19's acceptance): the reference
target with ``--capacity 330`` (330 heartbeats/s: 3,300 agents at 10 s), a 10 s interval,
``--start-fleet 500`` and every other default, the shipped thresholds.

    python bench/capacity_search.py [--capacity 330] [--interval 10s] [--start-fleet 500]
                                    [--repeat] [--svg docs/capacity-search.svg] [--keep DIR]

Prints a markdown table of the steps, the result line and the acceptance checks (result found,
converged, max_fleet in [0.95·R·T, R·T], at most 9 steps), and writes an SVG plot of p95 and p99
against the fleet. With ``--repeat`` the search's last passing and first failing fleets are each
run once more as a one-step search, each a fresh fleet as in every step, to measure whether a fresh
fleet per step gives the same verdict. Exits 1 when an acceptance check fails.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from bench.common import bench_main, child_env, fmt  # noqa: E402
from certctl_load.k6.durations import parse_duration_seconds  # noqa: E402
from certctl_load.target.process import start_target  # noqa: E402


def run_search(
    url: str, results: Path, interval: str, *options: str, timeout_s: float
) -> tuple[int, dict[str, Any]]:
    command = [sys.executable, "-m", "certctl_load.cli", "capacity", "--host", url]
    command += ["--results-dir", str(results), "--heartbeat-interval", interval, *options]
    print("$", " ".join(command[2:]), flush=True)
    code = subprocess.call(command, env=child_env(), cwd=REPO_ROOT, timeout=timeout_s)
    return code, json.loads((results / "capacity-agent-storm.json").read_text())


def table(steps: list[dict[str, Any]]) -> str:
    rows = [
        "| step | fleet | heartbeats/s | p95 ms | p99 ms | errors | dropped | completed/sent | lag p99 ms "
        "| verdict |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for s in steps:
        kept = f"{s['completed']:,}/{s['sent']:,}"
        if s["sent"]:
            kept += f" ({s['completed'] / s['sent']:.1%})"
        errors = "n/a" if s["error_rate"] is None else f"{s['error_rate']:.2%}"
        cells = [
            str(s["step"]), f"{s['fleet']:,}", f"{s['rate']:g}", fmt(s["p95_ms"], ",.1f"),
            fmt(s["p99_ms"], ",.1f"), errors, f"{s['dropped']:,}", kept,
            fmt(s["generator_lag_p99_ms"], ".1f"), s["verdict"],
        ]  # fmt: skip
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def element(tag: str, text: str = "", **attributes: object) -> str:
    """One SVG element (attribute names with ``_`` for ``-``)."""
    shown = " ".join(f'{name.rstrip("_").replace("_", "-")}="{value}"' for name, value in attributes.items())
    return f"<{tag} {shown}>{text}</{tag}>" if text else f"<{tag} {shown}/>"


def svg_plot(steps: list[dict[str, Any]], ceiling: int, title: str) -> str:
    """p95 and p99 (log scale) against the fleet, each step numbered, pass green and fail red; the
    known ceiling and the 500 ms limit dashed."""
    width, height, left, right, top, bottom = 720, 420, 70, 20, 40, 50
    x_high = max([s["fleet"] for s in steps] + [ceiling]) * 1.08
    values = [v for s in steps for v in (s["p95_ms"], s["p99_ms"]) if v] + [500]
    y_low, y_high = math.log10(max(min(values) / 2, 0.1)), math.log10(max(values) * 2)
    x_end, y_end = width - right, height - bottom

    def x(fleet: float) -> float:
        return round(left + fleet / x_high * (width - left - right), 1)

    def y(ms: float) -> float:
        return round(top + (y_high - math.log10(ms)) / (y_high - y_low) * (height - top - bottom), 1)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        'font-family="sans-serif" font-size="12">',
        element("rect", width=width, height=height, fill="white"),
        element("text", title, x=width / 2, y=20, text_anchor="middle", font_size=14),
        element("line", x1=left, y1=y_end, x2=x_end, y2=y_end, stroke="black"),
        element("line", x1=left, y1=top, x2=left, y2=y_end, stroke="black"),
        element("text", "fleet (agents)", x=width / 2, y=height - 10, text_anchor="middle"),
        element(
            "text", "latency (ms, log scale)", x=15, y=height / 2, text_anchor="middle",
            transform=f"rotate(-90 15 {height / 2})",
        ),
    ]  # fmt: skip
    step_x = 10 ** math.floor(math.log10(x_high / 4)) * (
        1 if x_high / 10 ** math.floor(math.log10(x_high / 4)) < 10 else 2
    )
    tick = 0.0
    while tick <= x_high:
        parts.append(element("text", f"{tick:,.0f}", x=x(tick), y=y_end + 16, text_anchor="middle"))
        tick += step_x
    for exponent in range(math.ceil(y_low), math.floor(y_high) + 1):
        ms = 10**exponent
        parts.append(element("line", x1=left, y1=y(ms), x2=x_end, y2=y(ms), stroke="#eee"))
        parts.append(element("text", f"{ms:g}", x=left - 6, y=y(ms) + 4, text_anchor="end"))
    dashed = {"stroke_dasharray": "6 4"}
    parts.append(element("line", x1=left, y1=y(500), x2=x_end, y2=y(500), stroke="#888", **dashed))
    parts.append(element("text", "p(95)&lt;500", x=x_end - 4, y=y(500) - 4, text_anchor="end", fill="#555"))
    parts.append(element("line", x1=x(ceiling), y1=top, x2=x(ceiling), y2=y_end, stroke="#36c", **dashed))
    parts.append(element("text", f"capacity {ceiling:,} agents", x=x(ceiling) + 4, y=y_end - 8, fill="#36c"))
    for s in steps:
        colour = {"pass": "#2a2", "fail": "#d22"}.get(s["verdict"], "#888")
        if s["p99_ms"]:
            cx, cy = x(s["fleet"]), y(s["p99_ms"])
            parts.append(element("rect", x=cx - 4, y=cy - 4, width=8, height=8, fill="none", stroke=colour))
        if s["p95_ms"]:
            cx, cy = x(s["fleet"]), y(s["p95_ms"])
            parts.append(element("circle", cx=cx, cy=cy, r=5, fill=colour))
            parts.append(element("text", str(s["step"]), x=cx + 7, y=cy + 14, fill=colour))
    legend = "● p95, □ p99 (green: pass, red: fail; numbers: the order of the steps)"
    parts.append(element("text", legend, x=left + 10, y=top + 12))
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--capacity", type=float, default=330.0, help="the target's --capacity (default 330)")
    parser.add_argument("--interval", default="10s", help="heartbeat interval (default 10s)")
    parser.add_argument("--start-fleet", type=int, default=500)
    parser.add_argument("--repeat", action="store_true", help="rerun the last pass and first fail once each")
    parser.add_argument("--svg", type=Path, help="write the plot here")
    parser.add_argument("--keep", help="keep the results here (default: a temporary directory)")
    args = parser.parse_args()
    return bench_main("capacity_search", lambda workdir: run_all(args, workdir), args.keep)


def run_all(args: argparse.Namespace, workdir: Path) -> int:
    interval_s = parse_duration_seconds(args.interval)
    ceiling = math.floor(args.capacity * interval_s)
    started = time.gmtime()
    began = time.monotonic()
    with start_target(["--fleet-size", str(4 * ceiling), "--capacity", f"{args.capacity:g}"]) as target:
        code, found = run_search(
            target.url,
            workdir / "search",
            args.interval,
            "--start-fleet",
            str(args.start_fleet),
            timeout_s=3600,
        )
        elapsed = time.monotonic() - began
        repeats: list[tuple[str, int, dict[str, Any]]] = []
        if args.repeat:
            for label, fleet in (
                ("last pass", found["max_fleet"]),
                ("first fail", found["first_failing_fleet"]),
            ):
                if fleet is None:
                    continue
                one = ("--start-fleet", str(fleet), "--max-fleet", str(fleet), "--max-steps", "1")
                _, again = run_search(
                    target.url, workdir / f"repeat-{fleet}", args.interval, *one, timeout_s=600
                )
                repeats.append((label, fleet, again["steps"][0]))
    print()
    print(
        f"{time.strftime('%Y-%m-%d %H:%M', started)} UTC: --capacity {args.capacity:g} ({ceiling:,} agents "
        f"at {interval_s:g} s), --start-fleet {args.start_fleet}, exit {code}, {elapsed / 60:.1f} min"
    )
    print()
    print(table(found["steps"]))
    print()
    print(found["line"])
    for label, fleet, step in repeats:
        first = next(s for s in found["steps"] if s["fleet"] == fleet)
        print(
            f"repeat of the {label} ({fleet:,} agents, a fresh fleet): {step['verdict']}, p95 "
            f"{fmt(step['p95_ms'], ',.1f')} ms, completed/sent {step['completed']:,}/{step['sent']:,} "
            f"(in the search: {first['verdict']}, p95 {fmt(first['p95_ms'], ',.1f')} ms, "
            f"{first['completed']:,}/{first['sent']:,})"
        )
    checks = {
        "result found": found["result"] == "found",
        "converged": found["converged"] is True,
        f"max_fleet in [{math.ceil(0.95 * ceiling):,}, {ceiling:,}]": found["max_fleet"] is not None
        and 0.95 * ceiling <= found["max_fleet"] <= ceiling,
        "at most 9 steps": len(found["steps"]) <= 9,
        "exit 0": code == 0,
    }
    checks.update(
        {f"repeat of the {label} agrees": step["verdict"] == ("pass" if label == "last pass" else "fail")
         for label, _, step in repeats}
    )  # fmt: skip
    print()
    for name, ok in checks.items():
        print(f"{'ok  ' if ok else 'FAIL'} {name}")
    if args.svg:
        title = f"capacity search: --capacity {args.capacity:g}, {interval_s:g} s interval"
        args.svg.write_text(svg_plot(found["steps"], ceiling, title))
        print(f"plot: {args.svg}")
    if args.keep:
        print(f"results: {workdir}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
