"""The end of a run: exact verdict, k6-shaped summaries on disk and on stdout, the exit code.

It reads a run's facts (:class:`RunFacts`), never the run itself, so the run can call it.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from certctl_load import exitcodes
from certctl_load.k6.metrics import MetricStore
from certctl_load.k6.thresholds import ThresholdResult, evaluate
from certctl_load.model.calls import CallSpec
from certctl_load.model.config import RunConfig
from certctl_load.reporting.breakdown import failure_breakdown, render_breakdown
from certctl_load.reporting.files import write_atomically
from certctl_load.reporting.generator_text import render_generator
from certctl_load.reporting.html_report import Verdict, write_report
from certctl_load.reporting.junit import junit_path, write_junit
from certctl_load.reporting.summary import CheckCount, build_summary
from certctl_load.reporting.text_summary import render_text_summary
from certctl_load.reporting.verdict_table import render_verdict_table, render_windows
from certctl_load.runtime.generator import Health

logger = logging.getLogger("certctl_load")


@dataclass(frozen=True)
class Outcome:
    """What a finished run decided and where it wrote it."""

    exit_code: int
    results: list[ThresholdResult]
    requests: int
    json_path: str | None  # None when the run was refused before any load
    text_path: str | None
    # The verdict table and where the summaries are: the last lines a CI log shows.
    closing_lines: str = ""
    report_path: str | None = None  # report-<stem>.html


@dataclass(frozen=True)
class RunFacts:
    """What a run knows when it ends, for the judgement."""

    config: RunConfig
    calls: tuple[CallSpec, ...]
    store: MetricStore
    duration_s: float
    interrupted: bool
    harness_errors: int
    stop_reason: str | None
    abort_reason: str | None
    refusal: str | None
    incidents: tuple[str, ...]
    generator: Health
    generator_workers: Mapping[str, Health]
    connect: Mapping[str, Any] | None
    dropped: int
    # The per-second figures (timeline-<stem>.json's content) the report charts; None: no charts.
    timeline: Mapping[str, Any] | None = None
    hold: Mapping[str, float] | None = None  # with --warmup: the hold's window and counts
    windowed: tuple[ThresholdResult, ...] = ()  # the windowed thresholds' verdicts (the timeline's)
    timeline_path: Path | None = None


def exit_code_for(
    results: list[ThresholdResult],
    requests: int,
    *,
    interrupted: bool,
    errors: int,
    stopped_early: bool,
    fleet_lost: bool = False,
    aborted: bool = False,
    refused: bool = False,
    saturated: bool = False,
    dropped: int = 0,
) -> int:
    """Highest first: 105 when interrupted; 104 when refused before any load; 2 when stopped
    early as not ready; 1 after a harness error (on any process); 99 when part of the fleet was
    lost or no request was sent; 3 (inconclusive) when the generator was saturated and a
    threshold was crossed or a beat dropped; 99 on a crossed threshold (also one that aborted
    the run); else 0."""
    if interrupted:
        return exitcodes.INTERRUPTED
    if refused:
        return exitcodes.INVALID_CONFIG
    if stopped_early:
        return exitcodes.TARGET_NOT_READY
    if errors:
        return exitcodes.HARNESS_ERROR
    if requests == 0 or fleet_lost:
        return exitcodes.THRESHOLDS_CROSSED
    crossed = aborted or not all(result.ok for result in results)
    if saturated and (crossed or dropped):
        return exitcodes.INCONCLUSIVE
    return exitcodes.THRESHOLDS_CROSSED if crossed else exitcodes.OK


def generator_json(facts: RunFacts) -> dict[str, Any]:
    """The summary's ``generator`` key: the health figures, the connect phase, each worker's."""
    block: dict[str, Any] = {**facts.generator.to_json(), "connect": facts.connect}
    if facts.generator_workers:
        block["workers"] = [
            {"worker": name, **health.to_json()} for name, health in facts.generator_workers.items()
        ]
    return block


def verdict_line(generator: Health, code: int) -> str | None:
    """What a saturated generator means for this verdict, in one line (None when it was not)."""
    if not generator.saturated:
        return None
    if code == exitcodes.INCONCLUSIVE:
        return f"inconclusive: {generator.line()}"
    return (
        f"{generator.line()}; the thresholds held and no beat was dropped, so the verdict stands "
        "(its figures are upper bounds)"
    )


def _extra_state(facts: RunFacts) -> dict[str, object] | None:
    extra: dict[str, object] = {}
    if facts.stop_reason or facts.abort_reason:
        extra["stopReason"] = facts.stop_reason or facts.abort_reason
    if facts.incidents:
        extra["incidents"] = list(facts.incidents)
    return extra or None


def judge(facts: RunFacts) -> Outcome:
    """Judge the run, write both summaries and the HTML report atomically, print the text summary;
    returns the outcome, whose closing lines (the verdict table, the paths) the caller prints last.
    A run refused before any load writes nothing: it logs its line and exits 104."""
    if facts.refusal is not None:
        logger.error("%s", facts.refusal)
        code = exitcodes.INTERRUPTED if facts.interrupted else exitcodes.INVALID_CONFIG
        return Outcome(code, [], 0, None, None)
    config = facts.config
    scenario = config.scenario
    duration_s = facts.duration_s
    store = facts.store
    calls = facts.calls
    results = evaluate(list(scenario.thresholds), store, duration_s, facts.windowed)
    requests = int(store.counter("http_reqs", {}).count)
    checks = []
    for call in calls:
        counts = store.rate("checks", {"check": call.check})
        checks.append(CheckCount(call.check, counts.passes, counts.fails))
    per_call = [
        (metric, {"name": call.name})
        for call in calls
        if len(calls) > 1
        for metric in ("http_req_duration", "http_req_failed", "http_reqs", "dropped_iterations")
    ]
    summary = build_summary(
        store,
        results,
        trend_stats=scenario.summary_trend_stats,
        duration_ms=duration_s * 1000.0,
        checks=checks,
        submetrics=per_call,
        interrupted=facts.interrupted,
        is_stdout_tty=sys.stdout.isatty(),
        is_stderr_tty=sys.stderr.isatty(),
        extra_state=_extra_state(facts),
    )
    failures = failure_breakdown(store, scenario.name)
    summary["failures"] = [{"kind": row.kind, "count": row.count, "hint": row.hint} for row in failures]
    summary["generator"] = generator_json(facts)
    if facts.hold is not None:
        summary["hold"] = dict(facts.hold)
    code = exit_code_for(
        results,
        requests,
        interrupted=facts.interrupted,
        errors=facts.harness_errors,
        stopped_early=facts.stop_reason is not None,
        fleet_lost=bool(facts.incidents),
        aborted=facts.abort_reason is not None,
        saturated=facts.generator.saturated,
        dropped=facts.dropped,
    )
    text = render_text_summary(summary, indent=" ", colors=False)
    text += "\n\n" + render_generator(summary["generator"])
    if facts.hold is not None:
        hold = facts.hold
        text += (
            f"\n\nwarm-up: the first {hold['from_s']:g}s were not judged; in the {hold['duration_s']:g}s "
            f"hold {hold['sent']:,.0f} requests were sent and {hold['completed']:,.0f} completed"
        )
    windows = render_windows(results)
    if windows:
        text += "\n\n" + windows
    breakdown = render_breakdown(failures)
    if breakdown:
        text += "\n\n" + breakdown
    if facts.stop_reason or facts.abort_reason:
        text += "\n\n" + (facts.stop_reason or facts.abort_reason or "")
    for incident in facts.incidents:
        text += f"\n\nthe run is incomplete: {incident}"
    generator_line = verdict_line(facts.generator, code)
    if generator_line:
        text += "\n\n" + generator_line
    results_dir = config.results_dir
    json_path = results_dir / f"summary-{scenario.file_stem}.json"
    text_path = results_dir / f"summary-{scenario.file_stem}.txt"
    write_atomically(json_path, json.dumps(summary, indent=2) + "\n")
    write_atomically(text_path, text)
    write_junit(
        junit_path(results_dir, scenario),
        scenario.name,
        results,
        duration_s=duration_s,
        requests=requests,
        inconclusive=generator_line if code == exitcodes.INCONCLUSIVE else None,
    )
    report = write_report(
        results_dir, scenario.file_stem, summary, facts.timeline, config, Verdict(code, results, requests)
    )
    print(text, flush=True)
    closing = [render_verdict_table(results)]
    if requests == 0:
        closing.append("no heartbeat was sent: the run cannot pass")
    closing.append(f"summaries: {json_path} {text_path} {junit_path(results_dir, scenario)}")
    per_second = "" if facts.timeline_path is None else f" (per second: {facts.timeline_path})"
    closing.append(f"report: {report}{per_second}")
    return Outcome(code, results, requests, str(json_path), str(text_path), "\n".join(closing), str(report))
