"""The thin Locust glue: options, the fleet-sized shape, and the run's life cycle on Locust's events.

Importing this module (the project's locustfile does) registers everything.
"""

from __future__ import annotations

import logging
import os
import signal
import ssl
import sys
import time
from typing import Any

import gevent
from locust import LoadTestShape, events
from locust.runners import MasterRunner, WorkerRunner

from certctl_load import exitcodes
from certctl_load.errors import HarnessError
from certctl_load.k6.abort import CHECK_EVERY_S, abort_reason
from certctl_load.model.config import RunConfig, resolve_config
from certctl_load.plugin.options import add_options
from certctl_load.plugin.user_stop import restore_final_counts, stop_all_users
from certctl_load.plugin.webui import install_web_ui
from certctl_load.reporting.breakdown import early_stop_reason
from certctl_load.reporting.files import ensure_writable_dir
from certctl_load.runtime.coordinator import (
    FINAL,
    FLUSH,
    GRANT,
    NEED,
    PLAN,
    REPORT_KEY,
    Coordinator,
    apply_grant,
    apply_plan,
    hand_over_on_exit,
    send_final_when_drained,
    wait_until_drained,
    worker_report,
)
from certctl_load.runtime.httpclient import make_ssl_context
from certctl_load.runtime.judge import finalize
from certctl_load.runtime.preflight import run_preflight
from certctl_load.runtime.recorder import Recorder
from certctl_load.runtime.run import AgentGrant, Storm, schedule_lead

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
        _register_worker_messages(runner)
        return
    if isinstance(runner, MasterRunner):
        _register_master_messages(runner)
    try:
        config = resolve(environment)
    except HarnessError as error:
        logger.error("%s", error)
        sys.exit(error.exit_code)
    environment.certctl_config = config
    if not environment.host:
        environment.host = config.host
    if environment.web_ui is not None:
        install_web_ui(environment, environment.web_ui)
    if environment.parsed_options.headless:
        # With a shape, Locust installs its SIGTERM handler only after the run: until then SIGTERM
        # (docker stop, a CI timeout) would kill the process with no summary. Ctrl-C is handled the
        # same way, in a greenlet of its own, so it never lands inside an agent's request.
        for signal_number in (signal.SIGTERM, signal.SIGINT):
            gevent.signal_handler(signal_number, _on_stop_signal, environment, signal_number)


def _on_stop_signal(environment: Any, signal_number: int) -> None:
    storm: Storm | None = getattr(environment, "certctl_storm", None)
    if storm is not None and storm.interrupted:
        logger.error("%s again: exiting at once", signal.Signals(signal_number).name)
        os._exit(exitcodes.INTERRUPTED)
    logger.info("%s: stopping the storm and writing the summaries", signal.Signals(signal_number).name)
    if storm is not None:
        storm.interrupted = True
    else:
        environment.process_exit_code = exitcodes.INTERRUPTED
    environment.runner.quit()


def build_ssl_context(config: RunConfig) -> ssl.SSLContext | None:
    """The run's TLS context: verifying unless --insecure; None for an http:// target."""
    if not config.endpoint.is_tls:
        return None
    return make_ssl_context(insecure=config.insecure, ca_bundle=config.ca_bundle)


