"""k6 thresholds: the grammar (metric keys, expressions, the object form), validation and evaluation."""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from certctl_load.errors import ConfigError
from certctl_load.k6.durations import parse_duration_seconds
from certctl_load.k6.metrics import (
    KNOWN_TAGS,
    METRICS,
    Aggregate,
    CounterAggregate,
    GaugeAggregate,
    MetricStore,
    RateAggregate,
    TrendAggregate,
)
from certctl_load.k6.percentiles import parse_percentile_stat

# k6 scans for the operators in this order, so "<=" wins over "<" and "===" over "==".
OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le,
    "<": operator.lt,
    ">=": operator.ge,
    ">": operator.gt,
    "===": operator.eq,
    "==": operator.eq,
    "!=": operator.ne,
}
# Aggregation methods per metric type; "p" stands for p(N).
METHODS: dict[str, tuple[str, ...]] = {
    "trend": ("avg", "min", "max", "med", "p"),
    "rate": ("rate",),
    "counter": ("count", "rate"),
    "gauge": ("value",),
}
OBJECT_KEYS = ("threshold", "abortOnFail", "delayAbortEval", "window")
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


@dataclass(frozen=True)
class Expression:
    """``method op value``; method is avg, min, max, med, count, rate, value, or p with its percentile."""

    method: str
    percentile: float | None
    op: str
    value: float
    text: str

    def method_text(self) -> str:
        """The method as written in k6's grammar, e.g. ``p(99.9)``."""
        return f"p({self.percentile:g})" if self.method == "p" else self.method


@dataclass(frozen=True)
class Threshold:
    """One expression on one metric key (``metric_key`` normalised: ``name{tag:value,...}``, no spaces)."""

    metric_key: str
    metric: str
    selector: Mapping[str, str]
    expression: Expression
    abort_on_fail: bool = False
    delay_abort_eval_s: float = 0.0
    window_s: int | None = None  # judged in every window of this many seconds (not a k6 key)

    @property
    def label(self) -> str:
        """Its key in the summaries: the expression as written, windowed with its window
        (``p(95)<500 over 30s``, so a plain and a windowed one on one metric never collide)."""
        text = self.expression.text
        return text if self.window_s is None else f"{text.strip()} over {self.window_s}s"


@dataclass(frozen=True)
class ThresholdResult:
    """A threshold's measured value (None: a rate without samples, which passes as in k6; windowed:
    the worst window's value, None when no window had data) and verdict; windowed, the worst
    window's start in whole seconds since t0."""

    threshold: Threshold
    value: float | None
    ok: bool
    worst_start_s: int | None = None


def parse_metric_key(key: str) -> tuple[str, dict[str, str]]:
    """``metric{tag:value,...}`` to the metric name and its selector; ConfigError naming the key."""
    opening, closing = key.find("{"), key.rfind("}")
    if opening < 0 and closing < 0:
        name, selector = key.strip(), {}
    else:
        if opening < 0 or closing < 0 or closing < opening or key[closing + 1 :].strip():
            raise ConfigError(f"threshold {key!r}: malformed metric key (unmatched or misplaced braces)")
        name, selector = key[:opening].strip(), _parse_selector(key, key[opening + 1 : closing])
    if name not in METRICS:
        raise ConfigError(f"threshold {key!r}: unknown metric {name!r} (known: {', '.join(METRICS)})")
    return name, selector


def _parse_selector(key: str, inner: str) -> dict[str, str]:
    selector: dict[str, str] = {}
    for pair in inner.split(","):
        tag, colon, value = pair.partition(":")
        tag, value = tag.strip().strip("\"'"), value.strip().strip("\"'")
        if not colon or not tag or not value:
            raise ConfigError(f"threshold {key!r}: malformed metric key ({pair.strip()!r} is not tag:value)")
        if tag not in KNOWN_TAGS:
            raise ConfigError(
                f"threshold {key!r}: unknown tag {tag!r} (known: {', '.join(sorted(KNOWN_TAGS))})"
            )
        if tag in selector:
            raise ConfigError(f"threshold {key!r}: tag {tag!r} is given twice")
        selector[tag] = value
    return selector


