"""Errors that end a run with a specific exit code and a one-line message."""

from __future__ import annotations

from certctl_load import exitcodes


class HarnessError(Exception):
    """An error with a one-line, user-facing message and an exit code."""

    exit_code = exitcodes.HARNESS_ERROR


class ConfigError(HarnessError):
    """Invalid configuration: k6's exit code 104, raised before any request."""

    exit_code = exitcodes.INVALID_CONFIG


class TargetNotReady(HarnessError):
    """The target failed a preflight check: exit code 2, raised before any heartbeat."""

    exit_code = exitcodes.TARGET_NOT_READY