class StormShape(LoadTestShape):
    """The whole fleet spawns at once; the run ends once the schedule is over and drained,
    or early when the target plainly cannot take the storm."""

    use_common_options = True

    def __init__(self) -> None:
        super().__init__()
        self._config: RunConfig | None = None
        self._next_abort_check = 0.0

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

    def _stops_early(self, storm: Storm, elapsed: float) -> bool:
        """The target plainly cannot take the storm, or an abortOnFail threshold is crossed."""
        storm.stop_reason = storm.stop_reason or early_stop_reason(
            storm.store, storm.config.scenario.name, elapsed
        )
        if storm.stop_reason is None and elapsed >= self._next_abort_check:
            self._next_abort_check = elapsed + CHECK_EVERY_S
            storm.abort_reason = abort_reason(storm.config.scenario.thresholds, storm.store, elapsed)
        reason = storm.stop_reason or storm.abort_reason
        if reason:
            logger.error("%s", reason)
        return reason is not None

    def tick(self) -> tuple[int, float] | None:
        environment = self.runner.environment
        storm: Storm | None = getattr(environment, "certctl_storm", None)
        previous_run_over = storm is not None and storm.config is self._config and storm.outcome is not None
        if self._config is None or previous_run_over:
            # A new run (the web UI may start several): resolve its configuration, check the target.
            self._config = self._prepare(environment)
            self._next_abort_check = 0.0
            if self._config is None:
                return None
        if storm is not None and storm.config is self._config:
            storm.store.set_gauge("vus", self.runner.user_count, {})
            coordinator: Coordinator | None = getattr(environment, "certctl_coordinator", None)
            if coordinator is not None and storm.t0 is not None:
                coordinator.check_workers()
            now = time.time()
            if storm.t0 is not None and self._stops_early(storm, now - storm.t0):
                return None
            if _is_drained(environment, storm, now):
                return None
        return self._config.fleet_size, float(self._config.fleet_size)


def _is_drained(environment: Any, storm: Storm, now: float) -> bool:
    coordinator: Coordinator | None = getattr(environment, "certctl_coordinator", None)
    return coordinator.is_drained(now) if coordinator is not None else storm.is_drained(now)


def new_storm(environment: Any, config: RunConfig) -> Storm:
    """This process's state for a new run, with a recorder per call and the TLS context."""
    storm = Storm(config)
    storm.recorders = {
        call.name: Recorder(
            storm.store,
            environment.events.request,
            scenario=config.scenario.name,
            name=call.name,
            method=call.method,
            check=call.check,
        )
        for call in config.calls
    }
    storm.ssl_context = build_ssl_context(config)
    return storm


@events.test_start.add_listener
def _on_test_start(environment: Any, **_: Any) -> None:
    runner = environment.runner
    if isinstance(runner, WorkerRunner):
        # The master forwards the harness's options; it sends the fleet's shape with the plan.
        config = resolve_config(environment.parsed_options, os.environ, environment.host)
        storm = new_storm(environment, config)
        storm.on_starved = lambda waiting: runner.send_message(NEED, {"waiting": waiting})
        environment.certctl_storm = storm
        return
    config: RunConfig = environment.certctl_config
    storm = new_storm(environment, config)
    storm.store.set_gauge("vus_max", config.fleet_size, {})
    environment.certctl_storm = storm
    if isinstance(runner, MasterRunner):
        environment.certctl_coordinator = Coordinator(storm, runner)


@events.spawning_complete.add_listener
def _on_spawning_complete(user_count: int, **_: Any) -> None:
    environment = _environment()
    storm: Storm | None = getattr(environment, "certctl_storm", None)
    if storm is None or storm.t0 is not None or isinstance(environment.runner, WorkerRunner):
        return
    coordinator: Coordinator | None = getattr(environment, "certctl_coordinator", None)
    if coordinator is not None:
        coordinator.plan()
    else:
        grants = [AgentGrant(index) for index in range(storm.config.fleet_size)]
        storm.start_schedule(time.time() + schedule_lead(len(grants)), grants)
    logger.info(
        "fleet of %d agents spawned; %s; %.2f requests/s offered for %gs",
        storm.config.fleet_size,
        ", ".join(f"{call.name} every {call.interval_s:g}s" for call in storm.config.calls),
        storm.config.offered_rate,
        storm.config.duration_s,
    )


def _register_master_messages(runner: Any) -> None:
    def on_final(environment: Any, msg: Any, **_: Any) -> None:
        coordinator: Coordinator | None = getattr(environment, "certctl_coordinator", None)
        if coordinator is not None:
            coordinator.on_report(msg.node_id, msg.data, final=True)

    def on_need(environment: Any, msg: Any, **_: Any) -> None:
        coordinator: Coordinator | None = getattr(environment, "certctl_coordinator", None)
        if coordinator is not None:
            coordinator.on_need(msg.node_id, msg.data["waiting"])

    runner.register_message(FINAL, on_final)
    runner.register_message(NEED, on_need)