def format_metric_key(name: str, selector: Mapping[str, str]) -> str:
    """The normalised key k6 names a sub-metric by: ``name{tag:value,...}`` without spaces."""
    if not selector:
        return name
    return name + "{" + ",".join(f"{tag}:{value}" for tag, value in selector.items()) + "}"


def parse_expression(text: str) -> Expression:
    """``p(95)<500`` and the like, as k6 scans them; ConfigError naming the expression as written."""
    if not isinstance(text, str):
        raise ConfigError(f"expression {text!r} is not a string")
    for op in OPERATORS:
        method_text, found, value_text = text.partition(op)
        if found:
            break
    else:
        raise ConfigError(f"expression {text!r} is malformed: no operator (use {' '.join(OPERATORS)})")
    method_text, value_text = method_text.strip(), value_text.strip()
    if not _NUMBER.fullmatch(value_text):
        raise ConfigError(f"expression {text!r} is malformed: {value_text!r} is not a number")
    if method_text in ("avg", "min", "max", "med", "count", "rate", "value"):
        return Expression(method_text, None, op, float(value_text), text)
    p = parse_percentile_stat(method_text)
    if p is None:
        raise ConfigError(
            f"expression {text!r} is malformed: unknown method {method_text!r}"
            " (use avg, min, max, med, p(N) with 0 <= N <= 100, rate, count or value)"
        )
    return Expression("p", p, op, float(value_text), text)


def parse_thresholds(spec: Mapping[str, Any]) -> list[Threshold]:
    """k6's ``thresholds`` option: metric key to a list of expressions (strings or object form)."""
    thresholds: list[Threshold] = []
    for key, items in spec.items():
        if not isinstance(key, str):
            raise ConfigError(f"threshold metric {key!r} is not a string")
        name, selector = parse_metric_key(key)
        if isinstance(items, str | Mapping) or not isinstance(items, Sequence):
            raise ConfigError(f"threshold {key!r}: expected a list of expressions, got {items!r}")
        metric_key = format_metric_key(name, selector)
        for item in items:
            try:
                thresholds.append(_parse_item(metric_key, name, selector, item))
            except ConfigError as error:
                raise ConfigError(f"threshold {key!r}: {error}") from None
    return thresholds


def _parse_item(metric_key: str, name: str, selector: dict[str, str], item: Any) -> Threshold:
    abort_on_fail, delay_s, window_s = False, 0.0, None
    if isinstance(item, Mapping):
        unknown = [str(k) for k in item if k not in OBJECT_KEYS]
        if unknown or "threshold" not in item:
            problem = f"unknown key {unknown[0]!r}" if unknown else "no 'threshold' key"
            raise ConfigError(f"expression object {dict(item)!r}: {problem} (keys: {', '.join(OBJECT_KEYS)})")
        abort_on_fail = item.get("abortOnFail", False)
        if not isinstance(abort_on_fail, bool):
            raise ConfigError(
                f"expression {item['threshold']!r}: abortOnFail {abort_on_fail!r} is not true or false"
            )
        if "delayAbortEval" in item:
            try:
                delay_s = parse_duration_seconds(item["delayAbortEval"])
            except ConfigError as error:
                raise ConfigError(f"expression {item['threshold']!r}: delayAbortEval: {error}") from None
        if "window" in item:
            window_s = parse_window(item["window"], item["threshold"])
        item = item["threshold"]
    elif not isinstance(item, str):
        raise ConfigError(f"expression {item!r} must be a string or an object with a 'threshold' key")
    expression = parse_expression(item)
    metric_type = METRICS[name].type
    if expression.method not in METHODS[metric_type]:
        methods = ", ".join("p(N)" if m == "p" else m for m in METHODS[metric_type])
        raise ConfigError(
            f"expression {expression.text!r}: method {expression.method_text()!r}"
            f" does not apply to a {metric_type} metric (use {methods})"
        )
    return Threshold(metric_key, name, selector, expression, abort_on_fail, delay_s, window_s)


