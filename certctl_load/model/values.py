"""The one set of value checks behind every option, environment variable and scenario key.

Each check takes the raw value and where it came from (``--fleet-size``, ``environment
K6_AGENT_RATE``) and returns the parsed value, or raises a one-line ConfigError that names
both. :func:`for_argparse` turns a check into an argparse ``type``.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from fractions import Fraction
from typing import TypeVar

from certctl_load.errors import ConfigError
from certctl_load.k6.durations import parse_duration_seconds

T = TypeVar("T")


def _named(where: str, value: object) -> str:
    return f"{where}={value!r}" if where else repr(value)


def whole_number(value: object, where: str = "", *, minimum: int = 1) -> int:
    """An integer of at least ``minimum``."""
    try:
        number = int(str(value).strip())
    except ValueError:
        raise ConfigError(f"{_named(where, value)} is not a whole number") from None
    if number < minimum:
        raise ConfigError(f"{_named(where, value)} must be at least {minimum}")
    return number


def real_number(value: object, where: str = "", *, positive: bool = False) -> float:
    """A finite number of 0 or more (more than 0 when ``positive``)."""
    try:
        number = float(str(value).strip())
    except ValueError:
        raise ConfigError(f"{_named(where, value)} is not a number") from None
    if not math.isfinite(number) or number < 0 or (positive and number == 0):
        bound = "more than 0" if positive else "0 or more"
        raise ConfigError(f"{_named(where, value)} must be a finite number of {bound}")
    return number


def fraction(value: object, where: str = "") -> Fraction:
    """An exact fraction between 0 and 1."""
    try:
        number = Fraction(str(value).strip())
    except (ValueError, ZeroDivisionError):
        raise ConfigError(f"{_named(where, value)} is not a number") from None
    if not 0 <= number <= 1:
        raise ConfigError(f"{_named(where, value)} must be between 0 and 1")
    return number


def positive_duration(value: object, where: str = "") -> float:
    """Seconds in a k6 duration (``30s``, ``1h30m``) or a plain number; more than 0."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ConfigError(f"{_named(where, value)} is not a duration (such as 30s, 5m or 6)")
    text = str(value).strip()
    try:
        seconds = parse_duration_seconds(value)
    except ConfigError:
        if text.startswith("-"):
            raise ConfigError(f"{_named(where, value)} must be positive") from None
        raise ConfigError(f"{_named(where, value)} is not a duration (such as 30s, 5m or 6)") from None
    if seconds <= 0:
        raise ConfigError(f"{_named(where, value)} must be positive")
    return seconds


def non_negative_duration(value: object, where: str = "") -> float:
    """Seconds in a k6 duration or a plain number; 0 or more."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ConfigError(f"{_named(where, value)} is not a duration (such as 30s, 5m or 6)")
    try:
        return parse_duration_seconds(value)
    except ConfigError as error:
        reason = "must not be negative" if "negative" in str(error) else "is not a duration (such as 30s)"
        raise ConfigError(f"{_named(where, value)} {reason}") from None


def for_argparse(check: Callable[[str], T]) -> Callable[[str], T]:
    """``check`` as an argparse ``type``: its ConfigError becomes argparse's usage error."""

    def parse(text: str) -> T:
        try:
            return check(text)
        except ConfigError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    parse.__name__ = check.__name__  # argparse names the type in some messages
    return parse
