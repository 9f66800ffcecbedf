"""One run in one Locust process: its phase, its steps, the agents it hands out, its samples and
its end.

A run is built whole when a test starts (:meth:`Run.__init__`) and moves through its phases
by the transitions below; Locust's event listeners (``certctl_load.plugin``) only forward to
them. Every moment is read from the run's clock, so the life cycle runs under a fake clock in
tests. A run is a sequence of steps, each with its own t0 and fleet (a storm has one).
"""

from __future__ import annotations

import enum
import json
import logging
import ssl
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import gevent
from gevent.event import Event
from gevent.lock import BoundedSemaphore

from certctl_load.k6.abort import CHECK_EVERY_S, abort_reason
from certctl_load.k6.metrics import MetricStore
from certctl_load.model.calls import CallSpec
from certctl_load.model.config import RunConfig
from certctl_load.reporting.files import write_atomically
from certctl_load.reporting.k6_json import K6JsonStream
from certctl_load.runtime.connect_phase import ConnectPhase
from certctl_load.runtime.early_stop import early_stop_reason
from certctl_load.runtime.generator import (
    LAG_STATS,
    CollectorGuard,
    CollectorPauses,
    CollectorSweep,
    CpuMeter,
    Health,
    LagProbe,
    fleet_health,
    judge_health,
)
from certctl_load.runtime.httpclient import Connection, make_ssl_context, open_connections
from certctl_load.runtime.judge import Outcome, RunFacts, judge
from certctl_load.runtime.recorder import Recorder, RequestEvent, Samples
from certctl_load.runtime.request_trace import RequestTrace
from certctl_load.timeline.timeline import Timeline

logger = logging.getLogger("certctl_load")

Clock = Callable[[], float]

# The schedule starts this long after the fleet is ready, and 0.1 ms more per agent: each waiting
# agent wakes to compute its first slot (and, connecting at its first beat, to build its loop), and
# all of that, with the collector's freeze, is over before t0.
SCHEDULE_LEAD_S = 0.25
CONNECT_LEAD_PER_AGENT_S = 0.0001
# The agents' schedules are frozen out of the collector's way halfway through the lead (after
# every waiting agent has woken to compute its first slot), and at least this long before t0.
FREEZE_BEFORE_T0_S = 0.05
# k6's gracefulStop: requests in flight at the end of the run get this long to finish.
GRACEFUL_STOP_S = 30.0


def schedule_lead(agents: int, minimum: float = SCHEDULE_LEAD_S) -> float:
    """How long after the fleet is spawned its schedule starts, for ``agents`` in one process."""
    return max(minimum, agents * CONNECT_LEAD_PER_AGENT_S)


class Phase(enum.StrEnum):
    """Where a run is; exactly the ``state`` the web UI's ``certctl/live`` reports."""

    IDLE = "idle"
    SPAWNING = "spawning"
    CONNECTING = "connecting"
    RUNNING = "running"
    DRAINING = "draining"
    FINISHED = "finished"


@dataclass(frozen=True)
class AgentGrant:
    """An agent a user may hold: its 0-based index, and from when its slots are the user's own
    (0: all of them; a user taking over a lost or stopped agent starts at its next slot)."""

    index: int
    resume_at: float = 0.0


@dataclass(frozen=True)
class Shape:
    """What a step runs: ``fleet_size`` agents making ``calls`` for ``duration_s`` (on a distributed
    worker this comes from the master's plan)."""

    fleet_size: int
    duration_s: float
    calls: tuple[CallSpec, ...]


@dataclass(frozen=True)
class Step:
    """One stretch of a run on one schedule: its shape from ``t0``, the first ``warmup_s`` of it
    not judged."""

    t0: float
    shape: Shape
    warmup_s: float = 0.0

    @property
    def hold_from(self) -> float:
        """When the judged part (the hold) begins: slots before it warm up."""
        return self.t0 + self.warmup_s

    @property
    def fleet_size(self) -> int:
        return self.shape.fleet_size

    @property
    def duration_s(self) -> float:
        return self.shape.duration_s

    @property
    def calls(self) -> tuple[CallSpec, ...]:
        return self.shape.calls

    @property
    def end(self) -> float:
        """When the step's last slot lies (slots strictly before it are sent)."""
        return self.t0 + self.duration_s


