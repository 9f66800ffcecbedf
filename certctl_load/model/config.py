"""One run's configuration, resolved from every source in a fixed order of precedence.

Highest first: command line, ``LOCUST_*`` environment, ``locust.conf`` (Locust's own
parser merges those three into its options), then the k6 script's ``CERTCTL_*`` and
``K6_*`` environment, then the scenario file, then built-in defaults.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from certctl_load.errors import ConfigError
from certctl_load.k6.thresholds import check_windows
from certctl_load.model.calls import HEARTBEAT, CallSpec, heartbeat_interval, offered_rate, with_interval
from certctl_load.model.endpoint import Endpoint, parse_endpoint
from certctl_load.model.fleet import DEFAULT_TOKEN
from certctl_load.model.scenario import Scenario, default_scenario_path, load_scenario
from certctl_load.model.values import non_negative_duration, positive_duration, real_number, whole_number

DEFAULT_HOST = "https://certctl-server:8443"
REQUEST_TRACE_ENV = "CERTCTL_LOAD_REQUEST_TRACE"  # bench-only, see runtime.request_trace
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


@dataclass(frozen=True)
class JsonOutput:
    """k6's ``--out json=FILE``: one line per sample in ``path``, gzipped when its name ends in ``.gz``."""

    path: Path

    @property
    def gzipped(self) -> bool:
        return self.path.name.endswith(".gz")


@dataclass(frozen=True)
class RunConfig:
    """Everything a storm needs, after precedence is applied."""

    scenario: Scenario
    host: str
    endpoint: Endpoint
    token: str
    fleet_size: int
    duration_s: float
    results_dir: Path
    insecure: bool
    ca_bundle: str | None
    skip_preflight: bool
    calls: tuple[CallSpec, ...]
    source_addresses: tuple[str, ...] = ()
    request_trace: Path | None = None  # bench-only: CERTCTL_LOAD_REQUEST_TRACE
    out: JsonOutput | None = None  # --out json=FILE: k6's JSON output of every sample
    # --warmup: the schedule's first seconds, whose beats are not judged (0: none)
    warmup_s: float = 0.0

    @property
    def heartbeat_interval_s(self) -> float:
        return heartbeat_interval(self.calls)

    @property
    def offered_rate(self) -> float:
        """Requests per second the fleet offers: fleet / interval, summed over the agent's calls."""
        return offered_rate(self.fleet_size, self.calls)

    def __repr__(self) -> str:  # the token never appears in a repr, a log line or a traceback
        return (
            f"RunConfig(scenario={self.scenario.name!r}, host={self.host!r}, fleet_size={self.fleet_size}, "
            f"heartbeat_interval_s={self.heartbeat_interval_s}, duration_s={self.duration_s})"
        )


def _given(value: Any) -> bool:
    """An option counts as given unless absent or blank (the web UI's form sends blank fields)."""
    return value is not None and str(value).strip() != ""


def _env_flag(environ: Mapping[str, str], name: str) -> bool | None:
    raw = environ.get(name)
    if raw is None:
        return None
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(f"environment {name}={raw!r} is not a boolean (use true or false)")


