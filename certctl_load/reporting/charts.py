"""The per-second charts both pages draw (the HTML report and the web UI's live page): what each
chart shows, the latency thresholds' limits and worst windows marked on it, and the page assets
(the vendored uPlot and the harness's own scripts), read from the package.

A chart is drawn from the timeline's rows (``results/timeline-<stem>.json``):
``{"t", "offered", "sent", "completed", "failed": {kind: n}, "dropped", "late", "p50", "p95",
"p99", "lag_p99", "lag_max", "connections"}``, one row per second since t0.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from functools import cache
from importlib.resources import files
from typing import Any

from certctl_load.k6.thresholds import Threshold, parse_expression
from certctl_load.reporting.figures import format_figure

# The trend methods whose limit is a latency, drawn on the latency chart as a horizontal line.
LATENCY_METHODS = frozenset({"p", "med", "avg", "max"})
LATENCY_METRIC = "http_req_duration"
WINDOW_SEPARATOR = " over "  # a windowed threshold's key: "p(95)<500 over 30s"
ASSETS = files("certctl_load.reporting") / "assets"


@dataclass(frozen=True)
class Series:
    """One line: the row's ``field`` (``failed`` sums the kinds), shown as ``label``."""

    field: str
    label: str


@dataclass(frozen=True)
class Chart:
    """One chart: its series in ``unit`` (a key of ``figures.UNITS``); ``per_kind`` adds one series per
    key of that row field (the failures' kinds); ``log``: a logarithmic y axis."""

    key: str
    title: str
    unit: str
    series: tuple[Series, ...]
    per_kind: str | None = None
    log: bool = False


CHARTS = (
    Chart(
        "heartbeats",
        "Heartbeats per second: offered, sent, completed",
        "count",
        (Series("offered", "offered"), Series("sent", "sent"), Series("completed", "completed")),
    ),
    Chart(
        "latency",
        "Latency of the heartbeats sent each second (exact percentiles)",
        "ms",
        (Series("p50", "p50"), Series("p95", "p95"), Series("p99", "p99")),
        log=True,
    ),
    Chart(
        "failures", "Failed heartbeats by kind", "count", (Series("failed", "all kinds"),), per_kind="failed"
    ),
    Chart("beats", "Dropped and late beats", "count", (Series("dropped", "dropped"), Series("late", "late"))),
    Chart(
        "lag",
        "The load generator's lag (event loop)",
        "ms",
        (Series("lag_p99", "lag p99"), Series("lag_max", "lag max")),
    ),
    Chart("connections", "Open connections", "count", (Series("connections", "connections"),)),
)


def charts_json() -> list[dict[str, Any]]:
    """The charts, JSON-ready for the pages' script."""
    return [asdict(chart) for chart in CHARTS]


def _label(text: str, selector: str) -> str:
    """A threshold named on the chart: ``p(95)<500``, or ``p(95)<500 {name:work_poll}`` on a sub-metric."""
    return f"{text} {selector}" if selector else text


def latency_marks(
    thresholds: Iterable[tuple[str, str, Mapping[str, Any]]],
) -> dict[str, list[dict[str, Any]]]:
    """The latency chart's marks from ``(metric key, threshold key, its summary entry)``: a line at each
    latency threshold's limit (once per metric key and expression), and, for a windowed threshold
    whose summary entry has its worst window, that window (``worst``, ``worst_start_s``, ``window_s``)."""
    lines: dict[tuple[str, str], dict[str, Any]] = {}
    windows: list[dict[str, Any]] = []
    for metric_key, key, entry in thresholds:
        if metric_key.partition("{")[0] != LATENCY_METRIC:
            continue
        text = key.partition(WINDOW_SEPARATOR)[0].strip()
        expression = parse_expression(text)
        if expression.method not in LATENCY_METHODS:
            continue
        selector = metric_key[len(LATENCY_METRIC) :]
        lines.setdefault((metric_key, text), {"value": expression.value, "label": _label(text, selector)})
        start = entry.get("worst_start_s")
        if WINDOW_SEPARATOR in key and start is not None:
            windows.append(
                {
                    "start": start,
                    "end": start + entry["window_s"],
                    "ok": bool(entry.get("ok")),
                    "label": f"{_label(key, selector)}: worst {format_figure(entry.get('worst'), 'ms')}",
                }
            )
    return {"lines": list(lines.values()), "windows": windows}


def live_marks(thresholds: Iterable[Threshold]) -> dict[str, list[dict[str, Any]]]:
    """The latency chart's marks while a run goes: each latency threshold's limit (no window yet)."""
    return latency_marks((t.metric_key, t.expression.text, {}) for t in thresholds)


def summary_thresholds(summary: Mapping[str, Any]) -> list[tuple[str, str, Mapping[str, Any]]]:
    """Every threshold of a summary: ``(metric key, threshold key, its entry)``, in the summary's order."""
    return [
        (metric_key, key, entry)
        for metric_key, metric in summary.get("metrics", {}).items()
        for key, entry in metric.get("thresholds", {}).items()
    ]


@cache
def asset(name: str) -> str:
    """A page asset's text: ``uplot/uPlot.iife.min.js``, ``uplot/uPlot.min.css``, ``charts.js``, ..."""
    return (ASSETS / name).read_text(encoding="utf-8")
