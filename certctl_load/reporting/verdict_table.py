"""The verdict printed after the summary: one row per threshold, then k6's one-line conclusion."""

from __future__ import annotations

from certctl_load.k6.metrics import METRICS
from certctl_load.k6.thresholds import ThresholdResult, crossed_metrics

HEADER = ("threshold", "expression", "measured", "verdict")


def format_measured(result: ThresholdResult) -> str:
    """The measured value: ms with 3 decimals for time trends, ``/s`` for counter rates, else 6 digits."""
    value = result.value
    if value is None:
        return "no samples" if result.threshold.window_s is None or result.ok else "no data"
    threshold = result.threshold
    definition = METRICS[threshold.metric]
    if definition.type == "trend" and definition.contains == "time":
        return f"{value:.3f}ms"
    if definition.type == "counter" and threshold.expression.method == "rate":
        return f"{value:.6g}/s"
    return f"{value:.6g}"


def render_verdict_table(results: list[ThresholdResult]) -> str:
    """Rows of metric key, expression, measured value and PASS/FAIL; last line names crossed metrics."""
    if not results:
        return "thresholds: none defined"
    rows = [HEADER] + [
        (
            r.threshold.metric_key,
            r.threshold.label.strip(),
            _measured_cell(r),
            "PASS" if r.ok else "FAIL",
        )
        for r in results
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADER))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows
    ]
    crossed = crossed_metrics(results)
    if crossed:
        lines.append(f"thresholds on metrics '{', '.join(crossed)}' have been crossed")
    else:
        lines.append(
            f"all {len(results)} thresholds passed" if len(results) != 1 else "the 1 threshold passed"
        )
    return "\n".join(lines)


def _measured_cell(result: ThresholdResult) -> str:
    """The measured value; a windowed threshold's worst window's, and where that window starts."""
    if result.threshold.window_s is None or result.worst_start_s is None:
        return format_measured(result)
    return f"{format_measured(result)} (worst window from {result.worst_start_s}s)"


def render_windows(results: list[ThresholdResult]) -> str:
    """The text summary's lines on windowed thresholds: each one's worst window (empty without any)."""
    lines = []
    for result in results:
        threshold = result.threshold
        window = threshold.window_s
        if window is None:
            continue
        verdict = "ok" if result.ok else "crossed"
        if result.worst_start_s is None:
            where = "no window judged"
        else:
            start = result.worst_start_s
            where = f"worst window {start}s-{start + window}s: {format_measured(result)}"
        lines.append(f"  {threshold.metric_key} {threshold.label.strip()}: {verdict}, {where}")
    return "\n".join(["thresholds over windows (each must hold in every window):", *lines]) if lines else ""
