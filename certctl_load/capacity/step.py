"""One step of the search judged from the files its storm wrote, never from its output: the
scenario's thresholds on the hold alone, no beat dropped in the hold, and a server that kept up
(responses completed in the hold at least 99% of the requests sent in it). A step whose
generator was saturated and that would fail is inconclusive, never the server's failure."""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from certctl_load import exitcodes
from certctl_load.runtime.generator import REMEDY

MIN_COMPLETED_FRACTION = 0.99
# The exit codes of a storm that ran its course, judged from its summary.
JUDGED_CODES = (exitcodes.OK, exitcodes.THRESHOLDS_CROSSED, exitcodes.INCONCLUSIVE)
_SCENARIO_TAG = re.compile(r"(?<=[{,])scenario:[^,}]*,?")
_METHOD = re.compile(r"\s*([a-z]+(?:\(\s*[\d.]+\s*\))?)")


class Verdict(enum.StrEnum):
    """A step's verdict. ``pass`` and ``fail`` are conclusive; the others stop the search."""

    PASS = "pass"
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"  # the generator was saturated and the step would have failed
    NOT_READY = "not_ready"  # the first step: preflight failed or a 429/401/404 storm (exit 2)
    ERROR = "error"  # the storm could not run: a harness error or a bad configuration
    INTERRUPTED = "interrupted"


@dataclass(frozen=True)
class StepFigures:
    """What a step's summary says about its hold."""

    p95_ms: float | None = None
    p99_ms: float | None = None
    error_rate: float | None = None
    dropped: int = 0
    sent: int = 0
    completed: int = 0
    generator_lag_p99_ms: float | None = None
    hold_s: float | None = None  # the hold's length, when the summary has one
    saturated: bool = False
    generator_reasons: tuple[str, ...] = ()

    @property
    def completed_fraction(self) -> float | None:
        return self.completed / self.sent if self.sent else None

    @property
    def completed_per_s(self) -> float | None:
        """Responses completed in the hold per second of it (None without a hold)."""
        return self.completed / self.hold_s if self.hold_s else None


@dataclass(frozen=True)
class StepResult:
    """One step: its fleet and offered heartbeat rate, its figures, verdict and why."""

    number: int
    fleet: int
    rate: float  # heartbeats per second offered
    verdict: Verdict
    reasons: tuple[str, ...] = ()
    figures: StepFigures = field(default_factory=StepFigures)
    exit_code: int | None = None  # the storm's
    results_dir: str = ""  # where the step's summaries are
    timeline: str | None = None  # its per-second rows, when the storm wrote them

    @property
    def conclusive(self) -> bool:
        return self.verdict in (Verdict.PASS, Verdict.FAIL)

    @property
    def passed(self) -> bool:
        return self.verdict is Verdict.PASS

    def to_json(self) -> dict[str, Any]:
        figures = self.figures
        return {
            "step": self.number,
            "fleet": self.fleet,
            "rate": self.rate,
            "verdict": str(self.verdict),
            "reasons": list(self.reasons),
            "p95_ms": figures.p95_ms,
            "p99_ms": figures.p99_ms,
            "error_rate": figures.error_rate,
            "dropped": figures.dropped,
            "sent": figures.sent,
            "completed": figures.completed,
            "generator_lag_p99_ms": figures.generator_lag_p99_ms,
            "generator_saturated": figures.saturated,
            "exit_code": self.exit_code,
            "results_dir": self.results_dir,
            "timeline": self.timeline,
        }


def _number(values: Mapping[str, Any], key: str) -> float | None:
    value = values.get(key)
    return float(value) if isinstance(value, int | float) else None


def figures_of(summary: Mapping[str, Any]) -> StepFigures:
    """The hold's figures in a storm's summary JSON (run with --warmup)."""
    metrics = summary.get("metrics", {})
    duration = metrics.get("http_req_duration", {}).get("values", {})
    failed = metrics.get("http_req_failed", {}).get("values", {})
    dropped = metrics.get("dropped_iterations", {}).get("values", {})
    hold = summary.get("hold", {})
    generator = summary.get("generator", {})
    return StepFigures(
        p95_ms=_number(duration, "p(95)"),
        p99_ms=_number(duration, "p(99)"),
        error_rate=_number(failed, "rate"),
        dropped=int(dropped.get("count", 0)),
        sent=int(hold.get("sent", 0)),
        completed=int(hold.get("completed", 0)),
        generator_lag_p99_ms=_number(generator.get("lag_ms", {}), "p99"),
        hold_s=_number(hold, "duration_s"),
        saturated=bool(generator.get("saturated", False)),
        generator_reasons=tuple(generator.get("reasons", ())),
    )


