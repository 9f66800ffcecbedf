"""The steady state allocates no reference cycles per beat, so the cyclic collector has nothing to
find while the schedule runs: beats made in-process with the collector disabled, then
``gc.collect()`` must return 0 (``gc.DEBUG_SAVEALL`` names what it found otherwise)."""

from __future__ import annotations

import gc
import socket
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from helpers import FakeClock, in_process_target
from locust import User
from locust.env import Environment

from certctl_load.model.config import resolve_config
from certctl_load.runtime.call_loop import CallLoop, agent_loops, schedule_loops
from certctl_load.runtime.run import AgentGrant, Run

TOKEN = "cycle-token"
T0 = 1_000.0


@pytest.fixture
def target_url() -> Iterator[str]:
    with in_process_target(1, TOKEN) as url:
        yield url


@pytest.fixture
def silent_url() -> Iterator[str]:
    """A listener that accepts connections (in the kernel) and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"


def refused_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"  # closed again: nothing listens there


def one_agent(tmp_path: Path, url: str, timeout: str = "60s") -> tuple[CallLoop, FakeClock]:
    """One agent's heartbeat loop, its Locust request event wired to Locust's own statistics."""
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(f"name: agent_storm\nrequest_timeout: {timeout}\n")
    options = SimpleNamespace(
        fleet_size="1",
        heartbeat_interval="1",
        run_time=1_000_000,
        results_dir=str(tmp_path),
        scenario=str(scenario),
    )
    config = resolve_config(options, {"CERTCTL_TOKEN": TOKEN}, url)
    environment = Environment(user_classes=[User])
    environment.create_local_runner()  # hooks Locust's statistics to the request event
    clock = FakeClock(T0)
    run = Run(config, environment.events.request, clock=clock)
    run.start_schedule(T0, [AgentGrant(0)])
    [loop] = agent_loops(run, 0)
    assert run.step is not None
    schedule_loops([loop], run.step, 0, 0.0)
    return loop, clock


def beat(loop: CallLoop, clock: FakeClock, times: int) -> None:
    for _ in range(times):
        loop.beat()
        clock.now += 1.0


def cycles_made_by(loop: CallLoop, clock: FakeClock, beats: int) -> Counter[str]:
    """The objects in reference cycles that ``beats`` more beats leave behind."""
    beat(loop, clock, 50)  # first-beat caches: series keys, the connection, Locust's stats entries
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        beat(loop, clock, beats)
        found = gc.collect()
        kinds = Counter(type(thing).__name__ for thing in gc.garbage)
        assert found == 0 or kinds, "found cycles without naming them"
        return kinds
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()


def test_10000_successful_beats_make_no_reference_cycle(tmp_path, target_url):
    loop, clock = one_agent(tmp_path, target_url)
    assert cycles_made_by(loop, clock, 10_000) == Counter()
    assert loop.recorder.store.select("http_reqs", {"status": "200"}).count == 10_050


def test_1000_refused_beats_make_no_reference_cycle(tmp_path):
    loop, clock = one_agent(tmp_path, refused_url())
    assert cycles_made_by(loop, clock, 1_000) == Counter()
    assert loop.recorder.store.select("http_reqs", {"error": "connection_refused"}).count == 1_050


def test_1000_timed_out_beats_make_no_reference_cycle(tmp_path, silent_url):
    loop, clock = one_agent(tmp_path, silent_url, timeout="1ms")
    assert cycles_made_by(loop, clock, 1_000) == Counter()
    assert loop.recorder.store.select("http_reqs", {"error": "timeout"}).count == 1_050
