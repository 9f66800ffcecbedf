"""The end-of-test data object in the shape k6 hands to handleSummary (and writes as JSON)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from certctl_load.k6.metrics import (
    METRICS,
    CounterAggregate,
    GaugeAggregate,
    MetricStore,
    RateAggregate,
    TrendAggregate,
)
from certctl_load.k6.thresholds import ThresholdResult, format_metric_key

# k6 always tracks this sub-metric and shows it once it has samples.
EXPECTED_RESPONSE_SUBMETRIC: tuple[str, Mapping[str, str]] = (
    "http_req_duration",
    {"expected_response": "true"},
)


@dataclass(frozen=True)
class CheckCount:
    """One check's outcome counts."""

    name: str
    passes: int
    fails: int


def _group_id(path: str) -> str:
    """k6's id of a group or check: the md5 hex digest of its path."""
    return hashlib.md5(path.encode("utf-8")).hexdigest()


def _js_number(value: float) -> float:
    """Whole floats as ints, so the JSON reads like k6's (``0``, ``3341``, not ``0.0``, ``3341.0``)."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    return value


def _metric_values(
    store: MetricStore,
    name: str,
    selector: Mapping[str, str],
    *,
    trend_stats: Sequence[str],
    duration_s: float,
) -> dict[str, float]:
    """A metric's (or sub-metric's) summary values: k6's keys for its type, trends in ms."""
    aggregate = store.select(name, selector)
    if isinstance(aggregate, TrendAggregate):
        values = aggregate.stats(trend_stats)
    elif isinstance(aggregate, RateAggregate):
        values = {"rate": aggregate.rate, "passes": aggregate.passes, "fails": aggregate.fails}
    elif isinstance(aggregate, CounterAggregate):
        rate = aggregate.count / duration_s if duration_s > 0 else 0.0
        values = {"count": aggregate.count, "rate": rate}
    else:
        assert isinstance(aggregate, GaugeAggregate)
        values = {"value": aggregate.value, "min": aggregate.min, "max": aggregate.max}
    return {key: _js_number(value) for key, value in values.items()}


def build_summary(
    store: MetricStore,
    thresholds_results: Sequence[ThresholdResult],
    *,
    trend_stats: Sequence[str],
    duration_ms: float,
    checks: Sequence[CheckCount],
    interrupted: bool = False,
    is_stdout_tty: bool = False,
    is_stderr_tty: bool = False,
    extra_state: Mapping[str, Any] | None = None,
    submetrics: Sequence[tuple[str, Mapping[str, str]]] = (),
) -> dict[str, Any]:
    """k6's handleSummary data: root_group, options, state and metrics (with sub-metrics and thresholds).

    Shown: every metric with samples, ``http_req_duration{expected_response:true}`` when it has samples,
    and every metric key a threshold names (with its parent), even without samples, as k6 does;
    ``submetrics`` adds more (name, selector) entries, e.g. one per call of a multi-call agent.
    """
    entries: dict[str, tuple[str, Mapping[str, str]]] = {}
    for name in METRICS:
        if store.select(name, {}).samples:
            entries[name] = (name, {})
    name, selector = EXPECTED_RESPONSE_SUBMETRIC
    if store.select(name, selector).samples:
        entries[format_metric_key(name, selector)] = (name, selector)
    for name, selector in submetrics:
        if store.select(name, selector).samples:
            entries.setdefault(format_metric_key(name, selector), (name, selector))
    for result in thresholds_results:
        threshold = result.threshold
        entries.setdefault(threshold.metric, (threshold.metric, {}))
        entries.setdefault(threshold.metric_key, (threshold.metric, threshold.selector))

    duration_s = duration_ms / 1000.0
    metrics: dict[str, dict[str, Any]] = {}
    for key in sorted(entries):
        name, selector = entries[key]
        definition = METRICS[name]
        metrics[key] = {
            "type": definition.type,
            "contains": definition.contains,
            "values": _metric_values(store, name, selector, trend_stats=trend_stats, duration_s=duration_s),
        }
    for result in thresholds_results:
        entry = metrics[result.threshold.metric_key]
        verdict: dict[str, Any] = {"ok": result.ok}
        if result.threshold.window_s is not None:
            verdict.update(
                worst=result.value, worst_start_s=result.worst_start_s, window_s=result.threshold.window_s
            )
        entry.setdefault("thresholds", {})[result.threshold.label] = verdict

    state: dict[str, Any] = {
        "isStdOutTTY": is_stdout_tty,
        "isStdErrTTY": is_stderr_tty,
        "testRunDurationMs": _js_number(duration_ms),
        "interrupted": interrupted,
    }
    state.update(extra_state or {})
    return {
        "root_group": {
            "name": "",
            "path": "",
            "id": _group_id(""),
            "groups": [],
            "checks": [
                {
                    "name": check.name,
                    "path": "::" + check.name,
                    "id": _group_id("::" + check.name),
                    "passes": check.passes,
                    "fails": check.fails,
                }
                for check in checks
            ],
        },
        "options": {"summaryTrendStats": list(trend_stats), "summaryTimeUnit": "", "noColor": False},
        "state": state,
        "metrics": metrics,
    }