def format_measured(metric: Mapping[str, Any], method: str) -> str:
    """A threshold's measured value as the step line shows it: ``612 ms``, ``0.52%``, ``12``."""
    value = metric.get("values", {}).get(method)
    if not isinstance(value, int | float):
        return "no value"
    if method == "rate" and metric.get("type") == "rate":
        return f"{value:.2%}"
    if metric.get("contains") == "time":
        return f"{value:,.0f} ms" if value >= 10 else f"{value:.2f} ms"
    return f"{value:,.6g}"


def _shown_key(key: str) -> str:
    """How a threshold's metric is named in a reason: ``http_req_duration`` not at all, the
    scenario tag (one scenario per storm) left out: ``http_req_failed``,
    ``http_req_duration{name:work_poll}``."""
    key = _SCENARIO_TAG.sub("", key).replace(",}", "}").replace("{}", "")
    return "" if key == "http_req_duration" else f"{key} "


def crossed_thresholds(summary: Mapping[str, Any]) -> list[str]:
    """Every crossed threshold with its measured value, such as ``p(95)<500 at 612 ms``."""
    crossed = []
    for key, metric in summary.get("metrics", {}).items():
        for expression in sorted(metric.get("thresholds") or {}):
            if metric["thresholds"][expression].get("ok", True):
                continue
            match = _METHOD.match(expression)
            method = match.group(1).replace(" ", "") if match else ""
            measured = format_measured(metric, method)
            crossed.append(f"{_shown_key(key)}{expression.strip()} at {measured}")
    return crossed


def server_failures(summary: Mapping[str, Any], figures: StepFigures) -> list[str]:
    """Why the server did not hold the step, by the search's rules (empty: it held), each worded
    like a crossed threshold: what had to hold, and the measured value."""
    reasons = crossed_thresholds(summary)
    if figures.dropped:
        reasons.append(f"dropped==0 at {figures.dropped:,} beats dropped in the hold")
    fraction = figures.completed_fraction
    if fraction is None:
        reasons.append("sent>0 at no request sent in the hold")
    elif fraction < MIN_COMPLETED_FRACTION:
        reasons.append(
            f"completed>={MIN_COMPLETED_FRACTION:.0%} of sent at {fraction:.1%} (the server did not keep up: "
            f"{figures.completed:,} of {figures.sent:,} requests sent in the hold completed in it)"
        )
    return reasons


def generator_line(fleet: int, figures: StepFigures) -> str:
    """The one line an inconclusive step ends the search with: the fleet and what to add."""
    why = "; ".join(figures.generator_reasons) or "saturated"
    return f"the load generator could not carry {fleet:,} agents ({why}); {REMEDY}"


def judge_step(
    number: int,
    fleet: int,
    rate: float,
    *,
    exit_code: int,
    summary: Mapping[str, Any] | None,
    first: bool,
    message: str = "",
) -> StepResult:
    """A step's verdict from its storm's exit code and summary JSON (None when none was written);
    ``message``: the storm's own error line, for a step that did not run to its end. A target not
    ready on the ``first`` step stops the search (exit 2); later, it fails the step with its line."""
    figures = figures_of(summary) if summary is not None else StepFigures()
    stop_reason = (summary or {}).get("state", {}).get("stopReason") or message

    def result(verdict: Verdict, reasons: list[str]) -> StepResult:
        return StepResult(number, fleet, rate, verdict, tuple(r for r in reasons if r), figures, exit_code)

    if exit_code == exitcodes.INTERRUPTED:
        return result(Verdict.INTERRUPTED, ["interrupted"])
    if exit_code == exitcodes.TARGET_NOT_READY:
        return result(
            Verdict.NOT_READY if first else Verdict.FAIL, [stop_reason or "the target was not ready"]
        )
    if summary is None or exit_code not in (
        exitcodes.OK,
        exitcodes.THRESHOLDS_CROSSED,
        exitcodes.INCONCLUSIVE,
    ):
        return result(Verdict.ERROR, [message or f"the storm exited with code {exit_code}"])
    reasons = server_failures(summary, figures)
    if exit_code == exitcodes.THRESHOLDS_CROSSED and not reasons:
        reasons.append(stop_reason or "the storm failed (exit 99): a worker was lost or nothing was sent")
    if not reasons:
        return result(Verdict.PASS, [])
    if figures.saturated:
        return result(Verdict.INCONCLUSIVE, [generator_line(fleet, figures), *reasons])
    return result(Verdict.FAIL, reasons)
