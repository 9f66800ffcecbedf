"""k6's ``abortOnFail``: thresholds checked during the run (every 2 s) that stop it when crossed."""

from __future__ import annotations

from collections.abc import Sequence

from certctl_load.k6.metrics import MetricStore
from certctl_load.k6.thresholds import Threshold, ThresholdResult, evaluate

CHECK_EVERY_S = 2.0


def abort_reason(
    thresholds: Sequence[Threshold],
    store: MetricStore,
    seconds_since_t0: float,
    windowed: Sequence[ThresholdResult] = (),
) -> str | None:
    """The first abortOnFail threshold crossed past its delayAbortEval, as a one-line reason
    (a windowed one: crossed in a window judged so far, ``windowed``)."""
    due = [t for t in thresholds if t.abort_on_fail and seconds_since_t0 >= t.delay_abort_eval_s]
    if not due:
        return None
    for result in evaluate(due, store, max(seconds_since_t0, 1e-9), windowed):
        if not result.ok:
            threshold = result.threshold
            where = "" if result.worst_start_s is None else f" in the window from {result.worst_start_s}s"
            return (
                f"aborted: threshold {threshold.label.strip()!r} on {threshold.metric_key} crossed{where} "
                f"{seconds_since_t0:.1f}s into the run (abortOnFail)"
            )
    return None