def build_ssl_context(config: RunConfig) -> ssl.SSLContext | None:
    """The run's TLS context: verifying unless --insecure; None for an http:// target."""
    if not config.endpoint.is_tls:
        return None
    return make_ssl_context(insecure=config.insecure, ca_bundle=config.ca_bundle)


class Run:
    """A run's state and life cycle in one process (the master's holds the whole fleet's samples)."""

    def __init__(
        self,
        config: RunConfig,
        request_event: RequestEvent,
        *,
        clock: Clock = time.time,
        watch_generator: bool = False,
    ) -> None:
        """``watch_generator``: tune the process's garbage collector and watch the generator's
        health while the schedule runs (a real run; not a run driven by a test's fake clock)."""
        self.config = config
        self.clock = clock
        self.store = MetricStore()
        self.started_at = clock()
        # The raw rows of k6's JSON output, kept only with --out json=FILE (on a worker, when its
        # master's plan asks for them).
        self.samples: Samples | None = Samples() if config.out is not None else None
        self._json: K6JsonStream | None = None  # the output file, opened at the first batch
        # The run second by second, and its windowed thresholds (a worker's hands its seconds over).
        self.timeline = Timeline(config.scenario.thresholds, config.scenario.name)
        self.recorders: Mapping[str, Recorder] = {
            call.name: Recorder(
                self.store,
                request_event,
                scenario=config.scenario.name,
                name=call.name,
                method=call.method,
                check=call.check,
                timeline=self.timeline,
                samples=self.samples,
                clock=clock,
            )
            for call in config.calls
        }
        # With --warmup, the beats due in the warm-up are recorded here, on a store nothing reads
        # (Locust's own statistics still see them).
        self.warmup_store = warmup_store = MetricStore()
        self.warmup_recorders: Mapping[str, Recorder] = (
            {
                call.name: Recorder(
                    warmup_store,
                    request_event,
                    scenario=config.scenario.name,
                    name=call.name,
                    method=call.method,
                    check=call.check,
                    timeline=self.timeline,  # the warm-up's seconds are charted too
                    clock=clock,
                )
                for call in config.calls
            }
            if config.warmup_s
            else {}
        )
        # Requests sent, and responses completed, in the hold (from t0 + warmup to the schedule's end).
        self.hold_sent = 0
        self.hold_completed = 0
        self.ssl_context = build_ssl_context(config)
        self.trace = RequestTrace(config.request_trace) if config.request_trace else None
        self.watch_generator = watch_generator
        self.collector = CollectorGuard()
        self.collector_pauses = CollectorPauses(self.store, self.timeline)
        self.lag_probe = LagProbe(self.store, self.timeline)
        self.collector_sweep = CollectorSweep(self.collector)
        self.cpu_meter = CpuMeter(self.store, self.timeline)
        self.steps: list[Step] = []
        self.shape: Shape | None = None  # the next step's, known before its t0
        self.connect: ConnectPhase | None = None  # the fleet's connects before t0, when it has them
        self._connect_slots = BoundedSemaphore(config.scenario.connect_concurrency)
        self._agents_expected = 0
        self._agents_ready = 0
        # Called once every agent this process holds is ready to beat (connected, when it connects
        # first): the run then fixes t0, or a worker tells its master.
        self.on_fleet_ready: Callable[[], None] | None = None
        self._scheduled = Event()
        self._grants: deque[AgentGrant] = deque()
        self._grants_available = Event()
        self.inflight = 0
        self.last_response_at = 0.0
        self.agents_running = 0
        self.waiting_for_agents = 0
        self.harness_errors = 0
        self.incidents: list[str] = []
        self.stop_reason: str | None = None  # stopped early: the target is not ready (exit 2)
        self.abort_reason: str | None = None  # stopped by an abortOnFail threshold (exit 99)
        self.refusal: str | None = None  # refused before any load: a bad configuration (exit 104)
        self.closed_at: float | None = None  # from when no agent sends a new beat (close())
        self.interrupted = False  # stopped by a signal
        self.outcome: Outcome | None = None
        self.drained_at: float | None = None
        self._next_abort_check = 0.0
        # Called when a user finds no agent to hold (a worker then asks the master for more).
        self.on_starved: Callable[[int], None] | None = None

    # Phase -----------------------------------------------------------------------------------

    @property
    def step(self) -> Step | None:
        """The step being run; None until the schedule is fixed."""
        return self.steps[-1] if self.steps else None

    @property
    def closing(self) -> bool:
        """True once the run is closed: no agent sends a new beat."""
        return self.closed_at is not None

    def close(self) -> None:
        """No agent sends a new beat from now on (the first call's moment is kept)."""
        if self.closed_at is None:
            self.closed_at = self.clock()

    @property
    def t0(self) -> float | None:
        return None if self.step is None else self.step.t0

    @property
    def end(self) -> float | None:
        """When the run's last slot lies; None until the schedule is fixed."""
        return None if self.step is None else self.step.end

    def phase(self, now: float | None = None) -> Phase:
        """The run's phase at ``now`` (default: the clock)."""
        if self.outcome is not None:
            return Phase.FINISHED
        end = self.end
        if end is None:
            return Phase.CONNECTING if self.connect is not None else Phase.SPAWNING
        moment = self.clock() if now is None else now
        return Phase.DRAINING if self.closing or moment >= end else Phase.RUNNING

    # Start -----------------------------------------------------------------------------------

    def prepare(
        self, shape: Shape, grants: Sequence[AgentGrant], *, connecting_agents: int | None = None
    ) -> None:
        """The next step's shape and the agents this process's users will hold, before t0: the
        agents claim them, build their loops and, when the scenario connects before the start,
        connect (spawning -> connecting). ``connecting_agents``: how many agents the connect phase
        waits for (a master's workers hold them all; default: this process's)."""
        self.shape = shape
        self._agents_expected = len(grants)
        self._agents_ready = 0
        if self.config.scenario.connects_before_start:
            self.connect = ConnectPhase(len(grants) if connecting_agents is None else connecting_agents)
        self.give_agents(grants)

    def start_at(self, t0: float) -> None:
        """Fix the prepared step's t0; wakes every agent waiting for it (-> running)."""
        assert self.shape is not None, "prepare the step first"
        step = Step(t0, self.shape, self.config.warmup_s)
        self.steps.append(step)
        self.timeline.start(t0, step.fleet_size, [call.interval_s for call in step.calls], step.duration_s)
        self._scheduled.set()
        if self.watch_generator:
            gevent.spawn(self._watch_generator, step)
            gevent.spawn(self._tick_timeline, step)

    def _tick_timeline(self, step: Step) -> None:
        """At the end of every second from t0 until the run is judged: the connections open then,
        and the timeline folded (and, not on a worker, its final seconds judged)."""
        second = 0
        while self.outcome is None and not self.timeline.handed_over:
            gevent.sleep(max(0.0, step.t0 + second + 1 - self.clock()))
            self.tick_timeline(second)
            second += 1

    def tick_timeline(self, second: int) -> None:
        """The end of ``second`` since t0: record the connections open now, fold the timeline and,
        not on a worker, make its final seconds final (the windows they close judged)."""
        self.timeline.connections_at(second, open_connections())
        self.timeline.advance(self.clock())

    def _watch_generator(self, step: Step) -> None:
        """Freeze what the agents built for the step just before t0; from t0 time every collection,
        and until the end of the schedule probe the lag and the CPU."""
        lead = step.t0 - self.clock()
        gevent.sleep(max(0.0, lead - max(FREEZE_BEFORE_T0_S, lead / 2)))
        self.collector.freeze()
        gevent.sleep(max(0.0, step.t0 - self.clock()))
        if self.outcome is not None or self.drained_at is not None:
            return
        self.collector_pauses.install()
        self.lag_probe.start()
        self.cpu_meter.start()
        self.collector_sweep.start()
        gevent.sleep(max(0.0, step.end - self.clock()))
        self.lag_probe.stop()
        self.cpu_meter.stop()

    def start_schedule(self, t0: float, grants: Sequence[AgentGrant]) -> None:
        """The one step of a storm at once: the configured fleet, calls and duration from ``t0``."""
        config = self.config
        self.prepare(Shape(config.fleet_size, config.duration_s, config.calls), grants)
        self.start_at(t0)

    def join(self, connections: Sequence[Connection]) -> None:
        """An agent with its loops built is ready: it first opens its connections when the scenario
        connects before the start (at most ``connect_concurrency`` at once), recorded in the connect
        phase until it is complete (an agent taking over later only connects)."""
        if self.config.scenario.connects_before_start:
            with self._connect_slots:
                phase = self.connect
                if phase is not None and not phase.complete:
                    phase.begin(self.clock())
                    outcomes = [connection.open() for connection in connections]
                    phase.record(outcomes, self.clock())
                else:
                    for connection in connections:
                        connection.open()
        self._agents_ready += 1
        if self._agents_ready == self._agents_expected:
            if self.watch_generator:  # everything the schedule needs is alive: out of the collector's way
                self.collector.freeze()
            if self.on_fleet_ready is not None:
                self.on_fleet_ready()

    def give_agents(self, grants: Iterable[AgentGrant]) -> None:
        self._grants.extend(grants)
        if self._grants:
            self._grants_available.set()

    def wait_for_schedule(self) -> Step:
        """Block (killably) until the schedule is fixed; returns the step."""
        self._scheduled.wait()
        step = self.step
        assert step is not None
        return step

    def claim_agent(self) -> AgentGrant:
        """The next agent no other user holds (blocks, killably, until one is granted)."""
        while not self._grants:
            self._grants_available.clear()
            self.waiting_for_agents += 1
            try:
                if self.on_starved is not None and self.shape is not None:  # not before the plan
                    self.on_starved(self.waiting_for_agents)
                self._grants_available.wait()
            finally:
                self.waiting_for_agents -= 1
        self.agents_running += 1
        return self._grants.popleft()

    def release_agent(self, grant: AgentGrant) -> None:
        """A stopped user's agent goes back to the pool, for a user spawned later to take over."""
        self.agents_running -= 1
        self._grants.append(grant)

    def keep_samples(self, keep: bool) -> None:
        """Keep every sample's raw row from now on for k6's JSON output, or not: a worker does as
        its master's plan says (the master writes the file)."""
        if keep == (self.samples is not None):
            return
        self.samples = Samples() if keep else None
        for recorder in self.recorders.values():
            recorder.samples = self.samples

    # While it runs ---------------------------------------------------------------------------

    def set_vus(self, users: int) -> None:
        """The users running now (k6's ``vus``), read at every shape tick; with k6's JSON output
        each reading is a ``vus`` and a ``vus_max`` point, as k6 writes them every second."""
        self.store.set_gauge("vus", users, {})
        now = self.clock()
        self.timeline.samples.append((now, "vus", users))
        self.timeline.samples.append((now, "vus_max", self.config.fleet_size))
        if self.samples is not None:
            self.samples.gauges.append((now, "vus", users))
            self.samples.gauges.append((now, "vus_max", self.config.fleet_size))

    def refuse(self, line: str) -> None:
        """Refuse the run before any load (a bad configuration somewhere): exit 104."""
        self.refusal = self.refusal or line
        self.close()

    def stop_reason_now(self, now: float) -> str | None:
        """Why the run must stop now, if it must: refused, the target plainly cannot take the storm
        (a burst of 429/401/404 early on), or an abortOnFail threshold crossed (checked every 2 s)."""
        if self.refusal is not None:
            return self.refusal
        step = self.step
        if step is None:
            return self.stop_reason  # the fleet could not connect
        elapsed = now - step.t0
        self.timeline.advance(now)
        scenario = self.config.scenario.name
        # In the warm-up its own samples tell; in the hold, the hold's from its start.
        store, since = (
            (self.warmup_store, elapsed) if now < step.hold_from else (self.store, now - step.hold_from)
        )
        self.stop_reason = self.stop_reason or early_stop_reason(store, scenario, since)
        if self.stop_reason is None and self.abort_reason is None and elapsed >= self._next_abort_check:
            self._next_abort_check = elapsed + CHECK_EVERY_S
            self.abort_reason = abort_reason(
                self.config.scenario.thresholds, self.store, elapsed, self.timeline.results()
            )
        return self.stop_reason or self.abort_reason

    def schedule_over(self, now: float) -> bool:
        """True once the run's last slot has passed."""
        end = self.end
        return end is not None and now >= end

    def is_drained(self, now: float) -> bool:
        """True once the run's end has passed and no request is in flight (or the grace ran out)."""
        end = self.end
        if end is None or now < end:
            return False
        return self.inflight == 0 or now >= end + GRACEFUL_STOP_S

    def test_run_duration_s(self, now: float) -> float:
        """From the hold's start (t0, after any warm-up) to the later of the run's end and the last
        response (at least the duration)."""
        step = self.step
        if step is None:
            return max(now - self.started_at, 0.0)
        return max(step.duration_s, min(now, self.last_response_at) - step.t0) - step.warmup_s

    # End -------------------------------------------------------------------------------------

    def finish(
        self,
        now: float,
        *,
        interrupted: bool = False,
        lost_beats: Mapping[str, int] | None = None,
        worker_errors: int = 0,
        worker_health: Mapping[str, Health] | None = None,
    ) -> Outcome:
        """Judge the run once (later calls return the same outcome): write the summaries, decide
        the exit code. It was cut short when interrupted, or when it ended before its schedule
        without stopping on purpose."""
        if self.outcome is not None:
            return self.outcome
        self.wind_down()
        for name, count in (lost_beats or {}).items():
            self.recorders[name].dropped(count)
        if self.refusal is None:
            self._write_json_output()
            self._write_timeline()
        stopped_on_purpose = any((self.stop_reason, self.abort_reason, self.refusal))
        ended_before_schedule = not stopped_on_purpose and not self.schedule_over(now)
        cut_short = interrupted or self.interrupted or ended_before_schedule
        self.outcome = judge(self._facts(now, cut_short, worker_errors, worker_health or {}))
        return self.outcome

    def timeline_path(self) -> Path:
        """``results/timeline-agent-storm.json``, beside the summaries."""
        return self.config.results_dir / f"timeline-{self.config.scenario.file_stem}.json"

    def _write_timeline(self) -> None:
        """Every second final, the timeline file written (a file that cannot be written is a harness
        error, exit 1; the summaries are still written)."""
        self.timeline.finish()
        try:
            write_atomically(self.timeline_path(), json.dumps(self.timeline.document()) + "\n")
        except OSError as error:
            self.harness_errors += 1
            logger.error("timeline %s: not written: %s", self.timeline_path(), error.strerror or error)

    def write_samples(self) -> None:
        """With --out json=FILE, on a local or master process (every shape tick, and at the end): the
        rows held since the last call (a master's: the whole fleet's) go to k6's JSON output, so
        memory holds one batch at most. A file that cannot be written is a harness error (exit 1),
        and the output stops; the summaries are still written."""
        out, samples = self.config.out, self.samples
        if out is None or samples is None:
            return
        batch = samples.take()
        try:
            if self._json is None:
                self._json = K6JsonStream(self.config)
            self._json.write(batch["requests"], batch["drops"], batch["gauges"])
        except OSError as error:
            self._give_up_json(error)

    def _write_json_output(self) -> None:
        """The last rows, and k6's JSON output renamed into place."""
        self.write_samples()
        stream, out = self._json, self.config.out
        if stream is None or out is None:
            return
        self._json = None
        try:
            points = stream.close()
        except OSError as error:
            self._give_up_json(error)
            return
        logger.info("k6 JSON output: %d points written to %s", points, out.path)

    def _give_up_json(self, error: OSError) -> None:
        self.harness_errors += 1
        out = self.config.out
        logger.error("--out json=%s: not written: %s", out.path if out else "", error.strerror or error)
        if self._json is not None:
            self._json.abandon()
            self._json = None
        self.keep_samples(False)

    def drained(self) -> None:
        """Nothing is in flight any more: the generator's watch ends (collections after the drain,
        such as stopping the users, are not the schedule's)."""
        if self.drained_at is None:
            self.drained_at = self.clock()
        self.collector_pauses.remove()
        self.collector_sweep.stop()
        self.lag_probe.stop()
        self.cpu_meter.stop()

    def health(self) -> Health:
        """This process's generator figures and whether it was saturated."""
        late = self.store.counter("late_iterations", {}).count
        beats = self.store.counter("iterations", {}).count
        return judge_health(
            self.lag_probe.figures(), self.cpu_meter.busiest_pct, self.collector_pauses.figures(), late, beats
        )

    def wind_down(self) -> None:
        """Once drained, on every process: the collector back to normal (one collection), the
        bench-only request trace written out."""
        self.drained()
        self.collector.release()
        if self.trace is not None:
            self.trace.close()
            self.trace = None

    def fleet_health(self, workers: Mapping[str, Health]) -> Health:
        """The generator's health: this process's, or with workers the whole fleet's."""
        own = self.health()
        if not workers:
            return own
        lag = self.store.trend("generator_lag", {}).stats(list(LAG_STATS.values()))
        late = self.store.counter("late_iterations", {}).count
        beats = self.store.counter("iterations", {}).count
        lag_ms = {name: lag[stat] for name, stat in LAG_STATS.items()}
        return fleet_health(own, workers, lag_ms, late / beats if beats else 0.0)

    def _facts(
        self, now: float, cut_short: bool, worker_errors: int, workers: Mapping[str, Health]
    ) -> RunFacts:
        step = self.step
        calls: Sequence[CallSpec] = self.config.calls if step is None else step.calls
        return RunFacts(
            config=self.config,
            calls=tuple(calls),
            store=self.store,
            duration_s=self.test_run_duration_s(now),
            interrupted=cut_short,
            harness_errors=self.harness_errors + worker_errors,
            stop_reason=self.stop_reason,
            abort_reason=self.abort_reason,
            refusal=self.refusal,
            incidents=tuple(self.incidents),
            generator=self.fleet_health(workers),
            generator_workers=dict(workers),
            connect=None if self.connect is None else self.connect.summary(),
            dropped=int(self.store.counter("dropped_iterations", {}).count),
            hold=self.hold_figures(),
            timeline=None if self.refusal is not None else self.timeline.document(),
            windowed=tuple(self.timeline.results()),
            timeline_path=None if self.refusal is not None else self.timeline_path(),
        )

    def hold_figures(self) -> dict[str, float] | None:
        """With --warmup, the summary's ``hold``: when it began after t0, how long it lasted, the
        requests sent in it and the responses completed in it (None without a warm-up)."""
        warmup = self.config.warmup_s
        if not warmup:
            return None
        step = self.step
        duration = (step.duration_s if step is not None else self.config.duration_s) - warmup
        sent, completed = self.hold_sent, self.hold_completed
        return {"from_s": warmup, "duration_s": duration, "sent": sent, "completed": completed}