def parse_window(value: Any, expression: Any) -> int:
    """A ``window``: whole seconds, at least 1 (whether it is shorter than the run is checked once
    the run's duration is known: :func:`check_windows`)."""
    try:
        seconds = parse_duration_seconds(value)
    except ConfigError as error:
        raise ConfigError(f"expression {expression!r}: window: {error}") from None
    if seconds < 1 or not seconds.is_integer():
        raise ConfigError(
            f"expression {expression!r}: window {value!r} is not a whole number of seconds >= 1s"
        )
    return int(seconds)


def check_windows(thresholds: Sequence[Threshold], duration_s: float) -> None:
    """ConfigError naming the first window not shorter than the run's ``duration_s``."""
    for threshold in thresholds:
        if threshold.window_s is not None and threshold.window_s >= duration_s:
            raise ConfigError(
                f"threshold {threshold.metric_key!r}: expression {threshold.expression.text!r}: window "
                f"{threshold.window_s}s is not shorter than the run's duration ({duration_s:g}s)"
            )


def _percent(expression: Expression) -> float:
    """N of p(N), 50 for med."""
    return 50.0 if expression.percentile is None else expression.percentile


def measure(expressions: Sequence[Expression], aggregate: Aggregate, duration_s: float) -> list[float | None]:
    """The values expressions on one metric key compare: trends in ms (every percentile found in one
    walk), rates as a fraction (None without samples), counters as count or count/s."""
    if isinstance(aggregate, TrendAggregate):
        named = {"avg": aggregate.avg, "min": aggregate.min, "max": aggregate.max}
        found = iter(aggregate.percentiles([_percent(e) for e in expressions if e.method not in named]))
        return [named[e.method] if e.method in named else next(found) for e in expressions]
    if isinstance(aggregate, RateAggregate):
        return [aggregate.rate if aggregate.samples else None for _ in expressions]
    if isinstance(aggregate, CounterAggregate):
        rate = aggregate.count / duration_s if duration_s > 0 else 0.0
        return [aggregate.count if e.method == "count" else rate for e in expressions]
    assert isinstance(aggregate, GaugeAggregate)
    return [aggregate.value for _ in expressions]


def holds(expression: Expression, value: float) -> bool:
    """Whether ``value`` satisfies ``expression``."""
    return OPERATORS[expression.op](value, expression.value)


def evaluate(
    thresholds: Sequence[Threshold],
    store: MetricStore,
    duration_s: float,
    windowed: Sequence[ThresholdResult] = (),
) -> list[ThresholdResult]:
    """Judge every threshold over all samples so far, as k6's final check does (each metric key once).
    A windowed threshold takes its result from ``windowed`` (by metric key and label; none yet: it
    holds so far, with no value)."""
    by_key: dict[str, list[int]] = {}
    given = {(r.threshold.metric_key, r.threshold.label): r for r in windowed}
    for index, threshold in enumerate(thresholds):
        if threshold.window_s is None:
            by_key.setdefault(threshold.metric_key, []).append(index)
    values: list[float | None] = [None] * len(thresholds)
    for indexes in by_key.values():
        first = thresholds[indexes[0]]
        aggregate = store.select(first.metric, first.selector)
        measured = measure([thresholds[i].expression for i in indexes], aggregate, duration_s)
        for index, value in zip(indexes, measured, strict=True):
            values[index] = value
    results = []
    for threshold, value in zip(thresholds, values, strict=True):
        if threshold.window_s is not None:
            results.append(
                given.get((threshold.metric_key, threshold.label), ThresholdResult(threshold, None, True))
            )
            continue
        expression = threshold.expression
        ok = value is None or holds(expression, value)
        results.append(ThresholdResult(threshold, value, ok))
    return results


def crossed_metrics(results: Sequence[ThresholdResult]) -> list[str]:
    """The metric keys with at least one failed threshold, sorted and unique, as k6 lists them."""
    return sorted({result.threshold.metric_key for result in results if not result.ok})