def _register_worker_messages(runner: Any) -> None:
    def storm_of(environment: Any) -> Storm | None:
        return getattr(environment, "certctl_storm", None)

    def on_plan(environment: Any, msg: Any, **_: Any) -> None:
        if (storm := storm_of(environment)) is not None:
            apply_plan(storm, msg.data)

    def on_grant(environment: Any, msg: Any, **_: Any) -> None:
        if (storm := storm_of(environment)) is not None:
            apply_grant(storm, msg.data)

    def on_flush(environment: Any, msg: Any, **_: Any) -> None:
        if (storm := storm_of(environment)) is not None:
            send_final_when_drained(storm, environment.runner)

    runner.register_message(PLAN, on_plan)
    runner.register_message(GRANT, on_grant)
    runner.register_message(FLUSH, on_flush)


@events.report_to_master.add_listener
def _on_report_to_master(client_id: str, data: dict[str, Any], **_: Any) -> None:
    storm: Storm | None = getattr(_environment(), "certctl_storm", None)
    if storm is not None:
        data[REPORT_KEY] = worker_report(storm)


@events.worker_report.add_listener
def _on_worker_report(client_id: str, data: dict[str, Any], **_: Any) -> None:
    coordinator: Coordinator | None = getattr(_environment(), "certctl_coordinator", None)
    if coordinator is not None and REPORT_KEY in data:
        coordinator.on_report(client_id, data[REPORT_KEY])


def _finish(environment: Any, *, interrupted: bool) -> None:
    storm: Storm | None = getattr(environment, "certctl_storm", None)
    if storm is None or storm.outcome is not None:
        return
    now = time.time()
    coordinator: Coordinator | None = getattr(environment, "certctl_coordinator", None)
    if coordinator is not None and storm.t0 is not None:
        coordinator.check_workers()
        for name, count in coordinator.lost_beats().items():
            storm.recorders[name].dropped(count)
    stopped_on_purpose = storm.stop_reason is not None or storm.abort_reason is not None
    cut_short = interrupted or storm.interrupted or (not stopped_on_purpose and not storm.schedule_over(now))
    storm.outcome = finalize(storm, now, interrupted=cut_short)
    environment.process_exit_code = storm.outcome.exit_code


def _drain(environment: Any) -> None:
    """No new beat, and those in flight finish and are counted (not on a worker: the master
    drains the whole fleet before it stops the workers)."""
    storm: Storm | None = getattr(environment, "certctl_storm", None)
    if isinstance(environment.runner, WorkerRunner) or storm is None or storm.outcome is not None:
        return
    storm.closing = True
    wait_until_drained(storm, 5.0)


@events.test_stopping.add_listener
def _on_test_stopping(environment: Any, **_: Any) -> None:
    """Before Locust stops the users: drain, then stop them all from this greenlet."""
    _drain(environment)
    environment.certctl_final_user_counts = stop_all_users(environment.runner)


@events.test_stop.add_listener
def _on_test_stop(environment: Any, **_: Any) -> None:
    runner = environment.runner
    restore_final_counts(runner, getattr(environment, "certctl_final_user_counts", None))
    if not isinstance(runner, WorkerRunner):
        _finish(environment, interrupted=False)


@events.quitting.add_listener
def _on_quitting(environment: Any, **_: Any) -> None:
    runner = environment.runner
    if isinstance(runner, WorkerRunner):
        # A worker stopping on its own (SIGTERM, Ctrl-C) hands its last samples to the master.
        storm: Storm | None = getattr(environment, "certctl_storm", None)
        if storm is not None and storm.t0 is not None:
            hand_over_on_exit(storm, runner)
        environment.process_exit_code = 0
        return
    _drain(environment)  # Ctrl-C can reach here before Locust stops the users
    _finish(environment, interrupted=True)
    storm = getattr(environment, "certctl_storm", None)
    if storm is not None and storm.outcome is not None:
        environment.process_exit_code = storm.outcome.exit_code


@events.user_error.add_listener
def _on_user_error(user_instance: Any, exception: BaseException, **_: Any) -> None:
    storm: Storm | None = getattr(_environment(), "certctl_storm", None)
    if storm is not None:
        storm.harness_errors += 1
