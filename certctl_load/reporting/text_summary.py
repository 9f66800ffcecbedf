"""jslib k6-summary's textSummary, line for line: checks, then every metric padded into columns."""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

SUCC_MARK, FAIL_MARK = "✓", "✗"
GROUP_PREFIX, DETAILS_PREFIX = "█", "↳"
FAINT, RED, GREEN, CYAN = 2, 31, 32, 36  # ANSI SGR codes
_TIME_UNITS = {"s": ("s", 0.001), "ms": ("ms", 1.0), "us": ("µs", 1000.0)}
_BYTE_UNITS = ("B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB")

Decorate = Callable[..., str]


# JavaScript number formatting ------------------------------------------------------------------


def js_string(value: float) -> str:
    """JavaScript's ``String(number)`` for a finite number: shortest round-trip digits."""
    if value == 0:
        return "0"
    sign, digit_tuple, exponent = Decimal(repr(float(value))).normalize().as_tuple()
    digits = "".join(map(str, digit_tuple))
    k, n = len(digits), len(digits) + int(exponent)  # the value is 0.digits * 10**n
    prefix = "-" if sign else ""
    if k <= n <= 21:
        return prefix + digits + "0" * (n - k)
    if 0 < n <= 21:
        return prefix + digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return prefix + "0." + "0" * -n + digits
    mantissa = digits[0] + ("." + digits[1:] if k > 1 else "")
    return f"{prefix}{mantissa}e{'+' if n - 1 >= 0 else '-'}{abs(n - 1)}"


def js_to_fixed(value: float, places: int) -> str:
    """JavaScript's ``number.toFixed(places)``: the exact binary value rounded half away from zero."""
    if abs(value) >= 1e21:
        return js_string(value)
    if value == 0:
        value = 0.0  # (-0).toFixed() has no sign
    quantum = Decimal(1).scaleb(-places)
    return format(Decimal(value).quantize(quantum, rounding=ROUND_HALF_UP), "f")


def _fixed_no_trailing_zeros(value: float, places: int) -> str:
    return js_string(float(js_to_fixed(value, places)))


def _fixed_no_trailing_zeros_trunc(value: float, places: int) -> str:
    scale = math.pow(10, places)
    return _fixed_no_trailing_zeros(math.trunc(scale * value) / scale, places)


# Humanizing values ---------------------------------------------------------------------------


def humanize_bytes(count: float) -> str:
    """``583 kB``, ``1.2 MB``: powers of 1000, one decimal below 10."""
    if count < 10:
        return js_string(count) + " B"
    exponent = math.floor(math.log(count) / math.log(1000))
    value = math.floor(count / math.pow(1000, exponent) * 10 + 0.5) / 10
    return js_to_fixed(value, 1 if value < 10 else 0) + " " + _BYTE_UNITS[exponent]


def humanize_duration(ms: float, time_unit: str = "") -> str:
    """A duration in ms in the largest fitting unit (ns, µs, ms, s, then m and h), or in ``time_unit``."""
    if time_unit in _TIME_UNITS:
        unit, coef = _TIME_UNITS[time_unit]
        return js_to_fixed(ms * coef, 2) + unit
    if ms == 0:
        return "0s"
    if ms < 0.001:
        return js_string(math.trunc(ms * 1_000_000)) + "ns"
    if ms < 1:
        return _fixed_no_trailing_zeros_trunc(ms * 1000, 2) + "µs"
    if ms < 1000:
        return _fixed_no_trailing_zeros_trunc(ms, 2) + "ms"
    result = _fixed_no_trailing_zeros_trunc(math.fmod(ms, 60000) / 1000, 0 if ms > 60000 else 2) + "s"
    minutes = math.trunc(ms / 60000)
    if minutes < 1:
        return result
    result = f"{minutes % 60}m{result}"
    hours = math.trunc(minutes / 60)
    return result if hours < 1 else f"{hours}h{result}"


def humanize_value(value: float, metric: Mapping[str, Any], time_unit: str = "") -> str:
    """A value as textSummary shows it for this metric's type and contents."""
    if metric["type"] == "rate":
        return js_to_fixed(math.trunc(value * 100 * 100) / 100, 2) + "%"
    if metric["contains"] == "data":
        return humanize_bytes(value)
    if metric["contains"] == "time":
        return humanize_duration(value, time_unit)
    return _fixed_no_trailing_zeros(value, 6)


# Layout --------------------------------------------------------------------------------------


def _width(text: str) -> int:
    return len(unicodedata.normalize("NFKC", text))


def _collation_key(text: str) -> tuple[tuple[tuple[int, str], ...], tuple[bool, ...]]:
    """Approximates localeCompare's root collation: punctuation < digits < letters, case second."""
    primary = tuple((2 if c.isalpha() else 1 if c.isdigit() else 0, c.lower()) for c in text)
    return primary, tuple(c.isupper() for c in text)


def _metric_order(name: str) -> tuple[Any, Any]:
    parent = name.split("{", 1)[0]
    return _collation_key(parent), _collation_key(name[len(parent) :])


def _display_name(name: str) -> str:
    opening = name.find("{")
    return name if opening < 0 else "{ " + name[opening + 1 : -1] + " }"


