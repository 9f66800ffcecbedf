"""The harness in one Locust process: one typed handle per environment, whose listeners forward
Locust's events to the run (``certctl_load.runtime.run``) and do little else.

A local or master process resolves its configuration at ``init`` (a bad one exits 104 before
any load) and again when each run starts (the web UI may change it); a worker resolves the
options its master forwards when the run starts, and reports a bad configuration before it
takes any agent.
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Sequence
from typing import Any
from weakref import WeakKeyDictionary

import gevent
from locust.env import Environment
from locust.rpc.protocol import Message
from locust.runners import MasterRunner, Runner, WorkerRunner

from certctl_load import exitcodes
from certctl_load.errors import HarnessError
from certctl_load.model.config import RunConfig, resolve_config
from certctl_load.plugin.locust_internals import fleet_workers, quiet_spawn_rate_warning
from certctl_load.plugin.user_stop import restore_final_counts, stop_all_users
from certctl_load.reporting.files import ensure_writable_dir
from certctl_load.reporting.k6_json import check_writable
from certctl_load.runtime.coordinator import (
    CONNECTED,
    FINAL,
    FLUSH,
    GRANT,
    NEED,
    PLAN,
    REFUSED,
    REPORT_KEY,
    START,
    Coordinator,
    WorkerNode,
    apply_grant,
    apply_plan,
    apply_start,
    hand_over_on_exit,
    send_final_when_drained,
    wait_until_drained,
    worker_report,
)
from certctl_load.runtime.generator import Health
from certctl_load.runtime.preflight import run_preflight
from certctl_load.runtime.run import AgentGrant, Run, Shape, build_ssl_context, schedule_lead

logger = logging.getLogger("certctl_load")

_harnesses: WeakKeyDictionary[Environment, Harness] = WeakKeyDictionary()


def harness_for(environment: Environment) -> Harness:
    """The harness of ``environment`` (set up by the ``init`` listener)."""
    return _harnesses[environment]


def resolve(environment: Environment) -> RunConfig:
    """The run's configuration from Locust's current options (the web UI may have changed them)."""
    config = resolve_config(environment.parsed_options, os.environ, environment.host)
    ensure_writable_dir(config.results_dir)
    if config.out is not None:
        check_writable(config.out)
    return config


def log_error(error: HarnessError) -> None:
    for line in str(error).splitlines():
        logger.error("%s", line)


class _MasterLink:
    """The coordinator's line to the workers, over Locust's master runner."""

    def __init__(self, runner: MasterRunner) -> None:
        self._runner = runner

    def workers(self) -> Sequence[WorkerNode]:
        return fleet_workers(self._runner)

    def send(self, message: str, data: Any, worker: str | None = None) -> None:
        self._runner.send_message(message, data, client_id=worker)


class Harness:
    """The harness's state in one Locust process: the configuration and the current run."""

    def __init__(self, environment: Environment, runner: Runner, config: RunConfig | None) -> None:
        self.environment = environment
        self.runner = runner
        self.config = config  # None on a worker until a run starts
        self.run: Run | None = None
        self.coordinator: Coordinator | None = None
        self._prepared: RunConfig | None = None  # the configuration the shape's current run uses
        self._closing_lines = ""  # a headless run's verdict table and paths, printed after Locust's tables
        self._final_user_counts: dict[str, int] | None = None

    @classmethod
    def install(cls, environment: Environment, runner: Runner) -> Harness | None:
        """Create the harness of ``environment`` and attach its listeners; None (the error logged,
        the exit code set) when the configuration is bad."""
        config = None
        if not isinstance(runner, WorkerRunner):
            try:
                config = resolve(environment)
            except HarnessError as error:
                log_error(error)
                environment.process_exit_code = error.exit_code
                return None
        harness = cls(environment, runner, config)
        _harnesses[environment] = harness
        harness._attach()
        return harness

    def generator_health(self) -> Health | None:
        """The load generator's health so far: this process's, or on a master the whole fleet's."""
        if self.run is None or self.run.t0 is None:
            return None
        return self.run.fleet_health(self.coordinator.worker_health() if self.coordinator else {})

    def timeline_rows(self, since: int) -> list[dict[str, Any]]:
        """The current run's final per-second rows with ``t >= since``, oldest first (the web UI's
        live charts poll them); [] before the first run."""
        return [] if self.run is None else self.run.timeline.rows_since(since)

    @property
    def is_worker(self) -> bool:
        return isinstance(self.runner, WorkerRunner)

    def _attach(self) -> None:
        events = self.environment.events
        events.test_start.add_listener(self.on_test_start)
        events.spawning_complete.add_listener(self.on_spawning_complete)
        events.test_stopping.add_listener(self.on_test_stopping)
        events.test_stop.add_listener(self.on_test_stop)
        events.quitting.add_listener(self.on_quitting)
        events.user_error.add_listener(self.on_user_error)
        events.quit.add_listener(self.on_quit)
        quiet_spawn_rate_warning()
        runner = self.runner
        if isinstance(runner, WorkerRunner):
            events.report_to_master.add_listener(self.on_report_to_master)
            runner.register_message(PLAN, self._on_plan)
            runner.register_message(GRANT, self._on_grant)
            runner.register_message(FLUSH, self._on_flush)
            runner.register_message(START, self._on_start)
        elif isinstance(runner, MasterRunner):
            events.worker_report.add_listener(self.on_worker_report)
            runner.register_message(FINAL, self._on_final)
            runner.register_message(NEED, self._on_need)
            runner.register_message(REFUSED, self._on_refused)
            runner.register_message(CONNECTED, self._on_connected)

    def handle_stop_signals(self) -> None:
        """With a shape, Locust installs its SIGTERM handler only after the run: until then SIGTERM
        (docker stop, a CI timeout) would kill the process with no summary. Ctrl-C is handled the
        same way, in a greenlet of its own, so it never lands inside an agent's request."""
        for signal_number in (signal.SIGTERM, signal.SIGINT):
            gevent.signal_handler(signal_number, self._on_stop_signal, signal_number)

    def _on_stop_signal(self, signal_number: int) -> None:
        name = signal.Signals(signal_number).name
        run = self.run
        if run is not None and run.interrupted:
            logger.error("%s again: exiting at once", name)
            os._exit(exitcodes.INTERRUPTED)
        logger.info("%s: stopping the storm and writing the summaries", name)
        if run is not None:
            run.interrupted = True
        else:
            self.environment.process_exit_code = exitcodes.INTERRUPTED
        self.runner.quit()

    # A run's start ---------------------------------------------------------------------------

    def prepare(self) -> RunConfig | None:
        """Resolve the next run's configuration and check the target; None (logged, exit code set)
        when either fails."""
        try:
            config = resolve(self.environment)
            if not config.skip_preflight:
                run_preflight(config, build_ssl_context(config))
        except HarnessError as error:
            log_error(error)
            self.environment.process_exit_code = error.exit_code
            return None
        self.config = config
        return config

    def on_test_start(self, **_: Any) -> None:
        runner = self.runner
        if isinstance(runner, WorkerRunner):
            self._start_worker_run(runner)
            return
        assert self.config is not None
        run = Run(self.config, self.environment.events.request, watch_generator=True)
        run.store.set_gauge("vus_max", self.config.fleet_size, {})
        self.run = run
        self.coordinator = Coordinator(run, _MasterLink(runner)) if isinstance(runner, MasterRunner) else None

    def _start_worker_run(self, runner: WorkerRunner) -> None:
        """The master forwards the harness's options; a bad configuration here is reported to the
        master before any agent is taken (this worker's users then stay idle)."""
        self.run = None
        try:
            config = resolve_config(self.environment.parsed_options, os.environ, self.environment.host)
        except HarnessError as error:
            log_error(error)
            runner.send_message(REFUSED, {"line": str(error).splitlines()[0]})
            return
        run = Run(config, self.environment.events.request, watch_generator=True)
        run.on_starved = lambda waiting: runner.send_message(NEED, {"waiting": waiting})
        run.on_fleet_ready = lambda: runner.send_message(
            CONNECTED, None if run.connect is None else run.connect.to_wire()
        )
        self.config, self.run = config, run

    def on_spawning_complete(self, user_count: int, **_: Any) -> None:
        run = self.run
        if run is None or run.shape is not None or self.is_worker:
            return
        if self.coordinator is not None:
            self.coordinator.plan()
            if run.refusal is not None:
                return
        else:
            self._start_local(run)
        config = run.config
        logger.info(
            "fleet of %d agents spawned; %s; %.2f requests/s offered for %gs",
            config.fleet_size,
            ", ".join(f"{call.name} every {call.interval_s:g}s" for call in config.calls),
            config.offered_rate,
            config.duration_s,
        )

    def _start_local(self, run: Run) -> None:
        """A local run's one step: t0 once the fleet has connected, or at once (with a lead for the
        agents to build their loops) when each agent connects at its first beat."""
        config = run.config
        grants = [AgentGrant(index) for index in range(config.fleet_size)]
        shape = Shape(config.fleet_size, config.duration_s, config.calls)
        if config.scenario.connects_before_start:
            run.on_fleet_ready = lambda: self._connected(run)
            run.prepare(shape, grants)
        else:
            run.prepare(shape, grants)
            run.start_at(run.clock() + schedule_lead(len(grants)))

    def _connected(self, run: Run) -> None:
        """Every agent of a local run has connected: fix t0, or stop when too many could not."""
        assert run.connect is not None
        run.stop_reason = run.connect.failure(run.config.fleet_size)
        if run.stop_reason is None:
            run.start_at(run.clock() + schedule_lead(run.config.fleet_size))

    # While it runs ---------------------------------------------------------------------------

    def shape_tick(self, user_count: int) -> int | None:
        """The shape's tick: the fleet size to run, or None once the run must stop (the next run's
        configuration or target is bad; the run stopped early, aborted, was refused, or drained)."""
        run = self.run
        finished = run is not None and run.config is self._prepared and run.outcome is not None
        if self._prepared is None or finished:
            # A new run (the web UI may start several): resolve its configuration, check the target.
            self._prepared = self.prepare()
            if self._prepared is None:
                return None
        if run is not None and run.config is self._prepared and not self._keeps_running(run, user_count):
            return None
        return self._prepared.fleet_size

    def _keeps_running(self, run: Run, user_count: int) -> bool:
        run.set_vus(user_count)
        run.write_samples()
        coordinator = self.coordinator
        if coordinator is not None and run.t0 is not None:
            coordinator.check_workers()
        now = run.clock()
        reason = run.stop_reason_now(now)
        if reason is not None:
            logger.error("%s", reason)
            return False
        drained = coordinator.is_drained(now) if coordinator is not None else run.is_drained(now)
        return not drained

    def on_report_to_master(self, client_id: str, data: dict[str, Any], **_: Any) -> None:
        if self.run is not None:
            data[REPORT_KEY] = worker_report(self.run)

    def on_worker_report(self, client_id: str, data: dict[str, Any], **_: Any) -> None:
        if self.coordinator is not None and REPORT_KEY in data:
            self.coordinator.on_report(client_id, data[REPORT_KEY])

    def on_user_error(self, user_instance: Any, exception: BaseException, **_: Any) -> None:
        if self.run is not None:
            self.run.harness_errors += 1

    def _on_plan(self, environment: Environment, msg: Message, **_: Any) -> None:
        if self.run is not None:
            apply_plan(self.run, msg.data)

    def _on_grant(self, environment: Environment, msg: Message, **_: Any) -> None:
        if self.run is not None:
            apply_grant(self.run, msg.data)

    def _on_start(self, environment: Environment, msg: Message, **_: Any) -> None:
        if self.run is not None:
            apply_start(self.run, msg.data)

    def _on_connected(self, environment: Environment, msg: Message, **_: Any) -> None:
        if self.coordinator is not None:
            self.coordinator.on_connected(msg.node_id, msg.data)

    def _on_flush(self, environment: Environment, msg: Message, **_: Any) -> None:
        if self.run is not None:
            send_final_when_drained(self.run, self._send_to_master)

    def _send_to_master(self, message: str, data: Any) -> None:
        self.runner.send_message(message, data)

    def _on_final(self, environment: Environment, msg: Message, **_: Any) -> None:
        if self.coordinator is not None:
            self.coordinator.on_report(msg.node_id, msg.data, final=True)

    def _on_need(self, environment: Environment, msg: Message, **_: Any) -> None:
        if self.coordinator is not None:
            self.coordinator.on_need(msg.node_id, msg.data["waiting"])

    def _on_refused(self, environment: Environment, msg: Message, **_: Any) -> None:
        if self.coordinator is not None:
            logger.error("%s", self.coordinator.on_refused(msg.node_id, msg.data["line"]))

    # A run's end -----------------------------------------------------------------------------

    def _drain(self) -> None:
        """No new beat, and those in flight finish and are counted (not on a worker: the master
        drains the whole fleet before it stops the workers)."""
        run = self.run
        if self.is_worker or run is None or run.outcome is not None:
            return
        run.close()
        wait_until_drained(run, 5.0)
        run.drained()

    def _finish(self, *, interrupted: bool) -> None:
        run = self.run
        if run is None or run.outcome is not None:
            return
        coordinator = self.coordinator
        lost_beats: dict[str, int] = {}
        worker_errors = 0
        worker_health: dict[str, Health] = {}
        if coordinator is not None:
            if run.t0 is not None:
                coordinator.check_workers()
                lost_beats = coordinator.lost_beats()
            worker_errors = coordinator.worker_errors
            worker_health = coordinator.worker_health()
        outcome = run.finish(
            run.clock(),
            interrupted=interrupted,
            lost_beats=lost_beats,
            worker_errors=worker_errors,
            worker_health=worker_health,
        )
        self.environment.process_exit_code = outcome.exit_code
        options = self.environment.parsed_options
        if options is not None and options.headless:
            self._closing_lines = outcome.closing_lines  # after Locust's own tables, at quit
        elif outcome.closing_lines:
            print(outcome.closing_lines, flush=True)

    def on_test_stopping(self, **_: Any) -> None:
        """Before Locust stops the users: drain, then stop them all from this greenlet."""
        self._drain()
        self._final_user_counts = stop_all_users(self.runner)

    def on_test_stop(self, **_: Any) -> None:
        restore_final_counts(self.runner, self._final_user_counts)
        if not self.is_worker:
            self._finish(interrupted=False)

    def on_quit(self, **_: Any) -> None:
        """Locust has printed its shutdown tables: the verdict and the paths come last."""
        if self._closing_lines:
            print(self._closing_lines, flush=True)
            self._closing_lines = ""

    def on_quitting(self, **_: Any) -> None:
        if self.is_worker:
            # A worker stopping on its own (SIGTERM, Ctrl-C) hands its last samples to the master.
            if self.run is not None and self.run.t0 is not None:
                hand_over_on_exit(self.run, self._send_to_master)
            self.environment.process_exit_code = 0
            return
        self._drain()  # Ctrl-C can reach here before Locust stops the users
        self._finish(interrupted=True)
        if self.run is not None and self.run.outcome is not None:
            self.environment.process_exit_code = self.run.outcome.exit_code
