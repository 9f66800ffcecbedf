"""The summary's ``generator`` block for people: the generator's health, its connect phase and, in
distributed mode, the worst worker."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} ms"


def _health(block: Mapping[str, Any]) -> str:
    lag, collections = block["lag_ms"], block["gc"]
    return (
        f"lag p50 {_ms(lag['p50'])}, p99 {_ms(lag['p99'])}, max {_ms(lag['max'])}; "
        f"CPU {block['cpu_pct']:.0f}% of a core (busiest 10 s); "
        f"{collections['count']} garbage collections, longest {_ms(collections['max_ms'])}; "
        f"late beats {block['late_fraction']:.2%}"
    )


def render_generator(block: Mapping[str, Any]) -> str:
    """Lines for the text summary: ``generator: ...``, ``connect: ...``, the worst worker."""
    state = "SATURATED" if block["saturated"] else "not saturated"
    lines = [f"generator: {state}; {_health(block)}"]
    connect = block.get("connect")
    if connect is not None:
        took = "-" if connect["took_s"] is None else f"{connect['took_s']:.2f} s"
        errors = ", ".join(f"{kind} {count}" for kind, count in connect["errors"].items())
        lines.append(
            f"connect: {connect['connected']} of {connect['agents']} agents connected in {took}; "
            f"p50 {_ms(connect['p50_ms'])}, p95 {_ms(connect['p95_ms'])}, max {_ms(connect['max_ms'])}"
            + (f"; failed: {errors}" if errors else "")
        )
    workers = block.get("workers") or []
    if workers:
        worst = max(workers, key=lambda worker: worker["lag_ms"]["p99"])
        lines.append(f"worst worker by lag p99: {worst['worker']}: {_health(worst)}")
    return "\n".join(lines)
