"""The early stop: early in a run, many heartbeats answered 429, 401 or 404, so the target plainly
cannot take the storm (a rate limiter, a rejected token, an unseeded fleet)."""

from __future__ import annotations

from certctl_load.k6.metrics import MetricStore
from certctl_load.reporting.breakdown import HINTS

# Statuses that mean the target cannot take this storm at all; seen early, they stop the run.
EARLY_STOP_STATUSES = ("429", "401", "404")
EARLY_WINDOW_S = 15.0
EARLY_MIN_COUNT = 10
EARLY_MIN_FRACTION = 0.10


def early_stop_reason(store: MetricStore, scenario: str, seconds_since_t0: float) -> str | None:
    """A one-line diagnosis when, early in the run, many requests fail with 429, 401 or 404."""
    if seconds_since_t0 > EARLY_WINDOW_S:
        return None
    total = store.counter("http_reqs", {"scenario": scenario}).count
    if not total:
        return None
    by_status = store.counts_by("http_reqs", "status", {"scenario": scenario})
    for status in EARLY_STOP_STATUSES:
        count = by_status.get(status, 0)
        if count >= EARLY_MIN_COUNT and count >= EARLY_MIN_FRACTION * total:
            return (
                f"stopped early: {int(count)} of the first {int(total)} heartbeats answered {status}; "
                f"{HINTS[status]}"
            )
    return None
