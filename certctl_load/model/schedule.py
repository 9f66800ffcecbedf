"""The fleet's drift-free, absolute heartbeat schedule (pure arithmetic, no clocks read here).

Agent ``i`` (0-based) of ``N`` with interval ``T`` is due at ``t0 + i*T/N + k*T`` for
k = 0, 1, ...: N/T beats per second, spread evenly from the first interval on. Only
slots strictly before ``t0 + D`` are part of the run.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

LATE_AFTER_S = 0.010


@dataclass(frozen=True, slots=True)
class AgentSchedule:
    """One agent's slots: ``start + k*interval`` for every k with a slot before ``end``."""

    start: float
    interval: float
    end: float
    _count: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Read several times per beat: worked out once.
        count = 0 if self.start >= self.end else math.ceil((self.end - self.start) / self.interval - 1e-12)
        object.__setattr__(self, "_count", count)

    def slot_time(self, k: int) -> float:
        return self.start + k * self.interval

    def slot_count(self) -> int:
        """How many slots fall before the end of the run."""
        return self._count

    def last_due(self, now: float) -> int:
        """Index of the latest slot due at ``now`` (-1 before the first)."""
        return self.first_at_or_after(now + 1e-9) - 1

    def first_at_or_after(self, moment: float) -> int:
        """Index of the first slot at or after ``moment`` (0 before the start)."""
        if moment <= self.start:
            return 0
        k = math.ceil((moment - self.start) / self.interval)
        # Guard against floating-point error at exact slot boundaries.
        if self.slot_time(k - 1) >= moment:
            k -= 1
        return k


def agent_schedules(
    index: int, fleet_size: int, intervals: Sequence[float], t0: float, duration: float
) -> list[AgentSchedule]:
    """Agent ``index``'s (0-based) schedule for each interval, in order: the fleet's agents start
    spread evenly over the longest interval, each call then keeps its own cadence."""
    if not 0 <= index < fleet_size:
        raise ValueError(f"agent index {index} outside a fleet of {fleet_size}")
    start = t0 + index * max(intervals) / fleet_size
    return [AgentSchedule(start=start, interval=interval, end=t0 + duration) for interval in intervals]


def fleet_slots(fleet_size: int, intervals: Sequence[float], duration: float) -> list[int]:
    """For each interval, the whole fleet's slots in a run of ``duration`` seconds."""
    totals = [0] * len(intervals)
    for index in range(fleet_size):
        for position, schedule in enumerate(agent_schedules(index, fleet_size, intervals, 0.0, duration)):
            totals[position] += schedule.slot_count()
    return totals


def agent_schedule(index: int, fleet_size: int, interval: float, t0: float, duration: float) -> AgentSchedule:
    """The schedule of agent ``index`` (0-based) in a fleet of ``fleet_size`` making one call."""
    return agent_schedules(index, fleet_size, [interval], t0, duration)[0]


def expected_beats(fleet_size: int, interval: float, duration: float) -> int:
    """Total slots the whole fleet has in a run of ``duration`` seconds, for one call."""
    return fleet_slots(fleet_size, [interval], duration)[0]


@dataclass(frozen=True)
class Wake:
    """What an agent does when it wakes at its slot: send for ``slot``, having skipped ``dropped``."""

    slot: int
    dropped: int
    late: bool


def on_wake(schedule: AgentSchedule, next_slot: int, now: float) -> Wake:
    """Decide the beat to send when woken at ``now`` for ``next_slot`` (or later, if woken late).

    Slots that passed while the agent could not send are dropped, never sent in a
    burst. A returned slot outside the run means: send nothing, the agent is done.
    """
    due = max(next_slot, schedule.last_due(now))
    dropped = max(0, min(due, schedule.slot_count()) - next_slot)
    return Wake(slot=due, dropped=dropped, late=now - schedule.slot_time(due) > LATE_AFTER_S)


def after_response(schedule: AgentSchedule, sent_slot: int, finished: float) -> tuple[int, int]:
    """After the beat for ``sent_slot`` completes at ``finished``: (next slot, slots dropped in flight).

    A slot that fell due while the request was in flight is dropped (counted once,
    only when it lies inside the run); the next beat goes at the first slot at or
    after ``finished``, which may lie past the run's end (the agent is then done).
    """
    next_slot = max(sent_slot + 1, schedule.first_at_or_after(finished))
    dropped = max(0, min(next_slot, schedule.slot_count()) - (sent_slot + 1))
    return next_slot, dropped


def slots_before(schedule: AgentSchedule, next_slot: int, moment: float) -> int:
    """How many slots from ``next_slot`` lie before ``moment`` (and in the run): when an agent stops
    sending at ``moment``, those it has not sent are its drops, and the later ones not its own."""
    return max(0, min(schedule.first_at_or_after(moment), schedule.slot_count()) - next_slot)
