"""The verdict printed after the summary: one row per threshold, then k6's one-line conclusion; and
the verdict of a run in words, for the report and the web UI."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from certctl_load import exitcodes
from certctl_load.k6.metrics import METRICS
from certctl_load.k6.thresholds import ThresholdResult, crossed_metrics
from certctl_load.reporting.figures import format_figure

HEADER = ("threshold", "expression", "measured", "verdict")
_VERDICTS = {
    exitcodes.OK: "passed",
    exitcodes.THRESHOLDS_CROSSED: "thresholds crossed",
    exitcodes.TARGET_NOT_READY: "stopped early: the target is not ready",
    exitcodes.INTERRUPTED: "interrupted",
    exitcodes.HARNESS_ERROR: "harness error",
    exitcodes.INVALID_CONFIG: "refused: the configuration is bad",
    exitcodes.INCONCLUSIVE: "inconclusive: the load generator was saturated",
}
_WORDS = {
    exitcodes.OK: ("pass", "pass"),
    exitcodes.THRESHOLDS_CROSSED: ("fail", "fail"),
    exitcodes.TARGET_NOT_READY: ("not ready", "fail"),
    exitcodes.INTERRUPTED: ("interrupted", "warn"),
    exitcodes.HARNESS_ERROR: ("harness error", "fail"),
    exitcodes.INVALID_CONFIG: ("refused", "fail"),
    exitcodes.INCONCLUSIVE: ("inconclusive", "warn"),
}
RUNNING = ("running", "running")


@dataclass(frozen=True)
class VerdictWord:
    """A run's verdict as a word (``pass``, ``fail``, ``aborted``, ...), its tone (``pass``, ``fail``,
    ``warn``, ``running``: the colour the pages give it) and the sentence it stands for."""

    word: str
    tone: str
    text: str


def verdict_text(exit_code: int, requests: int) -> str:
    """The verdict in a few words, e.g. ``thresholds crossed``; ``failed`` for a code without one."""
    if exit_code == exitcodes.THRESHOLDS_CROSSED and requests == 0:
        return "no heartbeat was sent"
    return _VERDICTS.get(exit_code, "failed")


def verdict_word(exit_code: int | None, requests: int = 0, *, aborted: bool = False) -> VerdictWord:
    """The verdict of a finished run (``exit_code``), or ``running`` while there is none; ``aborted``:
    an abortOnFail threshold stopped the run."""
    if exit_code is None:
        return VerdictWord(*RUNNING, "the run is not over")
    text = verdict_text(exit_code, requests)
    if aborted and exit_code == exitcodes.THRESHOLDS_CROSSED:
        return VerdictWord("aborted", "fail", text)
    word, tone = _WORDS.get(exit_code, ("fail", "fail"))
    return VerdictWord(word, tone, text)


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


def _measured_cell(result: ThresholdResult) -> str:
    """The measured value; a windowed threshold's worst window's, and where that window starts."""
    if result.threshold.window_s is None or result.worst_start_s is None:
        return format_measured(result)
    return f"{format_measured(result)} (worst window from {result.worst_start_s}s)"


def measured_unit(metric: str, method: str) -> str:
    """The unit (``figures.UNITS``) a threshold's value reads in: ms for time trends, % for rates,
    /s for a counter's rate, a count for its count."""
    definition = METRICS[metric]
    if definition.type == "trend":
        return "ms" if definition.contains == "time" else "number"
    if definition.type == "rate":
        return "percent"
    if definition.type == "counter":
        return "rate" if method == "rate" else "count"
    return "number"


def measured_figure(result: ThresholdResult) -> str:
    """The measured value for people (the report, the web UI): ``1.16 ms``, ``0.05 %``, ``166.67 /s``."""
    if result.value is None:
        return "no samples" if result.threshold.window_s is None or result.ok else "no data"
    threshold = result.threshold
    return format_figure(result.value, measured_unit(threshold.metric, threshold.expression.method))


def verdict_rows(
    results: list[ThresholdResult], measured: Callable[[ThresholdResult], str] = _measured_cell
) -> list[tuple[str, str, str, str]]:
    """One row per threshold: metric key, expression (a windowed one's with its window), ``measured``
    value (by default a windowed one's worst window named too) and PASS/FAIL."""
    return [
        (
            r.threshold.metric_key,
            r.threshold.label.strip(),
            measured(r),
            "PASS" if r.ok else "FAIL",
        )
        for r in results
    ]


def conclusion(results: list[ThresholdResult]) -> str:
    """k6's last line: the crossed metrics, or how many thresholds passed."""
    crossed = crossed_metrics(results)
    if crossed:
        return f"thresholds on metrics '{', '.join(crossed)}' have been crossed"
    return f"all {len(results)} thresholds passed" if len(results) != 1 else "the 1 threshold passed"


def render_verdict_table(results: list[ThresholdResult]) -> str:
    """Rows of metric key, expression, measured value and PASS/FAIL; last line names crossed metrics."""
    if not results:
        return "thresholds: none defined"
    rows = [HEADER, *verdict_rows(results)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADER))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows
    ]
    lines.append(conclusion(results))
    return "\n".join(lines)


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
