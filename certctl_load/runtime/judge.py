"""The end of a run: exact verdict, k6-shaped summaries on disk and on stdout, the exit code."""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import dataclass

from certctl_load import exitcodes
from certctl_load.k6.thresholds import ThresholdResult, evaluate
from certctl_load.reporting.breakdown import failure_breakdown, render_breakdown
from certctl_load.reporting.files import write_atomically
from certctl_load.reporting.junit import junit_path, write_junit
from certctl_load.reporting.summary import CheckCount, build_summary
from certctl_load.reporting.text_summary import render_text_summary
from certctl_load.reporting.verdict_table import render_verdict_table
from certctl_load.runtime.run import Storm

logger = logging.getLogger("certctl_load")


@dataclass(frozen=True)
class Outcome:
    """What a finished run decided and where it wrote it."""

    exit_code: int
    results: list[ThresholdResult]
    requests: int
    json_path: str
    text_path: str


def exit_code_for(
    results: list[ThresholdResult],
    requests: int,
    *,
    interrupted: bool,
    errors: int,
    stopped_early: bool,
    run_failed: bool = False,
) -> int:
    """105 when interrupted; 2 when stopped early as not ready; 1 after a harness error;
    99 on a crossed threshold (also one that aborted the run), when no request was sent or
    when part of the fleet was lost; else 0."""
    if interrupted:
        return exitcodes.INTERRUPTED
    if stopped_early:
        return exitcodes.TARGET_NOT_READY
    if errors:
        return exitcodes.HARNESS_ERROR
    if requests == 0 or run_failed or not all(result.ok for result in results):
        return exitcodes.THRESHOLDS_CROSSED
    return exitcodes.OK


def _extra_state(storm: Storm) -> dict[str, object] | None:
    extra: dict[str, object] = {}
    if storm.stop_reason or storm.abort_reason:
        extra["stopReason"] = storm.stop_reason or storm.abort_reason
    if storm.incidents:
        extra["incidents"] = list(storm.incidents)
    return extra or None


def finalize(storm: Storm, now: float, *, interrupted: bool) -> Outcome:
    """Judge the run, write both summaries atomically, print them; returns the outcome."""
    config = storm.config
    scenario = config.scenario
    duration_s = storm.test_run_duration_s(now)
    store = storm.store
    results = evaluate(list(scenario.thresholds), store, duration_s)
    requests = int(store.select("http_reqs", {}).count)
    checks = []
    for call in config.calls:
        counts = store.select("checks", {"check": call.check})
        checks.append(CheckCount(call.check, counts.passes, counts.fails))
    per_call = [
        (metric, {"name": call.name})
        for call in config.calls
        if len(config.calls) > 1
        for metric in ("http_req_duration", "http_req_failed", "http_reqs", "dropped_iterations")
    ]
    summary = build_summary(
        store,
        results,
        trend_stats=scenario.summary_trend_stats,
        duration_ms=duration_s * 1000.0,
        checks=checks,
        submetrics=per_call,
        interrupted=interrupted,
        is_stdout_tty=sys.stdout.isatty(),
        is_stderr_tty=sys.stderr.isatty(),
        extra_state=_extra_state(storm),
    )
    failures = failure_breakdown(store, scenario.name)
    summary["failures"] = [{"kind": row.kind, "count": row.count, "hint": row.hint} for row in failures]
    text = render_text_summary(summary, indent=" ", colors=False)
    breakdown = render_breakdown(failures)
    if breakdown:
        text += "\n\n" + breakdown
    if storm.stop_reason or storm.abort_reason:
        text += "\n\n" + (storm.stop_reason or storm.abort_reason or "")
    for incident in storm.incidents:
        text += f"\n\nthe run is incomplete: {incident}"
    results_dir = config.results_dir
    json_path = results_dir / f"summary-{scenario.file_stem}.json"
    text_path = results_dir / f"summary-{scenario.file_stem}.txt"
    write_atomically(json_path, json.dumps(summary, indent=2) + "\n")
    write_atomically(text_path, text)
    write_junit(
        junit_path(results_dir, scenario), scenario.name, results, duration_s=duration_s, requests=requests
    )
    code = exit_code_for(
        results,
        requests,
        interrupted=interrupted,
        errors=storm.harness_errors,
        stopped_early=storm.stop_reason is not None,
        run_failed=bool(storm.incidents) or storm.abort_reason is not None,
    )
    print(text, flush=True)
    print(render_verdict_table(results), flush=True)
    if requests == 0:
        print("no heartbeat was sent: the run cannot pass", flush=True)
    print(f"summaries: {json_path} {text_path}", flush=True)
    return Outcome(code, results, requests, str(json_path), str(text_path))
