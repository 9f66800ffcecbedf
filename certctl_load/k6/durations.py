"""Durations as k6 writes them (``30s``, ``1h30m``, ``500ms``, ``1d``) or plain numbers of seconds."""

from __future__ import annotations

import math
import re

from certctl_load.errors import ConfigError

# unit: (numerator, denominator) of its length in seconds; sub-second units divide, to stay exact.
_UNITS: dict[str, tuple[int, int]] = {
    "d": (86400, 1),
    "h": (3600, 1),
    "m": (60, 1),
    "s": (1, 1),
    "ms": (1, 1000),
    "us": (1, 1_000_000),
    "µs": (1, 1_000_000),  # MICRO SIGN
    "μs": (1, 1_000_000),  # GREEK SMALL LETTER MU
    "ns": (1, 1_000_000_000),
}
_NUMBER = r"(?:\d+(?:\.\d*)?|\.\d+)"
_UNIT = r"(?:ms|us|µs|μs|ns|d|h|m|s)"
_WHOLE = re.compile(rf"(?:{_NUMBER}{_UNIT})+")
_PART = re.compile(rf"({_NUMBER})({_UNIT})")
_PLAIN = re.compile(rf"[+-]?{_NUMBER}(?:[eE][+-]?\d+)?")
_HINT = "use a number of seconds or a duration such as 30s, 5m, 1h30m or 500ms"


def parse_duration_seconds(value: str | float) -> float:
    """Seconds in ``value``: a k6 duration string, or a plain number (or numeric string) of seconds."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ConfigError(f"invalid duration {value!r}: {_HINT}")
    if isinstance(value, str):
        text = value.strip()
        if _PLAIN.fullmatch(text):
            seconds = float(text)
        elif _WHOLE.fullmatch(text):
            seconds = sum(float(n) * _UNITS[u][0] / _UNITS[u][1] for n, u in _PART.findall(text))
        elif text.startswith("-") and _WHOLE.fullmatch(text[1:]):
            raise ConfigError(f"invalid duration {value!r}: it is negative")
        else:
            raise ConfigError(f"invalid duration {value!r}: {_HINT}")
    else:
        seconds = float(value)
    if not math.isfinite(seconds):
        raise ConfigError(f"invalid duration {value!r}: it is not finite")
    if seconds < 0:
        raise ConfigError(f"invalid duration {value!r}: it is negative")
    return seconds + 0.0  # -0.0 becomes 0.0
