"""The thin Locust glue: options, the fleet-sized shape, and the run's life cycle on Locust's events.

Importing this module (the project's locustfile does) registers everything.
"""

from __future__ import annotations

import logging
import os
import ssl
import sys
import time
from typing import Any

from locust import LoadTestShape, events
from locust.runners import WorkerRunner

from certctl_load.config import RunConfig, resolve_config
from certctl_load.diagnosis import early_stop_reason
from certctl_load.errors import HarnessError
from certctl_load.finalize import finalize
from certctl_load.httpclient import make_ssl_context
from certctl_load.options import add_options
from certctl_load.preflight import run_preflight
from certctl_load.recorder import CHECK_NAME, Recorder
from certctl_load.results import ensure_writable_dir
from certctl_load.storm import SCHEDULE_LEAD_S, Storm

logger = logging.getLogger("certctl_load")

_state: dict[str, Any] = {"environment": None}


def _environment() -> Any:
    return _state["environment"]


def resolve(environment: Any) -> RunConfig:
    """The run's configuration from Locust's current options (the web UI may have changed them)."""
    config = resolve_config(environment.parsed_options, os.environ, environment.host)
    ensure_writable_dir(config.results_dir)
    return config


@events.init_command_line_parser.add_listener
def _add_options(parser: Any, **_: Any) -> None:
    add_options(parser)


@events.init.add_listener
def _on_init(environment: Any, runner: Any, **_: Any) -> None:
    _state["environment"] = environment
    if isinstance(runner, WorkerRunner):
        return
    try:
        config = resolve(environment)
    except HarnessError as error:
        logger.error("%s", error)
        sys.exit(error.exit_code)
    environment.certctl_config = config
    if not environment.host:
        environment.host = config.host


def build_ssl_context(config: RunConfig) -> ssl.SSLContext | None:
    """The run's TLS context: verifying unless --insecure; None for an http:// target."""
    if not config.endpoint.is_tls:
        return None
    return make_ssl_context(insecure=config.insecure, ca_bundle=config.ca_bundle)


class StormShape(LoadTestShape):
    """The whole fleet spawns at once; the run ends once the schedule is over and drained,
    or early when the target plainly cannot take the storm."""

    use_common_options = True

    def reset_time(self) -> None:
        super().reset_time()
        self._config: RunConfig | None = None

    def _prepare(self, environment: Any) -> RunConfig | None:
        """Resolve the configuration (the web UI may have changed it) and check the target."""
        try:
            config = resolve(environment)
            if not config.skip_preflight:
                run_preflight(config, build_ssl_context(config))
        except HarnessError as error:
            for line in str(error).splitlines():
                logger.error("%s", line)
            environment.process_exit_code = error.exit_code
            return None
        environment.certctl_config = config
        return config

    def tick(self) -> tuple[int, float] | None:
        environment = self.runner.environment
        if self._config is None:
            self._config = self._prepare(environment)
            if self._config is None:
                return None
        storm: Storm | None = getattr(environment, "certctl_storm", None)
        if storm is not None and storm.config is self._config:
            storm.store.set_gauge("vus", self.runner.user_count, {})
            now = time.time()
            if storm.t0 is not None and storm.stop_reason is None:
                storm.stop_reason = early_stop_reason(storm.store, self._config.scenario.name, now - storm.t0)
                if storm.stop_reason:
                    logger.error("%s", storm.stop_reason)
                    return None
            if storm.is_drained(now):
                return None
        return self._config.fleet_size, float(self._config.fleet_size)


@events.test_start.add_listener
def _on_test_start(environment: Any, **_: Any) -> None:
    config: RunConfig = environment.certctl_config
    storm = Storm(config)
    storm.recorder = Recorder(
        storm.store,
        environment.events.request,
        scenario=config.scenario.name,
        name="heartbeat",
        method="POST",
        check=CHECK_NAME,
    )
    storm.ssl_context = build_ssl_context(config)
    storm.store.set_gauge("vus_max", config.fleet_size, {})
    environment.certctl_storm = storm


@events.spawning_complete.add_listener
def _on_spawning_complete(user_count: int, **_: Any) -> None:
    environment = _environment()
    storm: Storm | None = getattr(environment, "certctl_storm", None)
    if storm is None or storm.t0 is not None:
        return
    storm.start_schedule(time.time() + SCHEDULE_LEAD_S, range(storm.config.fleet_size))
    logger.info(
        "fleet of %d agents spawned; heartbeats every %gs (%.2f/s offered) for %gs",
        storm.config.fleet_size,
        storm.config.heartbeat_interval_s,
        storm.config.offered_rate,
        storm.config.duration_s,
    )


def _finish(environment: Any, *, interrupted: bool) -> None:
    storm: Storm | None = getattr(environment, "certctl_storm", None)
    if storm is None or storm.outcome is not None:
        return
    now = time.time()
    cut_short = interrupted or (storm.stop_reason is None and not storm.is_drained(now))
    storm.outcome = finalize(storm, now, interrupted=cut_short)
    environment.process_exit_code = storm.outcome.exit_code


@events.test_stop.add_listener
def _on_test_stop(environment: Any, **_: Any) -> None:
    if not isinstance(environment.runner, WorkerRunner):
        _finish(environment, interrupted=False)


@events.quitting.add_listener
def _on_quitting(environment: Any, **_: Any) -> None:
    if isinstance(environment.runner, WorkerRunner):
        return
    _finish(environment, interrupted=True)
    storm: Storm | None = getattr(environment, "certctl_storm", None)
    if storm is not None and storm.outcome is not None:
        environment.process_exit_code = storm.outcome.exit_code


@events.user_error.add_listener
def _on_user_error(user_instance: Any, exception: BaseException, **_: Any) -> None:
    storm: Storm | None = getattr(_environment(), "certctl_storm", None)
    if storm is not None:
        storm.harness_errors += 1