def _indent_for(name: str) -> str:
    return "  " if "{" in name else ""


def _summarize_check(indent: str, check: Mapping[str, Any], decorate: Decorate) -> str:
    if check["fails"] == 0:
        return decorate(f"{indent}{SUCC_MARK} {check['name']}", GREEN)
    passes, fails = check["passes"], check["fails"]
    percent = math.floor(100 * passes / (passes + fails))
    counts = f"{SUCC_MARK} {js_string(passes)} / {FAIL_MARK} {js_string(fails)}"
    return decorate(
        f"{indent}{FAIL_MARK} {check['name']}\n{indent} {DETAILS_PREFIX}  {percent}% — {counts}", RED
    )


def _summarize_group(indent: str, group: Mapping[str, Any], decorate: Decorate) -> list[str]:
    lines = []
    if group["name"] != "":
        lines.append(f"{indent}{GROUP_PREFIX} {group['name']}\n")
        indent += "  "
    lines.extend(_summarize_check(indent, check, decorate) for check in group["checks"])
    if group["checks"]:
        lines.append("")
    for child in group["groups"]:
        lines.extend(_summarize_group(indent, child, decorate))
    return lines


def _non_trend_values(metric: Mapping[str, Any], time_unit: str) -> list[str]:
    values = metric["values"]
    if metric["type"] == "counter":
        return [
            humanize_value(values["count"], metric, time_unit),
            humanize_value(values["rate"], metric, time_unit) + "/s",
        ]
    if metric["type"] == "gauge":
        return [
            humanize_value(values["value"], metric, time_unit),
            "min=" + humanize_value(values["min"], metric, time_unit),
            "max=" + humanize_value(values["max"], metric, time_unit),
        ]
    if metric["type"] == "rate":
        return [
            humanize_value(values["rate"], metric, time_unit),
            f"{SUCC_MARK} {js_string(values['passes'])}",
            f"{FAIL_MARK} {js_string(values['fails'])}",
        ]
    return ["[no data]"]


def _summarize_metrics(
    indent: str,
    metrics: Mapping[str, Mapping[str, Any]],
    stats: Sequence[str],
    time_unit: str,
    decorate: Decorate,
) -> list[str]:
    indent += "  "
    name_width = max((_width(_indent_for(name) + _display_name(name)) for name in metrics), default=0)
    trend_cols: dict[str, list[str]] = {}
    trend_widths = [0] * len(stats)
    firsts: dict[str, str] = {}
    extras: dict[str, list[str]] = {}
    first_width, extra_widths = 0, [0, 0]
    for name, metric in metrics.items():
        if metric["type"] == "trend":
            cols = [
                js_string(metric["values"][stat])
                if stat == "count"
                else humanize_value(metric["values"][stat], metric, time_unit)
                for stat in stats
            ]
            trend_widths = [max(width, _width(col)) for width, col in zip(trend_widths, cols, strict=True)]
            trend_cols[name] = cols
            continue
        first, *rest = _non_trend_values(metric, time_unit)
        firsts[name], extras[name] = first, rest
        first_width = max(first_width, _width(first))
        for i, extra in enumerate(rest):
            extra_widths[i] = max(extra_widths[i], _width(extra))

    def data(name: str) -> str:
        if name in trend_cols:
            return " ".join(
                f"{stat}={decorate(col, CYAN)}{' ' * (width - _width(col))}"
                for stat, col, width in zip(stats, trend_cols[name], trend_widths, strict=True)
            )
        text = decorate(firsts[name], CYAN) + " " * (first_width - _width(firsts[name]))
        rest = extras[name]
        if len(rest) == 1:
            text += " " + decorate(rest[0], CYAN, FAINT)
        elif rest:
            text += " " + " ".join(
                decorate(extra, CYAN, FAINT) + " " * (extra_widths[i] - _width(extra))
                for i, extra in enumerate(rest)
            )
        return text

    lines = []
    for name in sorted(metrics, key=_metric_order):
        thresholds = metrics[name].get("thresholds")
        mark, color = " ", None
        if thresholds is not None:
            ok = all(threshold["ok"] for threshold in thresholds.values())
            mark, color = (SUCC_MARK, GREEN) if ok else (FAIL_MARK, RED)
        name_indent, display = _indent_for(name), _display_name(name)
        dots = decorate("." * (name_width - _width(display) - _width(name_indent) + 3) + ":", FAINT)
        mark_text = mark if color is None else decorate(mark, color)
        lines.append(f"{indent}{name_indent}{mark_text} {display}{dots} {data(name)}")
    return lines


def render_text_summary(data: Mapping[str, Any], *, indent: str = " ", colors: bool = False) -> str:
    """The text jslib's ``textSummary(data, {indent, enableColors})`` returns for a k6 summary object."""

    def decorate(text: str, *codes: int) -> str:
        if not colors:
            return text
        return f"\x1b[{';'.join(map(str, codes))}m{text}\x1b[0m"

    options = data.get("options", {})
    time_unit = options.get("summaryTimeUnit") or ""
    stats = options.get("summaryTrendStats") or []
    lines = _summarize_group(indent + "    ", data["root_group"], decorate)
    lines.extend(_summarize_metrics(indent, data["metrics"], stats, time_unit, decorate))
    return "\n".join(lines)
