"""The search's result: what it found, its one line, ``capacity-<stem>.json``, its exit code, and
the data the HTML report draws."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from certctl_load import exitcodes
from certctl_load.capacity.options import SearchOptions
from certctl_load.capacity.search import Bracket, bracket, next_fleet
from certctl_load.capacity.step import StepResult, Verdict


class Found(enum.StrEnum):
    FOUND = "found"  # a passing and a failing fleet
    AT_LEAST = "at_least"  # no step failed: the cap (or the last step) held
    START_FAILS = "start_fails"  # the start fleet already failed
    INCONCLUSIVE = "inconclusive"  # a step's generator was saturated (or the search could not finish)


@dataclass(frozen=True)
class SearchResult:
    """The search as it stands after ``steps``."""

    result: Found
    converged: bool
    max_fleet: int | None
    max_rate: float | None
    first_failing_fleet: int | None
    interval_s: float
    heartbeat_interval_s: float
    steps: tuple[StepResult, ...]
    interrupted: bool
    exit_code: int
    line: str

    def to_json(self) -> dict[str, Any]:
        """``capacity-<stem>.json``."""
        return {
            "result": str(self.result),
            "converged": self.converged,
            "max_fleet": self.max_fleet,
            "max_rate": self.max_rate,
            "first_failing_fleet": self.first_failing_fleet,
            "interval_s": self.interval_s,
            "heartbeat_interval_s": self.heartbeat_interval_s,
            "interrupted": self.interrupted,
            "exit_code": self.exit_code,
            "line": self.line,
            "steps": [step.to_json() for step in self.steps],
        }


def _agents(fleet: int, heartbeat_interval_s: float) -> str:
    return (
        f"{fleet:,} agents ({fleet / heartbeat_interval_s:,.4g} heartbeats/s at {heartbeat_interval_s:g} s)"
    )


def _first_reason(step: StepResult) -> str:
    return step.reasons[0] if step.reasons else str(step.verdict)


def _line(
    found: Found,
    known: Bracket,
    steps: Sequence[StepResult],
    options: SearchOptions,
    converged: bool,
    heartbeat_interval_s: float,
) -> str:
    failing = next((s for s in steps if s.conclusive and not s.passed and s.fleet == known.failed), None)
    if found is Found.INCONCLUSIVE:
        last = steps[-1]
        if last.verdict is Verdict.NOT_READY:
            return f"capacity: the target is not ready: {_first_reason(last)}"
        if last.verdict is Verdict.ERROR:
            where = f"step {last.number} ({last.fleet:,} agents)"
            return f"capacity: {where} could not run: {_first_reason(last)}"
        held = f"; the server held {known.passed:,} agents" if known.passed is not None else ""
        return f"capacity: inconclusive: {_first_reason(last)}{held}"
    if found is Found.START_FAILS:
        assert failing is not None
        return (
            f"capacity: the start fleet of {_agents(failing.fleet, heartbeat_interval_s)} already fails: "
            f"{_first_reason(failing)}; lower --start-fleet"
        )
    assert known.passed is not None
    if found is Found.AT_LEAST:
        why = (
            f"--max-fleet {options.max_fleet:,} reached"
            if known.passed >= options.max_fleet
            else f"the steps ran out (--max-steps {options.max_steps})"
        )
        return (
            f"capacity: at least {_agents(known.passed, heartbeat_interval_s)} within the thresholds; "
            f"no step failed ({why})"
        )
    assert failing is not None
    line = (
        f"capacity: {_agents(known.passed, heartbeat_interval_s)} within the thresholds; "
        f"{failing.fleet:,} failed {_first_reason(failing)}"
    )
    if not converged:
        line += (
            f"; not converged: the steps ran out (--max-steps {options.max_steps}) with the ceiling "
            f"between {known.passed:,} and {failing.fleet:,} (tolerance {options.tolerance:g})"
        )
    return line


def search_result(
    options: SearchOptions,
    steps: Sequence[StepResult],
    *,
    heartbeat_interval_s: float,
    interrupted: bool = False,
) -> SearchResult:
    """The result of the search after ``steps`` (those so far when ``interrupted``)."""
    conclusive = [(s.fleet, s.passed) for s in steps if s.conclusive]
    known = bracket(conclusive)
    last = steps[-1] if steps else None
    # The step that stopped the search before its end (an interrupted one is not judged).
    stopped = (
        last if last is not None and not last.conclusive and last.verdict is not Verdict.INTERRUPTED else None
    )
    if stopped is not None or known.passed is None and known.failed is None:
        found = Found.INCONCLUSIVE
    elif known.passed is None:
        found = Found.START_FAILS
    elif known.failed is None:
        found = Found.AT_LEAST
    else:
        found = Found.FOUND
    converged = found is Found.FOUND and known.within(options.tolerance)
    if found is Found.AT_LEAST:
        converged = known.passed is not None and known.passed >= options.max_fleet
    if interrupted:
        code = exitcodes.INTERRUPTED
    elif stopped is not None and stopped.verdict is Verdict.NOT_READY:
        code = exitcodes.TARGET_NOT_READY
    elif stopped is not None and stopped.verdict is Verdict.ERROR:
        code = stopped.exit_code if stopped.exit_code == exitcodes.INVALID_CONFIG else exitcodes.HARNESS_ERROR
    elif found is Found.INCONCLUSIVE:
        code = exitcodes.INCONCLUSIVE
    elif found is Found.START_FAILS:
        code = exitcodes.THRESHOLDS_CROSSED
    else:
        code = exitcodes.OK
    if steps:
        line = _line(found, known, steps, options, converged, heartbeat_interval_s)
    else:
        line = "capacity: no step ran"
    if interrupted:
        judged = sum(1 for step in steps if step.conclusive)
        line = f"capacity: interrupted after {judged} judged steps; {line.removeprefix('capacity: ')}"
    return SearchResult(
        result=found,
        converged=converged,
        max_fleet=known.passed,
        max_rate=None if known.passed is None else known.passed / heartbeat_interval_s,
        first_failing_fleet=known.failed,
        interval_s=options.interval_s,
        heartbeat_interval_s=heartbeat_interval_s,
        steps=tuple(steps),
        interrupted=interrupted,
        exit_code=code,
        line=line,
    )


def search_over(options: SearchOptions, steps: Sequence[StepResult]) -> bool:
    """Whether no further step is to run: the last one stopped the search, or the search is done."""
    if steps and not steps[-1].conclusive:
        return True
    return next_fleet(options, [(s.fleet, s.passed) for s in steps]) is None


def step_line(step: StepResult) -> str:
    """The line printed as a step finishes."""
    f = step.figures

    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:,.1f} ms"

    errors = "-" if f.error_rate is None else f"{f.error_rate:.2%}"
    fraction = f.completed_fraction
    kept = f"{f.completed:,}/{f.sent:,}" + ("" if fraction is None else f" ({fraction:.1%})")
    lag = ms(f.generator_lag_p99_ms)
    verdict = str(step.verdict).upper().replace("_", " ")
    why = f": {'; '.join(step.reasons)}" if step.reasons else ""
    return (
        f"step {step.number}: {step.fleet:,} agents, {step.rate:,.4g} heartbeats/s: p95 {ms(f.p95_ms)}, "
        f"p99 {ms(f.p99_ms)}, errors {errors}, dropped {f.dropped:,}, completed/sent {kept}, "
        f"generator lag p99 {lag}: {verdict}{why}"
    )


def report_data(result: SearchResult) -> dict[str, Any]:
    """What ``report-capacity-<stem>.html`` draws: the result, and per step (in the order run) its
    fleet, rate, figures, verdict and where its per-second rows are (None: it kept none)."""
    return {
        "result": str(result.result),
        "line": result.line,
        "converged": result.converged,
        "interrupted": result.interrupted,
        "exit_code": result.exit_code,
        "max_fleet": result.max_fleet,
        "first_failing_fleet": result.first_failing_fleet,
        "interval_s": result.interval_s,
        "heartbeat_interval_s": result.heartbeat_interval_s,
        "steps": [
            {
                "step": step.number,
                "fleet": step.fleet,
                "rate": step.rate,
                "p95_ms": step.figures.p95_ms,
                "p99_ms": step.figures.p99_ms,
                "error_rate": step.figures.error_rate,
                "dropped": step.figures.dropped,
                "sent": step.figures.sent,
                "completed": step.figures.completed,
                "completed_per_s": step.figures.completed_per_s,
                "generator_lag_p99_ms": step.figures.generator_lag_p99_ms,
                "verdict": str(step.verdict),
                "reasons": list(step.reasons),
                "timeline": step.timeline,
            }
            for step in result.steps
        ],
    }
