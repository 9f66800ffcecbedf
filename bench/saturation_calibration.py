"""Calibrate the saturation rule against the wire: the runs that ``wire_truth.py --keep DIR`` kept,
their reported p99 − wire p99 beside the generator's figures.

    python bench/saturation_calibration.py DIR [DIR ...] [--excess-ms 5]

Reads every ``figures.json`` under the directories. A run's excess is the summary's p99 minus the
wire's p99 over the whole run (the worst 5 s window's is shown beside it). The rule
(``certctl_load.runtime.generator``: lag p99 > 20 ms, late beats > 1 %, or CPU > 90 % of a core in
any 10 s) should flag exactly the runs whose excess is over ``--excess-ms``. Prints a markdown table,
whether the rule agrees on every run, and per figure the thresholds that would separate the runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from certctl_load.runtime.generator import MAX_CPU_PCT, MAX_LAG_P99_MS, MAX_LATE_FRACTION  # noqa: E402


@dataclass(frozen=True)
class Run:
    """One kept run's figures."""

    source: str
    data: dict[str, Any]

    @property
    def generator(self) -> dict[str, Any]:
        return self.data["generator"] or {}

    @property
    def excess_ms(self) -> float | None:
        """Reported (summary) p99 − wire p99, whole run."""
        return self.data["delta_ms"]["p99"]["summary"]

    @property
    def window_excess_ms(self) -> float | None:
        return self.data["delta_ms"]["p99"]["worst_window"]

    @property
    def lag_p99_ms(self) -> float:
        return float(self.generator["lag_ms"]["p99"])

    @property
    def late_fraction(self) -> float:
        return float(self.generator["late_fraction"])

    @property
    def cpu_pct(self) -> float:
        return float(self.generator["cpu_pct"])

    @property
    def saturated(self) -> bool:
        return bool(self.generator.get("saturated"))


FIGURES: dict[str, tuple[Callable[[Run], float], float, str]] = {
    "lag p99 ms": (lambda run: run.lag_p99_ms, MAX_LAG_P99_MS, "{:.2f}"),
    "late fraction": (lambda run: run.late_fraction, MAX_LATE_FRACTION, "{:.4%}"),
    "CPU % busiest 10 s": (lambda run: run.cpu_pct, MAX_CPU_PCT, "{:.1f}"),
}


def read_runs(directories: Sequence[Path]) -> list[Run]:
    """Every figures.json under ``directories``, in order of directory, then run number."""
    runs = []
    for directory in directories:
        paths = sorted(directory.rglob("figures.json"), key=lambda p: (str(p.parent.parent), p.parent.name))
        if not paths:
            raise SystemExit(f"saturation_calibration: no figures.json under {directory}")
        for path in paths:
            data = json.loads(path.read_text())
            if data.get("generator") and data["delta_ms"]["p99"]["summary"] is not None:
                runs.append(Run(f"{directory.name}/{path.parent.name}", data))
    return runs


def _fmt(value: float | None, spec: str = "+.3f") -> str:
    return "n/a" if value is None else format(value, spec)


def table(runs: Sequence[Run], excess_ms: float) -> list[str]:
    header = [
        "run", "started", "agents × interval s", "processes", "exit", "reported − wire p99 ms (whole run)",
        "worst 5 s window ms", *FIGURES, "saturated (rule)", f"excess > {excess_ms:g} ms", "rule agrees",
    ]  # fmt: skip
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for run in runs:
        data, over = run.data, (run.excess_ms or 0.0) > excess_ms
        cells = [
            run.source, data["started"], f"{data['fleet']} × {data['interval_s']:g}", str(data["processes"]),
            str(data["exit"]), _fmt(run.excess_ms), _fmt(run.window_excess_ms),
            *(spec.format(value(run)) for value, _, spec in FIGURES.values()),
            "yes" if run.saturated else "no", "yes" if over else "no",
            "yes" if over == run.saturated else "NO",
        ]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def separation(runs: Sequence[Run], excess_ms: float) -> list[str]:
    """Per figure: the largest value among the runs within the excess and the smallest among those
    over it; a threshold in between flags exactly the runs over it (by that figure alone)."""
    within = [run for run in runs if (run.excess_ms or 0.0) <= excess_ms]
    over = [run for run in runs if (run.excess_ms or 0.0) > excess_ms]
    lines = [
        f"| figure | rule's threshold | largest, runs within {excess_ms:g} ms | smallest, runs over it "
        "| separates alone |",
        "|" + " --- |" * 5,
    ]
    for name, (value, threshold, spec) in FIGURES.items():
        high = max((value(run) for run in within), default=None)
        low = min((value(run) for run in over), default=None)
        if high is None or low is None:
            verdict = "n/a (no run on one side)"
        else:
            bounds = f"[{spec.format(high)}, {spec.format(low)})"
            verdict = f"yes: any threshold in {bounds}" if high < low else "no"
        cells = [
            name, spec.format(threshold), "n/a" if high is None else spec.format(high),
            "n/a" if low is None else spec.format(low), verdict,
        ]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("directories", nargs="+", type=Path, help="wire_truth.py --keep directories")
    parser.add_argument(
        "--excess-ms", type=float, default=5.0, help="reported p99 above the wire's by more than this (5)"
    )
    args = parser.parse_args(argv)
    runs = read_runs(args.directories)
    if not runs:
        print("saturation_calibration: no run with a summary and a generator block", file=sys.stderr)
        return 1
    print("\n".join(table(runs, args.excess_ms)))
    disagree = [run.source for run in runs if ((run.excess_ms or 0.0) > args.excess_ms) != run.saturated]
    print(
        f"\nthe rule flags exactly the runs over {args.excess_ms:g} ms: "
        + ("yes" if not disagree else f"no, it disagrees on {', '.join(disagree)}")
        + "\n"
    )
    print("\n".join(separation(runs, args.excess_ms)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