def resolve_config(options: Any, environ: Mapping[str, str], host: str | None) -> RunConfig:
    """Apply precedence to Locust's parsed ``options``, the environment and the scenario file.

    ``host`` is Locust's (``--host``, ``LOCUST_HOST`` or ``locust.conf``), or None.
    """
    scenario_path = getattr(options, "scenario", None) or default_scenario_path()
    scenario = load_scenario(scenario_path)

    fleet_size = scenario.fleet_size
    if environ.get("K6_AGENT_FLEET"):
        fleet_size = whole_number(environ["K6_AGENT_FLEET"], "environment K6_AGENT_FLEET")
    if _given(getattr(options, "fleet_size", None)):
        fleet_size = whole_number(options.fleet_size, "--fleet-size")

    interval = scenario.heartbeat_interval_s
    explicit_interval = getattr(options, "heartbeat_interval", None)
    if not _given(explicit_interval):
        explicit_interval = None
    if explicit_interval is not None:
        interval = positive_duration(explicit_interval, "--heartbeat-interval")
    if environ.get("K6_AGENT_RATE"):
        rate = real_number(environ["K6_AGENT_RATE"], "environment K6_AGENT_RATE", positive=True)
        rate_interval = fleet_size / rate
        if explicit_interval is not None and not math.isclose(rate_interval, interval, rel_tol=1e-3):
            raise ConfigError(
                f"environment K6_AGENT_RATE={environ['K6_AGENT_RATE']!r} conflicts with "
                f"--heartbeat-interval={explicit_interval!r}: {fleet_size} agents at that rate beat every "
                f"{rate_interval:g}s; give one or the other"
            )
        interval = rate_interval

    calls = scenario.calls
    if interval != scenario.heartbeat_interval_s:
        if not any(call.name == HEARTBEAT for call in calls):
            raise ConfigError(
                f"scenario {scenario.source} has no 'heartbeat' call for --heartbeat-interval "
                "or K6_AGENT_RATE to set"
            )
        calls = with_interval(calls, HEARTBEAT, interval)

    duration = scenario.duration_s
    run_time = getattr(options, "run_time", None)
    if _given(run_time):  # Locust's --run-time (seconds), or the text of a value it cannot take
        duration = positive_duration(run_time, "--run-time")
    check_windows(scenario.thresholds, duration)

    warmup = 0.0
    raw_warmup = getattr(options, "warmup", None)
    if _given(raw_warmup):
        warmup = non_negative_duration(raw_warmup, "--warmup")
        if warmup >= duration:
            raise ConfigError(
                f"--warmup={raw_warmup!r} leaves nothing to judge: it must be shorter than the run time "
                f"({duration:g}s)"
            )

    chosen_host = host or environ.get("CERTCTL_BASE") or DEFAULT_HOST
    endpoint = parse_endpoint(chosen_host)

    insecure = bool(getattr(options, "insecure", False)) or bool(
        _env_flag(environ, "K6_INSECURE_SKIP_TLS_VERIFY")
    )
    ca_bundle = getattr(options, "ca_bundle", None) or environ.get("CERTCTL_CA_BUNDLE") or None
    results_dir = Path(getattr(options, "results_dir", None) or "results")
    token = environ.get("CERTCTL_TOKEN") or DEFAULT_TOKEN
    if any(ch in token for ch in "\r\n"):
        raise ConfigError("environment CERTCTL_TOKEN contains a line break")
    try:
        token.encode("latin-1")
    except UnicodeEncodeError:
        raise ConfigError("environment CERTCTL_TOKEN has characters an HTTP header cannot carry") from None

    return RunConfig(
        scenario=scenario,
        host=chosen_host,
        endpoint=endpoint,
        token=token,
        fleet_size=fleet_size,
        duration_s=duration,
        results_dir=results_dir,
        insecure=insecure,
        ca_bundle=ca_bundle,
        skip_preflight=bool(getattr(options, "skip_preflight", False)),
        calls=calls,
        source_addresses=_source_addresses(getattr(options, "source_addresses", None)),
        request_trace=Path(environ[REQUEST_TRACE_ENV]) if environ.get(REQUEST_TRACE_ENV) else None,
        out=_json_output(getattr(options, "out", None), environ),
        warmup_s=warmup,
    )


def _json_output(option: Any, environ: Mapping[str, str]) -> JsonOutput | None:
    """``--out`` (command line, ``LOCUST_OUT`` or ``locust.conf``), else ``K6_OUT``: only k6's
    ``json=FILE`` is written; any other output is a ConfigError naming the value."""
    if _given(option):
        raw, where = str(option), "--out"
    elif _given(environ.get("K6_OUT")):
        raw, where = environ["K6_OUT"], "environment K6_OUT"
    else:
        return None
    kind, _, file = raw.strip().partition("=")
    file = file.strip()
    if kind != "json" or file in ("", "-"):
        raise ConfigError(
            f"{where}={raw!r} is not an output this harness writes: only k6's json=FILE (json=out.json)"
        )
    return JsonOutput(Path(file))


def _source_addresses(raw: str | None) -> tuple[str, ...]:
    if not raw:
        return ()
    addresses = tuple(part.strip() for part in raw.split(",") if part.strip())
    for address in addresses:
        try:
            ipaddress.ip_address(address)
        except ValueError:
            raise ConfigError(f"--source-addresses: {address!r} is not an IP address") from None
    return addresses
