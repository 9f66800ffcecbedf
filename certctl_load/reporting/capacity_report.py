"""``report-capacity-<stem>.html``: the capacity search on one self-contained page, written beside
``capacity-<stem>.json``: the result as a coloured word, p95/p99 and the heartbeat rates against
fleet size, a table of the steps in the order run, and each step's per-second charts (the run
report's, from its ``timeline-<stem>.json``). uPlot and the scripts are inlined: no network.

Pure but for :func:`read_rows` and :func:`write_capacity_report`; the search's data comes from
``certctl_load.capacity.result.report_data`` (plain JSON, as this layer cannot import the search).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from html import escape
from pathlib import Path
from typing import Any

from certctl_load.reporting.charts import asset, charts_json
from certctl_load.reporting.figures import NO_VALUE, format_figure, units_json
from certctl_load.reporting.files import write_atomically
from certctl_load.reporting.html_report import html_page, html_table, verdict_badge
from certctl_load.reporting.verdict_table import VerdictWord

# The search's result as a word and its tone.
RESULT_WORDS = {
    "found": ("found", "pass"),
    "at_least": ("at least", "pass"),
    "start_fails": ("start fails", "fail"),
    "inconclusive": ("inconclusive", "warn"),
}
# A step's verdict's tone in the table.
VERDICT_TONES = {"pass": "pass", "fail": "fail", "not_ready": "fail", "error": "fail"}
HEADER = (
    "step", "fleet", "rate", "p95", "p99", "error rate", "dropped", "completed/sent",
    "generator lag p99", "verdict",
)  # fmt: skip
NO_ROWS = "no per-second rows for this step"

Rows = list[Mapping[str, Any]]


def capacity_report_path(results_dir: Path, stem: str) -> Path:
    """Where the search's report goes: ``report-capacity-agent-storm.html`` for the shipped scenario."""
    return results_dir / f"report-capacity-{stem}.html"


def result_word(data: Mapping[str, Any]) -> VerdictWord:
    """The result as a coloured word; its text says whether the search converged, and the bracket."""
    word, tone = RESULT_WORDS[data["result"]]
    passed, failed = data["max_fleet"], data["first_failing_fleet"]
    if data["result"] == "found":
        state = "converged" if data["converged"] else "not converged"
        text = f"{state}: the ceiling is between {passed:,} (held) and {failed:,} (failed) agents"
    elif data["result"] == "at_least":
        cap = "the cap was reached" if data["converged"] else "not converged: the steps ran out"
        text = f"{passed:,} agents held, no step failed ({cap})"
    elif data["result"] == "start_fails":
        text = f"the start fleet of {failed:,} agents failed"
    else:
        text = "the search could not finish" + ("" if passed is None else f"; {passed:,} agents held")
    if data["interrupted"]:
        text += "; interrupted"
    return VerdictWord(word, tone, f"{text} (exit code {data['exit_code']})")


def fleet_series(data: Mapping[str, Any]) -> dict[str, list[float | None]]:
    """The fleet charts' columns, one point per step in fleet order: fleet, p95, p99 (ms), offered
    heartbeats/s and completed/s (the hold's completed responses per second; None without a hold)."""
    steps = sorted(data["steps"], key=lambda step: (step["fleet"], step["step"]))
    return {
        "fleet": [step["fleet"] for step in steps],
        "p95": [step["p95_ms"] for step in steps],
        "p99": [step["p99_ms"] for step in steps],
        "offered": [step["rate"] for step in steps],
        "completed": [step["completed_per_s"] for step in steps],
    }


def _verdict_cell(step: Mapping[str, Any]) -> str:
    word = str(step["verdict"]).upper().replace("_", " ")
    return f"{word}: {'; '.join(step['reasons'])}" if step["reasons"] else word


def step_rows(data: Mapping[str, Any]) -> list[tuple[str, ...]]:
    """The table of the steps in the order run, every figure for people."""
    rows: list[tuple[str, ...]] = []
    for step in data["steps"]:
        sent = step["sent"]
        kept = NO_VALUE
        if sent:
            fraction = format_figure(step["completed"] / sent, "percent")
            kept = f"{format_figure(step['completed'], 'count')}/{format_figure(sent, 'count')} ({fraction})"
        rows.append(
            (
                str(step["step"]),
                format_figure(step["fleet"], "count"),
                format_figure(step["rate"], "rate"),
                format_figure(step["p95_ms"], "ms"),
                format_figure(step["p99_ms"], "ms"),
                format_figure(step["error_rate"], "percent"),
                format_figure(step["dropped"], "count"),
                kept,
                format_figure(step["generator_lag_p99_ms"], "ms"),
                _verdict_cell(step),
            )
        )
    return rows


def read_rows(path: str | None) -> Rows | None:
    """A step's per-second rows from its ``timeline-<stem>.json`` (None: no path, or unreadable)."""
    if path is None:
        return None
    try:
        rows = json.loads(Path(path).read_text(encoding="utf-8")).get("rows")
    except (OSError, ValueError, AttributeError):
        return None
    return rows if isinstance(rows, list) and rows else None


def render_capacity_report(
    data: Mapping[str, Any],
    marks: Mapping[str, Any],
    rows: Mapping[int, Rows | None],
    scenario: str,
) -> str:
    """The search's page from its ``report_data``, the latency thresholds' ``marks`` (their limits,
    as ``charts.live_marks`` gives them) and each step's per-second ``rows`` (by step number)."""
    word = result_word(data)
    steps: Sequence[Mapping[str, Any]] = data["steps"]
    body = [
        f"<h1>certctl-load capacity: {escape(scenario)} {verdict_badge(word)}</h1>",
        f'<p class="lede" id="certctl-line">{escape(data["line"])}</p>',
        f"<p>{escape(word.text)}; heartbeat interval {data['heartbeat_interval_s']:g} s</p>",
        "<h2>Against fleet size</h2>",
        '<div id="fleet-charts"></div>',
        "<h2>Steps</h2>",
        html_table(HEADER, step_rows(data), [VERDICT_TONES.get(step["verdict"], "warn") for step in steps]),
        "<h2>Each step per second</h2>",
    ]
    drawn = []
    for step in steps:
        number = step["step"]
        title = f"Step {number}: {format_figure(step['fleet'], 'count')} agents, "
        title += f"{format_figure(step['rate'], 'rate')}: {str(step['verdict']).upper().replace('_', ' ')}"
        body.append(f"<h3>{escape(title)}</h3>")
        per_second = rows.get(number)
        if per_second:
            body.append(f'<div class="step-charts" id="step-{number}-charts"></div>')
            drawn.append({"step": number, "rows": per_second})
        else:
            body.append(f'<p class="no-rows" id="step-{number}-charts">{NO_ROWS}</p>')
    page_data = {
        "units": units_json(),
        "charts": charts_json(),
        "marks": {"lines": list(marks.get("lines", [])), "windows": []},
        "fleet": fleet_series(data),
        "steps": drawn,
    }
    return html_page(f"certctl-load capacity: {scenario}", "\n".join(body), page_data, asset("capacity.js"))


def write_capacity_report(
    results_dir: Path, stem: str, data: Mapping[str, Any], marks: Mapping[str, Any], scenario: str
) -> Path:
    """Write ``report-capacity-<stem>.html`` atomically, each step's rows read from its timeline."""
    rows = {step["step"]: read_rows(step["timeline"]) for step in data["steps"]}
    path = capacity_report_path(results_dir, stem)
    write_atomically(path, render_capacity_report(data, marks, rows, scenario))
    return path
