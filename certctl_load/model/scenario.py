"""Scenario files: flat YAML, every key checked, every error a one-line ConfigError."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from certctl_load.errors import ConfigError
from certctl_load.k6.percentiles import validate_trend_stats
from certctl_load.k6.thresholds import Threshold, parse_thresholds
from certctl_load.model.calls import CallSpec, heartbeat_call, heartbeat_interval, parse_calls
from certctl_load.model.fleet import DEFAULT_ID_PREFIX
from certctl_load.model.values import positive_duration

DEFAULT_SCENARIO_NAME = "agent_storm"
CONNECTION_MODELS = ("keep-alive", "per-request")
# before-start: the fleet connects before t0; at-first-beat: each agent connects at its first beat.
CONNECT_MODES = ("before-start", "at-first-beat")
DEFAULT_TREND_STATS = ("avg", "min", "med", "p(95)", "p(99)", "max")
_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class Scenario:
    """A storm as a scenario file describes it (before command-line and environment overrides)."""

    name: str
    fleet_size: int
    id_prefix: str
    duration_s: float
    summary_trend_stats: tuple[str, ...]
    thresholds: tuple[Threshold, ...]
    threshold_spec: Mapping[str, Any] = field(repr=False)
    connection: str
    connect: str
    connect_concurrency: int
    request_timeout_s: float
    source: str
    calls: tuple[CallSpec, ...]

    @property
    def heartbeat_interval_s(self) -> float:
        return heartbeat_interval(self.calls)

    @property
    def connects_before_start(self) -> bool:
        """The fleet opens its keep-alive connections before t0 (per-request ones cannot be)."""
        return self.connect == "before-start" and self.connection == "keep-alive"

    @property
    def file_stem(self) -> str:
        """``agent_storm`` gives ``agent-storm``, as in ``summary-agent-storm.json``."""
        return self.name.replace("_", "-")


# key: (description of the expected type, default)
SCHEMA: dict[str, tuple[str, Any]] = {
    "name": ("a name of letters, digits, '_', '-' or '.'", DEFAULT_SCENARIO_NAME),
    "fleet_size": ("a positive whole number", 5000),
    "id_prefix": ("a non-empty string", DEFAULT_ID_PREFIX),
    "heartbeat_interval": ("a positive duration such as 30s", "30s"),
    "duration": ("a positive duration such as 5m", "5m"),
    "summary_trend_stats": ("a list of trend stats such as [avg, p(95)]", list(DEFAULT_TREND_STATS)),
    "thresholds": ("a mapping of metric to a list of expressions", {}),
    "connection": ("one of " + ", ".join(CONNECTION_MODELS), "keep-alive"),
    "connect": ("one of " + ", ".join(CONNECT_MODES), "before-start"),
    "connect_concurrency": ("a positive whole number (connects at once per process)", 256),
    "request_timeout": ("a positive duration such as 60s", "60s"),
    "calls": ("a list of calls, each with name, method, path, body and interval", None),
}


def default_scenario_path() -> Path:
    """The shipped ``agent_storm`` scenario, from the checkout or the installed package."""
    checkout = Path(__file__).resolve().parents[2] / "scenarios" / "agent_storm.yaml"
    if checkout.is_file():
        return checkout
    return Path(str(resources.files("certctl_load.scenarios").joinpath("agent_storm.yaml")))


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario file."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"scenario {source}: cannot be read ({error.strerror or error})") from None
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise ConfigError(f"scenario {source}: malformed YAML{where}: {problem}") from None
    return parse_scenario(document if document is not None else {}, source)


def parse_scenario(document: Any, source: str) -> Scenario:
    """Validate a scenario already parsed from YAML."""
    if not isinstance(document, Mapping):
        raise ConfigError(f"scenario {source}: must be a mapping of keys, got {type(document).__name__}")
    unknown = [str(key) for key in document if key not in SCHEMA]
    if unknown:
        raise ConfigError(f"scenario {source}: unknown key {unknown[0]!r} (known keys: {', '.join(SCHEMA)})")
    values = {key: document.get(key, default) for key, (_, default) in SCHEMA.items()}

    def bad(key: str) -> ConfigError:
        return ConfigError(
            f"scenario {source}: key {key!r} has value {values[key]!r}, expected {SCHEMA[key][0]}"
        )

    name = values["name"]
    if not isinstance(name, str) or not _NAME_PATTERN.match(name):
        raise bad("name")
    fleet_size = values["fleet_size"]
    if isinstance(fleet_size, bool) or not isinstance(fleet_size, int) or fleet_size < 1:
        raise bad("fleet_size")
    id_prefix = values["id_prefix"]
    if not isinstance(id_prefix, str) or not id_prefix or "/" in id_prefix:
        raise bad("id_prefix")
    interval = _positive_duration(values, "heartbeat_interval", bad)
    duration = _positive_duration(values, "duration", bad)
    timeout = _positive_duration(values, "request_timeout", bad)
    stats = values["summary_trend_stats"]
    if not isinstance(stats, list) or not stats or not all(isinstance(s, str) for s in stats):
        raise bad("summary_trend_stats")
    try:
        validate_trend_stats(stats)
    except ConfigError as error:
        raise ConfigError(f"scenario {source}: key 'summary_trend_stats': {error}") from None
    connection = values["connection"]
    if connection not in CONNECTION_MODELS:
        raise bad("connection")
    if values["connect"] not in CONNECT_MODES:
        raise bad("connect")
    concurrency = values["connect_concurrency"]
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise bad("connect_concurrency")
    if values["calls"] is None:
        calls: tuple[CallSpec, ...] = (heartbeat_call(interval),)
    else:
        if "heartbeat_interval" in document:
            raise ConfigError(
                f"scenario {source}: give 'heartbeat_interval' or 'calls', not both "
                "(a call's own 'interval' sets its cadence)"
            )
        calls = parse_calls(values["calls"], source)
    spec = values["thresholds"]
    if not isinstance(spec, Mapping):
        raise bad("thresholds")
    try:
        thresholds = parse_thresholds(spec)
    except ConfigError as error:
        raise ConfigError(f"scenario {source}: thresholds: {error}") from None
    return Scenario(
        name=name,
        fleet_size=fleet_size,
        id_prefix=id_prefix,
        duration_s=duration,
        summary_trend_stats=tuple(stats),
        thresholds=tuple(thresholds),
        threshold_spec=spec,
        connection=connection,
        connect=values["connect"],
        connect_concurrency=concurrency,
        request_timeout_s=timeout,
        source=source,
        calls=calls,
    )


def _positive_duration(values: Mapping[str, Any], key: str, bad: Callable[[str], ConfigError]) -> float:
    try:
        return positive_duration(values[key])
    except ConfigError:
        raise bad(key) from None
