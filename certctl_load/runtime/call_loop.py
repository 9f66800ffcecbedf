"""One call of one agent on its absolute schedule: the request it sends, its connection, its drop
and lateness accounting."""

from __future__ import annotations

from collections.abc import Sequence

import gevent

from certctl_load.model import fleet
from certctl_load.model.calls import CallSpec, call_schedules
from certctl_load.model.schedule import AgentSchedule, after_response, on_wake, slots_before
from certctl_load.runtime.httpclient import Connection, build_request
from certctl_load.runtime.recorder import Recorder
from certctl_load.runtime.run import Run, Step

# A loop's schedule until the step's t0 is fixed: no slot at all.
_NOT_SCHEDULED = AgentSchedule(start=0.0, interval=1.0, end=0.0)


def call_request(run: Run, call: CallSpec, agent_number: int) -> bytes:
    """The request bytes of one call for one agent, built once and sent on every beat."""
    config = run.config
    agent_id = fleet.agent_id(agent_number, config.scenario.id_prefix)
    body = call.request_body(agent_number)
    headers = {"Authorization": f"Bearer {config.token}", "User-Agent": "certctl-load"}
    if body:
        headers["Content-Type"] = "application/json"
    return build_request(config.endpoint, call.method, call.path.replace("{id}", agent_id), headers, body)


class CallLoop:
    """One call of one agent: its schedule, its connection, its drop and lateness accounting."""

    __slots__ = (
        "run", "recorder", "warmup_recorder", "schedule", "request", "next_slot", "connection", "agent",
        "hold_slot", "hold_from",
    )  # fmt: skip

    def __init__(
        self,
        run: Run,
        recorder: Recorder,
        request: bytes,
        agent: int,
        source_address: str | None = None,
        warmup_recorder: Recorder | None = None,
    ) -> None:
        """``warmup_recorder``: where the beats due in the warm-up go (default: ``recorder``)."""
        config = run.config
        self.run = run
        self.agent = agent
        self.recorder = recorder
        self.warmup_recorder = warmup_recorder or recorder
        self.schedule = _NOT_SCHEDULED
        self.request = request
        self.next_slot = 0
        self.hold_slot = 0  # the first slot judged (the earlier ones warm up)
        self.hold_from = 0.0  # when the hold begins: requests sent and completed from then are counted
        self.connection = Connection(
            config.endpoint,
            ssl_context=run.ssl_context,
            timeout_s=config.scenario.request_timeout_s,
            keep_alive=config.scenario.connection == "keep-alive",
            source_address=source_address,
        )

    def schedule_on(self, schedule: AgentSchedule, resume_at: float, hold_from: float = 0.0) -> None:
        """Beat on ``schedule`` from its first slot at or after ``resume_at``; slots before
        ``hold_from`` warm up and are recorded apart."""
        self.schedule = schedule
        self.next_slot = schedule.first_at_or_after(resume_at)
        self.hold_slot = schedule.first_at_or_after(hold_from)
        self.hold_from = hold_from

    def seconds_to_next(self, now: float) -> float | None:
        """How long until the next slot; None once the run has no slot left for this call."""
        if self.next_slot >= self.schedule.slot_count():
            return None
        return max(0.0, self.schedule.slot_time(self.next_slot) - now)

    def _drop(self, first: int, count: int) -> None:
        """Slots ``first`` .. ``first + count - 1`` were dropped: each counts in its own second, and in
        the warm-up's store when it fell due in the warm-up."""
        if count:
            slot_time, stop = self.schedule.slot_time, first + count
            hold = min(max(first, self.hold_slot), stop)
            if hold > first:
                self.warmup_recorder.dropped(hold - first, [slot_time(k) for k in range(first, hold)])
            if stop > hold:
                self.recorder.dropped(stop - hold, [slot_time(k) for k in range(hold, stop)])

    def beat(self) -> None:
        """Send the request due now (dropping slots missed while unable to send), record it; once
        the run is closed, send nothing more (see :meth:`stop`)."""
        schedule, run = self.schedule, self.run
        if run.closed_at is not None:
            self.stop(run.closed_at)
            return
        wake = on_wake(schedule, self.next_slot, run.clock())
        self._drop(self.next_slot, wake.dropped)
        if wake.slot >= schedule.slot_count():
            self.next_slot = wake.slot
            return
        timeline = run.timeline
        if wake.late:
            timeline.late.append((schedule.slot_time(wake.slot), self.recorder.name))
        run.inflight += 1
        sent_at = run.clock()
        timeline.sends.append(sent_at)
        try:
            exchange = self.connection.request(self.request)
        except BaseException:  # killed mid-request (the user stopped): it never ends
            timeline.abandoned.append(sent_at)
            raise
        finally:
            run.inflight -= 1
        finished = run.clock()
        run.last_response_at = max(run.last_response_at, finished)
        recorder = self.recorder if wake.slot >= self.hold_slot else self.warmup_recorder
        recorder.record(exchange, late=wake.late, at=finished, agent=self.agent, sent_at=sent_at)
        hold_from, end = self.hold_from, schedule.end
        if hold_from <= sent_at < end:
            run.hold_sent += 1
        if hold_from <= finished < end:
            run.hold_completed += 1
        if run.trace is not None:
            slot_at = schedule.slot_time(wake.slot)
            run.trace.write(self.agent, slot_at, sent_at, finished, exchange.duration_s, exchange.status)
        if run.closed_at is not None:  # closed while in flight
            self.next_slot = wake.slot + 1
            self.stop(run.closed_at)
            return
        self.next_slot, dropped = after_response(schedule, wake.slot, finished)
        self._drop(wake.slot + 1, dropped)

    def stop(self, closed_at: float) -> None:
        """The run closed at ``closed_at``: the slots before it this agent did not send are its
        drops (woken late, or in flight across one); later ones are not its own (a stopping
        worker's master counts them), and the loop has no slot left."""
        self._drop(self.next_slot, slots_before(self.schedule, self.next_slot, closed_at))
        self.next_slot = self.schedule.slot_count()

    def run_forever(self) -> None:
        """The loop of a secondary call, in its own greenlet until the run ends or the user stops."""
        while (wait := self.seconds_to_next(self.run.clock())) is not None:
            gevent.sleep(wait)
            self.beat()


def agent_loops(run: Run, index: int) -> list[CallLoop]:
    """Agent ``index``'s loops, one per call of the prepared step, its requests built and its
    connections not yet opened; each beats once scheduled (:func:`schedule_loops`)."""
    shape = run.shape
    assert shape is not None, "the step is not prepared yet"
    sources = run.config.source_addresses
    source = sources[index % len(sources)] if sources else None
    return [
        CallLoop(
            run,
            run.recorders[call.name],
            call_request(run, call, index + 1),
            index,
            source,
            run.warmup_recorders.get(call.name),
        )
        for call in shape.calls
    ]


def schedule_loops(loops: Sequence[CallLoop], step: Step, index: int, resume_at: float) -> None:
    """Put agent ``index``'s loops on the step's absolute schedule, from ``resume_at``."""
    schedules = call_schedules(index, step.fleet_size, step.calls, step.t0, step.duration_s)
    for loop, schedule in zip(loops, schedules, strict=True):
        loop.schedule_on(schedule, resume_at, step.hold_from)
