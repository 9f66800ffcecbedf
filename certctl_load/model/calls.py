"""The calls an agent makes, each on its own cadence (the storm has one: the heartbeat).

A scenario's ``calls`` describe a real certctl agent: agent i of N starts at
``t0 + i*L/N``, L being the longest interval, and call c fires at ``start + k*interval_c``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from certctl_load.errors import ConfigError
from certctl_load.model import fleet
from certctl_load.model.schedule import AgentSchedule, agent_schedules, fleet_slots
from certctl_load.model.values import positive_duration

SEED_METADATA = "seed_metadata"
HEARTBEAT = "heartbeat"
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD")
CALL_KEYS = ("name", "method", "path", "body", "interval")
_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


@dataclass(frozen=True)
class CallSpec:
    """One call: ``path`` may hold ``{id}``; ``body`` is the agent's seed metadata, text, or nothing."""

    name: str
    method: str
    path: str
    body: str | None
    interval_s: float

    @property
    def check(self) -> str:
        """The k6 check recorded for every response: ``heartbeat 2xx``."""
        return f"{self.name} 2xx"

    def request_body(self, agent_number: int) -> bytes:
        if self.body is None:
            return b""
        if self.body == SEED_METADATA:
            return json.dumps(fleet.heartbeat_metadata(agent_number), separators=(",", ":")).encode()
        return self.body.encode()


def heartbeat_call(interval_s: float) -> CallSpec:
    """The storm's only call, as certctl's k6 script makes it."""
    return CallSpec(HEARTBEAT, "POST", "/api/v1/agents/{id}/heartbeat", SEED_METADATA, interval_s)


def heartbeat_interval(calls: Sequence[CallSpec]) -> float:
    """The heartbeat call's interval (the first call's, for a profile without a heartbeat)."""
    return next((call.interval_s for call in calls if call.name == HEARTBEAT), calls[0].interval_s)


def parse_calls(value: Any, source: str) -> tuple[CallSpec, ...]:
    """A scenario's ``calls`` list; every error names the call and the offending value."""
    if not isinstance(value, list) or not value:
        raise ConfigError(f"scenario {source}: key 'calls' has value {value!r}, expected a non-empty list")
    calls = tuple(_parse_call(item, position, source) for position, item in enumerate(value, 1))
    names = [call.name for call in calls]
    if len(set(names)) != len(names):
        raise ConfigError(f"scenario {source}: calls: names must be unique, got {names!r}")
    return calls


def _parse_call(item: Any, position: int, source: str) -> CallSpec:
    where = f"scenario {source}: calls[{position}]"
    if not isinstance(item, Mapping):
        raise ConfigError(f"{where}: expected a mapping with {', '.join(CALL_KEYS)}, got {item!r}")
    unknown = [str(key) for key in item if key not in CALL_KEYS]
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r} (known keys: {', '.join(CALL_KEYS)})")
    name, method, path = item.get("name"), item.get("method", "GET"), item.get("path")
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigError(f"{where}: key 'name' has value {name!r}, expected letters, digits, '_', '-', '.'")
    if method not in METHODS:
        raise ConfigError(f"{where}: key 'method' has value {method!r}, expected one of {', '.join(METHODS)}")
    if not isinstance(path, str) or not path.startswith("/") or any(c in path for c in " \r\n"):
        raise ConfigError(f"{where}: key 'path' has value {path!r}, expected a path such as /api/v1/x/{{id}}")
    body = item.get("body")
    if body is not None and not isinstance(body, str):
        body = json.dumps(body, separators=(",", ":")) if isinstance(body, Mapping | list) else None
        if body is None:
            raise ConfigError(
                f"{where}: key 'body' has value {item.get('body')!r}, expected text or a mapping"
            )
    interval = item.get("interval")
    try:
        seconds = positive_duration(interval)
    except ConfigError:
        raise ConfigError(
            f"{where}: key 'interval' has value {interval!r}, expected a positive duration"
        ) from None
    return CallSpec(name, method, path, body, seconds)


def with_interval(calls: Sequence[CallSpec], name: str, interval_s: float) -> tuple[CallSpec, ...]:
    """The calls with ``name``'s interval replaced (``--heartbeat-interval`` sets the heartbeat's)."""
    return tuple(
        CallSpec(c.name, c.method, c.path, c.body, interval_s) if c.name == name else c for c in calls
    )


def call_schedules(
    index: int, fleet_size: int, calls: Sequence[CallSpec], t0: float, duration_s: float
) -> list[AgentSchedule]:
    """Agent ``index``'s schedule for each call, in the order of ``calls``."""
    return agent_schedules(index, fleet_size, [call.interval_s for call in calls], t0, duration_s)


def expected_slots(fleet_size: int, calls: Sequence[CallSpec], duration_s: float) -> dict[str, int]:
    """Every call's total slots over the whole fleet in a run of ``duration_s``."""
    totals = fleet_slots(fleet_size, [call.interval_s for call in calls], duration_s)
    return {call.name: total for call, total in zip(calls, totals, strict=True)}


def offered_rate(fleet_size: int, calls: Sequence[CallSpec]) -> float:
    """Requests per second the whole fleet offers."""
    return sum(fleet_size / call.interval_s for call in calls)
