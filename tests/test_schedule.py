"""The absolute schedule: even spread, exact slot counts, drops instead of bursts."""

from hypothesis import given
from hypothesis import strategies as st

from certctl_load.model.schedule import (
    LATE_AFTER_S,
    after_response,
    agent_schedule,
    expected_beats,
    on_wake,
    slots_before,
)


def test_agents_are_spread_evenly_over_the_first_interval():
    starts = [agent_schedule(i, 4, 6.0, 100.0, 30.0).start for i in range(4)]
    assert starts == [100.0, 101.5, 103.0, 104.5]


def test_slots_are_absolute_and_drift_free():
    schedule = agent_schedule(1, 1000, 6.0, 50.0, 600.0)
    assert schedule.slot_time(0) == 50.006
    assert abs(schedule.slot_time(99) - (50.006 + 99 * 6.0)) < 1e-9


def test_only_slots_before_the_end_belong_to_the_run():
    assert agent_schedule(0, 1000, 6.0, 0.0, 30.0).slot_count() == 5  # 0, 6, 12, 18, 24
    assert agent_schedule(999, 1000, 6.0, 0.0, 30.0).slot_count() == 5  # 5.994 ... 29.994
    assert agent_schedule(0, 1, 6.0, 0.0, 6.0).slot_count() == 1  # a slot exactly at the end is out
    assert expected_beats(1000, 6.0, 30.0) == 5000
    assert expected_beats(5000, 30.0, 300.0) == 50000


@given(
    fleet=st.integers(1, 300),
    interval=st.floats(0.5, 60.0),
    duration=st.floats(0.5, 600.0),
)
def test_total_beats_match_the_offered_rate(fleet, interval, duration):
    total = expected_beats(fleet, interval, duration)
    offered = fleet / interval * duration
    assert abs(total - offered) <= fleet  # at most one slot per agent from the edges


def test_waking_on_time_sends_that_slot():
    schedule = agent_schedule(0, 1, 6.0, 0.0, 60.0)
    wake = on_wake(schedule, 2, 12.0 + LATE_AFTER_S / 2)
    assert (wake.slot, wake.dropped, wake.late) == (2, 0, False)
    assert on_wake(schedule, 2, 12.0 + 2 * LATE_AFTER_S).late


def test_waking_after_a_later_slot_drops_the_missed_ones():
    schedule = agent_schedule(0, 1, 6.0, 0.0, 60.0)
    wake = on_wake(schedule, 2, 25.0)
    assert (wake.slot, wake.dropped, wake.late) == (4, 2, True)


def test_slots_passed_while_in_flight_are_dropped_and_not_burst():
    schedule = agent_schedule(0, 1, 6.0, 0.0, 60.0)
    assert after_response(schedule, 0, 0.5) == (1, 0)
    assert after_response(schedule, 0, 6.0) == (1, 0)  # due exactly now: still sendable
    assert after_response(schedule, 0, 6.001) == (2, 1)
    assert after_response(schedule, 0, 20.0) == (4, 3)


def test_drops_past_the_end_of_the_run_are_not_counted():
    schedule = agent_schedule(0, 1, 6.0, 0.0, 30.0)  # slots 0..4
    assert after_response(schedule, 3, 40.0) == (7, 1)
    wake = on_wake(schedule, 4, 50.0)
    assert wake.slot >= schedule.slot_count() and wake.dropped == 1


def test_an_agent_stopping_drops_only_its_unsent_slots_before_the_stop():
    schedule = agent_schedule(0, 1, 6.0, 0.0, 30.0)  # 0, 6, 12, 18, 24
    assert slots_before(schedule, 2, 12.5) == 1  # due at 12, woken after the stop at 12.5
    assert slots_before(schedule, 2, 12.0) == 0  # a slot at the stop is not the agent's
    assert slots_before(schedule, 2, 25.0) == 3
    assert slots_before(schedule, 2, 99.0) == 3  # never past the run's end
    assert slots_before(schedule, 4, 6.0) == 0
