"""Stopping every user from one greenlet, on a real Locust runner (in-process)."""

from __future__ import annotations

import gevent
import pytest
from locust import User, constant, task
from locust.env import Environment

from certctl_load.plugin.user_stop import restore_final_counts, stop_all_users

USERS = 40


class Sleeper(User):
    """A user that spends its life in Locust's wait, as a storm agent does between beats."""

    wait_time = constant(60)
    stopped = 0

    @task
    def nothing(self) -> None:
        pass

    def on_stop(self) -> None:
        type(self).stopped += 1


@pytest.fixture
def runner():
    Sleeper.stopped = 0
    environment = Environment(user_classes=[Sleeper])
    local = environment.create_local_runner()
    local.start(USERS, spawn_rate=USERS * 10)
    local.spawning_greenlet.join(timeout=10)
    assert local.user_count == USERS
    yield local
    local.quit()


@pytest.fixture
def spawned_later(monkeypatch):
    """Every ``gevent.spawn_later`` call (Locust stops each user in one)."""
    calls: list[object] = []
    real = gevent.spawn_later

    def counting(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(gevent, "spawn_later", counting)
    return calls


def test_locust_alone_spawns_a_greenlet_per_user_to_stop_them(runner, spawned_later):
    runner.stop()
    assert len(spawned_later) == USERS
    assert Sleeper.stopped == USERS


def test_every_user_stops_and_locust_finds_none_left(runner, spawned_later):
    counts = stop_all_users(runner)
    assert counts == {"Sleeper": USERS}
    assert Sleeper.stopped == USERS
    assert runner.user_count == 0
    runner.stop()
    assert spawned_later == []
    assert Sleeper.stopped == USERS


def test_the_final_counts_locust_reports_are_put_back(runner):
    counts = stop_all_users(runner)
    runner.stop()  # records the (now empty) running counts as the final ones
    assert runner.final_user_classes_count == {"Sleeper": 0}
    restore_final_counts(runner, counts)
    assert runner.final_user_classes_count == {"Sleeper": USERS}


def test_a_stop_timeout_leaves_the_graceful_stop_to_locust(runner):
    runner.environment.stop_timeout = 5
    assert stop_all_users(runner) is None
    assert runner.user_count == USERS
    assert Sleeper.stopped == 0
