"""Figures for people: ``5.73 ms``, ``0.00 %``, ``166.67 /s``, never ``5.731792119991037`` or ``0.0``.

One table of units (decimals, scale, suffix) serves both sides: Python formats the report's and the
web UI's tables with :func:`format_figure`, and the pages' charts format their axes and legends in
JavaScript from the same table (:data:`UNITS`, inlined into each page as JSON).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

NO_VALUE = "–"  # a figure that has no value (no sample that second, a rate without samples)


@dataclass(frozen=True)
class Unit:
    """How a figure of one kind is shown: ``value * scale`` with ``decimals`` digits, then ``suffix``."""

    decimals: int
    suffix: str
    scale: float = 1.0


UNITS: dict[str, Unit] = {
    "ms": Unit(2, " ms"),
    "percent": Unit(2, " %", 100.0),  # a fraction: 0.001 is "0.10 %"
    "rate": Unit(2, " /s"),
    "count": Unit(0, ""),
    "number": Unit(2, ""),
    "seconds": Unit(2, " s"),
    "cpu": Unit(0, " % of a core"),
}


def format_figure(value: float | None, unit: str) -> str:
    """``value`` in ``unit`` (a key of :data:`UNITS`); the dash for None or NaN."""
    spec = UNITS[unit]
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return NO_VALUE
    return f"{value * spec.scale:.{spec.decimals}f}{spec.suffix}"


def format_duration(seconds: float) -> str:
    """A configured duration as written: ``30 s``, ``0.5 s``, ``90 s`` (no trailing zeros)."""
    return f"{seconds:g} s"


def units_json() -> dict[str, dict[str, Any]]:
    """The unit table for the pages' JavaScript formatter (``CertctlFigures.format``)."""
    return {name: asdict(unit) for name, unit in UNITS.items()}
