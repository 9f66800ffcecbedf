"""The collector guard's sweep: what a young collection walks is what was allocated since the last
sweep, not every object the fleet keeps alive, and cyclic garbage is still collected."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from certctl_load.runtime.generator import CollectorGuard


class Sleeper:
    """Stands for a sleeping agent's objects, renewed every beat."""


@pytest.fixture
def guard() -> Iterator[CollectorGuard]:
    guard = CollectorGuard()
    guard.freeze()
    try:
        yield guard
    finally:
        guard.release()


def test_a_sweep_leaves_the_young_generation_empty_of_what_the_fleet_keeps(guard: CollectorGuard) -> None:
    # Each beat frees its agent's old objects as it makes new ones, so the young generation's count
    # (allocations less deallocations) hardly moves while every live one in it is young: built
    # here without a collection, as a fleet renews them over an interval.
    gc.disable()
    try:
        fleet = [Sleeper() for _ in range(15_000)]
        assert len(gc.get_objects(0)) >= 15_000  # unswept, the next young collection walks them all
    finally:
        gc.enable()
    guard.sweep()
    assert len(gc.get_objects(0)) < 100
    assert gc.get_freeze_count() >= 15_000
    del fleet


def test_cyclic_garbage_is_collected_before_the_freeze(guard: CollectorGuard) -> None:
    collected: list[int] = []

    def count(phase: str, info: dict[str, int]) -> None:
        if phase == "stop":
            collected.append(info["collected"])

    for _ in range(100):
        cycle = Sleeper()
        cycle.me = cycle  # type: ignore[attr-defined]
    del cycle
    gc.callbacks.append(count)
    try:
        guard.sweep()
    finally:
        gc.callbacks.remove(count)
    assert sum(collected) >= 100


def test_without_the_guard_a_sweep_does_nothing() -> None:
    frozen = gc.get_freeze_count()
    CollectorGuard().sweep()
    assert gc.get_freeze_count() == frozen
